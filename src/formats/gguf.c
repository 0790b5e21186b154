/* GGUF reader (formats/gguf.h). The file is mapped once and parsed front to back by a bounded
 * cursor: every length and count is checked against the bytes that remain before anything is
 * allocated or skipped, so a truncated or hostile file ends in one error line, never a crash.
 * After gguf_open returns, every pointer handed out points into validated bytes.
 * Multi-byte fields are little-endian (v2 and little-endian v3); they are read with memcpy, so
 * the host must be little-endian too (all the targets this project builds for are). */
#include "formats/gguf.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/mapped_file.h"
#include "formats/name_index.h"

#define GGUF_DEFAULT_ALIGNMENT 32
/* Arrays of arrays are legal but nobody nests them deeply; the limit bounds our recursion. */
#define GGUF_MAX_ARRAY_DEPTH 16

struct gguf_file {
    char *path;
    const uint8_t *map;
    size_t size;
    uint32_t version;
    uint32_t alignment;
    size_t data_offset;
    size_t n_kv;
    gguf_kv *kvs;
    size_t n_tensors;
    gguf_tensor *tensors;
    name_index kv_index;
    name_index tensor_index;
};

/* A cursor over the mapping. `what` names the field being read, for error messages; err may
 * be NULL when walking bytes already validated at open. */
typedef struct {
    const uint8_t *p;
    size_t size;
    size_t pos;
    const char *path;
    char *err;
    size_t err_len;
    char what[128];
} rd;

static void fail(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(rd *r, const char *fmt, ...) {
    if (!r->err || !r->err_len) return;
    int n = snprintf(r->err, r->err_len, "%s: %s%s", r->path, r->what, r->what[0] ? ": " : "");
    if (n < 0 || (size_t)n >= r->err_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err + n, r->err_len - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Names in messages come from the file: keep them printable and short. */
static void set_what(rd *r, const char *kind, const char *name, size_t len) {
    char clean[96];
    size_t n = len < sizeof clean - 4 ? len : sizeof clean - 4;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        clean[i] = (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
    }
    if (n < len) memcpy(clean + n, "...", 3), n += 3;
    clean[n] = 0;
    snprintf(r->what, sizeof r->what, "%s '%s'", kind, clean);
}

static bool need(rd *r, uint64_t n, const char *field) {
    if (n > r->size - r->pos) {
        fail(r, "truncated: %s needs %" PRIu64 " bytes at offset %zu (file size %zu)", field, n,
             r->pos, r->size);
        return false;
    }
    return true;
}

static bool read_u32(rd *r, uint32_t *v, const char *field) {
    if (!need(r, 4, field)) return false;
    memcpy(v, r->p + r->pos, 4);
    r->pos += 4;
    return true;
}

static bool read_u64(rd *r, uint64_t *v, const char *field) {
    if (!need(r, 8, field)) return false;
    memcpy(v, r->p + r->pos, 8);
    r->pos += 8;
    return true;
}

static bool read_str(rd *r, gguf_str *s, const char *field) {
    uint64_t len;
    if (!read_u64(r, &len, field) || !need(r, len, field)) return false;
    s->ptr = (const char *)r->p + r->pos;
    s->len = len;
    r->pos += (size_t)len;
    return true;
}

/* Bytes of one element of a fixed-size type; 0 for strings, arrays and unknown types. */
static size_t scalar_size(uint32_t t) {
    switch (t) {
    case GGUF_UINT8:
    case GGUF_INT8:
    case GGUF_BOOL:
        return 1;
    case GGUF_UINT16:
    case GGUF_INT16:
        return 2;
    case GGUF_UINT32:
    case GGUF_INT32:
    case GGUF_FLOAT32:
        return 4;
    case GGUF_UINT64:
    case GGUF_INT64:
    case GGUF_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

static bool type_valid(uint32_t t) { return t <= GGUF_FLOAT64; }

/* Smallest encoding of one element of type t: lower bound used to check counts. */
static size_t min_elem_size(uint32_t t) {
    if (t == GGUF_STRING) return 8;
    if (t == GGUF_ARRAY) return 12;
    return scalar_size(t);
}

static bool check_bools(rd *r, const uint8_t *p, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        if (p[i] > 1) {
            fail(r, "bool value %u is neither 0 nor 1", p[i]);
            return false;
        }
    return true;
}

/* Reads an array's body (after its element type and count): checks it and moves past it. When
 * strs is not NULL (arrays of strings) it receives each string. */
static bool read_array_body(rd *r, uint32_t type, uint64_t n, int depth, gguf_str *strs) {
    if (!type_valid(type)) {
        fail(r, "array of unknown value type %" PRIu32, type);
        return false;
    }
    if (n > (r->size - r->pos) / min_elem_size(type)) {
        fail(r, "truncated: array of %" PRIu64 " %s elements cannot fit in the %zu bytes left", n,
             type == GGUF_STRING  ? "string"
             : type == GGUF_ARRAY ? "array"
                                  : "scalar",
             r->size - r->pos);
        return false;
    }
    size_t es = scalar_size(type);
    if (es) {
        if (type == GGUF_BOOL && !check_bools(r, r->p + r->pos, n)) return false;
        r->pos += (size_t)n * es;
        return true;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (type == GGUF_STRING) {
            gguf_str s;
            if (!read_str(r, &s, "array string")) return false;
            if (strs) strs[i] = s;
            continue;
        }
        if (depth + 1 > GGUF_MAX_ARRAY_DEPTH) {
            fail(r, "arrays nested deeper than %d", GGUF_MAX_ARRAY_DEPTH);
            return false;
        }
        uint32_t sub_type;
        uint64_t sub_n;
        if (!read_u32(r, &sub_type, "nested array type") ||
            !read_u64(r, &sub_n, "nested array length") ||
            !read_array_body(r, sub_type, sub_n, depth + 1, NULL))
            return false;
    }
    return true;
}

static bool read_value(rd *r, gguf_kv *kv) {
    uint32_t type;
    if (!read_u32(r, &type, "value type")) return false;
    if (!type_valid(type)) {
        fail(r, "unknown value type %" PRIu32, type);
        return false;
    }
    kv->type = (gguf_type)type;
    if (type == GGUF_STRING) {
        if (!read_str(r, &kv->str, "string value")) return false;
        kv->data = (const uint8_t *)kv->str.ptr;
        return true;
    }
    if (type != GGUF_ARRAY) {
        size_t es = scalar_size(type);
        if (!need(r, es, "value")) return false;
        kv->data = r->p + r->pos;
        if (type == GGUF_BOOL && !check_bools(r, kv->data, 1)) return false;
        r->pos += es;
        return true;
    }
    uint32_t arr_type;
    if (!read_u32(r, &arr_type, "array type") || !read_u64(r, &kv->arr_n, "array length"))
        return false;
    kv->arr_type = (gguf_type)arr_type;
    kv->data = r->p + r->pos;
    gguf_str *strs = NULL;
    if (arr_type == GGUF_STRING && kv->arr_n > 0) {
        /* Bound the count by the bytes left before allocating its index. */
        if (kv->arr_n > (r->size - r->pos) / 8) {
            fail(r, "truncated: array of %" PRIu64 " strings cannot fit in the %zu bytes left",
                 kv->arr_n, r->size - r->pos);
            return false;
        }
        strs = malloc((size_t)kv->arr_n * sizeof *strs);
        if (!strs) {
            fail(r, "out of memory for %" PRIu64 " strings", kv->arr_n);
            return false;
        }
        kv->arr_strs = strs;
    }
    return read_array_body(r, arr_type, kv->arr_n, 0, strs);
}

static bool has_nul(const gguf_str *s) { return memchr(s->ptr, 0, (size_t)s->len) != NULL; }

static char *dup_str(const gguf_str *s) {
    char *c = malloc((size_t)s->len + 1);
    if (c) {
        memcpy(c, s->ptr, (size_t)s->len);
        c[s->len] = 0;
    }
    return c;
}

static bool read_kvs(rd *r, gguf_file *g, uint64_t n_kv) {
    /* Each key/value takes at least 13 bytes: key length, type, one byte of value. */
    if (n_kv > (r->size - r->pos) / 13) {
        fail(r, "truncated: %" PRIu64 " key/values cannot fit in the %zu bytes left", n_kv,
             r->size - r->pos);
        return false;
    }
    g->kvs = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kvs);
    if (!g->kvs || !name_index_init(&g->kv_index, (size_t)n_kv)) {
        fail(r, "out of memory for %" PRIu64 " key/values", n_kv);
        return false;
    }
    for (uint64_t i = 0; i < n_kv; i++) {
        snprintf(r->what, sizeof r->what, "key #%" PRIu64, i);
        gguf_str key;
        if (!read_str(r, &key, "key")) return false;
        set_what(r, "key", key.ptr, (size_t)key.len);
        if (key.len == 0 || has_nul(&key)) {
            fail(r, "key is empty or contains a NUL byte");
            return false;
        }
        gguf_kv *kv = &g->kvs[i];
        kv->key = dup_str(&key);
        g->n_kv = (size_t)i + 1; /* from here on gguf_close frees this entry */
        if (!kv->key) {
            fail(r, "out of memory");
            return false;
        }
        size_t first;
        if (!name_index_add(&g->kv_index, kv->key, (size_t)key.len, (size_t)i, &first)) {
            fail(r, "duplicate key (first at #%zu)", first);
            return false;
        }
        if (!read_value(r, kv)) return false;
    }
    r->what[0] = 0;
    return true;
}

static bool read_alignment(rd *r, gguf_file *g) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find_kv(g, "general.alignment");
    if (!kv) return true;
    snprintf(r->what, sizeof r->what, "key 'general.alignment'");
    uint32_t a;
    if (!gguf_get_u32(g, "general.alignment", &a)) {
        fail(r, "must be an unsigned 32-bit integer");
        return false;
    }
    if (a == 0 || (a & (a - 1))) {
        fail(r, "%" PRIu32 " is not a power of two", a);
        return false;
    }
    g->alignment = a;
    r->what[0] = 0;
    return true;
}

static bool read_tensor_info(rd *r, gguf_file *g, uint64_t i) {
    snprintf(r->what, sizeof r->what, "tensor #%" PRIu64, i);
    gguf_str name;
    if (!read_str(r, &name, "tensor name")) return false;
    set_what(r, "tensor", name.ptr, (size_t)name.len);
    if (has_nul(&name)) {
        fail(r, "name contains a NUL byte");
        return false;
    }
    gguf_tensor *t = &g->tensors[i];
    t->name = dup_str(&name);
    g->n_tensors = (size_t)i + 1;
    if (!t->name) {
        fail(r, "out of memory");
        return false;
    }
    size_t first;
    if (!name_index_add(&g->tensor_index, t->name, (size_t)name.len, (size_t)i, &first)) {
        fail(r, "duplicate tensor name (first at #%zu)", first);
        return false;
    }
    uint32_t n_dims;
    if (!read_u32(r, &n_dims, "n_dims")) return false;
    if (n_dims > TENSOR_MAX_DIMS) {
        fail(r, "n_dims %" PRIu32 " > %d", n_dims, TENSOR_MAX_DIMS);
        return false;
    }
    tensor_view *v = &t->view;
    v->n_dims = (int)n_dims;
    int64_t nelems = 1;
    for (int d = 0; d < TENSOR_MAX_DIMS; d++) v->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t ne;
        if (!read_u64(r, &ne, "dimension")) return false;
        if (ne == 0 || ne > INT64_MAX) {
            fail(r, "dimension %" PRIu32 " is %" PRIu64 " (must be in 1..2^63-1)", d, ne);
            return false;
        }
        if ((int64_t)ne > INT64_MAX / nelems) {
            fail(r, "element count overflows 64 bits");
            return false;
        }
        v->ne[d] = (int64_t)ne;
        nelems *= (int64_t)ne;
    }
    uint32_t type;
    if (!read_u32(r, &type, "tensor type")) return false;
    if (!dtype_known((int)type) || type > INT_MAX) {
        fail(r, "unknown tensor type %" PRIu32, type);
        return false;
    }
    v->type = (dtype_t)type;
    size_t row = dtype_row_bytes(v->type, v->ne[0]);
    if (!row) {
        fail(r, "row of %" PRId64 " elements is not a multiple of the %s block (%" PRId64 ")",
             v->ne[0], dtype_name((int)type), dtype_block_elems(v->type));
        return false;
    }
    uint64_t rows = (uint64_t)(nelems / v->ne[0]);
    if (rows > SIZE_MAX / row) {
        fail(r, "byte size overflows");
        return false;
    }
    v->nbytes = (size_t)rows * row;
    if (!read_u64(r, &t->offset, "tensor offset")) return false;
    if (t->offset % g->alignment) {
        fail(r, "offset %" PRIu64 " is not a multiple of the alignment %" PRIu32, t->offset,
             g->alignment);
        return false;
    }
    return true;
}

static bool read_tensors(rd *r, gguf_file *g, uint64_t n_tensors) {
    /* Each tensor info takes at least 32 bytes: name length, n_dims, one dim, type, offset. */
    if (n_tensors > (r->size - r->pos) / 32) {
        fail(r, "truncated: %" PRIu64 " tensor infos cannot fit in the %zu bytes left", n_tensors,
             r->size - r->pos);
        return false;
    }
    g->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
    if (!g->tensors || !name_index_init(&g->tensor_index, (size_t)n_tensors)) {
        fail(r, "out of memory for %" PRIu64 " tensors", n_tensors);
        return false;
    }
    for (uint64_t i = 0; i < n_tensors; i++)
        if (!read_tensor_info(r, g, i)) return false;

    /* The data section starts at the next multiple of the alignment. */
    size_t data = r->pos + (g->alignment - r->pos % g->alignment) % g->alignment;
    g->data_offset = data;
    for (size_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        set_what(r, "tensor", t->name, strlen(t->name));
        uint64_t off = t->offset, len = t->view.nbytes;
        if (data > r->size || off > r->size - data || len > r->size - data - off) {
            if (off > UINT64_MAX - data || len > UINT64_MAX - data - off)
                fail(r,
                     "data at offset %" PRIu64 " + %zu, length %" PRIu64
                     " lies past end of file (size %zu)",
                     off, data, len, r->size);
            else
                fail(r, "data [%" PRIu64 ", %" PRIu64 ") past end of file (size %zu)", data + off,
                     data + off + len, r->size);
            return false;
        }
        t->view.data = r->p + data + off;
    }
    r->what[0] = 0;
    return true;
}

static bool parse(rd *r, gguf_file *g) {
    if (r->size == 0) {
        fail(r, "empty file");
        return false;
    }
    snprintf(r->what, sizeof r->what, "header");
    if (!need(r, 4, "magic")) return false;
    if (memcmp(r->p, "GGUF", 4)) {
        fail(r, "not a GGUF file (magic %02x %02x %02x %02x, expected 'GGUF')", r->p[0], r->p[1],
             r->p[2], r->p[3]);
        return false;
    }
    r->pos = 4;
    if (!read_u32(r, &g->version, "version")) return false;
    if (g->version == 1) {
        fail(r, "GGUF v1 is not supported (convert the file to v3 with a current llama.cpp)");
        return false;
    }
    if (g->version != 2 && g->version != 3) {
        fail(r, "unsupported GGUF version %" PRIu32 "%s", g->version,
             g->version > 0xffff ? " (a big-endian file?)" : "");
        return false;
    }
    uint64_t n_tensors, n_kv;
    if (!read_u64(r, &n_tensors, "tensor count") || !read_u64(r, &n_kv, "key/value count"))
        return false;
    r->what[0] = 0;
    return read_kvs(r, g, n_kv) && read_alignment(r, g) && read_tensors(r, g, n_tensors);
}

gguf_file *gguf_open(const char *path, char *err, size_t err_len) {
    if (err && err_len) err[0] = 0;
    gguf_file *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        if (err) snprintf(err, err_len, "%s: out of memory", path);
        free(g);
        return NULL;
    }
    mapped_file m;
    if (!mapped_file_open(&m, path, err, err_len)) {
        gguf_close(g);
        return NULL;
    }
    g->map = m.data;
    g->size = m.size;
    rd r = {.p = g->map, .size = g->size, .path = path, .err = err, .err_len = err_len};
    if (!parse(&r, g)) {
        gguf_close(g);
        return NULL;
    }
    return g;
}

void gguf_close(gguf_file *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_kv; i++) {
        free(g->kvs[i].key);
        free((void *)g->kvs[i].arr_strs);
    }
    for (size_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kvs);
    free(g->tensors);
    name_index_free(&g->kv_index);
    name_index_free(&g->tensor_index);
    mapped_file m = {g->map, g->size};
    mapped_file_close(&m);
    free(g->path);
    free(g);
}

const char *gguf_path(const gguf_file *g) { return g->path; }
uint32_t gguf_version(const gguf_file *g) { return g->version; }
size_t gguf_file_size(const gguf_file *g) { return g->size; }
uint32_t gguf_alignment(const gguf_file *g) { return g->alignment; }
size_t gguf_data_offset(const gguf_file *g) { return g->data_offset; }

size_t gguf_n_kv(const gguf_file *g) { return g->n_kv; }
const gguf_kv *gguf_kv_at(const gguf_file *g, size_t i) { return i < g->n_kv ? &g->kvs[i] : NULL; }

const gguf_kv *gguf_find_kv(const gguf_file *g, const char *key) {
    size_t i;
    if (!name_index_find(&g->kv_index, key, strlen(key), &i)) return NULL;
    return &g->kvs[i];
}

size_t gguf_n_tensors(const gguf_file *g) { return g->n_tensors; }
const gguf_tensor *gguf_tensor_at(const gguf_file *g, size_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name) {
    size_t i;
    if (!name_index_find(&g->tensor_index, name, strlen(name), &i)) return NULL;
    return &g->tensors[i];
}

const char *gguf_type_name(gguf_type t) {
    static const char *names[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                  "int32",  "float32", "bool",   "string", "array",
                                  "uint64", "int64",   "float64"};
    return (unsigned)t <= GGUF_FLOAT64 ? names[t] : "?";
}

/* Reads one fixed-size element of type t as a signed or unsigned integer, or a double. */
typedef struct {
    bool is_int;
    bool is_neg; /* is_int: i holds a negative value */
    int64_t i;
    uint64_t u;
    double f;
} num;

static bool read_num(gguf_type t, const uint8_t *p, num *n) {
    memset(n, 0, sizeof *n);
    n->is_int = true;
    switch (t) {
    case GGUF_UINT8:
    case GGUF_BOOL:
        n->u = p[0];
        break;
    case GGUF_INT8: {
        int8_t v;
        memcpy(&v, p, 1);
        n->i = v;
        break;
    }
    case GGUF_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        n->u = v;
        break;
    }
    case GGUF_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        n->i = v;
        break;
    }
    case GGUF_UINT32: {
        uint32_t v;
        memcpy(&v, p, 4);
        n->u = v;
        break;
    }
    case GGUF_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        n->i = v;
        break;
    }
    case GGUF_UINT64:
        memcpy(&n->u, p, 8);
        break;
    case GGUF_INT64:
        memcpy(&n->i, p, 8);
        break;
    case GGUF_FLOAT32: {
        float v;
        memcpy(&v, p, 4);
        n->f = v;
        n->is_int = false;
        return true;
    }
    case GGUF_FLOAT64:
        memcpy(&n->f, p, 8);
        n->is_int = false;
        return true;
    default:
        return false;
    }
    bool is_signed = t == GGUF_INT8 || t == GGUF_INT16 || t == GGUF_INT32 || t == GGUF_INT64;
    if (is_signed) {
        n->is_neg = n->i < 0;
        n->u = n->is_neg ? 0 : (uint64_t)n->i;
    } else {
        n->i = n->u > INT64_MAX ? INT64_MAX : (int64_t)n->u;
    }
    n->f = is_signed ? (double)n->i : (double)n->u;
    return true;
}

static bool scalar_num(const gguf_file *g, const char *key, num *n) {
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv || kv->type == GGUF_STRING || kv->type == GGUF_ARRAY) return false;
    return read_num(kv->type, kv->data, n);
}

bool gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out) {
    num n;
    if (!scalar_num(g, key, &n) || !n.is_int || n.is_neg || n.u > UINT32_MAX) return false;
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (kv->type == GGUF_BOOL) return false;
    *out = (uint32_t)n.u;
    return true;
}

bool gguf_get_i64(const gguf_file *g, const char *key, int64_t *out) {
    num n;
    if (!scalar_num(g, key, &n) || !n.is_int) return false;
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (kv->type == GGUF_BOOL) return false;
    if (!n.is_neg && n.u > INT64_MAX) return false;
    *out = n.is_neg ? n.i : (int64_t)n.u;
    return true;
}

bool gguf_get_f32(const gguf_file *g, const char *key, float *out) {
    num n;
    if (!scalar_num(g, key, &n) || n.is_int) return false;
    *out = (float)n.f;
    return true;
}

bool gguf_get_bool(const gguf_file *g, const char *key, bool *out) {
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv || kv->type != GGUF_BOOL) return false;
    *out = kv->data[0] != 0;
    return true;
}

char *gguf_get_str(const gguf_file *g, const char *key) {
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv || kv->type != GGUF_STRING) return NULL;
    return dup_str(&kv->str);
}

static bool arr_num(const gguf_kv *kv, uint64_t i, num *n) {
    if (!kv || kv->type != GGUF_ARRAY || i >= kv->arr_n) return false;
    size_t es = scalar_size(kv->arr_type);
    return es && read_num(kv->arr_type, kv->data + i * es, n);
}

bool gguf_arr_f64(const gguf_kv *kv, uint64_t i, double *out) {
    num n;
    if (!arr_num(kv, i, &n)) return false;
    *out = n.f;
    return true;
}

bool gguf_arr_i64(const gguf_kv *kv, uint64_t i, int64_t *out) {
    num n;
    if (!arr_num(kv, i, &n)) return false;
    if (n.is_int) {
        if (!n.is_neg && n.u > INT64_MAX) return false;
        *out = n.is_neg ? n.i : (int64_t)n.u;
        return true;
    }
    /* A float converts only when it is a whole number in range. */
    if (!(n.f >= -9223372036854775808.0 && n.f < 9223372036854775808.0) ||
        n.f != (double)(int64_t)n.f)
        return false;
    *out = (int64_t)n.f;
    return true;
}

/* Walks to element i of an array of strings or arrays whose bytes start at kv->data; the bytes
 * were validated by gguf_open, the cursor checks bounds again all the same. */
static bool walk_to(const gguf_file *g, const gguf_kv *kv, uint64_t i, rd *r) {
    if (!kv || kv->type != GGUF_ARRAY || i >= kv->arr_n || kv->data < g->map ||
        kv->data > g->map + g->size)
        return false;
    *r = (rd){.p = g->map, .size = g->size, .pos = (size_t)(kv->data - g->map), .path = g->path};
    for (uint64_t k = 0; k < i; k++) {
        if (kv->arr_type == GGUF_STRING) {
            gguf_str s;
            if (!read_str(r, &s, "")) return false;
        } else if (kv->arr_type == GGUF_ARRAY) {
            uint32_t t;
            uint64_t n;
            if (!read_u32(r, &t, "") || !read_u64(r, &n, "") || !read_array_body(r, t, n, 1, NULL))
                return false;
        } else {
            return false;
        }
    }
    return true;
}

bool gguf_arr_str(const gguf_file *g, const gguf_kv *kv, uint64_t i, gguf_str *out) {
    if (!kv || kv->type != GGUF_ARRAY || kv->arr_type != GGUF_STRING || i >= kv->arr_n)
        return false;
    if (kv->arr_strs) {
        *out = kv->arr_strs[i];
        return true;
    }
    rd r;
    return walk_to(g, kv, i, &r) && read_str(&r, out, "");
}

bool gguf_arr_sub(const gguf_file *g, const gguf_kv *kv, uint64_t i, gguf_kv *out) {
    if (!kv || kv->type != GGUF_ARRAY || kv->arr_type != GGUF_ARRAY) return false;
    rd r;
    uint32_t t;
    if (!walk_to(g, kv, i, &r) || !read_u32(&r, &t, "")) return false;
    memset(out, 0, sizeof *out);
    out->type = GGUF_ARRAY;
    out->arr_type = (gguf_type)t;
    if (!read_u64(&r, &out->arr_n, "")) return false;
    out->data = r.p + r.pos;
    return true;
}
