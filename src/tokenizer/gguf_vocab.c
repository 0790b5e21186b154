/* Loading a tokenizer from GGUF metadata (tokenizer.ggml.*), with the defaults and per-model
 * quirks llama.cpp applies (src/llama-vocab.cpp, llama_vocab::impl::load), so that encoding
 * matches llama.cpp's: "llama" = SentencePiece-style with scores and <0xXX> byte tokens,
 * "gpt2" = byte-level BPE with ranked merges and a pre-tokenizer named by tokenizer.ggml.pre. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

static bool get_id(const gguf_file *g, const char *key, size_t n_vocab, int32_t *out, char *err,
                   size_t err_len) {
    int64_t v;
    if (!gguf_find_kv(g, key)) return true;
    if (!gguf_get_i64(g, key, &v)) {
        snprintf(err, err_len, "%s: %s: not an integer", gguf_path(g), key);
        return false;
    }
    /* llama.cpp ignores ids past the vocabulary (some converters write them); so do we. */
    if (v >= 0 && (uint64_t)v < n_vocab) *out = (int32_t)v;
    return true;
}

static bool add_merges(tokenizer *t, const gguf_file *g, char *err, size_t err_len) {
    const gguf_kv *kv = gguf_find_kv(g, "tokenizer.ggml.merges");
    if (!kv) return true; /* no merges: BPE degrades to bytes, as llama.cpp would */
    if (kv->type != GGUF_ARRAY || kv->arr_type != GGUF_STRING) {
        snprintf(err, err_len, "%s: tokenizer.ggml.merges: not an array of strings", gguf_path(g));
        return false;
    }
    if (!tok_pairmap_init(&t->merges, kv->arr_n)) {
        snprintf(err, err_len, "out of memory");
        return false;
    }
    char *buf = NULL;
    size_t cap = 0;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        const gguf_str *m = &kv->arr_strs[i];
        if (m->len < 3) continue;
        const char *sp = memchr(m->ptr + 1, ' ', m->len - 1);
        if (!sp) continue;
        size_t la = (size_t)(sp - m->ptr), lb = m->len - la - 1;
        int32_t a = tok_strmap_get(&t->by_text, m->ptr, la);
        int32_t b = tok_strmap_get(&t->by_text, sp + 1, lb);
        if (a < 0 || b < 0) continue;
        if (la + lb > cap) {
            cap = 2 * (la + lb);
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                snprintf(err, err_len, "out of memory");
                return false;
            }
            buf = nb;
        }
        memcpy(buf, m->ptr, la);
        memcpy(buf + la, sp + 1, lb);
        int32_t ab = tok_strmap_get(&t->by_text, buf, la + lb);
        if (ab < 0) continue;
        tok_pairmap_put(&t->merges, a, b, (int32_t)i, ab);
    }
    free(buf);
    return true;
}

/* llama.cpp sets whitespace-stripping flags on Phi-3's special tokens by model name. */
static void phi3_attrs(tokenizer *t, const gguf_file *g) {
    char *name = gguf_get_str(g, "general.name");
    if (!name) return;
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    bool phi3 = strstr(name, "phi-3") || strstr(name, "phi3");
    free(name);
    if (!phi3) return;
    for (size_t k = 0; k < t->n_specials; k++)
        t->attr[t->specials[k]] |= TOK_ATTR_RSTRIP;
    int32_t id = tok_strmap_get(&t->by_text, "</s>", 4);
    if (id >= 0) t->attr[id] |= TOK_ATTR_RSTRIP;
    static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
    for (size_t k = 0; k < 3; k++) {
        id = tok_strmap_get(&t->by_text, keep[k], strlen(keep[k]));
        if (id >= 0) t->attr[id] &= (uint8_t)~TOK_ATTR_RSTRIP;
    }
}

/* Texts llama.cpp treats as end-of-generation, and as fill-in-the-middle markers; it forces all
 * of them to control type (so they are not matched in text without parse_special). */
static const char *const eog_texts[] = {"<|eot_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<|return|>",
                                        "<|call|>",
                                        "<|flush|>",
                                        "<|calls|>",
                                        "<end_of_turn>",
                                        "<|endoftext|>",
                                        "</s>",
                                        "<|eom_id|>",
                                        "<EOT>",
                                        "_<EOT>",
                                        "[EOT]",
                                        "[EOS]",
                                        "<|end_of_text|>",
                                        "<end_of_utterance>",
                                        "<eos>",
                                        "<turn|>",
                                        "<|tool_response>",
                                        "<｜end▁of▁sentence｜>",
                                        "[e~[",
                                        NULL};
static const char *const fim_texts[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",    "<｜fim▁begin｜>",
    "<PRE>",          "▁<PRE>",       "<|code_prefix|>", "<|prefix|>",
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",    "<｜fim▁hole｜>",
    "<SUF>",          "▁<SUF>",       "<|code_suffix|>", "<|suffix|>",
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>",    "<｜fim▁end｜>",
    "<MID>",          "▁<MID>",       "<|code_middle|>", "<|middle|>",
    "<|fim_pad|>",    "<fim-pad>",    "<fim_pad>",       "<PAD>",
    "[PAD]",          "<|fim_repo|>", "<|repo_name|>",   "<fim-repo>",
    "<REPO>",         "<reponame>",   "<|file_sep|>",    NULL};
/* gpt-oss markup that llama.cpp always renders. */
static const char *const user_texts[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>",
                                         NULL};

static bool in_list(const char *const *list, const char *s, size_t n) {
    for (; *list; list++)
        if (strlen(*list) == n && !memcmp(*list, s, n)) return true;
    return false;
}

/* Applies llama.cpp's by-text type overrides; runs before the indexes are built. */
static void override_types(tokenizer *t) {
    for (size_t i = 0; i < t->n_vocab; i++) {
        const char *s = t->text[i];
        size_t n = t->text_len[i];
        bool maybe = s[0] == '<' || s[0] == '[' || s[0] == '_' || (uint8_t)s[0] == 0xE2;
        if (n < 3 || n > 40 || !maybe) continue;
        if (in_list(user_texts, s, n))
            t->type[i] = TOK_TYPE_USER_DEFINED;
        else if (in_list(eog_texts, s, n) || in_list(fim_texts, s, n))
            t->type[i] = TOK_TYPE_CONTROL;
    }
}

/* End-of-generation ids: eos, eot, eom, and the end-of-turn tokens llama.cpp recognises by
 * their text. */
static bool collect_eos(tokenizer *t, const gguf_file *g, char *err, size_t err_len) {
    int32_t ids[40];
    size_t n = 0;
    int32_t eot = -1, eom = -1;
    if (!get_id(g, "tokenizer.ggml.eot_token_id", t->n_vocab, &eot, err, err_len) ||
        !get_id(g, "tokenizer.ggml.eom_token_id", t->n_vocab, &eom, err, err_len))
        return false;
    int32_t cand[40] = {t->eos, eot, eom};
    size_t nc = 3;
    for (size_t k = 0; eog_texts[k] && nc < 40; k++)
        cand[nc++] = tok_strmap_get(&t->by_text, eog_texts[k], strlen(eog_texts[k]));
    for (size_t k = 0; k < nc; k++) {
        if (cand[k] < 0) continue;
        bool dup = false;
        for (size_t j = 0; j < n; j++)
            dup |= ids[j] == cand[k];
        if (!dup) ids[n++] = cand[k];
    }
    if (n == 0) return true;
    free(t->eos_ids);
    t->eos_ids = malloc(n * sizeof *t->eos_ids);
    if (!t->eos_ids) {
        snprintf(err, err_len, "out of memory");
        return false;
    }
    memcpy(t->eos_ids, ids, n * sizeof *ids);
    t->n_eos_ids = n;
    return true;
}

static bool load_tokens(tokenizer *t, const gguf_file *g, const gguf_kv *toks, char *err,
                        size_t err_len) {
    const gguf_kv *scores = gguf_find_kv(g, "tokenizer.ggml.scores");
    const gguf_kv *types = gguf_find_kv(g, "tokenizer.ggml.token_type");
    if (scores && (scores->type != GGUF_ARRAY || scores->arr_n < toks->arr_n)) {
        snprintf(err, err_len, "%s: tokenizer.ggml.scores: %llu entries for %llu tokens",
                 gguf_path(g), (unsigned long long)scores->arr_n, (unsigned long long)toks->arr_n);
        return false;
    }
    if (types && (types->type != GGUF_ARRAY || types->arr_n < toks->arr_n)) {
        snprintf(err, err_len, "%s: tokenizer.ggml.token_type: %llu entries for %llu tokens",
                 gguf_path(g), (unsigned long long)types->arr_n, (unsigned long long)toks->arr_n);
        return false;
    }
    for (size_t i = 0; i < t->n_vocab; i++) {
        const gguf_str *s = &toks->arr_strs[i];
        char empty[32];
        size_t n = s->len;
        const char *src = s->ptr;
        if (n == 0) { /* llama.cpp names empty tokens so that they stay distinct */
            n = (size_t)snprintf(empty, sizeof empty, "[EMPTY_%zu]", i);
            src = empty;
        }
        if (n > UINT32_MAX || !(t->text[i] = malloc(n + 1))) {
            snprintf(err, err_len, "%s: token %zu: out of memory", gguf_path(g), i);
            return false;
        }
        memcpy(t->text[i], src, n);
        t->text[i][n] = 0;
        t->text_len[i] = (uint32_t)n;
        double sc = 0;
        if (scores && !gguf_arr_f64(scores, i, &sc)) {
            snprintf(err, err_len, "%s: tokenizer.ggml.scores: entry %zu is not a number",
                     gguf_path(g), i);
            return false;
        }
        t->score[i] = (float)sc;
        int64_t ty = TOK_TYPE_NORMAL;
        if (types && !gguf_arr_i64(types, i, &ty)) {
            snprintf(err, err_len, "%s: tokenizer.ggml.token_type: entry %zu is not an integer",
                     gguf_path(g), i);
            return false;
        }
        t->type[i] = ty >= 0 && ty <= TOK_TYPE_BYTE ? (uint8_t)ty : TOK_TYPE_UNDEFINED;
    }
    return true;
}

tokenizer *tok_load_gguf(const gguf_file *g, char *err, size_t err_len) {
    char *model = gguf_get_str(g, "tokenizer.ggml.model");
    if (!model) {
        snprintf(err, err_len, "%s: tokenizer.ggml.model: missing", gguf_path(g));
        return NULL;
    }
    bool spm = !strcmp(model, "llama"), bpe = !strcmp(model, "gpt2");
    if (!spm && !bpe) {
        snprintf(err, err_len, "%s: tokenizer.ggml.model: unsupported tokenizer '%s'", gguf_path(g),
                 model);
        free(model);
        return NULL;
    }
    free(model);
    const gguf_kv *toks = gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (!toks || toks->type != GGUF_ARRAY || toks->arr_type != GGUF_STRING || toks->arr_n == 0 ||
        toks->arr_n > INT32_MAX) {
        snprintf(err, err_len, "%s: tokenizer.ggml.tokens: missing or not a list of strings",
                 gguf_path(g));
        return NULL;
    }
    tokenizer *t = tok_alloc((size_t)toks->arr_n);
    if (!t) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    t->model = spm ? TOK_MODEL_SPM : TOK_MODEL_BPE;
    t->byte_level = bpe;
    t->byte_fallback = spm;
    t->add_space_prefix = spm;
    t->add_bos = spm;
    t->add_eos = false;
    char *pre = NULL;
    if (!load_tokens(t, g, toks, err, err_len)) goto fail;
    if (bpe) {
        pre = gguf_get_str(g, "tokenizer.ggml.pre");
        const char *name = pre ? pre : "default";
        if (!tok_pretok_init_named(&t->pretok, name, err, err_len)) {
            char why[300];
            snprintf(why, sizeof why, "%s", err);
            snprintf(err, err_len, "%s: tokenizer.ggml.pre: %s", gguf_path(g), why);
            goto fail;
        }
        /* The Llama-3 family takes whole words that are tokens before merging, and adds BOS. */
        static const char *const llama3[] = {"llama3", "llama-v3", "llama-bpe", "falcon3",
                                             "pixtral"};
        for (size_t k = 0; k < sizeof llama3 / sizeof llama3[0]; k++)
            if (!strcmp(name, llama3[k])) t->ignore_merges = t->add_bos = true;
    }
    bool b;
    if (gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b)) t->add_space_prefix = b;
    if (gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b)) t->add_bos = b;
    if (gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b)) t->add_eos = b;
    if (!get_id(g, "tokenizer.ggml.bos_token_id", t->n_vocab, &t->bos, err, err_len) ||
        !get_id(g, "tokenizer.ggml.eos_token_id", t->n_vocab, &t->eos, err, err_len) ||
        !get_id(g, "tokenizer.ggml.unknown_token_id", t->n_vocab, &t->unk, err, err_len) ||
        !get_id(g, "tokenizer.ggml.padding_token_id", t->n_vocab, &t->pad, err, err_len))
        goto fail;
    override_types(t);
    if (!tok_finish_load(t, err, err_len)) goto fail;
    if (bpe && !add_merges(t, g, err, err_len)) goto fail;
    if (!collect_eos(t, g, err, err_len)) goto fail;
    phi3_attrs(t, g);
    free(pre);
    return t;
fail:
    free(pre);
    tok_free(t);
    return NULL;
}

tokenizer *tok_load_gguf_path(const char *path, char *err, size_t err_len) {
    gguf_file *g = gguf_open(path, err, err_len);
    if (!g) return NULL;
    tokenizer *t = tok_load_gguf(g, err, err_len);
    gguf_close(g);
    return t;
}
