/* The engine against outside references: stories260K (a real Llama-2 model) run by llama2.c's
 * run.c, whose logits at every position and greedy tokens are in ../shared/testdata. Checks the
 * prefill path (all positions at once), the decode path (one token at a time through the KV
 * cache), greedy generation, and batch invariance (all prompts in one ragged batch give the
 * same bits as each alone). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "runtime/sampler.h"

#define REF_DIR "../shared/testdata/models/stories260K"
#define VOCAB 512

typedef struct {
    int32_t *fed;
    int64_t n_fed, n_prompt;
    float *logits; /* [n_fed][VOCAB] */
} reference;

static reference refs[8];
static int n_refs;
static backend *be;
static model *m;

static int setup(void **state) {
    (void)state;
    json_error_t jerr;
    json_t *root = json_load_file(REF_DIR "/reference/greedy.json", 0, &jerr);
    if (!root) {
        fprintf(stderr, "cannot read greedy.json: %s\n", jerr.text);
        return -1;
    }
    size_t i;
    json_t *item;
    json_array_foreach(root, i, item) {
        reference *r = &refs[n_refs++];
        json_t *fed = json_object_get(item, "tokens_fed");
        r->n_fed = (int64_t)json_array_size(fed);
        r->n_prompt = json_integer_value(json_object_get(item, "n_prompt"));
        r->fed = malloc((size_t)r->n_fed * sizeof(int32_t));
        for (int64_t k = 0; k < r->n_fed; k++)
            r->fed[k] = (int32_t)json_integer_value(json_array_get(fed, (size_t)k));
        char path[512];
        snprintf(path, sizeof path, REF_DIR "/reference/%s",
                 json_string_value(json_object_get(item, "logits_file")));
        FILE *f = fopen(path, "rb");
        if (!f) return -1;
        r->logits = malloc((size_t)r->n_fed * VOCAB * sizeof(float));
        size_t got = fread(r->logits, sizeof(float), (size_t)r->n_fed * VOCAB, f);
        fclose(f);
        if (got != (size_t)r->n_fed * VOCAB) return -1;
    }
    json_decref(root);
    be = backend_create_cpu(2);
    char err[512];
    m = model_load(REF_DIR "/stories260K.gguf", NULL, err, sizeof err);
    if (!m) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    for (int i = 0; i < n_refs; i++) free(refs[i].fed), free(refs[i].logits);
    model_free(m);
    backend_destroy(be);
    return 0;
}

static double rel_l2(const float *a, const float *b, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* Runs `n` tokens of one sequence from position `start`, logits for every token. */
static void run_seq(model_kv *kv, const int32_t *tokens, int64_t start, int64_t n,
                    const int32_t *slots, float *logits) {
    int32_t *pos = malloc((size_t)n * sizeof(int32_t)), *seq = calloc((size_t)n, sizeof(int32_t));
    int32_t *rows = malloc((size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) pos[i] = (int32_t)(start + i), rows[i] = (int32_t)i;
    const int32_t *seq_slots[1] = {slots};
    model_batch b = {n, tokens, pos, seq, seq_slots, n, rows};
    char err[256];
    assert_int_equal(model_forward(m, be, kv, &b, logits, err, sizeof err), 0);
    free(pos), free(seq), free(rows);
}

static void test_config(void **state) {
    (void)state;
    assert_int_equal(m->cfg.n_layers, 5);
    assert_int_equal(m->cfg.dim, 64);
    assert_int_equal(m->cfg.n_heads, 8);
    assert_int_equal(m->cfg.n_kv_heads, 4);
    assert_int_equal(m->cfg.vocab_size, VOCAB);
}

static void test_prefill_logits(void **state) {
    (void)state;
    for (int r = 0; r < n_refs; r++) {
        reference *ref = &refs[r];
        model_kv kv;
        assert_int_equal(model_kv_alloc(m, be, &kv, ref->n_fed, DT_F32), 0);
        int32_t *slots = malloc((size_t)ref->n_fed * sizeof(int32_t));
        for (int64_t i = 0; i < ref->n_fed; i++) slots[i] = (int32_t)i;
        float *logits = malloc((size_t)ref->n_fed * VOCAB * sizeof(float));
        run_seq(&kv, ref->fed, 0, ref->n_fed, slots, logits);
        double worst = 0;
        for (int64_t p = 0; p < ref->n_fed; p++) {
            double e = rel_l2(logits + p * VOCAB, ref->logits + p * VOCAB, VOCAB);
            if (e > worst) worst = e;
        }
        printf("prompt %d: %lld positions, worst relative L2 error %.2e\n", r,
               (long long)ref->n_fed, worst);
        assert_true(worst < 1e-4);
        free(slots), free(logits);
        model_kv_free(be, &kv);
    }
}

/* Greedy decoding one token at a time must reproduce the reference tokens, except after a
 * position where the reference's two best logits are within 1e-5 (a tie either way). */
static void test_greedy_decode(void **state) {
    (void)state;
    for (int r = 0; r < n_refs; r++) {
        reference *ref = &refs[r];
        model_kv kv;
        assert_int_equal(model_kv_alloc(m, be, &kv, ref->n_fed + 1, DT_F32), 0);
        int32_t *slots = malloc((size_t)(ref->n_fed + 1) * sizeof(int32_t));
        for (int64_t i = 0; i <= ref->n_fed; i++) slots[i] = (int32_t)i;
        float *logits = malloc((size_t)ref->n_prompt * VOCAB * sizeof(float));
        run_seq(&kv, ref->fed, 0, ref->n_prompt, slots, logits);
        const float *last = logits + (ref->n_prompt - 1) * VOCAB;
        int32_t token;
        int64_t matched = 0;
        for (int64_t p = ref->n_prompt - 1; p + 1 < ref->n_fed; p++) {
            token = sampler_argmax(last, VOCAB);
            const float *rl = ref->logits + p * VOCAB;
            float b1 = -INFINITY, b2 = -INFINITY;
            for (int v = 0; v < VOCAB; v++) {
                if (rl[v] > b1) b2 = b1, b1 = rl[v];
                else if (rl[v] > b2) b2 = rl[v];
            }
            if (token != ref->fed[p + 1]) {
                assert_true(b1 - b2 < 1e-5); /* only a near-tie may diverge */
                break;
            }
            matched++;
            double e = rel_l2(last, rl, VOCAB);
            assert_true(e < 1e-4);
            run_seq(&kv, &token, p + 1, 1, slots, logits);
            last = logits;
        }
        printf("prompt %d: %lld of %lld greedy tokens reproduced\n", r, (long long)matched,
               (long long)(ref->n_fed - ref->n_prompt));
        assert_int_equal(matched, ref->n_fed - ref->n_prompt);
        free(slots), free(logits);
        model_kv_free(be, &kv);
    }
}

/* Every reference prompt in one ragged batch: each sequence's logits must equal, bit for bit,
 * those of the same sequence run alone. */
static void test_batch_invariance(void **state) {
    (void)state;
    int64_t total = 0;
    for (int r = 0; r < n_refs; r++) total += refs[r].n_fed;
    model_kv kv;
    assert_int_equal(model_kv_alloc(m, be, &kv, total, DT_F32), 0);
    int32_t *tokens = malloc((size_t)total * sizeof(int32_t)), *pos = malloc((size_t)total * 4);
    int32_t *seq = malloc((size_t)total * 4), *rows = malloc((size_t)total * 4);
    int32_t *slots = malloc((size_t)total * 4);
    const int32_t *seq_slots[8];
    int64_t off = 0;
    for (int r = 0; r < n_refs; r++) {
        seq_slots[r] = slots + off;
        for (int64_t i = 0; i < refs[r].n_fed; i++, off++) {
            /* interleave slot numbers between sequences, as a paged pool would */
            slots[off] = (int32_t)(total - 1 - off);
            tokens[off] = refs[r].fed[i];
            pos[off] = (int32_t)i;
            seq[off] = r;
            rows[off] = (int32_t)off;
        }
    }
    float *batched = malloc((size_t)total * VOCAB * sizeof(float));
    model_batch b = {total, tokens, pos, seq, seq_slots, total, rows};
    char err[256];
    assert_int_equal(model_forward(m, be, &kv, &b, batched, err, sizeof err), 0);
    off = 0;
    for (int r = 0; r < n_refs; r++) {
        float *alone = malloc((size_t)refs[r].n_fed * VOCAB * sizeof(float));
        run_seq(&kv, refs[r].fed, 0, refs[r].n_fed, seq_slots[r], alone);
        assert_memory_equal(alone, batched + off * VOCAB,
                            (size_t)refs[r].n_fed * VOCAB * sizeof(float));
        off += refs[r].n_fed;
        free(alone);
    }
    free(tokens), free(pos), free(seq), free(rows), free(slots), free(batched);
    model_kv_free(be, &kv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_prefill_logits),
        cmocka_unit_test(test_greedy_decode),
        cmocka_unit_test(test_batch_invariance),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
