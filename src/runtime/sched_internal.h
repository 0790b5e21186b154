/* The scheduler's state, shared by the files that make up the scheduler (scheduler.c: batches
 * and KV; sched_policy.c: the order of the waiting queue; sched_output.c: sampling, stop
 * checks and events). Not part of any public interface. */
#ifndef SGLC_RUNTIME_SCHED_INTERNAL_H
#define SGLC_RUNTIME_SCHED_INTERNAL_H

#include "runtime/scheduler.h"

struct sched {
    sched_config cfg;
    model *m;
    backend *be;
    const tokenizer *tok;
    kv_pool pool;
    radix_cache cache;
    sched_req **waiting;
    int n_waiting, cap_waiting;
    sched_req **running;
    int n_running;
    sched_req *chunked; /* the request whose prompt is part-way through prefill */
    /* the batch (grown on demand, kept between steps) */
    int64_t cap_tokens;
    int32_t *b_tokens, *b_pos, *b_seq, *b_rows;
    sched_req **row_req; /* which request each logit row belongs to */
    int32_t *row_pos;    /* and the position it was computed at */
    const int32_t **b_slots;
    float *logits;
    int64_t cap_logit_rows;
    /* sampling scratch */
    int32_t vocab;
    float *row_buf;
    void *work;
    int32_t *marks;
    int32_t eos_ids[16];
    int n_eos;
    char *stop_buf;
    int stop_buf_cap;
    /* how much of max_new_tokens a running request is expected to still use */
    double new_token_ratio, init_ratio, min_ratio, ratio_decay;
    sampler_rng policy_rng;
    uint64_t next_seq;
    sched_emit_fn emit;
    void *emit_ctx;
    /* counters */
    int64_t forward_passes, chunked_prefills, retractions, mixed_batches;
    int64_t prompt_tokens_total, cached_tokens_total, generated_tokens_total;
    int64_t requests_finished, requests_aborted;
    double window_start, gen_tput;
    int64_t window_tokens;
    /* PD disaggregation (sched_pd.c): boot = prefill's bootstrap queue / decode's prealloc
     * queue; xfer = prefill's inflight queue / decode's transfer queue */
    pd_manager *pd;
    int pd_mode;
    int64_t pd_reserved;
    double pd_bootstrap_timeout, pd_waiting_timeout;
    sched_req **pd_boot, **pd_xfer;
    int n_pd_boot, n_pd_xfer, cap_pd; /* both arrays hold cap_pd */
    int *aux_free;
    int n_aux_free;
    int64_t pd_failed_boot, pd_failed_xfer; /* requests failed in each queue */
    int64_t decode_passes;                  /* for --decode-log-interval */
};

/* scheduler.c, for sched_pd.c */
int sched_push_waiting(sched *s, sched_req *r, bool front);
void sched_release_kv(sched *s, sched_req *r, bool insert);
void sched_finish_req(sched *s, sched_req *r, engine_finish f, int32_t tok, const char *stop,
                      int trim, const char *error);
bool sched_ensure_pages(sched *s, int64_t pages);
int64_t sched_reserve_tokens(const sched *s, const sched_req *r);

/* sched_pd.c */
/* Takes r if it is a PD request (true), else leaves it to the normal queues. */
bool sched_pd_add(sched *s, sched_req *r);
/* Moves PD requests along their queues (states, timeouts, preallocation). */
void sched_pd_poll(sched *s);
/* A prefill-mode request just sampled its first token: true when PD takes it from here. */
bool sched_pd_prefilled(sched *s, sched_req *r);
/* r ends outside the transfer path (abort, error): its room is closed. */
void sched_pd_end(sched *s, sched_req *r, const char *why);
/* Aborts PD-queued requests of handle/rid; returns how many. */
int sched_pd_abort(sched *s, uint64_t handle, const char *rid);
void sched_pd_destroy(sched *s);
void sched_pd_fill_stats(const sched *s, engine_stats *st);

/* sched_policy.c */
void sched_order_waiting(sched *s);

/* sched_output.c */
/* Samples the next token of r from its logits row, records logprobs, appends the token. */
void sched_sample(sched *s, sched_req *r, const float *logits);
/* Records the prompt logprob of the token after position pos. */
void sched_prompt_logprob(sched *s, sched_req *r, int64_t pos, const float *logits);
/* Decides whether r just finished (sets matched fields); ENGINE_FINISH_NONE when not. */
engine_finish sched_check_finish(sched *s, sched_req *r, int32_t *matched_token,
                                 const char **matched_stop, int *trim);
/* Reports r's new tokens (and its end when finish != NONE). */
void sched_emit(sched *s, sched_req *r, engine_finish finish, int32_t matched_token,
                const char *matched_stop, int trim, const char *error);

#endif
