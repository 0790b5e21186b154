"""Bad input and unruly clients: malformed requests each get the right 4xx in OpenAI's error
shape ({"error": {"message", "type", "param", "code"}}), clients that disconnect mid-stream
have their requests aborted, and afterwards the server still answers and its KV usage is back
to baseline. Ends with a load test: 500 short requests at concurrency 64, none failing."""
import concurrent.futures
import json
import socket
import time

import pytest
import requests

from test_server_fixture import idle, server  # noqa: F401  (fixture)

MSG = [{"role": "user", "content": "Hi"}]
C, CH, G = "/v1/completions", "/v1/chat/completions", "/generate"


def comp(**kw):
    return {"model": "m", "prompt": "Hello", "max_tokens": 2, **kw}


def chat(**kw):
    return {"model": "m", "messages": MSG, "max_tokens": 2, **kw}


def gen(**kw):
    return {"text": "Hello", "sampling_params": {"max_new_tokens": 2}, **kw}


def gsp(**sp):
    return {"text": "Hello", "sampling_params": {"max_new_tokens": 2, **sp}}


# (path, body: dict -> JSON, bytes -> raw; expected status; expected param or None)
CASES = [
    # broken JSON and wrong top-level types
    (C, b"{", 400, None),
    (C, b'{"prompt": "x",}', 400, None),
    (C, b"[1, 2]", 400, None),
    (C, b"", 400, None),
    (C, b'"just a string"', 400, None),
    (CH, b"{'single': 'quotes'}", 400, None),
    (G, b"\xff\xfe{}", 400, None),
    (C, b'{"prompt": "\xc3\x28"}', 400, None),  # invalid UTF-8 inside a string
    (G, b'{"text": "ok \xed\xa0\x80"}', 400, None),  # a UTF-16 surrogate in UTF-8
    # completions: missing or mistyped fields
    (C, {"model": "m"}, 400, "prompt"),
    (C, comp(prompt=[]), 400, "prompt"),
    (C, comp(prompt=5), 400, "prompt"),
    (C, comp(prompt=[["a"]]), 400, "prompt"),
    (C, comp(prompt=[1, -3]), 400, "prompt"),
    (C, comp(prompt=[1, 10 ** 9]), 400, "prompt"),
    (C, comp(prompt=[1, 2.5]), 400, "prompt"),
    (C, comp(max_tokens=-1), 400, "max_tokens"),
    (C, comp(max_tokens="ten"), 400, "max_tokens"),
    (C, comp(max_tokens=1.5), 400, "max_tokens"),
    (C, comp(n=0), 400, "n"),
    (C, comp(n=100000), 400, "n"),
    (C, comp(temperature=-0.5), 400, "temperature"),
    (C, comp(temperature="hot"), 400, "temperature"),
    (C, comp(top_p=0), 400, "top_p"),
    (C, comp(top_p=1.5), 400, "top_p"),
    (C, comp(top_k=0), 400, "top_k"),
    (C, comp(min_p=2), 400, "min_p"),
    (C, comp(frequency_penalty=2.5), 400, "frequency_penalty"),
    (C, comp(presence_penalty=-3), 400, "presence_penalty"),
    (C, comp(repetition_penalty=0), 400, "repetition_penalty"),
    (C, comp(logprobs=-1), 400, "logprobs"),
    (C, comp(logprobs=100), 400, "logprobs"),
    (C, comp(echo="yes"), 400, "echo"),
    (C, comp(stream=1), 400, "stream"),
    (C, comp(stop=5), 400, "stop"),
    (C, comp(stop=["ok", 3]), 400, "stop"),
    (C, comp(stop=[""]), 400, "stop"),
    (C, comp(stop=["x"] * 100), 400, "stop"),
    (C, comp(seed="abc"), 400, "seed"),
    (C, comp(logit_bias={"abc": 1}), 400, "logit_bias"),
    (C, comp(logit_bias={"5": 500}), 400, "logit_bias"),
    (C, comp(logit_bias=[1]), 400, "logit_bias"),
    (C, comp(stop_token_ids=[-1]), 400, "stop_token_ids"),
    (C, comp(stream_options={"include_usage": True}), 400, "stream_options"),  # without stream
    (C, comp(stream=True, stream_options={"include_usage": "yes"}), 400, "include_usage"),
    (C, comp(best_of=3), 400, "best_of"),
    (C, comp(suffix="tail"), 400, "suffix"),
    (C, comp(min_tokens=5, max_tokens=2), 400, "min_tokens"),
    (C, comp(regex="[a-z]+"), 400, "regex"),
    (C, comp(ebnf="root ::= 'a'"), 400, "ebnf"),
    (C, comp(json_schema="{}"), 400, "json_schema"),
    (C, comp(lora_path="x"), 400, "lora_path"),
    (C, comp(max_tokens=10 ** 6), 400, None),  # beyond the context length
    # chat
    (CH, {"model": "m"}, 400, "messages"),
    (CH, chat(messages=[]), 400, "messages"),
    (CH, chat(messages="hi"), 400, "messages"),
    (CH, chat(messages=[{"content": "no role"}]), 400, "messages"),
    (CH, chat(messages=[{"role": "wizard", "content": "x"}]), 400, "messages"),
    (CH, chat(messages=[{"role": "user", "content": 5}]), 400, "messages"),
    (CH, chat(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x"}}]}]), 400, "messages"),
    (CH, chat(logprobs="true"), 400, "logprobs"),
    (CH, chat(top_logprobs=3), 400, "top_logprobs"),  # without logprobs
    (CH, chat(logprobs=True, top_logprobs=50), 400, "top_logprobs"),
    (CH, chat(max_completion_tokens=-2), 400, "max_completion_tokens"),
    (CH, chat(max_tokens=3, max_completion_tokens=4), 400, "max_completion_tokens"),
    (CH, chat(response_format={"type": "json_object"}), 400, "response_format"),
    (CH, chat(response_format={"type": "json_schema", "json_schema": {"name": "x"}}), 400,
     "response_format"),
    (CH, chat(response_format="json"), 400, "response_format"),
    (CH, chat(tools={"type": "function"}), 400, "tools"),
    (CH, chat(tools=[{"type": "function"}]), 400, "tools"),
    (CH, chat(tool_choice="required", tools=[{"type": "function", "function": {"name": "f"}}]),
     400, "tool_choice"),
    (CH, chat(continue_final_message=True), 400, "continue_final_message"),  # last is user
    (CH, chat(continue_final_message=True, add_generation_prompt=True), 400,
     "continue_final_message"),
    (CH, chat(chat_template_kwargs=[1]), 400, "chat_template_kwargs"),
    # native /generate
    (G, {}, 400, None),
    (G, {"text": "a", "input_ids": [1]}, 400, None),
    (G, {"text": 5}, 400, "text"),
    (G, {"text": []}, 400, "text"),
    (G, {"text": ""}, 400, "text"),
    (G, {"input_ids": [[1], "x"]}, 400, "input_ids"),
    (G, {"input_ids": [-5]}, 400, "input_ids"),
    (G, {"input_ids": []}, 400, None),
    (G, gen(sampling_params=[{"max_new_tokens": 2}]), 400, "sampling_params"),
    (G, gsp(max_new_tokens=-1), 400, "max_new_tokens"),
    (G, gsp(temperature=-1), 400, "temperature"),
    (G, gsp(n=1000), 400, "n"),
    (G, gsp(unknown_knob=1), 400, "unknown_knob"),
    (G, gsp(regex="a+"), 400, "regex"),
    (G, gsp(json_schema="{}"), 400, "json_schema"),
    (G, gsp(min_new_tokens=9, max_new_tokens=2), 400, "min_new_tokens"),
    (G, gsp(stop=[7]), 400, "stop"),
    (G, gen(return_logprob="yes"), 400, "return_logprob"),
    (G, gen(top_logprobs_num=-1), 400, "top_logprobs_num"),
    (G, gen(return_logprob=True, logprob_start_len=1000), 400, None),
    (G, gen(rid=5), 400, "rid"),
    (G, gen(stream="no"), 400, "stream"),
    # other routes
    ("/tokenize", {}, 400, "prompt"),
    ("/tokenize", {"prompt": 3}, 400, "prompt"),
    ("/detokenize", {"tokens": "abc"}, 400, "tokens"),
    ("/detokenize", {"tokens": [10 ** 8]}, 400, "tokens"),
    ("/abort_request", {}, 400, "rid"),
]


def check_error(r, status, param):
    assert r.status_code == status, (r.status_code, r.text)
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"]
    if param is not None:
        assert err["param"] == param, err


@pytest.mark.parametrize("path,body,status,param", CASES)
def test_malformed(server, path, body, status, param):
    assert len(CASES) >= 50
    if isinstance(body, bytes):
        r = requests.post(server.base + path, data=body, timeout=60,
                          headers={**server.headers(), "Content-Type": "application/json"})
    else:
        r = server.post(path, json=body)
    check_error(r, status, param)


def test_http_level_errors(server):
    check_error(server.get("/no/such/route"), 404, None)
    check_error(server.get("/v1/completions"), 405, None)
    big = b'{"prompt": "' + b"a" * (33 << 20) + b'"}'
    try:
        r = requests.post(server.base + C, data=big, headers=server.headers(), timeout=60)
        check_error(r, 413, None)
    except requests.ConnectionError:
        pass  # the server may close before reading the whole body; it must stay up
    assert requests.get(server.base + "/health").status_code == 200


def stream_then_drop(server, path, body, chunks=2):
    """Reads a few SSE chunks, then closes the socket without reading further."""
    payload = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
              % (path.encode(), server.api_key.encode(), len(payload)) + payload)
    got = b""
    while got.count(b"data: ") < chunks:
        part = s.recv(65536)
        if not part:
            break
        got += part
    s.close()
    return got


def test_disconnect_mid_stream(server):
    idle(server)
    server.post("/flush_cache")
    base_tokens = server.get("/get_load").json()[0]["num_tokens"]
    metrics = requests.get(server.base + "/metrics").text
    aborted0 = float([ln for ln in metrics.splitlines()
                      if ln.startswith("sglang:num_aborted_requests_total")][0].split()[-1])
    for path, body in [
        (C, comp(max_tokens=2000, stream=True, ignore_eos=True)),
        (CH, chat(max_tokens=2000, stream=True, n=2, ignore_eos=True)),
        (G, {"text": "Hello", "stream": True,
             "sampling_params": {"max_new_tokens": 2000, "ignore_eos": True}}),
    ]:
        got = stream_then_drop(server, path, body)
        assert b"200 OK" in got.split(b"\r\n")[0]
    load = idle(server, timeout=90)
    assert load["num_reqs"] == 0, "disconnected requests must be aborted, not run to the end"
    metrics = requests.get(server.base + "/metrics").text
    aborted = float([ln for ln in metrics.splitlines()
                     if ln.startswith("sglang:num_aborted_requests_total")][0].split()[-1])
    assert aborted >= aborted0 + 4
    assert server.post("/flush_cache").status_code == 200
    assert server.get("/get_load").json()[0]["num_tokens"] == base_tokens == 0
    r = server.post(G, json=gen())
    assert r.status_code == 200


def test_abort_request_by_rid(server):
    def run():
        return server.post(G, json={"text": "Hello", "rid": "abort-me", "sampling_params": {
            "max_new_tokens": 3000, "ignore_eos": True}}).json()

    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(run)
        time.sleep(1.0)
        assert server.post("/abort_request", json={"rid": "abort-me"}).status_code == 200
        out = fut.result(timeout=60)
    assert out["meta_info"]["finish_reason"]["type"] == "abort"
    assert out["meta_info"]["completion_tokens"] < 3000


def test_load_500_requests(server):
    idle(server)
    server.post("/flush_cache")

    def one(i):
        if i % 3 == 0:
            r = server.post(C, json=comp(prompt=f"Request {i}: count to ten.", max_tokens=4))
            return r.status_code, r.json()["usage"]["completion_tokens"] if r.ok else r.text
        if i % 3 == 1:
            r = server.post(CH, json=chat(messages=[{"role": "user", "content": f"Say {i}"}],
                                          max_tokens=4, stream=(i % 2 == 0)))
            return r.status_code, 1 if r.ok else r.text
        r = server.post(G, json={"text": f"Number {i} is", "sampling_params": {
            "max_new_tokens": 4, "temperature": 0}})
        return r.status_code, r.json()["meta_info"]["completion_tokens"] if r.ok else r.text

    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(64) as ex:
        results = list(ex.map(one, range(500)))
    bad = [r for r in results if r[0] != 200]
    assert not bad, bad[:5]
    print(f"500 requests at concurrency 64 in {time.time() - t0:.1f} s")
    load = idle(server)
    assert load["num_reqs"] == 0
    assert server.post("/flush_cache").status_code == 200
    assert server.get("/get_load").json()[0]["num_tokens"] == 0
