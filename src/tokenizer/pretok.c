/* The pre-tokenizer's regex steps (pretok.h). The regex lists per tokenizer.ggml.pre name are
 * those llama.cpp runs (src/llama-vocab.cpp); PCRE2 runs them directly on UTF-8 with Unicode
 * properties, where llama.cpp rewrites them for std::regex. $ matches only at the very end
 * (PCRE2_DOLLAR_ENDONLY), as in ECMAScript and Rust, unless the pattern asks for (?m) (HF's
 * Split steps do: hf_vocab.c); invalid UTF-8 in the text is matched as
 * non-characters instead of failing (PCRE2_MATCH_INVALID_UTF). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretok.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_utf8.h"

static const char *const re_llama3[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
    "{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};

static const char *const re_deepseek_llm[] = {
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-"
    "ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-"
    "ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-"
    "𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
    NULL,
};

static const char *const re_deepseek3_llm[] = {
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./"
    ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
    "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};

static const char *const re_deepseek_coder[] = {
    "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}", NULL,
};

static const char *const re_falcon[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|`]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "[0-9][0-9][0-9]",
    NULL,
};

static const char *const re_starcoder[] = {
    "\\p{N}",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    NULL,
};

static const char *const re_gpt2[] = {
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    NULL,
};

static const char *const re_qwen2[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};

static const char *const re_default[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "\\p{N}+",
    "[0-9][0-9][0-9]",
    NULL,
};

static const char *const re_chatglm4[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
    "{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};

static const char *const re_poro[] = {
    " ?[^(\\s|.,!?…。，、।۔،)]+",
    NULL,
};

static const char *const re_viking[] = {
    " ?[^(\\s|.,!?…。，、।۔،)]+",
    "\\p{N}",
    NULL,
};

static const char *const re_gpt4o[] = {
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'"
    "s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}"
    "\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};

typedef struct {
    const char *name;
    const char *const *regexes;
} named_pretok;

static const named_pretok named[] = {
    {"default", re_default},
    {"llama3", re_llama3},
    {"llama-v3", re_llama3},
    {"llama-bpe", re_llama3},
    {"falcon3", re_llama3},
    {"pixtral", re_llama3},
    {"dbrx", re_llama3},
    {"smaug-bpe", re_llama3},
    {"deepseek-llm", re_deepseek_llm},
    {"deepseek-coder", re_deepseek_coder},
    {"deepseek-v3", re_deepseek3_llm},
    {"falcon", re_falcon},
    {"gpt-2", re_gpt2},
    {"gpt2", re_gpt2},
    {"mpt", re_gpt2},
    {"olmo", re_gpt2},
    {"jais", re_gpt2},
    {"phi-2", re_gpt2},
    {"phi-3", re_gpt2},
    {"gpt-neox", re_gpt2},
    {"roberta-bpe", re_gpt2},
    {"trillion", re_gpt2},
    {"exaone4", re_gpt2},
    {"starcoder", re_starcoder},
    {"refact", re_starcoder},
    {"command-r", re_starcoder},
    {"smollm", re_starcoder},
    {"codeshell", re_starcoder},
    {"exaone", re_starcoder},
    {"minerva-7b", re_starcoder},
    {"qwen2", re_qwen2},
    {"deepseek-r1-qwen", re_qwen2},
    {"stablelm2", re_qwen2},
    {"megrez", re_qwen2},
    {"hunyuan", re_qwen2},
    {"chatglm-bpe", re_chatglm4},
    {"glm4", re_chatglm4},
    {"poro-chat", re_poro},
    {"bloom", re_poro},
    {"gpt3-finnish", re_poro},
    {"viking", re_viking},
    {"gpt-4o", re_gpt4o},
    {"llama4", re_gpt4o},
};

bool tok_pretok_add(tok_pretok *p, const char *regex, size_t len, tok_split_behavior behavior,
                    bool invert, char *err, size_t err_len) {
    int code = 0;
    PCRE2_SIZE at = 0;
    pcre2_code *re = pcre2_compile(
        (PCRE2_SPTR)regex, len,
        PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY | PCRE2_MATCH_INVALID_UTF, &code, &at, NULL);
    if (!re) {
        char msg[256];
        pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof msg);
        snprintf(err, err_len, "pre-tokenizer regex '%.*s': %s at offset %zu",
                 (int)(len > 200 ? 200 : len), regex, msg, (size_t)at);
        return false;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* without JIT it still works, only slower */
    tok_pretok_step *steps = realloc(p->steps, (p->n + 1) * sizeof *steps);
    if (!steps) {
        pcre2_code_free(re);
        snprintf(err, err_len, "out of memory");
        return false;
    }
    p->steps = steps;
    p->steps[p->n++] = (tok_pretok_step){re, behavior, invert};
    return true;
}

bool tok_pretok_init_named(tok_pretok *p, const char *name, char *err, size_t err_len) {
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        if (strcmp(named[i].name, name)) continue;
        for (const char *const *r = named[i].regexes; *r; r++)
            if (!tok_pretok_add(p, *r, strlen(*r), TOK_SPLIT_ISOLATED, false, err, err_len)) {
                tok_pretok_free(p);
                return false;
            }
        return true;
    }
    snprintf(err, err_len, "unknown pre-tokenizer '%s'", name);
    return false;
}

void tok_pretok_free(tok_pretok *p) {
    for (size_t i = 0; i < p->n; i++)
        pcre2_code_free(p->steps[i].code);
    free(p->steps);
    p->steps = NULL;
    p->n = 0;
}

struct tok_pretok_run {
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *stack;
    tok_spans tmp;
};

tok_pretok_run *tok_pretok_run_new(void) {
    tok_pretok_run *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->md = pcre2_match_data_create(1, NULL);
    r->mc = pcre2_match_context_create(NULL);
    /* Long runs of whitespace or letters recurse deeply in the JIT: give it room. */
    r->stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, NULL);
    if (!r->md || !r->mc || !r->stack) {
        tok_pretok_run_free(r);
        return NULL;
    }
    pcre2_jit_stack_assign(r->mc, NULL, r->stack);
    return r;
}

void tok_pretok_run_free(tok_pretok_run *r) {
    if (!r) return;
    pcre2_match_data_free(r->md);
    pcre2_match_context_free(r->mc);
    pcre2_jit_stack_free(r->stack);
    tok_spans_free(&r->tmp);
    free(r);
}

static pthread_key_t run_key;
static pthread_once_t run_once = PTHREAD_ONCE_INIT;

static void run_destroy(void *r) { tok_pretok_run_free(r); }
static void run_key_init(void) { pthread_key_create(&run_key, run_destroy); }

tok_pretok_run *tok_pretok_run_thread(void) {
    pthread_once(&run_once, run_key_init);
    tok_pretok_run *r = pthread_getspecific(run_key);
    if (!r && (r = tok_pretok_run_new()) && pthread_setspecific(run_key, r) != 0) {
        tok_pretok_run_free(r);
        r = NULL;
    }
    return r;
}

void tok_spans_free(tok_spans *s) {
    free(s->off);
    free(s->len);
    memset(s, 0, sizeof *s);
}

static bool spans_push(tok_spans *s, size_t off, size_t len) {
    if (len == 0) return true;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        uint32_t *o = realloc(s->off, cap * sizeof *o);
        if (!o) return false;
        s->off = o;
        uint32_t *l = realloc(s->len, cap * sizeof *l);
        if (!l) return false;
        s->len = l;
        s->cap = cap;
    }
    s->off[s->n] = (uint32_t)off;
    s->len[s->n] = (uint32_t)len;
    s->n++;
    return true;
}

/* Pieces of one fragment, before the behavior decides what to keep: gaps and matches, each
 * flagged, in order. Matches may be empty (an anchor or a lookaround): HF keeps those as
 * pieces, so they still cut the text, and the behaviors fold them like any other. */
typedef struct {
    size_t off, len;
    bool match;
} piece;

/* Adds p to the group being built (*cur, *have), or closes that group into out first. */
static bool group(tok_spans *out, piece *cur, bool *have, piece p, bool join) {
    if (join && *have) {
        cur->len = p.off + p.len - cur->off;
        return true;
    }
    if (*have && !spans_push(out, cur->off, cur->len)) return false;
    *cur = p, *have = true;
    return true;
}

/* The behaviors as HF's NormalizedString::split folds its pieces; empty results are dropped. */
static bool emit(tok_spans *out, const piece *pc, size_t n, tok_split_behavior b) {
    piece cur = {0};
    bool have = false, prev_match = false;
    for (size_t i = 0; i < n; i++) {
        bool ok = true;
        switch (b) {
        case TOK_SPLIT_ISOLATED:
            ok = spans_push(out, pc[i].off, pc[i].len);
            break;
        case TOK_SPLIT_REMOVED:
            ok = pc[i].match || spans_push(out, pc[i].off, pc[i].len);
            break;
        case TOK_SPLIT_MERGED_WITH_PREVIOUS: /* a match after a non-match joins it */
            ok = group(out, &cur, &have, pc[i], pc[i].match && !prev_match);
            break;
        case TOK_SPLIT_MERGED_WITH_NEXT: /* a match before a non-match takes it */
            ok = group(out, &cur, &have, pc[i], !pc[i].match && prev_match);
            break;
        case TOK_SPLIT_CONTIGUOUS: /* runs of matches (and of non-matches) join */
            ok = group(out, &cur, &have, pc[i], pc[i].match == prev_match);
            break;
        }
        if (!ok) return false;
        prev_match = pc[i].match;
    }
    return !have || spans_push(out, cur.off, cur.len);
}

static bool piece_push(piece **pcs, size_t *n, size_t *pcap, piece p) {
    if (*n == *pcap) {
        size_t cap = *pcap ? 2 * *pcap : 64;
        piece *p2 = realloc(*pcs, cap * sizeof *p2);
        if (!p2) return false;
        *pcs = p2, *pcap = cap;
    }
    (*pcs)[(*n)++] = p;
    return true;
}

/* Splits one fragment by one step; pieces buffer grows as needed. Matches are found as the onig
 * crate's find_iter does (HF's Split): an empty match where the last match ended is refused and
 * the search moves on by one character; the end of the fragment is a place to search too. */
static bool split_fragment(const tok_pretok_step *st, tok_pretok_run *r, const char *text,
                           size_t off, size_t len, piece **pcs, size_t *pcap, tok_spans *out) {
    const uint8_t *s = (const uint8_t *)text + off;
    size_t n = 0, pos = 0, prev = 0, last_match_end = 0;
    bool matched = false;
    while (pos <= len) {
        int rc = pcre2_match(st->code, s, len, pos, 0, r->md, r->mc);
        if (rc < 0) break; /* no (more) matches, or a matching limit: keep the rest whole */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
        size_t ms = ov[0], me = ov[1];
        if (ms > me || me > len || ms < prev) break; /* \K tricks: keep the rest whole */
        if (ms == me && matched && last_match_end == me) {
            pos += pos < len ? tok_utf8_len(s[pos]) : 1;
            continue;
        }
        pos = last_match_end = me, matched = true;
        if (ms > prev && !piece_push(pcs, &n, pcap, (piece){off + prev, ms - prev, st->invert}))
            return false;
        if (!piece_push(pcs, &n, pcap, (piece){off + ms, me - ms, !st->invert})) return false;
        prev = me;
    }
    if (prev < len && !piece_push(pcs, &n, pcap, (piece){off + prev, len - prev, st->invert}))
        return false;
    return emit(out, *pcs, n, st->behavior);
}

bool tok_pretok_split(const tok_pretok *p, tok_pretok_run *r, const char *text, size_t len,
                      tok_spans *out) {
    out->n = 0;
    if (len == 0) return true;
    if (!spans_push(out, 0, len)) return false;
    piece *pcs = NULL;
    size_t pcap = 0;
    bool ok = true;
    for (size_t k = 0; k < p->n && ok; k++) {
        tok_spans *in = out, *next = &r->tmp;
        next->n = 0;
        for (size_t i = 0; i < in->n && ok; i++)
            ok = split_fragment(&p->steps[k], r, text, in->off[i], in->len[i], &pcs, &pcap, next);
        /* swap buffers: result back into out */
        tok_spans t = *out;
        *out = *next;
        *next = t;
    }
    free(pcs);
    return ok;
}
