/* Implementation of runtime/kv_pool.h. Free pages are a stack (LIFO), so recently freed pages,
 * still warm in cache and already touched, are reused first and untouched memory stays
 * untouched as long as possible. */
#include "runtime/kv_pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads one "Key:   123 kB" field of /proc/meminfo in bytes; 0 when absent. */
static uint64_t meminfo_bytes(const char *key) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    uint64_t v = 0;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, key, klen) && line[klen] == ':') {
            unsigned long long kb = 0;
            if (sscanf(line + klen + 1, "%llu", &kb) == 1) v = (uint64_t)kb * 1024;
            break;
        }
    }
    fclose(f);
    return v;
}

/* A number from a one-line file; 0 when absent or "max". */
static uint64_t file_u64(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    unsigned long long v = 0;
    if (fscanf(f, "%llu", &v) != 1) v = 0;
    fclose(f);
    return (uint64_t)v;
}

uint64_t kvpool_available_memory(void) {
    uint64_t avail = meminfo_bytes("MemAvailable");
    uint64_t limit = file_u64("/sys/fs/cgroup/memory.max");
    uint64_t used = file_u64("/sys/fs/cgroup/memory.current");
    if (!limit) {
        limit = file_u64("/sys/fs/cgroup/memory/memory.limit_in_bytes");
        used = file_u64("/sys/fs/cgroup/memory/memory.usage_in_bytes");
    }
    /* v1 reports "no limit" as a huge number */
    if (limit && limit < ((uint64_t)1 << 60)) {
        uint64_t room = limit > used ? limit - used : 0;
        if (!avail || room < avail) avail = room;
    }
    return avail;
}

int kvpool_init(kv_pool *p, model *m, backend *be, int64_t n_tokens, int page_size, dtype_t type,
                int n_rows, int row_len, char *err, size_t err_len) {
    memset(p, 0, sizeof *p);
    if (page_size < 1 || n_rows < 1 || row_len < 1) {
        snprintf(err, err_len, "bad KV pool shape (page size %d, %d rows of %d)", page_size,
                 n_rows, row_len);
        return -1;
    }
    int64_t n_pages = n_tokens / page_size;
    if (n_pages < 1) n_pages = 1;
    if (n_pages > INT32_MAX / page_size) n_pages = INT32_MAX / page_size;
    p->page_size = page_size;
    p->n_pages = n_pages;
    if (model_kv_alloc(m, be, &p->kv, n_pages * page_size, type) != 0) {
        snprintf(err, err_len, "cannot reserve a KV pool of %lld tokens",
                 (long long)(n_pages * page_size));
        return -1;
    }
    p->free_pages = malloc((size_t)n_pages * sizeof(int32_t));
    p->free_rows = malloc((size_t)n_rows * sizeof(int));
    /* the table can be large (rows x context); calloc maps it lazily like the KV buffers */
    p->req_to_token = calloc((size_t)n_rows * (size_t)row_len, sizeof(int32_t));
    if (!p->free_pages || !p->free_rows || !p->req_to_token) {
        kvpool_free_all(p, be);
        snprintf(err, err_len, "out of memory for the request-to-token table");
        return -1;
    }
    /* pushed in reverse so that page 0 is handed out first */
    for (int64_t i = 0; i < n_pages; i++) p->free_pages[i] = (int32_t)(n_pages - 1 - i);
    p->n_free_pages = n_pages;
    p->n_rows = n_rows;
    p->row_len = row_len;
    for (int i = 0; i < n_rows; i++) p->free_rows[i] = n_rows - 1 - i;
    p->n_free_rows = n_rows;
    return 0;
}

void kvpool_free_all(kv_pool *p, backend *be) {
    model_kv_free(be, &p->kv);
    free(p->free_pages);
    free(p->free_rows);
    free(p->req_to_token);
    memset(p, 0, sizeof *p);
}

int64_t kvpool_pages_needed(const kv_pool *p, int64_t from, int64_t to) {
    int64_t P = p->page_size;
    if (to <= from) return 0;
    return (to + P - 1) / P - (from + P - 1) / P;
}

int kvpool_extend(kv_pool *p, int32_t *row, int64_t from, int64_t to) {
    int64_t P = p->page_size;
    if (kvpool_pages_needed(p, from, to) > p->n_free_pages) return -1;
    for (int64_t pos = from; pos < to; pos++) {
        if (pos % P) {
            row[pos] = row[pos - 1] + 1;
        } else {
            int32_t page = p->free_pages[--p->n_free_pages];
            row[pos] = (int32_t)(page * P);
        }
    }
    return 0;
}

void kvpool_release(kv_pool *p, const int32_t *row, int64_t from, int64_t to) {
    for (int64_t pos = from; pos < to; pos += p->page_size)
        p->free_pages[p->n_free_pages++] = row[pos] / p->page_size;
}

int kvpool_row_alloc(kv_pool *p) { return p->n_free_rows ? p->free_rows[--p->n_free_rows] : -1; }

void kvpool_row_free(kv_pool *p, int row) {
    if (row >= 0) p->free_rows[p->n_free_rows++] = row;
}
