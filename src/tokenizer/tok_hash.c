/* The two hash maps behind tok_hash.h: linear probing at load factor <= 1/2, sized once from the
 * vocabulary, so lookups on the encode path never allocate or lock. */
#include "tokenizer/tok_hash.h"

#include <stdlib.h>
#include <string.h>

uint64_t tok_hash_bytes(const void *p, size_t n) {
    /* FNV-1a with a final mix: token texts are short, so simplicity beats throughput here. */
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

static size_t cap_for(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n + 2)
        cap <<= 1;
    return cap;
}

bool tok_strmap_init(tok_strmap *m, size_t n) {
    size_t cap = cap_for(n);
    m->slots = calloc(cap, sizeof *m->slots);
    m->mask = cap - 1;
    return m->slots != NULL;
}

void tok_strmap_free(tok_strmap *m) {
    free(m->slots);
    m->slots = NULL;
}

void tok_strmap_put(tok_strmap *m, const char *key, size_t len, int32_t value) {
    size_t i = tok_hash_bytes(key, len) & m->mask;
    while (m->slots[i].key) {
        if (m->slots[i].len == len && !memcmp(m->slots[i].key, key, len)) {
            m->slots[i].value = value;
            return;
        }
        i = (i + 1) & m->mask;
    }
    m->slots[i] = (tok_strmap_slot){key, (uint32_t)len, value};
}

int32_t tok_strmap_get(const tok_strmap *m, const char *key, size_t len) {
    if (!m->slots) return -1;
    size_t i = tok_hash_bytes(key, len) & m->mask;
    while (m->slots[i].key) {
        if (m->slots[i].len == len && !memcmp(m->slots[i].key, key, len)) return m->slots[i].value;
        i = (i + 1) & m->mask;
    }
    return -1;
}

static uint64_t pair_key(int32_t l, int32_t r) { return (uint64_t)(uint32_t)l << 32 | (uint32_t)r; }

static size_t pair_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k;
}

bool tok_pairmap_init(tok_pairmap *m, size_t n) {
    size_t cap = cap_for(n);
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots) return false;
    for (size_t i = 0; i < cap; i++)
        m->slots[i].key = UINT64_MAX;
    m->mask = cap - 1;
    return true;
}

void tok_pairmap_free(tok_pairmap *m) {
    free(m->slots);
    m->slots = NULL;
}

void tok_pairmap_put(tok_pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t merged) {
    uint64_t k = pair_key(left, right);
    size_t i = pair_hash(k) & m->mask;
    while (m->slots[i].key != UINT64_MAX) {
        if (m->slots[i].key == k) return;
        i = (i + 1) & m->mask;
    }
    m->slots[i] = (tok_pairmap_slot){k, rank, merged};
}

const tok_pairmap_slot *tok_pairmap_get(const tok_pairmap *m, int32_t left, int32_t right) {
    if (!m->slots) return NULL;
    uint64_t k = pair_key(left, right);
    size_t i = pair_hash(k) & m->mask;
    while (m->slots[i].key != UINT64_MAX) {
        if (m->slots[i].key == k) return &m->slots[i];
        i = (i + 1) & m->mask;
    }
    return NULL;
}
