/* GGML's "legacy" quantized block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), laid out byte for
 * byte as GGUF files store them, with scalar decoders for every readable weight type and
 * scalar encoders for the legacy ones (test weights, model conversion). Also the layout of the
 * activations the matmul kernels quantize on the fly (quant_act_*), shared by every ISA path.
 *
 * Promises: pure functions of their arguments, no allocation, no global state; thread-safe.
 * n must be a multiple of the type's block (dtype_block_elems); callers check shapes. */
#ifndef SGLC_KERNELS_QUANT_H
#define SGLC_KERNELS_QUANT_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"

#define QUANT_QK 32 /* elements of a legacy block */

/* In every 4- and 5-bit block, qs[j] holds element j in its low nibble and element j + 16 in
 * its high nibble; in Q5 blocks bit j of the little-endian u32 qh is bit 4 of element j. */
typedef struct {
    uint16_t d; /* f16: x = d * (q - 8) */
    uint8_t qs[QUANT_QK / 2];
} block_q4_0;
static_assert(sizeof(block_q4_0) == 18, "Q4_0 block is 18 bytes");

typedef struct {
    uint16_t d, m; /* f16: x = d * q + m */
    uint8_t qs[QUANT_QK / 2];
} block_q4_1;
static_assert(sizeof(block_q4_1) == 20, "Q4_1 block is 20 bytes");

typedef struct {
    uint16_t d; /* f16: x = d * (q - 16) */
    uint8_t qh[4];
    uint8_t qs[QUANT_QK / 2];
} block_q5_0;
static_assert(sizeof(block_q5_0) == 22, "Q5_0 block is 22 bytes");

typedef struct {
    uint16_t d, m; /* f16: x = d * q + m */
    uint8_t qh[4];
    uint8_t qs[QUANT_QK / 2];
} block_q5_1;
static_assert(sizeof(block_q5_1) == 24, "Q5_1 block is 24 bytes");

typedef struct {
    uint16_t d; /* f16: x = d * q */
    int8_t qs[QUANT_QK];
} block_q8_0;
static_assert(sizeof(block_q8_0) == 34, "Q8_0 block is 34 bytes");

/* True for the types quant_dequant_row decodes: F32, F16, BF16, the legacy types and Q4_K,
 * Q5_K, Q6_K. */
bool quant_can_dequant(dtype_t type);
/* Decodes n values of one row. Types quant_can_dequant refuses leave dst zero-filled. */
void quant_dequant_row(dtype_t type, const void *src, float *dst, int64_t n);
/* Encodes n floats as GGML's reference quantizers do (F32, F16, BF16 too). Returns 0, or -1
 * for a type it cannot write or n not a multiple of the block. */
int quant_quantize_row(dtype_t type, const float *src, void *dst, int64_t n);

/* Activations quantized per 32-block for the legacy types: x[i] ~= d[b] * qs[i], |qs| <= 127,
 * d[b] = absmax / 127, and s[b] = d[b] * sum(qs of block b) (GGML's q8_1 "s", which turns the
 * min of Q4_1/Q5_1, and the offset of Q4_0/Q5_0, into one multiply-add per block).
 * One row of n (n % 32 == 0) is stored at a 64-byte-aligned stride:
 *   int8 qs[n] | float d[n/32] | float s[n/32] */
static inline size_t quant_act_stride(int64_t n) {
    size_t bytes = (size_t)n + 8 * (size_t)(n / QUANT_QK);
    return (bytes + 63) & ~(size_t)63;
}
static inline const float *quant_act_d(const void *row, int64_t n) {
    return (const float *)((const char *)row + n);
}
static inline const float *quant_act_s(const void *row, int64_t n) {
    return (const float *)((const char *)row + n) + n / QUANT_QK;
}
/* The scalar encoder of that layout (each ISA path has its own, equal to rounding). */
void quant_act_row_scalar(const float *x, void *row, int64_t n);

/* Activations for w8a8: one symmetric scale per row, d = absmax / 127, q = round(x / d). */
void quant_act_i8_row_scalar(const float *x, int8_t *q, float *d, int64_t n);

/* Round to nearest, ties to even, for |v| < 2^22 without a library call. */
static inline float quant_round(float v) {
    const float magic = 12582912.0f; /* 1.5 * 2^23; exact without -ffast-math */
    float r = v + magic;
    return r - magic;
}

#endif
