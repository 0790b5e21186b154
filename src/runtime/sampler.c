/* Implementation of runtime/sampler.h. Candidates are narrowed before sorting: top_k by a
 * partial selection, then only the survivors are sorted for top_p, so a 150k vocabulary costs
 * one pass over the logits in the common cases. */
#include "runtime/sampler.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

static uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

void sampler_rng_seed(sampler_rng *rng, uint64_t seed) {
    /* splitmix64 spreads any seed (0 included) over the state */
    for (int i = 0; i < 4; i += 2) {
        uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        rng->s[i] = (uint32_t)z;
        rng->s[i + 1] = (uint32_t)(z >> 32);
    }
}

static uint32_t next_u32(sampler_rng *rng) {
    uint32_t *s = rng->s;
    uint32_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
}

float sampler_rng_uniform(sampler_rng *rng) { return (float)(next_u32(rng) >> 8) * (1.0f / 16777216.0f); }

int32_t sampler_argmax(const float *logits, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

size_t sampler_work_bytes(int32_t n) { return (size_t)n * 8; }

/* A candidate: its logit and id. Sorting pairs keeps the comparison free of globals. */
typedef struct {
    float logit;
    int32_t id;
} candidate;

static int cmp_desc(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id - y->id;
}

/* Moves the k largest candidates of c[0..n) to the front, unordered (quickselect). */
static void select_top(candidate *c, int32_t n, int32_t k) {
    int32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = c[(lo + hi) / 2].logit;
        int32_t i = lo, j = hi;
        while (i <= j) {
            while (c[i].logit > pivot) i++;
            while (c[j].logit < pivot) j--;
            if (i <= j) {
                candidate t = c[i];
                c[i++] = c[j];
                c[j--] = t;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

int32_t sampler_sample(const float *logits, int32_t n, const sampler_params *p, sampler_rng *rng,
                       void *work) {
    if (p->temperature <= 0) return sampler_argmax(logits, n);
    candidate *c = work;
    float max = logits[sampler_argmax(logits, n)];
    /* min_p keeps tokens whose probability is at least min_p times the best one's */
    float floor = p->min_p > 0 ? max + p->temperature * logf(p->min_p) : -INFINITY;
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++)
        if (logits[i] >= floor && isfinite(logits[i])) c[m++] = (candidate){logits[i], i};
    if (m == 0) return sampler_argmax(logits, n);
    if (p->top_k > 0 && p->top_k < m) {
        select_top(c, m, p->top_k);
        m = p->top_k;
    }
    /* sorted by logit, descending, ties by id, so the draw is reproducible */
    qsort(c, (size_t)m, sizeof *c, cmp_desc);
    double sum = 0;
    for (int32_t i = 0; i < m; i++) {
        c[i].logit = expf((c[i].logit - max) / p->temperature); /* now an unnormalised prob */
        sum += c[i].logit;
    }
    if (p->top_p > 0 && p->top_p < 1) {
        double cum = 0;
        for (int32_t i = 0; i < m; i++) {
            cum += c[i].logit;
            if (cum >= p->top_p * sum) {
                m = i + 1;
                break;
            }
        }
        sum = 0;
        for (int32_t i = 0; i < m; i++) sum += c[i].logit;
    }
    double r = (double)sampler_rng_uniform(rng) * sum, acc = 0;
    for (int32_t i = 0; i < m; i++) {
        acc += c[i].logit;
        if (r < acc) return c[i].id;
    }
    return c[m - 1].id;
}

void sampler_apply_penalties(float *logits, int32_t n, const sampler_penalties *p,
                             const int32_t *prompt, int64_t n_prompt, const int32_t *output,
                             int64_t n_output, int32_t *marks) {
    (void)n;
    if (p->repetition != 1.0f && p->repetition > 0) {
        /* each distinct token once: marks[id] flags the ones already penalised */
        for (int pass = 0; pass < 2; pass++) {
            const int32_t *ids = pass ? output : prompt;
            int64_t m = pass ? n_output : n_prompt;
            for (int64_t i = 0; i < m; i++) {
                int32_t id = ids[i];
                if (marks[id]) continue;
                marks[id] = 1;
                logits[id] = logits[id] > 0 ? logits[id] / p->repetition
                                            : logits[id] * p->repetition;
            }
        }
        for (int64_t i = 0; i < n_prompt; i++) marks[prompt[i]] = 0;
        for (int64_t i = 0; i < n_output; i++) marks[output[i]] = 0;
    }
    if (p->frequency != 0 || p->presence != 0) {
        for (int64_t i = 0; i < n_output; i++) marks[output[i]]++;
        for (int64_t i = 0; i < n_output; i++) {
            int32_t id = output[i];
            if (!marks[id]) continue;
            logits[id] -= p->frequency * (float)marks[id] + p->presence;
            marks[id] = 0;
        }
    }
}

float sampler_logprobs(const float *logits, int32_t n, int32_t chosen, int k, int32_t *top_ids,
                       float *top_lp, void *work) {
    float max = logits[sampler_argmax(logits, n)];
    double sum = 0;
    for (int32_t i = 0; i < n; i++) sum += expf(logits[i] - max);
    float lse = max + (float)log(sum);
    if (k > 0) {
        candidate *c = work;
        if (k > n) k = n;
        for (int32_t i = 0; i < n; i++) c[i] = (candidate){logits[i], i};
        select_top(c, n, k);
        qsort(c, (size_t)k, sizeof *c, cmp_desc);
        for (int i = 0; i < k; i++) {
            top_ids[i] = c[i].id;
            top_lp[i] = c[i].logit - lse;
        }
    }
    return logits[chosen] - lse;
}
