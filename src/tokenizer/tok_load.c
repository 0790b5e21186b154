/* tok_load_path: one entry point for whatever a user names as the model -- a .gguf file, a
 * Hugging Face folder (its tokenizer.json), a tokenizer.json itself, or a tiktoken file (Meta's
 * original tokenizer.model) -- so that the CLI and the server pick the tokenizer the same way. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/model_path.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tokenizer.h"

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

tokenizer *tok_load_path(const char *path, char *err, size_t err_len) {
    struct stat st;
    bool file = stat(path, &st) == 0 && S_ISREG(st.st_mode);
    if (ends_with(path, ".json") && file) return tok_load_hf(path, err, err_len);
    if (file && !ends_with(path, ".gguf") && tok_is_tiktoken_file(path))
        return tok_load_tiktoken(path, err, err_len);
    char resolved[4096];
    model_src_kind kind = model_path_resolve(path, resolved, sizeof resolved, err, err_len);
    if (kind == MODEL_SRC_GGUF) return tok_load_gguf_path(resolved, err, err_len);
    if (kind == MODEL_SRC_HF_FOLDER) return tok_load_hf(resolved, err, err_len);
    /* A folder with only tokenizer files (no config.json) is fine for the tokenizer. */
    char tj[4200];
    snprintf(tj, sizeof tj, "%s/tokenizer.json", path);
    if (stat(tj, &st) == 0 && S_ISREG(st.st_mode)) return tok_load_hf(path, err, err_len);
    snprintf(tj, sizeof tj, "%s/tokenizer.model", path);
    if (tok_is_tiktoken_file(tj)) return tok_load_tiktoken(tj, err, err_len);
    return NULL;
}
