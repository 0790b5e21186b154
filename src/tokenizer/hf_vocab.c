/* Loading a Hugging Face tokenizer.json (jansson) into the shared tokenizer, and the HF side of
 * encoding: pre-tokenizers (ByteLevel, Split, Digits, Metaspace, Sequence) in front of the BPE
 * model (byte-level, or SentencePiece-style with byte_fallback); the normalizers' steps are
 * parsed here and run by hf_norm.c. Added tokens become control (special) or user-defined
 * tokens, matched in text by hf_added.c; TemplateProcessing gives the BOS/EOS put around the text;
 * the decoder list only decides how pieces decode (byte-level, U+2581 -> space, first space
 * stripped). Anything the file asks for that we do not implement is an error naming it, never
 * ignored. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_utf8.h"

static const char gpt2_regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef struct {
    char *err;
    size_t err_len;
    const char *path;
} ctx_t;

#define FAIL(c, ...)                                                                               \
    do {                                                                                           \
        char why_[400];                                                                            \
        snprintf(why_, sizeof why_, __VA_ARGS__);                                                  \
        snprintf((c)->err, (c)->err_len, "%s: %s", (c)->path, why_);                               \
        return false;                                                                              \
    } while (0)

void tok_hf_free(tokenizer *t) {
    for (size_t i = 0; i < t->n_norm; i++)
        tok_norm_step_free(&t->norm[i]);
    free(t->norm);
    tok_added_free(t);
    for (size_t i = 0; i < t->n_hf_pre; i++)
        tok_pretok_free(&t->hf_pre[i].pre);
    free(t->hf_pre);
}

static char *dup_bytes(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) memcpy(p, s, n), p[n] = 0;
    return p;
}

/* A Split/Replace pattern: {"String": s} (literal) or {"Regex": r}; returns a PCRE2 source. */
static char *pattern_regex(json_t *pat, size_t *len) {
    json_t *s = json_object_get(pat, "String"), *r = json_object_get(pat, "Regex");
    if (json_is_string(r)) {
        *len = json_string_length(r);
        return dup_bytes(json_string_value(r), *len);
    }
    if (!json_is_string(s)) return NULL;
    const char *v = json_string_value(s);
    size_t n = json_string_length(s);
    char *out = malloc(2 * n + 1);
    if (!out) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strchr("\\^$.|?*+()[]{}", v[i]) && v[i]) out[k++] = '\\';
        out[k++] = v[i];
    }
    out[k] = 0;
    *len = k;
    return out;
}

static bool add_norm(tokenizer *t, json_t *n, ctx_t *c) {
    if (!n || json_is_null(n)) return true;
    const char *type = json_string_value(json_object_get(n, "type"));
    if (!type) FAIL(c, "normalizer without a type");
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(n, "normalizers");
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v) if (!add_norm(t, v, c)) return false;
        return true;
    }
    tok_norm_step st = {0};
    char err[300];
    if (!strcmp(type, "NFC")) {
        st.kind = TOK_NORM_NFC;
    } else if (!strcmp(type, "NFKC")) {
        st.kind = TOK_NORM_NFKC;
    } else if (!strcmp(type, "NFD")) {
        st.kind = TOK_NORM_NFD;
    } else if (!strcmp(type, "NFKD")) {
        st.kind = TOK_NORM_NFKD;
    } else if (!strcmp(type, "Lowercase")) {
        st.kind = TOK_NORM_LOWERCASE;
    } else if (!strcmp(type, "Strip")) {
        json_t *l = json_object_get(n, "strip_left"), *r = json_object_get(n, "strip_right");
        if (!json_is_boolean(l) || !json_is_boolean(r))
            FAIL(c, "normalizer Strip: needs booleans strip_left and strip_right");
        st.kind = TOK_NORM_STRIP;
        st.strip_left = json_is_true(l);
        st.strip_right = json_is_true(r);
    } else if (!strcmp(type, "Prepend")) {
        json_t *p = json_object_get(n, "prepend");
        if (!json_is_string(p)) FAIL(c, "normalizer Prepend: no 'prepend' string");
        st.kind = TOK_NORM_PREPEND;
        st.la = json_string_length(p);
        st.a = dup_bytes(json_string_value(p), st.la);
    } else if (!strcmp(type, "Replace")) {
        json_t *pat = json_object_get(n, "pattern"), *content = json_object_get(n, "content");
        json_t *s = json_object_get(pat, "String"), *re = json_object_get(pat, "Regex");
        if ((!json_is_string(s) && !json_is_string(re)) || !json_is_string(content))
            FAIL(c, "normalizer Replace: needs a {String} or {Regex} pattern and a content string");
        st.kind = TOK_NORM_REPLACE;
        st.lb = json_string_length(content);
        st.b = dup_bytes(json_string_value(content), st.lb);
        if (json_is_string(s) && json_string_length(s) > 0) {
            st.la = json_string_length(s);
            st.a = dup_bytes(json_string_value(s), st.la);
        } else {
            /* a regex, or the empty string, which HF's escaped regex matches everywhere */
            const char *src = json_is_string(re) ? json_string_value(re) : "";
            size_t len = json_is_string(re) ? json_string_length(re) : 0;
            if (!(st.re = tok_norm_regex(src, len, err, sizeof err))) {
                tok_norm_step_free(&st);
                FAIL(c, "normalizer Replace: %s", err);
            }
        }
    } else {
        FAIL(c, "normalizer '%s' is not supported", type);
    }
    tok_norm_step *p = realloc(t->norm, (t->n_norm + 1) * sizeof *p);
    if (!p || (st.la && !st.a) || (st.lb && !st.b)) {
        tok_norm_step_free(&st);
        if (p) t->norm = p;
        FAIL(c, "out of memory");
    }
    t->norm = p;
    t->norm[t->n_norm++] = st;
    return true;
}

static bool push_pre(tokenizer *t, tok_hf_step st, ctx_t *c) {
    tok_hf_step *p = realloc(t->hf_pre, (t->n_hf_pre + 1) * sizeof *p);
    if (!p) FAIL(c, "out of memory");
    t->hf_pre = p;
    t->hf_pre[t->n_hf_pre++] = st;
    return true;
}

static bool parse_behavior(const char *b, tok_split_behavior *out) {
    static const struct {
        const char *name;
        tok_split_behavior v;
    } names[] = {{"Isolated", TOK_SPLIT_ISOLATED},
                 {"Removed", TOK_SPLIT_REMOVED},
                 {"MergedWithPrevious", TOK_SPLIT_MERGED_WITH_PREVIOUS},
                 {"MergedWithNext", TOK_SPLIT_MERGED_WITH_NEXT},
                 {"Contiguous", TOK_SPLIT_CONTIGUOUS}};
    for (size_t i = 0; b && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(b, names[i].name)) return *out = names[i].v, true;
    return false;
}

static bool add_pre(tokenizer *t, json_t *n, ctx_t *c) {
    if (!n || json_is_null(n)) return true;
    const char *type = json_string_value(json_object_get(n, "type"));
    if (!type) FAIL(c, "pre_tokenizer without a type");
    tok_hf_step st = {0};
    char err[400];
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(n, "pretokenizers");
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v) if (!add_pre(t, v, c)) return false;
        return true;
    }
    if (!strcmp(type, "ByteLevel")) {
        st.kind = TOK_HF_BYTELEVEL;
        st.add_prefix_space = json_is_true(json_object_get(n, "add_prefix_space"));
        json_t *ur = json_object_get(n, "use_regex");
        if ((!ur || json_is_true(ur)) &&
            !tok_pretok_add(&st.pre, gpt2_regex, strlen(gpt2_regex), TOK_SPLIT_ISOLATED, false, err,
                            sizeof err))
            FAIL(c, "%s", err);
        t->byte_level = true;
        return push_pre(t, st, c);
    }
    if (!strcmp(type, "Split")) {
        size_t len;
        char *re = pattern_regex(json_object_get(n, "pattern"), &len);
        if (!re) FAIL(c, "pre_tokenizer Split: pattern must be {String} or {Regex}");
        tok_split_behavior b;
        if (!parse_behavior(json_string_value(json_object_get(n, "behavior")), &b)) {
            free(re);
            FAIL(c, "pre_tokenizer Split: unknown behavior");
        }
        st.kind = TOK_HF_SPLIT;
        bool invert = json_is_true(json_object_get(n, "invert"));
        /* HF runs Split with Oniguruma's Ruby syntax, where ^ and $ always match at lines
         * (before and after \n only) and . excludes \n alone: PCRE2's MULTILINE with LF
         * newlines. Known gaps: Ruby's (?m) (dotall there) and \h (a hex digit there) are
         * passed to PCRE2 untranslated. */
        static const char hf_opts[] = "(*LF)(?m)";
        char *full = malloc(sizeof hf_opts + len);
        bool ok = full != NULL;
        if (ok) {
            memcpy(full, hf_opts, sizeof hf_opts - 1);
            memcpy(full + sizeof hf_opts - 1, re, len);
            ok = tok_pretok_add(&st.pre, full, sizeof hf_opts - 1 + len, b, invert, err,
                                sizeof err);
            /* The message should quote the file's pattern, not ours. */
            tok_pretok probe = {0};
            if (!ok && !tok_pretok_add(&probe, re, len, b, invert, err, sizeof err)) ok = false;
            tok_pretok_free(&probe);
        } else {
            snprintf(err, sizeof err, "out of memory");
        }
        free(full);
        free(re);
        if (!ok) FAIL(c, "%s", err);
        return push_pre(t, st, c);
    }
    if (!strcmp(type, "Digits")) {
        st.kind = TOK_HF_SPLIT;
        bool each = json_is_true(json_object_get(n, "individual_digits"));
        if (!tok_pretok_add(&st.pre, "\\p{N}", 5, each ? TOK_SPLIT_ISOLATED : TOK_SPLIT_CONTIGUOUS,
                            false, err, sizeof err))
            FAIL(c, "%s", err);
        return push_pre(t, st, c);
    }
    if (!strcmp(type, "Metaspace")) {
        st.kind = TOK_HF_METASPACE;
        json_t *r = json_object_get(n, "replacement");
        const char *rep = json_is_string(r) ? json_string_value(r) : "\xE2\x96\x81";
        st.repl_len = strlen(rep);
        if (st.repl_len == 0 || st.repl_len >= sizeof st.repl)
            FAIL(c, "pre_tokenizer Metaspace: bad replacement");
        memcpy(st.repl, rep, st.repl_len);
        const char *ps = json_string_value(json_object_get(n, "prepend_scheme"));
        json_t *aps = json_object_get(n, "add_prefix_space");
        st.prepend = ps ? (!strcmp(ps, "always")  ? 2
                           : !strcmp(ps, "first") ? 1
                                                  : 0)
                        : (aps && !json_is_true(aps) ? 0 : 2);
        json_t *sp = json_object_get(n, "split");
        st.split = !sp || json_is_true(sp);
        return push_pre(t, st, c);
    }
    FAIL(c, "pre_tokenizer '%s' is not supported", type);
}

/* ---- encoding one stretch between added tokens ---- */

typedef struct {
    tok_buf text;
    tok_spans spans;
} words;

static bool spans_add(tok_spans *s, size_t off, size_t len) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        uint32_t *o = realloc(s->off, cap * sizeof *o);
        if (!o) return false;
        s->off = o;
        uint32_t *l = realloc(s->len, cap * sizeof *l);
        if (!l) return false;
        s->len = l, s->cap = cap;
    }
    s->off[s->n] = (uint32_t)off, s->len[s->n] = (uint32_t)len, s->n++;
    return true;
}

/* Rewrites every word through fn-like transformation: prefix (when asked) + replace spaces. */
static bool rewrite(words *w, const tok_hf_step *st, bool at_start, bool *ok_mem) {
    words nw = {0};
    bool ok = true;
    for (size_t i = 0; i < w->spans.n && ok; i++) {
        const char *s = w->text.buf + w->spans.off[i];
        size_t n = w->spans.len[i], start = nw.text.len;
        if (st->kind == TOK_HF_BYTELEVEL) {
            if (st->add_prefix_space && (n == 0 || s[0] != ' ')) ok = tok_buf_add(&nw.text, " ", 1);
            ok = ok && tok_buf_add(&nw.text, s, n);
        } else {
            /* HF replaces the spaces first, so a leading space counts as a replacement */
            bool starts =
                n > 0 && (s[0] == ' ' || (n >= st->repl_len && !memcmp(s, st->repl, st->repl_len)));
            bool first = at_start && i == 0 && w->spans.off[i] == 0;
            if (!starts && n > 0 && (st->prepend == 2 || (st->prepend == 1 && first)))
                ok = tok_buf_add(&nw.text, st->repl, st->repl_len);
            for (size_t k = 0; k < n && ok; k++)
                ok = s[k] == ' ' ? tok_buf_add(&nw.text, st->repl, st->repl_len)
                                 : tok_buf_add(&nw.text, s + k, 1);
        }
        if (ok && nw.text.len > start) ok = spans_add(&nw.spans, start, nw.text.len - start);
    }
    if (ok && st->kind == TOK_HF_METASPACE && st->split) {
        /* split before each replacement (MergedWithNext) */
        tok_spans sp = {0};
        for (size_t i = 0; i < nw.spans.n && ok; i++) {
            size_t off = nw.spans.off[i], end = off + nw.spans.len[i], cur = off;
            for (size_t k = off + 1; k + st->repl_len <= end && ok; k++)
                if (!memcmp(nw.text.buf + k, st->repl, st->repl_len)) {
                    ok = spans_add(&sp, cur, k - cur);
                    cur = k;
                }
            if (ok) ok = spans_add(&sp, cur, end - cur);
        }
        tok_spans_free(&nw.spans);
        nw.spans = sp;
    }
    free(w->text.buf);
    tok_spans_free(&w->spans);
    *w = nw;
    *ok_mem = ok;
    return ok;
}

static bool split_words(words *w, const tok_pretok *p) {
    tok_pretok_run *r = tok_pretok_run_thread();
    if (!r) return false;
    tok_spans out = {0}, parts = {0};
    bool ok = true;
    for (size_t i = 0; i < w->spans.n && ok; i++) {
        ok = tok_pretok_split(p, r, w->text.buf + w->spans.off[i], w->spans.len[i], &parts);
        for (size_t k = 0; k < parts.n && ok; k++)
            ok = spans_add(&out, w->spans.off[i] + parts.off[k], parts.len[k]);
    }
    tok_spans_free(&parts);
    tok_spans_free(&w->spans);
    w->spans = out;
    return ok;
}

bool tok_hf_pretokenize(const tokenizer *t, const char *s, size_t n, bool at_start,
                        bool (*word)(void *ctx, const char *w, size_t n), void *ctx) {
    words w = {0};
    bool ok = tok_buf_add(&w.text, s, n);
    if (ok && w.text.len) ok = spans_add(&w.spans, 0, w.text.len);
    for (size_t i = 0; i < t->n_hf_pre && ok; i++) {
        const tok_hf_step *st = &t->hf_pre[i];
        if (st->kind != TOK_HF_SPLIT) rewrite(&w, st, at_start, &ok);
        if (ok && st->pre.n) ok = split_words(&w, &st->pre);
    }
    for (size_t i = 0; i < w.spans.n && ok; i++)
        ok = word(ctx, w.text.buf + w.spans.off[i], w.spans.len[i]);
    free(w.text.buf);
    tok_spans_free(&w.spans);
    return ok;
}

/* ---- loading ---- */

static bool set_text(tokenizer *t, size_t id, const char *s, size_t n) {
    char *p = dup_bytes(s, n);
    if (!p) return false;
    free(t->text[id]);
    t->text[id] = p;
    t->text_len[id] = (uint32_t)n;
    return true;
}

static bool load_merges(tokenizer *t, json_t *merges, ctx_t *c) {
    size_t n = json_array_size(merges);
    if (!tok_pairmap_init(&t->merges, n)) FAIL(c, "out of memory");
    tok_buf cat = {0};
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(merges, i);
        const char *a, *b;
        size_t la, lb;
        if (json_is_string(m)) {
            const char *s = json_string_value(m);
            size_t len = json_string_length(m);
            const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
            if (!sp) {
                free(cat.buf);
                FAIL(c, "model.merges[%zu]: not \"a b\"", i);
            }
            a = s, la = (size_t)(sp - s), b = sp + 1, lb = len - la - 1;
        } else if (json_is_array(m) && json_array_size(m) == 2 &&
                   json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0));
            la = json_string_length(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            lb = json_string_length(json_array_get(m, 1));
        } else {
            free(cat.buf);
            FAIL(c, "model.merges[%zu]: neither \"a b\" nor [a, b]", i);
        }
        int32_t ia = tok_strmap_get(&t->by_text, a, la), ib = tok_strmap_get(&t->by_text, b, lb);
        cat.len = 0;
        if (!tok_buf_add(&cat, a, la) || !tok_buf_add(&cat, b, lb)) {
            free(cat.buf);
            FAIL(c, "out of memory");
        }
        int32_t iab = tok_strmap_get(&t->by_text, cat.buf, cat.len);
        if (ia >= 0 && ib >= 0 && iab >= 0) tok_pairmap_put(&t->merges, ia, ib, (int32_t)i, iab);
    }
    free(cat.buf);
    return true;
}

static int32_t special_id(const tokenizer *t, json_t *pp, const char *name) {
    json_t *st = json_object_get(json_object_get(pp, "special_tokens"), name);
    json_t *ids = json_object_get(st, "ids");
    if (json_array_size(ids) == 1 && json_is_integer(json_array_get(ids, 0)))
        return (int32_t)json_integer_value(json_array_get(ids, 0));
    return tok_find(t, name, strlen(name));
}

static bool load_post(tokenizer *t, json_t *pp, ctx_t *c) {
    if (!pp || json_is_null(pp)) return true;
    const char *type = json_string_value(json_object_get(pp, "type"));
    if (!type) FAIL(c, "post_processor without a type");
    if (!strcmp(type, "Sequence")) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(pp, "processors"), i,
                           v) if (!load_post(t, v, c)) return false;
        return true;
    }
    if (!strcmp(type, "ByteLevel")) return true; /* only offsets: nothing to do for ids */
    if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
        json_t *cls = json_object_get(pp, "cls"), *sep = json_object_get(pp, "sep");
        if (!json_is_integer(json_array_get(cls, 1)) || !json_is_integer(json_array_get(sep, 1)))
            FAIL(c, "post_processor %s: bad cls/sep", type);
        t->post_prefix[t->n_post_prefix = 1, 0] =
            (int32_t)json_integer_value(json_array_get(cls, 1));
        t->post_suffix[t->n_post_suffix = 1, 0] =
            (int32_t)json_integer_value(json_array_get(sep, 1));
        return true;
    }
    if (strcmp(type, "TemplateProcessing")) FAIL(c, "post_processor '%s' is not supported", type);
    json_t *single = json_object_get(pp, "single");
    bool after = false;
    size_t i;
    json_t *item;
    t->n_post_prefix = t->n_post_suffix = 0;
    json_array_foreach(single, i, item) {
        if (json_object_get(item, "Sequence")) {
            after = true;
            continue;
        }
        json_t *sp = json_object_get(item, "SpecialToken");
        const char *name = json_string_value(json_object_get(sp, "id"));
        if (!name) FAIL(c, "post_processor.single[%zu]: neither Sequence nor SpecialToken", i);
        int32_t id = special_id(t, pp, name);
        if (id < 0 || (size_t)id >= t->n_vocab) FAIL(c, "post_processor: unknown token '%s'", name);
        if (after ? t->n_post_suffix >= 4 : t->n_post_prefix >= 4)
            FAIL(c, "post_processor: too many special tokens");
        if (after)
            t->post_suffix[t->n_post_suffix++] = id;
        else
            t->post_prefix[t->n_post_prefix++] = id;
    }
    return true;
}

static void scan_decoder(tokenizer *t, json_t *d) {
    if (!d || json_is_null(d)) return;
    const char *type = json_string_value(json_object_get(d, "type"));
    if (!type) return;
    if (!strcmp(type, "Sequence")) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(d, "decoders"), i, v) scan_decoder(t, v);
    } else if (!strcmp(type, "ByteLevel")) {
        t->byte_level = true;
    } else if (!strcmp(type, "Strip")) {
        json_t *start = json_object_get(d, "start");
        if (json_integer_value(start) > 0) t->add_space_prefix = true;
    } else if (!strcmp(type, "Metaspace")) {
        const char *ps = json_string_value(json_object_get(d, "prepend_scheme"));
        json_t *aps = json_object_get(d, "add_prefix_space");
        if (ps ? strcmp(ps, "never") != 0 : (!aps || json_is_true(aps))) t->add_space_prefix = true;
    }
}

/* A token name in tokenizer_config.json: "text" or {"content": "text"}. */
static int32_t config_token(const tokenizer *t, json_t *cfg, const char *key) {
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v)) return -1;
    return tok_find(t, json_string_value(v), json_string_length(v));
}

static void load_configs(tokenizer *t, const char *dir) {
    char path[4300];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_t *cfg = json_load_file(path, 0, NULL);
    if (cfg) {
        int32_t b = config_token(t, cfg, "bos_token"), e = config_token(t, cfg, "eos_token");
        /* No unk_token here: the encoder's unk is the model's alone (HF's BPE drops unknown
         * characters when the model has none, whatever tokenizer_config.json says). */
        int32_t p = config_token(t, cfg, "pad_token");
        if (b >= 0) t->bos = b;
        if (e >= 0) t->eos = e;
        if (p >= 0) t->pad = p;
        json_decref(cfg);
    }
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    json_t *gen = json_load_file(path, 0, NULL);
    json_t *eos = json_object_get(gen, "eos_token_id");
    size_t n = json_is_integer(eos) ? 1 : json_array_size(eos);
    int32_t *ids = n ? malloc((n + 1) * sizeof *ids) : NULL;
    size_t k = 0;
    if (ids && t->eos >= 0) ids[k++] = t->eos;
    for (size_t i = 0; ids && i < n; i++) {
        json_t *v = json_is_integer(eos) ? eos : json_array_get(eos, i);
        int64_t id = json_integer_value(v);
        bool dup = false;
        for (size_t j = 0; j < k; j++)
            dup |= ids[j] == id;
        if (json_is_integer(v) && id >= 0 && (size_t)id < t->n_vocab && !dup)
            ids[k++] = (int32_t)id;
    }
    if (ids && k) {
        free(t->eos_ids);
        t->eos_ids = ids, t->n_eos_ids = k;
        if (t->eos < 0) t->eos = ids[0];
    } else {
        free(ids);
    }
    json_decref(gen);
}

/* The added tokens as the encoder matches them: normalized ones (the default for non-special
 * tokens, as HF's AddedToken::from) by their content after the normalizers. */
static bool load_added(tokenizer *t, json_t *added, ctx_t *c) {
    size_t i;
    json_t *v;
    tok_buf norm = {0}, tmp = {0};
    bool ok = true;
    json_array_foreach(added, i, v) {
        int32_t id = (int32_t)json_integer_value(json_object_get(v, "id"));
        json_t *content = json_object_get(v, "content"), *nf = json_object_get(v, "normalized");
        bool special = json_is_true(json_object_get(v, "special"));
        bool normalized = json_is_boolean(nf) ? json_is_true(nf) : !special;
        uint8_t flags =
            (uint8_t)((special ? TOK_ADDED_SPECIAL : 0) |
                      (json_is_true(json_object_get(v, "single_word")) ? TOK_ADDED_SINGLE_WORD
                                                                       : 0) |
                      (json_is_true(json_object_get(v, "lstrip")) ? TOK_ADDED_LSTRIP : 0) |
                      (json_is_true(json_object_get(v, "rstrip")) ? TOK_ADDED_RSTRIP : 0));
        const char *s = json_string_value(content);
        size_t n = json_string_length(content);
        if (normalized) {
            ok = tok_hf_normalize(t, s, n, &norm, &tmp) &&
                 tok_added_push(&t->added_norm, norm.buf, norm.len, id, flags);
        } else {
            ok = tok_added_push(&t->added_raw, s, n, id, flags);
        }
        if (!ok) break;
    }
    free(norm.buf);
    free(tmp.buf);
    if (!ok) FAIL(c, "out of memory");
    char err[300];
    if (!tok_added_finish(t, err, sizeof err)) FAIL(c, "%s", err);
    return true;
}

static bool load_json(tokenizer **out, json_t *root, ctx_t *c) {
    json_t *model = json_object_get(root, "model");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    if ((mtype && strcmp(mtype, "BPE")) || !json_is_object(vocab) || !json_is_array(merges))
        FAIL(c, "model: only BPE models are supported (type '%s')", mtype ? mtype : "?");
    json_t *cont = json_object_get(model, "continuing_subword_prefix");
    json_t *eow = json_object_get(model, "end_of_word_suffix");
    if ((json_is_string(cont) && json_string_length(cont)) ||
        (json_is_string(eow) && json_string_length(eow)))
        FAIL(c, "model: continuing_subword_prefix / end_of_word_suffix are not supported");
    json_t *added = json_object_get(root, "added_tokens");
    int64_t max_id = -1;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= INT32_MAX)
            FAIL(c, "model.vocab['%s']: id is not a non-negative integer", key);
        if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
    }
    size_t i;
    json_array_foreach(added, i, v) {
        json_t *id = json_object_get(v, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= INT32_MAX || !json_is_string(json_object_get(v, "content")))
            FAIL(c, "added_tokens[%zu]: needs an integer id and a content string", i);
        if (json_integer_value(id) > max_id) max_id = json_integer_value(id);
    }
    if (max_id < 0) FAIL(c, "model.vocab is empty");
    if (max_id > 16 * 1024 * 1024)
        FAIL(c, "vocabulary of %lld ids is too large", (long long)max_id);
    tokenizer *t = tok_alloc((size_t)max_id + 1);
    if (!t) FAIL(c, "out of memory");
    *out = t;
    t->hf = true;
    t->model = TOK_MODEL_BPE;
    t->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    t->fuse_unk = json_is_true(json_object_get(model, "fuse_unk"));
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    for (size_t k = 0; k < t->n_vocab; k++)
        t->type[k] = TOK_TYPE_UNUSED;
    json_object_foreach(vocab, key, v) {
        size_t id = (size_t)json_integer_value(v);
        if (!set_text(t, id, key, strlen(key))) FAIL(c, "out of memory");
        t->type[id] = TOK_TYPE_NORMAL;
        if (t->byte_fallback && strlen(key) == 6 && !strncmp(key, "<0x", 3) && key[5] == '>')
            t->type[id] = TOK_TYPE_BYTE;
    }
    json_array_foreach(added, i, v) {
        size_t id = (size_t)json_integer_value(json_object_get(v, "id"));
        json_t *content = json_object_get(v, "content");
        if (!set_text(t, id, json_string_value(content), json_string_length(content)))
            FAIL(c, "out of memory");
        t->type[id] =
            json_is_true(json_object_get(v, "special")) ? TOK_TYPE_CONTROL : TOK_TYPE_USER_DEFINED;
        if (json_is_true(json_object_get(v, "lstrip"))) t->attr[id] |= TOK_ATTR_LSTRIP;
        if (json_is_true(json_object_get(v, "rstrip"))) t->attr[id] |= TOK_ATTR_RSTRIP;
    }
    for (size_t k = 0; k < t->n_vocab; k++)
        if (!t->text[k] && !set_text(t, k, "", 0)) FAIL(c, "out of memory");
    if (!add_norm(t, json_object_get(root, "normalizer"), c)) return false;
    if (!load_added(t, added, c)) return false;
    if (!add_pre(t, json_object_get(root, "pre_tokenizer"), c)) return false;
    scan_decoder(t, json_object_get(root, "decoder"));
    char err[400];
    if (!tok_finish_load(t, err, sizeof err)) FAIL(c, "%s", err);
    json_t *unk = json_object_get(model, "unk_token");
    if (json_is_string(unk)) t->unk = tok_find(t, json_string_value(unk), json_string_length(unk));
    if (!load_merges(t, merges, c)) return false;
    if (!load_post(t, json_object_get(root, "post_processor"), c)) return false;
    if (t->n_post_prefix) t->bos = t->post_prefix[0];
    if (t->n_post_suffix) t->eos = t->post_suffix[t->n_post_suffix - 1];
    t->add_bos = t->n_post_prefix > 0;
    t->add_eos = t->n_post_suffix > 0;
    return true;
}

tokenizer *tok_load_hf(const char *folder_or_json_path, char *err, size_t err_len) {
    char path[4200], dir[4200];
    struct stat st;
    if (stat(folder_or_json_path, &st) != 0) {
        snprintf(err, err_len, "%s: no such file or folder", folder_or_json_path);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(dir, sizeof dir, "%s", folder_or_json_path);
        snprintf(path, sizeof path, "%s/tokenizer.json", folder_or_json_path);
    } else {
        snprintf(path, sizeof path, "%s", folder_or_json_path);
        snprintf(dir, sizeof dir, "%s", folder_or_json_path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(dir, sizeof dir, ".");
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        snprintf(err, err_len, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    ctx_t c = {err, err_len, path};
    tokenizer *t = NULL;
    bool ok = load_json(&t, root, &c);
    json_decref(root);
    if (!ok) {
        tok_free(t);
        return NULL;
    }
    load_configs(t, dir);
    if (!t->eos_ids && t->eos >= 0 && (t->eos_ids = malloc(sizeof *t->eos_ids)))
        t->eos_ids[0] = t->eos, t->n_eos_ids = 1;
    return t;
}
