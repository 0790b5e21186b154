/* RadixAttention's prefix cache (SGLang's mem_cache/radix_cache.py): a radix tree over token
 * ids whose nodes hold the KV slots of those tokens, so a new request whose prompt starts like
 * an earlier one reuses that KV instead of computing it again. Keys are page-aligned: a node's
 * length is a multiple of page_size and children are told apart by their first page. Running
 * requests lock the path to their prefix (lock_ref, counted up to the root); only unlocked
 * leaves are evicted, least recently used first, and their slots go back to the pool.
 * Thread: owned by the scheduler thread. A disabled cache matches nothing and stores nothing. */
#ifndef SGLC_RUNTIME_RADIX_CACHE_H
#define SGLC_RUNTIME_RADIX_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/kv_pool.h"

typedef struct radix_node {
    struct radix_node *parent;
    struct radix_node **children;
    int n_children, cap_children;
    int32_t *key;    /* token ids */
    int32_t *value;  /* their KV slots */
    int64_t len;
    int lock_ref;
    uint64_t last_access;
    int64_t weight;  /* scratch for the dfs-weight policy */
} radix_node;

typedef struct {
    radix_node root;
    kv_pool *pool;   /* where evicted slots go */
    int page_size;
    bool disabled;
    uint64_t clock;
    int64_t total_size;     /* tokens held by the tree */
    int64_t protected_size; /* of those, tokens on locked paths */
    int64_t evicted_tokens; /* counter, for stats and tests */
} radix_cache;

void radix_init(radix_cache *rc, kv_pool *pool, int page_size, bool disabled);
/* Drops every node and returns their slots to the pool (flush); locked nodes must not exist. */
void radix_reset(radix_cache *rc);
void radix_destroy(radix_cache *rc);

/* Longest cached prefix of key[0..n), page-aligned. Splits a node matched part-way so the
 * result ends on a node boundary; copies the prefix's slots to slots_out (may be NULL) and sets
 * *last to the deepest matched node (the root when nothing matched). Refreshes access times.
 * Returns the matched length, or -1 when out of memory. */
int64_t radix_match_prefix(radix_cache *rc, const int32_t *key, int64_t n, int32_t *slots_out,
                           radix_node **last);
/* Inserts key[0..n) with its slots (n is rounded down to a page multiple). Returns how many
 * leading tokens were already present: the caller owns (and must free) its slots for them,
 * while the tree now owns the slots of the rest. -1 when out of memory (nothing inserted). */
int64_t radix_insert(radix_cache *rc, const int32_t *key, int64_t n, const int32_t *slots);

void radix_lock(radix_cache *rc, radix_node *node);
void radix_unlock(radix_cache *rc, radix_node *node);

/* Evicts unlocked leaves, oldest first, until at least n tokens went back to the pool or none
 * is left. Returns the tokens freed. */
int64_t radix_evict(radix_cache *rc, int64_t n);
static inline int64_t radix_evictable_size(const radix_cache *rc) {
    return rc->total_size - rc->protected_size;
}

#endif
