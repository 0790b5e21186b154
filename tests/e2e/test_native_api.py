"""SGLang's native API (test/srt/test_srt_endpoint.py's checks): /generate with a batch, n>1
streamed, logprob_start_len, cached_tokens, and the info routes (/get_server_info keys,
/get_model_info, /get_load, /flush_cache, /tokenize, /detokenize, /metrics)."""
import json

import requests

from test_server_fixture import idle, server  # noqa: F401  (fixture)

TEXT = "The capital of France is"


def generate(server, **body):
    r = server.post("/generate", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_generate_single(server):
    r = generate(server, text=TEXT, sampling_params={"max_new_tokens": 6, "temperature": 0})
    assert isinstance(r["text"], str) and len(r["output_ids"]) == 6
    m = r["meta_info"]
    assert m["finish_reason"] == {"type": "length", "length": 6}
    assert m["completion_tokens"] == 6 and m["prompt_tokens"] > 0
    assert {"id", "cached_tokens", "e2e_latency", "weight_version"} <= set(m)


def test_generate_batch(server):
    r = generate(server, text=[TEXT, "Once upon a time"],
                 sampling_params={"max_new_tokens": 4, "temperature": 0})
    assert isinstance(r, list) and len(r) == 2
    single = generate(server, text="Once upon a time",
                      sampling_params={"max_new_tokens": 4, "temperature": 0})
    assert r[1]["text"] == single["text"]
    ids = requests.post(server.base + "/tokenize", headers=server.headers(),
                        json={"prompt": TEXT}).json()["tokens"]
    r2 = generate(server, input_ids=[ids, ids], sampling_params={"max_new_tokens": 4,
                                                                 "temperature": 0})
    assert r2[0]["text"] == r2[1]["text"] == r[0]["text"]


def test_generate_n_streamed(server):
    n = 3
    r = server.post("/generate", stream=True, json={
        "text": TEXT, "stream": True,
        "sampling_params": {"max_new_tokens": 5, "temperature": 0.9, "n": n, "ignore_eos": True}})
    assert r.status_code == 200
    texts, ids, done = {}, {}, set()
    lines = [ln for ln in r.iter_lines() if ln]
    assert lines[-1] == b"data: [DONE]"
    for ln in lines[:-1]:
        obj = json.loads(ln[6:])
        i = obj["index"]
        assert i not in done
        assert obj["text"].startswith(texts.get(i, ""))  # text is cumulative
        texts[i] = obj["text"]
        ids.setdefault(i, []).extend(obj["output_ids"])  # output_ids are new ids only
        if obj["meta_info"]["finish_reason"] is not None:
            done.add(i)
            assert obj["meta_info"]["completion_tokens"] == len(ids[i])
    assert done == set(range(n))
    assert all(len(v) == 5 for v in ids.values())


def test_logprob_start_len(server):
    for start in (0, 2):
        r = generate(server, text=TEXT, return_logprob=True, logprob_start_len=start,
                     top_logprobs_num=2, return_text_in_logprobs=True,
                     sampling_params={"max_new_tokens": 3, "temperature": 0})
        m = r["meta_info"]
        assert len(m["input_token_logprobs"]) == m["prompt_tokens"] - start
        assert len(m["output_token_logprobs"]) == m["completion_tokens"] == 3
        assert len(m["output_top_logprobs"]) == 3
        assert all(len(t) == 2 for t in m["output_top_logprobs"])
        lp, tid, text = m["output_token_logprobs"][0]
        assert isinstance(lp, float) and lp <= 0 and tid == r["output_ids"][0]
        assert isinstance(text, str)
        if start == 0:
            assert m["input_token_logprobs"][0][0] is None
        assert all(t[0] is not None for t in m["input_token_logprobs"][1:])
    # greedy: the chosen token is the top-1 alternative
    assert m["output_top_logprobs"][0][0][1] == r["output_ids"][0]


def test_cached_tokens(server):
    text = "Tell me a long story about a dragon and a knight who became friends. " * 3
    generate(server, text=text, sampling_params={"max_new_tokens": 2})
    r = generate(server, text=text, sampling_params={"max_new_tokens": 2})
    m = r["meta_info"]
    assert m["cached_tokens"] >= m["prompt_tokens"] - 2 > 0


def test_server_info(server):
    info = server.get("/get_server_info").json()
    for key in ("model_path", "tokenizer_path", "host", "port", "tp_size", "dp_size",
                "max_total_num_tokens", "max_prefill_tokens", "chunked_prefill_size",
                "page_size", "random_seed", "internal_states", "version"):
        assert key in info, key
    assert info["port"] == server.port
    assert info["max_total_num_tokens"] == 32768
    assert "last_gen_throughput" in info["internal_states"][0]
    mi = server.get("/get_model_info").json()
    assert mi["is_generation"] is True and mi["model_path"] == info["model_path"]
    load = server.get("/get_load").json()
    assert isinstance(load, list) and {"num_reqs", "num_waiting_reqs", "num_tokens"} <= set(load[0])


def test_tokenize_detokenize(server):
    t = server.post("/tokenize", json={"prompt": "Hello world"}).json()
    assert t["count"] == len(t["tokens"]) > 0 and t["max_model_len"] > 0
    d = server.post("/detokenize", json={"tokens": t["tokens"]}).json()
    assert d["prompt"] == "Hello world"


def test_flush_cache_and_usage_baseline(server):
    idle(server)
    r = server.post("/flush_cache")
    assert r.status_code == 200 and r.text.startswith("Cache flushed")
    assert server.get("/get_load").json()[0]["num_tokens"] == 0


def test_metrics(server):
    generate(server, text=TEXT, sampling_params={"max_new_tokens": 2})
    text = requests.get(server.base + "/metrics").text
    for name in ("sglang:num_running_reqs", "sglang:num_used_tokens", "sglang:token_usage",
                 "sglang:gen_throughput", "sglang:num_queue_reqs", "sglang:cache_hit_rate",
                 "sglang:prompt_tokens_total", "sglang:generation_tokens_total",
                 "sglang:cached_tokens_total", "sglang:num_requests_total",
                 "sglang:num_aborted_requests_total",
                 "sglang:time_to_first_token_seconds_bucket",
                 "sglang:inter_token_latency_seconds_sum",
                 "sglang:e2e_request_latency_seconds_count"):
        assert name in text, name
    assert "# TYPE sglang:time_to_first_token_seconds histogram" in text
    count = [ln for ln in text.splitlines()
             if ln.startswith("sglang:e2e_request_latency_seconds_count")][0]
    assert float(count.split()[-1]) >= 1


def test_health_generate(server):
    assert requests.get(server.base + "/health_generate").status_code == 200
