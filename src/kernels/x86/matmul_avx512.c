/* The AVX-512 matmul path. It runs the kernels of x86/matmul_tiles.h on 256-bit vectors but
 * with 4 weight rows x 4 tokens per register tile (16 accumulators; AVX-512VL gives 32 ymm
 * registers), and with VNNI's vpdpbusd for the integer dot products where the CPU has it
 * (one instruction instead of vpmaddubsw + vpmaddwd). Compiled on every x86-64 build; run
 * only where cpu_get() reports AVX-512. */
#include <immintrin.h>
#include <string.h>

#include "base/cpu.h"
#include "base/fp16.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"

static inline __m256i avx512_dot_u8(__m256i w, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
}
static inline __m256i avx512vnni_dot_u8(__m256i w, __m256i x) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x);
}

#define MM_R 4
#define MM_T 4
#define MM_NAME(x) avx512_##x
#define MM_DOT_U8(w, x) avx512_dot_u8(w, x)
#include "kernels/x86/matmul_tiles.h"
#undef MM_NAME
#undef MM_DOT_U8

#define MM_NAME(x) avx512vnni_##x
#define MM_DOT_U8(w, x) avx512vnni_dot_u8(w, x)
#include "kernels/x86/matmul_tiles.h"

void kern_mm_rows_avx512(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0,
                         int64_t t1) {
    if (cpu_get()->avx512vnni)
        avx512vnni_rows(a, r0, r1, t0, t1);
    else
        avx512_rows(a, r0, r1, t0, t1);
}
