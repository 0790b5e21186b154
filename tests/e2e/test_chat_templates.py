"""`sglc apply_chat_template` against Python's jinja2 configured as Hugging Face transformers'
apply_chat_template configures it: every real template in ../shared/testdata/templates/, a set
of conversations (system/user/assistant, multi-turn, tools and tool calls, list contents,
non-ASCII text, orders a template refuses), with and without the generation prompt. The prompt
must match byte for byte; a raise_exception() must give the same message and exit status 1.

The binary is $SGLC_BIN (default build/sglc); the tests skip when it or jinja2 is missing.
"""
import datetime
import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

jinja2 = pytest.importorskip("jinja2")
import jinja2.ext  # noqa: E402
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((ROOT / ".." / "shared" / "testdata" / "templates").resolve().glob("*.jinja"))
SGLC = Path(os.environ.get("SGLC_BIN", ROOT / "build" / "sglc"))
FIXED_TIME = 1721995200  # 2024-07-26, so strftime_now renders the same in both

pytestmark = pytest.mark.skipif(not SGLC.exists(), reason=f"{SGLC} not built")


class Raised(Exception):
    """raise_exception(msg) in the reference render."""


def hf_environment():
    """transformers' _compile_jinja_template, reimplemented (its tojson, raise_exception and
    strftime_now; the AssistantTracker extension only matters for {% generation %})."""

    def raise_exception(message):
        raise Raised(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime.fromtimestamp(FIXED_TIME).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


ENV = hf_environment()

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {"name": "get_time", "description": "Current time (UTC).",
                 "parameters": {"type": "object", "properties": {}}},
}

SYS = {"role": "system", "content": "You are a helpful assistant."}
U1 = {"role": "user", "content": "Hello!"}
A1 = {"role": "assistant", "content": "Hi! How can I help you today?"}
U2 = {"role": "user", "content": "What is the capital of France?\nAnswer briefly."}
CALL = {"role": "assistant", "content": "",
        "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "get_weather",
                                     "arguments": {"city": "Paris", "unit": "celsius"}}}]}
TOOL_RESULT = {"role": "tool", "tool_call_id": "call_1", "name": "get_weather",
               "content": "{\"temperature\": 21.5, \"sky\": \"clear\"}"}
A_FINAL = {"role": "assistant", "content": "It is 21.5 °C and clear in Paris."}

CONVERSATIONS = {
    "single_user": ([U1], None, {}),
    "system_user": ([SYS, U1], None, {}),
    "multi_turn": ([SYS, U1, A1, U2], None, {}),
    "multi_turn_no_system": ([U1, A1, U2], None, {}),
    "ends_with_assistant": ([SYS, U1, A1], None, {}),
    "unicode": ([{"role": "user", "content": "Ünïcödé — 日本語 \"quotes\" 'single' \\ back\ttab 🚀"},
                 {"role": "assistant", "content": "  padded answer  \n"},
                 {"role": "user", "content": "<b>html</b> & {{ not jinja }}"}], None, {}),
    "tools_defined": ([SYS, {"role": "user", "content": "Weather in Paris?"}],
                      [WEATHER_TOOL, TIME_TOOL], {}),
    "tool_call_roundtrip": ([{"role": "user", "content": "Weather in Paris?"}, CALL, TOOL_RESULT,
                             A_FINAL, {"role": "user", "content": "Thanks!"}],
                            [WEATHER_TOOL], {}),
    "tool_call_pending": ([SYS, {"role": "user", "content": "Weather in Paris?"}, CALL,
                           TOOL_RESULT], [WEATHER_TOOL], {}),
    "content_parts": ([{"role": "system", "content": [{"type": "text", "text": "Be terse."}]},
                       {"role": "user", "content": [{"type": "text", "text": "Part one."},
                                                    {"type": "text", "text": "Part two."}]}],
                      None, {}),
    "thinking": ([U1, {"role": "assistant",
                       "content": "<think>\nThe user greets me.\n</think>\n\nHello there!",
                       "reasoning_content": "The user greets me."},
                  U2], None, {}),
    "thinking_off": ([U1, A1, U2], None, {"enable_thinking": False}),
    "custom_kwargs": ([SYS, U1], None, {"date_string": "01 Jan 2025", "reasoning_effort": "low",
                                        "custom_instructions": "Answer in French."}),
    "bad_order_two_users": ([U1, U2], None, {}),
    "bad_order_assistant_first": ([A1, U1], None, {}),
    "bad_role": ([{"role": "narrator", "content": "Once upon a time"}, U1], None, {}),
}


def reference(template, messages, tools, kwargs, add_generation_prompt):
    ctx = dict(messages=json.loads(json.dumps(messages)), tools=tools, documents=None,
               add_generation_prompt=add_generation_prompt, bos_token="<s>", eos_token="</s>")
    ctx.update(kwargs)
    return ENV.from_string(template).render(**ctx)


def run_sglc(template_path, messages, tools, kwargs, add_generation_prompt, extra=()):
    with tempfile.TemporaryDirectory() as d:
        mp = Path(d) / "messages.json"
        mp.write_text(json.dumps(messages, ensure_ascii=False), encoding="utf-8")
        cmd = [str(SGLC), "apply_chat_template", "--chat-template", str(template_path),
               "--messages", str(mp), "--bos-token", "<s>", "--eos-token", "</s>"]
        if tools is not None:
            tp = Path(d) / "tools.json"
            tp.write_text(json.dumps(tools), encoding="utf-8")
            cmd += ["--tools", str(tp)]
        if kwargs:
            cmd += ["--chat-template-kwargs", json.dumps(kwargs)]
        if add_generation_prompt:
            cmd.append("--add-generation-prompt")
        cmd += list(extra)
        env = dict(os.environ, SGLC_TEMPLATE_TIME=str(FIXED_TIME))
        return subprocess.run(cmd, capture_output=True, env=env, timeout=60)


CASES = [(t, name, agp) for t in TEMPLATES for name in CONVERSATIONS for agp in (True, False)]


@pytest.mark.parametrize("template_path,conv,agp", CASES,
                         ids=[f"{t.stem}-{c}-{'gen' if g else 'nogen'}" for t, c, g in CASES])
def test_template_matches_jinja2(template_path, conv, agp):
    messages, tools, kwargs = CONVERSATIONS[conv]
    template = template_path.read_text(encoding="utf-8")
    try:
        expected, raised, failed = reference(template, messages, tools, kwargs, agp), None, None
    except Raised as e:
        expected, raised, failed = None, str(e), None
    except Exception as e:  # the template itself fails on this input (TypeError, undefined...)
        expected, raised, failed = None, None, e
    got = run_sglc(template_path, messages, tools, kwargs, agp)
    if raised is not None:
        assert got.returncode == 1, got.stdout.decode(errors="replace")
        assert got.stderr.decode().rstrip("\n") == raised
    elif failed is not None:
        assert got.returncode == 1, f"jinja2 failed with {failed!r}, sglc printed {got.stdout!r}"
    else:
        assert got.returncode == 0, got.stderr.decode(errors="replace")
        assert got.stdout.decode("utf-8") == expected


def test_every_template_covered():
    assert len(TEMPLATES) >= 15


def hf_continue_final_message(rendered, messages):
    """transformers' rule for continue_final_message."""
    final = messages[-1]["content"]
    if isinstance(final, (list, tuple)):
        final = [b["text"] for b in final if "text" in b][-1]
    loc = rendered.rindex(final.strip())
    if rendered[loc: loc + len(final.lstrip())] == final:
        return rendered[: loc + len(final.lstrip())]
    return rendered[: loc + len(final.strip())]


@pytest.mark.parametrize("template_path", TEMPLATES, ids=[t.stem for t in TEMPLATES])
@pytest.mark.parametrize("final", ["The answer is", "  padded prefix  \n"])
def test_continue_final_message(template_path, final):
    messages = [U1, A1, U2, {"role": "assistant", "content": final}]
    template = template_path.read_text(encoding="utf-8")
    try:
        rendered = reference(template, messages, None, {}, False)
        expected = hf_continue_final_message(rendered, messages)
    except Exception:
        pytest.skip("this template cannot render the conversation")
    got = run_sglc(template_path, messages, None, {}, False, ["--continue-final-message"])
    assert got.returncode == 0, got.stderr.decode(errors="replace")
    assert got.stdout.decode("utf-8") == expected


def test_syntax_error_exit_2(tmp_path):
    bad = tmp_path / "bad.jinja"
    bad.write_text("{% for m in messages %}{{ m.content }}\n{% endif %}")
    got = run_sglc(bad, [U1], None, {}, False)
    assert got.returncode == 2
    assert b"line 2" in got.stderr


@pytest.mark.parametrize("name", ["chatml", "llama-2", "llama-3", "mistral", "deepseek-v3", "qwen2"])
def test_builtin_templates_render(name):
    got = subprocess.run([str(SGLC), "apply_chat_template", "--chat-template", name, "--messages",
                          "/dev/stdin", "--bos-token", "<s>", "--eos-token", "</s>"],
                         input=json.dumps([U1, A1, U2]).encode(), capture_output=True, timeout=60)
    assert got.returncode == 0, got.stderr
    assert b"capital of France" in got.stdout


def test_model_folder_tokenizer_config(tmp_path):
    """--model-path FOLDER: chat_template as a list of {name, template} (take "default"),
    bos/eos tokens as strings or AddedToken objects."""
    template = (TEMPLATES[0].parent / "Qwen-Qwen2.5-7B-Instruct.jinja").read_text(encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": None, "eos_token": {"content": "<|im_end|>", "lstrip": False},
        "chat_template": [{"name": "tool_use", "template": "{{ raise_exception('wrong') }}"},
                          {"name": "default", "template": template}]}))
    messages = [SYS, U1, A1, U2]
    (tmp_path / "m.json").write_text(json.dumps(messages))
    got = subprocess.run([str(SGLC), "apply_chat_template", "--model-path", str(tmp_path),
                          "--messages", str(tmp_path / "m.json"), "--add-generation-prompt"],
                         capture_output=True, timeout=60)
    assert got.returncode == 0, got.stderr
    ctx = dict(messages=messages, tools=None, documents=None, add_generation_prompt=True,
               eos_token="<|im_end|>")
    assert got.stdout.decode() == ENV.from_string(template).render(**ctx)


def test_model_gguf_template(tmp_path):
    """--model-path FILE.gguf: tokenizer.chat_template and the BOS/EOS token texts."""
    gguf = pytest.importorskip("gguf")
    path = (ROOT / ".." / "shared" / "testdata" / "vocab" / "ggml-vocab-phi-3.gguf").resolve()
    if not path.exists():
        pytest.skip("no GGUF with a chat template")
    reader = gguf.GGUFReader(str(path))

    def field(name):
        f = reader.fields[name]
        return f.parts[f.data[0]]

    template = bytes(field("tokenizer.chat_template")).decode("utf-8")
    tokens = reader.fields["tokenizer.ggml.tokens"]
    bos = bytes(tokens.parts[tokens.data[int(field("tokenizer.ggml.bos_token_id")[0])]]).decode()
    eos = bytes(tokens.parts[tokens.data[int(field("tokenizer.ggml.eos_token_id")[0])]]).decode()
    messages = [U1, A1, U2]
    (tmp_path / "m.json").write_text(json.dumps(messages))
    got = subprocess.run([str(SGLC), "apply_chat_template", "--model-path", str(path),
                          "--messages", str(tmp_path / "m.json"), "--add-generation-prompt"],
                         capture_output=True, timeout=60)
    assert got.returncode == 0, got.stderr
    ctx = dict(messages=messages, tools=None, documents=None, add_generation_prompt=True,
               bos_token=bos, eos_token=eos)
    assert got.stdout.decode() == ENV.from_string(template).render(**ctx)
