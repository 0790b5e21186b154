/* The UCX (UCP) backend of the transfer engine.
 *
 * One progress thread per engine makes every UCX call, so the worker runs in UCX's single-thread
 * mode and no UCX lock is ever contended. Callers' requests become commands on a queue guarded by
 * one mutex; synchronous ones (register, descriptor, open, close) wait for the thread, writes and
 * notifies do not. The thread blocks in epoll on the worker's event fd (ucp_worker_arm) and an
 * eventfd rung by callers; it wakes every 250 ms while peers are open, so that UCX's keepalive
 * runs and a dead peer is noticed (KEEPALIVE_INTERVAL defaults to 1 s here instead of UCX's 20 s).
 * The target side needs this thread too: over TCP (and shared memory without CMA), UCX emulates
 * puts with active messages that the target's worker must progress.
 *
 * A batch is its puts plus one ucp_ep_flush_nbx: put completion only means the source may be
 * reused, the flush completes once every byte is written remotely. A notify is another flush whose
 * completion sends the active message, so the message lands after every earlier write.
 *
 * Batch state lives under the engine mutex: UCX callbacks (progress thread) count requests down,
 * pollers read and finally unlink it; whichever comes last frees it. Peer objects stay alive until
 * their endpoint has closed, even after xfer_close returns, since UCX may still call back.
 *
 * Without UCX (SGLC_HAVE_UCX unset: a build without the network modules) this file is empty and
 * only the fake backend exists. */
#include "disagg/transfer.h"

#ifdef SGLC_HAVE_UCX
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <ucp/api/ucp.h>
#include <unistd.h>

#include "base/log.h"

#define AM_NOTIFY_ID 7
#define KEEPALIVE_WAKE_MS 250
#define CLOSE_DEADLINE_S 3.0
/* UCX parses a worker address without a length: a margin of zeros past the copied address keeps
 * a malformed (but checksummed) one from reading outside our buffer. */
#define ADDR_PAD 4096

typedef struct ucx_engine ucx_engine;
typedef struct ucx_peer ucx_peer;

typedef struct ucx_batch {
    int64_t id;
    int state;       /* 0 pending, 1 done, -1 failed */
    int outstanding; /* UCX requests not completed yet (+1 until every request is posted) */
    bool forgotten;  /* the caller has collected the result and unlinked it */
    bool spin;       /* its requests go over CMA, which has no completion events */
    char err[192];
    struct ucx_batch *next;
} ucx_batch;

typedef struct {
    void *base;
    size_t len;
    ucp_mem_h memh;
    void *rkey;
    size_t rkey_len;
} ucx_region;

struct ucx_peer {
    xfer_peer base;
    ucx_engine *e;
    xfer_desc d;
    void *desc_copy;
    uint8_t *addr; /* the worker address, padded */
    ucp_rkey_h *rkeys;
    ucp_ep_h ep;        /* error-handling endpoint: notifies, liveness, and writes off-host */
    ucp_ep_h dep;       /* same host: a CMA endpoint for the writes, or NULL */
    ucp_rkey_h *drkeys; /* the rkeys unpacked for dep */
    atomic_bool failed;
    bool closed;           /* progress thread only */
    void *close_req;       /* while the endpoint is closing */
    char why[192];         /* set once, before failed is */
    int64_t next_batch;    /* under e->mu */
    ucx_batch *batches;    /* under e->mu: submitted, not yet collected */
    ucx_peer *next;        /* e->peers or e->closing: progress thread only */
};

typedef enum { CMD_REG, CMD_DESC, CMD_OPEN, CMD_CLOSE, CMD_SUBMIT, CMD_NOTIFY, CMD_INFO } cmd_kind;

typedef struct cmd {
    cmd_kind kind;
    struct cmd *next;
    bool sync, done;
    int rc;
    char err[256];
    ucx_peer *peer;
    ucx_batch *batch;
    void *addr; /* REG */
    size_t len; /* REG; NOTIFY: message length; SUBMIT: writes */
    void **out; /* DESC */
    size_t *out_len;
    char *buf; /* INFO */
    size_t buf_len;
    xfer_write *w; /* SUBMIT */
    uint32_t *region; /* SUBMIT: region index of each write */
    struct cmd *ready_next; /* NOTIFY: flushed, waiting to be sent */
    bool spin;              /* NOTIFY: its flush is on a CMA endpoint */
    uint8_t msg[];          /* NOTIFY */
} cmd;

struct ucx_engine {
    xfer_engine base;
    xfer_opts opts;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* batch finished, peer failed, command done */
    cmd *q_head, *q_tail;
    bool stop;
    int evfd, epfd;
    /* progress thread only */
    ucp_context_h ctx;
    ucp_worker_h worker;
    ucp_address_t *waddr;
    size_t waddr_len;
    ucx_region *regions;
    uint32_t n_regions;
    ucx_peer *peers, *closing;
    cmd *ready_head, *ready_tail;
    /* Requests in flight on CMA endpoints. CMA raises no events, so while any is queued the
     * thread keeps progressing instead of sleeping (it spins only while a transfer runs). */
    int spin_reqs;
    uint64_t tag;
    /* start-up handshake */
    int init_rc;
    bool init_done;
    char init_err[256];
};

static void set_err(char *err, size_t err_len, const char *fmt, ...) {
    if (!err || !err_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static void deadline_in(struct timespec *ts, int ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) ts->tv_sec++, ts->tv_nsec -= 1000000000L;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void wake(ucx_engine *e) {
    uint64_t one = 1;
    ssize_t r = write(e->evfd, &one, sizeof one);
    (void)r; /* the counter can only saturate, in which case the thread is awake anyway */
}

/* ---- batch bookkeeping (engine mutex held) ------------------------------------------------ */

static void batch_fail_locked(ucx_batch *b, const char *why) {
    if (b->state != 0) return;
    b->state = -1;
    snprintf(b->err, sizeof b->err, "%s", why);
}

/* One request of the batch finished with `st`; frees the batch when the caller is done too. */
static void batch_put_locked(ucx_engine *e, ucx_batch *b, ucs_status_t st) {
    if (st != UCS_OK) {
        char why[160];
        snprintf(why, sizeof why, "write failed: %s", ucs_status_string(st));
        batch_fail_locked(b, why);
    }
    if (--b->outstanding == 0) {
        if (b->state == 0) b->state = 1;
        pthread_cond_broadcast(&e->cv);
        if (b->forgotten) free(b);
    } else if (b->state != 0) {
        pthread_cond_broadcast(&e->cv);
    }
}

/* The engine whose progress thread this is: UCX callbacks only run there. */
static __thread ucx_engine *ucx_cur_engine;

static void req_cb(void *request, ucs_status_t st, void *user_data) {
    ucx_batch *b = user_data;
    ucx_engine *e = ucx_cur_engine;
    if (b->spin) e->spin_reqs--;
    pthread_mutex_lock(&e->mu);
    batch_put_locked(e, b, st);
    pthread_mutex_unlock(&e->mu);
    ucp_request_free(request);
}

/* ---- peer failure ------------------------------------------------------------------------- */

static void peer_fail(ucx_peer *p, const char *why) {
    ucx_engine *e = p->e;
    pthread_mutex_lock(&e->mu);
    bool first = !atomic_load(&p->failed);
    if (first) {
        snprintf(p->why, sizeof p->why, "%s", why);
        atomic_store(&p->failed, true);
    }
    for (ucx_batch *b = p->batches; b; b = b->next) batch_fail_locked(b, p->why);
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (first && !p->closed) {
        log_warn("transfer: peer failed: %s", why);
        if (e->opts.on_peer_fail) e->opts.on_peer_fail(&p->base, why, e->opts.ud);
    }
}

static void ep_err_cb(void *arg, ucp_ep_h ep, ucs_status_t st) {
    (void)ep;
    char why[160];
    snprintf(why, sizeof why, "peer endpoint failed: %s", ucs_status_string(st));
    peer_fail(arg, why);
}

/* ---- notifications ------------------------------------------------------------------------ */

static ucs_status_t am_recv_cb(void *arg, const void *header, size_t header_len, void *data,
                               size_t len, const ucp_am_recv_param_t *param) {
    (void)header, (void)header_len;
    ucx_engine *e = arg;
    if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
        /* senders force eager; a rendezvous message is not ours */
        log_warn("transfer: dropped a %zu-byte rendezvous notification", len);
        return UCS_OK;
    }
    if (len > XFER_NOTIFY_MAX) {
        log_warn("transfer: dropped an oversized notification (%zu bytes)", len);
        return UCS_OK;
    }
    if (e->opts.on_notify) e->opts.on_notify(data, len, e->opts.ud);
    return UCS_OK;
}

static void am_sent_cb(void *request, ucs_status_t st, void *user_data) {
    cmd *c = user_data;
    if (st != UCS_OK) log_warn("transfer: notification failed: %s", ucs_status_string(st));
    free(c);
    ucp_request_free(request);
}

static void notify_flushed_cb(void *request, ucs_status_t st, void *user_data) {
    cmd *c = user_data;
    ucx_engine *e = ucx_cur_engine;
    if (c->spin) e->spin_reqs--;
    ucp_request_free(request);
    if (st != UCS_OK) {
        log_warn("transfer: notification dropped, flush failed: %s", ucs_status_string(st));
        free(c);
        return;
    }
    /* sent from the loop rather than from inside a UCX callback */
    c->ready_next = NULL;
    if (e->ready_tail)
        e->ready_tail->ready_next = c;
    else
        e->ready_head = c;
    e->ready_tail = c;
}

static void notify_send(ucx_engine *e, cmd *c) {
    (void)e;
    ucx_peer *p = c->peer;
    if (p->closed || atomic_load(&p->failed)) {
        free(c);
        return;
    }
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
                                               UCP_OP_ATTR_FIELD_USER_DATA |
                                               UCP_OP_ATTR_FIELD_FLAGS,
                               .cb.send = am_sent_cb,
                               .user_data = c,
                               .flags = UCP_AM_SEND_FLAG_EAGER};
    ucs_status_ptr_t r = ucp_am_send_nbx(p->ep, AM_NOTIFY_ID, NULL, 0, c->msg, c->len, &prm);
    if (UCS_PTR_IS_ERR(r)) {
        log_warn("transfer: notification failed: %s", ucs_status_string(UCS_PTR_STATUS(r)));
        free(c);
    } else if (!r) {
        free(c);
    }
}

/* ---- commands, on the progress thread ----------------------------------------------------- */

static void exec_reg(ucx_engine *e, cmd *c) {
    uintptr_t a = (uintptr_t)c->addr;
    for (uint32_t i = 0; i < e->n_regions; i++) {
        uintptr_t b = (uintptr_t)e->regions[i].base;
        if (a < b + e->regions[i].len && b < a + c->len) {
            set_err(c->err, sizeof c->err, "region %p+%zu overlaps a registered one", c->addr,
                    c->len);
            c->rc = -1;
            return;
        }
    }
    ucx_region *r = realloc(e->regions, (e->n_regions + 1) * sizeof *r);
    if (!r) {
        set_err(c->err, sizeof c->err, "out of memory");
        c->rc = -1;
        return;
    }
    e->regions = r;
    ucx_region *g = &r[e->n_regions];
    memset(g, 0, sizeof *g);
    ucp_mem_map_params_t mp = {.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS |
                                             UCP_MEM_MAP_PARAM_FIELD_LENGTH,
                               .address = c->addr,
                               .length = c->len};
    ucs_status_t st = ucp_mem_map(e->ctx, &mp, &g->memh);
    if (st != UCS_OK) {
        set_err(c->err, sizeof c->err, "ucp_mem_map(%zu bytes): %s", c->len,
                ucs_status_string(st));
        c->rc = -1;
        return;
    }
    st = ucp_rkey_pack(e->ctx, g->memh, &g->rkey, &g->rkey_len);
    if (st != UCS_OK) {
        ucp_mem_unmap(e->ctx, g->memh);
        set_err(c->err, sizeof c->err, "ucp_rkey_pack: %s", ucs_status_string(st));
        c->rc = -1;
        return;
    }
    g->base = c->addr;
    g->len = c->len;
    e->n_regions++;
    c->rc = 0;
}

static void exec_desc(ucx_engine *e, cmd *c) {
    xfer_desc_region *r = calloc(e->n_regions ? e->n_regions : 1, sizeof *r);
    if (!r) {
        set_err(c->err, sizeof c->err, "out of memory");
        c->rc = -1;
        return;
    }
    for (uint32_t i = 0; i < e->n_regions; i++)
        r[i] = (xfer_desc_region){.base = (uintptr_t)e->regions[i].base,
                                  .len = e->regions[i].len,
                                  .rkey = e->regions[i].rkey,
                                  .rkey_len = (uint32_t)e->regions[i].rkey_len};
    c->rc = xfer_desc_encode(XFER_DESC_UCX, e->tag, e->waddr, (uint32_t)e->waddr_len, r,
                             e->n_regions, c->out, c->out_len, c->err, sizeof c->err);
    free(r);
}

static void peer_free(ucx_peer *p) {
    for (uint32_t i = 0; i < p->d.n_regions; i++) {
        if (p->rkeys && p->rkeys[i]) ucp_rkey_destroy(p->rkeys[i]);
        if (p->drkeys && p->drkeys[i]) ucp_rkey_destroy(p->drkeys[i]);
    }
    free(p->drkeys);
    /* every request has completed by now; batches still linked were never collected */
    ucx_batch *b = p->batches;
    while (b) {
        ucx_batch *n = b->next;
        free(b);
        b = n;
    }
    free(p->rkeys);
    free(p->d.regions);
    free(p->desc_copy);
    free(p->addr);
    free(p);
}

/* Closes an endpoint and waits for it: only for endpoints that need no remote handshake (forced,
 * or just created). */
static void ep_close_now(ucx_engine *e, ucp_ep_h ep) {
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                               .flags = UCP_EP_CLOSE_FLAG_FORCE};
    void *r = ucp_ep_close_nbx(ep, &prm);
    while (r && !UCS_PTR_IS_ERR(r) && ucp_request_check_status(r) == UCS_INPROGRESS)
        ucp_worker_progress(e->worker);
    if (r && !UCS_PTR_IS_ERR(r)) ucp_request_free(r);
}

static char *ep_info(ucp_ep_h ep) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    ucp_ep_print_info(ep, f);
    fclose(f);
    return text;
}

/* UCX 1.13 will not pick shared memory or CMA for an endpoint with peer-failure handling, so
 * writes to a peer on this host would go through TCP loopback with software-emulated puts
 * (~0.25 GB/s here). For such a peer a second endpoint without error handling carries the writes
 * over CMA (process_vm_writev: no target progress, ~10 GB/s), while the error-handling endpoint
 * still watches the peer's life and carries the notifies. Used only when the descriptor comes
 * from this host (same boot id and ipc/pid/net namespaces) and UCX really chose CMA for puts.
 * Opt-in (SGLC_XFER_CMA=1) for now: on this loaded 2-core VM it measured no faster than TCP
 * (bench/README_transfer.md), and the cause is not yet understood. */
static void open_data_ep(ucx_engine *e, ucx_peer *p) {
    const char *on = getenv("SGLC_XFER_CMA");
    if (p->d.tag != e->tag || !on || !*on || !strcmp(on, "0")) return;
    ucp_ep_params_t ep = {.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS |
                                        UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE,
                          .address = (const ucp_address_t *)p->addr,
                          .err_mode = UCP_ERR_HANDLING_MODE_NONE};
    ucp_ep_h dep;
    if (ucp_ep_create(e->worker, &ep, &dep) != UCS_OK) return;
    /* a CMA lane for puts, and no lane that needs the peer to answer (tcp) */
    char *info = ep_info(dep);
    bool ok = info && strstr(info, "cma/") && !strstr(info, "tcp/");
    if (ok) {
        char *rma = strstr(info, "rma_bw#");
        ok = rma != NULL;
    }
    free(info);
    ucp_rkey_h *rk = ok ? calloc(p->d.n_regions ? p->d.n_regions : 1, sizeof *rk) : NULL;
    for (uint32_t i = 0; rk && i < p->d.n_regions; i++)
        if (ucp_ep_rkey_unpack(dep, p->d.regions[i].rkey, &rk[i]) != UCS_OK) {
            for (uint32_t j = 0; j < i; j++) ucp_rkey_destroy(rk[j]);
            free(rk);
            rk = NULL;
        }
    if (!rk) {
        ep_close_now(e, dep);
        return;
    }
    p->dep = dep;
    p->drkeys = rk;
}

static void exec_open(ucx_engine *e, cmd *c) {
    ucx_peer *p = c->peer;
    ucp_ep_params_t ep = {.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS |
                                        UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                                        UCP_EP_PARAM_FIELD_ERR_HANDLER,
                          .address = (const ucp_address_t *)p->addr,
                          .err_mode = UCP_ERR_HANDLING_MODE_PEER,
                          .err_handler = {.cb = ep_err_cb, .arg = p}};
    ucs_status_t st = ucp_ep_create(e->worker, &ep, &p->ep);
    if (st != UCS_OK) {
        set_err(c->err, sizeof c->err, "ucp_ep_create: %s", ucs_status_string(st));
        c->rc = -1;
        return;
    }
    for (uint32_t i = 0; i < p->d.n_regions; i++) {
        st = ucp_ep_rkey_unpack(p->ep, p->d.regions[i].rkey, &p->rkeys[i]);
        if (st != UCS_OK) {
            set_err(c->err, sizeof c->err, "region %u: ucp_ep_rkey_unpack: %s", i,
                    ucs_status_string(st));
            for (uint32_t j = 0; j < i; j++) ucp_rkey_destroy(p->rkeys[j]), p->rkeys[j] = NULL;
            ep_close_now(e, p->ep);
            c->rc = -1;
            return;
        }
    }
    open_data_ep(e, p);
    p->next = e->peers;
    e->peers = p;
    c->rc = 0;
}

static void peer_start_close(ucx_engine *e, ucx_peer *p) {
    for (ucx_peer **pp = &e->peers; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    p->closed = true;
    pthread_mutex_lock(&e->mu);
    for (ucx_batch *b = p->batches; b; b = b->next) batch_fail_locked(b, "peer closed");
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (p->dep) {
        /* with CMA a put is done when posted: nothing is in flight to wait for */
        ep_close_now(e, p->dep);
        p->dep = NULL;
    }
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                               .flags = atomic_load(&p->failed) ? UCP_EP_CLOSE_FLAG_FORCE : 0};
    void *r = ucp_ep_close_nbx(p->ep, &prm);
    if (!r || UCS_PTR_IS_ERR(r)) {
        peer_free(p);
        return;
    }
    p->close_req = r;
    p->next = e->closing;
    e->closing = p;
}

/* Frees the peers whose endpoint has finished closing. */
static void reap_closing(ucx_engine *e) {
    for (ucx_peer **pp = &e->closing; *pp;) {
        ucx_peer *p = *pp;
        if (ucp_request_check_status(p->close_req) == UCS_INPROGRESS) {
            pp = &p->next;
            continue;
        }
        ucp_request_free(p->close_req);
        *pp = p->next;
        peer_free(p);
    }
}

static ucp_mem_h local_memh(ucx_engine *e, const void *p, size_t len, uint32_t *hint) {
    uintptr_t a = (uintptr_t)p;
    for (uint32_t k = 0; k < e->n_regions; k++) {
        uint32_t i = (*hint + k) % e->n_regions;
        uintptr_t b = (uintptr_t)e->regions[i].base;
        if (a >= b && a - b < e->regions[i].len && len <= e->regions[i].len - (a - b)) {
            *hint = i;
            return e->regions[i].memh;
        }
    }
    return NULL;
}

static void exec_submit(ucx_engine *e, cmd *c) {
    ucx_peer *p = c->peer;
    ucx_batch *b = c->batch;
    pthread_mutex_lock(&e->mu);
    bool skip = b->state != 0;
    if (!skip && (p->closed || atomic_load(&p->failed)))
        batch_fail_locked(b, p->closed ? "peer closed" : p->why), skip = true;
    pthread_mutex_unlock(&e->mu);
    ucs_status_t bad = UCS_OK;
    int posted = 0;
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
                                               UCP_OP_ATTR_FIELD_USER_DATA,
                               .cb.send = req_cb,
                               .user_data = b};
    ucp_ep_h ep = p->dep ? p->dep : p->ep;
    ucp_rkey_h *rkeys = p->dep ? p->drkeys : p->rkeys;
    b->spin = p->dep != NULL;
    uint32_t hint = 0;
    for (size_t i = 0; !skip && i < c->len; i++) {
        if (!c->w[i].len) continue;
        /* a source inside a registered region goes with its memory handle (no rcache lookup) */
        ucp_mem_h mh = local_memh(e, c->w[i].local, c->w[i].len, &hint);
        prm.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
                           (mh ? UCP_OP_ATTR_FIELD_MEMH : 0);
        prm.memh = mh;
        ucs_status_ptr_t r = ucp_put_nbx(ep, c->w[i].local, c->w[i].len, c->w[i].remote,
                                         rkeys[c->region[i]], &prm);
        if (UCS_PTR_IS_ERR(r)) {
            bad = UCS_PTR_STATUS(r);
            break;
        }
        if (r) posted++;
    }
    if (!skip && bad == UCS_OK) {
        prm.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
        ucs_status_ptr_t r = ucp_ep_flush_nbx(ep, &prm);
        if (UCS_PTR_IS_ERR(r))
            bad = UCS_PTR_STATUS(r);
        else if (r)
            posted++;
    }
    if (b->spin) e->spin_reqs += posted;
    pthread_mutex_lock(&e->mu);
    /* callbacks of posted requests may not have run yet: they count down from here */
    b->outstanding += posted;
    batch_put_locked(e, b, bad); /* drops the +1 the batch was created with */
    pthread_mutex_unlock(&e->mu);
}

static void exec_notify(ucx_engine *e, cmd *c) {
    ucx_peer *p = c->peer;
    if (p->closed || atomic_load(&p->failed)) {
        free(c);
        return;
    }
    ucp_request_param_t prm = {.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
                                               UCP_OP_ATTR_FIELD_USER_DATA,
                               .cb.send = notify_flushed_cb,
                               .user_data = c};
    c->spin = p->dep != NULL;
    ucs_status_ptr_t r = ucp_ep_flush_nbx(p->dep ? p->dep : p->ep, &prm);
    if (UCS_PTR_IS_ERR(r)) {
        log_warn("transfer: notification dropped, flush failed: %s",
                 ucs_status_string(UCS_PTR_STATUS(r)));
        free(c);
    } else if (!r) {
        notify_send(e, c);
    } else if (c->spin) {
        e->spin_reqs++;
    }
}

/* Condenses ucp_ep_print_info's lane lines into "tl/dev(roles); ...". */
static size_t lanes_summary(ucp_ep_h ep, const char *label, char *buf, size_t cap) {
    char *text = ep_info(ep);
    if (!text) return 0;
    size_t o = 0;
    int n = snprintf(buf, cap, "%s", label);
    if (n > 0 && (size_t)n < cap) o = (size_t)n;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *l = strstr(line, "lane[");
        if (!l || !(l = strchr(l, ':'))) continue;
        l++;
        while (*l == ' ') l++;
        while (*l >= '0' && *l <= '9') l++;
        if (*l == ':') l++;
        char tl[64] = "";
        sscanf(l, "%63s", tl);
        char *roles = strstr(l, "sysdev[");
        roles = roles ? strchr(roles, ']') : NULL;
        roles = roles ? roles + 1 : (char *)"";
        while (*roles == ' ') roles++;
        n = snprintf(buf + o, cap - o, "%s%s(%s)", o > strlen(label) ? "; " : "", tl, roles);
        if (n < 0 || (size_t)n >= cap - o) break;
        o += (size_t)n;
    }
    free(text);
    return o;
}

static void exec_info(ucx_engine *e, cmd *c) {
    (void)e;
    c->buf[0] = 0;
    size_t o = 0;
    if (c->peer->dep) {
        o = lanes_summary(c->peer->dep, "writes: ", c->buf, c->buf_len);
        if (o + 3 < c->buf_len) memcpy(c->buf + o, " | ", 4), o += 3;
        else return;
    }
    lanes_summary(c->peer->ep, c->peer->dep ? "control: " : "", c->buf + o, c->buf_len - o);
}

static void exec(ucx_engine *e, cmd *c) {
    switch (c->kind) {
    case CMD_REG: exec_reg(e, c); break;
    case CMD_DESC: exec_desc(e, c); break;
    case CMD_OPEN: exec_open(e, c); break;
    case CMD_CLOSE: peer_start_close(e, c->peer); c->rc = 0; break;
    case CMD_SUBMIT: exec_submit(e, c); break;
    case CMD_NOTIFY: exec_notify(e, c); return; /* owns c */
    case CMD_INFO: exec_info(e, c); break;
    }
    if (c->sync) {
        pthread_mutex_lock(&e->mu);
        c->done = true;
        pthread_cond_broadcast(&e->cv);
        pthread_mutex_unlock(&e->mu);
    } else {
        free(c->w);
        free(c->region);
        free(c);
    }
}

static void post_async(ucx_engine *e, cmd *c) {
    pthread_mutex_lock(&e->mu);
    c->next = NULL;
    if (e->q_tail)
        e->q_tail->next = c;
    else
        e->q_head = c;
    e->q_tail = c;
    pthread_mutex_unlock(&e->mu);
    wake(e);
}

/* Runs a command on the progress thread (directly when already on it) and waits for it. */
static int run_sync(ucx_engine *e, cmd *c, char *err, size_t err_len) {
    c->sync = true;
    if (pthread_equal(pthread_self(), e->thread)) {
        exec(e, c);
    } else {
        post_async(e, c);
        pthread_mutex_lock(&e->mu);
        while (!c->done) pthread_cond_wait(&e->cv, &e->mu);
        pthread_mutex_unlock(&e->mu);
    }
    if (c->rc < 0) set_err(err, err_len, "%s", c->err);
    return c->rc;
}

/* ---- the progress thread ------------------------------------------------------------------ */

static int ucx_start(ucx_engine *e) {
    /* TCP's default 8 KiB send segments cap software-emulated puts near 0.2-0.4 GB/s on this
     * loopback; 64 KiB ones measured 1.0 GB/s for a 2,048-token prompt's KV (bench_transfer).
     * The transport reads these when its interfaces open; a user's own setting wins. */
    setenv("UCX_TCP_TX_SEG_SIZE", "64K", 0);
    setenv("UCX_TCP_RX_SEG_SIZE", "64K", 0);
    ucp_config_t *cfg;
    ucs_status_t st = ucp_config_read(NULL, NULL, &cfg);
    if (st != UCS_OK) {
        set_err(e->init_err, sizeof e->init_err, "ucp_config_read: %s", ucs_status_string(st));
        return -1;
    }
    if (!getenv("UCX_KEEPALIVE_INTERVAL")) ucp_config_modify(cfg, "KEEPALIVE_INTERVAL", "1s");
    ucp_params_t prm = {.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_NAME,
                        .features = UCP_FEATURE_RMA | UCP_FEATURE_AM | UCP_FEATURE_WAKEUP,
                        .name = "sglc-xfer"};
    st = ucp_init(&prm, cfg, &e->ctx);
    ucp_config_release(cfg);
    if (st != UCS_OK) {
        set_err(e->init_err, sizeof e->init_err, "ucp_init: %s", ucs_status_string(st));
        return -1;
    }
    ucp_worker_params_t wp = {.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                              .thread_mode = UCS_THREAD_MODE_SINGLE};
    st = ucp_worker_create(e->ctx, &wp, &e->worker);
    if (st != UCS_OK) {
        set_err(e->init_err, sizeof e->init_err, "ucp_worker_create: %s", ucs_status_string(st));
        goto fail_ctx;
    }
    st = ucp_worker_get_address(e->worker, &e->waddr, &e->waddr_len);
    if (st != UCS_OK) {
        set_err(e->init_err, sizeof e->init_err, "ucp_worker_get_address: %s",
                ucs_status_string(st));
        goto fail_worker;
    }
    ucp_am_handler_param_t ap = {.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID |
                                               UCP_AM_HANDLER_PARAM_FIELD_CB |
                                               UCP_AM_HANDLER_PARAM_FIELD_ARG,
                                 .id = AM_NOTIFY_ID,
                                 .cb = am_recv_cb,
                                 .arg = e};
    st = ucp_worker_set_am_recv_handler(e->worker, &ap);
    int wfd = -1;
    if (st == UCS_OK) st = ucp_worker_get_efd(e->worker, &wfd);
    if (st != UCS_OK) {
        set_err(e->init_err, sizeof e->init_err, "UCX worker setup: %s", ucs_status_string(st));
        goto fail_addr;
    }
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.fd = wfd;
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, wfd, &ev) < 0) {
        set_err(e->init_err, sizeof e->init_err, "epoll_ctl: %s", strerror(errno));
        goto fail_addr;
    }
    return 0;
fail_addr:
    ucp_worker_release_address(e->worker, e->waddr);
fail_worker:
    ucp_worker_destroy(e->worker);
fail_ctx:
    ucp_cleanup(e->ctx);
    return -1;
}

static void ucx_stop(ucx_engine *e) {
    while (e->peers) peer_start_close(e, e->peers);
    double end = now_s() + CLOSE_DEADLINE_S;
    while (e->closing && now_s() < end) {
        ucp_worker_progress(e->worker);
        reap_closing(e);
    }
    if (e->closing) log_warn("transfer: peers did not close within %.0f s", CLOSE_DEADLINE_S);
    /* ready notifies of closed peers are dropped by notify_send */
    while (e->ready_head) {
        cmd *c = e->ready_head;
        e->ready_head = c->ready_next;
        free(c);
    }
    for (uint32_t i = 0; i < e->n_regions; i++) {
        ucp_rkey_buffer_release(e->regions[i].rkey);
        ucp_mem_unmap(e->ctx, e->regions[i].memh);
    }
    ucp_worker_release_address(e->worker, e->waddr);
    ucp_worker_destroy(e->worker);
    ucp_cleanup(e->ctx);
}

static void *progress_main(void *arg) {
    ucx_engine *e = arg;
    ucx_cur_engine = e;
    int rc = ucx_start(e);
    pthread_mutex_lock(&e->mu);
    e->init_rc = rc;
    e->init_done = true;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (rc < 0) return NULL;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        cmd *q = e->q_head;
        e->q_head = e->q_tail = NULL;
        bool stop = e->stop;
        pthread_mutex_unlock(&e->mu);
        while (q) {
            cmd *n = q->next;
            exec(e, q);
            q = n;
        }
        while (ucp_worker_progress(e->worker)) {
        }
        while (e->ready_head) {
            cmd *c = e->ready_head;
            e->ready_head = c->ready_next;
            if (!e->ready_head) e->ready_tail = NULL;
            notify_send(e, c);
        }
        /* stop writing to a dead peer over CMA: cancels what is queued there */
        for (ucx_peer *p = e->peers; p; p = p->next)
            if (p->dep && atomic_load(&p->failed)) {
                ep_close_now(e, p->dep);
                p->dep = NULL;
            }
        reap_closing(e);
        if (stop) break;
        pthread_mutex_lock(&e->mu);
        bool more = e->q_head != NULL || e->stop;
        pthread_mutex_unlock(&e->mu);
        if (more || e->ready_head) continue;
        if (e->spin_reqs > 0) continue;
        ucs_status_t st = ucp_worker_arm(e->worker);
        if (st == UCS_ERR_BUSY) continue;
        if (st != UCS_OK) log_warn("transfer: ucp_worker_arm: %s", ucs_status_string(st));
        struct epoll_event evs[4];
        int timeout = (e->peers || e->closing) ? KEEPALIVE_WAKE_MS : -1;
        int n = epoll_wait(e->epfd, evs, 4, st == UCS_OK ? timeout : 10);
        for (int i = 0; i < n; i++)
            if (evs[i].data.fd == e->evfd) {
                uint64_t v;
                ssize_t r = read(e->evfd, &v, sizeof v);
                (void)r;
            }
    }
    ucx_stop(e);
    return NULL;
}

/* ---- the backend's entry points ----------------------------------------------------------- */

/* Names this host as a descriptor tag: the boot id and the ipc, pid and net namespaces. Peers
 * with the same tag can reach each other's memory with CMA (a netns of its own counts as another
 * host, as the two-"host" tests over veth expect). */
static uint64_t host_identity(void) {
    uint64_t h = 1469598103934665603ull;
    char buf[256];
    const char *ns[] = {"/proc/self/ns/ipc", "/proc/self/ns/pid", "/proc/self/ns/net"};
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    for (int k = 0; k <= 3; k++) {
        if (k > 0) {
            ssize_t r = readlink(ns[k - 1], buf, sizeof buf);
            n = r > 0 ? (size_t)r : 0;
        }
        for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)buf[i]) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    }
    return h ? h : 1;
}

static xfer_engine *ucx_create(const xfer_opts *o, char *err, size_t err_len) {
    ucx_engine *e = calloc(1, sizeof *e);
    if (!e) {
        set_err(err, err_len, "out of memory");
        return NULL;
    }
    e->base.be = &xfer_backend_ucx;
    e->opts = *o;
    e->opts.backend = "ucx";
    e->tag = host_identity();
    pthread_mutex_init(&e->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->cv, &ca);
    pthread_condattr_destroy(&ca);
    e->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.fd = e->evfd;
    if (e->evfd < 0 || e->epfd < 0 || epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->evfd, &ev) < 0) {
        set_err(err, err_len, "eventfd/epoll: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&e->thread, NULL, progress_main, e) != 0) {
        set_err(err, err_len, "cannot start the transfer progress thread");
        goto fail;
    }
    pthread_mutex_lock(&e->mu);
    while (!e->init_done) pthread_cond_wait(&e->cv, &e->mu);
    pthread_mutex_unlock(&e->mu);
    if (e->init_rc < 0) {
        pthread_join(e->thread, NULL);
        set_err(err, err_len, "UCX: %s", e->init_err);
        goto fail;
    }
    return &e->base;
fail:
    if (e->evfd >= 0) close(e->evfd);
    if (e->epfd >= 0) close(e->epfd);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
    return NULL;
}

static void ucx_destroy(xfer_engine *xe) {
    ucx_engine *e = (ucx_engine *)xe;
    pthread_mutex_lock(&e->mu);
    e->stop = true;
    pthread_mutex_unlock(&e->mu);
    wake(e);
    pthread_join(e->thread, NULL);
    /* commands posted after the stop (misuse) are dropped */
    for (cmd *c = e->q_head; c;) {
        cmd *n = c->next;
        if (!c->sync) free(c->w), free(c->region), free(c);
        c = n;
    }
    close(e->evfd);
    close(e->epfd);
    free(e->regions);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

static int ucx_reg(xfer_engine *xe, void *addr, size_t len, char *err, size_t err_len) {
    cmd c = {.kind = CMD_REG, .addr = addr, .len = len};
    return run_sync((ucx_engine *)xe, &c, err, err_len);
}

static int ucx_desc(xfer_engine *xe, void **desc, size_t *len, char *err, size_t err_len) {
    cmd c = {.kind = CMD_DESC, .out = desc, .out_len = len};
    return run_sync((ucx_engine *)xe, &c, err, err_len);
}

static xfer_peer *ucx_open(xfer_engine *xe, const void *desc, size_t len, char *err,
                           size_t err_len) {
    ucx_engine *e = (ucx_engine *)xe;
    ucx_peer *p = calloc(1, sizeof *p);
    if (!p || !(p->desc_copy = malloc(len ? len : 1))) {
        free(p);
        set_err(err, err_len, "out of memory");
        return NULL;
    }
    if (len) memcpy(p->desc_copy, desc, len);
    if (xfer_desc_decode(p->desc_copy, len, &p->d, err, err_len) < 0) goto fail;
    if (p->d.backend != XFER_DESC_UCX) {
        set_err(err, err_len, "segment descriptor is for backend 'fake', this engine is 'ucx'");
        goto fail;
    }
    if (p->d.addr_len == 0) {
        set_err(err, err_len, "segment descriptor has no worker address");
        goto fail;
    }
    p->addr = calloc(1, p->d.addr_len + ADDR_PAD);
    p->rkeys = calloc(p->d.n_regions ? p->d.n_regions : 1, sizeof *p->rkeys);
    if (!p->addr || !p->rkeys) {
        set_err(err, err_len, "out of memory");
        goto fail;
    }
    memcpy(p->addr, p->d.addr, p->d.addr_len);
    p->base.be = &xfer_backend_ucx;
    p->base.e = xe;
    p->e = e;
    cmd c = {.kind = CMD_OPEN, .peer = p};
    if (run_sync(e, &c, err, err_len) < 0) goto fail;
    return &p->base;
fail:
    free(p->rkeys);
    free(p->addr);
    free(p->d.regions);
    free(p->desc_copy);
    free(p);
    return NULL;
}

static void ucx_close(xfer_peer *xp) {
    ucx_peer *p = (ucx_peer *)xp;
    cmd c = {.kind = CMD_CLOSE, .peer = p};
    run_sync(p->e, &c, NULL, 0);
}

static int64_t ucx_submit(xfer_peer *xp, const xfer_write *w, size_t n, char *err,
                          size_t err_len) {
    ucx_peer *p = (ucx_peer *)xp;
    ucx_engine *e = p->e;
    if (atomic_load(&p->failed)) {
        pthread_mutex_lock(&e->mu);
        set_err(err, err_len, "%s", p->why);
        pthread_mutex_unlock(&e->mu);
        return -1;
    }
    cmd *c = calloc(1, sizeof *c);
    ucx_batch *b = calloc(1, sizeof *b);
    if (c) c->w = malloc((n ? n : 1) * sizeof *w), c->region = malloc((n ? n : 1) * 4);
    if (!c || !b || !c->w || !c->region) {
        if (c) free(c->w), free(c->region);
        free(c), free(b);
        set_err(err, err_len, "out of memory for a batch of %zu writes", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t g = xfer_desc_find(p->d.regions, p->d.n_regions, w[i].remote, w[i].len);
        if (g < 0) {
            set_err(err, err_len,
                    "write %zu: remote range [%#llx, +%zu) is outside the peer's regions", i,
                    (unsigned long long)w[i].remote, w[i].len);
            free(c->w), free(c->region), free(c), free(b);
            return -1;
        }
        c->region[i] = (uint32_t)g;
    }
    memcpy(c->w, w, n * sizeof *w);
    c->kind = CMD_SUBMIT;
    c->peer = p;
    c->len = n;
    c->batch = b;
    b->outstanding = 1;
    pthread_mutex_lock(&e->mu);
    b->id = p->next_batch++;
    b->next = p->batches;
    p->batches = b;
    int64_t id = b->id;
    pthread_mutex_unlock(&e->mu);
    post_async(e, c);
    return id;
}

static int ucx_poll(xfer_peer *xp, int64_t batch, int timeout_ms, char *err, size_t err_len) {
    ucx_peer *p = (ucx_peer *)xp;
    ucx_engine *e = p->e;
    struct timespec dl;
    deadline_in(&dl, timeout_ms);
    pthread_mutex_lock(&e->mu);
    ucx_batch **pp = &p->batches;
    while (*pp && (*pp)->id != batch) pp = &(*pp)->next;
    if (!*pp) {
        pthread_mutex_unlock(&e->mu);
        set_err(err, err_len, "unknown batch %lld (never submitted or already collected)",
                (long long)batch);
        return -1;
    }
    ucx_batch *b = *pp;
    while (b->state == 0 && timeout_ms > 0)
        if (pthread_cond_timedwait(&e->cv, &e->mu, &dl) == ETIMEDOUT) break;
    int st = b->state;
    if (st != 0) {
        if (st < 0) set_err(err, err_len, "%s", b->err);
        /* the list may have changed while we waited */
        for (pp = &p->batches; *pp != b; pp = &(*pp)->next) {
        }
        *pp = b->next;
        b->forgotten = true;
        if (b->outstanding == 0) free(b);
    }
    pthread_mutex_unlock(&e->mu);
    return st;
}

static int ucx_notify(xfer_peer *xp, const void *msg, size_t len, char *err, size_t err_len) {
    ucx_peer *p = (ucx_peer *)xp;
    if (atomic_load(&p->failed)) {
        pthread_mutex_lock(&p->e->mu);
        set_err(err, err_len, "%s", p->why);
        pthread_mutex_unlock(&p->e->mu);
        return -1;
    }
    cmd *c = calloc(1, sizeof *c + len);
    if (!c) {
        set_err(err, err_len, "out of memory");
        return -1;
    }
    c->kind = CMD_NOTIFY;
    c->peer = p;
    c->len = len;
    if (len) memcpy(c->msg, msg, len);
    post_async(p->e, c);
    return 0;
}

static bool ucx_failed(const xfer_peer *xp) {
    return atomic_load(&((const ucx_peer *)xp)->failed);
}

static void ucx_transports(xfer_peer *xp, char *buf, size_t len) {
    if (!len) return;
    ucx_peer *p = (ucx_peer *)xp;
    cmd c = {.kind = CMD_INFO, .peer = p, .buf = buf, .buf_len = len};
    run_sync(p->e, &c, NULL, 0);
}

const xfer_backend xfer_backend_ucx = {
    .name = "ucx",
    .create = ucx_create,
    .destroy = ucx_destroy,
    .reg = ucx_reg,
    .desc = ucx_desc,
    .open = ucx_open,
    .close = ucx_close,
    .submit = ucx_submit,
    .poll = ucx_poll,
    .notify = ucx_notify,
    .failed = ucx_failed,
    .transports = ucx_transports,
};

#endif /* SGLC_HAVE_UCX */
