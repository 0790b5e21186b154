/* The decode half of the PD manager. Each receiver's room goes BOOTSTRAPPING -> WAITING once
 * its prefill rank is known (GET /route on the prefill's bootstrap server, twice, as SGLang's
 * receiver does) and this process's segment is registered there (POST /kv/session, once per
 * prefill rank); pd_receiver_init then sends the room's slots (POST /kv/transfer) and the
 * prefill's notification, which arrives through the transfer engine after the data, ends it.
 * A heartbeat (GET /health on each prefill's bootstrap server with rooms in flight) fails the
 * rooms of a prefill server that stops answering. All HTTP runs on one client loop thread. */
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/base64.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "disagg/pd_internal.h"
#include "http/http_client.h"

static void url_of(char *out, size_t len, const char *host, int port, const char *path) {
    snprintf(out, len, strchr(host, ':') ? "http://[%s]:%d%s" : "http://%s:%d%s", host, port,
             path);
}

/* Moves every room of t still in `from` to `to` (failing it with why when to is FAILED). */
static void rooms_of_target(pd_manager *m, pd_target *t, kv_poll from, kv_poll to,
                            const char *why) {
    pthread_mutex_lock(&m->mu);
    for (int b = 0; b < PD_BUCKETS; b++)
        for (pd_room *r = m->rooms[b]; r; r = r->next) {
            if (r->target != t || r->state != from) continue;
            if (to == KVPOLL_FAILED) pd_room_set_failed(r, "%s", why);
            else r->state = to;
        }
    pthread_mutex_unlock(&m->mu);
    pd_changed(m);
}

static void resolve_failed(pd_manager *m, pd_target *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void resolve_failed(pd_manager *m, pd_target *t, const char *fmt, ...) {
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    log_warn("prefill bootstrap %s:%d: %s", t->host, t->port, why);
    t->state = TARGET_UNKNOWN;
    rooms_of_target(m, t, KVPOLL_BOOTSTRAPPING, KVPOLL_FAILED, why);
}

typedef struct {
    pd_manager *m;
    pd_target *t;
} target_call;

static bool start_call(pd_manager *m, pd_target *t, const char *method, const char *url,
                       json_t *body, double timeout,
                       void (*done)(http_call *, int, const char *, size_t, const char *, void *)) {
    target_call *tc = malloc(sizeof *tc);
    if (!tc) return false;
    tc->m = m, tc->t = t;
    http_call_cbs cbs = {.on_done = done, .ud = tc};
    char err[200];
    http_call *c = http_call_json(http_server_base(m->http), method, url, body, timeout, &cbs,
                                  err, sizeof err);
    if (!c) {
        free(tc);
        resolve_failed(m, t, "%s %s: %s", method, url, err);
        return false;
    }
    return true;
}

static const char *why_of(int status, const char *body, const char *err, char *buf, size_t len) {
    if (status == 0) snprintf(buf, len, "%s", err ? err : "no answer");
    else snprintf(buf, len, "HTTP %d: %.200s", status, body ? body : "");
    return buf;
}

static void on_session(http_call *c, int status, const char *body, size_t len, const char *err,
                       void *ud) {
    (void)c, (void)len;
    target_call *tc = ud;
    char why[300];
    if (status != 200) {
        resolve_failed(tc->m, tc->t, "registering this decode server failed: %s",
                       why_of(status, body, err, why, sizeof why));
    } else {
        tc->t->state = TARGET_READY;
        log_info("prefill rank %s ready (bootstrap %s:%d)", tc->t->rank_url, tc->t->host,
                 tc->t->port);
        rooms_of_target(tc->m, tc->t, KVPOLL_BOOTSTRAPPING, KVPOLL_WAITING, NULL);
    }
    free(tc);
}

/* The common start of the lookup callbacks: the call's context (freed) and a 200's JSON body. */
static json_t *take_answer(void *ud, pd_manager **m, pd_target **t, int status, const char *body,
                           size_t len) {
    target_call *tc = ud;
    *m = tc->m, *t = tc->t;
    free(tc);
    return status == 200 && body ? json_loadb(body, len, 0, NULL) : NULL;
}

static void on_rank(http_call *c, int status, const char *body, size_t len, const char *err,
                    void *ud) {
    (void)c;
    pd_manager *m;
    pd_target *t;
    char why[300];
    json_t *j = take_answer(ud, &m, &t, status, body, len);
    const char *ip = json_string_value(json_object_get(j, "rank_ip"));
    json_int_t port = json_integer_value(json_object_get(j, "rank_port"));
    if (!ip || port < 1 || port > 65535) {
        resolve_failed(m, t, "GET /route (rank 0) failed: %s",
                       status == 200 ? "no rank_ip/rank_port in the answer"
                                     : why_of(status, body, err, why, sizeof why));
        json_decref(j);
        return;
    }
    url_of(t->rank_url, sizeof t->rank_url, ip, (int)port, "");
    json_decref(j);
    json_t *bases = json_array();
    for (int b = 0; b < m->o.n_bufs && bases; b++)
        json_array_append_new(bases, json_integer((json_int_t)(uintptr_t)m->o.bufs[b]));
    char sid[32];
    snprintf(sid, sizeof sid, "%" PRIu64, m->session_id);
    json_t *req = json_pack("{s:s,s:s,s:o,s:I,s:i,s:I,s:I,s:I}", "session", sid, "desc",
                            m->desc_b64, "bases", bases, "aux_base",
                            (json_int_t)(uintptr_t)m->aux, "n_aux", m->o.n_aux, "buf_bytes",
                            (json_int_t)m->o.buf_bytes, "slot_bytes", (json_int_t)m->o.slot_bytes,
                            "aux_bytes", (json_int_t)sizeof(pd_aux));
    char url[400];
    snprintf(url, sizeof url, "%s/kv/session", t->rank_url);
    if (!req) resolve_failed(m, t, "out of memory");
    else start_call(m, t, "POST", url, req, 30, on_session);
    json_decref(req);
}

static void on_sizes(http_call *c, int status, const char *body, size_t len, const char *err,
                     void *ud) {
    (void)c;
    pd_manager *m;
    pd_target *t;
    char why[300];
    json_t *j = take_answer(ud, &m, &t, status, body, len);
    json_int_t tp = json_integer_value(json_object_get(j, "prefill_attn_tp_size"));
    json_int_t dp = json_integer_value(json_object_get(j, "prefill_dp_size"));
    json_int_t pp = json_integer_value(json_object_get(j, "prefill_pp_size"));
    json_decref(j);
    if (status != 200) {
        resolve_failed(m, t, "GET /route failed: %s", why_of(status, body, err, why, sizeof why));
        return;
    }
    if (tp != 1 || dp != 1 || pp != 1) {
        resolve_failed(m, t, "the prefill server runs tp %lld, dp %lld, pp %lld; this decode "
                       "server takes one prefill rank (1, 1, 1)", (long long)tp, (long long)dp,
                       (long long)pp);
        return;
    }
    char url[400];
    url_of(url, sizeof url, t->host, t->port,
           "/route?engine_rank=0&target_dp_group=0&target_pp_rank=0");
    start_call(m, t, "GET", url, NULL, 30, on_rank);
}

typedef struct {
    pd_manager *m;
    uint64_t room;
    json_t *body; /* send_slots: the /kv/transfer request */
} room_task;

static void resolve_task(void *arg) {
    room_task *rt = arg;
    pd_manager *m = rt->m;
    pthread_mutex_lock(&m->mu);
    pd_room *r = pd_room_find(m, rt->room);
    pd_target *t = r && r->state == KVPOLL_BOOTSTRAPPING ? r->target : NULL;
    pthread_mutex_unlock(&m->mu);
    free(rt);
    if (!t) return;
    if (t->state == TARGET_READY) {
        rooms_of_target(m, t, KVPOLL_BOOTSTRAPPING, KVPOLL_WAITING, NULL);
    } else if (t->state == TARGET_UNKNOWN) {
        t->state = TARGET_RESOLVING;
        char url[400];
        url_of(url, sizeof url, t->host, t->port,
               "/route?engine_rank=-1&target_dp_group=-1&target_pp_rank=-1");
        start_call(m, t, "GET", url, NULL, 30, on_sizes);
    } /* RESOLVING: the answer moves this room along with the others */
}

void pd_decode_resolve(pd_manager *m, uint64_t room) {
    room_task *rt = calloc(1, sizeof *rt);
    if (rt) rt->m = m, rt->room = room;
    if (!rt || http_server_post(m->http, resolve_task, rt) != 0) {
        free(rt);
        pd_fail(m, room, "cannot reach the PD client loop");
    }
}

/* ---- sending a room's slots ---- */

static void on_transfer_req(http_call *c, int status, const char *body, size_t len,
                            const char *err, void *ud) {
    (void)c, (void)len;
    room_task *rt = ud;
    if (status != 200) {
        char why[300];
        why_of(status, body, err, why, sizeof why);
        pthread_mutex_lock(&rt->m->mu);
        pd_room *r = pd_room_find(rt->m, rt->room);
        if (r) {
            pd_room_set_failed(r, "the prefill server refused the transfer: %s", why);
            /* a prefill server that forgot this session (restarted) is looked up again */
            if (status == 404 && r->target) r->target->state = TARGET_UNKNOWN;
        }
        pthread_mutex_unlock(&rt->m->mu);
        pd_changed(rt->m);
    }
    free(rt);
}

static void send_task(void *arg) {
    room_task *rt = arg;
    pd_manager *m = rt->m;
    pthread_mutex_lock(&m->mu);
    pd_room *r = pd_room_find(m, rt->room);
    pd_target *t = r ? r->target : NULL;
    bool ok = r && t && r->state == KVPOLL_WAITING && t->state == TARGET_READY;
    pthread_mutex_unlock(&m->mu);
    char url[400];
    if (ok) snprintf(url, sizeof url, "%s/kv/transfer", t->rank_url);
    http_call_cbs cbs = {.on_done = on_transfer_req, .ud = rt};
    char err[200] = "the prefill server is not ready";
    if (!ok || !http_call_json(http_server_base(m->http), "POST", url, rt->body, 30, &cbs, err,
                               sizeof err)) {
        pd_fail(m, rt->room, err);
        pd_changed(m);
        json_decref(rt->body);
        free(rt);
        return;
    }
    json_decref(rt->body);
    rt->body = NULL;
}

int pd_decode_send_slots(pd_manager *m, uint64_t room, const int32_t *slots, int64_t n,
                         int aux_idx) {
    json_t *runs = json_array();
    for (int64_t i = 0; i < n && runs;) {
        int64_t e = i + 1;
        while (e < n && slots[e] == slots[e - 1] + 1) e++;
        json_array_append_new(runs, json_pack("[i,I]", slots[i], (json_int_t)(e - i)));
        i = e;
    }
    char sid[32], rid[32];
    snprintf(sid, sizeof sid, "%" PRIu64, m->session_id);
    snprintf(rid, sizeof rid, "%" PRIu64, room);
    room_task *rt = calloc(1, sizeof *rt);
    if (rt) {
        rt->m = m, rt->room = room;
        rt->body = json_pack("{s:s,s:s,s:I,s:i,s:o}", "session", sid, "room", rid, "n",
                             (json_int_t)n, "aux_idx", aux_idx, "runs", runs);
        runs = NULL;
    }
    json_decref(runs);
    if (!rt || !rt->body || http_server_post(m->http, send_task, rt) != 0) {
        if (rt) json_decref(rt->body);
        free(rt);
        pd_fail(m, room, "out of memory sending the room's slots");
        return -1;
    }
    return 0;
}

/* ---- notifications and heartbeat ---- */

void pd_decode_on_note(pd_manager *m, const void *msg, size_t len) {
    pd_note n;
    if (len != sizeof n) {
        log_warn("PD: ignoring a %zu-byte notification", len);
        return;
    }
    memcpy(&n, msg, sizeof n);
    n.msg[sizeof n.msg - 1] = 0;
    if (n.magic != PD_NOTE_MAGIC) return;
    pthread_mutex_lock(&m->mu);
    pd_room *r = pd_room_find(m, n.room);
    if (r && r->state != KVPOLL_FAILED) {
        if (n.status == KVPOLL_SUCCESS) r->state = KVPOLL_SUCCESS;
        else pd_room_set_failed(r, "prefill reported: %s", n.msg);
    }
    pthread_mutex_unlock(&m->mu);
    pd_changed(m);
}

static void on_health(http_call *c, int status, const char *body, size_t len, const char *err,
                      void *ud) {
    (void)c, (void)body, (void)len;
    target_call *tc = ud;
    pd_target *t = tc->t;
    t->hb_inflight = false;
    if (status == 200) {
        t->misses = 0;
    } else if (++t->misses >= tc->m->o.heartbeat_max_failures) {
        char why[600];
        snprintf(why, sizeof why, "prefill server (bootstrap %s:%d) missed %d heartbeat(s): %s",
                 t->host, t->port, t->misses, status ? "bad status" : err ? err : "no answer");
        log_warn("%s", why);
        t->misses = 0;
        t->state = TARGET_UNKNOWN;
        rooms_of_target(tc->m, t, KVPOLL_BOOTSTRAPPING, KVPOLL_FAILED, why);
        rooms_of_target(tc->m, t, KVPOLL_WAITING, KVPOLL_FAILED, why);
    }
    free(tc);
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    pd_manager *m = arg;
    pthread_mutex_lock(&m->mu);
    for (pd_target *t = m->targets; t; t = t->next) {
        bool live = false;
        for (int b = 0; b < PD_BUCKETS && !live; b++)
            for (pd_room *r = m->rooms[b]; r && !live; r = r->next)
                live = r->target == t &&
                       (r->state == KVPOLL_BOOTSTRAPPING || r->state == KVPOLL_WAITING);
        if (!live || t->hb_inflight) continue;
        target_call *tc = malloc(sizeof *tc);
        if (!tc) break;
        tc->m = m, tc->t = t;
        char url[400];
        url_of(url, sizeof url, t->host, t->port, "/health");
        http_call_req req = {.method = "GET", .url = url, .timeout_s = m->o.heartbeat_s};
        http_call_cbs cbs = {.on_done = on_health, .ud = tc};
        char err[200];
        if (http_call_start(http_server_base(m->http), &req, &cbs, err, sizeof err)) {
            t->hb_inflight = true;
        } else {
            free(tc);
            t->misses++;
        }
    }
    pthread_mutex_unlock(&m->mu);
}

int pd_decode_start(pd_manager *m, char *err, size_t err_len) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    m->aux_map_bytes = ((size_t)m->o.n_aux * sizeof(pd_aux) + page - 1) / page * page;
    void *aux = mmap(NULL, m->aux_map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (m->o.n_aux < 1 || aux == MAP_FAILED) {
        snprintf(err, err_len, "cannot allocate %d aux records", m->o.n_aux);
        return -1;
    }
    m->aux = aux;
    if (xfer_register(m->xe, m->aux, m->aux_map_bytes, err, err_len) != 0) return -1;
    pthread_mutex_lock(&m->mu);
    m->session_id = m->rng ^ ((uint64_t)getpid() << 20);
    pthread_mutex_unlock(&m->mu);
    void *desc;
    size_t dlen;
    if (xfer_segment_desc(m->xe, &desc, &dlen, err, err_len) != 0) return -1;
    m->desc_b64 = malloc(base64_encoded_len(dlen) + 1);
    if (m->desc_b64) base64_encode(desc, dlen, m->desc_b64);
    free(desc);
    if (!m->desc_b64) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    /* the client loop: an HTTP server on a loopback port nothing calls, for its event loop */
    http_server_opts ho = {.host = "127.0.0.1", .port = 0};
    m->http = http_server_new(&ho, err, err_len);
    if (!m->http) return -1;
    m->timer = event_new(http_server_base(m->http), -1, EV_PERSIST, on_heartbeat, m);
    struct timeval tv = {(long)m->o.heartbeat_s,
                         (long)((m->o.heartbeat_s - (long)m->o.heartbeat_s) * 1e6)};
    if (!m->timer || event_add(m->timer, &tv) != 0 || http_server_start(m->http) != 0) {
        snprintf(err, err_len, "cannot start the PD client loop");
        return -1;
    }
    return 0;
}
