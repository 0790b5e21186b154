/* The panel layouts of weights (kernels/matmul.h: TL_PANEL16 for BF16, TL_PANEL8 for Q8_0):
 * repacking into them, reading a row back, and their scalar paths. Prefill and batched decode
 * spend most of their time in matmuls; in the file's row layout each output is a dot product
 * whose partial sums are folded at the end, with its scale arithmetic per pair of rows and
 * tokens. In panels, one load gives a step of a whole panel's rows, which multiply a few
 * broadcast activations in an outer product: nothing to fold, and per-block scales applied
 * to 8 rows at once. */
#include <math.h>
#include <string.h>

#include "base/cpu.h"
#include "base/fp16.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"

enum { PANEL = 16, PANEL_Q8 = 8 };

/* Position of (row j of a panel, step k) within the panel. */
static inline size_t panel_index(int64_t k, int j) {
    return (size_t)k * PANEL + (size_t)(j < 8 ? 2 * j : 2 * (j - 8) + 1);
}

tensor_layout kern_matmul_pack_layout(dtype_t type) {
    return type == DT_BF16 ? TL_PANEL16 : type == DT_Q8_0 ? TL_PANEL8 : TL_ROWS;
}

bool kern_matmul_packable(const tensor_view *W) {
    if (W->layout != TL_ROWS || W->ne[2] != 1 || W->ne[3] != 1 || W->ne[0] <= 0) return false;
    if (W->type == DT_BF16 ? W->ne[1] % PANEL : W->type == DT_Q8_0 ? W->ne[1] % PANEL_Q8 : 1)
        return false;
    if (W->ne[1] <= 0 || W->ne[0] % dtype_block_elems(W->type)) return false;
#if defined(__x86_64__)
    return cpu_get()->best >= ISA_AVX2;
#else
    return false;
#endif
}

/* Q8_0 panel: for each block, 8 fp16 scales then 8 groups of 8 rows x 4 values. */
enum { Q8_GROUP_BYTES = PANEL_Q8 * 4, Q8_PANEL_BLOCK = 2 * PANEL_Q8 + 8 * Q8_GROUP_BYTES };

static void pack_q8(const tensor_view *W, uint8_t *out) {
    const int64_t nb = W->ne[0] / QUANT_QK, n_out = W->ne[1];
    const size_t row_bytes = dtype_row_bytes(DT_Q8_0, W->ne[0]);
    for (int64_t p = 0; p < n_out / PANEL_Q8; p++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *dst = out + ((size_t)p * (size_t)nb + (size_t)b) * Q8_PANEL_BLOCK;
            for (int j = 0; j < PANEL_Q8; j++) {
                const block_q8_0 *blk =
                    (const block_q8_0 *)((const uint8_t *)W->data +
                                         (size_t)(p * PANEL_Q8 + j) * row_bytes) +
                    b;
                memcpy(dst + 2 * j, &blk->d, 2);
                for (int g = 0; g < 8; g++)
                    memcpy(dst + 2 * PANEL_Q8 + g * Q8_GROUP_BYTES + 4 * j, blk->qs + 4 * g, 4);
            }
        }
}

void kern_matmul_pack(const tensor_view *W, void *dst) {
    if (W->type == DT_Q8_0) {
        pack_q8(W, dst);
        return;
    }
    const int64_t n = W->ne[0], n_out = W->ne[1];
    const uint16_t *src = W->data;
    uint16_t *out = dst;
    for (int64_t p = 0; p < n_out / PANEL; p++) {
        uint16_t *panel = out + (size_t)p * PANEL * (size_t)n;
        for (int j = 0; j < PANEL; j++) {
            const uint16_t *row = src + (size_t)(p * PANEL + j) * (size_t)n;
            for (int64_t k = 0; k < n; k++)
                panel[panel_index(k, j)] = row[k];
        }
    }
}

/* Block b of row j of Q8_0 panel p: its scale and 32 values. */
static float q8_block(const uint8_t *w, int64_t nb, int64_t o, int64_t b, int8_t q[QUANT_QK]) {
    const uint8_t *blk = w + ((size_t)(o / PANEL_Q8) * (size_t)nb + (size_t)b) * Q8_PANEL_BLOCK;
    const int j = (int)(o % PANEL_Q8);
    uint16_t d;
    memcpy(&d, blk + 2 * j, 2);
    for (int g = 0; g < 8; g++)
        memcpy(q + 4 * g, blk + 2 * PANEL_Q8 + g * Q8_GROUP_BYTES + 4 * j, 4);
    return fp16_to_fp32(d);
}

void kern_matmul_panel_row(const tensor_view *W, int64_t o, float *out) {
    const int64_t n = W->ne[0];
    if (W->layout == TL_PANEL8) {
        int8_t q[QUANT_QK];
        for (int64_t b = 0; b < n / QUANT_QK; b++) {
            float d = q8_block(W->data, n / QUANT_QK, o, b, q);
            for (int k = 0; k < QUANT_QK; k++)
                out[b * QUANT_QK + k] = d * (float)q[k];
        }
        return;
    }
    const uint16_t *panel = (const uint16_t *)W->data + (size_t)(o / PANEL) * PANEL * (size_t)n;
    for (int64_t k = 0; k < n; k++)
        out[k] = bf16_to_fp32(panel[panel_index(k, (int)(o % PANEL))]);
}

void kern_mm_panel_q8_scalar(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0,
                             int64_t t1) {
    const int64_t n = a->n_in, nb = n / QUANT_QK;
    int8_t q[QUANT_QK];
    for (int64_t o = r0; o < r1; o++)
        for (int64_t t = t0; t < t1; t++) {
            const char *xrow = (const char *)a->x + t * a->x_stride;
            const int8_t *xq = (const int8_t *)xrow;
            const float *xd = quant_act_d(xrow, n);
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                float d = q8_block(a->w, nb, o, b, q);
                int32_t isum = 0;
                for (int k = 0; k < QUANT_QK; k++)
                    isum += (int32_t)q[k] * xq[b * QUANT_QK + k];
                float s = d * xd[b];
                acc = fmaf((float)isum, s, acc);
            }
            a->y[t * a->ldy + o] = acc;
        }
}

void kern_mm_panel_scalar(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
    const int64_t n = a->n_in;
    for (int64_t o = r0; o < r1; o++) {
        const uint16_t *panel = (const uint16_t *)a->w + (size_t)(o / PANEL) * PANEL * (size_t)n;
        const int j = (int)(o % PANEL);
        for (int64_t t = t0; t < t1; t++) {
            const float *x = (const float *)((const char *)a->x + t * a->x_stride);
            float acc = 0.0f;
            for (int64_t k = 0; k < n; k++)
                acc = fmaf(bf16_to_fp32(panel[panel_index(k, j)]), x[k], acc);
            a->y[t * a->ldy + o] = acc;
        }
    }
}
