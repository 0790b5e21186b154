/* Implementation of disagg/pd.h, common part: options, the room table, the calls the scheduler
 * makes, creation and teardown. The prefill and decode halves are pd_prefill.c and
 * pd_decode.c. */
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "disagg/pd_internal.h"

static double env_num(const char *name, double def) {
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    double x = strtod(v, &end);
    if (*end || x < 0) {
        log_warn("%s=%s is not a non-negative number: using %g", name, v, def);
        return def;
    }
    return x;
}

void pd_opts_default(pd_opts *o, pd_mode mode) {
    memset(o, 0, sizeof *o);
    o->mode = mode;
    o->backend = "ucx";
    o->host = "127.0.0.1";
    o->bootstrap_port = 8998;
    /* SGLang's names and defaults (srt/disaggregation/utils.py, environ.py) */
    o->bootstrap_timeout_s = env_num("SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT", 300);
    o->waiting_timeout_s = env_num("SGLANG_DISAGGREGATION_WAITING_TIMEOUT", 300);
    o->heartbeat_s = env_num("SGLANG_DISAGGREGATION_HEARTBEAT_INTERVAL", 5);
    o->heartbeat_max_failures = (int)env_num("SGLANG_DISAGGREGATION_HEARTBEAT_MAX_FAILURE", 2);
    o->failure_prob = env_num("DISAGGREGATION_TEST_FAILURE_PROB", 0);
    if (o->heartbeat_s < 0.1) o->heartbeat_s = 0.1;
    if (o->heartbeat_max_failures < 1) o->heartbeat_max_failures = 1;
}

/* ---- rooms (mu held) ---- */

static unsigned bucket(uint64_t room) { return (unsigned)((room * 0x9E3779B97F4A7C15ULL) >> 54); }

pd_room *pd_room_find(pd_manager *m, uint64_t room) {
    for (pd_room *r = m->rooms[bucket(room)]; r; r = r->next)
        if (r->room == room) return r;
    return NULL;
}

pd_room *pd_room_add(pd_manager *m, uint64_t room) {
    pd_room *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->room = room;
    r->state = KVPOLL_BOOTSTRAPPING;
    r->t_created = time_now_s();
    unsigned b = bucket(room);
    r->next = m->rooms[b];
    m->rooms[b] = r;
    return r;
}

void pd_room_set_failed(pd_room *r, const char *fmt, ...) {
    if (r->state == KVPOLL_FAILED) return; /* the first reason stays */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    r->state = KVPOLL_FAILED;
}

static void room_free(pd_manager *m, pd_room *r) {
    if (r->session) pd_session_unref(m, r->session);
    free(r->dst);
    free(r);
}

static void room_remove(pd_manager *m, pd_room *r) {
    pd_room **pp = &m->rooms[bucket(r->room)];
    while (*pp && *pp != r) pp = &(*pp)->next;
    if (*pp) *pp = r->next;
    room_free(m, r);
}

void pd_session_unref(pd_manager *m, pd_session *s) {
    if (--s->refs > 0 || !s->dead) return;
    pd_session **pp = &m->sessions;
    while (*pp && *pp != s) pp = &(*pp)->next;
    if (*pp) *pp = s->next;
    xfer_close(s->peer);
    free(s->bases);
    free(s);
}

void pd_changed(pd_manager *m) {
    if (m->o.on_change) m->o.on_change(m->o.ud);
}

/* ---- the scheduler's calls ---- */

kv_poll pd_poll(pd_manager *m, uint64_t room, char *err, size_t err_len) {
    pthread_mutex_lock(&m->mu);
    pd_room *r = pd_room_find(m, room);
    kv_poll st = r ? r->state : KVPOLL_FAILED;
    if (err_len) snprintf(err, err_len, "%s", r ? r->err : "unknown bootstrap room");
    pthread_mutex_unlock(&m->mu);
    return st;
}

int pd_drop(pd_manager *m, uint64_t room) {
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    pd_room *r = pd_room_find(m, room);
    if (r && r->busy) rc = -1;
    else if (r) room_remove(m, r);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void pd_fail(pd_manager *m, uint64_t room, const char *why) {
    pthread_mutex_lock(&m->mu);
    pd_room *r = pd_room_find(m, room);
    if (r) pd_room_set_failed(r, "%s", why);
    pthread_mutex_unlock(&m->mu);
}

int pd_sender_new(pd_manager *m, uint64_t room) {
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    pd_room *r = pd_room_find(m, room);
    if (r && r->has_sender) {
        rc = -1;
    } else {
        if (!r) r = pd_room_add(m, room);
        if (!r) {
            rc = -1;
        } else {
            r->has_sender = true;
            r->t_created = time_now_s();
            if (r->dst && r->state == KVPOLL_BOOTSTRAPPING) r->state = KVPOLL_WAITING;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int64_t pd_sender_dst_tokens(pd_manager *m, uint64_t room) {
    pthread_mutex_lock(&m->mu);
    pd_room *r = pd_room_find(m, room);
    int64_t n = r && r->dst ? r->n_dst : -1;
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* Hands j to the transfer thread; its room is busy until the thread is done with it. */
static void push_job(pd_manager *m, pd_job *j) {
    pthread_mutex_lock(&m->mu);
    pd_room *r = pd_room_find(m, j->room);
    if (r) r->busy = true;
    if (m->jobs_tail) m->jobs_tail->next = j;
    else m->jobs_head = j;
    m->jobs_tail = j;
    pthread_cond_signal(&m->job_cv);
    pthread_mutex_unlock(&m->mu);
}

int pd_sender_send(pd_manager *m, uint64_t room, const int32_t *slots, int64_t n,
                   const pd_aux *aux) {
    pd_job *j = calloc(1, sizeof *j);
    if (j) j->src = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    if (!j || !j->src) {
        if (j) free(j);
        pd_fail(m, room, "out of memory queueing the KV transfer");
        return -1;
    }
    j->room = room;
    j->n = n;
    memcpy(j->src, slots, (size_t)n * sizeof(int32_t));
    j->aux = *aux;
    push_job(m, j);
    return 0;
}

void pd_sender_abort(pd_manager *m, uint64_t room, const char *why) {
    pd_job *j = calloc(1, sizeof *j);
    if (!j) { /* decode times out instead */
        pd_drop(m, room);
        return;
    }
    j->room = room;
    j->abort = true;
    snprintf(j->why, sizeof j->why, "%s", why);
    push_job(m, j);
}

int pd_receiver_new(pd_manager *m, uint64_t room, const char *host, int port) {
    pthread_mutex_lock(&m->mu);
    int rc = 0;
    pd_target *t = NULL;
    if (pd_room_find(m, room)) {
        rc = -1;
    } else {
        for (t = m->targets; t; t = t->next)
            if (t->port == port && !strcmp(t->host, host)) break;
        if (!t && (t = calloc(1, sizeof *t))) {
            snprintf(t->host, sizeof t->host, "%s", host);
            t->port = port;
            t->next = m->targets;
            m->targets = t;
        }
        pd_room *r = t ? pd_room_add(m, room) : NULL;
        if (!r) rc = -1;
        else r->target = t;
    }
    pthread_mutex_unlock(&m->mu);
    if (rc == 0) pd_decode_resolve(m, room);
    return rc;
}

int pd_receiver_init(pd_manager *m, uint64_t room, const int32_t *slots, int64_t n, int aux_idx) {
    if (aux_idx < 0 || aux_idx >= m->o.n_aux) return -1;
    memset(&m->aux[aux_idx], 0, sizeof m->aux[aux_idx]);
    return pd_decode_send_slots(m, room, slots, n, aux_idx);
}

const pd_aux *pd_aux_record(pd_manager *m, int idx) {
    return idx >= 0 && idx < m->o.n_aux ? &m->aux[idx] : NULL;
}

void pd_get_stats(pd_manager *m, pd_stats *st) {
    pthread_mutex_lock(&m->mu);
    *st = m->stats;
    pthread_mutex_unlock(&m->mu);
}

int pd_bootstrap_port(const pd_manager *m) {
    return m->http && m->o.mode == PD_PREFILL ? http_server_port(m->http) : m->o.bootstrap_port;
}

/* ---- creation ---- */

static void on_notify(const void *msg, size_t len, void *ud) { pd_decode_on_note(ud, msg, len); }

static void on_peer_fail(xfer_peer *p, const char *why, void *ud) {
    pd_manager *m = ud;
    if (m->o.mode == PD_PREFILL) pd_prefill_peer_failed(m, p, why);
}

static char *dup_str(const char *s) { return s ? strdup(s) : NULL; }

pd_manager *pd_create(const pd_opts *o, char *err, size_t err_len) {
    pd_manager *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    m->o = *o;
    m->host = dup_str(o->host ? o->host : "127.0.0.1");
    m->advertise = dup_str(o->advertise);
    m->backend = dup_str(o->backend ? o->backend : "ucx");
    m->o.host = m->host, m->o.advertise = m->advertise, m->o.backend = m->backend;
    m->o.bufs = o->n_bufs > 0 ? malloc((size_t)o->n_bufs * sizeof *m->o.bufs) : NULL;
    if (m->o.bufs) memcpy(m->o.bufs, o->bufs, (size_t)o->n_bufs * sizeof *m->o.bufs);
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->job_cv, NULL);
    uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)m;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    m->rng = seed ^ (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL;
    if (!m->rng) m->rng = 1;
    if (!m->host || !m->backend || (o->n_bufs > 0 && !m->o.bufs)) {
        snprintf(err, err_len, "out of memory");
        pd_destroy(m);
        return NULL;
    }
    xfer_opts xo = {.backend = m->backend, .on_notify = on_notify, .on_peer_fail = on_peer_fail,
                    .ud = m};
    m->xe = xfer_create(&xo, err, err_len);
    if (!m->xe) {
        pd_destroy(m);
        return NULL;
    }
    for (int b = 0; b < o->n_bufs; b++)
        if (xfer_register(m->xe, o->bufs[b], o->buf_bytes, err, err_len) != 0) {
            pd_destroy(m);
            return NULL;
        }
    int rc = o->mode == PD_PREFILL ? pd_prefill_start(m, err, err_len)
                                   : pd_decode_start(m, err, err_len);
    if (rc != 0) {
        pd_destroy(m);
        return NULL;
    }
    log_info("PD %s: transfer backend %s, %d KV buffers of %.1f MB registered%s",
             o->mode == PD_PREFILL ? "prefill" : "decode", xfer_backend_name(m->xe), o->n_bufs,
             (double)o->buf_bytes / 1048576.0, o->failure_prob > 0 ? ", fault injection on" : "");
    return m;
}

void pd_destroy(pd_manager *m) {
    if (!m) return;
    if (m->o.mode == PD_PREFILL) pd_prefill_stop(m);
    if (m->http) {
        http_server_stop(m->http, 0);
        http_server_wait(m->http);
    }
    if (m->timer) event_free(m->timer);
    http_server_free(m->http);
    /* the sessions' peers belong to the engine: close them before it goes */
    for (int b = 0; b < PD_BUCKETS; b++)
        while (m->rooms[b]) room_remove(m, m->rooms[b]);
    for (pd_session *s = m->sessions, *n; s; s = n) {
        n = s->next;
        xfer_close(s->peer);
        free(s->bases), free(s);
    }
    xfer_destroy(m->xe);
    if (m->aux) munmap(m->aux, m->aux_map_bytes);
    for (pd_target *t = m->targets, *n; t; t = n) {
        n = t->next;
        free(t);
    }
    for (pd_job *j = m->jobs_head, *n; j; j = n) {
        n = j->next;
        free(j->src), free(j);
    }
    free(m->desc_b64);
    free(m->host), free(m->advertise), free(m->backend), free(m->o.bufs);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->job_cv);
    free(m);
}
