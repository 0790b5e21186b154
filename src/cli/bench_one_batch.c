/* `sglc bench_one_batch` (SGLang's tool of that name): one static batch of random prompts,
 * prefilled at once, then decoded step by step, timing each phase. It measures the engine
 * alone (no scheduler, no HTTP), so its figures are the ceiling the server works under. Extra
 * line: how close decode comes to the memory roofline (weight bytes read per step over the
 * machine's measured read bandwidth). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/membw.h"
#include "base/timeutil.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/common.h"
#include "runtime/sampler.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    double prefill_latency, median_decode_latency, overall_latency;
    size_t peak_rss;
} run_result;

static int run_once(backend *be, model *m, dtype_t kv_type, long B, long L, long O, uint64_t seed,
                    bool verbose, run_result *res) {
    int64_t per_seq = L + O;
    int64_t n_slots = B * per_seq;
    model_kv kv;
    if (model_kv_alloc(m, be, &kv, n_slots, kv_type) != 0) {
        fprintf(stderr, "sglc bench_one_batch: out of memory for %lld KV slots\n",
                (long long)n_slots);
        return 1;
    }
    int32_t vocab = m->cfg.vocab_size;
    int32_t *tokens = malloc((size_t)(B * L) * sizeof(int32_t));
    int32_t *pos = malloc((size_t)(B * L) * sizeof(int32_t));
    int32_t *seq = malloc((size_t)(B * L) * sizeof(int32_t));
    int32_t *slots = malloc((size_t)n_slots * sizeof(int32_t));
    const int32_t **seq_slots = malloc((size_t)B * sizeof(int32_t *));
    int32_t *rows = malloc((size_t)B * sizeof(int32_t));
    int32_t *next = malloc((size_t)B * sizeof(int32_t));
    float *logits = malloc((size_t)B * (size_t)vocab * sizeof(float));
    double *lat = malloc((size_t)(O > 1 ? O : 1) * sizeof(double));
    int rc = 0;
    if (!tokens || !pos || !seq || !slots || !seq_slots || !rows || !next || !logits || !lat) {
        fprintf(stderr, "sglc bench_one_batch: out of memory\n");
        rc = 1;
        goto done;
    }
    sampler_rng rng;
    sampler_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n_slots; i++) slots[i] = (int32_t)i;
    for (long b = 0; b < B; b++) {
        seq_slots[b] = slots + b * per_seq;
        rows[b] = (int32_t)(b * L + L - 1);
        for (long p = 0; p < L; p++) {
            tokens[b * L + p] = (int32_t)(sampler_rng_uniform(&rng) * (float)(vocab - 1));
            pos[b * L + p] = (int32_t)p;
            seq[b * L + p] = (int32_t)b;
        }
    }
    char err[512];
    double t0 = time_now_s();
    model_batch pb = {B * L, tokens, pos, seq, seq_slots, B, rows};
    if (model_forward(m, be, &kv, &pb, logits, err, sizeof err) != 0) {
        fprintf(stderr, "sglc bench_one_batch: %s\n", err);
        rc = 1;
        goto done;
    }
    res->prefill_latency = time_now_s() - t0;
    if (verbose)
        printf("Prefill. latency: %.5f s, throughput: %9.2f token/s\n", res->prefill_latency,
               (double)(B * L) / res->prefill_latency);
    double decode_total = 0;
    long steps = O - 1;
    for (long s = 0; s < steps; s++) {
        for (long b = 0; b < B; b++) {
            next[b] = sampler_argmax(logits + (size_t)b * (size_t)vocab, vocab);
            pos[b] = (int32_t)(L + s);
            seq[b] = (int32_t)b;
            rows[b] = (int32_t)b;
        }
        double t1 = time_now_s();
        model_batch db = {B, next, pos, seq, seq_slots, B, rows};
        if (model_forward(m, be, &kv, &db, logits, err, sizeof err) != 0) {
            fprintf(stderr, "sglc bench_one_batch: %s\n", err);
            rc = 1;
            goto done;
        }
        lat[s] = time_now_s() - t1;
        decode_total += lat[s];
        if (verbose && (s < 5 || s % 100 == 99))
            printf("Decode %ld. Batch size: %ld, latency: %.5f s, throughput: %9.2f token/s\n", s,
                   B, lat[s], (double)B / lat[s]);
    }
    if (steps > 0) {
        qsort(lat, (size_t)steps, sizeof(double), cmp_double);
        res->median_decode_latency = lat[steps / 2];
    }
    res->overall_latency = res->prefill_latency + decode_total;
    res->peak_rss = membw_peak_rss();
done:
    free(tokens), free(pos), free(seq), free(slots), free(seq_slots), free(rows), free(next);
    free(logits), free(lat);
    model_kv_free(be, &kv);
    return rc;
}

int cli_bench_one_batch(int argc, char **argv) {
    const char *model_path = NULL, *quantization = NULL, *result_file = NULL;
    const char *kv_dtype_name = NULL;
    const char *run_name = "before";
    long B = 1, L = 1024, O = 16, threads = 0, seed = 42;
    bool no_bandwidth = false;
    arg_spec specs[] = {
        {"--model-path", ARG_STR, &model_path, "GGUF file, Hugging Face folder or repo id", 0},
        {"--batch-size", ARG_INT, &B, "sequences in the batch (1)", 0},
        {"--input-len", ARG_INT, &L, "prompt tokens per sequence (1024)", 0},
        {"--output-len", ARG_INT, &O, "tokens generated per sequence (16)", 0},
        {"--threads", ARG_INT, &threads, "compute threads (default: CPUs available)", 0},
        {"--quantization", ARG_STR, &quantization, "w8a8_int8: quantize weights at load", 0},
        {"--kv-cache-dtype", ARG_STR, &kv_dtype_name, "auto (= fp16), fp32, fp16, bf16", 0},
        {"--result-filename", ARG_STR, &result_file, "append one JSON line per run", 0},
        {"--run-name", ARG_STR, &run_name, "run_name in the JSON line (before)", 0},
        {"--seed", ARG_INT, &seed, "seed of the random prompts (42)", 0},
        {"--skip-bandwidth", ARG_BOOL, &no_bandwidth, "do not measure memory bandwidth", 0},
    };
    int n_specs = (int)(sizeof specs / sizeof specs[0]);
    const char *pos[1];
    int n_pos;
    int rc = args_parse("bench_one_batch", specs, n_specs, argc, argv, pos, 0, &n_pos);
    if (rc == 1) {
        args_usage("bench_one_batch", "--model-path P [--batch-size B] [--input-len L] "
                   "[--output-len O]", specs, n_specs);
        return 0;
    }
    if (rc) return rc;
    dtype_t kv_type;
    if (cli_kv_dtype("bench_one_batch", kv_dtype_name, &kv_type) != 0) return 2;
    if (B < 1 || L < 1 || O < 1) {
        fprintf(stderr, "sglc bench_one_batch: batch size, input and output lengths must be >= 1\n");
        return 2;
    }
    backend *be;
    model *m;
    rc = cli_open_model("bench_one_batch", model_path, quantization, threads, &be, &m);
    if (rc) return rc;
    if (L + O > m->cfg.context_length) {
        fprintf(stderr, "sglc bench_one_batch: input + output length %ld exceeds the context "
                        "length %d\n", L + O, m->cfg.context_length);
        model_free(m);
        backend_destroy(be);
        return 2;
    }
    run_result warm, res;
    printf("Warmup ...\n");
    rc = run_once(be, m, kv_type, B, L < 32 ? L : 32, 4, (uint64_t)seed + 1, false, &warm);
    if (rc == 0) {
        printf("Benchmark ...\n");
        memset(&res, 0, sizeof res);
        rc = run_once(be, m, kv_type, B, L, O, (uint64_t)seed, true, &res);
    }
    if (rc == 0) {
        double dec_tput = res.median_decode_latency > 0 ? (double)B / res.median_decode_latency : 0;
        if (O > 1)
            printf("Decode.  median latency: %.5f s, median throughput: %9.2f token/s\n",
                   res.median_decode_latency, dec_tput);
        double total_tput = (double)(B * (L + O)) / res.overall_latency;
        printf("Total. latency: %.3f s, throughput: %9.2f token/s\n", res.overall_latency,
               total_tput);
        if (!no_bandwidth && O > 1) {
            double bw = membw_measure_read(be->tp, (size_t)512 << 20);
            double used = (double)m->weight_bytes / res.median_decode_latency;
            printf("Decode. weight bytes per step: %.1f MB, %.0f%% of measured memory bandwidth "
                   "(%.1f GB/s)\n", (double)m->weight_bytes / 1e6, bw > 0 ? 100.0 * used / bw : 0,
                   bw / 1e9);
        }
        printf("Peak memory: %.1f MB resident\n", (double)res.peak_rss / 1048576.0);
        if (result_file) {
            FILE *f = fopen(result_file, "a");
            if (!f) {
                fprintf(stderr, "sglc bench_one_batch: cannot append to %s\n", result_file);
                rc = 1;
            } else {
                json_t *line = json_pack(
                    "{s:s, s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f}", "run_name", run_name,
                    "batch_size", (json_int_t)B, "input_len", (json_int_t)L, "output_len",
                    (json_int_t)O, "prefill_latency", res.prefill_latency, "prefill_throughput",
                    (double)(B * L) / res.prefill_latency, "median_decode_latency",
                    res.median_decode_latency, "median_decode_throughput", dec_tput,
                    "overall_latency", res.overall_latency, "overall_throughput", total_tput);
                char *text = line ? json_dumps(line, JSON_PRESERVE_ORDER) : NULL;
                if (text) fprintf(f, "%s\n", text);
                free(text);
                json_decref(line);
                fclose(f);
            }
        }
    }
    model_free(m);
    backend_destroy(be);
    return rc;
}
