/* Implementation of runtime/radix_cache.h. Children are a small array searched linearly by
 * their first page: prompts fan out little per node, and a linear scan over a few pointers is
 * faster and simpler than a hash map. Eviction keeps a binary heap of evictable leaves ordered
 * by last access; a parent left childless joins the heap. */
#include "runtime/radix_cache.h"

#include <stdlib.h>
#include <string.h>

void radix_init(radix_cache *rc, kv_pool *pool, int page_size, bool disabled) {
    memset(rc, 0, sizeof *rc);
    rc->pool = pool;
    rc->page_size = page_size;
    rc->disabled = disabled;
    rc->root.lock_ref = 1; /* the root is never evicted */
}

static void free_subtree(radix_cache *rc, radix_node *n, bool release) {
    for (int i = 0; i < n->n_children; i++) free_subtree(rc, n->children[i], release);
    free(n->children);
    if (n != &rc->root) {
        if (release && n->len) kvpool_release(rc->pool, n->value, 0, n->len);
        free(n->key);
        free(n->value);
        free(n);
    }
}

void radix_reset(radix_cache *rc) {
    free_subtree(rc, &rc->root, true);
    rc->root.children = NULL;
    rc->root.n_children = rc->root.cap_children = 0;
    rc->total_size = rc->protected_size = 0;
}

void radix_destroy(radix_cache *rc) {
    free_subtree(rc, &rc->root, false);
    memset(&rc->root, 0, sizeof rc->root);
}

static radix_node *find_child(const radix_cache *rc, const radix_node *n, const int32_t *key) {
    for (int i = 0; i < n->n_children; i++)
        if (!memcmp(n->children[i]->key, key, (size_t)rc->page_size * sizeof(int32_t)))
            return n->children[i];
    return NULL;
}

static int add_child(radix_node *parent, radix_node *child) {
    if (parent->n_children == parent->cap_children) {
        int cap = parent->cap_children ? parent->cap_children * 2 : 2;
        radix_node **c = realloc(parent->children, (size_t)cap * sizeof *c);
        if (!c) return -1;
        parent->children = c;
        parent->cap_children = cap;
    }
    parent->children[parent->n_children++] = child;
    child->parent = parent;
    return 0;
}

static void remove_child(radix_node *parent, radix_node *child) {
    for (int i = 0; i < parent->n_children; i++)
        if (parent->children[i] == child) {
            parent->children[i] = parent->children[--parent->n_children];
            return;
        }
}

static radix_node *new_node(const int32_t *key, const int32_t *value, int64_t len) {
    radix_node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->key = malloc((size_t)len * sizeof(int32_t));
    n->value = malloc((size_t)len * sizeof(int32_t));
    if (!n->key || !n->value) {
        free(n->key), free(n->value), free(n);
        return NULL;
    }
    memcpy(n->key, key, (size_t)len * sizeof(int32_t));
    memcpy(n->value, value, (size_t)len * sizeof(int32_t));
    n->len = len;
    return n;
}

/* Length of the common prefix of a and b (at most n), rounded down to a page. */
static int64_t common_prefix(const radix_cache *rc, const int32_t *a, const int32_t *b,
                             int64_t n) {
    int64_t i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i / rc->page_size * rc->page_size;
}

/* Cuts child after k tokens: a new node takes the first k and becomes child's parent. The new
 * node inherits the lock count, since every lock through child passes through it. */
static radix_node *split(radix_node *child, int64_t k) {
    radix_node *mid = new_node(child->key, child->value, k);
    if (!mid) return NULL;
    radix_node *parent = child->parent;
    mid->lock_ref = child->lock_ref;
    mid->last_access = child->last_access;
    mid->children = malloc(2 * sizeof(radix_node *));
    if (!mid->children) {
        free(mid->key), free(mid->value), free(mid);
        return NULL;
    }
    mid->cap_children = 2;
    for (int i = 0; i < parent->n_children; i++)
        if (parent->children[i] == child) parent->children[i] = mid;
    mid->parent = parent;
    child->len -= k;
    memmove(child->key, child->key + k, (size_t)child->len * sizeof(int32_t));
    memmove(child->value, child->value + k, (size_t)child->len * sizeof(int32_t));
    mid->children[mid->n_children++] = child;
    child->parent = mid;
    return mid;
}

int64_t radix_match_prefix(radix_cache *rc, const int32_t *key, int64_t n, int32_t *slots_out,
                           radix_node **last) {
    radix_node *node = &rc->root;
    int64_t matched = 0;
    *last = node;
    if (rc->disabled) return 0;
    n = n / rc->page_size * rc->page_size;
    uint64_t now = ++rc->clock;
    node->last_access = now;
    while (matched < n) {
        radix_node *child = find_child(rc, node, key + matched);
        if (!child) break;
        int64_t room = n - matched < child->len ? n - matched : child->len;
        int64_t k = common_prefix(rc, child->key, key + matched, room);
        child->last_access = now;
        if (k < child->len) {
            child = split(child, k);
            if (!child) return -1;
        }
        if (slots_out) memcpy(slots_out + matched, child->value, (size_t)k * sizeof(int32_t));
        matched += k;
        node = child;
    }
    *last = node;
    return matched;
}

int64_t radix_insert(radix_cache *rc, const int32_t *key, int64_t n, const int32_t *slots) {
    if (rc->disabled) return 0;
    n = n / rc->page_size * rc->page_size;
    radix_node *node = &rc->root;
    int64_t pos = 0;
    uint64_t now = ++rc->clock;
    while (pos < n) {
        radix_node *child = find_child(rc, node, key + pos);
        if (!child) {
            radix_node *leaf = new_node(key + pos, slots + pos, n - pos);
            if (!leaf || add_child(node, leaf) != 0) {
                if (leaf) free(leaf->key), free(leaf->value), free(leaf);
                return -1;
            }
            leaf->last_access = now;
            rc->total_size += n - pos;
            return pos;
        }
        int64_t room = n - pos < child->len ? n - pos : child->len;
        int64_t k = common_prefix(rc, child->key, key + pos, room);
        if (k < child->len) {
            child = split(child, k);
            if (!child) return -1;
        }
        child->last_access = now;
        pos += k;
        node = child;
    }
    return n;
}

void radix_lock(radix_cache *rc, radix_node *node) {
    for (; node && node != &rc->root; node = node->parent)
        if (node->lock_ref++ == 0) rc->protected_size += node->len;
}

void radix_unlock(radix_cache *rc, radix_node *node) {
    for (; node && node != &rc->root; node = node->parent)
        if (--node->lock_ref == 0) rc->protected_size -= node->len;
}

/* A binary min-heap of leaves by last access. */
typedef struct {
    radix_node **a;
    int n, cap;
} leaf_heap;

static int heap_push(leaf_heap *h, radix_node *x) {
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 64;
        radix_node **a = realloc(h->a, (size_t)cap * sizeof *a);
        if (!a) return -1;
        h->a = a, h->cap = cap;
    }
    int i = h->n++;
    while (i > 0 && h->a[(i - 1) / 2]->last_access > x->last_access) {
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i] = x;
    return 0;
}

static radix_node *heap_pop(leaf_heap *h) {
    radix_node *top = h->a[0], *x = h->a[--h->n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->a[c + 1]->last_access < h->a[c]->last_access) c++;
        if (h->a[c]->last_access >= x->last_access) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n) h->a[i] = x;
    return top;
}

static int collect_leaves(radix_node *n, leaf_heap *h) {
    if (n->n_children == 0) return n->lock_ref == 0 ? heap_push(h, n) : 0;
    for (int i = 0; i < n->n_children; i++)
        if (collect_leaves(n->children[i], h) != 0) return -1;
    return 0;
}

int64_t radix_evict(radix_cache *rc, int64_t n) {
    if (rc->disabled || n <= 0) return 0;
    leaf_heap h = {0};
    int64_t freed = 0;
    if (collect_leaves(&rc->root, &h) != 0) n = 0; /* out of memory: evict nothing */
    while (freed < n && h.n > 0) {
        radix_node *leaf = heap_pop(&h);
        radix_node *parent = leaf->parent;
        kvpool_release(rc->pool, leaf->value, 0, leaf->len);
        freed += leaf->len;
        rc->total_size -= leaf->len;
        remove_child(parent, leaf);
        free(leaf->key), free(leaf->value), free(leaf->children), free(leaf);
        if (parent != &rc->root && parent->n_children == 0 && parent->lock_ref == 0)
            if (heap_push(&h, parent) != 0) break;
    }
    free(h.a);
    rc->evicted_tokens += freed;
    return freed;
}
