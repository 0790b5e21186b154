"""`sglc bench_serving` against the live test server: each backend kind (native, OpenAI
completions, OpenAI chat) and both datasets finish every request and print SGLang's table; the
JSONL output holds the same figures."""
import json
import os
import subprocess

import pytest

from test_server_fixture import server  # noqa: F401  (fixture)


@pytest.mark.parametrize("backend,dataset", [
    ("sglang", "random-ids"),
    ("sglang-oai", "random-ids"),
    ("sglang-oai-chat", "generated-shared-prefix"),
])
def test_bench_serving(sglc_bin, default_model, server, tmp_path, backend, dataset):
    out = tmp_path / "bench.jsonl"
    args = [sglc_bin, "bench_serving", "--backend", backend, "--base-url", server.base,
            "--dataset-name", dataset, "--random-input-len", "32", "--random-output-len", "4",
            "--random-range-ratio", "1", "--num-prompts", "6", "--max-concurrency", "3",
            "--gsp-num-groups", "2", "--gsp-prompts-per-group", "2",
            "--gsp-system-prompt-len", "48", "--gsp-question-len", "8", "--gsp-output-len", "4",
            "--output-file", str(out), "--flush-cache"]
    if backend.endswith("chat"):
        args += ["--tokenizer", default_model, "--request-rate", "20"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OPENAI_API_KEY": server.api_key})
    assert r.returncode == 0, r.stdout + r.stderr
    for line in ("Serving Benchmark Result", "Output token throughput (tok/s):",
                 "Median TTFT (ms):", "P99 ITL (ms):", "Median E2E Latency (ms):"):
        assert line in r.stdout
    res = json.loads(out.read_text().splitlines()[-1])
    n = 6 if dataset == "random-ids" else 4
    assert res["completed"] == n and res["total_output_tokens"] == 4 * n
    assert res["backend"] == backend and res["median_ttft_ms"] > 0


def test_bench_serving_refusals(sglc_bin):
    r = subprocess.run([sglc_bin, "bench_serving", "--dataset-name", "sharegpt"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--dataset-name sharegpt" in r.stderr
    r = subprocess.run([sglc_bin, "bench_serving", "--backend", "tgi"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "--backend tgi" in r.stderr
