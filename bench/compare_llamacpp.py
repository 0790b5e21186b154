#!/usr/bin/env python3
"""Side-by-side speed of sglc and llama.cpp on the same GGUF files and thread count, printing
figures and the ratios issue 2 sets targets on. llama.cpp is built outside this project; point
LLAMA_CPP_BIN at the folder holding its llama-bench and llama-batched-bench.

  LLAMA_CPP_BIN=/path/to/llama.cpp/build/bin python3 bench/compare_llamacpp.py \
      [--threads 2] [--models Q4_1,Q8_0,BF16] [--sglc build/sglc] [--repeats 3]

Model files are SmolLM2-135M-Instruct.<TYPE>.gguf in $SGLC_CACHE (default ~/.cache/sglc).
Targets: prefill 512 >= 1.25x llama-bench pp512; decode at batch 1 after 512 tokens of context
>= 1.25x llama-bench tg128 at depth 512 (or >= 90% of the memory roofline, whichever is
lower); decode at batch 16 >= 1.5x llama-batched-bench S_TG (npp 128, ntg 128, npl 16).
Each figure is the median of --repeats runs of each engine, taken in turns (sglc, llama.cpp,
sglc, ...), because on a shared machine single runs swing by a third."""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return p.stdout


def sglc_one_batch(sglc, model, threads, batch, inp, out):
    text = sh([sglc, "bench_one_batch", "--model-path", model, "--threads", str(threads),
               "--batch-size", str(batch), "--input-len", str(inp), "--output-len", str(out)])
    fig = {}
    m = re.search(r"Prefill\. latency: ([\d.]+) s, throughput:\s+([\d.]+)", text)
    fig["prefill_tps"] = float(m.group(2))
    m = re.search(r"Decode\.  median latency: ([\d.]+) s, median throughput:\s+([\d.]+)", text)
    if m:
        fig["decode_tps"] = float(m.group(2))
    m = re.search(r"weight bytes per step: ([\d.]+) MB, (\d+)% of measured memory bandwidth "
                  r"\(([\d.]+) GB/s\)", text)
    if m:
        fig["roofline_pct"] = float(m.group(2))
        fig["bandwidth_gbs"] = float(m.group(3))
    m = re.search(r"Peak memory: ([\d.]+) MB", text)
    fig["peak_mb"] = float(m.group(1))
    return fig


def llama_bench(binp, model, threads, args):
    out = sh([os.path.join(binp, "llama-bench"), "-m", model, "-t", str(threads), "-r", "3",
              "-o", "json", *args])
    return json.loads(out)[0]["avg_ts"]


def llama_batched(binp, model, threads):
    out = sh([os.path.join(binp, "llama-batched-bench"), "-m", model, "-t", str(threads),
              "-c", "4096", "-npp", "128", "-ntg", "128", "-npl", "16", "--output-format",
              "jsonl"])
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return rows[-1]["speed_tg"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="Q4_1,Q8_0,BF16")
    ap.add_argument("--sglc", default=os.path.join(ROOT, "build", "sglc"))
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    binp = os.environ.get("LLAMA_CPP_BIN")
    if not binp:
        sys.exit("set LLAMA_CPP_BIN to llama.cpp's bin folder")
    cache = os.environ.get("SGLC_CACHE", os.path.expanduser("~/.cache/sglc"))
    print(f"{'model':6} {'test':28} {'sglc':>10} {'llama.cpp':>10} {'ratio':>7} target")
    for t in a.models.split(","):
        model = os.path.join(cache, f"SmolLM2-135M-Instruct.{t}.gguf")
        runs = []
        for _ in range(a.repeats):
            runs.append((sglc_one_batch(a.sglc, model, a.threads, 1, 512, 128),
                         llama_bench(binp, model, a.threads, ["-p", "512", "-n", "0"]),
                         llama_bench(binp, model, a.threads, ["-p", "0", "-n", "128", "-d", "512"]),
                         sglc_one_batch(a.sglc, model, a.threads, 16, 128, 128),
                         llama_batched(binp, model, a.threads)))
        med = statistics.median
        ours = {k: med(r[0][k] for r in runs) for k in runs[0][0]}
        ours16 = {k: med(r[3][k] for r in runs) for k in runs[0][3]}
        pp, tg, tg16 = (med(r[i] for r in runs) for i in (1, 2, 4))
        rows = [("prefill 512 (tok/s)", ours["prefill_tps"], pp, ">= 1.25"),
                ("decode bs1 @512 (tok/s)", ours["decode_tps"], tg,
                 f">= 1.25 or >= 90% roofline (ours {ours.get('roofline_pct', 0):.0f}% of "
                 f"{ours.get('bandwidth_gbs', 0):.1f} GB/s)"),
                ("decode bs16 (tok/s)", ours16["decode_tps"], tg16, ">= 1.5")]
        for name, x, y, target in rows:
            print(f"{t:6} {name:28} {x:10.1f} {y:10.1f} {x / y:7.2f} {target}")
        print(f"{t:6} {'peak RSS sglc (MB)':28} {ours['peak_mb']:10.1f}")


if __name__ == "__main__":
    main()
