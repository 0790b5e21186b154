/* AVX2 dot products of K-quant weight rows with q8_K activations (see kernels/kquants.h).
 * Per 32 values: unsigned weight codes times signed int8 activations with maddubs (pairs into
 * int16, no saturation possible: at most 2 * 63 * 128), then madd by the sub-block's scale into
 * int32 lanes; a super-block's lanes are exact integers, converted to float once and added to
 * the accumulator with one FMA (one more for the mins of Q4_K/Q5_K).
 *
 * One kernel serves the single dot and the tiles: a block kernel takes a weight block and up to
 * four activation blocks and updates one accumulator per activation; the weight is unpacked
 * once for all of them. Each pair's float operations (the per-block FMAs in block order, then
 * the same horizontal sum) do not depend on the tile's shape, and integer sums are exact, so a
 * tile's outputs equal the single dot's bit for bit. */
#include <immintrin.h>
#include <string.h>

#include "kernels/kquants.h"
#include "kernels/x86/simd_avx2.h"

#define KQ_INLINE static inline __attribute__((always_inline))

enum { KQ_TILE_MAX = 4 };

static inline __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* pshufb control that repeats int16 lane k of a 128-bit lane across the whole lane. */
static inline __m256i bcast16_ctl(int k) {
    return _mm256_set1_epi16((short)(((2 * k + 1) << 8) | (2 * k)));
}

/* The 6-bit scales and mins of a Q4_K/Q5_K block as 8 bytes each, decoded four at a time from
 * the three 32-bit words of the packed field (same rule as kq_scale_min). */
static inline void unpack_scales_mins(const uint8_t *packed, __m128i *sc8, __m128i *m8) {
    uint32_t u[3];
    memcpy(u, packed, sizeof u);
    uint32_t sc_lo = u[0] & 0x3f3f3f3fu, m_lo = u[1] & 0x3f3f3f3fu;
    uint32_t sc_hi = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 2) & 0x30303030u);
    uint32_t m_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 2) & 0x30303030u);
    *sc8 = _mm_set_epi32(0, 0, (int)sc_hi, (int)sc_lo);
    *m8 = _mm_set_epi32(0, 0, (int)m_hi, (int)m_lo);
}

/* Adds a Q4_K or Q5_K block's contribution to nt accumulators: d*x.d * sum(sc*q*x8) minus
 * dmin*x.d * sum(m * bsum pairs). qh is NULL for Q4_K. */
KQ_INLINE void block_q45(uint16_t dh, uint16_t dminh, const uint8_t *scales, const uint8_t *qs,
                         const uint8_t *qh, const block_q8_K *const *x, int nt, __m256 *acc) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m128i sc8, m8;
    unpack_scales_mins(scales, &sc8, &m8);
    const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sc8));
    __m256i sumi[KQ_TILE_MAX];
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) sumi[t] = _mm256_setzero_si256();
    __m256i hb = qh ? load256(qh) : _mm256_setzero_si256();

#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m256i q = load256(qs + 32 * j);
        __m256i lo = _mm256_and_si256(q, m4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if (qh) {
            /* bit 2j of qh[l] is bit 4 of the low-nibble value, bit 2j+1 of the high one;
             * shifting by 2 per step keeps them at bits 0 and 1 (nothing from the next byte
             * reaches those bits in 3 steps) */
            const __m256i one = _mm256_set1_epi8(1), two = _mm256_set1_epi8(2);
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(hb, two), 3));
            hb = _mm256_srli_epi16(hb, 2);
        }
        const __m256i s_lo = _mm256_shuffle_epi8(sc16, bcast16_ctl(2 * j));
        const __m256i s_hi = _mm256_shuffle_epi8(sc16, bcast16_ctl(2 * j + 1));
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) {
            __m256i p0 = _mm256_maddubs_epi16(lo, load256(x[t]->qs + 64 * j));
            __m256i p1 = _mm256_maddubs_epi16(hi, load256(x[t]->qs + 64 * j + 32));
            p0 = _mm256_madd_epi16(p0, s_lo);
            p1 = _mm256_madd_epi16(p1, s_hi);
            sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(p0, p1));
        }
    }

    /* each min times the sum of its 32 activations: the pair of bsums it covers */
    const __m256i mdup = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
    const float dw = _cvtsh_ss(dh), dminw = _cvtsh_ss(dminh);
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) {
        __m256i summ = _mm256_madd_epi16(mdup, load256(x[t]->bsums));
        float d = dw * x[t]->d, dmin = dminw * x[t]->d;
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
        acc[t] = _mm256_fnmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(summ), acc[t]);
    }
}

/* pshufb control for Q6_K: int16 lane 2k of the 128-bit source across the low lane, lane 2k+1
 * across the high lane (the two 16-value sub-blocks of 32 consecutive values). */
static inline __m256i q6_ctl(int k) {
    return _mm256_set_m128i(_mm_set1_epi16((short)(((4 * k + 3) << 8) | (4 * k + 2))),
                            _mm_set1_epi16((short)(((4 * k + 1) << 8) | (4 * k))));
}

/* Adds a Q6_K block's contribution: d*x.d * (sum(sc*q*x8) - 32*sum(sc*bsum)), q in 0..63. */
KQ_INLINE void block_q6(const kq_block_q6_K *w, const block_q8_K *const *x, int nt, __m256 *acc) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)w->scales);
    __m256i sumi[KQ_TILE_MAX];
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) sumi[t] = _mm256_setzero_si256();

#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        /* int16 scales 8h..8h+7 in both 128-bit lanes */
        const __m256i sch =
            _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(h ? _mm_srli_si128(sc8, 8) : sc8));
        const __m256i l0 = load256(w->ql + 64 * h), l1 = load256(w->ql + 64 * h + 32);
        const __m256i hb = load256(w->qh + 32 * h);
        /* quarter k of the half: low/high nibbles of l0/l1, two bits of hb moved to bits 4-5
         * (shifts across byte boundaries only bring in bits the 0x30 mask drops) */
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                               _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
        q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                               _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                               _mm256_and_si256(hb, m30));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                               _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            const __m256i s = _mm256_shuffle_epi8(sch, q6_ctl(k));
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) {
                __m256i p = _mm256_maddubs_epi16(q[k], load256(x[t]->qs + 128 * h + 32 * k));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, s));
            }
        }
    }

    const __m256i sc_all = _mm256_cvtepi8_epi16(sc8);
    const float dw = _cvtsh_ss(w->d);
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) {
        /* the -32 offset of every code, applied once: 32 * sum_k sc[k] * bsums[k] */
        __m256i bias = _mm256_slli_epi32(_mm256_madd_epi16(sc_all, load256(x[t]->bsums)), 5);
        __m256i s = _mm256_sub_epi32(sumi[t], bias);
        float d = dw * x[t]->d;
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(s), acc[t]);
    }
}

/* nr weight rows by nt activation rows, blocks outermost so each weight block is read once per
 * tile and the tile's activation blocks stay in L1. Inlined with constant nt (and nr == 1 for
 * the single dot) so the per-activation loops unroll and the accumulators live in registers. */
KQ_INLINE void tile_run(dtype_t type, int64_t n, const char *w, size_t w_stride, int nr,
                        const block_q8_K *x, size_t x_stride, int nt, float *out, int out_stride) {
    __m256 acc[KQ_TILE_MAX][KQ_TILE_MAX];
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) acc[r][t] = _mm256_setzero_ps();
    int64_t nb = n / KQ_QK_K;
    for (int64_t b = 0; b < nb; b++) {
        const block_q8_K *xb[KQ_TILE_MAX];
        for (int t = 0; t < nt; t++) xb[t] = x + (size_t)t * x_stride + b;
        for (int r = 0; r < nr; r++) {
            const char *wr = w + (size_t)r * w_stride;
            if (type == DT_Q4_K) {
                const kq_block_q4_K *blk = (const kq_block_q4_K *)wr + b;
                block_q45(blk->d, blk->dmin, blk->scales, blk->qs, NULL, xb, nt, acc[r]);
            } else if (type == DT_Q5_K) {
                const kq_block_q5_K *blk = (const kq_block_q5_K *)wr + b;
                block_q45(blk->d, blk->dmin, blk->scales, blk->qs, blk->qh, xb, nt, acc[r]);
            } else {
                block_q6((const kq_block_q6_K *)wr + b, xb, nt, acc[r]);
            }
        }
    }
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) out[(size_t)t * out_stride + r] = simd_hsum256(acc[r][t]);
}

static int supported(dtype_t type) { return type == DT_Q4_K || type == DT_Q5_K || type == DT_Q6_K; }

float kq_vec_dot_avx2(dtype_t type, int64_t n, const void *w_row, const block_q8_K *x) {
    if (!supported(type)) return 0.0f;
    float out;
    switch (type) {
    case DT_Q4_K: tile_run(DT_Q4_K, n, w_row, 0, 1, x, 0, 1, &out, 1); break;
    case DT_Q5_K: tile_run(DT_Q5_K, n, w_row, 0, 1, x, 0, 1, &out, 1); break;
    default: tile_run(DT_Q6_K, n, w_row, 0, 1, x, 0, 1, &out, 1); break;
    }
    return out;
}

/* One specialisation per activation count; the type is a loop-invariant branch. */
static void tile_nt1(dtype_t type, int64_t n, const char *w, size_t ws, int nr, const block_q8_K *x,
                     size_t xs, float *out, int os) {
    tile_run(type, n, w, ws, nr, x, xs, 1, out, os);
}
static void tile_nt2(dtype_t type, int64_t n, const char *w, size_t ws, int nr, const block_q8_K *x,
                     size_t xs, float *out, int os) {
    tile_run(type, n, w, ws, nr, x, xs, 2, out, os);
}
static void tile_nt3(dtype_t type, int64_t n, const char *w, size_t ws, int nr, const block_q8_K *x,
                     size_t xs, float *out, int os) {
    tile_run(type, n, w, ws, nr, x, xs, 3, out, os);
}
static void tile_nt4(dtype_t type, int64_t n, const char *w, size_t ws, int nr, const block_q8_K *x,
                     size_t xs, float *out, int os) {
    tile_run(type, n, w, ws, nr, x, xs, 4, out, os);
}

void kq_vec_dot_tile_avx2(dtype_t type, int64_t n, const void *w_rows, size_t w_stride, int nr,
                          const block_q8_K *x, size_t x_stride_blocks, int nt, float *out,
                          int out_stride) {
    if (!supported(type) || nr < 1 || nr > KQ_TILE_MAX) return;
    switch (nt) {
    case 1: tile_nt1(type, n, w_rows, w_stride, nr, x, x_stride_blocks, out, out_stride); break;
    case 2: tile_nt2(type, n, w_rows, w_stride, nr, x, x_stride_blocks, out, out_stride); break;
    case 3: tile_nt3(type, n, w_rows, w_stride, nr, x, x_stride_blocks, out, out_stride); break;
    case 4: tile_nt4(type, n, w_rows, w_stride, nr, x, x_stride_blocks, out, out_stride); break;
    default: break;
    }
}
