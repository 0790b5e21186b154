"""Tokenizer throughput, sglc against HF `tokenizers`, single thread, on the same corpus lines.

usage: python3 bench/bench_tokenizer.py TOKENIZER_JSON [CORPUS] [--sglc build-tok/bench_tokenizer]
Without CORPUS, writes a ~10 MB one from llama.cpp's tokenizer test strings (varied scripts,
code, numbers, whitespace) repeated with line numbers. Prints both figures and the ratio."""
import argparse
import os
import pathlib
import re
import subprocess
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
import tokenizers  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


def make_corpus(path, size=10_000_000):
    texts = []
    for inp in sorted((ROOT.parent / "shared/testdata/vocab").glob("*.inp")):
        texts += [t.replace("\n", " ") for t in inp.read_text().split("\n__ggml_vocab_test__\n")]
    texts = [t for t in texts if t.strip()]
    out, n, i = [], 0, 0
    while n < size:
        line = f"{i} {texts[i % len(texts)]} {texts[(i * 7) % len(texts)]}\n"
        out.append(line)
        n += len(line.encode())
        i += 1
    pathlib.Path(path).write_text("".join(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tokenizer_json")
    ap.add_argument("corpus", nargs="?")
    ap.add_argument("--sglc", default=str(ROOT / "build-tok" / "bench_tokenizer"))
    a = ap.parse_args()
    corpus = a.corpus or "/tmp/sglc_tok_corpus.txt"
    if not a.corpus and not os.path.exists(corpus):
        make_corpus(corpus)
    lines = pathlib.Path(corpus).read_text().splitlines(keepends=True)
    size = sum(len(x.encode()) for x in lines)
    tok = tokenizers.Tokenizer.from_file(a.tokenizer_json)
    best, ntok = 1e30, 0
    for _ in range(2):
        t0 = time.perf_counter()
        ntok = sum(len(tok.encode(x, add_special_tokens=False).ids) for x in lines)
        best = min(best, time.perf_counter() - t0)
    hf = size / 1e6 / best
    print(f"hf:   {size / 1e6:.1f} MB in {best:.3f} s: {hf:.2f} MB/s ({ntok} tokens)")
    out = subprocess.run([a.sglc, a.tokenizer_json, corpus], capture_output=True, text=True,
                         check=True).stdout
    print(out.strip())
    ours = float(re.search(r"([\d.]+) MB/s", out).group(1))
    print(f"ratio sglc/hf: {ours / hf:.2f}x")


if __name__ == "__main__":
    main()
