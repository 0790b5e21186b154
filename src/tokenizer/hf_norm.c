/* The normalizers of a Hugging Face tokenizer.json, run the way `tokenizers` runs them on each
 * stretch of input between added tokens: NFC/NFKC/NFD/NFKD (utf8proc), Prepend, Replace (a
 * literal, or a regex run by PCRE2 as HF's Oniguruma runs it: ^ and $ at line ends, every
 * non-overlapping match replaced, an empty match right after a match skipped), Lowercase (Rust's
 * char::to_lowercase) and Strip (Unicode White_Space). Invalid UTF-8 bytes pass through. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_utf8.h"

bool tok_buf_add(tok_buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->buf, cap);
        if (!p) return false;
        b->buf = p, b->cap = cap;
    }
    if (n) memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
    return true;
}

void *tok_norm_regex(const char *re, size_t len, char *err, size_t err_len) {
    int code = 0;
    PCRE2_SIZE at = 0;
    /* Oniguruma's Ruby syntax, which HF's Replace uses: ^/$ match at every line, '.' stops at
     * \n. */
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, len,
                                  PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE | PCRE2_MATCH_INVALID_UTF,
                                  &code, &at, NULL);
    if (!c) {
        char msg[256];
        pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof msg);
        snprintf(err, err_len, "regex '%.*s': %s at offset %zu", (int)(len > 200 ? 200 : len), re,
                 msg, (size_t)at);
        return NULL;
    }
    pcre2_jit_compile(c, PCRE2_JIT_COMPLETE); /* without JIT it still works, only slower */
    return c;
}

void tok_norm_step_free(tok_norm_step *st) {
    free(st->a);
    free(st->b);
    pcre2_code_free(st->re);
    st->a = st->b = NULL;
    st->re = NULL;
}

/* Rust's char::is_whitespace (the White_Space property). */
static bool white_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* Length of the White_Space character at s (n bytes left), 0 when there is none. */
static size_t space_at(const char *s, size_t n) {
    uint32_t cp;
    size_t l = tok_utf8_valid_len((const uint8_t *)s, n);
    if (!l) return 0;
    tok_utf8_decode((const uint8_t *)s, n, &cp);
    return white_space(cp) ? l : 0;
}

/* Length of the White_Space character ending at s[n-1], 0 when there is none. */
static size_t space_before(const char *s, size_t n) {
    for (size_t l = 1; l <= 4 && l <= n; l++)
        if ((((uint8_t)s[n - l]) & 0xC0) != 0x80)
            return tok_utf8_valid_len((const uint8_t *)s + n - l, l) == l ? space_at(s + n - l, l)
                                                                          : 0;
    return 0;
}

static bool replace_regex(const tok_norm_step *st, const char *s, size_t n, tok_buf *out) {
    if (n == 0) return true;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) return false;
    bool ok = true, have_last = false;
    size_t from = 0, copied = 0, last_end = 0;
    while (ok && from <= n) {
        int rc = pcre2_match(st->re, (PCRE2_SPTR)s, n, from, 0, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(st->re, (PCRE2_SPTR)s, n, from, PCRE2_NO_JIT, md, NULL);
        if (rc < 0) break; /* no more matches (or a matching limit: the rest stays as it is) */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me < ms || me > n) break; /* \K tricks: stop rather than misbehave */
        if (ms == me && have_last && me == last_end) {
            /* an empty match just after the previous one: step over one character */
            from += from < n ? tok_utf8_len((uint8_t)s[from]) : 1;
            continue;
        }
        ok = tok_buf_add(out, s + copied, ms - copied) && tok_buf_add(out, st->b, st->lb);
        copied = me;
        from = last_end = me;
        have_last = true;
    }
    pcre2_match_data_free(md);
    return ok && tok_buf_add(out, s + copied, n - copied);
}

static bool lowercase(const char *s, size_t n, tok_buf *out) {
    for (size_t i = 0; i < n;) {
        size_t l = tok_utf8_valid_len((const uint8_t *)s + i, n - i);
        if (!l) { /* invalid byte: kept */
            if (!tok_buf_add(out, s + i, 1)) return false;
            i++;
            continue;
        }
        uint32_t cp;
        tok_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        uint8_t enc[8];
        size_t k;
        if (cp == 0x130) { /* the one unconditional multi-character lowercase: i + U+0307 */
            memcpy(enc, "i\xCC\x87", 3), k = 3;
        } else {
            k = tok_utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), enc);
        }
        if (!tok_buf_add(out, (const char *)enc, k)) return false;
        i += l;
    }
    return true;
}

static bool normalize_step(const tok_norm_step *st, const char *s, size_t n, tok_buf *out) {
    out->len = 0;
    switch (st->kind) {
    case TOK_NORM_NFC:
    case TOK_NORM_NFKC:
    case TOK_NORM_NFD:
    case TOK_NORM_NFKD: {
        utf8proc_uint8_t *res = NULL;
        bool compose = st->kind == TOK_NORM_NFC || st->kind == TOK_NORM_NFKC;
        bool compat = st->kind == TOK_NORM_NFKC || st->kind == TOK_NORM_NFKD;
        int opt = UTF8PROC_STABLE | (compose ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE) |
                  (compat ? UTF8PROC_COMPAT : 0);
        utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &res,
                                          (utf8proc_option_t)opt);
        if (r < 0) return tok_buf_add(out, s, n); /* invalid UTF-8: left as it is */
        bool ok = tok_buf_add(out, (const char *)res, (size_t)r);
        free(res);
        return ok;
    }
    case TOK_NORM_PREPEND:
        if (n == 0) return true;
        return tok_buf_add(out, st->a, st->la) && tok_buf_add(out, s, n);
    case TOK_NORM_REPLACE:
        if (st->re) return replace_regex(st, s, n, out);
        for (size_t i = 0; i < n;) {
            if (i + st->la <= n && !memcmp(s + i, st->a, st->la)) {
                if (!tok_buf_add(out, st->b, st->lb)) return false;
                i += st->la;
            } else {
                if (!tok_buf_add(out, s + i, 1)) return false;
                i++;
            }
        }
        return true;
    case TOK_NORM_LOWERCASE:
        return lowercase(s, n, out);
    case TOK_NORM_STRIP: {
        size_t b = 0, e = n, l;
        while (st->strip_left && b < e && (l = space_at(s + b, e - b)))
            b += l;
        while (st->strip_right && e > b && (l = space_before(s + b, e - b)))
            e -= l;
        return tok_buf_add(out, s + b, e - b);
    }
    }
    return false;
}

bool tok_hf_normalize(const tokenizer *t, const char *s, size_t n, tok_buf *out, tok_buf *tmp) {
    out->len = 0;
    if (!tok_buf_add(out, s, n)) return false;
    for (size_t i = 0; i < t->n_norm; i++) {
        if (!normalize_step(&t->norm[i], out->buf, out->len, tmp)) return false;
        tok_buf x = *out;
        *out = *tmp;
        *tmp = x;
    }
    return true;
}
