/* Implementation of runtime/engine.h: the scheduler thread and the two queues around it.
 * The inbox (commands from any thread) and the outbox (events to the consumer) each have their
 * own mutex, held only to link or unlink an item, so the scheduler never waits on a consumer;
 * the scheduler sleeps on a condition variable whenever it has no request to run. */
#include "runtime/engine.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "disagg/pd.h"
#include "runtime/scheduler.h"
#include "tokenizer/tokenizer.h"

#define DEFAULT_MEM_FRACTION 0.8
#define MAX_STOP_BYTES 256
#define MAX_N 128
#define MAX_TOP_LOGPROBS 64

typedef enum { CMD_SUBMIT, CMD_ABORT } cmd_kind;

typedef struct cmd {
    struct cmd *next;
    cmd_kind kind;
    sched_req **reqs; /* CMD_SUBMIT: n of them */
    int n;
    uint64_t handle;  /* CMD_ABORT: 0 = by rid */
    char rid[64];
} cmd;

struct engine {
    engine_args args;
    char *model_path, *quantization, *kv_dtype, *policy;
    char *pd_mode_s, *pd_backend, *pd_host, *pd_advertise;
    int pd_mode; /* 0, PD_PREFILL, PD_DECODE */
    pthread_t thread;
    bool thread_started;
    /* inbox */
    pthread_mutex_t mu;
    pthread_cond_t wake, done; /* wake: scheduler; done: ready / flush answers */
    cmd *inbox_head, *inbox_tail;
    int inbox_reqs;
    bool stop, flush_requested, flush_answered;
    int flush_result;
    /* state published by the scheduler thread (under mu) */
    bool ready, failed;
    char start_error[512];
    engine_stats stats;
    int vocab, context_length;
    int64_t pool_tokens;
    bool has_tokenizer;
    /* outbox */
    pthread_mutex_t out_mu;
    engine_event *events;
    int ev_head, ev_count, ev_cap;
    int efd;
    atomic_uint_fast64_t next_handle;
    /* owned by the scheduler thread */
    model *m;
    backend *be;
    tokenizer *tok;
    sched *s;
    pd_manager *pd;
    bool pd_kick; /* mu: a PD room changed state */
    /* watchdog: when the running batch began (ns since the epoch of time_now_s, 0: none) */
    atomic_int_fast64_t step_started_ns;
    pthread_t watchdog;
    bool watchdog_started;
};

void engine_args_default(engine_args *a) {
    memset(a, 0, sizeof *a);
    a->mem_fraction_static = DEFAULT_MEM_FRACTION;
    a->page_size = 1;
    a->kv_cache_dtype = "auto";
    a->schedule_policy = "fcfs";
    a->chunked_prefill_size = 2048;
    a->max_prefill_tokens = 16384;
    a->stream_interval = 1;
    a->schedule_conservativeness = 1.0;
    a->random_seed = 42;
    a->decode_log_interval = 40;
}

void engine_sampling_default(engine_sampling *s) {
    memset(s, 0, sizeof *s);
    s->max_new_tokens = 128;
    s->temperature = 1.0f;
    s->top_p = 1.0f;
    s->top_k = -1;
    s->repetition_penalty = 1.0f;
    s->n = 1;
    s->logprob_start_len = -1;
}

/* auto is fp16: half the bytes of fp32 per token (twice the requests in the same memory), and
 * the attention kernels widen it on read. */
static int parse_kv_dtype(const char *s, dtype_t *t) {
    if (!s || !strcmp(s, "auto") || !strcmp(s, "fp16") || !strcmp(s, "float16") ||
        !strcmp(s, "half"))
        *t = DT_F16;
    else if (!strcmp(s, "fp32") || !strcmp(s, "float32") || !strcmp(s, "float"))
        *t = DT_F32;
    else if (!strcmp(s, "bf16") || !strcmp(s, "bfloat16"))
        *t = DT_BF16;
    else
        return -1;
    return 0;
}

static int parse_policy(const char *s, sched_policy *p) {
    if (!s || !strcmp(s, "fcfs")) *p = POLICY_FCFS;
    else if (!strcmp(s, "lpm")) *p = POLICY_LPM;
    else if (!strcmp(s, "dfs-weight")) *p = POLICY_DFS_WEIGHT;
    else if (!strcmp(s, "random")) *p = POLICY_RANDOM;
    else return -1;
    return 0;
}

int engine_args_check(const engine_args *a, char *err, size_t err_len) {
    dtype_t t;
    sched_policy p;
    if (!a->model_path || !*a->model_path) {
        snprintf(err, err_len, "--model-path is required");
        return -1;
    }
    if (a->kv_cache_dtype && !strncmp(a->kv_cache_dtype, "fp8", 3)) {
        snprintf(err, err_len, "--kv-cache-dtype %s: fp8 KV caches are not implemented yet "
                 "(use auto, fp16, bf16 or fp32)", a->kv_cache_dtype);
        return -1;
    }
    if (parse_kv_dtype(a->kv_cache_dtype, &t) != 0) {
        snprintf(err, err_len, "--kv-cache-dtype %s: expected auto, fp32, fp16 or bf16",
                 a->kv_cache_dtype);
        return -1;
    }
    if (parse_policy(a->schedule_policy, &p) != 0) {
        snprintf(err, err_len, "--schedule-policy %s: expected fcfs, lpm, dfs-weight or random",
                 a->schedule_policy);
        return -1;
    }
    if (a->page_size < 1 || a->page_size > 4096) {
        snprintf(err, err_len, "--page-size %d: expected 1..4096", a->page_size);
        return -1;
    }
    if (a->mem_fraction_static <= 0 || a->mem_fraction_static > 1) {
        snprintf(err, err_len, "--mem-fraction-static %g: expected (0, 1]",
                 a->mem_fraction_static);
        return -1;
    }
    if (a->chunked_prefill_size > 0 && a->chunked_prefill_size < a->page_size) {
        snprintf(err, err_len, "--chunked-prefill-size %lld is smaller than --page-size %d",
                 (long long)a->chunked_prefill_size, a->page_size);
        return -1;
    }
    if (a->max_prefill_tokens < 0 || a->max_running_requests < 0 || a->max_queued_requests < 0 ||
        a->context_length < 0 || a->stream_interval < 0 || a->max_total_tokens < 0) {
        snprintf(err, err_len, "negative limits are not allowed");
        return -1;
    }
    return 0;
}

/* ---- outbox ------------------------------------------------------------------------------ */

void engine_event_clear(engine_event *ev) {
    free(ev->ids), free(ev->logprobs), free(ev->top_ids), free(ev->top_logprobs);
    free(ev->prompt_logprobs), free(ev->prompt_top_ids), free(ev->prompt_top_logprobs);
    free(ev->matched_stop);
    memset(ev, 0, sizeof *ev);
}

static void emit_event(void *ctx, engine_event *ev) {
    engine *e = ctx;
    if (ev->handle == 0) { /* the warm-up request: nobody waits for it */
        engine_event_clear(ev);
        return;
    }
    pthread_mutex_lock(&e->out_mu);
    if (e->ev_count == e->ev_cap) {
        int cap = e->ev_cap ? e->ev_cap * 2 : 256;
        engine_event *n = malloc((size_t)cap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&e->out_mu);
            log_error("out of memory queueing an event of request %s", ev->rid);
            engine_event_clear(ev);
            return;
        }
        for (int i = 0; i < e->ev_count; i++) n[i] = e->events[(e->ev_head + i) % e->ev_cap];
        free(e->events);
        e->events = n, e->ev_cap = cap, e->ev_head = 0;
    }
    e->events[(e->ev_head + e->ev_count++) % e->ev_cap] = *ev;
    uint64_t one = 1;
    ssize_t w = write(e->efd, &one, sizeof one);
    (void)w; /* the counter saturating still leaves the fd readable */
    pthread_mutex_unlock(&e->out_mu);
}

int engine_event_fd(engine *e) { return e->efd; }

int engine_poll_event(engine *e, engine_event *ev) {
    int got = 0;
    pthread_mutex_lock(&e->out_mu);
    if (e->ev_count) {
        *ev = e->events[e->ev_head];
        e->ev_head = (e->ev_head + 1) % e->ev_cap;
        e->ev_count--;
        got = 1;
    }
    if (e->ev_count == 0) { /* drain the eventfd so it polls readable only when events wait */
        uint64_t v;
        ssize_t r = read(e->efd, &v, sizeof v);
        (void)r;
    }
    pthread_mutex_unlock(&e->out_mu);
    return got;
}

int engine_wait_event(engine *e, engine_event *ev, int timeout_ms) {
    double deadline = time_now_s() + timeout_ms / 1000.0;
    for (;;) {
        if (engine_poll_event(e, ev)) return 1;
        int wait = -1;
        if (timeout_ms >= 0) {
            double left = deadline - time_now_s();
            if (left <= 0) return 0;
            wait = (int)(left * 1000) + 1;
        }
        struct pollfd p = {e->efd, POLLIN, 0};
        if (poll(&p, 1, wait) < 0 && errno != EINTR) return 0;
    }
}

/* ---- the scheduler thread ------------------------------------------------------------------ */

static void publish_stats(engine *e) {
    pd_stats ps = {0};
    if (e->pd) pd_get_stats(e->pd, &ps);
    pthread_mutex_lock(&e->mu);
    sched_fill_stats(e->s, &e->stats);
    e->stats.pd_mode = e->pd_mode;
    if (e->pd) {
        e->stats.pd_bootstrap_port = pd_bootstrap_port(e->pd);
        e->stats.pd_transfers_ok = ps.transfers_ok;
        e->stats.pd_transfer_bytes = ps.bytes_total;
        e->stats.pd_transfer_seconds = ps.transfer_seconds_total;
        e->stats.pd_last_speed_gbs = ps.last_speed_gbs;
        e->stats.pd_last_latency_ms = ps.last_latency_ms;
    }
    e->stats.ready = true;
    e->stats.max_queued_requests = e->args.max_queued_requests;
    pthread_mutex_unlock(&e->mu);
}

static void on_pd_change(void *ud) {
    engine *e = ud;
    pthread_mutex_lock(&e->mu);
    e->pd_kick = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->mu);
}

/* The PD manager over the pool's K and V buffers, and the scheduler's queues for it. */
static int start_pd(engine *e, int max_running, char *err, size_t err_len) {
    const engine_args *a = &e->args;
    kv_pool *pool = (kv_pool *)sched_pool(e->s);
    pd_opts o;
    pd_opts_default(&o, e->pd_mode);
    o.backend = a->pd_transfer_backend ? a->pd_transfer_backend : "ucx";
    o.host = a->pd_host ? a->pd_host : "127.0.0.1";
    o.advertise = a->pd_advertise;
    o.bootstrap_port = a->pd_bootstrap_port > 0 ? a->pd_bootstrap_port : 8998;
    o.n_bufs = 2 * pool->kv.n_layers;
    void **bufs = calloc((size_t)o.n_bufs, sizeof *bufs);
    if (!bufs) return snprintf(err, err_len, "out of memory"), -1;
    for (int l = 0; l < pool->kv.n_layers; l++)
        bufs[2 * l] = pool->kv.layers[l].k, bufs[2 * l + 1] = pool->kv.layers[l].v;
    o.bufs = bufs;
    o.slot_bytes = (size_t)pool->kv.layers[0].row_elems * (pool->kv.type == DT_F32 ? 4 : 2);
    o.buf_bytes = (size_t)pool->kv.n_slots * o.slot_bytes;
    o.n_aux = max_running + 1;
    o.on_change = on_pd_change;
    o.ud = e;
    e->pd = pd_create(&o, err, err_len);
    free(bufs);
    if (!e->pd) return -1;
    return sched_pd_attach(e->s, e->pd, e->pd_mode, a->pd_reserved_decode_tokens,
                           o.bootstrap_timeout_s, o.waiting_timeout_s, err, err_len);
}

static int start_up(engine *e, char *err, size_t err_len) {
    const engine_args *a = &e->args;
    dtype_t kv_type;
    sched_policy policy;
    parse_kv_dtype(a->kv_cache_dtype, &kv_type);
    parse_policy(a->schedule_policy, &policy);
    uint64_t avail = kvpool_available_memory();
    e->be = backend_create_cpu(a->threads);
    if (!e->be) {
        snprintf(err, err_len, "cannot create the CPU backend");
        return -1;
    }
    model_load_opts opts = {QUANT_NONE};
    if (a->quantization && !strcmp(a->quantization, "w8a8_int8")) opts.quantization = QUANT_W8A8_INT8;
    else if (a->quantization && *a->quantization && strcmp(a->quantization, "none")) {
        snprintf(err, err_len, "--quantization %s: expected w8a8_int8", a->quantization);
        return -1;
    }
    e->m = model_load(a->model_path, &opts, err, err_len);
    if (!e->m) return -1;
    if (!a->skip_tokenizer_init) {
        char terr[512];
        e->tok = tok_load_path(a->model_path, terr, sizeof terr);
        if (!e->tok) log_warn("no tokenizer (%s): stop strings will be refused", terr);
    }
    int ctx = a->context_length > 0 ? a->context_length : e->m->cfg.context_length;
    /* KV gets what is left of mem_fraction_static of the memory after the weights */
    size_t per_slot = model_kv_bytes_per_slot(e->m, kv_type);
    double budget = (double)avail * a->mem_fraction_static - (double)e->m->weight_bytes;
    int64_t tokens = budget > 0 ? (int64_t)(budget / (double)per_slot) : 0;
    if (a->max_total_tokens > 0 && (tokens > a->max_total_tokens || avail == 0))
        tokens = a->max_total_tokens;
    if (tokens > INT32_MAX / 2) tokens = INT32_MAX / 2;
    tokens = tokens / a->page_size * a->page_size;
    if (tokens < a->page_size || tokens < 2) {
        snprintf(err, err_len, "not enough memory for the KV cache: %.1f GB available, weights "
                 "take %.1f GB, --mem-fraction-static %.2f", (double)avail / 1e9,
                 (double)e->m->weight_bytes / 1e9, a->mem_fraction_static);
        return -1;
    }
    int max_running = a->max_running_requests;
    if (max_running <= 0) { /* SGLang's rule: a request pool of 2048..4096, at most tokens/2 */
        int64_t pool = tokens / ctx * 512;
        pool = pool < 2048 ? 2048 : pool > 4096 ? 4096 : pool;
        max_running = (int)(tokens / 2 < pool ? tokens / 2 : pool);
        if (max_running < 1) max_running = 1;
    }
    sched_config cfg = {
        .page_size = a->page_size,
        .max_total_tokens = tokens,
        .max_running_requests = max_running,
        .max_prefill_tokens = a->max_prefill_tokens > 0 ? a->max_prefill_tokens : 16384,
        .chunked_prefill_size = a->chunked_prefill_size,
        .context_length = ctx,
        .stream_interval = a->stream_interval > 0 ? a->stream_interval : 1,
        .disable_radix_cache = a->disable_radix_cache,
        .schedule_conservativeness = a->schedule_conservativeness,
        .policy = policy,
        .random_seed = a->random_seed,
        .decode_log_interval = a->decode_log_interval,
    };
    e->s = sched_create(e->m, e->be, e->tok, kv_type, &cfg, emit_event, e, err, err_len);
    if (!e->s) return -1;
    if (e->pd_mode && start_pd(e, max_running, err, err_len) != 0) return -1;
    log_info("KV pool: %lld tokens (%s, %.1f MB reserved), max_running_requests=%d, "
             "page_size=%d, context_length=%d", (long long)tokens,
             kv_type == DT_F32 ? "fp32" : kv_type == DT_F16 ? "fp16" : "bf16",
             (double)sched_pool(e->s)->kv.bytes / 1048576.0, max_running, a->page_size, ctx);
    pthread_mutex_lock(&e->mu);
    e->vocab = e->m->cfg.vocab_size;
    e->context_length = ctx;
    e->pool_tokens = tokens;
    e->has_tokenizer = e->tok != NULL;
    pthread_mutex_unlock(&e->mu);
    return 0;
}

/* SGLang's warm-up: one short request through the whole path before the server says ready,
 * so the first user request does not pay for first-touch page faults of weights and KV. */
static void run_warmup(engine *e) {
    double t0 = time_now_s();
    int32_t id = e->m->cfg.bos_id >= 0 ? e->m->cfg.bos_id : 0;
    engine_sampling sp;
    engine_sampling_default(&sp);
    sp.max_new_tokens = 1;
    sp.temperature = 0;
    sched_group *g = calloc(1, sizeof *g);
    sched_req *r = g ? sched_req_new(0, 0, "warmup", g, &id, 1, &sp, 0) : NULL;
    if (!r) {
        free(g);
        log_warn("warm-up skipped: out of memory");
        return;
    }
    g->refs = 1;
    sched_add(e->s, r);
    while (sched_has_work(e->s)) sched_step(e->s);
    log_info("warm-up request done in %.0f ms", (time_now_s() - t0) * 1e3);
}

/* --watchdog-timeout: a batch that runs longer means the scheduler is stuck; SGLang's answer is
 * to end the process rather than hang with requests held. */
static void *watchdog_main(void *arg) {
    engine *e = arg;
    double limit = e->args.watchdog_timeout_s;
    pthread_mutex_lock(&e->mu);
    while (!e->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&e->done, &e->mu, &ts);
        int64_t started = atomic_load(&e->step_started_ns);
        double ran = started ? time_now_s() - (double)started * 1e-9 : 0;
        if (!e->stop && ran > limit) {
            log_error("watchdog: one batch has run for %.0f s (--watchdog-timeout %g): the "
                      "scheduler is stuck, exiting", ran, limit);
            _exit(1);
        }
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

static void run_cmd(engine *e, cmd *c) {
    if (c->kind == CMD_SUBMIT) {
        for (int i = 0; i < c->n; i++) sched_add(e->s, c->reqs[i]);
        free(c->reqs);
    } else {
        sched_abort(e->s, c->handle, c->handle ? NULL : c->rid);
    }
    free(c);
}

static void *scheduler_main(void *arg) {
    engine *e = arg;
    char err[512] = "";
    int rc = start_up(e, err, sizeof err);
    if (rc == 0 && e->args.warmup) run_warmup(e);
    pthread_mutex_lock(&e->mu);
    if (rc != 0) {
        e->failed = true;
        e->stats.failed = true;
        snprintf(e->start_error, sizeof e->start_error, "%s", err);
        log_error("engine start failed: %s", err);
    } else {
        e->ready = true;
    }
    pthread_cond_broadcast(&e->done);
    pthread_mutex_unlock(&e->mu);
    if (rc != 0) return NULL;
    publish_stats(e);
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (!e->stop && !e->inbox_head && !e->flush_requested && !sched_has_work(e->s))
            pthread_cond_wait(&e->wake, &e->mu);
        e->pd_kick = false; /* what changed before this point, the step's poll sees */
        cmd *list = e->inbox_head;
        e->inbox_head = e->inbox_tail = NULL;
        e->inbox_reqs = 0;
        bool stop = e->stop, flush = e->flush_requested;
        pthread_mutex_unlock(&e->mu);
        while (list) {
            cmd *next = list->next;
            run_cmd(e, list);
            list = next;
        }
        if (flush) {
            int r = sched_flush(e->s);
            pthread_mutex_lock(&e->mu);
            e->flush_requested = false;
            e->flush_answered = true;
            e->flush_result = r;
            pthread_cond_broadcast(&e->done);
            pthread_mutex_unlock(&e->mu);
        }
        if (stop) {
            sched_abort_all(e->s);
            break;
        }
        atomic_store(&e->step_started_ns, (int64_t)(time_now_s() * 1e9));
        int ran = sched_step(e->s);
        atomic_store(&e->step_started_ns, 0);
        publish_stats(e);
        if (ran != 0 && sched_pd_pending(e->s)) {
            /* only PD requests, waiting on other threads: sleep until one of their rooms
             * changes or a timeout may have passed */
            pthread_mutex_lock(&e->mu);
            if (!e->pd_kick && !e->inbox_head && !e->stop && !e->flush_requested) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 100 * 1000000L;
                if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
                pthread_cond_timedwait(&e->wake, &e->mu, &ts);
            }
            pthread_mutex_unlock(&e->mu);
        }
    }
    return NULL;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

engine *engine_start(const engine_args *args) {
    engine *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->args = *args;
    e->model_path = dup_or_null(args->model_path);
    e->quantization = dup_or_null(args->quantization);
    e->kv_dtype = dup_or_null(args->kv_cache_dtype);
    e->policy = dup_or_null(args->schedule_policy);
    e->args.model_path = e->model_path;
    e->args.quantization = e->quantization;
    e->args.kv_cache_dtype = e->kv_dtype;
    e->args.schedule_policy = e->policy;
    e->pd_mode_s = dup_or_null(args->pd_mode);
    e->pd_backend = dup_or_null(args->pd_transfer_backend);
    e->pd_host = dup_or_null(args->pd_host);
    e->pd_advertise = dup_or_null(args->pd_advertise);
    e->args.pd_mode = e->pd_mode_s;
    e->args.pd_transfer_backend = e->pd_backend;
    e->args.pd_host = e->pd_host;
    e->args.pd_advertise = e->pd_advertise;
    if (e->pd_mode_s && !strcmp(e->pd_mode_s, "prefill")) e->pd_mode = PD_PREFILL;
    if (e->pd_mode_s && !strcmp(e->pd_mode_s, "decode")) e->pd_mode = PD_DECODE;
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->out_mu, NULL);
    pthread_cond_init(&e->wake, NULL);
    pthread_cond_init(&e->done, NULL);
    atomic_init(&e->next_handle, 1);
    atomic_init(&e->step_started_ns, 0);
    e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    char err[512];
    if (e->efd < 0) {
        engine_stop(e);
        return NULL;
    }
    if (engine_args_check(&e->args, err, sizeof err) != 0) {
        e->failed = e->stats.failed = true;
        snprintf(e->start_error, sizeof e->start_error, "%s", err);
        return e;
    }
    if (pthread_create(&e->thread, NULL, scheduler_main, e) != 0) {
        engine_stop(e);
        return NULL;
    }
    e->thread_started = true;
    if (args->watchdog_timeout_s > 0 &&
        pthread_create(&e->watchdog, NULL, watchdog_main, e) == 0)
        e->watchdog_started = true;
    return e;
}

int engine_wait_ready(engine *e) {
    pthread_mutex_lock(&e->mu);
    while (!e->ready && !e->failed) pthread_cond_wait(&e->done, &e->mu);
    int rc = e->ready ? 0 : -1;
    pthread_mutex_unlock(&e->mu);
    return rc;
}

const char *engine_start_error(engine *e, char *buf, size_t len) {
    pthread_mutex_lock(&e->mu);
    snprintf(buf, len, "%s", e->start_error);
    pthread_mutex_unlock(&e->mu);
    return buf;
}

void engine_stop(engine *e) {
    if (!e) return;
    if (e->thread_started) {
        pthread_mutex_lock(&e->mu);
        e->stop = true;
        pthread_cond_signal(&e->wake);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thread, NULL);
    }
    if (e->watchdog_started) {
        pthread_mutex_lock(&e->mu);
        e->stop = true;
        pthread_cond_broadcast(&e->done);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->watchdog, NULL);
    }
    for (cmd *c = e->inbox_head, *n; c; c = n) {
        n = c->next;
        for (int i = 0; c->kind == CMD_SUBMIT && i < c->n; i++) {
            if (i == 0) free(c->reqs[0]->group);
            sched_req_free(c->reqs[i]);
        }
        free(c->reqs), free(c);
    }
    pd_destroy(e->pd); /* first: its threads read and write the pool's buffers */
    sched_destroy(e->s);
    tok_free(e->tok);
    model_free(e->m);
    backend_destroy(e->be);
    engine_event ev;
    while (engine_poll_event(e, &ev)) engine_event_clear(&ev);
    free(e->events);
    if (e->efd >= 0) close(e->efd);
    pthread_mutex_destroy(&e->mu);
    pthread_mutex_destroy(&e->out_mu);
    pthread_cond_destroy(&e->wake);
    pthread_cond_destroy(&e->done);
    free(e->model_path), free(e->quantization), free(e->kv_dtype), free(e->policy);
    free(e->pd_mode_s), free(e->pd_backend), free(e->pd_host), free(e->pd_advertise);
    free(e);
}

/* ---- requests -------------------------------------------------------------------------------- */

static int check_request(engine *e, const int32_t *ids, int64_t n, const engine_sampling *s,
                         char *err, size_t err_len) {
    int vocab = e->vocab;
    if (n <= 0) return snprintf(err, err_len, "the prompt is empty"), ENGINE_EINVAL;
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab)
            return snprintf(err, err_len, "token id %d at position %lld is out of range [0, %d)",
                            ids[i], (long long)i, vocab), ENGINE_EINVAL;
    if (s->max_new_tokens < 0 || s->min_new_tokens < 0)
        return snprintf(err, err_len, "max_new_tokens and min_new_tokens must be >= 0"),
               ENGINE_EINVAL;
    if (n + s->max_new_tokens > e->context_length)
        return snprintf(err, err_len, "Requested token count exceeds the model's maximum context "
                        "length of %d tokens. You requested a total of %lld tokens: %lld tokens "
                        "from the input messages and %d tokens for the completion.",
                        e->context_length, (long long)(n + s->max_new_tokens), (long long)n,
                        s->max_new_tokens), ENGINE_EINVAL;
    if (n + s->max_new_tokens > e->pool_tokens)
        return snprintf(err, err_len, "the request needs %lld tokens of KV cache but the pool "
                        "holds %lld (--max-total-tokens)", (long long)(n + s->max_new_tokens),
                        (long long)e->pool_tokens), ENGINE_EINVAL;
    if (!(s->temperature >= 0) || !(s->top_p > 0 && s->top_p <= 1) ||
        !(s->min_p >= 0 && s->min_p <= 1) || !(s->repetition_penalty > 0) ||
        !(s->frequency_penalty >= -2 && s->frequency_penalty <= 2) ||
        !(s->presence_penalty >= -2 && s->presence_penalty <= 2))
        return snprintf(err, err_len, "sampling parameters out of range (temperature >= 0, "
                        "0 < top_p <= 1, 0 <= min_p <= 1, repetition_penalty > 0, "
                        "|frequency_penalty|, |presence_penalty| <= 2)"), ENGINE_EINVAL;
    if (s->n < 1 || s->n > MAX_N)
        return snprintf(err, err_len, "n must be in [1, %d]", MAX_N), ENGINE_EINVAL;
    if (s->n_stop < 0 || s->n_stop_token_ids < 0 || s->n_logit_bias < 0)
        return snprintf(err, err_len, "negative array length"), ENGINE_EINVAL;
    if (s->n_stop > 0 && !e->has_tokenizer)
        return snprintf(err, err_len, "stop strings need a tokenizer (the server runs without "
                        "one)"), ENGINE_EINVAL;
    for (int i = 0; i < s->n_stop; i++)
        if (!s->stop[i] || strlen(s->stop[i]) > MAX_STOP_BYTES)
            return snprintf(err, err_len, "stop strings must be 1..%d bytes", MAX_STOP_BYTES),
                   ENGINE_EINVAL;
    for (int i = 0; i < s->n_stop_token_ids; i++)
        if (s->stop_token_ids[i] < 0 || s->stop_token_ids[i] >= vocab)
            return snprintf(err, err_len, "stop_token_ids: %d out of range", s->stop_token_ids[i]),
                   ENGINE_EINVAL;
    for (int i = 0; i < s->n_logit_bias; i++)
        if (s->logit_bias[i].token < 0 || s->logit_bias[i].token >= vocab)
            return snprintf(err, err_len, "logit_bias: token %d out of range",
                            s->logit_bias[i].token), ENGINE_EINVAL;
    if (s->return_logprob && (s->top_logprobs_num < 0 || s->top_logprobs_num > MAX_TOP_LOGPROBS))
        return snprintf(err, err_len, "top_logprobs_num must be in [0, %d]", MAX_TOP_LOGPROBS),
               ENGINE_EINVAL;
    if (s->return_logprob && s->logprob_start_len >= n)
        return snprintf(err, err_len, "logprob_start_len %d is not below the prompt length %lld",
                        s->logprob_start_len, (long long)n), ENGINE_EINVAL;
    return 0;
}

int64_t engine_submit(engine *e, const int32_t *ids, int64_t n_ids, const engine_sampling *s,
                      const char *rid, char *err, size_t err_len) {
    return engine_submit_pd(e, ids, n_ids, s, rid, NULL, err, err_len);
}

/* The PD checks of a request. */
static int check_pd(engine *e, const engine_sampling *s, const engine_bootstrap *boot, char *err,
                    size_t err_len) {
    const char *mode = e->pd_mode == PD_PREFILL ? "prefill" : "decode";
    if (!e->pd_mode && boot)
        return snprintf(err, err_len, "bootstrap_host/bootstrap_room: this server does not run "
                        "in a disaggregation mode"), ENGINE_EINVAL;
    if (!e->pd_mode) return 0;
    if (!boot)
        return snprintf(err, err_len, "this server runs in %s mode: a request needs "
                        "bootstrap_host, bootstrap_port and bootstrap_room (send it through "
                        "`sglc launch_lb`)", mode), ENGINE_EINVAL;
    if (!boot->host || !*boot->host || strlen(boot->host) >= 256)
        return snprintf(err, err_len, "bootstrap_host must be a host name"), ENGINE_EINVAL;
    if (s->n != 1)
        return snprintf(err, err_len, "n > 1 is not supported in %s mode", mode), ENGINE_EINVAL;
    if (s->return_logprob && s->top_logprobs_num > PD_AUX_TOP)
        return snprintf(err, err_len, "top_logprobs_num > %d is not supported in %s mode",
                        PD_AUX_TOP, mode), ENGINE_EINVAL;
    return 0;
}

int64_t engine_submit_pd(engine *e, const int32_t *ids, int64_t n_ids, const engine_sampling *s,
                         const char *rid, const engine_bootstrap *boot, char *err,
                         size_t err_len) {
    pthread_mutex_lock(&e->mu);
    bool ready = e->ready && !e->stop;
    int queued = e->stats.queued + e->inbox_reqs;
    pthread_mutex_unlock(&e->mu);
    if (!ready) {
        snprintf(err, err_len, e->failed ? "the engine failed to start" : "the engine is starting");
        return ENGINE_ENOTREADY;
    }
    int rc = check_request(e, ids, n_ids, s, err, err_len);
    if (!rc) rc = check_pd(e, s, boot, err, err_len);
    if (rc) return rc;
    if (e->args.max_queued_requests > 0 && queued + s->n > e->args.max_queued_requests) {
        snprintf(err, err_len, "The server is overloaded: %d requests are queued "
                 "(--max-queued-requests %d)", queued, e->args.max_queued_requests);
        return ENGINE_EOVERLOADED;
    }
    uint64_t handle = atomic_fetch_add(&e->next_handle, 1);
    cmd *c = calloc(1, sizeof *c);
    sched_group *g = calloc(1, sizeof *g);
    sched_req **reqs = calloc((size_t)s->n, sizeof *reqs);
    bool ok = c && g && reqs;
    char rbuf[64];
    if (!rid || !*rid) snprintf(rbuf, sizeof rbuf, "%llu", (unsigned long long)handle), rid = rbuf;
    for (int i = 0; ok && i < s->n; i++) {
        reqs[i] = sched_req_new(handle, i, rid, g, ids, n_ids, s, e->args.random_seed);
        ok = reqs[i] != NULL;
        if (ok && boot) {
            sched_req *r = reqs[i];
            r->pd = true;
            r->pd_fake = !strcmp(boot->host, PD_FAKE_HOST) ||
                         (e->args.pd_transfer_backend &&
                          !strcmp(e->args.pd_transfer_backend, "fake"));
            r->pd_room = boot->room;
            snprintf(r->pd_host, sizeof r->pd_host, "%s", boot->host);
            r->pd_port = boot->port > 0 ? boot->port : e->args.pd_bootstrap_port;
        }
    }
    if (!ok) {
        for (int i = 0; reqs && i < s->n; i++) sched_req_free(reqs[i]);
        free(c), free(g), free(reqs);
        snprintf(err, err_len, "out of memory");
        return ENGINE_ENOMEM;
    }
    g->refs = s->n;
    c->kind = CMD_SUBMIT;
    c->reqs = reqs;
    c->n = s->n;
    pthread_mutex_lock(&e->mu);
    if (e->inbox_tail) e->inbox_tail->next = c;
    else e->inbox_head = c;
    e->inbox_tail = c;
    e->inbox_reqs += s->n;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->mu);
    return (int64_t)handle;
}

static int post_abort(engine *e, uint64_t handle, const char *rid) {
    cmd *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->kind = CMD_ABORT;
    c->handle = handle;
    snprintf(c->rid, sizeof c->rid, "%s", rid ? rid : "");
    pthread_mutex_lock(&e->mu);
    if (e->inbox_tail) e->inbox_tail->next = c;
    else e->inbox_head = c;
    e->inbox_tail = c;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->mu);
    return 0;
}

int engine_abort(engine *e, uint64_t handle) {
    if (handle == 0 || handle >= atomic_load(&e->next_handle)) return -1;
    return post_abort(e, handle, NULL);
}

int engine_abort_rid(engine *e, const char *rid) {
    if (!rid || !*rid) return -1;
    return post_abort(e, 0, rid);
}

int engine_flush_cache(engine *e) {
    pthread_mutex_lock(&e->mu);
    if (!e->ready || e->stop) {
        pthread_mutex_unlock(&e->mu);
        return -1;
    }
    e->flush_requested = true;
    e->flush_answered = false;
    pthread_cond_signal(&e->wake);
    while (!e->flush_answered) pthread_cond_wait(&e->done, &e->mu);
    int r = e->flush_result;
    pthread_mutex_unlock(&e->mu);
    return r;
}

void engine_get_stats(engine *e, engine_stats *st) {
    pthread_mutex_lock(&e->mu);
    *st = e->stats;
    st->ready = e->ready;
    st->failed = e->failed;
    pthread_mutex_unlock(&e->mu);
}
