/* Choosing the next token from a row of logits: greedy at temperature 0, otherwise softmax at
 * the temperature restricted by top_k, top_p and min_p, drawn with the request's own random
 * generator so that a seed reproduces the same output whatever else is batched with it. */
#ifndef SGLC_RUNTIME_SAMPLER_H
#define SGLC_RUNTIME_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float temperature; /* 0 = greedy */
    int top_k;         /* <= 0 = all */
    float top_p;       /* (0, 1] */
    float min_p;       /* [0, 1] */
} sampler_params;

/* A small fast PRNG (xoshiro128**), one per request. */
typedef struct {
    uint32_t s[4];
} sampler_rng;

void sampler_rng_seed(sampler_rng *rng, uint64_t seed);
/* Uniform in [0, 1). */
float sampler_rng_uniform(sampler_rng *rng);

/* Index of the largest logit (the lowest index among equal maxima). */
int32_t sampler_argmax(const float *logits, int32_t n);

/* Samples a token. `work` is caller-owned scratch of sampler_work_bytes(n). */
int32_t sampler_sample(const float *logits, int32_t n, const sampler_params *p, sampler_rng *rng,
                       void *work);
/* Bytes of scratch sampler_sample needs for a vocabulary of n. */
size_t sampler_work_bytes(int32_t n);

/* Penalties as SGLang applies them: frequency and presence over the output tokens so far
 * (logit -= frequency * count + presence * [count > 0]), repetition over prompt and output
 * tokens (a positive logit is divided by it, a negative one multiplied). Neutral values: 0, 0,
 * 1. `marks` is caller scratch of n int32 zeros, left zeroed on return. */
typedef struct {
    float frequency, presence, repetition;
} sampler_penalties;

void sampler_apply_penalties(float *logits, int32_t n, const sampler_penalties *p,
                             const int32_t *prompt, int64_t n_prompt, const int32_t *output,
                             int64_t n_output, int32_t *marks);

/* Log-probability of `chosen` under softmax(logits); when k > 0, also the k most likely tokens
 * (descending, ties by id) into top_ids/top_lp. `work` as for sampler_sample. */
float sampler_logprobs(const float *logits, int32_t n, int32_t chosen, int k, int32_t *top_ids,
                       float *top_lp, void *work);

#endif
