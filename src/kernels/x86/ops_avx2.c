/* AVX2 element-wise ops (see ops_x86.h): the conversion used when storing rows into an fp16
 * KV cache (its tail shorter than 8 runs in scalar code with the same rounding, to nearest
 * even), and the SiLU gate of the MLP, which spent most of its time in scalar expf. */
#include <immintrin.h>
#include <string.h>

#include "base/fp16.h"
#include "kernels/x86/ops_x86.h"
#include "kernels/x86/simd_avx2.h"

void ops_f32_to_f16_avx2(const float *x, uint16_t *y, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        y[i] = fp32_to_fp16(x[i]);
}

static inline __m256 silu_mul8(__m256 g, __m256 u) {
    __m256 e = simd_exp256(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

void ops_silu_mul_avx2(float *gate, const float *up, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(gate + i, silu_mul8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < n) {
        float g[8] = {0}, u[8] = {0};
        memcpy(g, gate + i, (size_t)(n - i) * sizeof(float));
        memcpy(u, up + i, (size_t)(n - i) * sizeof(float));
        _mm256_storeu_ps(g, silu_mul8(_mm256_loadu_ps(g), _mm256_loadu_ps(u)));
        memcpy(gate + i, g, (size_t)(n - i) * sizeof(float));
    }
}
