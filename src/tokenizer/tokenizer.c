/* The tokenizer object (tokenizer.h): building its indexes after a loader filled the vocabulary,
 * and the encode pipeline shared by every vocabulary kind:
 *   1. special tokens found in the text become their ids (longest first at each position; for
 *      tokenizer.json files, hf_added.c applies HF's own rules instead);
 *   2. each stretch of text between them is encoded by the model: SentencePiece-style for SPM
 *      vocabularies (spaces -> U+2581, a dummy-prefix space at the start and after specials),
 *      pre-tokenizer regexes then ranked BPE per word for BPE vocabularies;
 *   3. BOS/EOS as the vocabulary asks.
 * A per-call cache of word -> ids makes repeated words in long texts cost one hash lookup. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_utf8.h"

tokenizer *tok_alloc(size_t n_vocab) {
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n_vocab = n_vocab;
    t->bos = t->eos = t->unk = t->pad = -1;
    t->text = calloc(n_vocab ? n_vocab : 1, sizeof *t->text);
    t->text_len = calloc(n_vocab ? n_vocab : 1, sizeof *t->text_len);
    t->piece = calloc(n_vocab ? n_vocab : 1, sizeof *t->piece);
    t->piece_len = calloc(n_vocab ? n_vocab : 1, sizeof *t->piece_len);
    t->score = calloc(n_vocab ? n_vocab : 1, sizeof *t->score);
    t->type = calloc(n_vocab ? n_vocab : 1, sizeof *t->type);
    t->attr = calloc(n_vocab ? n_vocab : 1, sizeof *t->attr);
    if (!t->text || !t->text_len || !t->piece || !t->piece_len || !t->score || !t->type ||
        !t->attr) {
        tok_free(t);
        return NULL;
    }
    for (int b = 0; b < 256; b++)
        t->byte_tok[b] = -1;
    return t;
}

void tok_free(tokenizer *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n_vocab; i++) {
        if (t->piece && t->piece[i] != (uint8_t *)(t->text ? t->text[i] : NULL)) free(t->piece[i]);
        if (t->text) free(t->text[i]);
    }
    free(t->text);
    free(t->text_len);
    free(t->piece);
    free(t->piece_len);
    free(t->score);
    free(t->type);
    free(t->attr);
    free(t->eos_ids);
    free(t->specials);
    tok_strmap_free(&t->by_text);
    tok_strmap_free(&t->by_piece);
    tok_pairmap_free(&t->merges);
    tok_pretok_free(&t->pretok);
    tok_hf_free(t);
    free(t);
}

/* The bytes a token's text stands for. Byte-level vocabularies write each byte as one
 * character of GPT-2's map; SPM ones write spaces as U+2581 and raw bytes as <0xXX>. */
static bool make_piece(tokenizer *t, size_t i) {
    const uint8_t *s = (const uint8_t *)t->text[i];
    size_t n = t->text_len[i];
    uint8_t type = t->type[i];
    /* HF runs every token, added ones too, through its decoders; llama.cpp keeps the text of
     * control and user-defined tokens as it is. */
    bool normal =
        t->hf || type == TOK_TYPE_NORMAL || type == TOK_TYPE_UNDEFINED || type == TOK_TYPE_UNUSED;
    if (type == TOK_TYPE_BYTE && n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>') {
        uint8_t *p = malloc(1);
        if (!p) return false;
        p[0] = (uint8_t)strtoul((const char *)s + 3, NULL, 16);
        t->piece[i] = p, t->piece_len[i] = 1;
        return true;
    }
    if (!normal) {
        t->piece[i] = (uint8_t *)t->text[i], t->piece_len[i] = (uint32_t)n;
        return true;
    }
    uint8_t *p = malloc(n + 1);
    if (!p) return false;
    size_t k = 0;
    for (size_t off = 0; off < n;) {
        uint32_t cp;
        size_t cl = tok_utf8_decode(s + off, n - off, &cp);
        int b = t->byte_level ? tok_cp_to_byte(cp) : -1;
        if (b >= 0) {
            p[k++] = (uint8_t)b;
        } else if (!t->byte_level && cp == 0x2581) {
            p[k++] = ' ';
        } else {
            memcpy(p + k, s + off, cl);
            k += cl;
        }
        off += cl;
    }
    t->piece[i] = p, t->piece_len[i] = (uint32_t)k;
    return true;
}

static const tokenizer *sort_ctx;

static int cmp_special(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = sort_ctx->text_len[x], ly = sort_ctx->text_len[y];
    if (lx != ly) return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

bool tok_finish_load(tokenizer *t, char *err, size_t err_len) {
    if (!tok_strmap_init(&t->by_text, t->n_vocab) ||
        (t->byte_level && !tok_strmap_init(&t->by_piece, t->n_vocab))) {
        snprintf(err, err_len, "out of memory");
        return false;
    }
    size_t n_special = 0;
    for (size_t i = 0; i < t->n_vocab; i++) {
        tok_strmap_put(&t->by_text, t->text[i], t->text_len[i], (int32_t)i);
        if (!make_piece(t, i)) {
            snprintf(err, err_len, "out of memory");
            return false;
        }
        if (t->byte_level)
            tok_strmap_put(&t->by_piece, (const char *)t->piece[i], t->piece_len[i], (int32_t)i);
        uint8_t ty = t->type[i];
        if (ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_USER_DEFINED || ty == TOK_TYPE_UNKNOWN)
            n_special++;
    }
    /* Which token stands for each raw byte. */
    for (int b = 0; b < 256; b++) {
        char buf[8];
        size_t n;
        if (t->byte_level) {
            n = tok_utf8_encode(tok_byte_to_cp((uint8_t)b), (uint8_t *)buf);
        } else {
            n = (size_t)snprintf(buf, sizeof buf, "<0x%02X>", b);
        }
        t->byte_tok[b] = tok_strmap_get(&t->by_text, buf, n);
    }
    t->specials = malloc((n_special ? n_special : 1) * sizeof *t->specials);
    if (!t->specials) {
        snprintf(err, err_len, "out of memory");
        return false;
    }
    t->n_specials = 0;
    for (size_t i = 0; i < t->n_vocab; i++) {
        uint8_t ty = t->type[i];
        if ((ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_USER_DEFINED || ty == TOK_TYPE_UNKNOWN) &&
            t->text_len[i] > 0)
            t->specials[t->n_specials++] = (int32_t)i;
    }
    sort_ctx = t; /* loading is single-threaded per tokenizer; qsort has no context argument */
    qsort(t->specials, t->n_specials, sizeof *t->specials, cmp_special);
    sort_ctx = NULL;
    /* Loaders that run HF's pipeline without HF added tokens (tiktoken.c) have their specials
     * matched as HF matches non-normalized added tokens. */
    if (t->hf && !t->added_raw.n && !t->added_norm.n) {
        for (size_t k = 0; k < t->n_specials; k++) {
            int32_t id = t->specials[k];
            uint8_t flags =
                (uint8_t)((t->type[id] != TOK_TYPE_USER_DEFINED ? TOK_ADDED_SPECIAL : 0) |
                          (t->attr[id] & TOK_ATTR_LSTRIP ? TOK_ADDED_LSTRIP : 0) |
                          (t->attr[id] & TOK_ATTR_RSTRIP ? TOK_ADDED_RSTRIP : 0));
            if (!tok_added_push(&t->added_raw, t->text[id], t->text_len[id], id, flags)) {
                snprintf(err, err_len, "out of memory");
                return false;
            }
        }
        if (!tok_added_finish(t, err, err_len)) return false;
    }
    if (!t->eos_ids && t->eos >= 0) {
        t->eos_ids = malloc(sizeof *t->eos_ids);
        if (!t->eos_ids) {
            snprintf(err, err_len, "out of memory");
            return false;
        }
        t->eos_ids[0] = t->eos;
        t->n_eos_ids = 1;
    }
    return true;
}

/* ---- encode ---- */

/* Per-call word cache: open addressing; keys are copied into an arena because HF words live in
 * temporary buffers. */
enum { CACHE_SLOTS = 1 << 16, CACHE_MAX_WORD = 64 };

typedef struct {
    uint32_t key_off, len, ids_off, n_ids; /* len 0 = empty slot (words are never empty) */
} cache_slot;

typedef struct {
    cache_slot *slots;
    size_t used;
    tok_ids ids;
    char *keys;
    size_t keys_len, keys_cap;
} word_cache;

typedef struct {
    const tokenizer *t;
    tok_scratch scratch;
    tok_pretok_run *run;
    tok_spans spans;
    word_cache cache;
    tok_ids *out;
    uint8_t *buf; /* SPM: escaped fragment */
    size_t buf_cap;
} encoder;

static bool encode_word(encoder *e, const char *w, size_t n) {
    word_cache *c = &e->cache;
    if (!c->slots || n > CACHE_MAX_WORD)
        return tok_bpe_word(e->t, (const uint8_t *)w, n, &e->scratch, e->out);
    size_t i = tok_hash_bytes(w, n) & (CACHE_SLOTS - 1);
    while (c->slots[i].len) {
        cache_slot *s = &c->slots[i];
        if (s->len == n && !memcmp(c->keys + s->key_off, w, n)) {
            for (uint32_t k = 0; k < s->n_ids; k++)
                if (!tok_ids_push(e->out, c->ids.ids[s->ids_off + k])) return false;
            return true;
        }
        i = (i + 1) & (CACHE_SLOTS - 1);
    }
    size_t before = e->out->n;
    if (!tok_bpe_word(e->t, (const uint8_t *)w, n, &e->scratch, e->out)) return false;
    if (c->used < CACHE_SLOTS / 2 && n > 0) {
        if (c->keys_len + n > c->keys_cap) {
            size_t cap = c->keys_cap ? 2 * c->keys_cap : 1 << 16;
            char *k2 = realloc(c->keys, cap);
            if (!k2) return true; /* the cache is only an optimisation */
            c->keys = k2, c->keys_cap = cap;
        }
        memcpy(c->keys + c->keys_len, w, n);
        size_t off = c->ids.n;
        for (size_t k = before; k < e->out->n; k++)
            if (!tok_ids_push(&c->ids, e->out->ids[k])) return false;
        c->slots[i] = (cache_slot){(uint32_t)c->keys_len, (uint32_t)n, (uint32_t)off,
                                   (uint32_t)(e->out->n - before)};
        c->keys_len += n;
        c->used++;
    }
    return true;
}

static bool encode_bpe_text(encoder *e, const char *s, size_t n) {
    const tokenizer *t = e->t;
    if (t->pretok.n == 0) return encode_word(e, s, n);
    if (!e->run && !(e->run = tok_pretok_run_thread())) return false;
    if (!tok_pretok_split(&t->pretok, e->run, s, n, &e->spans)) return false;
    for (size_t i = 0; i < e->spans.n; i++)
        if (!encode_word(e, s + e->spans.off[i], e->spans.len[i])) return false;
    return true;
}

static bool encode_spm_text(encoder *e, const char *s, size_t n, bool prefix) {
    size_t need = 3 * n + 3;
    if (need > e->buf_cap) {
        uint8_t *b = realloc(e->buf, need);
        if (!b) return false;
        e->buf = b, e->buf_cap = need;
    }
    size_t k = 0;
    if (prefix) memcpy(e->buf, "\xE2\x96\x81", 3), k = 3;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(e->buf + k, "\xE2\x96\x81", 3);
            k += 3;
        } else {
            e->buf[k++] = (uint8_t)s[i];
        }
    }
    return tok_spm_fragment(e->t, e->buf, k, &e->scratch, e->out);
}

static bool word_cb(void *ctx, const char *w, size_t n) { return encode_word(ctx, w, n); }

static bool encode_text(encoder *e, const char *s, size_t n, bool after_special) {
    if (e->t->model == TOK_MODEL_SPM)
        return encode_spm_text(e, s, n, e->t->add_space_prefix && after_special);
    return encode_bpe_text(e, s, n);
}

static bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* The special token starting at s (n bytes left), longest first; -1 when none. */
static int32_t match_special(const tokenizer *t, const char *s, size_t n, bool parse_special) {
    for (size_t k = 0; k < t->n_specials; k++) {
        int32_t id = t->specials[k];
        uint32_t len = t->text_len[id];
        if (len > n || t->text[id][0] != s[0] || memcmp(t->text[id], s, len)) continue;
        if (!parse_special && t->type[id] != TOK_TYPE_USER_DEFINED) continue;
        return id;
    }
    return -1;
}

/* Steps 1 and 2 for GGUF and tiktoken vocabularies, as llama.cpp does them. */
static bool encode_with_specials(encoder *e, const char *text, size_t len, bool parse_special) {
    const tokenizer *t = e->t;
    /* First bytes any special token can start with, to skip most positions cheaply. */
    uint8_t first[256] = {0};
    for (size_t k = 0; k < t->n_specials; k++)
        first[(uint8_t)t->text[t->specials[k]][0]] = 1;

    size_t start = 0, pos = 0;
    bool after_special = true, ok = true;
    while (ok && pos < len) {
        int32_t id =
            first[(uint8_t)text[pos]] ? match_special(t, text + pos, len - pos, parse_special) : -1;
        if (id < 0) {
            pos++;
            continue;
        }
        size_t end = pos;
        if (t->attr[id] & TOK_ATTR_LSTRIP)
            while (end > start && is_space(text[end - 1]))
                end--;
        if (end > start) ok = encode_text(e, text + start, end - start, after_special);
        if (ok) ok = tok_ids_push(e->out, id);
        after_special = true;
        pos += t->text_len[id];
        if (t->attr[id] & TOK_ATTR_RSTRIP)
            while (pos < len && is_space(text[pos]))
                pos++;
        start = pos;
    }
    if (ok && start < len) ok = encode_text(e, text + start, len - start, after_special);
    return ok;
}

int tok_encode(const tokenizer *t, const char *text, size_t len, bool add_special,
               bool parse_special, int32_t **ids_out, size_t *n_out) {
    tok_ids out = {0};
    encoder e = {.t = t, .out = &out};
    bool ok = true;
    if (len > 4096) {
        e.cache.slots = calloc(CACHE_SLOTS, sizeof *e.cache.slots);
        /* without the cache encoding is only slower */
    }
    if (add_special && !t->hf && t->add_bos && t->bos >= 0) ok = tok_ids_push(&out, t->bos);
    for (size_t k = 0; ok && add_special && k < t->n_post_prefix; k++)
        ok = tok_ids_push(&out, t->post_prefix[k]);

    if (ok)
        ok = t->hf ? tok_hf_encode(t, text, len, parse_special, &out, word_cb, &e)
                   : encode_with_specials(&e, text, len, parse_special);
    for (size_t k = 0; ok && add_special && k < t->n_post_suffix; k++)
        ok = tok_ids_push(&out, t->post_suffix[k]);
    if (ok && add_special && !t->hf && t->add_eos && t->eos >= 0) ok = tok_ids_push(&out, t->eos);

    tok_scratch_free(&e.scratch);
    tok_spans_free(&e.spans);
    free(e.cache.slots);
    free(e.cache.ids.ids);
    free(e.cache.keys);
    free(e.buf);
    if (!ok) {
        free(out.ids);
        return -1;
    }
    if (!out.ids && !(out.ids = malloc(sizeof *out.ids))) return -1;
    *ids_out = out.ids;
    *n_out = out.n;
    return 0;
}

/* ---- accessors ---- */

size_t tok_vocab_size(const tokenizer *t) { return t->n_vocab; }
int32_t tok_bos(const tokenizer *t) { return t->bos; }
int32_t tok_eos(const tokenizer *t) { return t->eos; }
int32_t tok_unk(const tokenizer *t) { return t->unk; }
int32_t tok_pad(const tokenizer *t) { return t->pad; }
bool tok_add_bos(const tokenizer *t) { return t->add_bos; }
bool tok_add_eos(const tokenizer *t) { return t->add_eos; }

const int32_t *tok_eos_ids(const tokenizer *t, size_t *n) {
    *n = t->n_eos_ids;
    return t->eos_ids;
}

tok_type tok_token_type(const tokenizer *t, int32_t id) {
    if (id < 0 || (size_t)id >= t->n_vocab) return TOK_TYPE_UNDEFINED;
    return (tok_type)t->type[id];
}

bool tok_is_special(const tokenizer *t, int32_t id) {
    tok_type ty = tok_token_type(t, id);
    return ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_UNKNOWN;
}

const char *tok_text(const tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || (size_t)id >= t->n_vocab) return NULL;
    if (len) *len = t->text_len[id];
    return t->text[id];
}

const uint8_t *tok_piece(const tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || (size_t)id >= t->n_vocab) return NULL;
    *len = t->piece_len[id];
    return t->piece[id];
}

int32_t tok_find(const tokenizer *t, const char *text, size_t len) {
    return tok_strmap_get(&t->by_text, text, len);
}
