/* One .safetensors file, memory-mapped read-only: an 8-byte little-endian header length, a JSON
 * header (tensor name -> dtype, shape, data_offsets; optional "__metadata__" of strings), then
 * the data section. safetensors_open checks everything before it returns: the header length
 * against the file (and < 100 MB), the JSON, each tensor's dtype and shape, and that its
 * offsets lie inside the data section, match shape x element size, and do not overlap another
 * tensor's. Errors are one line: "FILE: tensor 'NAME': reason".
 * Owns the mapping and the parsed header; every pointer it hands out (names, data, the json_t
 * of the metadata) stays valid until safetensors_close. Read-only after open: safe to share
 * between threads. Tensor data is wherever the file puts it: it may be unaligned. */
#ifndef SGLC_FORMATS_SAFETENSORS_H
#define SGLC_FORMATS_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/tensor.h"

#define SAFETENSORS_MAX_DIMS 8
#define SAFETENSORS_MAX_HEADER (100u * 1000 * 1000)

typedef struct {
    char *name;      /* NUL-terminated copy */
    char dtype[12];  /* as the file spells it: "F32", "BF16", "U8", "BOOL", "F8_E4M3"... */
    bool known_type; /* the dtype maps to a dtype_t (F32 F16 BF16 F64 I8 I16 I32 I64) */
    size_t elem_bytes;
    int rank;                            /* 0..SAFETENSORS_MAX_DIMS */
    int64_t shape[SAFETENSORS_MAX_DIMS]; /* as listed in the file: outermost first */
    /* GGML order: ne[0] = shape[rank-1] (innermost), ne[1] = shape[rank-2]...; a rank above 4
     * folds its outer dims into ne[3]. view.type is DT_COUNT when !known_type (read the bytes
     * raw: data and nbytes are always set). */
    tensor_view view;
    uint64_t begin, end; /* data_offsets, relative to the data section */
} safetensors_tensor;

typedef struct safetensors_file safetensors_file;

/* NULL on error, with the reason in err ("FILE: reason"). */
safetensors_file *safetensors_open(const char *path, char *err, size_t err_len);
void safetensors_close(safetensors_file *f);

const char *safetensors_path(const safetensors_file *f);
size_t safetensors_file_size(const safetensors_file *f);
size_t safetensors_data_offset(const safetensors_file *f); /* 8 + header length */

/* Tensors in the order of their data in the file. */
size_t safetensors_n_tensors(const safetensors_file *f);
const safetensors_tensor *safetensors_tensor_at(const safetensors_file *f, size_t i);
const safetensors_tensor *safetensors_find(const safetensors_file *f, const char *name);

/* "__metadata__" (an object of string values; borrowed), or NULL when the file has none. */
json_t *safetensors_metadata(const safetensors_file *f);
/* One metadata value, or NULL. */
const char *safetensors_meta_get(const safetensors_file *f, const char *key);

#endif
