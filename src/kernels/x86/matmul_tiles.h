/* The x86 matmul micro-kernels, written once and compiled per ISA: x86/matmul_avx2.c and
 * x86/matmul_avx512.c include this file (no include guard, on purpose) after defining
 *   MM_R, MM_T        rows and tokens of a register tile
 *   MM_NAME(x)        a prefix for the functions made here
 *   MM_DOT_U8(w, x)   8 x int32 partial sums of u8 w[32] times i8 x[32] (4 products per lane)
 * and optionally MM_R1, the rows of a one-token tile (default MM_R): with a single token the
 * activation takes one register, so more weight rows fit, and more rows stream at once.
 * Batch invariance rests on one rule kept below: a tile of nr x nt pairs runs, for each pair,
 * exactly the operations the 1 x 1 tile runs (same lanes, same order, same horizontal sum), so
 * Y[t][o] is the same number whichever tile, thread or batch it is computed in. */

#ifndef MM_R1
#define MM_R1 MM_R
#endif
#define MM_RMAX (MM_R1 > MM_R ? MM_R1 : MM_R)

/* Weights stream from memory once per call (a model is larger than the caches), so each tile
 * asks for the next tile's bytes while it computes: rows are contiguous, so the tile's rows
 * [o0, o0 + nr) span nr * stride bytes and the next tile the nr * stride after them. Each block
 * step asks for its share of that span, each cache line once (asking twice for a line in flight
 * measured twice as slow on the dev machine; running further ahead, or into L2 only, measured
 * no better). A prefetch changes no arithmetic. */
static inline void MM_NAME(prefetch)(const uint8_t **next, const uint8_t *upto) {
    while (*next < upto) {
        _mm_prefetch((const char *)*next, _MM_HINT_T0);
        *next += 64;
    }
}

/* One pair's accumulators across blocks use 8 float lanes; this folds them in a fixed order. */
static inline float MM_NAME(hsum)(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* sum_b a[b] * b[b] over n floats: 8 lanes, folded as above, then the tail in order. */
static inline float MM_NAME(dot_f32)(const float *a, const float *b, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    float s = MM_NAME(hsum)(acc);
    for (; i < n; i++) {
        float p = a[i] * b[i];
        s += p;
    }
    return s;
}

/* 32 values of bit 4 of a Q5 block: 0x10 where bit j of qh is set, else 0. */
static inline __m256i MM_NAME(q5_high)(const uint8_t *qh) {
    uint32_t bits;
    memcpy(&bits, qh, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), shuf);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    bytes = _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
    return _mm256_and_si256(bytes, _mm256_set1_epi8(0x10));
}

/* The 32 nibbles of a block as bytes, low nibbles first: the 16 bytes loaded into both halves,
 * the upper half shifted by 4 (a load and two operations, no lane insert). */
static inline __m256i MM_NAME(nibbles)(const uint8_t *qs) {
    __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    both = _mm256_srlv_epi32(both, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

/* d and m of a Q4_1 / Q5_1 block (two adjacent halves): one load, one conversion. */
static inline __m256 MM_NAME(dm)(const uint16_t *dm, float *m) {
    uint32_t bits;
    memcpy(&bits, dm, 4);
    __m128 v = _mm_cvtph_ps(_mm_cvtsi32_si128((int)bits));
    *m = _mm_cvtss_f32(_mm_movehdup_ps(v));
    return _mm256_broadcastss_ps(v);
}

/* Block b of a legacy weight row as unsigned values u (0..31) with x = d * u + m; for Q4_0 and
 * Q5_0 the offset becomes m = -8d / -16d (exact). Q8_0 is signed and handled apart. d comes
 * back broadcast. */
static inline __attribute__((always_inline)) __m256i
MM_NAME(unpack)(dtype_t type, const uint8_t *row, int64_t b, __m256 *dv, float *m) {
    switch (type) {
    case DT_Q4_0: {
        const block_q4_0 *blk = (const block_q4_0 *)row + b;
        float d = _cvtsh_ss(blk->d);
        *m = -8.0f * d;
        *dv = _mm256_set1_ps(d);
        return MM_NAME(nibbles)(blk->qs);
    }
    case DT_Q4_1: {
        const block_q4_1 *blk = (const block_q4_1 *)row + b;
        *dv = MM_NAME(dm)(&blk->d, m);
        return MM_NAME(nibbles)(blk->qs);
    }
    case DT_Q5_0: {
        const block_q5_0 *blk = (const block_q5_0 *)row + b;
        float d = _cvtsh_ss(blk->d);
        *m = -16.0f * d;
        *dv = _mm256_set1_ps(d);
        return _mm256_or_si256(MM_NAME(nibbles)(blk->qs), MM_NAME(q5_high)(blk->qh));
    }
    default: { /* DT_Q5_1 */
        const block_q5_1 *blk = (const block_q5_1 *)row + b;
        *dv = MM_NAME(dm)(&blk->d, m);
        return _mm256_or_si256(MM_NAME(nibbles)(blk->qs), MM_NAME(q5_high)(blk->qh));
    }
    }
}

/* Legacy quantized weights times quant_act activations: for each pair,
 *   acc += float(dot_int(block)) * (d_w * d_x)   (8 lanes, blocks in order)
 *   y = hsum(acc) + dot_f32(m_w[], s_x[])        (the min/offset term, when the type has one) */
static inline __attribute__((always_inline)) void
MM_NAME(tile_q)(const kern_mm_args *a, dtype_t type, int nr, int nt, int64_t o0, int64_t t0,
                float *mw, bool pf_on) {
    const int64_t n = a->n_in, nb = n / QUANT_QK;
    const uint8_t *w[MM_RMAX];
    const int8_t *xq[MM_T];
    const float *xd[MM_T], *xs[MM_T];
    __m256 acc[MM_RMAX][MM_T];
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++) w[r] = a->w + (o0 + r) * a->w_stride;
    const size_t pf_step = pf_on ? (size_t)nr * (a->w_stride / (size_t)nb) : 0;
    const uint8_t *pf = w[0] + (size_t)nr * a->w_stride, *pf_to = pf;
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        const char *row = (const char *)a->x + (t0 + t) * a->x_stride;
        xq[t] = (const int8_t *)row;
        xd[t] = quant_act_d(row, n);
        xs[t] = quant_act_s(row, n);
    }
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) acc[r][t] = _mm256_setzero_ps();

    for (int64_t b = 0; b < nb; b++) {
        __m256i wu[MM_RMAX], ws[MM_RMAX];
        __m256 dw[MM_RMAX];
        pf_to += pf_step;
        MM_NAME(prefetch)(&pf, pf_to);
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            if (type == DT_Q8_0) {
                const block_q8_0 *blk = (const block_q8_0 *)w[r] + b;
                ws[r] = _mm256_loadu_si256((const __m256i *)blk->qs);
                wu[r] = _mm256_sign_epi8(ws[r], ws[r]);
                dw[r] = _mm256_set1_ps(_cvtsh_ss(blk->d));
            } else {
                wu[r] = MM_NAME(unpack)(type, w[r], b, &dw[r], &mw[r * nb + b]);
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(xq[t] + b * QUANT_QK));
            __m256 dx = _mm256_broadcast_ss(xd[t] + b);
#pragma GCC unroll 8
            for (int r = 0; r < nr; r++) {
                __m256i xx = type == DT_Q8_0 ? _mm256_sign_epi8(x, ws[r]) : x;
                __m256 p = _mm256_cvtepi32_ps(MM_DOT_U8(wu[r], xx));
                acc[r][t] = _mm256_fmadd_ps(p, _mm256_mul_ps(dw[r], dx), acc[r][t]);
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        float *y = a->y + (t0 + t) * a->ldy + o0;
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            float v = MM_NAME(hsum)(acc[r][t]);
            if (type != DT_Q8_0) v += MM_NAME(dot_f32)(mw + r * nb, xs[t], nb);
            y[r] = v;
        }
    }
}

static inline __m256 MM_NAME(load_w)(dtype_t type, const uint8_t *row, int64_t i) {
    if (type == DT_F32) return _mm256_loadu_ps((const float *)row + i);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + i));
    if (type == DT_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static inline float MM_NAME(w_scalar)(dtype_t type, const uint8_t *row, int64_t i) {
    if (type == DT_F32) return ((const float *)row)[i];
    uint16_t h = ((const uint16_t *)row)[i];
    return type == DT_F16 ? _cvtsh_ss(h) : bf16_to_fp32(h);
}

/* Float weights times float activations: acc += w * x over 8 lanes, then the tail in order. */
static inline __attribute__((always_inline)) void
MM_NAME(tile_f)(const kern_mm_args *a, dtype_t type, int nr, int nt, int64_t o0, int64_t t0,
                bool pf_on) {
    const int64_t n = a->n_in;
    const uint8_t *w[MM_RMAX];
    const float *x[MM_T];
    __m256 acc[MM_RMAX][MM_T];
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++) w[r] = a->w + (o0 + r) * a->w_stride;
    /* the next tile's bytes, in step with this tile's progress (see prefetch) */
    const size_t pf_step = pf_on ? (size_t)nr * 8 * (type == DT_F32 ? 4 : 2) : 0;
    const uint8_t *pf = w[0] + (size_t)nr * a->w_stride, *pf_to = pf;
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        x[t] = (const float *)((const char *)a->x + (t0 + t) * a->x_stride);
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) acc[r][t] = _mm256_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wv[MM_RMAX];
        pf_to += pf_step;
        MM_NAME(prefetch)(&pf, pf_to);
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) wv[r] = MM_NAME(load_w)(type, w[r], i);
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            __m256 xv = _mm256_loadu_ps(x[t] + i);
#pragma GCC unroll 8
            for (int r = 0; r < nr; r++) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        float *y = a->y + (t0 + t) * a->ldy + o0;
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            float v = MM_NAME(hsum)(acc[r][t]);
            for (int64_t j = i; j < n; j++) {
                float p = MM_NAME(w_scalar)(type, w[r], j) * x[t][j];
                v += p;
            }
            y[r] = v;
        }
    }
}

/* w8a8: exact int32 dot products (sign trick), scaled once: y = (float(dot) * s_x) * s_w. */
static inline __attribute__((always_inline)) void
MM_NAME(tile_i8)(const kern_mm_args *a, int nr, int nt, int64_t o0, int64_t t0, bool pf_on) {
    const int64_t n = a->n_in;
    const int8_t *w[MM_RMAX], *x[MM_T];
    __m256i acc[MM_RMAX][MM_T];
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++) w[r] = (const int8_t *)(a->w + (o0 + r) * a->w_stride);
    const size_t pf_step = pf_on ? (size_t)nr * 32 : 0;
    const uint8_t *pf = (const uint8_t *)w[0] + (size_t)nr * a->w_stride;
    const uint8_t *pf_to = pf;
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        x[t] = (const int8_t *)a->x + (t0 + t) * a->x_stride;
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) acc[r][t] = _mm256_setzero_si256();
    }
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i ws[MM_RMAX], wu[MM_RMAX];
        pf_to += pf_step;
        MM_NAME(prefetch)(&pf, pf_to);
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            ws[r] = _mm256_loadu_si256((const __m256i *)(w[r] + i));
            wu[r] = _mm256_sign_epi8(ws[r], ws[r]);
        }
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)(x[t] + i));
#pragma GCC unroll 8
            for (int r = 0; r < nr; r++)
                acc[r][t] = _mm256_add_epi32(acc[r][t],
                                             MM_DOT_U8(wu[r], _mm256_sign_epi8(xv, ws[r])));
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        float *y = a->y + (t0 + t) * a->ldy + o0;
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc[r][t]),
                                      _mm256_extracti128_si256(acc[r][t], 1));
            s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
            s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
            int32_t dot = _mm_cvtsi128_si32(s);
            for (int64_t j = i; j < n; j++) dot += (int32_t)w[r][j] * x[t][j];
            float v = (float)dot * a->x_scale[t0 + t];
            y[r] = v * a->w_scale[o0 + r];
        }
    }
}

/* Instantiates one tile kernel for every (nr, nt) up to MM_R x MM_T with constant sizes, so
 * each is fully unrolled with its accumulators in registers. */
#define MM_CASES(R, CALL)                                                                      \
    case R * 8 + 1: CALL(R, 1); break;                                                         \
    case R * 8 + 2: CALL(R, 2); break;                                                         \
    case R * 8 + 3: CALL(R, 3); break;                                                         \
    case R * 8 + 4: CALL(R, 4); break;
#if MM_R == 4
#define MM_TILE_SWITCH(CALL)                                                                   \
    switch (nr * 8 + nt) { MM_CASES(1, CALL) MM_CASES(2, CALL) MM_CASES(3, CALL) MM_CASES(4, CALL) }
#elif MM_R1 == 4
#define MM_TILE_SWITCH(CALL)                                                                   \
    switch (nr * 8 + nt) {                                                                     \
        MM_CASES(1, CALL) MM_CASES(2, CALL)                                                    \
        case 3 * 8 + 1: CALL(3, 1); break;                                                     \
        case 4 * 8 + 1: CALL(4, 1); break;                                                     \
    }
#else
#define MM_TILE_SWITCH(CALL) switch (nr * 8 + nt) { MM_CASES(1, CALL) MM_CASES(2, CALL) }
#endif

#define MM_DEFINE_TILES(tname, TYPE)                                                           \
    static void MM_NAME(tiles_##tname)(const kern_mm_args *a, int nr, int nt, int64_t o0,      \
                                       int64_t t0, float *mw, bool pf) {                       \
        (void)mw;                                                                              \
        MM_TILE_SWITCH(MM_CALL_##tname)                                                        \
    }
#define MM_CALL_q4_0(R, T) MM_NAME(tile_q)(a, DT_Q4_0, R, T, o0, t0, mw, pf)
#define MM_CALL_q4_1(R, T) MM_NAME(tile_q)(a, DT_Q4_1, R, T, o0, t0, mw, pf)
#define MM_CALL_q5_0(R, T) MM_NAME(tile_q)(a, DT_Q5_0, R, T, o0, t0, mw, pf)
#define MM_CALL_q5_1(R, T) MM_NAME(tile_q)(a, DT_Q5_1, R, T, o0, t0, mw, pf)
#define MM_CALL_q8_0(R, T) MM_NAME(tile_q)(a, DT_Q8_0, R, T, o0, t0, mw, pf)
#define MM_CALL_f32(R, T) MM_NAME(tile_f)(a, DT_F32, R, T, o0, t0, pf)
#define MM_CALL_f16(R, T) MM_NAME(tile_f)(a, DT_F16, R, T, o0, t0, pf)
#define MM_CALL_bf16(R, T) MM_NAME(tile_f)(a, DT_BF16, R, T, o0, t0, pf)
#define MM_CALL_i8(R, T) MM_NAME(tile_i8)(a, R, T, o0, t0, pf)
MM_DEFINE_TILES(q4_0, DT_Q4_0)
MM_DEFINE_TILES(q4_1, DT_Q4_1)
MM_DEFINE_TILES(q5_0, DT_Q5_0)
MM_DEFINE_TILES(q5_1, DT_Q5_1)
MM_DEFINE_TILES(q8_0, DT_Q8_0)
MM_DEFINE_TILES(f32, DT_F32)
MM_DEFINE_TILES(f16, DT_F16)
MM_DEFINE_TILES(bf16, DT_BF16)
MM_DEFINE_TILES(i8, DT_I8)


/* Rows [r0, r1) x tokens [t0, t1): register tiles, weights of a row tile reused for all tokens
 * while they sit in L1. */
static void MM_NAME(rows)(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0,
                          int64_t t1) {
    void (*tiles)(const kern_mm_args *, int, int, int64_t, int64_t, float *, bool);
    int64_t nb = a->n_in / QUANT_QK;
    float mw[MM_RMAX * (nb > 0 ? nb : 1)]; /* per-block m of the rows of a tile */
    switch (a->type) {
    case DT_Q4_0: tiles = MM_NAME(tiles_q4_0); break;
    case DT_Q4_1: tiles = MM_NAME(tiles_q4_1); break;
    case DT_Q5_0: tiles = MM_NAME(tiles_q5_0); break;
    case DT_Q5_1: tiles = MM_NAME(tiles_q5_1); break;
    case DT_Q8_0: tiles = MM_NAME(tiles_q8_0); break;
    case DT_F32: tiles = MM_NAME(tiles_f32); break;
    case DT_F16: tiles = MM_NAME(tiles_f16); break;
    case DT_BF16: tiles = MM_NAME(tiles_bf16); break;
    case DT_I8: tiles = MM_NAME(tiles_i8); break;
    default: return;
    }
    const int rt = t1 - t0 == 1 ? MM_R1 : MM_R; /* rows per tile */
    for (int64_t o = r0; o < r1; o += rt) {
        int nr = (int)(r1 - o < rt ? r1 - o : rt);
        for (int64_t t = t0; t < t1; t += MM_T) {
            int nt = (int)(t1 - t < MM_T ? t1 - t : MM_T);
            tiles(a, nr, nt, o, t, mw, t == t0); /* later token tiles find the rows in L1 */
        }
    }
}

#undef MM_RMAX
#undef MM_CASES
#undef MM_TILE_SWITCH
#undef MM_DEFINE_TILES
#undef MM_CALL_q4_0
#undef MM_CALL_q4_1
#undef MM_CALL_q5_0
#undef MM_CALL_q5_1
#undef MM_CALL_q8_0
#undef MM_CALL_f32
#undef MM_CALL_f16
#undef MM_CALL_bf16
#undef MM_CALL_i8
