"""PD across two "hosts": the prefill server runs in a network namespace of its own, joined to
the decode server's by a veth pair, and the KV goes over UCX's TCP transport
(UCX_TLS=tcp, each side on its veth). The test builds and removes the namespace itself; it
needs root and iproute2, which CI has, so in CI it runs and never skips."""
import os
import shutil
import subprocess

import pytest
import requests

from pd_cluster import Cluster, used_tokens_after_flush, wait_idle
from test_server_fixture import Server

PROMPTS = ["The capital of France is", "Once upon a time, there was a", "def fibonacci(n):",
           "The three primary colors are", "Water boils at", "My favourite animal is the"]


def sh(*args):
    subprocess.run(args, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def netns():
    ok = os.geteuid() == 0 and shutil.which("ip")
    if not ok:
        if os.environ.get("CI"):
            pytest.fail("the PD network-namespace test needs root and iproute2 in CI")
        pytest.skip("needs root and iproute2 (ip netns)")
    tag = os.getpid() % 200 + 20
    ns, host_if, ns_if = f"sglcpd{tag}", f"sglcA{tag}", f"sglcB{tag}"
    host_ip, ns_ip = f"10.231.{tag}.1", f"10.231.{tag}.2"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", ns)
        sh("ip", "addr", "add", f"{host_ip}/24", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/24", "dev", ns_if)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield {"ns": ns, "host_if": host_if, "ns_if": ns_if, "host_ip": host_ip, "ns_ip": ns_ip}
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)  # removes both veth ends


@pytest.fixture(scope="module")
def cluster(sglc_bin, default_model, netns):
    c = Cluster(sglc_bin, default_model,
                prefill_prefix=["ip", "netns", "exec", netns["ns"]], prefill_host=netns["ns_ip"],
                prefill_env={"UCX_TLS": "tcp", "UCX_NET_DEVICES": netns["ns_if"]},
                decode_host=netns["host_ip"],
                decode_env={"UCX_TLS": "tcp", "UCX_NET_DEVICES": netns["host_if"]})
    yield c
    rcs = c.stop()
    assert rcs == {"lb": 0, "decode": 0, "prefill": 0}, rcs


@pytest.fixture(scope="module")
def colocated(sglc_bin, default_model):
    s = Server(sglc_bin, default_model, api_key=None).wait_ready()
    yield s
    assert s.stop() == 0


def gen(base, prompt, **extra):
    r = requests.post(base + "/generate", json={
        "text": prompt, "sampling_params": {"max_new_tokens": 10, "temperature": 0}, **extra},
        timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def test_two_namespaces_over_tcp(cluster, colocated, netns):
    # the prefill server is not reachable from the decode host's loopback: only over the veth
    assert subprocess.run(["ip", "netns", "exec", netns["ns"], "ip", "-o", "addr"],
                          capture_output=True, text=True).stdout.count("inet ") == 2
    for p in PROMPTS:
        assert gen(cluster.lb.base, p)["output_ids"] == gen(colocated.base, p)["output_ids"], p
    out = gen(cluster.lb.base, PROMPTS[0], return_logprob=True, logprob_start_len=0)
    meta = out["meta_info"]
    assert len(meta["input_token_logprobs"]) == meta["prompt_tokens"]
    assert len(meta["output_token_logprobs"]) == meta["completion_tokens"]
    log = cluster.prefill.logs()
    assert "registered from " + netns["host_ip"] in log, log[-2000:]
    assert "tcp" in log.split("registered from", 1)[1].split("\n", 1)[0], log[-2000:]
    assert used_tokens_after_flush(cluster.prefill) == 0
    assert wait_idle(cluster.decode)["num_tokens"] == 0
