/* Open addressing with linear probing and FNV-1a: the readers know how many names they will
 * insert before they start (the header says so), so the table never grows. */
#include "formats/name_index.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t name_hash(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

bool name_index_init(name_index *ix, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) {
        if (cap > SIZE_MAX / 4 / sizeof(name_index_slot)) return false;
        cap *= 2;
    }
    ix->slots = calloc(cap, sizeof *ix->slots);
    ix->cap = ix->slots ? cap : 0;
    ix->count = 0;
    return ix->slots != NULL;
}

void name_index_free(name_index *ix) {
    free(ix->slots);
    ix->slots = NULL;
    ix->cap = ix->count = 0;
}

static name_index_slot *probe(const name_index *ix, const char *name, size_t len) {
    size_t mask = ix->cap - 1;
    for (size_t i = (size_t)name_hash(name, len) & mask;; i = (i + 1) & mask) {
        name_index_slot *s = &ix->slots[i];
        if (!s->name || (s->len == len && !memcmp(s->name, name, len))) return s;
    }
}

bool name_index_add(name_index *ix, const char *name, size_t len, size_t value, size_t *existing) {
    if (!ix->slots || ix->count + 1 > ix->cap / 2) {
        if (existing) *existing = SIZE_MAX;
        return false;
    }
    name_index_slot *s = probe(ix, name, len);
    if (s->name) {
        if (existing) *existing = s->value;
        return false;
    }
    s->name = name ? name : "";
    s->len = len;
    s->value = value;
    ix->count++;
    return true;
}

bool name_index_find(const name_index *ix, const char *name, size_t len, size_t *value) {
    if (!ix->slots) return false;
    name_index_slot *s = probe(ix, name, len);
    if (!s->name) return false;
    if (value) *value = s->value;
    return true;
}
