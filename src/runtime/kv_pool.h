/* The paged KV pool: every layer's K and V buffers (sized once, at start) and the allocator of
 * their token slots, plus the request-to-token table that maps a running request's positions to
 * slots. Slots come in pages of page_size; a slot's offset inside its page equals the position's
 * offset inside its page (slot % page_size == pos % page_size), so a page-aligned run of
 * positions frees whole pages. The buffers are reserved once through the backend (mmap: pages
 * are touched on first use) and stay at fixed addresses, so a transfer engine (PD) may register
 * kv.layers[l].k/.v and write page p at byte offset p * page_size * row bytes.
 * Thread: owned by the scheduler thread; nothing here locks. Errors: -1 (out of memory / out of
 * slots) leaves the pool unchanged. */
#ifndef SGLC_RUNTIME_KV_POOL_H
#define SGLC_RUNTIME_KV_POOL_H

#include <stdint.h>

#include "model/model.h"

typedef struct {
    model_kv kv;          /* per-layer K/V buffers, kv.n_slots == n_pages * page_size */
    int page_size;
    int64_t n_pages;
    int32_t *free_pages;  /* stack of free page ids */
    int64_t n_free_pages;
    /* request-to-token table: rows of row_len slots, one row per running request */
    int32_t *req_to_token;
    int n_rows, row_len;
    int *free_rows;
    int n_free_rows;
} kv_pool;

/* Bytes the process may still use: MemAvailable, capped by the cgroup's limit minus its usage
 * (cgroup v2, then v1). 0 when it cannot be read. */
uint64_t kvpool_available_memory(void);

/* Reserves n_tokens slots (rounded down to a page multiple, at least one page) for every layer
 * of m, and n_rows request rows of row_len positions. Returns 0 or -1 with err set. */
int kvpool_init(kv_pool *p, model *m, backend *be, int64_t n_tokens, int page_size, dtype_t type,
                int n_rows, int row_len, char *err, size_t err_len);
void kvpool_free_all(kv_pool *p, backend *be);

static inline int64_t kvpool_size(const kv_pool *p) { return p->n_pages * p->page_size; }
static inline int64_t kvpool_free_tokens(const kv_pool *p) {
    return p->n_free_pages * p->page_size;
}
static inline int32_t *kvpool_row(kv_pool *p, int row) {
    return p->req_to_token + (int64_t)row * p->row_len;
}

/* Pages needed to extend a row holding positions [0, from) to [0, to). */
int64_t kvpool_pages_needed(const kv_pool *p, int64_t from, int64_t to);
/* Gives positions [from, to) of row slots: the rest of the page holding position from-1, then
 * new pages. Returns -1 (nothing taken) when too few pages are free. */
int kvpool_extend(kv_pool *p, int32_t *row, int64_t from, int64_t to);
/* Returns the pages of positions [from, to) of row; from must be a page multiple. */
void kvpool_release(kv_pool *p, const int32_t *row, int64_t from, int64_t to);

/* A request row, or -1 when all are taken. */
int kvpool_row_alloc(kv_pool *p);
void kvpool_row_free(kv_pool *p, int row);

#endif
