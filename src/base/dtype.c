/* Tables behind base/dtype.h. The block layouts themselves live with the kernels
 * (kernels/quant.h, kernels/kquants.h); here only their sizes, which the file readers need to check that a
 * tensor's bytes fit inside its file. */
#include "base/dtype.h"

#include <strings.h>

typedef struct {
    const char *name;
    int64_t elems;
    size_t bytes;
} dtype_info;

static const dtype_info infos[DT_COUNT] = {
    [DT_F32] = {"f32", 1, 4},        [DT_F16] = {"f16", 1, 2},
    [DT_Q4_0] = {"q4_0", 32, 18},    [DT_Q4_1] = {"q4_1", 32, 20},
    [DT_Q5_0] = {"q5_0", 32, 22},    [DT_Q5_1] = {"q5_1", 32, 24},
    [DT_Q8_0] = {"q8_0", 32, 34},    [DT_Q8_1] = {"q8_1", 32, 36},
    [DT_Q2_K] = {"q2_k", 256, 84},   [DT_Q3_K] = {"q3_k", 256, 110},
    [DT_Q4_K] = {"q4_k", 256, 144},  [DT_Q5_K] = {"q5_k", 256, 176},
    [DT_Q6_K] = {"q6_k", 256, 210},  [DT_Q8_K] = {"q8_k", 256, 292},
    [DT_I8] = {"i8", 1, 1},          [DT_I16] = {"i16", 1, 2},
    [DT_I32] = {"i32", 1, 4},        [DT_I64] = {"i64", 1, 8},
    [DT_F64] = {"f64", 1, 8},        [DT_BF16] = {"bf16", 1, 2},
};

bool dtype_known(int type) { return type >= 0 && type < DT_COUNT && infos[type].name; }
const char *dtype_name(int type) { return dtype_known(type) ? infos[type].name : "?"; }
int64_t dtype_block_elems(dtype_t type) { return dtype_known(type) ? infos[type].elems : 0; }
size_t dtype_block_bytes(dtype_t type) { return dtype_known(type) ? infos[type].bytes : 0; }

size_t dtype_row_bytes(dtype_t type, int64_t n) {
    if (!dtype_known(type) || n < 0 || n % infos[type].elems) return 0;
    return (size_t)(n / infos[type].elems) * infos[type].bytes;
}

int dtype_parse(const char *name) {
    for (int t = 0; t < DT_COUNT; t++)
        if (infos[t].name && !strcasecmp(infos[t].name, name)) return t;
    return -1;
}
