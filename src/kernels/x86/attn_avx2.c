/* AVX2 attention over a tile of query tokens (ops_x86.h). Long prompts spend most of their
 * prefill here, so the kernel reads each K/V row of a block once per tile (converting fp16/bf16
 * to f32 once), shares it across all the tile's query heads, and computes exp on 8 lanes.
 *
 * Two passes per tile, as the scalar path: scores of every visible key, then softmax, then the
 * weighted sum of V rows. What keeps it batch-invariant: each score is its own 8-lane FMA chain
 * over head_dim reduced by one fixed tree; a query's max/exp/sum run over its own key range
 * from its first key; its output is one FMA chain per element over its keys in ascending
 * order. Tiles and key blocks only decide when data is converted or spilled, never an order. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/x86/ops_x86.h"
#include "kernels/x86/simd_avx2.h"

/* Keys per block: a converted block of K (or V) stays within ~16 KiB, half of L1. */
static int block_keys(int hd) {
    int kb = (16384 / (hd * 4)) & ~7;
    if (kb < 8) kb = 8;
    if (kb > 256) kb = 256;
    return kb;
}

static int64_t score_stride(int64_t span) { return ((span + 7) & ~(int64_t)7) + 8; }

size_t ops_attn_tile_work_avx2(int nq, int group, int head_dim, int64_t span) {
    return (size_t)nq * (size_t)group * (size_t)score_stride(span) +
           (size_t)block_keys(head_dim) * (size_t)head_dim + (size_t)head_dim +
           (size_t)nq * (size_t)group;
}

static inline float hmax256(__m256 v) {
    __m128 lo = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_max_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_max_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

/* rows[0..n) = the block's key (or value) rows p0..p0+n-1 of this kv head, then 8 rows of
 * zeros so that 8-key groups may run past the block's end. The rows are f32, converted into
 * buf once for the whole tile, unless `direct`: then they are the cache's own rows, which the
 * loops convert as they read them (one query token: a row serves only its group's heads, and
 * staging it cost more than converting it a few times). Either way the same floats. */
static void load_block(const ops_attn_tile *t, const void *base, int64_t p0, int n, float *buf,
                       const float *zero, const void **rows, bool direct) {
    int hd = t->head_dim;
    for (int j = 0; j < n; j++) {
        int64_t off = (int64_t)t->slots[p0 + j] * t->row_elems + t->head_off;
        if (t->kv_type == DT_F32) {
            rows[j] = (const float *)base + off;
            continue;
        }
        if (direct) {
            rows[j] = (const uint16_t *)base + off;
            continue;
        }
        const uint16_t *src = (const uint16_t *)base + off;
        float *dst = buf + (size_t)j * hd;
        if (t->kv_type == DT_F16) {
            for (int c = 0; c < hd; c += 8)
                _mm256_store_ps(dst + c,
                                _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + c))));
        } else {
            for (int c = 0; c < hd; c += 8) {
                __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + c)));
                _mm256_store_ps(dst + c, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
            }
        }
        rows[j] = dst;
    }
    for (int j = n; j < n + 8; j++)
        rows[j] = zero;
}

/* 8 floats of a row of type ty (f32, or a cache row in fp16 / bf16) from element c. */
static inline __attribute__((always_inline)) __m256 row8(dtype_t ty, const void *row, int c) {
    if (ty == DT_F32) return _mm256_loadu_ps((const float *)row + c);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + c));
    if (ty == DT_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* dst[0..8) = scale * (q . rows[j]) for 8 keys: one accumulator per key over head_dim, then the
 * same horizontal tree ((x0+x1)+(x2+x3))+((x4+x5)+(x6+x7)) for every key. */
static inline __attribute__((always_inline)) void
scores8(dtype_t ty, const float *q, const void *const *r, int hd, __m256 scale, float *dst) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    const void *r0 = r[0], *r1 = r[1], *r2 = r[2], *r3 = r[3], *r4 = r[4], *r5 = r[5], *r6 = r[6],
               *r7 = r[7];
    for (int c = 0; c < hd; c += 8) {
        __m256 qc = _mm256_loadu_ps(q + c);
        a0 = _mm256_fmadd_ps(qc, row8(ty, r0, c), a0);
        a1 = _mm256_fmadd_ps(qc, row8(ty, r1, c), a1);
        a2 = _mm256_fmadd_ps(qc, row8(ty, r2, c), a2);
        a3 = _mm256_fmadd_ps(qc, row8(ty, r3, c), a3);
        a4 = _mm256_fmadd_ps(qc, row8(ty, r4, c), a4);
        a5 = _mm256_fmadd_ps(qc, row8(ty, r5, c), a5);
        a6 = _mm256_fmadd_ps(qc, row8(ty, r6, c), a6);
        a7 = _mm256_fmadd_ps(qc, row8(ty, r7, c), a7);
    }
    __m256 t0 = _mm256_hadd_ps(a0, a1), t1 = _mm256_hadd_ps(a2, a3);
    __m256 t2 = _mm256_hadd_ps(a4, a5), t3 = _mm256_hadd_ps(a6, a7);
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    __m256 s =
        _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
    _mm256_storeu_ps(dst, _mm256_mul_ps(s, scale));
}

/* o[0..8*nv) += sum over keys j in [a, b] of w[j] * rows[j][off..], one FMA chain per element in
 * ascending j (nv = 8 or 1 vectors kept in registers). */
static inline __attribute__((always_inline)) void
pv8(dtype_t ty, float *o, const float *w, const void *const *rows, int a, int b, int off) {
    __m256 o0 = _mm256_loadu_ps(o), o1 = _mm256_loadu_ps(o + 8), o2 = _mm256_loadu_ps(o + 16),
           o3 = _mm256_loadu_ps(o + 24), o4 = _mm256_loadu_ps(o + 32), o5 = _mm256_loadu_ps(o + 40),
           o6 = _mm256_loadu_ps(o + 48), o7 = _mm256_loadu_ps(o + 56);
    for (int j = a; j <= b; j++) {
        __m256 wj = _mm256_broadcast_ss(w + j);
        const void *v = rows[j];
        o0 = _mm256_fmadd_ps(wj, row8(ty, v, off), o0);
        o1 = _mm256_fmadd_ps(wj, row8(ty, v, off + 8), o1);
        o2 = _mm256_fmadd_ps(wj, row8(ty, v, off + 16), o2);
        o3 = _mm256_fmadd_ps(wj, row8(ty, v, off + 24), o3);
        o4 = _mm256_fmadd_ps(wj, row8(ty, v, off + 32), o4);
        o5 = _mm256_fmadd_ps(wj, row8(ty, v, off + 40), o5);
        o6 = _mm256_fmadd_ps(wj, row8(ty, v, off + 48), o6);
        o7 = _mm256_fmadd_ps(wj, row8(ty, v, off + 56), o7);
    }
    _mm256_storeu_ps(o, o0), _mm256_storeu_ps(o + 8, o1), _mm256_storeu_ps(o + 16, o2);
    _mm256_storeu_ps(o + 24, o3), _mm256_storeu_ps(o + 32, o4), _mm256_storeu_ps(o + 40, o5);
    _mm256_storeu_ps(o + 48, o6), _mm256_storeu_ps(o + 56, o7);
}

static inline __attribute__((always_inline)) void
pv1(dtype_t ty, float *o, const float *w, const void *const *rows, int a, int b, int off) {
    __m256 o0 = _mm256_loadu_ps(o);
    for (int j = a; j <= b; j++)
        o0 = _mm256_fmadd_ps(_mm256_broadcast_ss(w + j), row8(ty, rows[j], off), o0);
    _mm256_storeu_ps(o, o0);
}

/* The three row types, each with its own constant-typed copy of the loops. */
#define ROW_TYPES(call)                                                                            \
    do {                                                                                           \
        if (ty == DT_F32)                                                                          \
            call(DT_F32);                                                                          \
        else if (ty == DT_F16)                                                                     \
            call(DT_F16);                                                                          \
        else                                                                                       \
            call(DT_BF16);                                                                         \
    } while (0)

static void scores8_any(dtype_t ty, const float *q, const void *const *r, int hd, __m256 scale,
                        float *dst) {
#define CALL(T) scores8(T, q, r, hd, scale, dst)
    ROW_TYPES(CALL);
#undef CALL
}

static void pv8_any(dtype_t ty, float *o, const float *w, const void *const *rows, int a, int b,
                    int off) {
#define CALL(T) pv8(T, o, w, rows, a, b, off)
    ROW_TYPES(CALL);
#undef CALL
}

static void pv1_any(dtype_t ty, float *o, const float *w, const void *const *rows, int a, int b,
                    int off) {
#define CALL(T) pv1(T, o, w, rows, a, b, off)
    ROW_TYPES(CALL);
#undef CALL
}

/* Softmax of one query head's scores s[0..n) in place (unnormalised: exp(s - max)); returns
 * 1 / sum. s has at least 8 writable floats past n. */
static float softmax_row(float *s, int64_t n) {
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(s + i));
    float m = hmax256(vmax);
    for (; i < n; i++)
        m = s[i] > m ? s[i] : m;
    __m256 vm = _mm256_set1_ps(m), sum = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = simd_exp256(_mm256_sub_ps(_mm256_loadu_ps(s + i), vm));
        _mm256_storeu_ps(s + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (i < n) {
        /* the tail as one more 8-lane step, lanes past n masked out of the sum */
        __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        __m256 keep =
            _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - i)), lane));
        __m256 e = simd_exp256(_mm256_sub_ps(_mm256_loadu_ps(s + i), vm));
        _mm256_storeu_ps(s + i, e);
        sum = _mm256_add_ps(sum, _mm256_and_ps(e, keep));
    }
    return 1.0f / simd_hsum256(sum);
}

void ops_attn_tile_avx2(const ops_attn_tile *t, float *work) {
    int hd = t->head_dim, group = t->group, nq = t->nq, kb = block_keys(hd);
    int64_t kbase = t->first[0], span = t->last[nq - 1] - kbase + 1;
    int64_t stride = score_stride(span);
    float *S = work;
    float *buf = S + (size_t)nq * group * (size_t)stride;
    float *zero = buf + (size_t)kb * hd;
    float *inv = zero + hd; /* 1 / sum of each query head's exp */
    memset(zero, 0, (size_t)hd * sizeof(float));
    const void *rows[256 + 8];
    /* one query token reads the cache rows as they are (load_block) */
    const bool direct = nq == 1 && t->kv_type != DT_F32;
    const dtype_t ty = direct ? t->kv_type : DT_F32;
    __m256 scale = _mm256_set1_ps(t->scale);

    /* pass 1: scores, key block by key block, each block shared by every query head */
    for (int64_t p0 = kbase; p0 <= t->last[nq - 1]; p0 += kb) {
        int n = (int)(t->last[nq - 1] - p0 + 1 < kb ? t->last[nq - 1] - p0 + 1 : kb);
        load_block(t, t->k, p0, n, buf, zero, rows, direct);
        for (int i = 0; i < nq; i++) {
            int64_t a = t->first[i] > p0 ? t->first[i] : p0;
            int64_t b = t->last[i] < p0 + n - 1 ? t->last[i] : p0 + n - 1;
            for (int g = 0; g < group; g++) {
                const float *q = t->q + i * t->q_stride + (int64_t)g * hd;
                float *srow = S + ((size_t)i * group + g) * (size_t)stride;
                for (int64_t j = a; j <= b; j += 8)
                    scores8_any(ty, q, rows + (j - p0), hd, scale, srow + (j - kbase));
            }
        }
    }

    /* softmax of each query head over its own keys */
    for (int i = 0; i < nq; i++)
        for (int g = 0; g < group; g++) {
            float *srow = S + ((size_t)i * group + g) * (size_t)stride;
            inv[i * group + g] =
                softmax_row(srow + (t->first[i] - kbase), t->last[i] - t->first[i] + 1);
            memset(t->out + i * t->q_stride + (int64_t)g * hd, 0, (size_t)hd * sizeof(float));
        }

    /* pass 2: out = sum_j exp_j * V_j in ascending j, block by block, then scaled by 1/sum */
    for (int64_t p0 = kbase; p0 <= t->last[nq - 1]; p0 += kb) {
        int n = (int)(t->last[nq - 1] - p0 + 1 < kb ? t->last[nq - 1] - p0 + 1 : kb);
        load_block(t, t->v, p0, n, buf, zero, rows, direct);
        for (int i = 0; i < nq; i++) {
            int64_t a = t->first[i] > p0 ? t->first[i] : p0;
            int64_t b = t->last[i] < p0 + n - 1 ? t->last[i] : p0 + n - 1;
            if (a > b) continue;
            for (int g = 0; g < group; g++) {
                const float *w = S + ((size_t)i * group + g) * (size_t)stride + (p0 - kbase);
                float *o = t->out + i * t->q_stride + (int64_t)g * hd;
                int c = 0;
                for (; c + 64 <= hd; c += 64)
                    pv8_any(ty, o + c, w, rows, (int)(a - p0), (int)(b - p0), c);
                for (; c < hd; c += 8)
                    pv1_any(ty, o + c, w, rows, (int)(a - p0), (int)(b - p0), c);
            }
        }
    }
    for (int i = 0; i < nq; i++)
        for (int g = 0; g < group; g++) {
            float *o = t->out + i * t->q_stride + (int64_t)g * hd;
            __m256 r = _mm256_set1_ps(inv[i * group + g]);
            for (int c = 0; c < hd; c += 8)
                _mm256_storeu_ps(o + c, _mm256_mul_ps(_mm256_loadu_ps(o + c), r));
        }
}
