/* Text <-> token ids for every model sglc serves, matching llama.cpp (for GGUF vocabularies) and
 * Hugging Face `tokenizers` (for tokenizer.json) byte for byte.
 * Ownership: tok_load_* return a tokenizer the caller frees with tok_free; it copies what it
 * needs, so the GGUF file may be closed afterwards. Every buffer a function returns through an
 * out-pointer is malloc'd and the caller's, unless its comment says it points inside the
 * tokenizer (valid until tok_free).
 * Threads: a loaded tokenizer is immutable; any number of threads may encode and decode with it
 * at once. A detokenizer stream (tok_detok) belongs to one thread at a time.
 * Errors: loaders return NULL with one line in err ("FILE: field: reason"); tok_encode returns
 * -1 only when out of memory. Input text need not be valid UTF-8. */
#ifndef SGLC_TOKENIZER_TOKENIZER_H
#define SGLC_TOKENIZER_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/gguf.h"

typedef struct tokenizer tokenizer;

/* Token types, numbered as GGUF's tokenizer.ggml.token_type stores them. */
typedef enum {
    TOK_TYPE_UNDEFINED = 0,
    TOK_TYPE_NORMAL = 1,
    TOK_TYPE_UNKNOWN = 2,
    TOK_TYPE_CONTROL = 3,
    TOK_TYPE_USER_DEFINED = 4,
    TOK_TYPE_UNUSED = 5,
    TOK_TYPE_BYTE = 6,
} tok_type;

/* From tokenizer.ggml.* metadata (model "llama" or "gpt2"). */
tokenizer *tok_load_gguf(const gguf_file *g, char *err, size_t err_len);
/* Opens the .gguf at path and loads its tokenizer. */
tokenizer *tok_load_gguf_path(const char *path, char *err, size_t err_len);
/* From a Hugging Face tokenizer.json (a path to the file, or a folder holding it), with
 * tokenizer_config.json and generation_config.json beside it when present. */
tokenizer *tok_load_hf(const char *folder_or_json_path, char *err, size_t err_len);
/* From a tiktoken BPE file ("BASE64TOKEN RANK" lines: Llama 3's original tokenizer.model, Qwen's
 * qwen.tiktoken). The file holds no regex or special tokens, so the family is recognised by its
 * number of ranks (Llama 3: 128000, Qwen: 151643) and given the split regex and specials its
 * Python tokenizer defines; any other count is an error naming it. */
tokenizer *tok_load_tiktoken(const char *path, char *err, size_t err_len);
/* Whatever --model-path names: a .gguf file, a HF folder or repo id in the local cache, a
 * tokenizer.json, a tiktoken file, or a folder holding only tokenizer.json or a tiktoken
 * tokenizer.model. */
tokenizer *tok_load_path(const char *path, char *err, size_t err_len);
void tok_free(tokenizer *t);

/* Encodes text[0..len). add_special adds BOS/EOS as the vocabulary's add_bos/add_eos say;
 * parse_special makes control and user-defined token texts in the input count as those tokens
 * (user-defined ones always do). *ids_out is malloc'd (never NULL on success). */
int tok_encode(const tokenizer *t, const char *text, size_t len, bool add_special,
               bool parse_special, int32_t **ids_out, size_t *n_out);

size_t tok_vocab_size(const tokenizer *t);
int32_t tok_bos(const tokenizer *t); /* -1 when the vocabulary has none */
int32_t tok_eos(const tokenizer *t);
int32_t tok_unk(const tokenizer *t);
int32_t tok_pad(const tokenizer *t);
bool tok_add_bos(const tokenizer *t);
bool tok_add_eos(const tokenizer *t);
/* Every id that ends generation (eos first, then the others the vocabulary marks); points
 * inside the tokenizer. */
const int32_t *tok_eos_ids(const tokenizer *t, size_t *n);
tok_type tok_token_type(const tokenizer *t, int32_t id); /* TOK_TYPE_UNDEFINED when out of range */
/* Control tokens (and unknown ones): what skip_special_tokens drops. */
bool tok_is_special(const tokenizer *t, int32_t id);
/* The token's text as the vocabulary stores it (NUL-terminated, inside the tokenizer). */
const char *tok_text(const tokenizer *t, int32_t id, size_t *len);
/* The bytes the token stands for in decoded text (byte-level mapping undone, U+2581 -> space,
 * <0xXX> -> that byte); not NUL-terminated, may be a partial UTF-8 sequence. NULL if out of
 * range. */
const uint8_t *tok_piece(const tokenizer *t, int32_t id, size_t *len);
/* Looks up a token by its stored text; -1 when absent. */
int32_t tok_find(const tokenizer *t, const char *text, size_t len);

/* Whole-sequence decode: NUL-terminated malloc'd UTF-8 (invalid bytes become U+FFFD), the
 * first piece's dummy-prefix space stripped as HF does. NULL only when out of memory or an id is
 * out of range. */
char *tok_decode(const tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                 size_t *len_out);

/* Streaming detokenizer: push ids one at a time, get back only text that is complete UTF-8;
 * bytes of a character split across tokens wait for the rest. The concatenation of every
 * push's text and the final flush equals tok_decode of all ids. */
typedef struct tok_detok tok_detok;
tok_detok *tok_detok_new(const tokenizer *t, bool skip_special);
/* Returns the new text (may be empty; valid until the next call on d) and its length in *len;
 * NULL when out of memory or id is out of range. */
const char *tok_detok_push(tok_detok *d, int32_t id, size_t *len);
/* Ends the stream: bytes still waiting become U+FFFD. */
const char *tok_detok_flush(tok_detok *d, size_t *len);
void tok_detok_free(tok_detok *d);

#endif
