/* The engine facade: what the HTTP server and the benchmarks see of the runtime. engine_start
 * spawns the scheduler thread, which loads the model and tokenizer, sizes the KV pool and then
 * owns every piece of runtime state (pool, radix cache, queues of requests); the engine is
 * "starting" until that is done. Other threads talk to it only through this API:
 *   - engine_submit / engine_abort* post to the scheduler's inbox (a mutex-protected list and a
 *     condition variable; the scheduler sleeps on it when idle, it never spins);
 *   - token events come back through an unbounded outbox that the scheduler appends to without
 *     waiting on anyone; its eventfd (engine_event_fd) becomes readable when events are
 *     pending, so a libevent loop can watch it, and engine_poll_event pops them;
 *   - engine_flush_cache and engine_get_stats are answered by the scheduler / from a snapshot.
 * Every function here is thread-safe. Errors: engine_submit returns a negative ENGINE_E* code
 * with a message; everything else reports failure by its return value. */
#ifndef SGLC_RUNTIME_ENGINE_H
#define SGLC_RUNTIME_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Server arguments the runtime uses; engine_args_default fills SGLang's defaults. */
typedef struct {
    const char *model_path;
    const char *quantization;      /* NULL/"none" or "w8a8_int8" */
    int threads;                   /* compute threads, <= 0: all CPUs available */
    double mem_fraction_static;    /* weights + KV <= this fraction of available memory */
    int64_t max_total_tokens;      /* > 0 caps the KV pool */
    int page_size;                 /* tokens per KV page (1) */
    const char *kv_cache_dtype;    /* auto|fp32|fp16|bf16 (auto: fp16, see engine.c) */
    const char *schedule_policy;   /* fcfs|lpm|dfs-weight|random */
    int64_t chunked_prefill_size;  /* tokens per prefill chunk; <= 0 (-1): no chunking */
    int64_t max_prefill_tokens;    /* prefill tokens per batch (16384) */
    int max_running_requests;      /* 0: derived from the pool */
    int max_queued_requests;       /* 0: unlimited */
    int context_length;            /* 0: the model's */
    int stream_interval;           /* emit every N tokens (1) */
    bool disable_radix_cache;
    double schedule_conservativeness; /* scales the decode-length estimate (1.0) */
    uint64_t random_seed;          /* seeds requests that bring no seed */
    bool skip_tokenizer_init;      /* no tokenizer: stop strings are refused */
    int decode_log_interval;       /* "Decode batch" log line every N passes (40; 0: never) */
    bool warmup;                   /* run one request before reporting ready (false) */
    double watchdog_timeout_s;     /* > 0: a batch running longer ends the process (0) */
    /* PD disaggregation (SGLang's --disaggregation-*): mode NULL/"null", "prefill", "decode" */
    const char *pd_mode;
    const char *pd_transfer_backend; /* "ucx" | "fake" */
    const char *pd_host;             /* prefill: the bootstrap server's address */
    const char *pd_advertise;        /* prefill: the host of --dist-init-addr, if given */
    int pd_bootstrap_port;           /* prefill: where it listens; decode: the default port */
    int pd_reserved_decode_tokens;   /* decode: KV set aside per request for its output */
} engine_args;

void engine_args_default(engine_args *a);
/* Checks the values that need no model (dtype, policy, sizes). 0, or -1 with a message. */
int engine_args_check(const engine_args *a, char *err, size_t err_len);

typedef struct {
    int32_t token;
    float bias;
} engine_logit_bias;

/* Sampling parameters of one request (SGLang's names). Arrays are copied by engine_submit. */
typedef struct {
    int max_new_tokens;      /* 128 */
    int min_new_tokens;      /* 0 */
    float temperature;       /* 1.0; 0 = greedy */
    float top_p;             /* 1.0 */
    int top_k;               /* -1 = all */
    float min_p;             /* 0 */
    float frequency_penalty; /* 0, over output tokens */
    float presence_penalty;  /* 0, over output tokens */
    float repetition_penalty;/* 1.0, over prompt and output tokens */
    const char *const *stop; /* stop strings */
    int n_stop;
    const int32_t *stop_token_ids;
    int n_stop_token_ids;
    const engine_logit_bias *logit_bias;
    int n_logit_bias;
    bool ignore_eos;
    bool no_stop_trim;
    int n;                   /* samples of this prompt (1); they share its KV */
    bool has_seed;
    uint64_t seed;
    bool return_logprob;
    int top_logprobs_num;    /* alternatives per token (0) */
    int logprob_start_len;   /* prompt logprobs from this position; -1: none */
} engine_sampling;

void engine_sampling_default(engine_sampling *s);

/* Where a PD request's KV comes from (decode) or goes (prefill): the prefill server's bootstrap
 * host and port (port <= 0: the engine's pd_bootstrap_port) and the room both sides share.
 * host "2.2.2.2" is SGLang's fake host: the request runs without a transfer. */
typedef struct {
    const char *host;
    int port;
    uint64_t room;
} engine_bootstrap;

typedef enum {
    ENGINE_FINISH_NONE = 0, /* more tokens follow */
    ENGINE_FINISH_LENGTH,   /* max_new_tokens reached */
    ENGINE_FINISH_STOP,     /* eos, a stop token id or a stop string */
    ENGINE_FINISH_ABORT,    /* aborted by the caller */
    ENGINE_FINISH_ERROR,    /* see error */
} engine_finish;

/* One event: new tokens of one sample (index) of a request, and its end. Arrays are owned by
 * the event until engine_event_clear. */
typedef struct {
    uint64_t handle;
    char rid[64];
    int index;                /* which of the n samples */
    int n_ids;
    int32_t *ids;             /* new token ids */
    float *logprobs;          /* [n_ids] when return_logprob, else NULL */
    int n_top;                /* top_logprobs_num */
    int32_t *top_ids;         /* [n_ids][n_top] */
    float *top_logprobs;      /* [n_ids][n_top] */
    /* prompt logprobs (first event only, when logprob_start_len >= 0): token at position
     * prompt_lp_start + i has logprob prompt_logprobs[i]; the first prompt token has none */
    int n_prompt_lp;
    int prompt_lp_start;
    float *prompt_logprobs;
    int32_t *prompt_top_ids;  /* [n_prompt_lp][n_top] */
    float *prompt_top_logprobs;
    engine_finish finish;
    int32_t matched_token;    /* the stop token id, or -1 */
    char *matched_stop;       /* the stop string matched, or NULL */
    int stop_trim_bytes;      /* bytes to cut from the end of the decoded output (0 when
                                 no_stop_trim): the stop string and anything after it */
    int64_t prompt_tokens, completion_tokens, cached_tokens;
    bool handle_done;         /* the last event of this handle (every sample finished) */
    char error[256];
} engine_event;

void engine_event_clear(engine_event *ev);

typedef struct {
    bool ready;                    /* model loaded, accepting requests */
    bool failed;                   /* start-up failed: see engine_start_error */
    int running, queued;
    int64_t max_total_num_tokens;  /* KV pool size in tokens */
    int max_running_requests;
    int max_queued_requests;
    int64_t max_prefill_tokens, chunked_prefill_size;
    int page_size;
    int context_length;
    int vocab_size;
    int64_t used_tokens;           /* KV slots in use (running requests + radix cache) */
    int64_t cache_tokens;          /* held by the radix cache */
    double token_usage;            /* used / total */
    double cache_hit_rate;         /* cached prompt tokens / prompt tokens, since start */
    double gen_throughput;         /* output tokens/s over the last few seconds */
    int64_t prompt_tokens_total, cached_tokens_total, generated_tokens_total;
    int64_t forward_passes, chunked_prefills, retractions, evicted_tokens;
    int64_t mixed_batches;         /* passes with both prefill and decode tokens */
    int64_t requests_finished, requests_aborted;
    /* PD disaggregation (0 when the engine runs colocated) */
    int pd_mode;                   /* 0, 1 prefill, 2 decode */
    int pd_bootstrap_port;
    int pd_boot_queue, pd_transfer_queue; /* prefill: bootstrap / inflight; decode: prealloc
                                              / transfer */
    int64_t pd_transfers_ok;                        /* prefill: KV sent */
    int64_t pd_transfers_failed, pd_bootstrap_failed; /* requests failed in each queue */
    double pd_transfer_bytes, pd_transfer_seconds, pd_last_speed_gbs, pd_last_latency_ms;
} engine_stats;

typedef struct engine engine;

enum {
    ENGINE_EINVAL = -1,     /* bad request (context length, ids, parameters): 400 */
    ENGINE_EOVERLOADED = -2, /* --max-queued-requests reached: 503 */
    ENGINE_ENOTREADY = -3,  /* still starting, or start failed: 503 */
    ENGINE_ENOMEM = -4,
};

/* Starts the scheduler thread; returns at once (NULL only when out of memory). The strings in
 * args are copied. */
engine *engine_start(const engine_args *args);
/* Blocks until the engine is ready (0) or its start failed (-1). */
int engine_wait_ready(engine *e);
/* Why start-up failed ("" while it has not). */
const char *engine_start_error(engine *e, char *buf, size_t len);
/* Aborts every request, stops the thread, frees everything. */
void engine_stop(engine *e);

/* Queues a request. Returns its handle (> 0), or an ENGINE_E* code with a message in err. */
int64_t engine_submit(engine *e, const int32_t *ids, int64_t n_ids, const engine_sampling *s,
                      const char *rid, char *err, size_t err_len);
/* The same for a PD server (boot NULL: refused unless the engine runs colocated). */
int64_t engine_submit_pd(engine *e, const int32_t *ids, int64_t n_ids, const engine_sampling *s,
                         const char *rid, const engine_bootstrap *boot, char *err,
                         size_t err_len);
/* Aborts a request by handle or by rid; its slots are freed on the scheduler's next turn and
 * an ENGINE_FINISH_ABORT event follows for each of its samples still alive. Returns 0, or -1
 * for a handle that was never issued (an unknown rid is ignored by the scheduler). */
int engine_abort(engine *e, uint64_t handle);
int engine_abort_rid(engine *e, const char *rid);

/* A file descriptor that polls readable while events are pending. */
int engine_event_fd(engine *e);
/* Pops one event into ev (1), or returns 0 when none is pending. */
int engine_poll_event(engine *e, engine_event *ev);
/* Waits up to timeout_ms (-1: forever) for an event; 1 with ev filled, 0 on timeout. */
int engine_wait_event(engine *e, engine_event *ev, int timeout_ms);

/* Empties the radix cache. Refused (-1) while requests run or wait. */
int engine_flush_cache(engine *e);
void engine_get_stats(engine *e, engine_stats *st);

#endif
