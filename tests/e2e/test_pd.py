"""PD disaggregation end to end on one machine, as the seed deploys it: a prefill server, a
decode server and `sglc launch_lb` (which finds the bootstrap port itself), compared with one
colocated server on the same model. Greedy outputs must be identical; logprob counts, cached
tokens, streaming and the OpenAI routes must look as they do colocated; nothing may leak."""
import concurrent.futures as cf
import json

import pytest
import requests

from pd_cluster import Cluster, used_tokens_after_flush, wait_idle
from test_server_fixture import Server

SEEDS = ["The capital of France is", "Once upon a time, there was a", "def fibonacci(n):",
         "The three primary colors are", "In 1969, the first humans", "A haiku about the sea:",
         "The best way to learn a language is", "Water boils at", "My favourite animal is the",
         "Here is a list of fruits: apple,"]
PROMPTS = [f"{SEEDS[i % len(SEEDS)]}" + (f" (variant {i // len(SEEDS)})" if i >= 10 else "")
           for i in range(50)]


@pytest.fixture(scope="module")
def cluster(sglc_bin, default_model):
    c = Cluster(sglc_bin, default_model, extra=["--enable-metrics"])
    yield c
    rcs = c.stop()
    assert rcs == {"lb": 0, "decode": 0, "prefill": 0}, (rcs, c.prefill.logs()[-3000:],
                                                         c.decode.logs()[-3000:])


@pytest.fixture(scope="module")
def colocated(sglc_bin, default_model):
    s = Server(sglc_bin, default_model, api_key=None).wait_ready()
    yield s
    assert s.stop() == 0


def generate(base, prompt, n=12, **extra):
    body = {"text": prompt, "sampling_params": {"temperature": 0, "max_new_tokens": n}, **extra}
    r = requests.post(base + "/generate", json=body, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def test_fifty_prompts_greedy_identical(cluster, colocated):
    with cf.ThreadPoolExecutor(8) as pool:
        pd = list(pool.map(lambda p: generate(cluster.lb.base, p), PROMPTS))
    alone = [generate(colocated.base, p) for p in PROMPTS]
    for p, a, b in zip(PROMPTS, pd, alone):
        assert a["output_ids"] == b["output_ids"], p
        assert a["text"] == b["text"]
        assert a["meta_info"]["prompt_tokens"] == b["meta_info"]["prompt_tokens"]
        assert a["meta_info"]["finish_reason"] == b["meta_info"]["finish_reason"]


def test_logprob_counts(cluster, colocated):
    for stream in (False, True):
        body = {"text": SEEDS[1], "sampling_params": {"temperature": 0, "max_new_tokens": 9},
                "return_logprob": True, "logprob_start_len": 0, "stream": stream}
        r = cluster.lb.post("/generate", json=body, stream=stream)
        assert r.status_code == 200, r.text
        if stream:
            events = [json.loads(line[6:]) for line in r.iter_lines(decode_unicode=True)
                      if line.startswith("data: ") and line != "data: [DONE]"]
            out = events[-1]
        else:
            out = r.json()
        meta = out["meta_info"]
        assert len(meta["input_token_logprobs"]) == meta["prompt_tokens"]
        assert meta["input_token_logprobs"][0][0] is None
        assert len(meta["output_token_logprobs"]) == meta["completion_tokens"] == 9
        ref = generate(colocated.base, SEEDS[1], 9, return_logprob=True, logprob_start_len=0)
        for (a, ta, _), (b, tb, _) in zip(meta["output_token_logprobs"],
                                          ref["meta_info"]["output_token_logprobs"]):
            assert ta == tb and abs(a - b) < 1e-3
        for (a, ta, _), (b, tb, _) in zip(meta["input_token_logprobs"][1:],
                                          ref["meta_info"]["input_token_logprobs"][1:]):
            assert ta == tb and abs(a - b) < 1e-3


def test_prompt_twice_reports_cached_tokens(cluster):
    prompt = "Tell me a long story about a dragon who lived under a mountain. " * 4
    first = generate(cluster.lb.base, prompt, 4)
    second = generate(cluster.lb.base, prompt, 4)
    assert first["meta_info"]["cached_tokens"] == 0
    assert second["meta_info"]["cached_tokens"] > 0.8 * second["meta_info"]["prompt_tokens"]
    assert first["output_ids"] == second["output_ids"]


@pytest.mark.parametrize("stream", [False, True])
def test_openai_routes(cluster, colocated, stream):
    openai = pytest.importorskip("openai")
    via = openai.Client(base_url=cluster.lb.base + "/v1", api_key="x", max_retries=0)
    ref = openai.Client(base_url=colocated.base + "/v1", api_key="x", max_retries=0)

    def chat(client):
        r = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi!"}],
                                           max_tokens=10, temperature=0, stream=stream)
        if not stream:
            return r.choices[0].message.content, r.choices[0].finish_reason
        text, finish, roles = "", None, 0
        for ch in r:
            d = ch.choices[0].delta
            roles += d.role == "assistant"
            text += d.content or ""
            finish = ch.choices[0].finish_reason or finish
        assert roles == 1
        return text, finish

    def completion(client):
        r = client.completions.create(model="m", prompt=SEEDS[2], max_tokens=10, temperature=0,
                                      stream=stream)
        if not stream:
            return r.choices[0].text, r.choices[0].finish_reason
        parts = list(r)
        return "".join(p.choices[0].text for p in parts), parts[-1].choices[0].finish_reason

    assert chat(via) == chat(ref)
    assert completion(via) == completion(ref)


def test_server_info_and_fan_out(cluster):
    info = requests.get(cluster.prefill.base + "/get_server_info", timeout=10).json()
    assert info["disaggregation_mode"] == "prefill"
    assert info["disaggregation_bootstrap_port"] == cluster.bootstrap_port
    assert requests.get(cluster.decode.base + "/get_server_info",
                        timeout=10).json()["disaggregation_mode"] == "decode"
    agg = cluster.lb.get("/get_server_info").json()
    assert agg["prefill"][0]["disaggregation_mode"] == "prefill"
    assert agg["decode"][0]["disaggregation_mode"] == "decode"
    assert cluster.lb.get("/health_generate").status_code == 200
    assert cluster.lb.get("/health").status_code == 200
    assert cluster.lb.get("/v1/models").json()["data"][0]["id"]
    boot = requests.get(f"http://127.0.0.1:{cluster.bootstrap_port}/health", timeout=10)
    assert boot.status_code == 200 and boot.text == "OK"
    route = requests.get(f"http://127.0.0.1:{cluster.bootstrap_port}/route", params={
        "engine_rank": -1, "target_dp_group": -1, "target_pp_rank": -1}, timeout=10).json()
    assert route == {"prefill_attn_tp_size": 1, "prefill_dp_size": 1, "prefill_pp_size": 1}


def test_requests_without_a_room_are_refused(cluster):
    for srv in (cluster.prefill, cluster.decode):
        r = requests.post(srv.base + "/generate", json={"text": "hi"}, timeout=30)
        assert r.status_code == 400
        assert "bootstrap" in r.json()["error"]["message"]


def metric(server, name):
    text = requests.get(server.base + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(f"sglang:{name}{{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_metrics_and_no_leak(cluster):
    wait_idle(cluster.prefill)
    assert metric(cluster.prefill, "num_kv_transfers_total") >= 50
    assert metric(cluster.prefill, "kv_transfer_speed_gb_s") > 0
    assert metric(cluster.prefill, "num_prefill_inflight_queue_reqs") == 0
    assert metric(cluster.prefill, "num_transfer_failed_reqs_total") == 0
    assert metric(cluster.decode, "num_decode_transfer_queue_reqs") == 0
    assert metric(cluster.decode, "num_decode_prealloc_queue_reqs") == 0
    assert used_tokens_after_flush(cluster.prefill) == 0
    load = wait_idle(cluster.decode)
    assert load["num_reqs"] == 0 and load["num_tokens"] == 0


def test_fake_transfer_backend(sglc_bin, default_model, colocated):
    # SGLang's `fake` backend moves no KV: the decode server computes the prompt itself and the
    # prefill server's answer is the first token only
    c = Cluster(sglc_bin, default_model, extra=["--disaggregation-transfer-backend", "fake"])
    try:
        for p in SEEDS[:3]:
            assert generate(c.lb.base, p)["output_ids"] == generate(colocated.base, p)["output_ids"]
        assert "transfer backend fake" in c.prefill.logs()
        assert wait_idle(c.decode)["num_tokens"] == 0
    finally:
        rcs = c.stop()
    assert rcs == {"lb": 0, "decode": 0, "prefill": 0}, rcs
