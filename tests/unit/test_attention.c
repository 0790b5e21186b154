/* Tests of kern_attention: the AVX2 tiled path against the scalar reference path (f32, f16 and
 * bf16 caches, several head sizes and GQA groups, sliding windows, ragged batches of several
 * sequences), and tile invariance on every path the CPU has: a token's output is bit-identical
 * whether it is computed alone (decode), in prefill chunks of any size, interleaved with other
 * sequences' tokens, or with another thread count. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cpu.h"
#include "kernels/backend.h"
#include "kernels/ops.h"
#include "kernel_test_util.h"

/* n_seq sequences of len[s] positions each, all keys already in the cache; slots of the
 * sequences are interleaved (slot = position * n_seq + s, reversed) as a paged pool would. */
typedef struct {
    int n_heads, n_kv, hd, window, n_seq;
    int len[4];
    kv_layer kv;
    int32_t *slots[4];
    float *q[4]; /* q[s][p] = query row of sequence s at position p: n_heads*hd floats */
} fixture;

static void fixture_init(fixture *f, backend *be, dtype_t type, int n_heads, int n_kv, int hd,
                         int window, int n_seq, const int *len, float q_gain, unsigned seed) {
    memset(f, 0, sizeof *f);
    f->n_heads = n_heads, f->n_kv = n_kv, f->hd = hd, f->window = window, f->n_seq = n_seq;
    int64_t total = 0, max_len = 0;
    for (int s = 0; s < n_seq; s++) {
        f->len[s] = len[s];
        total += len[s];
        if (len[s] > max_len) max_len = len[s];
    }
    int row = n_kv * hd;
    int64_t n_slots = max_len * n_seq;
    size_t esz = type == DT_F32 ? 4 : 2;
    f->kv = (kv_layer){type, calloc((size_t)(n_slots * row), esz),
                       calloc((size_t)(n_slots * row), esz), n_slots, row};
    float *k = malloc((size_t)row * sizeof(float)), *v = malloc((size_t)row * sizeof(float));
    for (int s = 0; s < n_seq; s++) {
        f->slots[s] = malloc((size_t)len[s] * sizeof(int32_t));
        f->q[s] = malloc((size_t)len[s] * n_heads * hd * sizeof(float));
        for (int p = 0; p < len[s]; p++) {
            f->slots[s][p] = (int32_t)(n_slots - 1 - ((int64_t)p * n_seq + s));
            for (int i = 0; i < row; i++) k[i] = frand(&seed), v[i] = frand(&seed);
            kern_kv_store(be, &f->kv, k, v, 1, &f->slots[s][p]);
            for (int i = 0; i < n_heads * hd; i++)
                f->q[s][(int64_t)p * n_heads * hd + i] = frand(&seed) * q_gain;
        }
    }
    free(k), free(v);
}

static void fixture_free(fixture *f) {
    free(f->kv.k), free(f->kv.v);
    for (int s = 0; s < f->n_seq; s++) free(f->slots[s]), free(f->q[s]);
}

/* Runs one batch whose tokens are (seq[t], pos[t]) and copies each token's output to
 * out[seq][pos] (same layout as fixture.q). */
static void run_batch(backend *be, const fixture *f, int64_t T, const int32_t *seq,
                      const int32_t *pos, float *const *out) {
    int rowq = f->n_heads * f->hd;
    float *q = malloc((size_t)(T * rowq) * sizeof(float));
    float *o = malloc((size_t)(T * rowq) * sizeof(float));
    for (int64_t t = 0; t < T; t++)
        memcpy(q + t * rowq, f->q[seq[t]] + (int64_t)pos[t] * rowq, (size_t)rowq * sizeof(float));
    attn_batch ab = {pos, seq, (const int32_t *const *)f->slots, f->window};
    assert_int_equal(kern_attention(be, &f->kv, q, T, f->n_heads, f->n_kv, f->hd,
                                    1.0f / sqrtf((float)f->hd), &ab, o),
                     0);
    for (int64_t t = 0; t < T; t++)
        memcpy(out[seq[t]] + (int64_t)pos[t] * rowq, o + t * rowq, (size_t)rowq * sizeof(float));
    free(q), free(o);
}

static void alloc_out(const fixture *f, float **out) {
    for (int s = 0; s < f->n_seq; s++)
        out[s] = calloc((size_t)f->len[s] * f->n_heads * f->hd, sizeof(float));
}

/* Every position of every sequence in one ragged batch: sequences one after another, each a
 * prefill from position `from` to its end. */
static int64_t whole_batch(const fixture *f, int from, int32_t *seq, int32_t *pos) {
    int64_t T = 0;
    for (int s = 0; s < f->n_seq; s++)
        for (int p = from; p < f->len[s]; p++) seq[T] = s, pos[T] = p, T++;
    return T;
}

typedef struct {
    dtype_t type;
    int n_heads, n_kv, hd, window, n_seq;
    int len[4];
    float q_gain;
} attn_case;

static const attn_case cases[] = {
    {DT_F16, 9, 3, 64, 0, 3, {70, 1, 33}, 1.0f},     /* SmolLM2-135M's shapes */
    {DT_F32, 9, 3, 64, 0, 2, {150, 90}, 1.0f},       /* more than one key block */
    {DT_BF16, 4, 2, 128, 0, 2, {40, 17}, 1.0f},      /* two 64-wide output passes */
    {DT_F16, 6, 6, 80, 0, 1, {45}, 1.0f},            /* no GQA; 80 = 64 + 2 x 8 */
    {DT_F16, 8, 2, 32, 24, 2, {100, 60}, 1.0f},      /* sliding window */
    {DT_F32, 4, 1, 64, 0, 2, {30, 12}, 40.0f},       /* scores far apart: exp underflows */
};

/* relative max error of the AVX2 path against the scalar path, over each output row */
static void test_avx2_matches_scalar(void **state) {
    (void)state;
    if (cpu_get()->best < ISA_AVX2) skip();
    backend *be = new_backend(2);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const attn_case *ac = &cases[c];
        fixture f;
        fixture_init(&f, be, ac->type, ac->n_heads, ac->n_kv, ac->hd, ac->window, ac->n_seq,
                     ac->len, ac->q_gain, 1234u + (unsigned)c);
        int32_t seq[1024], pos[1024];
        int64_t T = whole_batch(&f, 0, seq, pos);
        float *ref[4] = {0}, *vec[4] = {0};
        alloc_out(&f, ref), alloc_out(&f, vec);
        be->isa = ISA_SCALAR;
        run_batch(be, &f, T, seq, pos, ref);
        be->isa = ISA_AVX2;
        run_batch(be, &f, T, seq, pos, vec);
        double worst = 0;
        int rowq = f.n_heads * f.hd;
        for (int s = 0; s < f.n_seq; s++)
            for (int64_t i = 0; i < (int64_t)f.len[s] * rowq; i += f.hd) {
                double err = 0, mag = 0;
                for (int d = 0; d < f.hd; d++) {
                    err = fmax(err, fabs((double)ref[s][i + d] - vec[s][i + d]));
                    mag = fmax(mag, fabs((double)ref[s][i + d]));
                }
                assert_false(isnan(vec[s][i]));
                if (err / (mag + 1e-3) > worst) worst = err / (mag + 1e-3);
            }
        printf("case %zu (%s hd %d group %d window %d): worst relative error %.2e\n", c,
               ac->type == DT_F32 ? "f32" : ac->type == DT_F16 ? "f16" : "bf16", ac->hd,
               ac->n_heads / ac->n_kv, ac->window, worst);
        assert_true(worst < 2e-5);
        for (int s = 0; s < f.n_seq; s++) free(ref[s]), free(vec[s]);
        fixture_free(&f);
    }
    backend_destroy(be);
}

/* The attention paths this CPU can run: the scalar one, and the AVX2 one where supported. */
static int attn_paths(isa_level *paths) {
    int n = 0;
    if (cpu_get()->best >= ISA_AVX2) paths[n++] = ISA_AVX2;
    paths[n++] = ISA_SCALAR;
    return n;
}

static void assert_same(const fixture *f, float *const *a, float *const *b) {
    for (int s = 0; s < f->n_seq; s++)
        assert_memory_equal(a[s], b[s], (size_t)f->len[s] * f->n_heads * f->hd * sizeof(float));
}

/* One fixture, outputs computed in many batchings, all bit-identical to the whole batch. */
static void check_invariance(backend *be1, backend *be2, const attn_case *ac, unsigned seed) {
    fixture f;
    fixture_init(&f, be1, ac->type, ac->n_heads, ac->n_kv, ac->hd, ac->window, ac->n_seq,
                 ac->len, ac->q_gain, seed);
    int32_t seq[4096], pos[4096];
    float *ref[4] = {0}, *got[4] = {0};
    alloc_out(&f, ref), alloc_out(&f, got);
    int64_t T = whole_batch(&f, 0, seq, pos);
    run_batch(be1, &f, T, seq, pos, ref);

    /* another thread count */
    run_batch(be2, &f, T, seq, pos, got);
    assert_same(&f, ref, got);

    /* each token alone, as decode computes it */
    for (int64_t t = 0; t < T; t++) run_batch(be2, &f, 1, seq + t, pos + t, got);
    assert_same(&f, ref, got);

    /* prefill chunks of several sizes, the sequences' chunks in one batch each step */
    static const int chunk[] = {5, 16, 17, 37};
    for (size_t c = 0; c < sizeof chunk / sizeof chunk[0]; c++) {
        for (int from = 0;; from += chunk[c]) {
            int64_t n = 0;
            for (int s = 0; s < f.n_seq; s++)
                for (int p = from; p < from + chunk[c] && p < f.len[s]; p++)
                    seq[n] = s, pos[n] = p, n++;
            if (n == 0) break;
            run_batch(c % 2 ? be1 : be2, &f, n, seq, pos, got);
        }
        assert_same(&f, ref, got);
    }

    /* tokens of the sequences interleaved one by one (no two neighbours share a sequence) */
    int64_t n = 0;
    for (int p = 0; n < T; p++)
        for (int s = 0; s < f.n_seq; s++)
            if (p < f.len[s]) seq[n] = s, pos[n] = p, n++;
    run_batch(be1, &f, n, seq, pos, got);
    assert_same(&f, ref, got);

    /* positions in reverse order: every tile is one token */
    T = whole_batch(&f, 0, seq, pos);
    for (int64_t t = 0; t < T / 2; t++) {
        int32_t a = seq[t], b = pos[t];
        seq[t] = seq[T - 1 - t], pos[t] = pos[T - 1 - t];
        seq[T - 1 - t] = a, pos[T - 1 - t] = b;
    }
    run_batch(be2, &f, T, seq, pos, got);
    assert_same(&f, ref, got);

    for (int s = 0; s < f.n_seq; s++) free(ref[s]), free(got[s]);
    fixture_free(&f);
}

static void test_tile_invariance(void **state) {
    (void)state;
    backend *be1 = new_backend(1), *be2 = new_backend(2);
    isa_level paths[2];
    int n_paths = attn_paths(paths);
    for (int i = 0; i < n_paths; i++) {
        be1->isa = be2->isa = paths[i];
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            check_invariance(be1, be2, &cases[c], 99u + (unsigned)c);
    }
    backend_destroy(be1), backend_destroy(be2);
}

/* A long prompt: tiles are cut short by the score budget, many key blocks per tile; the last
 * 40 positions as one prefill chunk must equal each of them computed alone. */
static void test_long_context_invariance(void **state) {
    (void)state;
    backend *be = new_backend(2);
    isa_level paths[2];
    int n_paths = attn_paths(paths);
    for (int i = 0; i < n_paths; i++) {
        be->isa = paths[i];
        fixture f;
        int len[1] = {3000};
        fixture_init(&f, be, DT_F16, 9, 3, 64, 0, 1, len, 1.0f, 5u);
        int32_t seq[40], pos[40];
        for (int i = 0; i < 40; i++) seq[i] = 0, pos[i] = 3000 - 40 + i;
        float *a[1] = {0}, *b[1] = {0};
        alloc_out(&f, a), alloc_out(&f, b);
        run_batch(be, &f, 40, seq, pos, a);
        for (int i = 0; i < 40; i++) run_batch(be, &f, 1, seq + i, pos + i, b);
        assert_same(&f, a, b);
        free(a[0]), free(b[0]);
        fixture_free(&f);
    }
    backend_destroy(be);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avx2_matches_scalar),
        cmocka_unit_test(test_tile_invariance),
        cmocka_unit_test(test_long_context_invariance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
