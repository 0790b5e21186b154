/* The order in which waiting requests are offered for admission (SGLang's schedule_policy.py):
 *   fcfs        arrival order (retracted requests were put back at the front);
 *   lpm         longest cached prefix first; beyond 128 waiting requests, fcfs (matching every
 *               request each step would cost more than it saves);
 *   dfs-weight  a depth-first walk of the radix tree, heavier subtrees (more waiting requests
 *               under them) first, so requests sharing a prefix run together;
 *   random      a shuffle.
 * With the radix cache disabled the cache-aware policies are fcfs. */
#include <stdlib.h>
#include <string.h>

#include "runtime/sched_internal.h"

#define LPM_MAX_QUEUE 128

static int cmp_lpm(const void *a, const void *b) {
    const sched_req *x = *(sched_req *const *)a, *y = *(sched_req *const *)b;
    if (x->match_len != y->match_len) return x->match_len > y->match_len ? -1 : 1;
    return x->seq_no < y->seq_no ? -1 : x->seq_no > y->seq_no;
}

static void order_lpm(sched *s) {
    for (int i = 0; i < s->n_waiting; i++) {
        sched_req *r = s->waiting[i];
        radix_node *node;
        r->match_len = radix_match_prefix(&s->cache, r->tokens, r->n_tokens - 1, NULL, &node);
    }
    qsort(s->waiting, (size_t)s->n_waiting, sizeof *s->waiting, cmp_lpm);
}

/* Depth-first from node: heaviest child first, then the requests that end at this node. */
static void dfs_emit(sched *s, radix_node *node, radix_node **last, sched_req **out, int *n) {
    for (int i = 0; i < s->n_waiting; i++)
        if (last[i] == node) out[(*n)++] = s->waiting[i];
    for (;;) {
        radix_node *best = NULL;
        for (int i = 0; i < node->n_children; i++) {
            radix_node *c = node->children[i];
            if (c->weight > 0 && (!best || c->weight > best->weight)) best = c;
        }
        if (!best) break;
        dfs_emit(s, best, last, out, n);
        best->weight = 0; /* visited */
    }
}

static void order_dfs_weight(sched *s) {
    int n = s->n_waiting;
    radix_node **last = malloc((size_t)n * sizeof *last);
    sched_req **out = malloc((size_t)n * sizeof *out);
    if (!last || !out) {
        free(last), free(out);
        return; /* out of memory: keep fcfs order */
    }
    for (int i = 0; i < n; i++) {
        sched_req *r = s->waiting[i];
        if (radix_match_prefix(&s->cache, r->tokens, r->n_tokens - 1, NULL, &last[i]) < 0)
            last[i] = &s->cache.root;
    }
    for (int i = 0; i < n; i++)
        for (radix_node *x = last[i]; x; x = x->parent) x->weight++;
    int m = 0;
    dfs_emit(s, &s->cache.root, last, out, &m);
    s->cache.root.weight = 0;
    memcpy(s->waiting, out, (size_t)m * sizeof *out);
    free(last), free(out);
}

void sched_order_waiting(sched *s) {
    sched_policy p = s->cfg.policy;
    if (s->cache.disabled && (p == POLICY_LPM || p == POLICY_DFS_WEIGHT)) p = POLICY_FCFS;
    switch (p) {
    case POLICY_LPM:
        if (s->n_waiting <= LPM_MAX_QUEUE) order_lpm(s);
        break;
    case POLICY_DFS_WEIGHT:
        order_dfs_weight(s);
        break;
    case POLICY_RANDOM:
        for (int i = s->n_waiting - 1; i > 0; i--) {
            int j = (int)(sampler_rng_uniform(&s->policy_rng) * (float)(i + 1));
            if (j > i) j = i;
            sched_req *t = s->waiting[i];
            s->waiting[i] = s->waiting[j];
            s->waiting[j] = t;
        }
        break;
    case POLICY_FCFS:
        break;
    }
}
