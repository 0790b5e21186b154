/* Implementation of runtime/scheduler.h: admission, KV bookkeeping, retraction and the one
 * forward pass per step. Requests live in two arrays: `waiting` (kept in arrival order, the
 * policy reorders it before admission) and `running` (admitted, holding a request row and KV).
 * A running request computes tokens[kv_len..n_tokens) in chunks; when its last token is
 * computed it gets logits and a new token, so prefill, chunked prefill, decode and resumption
 * after retraction are one code path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "runtime/sched_internal.h"
#include "tokenizer/tokenizer.h"

#define MAX_RESERVE_PER_REQ 4096 /* SGLang's clip of a request's output estimate */
#define IN_BATCH_PREFIX 32       /* requests sharing this many new tokens wait a turn */

static int grow_batch(sched *s, int64_t tokens) {
    if (tokens <= s->cap_tokens) return 0;
    int64_t cap = s->cap_tokens ? s->cap_tokens : 256;
    while (cap < tokens) cap *= 2;
    int32_t **bufs[] = {&s->b_tokens, &s->b_pos, &s->b_seq, &s->b_rows, &s->row_pos};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        int32_t *p = realloc(*bufs[i], (size_t)cap * sizeof(int32_t));
        if (!p) return -1;
        *bufs[i] = p;
    }
    sched_req **rr = realloc(s->row_req, (size_t)cap * sizeof *rr);
    if (!rr) return -1;
    s->row_req = rr;
    s->cap_tokens = cap;
    return 0;
}

static int grow_logits(sched *s, int64_t rows) {
    if (rows <= s->cap_logit_rows) return 0;
    int64_t cap = s->cap_logit_rows ? s->cap_logit_rows : 16;
    while (cap < rows) cap *= 2;
    float *l = realloc(s->logits, (size_t)cap * (size_t)s->vocab * sizeof(float));
    if (!l) return -1;
    s->logits = l;
    s->cap_logit_rows = cap;
    return 0;
}

sched *sched_create(model *m, backend *be, const tokenizer *tok, dtype_t kv_type,
                    const sched_config *cfg, sched_emit_fn emit, void *emit_ctx, char *err,
                    size_t err_len) {
    sched *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->m = m, s->be = be, s->tok = tok;
    s->emit = emit, s->emit_ctx = emit_ctx;
    s->vocab = m->cfg.vocab_size;
    if (kvpool_init(&s->pool, m, be, cfg->max_total_tokens, cfg->page_size, kv_type,
                    cfg->max_running_requests + 1, cfg->context_length, err, err_len) != 0) {
        free(s);
        return NULL;
    }
    radix_init(&s->cache, &s->pool, cfg->page_size, cfg->disable_radix_cache);
    s->running = calloc((size_t)cfg->max_running_requests + 1, sizeof *s->running);
    s->row_buf = malloc((size_t)s->vocab * sizeof(float));
    s->work = malloc(sampler_work_bytes(s->vocab));
    s->marks = calloc((size_t)s->vocab, sizeof(int32_t));
    s->b_slots = calloc((size_t)cfg->max_running_requests + 1, sizeof *s->b_slots);
    s->stop_buf_cap = 4096;
    s->stop_buf = malloc((size_t)s->stop_buf_cap);
    if (!s->running || !s->row_buf || !s->work || !s->marks || !s->b_slots || !s->stop_buf ||
        grow_batch(s, 256) || grow_logits(s, 16)) {
        snprintf(err, err_len, "out of memory");
        sched_destroy(s);
        return NULL;
    }
    /* end-of-generation ids: the tokenizer's list, else the model's eos */
    if (tok) {
        size_t n;
        const int32_t *ids = tok_eos_ids(tok, &n);
        for (size_t i = 0; i < n && s->n_eos < 16; i++) s->eos_ids[s->n_eos++] = ids[i];
    }
    if (s->n_eos == 0 && m->cfg.eos_id >= 0) s->eos_ids[s->n_eos++] = m->cfg.eos_id;
    /* SGLang's defaults: start at 0.7 of max_new_tokens, decay to 0.1 over 600 steps */
    double c = cfg->schedule_conservativeness > 0 ? cfg->schedule_conservativeness : 1.0;
    s->init_ratio = 0.7 * c > 1.0 ? 1.0 : 0.7 * c;
    s->min_ratio = s->init_ratio * 0.14;
    s->ratio_decay = (s->init_ratio - s->min_ratio) / 600.0;
    s->new_token_ratio = s->init_ratio;
    sampler_rng_seed(&s->policy_rng, cfg->random_seed);
    s->window_start = time_now_s();
    return s;
}

void sched_destroy(sched *s) {
    if (!s) return;
    for (int i = 0; i < s->n_waiting; i++) sched_req_free(s->waiting[i]);
    for (int i = 0; i < s->n_running; i++) sched_req_free(s->running[i]);
    sched_pd_destroy(s);
    radix_destroy(&s->cache);
    kvpool_free_all(&s->pool, s->be);
    free(s->waiting), free(s->running), free(s->row_buf), free(s->work), free(s->marks);
    free(s->b_slots), free(s->stop_buf), free(s->b_tokens), free(s->b_pos), free(s->b_seq);
    free(s->b_rows), free(s->row_pos), free(s->row_req), free(s->logits);
    free(s);
}

const kv_pool *sched_pool(const sched *s) { return &s->pool; }
const radix_cache *sched_cache(const sched *s) { return &s->cache; }
int sched_n_queued(const sched *s) { return s->n_waiting; }
bool sched_has_work(const sched *s) {
    return s->n_waiting > 0 || s->n_running > 0 || sched_pd_pending(s) > 0;
}

int sched_push_waiting(sched *s, sched_req *r, bool front) {
    if (s->n_waiting == s->cap_waiting) {
        int cap = s->cap_waiting ? s->cap_waiting * 2 : 64;
        sched_req **w = realloc(s->waiting, (size_t)cap * sizeof *w);
        if (!w) return -1;
        s->waiting = w, s->cap_waiting = cap;
    }
    if (front) {
        memmove(s->waiting + 1, s->waiting, (size_t)s->n_waiting * sizeof *s->waiting);
        s->waiting[0] = r;
    } else {
        s->waiting[s->n_waiting] = r;
    }
    s->n_waiting++;
    return 0;
}

void sched_add(sched *s, sched_req *r) {
    r->seq_no = s->next_seq++;
    if (sched_pd_add(s, r)) return;
    if (s->cache.disabled) r->group->prompt_ready = true; /* nothing to share: no waiting */
    if (sched_push_waiting(s, r, false) != 0) {
        sched_emit(s, r, ENGINE_FINISH_ERROR, -1, NULL, 0, "out of memory queueing the request");
        sched_req_free(r);
    }
}

/* ---- KV of one request ---------------------------------------------------------------- */

/* Inserts the computed, page-aligned part of r into the radix cache and points r's row (and
 * lock) at the tree's copy, so later requests can share it while r keeps running. */
static void cache_unfinished(sched *s, sched_req *r) {
    int64_t P = s->cfg.page_size, L = r->kv_len / P * P;
    if (s->cache.disabled || L <= r->prefix_len) return;
    int32_t *row = kvpool_row(&s->pool, r->row);
    int64_t present = radix_insert(&s->cache, r->tokens, L, row);
    if (present < 0) return;
    kvpool_release(&s->pool, row, r->prefix_len, present); /* duplicates of cached KV */
    radix_node *node;
    int64_t m = radix_match_prefix(&s->cache, r->tokens, L, row, &node);
    if (m < 0) return; /* out of memory splitting: keep the old lock; row slots stay valid */
    radix_unlock(&s->cache, r->last_node);
    radix_lock(&s->cache, node);
    r->last_node = node;
    r->prefix_len = m;
}

/* Gives r's KV back: the computed page-aligned part to the radix cache (when insert), the rest
 * to the pool; unlocks its prefix and frees its row. */
void sched_release_kv(sched *s, sched_req *r, bool insert) {
    if (r->row < 0) return;
    int64_t P = s->cfg.page_size, L = r->prefix_len;
    int32_t *row = kvpool_row(&s->pool, r->row);
    if (insert && !s->cache.disabled && r->kv_len / P * P > r->prefix_len) {
        int64_t present = radix_insert(&s->cache, r->tokens, r->kv_len / P * P, row);
        if (present >= 0) {
            kvpool_release(&s->pool, row, r->prefix_len, present);
            L = r->kv_len / P * P;
        }
    }
    kvpool_release(&s->pool, row, L, r->kv_alloc);
    radix_unlock(&s->cache, r->last_node);
    kvpool_row_free(&s->pool, r->row);
    r->row = -1;
    r->last_node = NULL;
    r->prefix_len = r->kv_len = r->kv_alloc = 0;
    if (r->index == 0) r->group->prompt_ready = true;
}

static void remove_running(sched *s, sched_req *r) {
    for (int i = 0; i < s->n_running; i++)
        if (s->running[i] == r) {
            memmove(s->running + i, s->running + i + 1,
                    (size_t)(s->n_running - i - 1) * sizeof *s->running);
            s->n_running--;
            break;
        }
    if (s->chunked == r) s->chunked = NULL;
}

/* Makes sure `pages` pages are free, evicting cached prefixes if needed. */
bool sched_ensure_pages(sched *s, int64_t pages) {
    if (pages <= s->pool.n_free_pages) return true;
    radix_evict(&s->cache, (pages - s->pool.n_free_pages) * s->cfg.page_size);
    return pages <= s->pool.n_free_pages;
}

int64_t sched_reserve_tokens(const sched *s, const sched_req *r) {
    int64_t left = r->sp.max_new_tokens - (r->n_tokens - r->n_prompt);
    if (left > MAX_RESERVE_PER_REQ) left = MAX_RESERVE_PER_REQ;
    return left > 0 ? (int64_t)((double)left * s->new_token_ratio) : 0;
}

/* ---- retraction ------------------------------------------------------------------------ */

/* The request to pause when decode runs out of KV: SGLang's choice, the one with the fewest
 * output tokens (least work lost), the longest prompt among equals. */
static sched_req *retract_victim(sched *s) {
    sched_req *best = NULL;
    for (int i = 0; i < s->n_running; i++) {
        sched_req *r = s->running[i];
        int64_t out = r->n_tokens - r->n_prompt;
        if (!best || out < best->n_tokens - best->n_prompt ||
            (out == best->n_tokens - best->n_prompt && r->n_prompt > best->n_prompt))
            best = r;
    }
    return best;
}

static void retract(sched *s, sched_req *r) {
    sched_release_kv(s, r, true);
    remove_running(s, r);
    r->prefilling = true;
    r->chunk = 0;
    if (sched_push_waiting(s, r, true) != 0) {
        sched_emit(s, r, ENGINE_FINISH_ERROR, -1, NULL, 0, "out of memory requeueing");
        sched_req_free(r);
    }
    s->retractions++;
    /* be conservative again after running out */
    if (s->new_token_ratio < s->init_ratio) s->new_token_ratio = s->init_ratio;
    s->new_token_ratio = s->new_token_ratio + 0.3 > 1.0 ? 1.0 : s->new_token_ratio + 0.3;
}

/* Gives every decoding request a slot for its next token, retracting requests while the pool
 * (free plus evictable) cannot hold them all. */
static void schedule_decode(sched *s) {
    for (;;) {
        int64_t need = 0;
        for (int i = 0; i < s->n_running; i++) {
            sched_req *r = s->running[i];
            if (!r->prefilling) need += kvpool_pages_needed(&s->pool, r->kv_alloc, r->n_tokens);
        }
        if (sched_ensure_pages(s, need)) break;
        sched_req *v = retract_victim(s);
        if (!v) break;
        log_debug("retracting request %s (%lld tokens)", v->rid, (long long)v->n_tokens);
        retract(s, v);
    }
    for (int i = 0; i < s->n_running; i++) {
        sched_req *r = s->running[i];
        r->chunk = 0;
        if (r->prefilling) continue;
        kvpool_extend(&s->pool, kvpool_row(&s->pool, r->row), r->kv_alloc, r->n_tokens);
        r->kv_alloc = r->n_tokens;
        r->chunk = 1;
    }
}

/* ---- admission (SGLang's PrefillAdder) --------------------------------------------------- */

typedef struct {
    int64_t rem_total, rem_prefill, rem_chunk;
    int n_prefill;
} budget;

/* Chunk of r to compute now: all of it, or as much of the chunk budget as whole pages allow. */
static int64_t chunk_for(const sched *s, const sched_req *r, const budget *b) {
    int64_t fill = r->n_tokens - r->kv_len;
    if (fill <= b->rem_chunk) return fill;
    return b->rem_chunk / s->cfg.page_size * s->cfg.page_size;
}

static bool take_chunk(sched *s, sched_req *r, int64_t c) {
    int64_t pages = kvpool_pages_needed(&s->pool, r->kv_alloc, r->kv_len + c);
    if (!sched_ensure_pages(s, pages)) return false;
    kvpool_extend(&s->pool, kvpool_row(&s->pool, r->row), r->kv_alloc, r->kv_len + c);
    r->kv_alloc = r->kv_len + c;
    r->chunk = c;
    return true;
}

/* True when r shares its next IN_BATCH_PREFIX uncached tokens with a request admitted in this
 * step: it waits a turn and then finds them in the radix cache instead of computing them. */
static bool shares_in_batch(const sched *s, const sched_req *r, int64_t matched) {
    if (s->cache.disabled || r->n_tokens - matched < IN_BATCH_PREFIX) return false;
    int64_t end = matched + IN_BATCH_PREFIX;
    for (int i = 0; i < s->n_running; i++) {
        const sched_req *o = s->running[i];
        if (!o->prefilling || o->chunk == 0 || o->n_tokens < end) continue;
        if (!memcmp(o->tokens, r->tokens, (size_t)end * sizeof(int32_t))) return true;
    }
    return false;
}

static void admit_waiting(sched *s, budget *b) {
    if (s->n_waiting == 0) return;
    sched_order_waiting(s);
    int kept = 0;
    bool stop = false;
    for (int i = 0; i < s->n_waiting; i++) {
        sched_req *r = s->waiting[i];
        bool admitted = false;
        if (!stop && s->n_running < s->cfg.max_running_requests && b->rem_prefill > 0 &&
            (r->index == 0 || r->group->prompt_ready)) {
            int row = kvpool_row_alloc(&s->pool);
            if (row < 0) {
                stop = true;
            } else {
                int32_t *slots = kvpool_row(&s->pool, row);
                int64_t limit = r->n_tokens - 1;
                if (r->sp.logprob_start_len >= 0 && !r->prompt_lp_done && r->lp_start - 1 < limit)
                    limit = r->lp_start - 1;
                radix_node *node;
                int64_t m = radix_match_prefix(&s->cache, r->tokens, limit, slots, &node);
                if (m < 0) m = 0, node = NULL;
                int64_t fill = r->n_tokens - m;
                if (fill + sched_reserve_tokens(s, r) > b->rem_total ||
                    (fill > b->rem_prefill && b->n_prefill > 0)) {
                    stop = true;
                } else if (!shares_in_batch(s, r, m) &&
                           !(fill > b->rem_chunk && s->chunked)) {
                    radix_lock(&s->cache, node);
                    r->row = row, r->last_node = node;
                    r->prefix_len = r->kv_len = r->kv_alloc = m;
                    int64_t c = chunk_for(s, r, b);
                    if (c > 0 && take_chunk(s, r, c)) {
                        admitted = true;
                    } else {
                        radix_unlock(&s->cache, node);
                        r->row = -1, r->last_node = NULL;
                        r->prefix_len = r->kv_len = r->kv_alloc = 0;
                        stop = true;
                    }
                }
                if (!admitted) kvpool_row_free(&s->pool, row);
                if (admitted) {
                    if (!r->admitted_once) {
                        r->cached_tokens = m;
                        s->prompt_tokens_total += r->n_prompt;
                        s->cached_tokens_total += m;
                        r->admitted_once = true;
                    }
                    s->running[s->n_running++] = r;
                    if (r->chunk < fill) s->chunked = r;
                    b->rem_total -= fill + sched_reserve_tokens(s, r);
                    b->rem_prefill -= r->chunk;
                    b->rem_chunk -= r->chunk;
                    b->n_prefill++;
                }
            }
        }
        if (!admitted) s->waiting[kept++] = r;
    }
    s->n_waiting = kept;
}

static void schedule_prefill(sched *s) {
    budget b;
    b.rem_total = kvpool_free_tokens(&s->pool) + radix_evictable_size(&s->cache);
    for (int i = 0; i < s->n_running; i++) b.rem_total -= sched_reserve_tokens(s, s->running[i]);
    b.rem_prefill = s->cfg.max_prefill_tokens;
    b.rem_chunk = s->cfg.chunked_prefill_size > 0 ? s->cfg.chunked_prefill_size : INT64_MAX / 4;
    b.n_prefill = 0;
    /* the request part-way through its prompt goes first */
    sched_req *r = s->chunked;
    if (r) {
        int64_t c = chunk_for(s, r, &b);
        if (c > 0 && take_chunk(s, r, c)) {
            b.rem_prefill -= c;
            b.rem_chunk -= c;
            b.rem_total -= c;
            b.n_prefill++;
            if (r->kv_len + c == r->n_tokens) s->chunked = NULL;
        }
    }
    /* a retracted request resumes like a new one, from what the cache still holds */
    admit_waiting(s, &b);
}

/* ---- the step ---------------------------------------------------------------------------- */

void sched_finish_req(sched *s, sched_req *r, engine_finish f, int32_t tok, const char *stop,
                       int trim, const char *error) {
    if (r->pd_live) sched_pd_end(s, r, error ? error : "the request was aborted");
    sched_release_kv(s, r, f != ENGINE_FINISH_ERROR);
    remove_running(s, r);
    sched_emit(s, r, f, tok, stop, trim, error);
    if (f == ENGINE_FINISH_ABORT) s->requests_aborted++;
    else s->requests_finished++;
    sched_req_free(r);
}

/* Position p of r gives logits: its last token (the next one is sampled), or a prompt position
 * whose successor's logprob was asked for. */
static bool needs_logits(const sched_req *r, int64_t p) {
    if (p == r->n_tokens - 1) return true;
    return r->sp.logprob_start_len >= 0 && !r->prompt_lp_done && p >= r->lp_start - 1 &&
           p < r->n_prompt - 1;
}

/* SGLang's per-batch lines at info level: every prefill batch, every decode_log_interval-th
 * decode pass. */
static void log_batch(sched *s, int n_prefill, int64_t prefill_tokens, int64_t cached,
                      int n_decode) {
    double usage = 1.0 - (double)kvpool_free_tokens(&s->pool) / (double)kvpool_size(&s->pool);
    if (n_prefill)
        log_info("Prefill batch. #new-seq: %d, #new-token: %lld, #cached-token: %lld, token "
                 "usage: %.2f, #running-req: %d, #queue-req: %d", n_prefill,
                 (long long)prefill_tokens, (long long)cached, usage, n_decode, s->n_waiting);
    if (!n_decode) return;
    s->decode_passes++;
    int every = s->cfg.decode_log_interval;
    if (every > 0 && s->decode_passes % every == 0) {
        int64_t tokens = 0;
        for (int i = 0; i < s->n_running; i++) tokens += s->running[i]->kv_alloc;
        log_info("Decode batch. #running-req: %d, #token: %lld, token usage: %.2f, gen "
                 "throughput (token/s): %.2f, #queue-req: %d", n_decode, (long long)tokens,
                 usage, s->gen_tput, s->n_waiting);
    }
}

int sched_step(sched *s) {
    if (!sched_has_work(s)) return -1;
    sched_pd_poll(s);
    schedule_decode(s);
    schedule_prefill(s);
    int64_t T = 0, n_rows = 0;
    int n_seq = 0, n_decode = 0, n_prefill = 0;
    for (int i = 0; i < s->n_running; i++) {
        sched_req *r = s->running[i];
        T += r->chunk;
        for (int64_t p = r->kv_len; p < r->kv_len + r->chunk; p++) n_rows += needs_logits(r, p);
    }
    if (T == 0) return -1;
    if (grow_batch(s, T) != 0 || grow_logits(s, n_rows) != 0) {
        for (int i = s->n_running - 1; i >= 0; i--)
            sched_finish_req(s, s->running[i], ENGINE_FINISH_ERROR, -1, NULL, 0,
                       "out of memory for the batch");
        return 0;
    }
    int64_t t = 0, rows = 0, prefill_tokens = 0, cached = 0;
    for (int i = 0; i < s->n_running; i++) {
        sched_req *r = s->running[i];
        if (r->chunk == 0) continue;
        int32_t *row = kvpool_row(&s->pool, r->row);
        s->b_slots[n_seq] = row;
        if (r->prefilling) {
            n_prefill++;
            prefill_tokens += r->chunk;
            if (r->kv_len == r->prefix_len) cached += r->prefix_len; /* its first chunk */
        } else {
            n_decode++;
        }
        for (int64_t p = r->kv_len; p < r->kv_len + r->chunk; p++, t++) {
            s->b_tokens[t] = r->tokens[p];
            s->b_pos[t] = (int32_t)p;
            s->b_seq[t] = n_seq;
            if (needs_logits(r, p)) {
                s->b_rows[rows] = (int32_t)t;
                s->row_req[rows] = r;
                s->row_pos[rows] = (int32_t)p;
                rows++;
            }
        }
        n_seq++;
    }
    log_batch(s, n_prefill, prefill_tokens, cached, n_decode);
    model_batch mb = {T, s->b_tokens, s->b_pos, s->b_seq, s->b_slots, rows, s->b_rows};
    char err[256];
    s->forward_passes++;
    if (n_prefill && n_decode) s->mixed_batches++;
    if (model_forward(s->m, s->be, &s->pool.kv, &mb, s->logits, err, sizeof err) != 0) {
        log_error("forward pass failed: %s", err);
        for (int i = s->n_running - 1; i >= 0; i--)
            if (s->running[i]->chunk)
                sched_finish_req(s, s->running[i], ENGINE_FINISH_ERROR, -1, NULL, 0, err);
        return 0;
    }
    for (int64_t i = 0; i < rows; i++) {
        sched_req *r = s->row_req[i];
        const float *l = s->logits + i * (int64_t)s->vocab;
        if (s->row_pos[i] == r->n_tokens - 1) {
            sched_sample(s, r, l);
            r->sampled = true;
        }
        else sched_prompt_logprob(s, r, s->row_pos[i], l);
    }
    int64_t generated = 0;
    for (int i = s->n_running - 1; i >= 0; i--) {
        sched_req *r = s->running[i];
        if (r->chunk == 0) continue;
        r->kv_len += r->chunk;
        r->chunk = 0;
        if (!r->sampled) { /* a chunk of a long prompt */
            s->chunked_prefills++;
            cache_unfinished(s, r);
            continue;
        }
        r->sampled = false;
        generated++;
        if (r->prefilling) {
            r->prefilling = false;
            r->prompt_lp_done = true;
            cache_unfinished(s, r);
            if (r->index == 0) r->group->prompt_ready = true;
            if (sched_pd_prefilled(s, r)) continue;
        }
        int32_t tok;
        const char *stop;
        int trim;
        engine_finish f = sched_check_finish(s, r, &tok, &stop, &trim);
        if (f != ENGINE_FINISH_NONE) {
            sched_finish_req(s, r, f, tok, stop, trim, NULL);
        } else if (r->n_tokens - r->n_prompt - r->n_emitted >= s->cfg.stream_interval) {
            sched_emit(s, r, ENGINE_FINISH_NONE, -1, NULL, 0, NULL);
        }
    }
    s->generated_tokens_total += generated;
    s->window_tokens += generated;
    double now = time_now_s();
    if (now - s->window_start >= 2.0) {
        s->gen_tput = (double)s->window_tokens / (now - s->window_start);
        s->window_start = now;
        s->window_tokens = 0;
    }
    if (n_decode && s->new_token_ratio > s->min_ratio) {
        s->new_token_ratio -= s->ratio_decay;
        if (s->new_token_ratio < s->min_ratio) s->new_token_ratio = s->min_ratio;
    }
    return 0;
}

/* ---- aborts, flush, stats ------------------------------------------------------------------ */

static bool matches(const sched_req *r, uint64_t handle, const char *rid) {
    return handle ? r->handle == handle : (rid && !strcmp(r->rid, rid));
}

int sched_abort(sched *s, uint64_t handle, const char *rid) {
    int found = 0;
    for (int i = s->n_running - 1; i >= 0; i--)
        if (matches(s->running[i], handle, rid)) {
            sched_finish_req(s, s->running[i], ENGINE_FINISH_ABORT, -1, NULL, 0, NULL);
            found++;
        }
    int kept = 0;
    for (int i = 0; i < s->n_waiting; i++) {
        sched_req *r = s->waiting[i];
        if (matches(r, handle, rid)) {
            if (r->pd_live) sched_pd_end(s, r, "the request was aborted");
            sched_emit(s, r, ENGINE_FINISH_ABORT, -1, NULL, 0, NULL);
            s->requests_aborted++;
            sched_req_free(r);
            found++;
        } else {
            s->waiting[kept++] = r;
        }
    }
    s->n_waiting = kept;
    return found + sched_pd_abort(s, handle, rid);
}

void sched_abort_all(sched *s) {
    while (s->n_running) sched_abort(s, s->running[0]->handle, NULL);
    while (s->n_waiting) sched_abort(s, s->waiting[0]->handle, NULL);
    while (s->n_pd_boot) sched_abort(s, s->pd_boot[0]->handle, NULL);
}

int sched_flush(sched *s) {
    if (sched_has_work(s)) return -1;
    radix_reset(&s->cache);
    return 0;
}

void sched_fill_stats(const sched *s, engine_stats *st) {
    st->running = s->n_running;
    st->queued = s->n_waiting;
    st->max_total_num_tokens = kvpool_size(&s->pool);
    st->max_running_requests = s->cfg.max_running_requests;
    st->max_prefill_tokens = s->cfg.max_prefill_tokens;
    st->chunked_prefill_size = s->cfg.chunked_prefill_size;
    st->page_size = s->cfg.page_size;
    st->context_length = s->cfg.context_length;
    st->vocab_size = s->vocab;
    st->used_tokens = kvpool_size(&s->pool) - kvpool_free_tokens(&s->pool);
    st->cache_tokens = s->cache.total_size;
    st->token_usage = (double)st->used_tokens / (double)kvpool_size(&s->pool);
    st->cache_hit_rate = s->prompt_tokens_total
                             ? (double)s->cached_tokens_total / (double)s->prompt_tokens_total
                             : 0;
    st->gen_throughput = s->gen_tput;
    st->prompt_tokens_total = s->prompt_tokens_total;
    st->cached_tokens_total = s->cached_tokens_total;
    st->generated_tokens_total = s->generated_tokens_total;
    st->forward_passes = s->forward_passes;
    st->chunked_prefills = s->chunked_prefills;
    st->retractions = s->retractions;
    st->evicted_tokens = s->cache.evicted_tokens;
    st->mixed_batches = s->mixed_batches;
    st->requests_finished = s->requests_finished;
    st->requests_aborted = s->requests_aborted;
    sched_pd_fill_stats(s, st);
}
