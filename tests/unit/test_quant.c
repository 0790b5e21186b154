/* Tests of kernels/quant: GGML's block byte layouts (hand-made blocks decode to known values),
 * quantize/dequantize round trips within each format's step, and the activation encoders. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "base/fp16.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "kernel_test_util.h"

static void test_q4_0_layout(void **state) {
    (void)state;
    block_q4_0 b;
    b.d = fp32_to_fp16(0.5f);
    for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    uint8_t bytes[18];
    memcpy(bytes, &b, 18);
    assert_int_equal(bytes[0], 0x00); /* f16 0.5 = 0x3800, little-endian */
    assert_int_equal(bytes[1], 0x38);
    assert_int_equal(bytes[2], 0xf0); /* element 0 = 0 (low), element 16 = 15 (high) */
    float y[32];
    quant_dequant_row(DT_Q4_0, bytes, y, 32);
    for (int j = 0; j < 16; j++) {
        assert_true(y[j] == 0.5f * (float)(j - 8));
        assert_true(y[j + 16] == 0.5f * (float)(7 - j));
    }
}

static void test_q4_1_layout(void **state) {
    (void)state;
    uint8_t bytes[20] = {0};
    uint16_t d = fp32_to_fp16(0.25f), m = fp32_to_fp16(-2.0f);
    memcpy(bytes, &d, 2);
    memcpy(bytes + 2, &m, 2);
    bytes[4] = 0x3a; /* element 0 = 10, element 16 = 3 */
    bytes[19] = 0xf1; /* element 15 = 1, element 31 = 15 */
    float y[32];
    quant_dequant_row(DT_Q4_1, bytes, y, 32);
    assert_true(y[0] == 0.25f * 10 - 2.0f);
    assert_true(y[16] == 0.25f * 3 - 2.0f);
    assert_true(y[15] == 0.25f * 1 - 2.0f);
    assert_true(y[31] == 0.25f * 15 - 2.0f);
    assert_true(y[1] == -2.0f);
}

static void test_q5_layout(void **state) {
    (void)state;
    /* Q5_0: d = 1, qh bit 0 (element 0) and bit 31 (element 31) set */
    uint8_t b0[22] = {0};
    uint16_t d = fp32_to_fp16(1.0f);
    memcpy(b0, &d, 2);
    b0[2] = 0x01;
    b0[5] = 0x80;
    b0[6] = 0x23;  /* element 0 low nibble 3, element 16 high nibble 2 */
    b0[21] = 0x54; /* element 15 = 4, element 31 = 5 */
    float y[32];
    quant_dequant_row(DT_Q5_0, b0, y, 32);
    assert_true(y[0] == (float)((3 | 16) - 16));
    assert_true(y[16] == (float)(2 - 16));
    assert_true(y[15] == (float)(4 - 16));
    assert_true(y[31] == (float)((5 | 16) - 16));
    /* Q5_1: d = 2, m = 1, bit 16 (element 16) set */
    uint8_t b1[24] = {0};
    uint16_t d1 = fp32_to_fp16(2.0f), m1 = fp32_to_fp16(1.0f);
    memcpy(b1, &d1, 2);
    memcpy(b1 + 2, &m1, 2);
    b1[6] = 0x01;
    b1[8] = 0x7f; /* element 0 = 15, element 16 = 7 | 16 */
    quant_dequant_row(DT_Q5_1, b1, y, 32);
    assert_true(y[0] == 2.0f * 15 + 1.0f);
    assert_true(y[16] == 2.0f * 23 + 1.0f);
    assert_true(y[1] == 1.0f);
}

static void test_q8_0_layout(void **state) {
    (void)state;
    uint8_t bytes[34];
    uint16_t d = fp32_to_fp16(0.125f);
    memcpy(bytes, &d, 2);
    for (int j = 0; j < 32; j++) bytes[2 + j] = (uint8_t)(int8_t)(j - 16);
    float y[32];
    quant_dequant_row(DT_Q8_0, bytes, y, 32);
    for (int j = 0; j < 32; j++) assert_true(y[j] == 0.125f * (float)(j - 16));
}

/* Quantize then decode: the error of each value stays within the format's step. */
static void check_round_trip(dtype_t type, float max_rel_rms) {
    enum { N = 1024 };
    unsigned seed = 7 + (unsigned)type;
    float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = frand(&seed) * 3.0f;
    uint8_t q[N * 4];
    assert_int_equal(quant_quantize_row(type, x, q, N), 0);
    quant_dequant_row(type, q, y, N);
    double err = 0, ref = 0;
    for (int i = 0; i < N; i++) {
        err += (double)(x[i] - y[i]) * (x[i] - y[i]);
        ref += (double)x[i] * x[i];
    }
    double rel = sqrt(err / ref);
    if (rel > max_rel_rms) fail_msg("%s round trip rel rms %g > %g", dtype_name(type), rel,
                                    (double)max_rel_rms);
}

static void test_round_trips(void **state) {
    (void)state;
    check_round_trip(DT_F32, 0.0f);
    check_round_trip(DT_F16, 1e-3f);
    check_round_trip(DT_BF16, 5e-3f);
    check_round_trip(DT_Q8_0, 0.01f);
    check_round_trip(DT_Q5_0, 0.05f);
    check_round_trip(DT_Q5_1, 0.04f);
    check_round_trip(DT_Q4_0, 0.1f);
    check_round_trip(DT_Q4_1, 0.08f);
}

static void test_quantize_matches_ggml_rules(void **state) {
    (void)state;
    /* Q8_0 of a ramp: d = 31/127, q = round(x / d) */
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16) * (31.0f / 16.0f);
    block_q8_0 b;
    assert_int_equal(quant_quantize_row(DT_Q8_0, x, &b, 32), 0);
    assert_int_equal(b.d, fp32_to_fp16(31.0f / 127.0f));
    assert_int_equal(b.qs[0], -127);
    assert_int_equal(b.qs[16], 0);
    /* Q4_1 of 0..31: min 0, d = 31/15; element 31 -> 15 */
    for (int j = 0; j < 32; j++) x[j] = (float)j;
    block_q4_1 b1;
    assert_int_equal(quant_quantize_row(DT_Q4_1, x, &b1, 32), 0);
    assert_int_equal(b1.m, fp32_to_fp16(0.0f));
    assert_int_equal(b1.qs[15] >> 4, 15);
    assert_int_equal(b1.qs[0] & 0x0f, 0);
    /* unsupported: K-quants, a length not a multiple of the block */
    uint8_t out[512];
    float z[256] = {0};
    assert_int_equal(quant_quantize_row(DT_Q4_K, z, out, 256), -1);
    assert_int_equal(quant_quantize_row(DT_Q8_0, z, out, 33), -1);
    assert_false(quant_can_dequant(DT_I32));
}

static void test_activation_encoding(void **state) {
    (void)state;
    enum { N = 576 };
    unsigned seed = 3;
    float x[N];
    for (int i = 0; i < N; i++) x[i] = frand(&seed) * 4.0f;
    x[40] = 0.0f;
    for (int i = 64; i < 96; i++) x[i] = 0.0f; /* an all-zero block: d = 0, q = 0 */
    size_t stride = quant_act_stride(N);
    assert_int_equal(stride % 64, 0);
    uint8_t *a = aligned_alloc(64, stride), *b = aligned_alloc(64, stride);
    memset(a, 0, stride);
    memset(b, 0, stride);
    quant_act_row_scalar(x, a, N);
    const int8_t *q = (const int8_t *)a;
    const float *d = quant_act_d(a, N), *s = quant_act_s(a, N);
    for (int blk = 0; blk < N / 32; blk++) {
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            int i = blk * 32 + j;
            /* q rounds x / (amax/127); d is that scale at half precision (GGML's q8 layout),
             * which moves d * q by at most 127 * 2^-11 of d */
            assert_true(fabsf(x[i] - d[blk] * q[i]) <= d[blk] * (0.5f + 127.0f / 2048.0f) + 1e-6f);
            sum += q[i];
        }
        assert_true(fp16_to_fp32(fp32_to_fp16(d[blk])) == d[blk]);
        assert_true(fp16_to_fp32(fp32_to_fp16(s[blk])) == s[blk]);
        assert_true(fabsf(s[blk] - d[blk] * (float)sum) <= fabsf(d[blk] * (float)sum) / 512.0f);
    }
    assert_true(d[2] == 0.0f);
#if defined(__x86_64__)
    if (cpu_get()->best >= ISA_AVX2) {
        kern_mm_act_avx2(x, b, N);
        assert_memory_equal(a, b, N + 8 * (N / 32));
    }
#endif
    free(a);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q4_0_layout),
        cmocka_unit_test(test_q4_1_layout),
        cmocka_unit_test(test_q5_layout),
        cmocka_unit_test(test_q8_0_layout),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_quantize_matches_ggml_rules),
        cmocka_unit_test(test_activation_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
