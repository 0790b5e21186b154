/* Radix cache: match, insert, split, lock, LRU eviction, page alignment, disable, reset; every
 * slot the tree gives back returns to the pool exactly once. The pool here is a bare page
 * allocator (no KV buffers): the tree only moves slot ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/radix_cache.h"

static void pool_make(kv_pool *p, int64_t n_pages, int page_size) {
    memset(p, 0, sizeof *p);
    p->page_size = page_size;
    p->n_pages = n_pages;
    p->free_pages = malloc((size_t)n_pages * sizeof(int32_t));
    for (int64_t i = 0; i < n_pages; i++) p->free_pages[i] = (int32_t)(n_pages - 1 - i);
    p->n_free_pages = n_pages;
}

/* Allocates slots for n fresh positions (starting page-aligned) like a request would. */
static void take(kv_pool *p, int32_t *slots, int64_t n) {
    assert_int_equal(kvpool_extend(p, slots, 0, n), 0);
}

static void test_match_insert_split(void **state) {
    (void)state;
    kv_pool p;
    pool_make(&p, 100, 1);
    radix_cache rc;
    radix_init(&rc, &p, 1, false);
    int32_t a[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, sa[10];
    int32_t b[8] = {1, 2, 3, 4, 50, 60, 70, 80}, sb[8], out[10];
    take(&p, sa, 10);
    assert_int_equal(radix_insert(&rc, a, 10, sa), 0);
    assert_int_equal(rc.total_size, 10);
    radix_node *last;
    /* a partial match splits the node: 4 tokens, then a node boundary */
    assert_int_equal(radix_match_prefix(&rc, b, 8, out, &last), 4);
    assert_memory_equal(out, sa, 4 * sizeof(int32_t));
    assert_int_equal(last->len, 4);
    assert_int_equal(last->n_children, 1);
    assert_int_equal(rc.root.n_children, 1);
    /* inserting b: its first 4 are present, so the caller keeps (and frees) those slots */
    take(&p, sb, 8);
    assert_int_equal(radix_insert(&rc, b, 8, sb), 4);
    kvpool_release(&p, sb, 0, 4);
    assert_int_equal(rc.total_size, 14);
    assert_int_equal(last->n_children, 2);
    assert_int_equal(radix_match_prefix(&rc, b, 8, out, &last), 8);
    assert_memory_equal(out, sa, 4 * sizeof(int32_t));
    assert_memory_equal(out + 4, sb + 4, 4 * sizeof(int32_t));
    /* a full re-insert adds nothing */
    assert_int_equal(radix_insert(&rc, a, 10, sa), 10);
    assert_int_equal(rc.total_size, 14);
    /* no match at all */
    int32_t c[3] = {9, 9, 9};
    assert_int_equal(radix_match_prefix(&rc, c, 3, out, &last), 0);
    assert_ptr_equal(last, &rc.root);
    assert_int_equal(p.n_free_pages + rc.total_size, 100);
    radix_reset(&rc);
    assert_int_equal(p.n_free_pages, 100);
    radix_destroy(&rc);
    free(p.free_pages);
}

static void test_lock_and_evict_lru(void **state) {
    (void)state;
    kv_pool p;
    pool_make(&p, 100, 1);
    radix_cache rc;
    radix_init(&rc, &p, 1, false);
    int32_t k1[6] = {1, 2, 3, 4, 5, 6}, k2[6] = {1, 2, 3, 7, 8, 9}, k3[4] = {20, 21, 22, 23};
    int32_t s1[6], s2[6], s3[4];
    take(&p, s1, 6);
    radix_insert(&rc, k1, 6, s1);
    take(&p, s2, 6);
    kvpool_release(&p, s2, 0, radix_insert(&rc, k2, 6, s2));
    take(&p, s3, 4);
    radix_insert(&rc, k3, 4, s3);
    assert_int_equal(rc.total_size, 13);
    radix_node *n1, *n3;
    assert_int_equal(radix_match_prefix(&rc, k1, 6, NULL, &n1), 6);
    radix_lock(&rc, n1); /* path {1,2,3} + {4,5,6} locked */
    assert_int_equal(rc.protected_size, 6);
    assert_int_equal(radix_evictable_size(&rc), 7);
    /* touch k3 so that k2's leaf is the least recently used */
    assert_int_equal(radix_match_prefix(&rc, k3, 4, NULL, &n3), 4);
    int64_t before = p.n_free_pages;
    assert_int_equal(radix_evict(&rc, 1), 3); /* k2's leaf {7,8,9} */
    assert_int_equal(p.n_free_pages, before + 3);
    radix_node *x;
    assert_int_equal(radix_match_prefix(&rc, k2, 6, NULL, &x), 3);
    assert_int_equal(radix_match_prefix(&rc, k3, 4, NULL, &x), 4);
    /* evicting everything leaves only the locked path */
    radix_evict(&rc, 1000);
    assert_int_equal(rc.total_size, 6);
    assert_int_equal(radix_match_prefix(&rc, k1, 6, NULL, &x), 6);
    radix_unlock(&rc, n1);
    assert_int_equal(rc.protected_size, 0);
    assert_int_equal(radix_evict(&rc, 1000), 6);
    assert_int_equal(rc.total_size, 0);
    assert_int_equal(p.n_free_pages, 100);
    assert_true(rc.evicted_tokens >= 13);
    radix_destroy(&rc);
    free(p.free_pages);
}

static void test_lock_survives_split(void **state) {
    (void)state;
    kv_pool p;
    pool_make(&p, 64, 1);
    radix_cache rc;
    radix_init(&rc, &p, 1, false);
    int32_t k[8] = {1, 2, 3, 4, 5, 6, 7, 8}, s[8];
    take(&p, s, 8);
    radix_insert(&rc, k, 8, s);
    radix_node *n;
    radix_match_prefix(&rc, k, 8, NULL, &n);
    radix_lock(&rc, n);
    int32_t q[4] = {1, 2, 9, 9};
    radix_node *m;
    assert_int_equal(radix_match_prefix(&rc, q, 4, NULL, &m), 2); /* splits the locked node */
    assert_int_equal(m->lock_ref, 1);
    assert_int_equal(rc.protected_size, 8);
    assert_int_equal(radix_evict(&rc, 100), 0);
    radix_unlock(&rc, n);
    assert_int_equal(rc.protected_size, 0);
    assert_int_equal(radix_evict(&rc, 100), 8);
    radix_destroy(&rc);
    free(p.free_pages);
}

static void test_pages(void **state) {
    (void)state;
    kv_pool p;
    pool_make(&p, 16, 4);
    radix_cache rc;
    radix_init(&rc, &p, 4, false);
    int32_t k[10], s[10], out[10];
    for (int i = 0; i < 10; i++) k[i] = 100 + i;
    take(&p, s, 10);
    assert_int_equal(s[1], s[0] + 1);
    assert_int_equal(s[0] % 4, 0);
    assert_int_equal(p.n_free_pages, 13);
    /* only whole pages enter the tree: 8 of 10 */
    assert_int_equal(radix_insert(&rc, k, 10, s), 0);
    assert_int_equal(rc.total_size, 8);
    kvpool_release(&p, s, 8, 10);
    radix_node *last;
    assert_int_equal(radix_match_prefix(&rc, k, 10, out, &last), 8);
    int32_t q[10];
    memcpy(q, k, sizeof q);
    q[6] = 0; /* differs inside the second page: only the first page matches */
    assert_int_equal(radix_match_prefix(&rc, q, 10, out, &last), 4);
    assert_int_equal(last->len, 4);
    assert_int_equal(radix_evict(&rc, 1), 4);
    assert_int_equal(radix_evict(&rc, 1), 4);
    assert_int_equal(p.n_free_pages, 16);
    radix_destroy(&rc);
    free(p.free_pages);
}

static void test_disabled(void **state) {
    (void)state;
    kv_pool p;
    pool_make(&p, 8, 1);
    radix_cache rc;
    radix_init(&rc, &p, 1, true);
    int32_t k[4] = {1, 2, 3, 4}, s[4];
    take(&p, s, 4);
    assert_int_equal(radix_insert(&rc, k, 4, s), 0);
    assert_int_equal(rc.total_size, 0);
    radix_node *last;
    assert_int_equal(radix_match_prefix(&rc, k, 4, s, &last), 0);
    radix_destroy(&rc);
    free(p.free_pages);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_insert_split), cmocka_unit_test(test_lock_and_evict_lru),
        cmocka_unit_test(test_lock_survives_split), cmocka_unit_test(test_pages),
        cmocka_unit_test(test_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
