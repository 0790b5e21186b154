/* Decoding: whole-sequence decode round-trips every llama.cpp test string through both vocabulary
 * kinds; the streaming detokenizer only ever emits complete UTF-8, joins split characters, and
 * adds up to the whole decode; skip_special and the SentencePiece leading-space rule; per-token
 * raw bytes; and concurrent encoding from several threads gives the same ids as one thread. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

static tokenizer *load(const char *name) {
    char path[4096], err[512];
    const char *root = getenv("SGLC_ROOT");
    snprintf(path, sizeof path, "%s/../shared/testdata/vocab/ggml-vocab-%s.gguf", root ? root : ".",
             name);
    tokenizer *t = tok_load_gguf_path(path, err, sizeof err);
    if (!t) print_error("%s\n", err);
    return t;
}

static bool valid_utf8(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t need = p[i] < 0x80 ? 1 : p[i] >= 0xF0 ? 4 : p[i] >= 0xE0 ? 3 : p[i] >= 0xC2 ? 2 : 0;
        if (!need || i + need > n) return false;
        for (size_t k = 1; k < need; k++)
            if ((p[i + k] & 0xC0) != 0x80) return false;
        i += need;
    }
    return true;
}

/* Streams ids and checks each chunk is valid UTF-8 and the sum equals tok_decode. */
static void check_stream(const tokenizer *t, const int32_t *ids, size_t n, bool skip) {
    size_t whole_len;
    char *whole = tok_decode(t, ids, n, skip, &whole_len);
    assert_non_null(whole);
    tok_detok *d = tok_detok_new(t, skip);
    assert_non_null(d);
    char *acc = malloc(whole_len + 16);
    size_t acc_len = 0;
    for (size_t i = 0; i <= n; i++) {
        size_t k;
        const char *part = i < n ? tok_detok_push(d, ids[i], &k) : tok_detok_flush(d, &k);
        assert_non_null(part);
        assert_true(valid_utf8(part, k));
        assert_true(acc_len + k <= whole_len);
        memcpy(acc + acc_len, part, k);
        acc_len += k;
    }
    assert_int_equal(acc_len, whole_len);
    assert_memory_equal(acc, whole, whole_len);
    free(acc);
    free(whole);
    tok_detok_free(d);
}

static const char *const samples[] = {
    "Hello world",
    " Hello world",
    "  two  spaces",
    "🦙 llama and 日本語",
    "tab\tnew\nline",
    "Äpfel 4 ½ months",
    "ied 4 ½ months",
    "3333333",
    "",
    "$$$",
    "\xe2\x96\x81 literal",
};

static void roundtrip(const char *vocab) {
    tokenizer *t = load(vocab);
    assert_non_null(t);
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        /* SentencePiece cannot tell a literal U+2581 from a space (nor can HF or llama.cpp). */
        if (!strcmp(vocab, "llama-spm") && strstr(samples[i], "\xe2\x96\x81")) continue;
        int32_t *ids;
        size_t n, len;
        assert_int_equal(tok_encode(t, samples[i], strlen(samples[i]), false, false, &ids, &n), 0);
        char *s = tok_decode(t, ids, n, false, &len);
        assert_non_null(s);
        if (strcmp(s, samples[i])) print_error("%s: '%s' -> '%s'\n", vocab, samples[i], s);
        assert_string_equal(s, samples[i]);
        free(s);
        check_stream(t, ids, n, false);
        free(ids);
    }
    tok_free(t);
}

static void test_roundtrip_spm(void **state) {
    (void)state;
    roundtrip("llama-spm");
}

static void test_roundtrip_bpe(void **state) {
    (void)state;
    roundtrip("gpt-2");
    roundtrip("deepseek-llm");
}

static void test_special_and_prefix(void **state) {
    (void)state;
    tokenizer *t = load("llama-spm");
    assert_non_null(t);
    int32_t *ids;
    size_t n, len;
    assert_int_equal(tok_encode(t, "Hello", 5, true, false, &ids, &n), 0);
    assert_int_equal(ids[0], tok_bos(t));
    char *s = tok_decode(t, ids, n, true, &len);
    assert_string_equal(s, "Hello"); /* BOS skipped, dummy-prefix space stripped */
    free(s);
    s = tok_decode(t, ids, n, false, &len);
    assert_string_equal(s, "<s> Hello"); /* as HF: the strip applies to the first token only */
    free(s);
    check_stream(t, ids, n, true);
    check_stream(t, ids, n, false);
    free(ids);
    /* parse_special: "</s>" is EOS only when asked for */
    assert_int_equal(tok_encode(t, "a</s>", 5, false, true, &ids, &n), 0);
    assert_int_equal(ids[n - 1], tok_eos(t));
    free(ids);
    assert_int_equal(tok_encode(t, "a</s>", 5, false, false, &ids, &n), 0);
    assert_true(ids[n - 1] != tok_eos(t));
    free(ids);
    assert_true(tok_is_special(t, tok_bos(t)));
    assert_false(tok_is_special(t, tok_find(t, "\xe2\x96\x81Hello", 8)));
    tok_free(t);
}

static void test_split_utf8_and_pieces(void **state) {
    (void)state;
    tokenizer *t = load("llama-spm");
    assert_non_null(t);
    /* U+1F999 as four byte-fallback tokens: nothing until the last byte arrives. */
    int32_t b[4] = {tok_find(t, "<0xF0>", 6), tok_find(t, "<0x9F>", 6), tok_find(t, "<0xA6>", 6),
                    tok_find(t, "<0x99>", 6)};
    for (int i = 0; i < 4; i++)
        assert_true(b[i] >= 0);
    size_t len;
    const uint8_t *p = tok_piece(t, b[0], &len);
    assert_int_equal(len, 1);
    assert_int_equal(p[0], 0xF0);
    tok_detok *d = tok_detok_new(t, false);
    for (int i = 0; i < 3; i++) {
        tok_detok_push(d, b[i], &len);
        assert_int_equal(len, 0);
    }
    const char *out = tok_detok_push(d, b[3], &len);
    assert_int_equal(len, 4);
    assert_memory_equal(out, "\xF0\x9F\xA6\x99", 4);
    /* A broken sequence becomes U+FFFD, then the text goes on; a dangling lead byte is flushed
     * as U+FFFD too. */
    int32_t a = tok_find(t, "a", 1);
    tok_detok_push(d, b[0], &len);
    out = tok_detok_push(d, a, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(out,
                        "\xEF\xBF\xBD"
                        "a",
                        4);
    tok_detok_push(d, b[0], &len);
    out = tok_detok_flush(d, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(out, "\xEF\xBF\xBD", 3);
    assert_null(tok_detok_push(d, (int32_t)tok_vocab_size(t), &len));
    tok_detok_free(d);
    tok_free(t);
}

typedef struct {
    const tokenizer *t;
    const char *text;
    int32_t *ids;
    size_t n;
} job;

static void *encode_job(void *arg) {
    job *j = arg;
    for (int r = 0; r < 20; r++) {
        free(j->ids);
        if (tok_encode(j->t, j->text, strlen(j->text), true, true, &j->ids, &j->n)) return NULL;
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    tokenizer *t = load("deepseek-coder");
    assert_non_null(t);
    const char *text = "def main():\n    print('hello, 世界 123')  # 🦙\n";
    int32_t *ref;
    size_t n_ref;
    assert_int_equal(tok_encode(t, text, strlen(text), true, true, &ref, &n_ref), 0);
    pthread_t th[4];
    job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job){t, text, NULL, 0};
        pthread_create(&th[i], NULL, encode_job, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].n, n_ref);
        assert_memory_equal(jobs[i].ids, ref, n_ref * sizeof *ref);
        free(jobs[i].ids);
    }
    free(ref);
    tok_free(t);
}

static void test_bad_input(void **state) {
    (void)state;
    char err[512];
    assert_null(tok_load_gguf_path("/nonexistent.gguf", err, sizeof err));
    assert_true(strlen(err) > 0);
    tokenizer *t = load("gpt-2");
    assert_non_null(t);
    /* Invalid UTF-8 encodes (byte-level covers every byte) and decodes lossily. */
    const char bad[] = "\xff\xfe ok \xc3";
    int32_t *ids;
    size_t n, len;
    assert_int_equal(tok_encode(t, bad, sizeof bad - 1, false, false, &ids, &n), 0);
    assert_true(n > 0);
    char *s = tok_decode(t, ids, n, false, &len);
    assert_true(valid_utf8(s, len));
    free(s);
    free(ids);
    tok_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_spm),
        cmocka_unit_test(test_roundtrip_bpe),
        cmocka_unit_test(test_special_and_prefix),
        cmocka_unit_test(test_split_utf8_and_pieces),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
