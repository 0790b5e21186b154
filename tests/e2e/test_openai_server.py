"""The OpenAI-compatible API through the official `openai` SDK, following SGLang's own checklist
(test/srt/openai_server/basic/test_openai_server.py): completions with echo, logprobs, list
prompts, n>1 and token-id prompts; streaming with usage; chat with the role in the first delta
and one finish chunk per choice; top_logprobs; stop; penalties; seed reproducibility;
/v1/models; 401 with --api-key."""
import json

import pytest
import requests

from test_server_fixture import client, server  # noqa: F401  (fixtures)

openai = pytest.importorskip("openai")

PROMPT = "The capital of France is"


def prompt_ids(server, text):
    r = server.post("/tokenize", json={"prompt": text})
    assert r.status_code == 200, r.text
    return r.json()["tokens"]


@pytest.mark.parametrize("echo,logprobs,use_list,n,token_input", [
    (False, None, False, 1, False),
    (True, None, False, 1, False),
    (False, 3, False, 1, False),
    (True, 3, False, 1, False),
    (False, None, True, 2, False),
    (True, 2, True, 1, True),
    (False, 2, False, 2, True),
    (True, None, True, 2, True),
])
def test_completion(server, client, echo, logprobs, use_list, n, token_input):
    prompts = [PROMPT, "Once upon a time"] if use_list else [PROMPT]
    arg = [prompt_ids(server, p) for p in prompts] if token_input else prompts
    if not use_list:
        arg = arg[0]
    r = client.completions.create(model="m", prompt=arg, max_tokens=4, temperature=0, echo=echo,
                                  logprobs=logprobs, n=n)
    assert r.id.startswith("cmpl-") and r.object == "text_completion"
    assert len(r.choices) == len(prompts) * n
    assert [c.index for c in r.choices] == list(range(len(prompts) * n))
    for i, c in enumerate(r.choices):
        src = prompts[i // n]
        if echo:
            assert c.text.startswith(src), (c.text, src)
        else:
            assert not c.text.startswith(src)
        assert c.finish_reason in ("length", "stop")
        if logprobs:
            lp = c.logprobs
            assert isinstance(lp.tokens[0], str)
            assert isinstance(lp.top_logprobs[1], dict)
            assert 0 < len(lp.top_logprobs[1]) <= logprobs
            assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.text_offset)
            if echo:
                assert lp.token_logprobs[0] is None  # the first prompt token has none
                assert "".join(lp.tokens).startswith(src)
            else:
                assert lp.token_logprobs[0] is not None
                assert len(lp.tokens) == 4 or c.finish_reason == "stop"
        else:
            assert c.logprobs is None
    u = r.usage
    assert u.prompt_tokens == sum(len(prompt_ids(server, p)) for p in prompts)
    n_length = sum(c.finish_reason == "length" for c in r.choices)
    assert 4 * n_length <= u.completion_tokens <= 4 * len(r.choices)
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens


def test_completion_greedy_matches_generate(server, client):
    r = client.completions.create(model="m", prompt=PROMPT, max_tokens=6, temperature=0)
    g = server.post("/generate", json={"text": PROMPT, "sampling_params": {
        "max_new_tokens": 6, "temperature": 0}}).json()
    assert r.choices[0].text == g["text"]


@pytest.mark.parametrize("echo", [False, True])
def test_completion_stream_usage(client, echo):
    stream = client.completions.create(model="m", prompt=PROMPT, max_tokens=5, temperature=0,
                                       stream=True, echo=echo, n=2,
                                       stream_options={"include_usage": True})
    texts, finishes, usage = {}, {}, None
    for chunk in stream:
        assert chunk.id.startswith("cmpl-")
        if chunk.usage is not None:
            assert chunk.choices == []
            usage = chunk.usage
            continue
        for c in chunk.choices:
            texts[c.index] = texts.get(c.index, "") + c.text
            if c.finish_reason is not None:
                assert c.index not in finishes
                finishes[c.index] = c.finish_reason
    assert sorted(finishes) == [0, 1]
    for i in (0, 1):
        assert texts[i].startswith(PROMPT) == echo
    assert usage is not None and usage.completion_tokens == 10
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    whole = client.completions.create(model="m", prompt=PROMPT, max_tokens=5, temperature=0,
                                      echo=echo)
    assert texts[0] == whole.choices[0].text


MESSAGES = [{"role": "system", "content": "You are a helpful AI assistant"},
            {"role": "user", "content": "What is the capital of France? Answer in one word."}]


def test_chat(client):
    r = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=8, temperature=0,
                                       logprobs=True, top_logprobs=3)
    assert r.id.startswith("chatcmpl-") and r.object == "chat.completion"
    c = r.choices[0]
    assert c.message.role == "assistant" and isinstance(c.message.content, str)
    assert c.message.content
    content = c.logprobs.content
    assert len(content) == r.usage.completion_tokens
    for item in content:
        assert isinstance(item.token, str) and isinstance(item.logprob, float)
        assert isinstance(item.bytes, list)
        assert len(item.top_logprobs) == 3
    assert r.usage.prompt_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_stream(client):
    n = 2
    stream = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=6,
                                            temperature=0.8, n=n, stream=True, logprobs=True,
                                            top_logprobs=2,
                                            stream_options={"include_usage": True})
    first = {}
    finishes = {}
    text = {}
    usage = None
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage = chunk.usage
            assert chunk.choices == []
            continue
        for c in chunk.choices:
            if c.index not in first:
                first[c.index] = c.delta
                assert c.delta.role == "assistant"  # the role comes first
            if c.finish_reason is not None:
                assert c.index not in finishes, "one finish chunk per choice"
                finishes[c.index] = c.finish_reason
            elif c.delta.content:
                assert c.index not in finishes
                text[c.index] = text.get(c.index, "") + c.delta.content
                assert len(c.logprobs.content[0].top_logprobs) == 2
    assert sorted(first) == sorted(finishes) == list(range(n))
    assert usage is not None and usage.completion_tokens > 0


def test_chat_continue_final_message(client):
    msgs = MESSAGES + [{"role": "assistant", "content": "The capital of France is"}]
    r = client.chat.completions.create(model="m", messages=msgs, max_tokens=4, temperature=0,
                                       extra_body={"continue_final_message": True})
    assert r.choices[0].message.content
    assert not r.choices[0].message.content.startswith("The capital")


def test_chat_template_kwargs_and_tools(client):
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    r = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=3, temperature=0,
                                       tools=tools,
                                       extra_body={"chat_template_kwargs": {"x": 1}})
    assert r.usage.prompt_tokens > 0


def test_stop(client):
    base = client.completions.create(model="m", prompt=PROMPT, max_tokens=12, temperature=0)
    text = base.choices[0].text
    assert len(text) > 4
    stop = text[3:6]
    assert stop.strip()
    r = client.completions.create(model="m", prompt=PROMPT, max_tokens=12, temperature=0,
                                  stop=[stop])
    c = r.choices[0]
    assert c.finish_reason == "stop"
    assert stop not in c.text and text.startswith(c.text)
    assert c.model_extra.get("matched_stop") == stop
    # streamed: the stop string never leaks, even partially
    chunks = client.completions.create(model="m", prompt=PROMPT, max_tokens=12, temperature=0,
                                       stop=stop, stream=True)
    assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == c.text


def test_penalties(client):
    for kw in ({"frequency_penalty": 1.5}, {"presence_penalty": -1.0},
               {"extra_body": {"repetition_penalty": 1.3}}):
        r = client.completions.create(model="m", prompt=PROMPT, max_tokens=6, temperature=0, **kw)
        assert r.usage.completion_tokens > 0
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="m", prompt=PROMPT, max_tokens=6, frequency_penalty=3)
    assert e.value.body["param"] == "frequency_penalty"


def test_seed_reproducible(client):
    def sample(seed):
        return [client.completions.create(model="m", prompt="Once upon a time", max_tokens=8,
                                          temperature=1.0, seed=seed).choices[0].text
                for _ in range(2)]
    a = sample(1234)
    assert a[0] == a[1]
    b = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=8,
                                       temperature=1.0, seed=7)
    c = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=8,
                                       temperature=1.0, seed=7)
    assert b.choices[0].message.content == c.choices[0].message.content


def test_models(server, client):
    models = list(client.models.list())
    assert len(models) == 1
    m = models[0]
    assert m.owned_by == "sglang"
    assert isinstance(m.model_extra["max_model_len"], int) and m.model_extra["max_model_len"] > 0
    assert client.models.retrieve(m.id).id == m.id
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("no-such-model")
    assert e.value.body["code"] == "model_not_found"


def test_api_key(server):
    bad = openai.Client(base_url=server.base + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    for path in ("/v1/models", "/get_server_info"):
        r = requests.get(server.base + path)
        assert r.status_code == 401
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    r = requests.post(server.base + "/generate", json={"text": "x"})
    assert r.status_code == 401
    assert requests.get(server.base + "/health").status_code == 200  # exempt
    assert requests.get(server.base + "/metrics").status_code == 200  # exempt


def test_constrained_decoding_refused(client):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=4,
                                       response_format={"type": "json_object"})
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="m", messages=MESSAGES, max_tokens=4,
            response_format={"type": "json_schema",
                             "json_schema": {"name": "x", "schema": {"type": "object"}}})
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="m", prompt=PROMPT, max_tokens=4,
                                  extra_body={"regex": "[0-9]+"})
    assert e.value.body["param"] == "regex"


def test_raw_stream_shape(server):
    """The exact wire format: SSE lines, null fields serialized, [DONE] last."""
    r = requests.post(server.base + "/v1/chat/completions", headers=server.headers(), stream=True,
                      json={"model": "m", "messages": MESSAGES, "max_tokens": 3, "stream": True},
                      timeout=120)
    assert r.headers["content-type"].startswith("text/event-stream")
    lines = [ln for ln in r.iter_lines() if ln]
    assert all(ln.startswith(b"data: ") for ln in lines)
    assert lines[-1] == b"data: [DONE]"
    first = json.loads(lines[0][6:])
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "",
                                            "reasoning_content": None, "tool_calls": None}
    last = json.loads(lines[-2][6:])
    assert last["choices"][0]["finish_reason"] in ("length", "stop")
    assert last["choices"][0]["delta"]["content"] is None
