/* Element and block types of tensors, numbered as GGML/GGUF number them (so a GGUF tensor's
 * type field is a dtype_t as it stands). Quantized types store blocks of `block_elems` values
 * in `block_bytes` bytes; a row's length must be a multiple of its block. */
#ifndef SGLC_BASE_DTYPE_H
#define SGLC_BASE_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    DT_F32 = 0,
    DT_F16 = 1,
    DT_Q4_0 = 2,
    DT_Q4_1 = 3,
    DT_Q5_0 = 6,
    DT_Q5_1 = 7,
    DT_Q8_0 = 8,
    DT_Q8_1 = 9,
    DT_Q2_K = 10,
    DT_Q3_K = 11,
    DT_Q4_K = 12,
    DT_Q5_K = 13,
    DT_Q6_K = 14,
    DT_Q8_K = 15,
    DT_I8 = 24,
    DT_I16 = 25,
    DT_I32 = 26,
    DT_I64 = 27,
    DT_F64 = 28,
    DT_BF16 = 30,
    DT_COUNT = 40
} dtype_t;

/* True for the types this build can read (tables below have them). */
bool dtype_known(int type);
const char *dtype_name(int type);           /* "q4_1", "f32"... ; "?" when unknown */
int64_t dtype_block_elems(dtype_t type);    /* 1 for plain types */
size_t dtype_block_bytes(dtype_t type);     /* bytes of one block */
/* Bytes of a row of n elements; 0 when n is not a multiple of the block. */
size_t dtype_row_bytes(dtype_t type, int64_t n);
/* Parses "f32", "F16", "bf16", "q4_1"...; -1 when unknown. */
int dtype_parse(const char *name);

#endif
