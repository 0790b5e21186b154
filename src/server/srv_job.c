/* The life of a job: one HTTP request fanned out to one engine handle per prompt (each with n
 * samples), the engine's token events folded into per-choice state (ids, logprobs, decoded
 * text), and the hand-off to the native or OpenAI reply builders. A client that disconnects
 * aborts its handles at once, so its KV is freed on the scheduler's next turn; the job itself
 * lives until the engine has confirmed every handle done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "server/srv_internal.h"

srv_job *srv_job_new(srv *s, http_req *req, srv_job_kind kind) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->s = s;
    j->req = req;
    j->kind = kind;
    j->n = 1;
    j->skip_special = true;
    j->logprob_start_len = -1;
    j->created = (long)time(NULL);
    j->t_start = time_now_s();
    engine_sampling_default(&j->sp);
    s->n_jobs++;
    return j;
}

void srv_job_free(srv_job *j) {
    if (!j) return;
    for (int i = 0; i < j->n_prompts; i++) free(j->prompts[i].ids), free(j->prompts[i].text);
    free(j->prompts);
    for (int i = 0; i < j->n_choices; i++) {
        srv_choice *c = &j->choices[i];
        free(c->ids), free(c->lp), free(c->top_ids), free(c->top_lp), free(c->text);
        free(c->matched_stop), free(c->prompt_lp), free(c->prompt_top_ids);
        free(c->prompt_top_lp);
        tok_detok_free(c->detok);
    }
    free(j->choices);
    for (int i = 0; i < j->sp.n_stop; i++) free(j->stop[i]);
    free(j->stop), free(j->stop_ids), free(j->bias), free(j->handles);
    for (int i = 0; j->boot && i < j->n_prompts; i++) free((char *)j->boot[i].host);
    free(j->boot);
    if (j->timer) event_free(j->timer);
    j->s->n_jobs--;
    free(j);
}

void srv_new_id(srv *s, const char *prefix, char *out, size_t len) {
    /* xorshift64*: ids need to be unique, not secret */
    char hex[33];
    for (int k = 0; k < 2; k++) {
        s->id_rng ^= s->id_rng >> 12, s->id_rng ^= s->id_rng << 25, s->id_rng ^= s->id_rng >> 27;
        snprintf(hex + 16 * k, 17, "%016llx",
                 (unsigned long long)(s->id_rng * 2685821657736338717ULL));
    }
    snprintf(out, len, "%s%s", prefix, hex);
}

static int slot_add(srv *s, uint64_t h, srv_job *j, int prompt) {
    if (s->n_slots == s->cap_slots) {
        int cap = s->cap_slots ? s->cap_slots * 2 : 64;
        srv_handle_slot *n = realloc(s->slots, (size_t)cap * sizeof *n);
        if (!n) return -1;
        s->slots = n, s->cap_slots = cap;
    }
    s->slots[s->n_slots++] = (srv_handle_slot){h, j, prompt};
    return 0;
}

static srv_handle_slot *slot_find(srv *s, uint64_t h) {
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].handle == h) return &s->slots[i];
    return NULL;
}

static void slot_remove(srv *s, srv_handle_slot *sl) { *sl = s->slots[--s->n_slots]; }

static void abort_job(srv_job *j) {
    for (int i = 0; i < j->n_prompts; i++)
        if (j->handles[i]) engine_abort(j->s->eng, j->handles[i]);
}

static void on_disconnect(http_req *r, const char *why, void *ud) {
    (void)r;
    srv_job *j = ud;
    j->gone = true;
    log_debug("request %s: client gone (%s): aborting", j->id, why);
    abort_job(j);
}

/* The job is done with once its reply is sent and the engine has let go of it. */
static void maybe_free(srv_job *j) {
    if (j->replied && j->live == 0) srv_job_free(j);
}

int srv_job_submit(srv_job *j) {
    srv *s = j->s;
    j->n_choices = j->n_prompts * j->n;
    j->choices = calloc((size_t)j->n_choices, sizeof *j->choices);
    j->handles = calloc((size_t)j->n_prompts, sizeof *j->handles);
    if (!j->choices || !j->handles) {
        http_reply_error(j->req, 500, NULL, NULL, NULL, "out of memory");
        srv_job_free(j);
        return -1;
    }
    j->sp.n = j->n;
    j->sp.return_logprob = j->return_logprob;
    j->sp.top_logprobs_num = j->return_logprob ? j->top_logprobs_num : 0;
    j->sp.logprob_start_len = j->return_logprob ? j->logprob_start_len : -1;
    for (int i = 0; i < j->n_choices; i++) {
        srv_choice *c = &j->choices[i];
        c->matched_token = -1;
        if (s->tok) c->detok = tok_detok_new(s->tok, j->skip_special);
        c->cap_text = 64;
        c->text = malloc(c->cap_text);
        if (!c->text || (s->tok && !c->detok)) {
            http_reply_error(j->req, 500, NULL, NULL, NULL, "out of memory");
            srv_job_free(j);
            return -1;
        }
        c->text[0] = 0;
    }
    for (int p = 0; p < j->n_prompts; p++) {
        char err[512] = "", rid[80];
        const char *use_rid = NULL;
        if (j->rid[0]) {
            if (j->n_prompts > 1) snprintf(rid, sizeof rid, "%s-%d", j->rid, p), use_rid = rid;
            else use_rid = j->rid;
        }
        int64_t h = engine_submit_pd(s->eng, j->prompts[p].ids, j->prompts[p].n, &j->sp,
                                     use_rid, j->boot ? &j->boot[p] : NULL, err, sizeof err);
        if (h < 0 || slot_add(s, (uint64_t)h, j, p) != 0) {
            int status = h == ENGINE_EOVERLOADED || h == ENGINE_ENOTREADY ? 503
                         : h == ENGINE_EINVAL                             ? 400
                                                                          : 500;
            if (h >= 0) {
                engine_abort(s->eng, (uint64_t)h);
                snprintf(err, sizeof err, "out of memory");
            }
            http_reply_error(j->req, status, NULL, NULL, NULL, "%s", err);
            j->replied = j->failed = true;
            if (h >= 0) j->handles[p] = 0; /* untracked: its events are dropped */
            abort_job(j);
            maybe_free(j);
            return -1;
        }
        j->handles[p] = (uint64_t)h;
        j->live++;
    }
    s->metrics.requests += (uint64_t)j->n_choices;
    http_req_on_disconnect(j->req, on_disconnect, j);
    return 0;
}

static int append_text(srv_choice *c, const char *t, size_t n) {
    if (c->len + n + 1 > c->cap_text) {
        size_t cap = c->cap_text * 2;
        while (cap < c->len + n + 1) cap *= 2;
        char *p = realloc(c->text, cap);
        if (!p) return -1;
        c->text = p, c->cap_text = cap;
    }
    memcpy(c->text + c->len, t, n);
    c->len += n;
    c->text[c->len] = 0;
    return 0;
}

static int grow(void **p, size_t count, size_t size) {
    void *n = realloc(*p, (count ? count : 1) * size);
    if (!n) return -1;
    *p = n;
    return 0;
}

/* Folds one event into its choice. Returns -1 when out of memory. */
static int absorb(srv_job *j, srv_choice *c, engine_event *ev) {
    int n = c->n_ids + ev->n_ids, k = j->top_logprobs_num;
    if (n > c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        while (cap < n) cap *= 2;
        if (grow((void **)&c->ids, (size_t)cap, sizeof(int32_t))) return -1;
        if (j->return_logprob) {
            if (grow((void **)&c->lp, (size_t)cap, sizeof(float))) return -1;
            if (k && (grow((void **)&c->top_ids, (size_t)cap * k, sizeof(int32_t)) ||
                      grow((void **)&c->top_lp, (size_t)cap * k, sizeof(float))))
                return -1;
        }
        c->cap = cap;
    }
    for (int i = 0; i < ev->n_ids; i++) {
        c->ids[c->n_ids + i] = ev->ids[i];
        if (j->return_logprob && ev->logprobs) {
            c->lp[c->n_ids + i] = ev->logprobs[i];
            if (k && ev->top_ids && ev->n_top == k) {
                memcpy(c->top_ids + (size_t)(c->n_ids + i) * k, ev->top_ids + (size_t)i * k,
                       (size_t)k * sizeof(int32_t));
                memcpy(c->top_lp + (size_t)(c->n_ids + i) * k, ev->top_logprobs + (size_t)i * k,
                       (size_t)k * sizeof(float));
            }
        }
        if (c->detok) {
            size_t len;
            const char *t = tok_detok_push(c->detok, ev->ids[i], &len);
            if (t && append_text(c, t, len)) return -1;
        }
    }
    c->n_ids = n;
    if (ev->n_prompt_lp > 0 && !c->prompt_lp) {
        c->n_prompt_lp = ev->n_prompt_lp, c->prompt_lp_start = ev->prompt_lp_start;
        c->prompt_lp = ev->prompt_logprobs, ev->prompt_logprobs = NULL;
        c->prompt_top_ids = ev->prompt_top_ids, ev->prompt_top_ids = NULL;
        c->prompt_top_lp = ev->prompt_top_logprobs, ev->prompt_top_logprobs = NULL;
    }
    c->prompt_tokens = ev->prompt_tokens;
    c->completion_tokens = ev->completion_tokens;
    c->cached_tokens = ev->cached_tokens;
    if (ev->finish != ENGINE_FINISH_NONE) {
        if (c->detok) {
            size_t len;
            const char *t = tok_detok_flush(c->detok, &len);
            if (t && append_text(c, t, len)) return -1;
        }
        size_t trim = ev->stop_trim_bytes > 0 ? (size_t)ev->stop_trim_bytes : 0;
        c->len = trim < c->len ? c->len - trim : 0;
        c->text[c->len] = 0;
        if (c->sent > c->len) c->sent = c->len;
        c->finish = ev->finish;
        c->matched_token = ev->matched_token;
        c->matched_stop = ev->matched_stop, ev->matched_stop = NULL;
        snprintf(c->error, sizeof c->error, "%s", ev->error);
    }
    return 0;
}

bool srv_prompt_lp(const srv_job *j, const srv_choice *c, int64_t pos, float *lp,
                   const int32_t **top_ids, const float **top_lp) {
    int64_t i = pos - c->prompt_lp_start;
    *top_ids = NULL, *top_lp = NULL;
    if (pos <= 0 || !c->prompt_lp || i < 0 || i >= c->n_prompt_lp) return false;
    *lp = c->prompt_lp[i];
    int k = j->top_logprobs_num;
    if (k && c->prompt_top_ids && c->prompt_top_lp)
        *top_ids = c->prompt_top_ids + i * k, *top_lp = c->prompt_top_lp + i * k;
    return true;
}

size_t srv_choice_safe_len(const srv_job *j, const srv_choice *c) {
    if (c->done || j->max_stop_len <= 1) return c->len;
    size_t hold = j->max_stop_len - 1;
    size_t safe = c->len > hold ? c->len - hold : 0;
    while (safe > c->sent && ((unsigned char)c->text[safe] & 0xC0) == 0x80) safe--;
    return safe < c->sent ? c->sent : safe;
}

static void record_metrics(srv *s, srv_job *j, srv_choice *c, engine_event *ev, double now) {
    srv_metrics *m = &s->metrics;
    if (ev->n_ids > 0) {
        if (c->t_first == 0) {
            c->t_first = now;
            srv_hist_observe(&m->ttft, now - j->t_start);
        } else if (ev->n_ids > 0) {
            srv_hist_observe(&m->itl, (now - c->t_last) / ev->n_ids);
        }
        c->t_last = now;
    }
    m->generation_tokens += (uint64_t)ev->n_ids;
    if (ev->finish != ENGINE_FINISH_NONE) {
        srv_hist_observe(&m->e2e, now - j->t_start);
        if (ev->index == 0 || j->n == 1) {
            m->prompt_tokens += (uint64_t)ev->prompt_tokens;
            m->cached_tokens += (uint64_t)ev->cached_tokens;
        }
        if (ev->finish == ENGINE_FINISH_ABORT) m->aborted++;
    }
}

static void finish_job(srv_job *j) {
    if (j->replied) return;
    j->replied = true;
    if (j->kind == JOB_NATIVE || j->kind == JOB_HEALTH) srv_native_finish(j);
    else srv_openai_finish(j);
}

static void on_event(srv *s, engine_event *ev) {
    srv_handle_slot *sl = slot_find(s, ev->handle);
    if (!sl) return;
    srv_job *j = sl->job;
    int p = sl->prompt;
    if (ev->handle_done) {
        slot_remove(s, sl);
        j->handles[p] = 0;
        j->live--;
    }
    if (ev->index < 0 || ev->index >= j->n) return;
    srv_choice *c = &j->choices[p * j->n + ev->index];
    if (c->done) {
        maybe_free(j);
        return;
    }
    record_metrics(s, j, c, ev, time_now_s());
    if (absorb(j, c, ev) != 0) {
        c->finish = ENGINE_FINISH_ERROR;
        snprintf(c->error, sizeof c->error, "out of memory");
        engine_abort(s->eng, ev->handle);
    }
    if (c->finish != ENGINE_FINISH_NONE) {
        c->done = true;
        j->n_done++;
        if (s->args.log_requests)
            log_info("request %s finished: prompt_tokens=%lld completion_tokens=%lld "
                     "cached_tokens=%lld%s%.*s", j->id, (long long)c->prompt_tokens,
                     (long long)c->completion_tokens, (long long)c->cached_tokens,
                     s->args.log_requests_level >= 2 ? " text=" : "",
                     s->args.log_requests_level >= 2 ? (int)(c->len < 200 ? c->len : 200) : 0,
                     c->text);
    }
    if (!j->replied && !j->gone && j->stream) {
        if (j->kind == JOB_NATIVE) srv_native_progress(j, c);
        else if (j->kind != JOB_HEALTH) srv_openai_progress(j, c);
    }
    if (j->n_done == j->n_choices) finish_job(j);
    maybe_free(j);
}

void srv_pump_events(srv *s) {
    engine_event ev;
    for (int budget = 0; budget < 4096 && engine_poll_event(s->eng, &ev) == 1; budget++) {
        on_event(s, &ev);
        engine_event_clear(&ev);
    }
}

void srv_abort_all(srv *s) {
    for (int i = 0; i < s->n_slots; i++) engine_abort(s->eng, s->slots[i].handle);
}
