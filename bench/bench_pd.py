#!/usr/bin/env python3
"""Time to first token of 2,048-token prompts at low load (one request at a time), colocated
versus PD through `sglc launch_lb` (prefill server + decode server on this machine, KV over the
UCX transfer engine). Each prompt is new random token ids, so no prefix is cached. Prints both
medians and the ratio; the issue's target is PD within 15% of colocated.

usage: bench/bench_pd.py [--prompts N] [--input-len L] [--warmup W]
env: SGLC_BIN (default build/sglc), SGLC_MODEL (default: scripts/fetch_model.sh)."""
import argparse
import os
import pathlib
import random
import statistics
import subprocess
import sys
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from pd_cluster import Cluster  # noqa: E402
from test_server_fixture import Server  # noqa: E402


def ttft(base, ids):
    body = {"input_ids": ids, "stream": True,
            "sampling_params": {"max_new_tokens": 4, "temperature": 0, "ignore_eos": True}}
    t0 = time.perf_counter()
    with requests.post(base + "/generate", json=body, stream=True, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith(b"data: {"):
                if b'"error"' in line[:20]:
                    raise RuntimeError(line.decode())
                first = time.perf_counter() - t0
                for _ in r.iter_lines():
                    pass
                return first
    raise RuntimeError("no token")


def measure(base, n, warmup, input_len, rng):
    times = []
    for i in range(warmup + n):
        ids = [rng.randrange(100, 49000) for _ in range(input_len)]
        t = ttft(base, ids)
        if i >= warmup:
            times.append(t)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=10)
    ap.add_argument("--input-len", type=int, default=2048)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    binary = os.environ.get("SGLC_BIN", str(ROOT / "build" / "sglc"))
    model = os.environ.get("SGLC_MODEL") or subprocess.run(
        [str(ROOT / "scripts" / "fetch_model.sh")], check=True, capture_output=True,
        text=True).stdout.strip()
    rng = random.Random(1)

    s = Server(binary, model, api_key=None).wait_ready()
    try:
        colo = measure(s.base, a.prompts, a.warmup, a.input_len, rng)
    finally:
        s.stop()
    c = Cluster(binary, model, short_timeouts=False)
    try:
        pd = measure(c.lb.base, a.prompts, a.warmup, a.input_len, rng)
        log = c.prefill.logs()
    finally:
        c.stop()
    transport = [x for x in log.splitlines() if "registered from" in x]
    mc, mp = statistics.median(colo), statistics.median(pd)
    print(f"TTFT, {a.input_len}-token prompts, {a.prompts} requests one at a time")
    print(f"  colocated   median {mc * 1e3:8.1f} ms  mean {statistics.mean(colo) * 1e3:8.1f} ms")
    print(f"  PD via LB   median {mp * 1e3:8.1f} ms  mean {statistics.mean(pd) * 1e3:8.1f} ms")
    print(f"  PD / colocated (median) {mp / mc:.3f}  (target <= 1.15)")
    if transport:
        print("  " + transport[0].split("] ", 1)[1])


if __name__ == "__main__":
    main()
