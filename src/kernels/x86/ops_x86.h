/* Vector code of the ops for x86-64, compiled with AVX2+FMA+F16C (ops_avx2.c,
 * attn_avx2.c) and called only when cpu_get() says the CPU has them.
 *
 * Batch invariance: every sum has an order fixed by the query token alone (its own visible key
 * range and head_dim), never by which other tokens share its tile or batch, so a token's result
 * is bit-identical however the batch is cut into tiles. */
#ifndef SGLC_KERNELS_X86_OPS_X86_H
#define SGLC_KERNELS_X86_OPS_X86_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"

void ops_f32_to_f16_avx2(const float *x, uint16_t *y, int n);
/* gate[i] = silu(gate[i]) * up[i] for i < n, with simd_exp256; a tail shorter than 8 runs
 * through the same vector code, so each element's result depends on its inputs alone. */
void ops_silu_mul_avx2(float *gate, const float *up, long n);

/* A tile of attention work: nq consecutive query tokens of one sequence (positions ascending)
 * and the `group` query heads that share one kv head. Query i, head g is the row
 * q + i*q_stride + g*head_dim (out likewise) and sees the key positions [first[i], last[i]],
 * whose cache slots are slots[p]. first[] and last[] must be non-decreasing in i. */
typedef struct {
    const float *q;
    float *out;
    int64_t q_stride;
    int nq, group, head_dim;
    float scale;
    const int32_t *first, *last;
    const int32_t *slots;
    dtype_t kv_type;        /* DT_F32, DT_F16 or DT_BF16 */
    const void *k, *v;      /* cache bases */
    int64_t row_elems;      /* elements per cache row (all kv heads) */
    int64_t head_off;       /* element offset of this tile's kv head in a row */
} ops_attn_tile;

/* Floats of work memory ops_attn_tile_avx2 needs for a tile of nq tokens whose keys span
 * `span` positions (last[nq-1] - first[0] + 1). head_dim must be a multiple of 8. */
size_t ops_attn_tile_work_avx2(int nq, int group, int head_dim, int64_t span);
/* Computes the tile's output; work holds ops_attn_tile_work_avx2() floats, 32-byte aligned. */
void ops_attn_tile_avx2(const ops_attn_tile *t, float *work);

#endif
