/* Small AVX2 helpers shared by the x86 kernel files (include only from files compiled with
 * -mavx2). The order of every sum is fixed here, once, so kernels that must agree bit for bit
 * agree. */
#ifndef SGLC_KERNELS_X86_SIMD_AVX2_H
#define SGLC_KERNELS_X86_SIMD_AVX2_H

#include <immintrin.h>

/* The sum of v's 8 lanes: the halves added, then pairs, then the last two. */
static inline float simd_hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

#endif
