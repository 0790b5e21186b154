/* Tests of the K-quant kernels (kernels/kquants.h):
 *  - scalar dequantization equals, bit for bit, what PyPI's gguf package decodes
 *    (tests/fixtures/kquants, made by make.py there);
 *  - q8_K quantization follows GGML's rule (sign of the largest value, ties to even, bsums);
 *  - the scalar dot equals a double-precision dot of the dequantized rows, to rounding;
 *  - every vector path the CPU has agrees with the scalar one, on random blocks and at the
 *    extremes of every code and scale;
 *  - tiles equal single dots bit for bit (memcmp), for every tile shape and path.
 * With SGLC_KQ_BENCH=1 in the environment it also prints the AVX2 dot's throughput. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cpu.h"
#include "base/fp16.h"
#include "kernels/kquants.h"

static const dtype_t kq_types[3] = {DT_Q4_K, DT_Q5_K, DT_Q6_K};

/* --- small deterministic random numbers (xorshift64*) --- */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rng_u32(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}
static float rng_uniform(void) { return (float)rng_u32() / 4294967296.0f; } /* [0, 1) */
static float rng_normal(void) {
    float u = rng_uniform() + 1e-7f, v = rng_uniform();
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

/* Random blocks: random bytes, then f16 scales drawn over several orders of magnitude. */
static void random_row(dtype_t type, void *row, int64_t n) {
    size_t bytes = dtype_row_bytes(type, n), bsz = dtype_block_bytes(type);
    uint8_t *p = row;
    for (size_t i = 0; i < bytes; i++) p[i] = (uint8_t)rng_u32();
    for (size_t off = 0; off < bytes; off += bsz) {
        float mag = powf(10.0f, -4.0f + 3.0f * rng_uniform());
        uint16_t d = fp32_to_fp16(rng_normal() * mag);
        uint16_t dmin = fp32_to_fp16(rng_normal() * mag);
        if (type == DT_Q6_K) {
            memcpy(p + off + 208, &d, 2);
        } else {
            memcpy(p + off, &d, 2);
            memcpy(p + off + 2, &dmin, 2);
        }
    }
}

static void random_floats(float *x, int64_t n) {
    float mag = powf(10.0f, -2.0f + 3.0f * rng_uniform());
    for (int64_t i = 0; i < n; i++) x[i] = rng_normal() * mag;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    assert_non_null(p);
    return p;
}

/* Sum over i of |x_i| * (|w_i| + |min term of w_i|): the size of the terms a dot product adds,
 * which bounds its rounding error even when they cancel. */
static double dot_magnitude(dtype_t type, const void *row, const float *w, const float *x,
                            int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double m = 0;
        if (type != DT_Q6_K) {
            const uint8_t *blk = (const uint8_t *)row + (i / 256) * dtype_block_bytes(type);
            uint16_t dmin;
            memcpy(&dmin, blk + 2, 2);
            uint8_t sc, mn;
            kq_scale_min(blk + 4, (int)(i % 256) / 32, &sc, &mn);
            m = fabs((double)fp16_to_fp32(dmin) * mn);
        }
        s += fabs((double)x[i]) * (fabs((double)w[i]) + m);
    }
    return s;
}

static void dequant_q8(const block_q8_K *q, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = q[i / 256].d * (float)q[i / 256].qs[i % 256];
}

/* --- dequantization against the gguf package --- */

static void *read_fixture(const char *name, size_t expect) {
    char path[512];
    const char *root = getenv("SGLC_ROOT");
    snprintf(path, sizeof path, "%s/tests/fixtures/kquants/%s", root ? root : ".", name);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    void *buf = xmalloc(expect + 1);
    size_t got = fread(buf, 1, expect + 1, f);
    fclose(f);
    if (got != expect) fail_msg("%s: %zu bytes, expected %zu", path, got, expect);
    return buf;
}

static void test_dequant_matches_gguf(void **state) {
    (void)state;
    const char *names[3] = {"q4_k", "q5_k", "q6_k"};
    const int64_t n = 6 * 256;
    for (int k = 0; k < 3; k++) {
        char bin[32], f32[32];
        snprintf(bin, sizeof bin, "%s.bin", names[k]);
        snprintf(f32, sizeof f32, "%s.f32", names[k]);
        void *blocks = read_fixture(bin, dtype_row_bytes(kq_types[k], n));
        float *want = read_fixture(f32, n * sizeof(float));
        float *got = xmalloc(n * sizeof(float));
        kq_dequant_row(kq_types[k], blocks, got, n);
        for (int64_t i = 0; i < n; i++)
            if (fp32_to_bits(got[i]) != fp32_to_bits(want[i]))
                fail_msg("%s value %lld: got %.9g, gguf says %.9g", names[k], (long long)i, got[i],
                         want[i]);
        free(blocks);
        free(want);
        free(got);
    }
}

/* --- q8_K quantization --- */

static void test_quantize_q8_K_rule(void **state) {
    (void)state;
    float x[512];
    block_q8_K q[2];

    /* block 0: a ramp whose largest magnitude is positive, last */
    for (int i = 0; i < 256; i++) x[i] = (float)(i - 100) * 0.01f;
    /* block 1: max magnitude -127 (iscale 1, so rounding is visible), ties of magnitude (first
     * wins: the -127 at 3 beats the +127 at 7) and halves that round to even */
    memset(x + 256, 0, 256 * sizeof(float));
    x[256 + 3] = -127.0f;
    x[256 + 7] = 127.0f;
    const float halves[6] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f};
    const int8_t rounded[6] = {0, 2, 2, 0, -2, -2};
    for (int i = 0; i < 6; i++) x[256 + 20 + i] = halves[i];
    x[256 + 40] = 126.6f; /* rounds to 127 after scaling, no clamp needed */

    kq_quantize_row_q8_K(x, q, 512);

    float iscale = -127.0f / x[255];
    assert_true(fp32_to_bits(q[0].d) == fp32_to_bits(1.0f / iscale));
    assert_int_equal(q[0].qs[255], -127);
    assert_int_equal(q[0].qs[100], 0);
    for (int i = 0; i < 256; i++) assert_int_equal(q[0].qs[i], (int)rintf(iscale * x[i]));

    /* max = -127, so iscale = 1 and d = 1 */
    assert_true(q[1].d == 1.0f);
    assert_int_equal(q[1].qs[3], -127);
    assert_int_equal(q[1].qs[7], 127);
    for (int i = 0; i < 6; i++) assert_int_equal(q[1].qs[20 + i], rounded[i]);
    assert_int_equal(q[1].qs[40], 127);

    for (int b = 0; b < 2; b++)
        for (int k = 0; k < 16; k++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += q[b].qs[16 * k + i];
            assert_int_equal(q[b].bsums[k], s);
        }
}

static void test_quantize_q8_K_zero_and_random(void **state) {
    (void)state;
    float x[1024];
    block_q8_K q[4];
    memset(q, 0x55, sizeof q);
    random_floats(x, 1024);
    for (int i = 256; i < 512; i++) x[i] = 0.0f;
    kq_quantize_row_q8_K(x, q, 1024);

    assert_true(q[1].d == 0.0f);
    for (int i = 0; i < 256; i++) assert_int_equal(q[1].qs[i], 0);
    for (int k = 0; k < 16; k++) assert_int_equal(q[1].bsums[k], 0);

    for (int b = 0; b < 4; b++) {
        if (b == 1) continue;
        float amax = 0;
        for (int i = 0; i < 256; i++) amax = fmaxf(amax, fabsf(x[256 * b + i]));
        int seen127 = 0;
        for (int i = 0; i < 256; i++) {
            assert_true(q[b].qs[i] >= -127 && q[b].qs[i] <= 127);
            seen127 |= q[b].qs[i] == -127;
            /* each value within half a step of its original */
            float err = fabsf(q[b].d * (float)q[b].qs[i] - x[256 * b + i]);
            assert_true(err <= 0.5001f * fabsf(q[b].d) + 1e-30f);
        }
        assert_true(seen127);
        assert_true(fabsf(fabsf(q[b].d) * 127.0f - amax) <= 1e-6f * amax);
    }
}

/* --- dot products --- */

typedef struct {
    dtype_t type;
    int64_t n;
    void *w;       /* one weight row */
    float *wf;     /* its dequantized values */
    block_q8_K *q; /* one activation row */
    float *xf;     /* its dequantized values */
    double exact, mag;
} dot_case;

static void case_make(dot_case *c, dtype_t type, int64_t n) {
    c->type = type;
    c->n = n;
    c->w = xmalloc(dtype_row_bytes(type, n));
    c->wf = xmalloc(n * sizeof(float));
    c->q = xmalloc(n / 256 * sizeof(block_q8_K));
    c->xf = xmalloc(n * sizeof(float));
    random_row(type, c->w, n);
    random_floats(c->xf, n);
    kq_quantize_row_q8_K(c->xf, c->q, n);
}

static void case_finish(dot_case *c) {
    kq_dequant_row(c->type, c->w, c->wf, c->n);
    dequant_q8(c->q, c->xf, c->n);
    c->exact = 0;
    for (int64_t i = 0; i < c->n; i++) c->exact += (double)c->wf[i] * c->xf[i];
    c->mag = dot_magnitude(c->type, c->w, c->wf, c->xf, c->n);
}

static void case_free(dot_case *c) {
    free(c->w);
    free(c->wf);
    free(c->q);
    free(c->xf);
}

static void check_close(const char *what, dtype_t type, double got, double want, double mag,
                        double rel) {
    double err = fabs(got - want);
    if (err > rel * mag + 1e-30)
        fail_msg("%s %s: got %.9g, want %.9g (error %.3g of magnitude %.3g)", what,
                 dtype_name(type), got, want, err, mag);
}

static isa_level vector_levels[4];
static int n_vector_levels;

static void find_levels(void) {
    n_vector_levels = 0;
#if defined(__x86_64__)
    if (cpu_get()->best >= ISA_AVX2) vector_levels[n_vector_levels++] = ISA_AVX2;
#endif
    if (n_vector_levels == 0) print_message("no vector path on this CPU: scalar only\n");
}

static void test_dot_scalar_vs_float(void **state) {
    (void)state;
    const int64_t sizes[4] = {256, 512, 1536, 4096};
    for (int k = 0; k < 3; k++)
        for (int s = 0; s < 4; s++)
            for (int rep = 0; rep < 8; rep++) {
                dot_case c;
                case_make(&c, kq_types[k], sizes[s]);
                case_finish(&c);
                float got = kq_vec_dot(c.type, c.n, c.w, c.q, ISA_SCALAR);
                assert_true(got == kq_vec_dot_scalar(c.type, c.n, c.w, c.q));
                check_close("scalar vs float dot", c.type, got, c.exact, c.mag, 2e-6);
                case_free(&c);
            }
}

static void test_dot_vector_vs_scalar(void **state) {
    (void)state;
    find_levels();
    const int64_t sizes[4] = {256, 768, 1536, 4096};
    for (int li = 0; li < n_vector_levels; li++)
        for (int k = 0; k < 3; k++)
            for (int s = 0; s < 4; s++)
                for (int rep = 0; rep < 8; rep++) {
                    dot_case c;
                    case_make(&c, kq_types[k], sizes[s]);
                    case_finish(&c);
                    float ref = kq_vec_dot_scalar(c.type, c.n, c.w, c.q);
                    float got = kq_vec_dot(c.type, c.n, c.w, c.q, vector_levels[li]);
                    check_close(cpu_isa_name(vector_levels[li]), c.type, got, ref, c.mag, 1e-5);
                    check_close("vector vs float dot", c.type, got, c.exact, c.mag, 2e-6);
                    case_free(&c);
                }
}

/* Every code at its largest (and smallest) value with the largest scales, activations at +-127:
 * the sums where an int16 saturation or int32 overflow would show. */
static void test_dot_extremes(void **state) {
    (void)state;
    find_levels();
    const int64_t n = 1024;
    for (int k = 0; k < 3; k++)
        for (int pattern = 0; pattern < 4; pattern++) {
            dot_case c;
            case_make(&c, kq_types[k], n);
            uint8_t fill = pattern & 1 ? 0x00 : 0xff;
            memset(c.w, fill, dtype_row_bytes(c.type, n));
            size_t bsz = dtype_block_bytes(c.type);
            for (int64_t b = 0; b < n / 256; b++) {
                uint8_t *blk = (uint8_t *)c.w + b * bsz;
                uint16_t d = fp32_to_fp16(0.01f), dmin = fp32_to_fp16(-0.02f);
                if (c.type == DT_Q6_K) {
                    memset(blk + 192, pattern & 2 ? 0x80 : 0x7f, 16); /* scales -128 / 127 */
                    memcpy(blk + 208, &d, 2);
                } else {
                    memset(blk + 4, 0xff, 12); /* all scales and mins 63 */
                    memcpy(blk, &d, 2);
                    memcpy(blk + 2, &dmin, 2);
                }
            }
            float x[1024];
            for (int i = 0; i < n; i++) x[i] = pattern & 2 ? -1.0f : 1.0f;
            kq_quantize_row_q8_K(x, c.q, n);
            case_finish(&c);
            float ref = kq_vec_dot_scalar(c.type, n, c.w, c.q);
            check_close("extreme scalar", c.type, ref, c.exact, c.mag, 2e-6);
            for (int li = 0; li < n_vector_levels; li++) {
                float got = kq_vec_dot(c.type, n, c.w, c.q, vector_levels[li]);
                check_close("extreme vector", c.type, got, ref, c.mag, 1e-5);
            }
            case_free(&c);
        }
}

/* Higher levels than implemented fall back; levels the CPU lacks are never run. */
static void test_dispatch(void **state) {
    (void)state;
    dot_case c;
    case_make(&c, DT_Q4_K, 1536);
    float scalar = kq_vec_dot_scalar(c.type, c.n, c.w, c.q);
    assert_true(kq_vec_dot(c.type, c.n, c.w, c.q, ISA_NEON) == scalar);
    float top = kq_vec_dot(c.type, c.n, c.w, c.q, ISA_AVX512);
#if defined(__x86_64__)
    if (cpu_get()->best >= ISA_AVX2) {
        assert_true(top == kq_vec_dot_avx2(c.type, c.n, c.w, c.q));
        assert_true(kq_vec_dot(c.type, c.n, c.w, c.q, ISA_AVX2) == top);
    } else {
        assert_true(top == scalar);
    }
#else
    (void)top;
#endif
    assert_true(kq_vec_dot(DT_Q8_0, 256, c.w, c.q, ISA_SCALAR) == 0.0f);
    case_free(&c);
}

/* Tiles of every shape, with strides wider than the rows, equal single dots byte for byte. */
static void test_tile_bit_identical(void **state) {
    (void)state;
    find_levels();
    isa_level levels[5] = {ISA_SCALAR};
    int nlev = 1;
    for (int i = 0; i < n_vector_levels; i++) levels[nlev++] = vector_levels[i];
    const int64_t n = 1536, nb = n / 256;
    const size_t x_stride = nb + 3;
    for (int k = 0; k < 3; k++) {
        dtype_t type = kq_types[k];
        size_t w_stride = dtype_row_bytes(type, n) + 40;
        uint8_t *w = xmalloc(4 * w_stride);
        for (int r = 0; r < 4; r++) random_row(type, w + r * w_stride, n);
        block_q8_K *x = xmalloc(4 * x_stride * sizeof(block_q8_K));
        float xf[1536];
        for (int t = 0; t < 4; t++) {
            random_floats(xf, n);
            kq_quantize_row_q8_K(xf, x + t * x_stride, n);
        }
        for (int li = 0; li < nlev; li++)
            for (int nr = 1; nr <= 4; nr++)
                for (int nt = 1; nt <= 4; nt++) {
                    const int out_stride = 7;
                    float out[4 * 7], want[4 * 7];
                    memset(out, 0, sizeof out);
                    memset(want, 0, sizeof want);
                    kq_vec_dot_tile(type, n, w, w_stride, nr, x, x_stride, nt, out, out_stride,
                                    levels[li]);
                    for (int r = 0; r < nr; r++)
                        for (int t = 0; t < nt; t++)
                            want[t * out_stride + r] =
                                kq_vec_dot(type, n, w + r * w_stride, x + t * x_stride, levels[li]);
                    if (memcmp(out, want, sizeof out))
                        fail_msg("%s %s tile %dx%d differs from single dots",
                                 cpu_isa_name(levels[li]), dtype_name(type), nr, nt);
                }
        free(w);
        free(x);
    }
}

/* --- throughput (printed only when asked: tests do not time anything) --- */

/* CPU time of this thread: on a shared machine, wall time would count other processes' turns. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Keeps the timed results observable, so the compiler cannot drop the work. */
static volatile float bench_sink;

static void bench_one(dtype_t type, isa_level isa, int tile) {
    const int64_t n = 1536, rows = 576;
    size_t rb = dtype_row_bytes(type, n);
    uint8_t *w = xmalloc(rows * rb);
    for (int64_t r = 0; r < rows; r++) random_row(type, w + r * rb, n);
    float xf[4 * 1536];
    block_q8_K x[4 * 6];
    random_floats(xf, 4 * n);
    kq_quantize_row_q8_K(xf, x, 4 * n);
    float *out = xmalloc(4 * rows * sizeof(float));
    int reps = 0;
    double t0 = now_s(), t1;
    do {
        if (tile) {
            for (int64_t r = 0; r < rows; r += 4)
                kq_vec_dot_tile(type, n, w + r * rb, rb, 4, x, 6, 4, out + r, (int)rows, isa);
        } else {
            for (int64_t r = 0; r < rows; r++) out[r] = kq_vec_dot(type, n, w + r * rb, x, isa);
        }
        bench_sink = out[0];
        reps++;
        t1 = now_s();
    } while (t1 - t0 < 0.3);
    double per = (t1 - t0) / reps;
    print_message("%-6s %-4s %s: %.1f us per 1536x576 pass, %.2f GB/s of weights%s\n",
                  cpu_isa_name(isa), dtype_name(type), tile ? "tile 4x4" : "single  ", 1e6 * per,
                  (double)(rows * rb) / per / 1e9, tile ? " (4 tokens per pass)" : "");
    free(w);
    free(out);
}

static void test_bench(void **state) {
    (void)state;
    const char *on = getenv("SGLC_KQ_BENCH");
    if (!on || strcmp(on, "1")) skip();
    find_levels();
    for (int k = 0; k < 3; k++) {
        bench_one(kq_types[k], ISA_SCALAR, 0);
        for (int li = 0; li < n_vector_levels; li++) {
            bench_one(kq_types[k], vector_levels[li], 0);
            bench_one(kq_types[k], vector_levels[li], 1);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dequant_matches_gguf),
        cmocka_unit_test(test_quantize_q8_K_rule),
        cmocka_unit_test(test_quantize_q8_K_zero_and_random),
        cmocka_unit_test(test_dot_scalar_vs_float),
        cmocka_unit_test(test_dot_vector_vs_scalar),
        cmocka_unit_test(test_dot_extremes),
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_tile_bit_identical),
        cmocka_unit_test(test_bench),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
