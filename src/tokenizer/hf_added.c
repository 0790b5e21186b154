/* Hugging Face's added-token extraction (tokenizers' added_vocabulary.rs), which decides which
 * stretches of an input become added tokens and which go through normalizers, pre-tokenizer and
 * model. Two passes, as HF does them:
 *   1. tokens with normalized=false are found in the raw input;
 *   2. every stretch between them is normalized, and tokens with normalized=true are found in
 *      that normalized text (their patterns were normalized the same way at load).
 * In each pass matches are leftmost-longest and non-overlapping, as an Aho-Corasick scan gives
 * them; a match that is then discarded (single_word not met, or a special token while special
 * tokens are not parsed) still consumes its bytes, and the scan goes on after the match itself
 * even when rstrip took the spaces after it. single_word and lstrip/rstrip look at the characters
 * next to the match within the stretch being scanned, with Rust regex's Unicode \w and \s. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_utf8.h"

/* Rust regex's \w (UTS #18): Alphabetic, marks, decimal digits, connector punctuation and the
 * joiners. */
static const char word_class[] = "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]";

bool tok_added_push(tok_added_set *set, const char *pat, size_t len, int32_t id, uint8_t flags) {
    if (len == 0 || len > UINT32_MAX) return true; /* HF ignores empty tokens */
    tok_added *v = realloc(set->v, (set->n + 1) * sizeof *v);
    if (!v) return false;
    set->v = v;
    char *p = malloc(len + 1);
    if (!p) return false;
    memcpy(p, pat, len);
    p[len] = 0;
    set->v[set->n++] = (tok_added){p, (uint32_t)len, id, flags};
    set->first[(uint8_t)pat[0]] = 1;
    return true;
}

static void free_set(tok_added_set *set) {
    for (size_t i = 0; i < set->n; i++)
        free(set->v[i].pat);
    free(set->v);
    memset(set, 0, sizeof *set);
}

void tok_added_free(tokenizer *t) {
    free_set(&t->added_raw);
    free_set(&t->added_norm);
    pcre2_code_free(t->word_re);
    t->word_re = NULL;
}

typedef struct {
    tok_added a;
    size_t idx; /* file order, which breaks ties between equal lengths */
} keyed;

static int cmp_keyed(const void *pa, const void *pb) {
    const keyed *x = pa, *y = pb;
    if (x->a.len != y->a.len) return x->a.len > y->a.len ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Longest pattern first, so the first that matches at a position is the longest one there. */
static bool order_set(tok_added_set *set) {
    if (set->n < 2) return true;
    keyed *k = malloc(set->n * sizeof *k);
    if (!k) return false;
    for (size_t i = 0; i < set->n; i++)
        k[i] = (keyed){set->v[i], i};
    qsort(k, set->n, sizeof *k, cmp_keyed);
    for (size_t i = 0; i < set->n; i++)
        set->v[i] = k[i].a;
    free(k);
    return true;
}

bool tok_added_finish(tokenizer *t, char *err, size_t err_len) {
    if (!order_set(&t->added_raw) || !order_set(&t->added_norm)) {
        snprintf(err, err_len, "out of memory");
        return false;
    }
    bool single = false;
    for (size_t i = 0; i < t->added_raw.n; i++)
        single |= (t->added_raw.v[i].flags & TOK_ADDED_SINGLE_WORD) != 0;
    for (size_t i = 0; i < t->added_norm.n; i++)
        single |= (t->added_norm.v[i].flags & TOK_ADDED_SINGLE_WORD) != 0;
    if (!single || t->word_re) return true;
    int code = 0;
    PCRE2_SIZE at = 0;
    t->word_re = pcre2_compile((PCRE2_SPTR)word_class, PCRE2_ZERO_TERMINATED,
                               PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &code, &at, NULL);
    if (!t->word_re) {
        char msg[256];
        pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof msg);
        snprintf(err, err_len, "single_word: this PCRE2 cannot compile %s: %s", word_class, msg);
        return false;
    }
    return true;
}

/* ---- the characters around a match ---- */

static bool white_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* The valid character starting at s (n > 0 bytes left): its length, or 0 when invalid. */
static size_t char_at(const char *s, size_t n, uint32_t *cp) {
    size_t l = tok_utf8_valid_len((const uint8_t *)s, n);
    if (l) tok_utf8_decode((const uint8_t *)s, n, cp);
    return l;
}

/* The valid character ending at s[n-1] (n > 0): its length, or 0 when invalid. */
static size_t char_before(const char *s, size_t n, uint32_t *cp) {
    for (size_t l = 1; l <= 4 && l <= n; l++)
        if ((((uint8_t)s[n - l]) & 0xC0) != 0x80) return char_at(s + n - l, l, cp) == l ? l : 0;
    return 0;
}

typedef struct {
    const tokenizer *t;
    tok_ids *out;
    bool (*word)(void *ctx, const char *w, size_t n);
    void *ctx;
    bool parse_special;
    pcre2_match_data *md; /* for word_re, made on first use */
    tok_buf norm, tmp;
    bool raw_at_start; /* the raw stretch being normalized starts the input */
} hf_run;

static bool is_word(hf_run *r, const char *s, size_t l, uint32_t cp) {
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') || cp == '_';
    if (!r->md && !(r->md = pcre2_match_data_create(1, NULL))) return false;
    return pcre2_match(r->t->word_re, (PCRE2_SPTR)s, l, 0, 0, r->md, NULL) > 0;
}

static bool single_word_ok(hf_run *r, const char *s, size_t n, size_t start, size_t stop) {
    uint32_t cp;
    size_t l;
    if (start > 0 && (l = char_before(s, start, &cp)) && is_word(r, s + start - l, l, cp))
        return false;
    if (stop < n && (l = char_at(s + stop, n - stop, &cp)) && is_word(r, s + stop, l, cp))
        return false;
    return true;
}

/* The longest pattern of the set at s (n bytes left), NULL when none. */
static const tok_added *match_at(const tok_added_set *set, const char *s, size_t n) {
    for (size_t k = 0; k < set->n; k++) {
        const tok_added *a = &set->v[k];
        if (a->len <= n && a->pat[0] == s[0] && !memcmp(a->pat, s, a->len)) return a;
    }
    return NULL;
}

typedef bool (*piece_fn)(hf_run *r, int32_t id, const char *s, size_t off, size_t len);

/* Cuts the set's tokens out of s[0..n): fn gets each stretch (id -1) and each token in order. */
static bool find_matches(hf_run *r, const tok_added_set *set, const char *s, size_t n,
                         piece_fn fn) {
    size_t done = 0, pos = 0;
    while (set->n && pos < n) {
        const tok_added *m = set->first[(uint8_t)s[pos]] ? match_at(set, s + pos, n - pos) : NULL;
        if (!m) {
            pos++;
            continue;
        }
        size_t start = pos, stop = pos + m->len;
        pos = stop;
        if (!r->parse_special && (m->flags & TOK_ADDED_SPECIAL)) continue;
        if ((m->flags & TOK_ADDED_SINGLE_WORD) && !single_word_ok(r, s, n, start, stop)) continue;
        uint32_t cp;
        size_t l;
        if ((m->flags & TOK_ADDED_LSTRIP) && start < done) /* after an rstrip took the spaces */
            start = done;
        else if (m->flags & TOK_ADDED_LSTRIP)
            while (start > done && (l = char_before(s, start, &cp)) && white_space(cp))
                start -= l;
        if (m->flags & TOK_ADDED_RSTRIP)
            while (stop < n && (l = char_at(s + stop, n - stop, &cp)) && white_space(cp))
                stop += l;
        if (done < start && !fn(r, -1, s, done, start - done)) return false;
        if (!fn(r, m->id, s, start, stop - start)) return false;
        done = stop;
    }
    return done >= n || fn(r, -1, s, done, n - done);
}

static bool on_normalized(hf_run *r, int32_t id, const char *s, size_t off, size_t len) {
    if (id >= 0) return tok_ids_push(r->out, id);
    return tok_hf_pretokenize(r->t, s + off, len, r->raw_at_start && off == 0, r->word, r->ctx);
}

static bool on_raw(hf_run *r, int32_t id, const char *s, size_t off, size_t len) {
    if (id >= 0) return tok_ids_push(r->out, id);
    if (!tok_hf_normalize(r->t, s + off, len, &r->norm, &r->tmp)) return false;
    if (r->norm.len == 0) return true;
    r->raw_at_start = off == 0;
    return find_matches(r, &r->t->added_norm, r->norm.buf, r->norm.len, on_normalized);
}

bool tok_hf_encode(const tokenizer *t, const char *s, size_t n, bool parse_special, tok_ids *out,
                   bool (*word)(void *ctx, const char *w, size_t n), void *ctx) {
    hf_run r = {.t = t, .out = out, .word = word, .ctx = ctx, .parse_special = parse_special};
    bool ok = n == 0 || find_matches(&r, &t->added_raw, s, n, on_raw);
    pcre2_match_data_free(r.md);
    free(r.norm.buf);
    free(r.tmp.buf);
    return ok;
}
