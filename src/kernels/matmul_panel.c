/* The TL_PANEL16 weight layout (kernels/matmul.h): repacking a BF16 weight into it, reading a
 * row back, and the scalar path. Prefill spends most of its time in matmuls of float weights;
 * in the file's row layout each output is a dot product whose 8-lane partial sums must be
 * folded at the end, and every weight row is widened once per token tile. In panels, one
 * 32-byte load gives one k step of 16 rows, which multiply up to 6 broadcast activations in
 * an outer product that keeps 12 accumulators busy and folds nothing. */
#include <math.h>
#include <string.h>

#include "base/cpu.h"
#include "base/fp16.h"
#include "kernels/matmul.h"

enum { PANEL = 16 };

/* Position of (row j of a panel, step k) within the panel. */
static inline size_t panel_index(int64_t k, int j) {
    return (size_t)k * PANEL + (size_t)(j < 8 ? 2 * j : 2 * (j - 8) + 1);
}

bool kern_matmul_packable(const tensor_view *W) {
    if (W->type != DT_BF16 || W->layout != TL_ROWS || W->ne[2] != 1 || W->ne[3] != 1) return false;
    if (W->ne[0] <= 0 || W->ne[1] <= 0 || W->ne[1] % PANEL) return false;
#if defined(__x86_64__)
    return cpu_get()->best >= ISA_AVX2;
#else
    return false;
#endif
}

void kern_matmul_pack(const tensor_view *W, void *dst) {
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

void kern_matmul_panel_row(const tensor_view *W, int64_t o, float *out) {
    const int64_t n = W->ne[0];
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
