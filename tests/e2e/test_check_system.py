"""End-to-end tests of `sglc check_system`: drives the real binary (path in $SGLC_BIN) on fake
/proc and /sys trees made with --sysroot, so the host's settings are read-only to these tests.
--fix is never run without --sysroot."""
import os
import shutil
import subprocess

import pytest

SGLC_BIN = os.environ.get("SGLC_BIN", "")
pytestmark = pytest.mark.skipif(
    not (SGLC_BIN and os.access(SGLC_BIN, os.X_OK)), reason="SGLC_BIN not set or not executable"
)

GOV = "sys/devices/system/cpu/cpu{}/cpufreq/scaling_governor"
SWAP = "proc/sys/vm/swappiness"
NUMA = "proc/sys/kernel/numa_balancing"
THP = "sys/kernel/mm/transparent_hugepage/enabled"


def put(root, rel, text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def run(*args, user=None):
    cmd = [SGLC_BIN, "check_system", *map(str, args)]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def line_for(out, name):
    hits = [ln for ln in out.splitlines() if f"  {name}: " in ln]
    assert len(hits) == 1, out
    return hits[0]


@pytest.fixture
def tuned(tmp_path):
    for cpu in range(2):
        put(tmp_path, GOV.format(cpu), "performance\n")
    put(tmp_path, SWAP, "10\n")
    put(tmp_path, NUMA, "0\n")
    put(tmp_path, THP, "always [madvise] never\n")
    put(tmp_path, "proc/meminfo", "MemTotal: 8388608 kB\nMemAvailable: 4194304 kB\n")
    put(tmp_path, "sys/fs/cgroup/memory.max", "max\n")
    return tmp_path


@pytest.fixture
def untuned(tuned):
    for cpu in range(2):
        put(tuned, GOV.format(cpu), "powersave\n")
    put(tuned, SWAP, "60\n")
    put(tuned, NUMA, "1\n")
    put(tuned, THP, "always madvise [never]\n")
    return tuned


def test_all_ok(tuned):
    r = run("--sysroot", tuned)
    assert r.returncode == 0, r.stdout + r.stderr
    assert line_for(r.stdout, "cpu governor") == "OK    cpu governor: performance on 2 cpus"
    assert line_for(r.stdout, "vm.swappiness") == "OK    vm.swappiness: 10"
    assert line_for(r.stdout, "kernel.numa_balancing") == "OK    kernel.numa_balancing: 0"
    assert line_for(r.stdout, "transparent hugepages").endswith(": madvise")
    assert line_for(r.stdout, "memory") == "OK    memory: 8.0 GiB total, 4.0 GiB available"
    assert line_for(r.stdout, "cgroup memory limit").endswith("none (max)")
    assert line_for(r.stdout, "cpu features").startswith("OK    cpu features: ")
    assert line_for(r.stdout, "cpus available").startswith("OK    cpus available: ")
    assert "WARN" not in r.stdout


def test_warns_with_fix_commands(untuned):
    r = run("--sysroot", untuned)
    assert r.returncode == 1
    assert line_for(r.stdout, "vm.swappiness") == (
        "WARN  vm.swappiness: 60 -> fix: sysctl -w vm.swappiness=10"
    )
    assert line_for(r.stdout, "kernel.numa_balancing").endswith(
        "-> fix: sysctl -w kernel.numa_balancing=0"
    )
    assert line_for(r.stdout, "cpu governor") == (
        "WARN  cpu governor: powersave on 2 cpus -> fix: echo performance | "
        "tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor"
    )
    assert "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled" in line_for(
        r.stdout, "transparent hugepages"
    )
    # Checking alone changes nothing.
    assert (untuned / SWAP).read_text() == "60\n"


def test_vm_without_cpufreq_is_not_a_failure(tuned):
    shutil.rmtree(tuned / "sys/devices/system/cpu/cpu0/cpufreq")
    shutil.rmtree(tuned / "sys/devices/system/cpu/cpu1/cpufreq")
    (tuned / NUMA).unlink()
    r = run("--sysroot", tuned)
    assert r.returncode == 0, r.stdout
    assert line_for(r.stdout, "cpu governor") == "N/A   cpu governor: no cpufreq on this machine"
    assert line_for(r.stdout, "kernel.numa_balancing").startswith("N/A ")


def test_malformed_files_do_not_crash(tuned):
    put(tuned, SWAP, "")
    put(tuned, NUMA, "\x01\x02garbage")
    put(tuned, THP, "nonsense")
    put(tuned, "proc/meminfo", "MemTotal: ???\n")
    r = run("--sysroot", tuned)
    assert r.returncode == 1
    assert "(empty)" in line_for(r.stdout, "vm.swappiness")
    assert "is not a number" in line_for(r.stdout, "kernel.numa_balancing")
    assert "malformed" in line_for(r.stdout, "transparent hugepages")
    assert line_for(r.stdout, "memory").startswith("N/A ")


@pytest.mark.skipif(os.geteuid() != 0, reason="--fix needs root")
def test_fix_as_root_writes_the_fake_tree(untuned):
    r = run("--fix", "--sysroot", untuned)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "fixed vm.swappiness: 60 -> 10" in r.stdout
    assert "fixed kernel.numa_balancing: 1 -> 0" in r.stdout
    assert "fixed transparent hugepages: never -> madvise" in r.stdout
    assert "fixed cpu governor: powersave on 2 cpus -> performance" in r.stdout
    for cpu in range(2):
        assert (untuned / GOV.format(cpu)).read_text() == "performance\n"
    assert (untuned / SWAP).read_text() == "10\n"
    assert (untuned / NUMA).read_text() == "0\n"
    again = run("--sysroot", untuned)
    assert again.returncode == 0, again.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="--fix needs root")
def test_fix_failure_is_reported_and_warn_remains(untuned):
    # /dev/full reads as endless zero bytes (a malformed knob) and refuses every write (ENOSPC):
    # the other fixes still apply, the failure is named, and the exit status stays 1.
    (untuned / SWAP).unlink()
    (untuned / SWAP).symlink_to("/dev/full")
    r = run("--fix", "--sysroot", untuned)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "fixed kernel.numa_balancing: 1 -> 0" in r.stdout
    assert "could not fix vm.swappiness" in r.stderr
    assert "still to tune after --fix:" in r.stdout
    assert line_for(r.stdout.split("still to tune")[1], "vm.swappiness").startswith("WARN ")


def test_fix_without_root_changes_nothing(untuned):
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop privileges")
        untuned.chmod(0o755)
        for p in untuned.parents:
            if str(p).startswith("/tmp/pytest-of"):
                p.chmod(p.stat().st_mode | 0o055)
        r = run("--fix", "--sysroot", untuned, user=65534)
    else:
        r = run("--fix", "--sysroot", untuned)
    assert r.returncode == 1
    assert "needs root" in r.stderr
    assert (untuned / SWAP).read_text() == "60\n"
    assert (untuned / GOV.format(0)).read_text() == "powersave\n"


def test_usage(tmp_path):
    r = run("--help")
    assert r.returncode == 0 and "--sysroot DIR" in r.stdout and "--fix" in r.stdout
    r = run("--frobnicate")
    assert r.returncode == 2 and "--frobnicate" in r.stderr
    r = run("--sysroot")
    assert r.returncode == 2
    r = run("--sysroot", tmp_path / "missing")
    assert r.returncode == 2 and "not a directory" in r.stderr
