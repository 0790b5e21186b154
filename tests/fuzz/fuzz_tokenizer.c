/* libFuzzer target: encode arbitrary bytes with real vocabularies (SentencePiece-style and
 * byte-level BPE with a multi-regex pre-tokenizer), with and without special-token parsing, then
 * decode the ids whole and as a stream. Any crash, sanitizer report, or a stream that disagrees
 * with the whole decode is a bug. Vocabularies come from $SGLC_VOCAB_DIR, else
 * ../shared/testdata/vocab relative to the working directory (run from the repo root). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

static tokenizer *toks[3];

static tokenizer *load(const char *name) {
    const char *dir = getenv("SGLC_VOCAB_DIR");
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", dir ? dir : "../shared/testdata/vocab",
             name);
    tokenizer *t = tok_load_gguf_path(path, err, sizeof err);
    if (!t) {
        fprintf(stderr, "fuzz_tokenizer: %s (set SGLC_VOCAB_DIR)\n", err);
        exit(1);
    }
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    toks[0] = load("llama-spm");
    toks[1] = load("deepseek-llm");
    toks[2] = load("gpt-2");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const tokenizer *t = toks[data[0] % 3];
    bool add_special = data[0] & 4, parse_special = data[0] & 8, skip = data[0] & 16;
    int32_t *ids;
    size_t n;
    if (tok_encode(t, (const char *)data + 1, size - 1, add_special, parse_special, &ids, &n))
        abort();
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= tok_vocab_size(t)) abort();
    size_t len;
    char *whole = tok_decode(t, ids, n, skip, &len);
    if (!whole) abort();
    tok_detok *d = tok_detok_new(t, skip);
    size_t at = 0;
    for (size_t i = 0; i <= n; i++) {
        size_t k;
        const char *part = i < n ? tok_detok_push(d, ids[i], &k) : tok_detok_flush(d, &k);
        if (!part || at + k > len || memcmp(whole + at, part, k)) abort();
        at += k;
    }
    if (at != len) abort();
    tok_detok_free(d);
    free(whole);
    free(ids);
    return 0;
}
