"""sglc's GGUF tokenizers against llama.cpp itself (through llama-cpp-python) as the oracle.

For every ggml-vocab-*.gguf test vocabulary and the real SmolLM2 model (~/.cache/sglc, or
$SGLC_SMOLLM2_GGUF), encodes a corpus of varied strings -- llama.cpp's test strings plus chat
markup with special tokens, code, scripts, emoji, odd whitespace -- with `sglc tokenize
--input-file` and with llama.cpp, both (add_special=False, parse_special=False) and (True, True),
and requires the same ids. Binary: $SGLC_BIN (default build/sglc). Skips cleanly when the
binary, llama_cpp or a model file is missing (llama-cpp-python can use a prebuilt libllama via
LLAMA_CPP_LIB_PATH)."""
import json
import os
import pathlib
import subprocess

import pytest

try:  # llama-cpp-python may be installed without its shared library (LLAMA_CPP_LIB_PATH unset)
    import llama_cpp
except Exception as exc:  # ImportError, or FileNotFoundError from the library loader
    pytest.skip(f"llama_cpp not usable here: {exc}", allow_module_level=True)

ROOT = pathlib.Path(__file__).resolve().parents[2]
VOCAB = ROOT.parent / "shared" / "testdata" / "vocab"
SGLC = os.environ.get("SGLC_BIN", str(ROOT / "build" / "sglc"))
SMOLLM2 = pathlib.Path(os.environ.get(
    "SGLC_SMOLLM2_GGUF", pathlib.Path.home() / ".cache/sglc/SmolLM2-135M-Instruct.Q4_1.gguf"))

EXTRA = [
    "Hello world", " leading", "trailing ", "  two  spaces  ", "tabs\tand\nnewlines\r\n\n",
    "numbers 1234567 3.14159 1,000,000", "café naïve", "日本語のテキストと中文文本", "한국어",
    "emoji 🦙🚀👍🏽", "Ελληνικά и русский", "def f(x):\n    return x**2  # c\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"
    "<|im_start|>assistant\n", "<|endoftext|>x<|endoftext|>", "<s> hi </s>", "<unk>",
    "don't WON'T I'M", "\u00a0nbsp\u2009thin\u3000ideo", " " * 33 + "x", "a" * 200,
    "\u2581literal", "x</s>\n<s>  y", "<|im_start|> spaced <|im_end|> ",
]


def corpus():
    texts = list(EXTRA)
    for inp in sorted(VOCAB.glob("*.inp")):
        texts += inp.read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    return [t for i, t in enumerate(texts) if t and t not in texts[:i]]


def models():
    out = sorted(VOCAB.glob("ggml-vocab-*.gguf"))
    if SMOLLM2.exists():
        out.append(SMOLLM2)
    return out


@pytest.fixture(scope="module")
def sglc_bin():
    if not os.access(SGLC, os.X_OK):
        pytest.skip(f"no sglc binary at {SGLC} (set SGLC_BIN)")
    return SGLC


@pytest.mark.parametrize("model", models(), ids=lambda p: p.name)
@pytest.mark.parametrize("special", [False, True])
def test_matches_llama_cpp(model, special, sglc_bin, tmp_path):
    llm = llama_cpp.Llama(str(model), vocab_only=True, verbose=False)
    texts = corpus()
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(t) + "\n" for t in texts), encoding="utf-8")
    cmd = [sglc_bin, "tokenize", "--model-path", str(model), "--input-file", str(inp)]
    cmd += ["--add-special-tokens"] if special else ["--no-parse-special"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(got) == len(texts)
    bad = []
    for t, g in zip(texts, got):
        w = llm.tokenize(t.encode("utf-8"), add_bos=special, special=special)
        if g != w:
            bad.append((t, w, g))
    assert not bad, f"{len(bad)}/{len(texts)} differ; first: {bad[0]!r}"
