/* Open-addressing hash maps for the tokenizer: byte strings -> token id, and token-id pairs ->
 * merge (rank, result). Filled once while loading, then only read, from any thread. Keys of the
 * string map point at the caller's bytes, which must outlive the map. */
#ifndef SGLC_TOKENIZER_TOK_HASH_H
#define SGLC_TOKENIZER_TOK_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *key;
    uint32_t len;
    int32_t value;
} tok_strmap_slot;

typedef struct {
    tok_strmap_slot *slots;
    size_t mask; /* capacity - 1, a power of two */
} tok_strmap;

typedef struct {
    uint64_t key; /* left << 32 | right; UINT64_MAX = empty */
    int32_t rank;
    int32_t merged;
} tok_pairmap_slot;

typedef struct {
    tok_pairmap_slot *slots;
    size_t mask;
} tok_pairmap;

uint64_t tok_hash_bytes(const void *p, size_t n);

bool tok_strmap_init(tok_strmap *m, size_t n);
void tok_strmap_free(tok_strmap *m);
/* Sets key -> value, replacing an earlier value of the same key. */
void tok_strmap_put(tok_strmap *m, const char *key, size_t len, int32_t value);
/* The value or -1. */
int32_t tok_strmap_get(const tok_strmap *m, const char *key, size_t len);

bool tok_pairmap_init(tok_pairmap *m, size_t n);
void tok_pairmap_free(tok_pairmap *m);
/* Keeps the first (lowest) rank given for a pair, as HF and llama.cpp do. */
void tok_pairmap_put(tok_pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t merged);
/* The slot or NULL. */
const tok_pairmap_slot *tok_pairmap_get(const tok_pairmap *m, int32_t left, int32_t right);

#endif
