/* GGUF model files (v2 and v3), memory-mapped read-only. gguf_open checks the whole header
 * before it returns: magic, version, every key/value (all value types, nested arrays), every
 * tensor's name, dims, type, and that its data lies inside the file at general.alignment.
 * Any problem is one error line naming the file, the key or tensor, and the reason.
 * Owns the mapping; every pointer it hands out stays valid until gguf_close. */
#ifndef SGLC_FORMATS_GGUF_H
#define SGLC_FORMATS_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/tensor.h"

typedef enum {
    GGUF_UINT8 = 0,
    GGUF_INT8 = 1,
    GGUF_UINT16 = 2,
    GGUF_INT16 = 3,
    GGUF_UINT32 = 4,
    GGUF_INT32 = 5,
    GGUF_FLOAT32 = 6,
    GGUF_BOOL = 7,
    GGUF_STRING = 8,
    GGUF_ARRAY = 9,
    GGUF_UINT64 = 10,
    GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12,
} gguf_type;

typedef struct {
    const char *ptr; /* points into the mapping: NOT NUL-terminated */
    uint64_t len;
} gguf_str;

typedef struct {
    char *key;       /* NUL-terminated copy */
    gguf_type type;  /* for arrays: GGUF_ARRAY, element type in arr_type */
    gguf_type arr_type;
    uint64_t arr_n;
    const uint8_t *data; /* scalar: its bytes; array of numbers: the packed elements */
    gguf_str str;        /* GGUF_STRING */
    const gguf_str *arr_strs; /* array of strings: arr_n entries (owned by the file) */
} gguf_kv;

typedef struct {
    char *name; /* NUL-terminated copy */
    tensor_view view; /* type, dims (ne[0] innermost), data pointer into the mapping, nbytes */
    uint64_t offset;  /* relative to the data section */
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* NULL on error, with the reason in err ("FILE: reason"). */
gguf_file *gguf_open(const char *path, char *err, size_t err_len);
void gguf_close(gguf_file *g);

const char *gguf_path(const gguf_file *g);
uint32_t gguf_version(const gguf_file *g);
size_t gguf_file_size(const gguf_file *g);

size_t gguf_n_kv(const gguf_file *g);
const gguf_kv *gguf_kv_at(const gguf_file *g, size_t i);
const gguf_kv *gguf_find_kv(const gguf_file *g, const char *key);

/* Typed getters: false when the key is absent or of an incompatible type. Integer getters
 * accept any integer type whose value fits; float getters accept float32/float64. */
bool gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out);
bool gguf_get_i64(const gguf_file *g, const char *key, int64_t *out);
bool gguf_get_f32(const gguf_file *g, const char *key, float *out);
bool gguf_get_bool(const gguf_file *g, const char *key, bool *out);
/* Returns a malloc'd NUL-terminated copy, or NULL. */
char *gguf_get_str(const gguf_file *g, const char *key);

/* Element i of a numeric array kv as double / int64 (false if out of range or not numeric). */
bool gguf_arr_f64(const gguf_kv *kv, uint64_t i, double *out);
bool gguf_arr_i64(const gguf_kv *kv, uint64_t i, int64_t *out);

size_t gguf_n_tensors(const gguf_file *g);
const gguf_tensor *gguf_tensor_at(const gguf_file *g, size_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);

/* Additions beyond the first contract. */
uint32_t gguf_alignment(const gguf_file *g); /* general.alignment, 32 when absent */
size_t gguf_data_offset(const gguf_file *g); /* file offset of the tensor data section */
const char *gguf_type_name(gguf_type t);     /* "uint32", "string"...; "?" when unknown */
/* Element i of an array of strings: O(1) for a top-level kv (its arr_strs index), a walk for an
 * array returned by gguf_arr_sub. False when out of range or not an array of strings. */
bool gguf_arr_str(const gguf_file *g, const gguf_kv *kv, uint64_t i, gguf_str *out);
/* Element i of an array of arrays, as a key-less kv (arr_type, arr_n, data; arr_strs NULL:
 * read its strings with gguf_arr_str). Walks the elements before i. */
bool gguf_arr_sub(const gguf_file *g, const gguf_kv *kv, uint64_t i, gguf_kv *out);

#endif
