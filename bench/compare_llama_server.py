#!/usr/bin/env python3
"""Serving benchmark of sglc against llama.cpp's llama-server (issue 5): starts each server in
turn on the same GGUF file and thread count, drives both with the same `sglc bench_serving`
workload through their OpenAI /v1/completions route (token-id prompts, greedy, ignore_eos,
streamed), prints each engine's table and the ratios sglc/llama-server that the issue sets
targets on. llama.cpp is built outside this project; point LLAMA_SERVER_BIN at its llama-server.

  LLAMA_SERVER_BIN=/path/to/llama-server python3 bench/compare_llama_server.py \
      [--workloads random,shared-prefix] [--num-prompts 200] [--max-concurrency 16]

Workloads (the issue's): random-ids, 256 in / 128 out, range ratio 1, 200 prompts at
concurrency 16 (targets: output tok/s >= 1.5x, median TTFT no worse); generated-shared-prefix,
8 groups x 16 prompts, system prompt 1024, question 64, output 64 (target: output tok/s >= 3x).
llama-server runs with `-np 16 -c 8192 -t 2` (plus --cont-batching where the binary has it).
Its KV cache is split evenly over its slots, so 8192/16 = 512 tokens per slot cannot hold a
shared-prefix request (1152 tokens): for such a workload -c is raised to slots x request length
and the script says so. Each (engine, workload) pair gets a freshly started server, so no run
sees another's cache. Exit status: 0 when every run completed, 1 when a run failed, 2 when a
binary or the model is missing."""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(os.environ.get("SGLC_CACHE", os.path.expanduser("~/.cache/sglc")),
                             "SmolLM2-135M-Instruct.Q4_1.gguf")

# (label, key in the JSON line that bench_serving --output-file writes)
METRICS = [
    ("Request throughput (req/s)", "request_throughput"),
    ("Output token throughput (tok/s)", "output_throughput"),
    ("Mean TTFT (ms)", "mean_ttft_ms"),
    ("Median TTFT (ms)", "median_ttft_ms"),
    ("P99 TTFT (ms)", "p99_ttft_ms"),
    ("Mean ITL (ms)", "mean_itl_ms"),
    ("Median ITL (ms)", "median_itl_ms"),
    ("P99 ITL (ms)", "p99_itl_ms"),
    ("Median E2E latency (ms)", "median_e2e_latency_ms"),
]
TARGETS = {
    "random": {"output_throughput": (">=", 1.5), "median_ttft_ms": ("<=", 1.0)},
    "shared-prefix": {"output_throughput": (">=", 3.0)},
}


def die(msg, code=2):
    print(f"compare_llama_server: {msg}", file=sys.stderr)
    sys.exit(code)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resolve_binaries(args):
    sglc = os.environ.get("SGLC_BIN", os.path.join(ROOT, "build", "sglc"))
    llama = os.environ.get("LLAMA_SERVER_BIN") or shutil.which("llama-server")
    if not (os.path.isfile(sglc) and os.access(sglc, os.X_OK)):
        die(f"sglc binary not found at {sglc} (build it, or set SGLC_BIN)")
    if "llama" in args.engines and not llama:
        die("llama-server not found: set LLAMA_SERVER_BIN to the llama-server binary of a "
            "llama.cpp build made outside this project (see bench/README_serving.md)")
    if "llama" in args.engines and not (os.path.isfile(llama) and os.access(llama, os.X_OK)):
        die(f"LLAMA_SERVER_BIN={llama} is not an executable file")
    if not os.path.isfile(args.model):
        die(f"model file {args.model} not found (scripts/fetch_model.sh fetches the default one)")
    return sglc, llama


def workload_flags(name, args):
    """bench_serving flags of a workload, and the longest request it sends (prompt + output)."""
    if name == "random":
        return (["--dataset-name", "random-ids", "--random-input-len", str(args.input_len),
                 "--random-output-len", str(args.output_len), "--random-range-ratio", "1",
                 "--num-prompts", str(args.num_prompts)], args.input_len + args.output_len)
    return (["--dataset-name", "generated-shared-prefix", "--gsp-num-groups", str(args.gsp_groups),
             "--gsp-prompts-per-group", str(args.gsp_prompts_per_group),
             "--gsp-system-prompt-len", str(args.gsp_system_len), "--gsp-question-len",
             str(args.gsp_question_len), "--gsp-output-len", str(args.gsp_output_len)],
            args.gsp_system_len + args.gsp_question_len + args.gsp_output_len)


def llama_ctx(args, request_len):
    """-c for llama-server: the asked size, raised when one slot's share cannot hold a request
    (its KV is split evenly over -np slots)."""
    per_slot = -(-(request_len + 16) // 256) * 256  # a little room, rounded to 256
    return max(args.ctx, args.np * per_slot)


def has_flag(binary, flag):
    try:
        p = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return flag in p.stdout + p.stderr


def server_cmd(engine, bins, args, port, ctx, cont_batching):
    if engine == "sglc":
        return [bins[0], "launch_server", "--model-path", args.model, "--host", "127.0.0.1",
                "--port", str(port), "--threads", str(args.threads), *args.sglc_arg]
    cmd = [bins[1], "-m", args.model, "-np", str(args.np), "-c", str(ctx), "-t",
           str(args.threads), "--host", "127.0.0.1", "--port", str(port)]
    if cont_batching:
        cmd.append("--cont-batching")
    return cmd + args.llama_arg


def wait_ready(proc, port, log_path, timeout):
    """Polls GET /health until 200 (both servers answer 503 while loading)."""
    url = f"http://127.0.0.1:{port}/health"
    t_end = time.time() + timeout
    while time.time() < t_end:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode} before it was ready"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return None
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return f"not ready after {timeout} s"


def stop(proc):
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_one(engine, workload, bins, args, log_dir, cont_batching):
    flags, request_len = workload_flags(workload, args)
    ctx = llama_ctx(args, request_len) if engine == "llama" else None
    if engine == "llama" and ctx != args.ctx:
        print(f"note: llama-server -c raised from {args.ctx} to {ctx}: its KV is split over "
              f"{args.np} slots and a {workload} request needs {request_len} tokens")
    port = free_port()
    cmd = server_cmd(engine, bins, args, port, ctx, cont_batching)
    log_path = os.path.join(log_dir, f"{engine}-{workload}.log")
    print(f"\n### {workload}: {'sglc' if engine == 'sglc' else 'llama-server'}\n$ {' '.join(cmd)}",
          flush=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        err = wait_ready(proc, port, log_path, args.start_timeout)
        if err:
            print(f"server {err}; its log: {log_path}", file=sys.stderr)
            return None
        out_file = os.path.join(log_dir, f"{engine}-{workload}.jsonl")
        bench = [bins[0], "bench_serving", "--backend", "sglang-oai", "--base-url",
                 f"http://127.0.0.1:{port}", "--tokenizer", args.model, "--max-concurrency",
                 str(args.max_concurrency), "--seed", str(args.seed), "--output-file", out_file,
                 *flags]
        print(f"$ {' '.join(bench)}", flush=True)
        p = subprocess.run(bench, stdin=subprocess.DEVNULL)
        if p.returncode != 0 or not os.path.isfile(out_file):
            print(f"bench_serving failed (status {p.returncode}); server log: {log_path}",
                  file=sys.stderr)
            return None
        with open(out_file) as f:
            lines = [l for l in f if l.strip()]
        return json.loads(lines[-1])
    finally:
        stop(proc)


def fmt(v):
    return f"{v:.2f}" if isinstance(v, (int, float)) else "-"


def summary(workload, res):
    s, l = res.get("sglc"), res.get("llama")
    print(f"\n==== {workload}: sglc vs llama-server ====")
    print(f"{'metric':<34}{'sglc':>12}{'llama-server':>14}{'sglc/llama':>12}  target")
    targets = TARGETS.get(workload, {})
    for label, key in METRICS:
        a = s.get(key) if s else None
        b = l.get(key) if l else None
        ratio = a / b if a is not None and b else None
        tgt = ""
        if key in targets:
            op, want = targets[key]
            met = ratio is not None and (ratio >= want if op == ">=" else ratio <= want)
            tgt = f"{op} {want:g}" + ("" if ratio is None else (" met" if met else " NOT met"))
        print(f"{label:<34}{fmt(a):>12}{fmt(b):>14}{fmt(ratio):>12}  {tgt}")
    for name, r in (("sglc", s), ("llama-server", l)):
        if r:
            print(f"{name}: {r['completed']} requests, {r['total_output_tokens']} output tokens, "
                  f"{r['duration']:.1f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL, help="GGUF file (default: %(default)s)")
    ap.add_argument("--workloads", default="random,shared-prefix",
                    help="comma list of random, shared-prefix (default: %(default)s)")
    ap.add_argument("--engines", default="sglc,llama", help="comma list of sglc, llama")
    ap.add_argument("--num-prompts", type=int, default=200, help="random: requests (200)")
    ap.add_argument("--input-len", type=int, default=256, help="random: prompt tokens (256)")
    ap.add_argument("--output-len", type=int, default=128, help="random: output tokens (128)")
    ap.add_argument("--gsp-groups", type=int, default=8, help="shared prefix: groups (8)")
    ap.add_argument("--gsp-prompts-per-group", type=int, default=16, help="(16)")
    ap.add_argument("--gsp-system-len", type=int, default=1024, help="(1024)")
    ap.add_argument("--gsp-question-len", type=int, default=64, help="(64)")
    ap.add_argument("--gsp-output-len", type=int, default=64, help="(64)")
    ap.add_argument("--max-concurrency", type=int, default=16, help="(16)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="compute threads of both (2)")
    ap.add_argument("--np", type=int, default=16, help="llama-server slots (16)")
    ap.add_argument("--ctx", type=int, default=8192, help="llama-server -c (8192)")
    ap.add_argument("--sglc-arg", action="append", default=[],
                    help="extra launch_server argument (repeatable; use --sglc-arg=--flag)")
    ap.add_argument("--llama-arg", action="append", default=[],
                    help="extra llama-server argument (repeatable; use --llama-arg=--flag)")
    ap.add_argument("--start-timeout", type=float, default=300, help="seconds to be ready")
    ap.add_argument("--log-dir", help="server logs and JSONL results (default: a temp folder)")
    args = ap.parse_args()
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if any(e not in ("sglc", "llama") for e in args.engines) or not args.engines:
        die("--engines takes sglc and/or llama")
    if any(w not in TARGETS for w in workloads) or not workloads:
        die("--workloads takes random and/or shared-prefix")
    bins = resolve_binaries(args)
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="compare_llama_server.")
    os.makedirs(log_dir, exist_ok=True)
    cont_batching = "llama" in args.engines and has_flag(bins[1], "--cont-batching")
    print(f"model: {args.model}\nsglc: {bins[0]}\nllama-server: {bins[1]}\nlogs: {log_dir}")
    try:
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    except OSError:
        pass
    failed = False
    results = {}
    for w in workloads:
        results[w] = {}
        for e in args.engines:
            r = run_one(e, w, bins, args, log_dir, cont_batching)
            failed |= r is None
            if r is not None:
                results[w][e] = r
    for w in workloads:
        summary(w, results[w])
    try:  # figures taken while other work shares the cores say little; show how busy it was
        print(f"load average after the runs: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    except OSError:
        pass
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
