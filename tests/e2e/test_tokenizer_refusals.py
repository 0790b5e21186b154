"""tokenizer.json features this build does not implement are refused by name (exit 2), never
accepted and ignored."""
import json

from conftest import ROOT, run

SEED = ROOT / "tests" / "fuzz" / "seeds" / "fuzz_tokenizer_json" / "bytelevel.json"


def test_small_bytelevel_file_loads(sglc_bin):
    p = run([sglc_bin, "tokenize", "--model-path", str(SEED), "Hello"])
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)


def test_single_word_added_token_is_refused(sglc_bin, tmp_path):
    d = json.loads(SEED.read_text())
    d["added_tokens"][0]["single_word"] = True
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(d))
    p = run([sglc_bin, "tokenize", "--model-path", str(path), "Hello"])
    assert p.returncode == 2
    assert "single_word" in p.stderr and "<s>" in p.stderr
