"""`sglc generate` end to end: reference outputs of the tiny stories260K model, the JSON and
logits outputs, and clean refusals of bad model files (one error line, exit status 2)."""
import json
import os

import numpy as np
import pytest

from conftest import STORIES, run

GGUF = STORIES / "stories260K.gguf"


def reference(i):
    refs = json.loads((STORIES / "reference" / "greedy.json").read_text())
    return refs[i]


def test_greedy_ids_match_llama2c(sglc_bin):
    ref = reference(1)
    prompt = ref["tokens_fed"][: ref["n_prompt"]]
    n_new = len(ref["tokens_fed"]) - ref["n_prompt"]
    p = run([sglc_bin, "generate", "--model-path", str(GGUF), "--input-ids",
             ",".join(map(str, prompt)), "--max-new-tokens", str(n_new), "--temperature", "0",
             "--ignore-eos", "--json", "--kv-cache-dtype", "fp32"])
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["input_ids"] == prompt
    assert out["output_ids"] == ref["tokens_fed"][ref["n_prompt"]:]
    assert isinstance(out["text"], str) and len(out["text"]) > 0


def test_logits_out_matches_reference(sglc_bin, tmp_path):
    ref = reference(0)
    fed = ref["tokens_fed"]
    logits_file = tmp_path / "logits.f32"
    # feed the whole reference sequence as the prompt: one logits row per fed position
    p = run([sglc_bin, "generate", "--model-path", str(GGUF), "--input-ids",
             ",".join(map(str, fed)), "--max-new-tokens", "1", "--temperature", "0",
             "--logits-out", str(logits_file), "--json", "--kv-cache-dtype", "fp32"])
    assert p.returncode == 0, p.stderr
    ours = np.fromfile(logits_file, dtype=np.float32).reshape(len(fed), 512)
    theirs = np.fromfile(STORIES / "reference" / ref["logits_file"], dtype=np.float32)
    theirs = theirs.reshape(-1, 512)[: len(fed)]
    err = np.linalg.norm(ours - theirs, axis=1) / np.linalg.norm(theirs, axis=1)
    assert err.max() < 1e-4


def test_logits_out_covers_generated_positions(sglc_bin, tmp_path):
    logits_file = tmp_path / "logits.f32"
    p = run([sglc_bin, "generate", "--model-path", str(GGUF), "--input-ids", "1,403,407",
             "--max-new-tokens", "5", "--temperature", "0", "--ignore-eos",
             "--logits-out", str(logits_file), "--json"])
    assert p.returncode == 0, p.stderr
    # 3 prompt positions + 4 generated tokens fed back (the 5th is never fed)
    assert os.path.getsize(logits_file) == (3 + 4) * 512 * 4


def test_seeded_sampling_is_reproducible(sglc_bin):
    args = [sglc_bin, "generate", "--model-path", str(GGUF), "--input-ids", "1,403",
            "--max-new-tokens", "30", "--temperature", "1.0", "--top-k", "40", "--seed", "7",
            "--ignore-eos", "--json"]
    a, b = run(args), run(args)
    assert a.returncode == 0 and b.returncode == 0
    assert json.loads(a.stdout)["output_ids"] == json.loads(b.stdout)["output_ids"]
    args[args.index("7")] = "8"
    c = run(args)
    assert json.loads(c.stdout)["output_ids"] != json.loads(a.stdout)["output_ids"]


def test_prompt_text_uses_the_tokenizer(sglc_bin):
    p = run([sglc_bin, "generate", "--model-path", str(GGUF), "--prompt", "Once upon a time",
             "--max-new-tokens", "20", "--temperature", "0", "--json"])
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["input_ids"][0] == 1  # the llama vocabulary adds BOS
    assert len(out["output_ids"]) > 0


def write_bad(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("case", ["truncated", "magic", "empty", "tail_cut"])
def test_bad_gguf_is_one_clear_error(sglc_bin, tmp_path, case):
    good = GGUF.read_bytes()
    data = {"truncated": good[:1000], "magic": b"GGUX" + good[4:], "empty": b"",
            "tail_cut": good[: len(good) - 4096]}[case]
    path = write_bad(tmp_path, f"{case}.gguf", data)
    p = run([sglc_bin, "generate", "--model-path", path, "--input-ids", "1", "--json"])
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, p.stderr
    assert path in lines[0]


def test_missing_model_says_where_it_looked(sglc_bin, tmp_path):
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"))
    p = run([sglc_bin, "generate", "--model-path", "nobody/NoSuchModel", "--input-ids", "1"],
            env=env)
    assert p.returncode == 2
    assert str(tmp_path / "hub") in p.stderr


def test_bad_flags_exit_2(sglc_bin):
    for args in (["--no-such-flag"], ["--max-new-tokens", "abc"], ["--top-p", "0"],
                 ["--quantization", "fp8"]):
        p = run([sglc_bin, "generate", "--model-path", str(GGUF), "--input-ids", "1", *args])
        assert p.returncode == 2, (args, p.stderr)
        assert p.stderr.strip()


HF_FOLDER = __import__("conftest").ROOT / "tests" / "fixtures" / "stories260K_hf"
HF_BF16 = __import__("conftest").ROOT / "tests" / "fixtures" / "stories260K_hf_bf16"


def logits_of(sglc_bin, model_path, ids, tmp_path, extra=()):
    out = tmp_path / "l.f32"
    p = run([sglc_bin, "generate", "--model-path", str(model_path), "--input-ids",
             ",".join(map(str, ids)), "--max-new-tokens", "1", "--temperature", "0",
             "--logits-out", str(out), "--json", "--kv-cache-dtype", "fp32", *extra])
    assert p.returncode == 0, p.stderr
    return np.fromfile(out, dtype=np.float32).reshape(len(ids), -1)


def test_hf_folder_written_by_transformers_gives_the_same_logits(sglc_bin, tmp_path):
    """The folder was saved by transformers itself (tests/fixtures/stories260K_hf/README.md),
    so its un-permuted Q/K layout checks the RoPE pairing against the GGUF's."""
    for i in range(5):
        fed = reference(i)["tokens_fed"]
        hf = logits_of(sglc_bin, HF_FOLDER, fed, tmp_path)
        theirs = np.fromfile(STORIES / "reference" / reference(i)["logits_file"],
                             dtype=np.float32).reshape(-1, 512)[: len(fed)]
        err = np.linalg.norm(hf - theirs, axis=1) / np.linalg.norm(theirs, axis=1)
        assert err.max() < 1e-4, (i, err.max())


def test_hf_bf16_folder_and_w8a8_follow_the_reference(sglc_bin, tmp_path):
    ref = reference(2)
    fed = ref["tokens_fed"]
    theirs = np.fromfile(STORIES / "reference" / ref["logits_file"],
                         dtype=np.float32).reshape(-1, 512)[: len(fed)]
    for path, extra, tol in ((HF_BF16, (), 3e-2), (HF_FOLDER, ("--quantization", "w8a8_int8"), 5e-2)):
        ours = logits_of(sglc_bin, path, fed, tmp_path, extra)
        err = np.linalg.norm(ours - theirs, axis=1) / np.linalg.norm(theirs, axis=1)
        top1 = (ours.argmax(axis=1) == theirs.argmax(axis=1)).mean()
        assert err.max() < tol, (path, extra, err.max())
        assert top1 >= 0.9, (path, extra, top1)
