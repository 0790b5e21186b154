/* safetensors reader (formats/safetensors.h). The JSON header is parsed by jansson (duplicate
 * keys rejected); every number in it is checked before it becomes a size or an offset, and the
 * tensors are sorted by their offsets so that overlaps show up between neighbours. */
#include "formats/safetensors.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/mapped_file.h"
#include "formats/name_index.h"

struct safetensors_file {
    char *path;
    mapped_file map;
    size_t data_offset;
    json_t *header;
    json_t *metadata; /* borrowed from header */
    size_t n_tensors;
    safetensors_tensor *tensors;
    name_index index;
};

typedef struct {
    const char *name;
    int dtype; /* dtype_t, or -1 for types read raw */
    size_t bytes;
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"F64", DT_F64, 8}, {"F32", DT_F32, 4}, {"F16", DT_F16, 2}, {"BF16", DT_BF16, 2},
    {"I64", DT_I64, 8}, {"I32", DT_I32, 4}, {"I16", DT_I16, 2}, {"I8", DT_I8, 1},
    {"U64", -1, 8},     {"U32", -1, 4},     {"U16", -1, 2},     {"U8", -1, 1},
    {"BOOL", -1, 1},    {"F8_E4M3", -1, 1}, {"F8_E5M2", -1, 1}, {"F8_E8M0", -1, 1},
};

static void fail(char *err, size_t err_len, const char *path, const char *tensor, const char *fmt,
                 ...) __attribute__((format(printf, 5, 6)));
static void fail(char *err, size_t err_len, const char *path, const char *tensor, const char *fmt,
                 ...) {
    if (!err || !err_len) return;
    int n = tensor ? snprintf(err, err_len, "%s: tensor '%.96s': ", path, tensor)
                   : snprintf(err, err_len, "%s: ", path);
    if (n < 0 || (size_t)n >= err_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, err_len - (size_t)n, fmt, ap);
    va_end(ap);
}

/* A JSON integer in [0, INT64_MAX]. */
static bool json_uint(const json_t *j, uint64_t *out) {
    if (!json_is_integer(j) || json_integer_value(j) < 0) return false;
    *out = (uint64_t)json_integer_value(j);
    return true;
}

/* Reads one tensor entry into t (its name already set). */
static bool parse_tensor(safetensors_file *f, const char *name, json_t *e, safetensors_tensor *t,
                         size_t data_size, char *err, size_t err_len) {
    const char *path = f->path;
    if (!json_is_object(e)) {
        fail(err, err_len, path, name, "entry is not a JSON object");
        return false;
    }
    json_t *jd = json_object_get(e, "dtype");
    json_t *js = json_object_get(e, "shape");
    json_t *jo = json_object_get(e, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo)) {
        fail(err, err_len, path, name,
             "needs \"dtype\" (string), \"shape\" and "
             "\"data_offsets\" (arrays)");
        return false;
    }
    const st_dtype *dt = NULL;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (!strcmp(st_dtypes[i].name, json_string_value(jd))) dt = &st_dtypes[i];
    if (!dt) {
        fail(err, err_len, path, name, "unknown dtype \"%.32s\"", json_string_value(jd));
        return false;
    }
    snprintf(t->dtype, sizeof t->dtype, "%s", dt->name);
    t->known_type = dt->dtype >= 0;
    t->elem_bytes = dt->bytes;

    size_t rank = json_array_size(js);
    if (rank > SAFETENSORS_MAX_DIMS) {
        fail(err, err_len, path, name, "rank %zu > %d", rank, SAFETENSORS_MAX_DIMS);
        return false;
    }
    t->rank = (int)rank;
    /* The product of the non-zero dims must fit too: the view multiplies subsets of them. */
    uint64_t nonzero = 1;
    bool has_zero = false;
    for (size_t d = 0; d < rank; d++) {
        uint64_t v;
        if (!json_uint(json_array_get(js, d), &v)) {
            fail(err, err_len, path, name, "shape[%zu] is not a non-negative integer", d);
            return false;
        }
        if (v && nonzero > INT64_MAX / v) {
            fail(err, err_len, path, name, "element count overflows 64 bits");
            return false;
        }
        t->shape[d] = (int64_t)v;
        if (v)
            nonzero *= v;
        else
            has_zero = true;
    }
    uint64_t nelems = has_zero ? 0 : nonzero;
    if (nelems > SIZE_MAX / dt->bytes) {
        fail(err, err_len, path, name, "byte size overflows");
        return false;
    }
    uint64_t need = nelems * dt->bytes;
    if (json_array_size(jo) != 2 || !json_uint(json_array_get(jo, 0), &t->begin) ||
        !json_uint(json_array_get(jo, 1), &t->end)) {
        fail(err, err_len, path, name, "data_offsets must be two non-negative integers");
        return false;
    }
    if (t->begin > t->end || t->end > data_size) {
        fail(err, err_len, path, name,
             "data_offsets [%" PRIu64 ", %" PRIu64 ") do not lie inside the data section "
             "(%zu bytes)",
             t->begin, t->end, data_size);
        return false;
    }
    if (t->end - t->begin != need) {
        fail(err, err_len, path, name,
             "data_offsets [%" PRIu64 ", %" PRIu64 ") hold %" PRIu64 " bytes, its shape and "
             "dtype %s need %" PRIu64,
             t->begin, t->end, t->end - t->begin, dt->name, need);
        return false;
    }

    /* The view: GGML order, outer dims beyond the fourth folded into ne[3]. */
    tensor_view *v = &t->view;
    v->type = t->known_type ? (dtype_t)dt->dtype : DT_COUNT;
    v->n_dims = t->rank < TENSOR_MAX_DIMS ? t->rank : TENSOR_MAX_DIMS;
    for (int d = 0; d < TENSOR_MAX_DIMS; d++) v->ne[d] = 1;
    for (int d = 0; d < t->rank; d++) {
        int k = t->rank - 1 - d; /* shape index of ne[d] */
        if (d < TENSOR_MAX_DIMS)
            v->ne[d] = t->shape[k];
        else
            v->ne[TENSOR_MAX_DIMS - 1] *= t->shape[k];
    }
    v->data = f->map.data + f->data_offset + t->begin;
    v->nbytes = (size_t)need;
    return true;
}

static int by_offset(const void *a, const void *b) {
    const safetensors_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static bool parse(safetensors_file *f, char *err, size_t err_len) {
    const char *path = f->path;
    const uint8_t *p = f->map.data;
    size_t size = f->map.size;
    if (size == 0) {
        fail(err, err_len, path, NULL, "empty file");
        return false;
    }
    uint64_t hlen;
    if (size < 8) {
        fail(err, err_len, path, NULL, "truncated: %zu bytes, the header length needs 8", size);
        return false;
    }
    memcpy(&hlen, p, 8); /* little-endian */
    if (hlen > size - 8) {
        fail(err, err_len, path, NULL, "header length %" PRIu64 " past end of file (size %zu)",
             hlen, size);
        return false;
    }
    if (hlen >= SAFETENSORS_MAX_HEADER) {
        fail(err, err_len, path, NULL, "header length %" PRIu64 " is over the %u-byte limit", hlen,
             SAFETENSORS_MAX_HEADER);
        return false;
    }
    f->data_offset = 8 + (size_t)hlen;
    size_t data_size = size - f->data_offset;
    json_error_t je;
    f->header = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!f->header) {
        fail(err, err_len, path, NULL, "header JSON: %s (line %d, column %d)", je.text, je.line,
             je.column);
        return false;
    }
    if (!json_is_object(f->header)) {
        fail(err, err_len, path, NULL, "header JSON is not an object");
        return false;
    }
    json_t *meta = json_object_get(f->header, "__metadata__");
    if (meta) {
        if (!json_is_object(meta)) {
            fail(err, err_len, path, NULL, "__metadata__ is not an object");
            return false;
        }
        const char *k;
        json_t *v;
        json_object_foreach(meta, k, v) {
            if (!json_is_string(v)) {
                fail(err, err_len, path, NULL, "__metadata__ '%.96s' is not a string", k);
                return false;
            }
        }
        f->metadata = meta;
    }
    size_t n = json_object_size(f->header) - (meta ? 1 : 0);
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    if (!f->tensors) {
        fail(err, err_len, path, NULL, "out of memory for %zu tensors", n);
        return false;
    }
    const char *name;
    json_t *e;
    json_object_foreach(f->header, name, e) {
        if (!strcmp(name, "__metadata__")) continue;
        safetensors_tensor *t = &f->tensors[f->n_tensors];
        if (!(t->name = strdup(name))) {
            fail(err, err_len, path, NULL, "out of memory");
            return false;
        }
        f->n_tensors++;
        if (!parse_tensor(f, name, e, t, data_size, err, err_len)) return false;
    }
    qsort(f->tensors, f->n_tensors, sizeof *f->tensors, by_offset);
    /* Empty tensors own no bytes, so they overlap nothing; `last` is the non-empty tensor
     * that reaches furthest so far. */
    const safetensors_tensor *last = NULL;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const safetensors_tensor *b = &f->tensors[i];
        if (b->begin == b->end) continue;
        if (last && b->begin < last->end) {
            fail(err, err_len, path, b->name,
                 "data_offsets [%" PRIu64 ", %" PRIu64 ") overlap tensor '%.96s' [%" PRIu64
                 ", %" PRIu64 ")",
                 b->begin, b->end, last->name, last->begin, last->end);
            return false;
        }
        if (!last || b->end > last->end) last = b;
    }
    if (!name_index_init(&f->index, f->n_tensors)) {
        fail(err, err_len, path, NULL, "out of memory");
        return false;
    }
    for (size_t i = 0; i < f->n_tensors; i++)
        name_index_add(&f->index, f->tensors[i].name, strlen(f->tensors[i].name), i, NULL);
    return true;
}

safetensors_file *safetensors_open(const char *path, char *err, size_t err_len) {
    if (err && err_len) err[0] = 0;
    safetensors_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        if (err) snprintf(err, err_len, "%s: out of memory", path);
        free(f);
        return NULL;
    }
    if (!mapped_file_open(&f->map, path, err, err_len) || !parse(f, err, err_len)) {
        safetensors_close(f);
        return NULL;
    }
    return f;
}

void safetensors_close(safetensors_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    name_index_free(&f->index);
    json_decref(f->header);
    mapped_file_close(&f->map);
    free(f->path);
    free(f);
}

const char *safetensors_path(const safetensors_file *f) { return f->path; }
size_t safetensors_file_size(const safetensors_file *f) { return f->map.size; }
size_t safetensors_data_offset(const safetensors_file *f) { return f->data_offset; }
size_t safetensors_n_tensors(const safetensors_file *f) { return f->n_tensors; }

const safetensors_tensor *safetensors_tensor_at(const safetensors_file *f, size_t i) {
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const safetensors_tensor *safetensors_find(const safetensors_file *f, const char *name) {
    size_t i;
    if (!name_index_find(&f->index, name, strlen(name), &i)) return NULL;
    return &f->tensors[i];
}

json_t *safetensors_metadata(const safetensors_file *f) { return f->metadata; }

const char *safetensors_meta_get(const safetensors_file *f, const char *key) {
    return f->metadata ? json_string_value(json_object_get(f->metadata, key)) : NULL;
}
