/* K-quant reference code and the choice of path (see kquants.h). The scalar code is the
 * definition the vector paths are tested against: dequantization follows GGML's reference
 * formulas operation for operation (so that it matches GGML's output bit for bit), and the dot
 * products work as the vector paths do, with exact integer sums per super-block and one float
 * multiply-add per super-block (two for Q4_K/Q5_K, whose mins are a separate term). */
#include "kernels/kquants.h"

#include <string.h>

#include "base/fp16.h"

/* Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 pushes the fraction out of
 * the mantissa, and the hardware's rounding does the rest. NaN gives some value the caller
 * clamps. */
static inline int kq_nearest_int(float v) {
    float t = v + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &t, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

void kq_quantize_row_q8_K(const float *x, block_q8_K *y, int64_t n) {
    for (int64_t b = 0; b < n / KQ_QK_K; b++, x += KQ_QK_K, y++) {
        float amax = 0.0f, max = 0.0f;
        for (int i = 0; i < KQ_QK_K; i++) {
            float ax = x[i] < 0 ? -x[i] : x[i];
            if (ax > amax) {
                amax = ax;
                max = x[i];
            }
        }
        if (amax == 0.0f) {
            memset(y, 0, sizeof *y);
            continue;
        }
        /* -127/max rather than 127/amax: the value of largest magnitude maps to exactly -127
         * whatever its sign, as GGML does it (its SIMD code relies on that range). */
        float iscale = -127.0f / max;
        for (int i = 0; i < KQ_QK_K; i++) {
            int v = kq_nearest_int(iscale * x[i]);
            y->qs[i] = (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
        }
        for (int k = 0; k < KQ_QK_K / 16; k++) {
            int sum = 0;
            for (int i = 0; i < 16; i++) sum += y->qs[16 * k + i];
            y->bsums[k] = (int16_t)sum;
        }
        y->d = 1.0f / iscale;
    }
}

/* The products and differences below are separate statements on purpose: a compiler allowed to
 * contract within an expression (clang's default) would otherwise fuse them into an FMA and
 * round differently from GGML. */
static void dequant_q4_K(const kq_block_q4_K *blk, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, blk++) {
        float d = fp16_to_fp32(blk->d), dmin = fp16_to_fp32(blk->dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            kq_scale_min(blk->scales, j, &sc, &m);
            float d1 = d * (float)sc;
            float m1 = dmin * (float)m;
            const uint8_t *q = blk->qs + 32 * (j / 2);
            int shift = 4 * (j % 2);
            for (int l = 0; l < 32; l++) {
                float v = d1 * (float)((q[l] >> shift) & 0x0f);
                *y++ = v - m1;
            }
        }
    }
}

static void dequant_q5_K(const kq_block_q5_K *blk, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, blk++) {
        float d = fp16_to_fp32(blk->d), dmin = fp16_to_fp32(blk->dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            kq_scale_min(blk->scales, j, &sc, &m);
            float d1 = d * (float)sc;
            float m1 = dmin * (float)m;
            const uint8_t *q = blk->qs + 32 * (j / 2);
            int shift = 4 * (j % 2);
            for (int l = 0; l < 32; l++) {
                int qv = ((q[l] >> shift) & 0x0f) | (((blk->qh[l] >> j) & 1) << 4);
                float v = d1 * (float)qv;
                *y++ = v - m1;
            }
        }
    }
}

/* The 256 values of a Q6_K block, offset removed (-32..31). In each half of 128 values, the
 * four quarters of 32 take: low nibbles of ql[0..31], of ql[32..63], high nibbles of ql[0..31],
 * of ql[32..63]; and bit pairs 0-1, 2-3, 4-5, 6-7 of qh[0..31]. */
static void q6_K_decode(const kq_block_q6_K *blk, int8_t *q) {
    for (int half = 0; half < 2; half++) {
        const uint8_t *ql = blk->ql + 64 * half, *qh = blk->qh + 32 * half;
        int8_t *out = q + 128 * half;
        for (int l = 0; l < 32; l++) {
            out[l] = (int8_t)(((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) - 32);
            out[l + 32] = (int8_t)(((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32);
            out[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            out[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
}

static void dequant_q6_K(const kq_block_q6_K *blk, float *y, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, blk++) {
        float d = fp16_to_fp32(blk->d);
        int8_t q[KQ_QK_K];
        q6_K_decode(blk, q);
        for (int i = 0; i < KQ_QK_K; i++) {
            float ds = d * (float)blk->scales[i / 16];
            *y++ = ds * (float)q[i];
        }
    }
}

void kq_dequant_row(dtype_t type, const void *src, float *dst, int64_t n) {
    int64_t nb = n / KQ_QK_K;
    switch (type) {
    case DT_Q4_K: dequant_q4_K(src, dst, nb); break;
    case DT_Q5_K: dequant_q5_K(src, dst, nb); break;
    case DT_Q6_K: dequant_q6_K(src, dst, nb); break;
    default: break;
    }
}

/* Q4_K and Q5_K: sum_j d*sc[j] * sum_l q*x8 - dmin*m[j] * sum_l x8, where sum_l x8 over a
 * sub-block of 32 is two of the activation's bsums. Both sums are exact integers per block. */
static float dot_q4_K_scalar(const kq_block_q4_K *w, const block_q8_K *x, int64_t nb) {
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++, w++, x++) {
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            kq_scale_min(w->scales, j, &sc, &m);
            const uint8_t *q = w->qs + 32 * (j / 2);
            const int8_t *q8 = x->qs + 32 * j;
            int shift = 4 * (j % 2), s = 0;
            for (int l = 0; l < 32; l++) s += ((q[l] >> shift) & 0x0f) * q8[l];
            sumi += sc * s;
            summ += m * (x->bsums[2 * j] + x->bsums[2 * j + 1]);
        }
        float d = fp16_to_fp32(w->d) * x->d, dmin = fp16_to_fp32(w->dmin) * x->d;
        float pos = d * (float)sumi, neg = dmin * (float)summ;
        acc += pos - neg;
    }
    return acc;
}

static float dot_q5_K_scalar(const kq_block_q5_K *w, const block_q8_K *x, int64_t nb) {
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++, w++, x++) {
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            kq_scale_min(w->scales, j, &sc, &m);
            const uint8_t *q = w->qs + 32 * (j / 2);
            const int8_t *q8 = x->qs + 32 * j;
            int shift = 4 * (j % 2), s = 0;
            for (int l = 0; l < 32; l++)
                s += (((q[l] >> shift) & 0x0f) | (((w->qh[l] >> j) & 1) << 4)) * q8[l];
            sumi += sc * s;
            summ += m * (x->bsums[2 * j] + x->bsums[2 * j + 1]);
        }
        float d = fp16_to_fp32(w->d) * x->d, dmin = fp16_to_fp32(w->dmin) * x->d;
        float pos = d * (float)sumi, neg = dmin * (float)summ;
        acc += pos - neg;
    }
    return acc;
}

/* Q6_K: sum_k d*scales[k] * sum_l (q-32)*x8 over 16 sub-blocks of 16; fits int32 (at most
 * 16 * 128 * 16 * 32 * 127 in magnitude). */
static float dot_q6_K_scalar(const kq_block_q6_K *w, const block_q8_K *x, int64_t nb) {
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++, w++, x++) {
        int8_t q[KQ_QK_K];
        q6_K_decode(w, q);
        int32_t sumi = 0;
        for (int k = 0; k < KQ_QK_K / 16; k++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += q[16 * k + l] * x->qs[16 * k + l];
            sumi += w->scales[k] * s;
        }
        float d = fp16_to_fp32(w->d) * x->d;
        float v = d * (float)sumi;
        acc += v;
    }
    return acc;
}

float kq_vec_dot_scalar(dtype_t type, int64_t n, const void *w_row, const block_q8_K *x) {
    int64_t nb = n / KQ_QK_K;
    switch (type) {
    case DT_Q4_K: return dot_q4_K_scalar(w_row, x, nb);
    case DT_Q5_K: return dot_q5_K_scalar(w_row, x, nb);
    case DT_Q6_K: return dot_q6_K_scalar(w_row, x, nb);
    default: return 0.0f;
    }
}

#if defined(__x86_64__)
/* The path to run for a requested level: never above what the CPU has, and the best one this
 * file implements at or below the request. */
static isa_level kq_path(isa_level isa) {
    isa_level best = cpu_get()->best;
    if (isa > best) isa = best;
    if (isa >= ISA_AVX2) return ISA_AVX2;
    return ISA_SCALAR;
}
#endif

float kq_vec_dot(dtype_t type, int64_t n, const void *w_row, const block_q8_K *x, isa_level isa) {
#if defined(__x86_64__)
    if (kq_path(isa) == ISA_AVX2) return kq_vec_dot_avx2(type, n, w_row, x);
#else
    (void)isa;
#endif
    return kq_vec_dot_scalar(type, n, w_row, x);
}

void kq_vec_dot_tile(dtype_t type, int64_t n, const void *w_rows, size_t w_stride, int nr,
                     const block_q8_K *x, size_t x_stride_blocks, int nt, float *out,
                     int out_stride, isa_level isa) {
#if defined(__x86_64__)
    if (kq_path(isa) == ISA_AVX2) {
        kq_vec_dot_tile_avx2(type, n, w_rows, w_stride, nr, x, x_stride_blocks, nt, out,
                             out_stride);
        return;
    }
#else
    (void)isa;
#endif
    /* The scalar path has nothing to share between pairs; calling the single dot per pair
     * makes bit-identity hold by construction. */
    for (int r = 0; r < nr; r++) {
        const void *w = (const char *)w_rows + (size_t)r * w_stride;
        for (int t = 0; t < nt; t++)
            out[(size_t)t * out_stride + r] =
                kq_vec_dot_scalar(type, n, w, x + (size_t)t * x_stride_blocks);
    }
}
