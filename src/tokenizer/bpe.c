/* Ranked-merge BPE over one pre-token word. Symbols are token ids in a linked list; each
 * adjacent pair's merge rank is kept beside its left symbol, and every step merges the pair of
 * lowest rank, leftmost first -- the order llama.cpp's and HF's priority queues produce. Words
 * are short, so a scan for the minimum beats a heap; words of more than WORD_SCAN_MAX symbols
 * (long runs of spaces, a pre-tokenizer-less fragment) go through a heap instead. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_heap.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_utf8.h"

bool tok_ids_push(tok_ids *v, int32_t id) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 64;
        int32_t *p = realloc(v->ids, cap * sizeof *p);
        if (!p) return false;
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return true;
}

void tok_scratch_free(tok_scratch *s) {
    free(s->sym);
    free(s->start);
    free(s->len);
    free(s->prev);
    free(s->next);
    memset(s, 0, sizeof *s);
}

bool tok_scratch_reserve(tok_scratch *s, size_t n) {
    if (n <= s->cap) return true;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < n)
        cap *= 2;
    int32_t *sym = realloc(s->sym, cap * sizeof *sym);
    if (sym) s->sym = sym;
    uint32_t *st = realloc(s->start, cap * sizeof *st);
    if (st) s->start = st;
    uint32_t *ln = realloc(s->len, cap * sizeof *ln);
    if (ln) s->len = ln;
    int32_t *pv = realloc(s->prev, cap * sizeof *pv);
    if (pv) s->prev = pv;
    int32_t *nx = realloc(s->next, cap * sizeof *nx);
    if (nx) s->next = nx;
    if (!sym || !st || !ln || !pv || !nx) return false;
    s->cap = cap;
    return true;
}

/* Rank of merging symbol i with the one after it (INT32_MAX when none), the merged id in *m. */
static int32_t pair_rank(const tokenizer *t, const tok_scratch *s, int32_t i, int32_t *m) {
    int32_t j = s->next[i];
    if (j < 0 || s->sym[i] < 0 || s->sym[j] < 0) return INT32_MAX;
    const tok_pairmap_slot *p = tok_pairmap_get(&t->merges, s->sym[i], s->sym[j]);
    if (!p) return INT32_MAX;
    *m = p->merged;
    return p->rank;
}

static void push_sym(tok_scratch *s, long *k, int32_t id, size_t start, size_t len) {
    s->sym[*k] = id, s->start[*k] = (uint32_t)start, s->len[*k] = (uint32_t)len;
    (*k)++;
}

/* Initial symbols: bytes for byte-level vocabularies, else UTF-8 characters. A character the
 * vocabulary lacks goes as HF's BPE::merge_word has it: with byte_fallback, one <0xXX> symbol
 * per byte when the vocabulary has all of them; else the unk token, consecutive ones fused into
 * one when fuse_unk; else (no unk token) it is dropped, and its neighbours may merge across the
 * gap. A pending unk is only written out before the next known character or at the end, so
 * byte-fallback symbols that come between go before it (HF's order). Returns the count, or -1
 * on OOM. */
static long init_symbols(const tokenizer *t, const uint8_t *w, size_t n, tok_scratch *s) {
    if (!tok_scratch_reserve(s, n)) return -1;
    long k = 0;
    size_t off = 0;
    bool unk_pending = false;
    uint32_t unk_start = 0, unk_len = 0;
    while (off < n) {
        size_t cl = t->byte_level ? 1 : tok_utf8_len(w[off]);
        if (cl > n - off) cl = n - off;
        int32_t id = t->byte_level ? t->byte_tok[w[off]]
                                   : tok_strmap_get(&t->by_text, (const char *)w + off, cl);
        if (id >= 0) {
            if (unk_pending) push_sym(s, &k, t->unk, unk_start, unk_len);
            unk_pending = false;
            push_sym(s, &k, id, off, cl);
            off += cl;
            continue;
        }
        if (!t->byte_level && t->byte_fallback) {
            bool all = true;
            for (size_t b = 0; b < cl && all; b++)
                all = t->byte_tok[w[off + b]] >= 0;
            if (all) {
                for (size_t b = 0; b < cl; b++)
                    push_sym(s, &k, t->byte_tok[w[off + b]], off + b, 1);
                off += cl;
                continue;
            }
        }
        if (t->unk >= 0) {
            if (unk_pending && t->fuse_unk) {
                unk_len += (uint32_t)cl;
            } else {
                if (unk_pending) push_sym(s, &k, t->unk, unk_start, unk_len);
                unk_pending = true, unk_start = (uint32_t)off, unk_len = (uint32_t)cl;
            }
        }
        off += cl;
    }
    if (unk_pending) push_sym(s, &k, t->unk, unk_start, unk_len);
    for (long i = 0; i < k; i++) {
        s->prev[i] = (int32_t)i - 1;
        s->next[i] = i + 1 < k ? (int32_t)i + 1 : -1;
    }
    return k;
}

enum { WORD_SCAN_MAX = 64 };

static bool heap_pair(const tokenizer *t, const tok_scratch *s, int32_t i, tok_heap *h) {
    if (i < 0) return true;
    int32_t m = -1, r = pair_rank(t, s, i, &m);
    if (r == INT32_MAX) return true;
    int32_t j = s->next[i];
    return tok_heap_push(h, (tok_heap_item){(double)r, i, j, s->len[i] + s->len[j], m});
}

static bool bpe_long(const tokenizer *t, long k, tok_scratch *s) {
    tok_heap h = {0};
    bool ok = true;
    for (long i = 0; i + 1 < k && ok; i++)
        ok = heap_pair(t, s, (int32_t)i, &h);
    while (ok && h.n) {
        tok_heap_item it = tok_heap_pop(&h);
        int32_t l = it.left, r = it.right;
        if (s->len[l] == 0 || s->len[r] == 0 || s->next[l] != r || s->len[l] + s->len[r] != it.size)
            continue;
        s->sym[l] = it.merged;
        s->len[l] += s->len[r];
        s->len[r] = 0;
        s->next[l] = s->next[r];
        if (s->next[r] >= 0) s->prev[s->next[r]] = l;
        ok = heap_pair(t, s, s->prev[l], &h) && heap_pair(t, s, l, &h);
    }
    free(h.items);
    return ok;
}

bool tok_bpe_word(const tokenizer *t, const uint8_t *w, size_t n, tok_scratch *s, tok_ids *out) {
    if (n == 0) return true;
    if (t->ignore_merges) {
        int32_t id = t->byte_level ? tok_strmap_get(&t->by_piece, (const char *)w, n)
                                   : tok_strmap_get(&t->by_text, (const char *)w, n);
        if (id >= 0) return tok_ids_push(out, id);
    }
    long k = init_symbols(t, w, n, s);
    if (k <= 0) return k == 0; /* every character dropped: nothing to emit */
    if (k > WORD_SCAN_MAX) {
        bool ok = bpe_long(t, k, s);
        for (int32_t i = 0; i >= 0 && ok; i = s->next[i])
            if (s->sym[i] >= 0) ok = tok_ids_push(out, s->sym[i]);
        return ok;
    }
    /* rank[i] and merged[i] describe the pair (i, next[i]). */
    int32_t rank[WORD_SCAN_MAX], merged[WORD_SCAN_MAX];
    for (long i = 0; i < k; i++)
        rank[i] = pair_rank(t, s, (int32_t)i, &merged[i]);
    for (;;) {
        int32_t best = -1, best_rank = INT32_MAX;
        for (int32_t i = 0; i >= 0; i = s->next[i])
            if (rank[i] < best_rank) best_rank = rank[i], best = i;
        if (best < 0) break;
        int32_t j = s->next[best];
        s->sym[best] = merged[best];
        s->len[best] += s->len[j];
        s->len[j] = 0;
        s->next[best] = s->next[j];
        if (s->next[j] >= 0) s->prev[s->next[j]] = best;
        rank[best] = pair_rank(t, s, best, &merged[best]);
        if (s->prev[best] >= 0)
            rank[s->prev[best]] = pair_rank(t, s, s->prev[best], &merged[s->prev[best]]);
    }
    bool ok = true;
    for (int32_t i = 0; i >= 0 && ok; i = s->next[i])
        if (s->sym[i] >= 0) ok = tok_ids_push(out, s->sym[i]);
    return ok;
}
