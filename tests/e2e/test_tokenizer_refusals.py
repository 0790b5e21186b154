"""tokenizer.json features this build does not implement are refused by name (exit 2), never
accepted and ignored; features once refused are checked against Hugging Face instead."""
import json

import pytest

from conftest import ROOT, run

SEED = ROOT / "tests" / "fuzz" / "seeds" / "fuzz_tokenizer_json" / "bytelevel.json"


def test_small_bytelevel_file_loads(sglc_bin):
    p = run([sglc_bin, "tokenize", "--model-path", str(SEED), "Hello"])
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)


def test_unsupported_normalizer_is_refused(sglc_bin, tmp_path):
    d = json.loads(SEED.read_text())
    d["normalizer"] = {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True}
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(d))
    p = run([sglc_bin, "tokenize", "--model-path", str(path), "Hello"])
    assert p.returncode == 2
    assert "BertNormalizer" in p.stderr


def test_single_word_added_token_matches_hf(sglc_bin, tmp_path):
    """single_word used to be refused; now it loads and splits as Hugging Face does."""
    tokenizers = pytest.importorskip("tokenizers")
    d = json.loads(SEED.read_text())
    d["added_tokens"][0]["single_word"] = True
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(d))
    hf = tokenizers.Tokenizer.from_file(str(path))
    s = d["added_tokens"][0]["content"]
    for text in ["Hello", s, f"a {s} b", f"a{s}b", f"{s}{s}", f"é{s}", f"{s}1", f"({s})"]:
        p = run([sglc_bin, "tokenize", "--model-path", str(path), text])
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout) == hf.encode(text, add_special_tokens=False).ids, text
