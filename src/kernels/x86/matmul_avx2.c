/* The AVX2 + FMA + F16C matmul path: 2 weight rows x 4 tokens per register tile (8 float
 * accumulators of 8 lanes, the most that 16 ymm registers hold next to the operands), and
 * 4 rows x 1 token when a call has one token (decode: four weight streams in flight), integer
 * dot products through vpmaddubsw + vpmaddwd. The kernels themselves are in
 * x86/matmul_tiles.h, shared with the AVX-512 path. */
#include <immintrin.h>
#include <string.h>

#include "base/fp16.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"

static inline __m256i avx2_dot_u8(__m256i w, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
}

#define MM_R 2
#define MM_R1 4
#define MM_T 4
#define MM_NAME(x) avx2_##x
#define MM_DOT_U8(w, x) avx2_dot_u8(w, x)
#include "kernels/x86/matmul_tiles.h"

void kern_mm_rows_avx2(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
    avx2_rows(a, r0, r1, t0, t1);
}

/* quant_act_row_scalar's encoding, 32 values at a time; the same float operations (absmax,
 * 127 / amax, round half to even), so the same bytes. */
void kern_mm_act_avx2(const float *x, void *row, int64_t n) {
    int8_t *qs = row;
    float *d = (float *)((char *)row + n), *s = d + n / QUANT_QK;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < n / QUANT_QK; b++) {
        const float *xb = x + b * QUANT_QK;
        __m256 v[4];
        __m256 amax = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
        }
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        float am = _mm_cvtss_f32(m);
        float db = am / 127.0f;
        float id = db != 0.0f ? 127.0f / am : 0.0f;
        __m256 idv = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++)
            q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], idv),
                                                      _MM_FROUND_TO_NEAREST_INT |
                                                          _MM_FROUND_NO_EXC));
        __m256i sum = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]),
                                       _mm256_packs_epi32(q[2], q[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(qs + b * QUANT_QK), p);
        /* half-precision scales, as in quant_act_row_scalar */
        d[b] = fp16_to_fp32(fp32_to_fp16(db));
        s[b] = fp16_to_fp32(fp32_to_fp16(db * (float)_mm_cvtsi128_si32(s4)));
    }
}
