/* A fixed-size hash index from names (byte strings, not necessarily NUL-terminated) to small
 * integers, shared by the file readers to find keys and tensors in O(1) and to spot duplicates
 * while parsing untrusted headers. The index stores pointers to the caller's name bytes: they
 * must outlive it. Not thread-safe while being filled; lookups may run concurrently after. */
#ifndef SGLC_FORMATS_NAME_INDEX_H
#define SGLC_FORMATS_NAME_INDEX_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *name;
    size_t len;
    size_t value;
} name_index_slot;

typedef struct {
    name_index_slot *slots; /* NULL name = empty */
    size_t cap;             /* a power of two, at least twice the capacity asked for */
    size_t count;
} name_index;

/* Room for `n` names; false when out of memory. */
bool name_index_init(name_index *ix, size_t n);
void name_index_free(name_index *ix);
/* Adds name -> value. Returns false (and leaves the index unchanged) when the name is already
 * there, with its value in *existing (if not NULL), or when the index is full (*existing =
 * SIZE_MAX). */
bool name_index_add(name_index *ix, const char *name, size_t len, size_t value, size_t *existing);
/* True when found, with its value in *value. */
bool name_index_find(const name_index *ix, const char *name, size_t len, size_t *value);

#endif
