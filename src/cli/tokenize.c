/* `sglc tokenize` and `sglc detokenize`: the tokenizer alone, for checking it against Hugging
 * Face and llama.cpp from scripts. tokenize prints the ids of TEXT as a JSON array, or, with
 * --input-file, reads one JSON string per line and prints one JSON array per line. detokenize
 * prints the text of a comma-separated id list. Exit 2 on bad usage or input. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "tokenizer/tokenizer.h"

static void print_ids(const int32_t *ids, size_t n) {
    putchar('[');
    for (size_t i = 0; i < n; i++)
        printf(i ? ", %d" : "%d", ids[i]);
    printf("]\n");
}

static int encode_print(const char *cmd, const tokenizer *t, const char *text, size_t len,
                        bool add_special, bool parse_special) {
    int32_t *ids;
    size_t n;
    if (tok_encode(t, text, len, add_special, parse_special, &ids, &n) != 0) {
        fprintf(stderr, "sglc %s: out of memory\n", cmd);
        return 1;
    }
    print_ids(ids, n);
    free(ids);
    return 0;
}

static int tokenize_file(const tokenizer *t, const char *path, bool add_special,
                         bool parse_special) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "sglc tokenize: --input-file '%s': %s\n", path, strerror(errno));
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n == 0) continue;
        json_error_t jerr;
        json_t *j = json_loadb(line, (size_t)n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!j || !json_is_string(j)) {
            fprintf(stderr, "sglc tokenize: %s:%ld: expected a JSON string per line%s%s\n", path,
                    lineno, j ? "" : ": ", j ? "" : jerr.text);
            json_decref(j);
            rc = 2;
            break;
        }
        rc = encode_print("tokenize", t, json_string_value(j), json_string_length(j), add_special,
                          parse_special);
        json_decref(j);
    }
    free(line);
    fclose(f);
    return rc;
}

static tokenizer *open_tok(const char *cmd, const char *model_path) {
    char err[1024];
    tokenizer *t = tok_load_path(model_path, err, sizeof err);
    if (!t) fprintf(stderr, "sglc %s: %s\n", cmd, err);
    return t;
}

int cli_tokenize(int argc, char **argv) {
    const char *model_path = NULL, *input_file = NULL;
    bool add_special = false, no_parse_special = false;
    arg_spec specs[] = {
        {"--model-path", ARG_STR, &model_path,
         "a .gguf file, a folder with tokenizer.json, or a tokenizer.json", false},
        {"--add-special-tokens", ARG_BOOL, &add_special,
         "add BOS/EOS as the tokenizer's config says", false},
        {"--no-parse-special", ARG_BOOL, &no_parse_special,
         "treat control-token texts in the input as plain text", false},
        {"--input-file", ARG_STR, &input_file,
         "one JSON string per line; one JSON array out per line", false},
    };
    int nspecs = (int)(sizeof specs / sizeof specs[0]), npos;
    const char *pos[1];
    int rc = args_parse("tokenize", specs, nspecs, argc, argv, pos, 1, &npos);
    if (rc == 1) {
        args_usage("tokenize", "--model-path P [--add-special-tokens] (TEXT | --input-file F)",
                   specs, nspecs);
        return 0;
    }
    if (rc) return rc;
    if (!model_path || (npos == 1) == (input_file != NULL)) {
        fprintf(stderr, "sglc tokenize: needs --model-path and exactly one of TEXT or "
                        "--input-file (see sglc tokenize --help)\n");
        return 2;
    }
    tokenizer *t = open_tok("tokenize", model_path);
    if (!t) return 2;
    rc = input_file
             ? tokenize_file(t, input_file, add_special, !no_parse_special)
             : encode_print("tokenize", t, pos[0], strlen(pos[0]), add_special, !no_parse_special);
    tok_free(t);
    return rc;
}

/* "1,2, 3" -> ids; false on anything else. */
static bool parse_ids(const char *s, int32_t **ids, size_t *n) {
    size_t cap = 16;
    *n = 0;
    *ids = malloc(cap * sizeof **ids);
    if (!*ids) return false;
    while (*s) {
        while (*s == ' ' || *s == ',')
            s++;
        if (!*s) break;
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX) return false;
        if (*n == cap) {
            int32_t *p = realloc(*ids, 2 * cap * sizeof *p);
            if (!p) return false;
            *ids = p, cap *= 2;
        }
        (*ids)[(*n)++] = (int32_t)v;
        s = end;
        if (*s && *s != ',' && *s != ' ') return false;
    }
    return true;
}

/* One line of --input-file: a JSON array of ids, decoded and printed as one JSON string. */
static int detokenize_line(const tokenizer *t, const char *line, size_t n, bool skip_special,
                           long lineno) {
    json_error_t jerr;
    json_t *j = json_loadb(line, n, 0, &jerr);
    size_t count = json_array_size(j);
    int32_t *ids = malloc((count ? count : 1) * sizeof *ids);
    int rc = 0;
    if (!j || !json_is_array(j) || !ids) {
        fprintf(stderr, "sglc detokenize: line %ld: expected a JSON array of token ids\n", lineno);
        rc = 2;
    }
    for (size_t i = 0; rc == 0 && i < count; i++) {
        json_t *v = json_array_get(j, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            (size_t)json_integer_value(v) >= tok_vocab_size(t)) {
            fprintf(stderr, "sglc detokenize: line %ld: element %zu is not a token id in [0, %zu)\n",
                    lineno, i, tok_vocab_size(t));
            rc = 2;
        } else {
            ids[i] = (int32_t)json_integer_value(v);
        }
    }
    if (rc == 0) {
        size_t len;
        char *text = tok_decode(t, ids, count, skip_special, &len);
        json_t *out = text ? json_stringn(text, len) : NULL;
        /* ASCII-only output: a line holds exactly one string whatever line breaks the text has */
        char *dump = out ? json_dumps(out, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
        if (dump) puts(dump);
        else rc = 1, fprintf(stderr, "sglc detokenize: out of memory\n");
        free(dump);
        json_decref(out);
        free(text);
    }
    free(ids);
    json_decref(j);
    return rc;
}

static int detokenize_file(const tokenizer *t, const char *path, bool skip_special) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "sglc detokenize: cannot read %s\n", path);
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (n == 0) continue;
        rc = detokenize_line(t, line, (size_t)n, skip_special, lineno);
    }
    free(line);
    fclose(f);
    return rc;
}

int cli_detokenize(int argc, char **argv) {
    const char *model_path = NULL, *input_file = NULL;
    bool skip_special = false;
    arg_spec specs[] = {
        {"--model-path", ARG_STR, &model_path,
         "a .gguf file, a folder with tokenizer.json, or a tokenizer.json", false},
        {"--skip-special-tokens", ARG_BOOL, &skip_special, "drop control tokens (BOS, EOS, ...)",
         false},
        {"--input-file", ARG_STR, &input_file,
         "one JSON array of ids per line; prints one JSON string per line", false},
    };
    int nspecs = (int)(sizeof specs / sizeof specs[0]), npos;
    const char *pos[1];
    int rc = args_parse("detokenize", specs, nspecs, argc, argv, pos, 1, &npos);
    if (rc == 1) {
        args_usage("detokenize", "--model-path P [--skip-special-tokens] (ID,ID,... | --input-file F)",
                   specs, nspecs);
        return 0;
    }
    if (rc) return rc;
    if (model_path && input_file && npos == 0) {
        tokenizer *t = open_tok("detokenize", model_path);
        if (!t) return 2;
        rc = detokenize_file(t, input_file, skip_special);
        tok_free(t);
        return rc;
    }
    if (!model_path || npos != 1) {
        fprintf(stderr, "sglc detokenize: needs --model-path and one list of ids like 1,2,3\n");
        return 2;
    }
    int32_t *ids;
    size_t n;
    if (!parse_ids(pos[0], &ids, &n)) {
        fprintf(stderr, "sglc detokenize: '%s' is not a comma-separated list of token ids\n",
                pos[0]);
        free(ids);
        return 2;
    }
    tokenizer *t = open_tok("detokenize", model_path);
    if (!t) {
        free(ids);
        return 2;
    }
    for (size_t i = 0; i < n; i++)
        if ((size_t)ids[i] >= tok_vocab_size(t)) {
            fprintf(stderr, "sglc detokenize: id %d is out of range (vocabulary of %zu)\n", ids[i],
                    tok_vocab_size(t));
            free(ids);
            tok_free(t);
            return 2;
        }
    size_t len;
    char *text = tok_decode(t, ids, n, skip_special, &len);
    free(ids);
    tok_free(t);
    if (!text) {
        fprintf(stderr, "sglc detokenize: out of memory\n");
        return 1;
    }
    fwrite(text, 1, len, stdout);
    putchar('\n');
    free(text);
    return 0;
}
