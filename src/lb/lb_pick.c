/* Server selection: SGLang's mini LB picks at random only; sglc adds round_robin and least_load
 * (the fewest requests by each server's own /get_load). Asking every server for every request
 * would double the upstream calls of a burst, so least_load keeps the answers for LB_LOAD_TTL_S
 * and adds the requests it has routed since; picks that arrive while a round of /get_load is
 * out wait for it and share it. Servers that failed their last health check are skipped while
 * any other server of that side is not. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "lb/lb_internal.h"

/* Candidates of one side: those not known to be down, or all when every one is down. */
static int candidates(lb *l, lb_role r, lb_server **out) {
    int n = 0;
    for (int i = 0; i < l->n_servers[r]; i++)
        if (l->servers[r][i]->health != LB_HEALTH_DOWN) out[n++] = l->servers[r][i];
    if (n == 0)
        for (int i = 0; i < l->n_servers[r]; i++) out[n++] = l->servers[r][i];
    return n;
}

static lb_server *pick_simple(lb *l, lb_role r) {
    int total = l->n_servers[r];
    if (total == 0) return NULL;
    lb_server **c = malloc((size_t)total * sizeof *c);
    if (!c) return l->servers[r][0];
    int n = candidates(l, r, c);
    lb_server *s;
    if (l->cfg.policy == LB_POLICY_ROUND_ROBIN) {
        /* walk the full list so that the order stays stable when a server comes back */
        s = c[0];
        for (int k = 0; k < total; k++) {
            lb_server *t = l->servers[r][(l->rr_next[r] + (unsigned)k) % (unsigned)total];
            bool ok = false;
            for (int i = 0; i < n && !ok; i++) ok = c[i] == t;
            if (ok) {
                s = t;
                l->rr_next[r] = (l->rr_next[r] + (unsigned)k + 1) % (unsigned)total;
                break;
            }
        }
    } else {
        s = c[lb_rand(l) % (uint64_t)n];
    }
    free(c);
    return s;
}

/* ---- least_load ---- */

typedef struct waiter {
    struct waiter *next;
    lb_pick_fn done;
    void *ud;
} waiter;

typedef struct {
    lb_server *srv;
    http_call *call;
    lb_load_refresh *rf;
} load_probe;

struct lb_load_refresh {
    lb *l;
    load_probe *probes;
    int n, pending;
    waiter *head, **tail; /* picks in arrival order */
};

/* Accepts SGLang's list of per-DP-rank objects (summed) or one object. false: no load in it. */
static bool read_load(const char *body, size_t len, double *reqs, double *waiting) {
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!j || (!json_is_array(j) && !json_is_object(j))) {
        json_decref(j);
        return false;
    }
    double r = 0, w = 0;
    size_t n = json_is_array(j) ? json_array_size(j) : 1;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_is_array(j) ? json_array_get(j, i) : j;
        const json_t *a = json_object_get(o, "num_reqs");
        const json_t *b = json_object_get(o, "num_waiting_reqs");
        if (json_is_number(a)) r += json_number_value(a), any = true;
        if (json_is_number(b)) w += json_number_value(b);
    }
    if (any) *reqs = r, *waiting = w;
    json_decref(j);
    return any;
}

static bool lighter(const lb_server *a, const lb_server *b) {
    double ra = a->load_reqs + a->load_sent, rb = b->load_reqs + b->load_sent;
    if (ra != rb) return ra < rb;
    if (a->load_waiting != b->load_waiting) return a->load_waiting < b->load_waiting;
    return a->in_flight < b->in_flight;
}

/* The lightest candidate of one side by the cached loads, counted as one more request. */
static lb_server *pick_cached(lb *l, lb_role r) {
    int total = l->n_servers[r];
    if (total == 0) return NULL;
    lb_server **c = malloc((size_t)total * sizeof *c);
    if (!c) return l->servers[r][0];
    int n = candidates(l, r, c);
    lb_server *best = c[0];
    for (int i = 1; i < n; i++)
        if (lighter(c[i], best)) best = c[i];
    free(c);
    best->load_sent++;
    return best;
}

static void pick_now(lb *l, lb_pick_fn done, void *ud) {
    lb_server *pre = pick_cached(l, LB_PREFILL), *dec = pick_cached(l, LB_DECODE);
    if (pre && dec)
        log_debug("least_load: prefill %s (%.0f+%d reqs), decode %s (%.0f+%d reqs)", pre->url,
                  pre->load_reqs, pre->load_sent - 1, dec->url, dec->load_reqs,
                  dec->load_sent - 1);
    done(pre, dec, ud);
}

/* Every probe answered (or failed): the new loads are in, the waiting picks are made (or,
 * cancelled, told that there is nothing to pick). */
static void refresh_finish(lb_load_refresh *rf, bool cancelled) {
    lb *l = rf->l;
    l->refresh = NULL;
    l->load_at = time_now_s();
    waiter *w = rf->head;
    free(rf->probes);
    free(rf);
    while (w) {
        waiter *next = w->next;
        if (!cancelled) pick_now(l, w->done, w->ud);
        else w->done(NULL, NULL, w->ud);
        free(w);
        w = next;
    }
}

static void on_load(http_call *c, int status, const char *body, size_t len, const char *err,
                    void *ud) {
    (void)c, (void)err;
    load_probe *q = ud;
    lb_server *s = q->srv;
    q->call = NULL;
    double reqs = INFINITY, waiting = INFINITY;
    if (status != 200 || !read_load(body, len, &reqs, &waiting))
        log_debug("least_load: %s /get_load: %s", s->url, status ? http_status_phrase(status)
                                                                 : (err ? err : "failed"));
    s->load_reqs = reqs, s->load_waiting = waiting, s->load_sent = 0;
    if (--q->rf->pending == 0) refresh_finish(q->rf, false);
}

/* Starts a round of /get_load over every server (the request's headers carry its credentials). */
static lb_load_refresh *refresh_start(lb *l, const char *const *headers) {
    int total = l->n_servers[0] + l->n_servers[1];
    lb_load_refresh *rf = calloc(1, sizeof *rf);
    if (rf) rf->probes = calloc((size_t)total + 1, sizeof *rf->probes);
    if (!rf || !rf->probes) {
        free(rf);
        return NULL;
    }
    rf->l = l;
    rf->tail = &rf->head;
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < l->n_servers[r]; i++)
            rf->probes[rf->n++] = (load_probe){.srv = l->servers[r][i], .rf = rf};
    l->refresh = rf;
    /* one extra count so that answers arriving during this loop cannot finish rf early */
    rf->pending = rf->n + 1;
    double t = l->cfg.timeout_s < LB_LOAD_TIMEOUT_S ? l->cfg.timeout_s : LB_LOAD_TIMEOUT_S;
    for (int i = 0; i < rf->n; i++) {
        load_probe *q = &rf->probes[i];
        char *url = lb_url_join(q->srv, "/get_load");
        http_call_cbs cbs = {.on_done = on_load, .ud = q};
        http_call_req rq = {.method = "GET", .url = url, .headers = headers, .timeout_s = t};
        char err[256];
        q->call = url ? http_call_start(l->base, &rq, &cbs, err, sizeof err) : NULL;
        free(url);
        if (!q->call) {
            q->srv->load_reqs = q->srv->load_waiting = INFINITY;
            q->srv->load_sent = 0;
            rf->pending--;
        }
    }
    return rf;
}

void lb_pick(lb *l, const char *const *headers, lb_pick_fn done, void *ud) {
    if (l->cfg.policy != LB_POLICY_LEAST_LOAD) {
        lb_server *pre = pick_simple(l, LB_PREFILL);
        lb_server *dec = pick_simple(l, LB_DECODE);
        done(pre, dec, ud);
        return;
    }
    double now = time_now_s();
    if (!l->refresh && l->load_at > 0 && now - l->load_at < LB_LOAD_TTL_S) {
        pick_now(l, done, ud);
        return;
    }
    waiter *w = malloc(sizeof *w);
    lb_load_refresh *rf = w ? l->refresh : NULL;
    bool started = false;
    if (w && !rf) rf = refresh_start(l, headers), started = rf != NULL;
    if (!rf) { /* out of memory: the loads as they are */
        free(w);
        pick_now(l, done, ud);
        return;
    }
    *w = (waiter){.done = done, .ud = ud};
    *rf->tail = w;
    rf->tail = &w->next;
    if (started && --rf->pending == 0) refresh_finish(rf, false);
}

void lb_pick_shutdown(lb *l) {
    lb_load_refresh *rf = l->refresh;
    if (!rf) return;
    for (int i = 0; i < rf->n; i++)
        if (rf->probes[i].call) http_call_cancel(rf->probes[i].call);
    refresh_finish(rf, true);
}
