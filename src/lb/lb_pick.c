/* Server selection: SGLang's mini LB picks at random only; sglc adds round_robin and least_load
 * (the fewest requests by each server's own /get_load, asked afresh for every request). Servers
 * that failed their last health check are skipped while any other server of that side is not. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
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

typedef struct {
    lb_server *srv;
    http_call *call;
    double reqs, waiting; /* INFINITY when /get_load failed */
    struct pick_ctx *ctx;
} load_probe;

typedef struct pick_ctx {
    lb *l;
    lb_pick_fn done;
    void *ud;
    int n, pending;
    load_probe *probes;
} pick_ctx;

/* Accepts SGLang's list of per-DP-rank objects (summed) or one object. */
static void read_load(const char *body, size_t len, double *reqs, double *waiting) {
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!j || (!json_is_array(j) && !json_is_object(j))) {
        json_decref(j);
        return;
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
}

static bool lighter(const load_probe *a, const load_probe *b) {
    if (a->reqs != b->reqs) return a->reqs < b->reqs;
    if (a->waiting != b->waiting) return a->waiting < b->waiting;
    return a->srv->in_flight < b->srv->in_flight;
}

static void pick_finish(pick_ctx *p) {
    load_probe *best[2] = {NULL, NULL};
    for (int i = 0; i < p->n; i++) {
        load_probe *q = &p->probes[i];
        lb_role r = q->srv->role;
        if (!best[r] || lighter(q, best[r])) best[r] = q;
    }
    lb_server *pre = best[0] ? best[0]->srv : NULL, *dec = best[1] ? best[1]->srv : NULL;
    if (pre && dec)
        log_debug("least_load: prefill %s (%.0f reqs), decode %s (%.0f reqs)", pre->url,
                  best[0]->reqs, dec->url, best[1]->reqs);
    lb_pick_fn done = p->done;
    void *ud = p->ud;
    free(p->probes);
    free(p);
    done(pre, dec, ud);
}

static void on_load(http_call *c, int status, const char *body, size_t len, const char *err,
                    void *ud) {
    (void)c, (void)err;
    load_probe *q = ud;
    q->call = NULL;
    if (status == 200) read_load(body, len, &q->reqs, &q->waiting);
    if (--q->ctx->pending == 0) pick_finish(q->ctx);
}

void lb_pick(lb *l, lb_pick_fn done, void *ud) {
    if (l->cfg.policy != LB_POLICY_LEAST_LOAD) {
        lb_server *pre = pick_simple(l, LB_PREFILL);
        lb_server *dec = pick_simple(l, LB_DECODE);
        done(pre, dec, ud);
        return;
    }
    int total = l->n_servers[0] + l->n_servers[1];
    pick_ctx *p = calloc(1, sizeof *p);
    lb_server **c = malloc(((size_t)total + 1) * sizeof *c);
    if (p) p->probes = calloc((size_t)total + 1, sizeof *p->probes);
    if (!p || !c || !p->probes) {
        if (p) free(p->probes);
        free(p), free(c);
        done(pick_simple(l, LB_PREFILL), pick_simple(l, LB_DECODE), ud);
        return;
    }
    p->l = l, p->done = done, p->ud = ud;
    for (int r = 0; r < 2; r++) {
        int n = candidates(l, (lb_role)r, c);
        for (int i = 0; i < n; i++)
            p->probes[p->n++] = (load_probe){.srv = c[i], .reqs = INFINITY, .waiting = INFINITY,
                                             .ctx = p};
    }
    free(c);
    /* one extra count so that answers arriving during this loop cannot finish p early */
    p->pending = p->n + 1;
    double t = l->cfg.timeout_s < LB_LOAD_TIMEOUT_S ? l->cfg.timeout_s : LB_LOAD_TIMEOUT_S;
    for (int i = 0; i < p->n; i++) {
        load_probe *q = &p->probes[i];
        char *url = lb_url_join(q->srv, "/get_load");
        http_call_cbs cbs = {.on_done = on_load, .ud = q};
        http_call_req rq = {.method = "GET", .url = url, .timeout_s = t};
        char err[256];
        q->call = url ? http_call_start(l->base, &rq, &cbs, err, sizeof err) : NULL;
        free(url);
        if (!q->call) p->pending--;
    }
    if (--p->pending == 0) pick_finish(p);
}
