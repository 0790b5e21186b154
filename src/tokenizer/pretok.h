/* Pre-tokenization: splitting text into the words BPE runs on, with a list of PCRE2 regexes
 * (UTF, UCP, JIT). Each step splits every current fragment again; both the matches and the text
 * between them become fragments (llama.cpp's unicode_regex_split, HF's Split "Isolated"), or, as
 * HF's other Split behaviors ask, matches are removed or merged with a neighbour.
 * A regex sees only its fragment: lookarounds and $ stop at the fragment's edges.
 * Compiled once at load and shared read-only; splitting uses per-call state (tok_pretok_run). */
#ifndef SGLC_TOKENIZER_PRETOK_H
#define SGLC_TOKENIZER_PRETOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    TOK_SPLIT_ISOLATED,
    TOK_SPLIT_REMOVED,
    TOK_SPLIT_MERGED_WITH_PREVIOUS,
    TOK_SPLIT_MERGED_WITH_NEXT,
    TOK_SPLIT_CONTIGUOUS,
} tok_split_behavior;

typedef struct {
    void *code; /* pcre2_code_8 */
    tok_split_behavior behavior;
    bool invert;
} tok_pretok_step;

typedef struct {
    tok_pretok_step *steps;
    size_t n;
} tok_pretok;

typedef struct {
    uint32_t *off, *len;
    size_t n, cap;
} tok_spans;

/* Fills p with the regex list llama.cpp uses for tokenizer.ggml.pre `name`; false with
 * "unknown pre-tokenizer 'NAME'" in err when the name is not one we know. */
bool tok_pretok_init_named(tok_pretok *p, const char *name, char *err, size_t err_len);
/* Appends one regex step; false (with PCRE2's message) when it does not compile. */
bool tok_pretok_add(tok_pretok *p, const char *regex, size_t len, tok_split_behavior behavior,
                    bool invert, char *err, size_t err_len);
void tok_pretok_free(tok_pretok *p);

/* Per-thread matching state. */
typedef struct tok_pretok_run tok_pretok_run;
tok_pretok_run *tok_pretok_run_new(void);
void tok_pretok_run_free(tok_pretok_run *r);
/* The calling thread's own state, made on first use and freed when the thread exits: saves
 * setting up a JIT stack per call. NULL when out of memory. */
tok_pretok_run *tok_pretok_run_thread(void);

/* Splits text[0..len) into out (offsets relative to text); false when out of memory. */
bool tok_pretok_split(const tok_pretok *p, tok_pretok_run *r, const char *text, size_t len,
                      tok_spans *out);
void tok_spans_free(tok_spans *s);

#endif
