/* Tests of formats/safetensors: small files written here (header JSON + data), the GGML-order
 * views, metadata, and each way a file can be wrong: truncation at every byte, bad JSON,
 * offsets that overlap, lie outside the data or disagree with the shape, unknown dtypes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/safetensors.h"

static char tmpdir[64];

static int setup_dir(void **state) {
    (void)state;
    strcpy(tmpdir, "/tmp/sglc_test_st_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes a safetensors file: header JSON padded with spaces to a multiple of 8, then
 * data_bytes bytes where byte i holds i & 0xff. Returns its size. */
static size_t write_st(const char *path, const char *json, size_t data_bytes) {
    size_t hl = strlen(json), padded = (hl + 7) / 8 * 8;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t n = padded;
    fwrite(&n, 8, 1, f);
    fwrite(json, 1, hl, f);
    for (size_t i = hl; i < padded; i++) fputc(' ', f);
    for (size_t i = 0; i < data_bytes; i++) fputc((int)(i & 0xff), f);
    fclose(f);
    return 8 + padded + data_bytes;
}

static const char *tmp_path(const char *name) {
    static char p[256];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

static const char *valid_json =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"c\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[32,35]},"
    "\"empty\":{\"dtype\":\"I64\",\"shape\":[2,0],\"data_offsets\":[35,35]},"
    "\"scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[35,39]},"
    "\"r5\":{\"dtype\":\"I8\",\"shape\":[1,2,1,1,3],\"data_offsets\":[39,45]}}";

static void test_valid(void **state) {
    (void)state;
    const char *path = tmp_path("ok.safetensors");
    size_t size = write_st(path, valid_json, 45);
    char err[512] = "";
    safetensors_file *f = safetensors_open(path, err, sizeof err);
    if (!f) fail_msg("%s", err);
    assert_int_equal(safetensors_file_size(f), size);
    assert_int_equal(safetensors_n_tensors(f), 6);
    assert_string_equal(safetensors_tensor_at(f, 0)->name, "a"); /* in data order */
    assert_string_equal(safetensors_tensor_at(f, 1)->name, "b");
    assert_null(safetensors_tensor_at(f, 6));

    const safetensors_tensor *a = safetensors_find(f, "a");
    assert_non_null(a);
    assert_true(a->known_type);
    assert_string_equal(a->dtype, "F32");
    assert_int_equal(a->rank, 2);
    assert_int_equal(a->shape[0], 2), assert_int_equal(a->shape[1], 3);
    assert_int_equal(a->view.type, DT_F32);
    assert_int_equal(a->view.n_dims, 2);
    assert_int_equal(a->view.ne[0], 3), assert_int_equal(a->view.ne[1], 2);
    assert_int_equal(a->view.ne[2], 1), assert_int_equal(a->view.ne[3], 1);
    assert_int_equal(a->view.nbytes, 24);
    assert_ptr_equal(a->view.data,
                     (const void *)((const uint8_t *)safetensors_tensor_at(f, 0)->view.data));
    const safetensors_tensor *b = safetensors_find(f, "b");
    assert_int_equal(b->view.type, DT_BF16);
    assert_int_equal(((const uint8_t *)b->view.data)[0], 24);
    assert_int_equal((const uint8_t *)b->view.data - (const uint8_t *)a->view.data, 24);
    const safetensors_tensor *c = safetensors_find(f, "c");
    assert_false(c->known_type);
    assert_int_equal(c->view.type, DT_COUNT);
    assert_int_equal(c->elem_bytes, 1);
    assert_int_equal(c->view.nbytes, 3);
    assert_int_equal(((const uint8_t *)c->view.data)[2], 34);
    const safetensors_tensor *e = safetensors_find(f, "empty");
    assert_int_equal(e->view.nbytes, 0);
    assert_int_equal(e->view.ne[0], 0), assert_int_equal(e->view.ne[1], 2);
    const safetensors_tensor *s = safetensors_find(f, "scalar");
    assert_int_equal(s->rank, 0), assert_int_equal(s->view.n_dims, 0);
    assert_int_equal(tensor_nelems(&s->view), 1);
    const safetensors_tensor *r5 = safetensors_find(f, "r5");
    assert_int_equal(r5->rank, 5);
    assert_int_equal(r5->view.ne[0], 3), assert_int_equal(r5->view.ne[1], 1);
    assert_int_equal(r5->view.ne[2], 1), assert_int_equal(r5->view.ne[3], 2);
    assert_int_equal(tensor_nelems(&r5->view), 6);
    assert_null(safetensors_find(f, "__metadata__"));
    assert_null(safetensors_find(f, "zz"));

    assert_non_null(safetensors_metadata(f));
    assert_string_equal(safetensors_meta_get(f, "format"), "pt");
    assert_null(safetensors_meta_get(f, "nope"));
    safetensors_close(f);

    /* no metadata, no tensors */
    write_st(path, "{}", 0);
    f = safetensors_open(path, err, sizeof err);
    if (!f) fail_msg("%s", err);
    assert_int_equal(safetensors_n_tensors(f), 0);
    assert_null(safetensors_metadata(f));
    assert_null(safetensors_meta_get(f, "format"));
    safetensors_close(f);
}

static void expect_error(const char *json, size_t data, const char *want) {
    const char *path = tmp_path("bad.safetensors");
    write_st(path, json, data);
    char err[512] = "";
    safetensors_file *f = safetensors_open(path, err, sizeof err);
    if (f || !strstr(err, want) || strncmp(err, path, strlen(path)))
        fail_msg("want error containing \"%s\", got %s\"%s\"", want, f ? "success " : "", err);
}

static void test_bad_headers(void **state) {
    (void)state;
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                 12, "tensor 'b': data_offsets [4, 12) overlap tensor 'a' [0, 8)");
    /* an empty tensor between two overlapping ones hides nothing */
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                 "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                 16, "overlap tensor 'a'");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 7,
                 "tensor 'a': data_offsets [0, 8) do not lie inside the data section (7 bytes)");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
                 "do not lie inside");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 12,
                 "tensor 'a': data_offsets [0, 8) hold 8 bytes, its shape and dtype F32 need 12");
    expect_error("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,1]}}", 1,
                 "tensor 'a': unknown dtype \"Q4\"");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
                 "shape[0] is not a non-negative integer");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                 "\"data_offsets\":[0,8]}}",
                 8, "element count overflows");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4,1,1,0],"
                 "\"data_offsets\":[0,0]}}",
                 8, "element count overflows");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                 "\"data_offsets\":[0,4]}}",
                 4, "rank 9 > 8");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8,
                 "data_offsets must be two non-negative integers");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "needs \"dtype\"");
    expect_error("{\"a\":[1]}", 8, "tensor 'a': entry is not a JSON object");
    expect_error("{\"a\": {", 0, "header JSON:");
    expect_error("[1,2]", 0, "header JSON is not an object");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                 8, "duplicate");
    expect_error("{\"__metadata__\":{\"n\":1}}", 0, "__metadata__ 'n' is not a string");
    expect_error("{\"__metadata__\":[]}", 0, "__metadata__ is not an object");
}

static void test_bad_sizes(void **state) {
    (void)state;
    const char *path = tmp_path("size.safetensors");
    char err[512];
    FILE *f = fopen(path, "wb");
    fclose(f);
    assert_null(safetensors_open(path, err, sizeof err));
    assert_non_null(strstr(err, "empty file"));
    f = fopen(path, "wb");
    fwrite("\x10\0\0", 1, 3, f);
    fclose(f);
    assert_null(safetensors_open(path, err, sizeof err));
    assert_non_null(strstr(err, "truncated"));
    /* header length past the end */
    f = fopen(path, "wb");
    uint64_t n = 1000;
    fwrite(&n, 8, 1, f);
    fwrite("{}", 1, 2, f);
    fclose(f);
    assert_null(safetensors_open(path, err, sizeof err));
    assert_non_null(strstr(err, "header length 1000 past end of file (size 10)"));
    /* a 100 MB header is refused even when the file is that large (sparse here) */
    f = fopen(path, "wb");
    n = SAFETENSORS_MAX_HEADER;
    fwrite(&n, 8, 1, f);
    fclose(f);
    assert_int_equal(truncate(path, (off_t)n + 64), 0);
    assert_null(safetensors_open(path, err, sizeof err));
    assert_non_null(strstr(err, "over the 100000000-byte limit"));
    assert_null(safetensors_open("/nonexistent.safetensors", err, sizeof err));
    assert_non_null(strstr(err, "No such file"));
}

static void test_truncated_everywhere(void **state) {
    (void)state;
    const char *p = tmp_path("trunc.safetensors");
    char path[256];
    strcpy(path, p);
    size_t size = write_st(path, valid_json, 45);
    for (size_t len = 0; len < size; len++) {
        assert_int_equal(truncate(path, (off_t)len), 0);
        char err[512] = "";
        safetensors_file *f = safetensors_open(path, err, sizeof err);
        if (f) fail_msg("truncated to %zu of %zu bytes but opened", len, size);
        assert_true(strncmp(err, path, strlen(path)) == 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_truncated_everywhere),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
