/* The scheduler: continuous batching over the paged KV pool (SGLang's managers/scheduler.py
 * with schedule_policy.py and the PrefillAdder). Each sched_step builds ONE batch that mixes the
 * decode token of every running request with prefill chunks of newly admitted ones, runs one
 * model_forward over it, samples, and reports tokens through the emit callback.
 * Thread: everything here belongs to the one thread that calls sched_* (the engine's scheduler
 * thread); nothing locks. Errors: sched_create fails with a message; a failed forward pass ends
 * the requests of that batch with ENGINE_FINISH_ERROR. */
#ifndef SGLC_RUNTIME_SCHEDULER_H
#define SGLC_RUNTIME_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"
#include "runtime/engine.h"
#include "runtime/kv_pool.h"
#include "runtime/radix_cache.h"
#include "runtime/sampler.h"

typedef struct tokenizer tokenizer;

typedef enum { POLICY_FCFS, POLICY_LPM, POLICY_DFS_WEIGHT, POLICY_RANDOM } sched_policy;

/* What the n samples of one submitted request share. */
typedef struct {
    int refs;          /* requests still alive */
    bool prompt_ready; /* sample 0 has prefilled the prompt (and cached it) */
} sched_group;

typedef struct sched_req {
    uint64_t handle;
    int index;
    char rid[64];
    sched_group *group;
    engine_sampling sp;      /* arrays below are this request's own copies */
    char **stop;
    int32_t *stop_ids;
    engine_logit_bias *bias;
    int max_stop_len;
    int32_t *tokens;         /* prompt then output, capacity n_prompt + max_new_tokens */
    int64_t n_prompt, n_tokens;
    int64_t n_emitted;       /* output tokens already reported */
    /* KV state: positions [0, prefix_len) are the radix cache's (locked via last_node),
     * [prefix_len, kv_alloc) this request's; [0, kv_len) are computed. */
    int row;
    int64_t prefix_len, kv_len, kv_alloc;
    radix_node *last_node;
    int64_t cached_tokens;
    bool admitted_once, prompt_lp_done;
    bool prefilling;         /* computing its prompt (or, after retraction, its tokens) */
    int64_t match_len;       /* scratch of the lpm policy */
    bool sampled;            /* got a new token in this step */
    int64_t chunk;           /* tokens of this step's batch */
    sampler_rng rng;
    float *out_lp;           /* [max_new_tokens] when return_logprob */
    int32_t *out_top_ids;    /* [max_new_tokens][top_logprobs_num] */
    float *out_top_lp;
    float *prompt_lp;        /* [n_prompt] */
    int32_t *prompt_top_ids;
    float *prompt_top_lp;
    int lp_start;            /* first prompt position with a logprob */
    uint64_t seq_no;         /* arrival order (fcfs) */
    /* PD disaggregation (sched_pd.c) */
    bool pd;                 /* sends (prefill) or receives (decode) its KV through a room */
    bool pd_fake;            /* SGLang's fake bootstrap host: runs without a transfer */
    bool pd_live;            /* its room is registered with the PD manager */
    bool pd_aborted;         /* aborted while a transfer held its slots */
    uint64_t pd_room;
    char pd_host[256];
    int pd_port;
    int pd_aux;              /* decode: its aux record, or -1 */
    double pd_t0;            /* arrival, for the bootstrap and waiting timeouts */
} sched_req;

typedef void (*sched_emit_fn)(void *ctx, engine_event *ev);

typedef struct {
    int page_size;
    int64_t max_total_tokens;
    int max_running_requests;
    int64_t max_prefill_tokens, chunked_prefill_size;
    int context_length;
    int stream_interval;
    bool disable_radix_cache;
    double schedule_conservativeness;
    sched_policy policy;
    uint64_t random_seed;
    int decode_log_interval; /* log a "Decode batch" line every N decode passes (0: never) */
} sched_config;

typedef struct sched sched;
typedef struct pd_manager pd_manager;

/* Takes the model, backend and tokenizer (may be NULL) for its lifetime; sizes the pool from
 * cfg (max_total_tokens already decided by the caller). */
sched *sched_create(model *m, backend *be, const tokenizer *tok, dtype_t kv_type,
                    const sched_config *cfg, sched_emit_fn emit, void *emit_ctx, char *err,
                    size_t err_len);
void sched_destroy(sched *s);

/* PD disaggregation: from now on requests with a room go through m (mode 1 prefill, 2 decode);
 * n_aux aux records; reserved: decode's --num-reserved-decode-tokens. */
int sched_pd_attach(sched *s, pd_manager *m, int mode, int reserved, double bootstrap_timeout_s,
                    double waiting_timeout_s, char *err, size_t err_len);
/* Requests waiting on the PD manager (so the caller sleeps with a timeout, not forever). */
int sched_pd_pending(const sched *s);

/* Takes ownership of r (made by sched_req_new) and queues it. */
void sched_add(sched *s, sched_req *r);
/* Builds a request from validated input; NULL when out of memory. */
sched_req *sched_req_new(uint64_t handle, int index, const char *rid, sched_group *g,
                         const int32_t *ids, int64_t n, const engine_sampling *sp,
                         uint64_t default_seed);
void sched_req_free(sched_req *r);

/* Aborts every request of handle (0 = match rid instead). Returns how many were found. */
int sched_abort(sched *s, uint64_t handle, const char *rid);
void sched_abort_all(sched *s);
bool sched_has_work(const sched *s);
/* One batch. Returns 0, or -1 when no batch could be built (nothing to do). */
int sched_step(sched *s);
/* Empties the radix cache; -1 while any request runs or waits. */
int sched_flush(sched *s);
void sched_fill_stats(const sched *s, engine_stats *st);
const kv_pool *sched_pool(const sched *s);
const radix_cache *sched_cache(const sched *s);
int sched_n_queued(const sched *s);

#endif
