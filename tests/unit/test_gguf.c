/* Tests of formats/gguf: files built byte by byte by a small writer below (every value type,
 * nested arrays, v2 and v3, alignment), each kind of corruption, every truncation of a valid
 * file, and the real model files in the shared test data. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "formats/gguf.h"

/* ---- a tiny GGUF writer ---- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u8(buf *b, uint8_t v) { put(b, &v, 1); }
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(buf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void kv_head(buf *b, const char *key, uint32_t type) {
    put_str(b, key);
    put_u32(b, type);
}

typedef struct {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[5];
    uint32_t type;
    uint64_t offset;
} tinfo;

/* Header, key/values (already encoded), tensor infos, padding to `align`, then data_bytes of
 * data (byte i of the data section holds i & 0xff). */
static buf build(uint32_t version, const buf *kvs, uint64_t n_kv, const tinfo *ts, uint64_t n_t,
                 uint32_t align, size_t data_bytes) {
    buf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, version);
    put_u64(&b, n_t);
    put_u64(&b, n_kv);
    put(&b, kvs->p, kvs->n);
    for (uint64_t i = 0; i < n_t; i++) {
        put_str(&b, ts[i].name);
        put_u32(&b, ts[i].n_dims);
        for (uint32_t d = 0; d < ts[i].n_dims && d < 5; d++) put_u64(&b, ts[i].ne[d]);
        put_u32(&b, ts[i].type);
        put_u64(&b, ts[i].offset);
    }
    while (b.n % align) put_u8(&b, 0);
    for (size_t i = 0; i < data_bytes; i++) put_u8(&b, (uint8_t)i);
    return b;
}

static char tmpdir[64];

static int setup_dir(void **state) {
    (void)state;
    strcpy(tmpdir, "/tmp/sglc_test_gguf_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const void *p, size_t n) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
    return path;
}

/* Opens bytes that must be refused; checks the error names the file and contains `want`. */
static void expect_error(const buf *b, const char *want) {
    const char *path = write_file("bad.gguf", b->p, b->n);
    char err[512] = "";
    gguf_file *g = gguf_open(path, err, sizeof err);
    if (g || !strstr(err, want) || strncmp(err, path, strlen(path)))
        fail_msg("want error containing \"%s\", got %s \"%s\"", want, g ? "success" : "", err);
}

/* The three tensors most tests use, with data laid out at alignment 32. */
static const tinfo std_tensors[] = {
    {"blk.0.attn_q.weight", 2, {4, 2}, 0 /* f32 */, 0}, /* 32 bytes */
    {"tok", 2, {32, 2}, 8 /* q8_0 */, 32},              /* 68 bytes */
    {"f16t", 1, {3}, 1 /* f16 */, 128},                 /* 6 bytes */
};
static const size_t std_data = 134;

/* One key of every value type, including arrays of every element type and nested arrays. */
static buf all_kvs(uint64_t *n_kv) {
    buf k = {0};
    uint64_t n = 0;
    kv_head(&k, "u8", 0), put_u8(&k, 200), n++;
    kv_head(&k, "i8", 1), put_u8(&k, (uint8_t)-5), n++;
    uint16_t u16 = 60000;
    kv_head(&k, "u16", 2), put(&k, &u16, 2), n++;
    int16_t i16 = -30000;
    kv_head(&k, "i16", 3), put(&k, &i16, 2), n++;
    kv_head(&k, "u32", 4), put_u32(&k, 4000000000u), n++;
    int32_t i32 = -7;
    kv_head(&k, "i32", 5), put(&k, &i32, 4), n++;
    float f32 = 1.5f;
    kv_head(&k, "f32", 6), put(&k, &f32, 4), n++;
    kv_head(&k, "bool", 7), put_u8(&k, 1), n++;
    kv_head(&k, "str", 8), put_str(&k, "hello"), n++;
    kv_head(&k, "u64", 10), put_u64(&k, 1ull << 40), n++;
    int64_t i64 = -(1ll << 40);
    kv_head(&k, "i64", 11), put(&k, &i64, 8), n++;
    double f64 = 0.25;
    kv_head(&k, "f64", 12), put(&k, &f64, 8), n++;
    /* arrays */
    kv_head(&k, "arr.i32", 9), put_u32(&k, 5), put_u64(&k, 3);
    for (int32_t v = -1; v <= 1; v++) put(&k, &v, 4);
    n++;
    kv_head(&k, "arr.f32", 9), put_u32(&k, 6), put_u64(&k, 2), put(&k, &f32, 4), put(&k, &f32, 4);
    n++;
    kv_head(&k, "arr.bool", 9), put_u32(&k, 7), put_u64(&k, 2), put_u8(&k, 0), put_u8(&k, 1);
    n++;
    kv_head(&k, "arr.u64", 9), put_u32(&k, 10), put_u64(&k, 1), put_u64(&k, UINT64_MAX), n++;
    kv_head(&k, "arr.str", 9), put_u32(&k, 8), put_u64(&k, 3);
    put_str(&k, "a"), put_str(&k, ""), put_str(&k, "ccc"), n++;
    kv_head(&k, "arr.empty", 9), put_u32(&k, 8), put_u64(&k, 0), n++;
    /* [[1, 2], ["x", "yz"], [[7]]] */
    kv_head(&k, "arr.nested", 9), put_u32(&k, 9), put_u64(&k, 3);
    put_u32(&k, 0), put_u64(&k, 2), put_u8(&k, 1), put_u8(&k, 2);
    put_u32(&k, 8), put_u64(&k, 2), put_str(&k, "x"), put_str(&k, "yz");
    put_u32(&k, 9), put_u64(&k, 1), put_u32(&k, 4), put_u64(&k, 1), put_u32(&k, 7);
    n++;
    *n_kv = n;
    return k;
}

static buf std_file(uint32_t version) {
    uint64_t n_kv;
    buf k = all_kvs(&n_kv);
    buf b = build(version, &k, n_kv, std_tensors, 3, 32, std_data);
    free(k.p);
    return b;
}

static gguf_file *open_buf(const buf *b) {
    const char *path = write_file("ok.gguf", b->p, b->n);
    char err[512] = "";
    gguf_file *g = gguf_open(path, err, sizeof err);
    if (!g) fail_msg("open failed: %s", err);
    return g;
}

static void check_std_file(gguf_file *g) {
    assert_int_equal(gguf_n_kv(g), 19);
    assert_int_equal(gguf_n_tensors(g), 3);
    uint32_t u32;
    int64_t i64;
    float f;
    bool bl;
    assert_true(gguf_get_u32(g, "u8", &u32)), assert_int_equal(u32, 200);
    assert_true(gguf_get_i64(g, "i8", &i64)), assert_int_equal(i64, -5);
    assert_false(gguf_get_u32(g, "i8", &u32)); /* negative: does not fit */
    assert_true(gguf_get_u32(g, "u16", &u32)), assert_int_equal(u32, 60000);
    assert_true(gguf_get_i64(g, "i16", &i64)), assert_int_equal(i64, -30000);
    assert_true(gguf_get_u32(g, "u32", &u32)), assert_int_equal(u32, 4000000000u);
    assert_true(gguf_get_i64(g, "i32", &i64)), assert_int_equal(i64, -7);
    assert_true(gguf_get_f32(g, "f32", &f)), assert_true(f == 1.5f);
    assert_false(gguf_get_u32(g, "f32", &u32));
    assert_true(gguf_get_bool(g, "bool", &bl)), assert_true(bl);
    assert_false(gguf_get_bool(g, "u8", &bl));
    char *s = gguf_get_str(g, "str");
    assert_string_equal(s, "hello");
    free(s);
    assert_null(gguf_get_str(g, "u8"));
    assert_null(gguf_get_str(g, "missing"));
    assert_false(gguf_get_u32(g, "u64", &u32)); /* 2^40 does not fit */
    assert_true(gguf_get_i64(g, "u64", &i64)), assert_int_equal(i64, 1ll << 40);
    assert_true(gguf_get_i64(g, "i64", &i64)), assert_int_equal(i64, -(1ll << 40));
    assert_true(gguf_get_f32(g, "f64", &f)), assert_true(f == 0.25f);
    assert_false(gguf_get_f32(g, "str", &f));

    const gguf_kv *kv = gguf_find_kv(g, "arr.i32");
    assert_non_null(kv);
    assert_int_equal(kv->type, GGUF_ARRAY);
    assert_int_equal(kv->arr_type, GGUF_INT32);
    assert_int_equal(kv->arr_n, 3);
    double d;
    assert_true(gguf_arr_i64(kv, 0, &i64)), assert_int_equal(i64, -1);
    assert_true(gguf_arr_f64(kv, 2, &d)), assert_true(d == 1.0);
    assert_false(gguf_arr_i64(kv, 3, &i64));
    kv = gguf_find_kv(g, "arr.f32");
    assert_true(gguf_arr_f64(kv, 1, &d)), assert_true(d == 1.5);
    assert_false(gguf_arr_i64(kv, 1, &i64)); /* 1.5 is not a whole number */
    kv = gguf_find_kv(g, "arr.bool");
    assert_true(gguf_arr_i64(kv, 1, &i64)), assert_int_equal(i64, 1);
    kv = gguf_find_kv(g, "arr.u64");
    assert_false(gguf_arr_i64(kv, 0, &i64)); /* UINT64_MAX does not fit */
    kv = gguf_find_kv(g, "arr.str");
    assert_int_equal(kv->arr_type, GGUF_STRING);
    assert_non_null(kv->arr_strs);
    assert_int_equal(kv->arr_strs[0].len, 1);
    assert_memory_equal(kv->arr_strs[0].ptr, "a", 1);
    assert_int_equal(kv->arr_strs[1].len, 0);
    assert_memory_equal(kv->arr_strs[2].ptr, "ccc", 3);
    assert_false(gguf_arr_f64(kv, 0, &d));
    gguf_str gs;
    assert_true(gguf_arr_str(g, kv, 2, &gs)), assert_int_equal(gs.len, 3);
    assert_false(gguf_arr_str(g, kv, 3, &gs));
    kv = gguf_find_kv(g, "arr.empty");
    assert_int_equal(kv->arr_n, 0);

    kv = gguf_find_kv(g, "arr.nested");
    assert_int_equal(kv->arr_type, GGUF_ARRAY);
    assert_int_equal(kv->arr_n, 3);
    gguf_kv sub, subsub;
    assert_true(gguf_arr_sub(g, kv, 0, &sub));
    assert_int_equal(sub.arr_type, GGUF_UINT8), assert_int_equal(sub.arr_n, 2);
    assert_true(gguf_arr_i64(&sub, 1, &i64)), assert_int_equal(i64, 2);
    assert_true(gguf_arr_sub(g, kv, 1, &sub));
    assert_int_equal(sub.arr_type, GGUF_STRING), assert_int_equal(sub.arr_n, 2);
    assert_true(gguf_arr_str(g, &sub, 1, &gs));
    assert_int_equal(gs.len, 2), assert_memory_equal(gs.ptr, "yz", 2);
    assert_true(gguf_arr_sub(g, kv, 2, &sub));
    assert_true(gguf_arr_sub(g, &sub, 0, &subsub));
    assert_int_equal(subsub.arr_type, GGUF_UINT32);
    assert_true(gguf_arr_i64(&subsub, 0, &i64)), assert_int_equal(i64, 7);
    assert_false(gguf_arr_sub(g, kv, 3, &sub));

    /* tensors: dims, types, sizes, data pointers */
    assert_int_equal(gguf_alignment(g), 32);
    size_t data = gguf_data_offset(g);
    assert_int_equal(data % 32, 0);
    const gguf_tensor *t = gguf_find_tensor(g, "blk.0.attn_q.weight");
    assert_non_null(t);
    assert_int_equal(t->view.type, DT_F32);
    assert_int_equal(t->view.n_dims, 2);
    assert_int_equal(t->view.ne[0], 4), assert_int_equal(t->view.ne[1], 2);
    assert_int_equal(t->view.ne[2], 1), assert_int_equal(t->view.ne[3], 1);
    assert_int_equal(t->view.nbytes, 32);
    t = gguf_find_tensor(g, "tok");
    assert_int_equal(t->view.type, DT_Q8_0);
    assert_int_equal(t->view.nbytes, 68);
    assert_int_equal(t->offset, 32);
    assert_int_equal(((const uint8_t *)t->view.data)[0], 32); /* byte 32 of the data section */
    t = gguf_find_tensor(g, "f16t");
    assert_int_equal(t->view.nbytes, 6);
    assert_int_equal(((const uint8_t *)t->view.data)[5], 133);
    assert_ptr_equal(gguf_tensor_at(g, 2), t);
    assert_null(gguf_tensor_at(g, 3));
    assert_null(gguf_find_tensor(g, "nope"));
    assert_null(gguf_kv_at(g, 19));
}

static void test_v3_all_types(void **state) {
    (void)state;
    buf b = std_file(3);
    gguf_file *g = open_buf(&b);
    assert_int_equal(gguf_version(g), 3);
    assert_int_equal(gguf_file_size(g), b.n);
    check_std_file(g);
    gguf_close(g);
    free(b.p);
}

static void test_v2_and_versions(void **state) {
    (void)state;
    buf b = std_file(2);
    gguf_file *g = open_buf(&b);
    assert_int_equal(gguf_version(g), 2);
    check_std_file(g);
    gguf_close(g);
    free(b.p);
    b = std_file(1);
    expect_error(&b, "GGUF v1 is not supported");
    free(b.p);
    b = std_file(4);
    expect_error(&b, "unsupported GGUF version 4");
    free(b.p);
}

static void test_alignment(void **state) {
    (void)state;
    buf k = {0};
    kv_head(&k, "general.alignment", 4), put_u32(&k, 64);
    tinfo ts[] = {{"a", 1, {3}, 0, 0}, {"b", 1, {5}, 0, 64}};
    buf b = build(3, &k, 1, ts, 2, 64, 84);
    gguf_file *g = open_buf(&b);
    assert_int_equal(gguf_alignment(g), 64);
    assert_int_equal(gguf_data_offset(g) % 64, 0);
    assert_int_equal(((const uint8_t *)gguf_find_tensor(g, "b")->view.data)[0], 64);
    gguf_close(g);
    free(b.p);

    tinfo mis[] = {{"a", 1, {3}, 0, 0}, {"b", 1, {5}, 0, 32}}; /* 32 is not a multiple of 64 */
    b = build(3, &k, 1, mis, 2, 64, 84);
    expect_error(&b, "tensor 'b': offset 32 is not a multiple of the alignment 64");
    free(b.p), free(k.p);

    k = (buf){0};
    kv_head(&k, "general.alignment", 4), put_u32(&k, 48);
    b = build(3, &k, 1, ts, 2, 16, 128);
    expect_error(&b, "general.alignment': 48 is not a power of two");
    free(b.p), free(k.p);
    k = (buf){0};
    kv_head(&k, "general.alignment", 4), put_u32(&k, 0);
    b = build(3, &k, 1, ts, 2, 16, 128);
    expect_error(&b, "0 is not a power of two");
    free(b.p), free(k.p);
    k = (buf){0};
    kv_head(&k, "general.alignment", 8), put_str(&k, "32");
    b = build(3, &k, 1, ts, 2, 32, 128);
    expect_error(&b, "must be an unsigned 32-bit integer");
    free(b.p), free(k.p);
}

static void test_truncated_everywhere(void **state) {
    (void)state;
    buf b = std_file(3);
    const char *p = write_file("trunc.gguf", b.p, b.n);
    char path[256];
    strcpy(path, p);
    for (size_t len = 0; len < b.n; len++) {
        assert_int_equal(truncate(path, (off_t)len), 0);
        char err[512] = "";
        gguf_file *g = gguf_open(path, err, sizeof err);
        if (g) fail_msg("truncated to %zu of %zu bytes but opened", len, b.n);
        assert_true(strncmp(err, path, strlen(path)) == 0);
        assert_true(strlen(err) > strlen(path) + 2);
    }
    free(b.p);
}

static void test_bad_header(void **state) {
    (void)state;
    buf b = {0};
    expect_error(&b, "empty file");
    put(&b, "GGML", 4), put_u32(&b, 3), put_u64(&b, 0), put_u64(&b, 0);
    expect_error(&b, "not a GGUF file");
    memcpy(b.p, "GGUF", 4);
    memcpy(b.p + 4, "\0\0\0\3", 4);
    expect_error(&b, "big-endian");
    free(b.p);
    b = (buf){0};
    put(&b, "GGUF", 4), put_u32(&b, 3), put_u64(&b, 0), put_u64(&b, 1ull << 60);
    expect_error(&b, "key/values cannot fit");
    free(b.p);
    b = (buf){0};
    put(&b, "GGUF", 4), put_u32(&b, 3), put_u64(&b, UINT64_MAX), put_u64(&b, 0);
    expect_error(&b, "tensor infos cannot fit");
    free(b.p);
    /* A file that is fine when it has no tensors and no kvs. */
    b = (buf){0};
    put(&b, "GGUF", 4), put_u32(&b, 3), put_u64(&b, 0), put_u64(&b, 0);
    gguf_file *g = open_buf(&b);
    assert_int_equal(gguf_n_kv(g), 0), assert_int_equal(gguf_n_tensors(g), 0);
    gguf_close(g);
    free(b.p);
    char err[256];
    assert_null(gguf_open("/nonexistent/x.gguf", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/x.gguf: No such file"));
    assert_null(gguf_open("/tmp", err, sizeof err));
    assert_non_null(strstr(err, "not a regular file"));
}

/* One bad key/value in front of the standard tensors. */
static void expect_kv_error(void (*write_kv)(buf *), const char *want) {
    buf k = {0};
    write_kv(&k);
    buf b = build(3, &k, 1, std_tensors, 3, 32, std_data);
    expect_error(&b, want);
    free(b.p), free(k.p);
}
static void kv_bad_type(buf *k) { kv_head(k, "x", 13), put_u32(k, 0); }
static void kv_bad_arr_type(buf *k) { kv_head(k, "x", 9), put_u32(k, 77), put_u64(k, 1); }
static void kv_bad_bool(buf *k) { kv_head(k, "flag", 7), put_u8(k, 2); }
static void kv_huge_str(buf *k) { kv_head(k, "x", 8), put_u64(k, 1ull << 62); }
static void kv_huge_strarr(buf *k) { kv_head(k, "x", 9), put_u32(k, 8), put_u64(k, 1ull << 61); }
static void kv_huge_arr(buf *k) { kv_head(k, "x", 9), put_u32(k, 12), put_u64(k, 1ull << 61); }
static void kv_empty_key(buf *k) { kv_head(k, "", 4), put_u32(k, 0); }
static void kv_deep(buf *k) {
    kv_head(k, "deep", 9);
    for (int i = 0; i < 40; i++) put_u32(k, 9), put_u64(k, 1);
    put_u32(k, 0), put_u64(k, 0);
}

static void test_bad_kvs(void **state) {
    (void)state;
    expect_kv_error(kv_bad_type, "key 'x': unknown value type 13");
    expect_kv_error(kv_bad_arr_type, "key 'x': array of unknown value type 77");
    expect_kv_error(kv_bad_bool, "key 'flag': bool value 2 is neither 0 nor 1");
    expect_kv_error(kv_huge_str, "key 'x': truncated: string value needs");
    expect_kv_error(kv_huge_strarr, "key 'x': truncated: array of 2305843009213693952 strings");
    expect_kv_error(kv_huge_arr, "key 'x': truncated: array of");
    expect_kv_error(kv_empty_key, "key is empty");
    expect_kv_error(kv_deep, "key 'deep': arrays nested deeper than 16");

    buf k = {0};
    kv_head(&k, "dup", 4), put_u32(&k, 1);
    kv_head(&k, "other", 4), put_u32(&k, 1);
    kv_head(&k, "dup", 4), put_u32(&k, 2);
    buf b = build(3, &k, 3, std_tensors, 3, 32, std_data);
    expect_error(&b, "key 'dup': duplicate key (first at #0)");
    free(b.p), free(k.p);
}

static void expect_tensor_error(const tinfo *t, size_t data, const char *want) {
    buf k = {0};
    buf b = build(3, &k, 0, t, 1, 32, data);
    expect_error(&b, want);
    free(b.p);
}

static void test_bad_tensors(void **state) {
    (void)state;
    char want[256];
    /* data runs one byte past the end: the message gives the exact range and the size */
    {
        tinfo t = {"blk.0.attn_q.weight", 2, {4, 2}, 0, 0};
        buf k = {0};
        buf b = build(3, &k, 0, &t, 1, 32, 31);
        size_t data = b.n - 31;
        snprintf(want, sizeof want,
                 "bad.gguf: tensor 'blk.0.attn_q.weight': data [%zu, %zu) past end of file "
                 "(size %zu)",
                 data, data + 32, b.n);
        expect_error(&b, want);
        free(b.p);
    }
    tinfo far = {"w", 1, {8}, 0, 1ull << 40};
    expect_tensor_error(&far, 32, "tensor 'w': data [");
    tinfo wrap = {"w", 1, {8}, 0, UINT64_MAX - 31};
    expect_tensor_error(&wrap, 32, "tensor 'w': data at offset");
    tinfo unk = {"blk.1.ffn_up.weight", 1, {8}, 99, 0};
    expect_tensor_error(&unk, 32, "tensor 'blk.1.ffn_up.weight': unknown tensor type 99");
    tinfo gap = {"w", 1, {8}, 4 /* unused number between q4_1 and q5_0 */, 0};
    expect_tensor_error(&gap, 32, "unknown tensor type 4");
    tinfo dims5 = {"w", 5, {1, 1, 1, 1, 1}, 0, 0};
    expect_tensor_error(&dims5, 32, "tensor 'w': n_dims 5 > 4");
    tinfo zero = {"w", 2, {8, 0}, 0, 0};
    expect_tensor_error(&zero, 32, "tensor 'w': dimension 1 is 0");
    tinfo over = {"w", 2, {1ull << 40, 1ull << 40}, 0, 0};
    expect_tensor_error(&over, 32, "element count overflows");
    tinfo block = {"w", 2, {33, 2}, 8, 0};
    expect_tensor_error(&block, 128, "row of 33 elements is not a multiple of the q8_0 block (32)");
    tinfo bytes = {"w", 2, {1ull << 62, 4}, 0, 0};
    expect_tensor_error(&bytes, 32, "tensor 'w': ");

    tinfo dup[] = {{"w", 1, {8}, 0, 0}, {"w", 1, {8}, 0, 32}};
    buf k = {0};
    buf b = build(3, &k, 0, dup, 2, 32, 64);
    expect_error(&b, "tensor 'w': duplicate tensor name (first at #0)");
    free(b.p);
}

/* ---- real files ---- */

static void test_stories260k(void **state) {
    (void)state;
    char err[512];
    gguf_file *g =
        gguf_open("../shared/testdata/models/stories260K/stories260K.gguf", err, sizeof err);
    if (!g) fail_msg("%s", err);
    assert_int_equal(gguf_version(g), 3);
    assert_int_equal(gguf_n_tensors(g), 48);
    uint32_t u;
    assert_true(gguf_get_u32(g, "llama.block_count", &u)), assert_int_equal(u, 5);
    assert_true(gguf_get_u32(g, "llama.embedding_length", &u)), assert_int_equal(u, 64);
    assert_true(gguf_get_u32(g, "llama.context_length", &u)), assert_int_equal(u, 512);
    char *arch = gguf_get_str(g, "general.architecture");
    assert_string_equal(arch, "llama");
    free(arch);
    const gguf_kv *tok = gguf_find_kv(g, "tokenizer.ggml.tokens");
    assert_non_null(tok);
    assert_int_equal(tok->arr_n, 512);
    const gguf_tensor *t = gguf_find_tensor(g, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->view.type, DT_F32);
    assert_int_equal(t->view.ne[0], 64), assert_int_equal(t->view.ne[1], 512);
    assert_int_equal(t->view.nbytes, 64 * 512 * 4);
    gguf_close(g);
}

static void test_smollm2(void **state) {
    (void)state;
    const char *home = getenv("HOME");
    char path[512];
    snprintf(path, sizeof path, "%s/.cache/sglc/SmolLM2-135M-Instruct.Q4_1.gguf", home ? home : "");
    if (access(path, R_OK) != 0) skip();
    char err[512];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    gguf_file *g = gguf_open(path, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (!g) fail_msg("%s", err);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    print_message("SmolLM2 gguf_open: %.2f ms\n", ms);
    assert_int_equal(gguf_version(g), 3);
    assert_int_equal(gguf_n_tensors(g), 272);
    const gguf_tensor *t = gguf_find_tensor(g, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->view.type, DT_Q8_0);
    assert_int_equal(t->view.ne[0], 576), assert_int_equal(t->view.ne[1], 49152);
    uint32_t u;
    assert_true(gguf_get_u32(g, "llama.block_count", &u)), assert_int_equal(u, 30);
    const gguf_kv *tok = gguf_find_kv(g, "tokenizer.ggml.tokens");
    assert_non_null(tok);
    assert_int_equal(tok->arr_type, GGUF_STRING);
    assert_int_equal(tok->arr_n, 49152);
    /* Token 0 of SmolLM2's vocabulary is <|endoftext|>. */
    assert_int_equal(tok->arr_strs[0].len, 13);
    assert_memory_equal(tok->arr_strs[0].ptr, "<|endoftext|>", 13);
    for (size_t i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor *ti = gguf_tensor_at(g, i);
        assert_true((const uint8_t *)ti->view.data + ti->view.nbytes <=
                    (const uint8_t *)gguf_tensor_at(g, 0)->view.data + gguf_file_size(g));
    }
    gguf_close(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v3_all_types), cmocka_unit_test(test_v2_and_versions),
        cmocka_unit_test(test_alignment),    cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_bad_header),   cmocka_unit_test(test_bad_kvs),
        cmocka_unit_test(test_bad_tensors),  cmocka_unit_test(test_stories260k),
        cmocka_unit_test(test_smollm2),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
