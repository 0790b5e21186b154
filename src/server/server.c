/* The server's wiring: tokenizer and chat template, the engine (started in the background so
 * /health can answer 503 while it loads), the HTTP routes, the engine's eventfd watched by the
 * loop, and shutdown on SIGTERM/SIGINT. Everything after start-up runs on the loop thread. */
#include "server/server.h"

#include <event2/event.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/sysinfo.h"
#include "base/timeutil.h"
#include "server/srv_internal.h"

static void on_engine_fd(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    srv_pump_events(arg);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    (void)what;
    srv *s = arg;
    if (s->stopping) {
        log_warn("second signal: stopping now");
        http_server_stop(s->http, 0);
        return;
    }
    s->stopping = true;
    log_info("received %s: no new connections; %d request(s) in flight get %.0f s to finish",
             sig == SIGTERM ? "SIGTERM" : "SIGINT", s->n_jobs, SERVER_SHUTDOWN_GRACE_S);
    http_server_stop(s->http, SERVER_SHUTDOWN_GRACE_S);
}

static void log_ready(srv *s) {
    engine_stats st;
    engine_get_stats(s->eng, &st);
    log_info("max_total_num_tokens=%lld, chunked_prefill_size=%lld, max_prefill_tokens=%lld, "
             "max_running_requests=%d, context_len=%d, page_size=%d",
             (long long)st.max_total_num_tokens,
             (long long)st.chunked_prefill_size, (long long)st.max_prefill_tokens,
             st.max_running_requests, st.context_length, st.page_size);
    log_info("The server is fired up and ready to roll! (http://%s:%d)", s->args.host,
             http_server_port(s->http));
}

/* Polls the engine's start-up (a short timer, so no thread blocks on it). */
static void on_start_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    srv *s = arg;
    engine_stats st;
    engine_get_stats(s->eng, &st);
    if (st.ready && !s->ready) {
        s->ready = true;
        log_ready(s);
    } else if (st.failed && !s->failed) {
        char err[512];
        s->failed = true;
        log_error("start-up failed: %s", engine_start_error(s->eng, err, sizeof err));
        http_server_stop(s->http, 0);
    }
}

static void engine_args_from(const server_args *a, engine_args *e) {
    engine_args_default(e);
    e->model_path = a->model_path;
    e->quantization = a->quantization && strcmp(a->quantization, "gguf") ? a->quantization : NULL;
    e->threads = (int)a->threads;
    if (!isnan(a->mem_fraction_static)) e->mem_fraction_static = a->mem_fraction_static;
    if (a->max_total_tokens != SERVER_ARGS_UNSET) e->max_total_tokens = a->max_total_tokens;
    e->page_size = (int)a->page_size;
    const char *kv = a->kv_cache_dtype;
    e->kv_cache_dtype = !strcmp(kv, "float32") ? "fp32" : !strcmp(kv, "float16") ? "fp16"
                        : !strcmp(kv, "bfloat16") ? "bf16" : kv;
    e->schedule_policy = a->schedule_policy;
    if (a->chunked_prefill_size != SERVER_ARGS_UNSET)
        e->chunked_prefill_size = a->chunked_prefill_size;
    e->max_prefill_tokens = a->max_prefill_tokens;
    if (a->max_running_requests != SERVER_ARGS_UNSET)
        e->max_running_requests = (int)a->max_running_requests;
    if (a->max_queued_requests != SERVER_ARGS_UNSET)
        e->max_queued_requests = (int)a->max_queued_requests;
    if (a->context_length != SERVER_ARGS_UNSET) e->context_length = (int)a->context_length;
    e->stream_interval = (int)a->stream_interval;
    e->disable_radix_cache = a->disable_radix_cache;
    e->schedule_conservativeness = a->schedule_conservativeness;
    e->random_seed = (uint64_t)a->random_seed;
    e->skip_tokenizer_init = a->skip_tokenizer_init;
    e->decode_log_interval = (int)a->decode_log_interval;
    e->warmup = !a->skip_server_warmup;
    e->watchdog_timeout_s = isnan(a->watchdog_timeout) ? 300 : a->watchdog_timeout;
    if (a->disaggregation_mode && strcmp(a->disaggregation_mode, "null")) {
        e->pd_mode = a->disaggregation_mode;
        e->pd_transfer_backend = a->disaggregation_transfer_backend;
        e->pd_host = a->host;
        e->pd_bootstrap_port = (int)a->disaggregation_bootstrap_port;
        e->pd_reserved_decode_tokens = (int)a->num_reserved_decode_tokens;
    }
}

static int add_routes(srv *s) {
    int rc = 0;
    rc |= http_server_route(s->http, "POST", "/generate", srv_route_generate, s);
    rc |= http_server_route(s->http, "PUT", "/generate", srv_route_generate, s);
    rc |= http_server_route(s->http, "POST", "/v1/completions", srv_route_completions, s);
    rc |= http_server_route(s->http, "POST", "/v1/chat/completions", srv_route_chat, s);
    return rc | srv_add_info_routes(s);
}

/* Frees the jobs still waiting on the engine at exit (their requests are already gone). */
static void free_jobs(srv *s) {
    while (s->n_slots > 0) {
        srv_job *j = s->slots[0].job;
        int w = 0;
        for (int i = 0; i < s->n_slots; i++)
            if (s->slots[i].job != j) s->slots[w++] = s->slots[i];
        s->n_slots = w;
        srv_job_free(j);
    }
    free(s->slots);
}

static int setup(srv *s, char *err, size_t err_len) {
    const server_args *a = &s->args;
    if (!a->skip_tokenizer_init) {
        const char *tp = a->tokenizer_path ? a->tokenizer_path : a->model_path;
        s->tok = tok_load_path(tp, err, err_len);
        if (!s->tok) return 2;
        log_info("tokenizer: %zu tokens (bos %d, eos %d)", tok_vocab_size(s->tok), tok_bos(s->tok),
                 tok_eos(s->tok));
        if (srv_load_chat_template(s, err, err_len)) return 2;
    }
    engine_args ea;
    engine_args_from(a, &ea);
    /* the bootstrap server registers its rank at the host of --dist-init-addr, if given */
    char advertise[256] = "";
    if (ea.pd_mode && a->dist_init_addr) {
        const char *h = a->dist_init_addr, *colon = strrchr(h, ':');
        size_t n = (size_t)(colon - h);
        if (h[0] == '[' && n >= 2 && h[n - 1] == ']') h++, n -= 2;
        snprintf(advertise, sizeof advertise, "%.*s", (int)n, h);
        ea.pd_advertise = advertise;
    }
    s->pd_decode = ea.pd_mode && !strcmp(ea.pd_mode, "decode");
    if (engine_args_check(&ea, err, err_len) != 0) return 2;
    http_server_opts ho = {.host = a->host, .port = (int)a->port};
    s->http = http_server_new(&ho, err, err_len);
    if (!s->http) return 1;
    if (add_routes(s) != 0) {
        snprintf(err, err_len, "cannot register the routes");
        return 1;
    }
    log_info("backend: cpu (attention torch_native), %ld compute thread(s)%s, page_size %ld",
             a->threads, a->threads ? "" : " = all", a->page_size);
    s->eng = engine_start(&ea);
    if (!s->eng) {
        snprintf(err, err_len, "out of memory starting the engine");
        return 1;
    }
    struct event_base *base = http_server_base(s->http);
    s->ev_engine = event_new(base, engine_event_fd(s->eng), EV_READ | EV_PERSIST, on_engine_fd, s);
    s->ev_sigterm = evsignal_new(base, SIGTERM, on_signal, s);
    s->ev_sigint = evsignal_new(base, SIGINT, on_signal, s);
    if (!s->ev_engine || !s->ev_sigterm || !s->ev_sigint || event_add(s->ev_engine, NULL) ||
        event_add(s->ev_sigterm, NULL) || event_add(s->ev_sigint, NULL)) {
        snprintf(err, err_len, "cannot watch the engine or the signals");
        return 1;
    }
    return 0;
}

int server_run(const server_args *args) {
    srv *s = calloc(1, sizeof *s);
    if (!s) return 1;
    s->args = *args;
    s->model_name = args->served_model_name ? args->served_model_name : args->model_path;
    s->created = (long)time(NULL);
    s->id_rng = (uint64_t)(time_now_s() * 1e9) ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
    if (!s->id_rng) s->id_rng = 1;
    srv_metrics_init(&s->metrics);
    signal(SIGPIPE, SIG_IGN);
    log_info("server_args: model_path=%s, host=%s, port=%ld, served_model_name=%s, "
             "context_length=%s, random_seed=%ld, api_key=%s, enable_metrics=%d",
             args->model_path, args->host, args->port, s->model_name,
             args->context_length == SERVER_ARGS_UNSET ? "auto" : "set", args->random_seed,
             args->api_key ? "set" : "none", args->enable_metrics);
    sysinfo_log_warnings();
    char err[1024] = "";
    int rc = setup(s, err, sizeof err);
    struct event *tick = NULL;
    if (rc == 0) {
        struct timeval tv = {0, 50000};
        tick = event_new(http_server_base(s->http), -1, EV_PERSIST, on_start_tick, s);
        if (tick) event_add(tick, &tv);
        log_info("listening on http://%s:%d (model loading in the background)", args->host,
                 http_server_port(s->http));
        http_server_run(s->http);
        rc = s->failed ? 1 : 0;
        log_info("shutting down");
    } else {
        log_error("%s", err);
    }
    if (s->eng) srv_abort_all(s);
    if (tick) event_free(tick);
    if (s->ev_engine) event_free(s->ev_engine);
    if (s->ev_sigterm) event_free(s->ev_sigterm);
    if (s->ev_sigint) event_free(s->ev_sigint);
    engine_stop(s->eng);
    free_jobs(s);
    http_server_free(s->http);
    tok_free(s->tok);
    free(s->chat_template), free(s->bos_text), free(s->eos_text);
    free(s);
    return rc;
}
