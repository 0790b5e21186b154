/* The aarch64 NEON matmul path: 2 weight rows x 4 tokens per register tile, 4-lane float
 * accumulators, integer dot products with SDOT where the CPU has it (else widening multiplies;
 * both give the same exact int32 sums, so the result does not depend on which one ran).
 * Weights are decoded to signed int8 (Q4_0: q - 8, Q5_0: q - 16, Q8_0: q; Q4_1/Q5_1: q with
 * their min as a separate per-block term), so no sign tricks are needed.
 * Batch invariance: a tile runs, per pair, exactly the operations of the 1 x 1 tile. */
#include <arm_neon.h>
#include <string.h>

#include "base/cpu.h"
#include "base/fp16.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"

#define NR 2
#define NT 4

static inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b, int sdot) {
#if defined(__ARM_FEATURE_DOTPROD)
    if (sdot) return vdotq_s32(acc, a, b);
#endif
    (void)sdot;
    int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    int16x8_t hi = vmull_s8(vget_high_s8(a), vget_high_s8(b));
    return vpadalq_s16(vpadalq_s16(acc, lo), hi);
}

/* Elements 0..15 and 16..31 of block b, as int8; *d, *m its scale and min (m = 0 if none). */
static inline __attribute__((always_inline)) void
unpack(dtype_t type, const uint8_t *row, int64_t b, int8x16_t *lo, int8x16_t *hi, float *d,
       float *m) {
    const uint8x16_t mask = vdupq_n_u8(0x0f);
    *m = 0.0f;
    switch (type) {
    case DT_Q8_0: {
        const block_q8_0 *blk = (const block_q8_0 *)row + b;
        *d = fp16_to_fp32(blk->d);
        *lo = vld1q_s8(blk->qs);
        *hi = vld1q_s8(blk->qs + 16);
        return;
    }
    case DT_Q4_0:
    case DT_Q4_1: {
        const uint8_t *qs;
        if (type == DT_Q4_0) {
            const block_q4_0 *blk = (const block_q4_0 *)row + b;
            *d = fp16_to_fp32(blk->d);
            qs = blk->qs;
        } else {
            const block_q4_1 *blk = (const block_q4_1 *)row + b;
            *d = fp16_to_fp32(blk->d);
            *m = fp16_to_fp32(blk->m);
            qs = blk->qs;
        }
        uint8x16_t v = vld1q_u8(qs);
        int8x16_t l = vreinterpretq_s8_u8(vandq_u8(v, mask));
        int8x16_t h = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
        if (type == DT_Q4_0) {
            l = vsubq_s8(l, vdupq_n_s8(8));
            h = vsubq_s8(h, vdupq_n_s8(8));
        }
        *lo = l;
        *hi = h;
        return;
    }
    default: { /* Q5_0, Q5_1 */
        const uint8_t *qs;
        uint32_t qh;
        if (type == DT_Q5_0) {
            const block_q5_0 *blk = (const block_q5_0 *)row + b;
            *d = fp16_to_fp32(blk->d);
            qs = blk->qs;
            memcpy(&qh, blk->qh, 4);
        } else {
            const block_q5_1 *blk = (const block_q5_1 *)row + b;
            *d = fp16_to_fp32(blk->d);
            *m = fp16_to_fp32(blk->m);
            qs = blk->qs;
            memcpy(&qh, blk->qh, 4);
        }
        /* bit j of qh -> 0x10 in byte j: test each byte's bit against a per-lane mask */
        static const uint8_t bits[16] = {1, 2, 4, 8, 16, 32, 64, 128,
                                         1, 2, 4, 8, 16, 32, 64, 128};
        const uint8x16_t bm = vld1q_u8(bits);
        uint8x16_t h_lo = vcombine_u8(vdup_n_u8((uint8_t)qh), vdup_n_u8((uint8_t)(qh >> 8)));
        uint8x16_t h_hi =
            vcombine_u8(vdup_n_u8((uint8_t)(qh >> 16)), vdup_n_u8((uint8_t)(qh >> 24)));
        h_lo = vandq_u8(vtstq_u8(h_lo, bm), vdupq_n_u8(0x10));
        h_hi = vandq_u8(vtstq_u8(h_hi, bm), vdupq_n_u8(0x10));
        uint8x16_t v = vld1q_u8(qs);
        int8x16_t l = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(v, mask), h_lo));
        int8x16_t h = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(v, 4), h_hi));
        if (type == DT_Q5_0) {
            l = vsubq_s8(l, vdupq_n_s8(16));
            h = vsubq_s8(h, vdupq_n_s8(16));
        }
        *lo = l;
        *hi = h;
        return;
    }
    }
}

static inline __attribute__((always_inline)) void
tile_q(const kern_mm_args *a, dtype_t type, int nr, int nt, int64_t o0, int64_t t0, int sdot,
       float *mw) {
    const int64_t n = a->n_in, nb = n / QUANT_QK;
    const bool has_min = type == DT_Q4_1 || type == DT_Q5_1;
    const uint8_t *w[NR];
    const int8_t *xq[NT];
    const float *xd[NT], *xs[NT];
    float32x4_t acc[NR][NT];
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++) w[r] = a->w + (o0 + r) * a->w_stride;
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        const char *row = (const char *)a->x + (t0 + t) * a->x_stride;
        xq[t] = (const int8_t *)row;
        xd[t] = quant_act_d(row, n);
        xs[t] = quant_act_s(row, n);
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) acc[r][t] = vdupq_n_f32(0.0f);
    }
    for (int64_t b = 0; b < nb; b++) {
        int8x16_t lo[NR], hi[NR];
        float dw[NR];
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) unpack(type, w[r], b, &lo[r], &hi[r], &dw[r], &mw[r * nb + b]);
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            int8x16_t xl = vld1q_s8(xq[t] + b * QUANT_QK), xh = vld1q_s8(xq[t] + b * QUANT_QK + 16);
#pragma GCC unroll 8
            for (int r = 0; r < nr; r++) {
                int32x4_t s = dot16(dot16(vdupq_n_s32(0), lo[r], xl, sdot), hi[r], xh, sdot);
                float scale = dw[r] * xd[t][b];
                acc[r][t] = vfmaq_f32(acc[r][t], vcvtq_f32_s32(s), vdupq_n_f32(scale));
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            float v = vaddvq_f32(acc[r][t]);
            if (has_min) {
                float ms = 0.0f;
                for (int64_t b = 0; b < nb; b++) {
                    float p = mw[r * nb + b] * xs[t][b];
                    ms += p;
                }
                v += ms;
            }
            a->y[(t0 + t) * a->ldy + o0 + r] = v;
        }
    }
}

static inline float32x4_t load_w4(dtype_t type, const uint8_t *row, int64_t i) {
    if (type == DT_F32) return vld1q_f32((const float *)row + i);
    uint16x4_t h = vld1_u16((const uint16_t *)row + i);
    if (type == DT_F16) return vcvt_f32_f16(vreinterpret_f16_u16(h));
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

static inline __attribute__((always_inline)) void
tile_f(const kern_mm_args *a, dtype_t type, int nr, int nt, int64_t o0, int64_t t0) {
    const int64_t n = a->n_in;
    const uint8_t *w[NR];
    const float *x[NT];
    float32x4_t acc[NR][NT];
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++) w[r] = a->w + (o0 + r) * a->w_stride;
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        x[t] = (const float *)((const char *)a->x + (t0 + t) * a->x_stride);
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) acc[r][t] = vdupq_n_f32(0.0f);
    }
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t wv[NR];
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) wv[r] = load_w4(type, w[r], i);
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            float32x4_t xv = vld1q_f32(x[t] + i);
#pragma GCC unroll 8
            for (int r = 0; r < nr; r++) acc[r][t] = vfmaq_f32(acc[r][t], wv[r], xv);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            float v = vaddvq_f32(acc[r][t]);
            for (int64_t j = i; j < n; j++) {
                uint16_t h = ((const uint16_t *)w[r])[j];
                float wj = type == DT_F32   ? ((const float *)w[r])[j]
                           : type == DT_F16 ? fp16_to_fp32(h)
                                            : bf16_to_fp32(h);
                float p = wj * x[t][j];
                v += p;
            }
            a->y[(t0 + t) * a->ldy + o0 + r] = v;
        }
    }
}

static inline __attribute__((always_inline)) void
tile_i8(const kern_mm_args *a, int nr, int nt, int64_t o0, int64_t t0, int sdot) {
    const int64_t n = a->n_in;
    const int8_t *w[NR], *x[NT];
    int32x4_t acc[NR][NT];
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++) w[r] = (const int8_t *)(a->w + (o0 + r) * a->w_stride);
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        x[t] = (const int8_t *)a->x + (t0 + t) * a->x_stride;
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) acc[r][t] = vdupq_n_s32(0);
    }
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        int8x16_t wv[NR];
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) wv[r] = vld1q_s8(w[r] + i);
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            int8x16_t xv = vld1q_s8(x[t] + i);
#pragma GCC unroll 8
            for (int r = 0; r < nr; r++) acc[r][t] = dot16(acc[r][t], wv[r], xv, sdot);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            int32_t dot = vaddvq_s32(acc[r][t]);
            for (int64_t j = i; j < n; j++) dot += (int32_t)w[r][j] * x[t][j];
            float v = (float)dot * a->x_scale[t0 + t];
            a->y[(t0 + t) * a->ldy + o0 + r] = v * a->w_scale[o0 + r];
        }
    }
}

#define CASES(R, CALL)                                                                         \
    case R * 8 + 1: CALL(R, 1); break;                                                         \
    case R * 8 + 2: CALL(R, 2); break;                                                         \
    case R * 8 + 3: CALL(R, 3); break;                                                         \
    case R * 8 + 4: CALL(R, 4); break;
#define DEFINE_TILES(tname)                                                                    \
    static void tiles_##tname(const kern_mm_args *a, int nr, int nt, int64_t o0, int64_t t0,   \
                              int sdot, float *mw) {                                           \
        (void)sdot, (void)mw;                                                                  \
        switch (nr * 8 + nt) { CASES(1, CALL_##tname) CASES(2, CALL_##tname) }                 \
    }
#define CALL_q4_0(R, T) tile_q(a, DT_Q4_0, R, T, o0, t0, sdot, mw)
#define CALL_q4_1(R, T) tile_q(a, DT_Q4_1, R, T, o0, t0, sdot, mw)
#define CALL_q5_0(R, T) tile_q(a, DT_Q5_0, R, T, o0, t0, sdot, mw)
#define CALL_q5_1(R, T) tile_q(a, DT_Q5_1, R, T, o0, t0, sdot, mw)
#define CALL_q8_0(R, T) tile_q(a, DT_Q8_0, R, T, o0, t0, sdot, mw)
#define CALL_f32(R, T) tile_f(a, DT_F32, R, T, o0, t0)
#define CALL_f16(R, T) tile_f(a, DT_F16, R, T, o0, t0)
#define CALL_bf16(R, T) tile_f(a, DT_BF16, R, T, o0, t0)
#define CALL_i8(R, T) tile_i8(a, R, T, o0, t0, sdot)
DEFINE_TILES(q4_0)
DEFINE_TILES(q4_1)
DEFINE_TILES(q5_0)
DEFINE_TILES(q5_1)
DEFINE_TILES(q8_0)
DEFINE_TILES(f32)
DEFINE_TILES(f16)
DEFINE_TILES(bf16)
DEFINE_TILES(i8)

void kern_mm_rows_neon(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
    void (*tiles)(const kern_mm_args *, int, int, int64_t, int64_t, int, float *);
    switch (a->type) {
    case DT_Q4_0: tiles = tiles_q4_0; break;
    case DT_Q4_1: tiles = tiles_q4_1; break;
    case DT_Q5_0: tiles = tiles_q5_0; break;
    case DT_Q5_1: tiles = tiles_q5_1; break;
    case DT_Q8_0: tiles = tiles_q8_0; break;
    case DT_F32: tiles = tiles_f32; break;
    case DT_F16: tiles = tiles_f16; break;
    case DT_BF16: tiles = tiles_bf16; break;
    case DT_I8: tiles = tiles_i8; break;
    default: return;
    }
    int sdot = cpu_get()->dotprod;
    int64_t nb = a->n_in / QUANT_QK;
    float mw[NR * (nb > 0 ? nb : 1)];
    for (int64_t o = r0; o < r1; o += NR) {
        int nr = (int)(r1 - o < NR ? r1 - o : NR);
        for (int64_t t = t0; t < t1; t += NT) {
            int nt = (int)(t1 - t < NT ? t1 - t : NT);
            tiles(a, nr, nt, o, t, sdot, mw);
        }
    }
}
