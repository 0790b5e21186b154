/* `sglc bench_offline_throughput` (SGLang's tool of that name): submits a whole workload to an
 * in-process engine at once and times it to the last token, so the figures are the runtime's
 * (scheduler, batching, radix cache) without HTTP. Two workloads: random (input and output
 * lengths drawn per request in [len * range_ratio, len]) and generated-shared-prefix (G groups
 * of P prompts; each group shares a system prompt of S tokens, then a question of Q tokens; O
 * output tokens). Requests ignore eos so the output lengths are the ones asked for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "runtime/engine.h"
#include "runtime/sampler.h"

typedef struct {
    int32_t *ids;
    int64_t n;
    int out;
} bench_req;

static int32_t random_token(sampler_rng *rng, int vocab) {
    /* skip the first ids, which are special tokens in most vocabularies */
    int lo = vocab > 1000 ? 200 : 3;
    return lo + (int32_t)(sampler_rng_uniform(rng) * (float)(vocab - lo - 1));
}

static long draw_len(sampler_rng *rng, long len, double ratio) {
    long lo = (long)((double)len * ratio);
    if (lo < 1) lo = 1;
    if (lo >= len) return len;
    return lo + (long)(sampler_rng_uniform(rng) * (float)(len - lo + 1));
}

int cli_bench_offline_throughput(int argc, char **argv) {
    engine_args a;
    engine_args_default(&a);
    const char *model_path = NULL, *dataset = "random", *kv_dtype = "auto", *policy = "fcfs";
    long num_prompts = 16, in_len = 1024, out_len = 1024, threads = 0, seed = 1;
    long G = 64, P = 16, S = 2048, Q = 128, O = 256;
    long page = 1, chunk = 2048, max_total = 0, max_running = 0, max_prefill = 16384;
    double ratio = 0.0, mem_frac = a.mem_fraction_static;
    bool no_radix = false;
    arg_spec specs[] = {
        {"--model-path", ARG_STR, &model_path, "GGUF file, Hugging Face folder or repo id", 0},
        {"--dataset-name", ARG_STR, &dataset, "random | generated-shared-prefix (random)", 0},
        {"--num-prompts", ARG_INT, &num_prompts, "random: requests (16)", 0},
        {"--random-input-len", ARG_INT, &in_len, "random: max input tokens (1024)", 0},
        {"--random-output-len", ARG_INT, &out_len, "random: max output tokens (1024)", 0},
        {"--random-range-ratio", ARG_FLOAT, &ratio, "random: lengths drawn in [len*r, len] (0)",
         0},
        {"--gsp-num-groups", ARG_INT, &G, "shared prefix: groups G (64)", 0},
        {"--gsp-prompts-per-group", ARG_INT, &P, "shared prefix: prompts per group P (16)", 0},
        {"--gsp-system-prompt-len", ARG_INT, &S, "shared prefix: system prompt S (2048)", 0},
        {"--gsp-question-len", ARG_INT, &Q, "shared prefix: question Q (128)", 0},
        {"--gsp-output-len", ARG_INT, &O, "shared prefix: output tokens O (256)", 0},
        {"--disable-radix-cache", ARG_BOOL, &no_radix, "no prefix reuse", 0},
        {"--threads", ARG_INT, &threads, "compute threads (all CPUs)", 0},
        {"--seed", ARG_INT, &seed, "seed of the random prompts (1)", 0},
        {"--page-size", ARG_INT, &page, "tokens per KV page (1)", 0},
        {"--chunked-prefill-size", ARG_INT, &chunk, "prefill chunk, -1 = off (2048)", 0},
        {"--max-prefill-tokens", ARG_INT, &max_prefill, "prefill tokens per batch (16384)", 0},
        {"--max-total-tokens", ARG_INT, &max_total, "cap of the KV pool", 0},
        {"--max-running-requests", ARG_INT, &max_running, "cap of running requests", 0},
        {"--mem-fraction-static", ARG_FLOAT, &mem_frac, "weights + KV share of memory (0.8)", 0},
        {"--kv-cache-dtype", ARG_STR, &kv_dtype, "auto (fp16) | fp32 | fp16 | bf16", 0},
        {"--schedule-policy", ARG_STR, &policy, "fcfs | lpm | dfs-weight | random (fcfs)", 0},
    };
    int n_specs = (int)(sizeof specs / sizeof specs[0]);
    const char *pos[1];
    int n_pos;
    int rc = args_parse("bench_offline_throughput", specs, n_specs, argc, argv, pos, 0, &n_pos);
    if (rc == 1) {
        args_usage("bench_offline_throughput", "--model-path P [--dataset-name random|"
                   "generated-shared-prefix] [options]", specs, n_specs);
        return 0;
    }
    if (rc) return rc;
    bool gsp = !strcmp(dataset, "generated-shared-prefix");
    if (!gsp && strcmp(dataset, "random")) {
        fprintf(stderr, "sglc bench_offline_throughput: --dataset-name %s: expected random or "
                        "generated-shared-prefix\n", dataset);
        return 2;
    }
    if (num_prompts < 1 || in_len < 1 || out_len < 1 || G < 1 || P < 1 || S < 0 || Q < 1 ||
        O < 1 || ratio < 0 || ratio > 1 || num_prompts > 1000000 || G * P > 1000000) {
        fprintf(stderr, "sglc bench_offline_throughput: counts and lengths must be >= 1 "
                        "(range ratio in [0, 1])\n");
        return 2;
    }
    a.model_path = model_path;
    a.threads = (int)threads;
    a.page_size = (int)page;
    a.chunked_prefill_size = chunk;
    a.max_prefill_tokens = max_prefill;
    a.max_total_tokens = max_total;
    a.max_running_requests = (int)max_running;
    a.mem_fraction_static = mem_frac;
    a.kv_cache_dtype = kv_dtype;
    a.schedule_policy = policy;
    a.disable_radix_cache = no_radix;
    a.skip_tokenizer_init = true;
    char err[512];
    if (engine_args_check(&a, err, sizeof err) != 0) {
        fprintf(stderr, "sglc bench_offline_throughput: %s\n", err);
        return 2;
    }
    engine *e = engine_start(&a);
    if (!e || engine_wait_ready(e) != 0) {
        fprintf(stderr, "sglc bench_offline_throughput: %s\n",
                e ? engine_start_error(e, err, sizeof err) : "out of memory");
        engine_stop(e);
        return 1;
    }
    engine_stats st;
    engine_get_stats(e, &st);
    long n = gsp ? G * P : num_prompts;
    bench_req *reqs = calloc((size_t)n, sizeof *reqs);
    int64_t *handles = calloc((size_t)n, sizeof *handles);
    sampler_rng rng;
    sampler_rng_seed(&rng, (uint64_t)seed);
    int64_t total_in = 0, total_out = 0;
    rc = reqs && handles ? 0 : 1;
    int32_t *system = gsp ? malloc((size_t)(S > 0 ? S : 1) * sizeof(int32_t)) : NULL;
    for (long i = 0; rc == 0 && i < n; i++) {
        bench_req *r = &reqs[i];
        if (gsp) {
            if (i % P == 0)
                for (long k = 0; k < S; k++) system[k] = random_token(&rng, st.vocab_size);
            r->n = S + Q;
            r->out = (int)O;
        } else {
            r->n = draw_len(&rng, in_len, ratio);
            r->out = (int)draw_len(&rng, out_len, ratio);
        }
        r->ids = malloc((size_t)r->n * sizeof(int32_t));
        if (!r->ids) {
            rc = 1;
            break;
        }
        int64_t k = 0;
        if (gsp)
            for (; k < S; k++) r->ids[k] = system[k];
        for (; k < r->n; k++) r->ids[k] = random_token(&rng, st.vocab_size);
        total_in += r->n;
        total_out += r->out;
    }
    free(system);
    if (rc == 0)
        printf("#Input tokens: %lld\n#Output tokens: %lld\n", (long long)total_in,
               (long long)total_out);
    double t0 = time_now_s();
    for (long i = 0; rc == 0 && i < n; i++) {
        engine_sampling s;
        engine_sampling_default(&s);
        s.temperature = 0;
        s.max_new_tokens = reqs[i].out;
        s.ignore_eos = true;
        handles[i] = engine_submit(e, reqs[i].ids, reqs[i].n, &s, NULL, err, sizeof err);
        if (handles[i] < 0) {
            fprintf(stderr, "sglc bench_offline_throughput: request %ld: %s\n", i, err);
            rc = 2;
        }
    }
    long done = 0;
    int64_t got_out = 0;
    while (rc == 0 && done < n) {
        engine_event ev;
        if (!engine_wait_event(e, &ev, -1)) continue;
        got_out += ev.n_ids;
        if (ev.finish == ENGINE_FINISH_ERROR || ev.finish == ENGINE_FINISH_ABORT) {
            fprintf(stderr, "sglc bench_offline_throughput: request failed: %s\n", ev.error);
            rc = 1;
        }
        if (ev.handle_done) done++;
        engine_event_clear(&ev);
    }
    double dt = time_now_s() - t0;
    if (rc == 0) {
        engine_get_stats(e, &st);
        printf("\n====== Offline Throughput Benchmark Result =======\n");
        printf("%-40s %s\n", "Backend:", "engine");
        printf("%-40s %s\n", "Dataset:", dataset);
        printf("%-40s %s\n", "Radix cache:", no_radix ? "disabled" : "enabled");
        printf("%-40s %ld\n", "Successful requests:", n);
        printf("%-40s %.2f\n", "Benchmark duration (s):", dt);
        printf("%-40s %lld\n", "Total input tokens:", (long long)total_in);
        printf("%-40s %lld\n", "Total generated tokens:", (long long)got_out);
        printf("%-40s %.2f\n", "Request throughput (req/s):", (double)n / dt);
        printf("%-40s %.2f\n", "Input token throughput (tok/s):", (double)total_in / dt);
        printf("%-40s %.2f\n", "Output token throughput (tok/s):", (double)got_out / dt);
        printf("%-40s %.2f\n", "Total token throughput (tok/s):",
               (double)(total_in + got_out) / dt);
        printf("%-40s %.3f\n", "Cache hit rate:", st.cache_hit_rate);
        printf("%-40s %lld (%lld chunked, %lld mixed)\n", "Forward passes:",
               (long long)st.forward_passes, (long long)st.chunked_prefills,
               (long long)st.mixed_batches);
        printf("%-40s %lld\n", "Retractions:", (long long)st.retractions);
        printf("==================================================\n");
    }
    for (long i = 0; reqs && i < n; i++) free(reqs[i].ids);
    free(reqs), free(handles);
    engine_stop(e);
    return rc;
}
