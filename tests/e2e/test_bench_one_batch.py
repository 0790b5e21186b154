"""`sglc bench_one_batch` prints SGLang's lines and appends SGLang's JSON keys."""
import json

from conftest import STORIES, run

KEYS = {"run_name", "batch_size", "input_len", "output_len", "prefill_latency",
        "prefill_throughput", "median_decode_latency", "median_decode_throughput",
        "overall_latency", "overall_throughput"}


def test_lines_and_result_file(sglc_bin, tmp_path):
    out = tmp_path / "r.jsonl"
    for name in ("first", 'quote"d'):
        p = run([sglc_bin, "bench_one_batch", "--model-path", str(STORIES / "stories260K.gguf"),
                 "--batch-size", "2", "--input-len", "16", "--output-len", "4",
                 "--run-name", name, "--result-filename", str(out)])
        assert p.returncode == 0, p.stderr
        assert "Prefill. latency:" in p.stdout and "Decode.  median latency:" in p.stdout
        assert "Decode. weight bytes per step:" in p.stdout
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert [r["run_name"] for r in rows] == ["first", 'quote"d']
    assert all(set(r) == KEYS and r["batch_size"] == 2 for r in rows)
