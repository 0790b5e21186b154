/* What "x.name", "x[key]" and "x.method(...)" mean inside the sandbox: Python's str, dict and
 * list methods that templates call (the immutable sandbox refuses the mutating ones), the loop
 * object's attributes, and the globals (range, namespace, dict, joiner, raise_exception,
 * strftime_now). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "chat/jinja_internal.h"

static jv mkstr(jbuf *b) { return jv_str(b->p ? b->p : "", b->n); }

static _Noreturn void type_err(jrender *r, const char *what, jv v) {
    jfail(r->c, JINJA_ERR_RENDER, "%s, got '%s'", what, jv_typename(v));
}

static jv need_str(jrender *r, jv v, const char *what) {
    if (v.k != JV_STR) {
        if (v.k == JV_UNDEF && v.u.undef_why) jfail(r->c, JINJA_ERR_RENDER, "%s", v.u.undef_why);
        type_err(r, what, v);
    }
    return v;
}

/* ---- case mapping (utf8proc simple mappings) ---- */
typedef int32_t (*cpmap)(int32_t);
static int32_t map_upper(int32_t c) { return utf8proc_toupper(c); }
static int32_t map_lower(int32_t c) { return utf8proc_tolower(c); }
static int32_t map_title(int32_t c) { return utf8proc_totitle(c); }
static bool is_cased(int32_t c) { return utf8proc_toupper(c) != c || utf8proc_tolower(c) != c; }

static void put_cp(jrender *r, jbuf *b, int32_t cp) {
    uint8_t tmp[4];
    utf8proc_ssize_t n = utf8proc_encode_char(cp, tmp);
    jbuf_put(r->c, b, (const char *)tmp, (size_t)n);
}

static size_t next_cp(const char *s, size_t n, size_t i, int32_t *cp) {
    utf8proc_ssize_t l = utf8proc_iterate((const uint8_t *)s + i, (utf8proc_ssize_t)(n - i), cp);
    if (l <= 0) {
        *cp = (unsigned char)s[i];
        return 1;
    }
    return (size_t)l;
}

/* mode 0: all chars through f; 1: capitalize; 2: Python title */
static jv case_map(jrender *r, jv s, cpmap f, int mode) {
    jbuf b = {0};
    bool prev_cased = false, first = true;
    for (size_t i = 0; i < s.u.s.n;) {
        int32_t cp;
        size_t l = next_cp(s.u.s.s, s.u.s.n, i, &cp);
        int32_t o;
        if (mode == 0)
            o = f(cp);
        else if (mode == 1)
            o = first ? map_title(cp) : map_lower(cp);
        else {
            o = prev_cased ? map_lower(cp) : map_title(cp);
            prev_cased = is_cased(cp);
        }
        first = false;
        if (o == cp)
            jbuf_put(r->c, &b, s.u.s.s + i, l);
        else
            put_cp(r, &b, o);
        i += l;
    }
    return mkstr(&b);
}

jv jstr_upper(jrender *r, jv s) { return case_map(r, s, map_upper, 0); }
jv jstr_lower(jrender *r, jv s) { return case_map(r, s, map_lower, 0); }
jv jstr_capitalize(jrender *r, jv s) { return case_map(r, s, NULL, 1); }

/* ---- strip / split / replace ---- */
static bool in_chars(jv chars, const char *s, size_t l) {
    for (size_t i = 0; i < chars.u.s.n;) {
        size_t k = 1;
        while (i + k < chars.u.s.n && ((unsigned char)chars.u.s.s[i + k] & 0xC0) == 0x80) k++;
        if (k == l && !memcmp(chars.u.s.s + i, s, l)) return true;
        i += k;
    }
    return false;
}

static bool strip_char(jv chars, const char *s, size_t n, size_t i, size_t *l) {
    if (chars.k == JV_STR) {
        int32_t cp;
        *l = next_cp(s, n, i, &cp);
        return in_chars(chars, s + i, *l);
    }
    return jpy_isspace_at(s, n, i, l);
}

jv jstr_strip(jrender *r, jv s, jv chars, int which) {
    if (chars.k != JV_STR && chars.k != JV_NONE && chars.k != JV_UNDEF)
        type_err(r, "strip arg must be None or str", chars);
    const char *p = s.u.s.s;
    size_t a = 0, b = s.u.s.n, l;
    if (which & 1)
        while (a < b && strip_char(chars, p, b, a, &l)) a += l;
    if (which & 2)
        while (b > a) {
            size_t st = b - 1;
            while (st > a && ((unsigned char)p[st] & 0xC0) == 0x80) st--;
            if (!strip_char(chars, p, b, st, &l) || st + l != b) break;
            b = st;
        }
    (void)r;
    return jv_str(p + a, b - a);
}

jv jstr_replace(jrender *r, jv s, jv old, jv neu, int64_t count) {
    jbuf b = {0};
    const char *p = s.u.s.s;
    size_t n = s.u.s.n, on = old.u.s.n;
    if (count < 0) count = INT64_MAX;
    if (on == 0) {
        int64_t done = 0;
        for (size_t i = 0; i <= n;) {
            if (done < count) {
                jbuf_put(r->c, &b, neu.u.s.s, neu.u.s.n);
                done++;
            }
            if (i == n) break;
            int32_t cp;
            size_t l = next_cp(p, n, i, &cp);
            jbuf_put(r->c, &b, p + i, l);
            i += l;
        }
        return mkstr(&b);
    }
    size_t i = 0;
    int64_t done = 0;
    while (i < n) {
        const char *hit = done < count ? memmem(p + i, n - i, old.u.s.s, on) : NULL;
        if (!hit) {
            jbuf_put(r->c, &b, p + i, n - i);
            break;
        }
        jbuf_put(r->c, &b, p + i, (size_t)(hit - (p + i)));
        jbuf_put(r->c, &b, neu.u.s.s, neu.u.s.n);
        i = (size_t)(hit - p) + on;
        done++;
    }
    return mkstr(&b);
}

static jv split(jrender *r, jv s, jv sep, int64_t maxsplit, bool from_right) {
    jv out = jv_newlist(r->c, 0, false);
    const char *p = s.u.s.s;
    size_t n = s.u.s.n;
    if (maxsplit < 0) maxsplit = INT64_MAX;
    if (sep.k == JV_NONE || sep.k == JV_UNDEF) { /* runs of whitespace */
        jv parts = jv_newlist(r->c, 0, false);
        if (!from_right) {
            size_t i = 0, l;
            int64_t done = 0;
            while (i < n) {
                while (i < n && jpy_isspace_at(p, n, i, &l)) i += l;
                if (i >= n) break;
                if (done == maxsplit) {
                    size_t e = n; /* the rest, with trailing whitespace stripped */
                    jv rest = jstr_strip(r, jv_str(p + i, e - i), jv_none(), 2);
                    jlist_push(r->c, parts.u.list, rest);
                    break;
                }
                size_t st = i;
                while (i < n && !jpy_isspace_at(p, n, i, &l)) i += l;
                jlist_push(r->c, parts.u.list, jv_str(p + st, i - st));
                done++;
            }
            return parts;
        }
        /* rsplit(None, maxsplit): split words, then rejoin the leftmost extras */
        jv words = split(r, s, jv_none(), -1, false);
        jlist *w = words.u.list;
        if ((int64_t)w->n <= maxsplit + 1 || maxsplit == INT64_MAX) return words;
        size_t keep = (size_t)maxsplit, first = w->n - keep;
        const char *st = w->v[0].u.s.s;
        const char *en = w->v[first - 1].u.s.s + w->v[first - 1].u.s.n;
        jlist_push(r->c, out.u.list, jv_str(st, (size_t)(en - st)));
        for (size_t i = first; i < w->n; i++) jlist_push(r->c, out.u.list, w->v[i]);
        return out;
    }
    need_str(r, sep, "must be str or None");
    if (!sep.u.s.n) jfail(r->c, JINJA_ERR_RENDER, "empty separator");
    if (!from_right) {
        size_t i = 0;
        int64_t done = 0;
        for (;;) {
            const char *hit = done < maxsplit ? memmem(p + i, n - i, sep.u.s.s, sep.u.s.n) : NULL;
            if (!hit) {
                jlist_push(r->c, out.u.list, jv_str(p + i, n - i));
                return out;
            }
            jlist_push(r->c, out.u.list, jv_str(p + i, (size_t)(hit - (p + i))));
            i = (size_t)(hit - p) + sep.u.s.n;
            done++;
        }
    }
    /* rsplit with a separator: collect from the right, then reverse */
    jv rev = jv_newlist(r->c, 0, false);
    size_t end = n;
    int64_t done = 0;
    for (;;) {
        const char *hit = NULL;
        if (done < maxsplit && end >= sep.u.s.n)
            for (size_t k = end - sep.u.s.n + 1; k-- > 0;)
                if (!memcmp(p + k, sep.u.s.s, sep.u.s.n)) {
                    hit = p + k;
                    break;
                }
        if (!hit) {
            jlist_push(r->c, rev.u.list, jv_str(p, end));
            break;
        }
        size_t hs = (size_t)(hit - p);
        jlist_push(r->c, rev.u.list, jv_str(p + hs + sep.u.s.n, end - hs - sep.u.s.n));
        end = hs;
        done++;
    }
    for (size_t i = rev.u.list->n; i-- > 0;) jlist_push(r->c, out.u.list, rev.u.list->v[i]);
    return out;
}

static bool starts_ends(jrender *r, jv s, jv arg, bool ends) {
    if (arg.k == JV_LIST && arg.u.list->tuple) {
        for (size_t i = 0; i < arg.u.list->n; i++)
            if (starts_ends(r, s, arg.u.list->v[i], ends)) return true;
        return false;
    }
    need_str(r, arg,
             ends ? "endswith first arg must be str or a tuple of str"
                  : "startswith first arg must be str or a tuple of str");
    if (arg.u.s.n > s.u.s.n) return false;
    const char *at = ends ? s.u.s.s + s.u.s.n - arg.u.s.n : s.u.s.s;
    return !memcmp(at, arg.u.s.s, arg.u.s.n);
}

static int64_t int_arg(jrender *r, jv v, int64_t dflt) {
    if (v.k == JV_UNDEF || v.k == JV_NONE) return dflt;
    if (v.k == JV_INT) return v.u.i;
    if (v.k == JV_BOOL) return v.u.b;
    type_err(r, "an integer is required", v);
}

/* character index of byte offset */
static int64_t char_index(jv s, size_t byte) { return (int64_t)jutf8_len(s.u.s.s, byte); }

static jv find(jrender *r, jv s, const jargs *a, bool right) {
    jv sub = need_str(r, jarg(a, 0, NULL, jv_undef(NULL)), "must be str");
    const char *p = s.u.s.s;
    size_t n = s.u.s.n;
    if (!right) {
        const char *hit = sub.u.s.n ? memmem(p, n, sub.u.s.s, sub.u.s.n) : p;
        return jv_int(hit ? char_index(s, (size_t)(hit - p)) : -1);
    }
    if (sub.u.s.n > n) return jv_int(-1);
    for (size_t k = n - sub.u.s.n + 1; k-- > 0;)
        if (!memcmp(p + k, sub.u.s.s, sub.u.s.n)) return jv_int(char_index(s, k));
    return jv_int(-1);
}

static int64_t count_sub(jv s, jv sub) {
    if (!sub.u.s.n) return (int64_t)jutf8_len(s.u.s.s, s.u.s.n) + 1;
    int64_t k = 0;
    const char *p = s.u.s.s, *e = p + s.u.s.n;
    while (p < e) {
        const char *hit = memmem(p, (size_t)(e - p), sub.u.s.s, sub.u.s.n);
        if (!hit) break;
        k++;
        p = hit + sub.u.s.n;
    }
    return k;
}

static bool all_cp(jv s, bool (*pred)(int32_t)) {
    if (!s.u.s.n) return false;
    for (size_t i = 0; i < s.u.s.n;) {
        int32_t cp;
        i += next_cp(s.u.s.s, s.u.s.n, i, &cp);
        if (!pred(cp)) return false;
    }
    return true;
}
static bool cp_alpha(int32_t c) {
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}
static bool cp_digit(int32_t c) {
    return utf8proc_category(c) == UTF8PROC_CATEGORY_ND || (c >= 0xb2 && c <= 0xb3) || c == 0xb9;
}
static bool cp_alnum(int32_t c) {
    utf8proc_category_t k = utf8proc_category(c);
    return cp_alpha(c) || (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}
static bool cp_space(int32_t c) {
    char tmp[4];
    size_t l;
    utf8proc_ssize_t n = utf8proc_encode_char(c, (uint8_t *)tmp);
    return jpy_isspace_at(tmp, (size_t)n, 0, &l);
}

static jv pad(jrender *r, jv s, int64_t width, jv fill, int where) {
    int64_t len = (int64_t)jutf8_len(s.u.s.s, s.u.s.n);
    if (width > (int64_t)r->lim.max_output) jfail(r->c, JINJA_ERR_RENDER, "width too large");
    if (width <= len) return s;
    const char *f = " ";
    size_t fl = 1;
    if (fill.k == JV_STR) {
        if (jutf8_len(fill.u.s.s, fill.u.s.n) != 1)
            jfail(r->c, JINJA_ERR_RENDER, "The fill character must be exactly one character long");
        f = fill.u.s.s;
        fl = fill.u.s.n;
    }
    int64_t marg = width - len, left;
    if (where == 0)
        left = marg / 2 + (marg & width & 1); /* center, as CPython */
    else if (where == 1)
        left = 0; /* ljust */
    else
        left = marg; /* rjust */
    jbuf b = {0};
    for (int64_t i = 0; i < left; i++) jbuf_put(r->c, &b, f, fl);
    jbuf_put(r->c, &b, s.u.s.s, s.u.s.n);
    for (int64_t i = 0; i < marg - left; i++) jbuf_put(r->c, &b, f, fl);
    return mkstr(&b);
}

static jv splitlines(jrender *r, jv s, bool keepends) {
    jv out = jv_newlist(r->c, 0, false);
    const char *p = s.u.s.s;
    size_t n = s.u.s.n, st = 0;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        size_t l = next_cp(p, n, i, &cp);
        bool brk = cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c ||
                   (cp >= 0x1c && cp <= 0x1e) || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
        if (!brk) {
            i += l;
            continue;
        }
        size_t e = i + l;
        if (cp == '\r' && e < n && p[e] == '\n') e++;
        jlist_push(r->c, out.u.list, jv_str(p + st, (keepends ? e : i) - st));
        st = i = e;
    }
    if (st < n) jlist_push(r->c, out.u.list, jv_str(p + st, n - st));
    return out;
}

bool jinja_str_method(jrender *r, const char *m, jv s, const jargs *a, jv *out) {
    jctx_work(r->c, JWORK_BYTES(s.u.s.n));
    jv a0 = jarg(a, 0, NULL, jv_none()), a1 = jarg(a, 1, NULL, jv_none());
    if (!strcmp(m, "strip"))
        *out = jstr_strip(r, s, jarg(a, 0, "chars", jv_none()), 3);
    else if (!strcmp(m, "lstrip"))
        *out = jstr_strip(r, s, jarg(a, 0, "chars", jv_none()), 1);
    else if (!strcmp(m, "rstrip"))
        *out = jstr_strip(r, s, jarg(a, 0, "chars", jv_none()), 2);
    else if (!strcmp(m, "upper"))
        *out = jstr_upper(r, s);
    else if (!strcmp(m, "lower") || !strcmp(m, "casefold"))
        *out = jstr_lower(r, s);
    else if (!strcmp(m, "title"))
        *out = case_map(r, s, NULL, 2);
    else if (!strcmp(m, "capitalize"))
        *out = jstr_capitalize(r, s);
    else if (!strcmp(m, "swapcase")) {
        jbuf b = {0};
        for (size_t i = 0; i < s.u.s.n;) {
            int32_t cp;
            size_t l = next_cp(s.u.s.s, s.u.s.n, i, &cp);
            int32_t u = utf8proc_toupper(cp);
            put_cp(r, &b, u != cp ? u : utf8proc_tolower(cp));
            i += l;
        }
        *out = mkstr(&b);
    } else if (!strcmp(m, "startswith") || !strcmp(m, "endswith"))
        *out = jv_bool(starts_ends(r, s, a0, m[0] == 'e'));
    else if (!strcmp(m, "split") || !strcmp(m, "rsplit"))
        *out = split(r, s, jarg(a, 0, "sep", jv_none()),
                     int_arg(r, jarg(a, 1, "maxsplit", jv_none()), -1), m[0] == 'r');
    else if (!strcmp(m, "splitlines"))
        *out = splitlines(r, s, jv_truthy(jarg(a, 0, "keepends", jv_bool(false))));
    else if (!strcmp(m, "replace"))
        *out = jstr_replace(r, s, need_str(r, a0, "replace() argument 1 must be str"),
                            need_str(r, a1, "replace() argument 2 must be str"),
                            int_arg(r, jarg(a, 2, "count", jv_none()), -1));
    else if (!strcmp(m, "find") || !strcmp(m, "index")) {
        *out = find(r, s, a, false);
        if (m[0] == 'i' && out->u.i < 0) jfail(r->c, JINJA_ERR_RENDER, "substring not found");
    } else if (!strcmp(m, "rfind") || !strcmp(m, "rindex")) {
        *out = find(r, s, a, true);
        if (m[1] == 'i' && out->u.i < 0) jfail(r->c, JINJA_ERR_RENDER, "substring not found");
    } else if (!strcmp(m, "count"))
        *out = jv_int(count_sub(s, need_str(r, a0, "must be str")));
    else if (!strcmp(m, "join")) {
        jlist *items = jv_iterate(r->c, a0);
        jbuf b = {0};
        for (size_t i = 0; i < items->n; i++) {
            if (i) jbuf_put(r->c, &b, s.u.s.s, s.u.s.n);
            jbuf_put(r->c, &b,
                     need_str(r, items->v[i], "sequence item: expected str instance").u.s.s,
                     items->v[i].u.s.n);
        }
        *out = mkstr(&b);
    } else if (!strcmp(m, "format"))
        *out = jinja_str_format(r, s, a);
    else if (!strcmp(m, "center"))
        *out = pad(r, s, int_arg(r, a0, 0), a1, 0);
    else if (!strcmp(m, "ljust"))
        *out = pad(r, s, int_arg(r, a0, 0), a1, 1);
    else if (!strcmp(m, "rjust"))
        *out = pad(r, s, int_arg(r, a0, 0), a1, 2);
    else if (!strcmp(m, "zfill"))
        *out = pad(r, s, int_arg(r, a0, 0), jv_cstr("0"), 2);
    else if (!strcmp(m, "isdigit") || !strcmp(m, "isnumeric") || !strcmp(m, "isdecimal"))
        *out = jv_bool(all_cp(s, cp_digit));
    else if (!strcmp(m, "isalpha"))
        *out = jv_bool(all_cp(s, cp_alpha));
    else if (!strcmp(m, "isalnum"))
        *out = jv_bool(all_cp(s, cp_alnum));
    else if (!strcmp(m, "isspace"))
        *out = jv_bool(all_cp(s, cp_space));
    else if (!strcmp(m, "isupper") || !strcmp(m, "islower")) {
        bool any = false, ok = true;
        for (size_t i = 0; i < s.u.s.n;) {
            int32_t cp;
            i += next_cp(s.u.s.s, s.u.s.n, i, &cp);
            if (!is_cased(cp)) continue;
            any = true;
            if (m[2] == 'u' ? utf8proc_toupper(cp) != cp : utf8proc_tolower(cp) != cp) ok = false;
        }
        *out = jv_bool(any && ok);
    } else if (!strcmp(m, "removeprefix") || !strcmp(m, "removesuffix")) {
        jv x = need_str(r, a0, "must be str");
        bool suf = m[6] == 's';
        *out = s;
        if (starts_ends(r, s, x, suf))
            *out = suf ? jv_str(s.u.s.s, s.u.s.n - x.u.s.n)
                       : jv_str(s.u.s.s + x.u.s.n, s.u.s.n - x.u.s.n);
    } else if (!strcmp(m, "partition") || !strcmp(m, "rpartition")) {
        jv sep = need_str(r, a0, "must be str");
        if (!sep.u.s.n) jfail(r->c, JINJA_ERR_RENDER, "empty separator");
        jv parts = split(r, s, sep, 1, m[0] == 'r');
        jv t = jv_newlist(r->c, 3, true);
        jlist *pl = parts.u.list;
        if (pl->n == 2) {
            jlist_push(r->c, t.u.list, pl->v[0]);
            jlist_push(r->c, t.u.list, sep);
            jlist_push(r->c, t.u.list, pl->v[1]);
        } else if (m[0] == 'r') {
            jlist_push(r->c, t.u.list, jv_cstr(""));
            jlist_push(r->c, t.u.list, jv_cstr(""));
            jlist_push(r->c, t.u.list, s);
        } else {
            jlist_push(r->c, t.u.list, s);
            jlist_push(r->c, t.u.list, jv_cstr(""));
            jlist_push(r->c, t.u.list, jv_cstr(""));
        }
        *out = t;
    } else
        return false;
    return true;
}

/* ---- bound methods ---- */
static const char *str_methods[] = {
    "strip",        "lstrip",    "rstrip",     "upper",    "lower",   "casefold", "title",
    "capitalize",   "swapcase",  "startswith", "endswith", "split",   "rsplit",   "splitlines",
    "replace",      "find",      "index",      "rfind",    "rindex",  "count",    "join",
    "format",       "center",    "ljust",      "rjust",    "zfill",   "isdigit",  "isnumeric",
    "isdecimal",    "isalpha",   "isalnum",    "isspace",  "isupper", "islower",  "removeprefix",
    "removesuffix", "partition", "rpartition", NULL};

static bool in_list(const char **l, const char *name) {
    for (; *l; l++)
        if (!strcmp(*l, name)) return true;
    return false;
}

typedef struct {
    const char *name;
    jv self;
} bound;

static jv call_str_method(jrender *r, jv self, const jargs *a) {
    /* self is a 2-tuple (receiver, method name) */
    jv recv = self.u.list->v[0];
    const char *m = self.u.list->v[1].u.s.s;
    jv out;
    if (!jinja_str_method(r, m, recv, a, &out))
        jfail(r->c, JINJA_ERR_RENDER, "'str' object has no attribute '%s'", m);
    return out;
}

static jv dict_items(jrender *r, jdict *d, int what) {
    jv l = jv_newlist(r->c, d->n, false);
    for (size_t i = 0; i < d->n; i++) {
        if (what == 0) {
            jv t = jv_newlist(r->c, 2, true);
            jlist_push(r->c, t.u.list, d->keys[i]);
            jlist_push(r->c, t.u.list, d->vals[i]);
            jlist_push(r->c, l.u.list, t);
        } else {
            jlist_push(r->c, l.u.list, what == 1 ? d->keys[i] : d->vals[i]);
        }
    }
    return l;
}

static jv call_dict_method(jrender *r, jv self, const jargs *a) {
    jv recv = self.u.list->v[0];
    const char *m = self.u.list->v[1].u.s.s;
    jdict *d = recv.u.dict;
    if (!strcmp(m, "items")) return dict_items(r, d, 0);
    if (!strcmp(m, "keys")) return dict_items(r, d, 1);
    if (!strcmp(m, "values")) return dict_items(r, d, 2);
    if (!strcmp(m, "get")) {
        jv v;
        if (jdict_get(d, jarg(a, 0, NULL, jv_none()), &v)) return v;
        return jarg(a, 1, NULL, jv_none());
    }
    if (!strcmp(m, "copy")) {
        jv c = jv_newdict(r->c);
        for (size_t i = 0; i < d->n; i++) jdict_set(r->c, c.u.dict, d->keys[i], d->vals[i]);
        return c;
    }
    jfail(r->c, JINJA_ERR_RENDER, "'dict' object has no attribute '%s'", m);
}

static jv call_list_method(jrender *r, jv self, const jargs *a) {
    jlist *l = self.u.list->v[0].u.list;
    const char *m = self.u.list->v[1].u.s.s;
    jv x = jarg(a, 0, NULL, jv_undef(NULL));
    if (!strcmp(m, "count")) {
        int64_t k = 0;
        for (size_t i = 0; i < l->n; i++) k += jv_equal(r->c, l->v[i], x);
        return jv_int(k);
    }
    if (!strcmp(m, "index")) {
        for (size_t i = 0; i < l->n; i++)
            if (jv_equal(r->c, l->v[i], x)) return jv_int((int64_t)i);
        jfail(r->c, JINJA_ERR_RENDER, "value is not in list");
    }
    if (!strcmp(m, "copy")) {
        jv c = jv_newlist(r->c, l->n, l->tuple);
        for (size_t i = 0; i < l->n; i++) jlist_push(r->c, c.u.list, l->v[i]);
        return c;
    }
    jfail(r->c, JINJA_ERR_RENDER, "'list' object has no attribute '%s'", m);
}

static jv call_unsafe(jrender *r, jv self, const jargs *a) {
    (void)a;
    jfail(r->c, JINJA_ERR_RENDER, "access to attribute '%s' of '%s' object is unsafe.",
          self.u.list->v[1].u.s.s, jv_typename(self.u.list->v[0]));
}

static jv bind(jrender *r, jv recv, const char *name, jbuiltin_fn fn) {
    jfunc *f = jarena_alloc(r->c, sizeof *f);
    f->name = name;
    f->builtin = fn;
    jv t = jv_newlist(r->c, 2, true);
    jlist_push(r->c, t.u.list, recv);
    jlist_push(r->c, t.u.list, jv_cstr(name));
    f->self = t;
    return (jv){.k = JV_FUNC, .u.fn = f};
}

/* ---- loop object ---- */
static jv loop_cycle(jrender *r, jv self, const jargs *a) {
    if (!a->npos) jfail(r->c, JINJA_ERR_RENDER, "no items for cycling given");
    return a->pos[self.u.list->v[0].u.loop->i % a->npos];
}

static jv loop_changed(jrender *r, jv self, const jargs *a) {
    jloop *lp = self.u.list->v[0].u.loop;
    jv vals = jv_newlist(r->c, a->npos, true);
    for (size_t i = 0; i < a->npos; i++) jlist_push(r->c, vals.u.list, a->pos[i]);
    if (!lp->changed_set || !jv_equal(r->c, lp->changed_last, vals)) {
        lp->changed_set = true;
        lp->changed_last = vals;
        return jv_bool(true);
    }
    return jv_bool(false);
}

static jv loop_attr(jrender *r, jv obj, const char *name) {
    jloop *lp = obj.u.loop;
    size_t i = lp->i, n = lp->items->n;
    if (!strcmp(name, "index")) return jv_int((int64_t)i + 1);
    if (!strcmp(name, "index0")) return jv_int((int64_t)i);
    if (!strcmp(name, "revindex")) return jv_int((int64_t)(n - i));
    if (!strcmp(name, "revindex0")) return jv_int((int64_t)(n - i - 1));
    if (!strcmp(name, "first")) return jv_bool(i == 0);
    if (!strcmp(name, "last")) return jv_bool(i + 1 == n);
    if (!strcmp(name, "length")) return jv_int((int64_t)n);
    if (!strcmp(name, "depth")) return jv_int(lp->depth);
    if (!strcmp(name, "depth0")) return jv_int(lp->depth - 1);
    if (!strcmp(name, "previtem"))
        return i > 0 ? lp->items->v[i - 1] : jv_undef("there is no previous item");
    if (!strcmp(name, "nextitem"))
        return i + 1 < n ? lp->items->v[i + 1] : jv_undef("there is no next item");
    if (!strcmp(name, "cycle")) return bind(r, obj, "cycle", loop_cycle);
    if (!strcmp(name, "changed")) return bind(r, obj, "changed", loop_changed);
    jbuf m = {0};
    jbuf_printf(r->c, &m, "'LoopContext object' has no attribute '%s'", name);
    return jv_undef(m.p);
}

static jv no_attr(jrender *r, jv obj, const char *name) {
    jbuf m = {0};
    jbuf_printf(r->c, &m, "'%s object' has no attribute '%s'", jv_typename(obj), name);
    return jv_undef(m.p);
}

jv jinja_getattr(jrender *r, jv obj, const char *name) {
    if (name[0] == '_') return no_attr(r, obj, name);
    static const char *dict_methods[] = {"items", "keys", "values", "get", "copy", NULL};
    static const char *dict_unsafe[] = {"pop", "popitem", "setdefault", "update", "clear", NULL};
    static const char *list_methods[] = {"index", "count", "copy", NULL};
    static const char *list_unsafe[] = {"append",  "extend", "insert", "pop", "remove",
                                        "reverse", "sort",   "clear",  NULL};
    jv v;
    switch (obj.k) {
    case JV_STR:
        if (in_list(str_methods, name)) return bind(r, obj, name, call_str_method);
        return no_attr(r, obj, name);
    case JV_DICT:
        if (in_list(dict_methods, name)) return bind(r, obj, name, call_dict_method);
        if (in_list(dict_unsafe, name)) return bind(r, obj, name, call_unsafe);
        if (jdict_gets(obj.u.dict, name, &v)) return v;
        return no_attr(r, obj, name);
    case JV_NS:
        if (jdict_gets(obj.u.dict, name, &v)) return v;
        return no_attr(r, obj, name);
    case JV_LIST:
        if (in_list(list_methods, name)) return bind(r, obj, name, call_list_method);
        if (!obj.u.list->tuple && in_list(list_unsafe, name))
            return bind(r, obj, name, call_unsafe);
        return no_attr(r, obj, name);
    case JV_LOOP: return loop_attr(r, obj, name);
    case JV_UNDEF:
        jfail(r->c, JINJA_ERR_RENDER, "%s", obj.u.undef_why ? obj.u.undef_why : "undefined");
    default: return no_attr(r, obj, name);
    }
}

jv jinja_getitem(jrender *r, jv obj, jv key) {
    jv v;
    switch (obj.k) {
    case JV_DICT:
    case JV_NS:
        if (jdict_get(obj.u.dict, key, &v)) return v;
        break;
    case JV_LIST:
        if (!obj.u.list->gen && (key.k == JV_INT || key.k == JV_BOOL)) {
            int64_t i = key.k == JV_BOOL ? key.u.b : key.u.i, n = (int64_t)obj.u.list->n;
            if (i < 0) i += n;
            if (i >= 0 && i < n) return obj.u.list->v[i];
        }
        break;
    case JV_STR:
        if (key.k == JV_INT || key.k == JV_BOOL) {
            int64_t i = key.k == JV_BOOL ? key.u.b : key.u.i;
            jctx_work(r->c, JWORK_BYTES(obj.u.s.n));
            int64_t n = (int64_t)jutf8_len(obj.u.s.s, obj.u.s.n);
            if (i < 0) i += n;
            if (i >= 0 && i < n) {
                size_t a = jutf8_offset(obj.u.s.s, obj.u.s.n, (size_t)i);
                size_t b = jutf8_offset(obj.u.s.s, obj.u.s.n, (size_t)i + 1);
                return jv_str(obj.u.s.s + a, b - a);
            }
        }
        break;
    case JV_LOOP:
        if (key.k == JV_STR) return loop_attr(r, obj, jstrndup(r->c, key.u.s.s, key.u.s.n));
        break;
    case JV_UNDEF:
        jfail(r->c, JINJA_ERR_RENDER, "%s", obj.u.undef_why ? obj.u.undef_why : "undefined");
    default: break;
    }
    if (key.k == JV_STR && obj.k != JV_LOOP) {
        v = jinja_getattr(r, obj, jstrndup(r->c, key.u.s.s, key.u.s.n));
        return v;
    }
    jbuf m = {0};
    jbuf_printf(r->c, &m, "'%s object' has no element ", jv_typename(obj));
    jv_repr_to(r->c, &m, key);
    return jv_undef(m.p);
}

/* ---- str.format and % ---- */
jv jinja_str_format(jrender *r, jv fmt, const jargs *a) {
    jbuf b = {0};
    const char *p = fmt.u.s.s;
    size_t n = fmt.u.s.n, auto_i = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '{' && i + 1 < n && p[i + 1] == '{') {
            jbuf_putc(r->c, &b, '{');
            i++;
        } else if (p[i] == '}' && i + 1 < n && p[i + 1] == '}') {
            jbuf_putc(r->c, &b, '}');
            i++;
        } else if (p[i] == '{') {
            size_t e = i + 1;
            while (e < n && p[e] != '}') e++;
            if (e >= n) jfail(r->c, JINJA_ERR_RENDER, "Single '{' encountered in format string");
            const char *f = p + i + 1;
            size_t fl = e - i - 1;
            if (memchr(f, ':', fl) || memchr(f, '!', fl) || memchr(f, '.', fl) ||
                memchr(f, '[', fl))
                jfail(r->c, JINJA_ERR_RENDER, "format specs are not supported");
            jv v;
            if (fl == 0)
                v = jarg(a, auto_i++, NULL, jv_undef(NULL));
            else if (isdigit((unsigned char)f[0]))
                v = jarg(a, (size_t)atoi(f), NULL, jv_undef(NULL));
            else
                v = jarg(a, SIZE_MAX, jstrndup(r->c, f, fl), jv_undef(NULL));
            if (v.k == JV_UNDEF && !v.u.undef_why)
                jfail(r->c, JINJA_ERR_RENDER,
                      "Replacement index out of range for positional args tuple");
            jv_str_to(r->c, &b, v);
            i = e;
        } else if (p[i] == '}') {
            jfail(r->c, JINJA_ERR_RENDER, "Single '}' encountered in format string");
        } else {
            jbuf_putc(r->c, &b, p[i]);
        }
    }
    return mkstr(&b);
}

jv jinja_printf(jrender *r, jv fmt, const jargs *a) {
    jbuf b = {0};
    const char *p = fmt.u.s.s;
    size_t n = fmt.u.s.n, ai = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%') {
            jbuf_putc(r->c, &b, p[i]);
            continue;
        }
        if (++i >= n) jfail(r->c, JINJA_ERR_RENDER, "incomplete format");
        char spec[32] = "%";
        size_t k = 1;
        while (i < n && jchar_in(p[i], "-+ #0123456789.") && k < sizeof spec - 4) spec[k++] = p[i++];
        if (i >= n) jfail(r->c, JINJA_ERR_RENDER, "incomplete format");
        char conv = p[i];
        if (conv == '%') {
            jbuf_putc(r->c, &b, '%');
            continue;
        }
        if (ai >= a->npos) jfail(r->c, JINJA_ERR_RENDER, "not enough arguments for format string");
        jv v = a->pos[ai++];
        /* width and precision, bounded before any use (printf's own are ints) */
        const char *dot = strchr(spec, '.');
        long width = 0, prec = -1;
        for (const char *q = spec + 1; *q && q != dot; q++)
            if (*q >= '0' && *q <= '9' && (width = width * 10 + (*q - '0')) > 100000)
                jfail(r->c, JINJA_ERR_RENDER, "format width too large");
        if (dot) {
            prec = 0;
            for (const char *q = dot + 1; *q >= '0' && *q <= '9'; q++)
                if ((prec = prec * 10 + (*q - '0')) > 100000)
                    jfail(r->c, JINJA_ERR_RENDER, "format precision too large");
        }
        if (conv == 's' || conv == 'r') {
            jbuf t = {0};
            if (conv == 's')
                jv_str_to(r->c, &t, v);
            else
                jv_repr_to(r->c, &t, v);
            /* width and precision count characters, as Python's % does */
            bool left = strchr(spec, '-') != NULL;
            size_t nbytes = t.n, nchars = jutf8_len(t.p ? t.p : "", t.n);
            if (prec >= 0 && (size_t)prec < nchars) {
                nbytes = jutf8_offset(t.p, t.n, (size_t)prec);
                nchars = (size_t)prec;
            }
            long padn = width > (long)nchars ? width - (long)nchars : 0;
            for (long q = 0; !left && q < padn; q++) jbuf_putc(r->c, &b, ' ');
            jbuf_put(r->c, &b, t.p ? t.p : "", nbytes);
            for (long q = 0; left && q < padn; q++) jbuf_putc(r->c, &b, ' ');
        } else if (jchar_in(conv, "difeEgGxXo")) {
            if (!jv_is_number(v)) type_err(r, "a real number is required", v);
            if (jchar_in(conv, "dixXo")) {
                spec[k++] = 'l';
                spec[k++] = 'l';
                spec[k++] = conv == 'i' ? 'd' : conv;
                spec[k] = 0;
                jbuf_printf(r->c, &b, spec,
                            (long long)(v.k == JV_FLOAT  ? (int64_t)v.u.f
                                        : v.k == JV_BOOL ? v.u.b
                                                         : v.u.i));
            } else {
                spec[k++] = conv;
                spec[k] = 0;
                jbuf_printf(r->c, &b, spec, jv_num(v));
            }
        } else {
            if (conv > ' ' && conv < 0x7f)
                jfail(r->c, JINJA_ERR_RENDER, "unsupported format character '%c' (0x%x)", conv,
                      (unsigned)conv);
            jfail(r->c, JINJA_ERR_RENDER, "unsupported format character 0x%02x",
                  (unsigned char)conv);
        }
    }
    if (ai < a->npos)
        jfail(r->c, JINJA_ERR_RENDER, "not all arguments converted during string formatting");
    return mkstr(&b);
}

/* ---- globals ---- */
static jv g_range(jrender *r, jv self, const jargs *a) {
    (void)self;
    int64_t start = 0, stop, step = 1;
    if (a->npos == 0 || a->npos > 3)
        jfail(r->c, JINJA_ERR_RENDER, "range expected 1 to 3 arguments");
    for (size_t i = 0; i < a->npos; i++)
        if (a->pos[i].k != JV_INT && a->pos[i].k != JV_BOOL)
            type_err(r, "range() integer argument expected", a->pos[i]);
    if (a->npos == 1)
        stop = int_arg(r, a->pos[0], 0);
    else {
        start = int_arg(r, a->pos[0], 0);
        stop = int_arg(r, a->pos[1], 0);
        if (a->npos == 3) step = int_arg(r, a->pos[2], 1);
    }
    if (step == 0) jfail(r->c, JINJA_ERR_RENDER, "range() arg 3 must not be zero");
    __int128 span = step > 0 ? (__int128)stop - start : (__int128)start - stop;
    __int128 as = step > 0 ? step : -(__int128)step;
    __int128 cnt = span > 0 ? (span + as - 1) / as : 0;
    if (cnt > 100000)
        jfail(r->c, JINJA_ERR_RENDER,
              "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    jv l = jv_newlist(r->c, (size_t)cnt, false);
    for (int64_t i = 0; i < (int64_t)cnt; i++) jlist_push(r->c, l.u.list, jv_int(start + i * step));
    return l;
}

static jv g_namespace(jrender *r, jv self, const jargs *a) {
    (void)self;
    jv ns = jv_newdict(r->c);
    ns.k = JV_NS;
    for (size_t i = 0; i < a->npos; i++) {
        if (a->pos[i].k != JV_DICT && a->pos[i].k != JV_NS)
            type_err(r, "namespace() positional argument must be a mapping", a->pos[i]);
        jdict *d = a->pos[i].u.dict;
        for (size_t k = 0; k < d->n; k++) jdict_set(r->c, ns.u.dict, d->keys[k], d->vals[k]);
    }
    for (size_t k = 0; k < a->nkw; k++) jdict_set(r->c, ns.u.dict, jv_cstr(a->kwn[k]), a->kwv[k]);
    return ns;
}

static jv g_dict(jrender *r, jv self, const jargs *a) {
    jv d = g_namespace(r, self, a);
    d.k = JV_DICT;
    return d;
}

static jv g_raise(jrender *r, jv self, const jargs *a) {
    (void)self;
    jv msg = jv_to_str(r->c, jarg(a, 0, "message", jv_undef(NULL)));
    jfail(r->c, JINJA_ERR_RAISED, "%.*s", (int)(msg.u.s.n > 1000 ? 1000 : msg.u.s.n), msg.u.s.s);
}

static jv g_strftime(jrender *r, jv self, const jargs *a) {
    (void)self;
    jv fmt =
        need_str(r, jarg(a, 0, "format", jv_undef(NULL)), "strftime_now() argument must be str");
    time_t now = time(NULL);
    const char *env = getenv("SGLC_TEMPLATE_TIME");
    if (env && *env) now = (time_t)strtoll(env, NULL, 10);
    struct tm tm;
    localtime_r(&now, &tm);
    char *f = jstrndup(r->c, fmt.u.s.s, fmt.u.s.n);
    size_t cap = 256 + fmt.u.s.n * 16;
    char *out = jarena_alloc(r->c, cap);
    size_t n = strftime(out, cap, f, &tm);
    if (n == 0 && fmt.u.s.n) jfail(r->c, JINJA_ERR_RENDER, "strftime_now: format too long");
    return jv_str(out, n);
}

static jv joiner_call(jrender *r, jv self, const jargs *a) {
    (void)a;
    jdict *st = self.u.dict;
    jv used, sep;
    jdict_gets(st, "sep", &sep);
    if (jdict_gets(st, "used", &used)) return sep;
    jdict_set(r->c, st, jv_cstr("used"), jv_bool(true));
    return jv_cstr("");
}

static jv g_joiner(jrender *r, jv self, const jargs *a) {
    (void)self;
    jv st = jv_newdict(r->c);
    jdict_set(r->c, st.u.dict, jv_cstr("sep"), jarg(a, 0, "sep", jv_cstr(", ")));
    jfunc *f = jarena_alloc(r->c, sizeof *f);
    f->name = "joiner";
    f->builtin = joiner_call;
    f->self = st;
    return (jv){.k = JV_FUNC, .u.fn = f};
}

jv jinja_global(jrender *r, const char *name) {
    static const struct {
        const char *name;
        jbuiltin_fn fn;
    } globals[] = {
        {"range", g_range},           {"namespace", g_namespace},   {"dict", g_dict},
        {"raise_exception", g_raise}, {"strftime_now", g_strftime}, {"joiner", g_joiner}};
    for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++)
        if (!strcmp(globals[i].name, name)) {
            jfunc *f = jarena_alloc(r->c, sizeof *f);
            f->name = globals[i].name;
            f->builtin = globals[i].fn;
            return (jv){.k = JV_FUNC, .u.fn = f};
        }
    return jv_undef(NULL);
}
