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

#endif
