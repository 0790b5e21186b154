/* Tests of kernels/matmul: every weight type on every ISA path this CPU can run, against the
 * double-precision reference on random data, and batch invariance (each row of a batch equals,
 * bit for bit, the same row computed alone, in another batch, or with another thread count). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cpu.h"
#include "kernels/backend.h"
#include "kernels/kquants.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "kernel_test_util.h"

static const dtype_t all_types[] = {DT_F32,  DT_F16,  DT_BF16, DT_Q8_0, DT_Q4_0, DT_Q4_1,
                                    DT_Q5_0, DT_Q5_1, DT_Q4_K, DT_Q5_K, DT_Q6_K};

static bool is_kquant(dtype_t t) { return t == DT_Q4_K || t == DT_Q5_K || t == DT_Q6_K; }
static bool is_float(dtype_t t) { return t == DT_F32 || t == DT_F16 || t == DT_BF16; }

/* K-quant encoders belong to llama.cpp's converter, not to us: a random K-quant row is made of
 * random bytes with small, finite f16 scales, which is a valid row of that format. */
static void random_kquant_row(dtype_t type, uint8_t *row, int64_t n, unsigned *seed) {
    size_t bytes = dtype_row_bytes(type, n);
    for (size_t i = 0; i < bytes; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        row[i] = (uint8_t)(*seed >> 24);
    }
    for (int64_t b = 0; b < n / 256; b++) {
        uint8_t *blk = row + b * dtype_block_bytes(type);
        uint16_t d = 0x1400 | (uint16_t)(b & 0xff); /* ~0.001 */
        if (type == DT_Q6_K) {
            memcpy(blk + 208, &d, 2);
        } else {
            memcpy(blk, &d, 2);
            memcpy(blk + 2, &d, 2);
        }
    }
}

typedef struct {
    tensor_view W;
    uint8_t *data;
} weight;

static weight make_weight(dtype_t type, int64_t n_out, int64_t n_in, unsigned seed) {
    weight w;
    size_t row = dtype_row_bytes(type, n_in);
    w.data = malloc(row * (size_t)n_out);
    float *tmp = malloc((size_t)n_in * sizeof(float));
    for (int64_t o = 0; o < n_out; o++) {
        if (is_kquant(type)) {
            random_kquant_row(type, w.data + o * row, n_in, &seed);
            continue;
        }
        for (int64_t i = 0; i < n_in; i++) tmp[i] = frand(&seed);
        assert_int_equal(quant_quantize_row(type, tmp, w.data + o * row, n_in), 0);
    }
    free(tmp);
    w.W = (tensor_view){.type = type, .n_dims = 2, .ne = {n_in, n_out, 1, 1}, .data = w.data,
                        .nbytes = row * (size_t)n_out};
    return w;
}

static float *rand_x(int64_t n, unsigned seed) {
    float *x = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = frand(&seed);
    return x;
}

static double rel_l2(const float *a, const float *ref, int64_t n) {
    double e = 0, r = 0;
    for (int64_t i = 0; i < n; i++) {
        e += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]);
        r += (double)ref[i] * ref[i];
    }
    return sqrt(e / (r > 0 ? r : 1));
}

static int n_levels(isa_level *levels) {
    int n = 0;
    isa_level best = cpu_get()->best;
    levels[n++] = ISA_SCALAR;
    if (best == ISA_NEON) levels[n++] = ISA_NEON;
    if (best >= ISA_AVX2) levels[n++] = ISA_AVX2;
    if (best >= ISA_AVX512) levels[n++] = ISA_AVX512;
    return n;
}

static void check_accuracy(backend *be, dtype_t type, int64_t n_out, int64_t n_in, int64_t T) {
    weight w = make_weight(type, n_out, n_in, 11u * (unsigned)type + (unsigned)n_out);
    float *x = rand_x(n_in * T, 5u + (unsigned)T);
    float *y = malloc((size_t)(n_out * T) * sizeof(float));
    float *ref = malloc((size_t)(n_out * T) * sizeof(float));
    assert_int_equal(kern_matmul(be, &w.W, x, T, y), 0);
    kern_matmul_ref(&w.W, x, T, ref);
    double err = rel_l2(y, ref, n_out * T);
    double tol = is_float(type) ? 1e-5 : 1e-2;
    if (!(err < tol))
        fail_msg("%s %s [%lldx%lld] T=%lld: rel L2 error %g >= %g", cpu_isa_name(be->isa),
                 dtype_name(type), (long long)n_out, (long long)n_in, (long long)T, err, tol);
    free(w.data);
    free(x);
    free(y);
    free(ref);
}

static void test_matmul_vs_reference(void **state) {
    (void)state;
    backend *be = new_backend(2);
    isa_level levels[4];
    int nl = n_levels(levels);
    for (int l = 0; l < nl; l++) {
        be->isa = levels[l];
        for (size_t k = 0; k < sizeof all_types / sizeof all_types[0]; k++) {
            dtype_t type = all_types[k];
            int64_t n_in = is_kquant(type) ? 512 : 576;
            check_accuracy(be, type, 37, n_in, 1);
            check_accuracy(be, type, 70, n_in, 17);
            if (getenv("SGLC_TEST_QUICK")) continue; /* under emulation (qemu-aarch64) */
            check_accuracy(be, type, 576, 1536, 5);
            check_accuracy(be, type, 1536, n_in, 3);
        }
    }
    backend_destroy(be);
}

/* Y[t] of a batch == Y computed for row t alone, for T = 1..17 and a batch of 16, memcmp:
 * w's rows in any layout. */
static void check_invariance_of(backend *be, backend *be1, const weight *wp) {
    enum { TMAX = 17 };
    const weight w = *wp;
    const dtype_t type = w.W.type;
    const int64_t n_in = w.W.ne[0], n_out = w.W.ne[1];
    float *x = rand_x(n_in * TMAX, 99);
    float *alone = malloc((size_t)(n_out * TMAX) * sizeof(float));
    float *y = malloc((size_t)(n_out * TMAX) * sizeof(float));
    for (int64_t t = 0; t < TMAX; t++)
        assert_int_equal(kern_matmul(be1, &w.W, x + t * n_in, 1, alone + t * n_out), 0);
    for (int64_t T = 1; T <= TMAX; T++) {
        assert_int_equal(kern_matmul(be, &w.W, x, T, y), 0);
        for (int64_t t = 0; t < T; t++)
            if (memcmp(y + t * n_out, alone + t * n_out, (size_t)n_out * sizeof(float)))
                fail_msg("%s %s: row %lld of a batch of %lld differs from the row alone",
                         cpu_isa_name(be->isa), dtype_name(type), (long long)t, (long long)T);
    }
    /* the same rows in reverse order, among other rows: a batch of 16 */
    float *x2 = malloc((size_t)(n_in * 16) * sizeof(float));
    for (int64_t t = 0; t < 16; t++)
        memcpy(x2 + t * n_in, x + (15 - t) * n_in, (size_t)n_in * sizeof(float));
    assert_int_equal(kern_matmul(be, &w.W, x2, 16, y), 0);
    for (int64_t t = 0; t < 16; t++)
        assert_memory_equal(y + t * n_out, alone + (15 - t) * n_out,
                            (size_t)n_out * sizeof(float));
    free(x2);
    free(x);
    free(alone);
    free(y);
}

static void check_invariance(backend *be, backend *be1, dtype_t type, int64_t n_out,
                             int64_t n_in) {
    weight w = make_weight(type, n_out, n_in, 3u + (unsigned)type);
    check_invariance_of(be, be1, &w);
    free(w.data);
}

static void test_batch_invariance(void **state) {
    (void)state;
    backend *be = new_backend(2), *be1 = new_backend(1);
    isa_level levels[4];
    int nl = n_levels(levels);
    for (int l = 0; l < nl; l++) {
        be->isa = be1->isa = levels[l];
        for (size_t k = 0; k < sizeof all_types / sizeof all_types[0]; k++) {
            dtype_t type = all_types[k];
            check_invariance(be, be1, type, 67, is_kquant(type) ? 512 : 576);
        }
    }
    backend_destroy(be);
    backend_destroy(be1);
}

static void w8a8_case(backend *be, backend *be1, int64_t n_out, int64_t n_in, int64_t T) {
    unsigned seed = 17;
    float *wf = rand_x(n_out * n_in, seed);
    int8_t *q = malloc((size_t)(n_out * n_in));
    float *sc = malloc((size_t)n_out * sizeof(float));
    for (int64_t o = 0; o < n_out; o++)
        kern_quantize_w8a8_row(wf + o * n_in, n_in, q + o * n_in, sc + o);
    w8a8_weight W = {.q = q, .scale = sc, .n_in = n_in, .n_out = n_out};
    float *x = rand_x(n_in * T, 23);
    float *y = malloc((size_t)(n_out * T) * sizeof(float));
    float *y1 = malloc((size_t)n_out * sizeof(float));
    float *ref = calloc((size_t)(n_out * T), sizeof(float));
    for (int64_t t = 0; t < T; t++)
        for (int64_t o = 0; o < n_out; o++) {
            double acc = 0;
            for (int64_t i = 0; i < n_in; i++)
                acc += (double)q[o * n_in + i] * sc[o] * x[t * n_in + i];
            ref[t * n_out + o] = (float)acc;
        }
    assert_int_equal(kern_matmul_w8a8(be, &W, x, T, y), 0);
    double err = rel_l2(y, ref, n_out * T);
    if (!(err < 1e-2)) fail_msg("w8a8 %s: rel L2 error %g", cpu_isa_name(be->isa), err);
    for (int64_t t = 0; t < T; t++) {
        assert_int_equal(kern_matmul_w8a8(be1, &W, x + t * n_in, 1, y1), 0);
        assert_memory_equal(y1, y + t * n_out, (size_t)n_out * sizeof(float));
    }
    free(wf);
    free(q);
    free(sc);
    free(x);
    free(y);
    free(y1);
    free(ref);
}

static void test_w8a8(void **state) {
    (void)state;
    backend *be = new_backend(2), *be1 = new_backend(1);
    isa_level levels[4];
    int nl = n_levels(levels);
    for (int l = 0; l < nl; l++) {
        be->isa = be1->isa = levels[l];
        w8a8_case(be, be1, 70, 576, 9);
        w8a8_case(be, be1, 33, 100, 5); /* n_in not a multiple of 32: the tail */
    }
    backend_destroy(be);
    backend_destroy(be1);
}

/* BF16 in 16-row panels (TL_PANEL16), Q8_0 and Q4_1 in 8-row panels (TL_PANEL8): rows read back as
 * packed, every path against the reference, the scalar and AVX2 paths bit for bit (both run
 * one fma chain per output), and batch invariance. */
static weight make_panel_weight(dtype_t type, int64_t n_out, int64_t n_in, unsigned seed) {
    weight rows = make_weight(type, n_out, n_in, seed);
    weight w = rows;
    w.data = malloc(rows.W.nbytes);
    assert_true(kern_matmul_packable(&rows.W));
    kern_matmul_pack(&rows.W, w.data);
    w.W.data = w.data;
    w.W.layout = kern_matmul_pack_layout(type);
    float *a = malloc((size_t)n_in * sizeof(float)), *b = malloc((size_t)n_in * sizeof(float));
    for (int64_t o = 0; o < n_out; o++) {
        quant_dequant_row(type, rows.data + o * dtype_row_bytes(type, n_in), a, n_in);
        kern_matmul_panel_row(&w.W, o, b);
        assert_memory_equal(a, b, (size_t)n_in * sizeof(float));
    }
    free(a);
    free(b);
    free(rows.data);
    return w;
}

static void check_panels(backend *be, backend *be1, dtype_t type) {
    isa_level levels[4];
    int nl = n_levels(levels);
    const double tol = type == DT_BF16 ? 1e-5 : 1e-2;
    const int64_t shapes[][3] = {{48, 576, 1}, {64, 576, 17}, {576, 1536, 5}, {1536, 576, 16}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t n_out = shapes[s][0], n_in = shapes[s][1], T = shapes[s][2];
        weight w = make_panel_weight(type, n_out, n_in, 7u + (unsigned)s);
        float *x = rand_x(n_in * T, 3u + (unsigned)s);
        float *ref = malloc((size_t)(n_out * T) * sizeof(float));
        float *first = malloc((size_t)(n_out * T) * sizeof(float));
        float *y = malloc((size_t)(n_out * T) * sizeof(float));
        kern_matmul_ref(&w.W, x, T, ref);
        for (int l = 0; l < nl; l++) {
            be->isa = levels[l];
            assert_int_equal(kern_matmul(be, &w.W, x, T, y), 0);
            double err = rel_l2(y, ref, n_out * T);
            if (!(err < tol))
                fail_msg("%s %s panels [%lldx%lld] T=%lld: rel L2 error %g", cpu_isa_name(be->isa),
                         dtype_name(type), (long long)n_out, (long long)n_in, (long long)T, err);
            if (l == 0)
                memcpy(first, y, (size_t)(n_out * T) * sizeof(float));
            else if (memcmp(first, y, (size_t)(n_out * T) * sizeof(float)))
                fail_msg("%s %s panels differ from the scalar path", cpu_isa_name(be->isa),
                         dtype_name(type));
        }
        free(w.data);
        free(x);
        free(ref);
        free(first);
        free(y);
    }
    for (int l = 0; l < nl; l++) {
        be->isa = be1->isa = levels[l];
        weight w = make_panel_weight(type, 80, 576, 5);
        check_invariance_of(be, be1, &w);
        free(w.data);
    }
}

static void test_panel_layouts(void **state) {
    (void)state;
    backend *be = new_backend(2), *be1 = new_backend(1);
    if (cpu_get()->best < ISA_AVX2) {
        /* packing is for the x86 kernels; elsewhere the loader keeps the file's layout */
        weight w = make_weight(DT_BF16, 32, 64, 1);
        assert_false(kern_matmul_packable(&w.W));
        free(w.data);
    } else {
        check_panels(be, be1, DT_BF16);
        check_panels(be, be1, DT_Q8_0);
        check_panels(be, be1, DT_Q4_1);
    }
    /* a layout is refused where it cannot hold: rows not a multiple of the panel, wrong type */
    weight w = make_weight(DT_BF16, 40, 64, 1);
    assert_false(kern_matmul_packable(&w.W));
    float x[64] = {0}, y[40];
    w.W.layout = TL_PANEL16;
    assert_int_equal(kern_matmul(be, &w.W, x, 1, y), -1);
    w.W.layout = TL_PANEL8;
    assert_int_equal(kern_matmul(be, &w.W, x, 1, y), -1);
    free(w.data);
    backend_destroy(be);
    backend_destroy(be1);
}

static void test_bad_shapes(void **state) {
    (void)state;
    backend *be = new_backend(1);
    uint8_t data[34 * 4] = {0};
    float x[64] = {0}, y[8];
    tensor_view W = {.type = DT_Q8_0, .n_dims = 2, .ne = {33, 2, 1, 1}, .data = data,
                     .nbytes = sizeof data};
    assert_int_equal(kern_matmul(be, &W, x, 1, y), -1); /* 33 is not a multiple of 32 */
    W.ne[0] = 64;
    W.ne[1] = 3;
    assert_int_equal(kern_matmul(be, &W, x, 1, y), -1); /* 3 rows do not fit in 136 bytes */
    W.ne[1] = 2;
    assert_int_equal(kern_matmul(be, &W, x, 1, y), 0);
    W.type = DT_I32;
    assert_false(kern_matmul_supports(DT_I32));
    assert_int_equal(kern_matmul(be, &W, x, 1, y), -1);
    backend_destroy(be);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_vs_reference),
        cmocka_unit_test(test_batch_invariance),
        cmocka_unit_test(test_w8a8),
        cmocka_unit_test(test_panel_layouts),
        cmocka_unit_test(test_bad_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
