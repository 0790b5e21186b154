/* Tokenizer throughput: encodes a corpus line by line on one thread and prints MB/s and
 * tokens/s; bench/bench_tokenizer.py runs HF `tokenizers` on the same lines and prints the ratio.
 * Build by hand against a tokenizer build, e.g.
 *   cmake -S . -B build-tok -DSGLC_ONLY="base;formats;tokenizer" && cmake --build build-tok -j2
 *   gcc -O2 -std=c17 -D_GNU_SOURCE -Isrc bench/bench_tokenizer.c build-tok/libsglc_core.a \
 *       $(pkg-config --libs jansson libpcre2-8 libutf8proc) -lm -lpthread -o
 * build-tok/bench_tokenizer Usage: bench_tokenizer MODEL_PATH CORPUS_FILE  (MODEL_PATH: .gguf or
 * tokenizer.json) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer/tokenizer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_PATH CORPUS_FILE\n", argv[0]);
        return 2;
    }
    char err[1024];
    tokenizer *t = tok_load_path(argv[1], err, sizeof err);
    if (!t) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 2;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) return 1;
    fclose(f);
    double best = 1e30;
    size_t tokens = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        tokens = 0;
        for (char *p = buf, *end = buf + size; p < end;) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
            int32_t *ids;
            size_t k;
            if (tok_encode(t, p, n, false, false, &ids, &k)) return 1;
            tokens += k;
            free(ids);
            p += n;
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("sglc: %.1f MB in %.3f s: %.2f MB/s, %.0f tokens/s (%zu tokens)\n", size / 1e6, best,
           size / 1e6 / best, (double)tokens / best, tokens);
    free(buf);
    tok_free(t);
    return 0;
}
