/* llama.cpp's tokenizer test vectors (../shared/testdata/vocab): every string of every
 * ggml-vocab-NAME.gguf must encode to exactly the ids llama.cpp produced (no BOS, no special
 * parsing), and decoding those ids must give back text that re-encodes the same way. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

static char *vocab_dir(void) {
    static char dir[4096];
    const char *root = getenv("SGLC_ROOT");
    snprintf(dir, sizeof dir, "%s/../shared/testdata/vocab", root ? root : ".");
    return dir;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = 0, *len = (size_t)n;
    return buf;
}

/* Runs one vocabulary; returns the number of failing strings. */
static int check_vocab(const char *gguf_path, int *n_checked) {
    char err[512], path[4400];
    tokenizer *t = tok_load_gguf_path(gguf_path, err, sizeof err);
    if (!t) {
        print_error("load %s: %s\n", gguf_path, err);
        return 1;
    }
    size_t in_len, out_len;
    snprintf(path, sizeof path, "%s.inp", gguf_path);
    char *inp = slurp(path, &in_len);
    snprintf(path, sizeof path, "%s.out", gguf_path);
    char *out = slurp(path, &out_len);
    assert_non_null(inp);
    assert_non_null(out);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    int fails = 0;
    char *ip = inp, *op = out;
    while (ip < inp + in_len && *op) {
        char *next = strstr(ip, sep);
        size_t n = next ? (size_t)(next - ip) : strlen(ip);
        char *eol = strchr(op, '\n');
        if (eol) *eol = 0;
        int32_t want[4096];
        size_t n_want = 0;
        for (char *q = op; *q;) {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q) break;
            want[n_want++] = (int32_t)v;
            q = end;
        }
        int32_t *ids;
        size_t n_ids;
        assert_int_equal(tok_encode(t, ip, n, false, false, &ids, &n_ids), 0);
        bool same = n_ids == n_want && !memcmp(ids, want, n_ids * sizeof *ids);
        if (!same) {
            fails++;
            print_error("%s: '%.*s'\n  want:", gguf_path, (int)n, ip);
            for (size_t k = 0; k < n_want; k++)
                print_error(" %d", want[k]);
            print_error("\n  got: ");
            for (size_t k = 0; k < n_ids; k++)
                print_error(" %d", ids[k]);
            print_error("\n");
        }
        free(ids);
        (*n_checked)++;
        op = eol ? eol + 1 : op + strlen(op);
        if (!next) break;
        ip = next + sizeof sep - 1;
    }
    free(inp);
    free(out);
    tok_free(t);
    return fails;
}

static void test_all_vocab_vectors(void **state) {
    (void)state;
    DIR *d = opendir(vocab_dir());
    if (!d) {
        print_message("no test data at %s\n", vocab_dir());
        skip();
    }
    struct dirent *e;
    int fails = 0, checked = 0, files = 0;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 5, ".gguf")) continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", vocab_dir(), e->d_name);
        fails += check_vocab(path, &checked);
        files++;
    }
    closedir(d);
    print_message("%d vocabularies, %d strings, %d failures\n", files, checked, fails);
    assert_true(files >= 5);
    assert_int_equal(fails, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_vocab_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
