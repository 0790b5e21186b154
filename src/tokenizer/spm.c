/* SentencePiece-style encoding as llama.cpp's llm_tokenizer_spm does it: start from UTF-8
 * characters, repeatedly merge the adjacent pair whose concatenation is a vocabulary token with
 * the highest score (leftmost on ties), then emit each final symbol as its token or, when it is
 * not one, as <0xXX> byte tokens. A heap keeps this O(n log n): SPM has no pre-tokenizer, so a
 * fragment can be a whole document. */
#include <stdlib.h>

#include "tokenizer/tok_heap.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_utf8.h"

static bool try_pair(const tokenizer *t, const uint8_t *w, const tok_scratch *s, int32_t i,
                     tok_heap *h) {
    if (i < 0) return true;
    int32_t j = s->next[i];
    if (j < 0) return true;
    uint32_t size = s->len[i] + s->len[j];
    int32_t id = tok_strmap_get(&t->by_text, (const char *)w + s->start[i], size);
    if (id < 0) return true;
    return tok_heap_push(h, (tok_heap_item){-(double)t->score[id], i, j, size, id});
}

bool tok_spm_fragment(const tokenizer *t, const uint8_t *w, size_t n, tok_scratch *s,
                      tok_ids *out) {
    if (n == 0) return true;
    if (!tok_scratch_reserve(s, n)) return false;
    int32_t k = 0;
    for (size_t off = 0; off < n;) {
        size_t cl = tok_utf8_len(w[off]);
        if (cl > n - off) cl = n - off;
        s->start[k] = (uint32_t)off, s->len[k] = (uint32_t)cl;
        s->prev[k] = k - 1;
        off += cl;
        s->next[k] = off < n ? k + 1 : -1;
        k++;
    }
    tok_heap h = {0};
    bool ok = true;
    for (int32_t i = 0; i + 1 < k && ok; i++)
        ok = try_pair(t, w, s, i, &h);
    while (ok && h.n) {
        tok_heap_item it = tok_heap_pop(&h);
        int32_t l = it.left, r = it.right;
        if (s->len[l] == 0 || s->len[r] == 0 || s->len[l] + s->len[r] != it.size) continue;
        s->len[l] += s->len[r];
        s->len[r] = 0;
        s->next[l] = s->next[r];
        if (s->next[r] >= 0) s->prev[s->next[r]] = l;
        ok = try_pair(t, w, s, s->prev[l], &h) && try_pair(t, w, s, l, &h);
    }
    free(h.items);
    for (int32_t i = 0; i >= 0 && ok; i = s->next[i]) {
        int32_t id = tok_strmap_get(&t->by_text, (const char *)w + s->start[i], s->len[i]);
        if (id >= 0) {
            ok = tok_ids_push(out, id);
            continue;
        }
        for (uint32_t b = 0; b < s->len[i] && ok; b++) {
            int32_t bid = t->byte_tok[w[s->start[i] + b]];
            if (bid < 0) bid = t->unk;
            if (bid >= 0) ok = tok_ids_push(out, bid);
        }
    }
    return ok;
}
