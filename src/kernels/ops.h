/* The element-wise and attention ops of a transformer forward pass (matmul is in matmul.h).
 * All take the backend; activations are float32 row-major [T][n]. Each op computes a token's
 * row from that token's inputs alone, with an operation order that does not depend on T, so
 * the forward pass stays batch-invariant. */
#ifndef SGLC_KERNELS_OPS_H
#define SGLC_KERNELS_OPS_H

#include <stdint.h>

#include "base/tensor.h"
#include "kernels/backend.h"

/* y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w   (y may alias x) */
void kern_rmsnorm(backend *be, const float *x, const float *w, float *y, int64_t T, int64_t n,
                  float eps);

/* Rotary position embedding, in place on x [T][n_heads*head_dim], rotating the first rope_dim
 * dims of each head by angle pos[t] * inv_freq[i]. neox: pairs (i, i+rope_dim/2), else (2i, 2i+1). */
typedef struct {
    int head_dim, rope_dim;
    int neox;
    float inv_freq[512]; /* rope_dim/2 entries */
} rope_table;
/* Fills inv_freq = theta^(-2i/rope_dim), rescaled as Llama 3.1's "llama3" rope_scaling does
 * when llama3_factor > 0. */
void kern_rope_init(rope_table *rt, int head_dim, int rope_dim, int neox, float theta,
                    float llama3_factor, float low_freq_factor, float high_freq_factor,
                    int original_context);
void kern_rope(backend *be, const rope_table *rt, float *x, int64_t T, int n_heads,
               const int32_t *pos);

/* gate[t] = silu(gate[t]) * up[t]  over n elements per row */
void kern_silu_mul(backend *be, float *gate, const float *up, int64_t T, int64_t n);
/* y += x, n elements */
void kern_add(float *y, const float *x, int64_t n);
/* y[t] += b for each row t (bias) */
void kern_add_bias(float *y, const float *b, int64_t T, int64_t n);

/* Embedding lookup: out[t] = dequantized row ids[t] of table (ne[0] = dim, ne[1] = rows).
 * Returns -1 if an id is out of range or the type cannot be read. */
int kern_get_rows(backend *be, const tensor_view *table, const int32_t *ids, int64_t T,
                  float *out);

/* KV cache of one layer: n_slots rows of n_kv_heads*head_dim values, F32, F16 or BF16. */
typedef struct {
    dtype_t type;
    void *k, *v;
    int64_t n_slots;
    int row_elems; /* n_kv_heads * head_dim */
} kv_layer;

/* Writes the rows k[t], v[t] (float) into slot slots[t]. */
void kern_kv_store(backend *be, const kv_layer *kv, const float *k, const float *v, int64_t T,
                   const int32_t *slots);

/* Which keys each new token sees: token t belongs to sequence seq[t] at position pos[t] and
 * attends to positions [max(0, pos[t]-window+1), pos[t]] of that sequence, whose slots are
 * seq_slots[seq[t]][p]. window <= 0 means no sliding window. */
typedef struct {
    const int32_t *pos;
    const int32_t *seq;
    const int32_t *const *seq_slots;
    int window;
} attn_batch;

/* out[t][h] = softmax(q[t][h] . K^T * scale) V over the token's visible keys, with grouped-
 * query heads (head h reads kv head h / (n_heads / n_kv_heads)). Returns -1 on scratch OOM. */
int kern_attention(backend *be, const kv_layer *kv, const float *q, int64_t T, int n_heads,
                   int n_kv_heads, int head_dim, float scale, const attn_batch *ab, float *out);

/* Scalar vector helpers that the ISA-specific files also provide (x86/ops_avx2.c). */
float ops_dot_f32_scalar(const float *a, const float *b, int n);
void ops_axpy_f32_scalar(float *y, float a, const float *x, int n);

#endif
