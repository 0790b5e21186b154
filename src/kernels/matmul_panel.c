/* The panel layouts of weights (kernels/matmul.h: TL_PANEL16 for BF16, TL_PANEL8 for Q8_0, Q4_1):
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
    return type == DT_BF16 ? TL_PANEL16 : type == DT_Q8_0 || type == DT_Q4_1 ? TL_PANEL8 : TL_ROWS;
}

bool kern_matmul_packable(const tensor_view *W) {
    if (W->layout != TL_ROWS || W->ne[2] != 1 || W->ne[3] != 1 || W->ne[0] <= 0) return false;
    const tensor_layout l = kern_matmul_pack_layout(W->type);
    if (l == TL_ROWS || W->ne[1] % kern_matmul_panel_rows(l)) return false;
    if (W->ne[1] <= 0 || W->ne[0] % dtype_block_elems(W->type)) return false;
#if defined(__x86_64__)
    return cpu_get()->best >= ISA_AVX2;
#else
    return false;
#endif
}

/* 8-row panels of Q8_0 and Q4_1 blocks: a panel block holds the 8 rows' fp16 fields (d, then
 * m for Q4_1), each field for the 8 rows together, then the rows' quant bytes in groups of 4,
 * group g holding row j's bytes 4g..4g+3 at 4j: one 32-bit lane per row. For Q4_1 a group's
 * low nibbles are values 4g.. and its high nibbles 16+4g... A panel block is as large as the 8
 * rows' blocks. */
static int panel8_halves(dtype_t type) { return type == DT_Q4_1 ? 2 : 1; }

/* Copies block b of row j between the file form (blk) and panel block pb, either way. */
static void panel8_copy(dtype_t type, uint8_t *pb, uint8_t *blk, int j, bool to_panel) {
    const int halves = panel8_halves(type);
    const int groups = ((int)dtype_block_bytes(type) - 2 * halves) / 4;
    for (int h = 0; h < halves; h++) {
        uint8_t *p = pb + h * 2 * PANEL_Q8 + 2 * j, *f = blk + 2 * h;
        memcpy(to_panel ? p : f, to_panel ? f : p, 2);
    }
    for (int g = 0; g < groups; g++) {
        uint8_t *p = pb + halves * 2 * PANEL_Q8 + g * 4 * PANEL_Q8 + 4 * j;
        uint8_t *f = blk + 2 * halves + 4 * g;
        memcpy(to_panel ? p : f, to_panel ? f : p, 4);
    }
}

static uint8_t *panel8_at(const uint8_t *w, dtype_t type, int64_t nb, int64_t p, int64_t b) {
    return (uint8_t *)w + ((size_t)p * (size_t)nb + (size_t)b) * PANEL_Q8 * dtype_block_bytes(type);
}

void kern_matmul_pack(const tensor_view *W, void *dst) {
    const int64_t n = W->ne[0], n_out = W->ne[1];
    if (W->type == DT_Q8_0 || W->type == DT_Q4_1) {
        const int64_t nb = n / QUANT_QK;
        const size_t row_bytes = dtype_row_bytes(W->type, n), bb = dtype_block_bytes(W->type);
        for (int64_t p = 0; p < n_out / PANEL_Q8; p++)
            for (int64_t b = 0; b < nb; b++)
                for (int j = 0; j < PANEL_Q8; j++)
                    panel8_copy(W->type, panel8_at(dst, W->type, nb, p, b),
                                (uint8_t *)W->data + (size_t)(p * PANEL_Q8 + j) * row_bytes +
                                    (size_t)b * bb,
                                j, true);
        return;
    }
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

/* Block b of row o of an 8-row panel weight, back in its file form. */
static void panel8_block(const uint8_t *w, dtype_t type, int64_t nb, int64_t o, int64_t b,
                         uint8_t *blk) {
    panel8_copy(type, panel8_at(w, type, nb, o / PANEL_Q8, b), blk, (int)(o % PANEL_Q8), false);
}

void kern_matmul_panel_row(const tensor_view *W, int64_t o, float *out) {
    const int64_t n = W->ne[0];
    if (W->layout == TL_PANEL8) {
        uint8_t blk[sizeof(block_q8_0)];
        for (int64_t b = 0; b < n / QUANT_QK; b++) {
            panel8_block(W->data, W->type, n / QUANT_QK, o, b, blk);
            quant_dequant_row(W->type, blk, out + b * QUANT_QK, QUANT_QK);
        }
        return;
    }
    const uint16_t *panel = (const uint16_t *)W->data + (size_t)(o / PANEL) * PANEL * (size_t)n;
    for (int64_t k = 0; k < n; k++)
        out[k] = bf16_to_fp32(panel[panel_index(k, (int)(o % PANEL))]);
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

/* Q8_0 and Q4_1 panels, one output at a time in the kernels' order (kernels/matmul.h). */
void kern_mm_panel8_scalar(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
    const int64_t n = a->n_in, nb = n / QUANT_QK;
    const bool q4 = a->type == DT_Q4_1;
    for (int64_t o = r0; o < r1; o++)
        for (int64_t t = t0; t < t1; t++) {
            const char *xrow = (const char *)a->x + t * a->x_stride;
            const int8_t *xq = (const int8_t *)xrow;
            const float *xd = quant_act_d(xrow, n), *xs = quant_act_s(xrow, n);
            float acc = 0.0f, macc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                union {
                    block_q8_0 q8;
                    block_q4_1 q4;
                } blk;
                panel8_block(a->w, a->type, nb, o, b, (uint8_t *)&blk);
                int32_t isum = 0;
                for (int k = 0; k < QUANT_QK; k++) {
                    int v =
                        q4 ? (k < 16 ? blk.q4.qs[k] & 0x0f : blk.q4.qs[k - 16] >> 4) : blk.q8.qs[k];
                    isum += v * xq[b * QUANT_QK + k];
                }
                float s = fp16_to_fp32(q4 ? blk.q4.d : blk.q8.d) * xd[b];
                acc = fmaf((float)isum, s, acc);
                if (q4) macc = fmaf(fp16_to_fp32(blk.q4.m), xs[b], macc);
            }
            a->y[t * a->ldy + o] = q4 ? acc + macc : acc;
        }
}
