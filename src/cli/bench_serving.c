/* `sglc bench_serving` (SGLang's `python -m sglang.bench_serving`): drives a running server over
 * HTTP with streamed requests and prints SGLang's table (request, input and output throughput;
 * TTFT, ITL and end-to-end latency). Backends: sglang (native /generate), sglang-oai and vllm
 * (/v1/completions), sglang-oai-chat and vllm-chat (/v1/chat/completions) — the OpenAI ones
 * also drive llama.cpp's llama-server, so the two servers are compared side by side. Datasets
 * need no download: random-ids (random token ids of the requested lengths) and
 * generated-shared-prefix (groups of prompts sharing a long system prompt). Every request sets
 * ignore_eos, so output lengths are the ones asked for. One libevent loop on this thread runs
 * every request; nothing blocks while they run. */
#include <event2/event.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "http/http_client.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"

typedef enum { BK_NATIVE, BK_COMPLETIONS, BK_CHAT } bench_kind;

typedef struct bench bench;

typedef struct {
    bench *b;
    int32_t *ids;
    int n_in, n_out;
    char *text; /* chat backends: the prompt as text */
    /* results */
    double t_start, t_first, t_last, t_end;
    double *itl;
    int n_itl, cap_itl;
    int out_tokens;   /* counted from the stream */
    int usage_tokens; /* completion_tokens reported by the server, when it does */
    bool ok, done;
    char err[300];
    char *buf; /* SSE bytes not yet parsed */
    size_t len;
} bench_req;

struct bench {
    struct event_base *base;
    bench_kind kind;
    const char *backend, *model;
    char *model_owned; /* the id read from /v1/models */
    char url[512], base_url[400];
    bool stream;
    bench_req *reqs;
    long n, next, running, finished;
    long released; /* requests whose arrival time has come */
    long max_conc;
    double rate;
    sampler_rng rng;
    struct event *arrival;
    double t0;
    const char *headers[3]; /* Authorization from $OPENAI_API_KEY, as SGLang's tool sends */
    char auth[300];
};

static void start_next(bench *b);

static int32_t random_token(sampler_rng *rng, int vocab) {
    int lo = vocab > 1000 ? 200 : 3; /* skip the first ids: special tokens in most vocabularies */
    return lo + (int32_t)(sampler_rng_uniform(rng) * (float)(vocab - lo - 1));
}

static long draw_len(sampler_rng *rng, long len, double ratio) {
    long lo = (long)((double)len * ratio);
    if (lo < 1) lo = 1;
    if (lo >= len) return len;
    return lo + (long)(sampler_rng_uniform(rng) * (float)(len - lo + 1));
}

static void add_itl(bench_req *r, double v) {
    if (r->n_itl == r->cap_itl) {
        int cap = r->cap_itl ? r->cap_itl * 2 : 64;
        double *p = realloc(r->itl, (size_t)cap * sizeof *p);
        if (!p) return;
        r->itl = p, r->cap_itl = cap;
    }
    r->itl[r->n_itl++] = v;
}

/* One SSE event's JSON: how many new tokens it carries. */
static int tokens_in_event(bench_req *r, json_t *ev) {
    bench *b = r->b;
    if (b->kind == BK_NATIVE) return (int)json_array_size(json_object_get(ev, "output_ids"));
    json_t *usage = json_object_get(ev, "usage");
    if (json_is_object(usage) && json_is_integer(json_object_get(usage, "completion_tokens")))
        r->usage_tokens = (int)json_integer_value(json_object_get(usage, "completion_tokens"));
    json_t *ch = json_array_get(json_object_get(ev, "choices"), 0);
    if (!ch) return 0;
    const json_t *delta = json_object_get(ch, "delta");
    const char *t = b->kind == BK_CHAT ? json_string_value(json_object_get(delta, "content"))
                                       : json_string_value(json_object_get(ch, "text"));
    return t && *t ? 1 : 0;
}

static void on_event_data(bench_req *r, const char *data, size_t len) {
    if (len == 6 && !memcmp(data, "[DONE]", 6)) return;
    json_t *ev = json_loadb(data, len, 0, NULL);
    if (!ev) return;
    if (json_object_get(ev, "error")) {
        snprintf(r->err, sizeof r->err, "%s", "error event in the stream");
        r->ok = false;
    }
    int k = tokens_in_event(r, ev);
    json_decref(ev);
    if (k <= 0) return;
    double now = time_now_s();
    if (r->t_first == 0) r->t_first = now;
    else add_itl(r, now - r->t_last);
    r->t_last = now;
    r->out_tokens += k;
}

static void on_chunk(http_call *c, const char *data, size_t len, void *ud) {
    (void)c;
    bench_req *r = ud;
    char *p = realloc(r->buf, r->len + len + 1);
    if (!p) return;
    r->buf = p;
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    r->buf[r->len] = 0;
    size_t start = 0;
    for (;;) {
        char *end = strstr(r->buf + start, "\n\n");
        if (!end) break;
        const char *line = r->buf + start;
        if (!strncmp(line, "data: ", 6) || !strncmp(line, "data:", 5)) {
            const char *d = line + (line[5] == ' ' ? 6 : 5);
            on_event_data(r, d, (size_t)(end - d));
        }
        start = (size_t)(end - r->buf) + 2;
    }
    memmove(r->buf, r->buf + start, r->len - start);
    r->len -= start;
}

static void on_done(http_call *c, int status, const char *body, size_t len, const char *err,
                    void *ud) {
    (void)c;
    bench_req *r = ud;
    bench *b = r->b;
    r->t_end = time_now_s();
    r->done = true;
    if (status != 200) {
        r->ok = false;
        snprintf(r->err, sizeof r->err, "HTTP %d %s %.*s", status, err ? err : "",
                 (int)(len < 100 ? len : 100), body ? body : "");
    } else if (!b->stream && body) {
        json_t *j = json_loadb(body, len, 0, NULL);
        json_t *u = json_object_get(j, "usage");
        json_t *m = json_object_get(j, "meta_info");
        json_t *ct = u ? json_object_get(u, "completion_tokens")
                       : json_object_get(m, "completion_tokens");
        r->out_tokens = (int)json_integer_value(ct);
        r->t_first = r->t_end;
        json_decref(j);
    } else if (r->usage_tokens > 0) {
        r->out_tokens = r->usage_tokens;
    } else if (r->ok && r->out_tokens == 0) {
        r->ok = false;
        snprintf(r->err, sizeof r->err, "no tokens in the stream");
    }
    b->running--;
    b->finished++;
    if (b->finished == b->n) event_base_loopbreak(b->base);
    else start_next(b);
}

static json_t *request_body(bench *b, bench_req *r) {
    json_t *ids = json_array();
    for (int i = 0; i < r->n_in; i++) json_array_append_new(ids, json_integer(r->ids[i]));
    if (b->kind == BK_NATIVE)
        return json_pack("{s:o, s:{s:i, s:i, s:b}, s:b}", "input_ids", ids, "sampling_params",
                         "temperature", 0, "max_new_tokens", r->n_out, "ignore_eos", 1, "stream",
                         b->stream);
    json_t *o = json_pack("{s:s, s:i, s:i, s:b, s:b}", "model", b->model, "max_tokens", r->n_out,
                          "temperature", 0, "ignore_eos", 1, "stream", b->stream);
    if (b->stream)
        json_object_set_new(o, "stream_options", json_pack("{s:b}", "include_usage", 1));
    if (b->kind == BK_CHAT) {
        json_decref(ids);
        json_object_set_new(o, "messages", json_pack("[{s:s, s:s}]", "role", "user", "content",
                                                     r->text ? r->text : ""));
    } else {
        json_object_set_new(o, "prompt", ids);
    }
    return o;
}

static void start_one(bench *b) {
    bench_req *r = &b->reqs[b->next++];
    r->b = b;
    r->ok = true;
    json_t *body = request_body(b, r);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    http_call_cbs cbs = {NULL, b->stream ? on_chunk : NULL, on_done, r};
    http_call_req req = {.method = "POST", .url = b->url, .body = text,
                         .body_len = text ? strlen(text) : 0,
                         .headers = b->headers[0] ? b->headers : NULL, .timeout_s = 3600};
    char err[256] = "out of memory";
    r->t_start = time_now_s();
    b->running++;
    if (!text || !http_call_start(b->base, &req, &cbs, err, sizeof err)) {
        r->ok = false;
        r->done = true;
        snprintf(r->err, sizeof r->err, "%s", err);
        b->running--;
        b->finished++;
        if (b->finished == b->n) event_base_loopbreak(b->base);
    }
    free(text);
    json_decref(body);
}

static void on_arrival(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    bench *b = arg;
    b->released++;
    start_next(b);
    if (b->released < b->n) {
        double gap = -log(1.0 - (double)sampler_rng_uniform(&b->rng) * 0.999999) / b->rate;
        struct timeval tv = {(time_t)gap, (suseconds_t)((gap - floor(gap)) * 1e6)};
        evtimer_add(b->arrival, &tv);
    }
}

/* Starts the requests whose arrival time has come (all of them with an infinite rate) while
 * fewer than max_concurrency are in flight. */
static void start_next(bench *b) {
    long limit = isinf(b->rate) ? b->n : b->released;
    while (b->next < limit && (b->max_conc <= 0 || b->running < b->max_conc)) start_one(b);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, long n, double p) {
    if (n == 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double pos = p / 100.0 * (double)(n - 1);
    long i = (long)pos;
    double f = pos - (double)i;
    return i + 1 < n ? v[i] * (1 - f) + v[i + 1] * f : v[i];
}

static double mean(const double *v, long n) {
    double s = 0;
    for (long i = 0; i < n; i++) s += v[i];
    return n ? s / (double)n : 0;
}

/* Synchronous GET/POST for the set-up calls (model id, vocab size, flush). */
typedef struct {
    int status;
    char *body;
} sync_result;

static void sync_done(http_call *c, int status, const char *body, size_t len, const char *err,
                      void *ud) {
    (void)c, (void)err;
    sync_result *r = ud;
    r->status = status;
    r->body = body ? strndup(body, len) : NULL;
}

static sync_result sync_call(bench *b, const char *method, const char *url) {
    sync_result r = {-1, NULL};
    struct event_base *base = b->base;
    http_call_req req = {.method = method, .url = url, .timeout_s = 60,
                         .headers = b->headers[0] ? b->headers : NULL};
    http_call_cbs cbs = {NULL, NULL, sync_done, &r};
    char err[256];
    if (!http_call_start(base, &req, &cbs, err, sizeof err)) return r;
    while (r.status == -1) event_base_loop(base, EVLOOP_ONCE);
    event_base_loop(base, EVLOOP_NONBLOCK); /* lets the finished call free its connection */
    return r;
}

static int setup_server(bench *b, const char *tokenizer_path, long *vocab, tokenizer **tok) {
    char url[600];
    if (!b->model) {
        snprintf(url, sizeof url, "%s/v1/models", b->base_url);
        sync_result r = sync_call(b, "GET", url);
        json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
        const char *id = json_string_value(json_object_get(json_array_get(
            json_object_get(j, "data"), 0), "id"));
        b->model_owned = id ? strdup(id) : NULL;
        b->model = b->model_owned ? b->model_owned : "default";
        json_decref(j);
        free(r.body);
    }
    if (tokenizer_path) {
        char err[512];
        *tok = tok_load_path(tokenizer_path, err, sizeof err);
        if (!*tok) {
            fprintf(stderr, "sglc bench_serving: --tokenizer: %s\n", err);
            return 2;
        }
        if (*vocab <= 0) *vocab = (long)tok_vocab_size(*tok);
    }
    if (*vocab <= 0) {
        snprintf(url, sizeof url, "%s/get_server_info", b->base_url);
        sync_result r = sync_call(b, "GET", url);
        json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
        *vocab = (long)json_integer_value(json_object_get(j, "vocab_size"));
        json_decref(j);
        free(r.body);
        if (*vocab <= 0) {
            fprintf(stderr, "sglc bench_serving: the server does not report its vocabulary "
                            "size; pass --random-vocab-size or --tokenizer\n");
            return 2;
        }
    }
    if (b->kind == BK_CHAT && !*tok) {
        fprintf(stderr, "sglc bench_serving: chat backends send text: pass --tokenizer (the "
                        "model file) to turn the random ids into text\n");
        return 2;
    }
    return 0;
}

static void print_results(bench *b, double dt, const char *out_file, const char *dataset) {
    long ok = 0, n_itl = 0;
    int64_t in = 0, out = 0;
    for (long i = 0; i < b->n; i++)
        if (b->reqs[i].ok) ok++, in += b->reqs[i].n_in, out += b->reqs[i].out_tokens,
                           n_itl += b->reqs[i].n_itl;
    double *ttft = calloc((size_t)(ok + 1), sizeof(double));
    double *e2e = calloc((size_t)(ok + 1), sizeof(double));
    double *itl = calloc((size_t)(n_itl + 1), sizeof(double));
    if (!ttft || !e2e || !itl) {
        free(ttft), free(e2e), free(itl);
        return;
    }
    long k = 0, m = 0;
    double busy = 0;
    for (long i = 0; i < b->n; i++) {
        bench_req *r = &b->reqs[i];
        if (!r->ok) continue;
        ttft[k] = (r->t_first - r->t_start) * 1000;
        e2e[k++] = (r->t_end - r->t_start) * 1000;
        busy += r->t_end - r->t_start;
        for (int j = 0; j < r->n_itl; j++) itl[m++] = r->itl[j] * 1000;
    }
    double ttft_mean = mean(ttft, k), e2e_mean = mean(e2e, k), itl_mean = mean(itl, m);
    double ttft_med = pct(ttft, k, 50), ttft_p99 = pct(ttft, k, 99);
    double e2e_med = pct(e2e, k, 50), e2e_p99 = pct(e2e, k, 99);
    double itl_med = pct(itl, m, 50), itl_p95 = pct(itl, m, 95), itl_p99 = pct(itl, m, 99);
    double itl_max = m ? itl[m - 1] : 0;
    printf("\n============ Serving Benchmark Result ============\n");
    printf("%-40s %s\n", "Backend:", b->backend);
    if (isinf(b->rate)) printf("%-40s %s\n", "Traffic request rate:", "inf");
    else printf("%-40s %.2f\n", "Traffic request rate:", b->rate);
    if (b->max_conc > 0) printf("%-40s %ld\n", "Max request concurrency:", b->max_conc);
    else printf("%-40s %s\n", "Max request concurrency:", "not set");
    printf("%-40s %ld\n", "Successful requests:", ok);
    printf("%-40s %.2f\n", "Benchmark duration (s):", dt);
    printf("%-40s %lld\n", "Total input tokens:", (long long)in);
    printf("%-40s %lld\n", "Total generated tokens:", (long long)out);
    printf("%-40s %.2f\n", "Request throughput (req/s):", (double)ok / dt);
    printf("%-40s %.2f\n", "Input token throughput (tok/s):", (double)in / dt);
    printf("%-40s %.2f\n", "Output token throughput (tok/s):", (double)out / dt);
    printf("%-40s %.2f\n", "Total token throughput (tok/s):", (double)(in + out) / dt);
    printf("%-40s %.2f\n", "Concurrency:", busy / dt);
    printf("%s\n", "----------------End-to-End Latency----------------");
    printf("%-40s %.2f\n%-40s %.2f\n%-40s %.2f\n", "Mean E2E Latency (ms):", e2e_mean,
           "Median E2E Latency (ms):", e2e_med, "P99 E2E Latency (ms):", e2e_p99);
    printf("%s\n", "---------------Time to First Token----------------");
    printf("%-40s %.2f\n%-40s %.2f\n%-40s %.2f\n", "Mean TTFT (ms):", ttft_mean,
           "Median TTFT (ms):", ttft_med, "P99 TTFT (ms):", ttft_p99);
    printf("%s\n", "---------------Inter-Token Latency----------------");
    printf("%-40s %.2f\n%-40s %.2f\n%-40s %.2f\n%-40s %.2f\n%-40s %.2f\n", "Mean ITL (ms):",
           itl_mean, "Median ITL (ms):", itl_med, "P95 ITL (ms):", itl_p95, "P99 ITL (ms):",
           itl_p99, "Max ITL (ms):", itl_max);
    printf("==================================================\n");
    for (long i = 0, shown = 0; i < b->n && shown < 3; i++)
        if (!b->reqs[i].ok) fprintf(stderr, "request %ld failed: %s\n", i, b->reqs[i].err), shown++;
    if (out_file) {
        json_t *o = json_pack(
            "{s:s, s:s, s:f, s:I, s:I, s:f, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, "
            "s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
            "backend", b->backend, "dataset_name", dataset, "request_rate",
            isinf(b->rate) ? -1.0 : b->rate, "max_concurrency", (json_int_t)b->max_conc,
            "completed", (json_int_t)ok, "duration", dt, "total_input_tokens", (json_int_t)in,
            "total_output_tokens", (json_int_t)out, "request_throughput", (double)ok / dt,
            "input_throughput", (double)in / dt, "output_throughput", (double)out / dt,
            "mean_e2e_latency_ms", e2e_mean, "median_e2e_latency_ms", e2e_med,
            "p99_e2e_latency_ms", e2e_p99, "mean_ttft_ms", ttft_mean, "median_ttft_ms",
            ttft_med, "p99_ttft_ms", ttft_p99, "mean_itl_ms", itl_mean, "median_itl_ms", itl_med,
            "p95_itl_ms", itl_p95, "p99_itl_ms", itl_p99, "max_itl_ms", itl_max, "concurrency",
            busy / dt);
        FILE *f = fopen(out_file, "a");
        char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (f && line) fprintf(f, "%s\n", line);
        else fprintf(stderr, "sglc bench_serving: cannot write %s\n", out_file);
        if (f) fclose(f);
        free(line);
        json_decref(o);
    }
    free(ttft), free(e2e), free(itl);
}

/* Builds the workload: lengths and random ids (and text for chat backends). */
static int make_workload(bench *b, bool gsp, long vocab, tokenizer *tok, long in_len,
                         long out_len, double ratio, long P, long S, long Q, long O) {
    b->reqs = calloc((size_t)b->n, sizeof *b->reqs);
    int32_t *system = gsp ? malloc((size_t)(S > 0 ? S : 1) * sizeof(int32_t)) : NULL;
    if (!b->reqs || (gsp && !system)) return free(system), -1;
    for (long i = 0; i < b->n; i++) {
        bench_req *r = &b->reqs[i];
        if (gsp && i % P == 0)
            for (long k = 0; k < S; k++) system[k] = random_token(&b->rng, (int)vocab);
        r->n_in = gsp ? (int)(S + Q) : (int)draw_len(&b->rng, in_len, ratio);
        r->n_out = gsp ? (int)O : (int)draw_len(&b->rng, out_len, ratio);
        r->ids = malloc((size_t)r->n_in * sizeof(int32_t));
        if (!r->ids) return free(system), -1;
        int k = 0;
        if (gsp)
            for (; k < S; k++) r->ids[k] = system[k];
        for (; k < r->n_in; k++) r->ids[k] = random_token(&b->rng, (int)vocab);
        if (tok && b->kind == BK_CHAT)
            r->text = tok_decode(tok, r->ids, (size_t)r->n_in, true, NULL);
    }
    free(system);
    return 0;
}

int cli_bench_serving(int argc, char **argv) {
    const char *backend = "sglang", *host = "127.0.0.1", *base_url = NULL, *dataset = "random-ids";
    const char *model = NULL, *out_file = NULL, *tokenizer_path = NULL;
    long port = 0, num_prompts = 1000, in_len = 1024, out_len = 1024, max_conc = 0, seed = 1;
    long G = 64, P = 16, S = 2048, Q = 128, O = 256, vocab = 0;
    double ratio = 0.0, rate = INFINITY;
    bool disable_stream = false, flush = false, warmup = true;
    arg_spec specs[] = {
        {"--backend", ARG_STR, &backend, "sglang | sglang-native | sglang-oai | sglang-oai-chat "
         "| vllm | vllm-chat | lmdeploy (sglang)", 0},
        {"--host", ARG_STR, &host, "server host (127.0.0.1)", 0},
        {"--port", ARG_INT, &port, "server port (30000 for sglang, 8000 for vllm)", 0},
        {"--base-url", ARG_STR, &base_url, "http://host:port (instead of --host/--port)", 0},
        {"--dataset-name", ARG_STR, &dataset, "random-ids | generated-shared-prefix", 0},
        {"--num-prompts", ARG_INT, &num_prompts, "requests (1000)", 0},
        {"--random-input-len", ARG_INT, &in_len, "random-ids: input tokens (1024)", 0},
        {"--random-output-len", ARG_INT, &out_len, "random-ids: output tokens (1024)", 0},
        {"--random-range-ratio", ARG_FLOAT, &ratio, "lengths drawn in [len*r, len] (0)", 0},
        {"--random-vocab-size", ARG_INT, &vocab, "ids drawn below this (default: the server's)", 0},
        {"--gsp-num-groups", ARG_INT, &G, "shared prefix: groups (64)", 0},
        {"--gsp-prompts-per-group", ARG_INT, &P, "shared prefix: prompts per group (16)", 0},
        {"--gsp-system-prompt-len", ARG_INT, &S, "shared prefix: system prompt tokens (2048)", 0},
        {"--gsp-question-len", ARG_INT, &Q, "shared prefix: question tokens (128)", 0},
        {"--gsp-output-len", ARG_INT, &O, "shared prefix: output tokens (256)", 0},
        {"--request-rate", ARG_FLOAT, &rate, "requests/s, Poisson arrivals (inf: all at once)", 0},
        {"--max-concurrency", ARG_INT, &max_conc, "requests in flight at most (no limit)", 0},
        {"--seed", ARG_INT, &seed, "seed of the workload (1)", 0},
        {"--model", ARG_STR, &model, "model name for OpenAI requests (default: /v1/models)", 0},
        {"--tokenizer", ARG_STR, &tokenizer_path, "model or tokenizer file (chat backends)", 0},
        {"--output-file", ARG_STR, &out_file, "append the results as one JSON line", 0},
        {"--disable-stream", ARG_BOOL, &disable_stream, "non-streamed requests", 0},
        {"--flush-cache", ARG_BOOL, &flush, "POST /flush_cache first (sglang backends)", 0},
        {"--warmup", ARG_BOOL, &warmup, "send one short request first (true)", 0},
    };
    int n_specs = (int)(sizeof specs / sizeof specs[0]);
    const char *pos[1];
    int n_pos;
    int rc = args_parse("bench_serving", specs, n_specs, argc, argv, pos, 0, &n_pos);
    if (rc == 1) {
        args_usage("bench_serving", "[--backend B] [--base-url URL] [--dataset-name D] [options]",
                   specs, n_specs);
        return 0;
    }
    if (rc) return rc;
    bench b = {0};
    b.backend = backend;
    if (!strcmp(backend, "sglang") || !strcmp(backend, "sglang-native")) b.kind = BK_NATIVE;
    else if (!strcmp(backend, "sglang-oai") || !strcmp(backend, "vllm") ||
             !strcmp(backend, "lmdeploy"))
        b.kind = BK_COMPLETIONS;
    else if (!strcmp(backend, "sglang-oai-chat") || !strcmp(backend, "vllm-chat"))
        b.kind = BK_CHAT;
    else {
        fprintf(stderr, "sglc bench_serving: --backend %s: this build drives sglang, "
                        "sglang-native, sglang-oai, sglang-oai-chat, vllm, vllm-chat, lmdeploy "
                        "(llama-server: use sglang-oai or vllm)\n", backend);
        return 2;
    }
    bool gsp = !strcmp(dataset, "generated-shared-prefix");
    if (!gsp && strcmp(dataset, "random-ids")) {
        fprintf(stderr, "sglc bench_serving: --dataset-name %s: this build has random-ids and "
                        "generated-shared-prefix (others need a dataset download)\n", dataset);
        return 2;
    }
    if (num_prompts < 1 || in_len < 1 || out_len < 1 || G < 1 || P < 1 || S < 0 || Q < 1 ||
        O < 1 || ratio < 0 || ratio > 1 || !(rate > 0) || max_conc < 0 || num_prompts > 1000000 ||
        G * P > 1000000) {
        fprintf(stderr, "sglc bench_serving: counts and lengths must be >= 1, the range ratio in "
                        "[0, 1], the rate > 0\n");
        return 2;
    }
    if (base_url) snprintf(b.base_url, sizeof b.base_url, "%s", base_url);
    else snprintf(b.base_url, sizeof b.base_url, "http://%s:%ld", host,
                  port ? port : !strncmp(backend, "sglang", 6) ? 30000 : 8000);
    size_t bl = strlen(b.base_url);
    if (bl && b.base_url[bl - 1] == '/') b.base_url[bl - 1] = 0;
    snprintf(b.url, sizeof b.url, "%s%s", b.base_url,
             b.kind == BK_NATIVE ? "/generate" : b.kind == BK_CHAT ? "/v1/chat/completions"
                                                                  : "/v1/completions");
    const char *key = getenv("OPENAI_API_KEY");
    if (key && *key) {
        snprintf(b.auth, sizeof b.auth, "Bearer %s", key);
        b.headers[0] = "Authorization", b.headers[1] = b.auth, b.headers[2] = NULL;
    }
    b.model = model;
    b.stream = !disable_stream;
    b.rate = rate;
    b.max_conc = max_conc;
    b.n = gsp ? G * P : num_prompts;
    sampler_rng_seed(&b.rng, (uint64_t)seed);
    b.base = event_base_new();
    tokenizer *tok = NULL;
    if (!b.base) return 1;
    rc = setup_server(&b, tokenizer_path, &vocab, &tok);
    if (rc == 0 && make_workload(&b, gsp, vocab, tok, in_len, out_len, ratio, P, S, Q, O)) {
        fprintf(stderr, "sglc bench_serving: out of memory\n");
        rc = 1;
    }
    if (rc == 0) {
        printf("backend: %s  url: %s  model: %s\n#Input tokens: ", backend, b.url, b.model);
        int64_t tin = 0, tout = 0;
        for (long i = 0; i < b.n; i++) tin += b.reqs[i].n_in, tout += b.reqs[i].n_out;
        printf("%lld\n#Output tokens: %lld\n", (long long)tin, (long long)tout);
        if (flush && strncmp(backend, "sglang", 6) == 0) {
            char url[600];
            snprintf(url, sizeof url, "%s/flush_cache", b.base_url);
            sync_result r = sync_call(&b, "POST", url);
            free(r.body);
        }
        if (warmup) { /* one short request, not counted */
            bench w = b;
            bench_req wr = {0};
            wr.ids = b.reqs[0].ids;
            wr.n_in = b.reqs[0].n_in < 16 ? b.reqs[0].n_in : 16;
            wr.n_out = 2;
            wr.text = b.reqs[0].text;
            w.reqs = &wr;
            w.n = 1, w.next = 0, w.running = 0, w.finished = 0;
            w.rate = INFINITY;
            start_one(&w);
            if (!wr.done) event_base_dispatch(b.base);
            if (!wr.ok) {
                fprintf(stderr, "sglc bench_serving: the warm-up request failed: %s\n", wr.err);
                rc = 1;
            }
            free(wr.itl), free(wr.buf);
        }
    }
    if (rc == 0) {
        printf("Starting benchmark: %ld requests\n", b.n);
        fflush(stdout);
        b.t0 = time_now_s();
        if (isinf(b.rate)) {
            start_next(&b);
        } else {
            b.arrival = evtimer_new(b.base, on_arrival, &b);
            on_arrival(-1, 0, &b);
        }
        if (b.finished < b.n) event_base_dispatch(b.base);
        double dt = time_now_s() - b.t0;
        print_results(&b, dt, out_file, dataset);
        for (long i = 0; i < b.n; i++)
            if (!b.reqs[i].ok) rc = 1;
    }
    if (b.arrival) event_free(b.arrival);
    for (long i = 0; b.reqs && i < b.n; i++)
        free(b.reqs[i].ids), free(b.reqs[i].text), free(b.reqs[i].itl), free(b.reqs[i].buf);
    free(b.reqs);
    tok_free(tok);
    free(b.model_owned);
    event_base_loop(b.base, EVLOOP_NONBLOCK); /* finished calls free their connections */
    event_base_free(b.base);
    return rc;
}
