/* The scheduler's side of PD disaggregation (SGLang's disaggregation/prefill.py and
 * decode.py): two more queues of requests next to waiting and running.
 *
 * Prefill: a request waits in the bootstrap queue until the decode server has said where its
 * KV goes (room WAITING), then runs like any other (chunked prefill, radix cache); when its
 * first token is sampled it leaves the running batch for the inflight queue, its slots still
 * locked, while the transfer thread writes them; on SUCCESS it ends (the radix cache keeps its
 * prefix), on FAILED it ends with the error.
 * Decode: a request waits in the preallocation queue until its prefill rank is known and KV for
 * its prompt plus --num-reserved-decode-tokens fits; then its slots and an aux record are set
 * aside and sent to prefill, and it waits in the transfer queue; on SUCCESS it joins the
 * running batch with its prompt's KV and first token as if it had computed them.
 * Requests of SGLang's fake bootstrap host run as ordinary requests (a prefill one ends at its
 * first token). Everything here runs on the scheduler thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "disagg/pd.h"
#include "runtime/sched_internal.h"

int sched_pd_attach(sched *s, pd_manager *m, int mode, int reserved, double bootstrap_timeout_s,
                    double waiting_timeout_s, char *err, size_t err_len) {
    s->pd = m;
    s->pd_mode = mode;
    s->pd_reserved = reserved;
    s->pd_bootstrap_timeout = bootstrap_timeout_s;
    s->pd_waiting_timeout = waiting_timeout_s;
    s->cap_pd = s->cfg.max_running_requests + 1;
    s->pd_boot = calloc((size_t)s->cap_pd, sizeof *s->pd_boot);
    s->pd_xfer = calloc((size_t)s->cap_pd, sizeof *s->pd_xfer);
    s->aux_free = malloc((size_t)s->cap_pd * sizeof *s->aux_free);
    if (!s->pd_boot || !s->pd_xfer || !s->aux_free) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    for (int i = 0; i < s->cap_pd; i++) s->aux_free[i] = s->cap_pd - 1 - i;
    s->n_aux_free = s->cap_pd;
    return 0;
}

int sched_pd_pending(const sched *s) { return s->n_pd_boot + s->n_pd_xfer; }

static void list_remove(sched_req **list, int *n, int i) {
    memmove(list + i, list + i + 1, (size_t)(*n - i - 1) * sizeof *list);
    (*n)--;
}

/* Ends a request that never ran (queued in PD): its event and its memory. */
static void end_queued(sched *s, sched_req *r, engine_finish f, const char *error) {
    if (r->pd_live) sched_pd_end(s, r, error ? error : "the request was aborted");
    sched_emit(s, r, f, -1, NULL, 0, error);
    if (f == ENGINE_FINISH_ABORT) s->requests_aborted++;
    else s->requests_finished++;
    sched_req_free(r);
}

bool sched_pd_add(sched *s, sched_req *r) {
    if (!s->pd || !r->pd) return false;
    if (r->pd_fake) return false; /* an ordinary request (sched_pd_prefilled ends it) */
    char err[300];
    /* the bootstrap queue is bounded like the running batch: beyond it, requests wait their turn
     * in the waiting queue's place (the room is registered when one leaves) */
    if (s->n_pd_boot >= s->cap_pd) {
        end_queued(s, r, ENGINE_FINISH_ERROR, "too many PD requests waiting for bootstrap");
        return true;
    }
    int rc = s->pd_mode == PD_PREFILL ? pd_sender_new(s->pd, r->pd_room)
                                      : pd_receiver_new(s->pd, r->pd_room, r->pd_host, r->pd_port);
    if (rc != 0) {
        snprintf(err, sizeof err, "bootstrap room %llu is already in use",
                 (unsigned long long)r->pd_room);
        end_queued(s, r, ENGINE_FINISH_ERROR, err);
        return true;
    }
    r->pd_live = true;
    r->pd_t0 = time_now_s();
    s->pd_boot[s->n_pd_boot++] = r;
    return true;
}

void sched_pd_end(sched *s, sched_req *r, const char *why) {
    if (!r->pd_live) return;
    r->pd_live = false;
    if (s->pd_mode == PD_PREFILL) pd_sender_abort(s->pd, r->pd_room, why);
    else pd_drop(s->pd, r->pd_room);
}

/* ---- prefill ---- */

bool sched_pd_prefilled(sched *s, sched_req *r) {
    if (s->pd_mode != PD_PREFILL || !r->pd) return false;
    if (r->pd_fake || !r->pd_live) { /* nothing to send: the first token is the answer */
        sched_finish_req(s, r, ENGINE_FINISH_LENGTH, -1, NULL, 0, NULL);
        return true;
    }
    pd_aux aux;
    memset(&aux, 0, sizeof aux);
    aux.room = r->pd_room;
    aux.n_prompt = r->n_prompt;
    aux.cached_tokens = r->cached_tokens;
    aux.first_token = r->tokens[r->n_prompt];
    if (r->out_lp) {
        aux.logprob = r->out_lp[0];
        int k = r->sp.top_logprobs_num < PD_AUX_TOP ? r->sp.top_logprobs_num : PD_AUX_TOP;
        aux.n_top = k;
        for (int i = 0; i < k; i++)
            aux.top_ids[i] = r->out_top_ids[i], aux.top_lp[i] = r->out_top_lp[i];
    }
    /* out of the batch, slots still locked: the transfer thread reads them */
    for (int i = 0; i < s->n_running; i++)
        if (s->running[i] == r) {
            list_remove(s->running, &s->n_running, i);
            break;
        }
    if (s->chunked == r) s->chunked = NULL;
    pd_sender_send(s->pd, r->pd_room, kvpool_row(&s->pool, r->row), r->n_prompt, &aux);
    s->pd_xfer[s->n_pd_xfer++] = r;
    return true;
}

static void poll_prefill(sched *s) {
    double now = time_now_s();
    char err[300];
    for (int i = 0; i < s->n_pd_boot;) {
        sched_req *r = s->pd_boot[i];
        kv_poll st = pd_poll(s->pd, r->pd_room, err, sizeof err);
        if (st == KVPOLL_BOOTSTRAPPING && now - r->pd_t0 > s->pd_bootstrap_timeout) {
            snprintf(err, sizeof err, "bootstrap timeout: no decode server asked for room %llu "
                     "within %.0f s", (unsigned long long)r->pd_room, s->pd_bootstrap_timeout);
            pd_fail(s->pd, r->pd_room, err);
            st = KVPOLL_FAILED;
        }
        if (st == KVPOLL_BOOTSTRAPPING) {
            i++;
            continue;
        }
        list_remove(s->pd_boot, &s->n_pd_boot, i);
        if (st == KVPOLL_FAILED) {
            log_warn("request %s: %s", r->rid, err);
            s->pd_failed_boot++;
            end_queued(s, r, ENGINE_FINISH_ERROR, err);
        } else if (sched_push_waiting(s, r, false) != 0) {
            end_queued(s, r, ENGINE_FINISH_ERROR, "out of memory queueing the request");
        }
    }
    for (int i = 0; i < s->n_pd_xfer;) {
        sched_req *r = s->pd_xfer[i];
        kv_poll st = pd_poll(s->pd, r->pd_room, err, sizeof err);
        if (st != KVPOLL_SUCCESS && st != KVPOLL_FAILED) {
            i++;
            continue;
        }
        if (pd_drop(s->pd, r->pd_room) != 0) { /* the transfer thread still holds it */
            i++;
            continue;
        }
        r->pd_live = false;
        list_remove(s->pd_xfer, &s->n_pd_xfer, i);
        if (r->pd_aborted) sched_finish_req(s, r, ENGINE_FINISH_ABORT, -1, NULL, 0, NULL);
        else if (st == KVPOLL_SUCCESS)
            sched_finish_req(s, r, ENGINE_FINISH_LENGTH, -1, NULL, 0, NULL);
        else {
            s->pd_failed_xfer++;
            sched_finish_req(s, r, ENGINE_FINISH_ERROR, -1, NULL, 0, err);
        }
    }
}

/* ---- decode ---- */

/* Sets aside r's prompt slots and aux record and asks prefill for the data. false: not now. */
static bool prealloc(sched *s, sched_req *r, int64_t *avail) {
    if (s->n_running + s->n_pd_xfer >= s->cfg.max_running_requests || s->n_aux_free == 0)
        return false;
    int64_t need = r->n_prompt + s->pd_reserved;
    if (need > *avail) return false;
    int row = kvpool_row_alloc(&s->pool);
    if (row < 0) return false;
    int32_t *slots = kvpool_row(&s->pool, row);
    if (!sched_ensure_pages(s, kvpool_pages_needed(&s->pool, 0, r->n_prompt)) ||
        kvpool_extend(&s->pool, slots, 0, r->n_prompt) != 0) {
        kvpool_row_free(&s->pool, row);
        return false;
    }
    r->row = row;
    r->last_node = NULL;
    r->prefix_len = r->kv_len = 0;
    r->kv_alloc = r->n_prompt;
    r->pd_aux = s->aux_free[--s->n_aux_free];
    *avail -= need;
    pd_receiver_init(s->pd, r->pd_room, slots, r->n_prompt, r->pd_aux);
    return true;
}

static void give_back_aux(sched *s, sched_req *r) {
    if (r->pd_aux >= 0) s->aux_free[s->n_aux_free++] = r->pd_aux;
    r->pd_aux = -1;
}

/* The room's data arrived: r continues as if it had computed its prompt and first token. */
static void start_decode(sched *s, sched_req *r) {
    const pd_aux *a = pd_aux_record(s->pd, r->pd_aux);
    char err[200] = "";
    if (!a || a->room != r->pd_room || a->n_prompt != r->n_prompt || a->first_token < 0 ||
        a->first_token >= s->vocab)
        snprintf(err, sizeof err, "the prefill server's aux record for room %llu does not match "
                 "the request", (unsigned long long)r->pd_room);
    if (err[0]) {
        give_back_aux(s, r);
        sched_finish_req(s, r, ENGINE_FINISH_ERROR, -1, NULL, 0, err);
        return;
    }
    r->tokens[r->n_tokens++] = a->first_token;
    r->kv_len = r->n_prompt;
    r->prefilling = false;
    r->prompt_lp_done = true;
    r->admitted_once = true;
    r->cached_tokens = a->cached_tokens;
    s->prompt_tokens_total += r->n_prompt;
    s->cached_tokens_total += a->cached_tokens;
    s->generated_tokens_total++;
    /* prompt logprobs are the prefill server's to report (the load balancer merges them) */
    free(r->prompt_lp), free(r->prompt_top_ids), free(r->prompt_top_lp);
    r->prompt_lp = NULL, r->prompt_top_ids = NULL, r->prompt_top_lp = NULL;
    if (r->out_lp) {
        r->out_lp[0] = a->logprob;
        int k = r->sp.top_logprobs_num;
        for (int i = 0; i < k; i++) {
            bool have = i < a->n_top && i < PD_AUX_TOP;
            r->out_top_ids[i] = have ? a->top_ids[i] : -1;
            r->out_top_lp[i] = have ? a->top_lp[i] : -1e30f;
        }
    }
    give_back_aux(s, r);
    int32_t tok;
    const char *stop;
    int trim;
    engine_finish f = sched_check_finish(s, r, &tok, &stop, &trim);
    if (f != ENGINE_FINISH_NONE) {
        sched_finish_req(s, r, f, tok, stop, trim, NULL);
        return;
    }
    s->running[s->n_running++] = r;
    sched_emit(s, r, ENGINE_FINISH_NONE, -1, NULL, 0, NULL);
}

static void poll_decode(sched *s) {
    double now = time_now_s();
    char err[300];
    for (int i = 0; i < s->n_pd_xfer;) {
        sched_req *r = s->pd_xfer[i];
        kv_poll st = pd_poll(s->pd, r->pd_room, err, sizeof err);
        if (st != KVPOLL_SUCCESS && st != KVPOLL_FAILED && now - r->pd_t0 > s->pd_waiting_timeout) {
            snprintf(err, sizeof err, "waiting timeout: the prefill server sent no KV for room "
                     "%llu within %.0f s", (unsigned long long)r->pd_room, s->pd_waiting_timeout);
            st = KVPOLL_FAILED;
        }
        if (st != KVPOLL_SUCCESS && st != KVPOLL_FAILED) {
            i++;
            continue;
        }
        list_remove(s->pd_xfer, &s->n_pd_xfer, i);
        pd_drop(s->pd, r->pd_room);
        r->pd_live = false;
        if (r->pd_aborted || st == KVPOLL_FAILED) {
            give_back_aux(s, r);
            if (st == KVPOLL_FAILED) log_warn("request %s: %s", r->rid, err);
            if (st == KVPOLL_FAILED && !r->pd_aborted) s->pd_failed_xfer++;
            sched_finish_req(s, r, r->pd_aborted ? ENGINE_FINISH_ABORT : ENGINE_FINISH_ERROR, -1,
                             NULL, 0, r->pd_aborted ? NULL : err);
        } else {
            start_decode(s, r);
        }
    }
    /* what the pool can still give: free plus evictable, less what running requests need */
    int64_t avail = kvpool_free_tokens(&s->pool) + radix_evictable_size(&s->cache);
    for (int i = 0; i < s->n_running; i++) avail -= sched_reserve_tokens(s, s->running[i]);
    for (int i = 0; i < s->n_pd_xfer; i++) avail -= s->pd_reserved;
    bool blocked = false;
    for (int i = 0; i < s->n_pd_boot;) {
        sched_req *r = s->pd_boot[i];
        kv_poll st = pd_poll(s->pd, r->pd_room, err, sizeof err);
        if (st != KVPOLL_FAILED && now - r->pd_t0 > s->pd_waiting_timeout) {
            snprintf(err, sizeof err, "waiting timeout: room %llu was not bootstrapped within "
                     "%.0f s", (unsigned long long)r->pd_room, s->pd_waiting_timeout);
            st = KVPOLL_FAILED;
        }
        if (st == KVPOLL_FAILED) {
            list_remove(s->pd_boot, &s->n_pd_boot, i);
            log_warn("request %s: %s", r->rid, err);
            s->pd_failed_boot++;
            end_queued(s, r, ENGINE_FINISH_ERROR, err);
            continue;
        }
        /* first come, first served: one that does not fit holds back those behind it */
        if (st == KVPOLL_WAITING && !blocked && prealloc(s, r, &avail)) {
            list_remove(s->pd_boot, &s->n_pd_boot, i);
            s->pd_xfer[s->n_pd_xfer++] = r;
            continue;
        }
        if (st == KVPOLL_WAITING) blocked = true;
        i++;
    }
}

void sched_pd_poll(sched *s) {
    if (!s->pd) return;
    if (s->pd_mode == PD_PREFILL) poll_prefill(s);
    else poll_decode(s);
}

int sched_pd_abort(sched *s, uint64_t handle, const char *rid) {
    int found = 0;
    for (int i = 0; i < s->n_pd_boot;) {
        sched_req *r = s->pd_boot[i];
        bool hit = handle ? r->handle == handle : (rid && !strcmp(r->rid, rid));
        if (!hit) {
            i++;
            continue;
        }
        list_remove(s->pd_boot, &s->n_pd_boot, i);
        end_queued(s, r, ENGINE_FINISH_ABORT, NULL);
        found++;
    }
    /* a transfer holds these slots: they end when it does (or times out) */
    for (int i = 0; i < s->n_pd_xfer; i++) {
        sched_req *r = s->pd_xfer[i];
        bool hit = handle ? r->handle == handle : (rid && !strcmp(r->rid, rid));
        if (hit && !r->pd_aborted) r->pd_aborted = true, found++;
    }
    return found;
}

void sched_pd_destroy(sched *s) {
    for (int i = 0; i < s->n_pd_boot; i++) sched_req_free(s->pd_boot[i]);
    for (int i = 0; i < s->n_pd_xfer; i++) sched_req_free(s->pd_xfer[i]);
    free(s->pd_boot), free(s->pd_xfer), free(s->aux_free);
    s->n_pd_boot = s->n_pd_xfer = 0;
}

void sched_pd_fill_stats(const sched *s, engine_stats *st) {
    st->queued += s->n_pd_boot + s->n_pd_xfer; /* they wait too (/get_load, least_load) */
    st->pd_boot_queue = s->n_pd_boot;
    st->pd_transfer_queue = s->n_pd_xfer;
    st->pd_bootstrap_failed = s->pd_failed_boot;
    st->pd_transfers_failed = s->pd_failed_xfer;
}
