"""`sglc launch_server` as a process: flags this build cannot honour exit 2 naming the flag,
SIGTERM lets an in-flight request finish and then exits 0, and start-up logs say what runs."""
import json
import signal
import subprocess
import time

import pytest
import requests

from test_server_fixture import Server


@pytest.mark.parametrize("flags,named", [
    (["--tp-size", "2"], "--tp-size 2"),
    (["--device", "npu"], "--device npu"),
    (["--attention-backend", "ascend"], "--attention-backend ascend"),
    (["--kv-cache-dtype", "fp8_e5m2"], "--kv-cache-dtype fp8_e5m2"),
    (["--no-such-flag", "1"], "--no-such-flag"),
    (["--port", "70000"], "--port"),
])
def test_refusals_exit_2(sglc_bin, default_model, flags, named):
    r = subprocess.run([sglc_bin, "launch_server", "--model-path", default_model, *flags],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert named in r.stderr


def test_help(sglc_bin):
    r = subprocess.run([sglc_bin, "launch_server", "--help"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and "--model-path" in r.stdout


def test_sigterm_finishes_in_flight(sglc_bin, default_model):
    srv = Server(sglc_bin, default_model, api_key=None, extra=["--served-model-name", "tiny"])
    try:
        srv.wait_ready()
        logs = srv.logs()
        assert "KV pool" in logs and "ready to roll" in logs
        r = requests.post(srv.base + "/generate", stream=True, timeout=120, json={
            "text": "Hello", "stream": True,
            "sampling_params": {"max_new_tokens": 24, "ignore_eos": True}})
        lines = r.iter_lines()
        first = next(ln for ln in lines if ln)
        assert first.startswith(b"data: ")
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(requests.ConnectionError):  # no new connections
            requests.get(srv.base + "/health", timeout=5)
        rest = [ln for ln in lines if ln]
        assert rest[-1] == b"data: [DONE]"
        last = json.loads(rest[-2][6:])
        assert last["meta_info"]["completion_tokens"] == 24  # finished, not cut off
        assert srv.proc.wait(timeout=60) == 0
    finally:
        srv.stop()
    assert "SIGTERM" in srv.logs()


def test_served_model_name_and_no_key(sglc_bin, default_model):
    srv = Server(sglc_bin, default_model, api_key=None, extra=["--served-model-name", "tiny"])
    try:
        srv.wait_ready()
        models = requests.get(srv.base + "/v1/models").json()
        assert models["data"][0]["id"] == "tiny"
        assert requests.get(srv.base + "/v1/models/tiny").status_code == 200
        assert requests.get(srv.base + "/metrics").status_code == 404  # not enabled
    finally:
        assert srv.stop() == 0


def test_max_queued_requests_503(sglc_bin, default_model):
    srv = Server(sglc_bin, default_model, api_key=None,
                 extra=["--max-running-requests", "1", "--max-queued-requests", "1"])
    try:
        srv.wait_ready()

        def one(i):
            return requests.post(srv.base + "/v1/completions", timeout=120, json={
                "prompt": f"Story {i}:", "max_tokens": 24, "ignore_eos": True})

        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            rs = list(ex.map(one, range(6)))
        codes = sorted(r.status_code for r in rs)
        assert 200 in codes and 503 in codes, codes
        for r in rs:
            if r.status_code == 503:
                assert set(r.json()["error"]) == {"message", "type", "param", "code"}
                assert "overloaded" in r.json()["error"]["message"]
    finally:
        assert srv.stop() == 0


def test_skip_tokenizer_init(sglc_bin, default_model):
    srv = Server(sglc_bin, default_model, api_key=None, extra=["--skip-tokenizer-init"])
    try:
        srv.wait_ready()
        r = requests.post(srv.base + "/generate", timeout=60, json={
            "input_ids": [504, 3575, 282, 4649, 314],
            "sampling_params": {"max_new_tokens": 3, "temperature": 0}})
        assert r.status_code == 200, r.text
        assert "text" not in r.json() and len(r.json()["output_ids"]) == 3
        for path, body in [("/generate", {"text": "hi"}),
                           ("/v1/chat/completions", {"messages": [{"role": "user",
                                                                   "content": "hi"}]})]:
            r = requests.post(srv.base + path, json=body, timeout=60)
            assert r.status_code == 400 and "skip-tokenizer-init" in r.json()["error"]["message"]
    finally:
        assert srv.stop() == 0
