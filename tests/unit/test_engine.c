/* The runtime end to end on the tiny real model stories260K, through the engine API: greedy
 * output of every request of a mixed batch equals the same request run alone (radix cache on
 * and off, chunked prefill forced to 64, page sizes 1 and 16, under retraction), each test
 * asserting that what it exercises happened (chunks, mixed batches, retractions, evictions,
 * cached tokens); no KV leaks after aborts and retractions; the sampling options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/engine.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"

#define MODEL "../shared/testdata/models/stories260K/stories260K.gguf"
#define N_REQ 8
#define OUT_LEN 24
#define MAX_OUT 256

typedef struct {
    int32_t ids[MAX_OUT];
    int n;
    engine_finish finish;
    int64_t cached;
    char matched_stop[64];
    int trim;
    int32_t matched_token;
    float lp[MAX_OUT];
} result;

static int32_t prompts[N_REQ][256];
static int prompt_len[N_REQ] = {5, 130, 33, 170, 200, 9, 150, 70};
static result alone[N_REQ];

static engine *start(int page, int64_t chunk, bool radix, int64_t max_total) {
    engine_args a;
    engine_args_default(&a);
    a.model_path = MODEL;
    a.threads = 2;
    a.page_size = page;
    a.chunked_prefill_size = chunk;
    a.disable_radix_cache = !radix;
    a.max_total_tokens = max_total > 0 ? max_total : 8192;
    a.kv_cache_dtype = "fp32";
    engine *e = engine_start(&a);
    assert_non_null(e);
    assert_int_equal(engine_wait_ready(e), 0);
    return e;
}

static void greedy(engine_sampling *s, int max_new) {
    engine_sampling_default(s);
    s->temperature = 0;
    s->max_new_tokens = max_new;
    s->ignore_eos = true;
}

/* Collects events until every handle in hs[0..n) is done; results in handle order. */
static void collect(engine *e, const int64_t *hs, int n, result *res) {
    int done = 0;
    while (done < n) {
        engine_event ev;
        assert_int_equal(engine_wait_event(e, &ev, 20000), 1);
        int k = -1;
        for (int i = 0; i < n; i++)
            if ((uint64_t)hs[i] == ev.handle) k = i;
        assert_true(k >= 0);
        result *r = &res[k];
        for (int i = 0; i < ev.n_ids && r->n < MAX_OUT; i++) {
            if (ev.logprobs) r->lp[r->n] = ev.logprobs[i];
            r->ids[r->n++] = ev.ids[i];
        }
        r->cached = ev.cached_tokens;
        if (ev.finish != ENGINE_FINISH_NONE) {
            r->finish = ev.finish;
            r->trim = ev.stop_trim_bytes;
            r->matched_token = ev.matched_token;
            if (ev.matched_stop) snprintf(r->matched_stop, sizeof r->matched_stop, "%s",
                                          ev.matched_stop);
            assert_true(ev.handle_done);
            done++;
        }
        engine_event_clear(&ev);
    }
}

static void run_batch(engine *e, int out_len, result *res) {
    int64_t hs[N_REQ];
    engine_sampling s;
    greedy(&s, out_len);
    char err[256];
    memset(res, 0, sizeof(result) * N_REQ);
    for (int i = 0; i < N_REQ; i++) {
        hs[i] = engine_submit(e, prompts[i], prompt_len[i], &s, NULL, err, sizeof err);
        assert_true(hs[i] > 0);
    }
    collect(e, hs, N_REQ, res);
}

static void assert_no_leak(engine *e) {
    engine_stats st;
    engine_get_stats(e, &st);
    /* the last finish event comes just before the step's stats are published */
    for (int i = 0; i < 100 && st.running + st.queued > 0; i++) {
        usleep(2000);
        engine_get_stats(e, &st);
    }
    assert_int_equal(st.running + st.queued, 0);
    assert_int_equal(st.used_tokens, st.cache_tokens);
    assert_int_equal(engine_flush_cache(e), 0);
    engine_get_stats(e, &st);
    /* stats are published after each step; flush happens between steps */
    for (int i = 0; i < 50 && st.used_tokens != 0; i++) {
        usleep(2000);
        engine_get_stats(e, &st);
    }
}

static int setup(void **state) {
    (void)state;
    sampler_rng rng;
    sampler_rng_seed(&rng, 7);
    /* requests 1, 3, 4, 6 share a 100-token prefix */
    for (int i = 0; i < N_REQ; i++)
        for (int p = 0; p < 256; p++)
            prompts[i][p] = 1 + (int32_t)(sampler_rng_uniform(&rng) * 500);
    int share[] = {3, 4, 6};
    for (int k = 0; k < 3; k++) memcpy(prompts[share[k]], prompts[1], 100 * sizeof(int32_t));
    /* each request alone, no cache, no chunking */
    engine *e = start(1, -1, false, 0);
    engine_sampling s;
    greedy(&s, OUT_LEN);
    char err[256];
    for (int i = 0; i < N_REQ; i++) {
        int64_t h = engine_submit(e, prompts[i], prompt_len[i], &s, NULL, err, sizeof err);
        assert_true(h > 0);
        collect(e, &h, 1, &alone[i]);
        assert_int_equal(alone[i].n, OUT_LEN);
        assert_int_equal(alone[i].finish, ENGINE_FINISH_LENGTH);
    }
    engine_stop(e);
    return 0;
}

static void check_batch(int page, int64_t chunk, bool radix, int64_t max_total, engine_stats *st) {
    engine *e = start(page, chunk, radix, max_total);
    result res[N_REQ];
    run_batch(e, OUT_LEN, res);
    for (int i = 0; i < N_REQ; i++) {
        assert_int_equal(res[i].n, OUT_LEN);
        assert_memory_equal(res[i].ids, alone[i].ids, OUT_LEN * sizeof(int32_t));
    }
    engine_get_stats(e, st);
    assert_no_leak(e);
    engine_stop(e);
}

static void test_batch_radix_page1(void **state) {
    (void)state;
    engine_stats st;
    check_batch(1, -1, true, 0, &st);
    assert_true(st.cached_tokens_total > 0); /* the shared prefix was reused */
}

static void test_batch_no_radix_chunk64(void **state) {
    (void)state;
    engine_stats st;
    check_batch(1, 64, false, 0, &st);
    assert_true(st.chunked_prefills > 0);
    assert_true(st.mixed_batches > 0);
    assert_int_equal(st.cached_tokens_total, 0);
}

static void test_batch_radix_chunk64_page16(void **state) {
    (void)state;
    engine_stats st;
    check_batch(16, 64, true, 0, &st);
    assert_true(st.chunked_prefills > 0);
    assert_true(st.mixed_batches > 0);
    assert_true(st.cached_tokens_total > 0);
}

/* Retraction needs the 8 requests to run at once; on a loaded machine the submitting thread
 * can be descheduled between submissions long enough for the first requests to finish alone
 * (seen about once in ten parallel ctest runs). So the batch runs again, up to 5 times, until
 * it did overlap; every run still checks its outputs against the requests alone. */
static void check_retraction(int page, int64_t chunk, bool radix, int64_t max_total,
                             engine_stats *st) {
    for (int attempt = 0; attempt < 5; attempt++) {
        check_batch(page, chunk, radix, max_total, st);
        if (st->retractions > 0) return;
    }
}

static void test_retraction(void **state) {
    (void)state;
    engine_stats st;
    /* 8 requests need ~900 tokens; 420 forces retraction (and eviction with the cache on) */
    check_retraction(1, 64, true, 420, &st);
    assert_true(st.retractions > 0);
    assert_true(st.evicted_tokens > 0);
    check_retraction(16, 64, true, 320, &st);
    assert_true(st.retractions > 0);
    check_retraction(1, -1, false, 240, &st);
    assert_true(st.retractions > 0);
}

static void test_cached_tokens(void **state) {
    (void)state;
    engine *e = start(1, -1, true, 0);
    engine_sampling s;
    greedy(&s, 4);
    char err[256];
    int32_t a[150], b[150];
    for (int i = 0; i < 150; i++) a[i] = 1 + i, b[i] = i < 100 ? 1 + i : 300 + i;
    result r[2];
    memset(r, 0, sizeof r);
    int64_t h = engine_submit(e, a, 150, &s, NULL, err, sizeof err);
    collect(e, &h, 1, &r[0]);
    assert_int_equal(r[0].cached, 0);
    h = engine_submit(e, b, 150, &s, NULL, err, sizeof err);
    collect(e, &h, 1, &r[1]);
    assert_int_equal(r[1].cached, 100);
    /* the same prompt again: all but its last token */
    memset(r, 0, sizeof r);
    h = engine_submit(e, b, 150, &s, NULL, err, sizeof err);
    collect(e, &h, 1, &r[0]);
    assert_int_equal(r[0].cached, 149);
    assert_no_leak(e);
    engine_stop(e);
}

/* One run of aborts in every state on a pool small enough to retract; returns the run's
 * retraction count (the run overlaps its requests unless the submitter was descheduled). */
static int64_t aborts_run(void) {
    engine *e = start(1, 64, true, 300);
    engine_sampling s;
    greedy(&s, 40);
    char err[256];
    int64_t hs[N_REQ];
    for (int i = 0; i < N_REQ; i++)
        hs[i] = engine_submit(e, prompts[i], prompt_len[i], &s, i == 2 ? "victim" : NULL, err,
                              sizeof err);
    assert_int_equal(engine_abort(e, (uint64_t)hs[4]), 0); /* likely still waiting/prefilling */
    assert_int_equal(engine_abort_rid(e, "victim"), 0);
    assert_int_equal(engine_flush_cache(e), -1);          /* refused: requests run */
    int done = 0, aborted = 0;
    bool aborted_decode = false;
    while (done < N_REQ) {
        engine_event ev;
        assert_int_equal(engine_wait_event(e, &ev, 20000), 1);
        if (ev.handle == (uint64_t)hs[6] && ev.finish == ENGINE_FINISH_NONE &&
            ev.completion_tokens == 5) {
            assert_int_equal(engine_abort(e, ev.handle), 0); /* in decode */
            aborted_decode = true;
        }
        if (ev.finish != ENGINE_FINISH_NONE) done++;
        if (ev.finish == ENGINE_FINISH_ABORT) aborted++;
        engine_event_clear(&ev);
    }
    assert_true(aborted_decode);
    assert_int_equal(aborted, 3);
    engine_stats st;
    engine_get_stats(e, &st);
    assert_int_equal(st.requests_aborted, 3);
    const int64_t retractions = st.retractions;
    assert_int_equal(engine_abort(e, 999999), -1);
    assert_no_leak(e);
    engine_get_stats(e, &st);
    assert_int_equal(st.used_tokens, 0);
    engine_stop(e);
    return retractions;
}

static void test_aborts_no_leak(void **state) {
    (void)state;
    int64_t retractions = 0;
    for (int attempt = 0; attempt < 5 && retractions == 0; attempt++) retractions = aborts_run();
    assert_true(retractions > 0); /* see check_retraction for why a run may not overlap */
}

static void test_sampling_options(void **state) {
    (void)state;
    engine *e = start(1, -1, true, 0);
    char err[256];
    engine_sampling s;
    result r[4];
    /* seeded sampling reproduces itself, alone or beside other requests */
    engine_sampling_default(&s);
    s.temperature = 0.9f, s.top_p = 0.95f, s.max_new_tokens = 20, s.ignore_eos = true;
    s.has_seed = true, s.seed = 1234;
    memset(r, 0, sizeof r);
    int64_t h[4];
    h[0] = engine_submit(e, prompts[0], prompt_len[0], &s, NULL, err, sizeof err);
    collect(e, h, 1, &r[0]);
    h[0] = engine_submit(e, prompts[0], prompt_len[0], &s, NULL, err, sizeof err);
    h[1] = engine_submit(e, prompts[1], prompt_len[1], &s, NULL, err, sizeof err);
    collect(e, h, 2, &r[1]);
    assert_int_equal(r[1].n, 20);
    assert_memory_equal(r[0].ids, r[1].ids, 20 * sizeof(int32_t));
    /* n > 1: samples share the prompt's KV */
    s.n = 3;
    s.max_new_tokens = 8;
    int32_t p[120];
    for (int i = 0; i < 120; i++) p[i] = 400 - i;
    h[0] = engine_submit(e, p, 120, &s, NULL, err, sizeof err);
    int got = 0, with_cache = 0;
    while (got < 3) {
        engine_event ev;
        assert_int_equal(engine_wait_event(e, &ev, 20000), 1);
        if (ev.finish) {
            got++;
            if (ev.cached_tokens == 119) with_cache++;
            assert_int_equal(ev.handle_done, got == 3);
        }
        engine_event_clear(&ev);
    }
    assert_int_equal(with_cache, 2);
    /* stop token ids, min_new_tokens, logit_bias, logprobs */
    greedy(&s, 30);
    int32_t stop_id = alone[0].ids[5];
    s.stop_token_ids = &stop_id, s.n_stop_token_ids = 1;
    memset(r, 0, sizeof r);
    h[0] = engine_submit(e, prompts[0], prompt_len[0], &s, NULL, err, sizeof err);
    collect(e, h, 1, &r[0]);
    assert_int_equal(r[0].finish, ENGINE_FINISH_STOP);
    assert_int_equal(r[0].matched_token, stop_id);
    assert_true(r[0].n <= 6);
    assert_int_equal(r[0].ids[r[0].n - 1], stop_id);
    s.n_stop_token_ids = 0;
    engine_logit_bias bias = {77, 1000.0f};
    s.logit_bias = &bias, s.n_logit_bias = 1, s.max_new_tokens = 5;
    s.return_logprob = true, s.top_logprobs_num = 3, s.logprob_start_len = 2;
    memset(r, 0, sizeof r);
    h[0] = engine_submit(e, prompts[2], prompt_len[2], &s, NULL, err, sizeof err);
    bool saw_prompt_lp = false;
    for (;;) {
        engine_event ev;
        assert_int_equal(engine_wait_event(e, &ev, 20000), 1);
        for (int i = 0; i < ev.n_ids; i++) {
            assert_int_equal(ev.ids[i], 77);
            assert_true(ev.logprobs[i] <= 0 && ev.logprobs[i] > -0.01f);
            assert_int_equal(ev.top_ids[i * 3], 77);
            assert_true(ev.top_logprobs[i * 3 + 1] <= ev.top_logprobs[i * 3]);
        }
        if (ev.n_prompt_lp) {
            saw_prompt_lp = true;
            assert_int_equal(ev.prompt_lp_start, 2);
            assert_int_equal(ev.n_prompt_lp, prompt_len[2] - 2);
            for (int i = 0; i < ev.n_prompt_lp; i++) assert_true(ev.prompt_logprobs[i] <= 0);
        }
        bool end = ev.finish != ENGINE_FINISH_NONE;
        engine_event_clear(&ev);
        if (end) break;
    }
    assert_true(saw_prompt_lp);
    /* validation */
    greedy(&s, 600);
    assert_int_equal(engine_submit(e, prompts[0], 5, &s, NULL, err, sizeof err), ENGINE_EINVAL);
    assert_non_null(strstr(err, "context length"));
    int32_t bad = 100000;
    greedy(&s, 4);
    assert_int_equal(engine_submit(e, &bad, 1, &s, NULL, err, sizeof err), ENGINE_EINVAL);
    assert_no_leak(e);
    engine_stop(e);
}

static void test_stop_string(void **state) {
    (void)state;
    char err[256];
    tokenizer *tok = tok_load_path(MODEL, err, sizeof err);
    assert_non_null(tok);
    engine *e = start(1, -1, true, 0);
    engine_sampling s;
    greedy(&s, 40);
    result r;
    memset(&r, 0, sizeof r);
    int64_t h = engine_submit(e, prompts[5], prompt_len[5], &s, NULL, err, sizeof err);
    collect(e, &h, 1, &r);
    /* the output's bytes, and where each token ends */
    char text[4096];
    size_t cum[64], pos = 0;
    for (int i = 0; i < r.n; i++) {
        size_t len;
        const uint8_t *p = tok_piece(tok, r.ids[i], &len);
        memcpy(text + pos, p, len);
        pos += len;
        cum[i] = pos;
    }
    /* a stop string made of the end of token 9 and the start of token 11: spans 3 tokens */
    size_t a = cum[8] + (cum[9] - cum[8]) / 2, b = cum[10] + 1;
    char stop[128];
    memcpy(stop, text + a, b - a);
    stop[b - a] = 0;
    const char *first = NULL;
    for (size_t j = 0; j + (b - a) <= pos && !first; j++)
        if (!memcmp(text + j, stop, b - a)) first = text + j;
    size_t mstart = (size_t)(first - text), mend = mstart + (b - a);
    int k = 0;
    while (cum[k] < mend) k++;
    const char *stops[2] = {"never appears \x01", stop};
    s.stop = stops, s.n_stop = 2;
    for (int keep = 0; keep < 2; keep++) {
        s.no_stop_trim = keep;
        result q;
        memset(&q, 0, sizeof q);
        h = engine_submit(e, prompts[5], prompt_len[5], &s, NULL, err, sizeof err);
        assert_true(h > 0);
        collect(e, &h, 1, &q);
        assert_int_equal(q.finish, ENGINE_FINISH_STOP);
        assert_string_equal(q.matched_stop, stop);
        assert_int_equal(q.n, k + 1);
        assert_memory_equal(q.ids, r.ids, (size_t)q.n * sizeof(int32_t));
        assert_int_equal(q.trim, keep ? 0 : (int)(cum[k] - mstart));
    }
    assert_no_leak(e);
    engine_stop(e);
    tok_free(tok);
}

static void test_idle_sleeps(void **state) {
    (void)state;
    engine *e = start(1, -1, true, 0);
    struct timespec a, b;
    usleep(100000);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    usleep(300000);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    double cpu = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
    assert_true(cpu < 0.05); /* an idle engine sleeps */
    engine_stop(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_radix_page1),
        cmocka_unit_test(test_batch_no_radix_chunk64),
        cmocka_unit_test(test_batch_radix_chunk64_page16),
        cmocka_unit_test(test_retraction),
        cmocka_unit_test(test_cached_tokens),
        cmocka_unit_test(test_aborts_no_leak),
        cmocka_unit_test(test_sampling_options),
        cmocka_unit_test(test_stop_string),
        cmocka_unit_test(test_idle_sleeps),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
