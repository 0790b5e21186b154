/* K-quant weight formats (GGML's Q4_K, Q5_K, Q6_K, as stored in GGUF files) and the dot products
 * the CPU matmul runs on them. A weight row is a sequence of 256-element "super-blocks" in the
 * on-disk layout, used in place (mmapped, never repacked); activations are quantized per row to
 * block_q8_K (int8 with one float scale per 256 values and the sums of each 16) so that the dot
 * product runs in integer arithmetic, with one float multiply-add per super-block (and one more
 * for the mins of Q4_K/Q5_K).
 *
 * Promises: pure functions of their arguments, no allocation, no global state; safe to call from
 * any number of threads at once. n must be a multiple of 256 and the caller passes buffers of
 * the right size (these are hot-loop kernels: the matmul driver checks shapes once, up front).
 * Determinism: for a given isa path, kq_vec_dot's result depends only on its two rows, and
 * kq_vec_dot_tile returns for each pair exactly (bit for bit) what kq_vec_dot returns for it.
 * Different isa paths agree to float rounding (a few 1e-7 of the summed terms' magnitude), not
 * bit for bit. Weight codes, scales and activations may be any bit pattern: integer sums cannot
 * overflow or saturate. */
#ifndef SGLC_KERNELS_KQUANTS_H
#define SGLC_KERNELS_KQUANTS_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cpu.h"
#include "base/dtype.h"

#define KQ_QK_K 256      /* elements of a super-block */
#define KQ_SCALE_SIZE 12 /* bytes of packed 6-bit scales and mins in Q4_K / Q5_K */

/* Q4_K: y = d * sc[j] * q - dmin * m[j], q in 0..15, for 8 sub-blocks j of 32 values; sc and m
 * are 6-bit, packed in `scales`. Sub-block 2i takes the low nibbles of qs[32i..32i+31], sub-block
 * 2i+1 their high nibbles. */
typedef struct {
    uint16_t d;    /* f16 */
    uint16_t dmin; /* f16 */
    uint8_t scales[KQ_SCALE_SIZE];
    uint8_t qs[KQ_QK_K / 2];
} kq_block_q4_K;
static_assert(sizeof(kq_block_q4_K) == 144, "Q4_K block is 144 bytes");

/* Q5_K: Q4_K plus a fifth bit per value: bit j of qh[l] is bit 4 of value l of sub-block j. */
typedef struct {
    uint16_t d;    /* f16 */
    uint16_t dmin; /* f16 */
    uint8_t scales[KQ_SCALE_SIZE];
    uint8_t qh[KQ_QK_K / 8];
    uint8_t qs[KQ_QK_K / 2];
} kq_block_q5_K;
static_assert(sizeof(kq_block_q5_K) == 176, "Q5_K block is 176 bytes");

/* Q6_K: y = d * scales[i / 16] * (q - 32), q in 0..63: four low bits in ql, two high bits in qh,
 * interleaved in two halves of 128 values (see kq_dequant_row's reference code). */
typedef struct {
    uint8_t ql[KQ_QK_K / 2];
    uint8_t qh[KQ_QK_K / 4];
    int8_t scales[KQ_QK_K / 16];
    uint16_t d; /* f16 */
} kq_block_q6_K;
static_assert(sizeof(kq_block_q6_K) == 210, "Q6_K block is 210 bytes");

/* Activations: x[i] ~= d * qs[i], qs in -127..127; bsums[k] = sum of qs[16k..16k+15]. */
typedef struct {
    float d;
    int8_t qs[KQ_QK_K];
    int16_t bsums[KQ_QK_K / 16];
} block_q8_K;
static_assert(sizeof(block_q8_K) == 292, "Q8_K block is 292 bytes");

/* Decodes the 6-bit scale and min of sub-block j (0..7) from a Q4_K/Q5_K `scales` field. */
static inline void kq_scale_min(const uint8_t *scales, int j, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = (uint8_t)((scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4));
        *m = (uint8_t)((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
    }
}

/* Quantizes n floats (n % 256 == 0) as GGML's reference does: per block, max = the value of
 * largest magnitude (sign kept, first one on ties), iscale = -127 / max, qs = round-to-nearest-
 * even(iscale * x) capped at 127, d = 1 / iscale; an all-zero block gets d = 0, qs = 0. */
void kq_quantize_row_q8_K(const float *x, block_q8_K *y, int64_t n);

/* Decodes n values (n % 256 == 0) of a Q4_K, Q5_K or Q6_K row, exactly as GGML's reference does
 * (float32, no fused multiply-add). Other types leave dst untouched. */
void kq_dequant_row(dtype_t type, const void *src, float *dst, int64_t n);

/* Dot product of one weight row (type Q4_K, Q5_K or Q6_K) of n values with one activation row
 * of n / 256 q8_K blocks. isa selects the path: the best one implemented at or below it that
 * the CPU supports (ISA_SCALAR always; ISA_AVX2 on x86-64; ISA_AVX512 runs the AVX2 path).
 * Returns 0 for other types. */
float kq_vec_dot(dtype_t type, int64_t n, const void *w_row, const block_q8_K *x, isa_level isa);

/* The same dot product for a tile of nr weight rows by nt activation rows (1 <= nr, nt <= 4),
 * for prefill, where each weight block is loaded once per tile instead of once per token:
 *   weight row r   starts at (const char *)w_rows + r * w_stride     (w_stride in bytes)
 *   activation t   starts at x + t * x_stride_blocks                  (stride in q8_K blocks)
 *   out[t * out_stride + r] = kq_vec_dot(type, n, row r, activation t, isa)   bit for bit.
 * The output layout is Y's (token-major), so the driver passes &Y[t0][o0] and Y's row length. */
void kq_vec_dot_tile(dtype_t type, int64_t n, const void *w_rows, size_t w_stride, int nr,
                     const block_q8_K *x, size_t x_stride_blocks, int nt, float *out,
                     int out_stride, isa_level isa);

/* Per-path entry points behind the two functions above (tests and benchmarks call them
 * directly; everyone else goes through kq_vec_dot / kq_vec_dot_tile, which check the CPU). */
float kq_vec_dot_scalar(dtype_t type, int64_t n, const void *w_row, const block_q8_K *x);
#if defined(__x86_64__)
float kq_vec_dot_avx2(dtype_t type, int64_t n, const void *w_row, const block_q8_K *x);
void kq_vec_dot_tile_avx2(dtype_t type, int64_t n, const void *w_rows, size_t w_stride, int nr,
                          const block_q8_K *x, size_t x_stride_blocks, int nt, float *out,
                          int out_stride);
#endif

#endif
