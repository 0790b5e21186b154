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
};

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
