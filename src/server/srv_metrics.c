/* GET /metrics (--enable-metrics): Prometheus' text exposition format with SGLang's metric
 * names (prefix `sglang:`, label model_name) so dashboards built for SGLang read sglc as is.
 * Counters and histograms are updated on the loop thread as engine events arrive; gauges are
 * the scheduler's published snapshot. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/srv_internal.h"

/* SGLang's buckets (srt/metrics/collector.py) */
static const double TTFT_BOUNDS[] = {0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80,
                                     100, 200, 400};
static const double ITL_BOUNDS[] = {0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.025,
                                    0.03,  0.035, 0.04,  0.06,  0.08, 0.1,   0.2,  0.4,
                                    0.6,   0.8,   1,     2,     4,    6,     8};
static const double E2E_BOUNDS[] = {0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80,
                                    100, 200, 400, 800};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

void srv_metrics_init(srv_metrics *m) {
    memset(m, 0, sizeof *m);
    m->ttft.bounds = TTFT_BOUNDS, m->ttft.n_bounds = COUNT(TTFT_BOUNDS);
    m->itl.bounds = ITL_BOUNDS, m->itl.n_bounds = COUNT(ITL_BOUNDS);
    m->e2e.bounds = E2E_BOUNDS, m->e2e.n_bounds = COUNT(E2E_BOUNDS);
}

void srv_hist_observe(srv_hist *h, double v) {
    int i = 0;
    while (i < h->n_bounds && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

typedef struct {
    char *buf;
    size_t len, cap;
    bool oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->buf ? b->buf + b->len : NULL, b->buf ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->buf && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *p = realloc(b->buf, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->buf = p, b->cap = cap;
    }
}

static void metric(sbuf *b, const char *name, const char *type, const char *help,
                   const char *label, double v) {
    put(b, "# HELP sglang:%s %s\n# TYPE sglang:%s %s\nsglang:%s%s{model_name=\"%s\"} %.17g\n",
        name, help, name, type, name, !strcmp(type, "counter") ? "_total" : "", label, v);
}

static void hist(sbuf *b, const char *name, const char *help, const char *label,
                 const srv_hist *h) {
    put(b, "# HELP sglang:%s %s\n# TYPE sglang:%s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < h->n_bounds; i++) {
        cum += h->counts[i];
        put(b, "sglang:%s_bucket{le=\"%g\",model_name=\"%s\"} %llu\n", name, h->bounds[i], label,
            (unsigned long long)cum);
    }
    cum += h->counts[h->n_bounds];
    put(b, "sglang:%s_bucket{le=\"+Inf\",model_name=\"%s\"} %llu\n", name, label,
        (unsigned long long)cum);
    put(b, "sglang:%s_sum{model_name=\"%s\"} %.17g\n", name, label, h->sum);
    put(b, "sglang:%s_count{model_name=\"%s\"} %llu\n", name, label,
        (unsigned long long)h->count);
}

char *srv_metrics_render(const srv_metrics *m, const engine_stats *st, const char *model_name) {
    /* label values escape '\\', '"' and newlines */
    char label[512];
    size_t w = 0;
    for (const char *p = model_name; *p && w + 3 < sizeof label; p++) {
        if (*p == '\\' || *p == '"') label[w++] = '\\', label[w++] = *p;
        else if (*p == '\n') label[w++] = '\\', label[w++] = 'n';
        else label[w++] = *p;
    }
    label[w] = 0;
    sbuf b = {0};
    metric(&b, "num_running_reqs", "gauge", "The number of running requests.", label,
           st->running);
    metric(&b, "num_used_tokens", "gauge", "The number of used tokens.", label,
           (double)st->used_tokens);
    metric(&b, "token_usage", "gauge", "The token usage.", label, st->token_usage);
    metric(&b, "gen_throughput", "gauge", "The generation throughput (token/s).", label,
           st->gen_throughput);
    metric(&b, "num_queue_reqs", "gauge", "The number of requests in the waiting queue.", label,
           st->queued);
    metric(&b, "cache_hit_rate", "gauge", "The prefix cache hit rate.", label,
           st->cache_hit_rate);
    metric(&b, "max_total_num_tokens", "gauge", "The KV pool size in tokens.", label,
           (double)st->max_total_num_tokens);
    metric(&b, "prompt_tokens", "counter", "Number of prefill tokens processed.", label,
           (double)m->prompt_tokens);
    metric(&b, "generation_tokens", "counter", "Number of generation tokens processed.", label,
           (double)m->generation_tokens);
    metric(&b, "cached_tokens", "counter", "Number of cached prompt tokens.", label,
           (double)m->cached_tokens);
    metric(&b, "num_requests", "counter", "Number of requests processed.", label,
           (double)m->requests);
    metric(&b, "num_aborted_requests", "counter", "Number of requests aborted.", label,
           (double)m->aborted);
    if (st->pd_mode == 1) { /* SGLang's PD metrics: the prefill side */
        metric(&b, "num_prefill_prealloc_queue_reqs", "gauge",
               "Requests waiting for their decode server (bootstrap queue).", label,
               st->pd_boot_queue);
        metric(&b, "num_prefill_bootstrap_queue_reqs", "gauge",
               "Requests waiting for their decode server (bootstrap queue).", label,
               st->pd_boot_queue);
        metric(&b, "num_prefill_inflight_queue_reqs", "gauge",
               "Requests whose KV is being transferred.", label, st->pd_transfer_queue);
        metric(&b, "kv_transfer_speed_gb_s", "gauge", "The speed of the last KV transfer (GB/s).",
               label, st->pd_last_speed_gbs);
        metric(&b, "kv_transfer_latency_ms", "gauge", "The latency of the last KV transfer (ms).",
               label, st->pd_last_latency_ms);
        metric(&b, "kv_transfer_bytes", "counter", "Bytes of KV transferred.", label,
               st->pd_transfer_bytes);
        metric(&b, "num_kv_transfers", "counter", "KV transfers that succeeded.", label,
               (double)st->pd_transfers_ok);
    } else if (st->pd_mode == 2) {
        metric(&b, "num_decode_prealloc_queue_reqs", "gauge",
               "Requests waiting for KV to be set aside (preallocation queue).", label,
               st->pd_boot_queue);
        metric(&b, "num_decode_transfer_queue_reqs", "gauge",
               "Requests waiting for their KV from prefill (transfer queue).", label,
               st->pd_transfer_queue);
    }
    if (st->pd_mode) {
        metric(&b, "num_bootstrap_failed_reqs", "counter", "Requests failed while bootstrapping.",
               label, (double)st->pd_bootstrap_failed);
        metric(&b, "num_transfer_failed_reqs", "counter", "Requests failed in KV transfer.",
               label, (double)st->pd_transfers_failed);
    }
    hist(&b, "time_to_first_token_seconds", "Histogram of time to first token in seconds.", label,
         &m->ttft);
    hist(&b, "inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", label,
         &m->itl);
    hist(&b, "e2e_request_latency_seconds", "Histogram of End-to-end request latency in seconds",
         label, &m->e2e);
    if (b.oom) {
        free(b.buf);
        return NULL;
    }
    return b.buf;
}
