"""SGLang's per-batch log lines at info level: "Prefill batch. ..." for every prefill batch and
"Decode batch. ..." every --decode-log-interval decode passes; --log-level warning hides them."""
import re

import requests

from test_server_fixture import Server


def run_one(sglc_bin, default_model, extra):
    s = Server(sglc_bin, default_model, extra=extra, api_key=None).wait_ready()
    try:
        r = requests.post(s.base + "/generate", json={
            "text": "The capital of France is",
            "sampling_params": {"max_new_tokens": 9, "temperature": 0, "ignore_eos": True}},
            timeout=60)
        assert r.status_code == 200
    finally:
        assert s.stop() == 0
    return s.logs()


def test_batch_lines(sglc_bin, default_model):
    log = run_one(sglc_bin, default_model, ["--decode-log-interval", "2"])
    pre = re.findall(r"Prefill batch\. #new-seq: (\d+), #new-token: (\d+), #cached-token: (\d+), "
                     r"token usage: [0-9.]+, #running-req: \d+, #queue-req: \d+", log)
    assert ("1", "5", "0") in pre, log[-3000:]  # the request's 5 prompt tokens
    dec = re.findall(r"Decode batch\. #running-req: 1, #token: \d+, token usage: [0-9.]+, "
                     r"gen throughput \(token/s\): [0-9.]+, #queue-req: 0", log)
    assert len(dec) == 4, log[-3000:]  # 8 decode passes after the first token, every 2nd


def test_warning_level_hides_them(sglc_bin, default_model):
    log = run_one(sglc_bin, default_model, ["--log-level", "warning"])
    assert "Prefill batch" not in log and "Decode batch" not in log


def test_warmup_runs_unless_skipped(sglc_bin, default_model):
    log = run_one(sglc_bin, default_model, [])
    assert "warm-up request done" in log
    assert log.index("warm-up request done") < log.index("fired up and ready")
    log = run_one(sglc_bin, default_model, ["--skip-server-warmup"])
    assert "warm-up request done" not in log


def test_watchdog_ends_a_stuck_server(sglc_bin, default_model):
    # one 4,096-token prefill batch takes seconds on a CPU: past a 1 s watchdog
    s = Server(sglc_bin, default_model, api_key=None,
               extra=["--watchdog-timeout", "1", "--chunked-prefill-size", "4096"]).wait_ready()
    try:
        ids = [(i * 7919) % 40000 + 100 for i in range(4096)]
        try:
            requests.post(s.base + "/generate", json={
                "input_ids": ids, "sampling_params": {"max_new_tokens": 1}}, timeout=120)
        except requests.exceptions.ConnectionError:
            pass
        rc = s.proc.wait(timeout=60)
    finally:
        s.stop()
    assert rc == 1
    assert "watchdog: one batch has run for" in s.logs()
