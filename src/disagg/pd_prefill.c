/* The prefill half of the PD manager: the bootstrap server (SGLang's routes: PUT/GET /route,
 * GET /health; and this build's control routes POST /kv/session and POST /kv/transfer, through
 * which a decode server hands over its segment and each room's slots), and the transfer thread
 * that writes a finished prompt's KV and aux record into the decode server's memory, then
 * notifies it. The rank registers itself with PUT /route on its own bootstrap server, as each
 * SGLang prefill rank does, so the route table is what decode servers read. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "disagg/pd_internal.h"
#include "http/http_client.h"

#define MAX_DESC_BYTES (1 << 20)

/* ---- the route table (SGLang's bootstrap server, one rank) ---- */

static void route_put(http_req *req, void *ud) {
    pd_manager *m = ud;
    json_t *b = http_req_json(req);
    if (!b) return;
    const char *ip = json_string_value(json_object_get(b, "rank_ip"));
    json_t *port = json_object_get(b, "rank_port");
    const char *role = json_string_value(json_object_get(b, "role"));
    if (!ip || !*ip || strlen(ip) >= sizeof m->rank_ip || !json_is_integer(port) ||
        json_integer_value(port) < 1 || json_integer_value(port) > 65535 ||
        (role && strcmp(role, "Prefill"))) {
        json_decref(b);
        http_reply_error(req, 400, NULL, NULL, NULL,
                         "PUT /route needs role \"Prefill\", rank_ip and rank_port");
        return;
    }
    json_t *tp = json_object_get(b, "attn_tp_rank");
    if (tp && json_integer_value(tp) != 0) {
        json_decref(b);
        http_reply_error(req, 400, NULL, NULL, NULL,
                         "this bootstrap server serves one prefill rank (attn_tp_rank 0)");
        return;
    }
    pthread_mutex_lock(&m->mu);
    snprintf(m->rank_ip, sizeof m->rank_ip, "%s", ip);
    m->rank_port = (int)json_integer_value(port);
    pthread_mutex_unlock(&m->mu);
    log_info("bootstrap: prefill rank 0 registered at %s:%d", ip, (int)json_integer_value(port));
    json_decref(b);
    http_reply(req, 200, "text/plain", "OK", 2);
}

static bool query_int(http_req *req, const char *name, long *out) {
    const char *v = http_req_query(req, name);
    if (!v || !*v) return false;
    char *end;
    *out = strtol(v, &end, 10);
    return !*end;
}

static void route_get(http_req *req, void *ud) {
    pd_manager *m = ud;
    long rank, dp, pp;
    if (!query_int(req, "engine_rank", &rank) || !query_int(req, "target_dp_group", &dp) ||
        !query_int(req, "target_pp_rank", &pp)) {
        http_reply_error(req, 400, NULL, NULL, NULL,
                         "GET /route needs engine_rank, target_dp_group and target_pp_rank");
        return;
    }
    if (rank == -1 && dp == -1 && pp == -1) {
        http_reply_json(req, 200,
                        json_pack("{s:i,s:i,s:i}", "prefill_attn_tp_size", 1, "prefill_dp_size", 1,
                                  "prefill_pp_size", 1));
        return;
    }
    pthread_mutex_lock(&m->mu);
    char ip[256];
    snprintf(ip, sizeof ip, "%s", m->rank_ip);
    int port = m->rank_port;
    pthread_mutex_unlock(&m->mu);
    if (rank != 0 || dp != 0 || pp != 0 || !port) {
        http_reply_error(req, 404, NULL, NULL, NULL,
                         "no prefill rank registered for engine_rank %ld, dp group %ld, pp rank %ld",
                         rank, dp, pp);
        return;
    }
    http_reply_json(req, 200, json_pack("{s:s,s:i}", "rank_ip", ip, "rank_port", port));
}

static void route_health(http_req *req, void *ud) {
    (void)ud;
    http_reply(req, 200, "text/plain", "OK", 2);
}

/* ---- sessions: a decode process's segment ---- */

static bool u64_value(const json_t *v, uint64_t *out) {
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return true;
    }
    const char *s = json_string_value(v); /* 64-bit values travel as decimal strings */
    if (!s || !*s) return false;
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end) return false;
    *out = x;
    return true;
}

static bool get_u64(const json_t *o, const char *key, uint64_t *out) {
    return u64_value(json_object_get(o, key), out);
}

static void kv_session(http_req *req, void *ud) {
    pd_manager *m = ud;
    json_t *b = http_req_json(req);
    if (!b) return;
    char why[300] = "";
    uint64_t id = 0, aux_base = 0, buf_bytes = 0, slot_bytes = 0, aux_bytes = 0;
    const char *desc = json_string_value(json_object_get(b, "desc"));
    json_t *bases = json_object_get(b, "bases");
    json_t *n_aux = json_object_get(b, "n_aux");
    pd_session *s = NULL;
    if (!get_u64(b, "session", &id) || !desc || !json_is_array(bases) ||
        !get_u64(b, "aux_base", &aux_base) || !get_u64(b, "buf_bytes", &buf_bytes) ||
        !get_u64(b, "slot_bytes", &slot_bytes) || !get_u64(b, "aux_bytes", &aux_bytes) ||
        !json_is_integer(n_aux) || json_integer_value(n_aux) < 1 ||
        json_integer_value(n_aux) > 1 << 20) {
        snprintf(why, sizeof why, "POST /kv/session needs session, desc, bases, aux_base, n_aux, "
                 "buf_bytes, slot_bytes and aux_bytes");
    } else if ((int)json_array_size(bases) != m->o.n_bufs || slot_bytes != m->o.slot_bytes ||
               aux_bytes != sizeof(pd_aux)) {
        snprintf(why, sizeof why, "KV layouts differ: decode has %zu buffers of %" PRIu64
                 "-byte slots (aux %" PRIu64 " bytes), prefill %d of %zu (aux %zu): serve the "
                 "same model with the same --kv-cache-dtype on both", json_array_size(bases),
                 slot_bytes, aux_bytes, m->o.n_bufs, m->o.slot_bytes, sizeof(pd_aux));
    } else if (strlen(desc) > MAX_DESC_BYTES) {
        snprintf(why, sizeof why, "segment descriptor too large");
    }
    if (!why[0]) {
        size_t dlen = strlen(desc);
        uint8_t *raw = malloc(dlen / 4 * 3 + 3);
        long n = raw ? base64_decode((const uint8_t *)desc, dlen, raw, dlen / 4 * 3 + 3) : -1;
        s = calloc(1, sizeof *s);
        if (s) s->bases = calloc((size_t)m->o.n_bufs, sizeof *s->bases);
        if (n <= 0 || !s || !s->bases) {
            snprintf(why, sizeof why, n <= 0 ? "desc is not base64" : "out of memory");
        } else {
            for (int i = 0; i < m->o.n_bufs && !why[0]; i++) {
                if (!u64_value(json_array_get(bases, (size_t)i), &s->bases[i]))
                    snprintf(why, sizeof why, "bases[%d] is not an address", i);
            }
            char xerr[256];
            if (!why[0] && !(s->peer = xfer_open(m->xe, raw, (size_t)n, xerr, sizeof xerr)))
                snprintf(why, sizeof why, "cannot open the decode server's segment: %s", xerr);
        }
        free(raw);
    }
    int aux_count = (int)json_integer_value(n_aux);
    json_decref(b);
    if (why[0]) {
        if (s) free(s->bases), free(s);
        http_reply_error(req, 400, NULL, NULL, NULL, "%s", why);
        return;
    }
    s->id = id;
    s->n_bufs = m->o.n_bufs;
    s->buf_bytes = buf_bytes;
    s->aux_base = aux_base;
    s->n_aux = aux_count;
    s->refs = 1; /* the list's */
    char tls[200] = "";
    xfer_peer_transports(s->peer, tls, sizeof tls);
    pthread_mutex_lock(&m->mu);
    for (pd_session *o = m->sessions; o; o = o->next)
        if (o->id == id && !o->dead) { /* a decode server registering again: the new one wins */
            o->dead = true;
            pd_session_unref(m, o);
            break;
        }
    s->next = m->sessions;
    m->sessions = s;
    pthread_mutex_unlock(&m->mu);
    log_info("bootstrap: decode session %016" PRIx64 " registered from %s (transport: %s)", id,
             http_req_peer(req), tls[0] ? tls : "?");
    http_reply(req, 200, "text/plain", "OK", 2);
}

/* POST /kv/transfer {session, room, n, aux_idx, runs: [[first_slot, count], ...]} */
static void kv_transfer(http_req *req, void *ud) {
    pd_manager *m = ud;
    json_t *b = http_req_json(req);
    if (!b) return;
    uint64_t id = 0, room = 0;
    json_t *runs = json_object_get(b, "runs"), *n = json_object_get(b, "n"),
           *aux = json_object_get(b, "aux_idx");
    char why[300] = "";
    int status = 400;
    int32_t *dst = NULL;
    int64_t total = 0;
    if (!get_u64(b, "session", &id) || !get_u64(b, "room", &room) || !json_is_array(runs) ||
        !json_is_integer(n) || json_integer_value(n) < 1 || json_integer_value(n) > 1 << 24 ||
        !json_is_integer(aux)) {
        snprintf(why, sizeof why, "POST /kv/transfer needs session, room, n, aux_idx and runs");
    } else {
        total = json_integer_value(n);
        dst = malloc((size_t)total * sizeof *dst);
        int64_t k = 0;
        size_t i;
        json_t *run;
        json_array_foreach(runs, i, run) {
            json_t *a = json_array_get(run, 0), *c = json_array_get(run, 1);
            if (!dst || !json_is_integer(a) || !json_is_integer(c) || json_integer_value(a) < 0 ||
                json_integer_value(c) < 1 || json_integer_value(c) > total - k ||
                json_integer_value(a) > INT32_MAX - json_integer_value(c)) {
                snprintf(why, sizeof why, dst ? "runs[%zu] is not [first_slot, count] within n"
                                              : "out of memory",
                         i);
                break;
            }
            for (json_int_t x = 0; x < json_integer_value(c); x++)
                dst[k++] = (int32_t)(json_integer_value(a) + x);
        }
        if (!why[0] && k != total) snprintf(why, sizeof why, "runs cover %lld slots, not n", (long long)k);
    }
    if (!why[0]) {
        pthread_mutex_lock(&m->mu);
        pd_session *s = m->sessions;
        while (s && (s->id != id || s->dead)) s = s->next;
        int64_t aux_idx = json_integer_value(aux);
        int32_t max_slot = 0;
        for (int64_t k = 0; k < total; k++) max_slot = dst[k] > max_slot ? dst[k] : max_slot;
        pd_room *r = pd_room_find(m, room);
        if (!s) {
            status = 404;
            snprintf(why, sizeof why, "unknown session %016" PRIx64 ": register it first", id);
        } else if (aux_idx < 0 || aux_idx >= s->n_aux ||
                   ((uint64_t)max_slot + 1) * m->o.slot_bytes > s->buf_bytes) {
            snprintf(why, sizeof why, "aux_idx %lld or slot %d outside the decode server's "
                     "buffers (%d aux records, %zu bytes per buffer)", (long long)aux_idx,
                     max_slot, s->n_aux, s->buf_bytes);
        } else if (r && (r->dst || r->state == KVPOLL_FAILED)) {
            status = 409;
            snprintf(why, sizeof why, "room %" PRIu64 " already has a destination%s", room,
                     r->state == KVPOLL_FAILED ? " or has failed" : "");
        } else if (!r && !(r = pd_room_add(m, room))) {
            status = 500;
            snprintf(why, sizeof why, "out of memory");
        } else {
            r->dst = dst, dst = NULL;
            r->n_dst = total;
            r->aux_idx = (int)aux_idx;
            r->session = s;
            s->refs++;
            if (r->has_sender && r->state == KVPOLL_BOOTSTRAPPING) r->state = KVPOLL_WAITING;
        }
        pthread_mutex_unlock(&m->mu);
        if (!why[0]) pd_changed(m);
    }
    free(dst);
    json_decref(b);
    if (why[0]) http_reply_error(req, status, NULL, NULL, NULL, "%s", why);
    else http_reply(req, 200, "text/plain", "OK", 2);
}

/* Rooms that decode announced but whose request never came (or whose sender ended without
 * the scheduler dropping them) go after the bootstrap timeout. */
static void on_gc(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    pd_manager *m = arg;
    double now = time_now_s(), limit = m->o.bootstrap_timeout_s;
    pthread_mutex_lock(&m->mu);
    for (int b = 0; b < PD_BUCKETS; b++)
        for (pd_room **pp = &m->rooms[b]; *pp;) {
            pd_room *r = *pp;
            if (!r->has_sender && !r->busy && now - r->t_created > limit) {
                *pp = r->next;
                if (r->session) pd_session_unref(m, r->session);
                free(r->dst), free(r);
            } else {
                pp = &r->next;
            }
        }
    pthread_mutex_unlock(&m->mu);
}

/* ---- the transfer thread ---- */

static uint64_t next_rand(pd_manager *m) { /* xorshift64, mu held */
    uint64_t x = m->rng;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return m->rng = x;
}

static void send_note(xfer_peer *p, uint64_t room, kv_poll status, const char *msg) {
    pd_note n = {PD_NOTE_MAGIC, (uint32_t)status, room, ""};
    snprintf(n.msg, sizeof n.msg, "%s", msg ? msg : "");
    char err[200];
    if (xfer_notify(p, &n, sizeof n, err, sizeof err) != 0)
        log_warn("room %" PRIu64 ": cannot notify the decode server: %s", room, err);
}

/* Writes job j's KV (one write per run of slots contiguous on both sides, per buffer) and its
 * aux record. Returns 0 or -1 with why. */
static int write_room(pd_manager *m, pd_job *j, pd_session *s, const int32_t *dst, int aux_idx,
                      double timeout_s, char *why, size_t why_len) {
    int64_t runs = 0;
    for (int64_t i = 0; i < j->n; i++)
        if (i == 0 || j->src[i] != j->src[i - 1] + 1 || dst[i] != dst[i - 1] + 1) runs++;
    size_t nw = (size_t)runs * (size_t)m->o.n_bufs + 1;
    xfer_write *w = malloc(nw * sizeof *w);
    if (!w) {
        snprintf(why, why_len, "out of memory");
        return -1;
    }
    size_t k = 0;
    size_t sb = m->o.slot_bytes;
    for (int b = 0; b < m->o.n_bufs; b++) {
        uint8_t *base = m->o.bufs[b];
        for (int64_t i = 0; i < j->n;) {
            int64_t e = i + 1;
            while (e < j->n && j->src[e] == j->src[e - 1] + 1 && dst[e] == dst[e - 1] + 1) e++;
            w[k].local = base + (size_t)j->src[i] * sb;
            w[k].remote = s->bases[b] + (uint64_t)dst[i] * sb;
            w[k].len = (size_t)(e - i) * sb;
            k++;
            i = e;
        }
    }
    w[k].local = &j->aux;
    w[k].remote = s->aux_base + (uint64_t)aux_idx * sizeof(pd_aux);
    w[k].len = sizeof(pd_aux);
    k++;
    int64_t batch = xfer_submit(s->peer, w, k, why, why_len);
    free(w);
    if (batch < 0) return -1;
    int rc = xfer_wait(s->peer, batch, (int)(timeout_s * 1000), why, why_len);
    if (rc == 0) snprintf(why, why_len, "KV transfer timed out after %.0f s", timeout_s);
    return rc == 1 ? 0 : -1;
}

/* An aborted room: decode hears of it (if it asked for the room) and the room goes. */
static void abort_job(pd_manager *m, pd_job *j) {
    pthread_mutex_lock(&m->mu);
    pd_room *r = pd_room_find(m, j->room);
    pd_session *s = r && r->session && !r->session->dead ? r->session : NULL;
    if (s) s->refs++;
    pthread_mutex_unlock(&m->mu);
    if (s) send_note(s->peer, j->room, KVPOLL_FAILED, j->why);
    pthread_mutex_lock(&m->mu);
    if (s) pd_session_unref(m, s);
    r = pd_room_find(m, j->room);
    if (r) {
        r->busy = false;
        r->has_sender = false; /* garbage collection removes it */
        r->t_created = 0;
        pd_room_set_failed(r, "%s", j->why);
    }
    pthread_mutex_unlock(&m->mu);
}

static void run_job(pd_manager *m, pd_job *j) {
    if (j->abort) {
        abort_job(m, j);
        return;
    }
    pthread_mutex_lock(&m->mu);
    pd_room *r = pd_room_find(m, j->room);
    pd_session *s = r ? r->session : NULL;
    char why[300] = "";
    bool inject = false;
    int aux_idx = r ? r->aux_idx : 0;
    int32_t *dst = r ? r->dst : NULL;
    if (!r || !s || !dst) snprintf(why, sizeof why, "no destination for this room");
    else if (r->state == KVPOLL_FAILED) snprintf(why, sizeof why, "%s", r->err);
    else if (s->dead) snprintf(why, sizeof why, "the decode server's transfer endpoint failed");
    else if (r->n_dst != j->n)
        snprintf(why, sizeof why, "the decode server set aside %lld slots for a prompt of %lld "
                 "tokens (different tokenizers?)", (long long)r->n_dst, (long long)j->n);
    if (s) s->refs++;
    if (!why[0] && m->o.failure_prob > 0 &&
        (double)(next_rand(m) >> 11) * 0x1.0p-53 < m->o.failure_prob)
        inject = true;
    pthread_mutex_unlock(&m->mu);

    double t0 = time_now_s();
    int rc = -1;
    if (inject) snprintf(why, sizeof why, "injected failure (DISAGGREGATION_TEST_FAILURE_PROB)");
    else if (!why[0]) rc = write_room(m, j, s, dst, aux_idx, m->o.waiting_timeout_s, why, sizeof why);
    double dt = time_now_s() - t0;
    if (s && !(rc != 0 && xfer_peer_failed(s->peer)))
        send_note(s->peer, j->room, rc == 0 ? KVPOLL_SUCCESS : KVPOLL_FAILED, why);

    pthread_mutex_lock(&m->mu);
    if (s) pd_session_unref(m, s);
    r = pd_room_find(m, j->room);
    if (r) {
        r->busy = false;
        if (rc == 0 && r->state != KVPOLL_FAILED) r->state = KVPOLL_SUCCESS;
        else pd_room_set_failed(r, "KV transfer failed: %s", why);
    }
    if (rc == 0) {
        double bytes = (double)j->n * (double)m->o.slot_bytes * m->o.n_bufs;
        m->stats.transfers_ok++;
        m->stats.bytes_total += bytes;
        m->stats.transfer_seconds_total += dt;
        m->stats.last_latency_ms = dt * 1e3;
        m->stats.last_speed_gbs = dt > 0 ? bytes / dt / 1e9 : 0;
    } else {
        m->stats.transfers_failed++;
        log_warn("room %" PRIu64 ": KV transfer failed: %s", j->room, why);
    }
    pthread_mutex_unlock(&m->mu);
    pd_changed(m);
}

static void *transfer_main(void *arg) {
    pd_manager *m = arg;
    for (;;) {
        pthread_mutex_lock(&m->mu);
        while (!m->stop && !m->jobs_head) pthread_cond_wait(&m->job_cv, &m->mu);
        pd_job *j = m->jobs_head;
        if (m->stop) j = NULL;
        if (j && !(m->jobs_head = j->next)) m->jobs_tail = NULL;
        pthread_mutex_unlock(&m->mu);
        if (!j) break;
        run_job(m, j);
        free(j->src), free(j);
    }
    return NULL;
}

void pd_prefill_peer_failed(pd_manager *m, xfer_peer *p, const char *why) {
    pthread_mutex_lock(&m->mu);
    for (pd_session *s = m->sessions; s; s = s->next)
        if (s->peer == p && !s->dead) {
            log_warn("decode session %016" PRIx64 " lost: %s", s->id, why);
            s->dead = true;
            pd_session_unref(m, s); /* the list's reference */
            break;
        }
    pthread_mutex_unlock(&m->mu);
}

/* ---- start and stop ---- */

/* An address of this host that others can reach, for a bootstrap server bound to all. */
static void pick_host_ip(char *out, size_t len) {
    snprintf(out, len, "127.0.0.1");
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) != 0) return;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)i->ifa_addr;
            if ((ntohl(a->sin_addr.s_addr) >> 24) == 127) continue;
            inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)len);
            break;
        }
    freeifaddrs(ifs);
}

typedef struct {
    pd_manager *m;
    char url[320];
    char ip[256];
    int port;
} reg_task;

static void on_registered(http_call *c, int status, const char *body, size_t len,
                          const char *err, void *ud) {
    (void)c, (void)len;
    if (status != 200)
        log_error("bootstrap: PUT /route failed: %s", err ? err : body ? body : "?");
    (void)ud;
}

static void register_rank(void *arg) {
    reg_task *t = arg;
    json_t *body = json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:s,s:i}", "role", "Prefill",
                             "attn_tp_size", 1, "attn_tp_rank", 0, "attn_dp_size", 1,
                             "attn_dp_rank", 0, "pp_size", 1, "pp_rank", 0, "system_dp_size", 1,
                             "system_dp_rank", 0, "rank_ip", t->ip, "rank_port", t->port);
    http_call_cbs cbs = {.on_done = on_registered};
    char err[200];
    if (!body || !http_call_json(http_server_base(t->m->http), "PUT", t->url, body, 10, &cbs,
                                 err, sizeof err))
        log_error("bootstrap: cannot register the prefill rank: %s", body ? err : "out of memory");
    json_decref(body);
    free(t);
}

int pd_prefill_start(pd_manager *m, char *err, size_t err_len) {
    http_server_opts ho = {.host = m->host, .port = m->o.bootstrap_port,
                           .max_body = 64u << 20};
    m->http = http_server_new(&ho, err, err_len);
    if (!m->http) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "bootstrap server on %s:%d: %s", m->host, m->o.bootstrap_port,
                 err);
        snprintf(err, err_len, "%s", tmp);
        return -1;
    }
    if (http_server_route(m->http, "PUT", "/route", route_put, m) ||
        http_server_route(m->http, "GET", "/route", route_get, m) ||
        http_server_route(m->http, "GET", "/health", route_health, m) ||
        http_server_route(m->http, "POST", "/kv/session", kv_session, m) ||
        http_server_route(m->http, "POST", "/kv/transfer", kv_transfer, m)) {
        snprintf(err, err_len, "cannot register the bootstrap routes");
        return -1;
    }
    m->timer = event_new(http_server_base(m->http), -1, EV_PERSIST, on_gc, m);
    struct timeval tv = {1, 0};
    if (!m->timer || event_add(m->timer, &tv) != 0) {
        snprintf(err, err_len, "cannot start the bootstrap timer");
        return -1;
    }
    if (http_server_start(m->http) != 0) {
        snprintf(err, err_len, "cannot start the bootstrap server's thread");
        return -1;
    }
    if (pthread_create(&m->thread, NULL, transfer_main, m) != 0) {
        snprintf(err, err_len, "cannot start the transfer thread");
        return -1;
    }
    m->thread_started = true;
    reg_task *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    t->m = m;
    int port = http_server_port(m->http);
    bool any = !strcmp(m->host, "0.0.0.0") || !strcmp(m->host, "::") || !*m->host;
    if (m->advertise && *m->advertise) snprintf(t->ip, sizeof t->ip, "%s", m->advertise);
    else if (any) pick_host_ip(t->ip, sizeof t->ip);
    else snprintf(t->ip, sizeof t->ip, "%s", m->host);
    t->port = port;
    const char *self = any ? "127.0.0.1" : m->host;
    snprintf(t->url, sizeof t->url, strchr(self, ':') ? "http://[%s]:%d/route" : "http://%s:%d/route",
             self, port);
    log_info("bootstrap server on %s:%d (prefill rank reachable at %s:%d)", m->host, port, t->ip,
             port);
    if (http_server_post(m->http, register_rank, t) != 0) {
        free(t);
        snprintf(err, err_len, "cannot reach the bootstrap loop");
        return -1;
    }
    return 0;
}

void pd_prefill_stop(pd_manager *m) {
    if (!m->thread_started) return;
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_cond_signal(&m->job_cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    m->thread_started = false;
}
