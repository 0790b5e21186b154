/* Detokenization (tokenizer.h): whole sequences and streams. Token pieces are raw bytes, and a
 * UTF-8 character can be split across tokens (byte-fallback <0xXX> tokens, byte-level BPE), so a
 * stream holds back an incomplete trailing sequence until the next token completes it. Bytes
 * that can never form a character become U+FFFD, one per maximal invalid subpart, as Rust's
 * String::from_utf8_lossy (and so HF's decode) does. The SentencePiece dummy-prefix space of the
 * first decoded token is dropped, as HF's Metaspace/Strip decoders do. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

struct tok_detok {
    const tokenizer *t;
    bool skip_special;
    bool started; /* a token has been output: no more prefix stripping */
    uint8_t pend[4];
    size_t n_pend;
    char *out;
    size_t out_cap;
};

tok_detok *tok_detok_new(const tokenizer *t, bool skip_special) {
    tok_detok *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->t = t;
    d->skip_special = skip_special;
    return d;
}

void tok_detok_free(tok_detok *d) {
    if (!d) return;
    free(d->out);
    free(d);
}

/* Bytes needed by a lead byte (0: not a lead byte), and the range its second byte must lie in. */
static size_t seq_need(uint8_t c, uint8_t *lo, uint8_t *hi) {
    *lo = 0x80, *hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0) *lo = 0xA0;
        if (c == 0xED) *hi = 0x9F;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0) *lo = 0x90;
        if (c == 0xF4) *hi = 0x8F;
        return 4;
    }
    return 0;
}

/* How many bytes at s form a valid start of a character (its maximal subpart), and how many
 * the whole character needs. */
static size_t valid_prefix(const uint8_t *s, size_t n, size_t *need) {
    uint8_t lo, hi;
    *need = seq_need(s[0], &lo, &hi);
    if (*need == 0) return 0;
    size_t k = 1;
    while (k < *need && k < n) {
        uint8_t c = s[k];
        if (k == 1 ? (c < lo || c > hi) : (c & 0xC0) != 0x80) break;
        k++;
    }
    return k;
}

static bool out_reserve(tok_detok *d, size_t n) {
    if (n <= d->out_cap) return true;
    size_t cap = d->out_cap ? d->out_cap : 64;
    while (cap < n)
        cap *= 2;
    char *p = realloc(d->out, cap);
    if (!p) return false;
    d->out = p, d->out_cap = cap;
    return true;
}

/* Appends the complete characters of pend+bytes to out (with U+FFFD for invalid bytes);
 * an incomplete tail goes back to pend unless final. Returns the output length or -1. */
static long convert(tok_detok *d, const uint8_t *bytes, size_t n, bool final) {
    size_t total = d->n_pend + n;
    /* Worst case every byte becomes U+FFFD (3 bytes). */
    if (!out_reserve(d, 3 * total + 1)) return -1;
    uint8_t small[64];
    uint8_t *buf = total <= sizeof small ? small : malloc(total);
    if (!buf) return -1;
    memcpy(buf, d->pend, d->n_pend);
    if (n) memcpy(buf + d->n_pend, bytes, n);
    d->n_pend = 0;
    size_t k = 0, i = 0;
    while (i < total) {
        size_t need, v = valid_prefix(buf + i, total - i, &need);
        if (need > 0 && v == need) {
            memcpy(d->out + k, buf + i, v);
            k += v, i += v;
        } else if (v > 0 && i + v == total && !final) {
            memcpy(d->pend, buf + i, v);
            d->n_pend = v;
            i += v;
        } else {
            memcpy(d->out + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i += v ? v : 1;
        }
    }
    d->out[k] = 0;
    if (buf != small) free(buf);
    return (long)k;
}

const char *tok_detok_push(tok_detok *d, int32_t id, size_t *len) {
    size_t n;
    const uint8_t *p = tok_piece(d->t, id, &n);
    if (!p) return NULL;
    if (d->skip_special && tok_is_special(d->t, id)) {
        n = 0;
    } else if (!d->started) {
        d->started = true;
        tok_type ty = tok_token_type(d->t, id);
        if (d->t->add_space_prefix && n > 0 && p[0] == ' ' &&
            (ty == TOK_TYPE_NORMAL || ty == TOK_TYPE_UNDEFINED))
            p++, n--;
    }
    long k = convert(d, p, n, false);
    if (k < 0) return NULL;
    *len = (size_t)k;
    return d->out;
}

const char *tok_detok_flush(tok_detok *d, size_t *len) {
    long k = convert(d, NULL, 0, true);
    if (k < 0) return NULL;
    *len = (size_t)k;
    return d->out;
}

char *tok_decode(const tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                 size_t *len_out) {
    tok_detok *d = tok_detok_new(t, skip_special);
    if (!d) return NULL;
    size_t cap = 64, len = 0;
    char *s = malloc(cap);
    for (size_t i = 0; s && i <= n; i++) {
        size_t k;
        const char *part = i < n ? tok_detok_push(d, ids[i], &k) : tok_detok_flush(d, &k);
        if (!part) {
            free(s);
            s = NULL;
            break;
        }
        if (len + k + 1 > cap) {
            while (len + k + 1 > cap)
                cap *= 2;
            char *s2 = realloc(s, cap);
            if (!s2) {
                free(s);
                s = NULL;
                break;
            }
            s = s2;
        }
        memcpy(s + len, part, k);
        len += k;
    }
    tok_detok_free(d);
    if (!s) return NULL;
    s[len] = 0;
    if (len_out) *len_out = len;
    return s;
}
