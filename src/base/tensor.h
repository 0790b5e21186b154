/* A view of tensor data that some other object owns (a mapped file, a backend buffer). Shapes
 * follow GGML's order: ne[0] is the innermost (contiguous) dimension, so a weight of
 * out_features x in_features has ne[0] = in, ne[1] = out, and each of its ne[1] rows holds
 * dtype_row_bytes(type, ne[0]) bytes. */
#ifndef SGLC_BASE_TENSOR_H
#define SGLC_BASE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"

#define TENSOR_MAX_DIMS 4

/* How a 2-D weight's rows lie in memory. Files hold rows one after another; the loader may
 * repack a weight into a layout its matmul streams faster (kernels/matmul.h), replacing the
 * mapped pages with a copy of the same size. */
typedef enum {
    TL_ROWS = 0,    /* row o at o * dtype_row_bytes(type, ne[0]) */
    TL_PANEL16 = 1, /* BF16 rows interleaved in panels of 16 (kern_matmul_pack) */
    TL_PANEL8 = 2,  /* Q8_0 rows interleaved in panels of 8 (kern_matmul_pack) */
} tensor_layout;

typedef struct {
    dtype_t type;
    int n_dims;
    int64_t ne[TENSOR_MAX_DIMS]; /* unused dims are 1 */
    const void *data;
    size_t nbytes;
    tensor_layout layout;
} tensor_view;

static inline int64_t tensor_nelems(const tensor_view *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

#endif
