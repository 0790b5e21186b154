/* A binary min-heap of candidate merges for long BPE words and SentencePiece fragments: the
 * entry with the lowest key wins, the leftmost on ties -- the order llama.cpp's priority queues
 * pop in. Stale entries are left in and skipped by the caller when popped. */
#ifndef SGLC_TOKENIZER_TOK_HEAP_H
#define SGLC_TOKENIZER_TOK_HEAP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    double key;
    int32_t left, right;
    uint32_t size;  /* bytes of left + right when pushed: how staleness is detected */
    int32_t merged; /* resulting token id */
} tok_heap_item;

typedef struct {
    tok_heap_item *items;
    size_t n, cap;
} tok_heap;

static inline bool tok_heap_less(const tok_heap_item *a, const tok_heap_item *b) {
    return a->key < b->key || (a->key == b->key && a->left < b->left);
}

static inline bool tok_heap_push(tok_heap *h, tok_heap_item it) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 256;
        tok_heap_item *p = realloc(h->items, cap * sizeof *p);
        if (!p) return false;
        h->items = p, h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!tok_heap_less(&it, &h->items[parent])) break;
        h->items[i] = h->items[parent];
        i = parent;
    }
    h->items[i] = it;
    return true;
}

static inline tok_heap_item tok_heap_pop(tok_heap *h) {
    tok_heap_item top = h->items[0], last = h->items[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && tok_heap_less(&h->items[c + 1], &h->items[c])) c++;
        if (!tok_heap_less(&h->items[c], &last)) break;
        h->items[i] = h->items[c];
        i = c;
    }
    if (h->n) h->items[i] = last;
    return top;
}

#endif
