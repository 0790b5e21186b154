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

/* Scalar reference for tests: the same product in plain double-accumulated C from the
 * dequantized weight (kernels/quant.h). */
void kern_matmul_ref(const tensor_view *W, const float *X, int64_t T, float *Y);

#endif
