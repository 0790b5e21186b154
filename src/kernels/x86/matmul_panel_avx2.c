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

#include "kernels/matmul.h"

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

/* One instance per (panels, tokens) shape used below, each with constant trip counts. */
static void panel_tiles(const kern_mm_args *a, int np, int nt, int64_t o0, int64_t t0, bool pf) {
#define TILE(P, T)                                                                                 \
    case P * 8 + T:                                                                                \
        if (pf)                                                                                    \
            panel_tile(a, P, T, o0, t0, true);                                                     \
        else                                                                                       \
            panel_tile(a, P, T, o0, t0, false);                                                    \
        break;
    switch (np * 8 + nt) {
        TILE(1, 1)
        TILE(1, 2) TILE(1, 3) TILE(1, 4) TILE(1, 5) TILE(1, 6) TILE(2, 1) TILE(2, 2) TILE(2, 3)
            TILE(3, 1) TILE(4, 1) default : break;
    }
#undef TILE
}

void kern_mm_panel_avx2(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
    const int64_t T = t1 - t0;
    /* few tokens: more panels per tile, so enough accumulators are in flight */
    const int pw = T == 1 ? 4 : T <= 3 ? 2 : 1, tw = T <= 3 ? (int)T : TMAX;
    for (int64_t o = r0; o < r1; o += (int64_t)pw * PANEL) {
        int np = (int)((r1 - o) / PANEL < pw ? (r1 - o) / PANEL : pw);
        for (int64_t t = t0; t < t1; t += tw) {
            int nt = (int)(t1 - t < tw ? t1 - t : tw);
            panel_tiles(a, np, nt, o, t, T == 1);
        }
    }
}
