/* The inside of a tokenizer, shared by the files of src/tokenizer/ only: the vocabulary table,
 * its hash indexes, the merge table and the pre-tokenizer. Everything here is filled once by a
 * loader and read-only afterwards, which is what makes a tokenizer safe to share across
 * threads. */
#ifndef SGLC_TOKENIZER_TOK_INTERNAL_H
#define SGLC_TOKENIZER_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/pretok.h"
#include "tokenizer/tok_hash.h"
#include "tokenizer/tokenizer.h"

/* HF normalizer steps. */
typedef enum {
    TOK_NORM_NFC,
    TOK_NORM_NFKC,
    TOK_NORM_NFD,
    TOK_NORM_NFKD,
    TOK_NORM_PREPEND,
    TOK_NORM_REPLACE,
    TOK_NORM_LOWERCASE,
    TOK_NORM_STRIP,
} tok_norm_kind;
typedef struct {
    tok_norm_kind kind;
    char *a, *b; /* PREPEND: a; REPLACE: a (literal pattern, when re is NULL) -> b */
    size_t la, lb;
    void *re;                     /* REPLACE with a Regex pattern: pcre2_code_8, else NULL */
    bool strip_left, strip_right; /* STRIP */
} tok_norm_step;

/* A growable byte buffer (always NUL-terminated once non-empty). */
typedef struct {
    char *buf;
    size_t len, cap;
} tok_buf;
bool tok_buf_add(tok_buf *b, const char *s, size_t n);

/* HF added tokens as matched in text (hf_added.c): the pattern is the token's content, or for
 * normalized ones the content after the normalizers. */
enum {
    TOK_ADDED_SINGLE_WORD = 1,
    TOK_ADDED_LSTRIP = 2,
    TOK_ADDED_RSTRIP = 4,
    TOK_ADDED_SPECIAL = 8
};
typedef struct {
    char *pat;
    uint32_t len;
    int32_t id;
    uint8_t flags; /* TOK_ADDED_* */
} tok_added;
typedef struct {
    tok_added *v; /* longest pattern first, then in file order */
    size_t n;
    uint8_t first[256]; /* bytes some pattern starts with */
} tok_added_set;

/* HF pre-tokenizer steps other than regex splits (which live in a one-step tok_pretok). */
typedef enum {
    TOK_HF_SPLIT,     /* regex split: pre */
    TOK_HF_BYTELEVEL, /* add_prefix_space, then the GPT-2 regex when use_regex */
    TOK_HF_METASPACE, /* spaces -> replacement, prepend by scheme, split before replacement */
} tok_hf_kind;
typedef struct {
    tok_hf_kind kind;
    tok_pretok pre;        /* SPLIT, BYTELEVEL(use_regex) */
    bool add_prefix_space; /* BYTELEVEL */
    int prepend;           /* METASPACE: 0 never, 1 first, 2 always */
    bool split;            /* METASPACE */
    char repl[8];          /* METASPACE replacement, UTF-8 */
    size_t repl_len;
} tok_hf_step;

typedef enum {
    TOK_MODEL_SPM, /* SentencePiece-style: merge the adjacent pair whose union scores highest */
    TOK_MODEL_BPE, /* ranked merges (byte-level when byte_level is set) */
} tok_model;

/* Per-token flags beyond the type. */
enum { TOK_ATTR_LSTRIP = 1, TOK_ATTR_RSTRIP = 2 };

struct tokenizer {
    tok_model model;
    bool byte_level;       /* GPT-2 byte<->unicode map between bytes and token text */
    bool byte_fallback;    /* unknown characters become <0xXX> tokens */
    bool fuse_unk;         /* HF BPE: consecutive unknown characters make one unk token */
    bool add_space_prefix; /* SPM dummy prefix: a space before the text (and after specials) */
    bool ignore_merges;    /* a whole pre-token word that is a token is taken as is */
    bool add_bos, add_eos;
    int32_t bos, eos, unk, pad;
    int32_t *eos_ids;
    size_t n_eos_ids;

    size_t n_vocab;
    char **text; /* stored text, NUL-terminated */
    uint32_t *text_len;
    uint8_t **piece; /* decoded bytes */
    uint32_t *piece_len;
    float *score;
    uint8_t *type; /* tok_type */
    uint8_t *attr; /* TOK_ATTR_* */

    tok_strmap by_text;    /* stored text -> id (last one wins, as llama.cpp) */
    tok_strmap by_piece;   /* byte-level BPE: decoded bytes -> id, for ignore_merges */
    tok_pairmap merges;    /* (left id, right id) -> rank and merged id */
    int32_t byte_tok[256]; /* the token standing for each raw byte, -1 if none */

    int32_t *specials; /* ids matched as whole tokens in text, longest text first */
    size_t n_specials;

    tok_pretok pretok;

    /* Hugging Face tokenizer.json only (hf_vocab.c); GGUF vocabularies leave these empty. */
    bool hf;
    tok_norm_step *norm; /* normalizers, in order */
    size_t n_norm;
    tok_hf_step *hf_pre; /* pre-tokenizer steps, in order */
    size_t n_hf_pre;
    int32_t post_prefix[4], post_suffix[4]; /* TemplateProcessing "single" around the text */
    size_t n_post_prefix, n_post_suffix;
    tok_added_set added_raw;  /* normalized=false: matched in the input as it is */
    tok_added_set added_norm; /* normalized=true: matched in each normalized stretch */
    void *word_re;            /* pcre2_code_8 for Rust regex's \w, when a token is single_word */
};

/* Encoding one pre-token word into ids, appended to out. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
} tok_ids;

bool tok_ids_push(tok_ids *v, int32_t id);

/* bpe.c: byte-level or plain BPE of one word (raw bytes; for non-byte-level vocabularies, UTF-8
 * characters are the initial symbols). Scratch is the caller's, reused across words. */
typedef struct {
    int32_t *sym; /* token id per symbol, -1 when none */
    uint32_t *start, *len;
    int32_t *prev, *next;
    size_t cap;
} tok_scratch;

void tok_scratch_free(tok_scratch *s);
bool tok_scratch_reserve(tok_scratch *s, size_t n);
bool tok_bpe_word(const tokenizer *t, const uint8_t *w, size_t n, tok_scratch *s, tok_ids *out);
/* spm.c: SentencePiece-style encoding of one already-escaped fragment (spaces as U+2581). */
bool tok_spm_fragment(const tokenizer *t, const uint8_t *w, size_t n, tok_scratch *s, tok_ids *out);

/* gguf_vocab.c / hf_vocab.c share the final steps of loading: indexes, pieces, specials. */
bool tok_finish_load(tokenizer *t, char *err, size_t err_len);
tokenizer *tok_alloc(size_t n_vocab);
/* hf_vocab.c: pre-tokenizes one normalized stretch between added tokens and hands each word to
 * `word`; at_start when the stretch begins the input (Metaspace prepend_scheme "first"). */
bool tok_hf_pretokenize(const tokenizer *t, const char *s, size_t n, bool at_start,
                        bool (*word)(void *ctx, const char *w, size_t n), void *ctx);
void tok_hf_free(tokenizer *t);
/* hf_norm.c: runs the normalizer steps over s[0..n) into out (tmp is scratch); false when out of
 * memory. Invalid UTF-8 passes through unchanged. */
bool tok_hf_normalize(const tokenizer *t, const char *s, size_t n, tok_buf *out, tok_buf *tmp);
/* hf_norm.c: compiles a Replace normalizer's regex; NULL with PCRE2's message in err. */
void *tok_norm_regex(const char *re, size_t len, char *err, size_t err_len);
void tok_norm_step_free(tok_norm_step *st);
/* hf_added.c: the whole HF encode of one input: added tokens that are not normalized are cut
 * out of the raw text, each stretch between them is normalized, normalized added tokens are cut
 * out of that, and the rest is pre-tokenized into words for `word`. Added token ids go straight
 * to out. parse_special false skips special added tokens (HF's encode_special_tokens). */
bool tok_hf_encode(const tokenizer *t, const char *s, size_t n, bool parse_special, tok_ids *out,
                   bool (*word)(void *ctx, const char *w, size_t n), void *ctx);
/* hf_added.c: adds one added token to its set (pattern copied); false when out of memory. */
bool tok_added_push(tok_added_set *set, const char *pat, size_t len, int32_t id, uint8_t flags);
/* hf_added.c: orders a set for matching once every token is in; compiles word_re if needed. */
bool tok_added_finish(tokenizer *t, char *err, size_t err_len);
void tok_added_free(tokenizer *t); /* both sets and word_re */
/* tiktoken.c: whether path is a regular file whose first line reads "BASE64TOKEN RANK". */
bool tok_is_tiktoken_file(const char *path);

#endif
