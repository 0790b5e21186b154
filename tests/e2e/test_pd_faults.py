"""PD faults: a decode server killed mid-stream, a prefill server killed while decode waits for
its KV, and injected transfer failures (DISAGGREGATION_TEST_FAILURE_PROB) over 200 requests.
Each time the client gets a clear error within the (cut) timeouts, the surviving servers free
every KV slot, and the rest of the requests are answered correctly."""
import concurrent.futures as cf
import json
import random
import time

import pytest
import requests

from pd_cluster import Cluster, used_tokens_after_flush, wait_idle
from test_server_fixture import Server

SEEDS = ["The capital of France is", "Once upon a time, there was a", "def fibonacci(n):",
         "The three primary colors are", "In 1969, the first humans", "A haiku about the sea:",
         "The best way to learn a language is", "Water boils at", "My favourite animal is the",
         "Here is a list of fruits: apple,"]


def test_decode_killed_mid_stream(sglc_bin, default_model):
    c = Cluster(sglc_bin, default_model)
    try:
        body = {"text": SEEDS[0], "stream": True,
                "sampling_params": {"max_new_tokens": 4000, "ignore_eos": True, "temperature": 0}}
        r = c.lb.post("/generate", json=body, stream=True, timeout=30)
        assert r.status_code == 200
        lines = r.iter_lines(decode_unicode=True)
        events = 0
        for line in lines:
            if line.startswith("data: {"):
                events += 1
                if events == 5:
                    break
        t0 = time.time()
        c.decode.kill9()
        finished = False
        error = False
        try:
            for line in lines:
                if line.startswith("data: {"):
                    ev = json.loads(line[6:])
                    error |= "error" in ev
                    fr = ev.get("meta_info", {}).get("finish_reason")
                    finished |= bool(fr) and fr.get("type") == "length"
        except requests.exceptions.RequestException:
            error = True
        assert time.time() - t0 < 15
        assert not finished
        assert error, "the client must see the stream fail, not end as if complete"
        # the LB notices the dead decode server, and the prefill server holds nothing
        deadline = time.time() + 15
        while c.lb.get("/health", timeout=10).status_code == 200 and time.time() < deadline:
            time.sleep(0.5)
        assert c.lb.get("/health", timeout=10).status_code == 503
        assert used_tokens_after_flush(c.prefill) == 0
    finally:
        c.stop()


def test_prefill_killed_while_decode_waits(sglc_bin, default_model):
    c = Cluster(sglc_bin, default_model)
    try:
        # only decode gets the request: it sets KV aside and waits for a prefill that never runs
        # it; then the prefill server dies
        room = random.randint(0, 2**63 - 1)
        body = {"text": SEEDS[3], "sampling_params": {"max_new_tokens": 8, "temperature": 0},
                "bootstrap_host": "127.0.0.1", "bootstrap_port": c.bootstrap_port,
                "bootstrap_room": room}
        with cf.ThreadPoolExecutor(1) as pool:
            fut = pool.submit(requests.post, c.decode.base + "/generate", json=body, timeout=60)
            deadline = time.time() + 10
            while time.time() < deadline:
                load = requests.get(c.decode.base + "/get_load", timeout=10).json()[0]
                if load["num_tokens"] > 0:
                    break
                time.sleep(0.1)
            assert load["num_tokens"] > 0, "decode never set KV aside for the request"
            t0 = time.time()
            c.prefill.kill9()
            r = fut.result()
        took = time.time() - t0
        assert r.status_code == 500, r.text
        msg = r.json()["error"]["message"]
        assert "heartbeat" in msg or "prefill" in msg, msg
        assert took < 10, took
        load = wait_idle(c.decode)
        assert load["num_reqs"] == 0 and load["num_tokens"] == 0
        # a request for the dead prefill server fails at bootstrap, quickly and clearly
        body["bootstrap_room"] = room + 1
        t0 = time.time()
        r = requests.post(c.decode.base + "/generate", json=body, timeout=60)
        assert r.status_code == 500 and time.time() - t0 < 10
        assert "route" in r.json()["error"]["message"] or "prefill" in r.json()["error"]["message"]
        assert wait_idle(c.decode)["num_tokens"] == 0
    finally:
        c.stop()


@pytest.fixture(scope="module")
def expected(sglc_bin, default_model):
    s = Server(sglc_bin, default_model, api_key=None).wait_ready()
    try:
        out = {}
        for p in SEEDS:
            r = requests.post(s.base + "/generate", json={
                "text": p, "sampling_params": {"max_new_tokens": 6, "temperature": 0}},
                timeout=60)
            out[p] = r.json()["output_ids"]
        return out
    finally:
        assert s.stop() == 0


def test_injected_transfer_failures(sglc_bin, default_model, expected):
    c = Cluster(sglc_bin, default_model, prefill_env={"DISAGGREGATION_TEST_FAILURE_PROB": "0.05"},
                extra=["--enable-metrics"])
    try:
        prompts = [SEEDS[i % len(SEEDS)] for i in range(200)]

        def one(p):
            r = c.lb.post("/generate", json={
                "text": p, "sampling_params": {"max_new_tokens": 6, "temperature": 0}},
                timeout=60)
            return p, r.status_code, r.json()

        with cf.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, prompts))
        failed = [(s, b) for p, s, b in results if s != 200]
        for p, s, b in results:
            if s == 200:
                assert b["output_ids"] == expected[p], p
        assert 1 <= len(failed) <= 40, len(failed)
        for s, b in failed:
            assert s >= 500, (s, b)
            msg = b["error"]["message"]
            assert "injected failure" in msg or "KV transfer failed" in msg, msg
        assert c.lb.get("/health_generate").status_code == 200
        assert used_tokens_after_flush(c.prefill) == 0
        load = wait_idle(c.decode)
        assert load["num_reqs"] == 0 and load["num_tokens"] == 0
        metrics = requests.get(c.prefill.base + "/metrics", timeout=10).text
        line = [x for x in metrics.splitlines()
                if x.startswith("sglang:num_transfer_failed_reqs_total{")][0]
        assert float(line.rsplit(" ", 1)[1]) >= 1
    finally:
        rcs = c.stop()
    assert rcs == {"lb": 0, "decode": 0, "prefill": 0}, rcs
