/* jinja2's built-in filters and tests (jinja2/filters.py, jinja2/tests.py) as chat templates
 * use them, plus transformers' tojson (json.dumps with ensure_ascii=False). Each follows the
 * Python source's quirks: "42.5"|int is 42, |first of an empty list is undefined, |indent
 * splits on Python's splitlines. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "chat/jinja_internal.h"

static jv mkstr(jbuf *b) { return jv_str(b->p ? b->p : "", b->n); }
static jv S(jrender *r, jv v) { return jv_to_str(r->c, v); }

static int64_t to_int64(jrender *r, jv v, int64_t dflt) {
    if (v.k == JV_INT) return v.u.i;
    if (v.k == JV_BOOL) return v.u.b;
    if (v.k == JV_UNDEF || v.k == JV_NONE) return dflt;
    jfail(r->c, JINJA_ERR_RENDER, "'%s' object cannot be interpreted as an integer",
          jv_typename(v));
}

/* jinja2's make_attrgetter: "a.b.0" walks items with getitem (digit parts as ints). */
static jv attr_path(jrender *r, jv item, jv attr) {
    if (attr.k == JV_INT) return jinja_getitem(r, item, attr);
    jv a = S(r, attr);
    size_t st = 0;
    for (size_t i = 0; i <= a.u.s.n; i++) {
        if (i < a.u.s.n && a.u.s.s[i] != '.') continue;
        const char *part = a.u.s.s + st;
        size_t pl = i - st;
        bool digits = pl > 0;
        for (size_t k = 0; k < pl; k++)
            if (part[k] < '0' || part[k] > '9') digits = false;
        jv key = digits ? jv_int(strtoll(jstrndup(r->c, part, pl), NULL, 10))
                        : jv_strdup(r->c, part, pl);
        if (item.k == JV_UNDEF)
            jfail(r->c, JINJA_ERR_RENDER, "%s", item.u.undef_why ? item.u.undef_why : "undefined");
        item = jinja_getitem(r, item, key);
        st = i + 1;
    }
    return item;
}

static jv lower_if(jrender *r, jv v, bool case_sensitive) {
    return !case_sensitive && v.k == JV_STR ? jstr_lower(r, v) : v;
}

/* ---- sorting (stable merge sort with Python comparison) ---- */
typedef struct {
    jv key, val;
} keyed;

static void merge_sort(jrender *r, keyed *a, keyed *tmp, size_t n, bool reverse) {
    if (n < 2) return;
    size_t m = n / 2;
    merge_sort(r, a, tmp, m, reverse);
    merge_sort(r, a + m, tmp, n - m, reverse);
    size_t i = 0, j = m, k = 0;
    while (i < m && j < n) {
        int c = jv_compare(r->c, a[j].key, a[i].key);
        bool take_right = reverse ? c > 0 : c < 0;
        tmp[k++] = take_right ? a[j++] : a[i++];
    }
    while (i < m) tmp[k++] = a[i++];
    while (j < n) tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

static jv sorted(jrender *r, jlist *items, keyed *ks, bool reverse) {
    keyed *tmp = jarena_alloc(r->c, (items->n + 1) * sizeof *tmp);
    merge_sort(r, ks, tmp, items->n, reverse);
    jv out = jv_newlist(r->c, items->n, false);
    for (size_t i = 0; i < items->n; i++) jlist_push(r->c, out.u.list, ks[i].val);
    return out;
}

/* ---- tests ---- */
bool jinja_test(jrender *r, const char *name, jv v, const jargs *a, bool *out) {
    jv a0 = jarg(a, 0, NULL, jv_undef(NULL));
    if (!strcmp(name, "defined"))
        *out = v.k != JV_UNDEF;
    else if (!strcmp(name, "undefined"))
        *out = v.k == JV_UNDEF;
    else if (!strcmp(name, "none"))
        *out = v.k == JV_NONE;
    else if (!strcmp(name, "boolean"))
        *out = v.k == JV_BOOL;
    else if (!strcmp(name, "true"))
        *out = v.k == JV_BOOL && v.u.b;
    else if (!strcmp(name, "false"))
        *out = v.k == JV_BOOL && !v.u.b;
    else if (!strcmp(name, "integer"))
        *out = v.k == JV_INT;
    else if (!strcmp(name, "float"))
        *out = v.k == JV_FLOAT;
    else if (!strcmp(name, "number"))
        *out = jv_is_number(v);
    else if (!strcmp(name, "string"))
        *out = v.k == JV_STR;
    else if (!strcmp(name, "mapping"))
        *out = v.k == JV_DICT;
    else if (!strcmp(name, "iterable"))
        *out = v.k == JV_STR || v.k == JV_LIST || v.k == JV_DICT || v.k == JV_UNDEF;
    else if (!strcmp(name, "sequence"))
        *out = v.k == JV_STR || v.k == JV_LIST || v.k == JV_DICT || v.k == JV_UNDEF;
    else if (!strcmp(name, "callable"))
        *out = v.k == JV_FUNC;
    else if (!strcmp(name, "sameas")) {
        *out = v.k == a0.k && (v.k == JV_NONE || (v.k == JV_BOOL && v.u.b == a0.u.b) ||
                               (v.k != JV_BOOL && v.k != JV_NONE && jv_equal(r->c, v, a0) &&
                                (v.k == JV_INT || v.k == JV_LIST || v.k == JV_DICT) &&
                                (v.k != JV_LIST || v.u.list == a0.u.list) &&
                                (v.k != JV_DICT || v.u.dict == a0.u.dict)));
    } else if (!strcmp(name, "even") || !strcmp(name, "odd")) {
        if (v.k == JV_UNDEF)
            jfail(r->c, JINJA_ERR_RENDER, "%s", v.u.undef_why ? v.u.undef_why : "undefined");
        int64_t x = to_int64(r, v, 0);
        *out = (x % 2 == 0) == (name[0] == 'e');
    } else if (!strcmp(name, "divisibleby")) {
        int64_t d = to_int64(r, a0, 0);
        if (d == 0) jfail(r->c, JINJA_ERR_RENDER, "integer division or modulo by zero");
        *out = to_int64(r, v, 0) % d == 0;
    } else if (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "=="))
        *out = jv_equal(r->c, v, a0);
    else if (!strcmp(name, "ne") || !strcmp(name, "!="))
        *out = !jv_equal(r->c, v, a0);
    else if (!strcmp(name, "lt") || !strcmp(name, "lessthan") || !strcmp(name, "<"))
        *out = jv_compare(r->c, v, a0) < 0;
    else if (!strcmp(name, "le") || !strcmp(name, "<="))
        *out = jv_compare(r->c, v, a0) <= 0;
    else if (!strcmp(name, "gt") || !strcmp(name, "greaterthan") || !strcmp(name, ">"))
        *out = jv_compare(r->c, v, a0) > 0;
    else if (!strcmp(name, "ge") || !strcmp(name, ">="))
        *out = jv_compare(r->c, v, a0) >= 0;
    else if (!strcmp(name, "in")) {
        if (a0.k == JV_STR && v.k == JV_STR)
            *out = !v.u.s.n || memmem(a0.u.s.s, a0.u.s.n, v.u.s.s, v.u.s.n) != NULL;
        else if (a0.k == JV_DICT) {
            jv tmp;
            *out = jdict_get(a0.u.dict, v, &tmp);
        } else {
            jlist *l = jv_iterate(r->c, a0);
            *out = false;
            for (size_t i = 0; i < l->n; i++)
                if (jv_equal(r->c, l->v[i], v)) *out = true;
        }
    } else if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        jv s = S(r, v);
        jv m = name[0] == 'l' ? jstr_lower(r, s) : jstr_upper(r, s);
        *out = jv_equal(r->c, m, s);
    } else if (!strcmp(name, "escaped"))
        *out = false;
    else if (!strcmp(name, "filter") || !strcmp(name, "test")) {
        static const char *known_f[] = {
            "trim",        "upper",      "lower",      "title",   "capitalize", "length",  "count",
            "first",       "last",       "join",       "default", "d",          "replace", "list",
            "string",      "int",        "float",      "abs",     "round",      "tojson",  "items",
            "dictsort",    "selectattr", "rejectattr", "select",  "reject",     "map",     "unique",
            "indent",      "safe",       "escape",     "e",       "wordcount",  "center",  "batch",
            "min",         "max",        "sum",        "reverse", "sort",       "attr",    "format",
            "forceescape", NULL};
        static const char *known_t[] = {
            "defined", "undefined", "none",   "boolean",     "true",     "false",    "integer",
            "float",   "number",    "string", "mapping",     "iterable", "sequence", "callable",
            "sameas",  "even",      "odd",    "divisibleby", "eq",       "equalto",  "ne",
            "lt",      "le",        "gt",     "ge",          "in",       "lower",    "upper",
            "escaped", "filter",    "test",   NULL};
        *out = false;
        if (v.k == JV_STR)
            for (const char **k = name[0] == 'f' ? known_f : known_t; *k; k++)
                if (strlen(*k) == v.u.s.n && !memcmp(*k, v.u.s.s, v.u.s.n)) *out = true;
    } else
        return false;
    return true;
}

static bool run_test(jrender *r, jv item, jv test_name, const jargs *a, size_t first_arg) {
    if (test_name.k == JV_UNDEF) return jv_truthy(item);
    jv tn = S(r, test_name);
    jargs ta = {0};
    if (a->npos > first_arg) {
        ta.pos = a->pos + first_arg;
        ta.npos = a->npos - first_arg;
    }
    bool res;
    if (!jinja_test(r, jstrndup(r->c, tn.u.s.s, tn.u.s.n), item, &ta, &res))
        jfail(r->c, JINJA_ERR_RENDER, "No test named '%.*s'.", (int)tn.u.s.n, tn.u.s.s);
    return res;
}

/* ---- filters ---- */
static jv f_indent(jrender *r, jv s, const jargs *a) {
    jv width = jarg(a, 0, "width", jv_int(4));
    bool first = jv_truthy(jarg(a, 1, "first", jv_bool(false)));
    bool blank = jv_truthy(jarg(a, 2, "blank", jv_bool(false)));
    jbuf ind = {0};
    if (width.k == JV_STR)
        jbuf_put(r->c, &ind, width.u.s.s, width.u.s.n);
    else {
        int64_t w = to_int64(r, width, 4);
        if (w > 10000) jfail(r->c, JINJA_ERR_RENDER, "indent width too large");
        for (int64_t i = 0; i < w; i++) jbuf_putc(r->c, &ind, ' ');
    }
    jbuf t = {0};
    jv_str_to(r->c, &t, s);
    jbuf_putc(r->c, &t, '\n');
    jargs none = {0};
    jv lines;
    jinja_str_method(r, "splitlines", mkstr(&t), &none, &lines);
    jlist *l = lines.u.list;
    jbuf b = {0};
    if (first) jbuf_put(r->c, &b, ind.p ? ind.p : "", ind.n);
    for (size_t i = 0; i < l->n; i++) {
        if (i) {
            jbuf_putc(r->c, &b, '\n');
            if (blank || l->v[i].u.s.n) jbuf_put(r->c, &b, ind.p ? ind.p : "", ind.n);
        }
        jbuf_put(r->c, &b, l->v[i].u.s.s, l->v[i].u.s.n);
    }
    return mkstr(&b);
}

static jv f_round(jrender *r, jv v, const jargs *a) {
    int64_t prec = to_int64(r, jarg(a, 0, "precision", jv_int(0)), 0);
    jv method = jarg(a, 1, "method", jv_cstr("common"));
    if (!jv_is_number(v))
        jfail(r->c, JINJA_ERR_RENDER, "type %s doesn't define __round__ method", jv_typename(v));
    double x = jv_num(v);
    if (prec < 0 || prec > 300) jfail(r->c, JINJA_ERR_RENDER, "round: unsupported precision");
    if (method.k == JV_STR && method.u.s.n == 6 && !memcmp(method.u.s.s, "common", 6)) {
        if (v.k != JV_FLOAT) return jv_int(v.k == JV_BOOL ? v.u.b : v.u.i);
        if (!isfinite(x)) return v;
        char buf[400];
        snprintf(buf, sizeof buf, "%.*f", (int)prec, x); /* correctly rounded, half to even */
        return jv_float(strtod(buf, NULL));
    }
    double p10 = pow(10, (double)prec);
    if (method.k == JV_STR && method.u.s.n == 4 && !memcmp(method.u.s.s, "ceil", 4))
        return jv_float(ceil(x * p10) / p10);
    if (method.k == JV_STR && method.u.s.n == 5 && !memcmp(method.u.s.s, "floor", 5))
        return jv_float(floor(x * p10) / p10);
    jfail(r->c, JINJA_ERR_RENDER, "method must be common, ceil or floor");
}

static bool parse_py_int(const char *s, size_t n, int base, int64_t *out) {
    char buf[80];
    size_t k = 0;
    size_t i = 0;
    while (i < n && (s[i] == ' ' || (s[i] >= 9 && s[i] <= 13))) i++;
    while (n > i && (s[n - 1] == ' ' || (s[n - 1] >= 9 && s[n - 1] <= 13))) n--;
    if (i >= n) return false;
    bool prev_digit = false;
    for (; i < n && k < sizeof buf - 1; i++) {
        if (s[i] == '_') {
            if (!prev_digit || i + 1 >= n) return false;
            prev_digit = false;
            continue;
        }
        prev_digit = s[i] != '+' && s[i] != '-';
        buf[k++] = s[i];
    }
    if (i < n) return false;
    buf[k] = 0;
    char *e;
    errno = 0;
    long long v = strtoll(buf, &e, base);
    if (*e || e == buf || errno) return false;
    if (buf[0] == '0' && base == 10 && buf[1]) {
        for (size_t j = 0; buf[j]; j++)
            if (buf[j] != '0') return false;
    }
    *out = v;
    return true;
}

static bool parse_py_float(const char *s, size_t n, double *out) {
    char buf[128];
    size_t i = 0, k = 0;
    while (i < n && (s[i] == ' ' || (s[i] >= 9 && s[i] <= 13))) i++;
    while (n > i && (s[n - 1] == ' ' || (s[n - 1] >= 9 && s[n - 1] <= 13))) n--;
    if (i >= n || n - i >= sizeof buf) return false;
    for (; i < n; i++)
        if (s[i] != '_') buf[k++] = s[i];
    buf[k] = 0;
    if (strpbrk(buf, "xXpP")) return false;
    char *e;
    double v = strtod(buf, &e);
    if (*e || e == buf) return false;
    *out = v;
    return true;
}

static jv f_int(jrender *r, jv v, const jargs *a) {
    jv dflt = jarg(a, 0, "default", jv_int(0));
    int base = (int)to_int64(r, jarg(a, 1, "base", jv_int(10)), 10);
    int64_t i;
    double d;
    switch (v.k) {
    case JV_INT: return v;
    case JV_BOOL: return jv_int(v.u.b);
    case JV_FLOAT:
        if (!isfinite(v.u.f) || fabs(v.u.f) > 9.2e18)
            jfail(r->c, JINJA_ERR_RENDER, "cannot convert float to integer");
        return jv_int((int64_t)v.u.f);
    case JV_STR:
        if (parse_py_int(v.u.s.s, v.u.s.n, base, &i)) return jv_int(i);
        if (parse_py_float(v.u.s.s, v.u.s.n, &d)) {
            if (!isfinite(d) || fabs(d) > 9.2e18)
                jfail(r->c, JINJA_ERR_RENDER, "cannot convert float to integer");
            return jv_int((int64_t)d);
        }
        return dflt;
    default: return dflt;
    }
}

static jv f_float(jrender *r, jv v, const jargs *a) {
    (void)r;
    jv dflt = jarg(a, 0, "default", jv_float(0.0));
    double d;
    if (v.k == JV_FLOAT) return v;
    if (v.k == JV_INT || v.k == JV_BOOL) return jv_float(jv_num(v));
    if (v.k == JV_STR && parse_py_float(v.u.s.s, v.u.s.n, &d)) return jv_float(d);
    return dflt;
}

static jv f_tojson(jrender *r, jv v, const jargs *a) {
    bool ensure_ascii = jv_truthy(jarg(a, 0, "ensure_ascii", jv_bool(false)));
    jv indent = jarg(a, 1, "indent", jv_none());
    jv seps = jarg(a, 2, "separators", jv_none());
    bool sort_keys = jv_truthy(jarg(a, 3, "sort_keys", jv_bool(false)));
    int ind = -1;
    const char *ind_str = NULL;
    if (indent.k == JV_STR)
        ind_str = jstrndup(r->c, indent.u.s.s, indent.u.s.n);
    else if (indent.k == JV_INT || indent.k == JV_BOOL) {
        int64_t w = to_int64(r, indent, 0);
        if (w > 1000) jfail(r->c, JINJA_ERR_RENDER, "tojson: indent too large");
        ind = w < 0 ? 0 : (int)w;
    } else if (indent.k != JV_NONE && indent.k != JV_UNDEF)
        jfail(r->c, JINJA_ERR_RENDER, "tojson: indent must be an int or a string");
    const char *item_sep = (ind >= 0 || ind_str) ? "," : ", ", *key_sep = ": ";
    if (seps.k == JV_LIST) {
        if (seps.u.list->n != 2 || seps.u.list->v[0].k != JV_STR || seps.u.list->v[1].k != JV_STR)
            jfail(r->c, JINJA_ERR_RENDER, "tojson: separators must be a pair of strings");
        item_sep = jstrndup(r->c, seps.u.list->v[0].u.s.s, seps.u.list->v[0].u.s.n);
        key_sep = jstrndup(r->c, seps.u.list->v[1].u.s.s, seps.u.list->v[1].u.s.n);
    }
    jbuf b = {0};
    jv_tojson_to(r->c, &b, v, ensure_ascii, ind, ind_str, item_sep, key_sep, sort_keys, 0);
    return mkstr(&b);
}

static jv f_title(jrender *r, jv v) {
    /* jinja2: split on runs of [-\s({[<], upper the first char of each piece, lower the rest */
    jv s = S(r, v);
    jbuf b = {0};
    bool at_start = true;
    for (size_t i = 0; i < s.u.s.n;) {
        size_t l;
        bool delim = jpy_isspace_at(s.u.s.s, s.u.s.n, i, &l) || jchar_in(s.u.s.s[i], "-({[<");
        if (s.u.s.s[i] == 0) delim = false;
        if (!delim) {
            int32_t cp;
            utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)s.u.s.s + i,
                                                  (utf8proc_ssize_t)(s.u.s.n - i), &cp);
            if (k <= 0) {
                cp = (unsigned char)s.u.s.s[i];
                k = 1;
            }
            int32_t o = at_start ? utf8proc_toupper(cp) : utf8proc_tolower(cp);
            uint8_t tmp[4];
            utf8proc_ssize_t m = utf8proc_encode_char(o, tmp);
            jbuf_put(r->c, &b, (const char *)tmp, (size_t)m);
            l = (size_t)k;
        } else {
            jbuf_put(r->c, &b, s.u.s.s + i, l);
        }
        at_start = delim;
        i += l;
    }
    return mkstr(&b);
}

static jv f_wordcount(jrender *r, jv v) {
    jv s = S(r, v);
    int64_t words = 0;
    bool in = false;
    for (size_t i = 0; i < s.u.s.n;) {
        int32_t cp;
        utf8proc_ssize_t k =
            utf8proc_iterate((const uint8_t *)s.u.s.s + i, (utf8proc_ssize_t)(s.u.s.n - i), &cp);
        if (k <= 0) {
            cp = 0;
            k = 1;
        }
        utf8proc_category_t c = utf8proc_category(cp);
        bool w = cp == '_' || (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
                 (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
        if (w && !in) words++;
        in = w;
        i += (size_t)k;
    }
    return jv_int(words);
}

static jv minmax(jrender *r, jv v, const jargs *a, bool want_max) {
    bool cs = jv_truthy(jarg(a, 0, "case_sensitive", jv_bool(false)));
    jv attr = jarg(a, 1, "attribute", jv_undef(NULL));
    jlist *l = jv_iterate(r->c, v);
    if (!l->n) return jv_undef("No aggregated item, sequence was empty.");
    jv best = l->v[0];
    jv bk = lower_if(r, attr.k != JV_UNDEF ? attr_path(r, best, attr) : best, cs);
    for (size_t i = 1; i < l->n; i++) {
        jv k = lower_if(r, attr.k != JV_UNDEF ? attr_path(r, l->v[i], attr) : l->v[i], cs);
        int c = jv_compare(r->c, k, bk);
        if (want_max ? c > 0 : c < 0) {
            best = l->v[i];
            bk = k;
        }
    }
    return best;
}

static jv select_items(jrender *r, jv v, const jargs *a, bool by_attr, bool keep) {
    if (!jv_truthy(v)) return jv_newlist(r->c, 0, false); /* jinja2: "if value:" */
    jlist *l = jv_iterate(r->c, v);
    jv out = jv_newlist(r->c, l->n, false);
    size_t test_pos = by_attr ? 1 : 0;
    jv attr = by_attr ? jarg(a, 0, NULL, jv_undef(NULL)) : jv_undef(NULL);
    jv test = jarg(a, test_pos, NULL, jv_undef(NULL));
    for (size_t i = 0; i < l->n; i++) {
        jr_step(r);
        jv x = by_attr ? attr_path(r, l->v[i], attr) : l->v[i];
        if (run_test(r, x, test, a, test_pos + 1) == keep) jlist_push(r->c, out.u.list, l->v[i]);
    }
    return out;
}

static jv f_map(jrender *r, jv v, const jargs *a) {
    if (!jv_truthy(v)) return jv_newlist(r->c, 0, false); /* jinja2: "if value:" */
    jlist *l = jv_iterate(r->c, v);
    jv out = jv_newlist(r->c, l->n, false);
    jv attr = jarg(a, SIZE_MAX, "attribute", jv_undef(NULL));
    for (size_t i = 0; i < l->n; i++) {
        jr_step(r);
        jv x;
        if (attr.k != JV_UNDEF) {
            x = attr_path(r, l->v[i], attr);
            if (x.k == JV_UNDEF && jarg_has(a, SIZE_MAX, "default"))
                x = jarg(a, SIZE_MAX, "default", x);
        } else {
            if (!a->npos) jfail(r->c, JINJA_ERR_RENDER, "map requires a filter argument");
            jv fname = S(r, a->pos[0]);
            jargs fa = {.pos = a->pos + 1,
                        .npos = a->npos - 1,
                        .kwn = a->kwn,
                        .kwv = a->kwv,
                        .nkw = a->nkw};
            if (!jinja_filter(r, jstrndup(r->c, fname.u.s.s, fname.u.s.n), l->v[i], &fa, &x))
                jfail(r->c, JINJA_ERR_RENDER, "No filter named '%.*s'.", (int)fname.u.s.n,
                      fname.u.s.s);
        }
        jlist_push(r->c, out.u.list, x);
    }
    return out;
}

static jv f_sort(jrender *r, jv v, const jargs *a) {
    bool reverse = jv_truthy(jarg(a, 0, "reverse", jv_bool(false)));
    bool cs = jv_truthy(jarg(a, 1, "case_sensitive", jv_bool(false)));
    jv attr = jarg(a, 2, "attribute", jv_undef(NULL));
    jlist *l = jv_iterate(r->c, v);
    keyed *ks = jarena_alloc(r->c, (l->n + 1) * sizeof *ks);
    for (size_t i = 0; i < l->n; i++) {
        ks[i].val = l->v[i];
        ks[i].key = lower_if(r, attr.k != JV_UNDEF ? attr_path(r, l->v[i], attr) : l->v[i], cs);
    }
    return sorted(r, l, ks, reverse);
}

static jv f_dictsort(jrender *r, jv v, const jargs *a) {
    bool cs = jv_truthy(jarg(a, 0, "case_sensitive", jv_bool(false)));
    jv by = jarg(a, 1, "by", jv_cstr("key"));
    bool reverse = jv_truthy(jarg(a, 2, "reverse", jv_bool(false)));
    if (v.k != JV_DICT) jfail(r->c, JINJA_ERR_RENDER, "dictsort expects a mapping");
    int pos = 0;
    if (by.k == JV_STR && by.u.s.n == 5 && !memcmp(by.u.s.s, "value", 5))
        pos = 1;
    else if (!(by.k == JV_STR && by.u.s.n == 3 && !memcmp(by.u.s.s, "key", 3)))
        jfail(r->c, JINJA_ERR_RENDER, "You can only sort by either \"key\" or \"value\"");
    jdict *d = v.u.dict;
    jv items = jv_newlist(r->c, d->n, false);
    keyed *ks = jarena_alloc(r->c, (d->n + 1) * sizeof *ks);
    for (size_t i = 0; i < d->n; i++) {
        jv t = jv_newlist(r->c, 2, true);
        jlist_push(r->c, t.u.list, d->keys[i]);
        jlist_push(r->c, t.u.list, d->vals[i]);
        jlist_push(r->c, items.u.list, t);
        ks[i].val = t;
        ks[i].key = lower_if(r, pos ? d->vals[i] : d->keys[i], cs);
    }
    return sorted(r, items.u.list, ks, reverse);
}

static jv f_unique(jrender *r, jv v, const jargs *a) {
    bool cs = jv_truthy(jarg(a, 0, "case_sensitive", jv_bool(false)));
    jv attr = jarg(a, 1, "attribute", jv_undef(NULL));
    jlist *l = jv_iterate(r->c, v);
    jv out = jv_newlist(r->c, l->n, false);
    jv seen = jv_newlist(r->c, l->n, false);
    for (size_t i = 0; i < l->n; i++) {
        jv k = lower_if(r, attr.k != JV_UNDEF ? attr_path(r, l->v[i], attr) : l->v[i], cs);
        bool dup = false;
        for (size_t j = 0; j < seen.u.list->n && !dup; j++) dup = jv_equal(r->c, seen.u.list->v[j], k);
        if (dup) continue;
        jlist_push(r->c, seen.u.list, k);
        jlist_push(r->c, out.u.list, l->v[i]);
    }
    return out;
}

static jv f_join(jrender *r, jv v, const jargs *a) {
    jv sep = S(r, jarg(a, 0, "d", jv_cstr("")));
    jv attr = jarg(a, 1, "attribute", jv_undef(NULL));
    jlist *l = jv_iterate(r->c, v);
    jbuf b = {0};
    for (size_t i = 0; i < l->n; i++) {
        if (i) jbuf_put(r->c, &b, sep.u.s.s, sep.u.s.n);
        jv_str_to(r->c, &b, attr.k != JV_UNDEF ? attr_path(r, l->v[i], attr) : l->v[i]);
    }
    return mkstr(&b);
}

static jv f_sum(jrender *r, jv v, const jargs *a) {
    jv attr = jarg(a, 0, "attribute", jv_undef(NULL));
    jv acc = jarg(a, 1, "start", jv_int(0));
    jlist *l = jv_iterate(r->c, v);
    for (size_t i = 0; i < l->n; i++) {
        jv x = attr.k != JV_UNDEF ? attr_path(r, l->v[i], attr) : l->v[i];
        if (!jv_is_number(x) || !jv_is_number(acc))
            jfail(r->c, JINJA_ERR_RENDER, "unsupported operand type(s) for +: '%s' and '%s'",
                  jv_typename(acc), jv_typename(x));
        if (acc.k != JV_FLOAT && x.k != JV_FLOAT) {
            int64_t s;
            if (__builtin_add_overflow(acc.k == JV_BOOL ? acc.u.b : acc.u.i,
                                       x.k == JV_BOOL ? x.u.b : x.u.i, &s))
                jfail(r->c, JINJA_ERR_RENDER, "integer overflow");
            acc = jv_int(s);
        } else {
            acc = jv_float(jv_num(acc) + jv_num(x));
        }
    }
    return acc;
}

static jv f_batch(jrender *r, jv v, const jargs *a) {
    int64_t n = to_int64(r, jarg(a, 0, "linecount", jv_undef(NULL)), 0);
    jv fill = jarg(a, 1, "fill_with", jv_undef(NULL));
    if (n <= 0) jfail(r->c, JINJA_ERR_RENDER, "batch size must be positive");
    jlist *l = jv_iterate(r->c, v);
    jv out = jv_newlist(r->c, 0, false);
    jv cur = jv_newlist(r->c, 0, false);
    for (size_t i = 0; i < l->n; i++) {
        if ((int64_t)cur.u.list->n == n) {
            jlist_push(r->c, out.u.list, cur);
            cur = jv_newlist(r->c, 0, false);
        }
        jlist_push(r->c, cur.u.list, l->v[i]);
    }
    if (cur.u.list->n) {
        if (fill.k != JV_UNDEF)
            while ((int64_t)cur.u.list->n < n) jlist_push(r->c, cur.u.list, fill);
        jlist_push(r->c, out.u.list, cur);
    }
    return out;
}

static size_t str_len_of(jrender *r, jv v) {
    switch (v.k) {
    case JV_UNDEF: return 0;
    case JV_STR: return jutf8_len(v.u.s.s, v.u.s.n);
    case JV_LIST:
        if (v.u.list->gen) break;
        return v.u.list->n;
    case JV_DICT: return v.u.dict->n;
    default: break;
    }
    jfail(r->c, JINJA_ERR_RENDER, "object of type '%s' has no len()", jv_typename(v));
}

bool jinja_filter(jrender *r, const char *name, jv v, const jargs *a, jv *out) {
    jctx_work(r->c, v.k == JV_STR ? JWORK_BYTES(v.u.s.n) : 1);
    const char *n = name;
    if (!strcmp(n, "trim"))
        *out = jstr_strip(r, S(r, v), jarg(a, 0, "chars", jv_none()), 3);
    else if (!strcmp(n, "upper"))
        *out = jstr_upper(r, S(r, v));
    else if (!strcmp(n, "lower"))
        *out = jstr_lower(r, S(r, v));
    else if (!strcmp(n, "capitalize"))
        *out = jstr_capitalize(r, S(r, v));
    else if (!strcmp(n, "title"))
        *out = f_title(r, v);
    else if (!strcmp(n, "length") || !strcmp(n, "count"))
        *out = jv_int((int64_t)str_len_of(r, v));
    else if (!strcmp(n, "first")) {
        jlist *l = jv_iterate(r->c, v);
        *out = l->n ? l->v[0] : jv_undef("No first item, sequence was empty.");
    } else if (!strcmp(n, "last")) {
        jlist *l = jv_iterate(r->c, v);
        *out = l->n ? l->v[l->n - 1] : jv_undef("No last item, sequence was empty.");
    } else if (!strcmp(n, "join"))
        *out = f_join(r, v, a);
    else if (!strcmp(n, "default") || !strcmp(n, "d")) {
        bool boolean = jv_truthy(jarg(a, 1, "boolean", jv_bool(false)));
        bool use = v.k == JV_UNDEF || (boolean && !jv_truthy(v));
        *out = use ? jarg(a, 0, "default_value", jv_cstr("")) : v;
    } else if (!strcmp(n, "replace")) {
        jv s = S(r, v);
        jv old = S(r, jarg(a, 0, "old", jv_cstr(""))), neu = S(r, jarg(a, 1, "new", jv_cstr("")));
        jv cnt = jarg(a, 2, "count", jv_none());
        *out = jstr_replace(r, s, old, neu, cnt.k == JV_NONE ? -1 : to_int64(r, cnt, -1));
    } else if (!strcmp(n, "list")) {
        jlist *l = jv_iterate(r->c, v);
        jv c = jv_newlist(r->c, l->n, false);
        for (size_t i = 0; i < l->n; i++) jlist_push(r->c, c.u.list, l->v[i]);
        *out = c;
    } else if (!strcmp(n, "string")) {
        *out = S(r, v);
    } else if (!strcmp(n, "safe")) {
        *out = S(r, v);
        out->safe = true;
    } else if (!strcmp(n, "int"))
        *out = f_int(r, v, a);
    else if (!strcmp(n, "float"))
        *out = f_float(r, v, a);
    else if (!strcmp(n, "abs")) {
        if (v.k == JV_FLOAT)
            *out = jv_float(fabs(v.u.f));
        else if (v.k == JV_INT || v.k == JV_BOOL) {
            int64_t x = v.k == JV_BOOL ? v.u.b : v.u.i;
            if (x == INT64_MIN) jfail(r->c, JINJA_ERR_RENDER, "integer overflow");
            *out = jv_int(x < 0 ? -x : x);
        } else
            jfail(r->c, JINJA_ERR_RENDER, "bad operand type for abs(): '%s'", jv_typename(v));
    } else if (!strcmp(n, "round"))
        *out = f_round(r, v, a);
    else if (!strcmp(n, "tojson"))
        *out = f_tojson(r, v, a);
    else if (!strcmp(n, "items")) {
        if (v.k == JV_UNDEF)
            *out = jv_newlist(r->c, 0, false);
        else if (v.k != JV_DICT)
            jfail(r->c, JINJA_ERR_RENDER, "Can only get item pairs from a mapping.");
        else {
            jargs none = {0};
            jv m = jinja_getattr(r, v, "items");
            *out = jv_generator(jr_call(r, m, &none));
        }
    } else if (!strcmp(n, "dictsort"))
        *out = f_dictsort(r, v, a);
    else if (!strcmp(n, "selectattr"))
        *out = jv_generator(select_items(r, v, a, true, true));
    else if (!strcmp(n, "rejectattr"))
        *out = jv_generator(select_items(r, v, a, true, false));
    else if (!strcmp(n, "select"))
        *out = jv_generator(select_items(r, v, a, false, true));
    else if (!strcmp(n, "reject"))
        *out = jv_generator(select_items(r, v, a, false, false));
    else if (!strcmp(n, "map"))
        *out = jv_generator(f_map(r, v, a));
    else if (!strcmp(n, "unique"))
        *out = jv_generator(f_unique(r, v, a));
    else if (!strcmp(n, "indent"))
        *out = f_indent(r, v, a);
    else if (!strcmp(n, "escape") || !strcmp(n, "e") || !strcmp(n, "forceescape"))
        *out = jv_html_escape(r->c, v);
    else if (!strcmp(n, "wordcount"))
        *out = f_wordcount(r, v);
    else if (!strcmp(n, "center")) {
        jargs pa = {.pos = (jv[]){jarg(a, 0, "width", jv_int(80))}, .npos = 1};
        jinja_str_method(r, "center", S(r, v), &pa, out);
    } else if (!strcmp(n, "batch"))
        *out = jv_generator(f_batch(r, v, a));
    else if (!strcmp(n, "min"))
        *out = minmax(r, v, a, false);
    else if (!strcmp(n, "max"))
        *out = minmax(r, v, a, true);
    else if (!strcmp(n, "sum"))
        *out = f_sum(r, v, a);
    else if (!strcmp(n, "reverse")) {
        if (v.k == JV_STR) {
            jlist *l = jv_iterate(r->c, v);
            jbuf b = {0};
            for (size_t i = l->n; i-- > 0;) jbuf_put(r->c, &b, l->v[i].u.s.s, l->v[i].u.s.n);
            *out = mkstr(&b);
        } else {
            jlist *l = jv_iterate(r->c, v);
            jv c = jv_newlist(r->c, l->n, false);
            for (size_t i = l->n; i-- > 0;) jlist_push(r->c, c.u.list, l->v[i]);
            *out = jv_generator(c);
        }
    } else if (!strcmp(n, "sort"))
        *out = f_sort(r, v, a);
    else if (!strcmp(n, "attr")) {
        jv nm = S(r, jarg(a, 0, "name", jv_cstr("")));
        if (v.k == JV_UNDEF)
            jfail(r->c, JINJA_ERR_RENDER, "%s", v.u.undef_why ? v.u.undef_why : "undefined");
        jv res = jinja_getattr(r, v, jstrndup(r->c, nm.u.s.s, nm.u.s.n));
        *out = (v.k == JV_DICT && res.k != JV_FUNC) ? jv_undef("no such attribute") : res;
    } else if (!strcmp(n, "format"))
        *out = jinja_printf(r, S(r, v), a);
    else
        return false;
    return true;
}
