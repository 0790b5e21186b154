/* AVX2 conversion used when storing rows into an fp16 KV cache (see ops_x86.h). The tail
 * shorter than 8 runs in scalar code with the same rounding (to nearest even). */
#include <immintrin.h>

#include "base/fp16.h"
#include "kernels/x86/ops_x86.h"

void ops_f32_to_f16_avx2(const float *x, uint16_t *y, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = fp32_to_fp16(x[i]);
}
