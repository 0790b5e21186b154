/* AVX2 + FMA kernel for BF16 weights in 16-row panels (TL_PANEL16, kernels/matmul.h): each k
 * step loads 32 bytes (16 rows), widens them with a shift and a mask, and multiplies them by
 * up to 6 broadcast activations: 12 FMAs per load and no horizontal sums, where the row
 * layout's dot products spend a widening per row and a fold per pair. One token (decode)
 * takes 4 panels at once instead, so 8 independent chains hide the FMA latency and 4 weight
 * streams are in flight. Every tile computes each Y[t][o] as the same chain,
 *   acc = 0; for k in order: acc = fma(W[o][k], X[t][k], acc),
 * which is also the scalar path's (matmul_panel.c): every path, tile and batch gives the same
 * bits. */
#include <immintrin.h>

#include <string.h>

#include "kernels/matmul.h"
#include "kernels/quant.h"

enum { PANEL = 16, TMAX = 6, PMAX = 4 };
#ifndef PF_STEPS
#define PF_STEPS 32 /* k steps (32 bytes each per panel) the prefetch runs ahead */
#endif

/* pf: prefetch the panels' next lines, for one token (decode), where the kernel waits on memory;
 * with more tokens the FMAs hide the loads, and prefetching measured slower (43.6 vs 47.9 ms
 * for SmolLM2's matmuls at 16 tokens). */
static inline __attribute__((always_inline)) void panel_tile(const kern_mm_args *a, int np, int nt,
                                                             int64_t o0, int64_t t0, bool pf) {
    const int64_t n = a->n_in;
    const size_t ps = (size_t)PANEL * (size_t)n; /* values per panel */
    const uint16_t *w = (const uint16_t *)a->w + (size_t)o0 * (size_t)n;
    const float *x[TMAX];
    __m256 acc[PMAX][2][TMAX];
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        x[t] = (const float *)((const char *)a->x + (t0 + t) * a->x_stride);
#pragma GCC unroll 4
        for (int p = 0; p < np; p++)
            acc[p][0][t] = acc[p][1][t] = _mm256_setzero_ps();
    }
    for (int64_t k = 0; k < n; k++) {
        /* every other step (one cache line per panel), ask for the line PF_STEPS ahead */
        if (pf && !(k & 1))
#pragma GCC unroll 4
            for (int p = 0; p < np; p++)
                _mm_prefetch((const char *)(w + (size_t)p * ps + (size_t)(k + PF_STEPS) * PANEL),
                             _MM_HINT_T0);
        __m256 lo[PMAX], hi[PMAX];
#pragma GCC unroll 4
        for (int p = 0; p < np; p++) {
            __m256i v =
                _mm256_loadu_si256((const __m256i *)(w + (size_t)p * ps + (size_t)k * PANEL));
            lo[p] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));  /* rows 0..7 */
            hi[p] = _mm256_castsi256_ps(_mm256_and_si256(v, high)); /* rows 8..15 */
        }
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            __m256 xb = _mm256_broadcast_ss(x[t] + k);
#pragma GCC unroll 4
            for (int p = 0; p < np; p++) {
                acc[p][0][t] = _mm256_fmadd_ps(lo[p], xb, acc[p][0][t]);
                acc[p][1][t] = _mm256_fmadd_ps(hi[p], xb, acc[p][1][t]);
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        float *y = a->y + (t0 + t) * a->ldy + o0;
#pragma GCC unroll 4
        for (int p = 0; p < np; p++) {
            _mm256_storeu_ps(y + p * PANEL, acc[p][0][t]);
            _mm256_storeu_ps(y + p * PANEL + 8, acc[p][1][t]);
        }
    }
}

/* Tokens of tile i when T tokens are split into n_tiles tiles of near-equal size (16 tokens in
 * tiles of at most 5: 4, 4, 4, 4 rather than 5, 5, 5, 1, whose last tile would run alone). */
static inline int tile_tokens(int64_t T, int64_t n_tiles, int64_t i) {
    return (int)(T / n_tiles + (i < T % n_tiles));
}

/* ---- Q8_0 and Q4_1 in panels of 8 rows (TL_PANEL8) ----
 * One 32-bit lane is one row; per group of 4 values, vpmaddubsw multiplies unsigned weights by
 * a broadcast activation group, and the block's sum is exact in integers; then once per block,
 * for 8 rows at once, acc = fma(float(sum), d_w * d_x, acc). The row layout spends a
 * conversion, a multiply and an FMA per pair of rows and tokens per block, and a horizontal
 * sum per pair at the end; here they are shared by 8 rows.
 * Q8_0: |w| times x with w's signs (the sign trick), pairs widened by vpmaddwd per group.
 * Q4_1: a 32-byte chunk's low nibbles are values 4c.. and its high nibbles 16+4c.., unsigned
 * already; each product pair is at most 15 * 127 * 2, so the block's 8 pair sums add up in
 * int16 and one vpmaddwd widens them. Its offsets' term is a chain of its own, added last:
 * macc = fma(m_w, s_x, macc), y = acc + macc (llama.cpp's grouping, and the closer to it). */
enum { P8_ROWS = 8, P8_TMAX = 5, P8_PMAX = 4 };

static inline __attribute__((always_inline)) void
panel8_tile(const kern_mm_args *a, dtype_t type, int np, int nt, int64_t o0, int64_t t0, bool pf) {
    const bool q4 = type == DT_Q4_1;
    const int64_t n = a->n_in, nb = n / 32;
    const size_t bb = q4 ? 32 + 128 : 16 + 256, head = q4 ? 32 : 16; /* panel block, fields */
    const size_t ps = (size_t)nb * bb;                               /* bytes per panel */
    const uint8_t *w = a->w + (size_t)(o0 / P8_ROWS) * ps;
    const int8_t *xq[P8_TMAX];
    const float *xd[P8_TMAX], *xs[P8_TMAX];
    __m256 acc[P8_PMAX][P8_TMAX];
    const __m256i ones = _mm256_set1_epi16(1), low = _mm256_set1_epi8(0x0f);
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) {
        const char *row = (const char *)a->x + (t0 + t) * a->x_stride;
        xq[t] = (const int8_t *)row;
        xd[t] = quant_act_d(row, n);
        xs[t] = quant_act_s(row, n);
#pragma GCC unroll 4
        for (int p = 0; p < np; p++)
            acc[p][t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        __m256i isum[P8_PMAX][P8_TMAX]; /* int32 lanes (Q8_0), int16 pairs (Q4_1) */
        const uint8_t *blk[P8_PMAX];
#pragma GCC unroll 4
        for (int p = 0; p < np; p++) {
            blk[p] = w + (size_t)p * ps + (size_t)b * bb;
            if (pf)
                for (size_t l = 0; l < bb; l += 64)
                    _mm_prefetch((const char *)blk[p] + 8 * bb + l, _MM_HINT_T0);
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++)
                isum[p][t] = _mm256_setzero_si256();
        }
        if (q4) {
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++)
#pragma GCC unroll 4
                for (int p = 0; p < np; p++) {
                    __m256i v = _mm256_loadu_si256((const __m256i *)(blk[p] + head + 32 * c));
                    __m256i lo = _mm256_and_si256(v, low);
                    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
#pragma GCC unroll 4
                    for (int t = 0; t < nt; t++) {
                        int32_t xa, xb;
                        memcpy(&xa, xq[t] + b * 32 + 4 * c, 4);
                        memcpy(&xb, xq[t] + b * 32 + 16 + 4 * c, 4);
                        __m256i pa = _mm256_maddubs_epi16(lo, _mm256_set1_epi32(xa));
                        __m256i pb = _mm256_maddubs_epi16(hi, _mm256_set1_epi32(xb));
                        isum[p][t] = _mm256_add_epi16(isum[p][t], _mm256_add_epi16(pa, pb));
                    }
                }
        } else {
#pragma GCC unroll 8
            for (int g = 0; g < 8; g++)
#pragma GCC unroll 4
                for (int p = 0; p < np; p++) {
                    __m256i q = _mm256_loadu_si256((const __m256i *)(blk[p] + head + 32 * g));
                    __m256i u = _mm256_sign_epi8(q, q);
#pragma GCC unroll 4
                    for (int t = 0; t < nt; t++) {
                        int32_t x4;
                        memcpy(&x4, xq[t] + b * 32 + 4 * g, 4);
                        __m256i sx = _mm256_sign_epi8(_mm256_set1_epi32(x4), q);
                        isum[p][t] = _mm256_add_epi32(
                            isum[p][t], _mm256_madd_epi16(_mm256_maddubs_epi16(u, sx), ones));
                    }
                }
        }
#pragma GCC unroll 4
        for (int p = 0; p < np; p++) {
            __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk[p]));
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) {
                __m256i i32 = q4 ? _mm256_madd_epi16(isum[p][t], ones) : isum[p][t];
                __m256 s = _mm256_mul_ps(dw, _mm256_broadcast_ss(xd[t] + b));
                acc[p][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), s, acc[p][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int p = 0; p < np; p++)
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) {
            __m256 y = acc[p][t];
            if (q4) { /* the offsets' chain; the panel is in cache by now */
                __m256 macc = _mm256_setzero_ps();
                for (int64_t b = 0; b < nb; b++) {
                    const uint8_t *blk = w + (size_t)p * ps + (size_t)b * bb;
                    __m256 mw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 16)));
                    macc = _mm256_fmadd_ps(mw, _mm256_broadcast_ss(xs[t] + b), macc);
                }
                y = _mm256_add_ps(y, macc);
            }
            _mm256_storeu_ps(a->y + (t0 + t) * a->ldy + o0 + p * P8_ROWS, y);
        }
}

static inline __attribute__((always_inline)) void q8_tile(const kern_mm_args *a, int np, int nt,
                                                          int64_t o0, int64_t t0, bool pf) {
    panel8_tile(a, DT_Q8_0, np, nt, o0, t0, pf);
}

static inline __attribute__((always_inline)) void q4_1_tile(const kern_mm_args *a, int np, int nt,
                                                            int64_t o0, int64_t t0, bool pf) {
    panel8_tile(a, DT_Q4_1, np, nt, o0, t0, pf);
}

/* One instance per (panels, tokens) shape the driver uses, each with constant trip counts. */
#define TILE(F, P, T)                                                                              \
    case P * 8 + T:                                                                                \
        if (pf)                                                                                    \
            F(a, P, T, o0, t0, true);                                                              \
        else                                                                                       \
            F(a, P, T, o0, t0, false);                                                             \
        break;

typedef void (*panel_tiles_fn)(const kern_mm_args *a, int np, int nt, int64_t o0, int64_t t0,
                               bool pf);

// clang-format off
static void bf16_tiles(const kern_mm_args *a, int np, int nt, int64_t o0, int64_t t0, bool pf) {
    switch (np * 8 + nt) {
    TILE(panel_tile, 1, 1) TILE(panel_tile, 1, 2) TILE(panel_tile, 1, 3)
    TILE(panel_tile, 1, 4) TILE(panel_tile, 1, 5) TILE(panel_tile, 1, 6)
    TILE(panel_tile, 2, 1) TILE(panel_tile, 2, 2) TILE(panel_tile, 2, 3)
    TILE(panel_tile, 3, 1) TILE(panel_tile, 4, 1)
    default: break;
    }
}

static void q8_tiles(const kern_mm_args *a, int np, int nt, int64_t o0, int64_t t0, bool pf) {
    switch (np * 8 + nt) {
    TILE(q8_tile, 1, 1) TILE(q8_tile, 1, 2) TILE(q8_tile, 1, 3)
    TILE(q8_tile, 1, 4) TILE(q8_tile, 1, 5)
    TILE(q8_tile, 2, 1) TILE(q8_tile, 2, 2)
    TILE(q8_tile, 3, 1) TILE(q8_tile, 4, 1)
    default: break;
    }
}

static void q4_1_tiles(const kern_mm_args *a, int np, int nt, int64_t o0, int64_t t0, bool pf) {
    switch (np * 8 + nt) {
    TILE(q4_1_tile, 1, 1) TILE(q4_1_tile, 1, 2) TILE(q4_1_tile, 1, 3)
    TILE(q4_1_tile, 1, 4) TILE(q4_1_tile, 1, 5)
    TILE(q4_1_tile, 2, 1) TILE(q4_1_tile, 2, 2)
    TILE(q4_1_tile, 3, 1) TILE(q4_1_tile, 4, 1)
    default: break;
    }
}
// clang-format on
#undef TILE

/* Rows [r0, r1) x tokens [t0, t1) in tiles of panels x tokens: one token takes 4 panels (decode:
 * enough chains in flight to hide the FMA latency, 4 weight streams, prefetched); up to
 * `pair_max` tokens take 2 panels; more tokens take one panel and tiles of up to `tmax` tokens,
 * split evenly. */
static void panel_rows(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0, int64_t t1,
                       int panel_rows, int pair_max, int tmax, panel_tiles_fn tiles) {
    const int64_t T = t1 - t0;
    const int pw = T == 1 ? 4 : T <= pair_max ? 2 : 1, tw = T <= pair_max ? (int)T : tmax;
    const int64_t n_tiles = (T + tw - 1) / tw;
    for (int64_t o = r0; o < r1; o += (int64_t)pw * panel_rows) {
        int np = (int)((r1 - o) / panel_rows < pw ? (r1 - o) / panel_rows : pw);
        for (int64_t i = 0, t = t0; i < n_tiles; i++) {
            int nt = tile_tokens(T, n_tiles, i);
            tiles(a, np, nt, o, t, T == 1);
            t += nt;
        }
    }
}

void kern_mm_panel_avx2(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
    panel_rows(a, r0, r1, t0, t1, PANEL, 3, TMAX, bf16_tiles);
}

void kern_mm_panel_q8_avx2(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
    panel_rows(a, r0, r1, t0, t1, P8_ROWS, 2, P8_TMAX, q8_tiles);
}

void kern_mm_panel_q4_1_avx2(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0,
                             int64_t t1) {
    panel_rows(a, r0, r1, t0, t1, P8_ROWS, 2, P8_TMAX, q4_1_tiles);
}
