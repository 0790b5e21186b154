/* server_args: the flag table of `sglc launch_server` and the code that reads it. The table is
 * the single place that says what a flag means, its default (SGLang's), what values are valid
 * and which ones this build honours; the functions below only interpret it. SGLang's defaults
 * are from srt/server_args.py (v0.5.3), except --disaggregation-transfer-backend, whose default
 * here is ucx (sglc's transfer engine) instead of mooncake. */
#include "config/server_args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define F(field) offsetof(server_args, field)

static const char NO_PAR[] = "this build has no tensor, data, expert or pipeline parallelism "
                             "yet; it runs one process on one CPU (use 1)";

/* clang-format off */
static const server_arg_spec TABLE[] = {
    /* model and tokenizer */
    {"model-path", "model", SA_STR, F(model_path), NULL, NULL, NULL, NULL,
     "GGUF file, HF folder or hub id of the model (required)"},
    {"tokenizer-path", NULL, SA_STR, F(tokenizer_path), NULL, NULL, NULL, NULL,
     "tokenizer location (default: --model-path)"},
    {"tokenizer-mode", NULL, SA_STR, F(tokenizer_mode), "auto", "auto|slow", NULL, NULL,
     "auto or slow (sglc has one tokenizer implementation; both use it)"},
    {"skip-tokenizer-init", NULL, SA_BOOL, F(skip_tokenizer_init), "false", NULL, NULL, NULL,
     "no tokenizer: clients send input_ids and get output ids only"},
    {"trust-remote-code", NULL, SA_BOOL, F(trust_remote_code), "false", NULL, NULL, NULL,
     "allow model-provided code (sglc never runs code from a model folder; accepted)"},
    {"context-length", NULL, SA_INT, F(context_length), NULL, "1..", NULL, NULL,
     "maximum context length (default: the model's max_position_embeddings)"},
    {"dtype", NULL, SA_STR, F(dtype), "auto", "auto|half|float16|bfloat16|float|float32", NULL,
     NULL, "activation dtype"},
    {"kv-cache-dtype", NULL, SA_STR, F(kv_cache_dtype), "auto",
     "auto|fp32|float32|fp16|float16|bf16|bfloat16|fp8_e5m2|fp8_e4m3",
     "auto|fp32|float32|fp16|float16|bf16|bfloat16",
     "this build stores the KV cache as fp32, fp16 or bf16 (auto, fp32, fp16, bf16); "
     "it has no fp8 KV cache", "KV cache element type"},
    {"quantization", NULL, SA_STR, F(quantization), NULL,
     "awq|fp8|gptq|marlin|gptq_marlin|awq_marlin|bitsandbytes|gguf|modelopt|modelopt_fp4|"
     "petit_nvfp4|w8a8_int8|w8a8_fp8|moe_wna16|qoq|w4afp8|mxfp4", "gguf|w8a8_int8",
     "this build runs the weight types stored in GGUF files (F32, F16, BF16, Q8_0, Q4_0, Q4_1, "
     "K-quants) and w8a8_int8 checkpoints; leave --quantization out or use gguf or w8a8_int8",
     "weight quantization method"},
    {"served-model-name", NULL, SA_STR, F(served_model_name), NULL, NULL, NULL, NULL,
     "model id in the OpenAI API (default: --model-path)"},
    {"chat-template", NULL, SA_STR, F(chat_template), NULL, NULL, NULL, NULL,
     "chat template name or file (default: the tokenizer's)"},
    /* HTTP */
    {"host", NULL, SA_STR, F(host), "127.0.0.1", NULL, NULL, NULL, "HTTP bind address"},
    {"port", NULL, SA_INT, F(port), "30000", "1..65535", NULL, NULL, "HTTP port"},
    {"api-key", NULL, SA_STR, F(api_key), NULL, NULL, NULL, NULL,
     "require 'Authorization: Bearer KEY' (not on /health, /metrics)"},
    /* memory and scheduling */
    {"mem-fraction-static", NULL, SA_FLOAT, F(mem_fraction_static), NULL, "0.01..1", NULL, NULL,
     "fraction of memory for weights and the KV pool (default: heuristic)"},
    {"max-running-requests", NULL, SA_INT, F(max_running_requests), NULL, "1..", NULL, NULL,
     "maximum concurrent requests (default: from the KV pool)"},
    {"max-queued-requests", NULL, SA_INT, F(max_queued_requests), NULL, "1..", NULL, NULL,
     "waiting requests beyond this get 503 (default: no limit)"},
    {"max-total-tokens", NULL, SA_INT, F(max_total_tokens), NULL, "1..", NULL, NULL,
     "KV pool size in tokens (can only lower what memory allows)"},
    {"chunked-prefill-size", NULL, SA_INT, F(chunked_prefill_size), NULL, "-1|1..", NULL, NULL,
     "tokens per prefill chunk; -1 disables (default: by memory)"},
    {"max-prefill-tokens", NULL, SA_INT, F(max_prefill_tokens), "16384", "1..", NULL, NULL,
     "token budget of one prefill batch"},
    {"schedule-policy", NULL, SA_STR, F(schedule_policy), "fcfs",
     "lpm|random|fcfs|dfs-weight|lof|priority", "lpm|random|fcfs|lof",
     "this build's scheduler has the policies fcfs, lpm, random and lof",
     "order of the waiting queue"},
    {"schedule-conservativeness", NULL, SA_FLOAT, F(schedule_conservativeness), "1.0", "0..",
     NULL, NULL, "how conservatively new requests are admitted"},
    {"disable-radix-cache", NULL, SA_BOOL, F(disable_radix_cache), "false", NULL, NULL, NULL,
     "no prefix cache (always so in decode mode)"},
    {"page-size", NULL, SA_INT, F(page_size), "1", "1..", NULL, NULL, "tokens per KV page"},
    {"enable-mixed-chunk", NULL, SA_BOOL, F(enable_mixed_chunk), "false", NULL, NULL, NULL,
     "mix prefill chunks and decodes in one batch"},
    /* runtime */
    {"device", NULL, SA_STR, F(device), NULL, NULL, "cpu", "this build has devices: cpu",
     "device to run on (default: auto, which is cpu here)"},
    {"attention-backend", NULL, SA_STR, F(attention_backend), NULL,
     "aiter|cutlass_mla|fa3|fa4|flashinfer|flashmla|intel_amx|torch_native|ascend|triton|"
     "trtllm_mla|trtllm_mha|dual_chunk_flash_attn|hybrid_linear_attn|wave|intel_xpu|"
     "flex_attention", "torch_native",
     "this build has attention backends: torch_native (cpu)",
     "attention kernels (default: auto, which is torch_native here)"},
    {"threads", NULL, SA_INT, F(threads), "0", "0..", NULL, NULL,
     "sglc: compute threads (0: one per physical core)"},
    {"random-seed", NULL, SA_INT, F(random_seed), NULL, "0..", NULL, NULL,
     "random seed (default: random)"},
    {"stream-interval", NULL, SA_INT, F(stream_interval), "1", "1..", NULL, NULL,
     "stream every N tokens"},
    {"watchdog-timeout", NULL, SA_FLOAT, F(watchdog_timeout), "300", "1..", NULL, NULL,
     "seconds one batch may run before the server is deemed stuck and exits (status 1)"},
    {"skip-server-warmup", NULL, SA_BOOL, F(skip_server_warmup), "false", NULL, NULL, NULL,
     "do not run a warm-up request before reporting ready"},
    {"disable-cuda-graph", NULL, SA_BOOL, F(disable_cuda_graph), "false", NULL, NULL, NULL,
     "accepted; the CPU build captures no graphs"},
    /* logging and metrics */
    {"log-level", NULL, SA_STR, F(log_level), "info", "debug|info|warning|error|critical", NULL,
     NULL, "log level"},
    {"log-requests", NULL, SA_BOOL, F(log_requests), "false", NULL, NULL, NULL,
     "log each request's inputs and outputs"},
    {"log-requests-level", NULL, SA_INT, F(log_requests_level), "2", "0|1|2|3", NULL, NULL,
     "detail of --log-requests: 0 metadata, 1 +params, 2 +partial text, 3 everything"},
    {"decode-log-interval", NULL, SA_INT, F(decode_log_interval), "40", "1..", NULL, NULL,
     "log decode batch statistics every N steps"},
    {"enable-metrics", NULL, SA_BOOL, F(enable_metrics), "false", NULL, NULL, NULL,
     "serve Prometheus metrics on /metrics"},
    {"enable-cache-report", NULL, SA_BOOL, F(enable_cache_report), "false", NULL, NULL, NULL,
     "report cached tokens in OpenAI usage"},
    /* parallelism */
    {"tp-size", "tensor-parallel-size|tp", SA_INT, F(tp_size), "1", "1..", "1", NO_PAR,
     "tensor parallel size"},
    {"dp-size", "data-parallel-size|dp", SA_INT, F(dp_size), "1", "1..", "1", NO_PAR,
     "data parallel size"},
    {"ep-size", "expert-parallel-size|ep", SA_INT, F(ep_size), "1", "1..", "1", NO_PAR,
     "expert parallel size"},
    {"pp-size", "pipeline-parallel-size|pp", SA_INT, F(pp_size), "1", "1..", "1", NO_PAR,
     "pipeline parallel size"},
    {"nnodes", NULL, SA_INT, F(nnodes), "1", "1..", "1",
     "this build runs on one node (multi-node needs parallelism, which it lacks)",
     "number of nodes"},
    {"node-rank", NULL, SA_INT, F(node_rank), "0", "0..", "0",
     "this build runs on one node (multi-node needs parallelism, which it lacks)",
     "this node's rank"},
    {"dist-init-addr", NULL, SA_STR, F(dist_init_addr), NULL, NULL, NULL, NULL,
     "HOST:PORT of node 0 (PD: the bootstrap server registers at this host)"},
    {"enable-dp-attention", NULL, SA_BOOL, F(enable_dp_attention), "false", NULL, "false",
     "this build has no data-parallel attention (it needs parallelism, which it lacks)",
     "data-parallel attention"},
    {"enable-deepep-moe", NULL, SA_BOOL, F(enable_deepep_moe), "false", NULL, "false",
     "this build has no DeepEP expert parallelism (MoE runs in one process)",
     "deprecated: same as --moe-a2a-backend deepep"},
    {"moe-a2a-backend", NULL, SA_STR, F(moe_a2a_backend), "none", "none|deepep", "none",
     "this build has no DeepEP expert parallelism (MoE runs in one process)",
     "MoE all-to-all backend"},
    {"deepep-mode", NULL, SA_STR, F(deepep_mode), "auto", "normal|low_latency|auto", "auto",
     "this build has no DeepEP, so it has no DeepEP modes",
     "DeepEP mode (auto: normal for prefill, low_latency for decode)"},
    {"speculative-algorithm", NULL, SA_STR, F(speculative_algorithm), NULL,
     "EAGLE|EAGLE3|NEXTN|STANDALONE|NGRAM", "",
     "this build has no speculative decoding", "speculative decoding algorithm"},
    /* PD disaggregation */
    {"disaggregation-mode", NULL, SA_STR, F(disaggregation_mode), "null", "null|prefill|decode",
     NULL, NULL, "PD disaggregation role"},
    {"disaggregation-bootstrap-port", NULL, SA_INT, F(disaggregation_bootstrap_port), "8998",
     "1..65535", NULL, NULL, "prefill side: the bootstrap server's port"},
    {"disaggregation-transfer-backend", NULL, SA_STR, F(disaggregation_transfer_backend), "ucx",
     "ucx|mooncake|nixl|ascend|fake", "ucx|fake",
     "this build has KV transfer backends: ucx (shared memory, TCP, RDMA) and fake; it lacks "
     "mooncake, nixl and ascend", "KV cache transfer engine"},
    {"disaggregation-decode-tp", NULL, SA_INT, F(disaggregation_decode_tp), NULL, "1..", "1",
     NO_PAR, "decode side TP size (prefill mode; default: --tp-size)"},
    {"disaggregation-decode-dp", NULL, SA_INT, F(disaggregation_decode_dp), NULL, "1..", "1",
     NO_PAR, "decode side DP size (prefill mode; default: --dp-size)"},
    {"num-reserved-decode-tokens", NULL, SA_INT, F(num_reserved_decode_tokens), "512", "0..",
     NULL, NULL, "decode side: KV tokens reserved per request for its output"},
};
/* clang-format on */

#define N_TABLE ((int)(sizeof TABLE / sizeof TABLE[0]))

const server_arg_spec *server_args_table(int *n) {
    *n = N_TABLE;
    return TABLE;
}

/* ---------- value sets ---------- */

/* Calls fn on each '|'-separated alternative; stops when it returns true. */
static bool any_alt(const char *set, bool (*fn)(const char *alt, size_t len, const void *ctx),
                    const void *ctx) {
    for (const char *p = set;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (fn(p, len, ctx)) return true;
        if (!bar) return false;
        p = bar + 1;
    }
}

static bool alt_is_str(const char *alt, size_t len, const void *ctx) {
    const char *s = ctx;
    return len > 0 && strlen(s) == len && !strncmp(alt, s, len);
}

static bool alt_has_num(const char *alt, size_t len, const void *ctx) {
    double v = *(const double *)ctx;
    char buf[64];
    if (len == 0 || len >= sizeof buf) return false;
    memcpy(buf, alt, len);
    buf[len] = 0;
    char *dots = strstr(buf, "..");
    if (!dots) return strtod(buf, NULL) == v;
    *dots = 0;
    if (buf[0] && v < strtod(buf, NULL)) return false;
    if (dots[2] && v > strtod(dots + 2, NULL)) return false;
    return true;
}

static bool str_in(const char *set, const char *s) { return any_alt(set, alt_is_str, s); }
static bool num_in(const char *set, double v) { return any_alt(set, alt_has_num, &v); }

/* "a|b|c" -> "a, b, c" */
static void list_set(const char *set, char *out, size_t len) {
    size_t o = 0;
    for (const char *p = set; *p && o + 3 < len; p++) {
        if (*p == '|') {
            out[o++] = ',';
            out[o++] = ' ';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = 0;
}

/* ---------- fields ---------- */

static const char **str_field(server_args *a, const server_arg_spec *s) {
    return (const char **)((char *)a + s->offset);
}
static long *int_field(server_args *a, const server_arg_spec *s) {
    return (long *)((char *)a + s->offset);
}
static double *float_field(server_args *a, const server_arg_spec *s) {
    return (double *)((char *)a + s->offset);
}
static bool *bool_field(server_args *a, const server_arg_spec *s) {
    return (bool *)((char *)a + s->offset);
}

void server_args_defaults(server_args *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < N_TABLE; i++) {
        const server_arg_spec *s = &TABLE[i];
        switch (s->type) {
        case SA_STR: *str_field(out, s) = s->def; break;
        case SA_INT:
            *int_field(out, s) = s->def ? strtol(s->def, NULL, 10) : SERVER_ARGS_UNSET;
            break;
        case SA_FLOAT: *float_field(out, s) = s->def ? strtod(s->def, NULL) : NAN; break;
        case SA_BOOL: *bool_field(out, s) = s->def && !strcmp(s->def, "true"); break;
        }
    }
}

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return 2;
}

/* Stores one value after checking its type and that it is valid at all. */
static int store(server_args *a, const server_arg_spec *s, const char *v, char *err,
                 size_t err_len) {
    char *end;
    char set[512];
    errno = 0;
    switch (s->type) {
    case SA_STR:
        if (s->valid && !str_in(s->valid, v)) {
            list_set(s->valid, set, sizeof set);
            return fail(err, err_len, "--%s: invalid choice '%s' (choose from %s)", s->name, v,
                        set);
        }
        *str_field(a, s) = v;
        return 0;
    case SA_INT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end)
            return fail(err, err_len, "--%s: expected an integer, got '%s'", s->name, v);
        if (s->valid && !num_in(s->valid, (double)x)) {
            list_set(s->valid, set, sizeof set);
            return fail(err, err_len, "--%s: %ld is out of range (%s)", s->name, x, set);
        }
        *int_field(a, s) = x;
        return 0;
    }
    case SA_FLOAT: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x))
            return fail(err, err_len, "--%s: expected a number, got '%s'", s->name, v);
        if (s->valid && !num_in(s->valid, x)) {
            list_set(s->valid, set, sizeof set);
            return fail(err, err_len, "--%s: %g is out of range (%s)", s->name, x, set);
        }
        *float_field(a, s) = x;
        return 0;
    }
    case SA_BOOL: *bool_field(a, s) = true; return 0;
    }
    return 2;
}

/* Matches "--model_path" or "--tp" against a spec's name and aliases. */
static bool alt_is_flag(const char *alt, size_t len, const void *ctx) {
    const char *given = ctx;
    if (strlen(given) != len) return false;
    for (size_t i = 0; i < len; i++) {
        char g = given[i] == '_' ? '-' : given[i];
        if (g != alt[i]) return false;
    }
    return true;
}

static const server_arg_spec *find_flag(const char *name) {
    for (int i = 0; i < N_TABLE; i++) {
        if (alt_is_flag(TABLE[i].name, strlen(TABLE[i].name), name)) return &TABLE[i];
        if (TABLE[i].aliases && any_alt(TABLE[i].aliases, alt_is_flag, name)) return &TABLE[i];
    }
    return NULL;
}

/* dist-init-addr is HOST:PORT (an IPv6 host in brackets). */
static bool valid_host_port(const char *s) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || !colon[1]) return false;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    return !*end && p >= 1 && p <= 65535;
}

void server_args_derive(server_args *a) {
    if (!a->tokenizer_path) a->tokenizer_path = a->model_path;
    if (!a->served_model_name) a->served_model_name = a->model_path;
    if (a->enable_deepep_moe) a->moe_a2a_backend = "deepep";
    if (a->moe_a2a_backend && !strcmp(a->moe_a2a_backend, "deepep")) a->ep_size = a->tp_size;
    if (a->attention_backend && !strcmp(a->attention_backend, "ascend")) a->page_size = 128;
    if (a->disaggregation_mode && !strcmp(a->disaggregation_mode, "decode"))
        a->disable_radix_cache = true;
    if (a->disaggregation_mode && !strcmp(a->disaggregation_mode, "prefill")) {
        if (a->disaggregation_decode_tp == SERVER_ARGS_UNSET)
            a->disaggregation_decode_tp = a->tp_size;
        if (a->disaggregation_decode_dp == SERVER_ARGS_UNSET)
            a->disaggregation_decode_dp = a->dp_size;
    }
    if (a->random_seed == SERVER_ARGS_UNSET) {
        uint32_t r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            r = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
        a->random_seed = (long)(r % ((1u << 30) + 1)); /* SGLang: randint(0, 2**30) */
    }
}

static void append(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *err, size_t len, const char *fmt, ...) {
    size_t used = strlen(err);
    if (used + 1 >= len) return;
    if (used) err[used++] = '\n', err[used] = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + used, len - used, fmt, ap);
    va_end(ap);
}

int server_args_check_support(const server_args *a, char *err, size_t err_len) {
    if (err_len) err[0] = 0;
    int refused = 0;
    server_args *m = (server_args *)a; /* the field accessors are shared with the writers */
    for (int i = 0; i < N_TABLE; i++) {
        const server_arg_spec *s = &TABLE[i];
        if (!s->honoured) continue;
        char val[64];
        bool ok = true;
        switch (s->type) {
        case SA_STR: {
            const char *v = *str_field(m, s);
            if (!v) continue; /* None: the build picks what it has */
            ok = str_in(s->honoured, v);
            snprintf(val, sizeof val, "%s", v);
            break;
        }
        case SA_INT: {
            long v = *int_field(m, s);
            if (v == SERVER_ARGS_UNSET) continue;
            ok = num_in(s->honoured, (double)v);
            snprintf(val, sizeof val, "%ld", v);
            break;
        }
        case SA_FLOAT: {
            double v = *float_field(m, s);
            if (isnan(v)) continue;
            ok = num_in(s->honoured, v);
            snprintf(val, sizeof val, "%g", v);
            break;
        }
        case SA_BOOL:
            ok = !*bool_field(m, s) || strcmp(s->honoured, "false") != 0;
            val[0] = 0;
            break;
        }
        if (ok) continue;
        refused++;
        append(err, err_len, "--%s%s%s: %s", s->name, val[0] ? " " : "", val, s->refusal);
    }
    return refused;
}

int server_args_parse(int argc, char **argv, server_args *out, char *err, size_t err_len) {
    if (err_len) err[0] = 0;
    server_args_defaults(out);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            server_args_print_help();
            return 1;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || !arg[2])
            return fail(err, err_len, "unexpected argument '%s'", arg);
        char name[128];
        const char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (nlen >= sizeof name) return fail(err, err_len, "unknown flag %.60s...", arg);
        memcpy(name, arg + 2, nlen);
        name[nlen] = 0;
        const server_arg_spec *s = find_flag(name);
        if (!s)
            return fail(err, err_len, "unknown flag --%s (see sglc launch_server --help)", name);
        const char *value;
        if (s->type == SA_BOOL) {
            if (eq) return fail(err, err_len, "--%s takes no value", s->name);
            value = "true";
        } else if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc) return fail(err, err_len, "--%s expects a value", s->name);
            value = argv[++i];
        }
        int rc = store(out, s, value, err, err_len);
        if (rc) return rc;
    }
    if (!out->model_path || !*out->model_path)
        return fail(err, err_len, "the following arguments are required: --model-path");
    if (out->node_rank >= out->nnodes)
        return fail(err, err_len, "--node-rank %ld must be below --nnodes %ld", out->node_rank,
                    out->nnodes);
    if (out->dist_init_addr && !valid_host_port(out->dist_init_addr))
        return fail(err, err_len, "--dist-init-addr: expected HOST:PORT, got '%s'",
                    out->dist_init_addr);
    if (out->api_key && !*out->api_key) return fail(err, err_len, "--api-key: the key is empty");
    server_args_derive(out);
    if (server_args_check_support(out, err, err_len) > 0) return 2;
    return 0;
}

long server_args_default_chunked_prefill(double mem_gb) {
    if (mem_gb < 35) return 2048;
    if (mem_gb < 160) return 8192;
    return 16384;
}

json_t *server_args_to_json(const server_args *a) {
    json_t *o = json_object();
    server_args *m = (server_args *)a;
    for (int i = 0; i < N_TABLE; i++) {
        const server_arg_spec *s = &TABLE[i];
        char key[128];
        snprintf(key, sizeof key, "%s", s->name);
        for (char *p = key; *p; p++)
            if (*p == '-') *p = '_';
        json_t *v = NULL;
        switch (s->type) {
        case SA_STR: v = *str_field(m, s) ? json_string(*str_field(m, s)) : json_null(); break;
        case SA_INT: {
            long x = *int_field(m, s);
            v = x == SERVER_ARGS_UNSET ? json_null() : json_integer(x);
            break;
        }
        case SA_FLOAT: {
            double x = *float_field(m, s);
            v = isnan(x) ? json_null() : json_real(x);
            break;
        }
        case SA_BOOL: v = json_boolean(*bool_field(m, s)); break;
        }
        json_object_set_new(o, key, v ? v : json_null());
    }
    return o;
}

void server_args_print_help(void) {
    printf("usage: sglc launch_server --model-path PATH [options]\n\n"
           "Flags take '--flag value' or '--flag=value'; '_' may replace '-'. A value this build "
           "cannot honour\nis refused (exit status 2) with the reason.\n\noptions:\n");
    static const char *types[] = {"STR", "INT", "FLOAT", ""};
    for (int i = 0; i < N_TABLE; i++) {
        const server_arg_spec *s = &TABLE[i];
        char flag[96], set[512];
        snprintf(flag, sizeof flag, "--%s %s", s->name, types[s->type]);
        printf("  %-40s %s", flag, s->help);
        printf(" [default: %s]", s->def ? s->def : "None");
        if (s->valid && s->type == SA_STR) {
            list_set(s->valid, set, sizeof set);
            printf(" {%s}", set);
        }
        if (s->honoured && s->type != SA_BOOL) {
            list_set(s->honoured, set, sizeof set);
            printf(" (this build: %s)", set[0] ? set : "none");
        }
        if (s->aliases) {
            printf(" (also");
            for (const char *p = s->aliases; *p;) {
                size_t len = strcspn(p, "|");
                printf(" --%.*s", (int)len, p);
                p += len + (p[len] == '|');
            }
            printf(")");
        }
        printf("\n");
    }
}
