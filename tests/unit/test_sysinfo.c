/* Unit tests for base/sysinfo: each test builds a fake /proc and /sys under a temp dir and runs
 * the checks and fixes there, so the host is never read for tuning knobs nor written. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/sysinfo.h"

/* ---- fake tree helpers ---- */

static void mkdirs(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(tmp, 0755);
        *p = '/';
    }
    mkdir(tmp, 0755);
}

/* Writes `len` bytes (or strlen when len < 0) to root/rel, creating folders. */
static void put(const char *root, const char *rel, const char *text, long len) {
    char path[4096], dir[4096];
    snprintf(path, sizeof path, "%s%s", root, rel);
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    mkdirs(dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    size_t n = len < 0 ? strlen(text) : (size_t)len;
    assert_int_equal(fwrite(text, 1, n, f), n);
    fclose(f);
}

static void slurp(const char *root, const char *rel, char *buf, size_t cap) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s", root, rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state) {
    char *root = strdup("/tmp/sglc-sysinfo-XXXXXX");
    if (!mkdtemp(root)) return -1;
    *state = root;
    return 0;
}

static int teardown(void **state) {
    nftw((char *)*state, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(*state);
    return 0;
}

static sysinfo_line check_one(const char *root, sysinfo_check_id id) {
    sysinfo_line lines[SYSINFO_NUM_CHECKS];
    assert_int_equal(sysinfo_check(root, lines, SYSINFO_NUM_CHECKS), SYSINFO_NUM_CHECKS);
    assert_int_equal(lines[id].id, id);
    return lines[id];
}

#define GOV0 "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"
#define GOV1 "/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor"
#define SWAP "/proc/sys/vm/swappiness"
#define NUMA "/proc/sys/kernel/numa_balancing"
#define THP "/sys/kernel/mm/transparent_hugepage/enabled"

/* ---- governor ---- */

static void test_governor_powersave_fixed(void **state) {
    const char *root = *state;
    put(root, GOV0, "powersave\n", -1);
    put(root, GOV1, "powersave\n", -1);
    sysinfo_line l = check_one(root, SYSINFO_GOVERNOR);
    assert_int_equal(l.status, SYSINFO_WARN);
    assert_string_equal(l.value, "powersave on 2 cpus");
    assert_non_null(strstr(l.fix, "echo performance | tee"));

    char did[512], buf[64];
    assert_int_equal(sysinfo_fix(root, &l, did, sizeof did), 0);
    assert_non_null(strstr(did, "powersave on 2 cpus -> performance (2 cpus changed)"));
    slurp(root, GOV0, buf, sizeof buf);
    assert_string_equal(buf, "performance\n");
    slurp(root, GOV1, buf, sizeof buf);
    assert_string_equal(buf, "performance\n");

    l = check_one(root, SYSINFO_GOVERNOR);
    assert_int_equal(l.status, SYSINFO_OK);
    assert_string_equal(l.value, "performance on 2 cpus");
    assert_string_equal(l.fix, "");
}

static void test_governor_mixed_changes_only_wrong_cpu(void **state) {
    const char *root = *state;
    put(root, GOV0, "performance\n", -1);
    put(root, GOV1, "schedutil\n", -1);
    sysinfo_line l = check_one(root, SYSINFO_GOVERNOR);
    assert_int_equal(l.status, SYSINFO_WARN);
    assert_non_null(strstr(l.value, "performance on 1 cpu"));
    assert_non_null(strstr(l.value, "schedutil on 1 cpu"));
    char did[512];
    assert_int_equal(sysinfo_fix(root, &l, did, sizeof did), 0);
    assert_non_null(strstr(did, "(1 cpu changed)"));
    assert_int_equal(check_one(root, SYSINFO_GOVERNOR).status, SYSINFO_OK);
}

static void test_governor_no_cpufreq_is_na(void **state) {
    const char *root = *state;
    /* A VM: cpu folders exist but none has cpufreq. */
    char d[4096];
    snprintf(d, sizeof d, "%s/sys/devices/system/cpu/cpu0", root);
    mkdirs(d);
    sysinfo_line l = check_one(root, SYSINFO_GOVERNOR);
    assert_int_equal(l.status, SYSINFO_NA);
    assert_string_equal(l.value, "no cpufreq on this machine");
    char did[256];
    assert_int_equal(sysinfo_fix(root, &l, did, sizeof did), -1);
}

static void test_governor_empty_and_garbage(void **state) {
    const char *root = *state;
    put(root, GOV0, "", 0);
    put(root, GOV1, "\x01\xff garbage!\n", -1);
    sysinfo_line l = check_one(root, SYSINFO_GOVERNOR);
    assert_int_equal(l.status, SYSINFO_WARN);
    assert_non_null(strstr(l.value, "(empty) on 1 cpu"));
    assert_non_null(strstr(l.value, "(malformed) on 1 cpu"));
    char did[512];
    assert_int_equal(sysinfo_fix(root, &l, did, sizeof did), 0);
    assert_int_equal(check_one(root, SYSINFO_GOVERNOR).status, SYSINFO_OK);
}

/* ---- sysctls ---- */

static void test_swappiness_60_fixed(void **state) {
    const char *root = *state;
    put(root, SWAP, "60\n", -1);
    sysinfo_line l = check_one(root, SYSINFO_SWAPPINESS);
    assert_int_equal(l.status, SYSINFO_WARN);
    assert_string_equal(l.value, "60");
    assert_string_equal(l.fix, "sysctl -w vm.swappiness=10");
    char line[512];
    sysinfo_format(&l, line, sizeof line);
    assert_string_equal(line, "WARN  vm.swappiness: 60 -> fix: sysctl -w vm.swappiness=10");

    char did[512], buf[32];
    assert_int_equal(sysinfo_fix(root, &l, did, sizeof did), 0);
    assert_string_equal(did, "vm.swappiness: 60 -> 10");
    slurp(root, SWAP, buf, sizeof buf);
    assert_string_equal(buf, "10\n");
    l = check_one(root, SYSINFO_SWAPPINESS);
    assert_int_equal(l.status, SYSINFO_OK);
    sysinfo_format(&l, line, sizeof line);
    assert_string_equal(line, "OK    vm.swappiness: 10");
}

static void test_swappiness_below_ten_ok(void **state) {
    put(*state, SWAP, "1", -1);
    assert_int_equal(check_one(*state, SYSINFO_SWAPPINESS).status, SYSINFO_OK);
    put(*state, SWAP, "11", -1);
    assert_int_equal(check_one(*state, SYSINFO_SWAPPINESS).status, SYSINFO_WARN);
}

static void test_swappiness_malformed(void **state) {
    const char *root = *state;
    put(root, SWAP, "", 0);
    sysinfo_line l = check_one(root, SYSINFO_SWAPPINESS);
    assert_int_equal(l.status, SYSINFO_WARN);
    assert_non_null(strstr(l.value, "(empty)"));

    put(root, SWAP, "ten\x01\n", -1);
    l = check_one(root, SYSINFO_SWAPPINESS);
    assert_int_equal(l.status, SYSINFO_WARN);
    assert_non_null(strstr(l.value, "'ten?' is not a number"));
    char did[512];
    assert_int_equal(sysinfo_fix(root, &l, did, sizeof did), 0);
    assert_int_equal(check_one(root, SYSINFO_SWAPPINESS).status, SYSINFO_OK);

    put(root, SWAP, "-5", -1);
    assert_int_equal(check_one(root, SYSINFO_SWAPPINESS).status, SYSINFO_WARN);
    put(root, SWAP, "99999999999999999999999", -1);
    assert_int_equal(check_one(root, SYSINFO_SWAPPINESS).status, SYSINFO_WARN);

    static char big[10000];
    memset(big, '1', sizeof big);
    put(root, SWAP, big, sizeof big);
    l = check_one(root, SYSINFO_SWAPPINESS);
    assert_int_equal(l.status, SYSINFO_WARN);
    assert_non_null(strstr(l.value, "too large"));
}

static void test_swappiness_absent_or_unreadable_is_na(void **state) {
    const char *root = *state;
    sysinfo_line l = check_one(root, SYSINFO_SWAPPINESS);
    assert_int_equal(l.status, SYSINFO_NA);
    assert_string_equal(l.fix, "");
    /* A folder where the file should be: read fails with EISDIR. */
    char d[4096];
    snprintf(d, sizeof d, "%s" SWAP, root);
    mkdirs(d);
    l = check_one(root, SYSINFO_SWAPPINESS);
    assert_int_equal(l.status, SYSINFO_NA);
    assert_non_null(strstr(l.value, "cannot read"));
}

static void test_numa_missing_na_and_on_fixed(void **state) {
    const char *root = *state;
    sysinfo_line l = check_one(root, SYSINFO_NUMA_BALANCING);
    assert_int_equal(l.status, SYSINFO_NA);
    assert_non_null(strstr(l.value, "absent"));

    put(root, NUMA, "1\n", -1);
    l = check_one(root, SYSINFO_NUMA_BALANCING);
    assert_int_equal(l.status, SYSINFO_WARN);
    assert_string_equal(l.fix, "sysctl -w kernel.numa_balancing=0");
    char did[512], buf[16];
    assert_int_equal(sysinfo_fix(root, &l, did, sizeof did), 0);
    assert_string_equal(did, "kernel.numa_balancing: 1 -> 0");
    slurp(root, NUMA, buf, sizeof buf);
    assert_string_equal(buf, "0\n");
    assert_int_equal(check_one(root, SYSINFO_NUMA_BALANCING).status, SYSINFO_OK);
}

static void test_fix_fails_cleanly_when_file_vanishes(void **state) {
    const char *root = *state;
    put(root, NUMA, "2", -1);
    sysinfo_line l = check_one(root, SYSINFO_NUMA_BALANCING);
    assert_int_equal(l.status, SYSINFO_WARN);
    char path[4096], did[512];
    snprintf(path, sizeof path, "%s" NUMA, root);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(sysinfo_fix(root, &l, did, sizeof did), -1);
    assert_non_null(strstr(did, "numa_balancing"));
    assert_non_null(strstr(did, strerror(ENOENT)));
    /* Fixing never creates a knob the kernel does not have. */
    assert_int_equal(access(path, F_OK), -1);
}

/* ---- transparent huge pages ---- */

static void test_thp_modes(void **state) {
    const char *root = *state;
    put(root, THP, "always [madvise] never\n", -1);
    sysinfo_line l = check_one(root, SYSINFO_THP);
    assert_int_equal(l.status, SYSINFO_OK);
    assert_string_equal(l.value, "madvise");

    put(root, THP, "[always] madvise never\n", -1);
    assert_int_equal(check_one(root, SYSINFO_THP).status, SYSINFO_OK);

    put(root, THP, "always madvise [never]\n", -1);
    l = check_one(root, SYSINFO_THP);
    assert_int_equal(l.status, SYSINFO_WARN);
    assert_string_equal(l.value, "never");
    assert_non_null(strstr(l.fix, "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled"));
    char did[512], buf[64];
    assert_int_equal(sysinfo_fix(root, &l, did, sizeof did), 0);
    assert_string_equal(did, "transparent hugepages: never -> madvise");
    slurp(root, THP, buf, sizeof buf);
    assert_string_equal(buf, "madvise\n");
    l = check_one(root, SYSINFO_THP);
    assert_int_equal(l.status, SYSINFO_OK);
    assert_string_equal(l.value, "madvise");
}

static void test_thp_malformed_and_absent(void **state) {
    const char *root = *state;
    assert_int_equal(check_one(root, SYSINFO_THP).status, SYSINFO_NA);
    const char *bad[] = {"", "always [madvise never", "[bogus]", "[", "]", "x[]y"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put(root, THP, bad[i], -1);
        sysinfo_line l = check_one(root, SYSINFO_THP);
        assert_int_equal(l.status, SYSINFO_WARN);
        assert_non_null(strstr(l.value, "malformed"));
    }
}

/* ---- information lines ---- */

static void test_memory_and_cgroup(void **state) {
    const char *root = *state;
    put(root, "/proc/meminfo",
        "MemTotal:       16777216 kB\nMemFree:         1000 kB\nMemAvailable:    8388608 kB\n", -1);
    sysinfo_line l = check_one(root, SYSINFO_MEMORY);
    assert_int_equal(l.status, SYSINFO_OK);
    assert_string_equal(l.value, "16.0 GiB total, 8.0 GiB available");

    put(root, "/proc/meminfo", "MemTotal: lots\n", -1);
    l = check_one(root, SYSINFO_MEMORY);
    assert_int_equal(l.status, SYSINFO_NA);
    assert_non_null(strstr(l.value, "MemTotal"));
    put(root, "/proc/meminfo", "", 0);
    assert_int_equal(check_one(root, SYSINFO_MEMORY).status, SYSINFO_NA);

    assert_int_equal(check_one(root, SYSINFO_CGROUP_MEMORY).status, SYSINFO_NA);
    put(root, "/sys/fs/cgroup/memory.max", "max\n", -1);
    l = check_one(root, SYSINFO_CGROUP_MEMORY);
    assert_int_equal(l.status, SYSINFO_OK);
    assert_string_equal(l.value, "none (max)");
    put(root, "/sys/fs/cgroup/memory.max", "1073741824\n", -1);
    assert_string_equal(check_one(root, SYSINFO_CGROUP_MEMORY).value, "1.0 GiB");
    put(root, "/sys/fs/cgroup/memory.max", "-1x\n", -1);
    l = check_one(root, SYSINFO_CGROUP_MEMORY);
    assert_int_equal(l.status, SYSINFO_NA);
    assert_non_null(strstr(l.value, "malformed"));
}

static void test_cores_and_features(void **state) {
    const char *root = *state;
    put(root, "/sys/devices/system/cpu/online", "0-3,8\n", -1);
    sysinfo_line l = check_one(root, SYSINFO_CORES);
    assert_int_equal(l.status, SYSINFO_OK);
    assert_non_null(strstr(l.value, "(5 online)"));
    put(root, "/sys/devices/system/cpu/online", "3-1", -1);
    l = check_one(root, SYSINFO_CORES);
    assert_null(strstr(l.value, "online"));

    l = check_one(root, SYSINFO_CPU_FEATURES);
    assert_int_equal(l.status, SYSINFO_OK);
    assert_non_null(strstr(l.value, "kernels use"));
    assert_string_equal(sysinfo_status_name(SYSINFO_NA), "N/A");
}

static void test_empty_tree_has_no_warn(void **state) {
    sysinfo_line lines[SYSINFO_NUM_CHECKS];
    int n = sysinfo_check(*state, lines, SYSINFO_NUM_CHECKS);
    for (int i = 0; i < n; i++) assert_int_not_equal(lines[i].status, SYSINFO_WARN);
    /* A short array gets only the first lines. */
    assert_int_equal(sysinfo_check(*state, lines, 2), 2);
    assert_int_equal(sysinfo_check(*state, lines, 0), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_governor_powersave_fixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_governor_mixed_changes_only_wrong_cpu, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_governor_no_cpufreq_is_na, setup, teardown),
        cmocka_unit_test_setup_teardown(test_governor_empty_and_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swappiness_60_fixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swappiness_below_ten_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swappiness_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swappiness_absent_or_unreadable_is_na, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_numa_missing_na_and_on_fixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fix_fails_cleanly_when_file_vanishes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thp_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thp_malformed_and_absent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_and_cgroup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cores_and_features, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_tree_has_no_warn, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
