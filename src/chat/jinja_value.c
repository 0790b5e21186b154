/* Runtime values of the Jinja interpreter and how Python shows them: str() and repr() of
 * None/True/ints/floats/strings/lists/dicts exactly as CPython prints them, json.dumps as HF's
 * tojson calls it, and the arena that owns every value of one render. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja_internal.h"

/* ---- arena ---- */
struct jarena_block {
    jarena_block *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

void *jarena_alloc(jctx *c, size_t n) {
    jarena *a = c->arena;
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (a->used + n > a->cap || n > a->cap) jfail(c, JINJA_ERR_RENDER, "memory limit reached");
    jarena_block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t sz = n > 65536 ? n : 65536;
        b = malloc(sizeof *b + sz);
        if (!b) jfail(c, JINJA_ERR_NOMEM, "out of memory");
        b->size = sz;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

void jarena_free_all(jarena *a) {
    jarena_block *b = a->head;
    while (b) {
        jarena_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
    a->used = 0;
}

void jfail(jctx *c, jinja_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    c->status = st;
    longjmp(c->jb, 1);
}

void jctx_work(jctx *c, uint64_t units) {
    c->steps += units;
    if (c->max_steps && c->steps > c->max_steps)
        jfail(c, JINJA_ERR_RENDER, "template ran too long (more than %llu steps)",
              (unsigned long long)c->max_steps);
}

char *jstrndup(jctx *c, const char *s, size_t n) {
    char *p = jarena_alloc(c, n + 1);
    if (n) memcpy(p, s, n);
    return p;
}

/* ---- buffer ---- */
void jbuf_put(jctx *c, jbuf *b, const char *s, size_t n) {
    if (b->limit && b->n + n > b->limit) jfail(c, JINJA_ERR_RENDER, "output limit reached");
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = jarena_alloc(c, cap);
        if (b->n) memcpy(p, b->p, b->n);
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
void jbuf_puts(jctx *c, jbuf *b, const char *s) { jbuf_put(c, b, s, strlen(s)); }
void jbuf_putc(jctx *c, jbuf *b, char ch) { jbuf_put(c, b, &ch, 1); }
void jbuf_printf(jctx *c, jbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof tmp) {
        jbuf_put(c, b, tmp, (size_t)n);
    } else if (n > 0) { /* a wide field: format it again into arena memory of its size */
        char *big = jarena_alloc(c, (size_t)n + 1);
        vsnprintf(big, (size_t)n + 1, fmt, again);
        jbuf_put(c, b, big, (size_t)n);
    }
    va_end(again);
}

/* ---- constructors ---- */
jv jv_undef(const char *why) { return (jv){.k = JV_UNDEF, .u.undef_why = why}; }
jv jv_none(void) { return (jv){.k = JV_NONE}; }
jv jv_bool(bool b) { return (jv){.k = JV_BOOL, .u.b = b}; }
jv jv_int(int64_t i) { return (jv){.k = JV_INT, .u.i = i}; }
jv jv_float(double f) { return (jv){.k = JV_FLOAT, .u.f = f}; }
jv jv_str(const char *s, size_t n) { return (jv){.k = JV_STR, .u.s = {s, n}}; }
jv jv_cstr(const char *s) { return jv_str(s, strlen(s)); }
jv jv_strdup(jctx *c, const char *s, size_t n) { return jv_str(jstrndup(c, s, n), n); }

jv jv_newlist(jctx *c, size_t cap, bool tuple) {
    jlist *l = jarena_alloc(c, sizeof *l);
    l->tuple = tuple;
    if (cap) {
        l->v = jarena_alloc(c, cap * sizeof(jv));
        l->cap = cap;
    }
    return (jv){.k = JV_LIST, .u.list = l};
}

jv jv_newdict(jctx *c) {
    jdict *d = jarena_alloc(c, sizeof *d);
    return (jv){.k = JV_DICT, .u.dict = d};
}

void jlist_push(jctx *c, jlist *l, jv v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        jv *nv = jarena_alloc(c, cap * sizeof(jv));
        if (l->n) memcpy(nv, l->v, l->n * sizeof(jv));
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
}

/* Dict keys: strings, numbers, None, or tuples of them; the source text bounds a dict's size,
 * so lookups are not counted as work. */
static bool key_equal(jv a, jv b) {
    if (a.k == JV_STR && b.k == JV_STR)
        return a.u.s.n == b.u.s.n && !memcmp(a.u.s.s, b.u.s.s, a.u.s.n);
    return jv_equal(NULL, a, b);
}

void jdict_set(jctx *c, jdict *d, jv key, jv val) {
    for (size_t i = 0; i < d->n; i++)
        if (key_equal(d->keys[i], key)) {
            d->vals[i] = val;
            return;
        }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        jv *nk = jarena_alloc(c, cap * sizeof(jv)), *nv = jarena_alloc(c, cap * sizeof(jv));
        if (d->n) {
            memcpy(nk, d->keys, d->n * sizeof(jv));
            memcpy(nv, d->vals, d->n * sizeof(jv));
        }
        d->keys = nk;
        d->vals = nv;
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n++] = val;
}

bool jdict_get(const jdict *d, jv key, jv *out) {
    for (size_t i = 0; i < d->n; i++)
        if (key_equal(d->keys[i], key)) {
            *out = d->vals[i];
            return true;
        }
    return false;
}

bool jdict_gets(const jdict *d, const char *key, jv *out) {
    return jdict_get(d, jv_cstr(key), out);
}

/* ---- Python semantics ---- */
bool jv_truthy(jv v) {
    switch (v.k) {
    case JV_UNDEF:
    case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s.n != 0;
    case JV_LIST: return v.u.list->gen || v.u.list->n != 0;
    case JV_DICT: return v.u.dict->n != 0;
    default: return true;
    }
}

bool jv_is_number(jv v) { return v.k == JV_INT || v.k == JV_FLOAT || v.k == JV_BOOL; }
double jv_num(jv v) {
    return v.k == JV_FLOAT ? v.u.f : v.k == JV_INT ? (double)v.u.i : v.k == JV_BOOL ? v.u.b : 0;
}

bool jv_equal(jctx *c, jv a, jv b) {
    if (c) jctx_work(c, a.k == JV_STR && b.k == JV_STR ? JWORK_BYTES(a.u.s.n) : 1);
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.k != JV_FLOAT && b.k != JV_FLOAT) {
            int64_t x = a.k == JV_BOOL ? a.u.b : a.u.i, y = b.k == JV_BOOL ? b.u.b : b.u.i;
            return x == y;
        }
        return jv_num(a) == jv_num(b);
    }
    if (a.k != b.k) return false;
    switch (a.k) {
    case JV_UNDEF:
    case JV_NONE: return true;
    case JV_STR: return a.u.s.n == b.u.s.n && !memcmp(a.u.s.s, b.u.s.s, a.u.s.n);
    case JV_LIST:
        if (a.u.list->gen || b.u.list->gen) return a.u.list == b.u.list;
        if (a.u.list->tuple != b.u.list->tuple || a.u.list->n != b.u.list->n) return false;
        for (size_t i = 0; i < a.u.list->n; i++)
            if (!jv_equal(c, a.u.list->v[i], b.u.list->v[i])) return false;
        return true;
    case JV_DICT:
        if (a.u.dict->n != b.u.dict->n) return false;
        for (size_t i = 0; i < a.u.dict->n; i++) {
            jv o;
            if (!jdict_get(b.u.dict, a.u.dict->keys[i], &o) || !jv_equal(c, a.u.dict->vals[i], o))
                return false;
        }
        return true;
    case JV_NS: return a.u.dict == b.u.dict;
    case JV_FUNC: return a.u.fn == b.u.fn;
    case JV_LOOP: return a.u.loop == b.u.loop;
    default: return false;
    }
}

const char *jv_typename(jv v) {
    static const char *names[] = {"Undefined", "NoneType", "bool",       "int",
                                  "float",     "str",      "list",       "dict",
                                  "Namespace", "function", "LoopContext"};
    if (v.k == JV_LIST && v.u.list->tuple) return "tuple";
    if (v.k == JV_LIST && v.u.list->gen) return "generator";
    return names[v.k];
}

int jv_compare(jctx *c, jv a, jv b) {
    jctx_work(c, a.k == JV_STR && b.k == JV_STR ? JWORK_BYTES(a.u.s.n) : 1);
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.k != JV_FLOAT && b.k != JV_FLOAT) {
            int64_t x = a.k == JV_BOOL ? a.u.b : a.u.i, y = b.k == JV_BOOL ? b.u.b : b.u.i;
            return x < y ? -1 : x > y;
        }
        double x = jv_num(a), y = jv_num(b);
        return x < y ? -1 : x > y;
    }
    if (a.k == JV_STR && b.k == JV_STR) {
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int r = memcmp(a.u.s.s, b.u.s.s, n); /* UTF-8 byte order is code point order */
        if (r) return r < 0 ? -1 : 1;
        return a.u.s.n < b.u.s.n ? -1 : a.u.s.n > b.u.s.n;
    }
    if (a.k == JV_LIST && b.k == JV_LIST && a.u.list->tuple == b.u.list->tuple) {
        size_t n = a.u.list->n < b.u.list->n ? a.u.list->n : b.u.list->n;
        for (size_t i = 0; i < n; i++) {
            if (jv_equal(c, a.u.list->v[i], b.u.list->v[i])) continue;
            return jv_compare(c, a.u.list->v[i], b.u.list->v[i]);
        }
        return a.u.list->n < b.u.list->n ? -1 : a.u.list->n > b.u.list->n;
    }
    if (a.k == JV_UNDEF || b.k == JV_UNDEF)
        jfail(c, JINJA_ERR_RENDER, "%s is undefined",
              a.k == JV_UNDEF && a.u.undef_why ? a.u.undef_why
              : b.u.undef_why                  ? b.u.undef_why
                                               : "value");
    jfail(c, JINJA_ERR_RENDER, "'<' not supported between instances of '%s' and '%s'",
          jv_typename(a), jv_typename(b));
}

/* ---- UTF-8 helpers ---- */
static size_t u8_clen(unsigned char ch) {
    return ch < 0x80 ? 1 : ch < 0xE0 ? 2 : ch < 0xF0 ? 3 : 4;
}

size_t jutf8_len(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) k++;
    return k;
}

size_t jutf8_offset(const char *s, size_t n, size_t ci) {
    size_t i = 0;
    while (ci > 0 && i < n) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
        ci--;
    }
    return i;
}

static uint32_t u8_decode(const char *s, size_t n, size_t pos, size_t *clen) {
    const unsigned char *p = (const unsigned char *)s + pos;
    size_t l = u8_clen(p[0]);
    if (pos + l > n) l = 1;
    *clen = l;
    if (l == 1) return p[0];
    if (l == 2) return ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
    if (l == 3) return ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    return ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
}

/* Python's str.isspace / regex \s on one code point. */
bool jpy_isspace_at(const char *s, size_t n, size_t pos, size_t *clen) {
    uint32_t cp = u8_decode(s, n, pos, clen);
    if (cp == ' ' || (cp >= 9 && cp <= 13) || (cp >= 0x1c && cp <= 0x1f)) return true;
    return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

/* ---- str() and repr() ---- */
void jv_float_repr(char *out, size_t cap, double f) {
    if (isnan(f)) {
        snprintf(out, cap, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(out, cap, f < 0 ? "-inf" : "inf");
        return;
    }
    char buf[64];
    int prec;
    for (prec = 1; prec <= 17; prec++) { /* shortest digits that round-trip, as repr() */
        snprintf(buf, sizeof buf, "%.*e", prec - 1, f);
        if (strtod(buf, NULL) == f) break;
    }
    /* buf is d.ddde[+-]XX: split mantissa digits and exponent */
    char digits[32];
    int nd = 0, exp10;
    const char *p = buf;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    char res[64];
    int k = 0;
    if (neg) res[k++] = '-';
    if (exp10 < -4 || exp10 >= 16) {
        res[k++] = digits[0];
        if (nd > 1) {
            res[k++] = '.';
            for (int i = 1; i < nd; i++) res[k++] = digits[i];
        }
        k += snprintf(res + k, sizeof res - (size_t)k, "e%c%02d", exp10 < 0 ? '-' : '+',
                      exp10 < 0 ? -exp10 : exp10);
    } else if (exp10 < 0) {
        res[k++] = '0';
        res[k++] = '.';
        for (int i = -1; i > exp10; i--) res[k++] = '0';
        for (int i = 0; i < nd; i++) res[k++] = digits[i];
    } else {
        for (int i = 0; i <= exp10; i++) res[k++] = i < nd ? digits[i] : '0';
        res[k++] = '.';
        if (nd > exp10 + 1)
            for (int i = exp10 + 1; i < nd; i++) res[k++] = digits[i];
        else
            res[k++] = '0';
    }
    res[k] = 0;
    snprintf(out, cap, "%s", res);
}

static void repr_str(jctx *c, jbuf *b, const char *s, size_t n) {
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    jbuf_putc(c, b, q);
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == q || ch == '\\') {
            jbuf_putc(c, b, '\\');
            jbuf_putc(c, b, (char)ch);
        } else if (ch == '\n') {
            jbuf_puts(c, b, "\\n");
        } else if (ch == '\r') {
            jbuf_puts(c, b, "\\r");
        } else if (ch == '\t') {
            jbuf_puts(c, b, "\\t");
        } else if (ch < 0x20 || ch == 0x7f) {
            jbuf_printf(c, b, "\\x%02x", ch);
        } else if (ch >= 0x80) {
            size_t l;
            uint32_t cp = u8_decode(s, n, i, &l);
            if (cp < 0xa0)
                jbuf_printf(c, b, "\\x%02x", cp);
            else if (cp == 0xad || cp == 0x2028 || cp == 0x2029 || (cp >= 0x200b && cp <= 0x200f) ||
                     cp == 0xfeff || (cp >= 0xd800 && cp <= 0xdfff))
                jbuf_printf(c, b, "\\u%04x", cp);
            else
                jbuf_put(c, b, s + i, l);
            i += l;
            continue;
        } else {
            jbuf_putc(c, b, (char)ch);
        }
        i++;
    }
    jbuf_putc(c, b, q);
}

void jv_repr_to(jctx *c, jbuf *b, jv v) {
    switch (v.k) {
    case JV_STR: repr_str(c, b, v.u.s.s, v.u.s.n); return;
    case JV_UNDEF: jbuf_puts(c, b, "Undefined"); return;
    case JV_LIST: {
        jlist *l = v.u.list;
        if (l->gen) {
            jbuf_puts(c, b, "<generator object>");
            return;
        }
        jbuf_putc(c, b, l->tuple ? '(' : '[');
        for (size_t i = 0; i < l->n; i++) {
            if (i) jbuf_puts(c, b, ", ");
            jv_repr_to(c, b, l->v[i]);
        }
        if (l->tuple && l->n == 1) jbuf_putc(c, b, ',');
        jbuf_putc(c, b, l->tuple ? ')' : ']');
        return;
    }
    case JV_DICT: {
        jdict *d = v.u.dict;
        jbuf_putc(c, b, '{');
        for (size_t i = 0; i < d->n; i++) {
            if (i) jbuf_puts(c, b, ", ");
            jv_repr_to(c, b, d->keys[i]);
            jbuf_puts(c, b, ": ");
            jv_repr_to(c, b, d->vals[i]);
        }
        jbuf_putc(c, b, '}');
        return;
    }
    default: jv_str_to(c, b, v);
    }
}

void jv_str_to(jctx *c, jbuf *b, jv v) {
    char tmp[64];
    switch (v.k) {
    case JV_UNDEF: return;
    case JV_NONE: jbuf_puts(c, b, "None"); return;
    case JV_BOOL: jbuf_puts(c, b, v.u.b ? "True" : "False"); return;
    case JV_INT: jbuf_printf(c, b, "%lld", (long long)v.u.i); return;
    case JV_FLOAT:
        jv_float_repr(tmp, sizeof tmp, v.u.f);
        jbuf_puts(c, b, tmp);
        return;
    case JV_STR: jbuf_put(c, b, v.u.s.s, v.u.s.n); return;
    case JV_LIST:
    case JV_DICT: jv_repr_to(c, b, v); return;
    case JV_NS: {
        jbuf_puts(c, b, "<Namespace ");
        jv d = {.k = JV_DICT, .u.dict = v.u.dict};
        jv_repr_to(c, b, d);
        jbuf_putc(c, b, '>');
        return;
    }
    case JV_FUNC: jbuf_printf(c, b, "<function %s>", v.u.fn->name ? v.u.fn->name : "?"); return;
    case JV_LOOP: jbuf_puts(c, b, "<LoopContext>"); return;
    }
}

jv jv_to_str(jctx *c, jv v) {
    if (v.k == JV_STR) return v;
    jbuf b = {0};
    jv_str_to(c, &b, v);
    return jv_str(b.p ? b.p : "", b.n);
}

/* ---- json.dumps ---- */
static void json_str(jctx *c, jbuf *b, const char *s, size_t n, bool ensure_ascii) {
    jbuf_putc(c, b, '"');
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"')
            jbuf_puts(c, b, "\\\"");
        else if (ch == '\\')
            jbuf_puts(c, b, "\\\\");
        else if (ch == '\n')
            jbuf_puts(c, b, "\\n");
        else if (ch == '\r')
            jbuf_puts(c, b, "\\r");
        else if (ch == '\t')
            jbuf_puts(c, b, "\\t");
        else if (ch == '\b')
            jbuf_puts(c, b, "\\b");
        else if (ch == '\f')
            jbuf_puts(c, b, "\\f");
        else if (ch < 0x20 || (ensure_ascii && ch == 0x7f))
            jbuf_printf(c, b, "\\u%04x", ch);
        else if (ch >= 0x80 && ensure_ascii) {
            size_t l;
            uint32_t cp = u8_decode(s, n, i, &l);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                jbuf_printf(c, b, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
            } else {
                jbuf_printf(c, b, "\\u%04x", cp);
            }
            i += l;
            continue;
        } else
            jbuf_putc(c, b, (char)ch);
        i++;
    }
    jbuf_putc(c, b, '"');
}

static void json_newline(jctx *c, jbuf *b, int indent, const char *indent_str, int level) {
    jbuf_putc(c, b, '\n');
    for (int i = 0; i < level; i++) {
        if (indent_str)
            jbuf_puts(c, b, indent_str);
        else
            for (int k = 0; k < indent; k++) jbuf_putc(c, b, ' ');
    }
}

static int cmp_keys(const void *x, const void *y) {
    const jv *a = *(const jv *const *)x, *b = *(const jv *const *)y;
    size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
    int r = memcmp(a->u.s.s, b->u.s.s, n);
    if (r) return r;
    return a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n;
}

void jv_tojson_to(jctx *c, jbuf *b, jv v, bool ensure_ascii, int indent, const char *indent_str,
                  const char *item_sep, const char *key_sep, bool sort_keys, int level) {
    bool pretty = indent >= 0 || indent_str;
    if (level > 200) jfail(c, JINJA_ERR_RENDER, "tojson: nesting too deep");
    switch (v.k) {
    case JV_NONE: jbuf_puts(c, b, "null"); return;
    case JV_BOOL: jbuf_puts(c, b, v.u.b ? "true" : "false"); return;
    case JV_INT: jbuf_printf(c, b, "%lld", (long long)v.u.i); return;
    case JV_FLOAT:
        if (isnan(v.u.f))
            jbuf_puts(c, b, "NaN");
        else if (isinf(v.u.f))
            jbuf_puts(c, b, v.u.f > 0 ? "Infinity" : "-Infinity");
        else
            jv_str_to(c, b, v);
        return;
    case JV_STR: json_str(c, b, v.u.s.s, v.u.s.n, ensure_ascii); return;
    case JV_LIST: {
        jlist *l = v.u.list;
        if (l->gen) jfail(c, JINJA_ERR_RENDER, "Object of type generator is not JSON serializable");
        if (!l->n) {
            jbuf_puts(c, b, "[]");
            return;
        }
        jbuf_putc(c, b, '[');
        for (size_t i = 0; i < l->n; i++) {
            if (i) jbuf_puts(c, b, item_sep);
            if (pretty) json_newline(c, b, indent, indent_str, level + 1);
            jv_tojson_to(c, b, l->v[i], ensure_ascii, indent, indent_str, item_sep, key_sep,
                         sort_keys, level + 1);
        }
        if (pretty) json_newline(c, b, indent, indent_str, level);
        jbuf_putc(c, b, ']');
        return;
    }
    case JV_DICT: {
        jdict *d = v.u.dict;
        if (!d->n) {
            jbuf_puts(c, b, "{}");
            return;
        }
        jv **order = jarena_alloc(c, d->n * sizeof *order);
        jv *keys = jarena_alloc(c, d->n * sizeof *keys);
        for (size_t i = 0; i < d->n; i++) {
            jv k = d->keys[i];
            if (k.k == JV_STR)
                keys[i] = k;
            else if (k.k == JV_NONE)
                keys[i] = jv_cstr("null");
            else if (k.k == JV_BOOL)
                keys[i] = jv_cstr(k.u.b ? "true" : "false");
            else if (k.k == JV_INT || k.k == JV_FLOAT)
                keys[i] = jv_to_str(c, k);
            else
                jfail(c, JINJA_ERR_RENDER, "keys must be str, int, float, bool or None, not %s",
                      jv_typename(k));
            order[i] = &keys[i];
        }
        if (sort_keys) qsort(order, d->n, sizeof *order, cmp_keys);
        jbuf_putc(c, b, '{');
        for (size_t j = 0; j < d->n; j++) {
            size_t i = (size_t)(order[j] - keys);
            if (j) jbuf_puts(c, b, item_sep);
            if (pretty) json_newline(c, b, indent, indent_str, level + 1);
            json_str(c, b, keys[i].u.s.s, keys[i].u.s.n, ensure_ascii);
            jbuf_puts(c, b, key_sep);
            jv_tojson_to(c, b, d->vals[i], ensure_ascii, indent, indent_str, item_sep, key_sep,
                         sort_keys, level + 1);
        }
        if (pretty) json_newline(c, b, indent, indent_str, level);
        jbuf_putc(c, b, '}');
        return;
    }
    default:
        jfail(c, JINJA_ERR_RENDER, "Object of type %s is not JSON serializable", jv_typename(v));
    }
}

/* ---- JSON in ---- */
jv jv_from_json(jctx *c, const void *jp) {
    const json_t *j = jp;
    switch (json_typeof(j)) {
    case JSON_NULL: return jv_none();
    case JSON_TRUE: return jv_bool(true);
    case JSON_FALSE: return jv_bool(false);
    case JSON_INTEGER: return jv_int((int64_t)json_integer_value(j));
    case JSON_REAL: return jv_float(json_real_value(j));
    case JSON_STRING: return jv_strdup(c, json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        jv l = jv_newlist(c, n, false);
        for (size_t i = 0; i < n; i++)
            jlist_push(c, l.u.list, jv_from_json(c, json_array_get(j, i)));
        return l;
    }
    case JSON_OBJECT: {
        jv d = jv_newdict(c);
        const char *k;
        json_t *val;
        json_object_foreach((json_t *)j, k, val) {
            jdict_set(c, d.u.dict, jv_strdup(c, k, strlen(k)), jv_from_json(c, val));
        }
        return d;
    }
    }
    return jv_none();
}

jlist *jv_iterate(jctx *c, jv v) {
    switch (v.k) {
    case JV_LIST: jctx_work(c, v.u.list->n); break;
    case JV_DICT: jctx_work(c, v.u.dict->n); break;
    case JV_STR: jctx_work(c, v.u.s.n); break;
    default: break;
    }
    switch (v.k) {
    case JV_UNDEF: return jv_newlist(c, 0, false).u.list;
    case JV_LIST:
        if (v.u.list->gen) {
            if (v.u.list->consumed) return jv_newlist(c, 0, false).u.list;
            v.u.list->consumed = true;
        }
        return v.u.list;
    case JV_DICT: {
        jv l = jv_newlist(c, v.u.dict->n, false);
        for (size_t i = 0; i < v.u.dict->n; i++) jlist_push(c, l.u.list, v.u.dict->keys[i]);
        return l.u.list;
    }
    case JV_STR: {
        jv l = jv_newlist(c, v.u.s.n, false);
        for (size_t i = 0; i < v.u.s.n;) {
            size_t k = u8_clen((unsigned char)v.u.s.s[i]);
            if (i + k > v.u.s.n) k = v.u.s.n - i;
            jlist_push(c, l.u.list, jv_str(v.u.s.s + i, k));
            i += k;
        }
        return l.u.list;
    }
    default: jfail(c, JINJA_ERR_RENDER, "'%s' object is not iterable", jv_typename(v));
    }
}

jv jv_generator(jv list) {
    list.u.list->gen = true;
    return list;
}

jv jv_html_escape(jctx *c, jv v) {
    if (v.k == JV_STR && v.safe) return v;
    jv s = jv_to_str(c, v);
    jbuf b = {0};
    for (size_t i = 0; i < s.u.s.n; i++) {
        char ch = s.u.s.s[i];
        if (ch == '&')
            jbuf_puts(c, &b, "&amp;");
        else if (ch == '<')
            jbuf_puts(c, &b, "&lt;");
        else if (ch == '>')
            jbuf_puts(c, &b, "&gt;");
        else if (ch == '"')
            jbuf_puts(c, &b, "&#34;");
        else if (ch == '\'')
            jbuf_puts(c, &b, "&#39;");
        else
            jbuf_putc(c, &b, ch);
    }
    jv out = jv_str(b.p ? b.p : "", b.n);
    out.safe = true;
    return out;
}
