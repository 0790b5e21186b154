/* Matrix multiplication of a weight by activations, the op that dominates a forward pass:
 *   Y[t][o] = sum_i W[o][i] * X[t][i]      for t < T, o < W.ne[1], i < W.ne[0]
 * W is a weight in any supported dtype (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K,
 * Q5_K, Q6_K, and I8 with per-row scales for w8a8_int8); X and Y are float32, row-major.
 * Quantized weights multiply activations quantized on the fly (per block, as the weight's dot
 * product needs), using integer dot products where they win.
 *
 * Batch-invariant: Y[t] depends only on X[t] and W, bit for bit, whatever T is and whatever the
 * other rows hold; the path (ISA) is fixed by be->isa. Multi-threaded over be->tp. */
#ifndef SGLC_KERNELS_MATMUL_H
#define SGLC_KERNELS_MATMUL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/tensor.h"
#include "kernels/backend.h"

/* w8a8_int8 weight: int8 [out][in] with one float scale per output row (symmetric). */
typedef struct {
    const int8_t *q;
    const float *scale;
    int64_t n_in, n_out;
} w8a8_weight;

/* True when kern_matmul supports W's dtype. */
bool kern_matmul_supports(dtype_t type);
/* Returns 0, or -1 if W's dtype is unsupported or scratch memory ran out. */
int kern_matmul(backend *be, const tensor_view *W, const float *X, int64_t T, float *Y);
int kern_matmul_w8a8(backend *be, const w8a8_weight *W, const float *X, int64_t T, float *Y);

/* Quantizes rows of float weights to w8a8 (per-row absmax / 127, round to nearest). */
void kern_quantize_w8a8_row(const float *w, int64_t n, int8_t *q, float *scale);

/* ---- Repacked layouts ----
 * Weights whose rows are interleaved in panels, so the kernel runs an outer product (a panel's
 * rows in the vector lanes, a few broadcast tokens) with no horizontal sums:
 * - TL_PANEL16, BF16: panel p holds rows [16p, 16p + 16) as K steps of 16 values; step k keeps
 *   row j at k * 16 + (j < 8 ? 2j : 2(j - 8) + 1), so each 32-bit lane holds rows j and j + 8
 *   and a shift and a mask widen the step to two vectors of 8 floats. Per output:
 *     acc = 0; for k: acc = fma(W[o][k], X[t][k], acc)
 * - TL_PANEL8, Q8_0: panel p holds rows [8p, 8p + 8) block by block; block b is the 8 rows'
 *   fp16 scales, then 8 groups of 32 bytes, group g holding row j's values 4g..4g+3 at 4j, so
 *   one 32-bit lane is one row. With activations quantized per block of 32 (quant_act), per
 *   output:
 *     acc = 0; for b: acc = fma(float(sum_k q_w * q_x), d_w * d_x, acc)
 * - TL_PANEL8, Q4_1: block b is the 8 rows' fp16 d, their fp16 m, then 4 chunks of 32 bytes,
 *   chunk c holding row j's qs[4c..4c+3] at 4j (low nibbles: values 4c.., high: 16+4c..):
 *     acc = macc = 0; for b: acc = fma(float(sum_k u_w * q_x), d_w * d_x, acc),
 *     macc = fma(m_w, s_x, macc); y = acc + macc
 * Either is the same sequence on every path and in every tile (the scalar path gives the same
 * bits). A packed weight has the row layout's size.
 * True when W can be repacked: 2-D BF16 with n_out % 16 == 0 or Q8_0 / Q4_1 with n_out % 8 == 0, on a
 * CPU whose matmul has a kernel for the layout (x86 with AVX2). */
bool kern_matmul_packable(const tensor_view *W);
/* Rows of one panel of a layout (16, 8; 1 for TL_ROWS). */
static inline int64_t kern_matmul_panel_rows(tensor_layout layout) {
    return layout == TL_PANEL16 ? 16 : layout == TL_PANEL8 ? 8 : 1;
}
/* The layout kern_matmul_pack gives W's type (TL_ROWS when none). */
tensor_layout kern_matmul_pack_layout(dtype_t type);
/* Writes W (TL_ROWS) repacked into dst (W->nbytes bytes, not overlapping). */
void kern_matmul_pack(const tensor_view *W, void *dst);
/* Row o of a packed weight as floats (the reference, the embedding lookup and tests). */
void kern_matmul_panel_row(const tensor_view *W, int64_t o, float *out);

/* Scalar reference for tests: the same product in plain double-accumulated C from the
 * dequantized weight (kernels/quant.h). */
void kern_matmul_ref(const tensor_view *W, const float *X, int64_t T, float *Y);

/* ---- Internal to kernels/: the interface between the driver (matmul.c) and the per-ISA
 * micro-kernels (x86/matmul_avx2.c, x86/matmul_avx512.c, arm/matmul_neon.c). The driver
 * quantizes X once, splits output rows between threads and calls a path's `rows` function on
 * blocks of rows x tokens; every path computes each Y[t][o] with one fixed sequence of
 * operations, whatever block it falls in. */
typedef struct {
    dtype_t type;          /* weight type; DT_I8 for w8a8 */
    const uint8_t *w;      /* weight row o starts at w + o * w_stride */
    size_t w_stride;
    const float *w_scale;  /* w8a8: per-row scales */
    int64_t n_in;          /* K */
    const void *x;         /* token t starts at (const char *)x + t * x_stride: float rows for
                              F32/F16/BF16, quant_act rows for legacy types, int8 for w8a8 */
    size_t x_stride;
    const float *x_scale;  /* w8a8: per-token scales */
    float *y;              /* Y[t][o] = y[t * ldy + o] */
    int64_t ldy;
} kern_mm_args;
/* Packed layouts: w points at panel 0; r0 and r1 are multiples of the panel's rows. */

typedef void (*kern_mm_rows_fn)(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0,
                                int64_t t1);
typedef void (*kern_mm_act_fn)(const float *x, void *row, int64_t n);

void kern_mm_rows_scalar(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0, int64_t t1);
void kern_mm_panel_scalar(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0, int64_t t1);
void kern_mm_panel8_scalar(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0,
                           int64_t t1);
#if defined(__x86_64__)
void kern_mm_panel_avx2(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0, int64_t t1);
void kern_mm_panel_q8_avx2(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0,
                           int64_t t1);
void kern_mm_panel_q4_1_avx2(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0,
                             int64_t t1);
void kern_mm_rows_avx2(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0, int64_t t1);
void kern_mm_act_avx2(const float *x, void *row, int64_t n);
void kern_mm_rows_avx512(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0,
                         int64_t t1);
#endif
#if defined(__aarch64__)
void kern_mm_rows_neon(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0, int64_t t1);
#endif

#endif
