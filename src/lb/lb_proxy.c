/* The generation routes of the LB (/generate, /v1/completions, /v1/chat/completions): pick a
 * prefill and a decode server, inject the bootstrap fields, send the same JSON to both at once,
 * and answer with the decode server's reply (relayed as it arrives when streaming), prefill's
 * input logprobs merged in when asked. Each request is a small state machine (lb_job) advanced
 * by every upstream event; advance() decides what can be done now, so every path ends in one
 * reply: decode's, or a 502/504 in OpenAI's error shape when an upstream fails before decode has
 * answered, within --timeout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "lb/lb_internal.h"

#define LB_INFO_TIMEOUT_S 10.0
#define LB_SSE_EVENT_MAX (8u << 20) /* held back waiting for the end of one event, at most */
#define LB_WHOLE_MAX (64u << 20)    /* a collected body, at most (as http_call's default) */

typedef struct {
    char *p;
    size_t n, cap;
} lb_buf;

typedef struct lb_job {
    struct lb_job *prev, *next; /* in l->jobs */
    lb *l;
    http_req *req; /* NULL once the client's reply is finished */
    const char *ep;
    json_t *body;
    bool stream, logprob, picking;
    lb_server *pre, *dec;
    http_call *pcall, *dcall, *icall; /* prefill, decode, bootstrap-port discovery */
    /* prefill's outcome */
    bool p_done;
    int p_status;
    char *p_body;
    size_t p_len;
    char p_err[320];
    /* decode's outcome */
    bool d_done, d_bytes; /* finished; (stream) some body arrived */
    bool d_whole;         /* stream asked, but decode answered with a body that is not SSE (an
                             error's JSON): collected and replied whole, so that a cut-off
                             body becomes a clean 502 rather than a truncated 200 */
    int d_status;
    char *d_ctype;
    char d_err[320];
    lb_buf d; /* non-stream: the body; stream: bytes not yet relayed */
    /* stream */
    bool started;
    json_t *prefill_lp; /* {"<index>": input_token_logprobs} of prefill's stream */
} lb_job;

static void cancel_call(http_call **c, lb_server *s);

static int buf_add(lb_buf *b, const char *p, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return -1;
        b->p = q, b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

static void job_free(lb_job *j) {
    if (j->prev) j->prev->next = j->next;
    else j->l->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
    json_decref(j->body);
    json_decref(j->prefill_lp);
    free(j->p_body), free(j->d_ctype), free(j->d.p);
    free(j);
}

static bool job_idle(const lb_job *j) {
    return !j->req && !j->picking && !j->pcall && !j->dcall && !j->icall;
}

static void cancel_call(http_call **c, lb_server *s) {
    if (!*c) return;
    http_call_cancel(*c);
    *c = NULL;
    if (s) s->in_flight--;
}

static void cancel_prefill(lb_job *j) {
    if (!j->pcall) return;
    cancel_call(&j->pcall, j->pre);
    j->p_done = true;
    j->p_status = 0;
    snprintf(j->p_err, sizeof j->p_err, "cancelled");
}

static void cancel_decode(lb_job *j) {
    if (!j->dcall) return;
    cancel_call(&j->dcall, j->dec);
    j->d_done = true;
    j->d_status = 0;
    snprintf(j->d_err, sizeof j->d_err, "cancelled");
}

static bool upstream_failed(int status) { return status == 0 || status >= 500; }

/* 504 when the upstream ran past --timeout, 502 for everything else it got wrong. */
static void reply_upstream_error(lb_job *j, const lb_server *s, int status, const char *err) {
    const char *side = s->role == LB_PREFILL ? "prefill" : "decode";
    int code = status == 0 && !strcmp(err, "timeout") ? 504 : 502;
    log_warn("%s %s: %s server %s %s%s", http_req_method(j->req), j->ep, side, s->url,
             status ? "answered " : "failed: ", status ? http_status_phrase(status) : err);
    if (status)
        http_reply_error(j->req, code, NULL, NULL, NULL, "%s server %s answered %d %s%s%s", side,
                         s->url, status, http_status_phrase(status), err && *err ? ": " : "",
                         err ? err : "");
    else
        http_reply_error(j->req, code, NULL, NULL, NULL, "%s server %s failed: %s", side, s->url,
                         err);
    j->req = NULL;
}

/* Non-stream: decode's status and body, prefill's input logprobs merged when asked. */
static void reply_decode(lb_job *j) {
    const char *ct = j->d_ctype ? j->d_ctype : "application/json";
    if (j->logprob && !j->stream && j->p_status == 200) {
        json_error_t je;
        json_t *p = json_loadb(j->p_body ? j->p_body : "", j->p_len, 0, &je);
        json_t *d = json_loadb(j->d.p ? j->d.p : "", j->d.n, 0, &je);
        if (p && d) {
            lb_merge_logprobs(p, d);
            json_decref(p);
            http_reply_json(j->req, j->d_status, d);
            j->req = NULL;
            return;
        }
        json_decref(p), json_decref(d);
    }
    http_reply(j->req, j->d_status, ct, j->d.p ? j->d.p : "", j->d.n);
    j->req = NULL;
}

/* Stream: relays what decode sent so far; with logprobs, whole events only, rewritten. */
static void relay(lb_job *j) {
    if (!j->d.n) return;
    if (!j->logprob || !j->prefill_lp) {
        http_stream_write(j->req, j->d.p, j->d.n);
        j->d.n = 0;
        return;
    }
    size_t i = 0, evlen, seplen;
    while (lb_sse_next(j->d.p + i, j->d.n - i, &evlen, &seplen)) {
        size_t out_len = 0;
        char *out = lb_sse_rewrite_event(j->d.p + i, evlen, j->prefill_lp, &out_len);
        char *q = out ? realloc(out, out_len + seplen) : NULL;
        if (q) {
            /* the event rewritten, ended as decode ended it */
            memcpy(q + out_len, j->d.p + i + evlen, seplen);
            http_stream_write(j->req, q, out_len + seplen);
            out = q;
        } else {
            http_stream_write(j->req, j->d.p + i, evlen + seplen);
        }
        free(out);
        i += evlen + seplen;
    }
    /* a last event without its blank line, or a stream that is not SSE: relayed as it is */
    if (i < j->d.n && (j->d_done || j->d.n - i > LB_SSE_EVENT_MAX)) {
        http_stream_write(j->req, j->d.p + i, j->d.n - i);
        i = j->d.n;
    }
    memmove(j->d.p, j->d.p + i, j->d.n - i);
    j->d.n -= i;
}

static void start_stream(lb_job *j) {
    const char *ct = j->d_ctype ? j->d_ctype : "text/event-stream";
    if (!strncmp(ct, "text/event-stream", 17))
        http_req_set_header(j->req, "Cache-Control", "no-cache");
    http_stream_start(j->req, j->d_status ? j->d_status : 200, ct);
    j->started = true;
    if (j->logprob && j->p_status == 200 && j->p_body)
        j->prefill_lp = lb_sse_input_logprobs(j->p_body, j->p_len);
}

static void end_stream(lb_job *j) {
    if (j->d_status == 0 && j->d_ctype && !strncmp(j->d_ctype, "text/event-stream", 17)) {
        int code = !strcmp(j->d_err, "timeout") ? 504 : 502;
        char msg[512];
        snprintf(msg, sizeof msg, "decode server %s failed mid-stream: %s", j->dec->url, j->d_err);
        log_warn("%s %s: %s", http_req_method(j->req), j->ep, msg);
        json_t *e = http_error_json(code, NULL, NULL, NULL, msg); /* {"error": {...}} */
        if (e) http_sse_send_json(j->req, e);
        json_decref(e);
    }
    http_stream_end(j->req);
    j->req = NULL;
}

static void advance(lb_job *j) {
    if (j->req && (!j->stream || j->d_whole)) {
        if (j->d_done && j->d_status == 0) {
            cancel_prefill(j);
            reply_upstream_error(j, j->dec, 0, j->d_err);
        } else if (j->d_done && (!j->logprob || j->p_done || j->d_status != 200)) {
            /* prefill's logprobs only matter to a success; a prefill left waiting for a
             * decode that refused cannot finish */
            if (j->d_status != 200) cancel_prefill(j);
            reply_decode(j);
        } else if (!j->d_done && j->p_done && upstream_failed(j->p_status)) {
            cancel_decode(j);
            reply_upstream_error(j, j->pre, j->p_status, j->p_err);
        }
    } else if (j->req) {
        bool answered = j->d_bytes || (j->d_done && j->d_status != 0);
        if (!j->started) {
            if (!answered && j->p_done && upstream_failed(j->p_status)) {
                cancel_decode(j);
                reply_upstream_error(j, j->pre, j->p_status, j->p_err);
            } else if (!answered && j->d_done) {
                cancel_prefill(j);
                reply_upstream_error(j, j->dec, 0, j->d_err);
            } else if (answered && (!j->logprob || j->p_done)) {
                start_stream(j);
            }
        }
        if (j->req && j->started) {
            relay(j);
            if (j->d_done) {
                if (j->d_status != 200) cancel_prefill(j);
                end_stream(j);
            }
        }
    }
    if (job_idle(j)) job_free(j);
}

/* ---- upstream callbacks ---- */

static void on_prefill_done(http_call *c, int status, const char *body, size_t len,
                            const char *err, void *ud) {
    (void)c;
    lb_job *j = ud;
    j->pcall = NULL;
    j->pre->in_flight--;
    j->p_done = true;
    j->p_status = status;
    snprintf(j->p_err, sizeof j->p_err, "%s", err ? err : "");
    if (status >= 400 && body) { /* keep the server's own reason for the client */
        json_t *e = json_loadb(body, len, 0, NULL);
        const char *msg = json_string_value(json_object_get(json_object_get(e, "error"), "message"));
        if (msg) snprintf(j->p_err, sizeof j->p_err, "%s", msg);
        json_decref(e);
    }
    if (j->logprob && status == 200 && j->req) {
        j->p_body = malloc(len + 1);
        if (j->p_body) {
            memcpy(j->p_body, body, len + 1);
            j->p_len = len;
        }
    }
    if (upstream_failed(status))
        log_debug("%s: prefill server %s: %d %s", j->ep, j->pre->url, status, err ? err : "");
    advance(j);
}

static void on_decode_head(http_call *c, int status, void *ud) {
    lb_job *j = ud;
    j->d_status = status;
    const char *ct = http_call_header(c, "Content-Type");
    if (ct && !j->d_ctype) j->d_ctype = strdup(ct);
    j->d_whole = !ct || strncmp(ct, "text/event-stream", 17);
}

static void on_decode_chunk(http_call *c, const char *data, size_t len, void *ud) {
    (void)c;
    lb_job *j = ud;
    if (!j->req || !len) return;
    if (j->d_whole && j->d.n + len > LB_WHOLE_MAX) {
        cancel_decode(j);
        snprintf(j->d_err, sizeof j->d_err, "response body too large");
    } else if (buf_add(&j->d, data, len) != 0) {
        cancel_decode(j);
        snprintf(j->d_err, sizeof j->d_err, "out of memory");
    }
    j->d_bytes = true;
    advance(j);
}

static void on_decode_done(http_call *c, int status, const char *body, size_t len,
                           const char *err, void *ud) {
    lb_job *j = ud;
    j->dcall = NULL;
    j->dec->in_flight--;
    j->d_done = true;
    j->d_status = status;
    snprintf(j->d_err, sizeof j->d_err, "%s", err ? err : "");
    if (status) {
        const char *ct = http_call_header(c, "Content-Type");
        if (ct && !j->d_ctype) j->d_ctype = strdup(ct);
        if (!j->stream && buf_add(&j->d, body, len) != 0) {
            j->d_status = 0;
            snprintf(j->d_err, sizeof j->d_err, "out of memory");
        }
    }
    advance(j);
}

static void on_client_gone(http_req *r, const char *why, void *ud) {
    lb_job *j = ud;
    log_info("%s %s: client gone (%s); cancelling the upstream requests", http_req_method(r),
             j->ep, why);
    cancel_call(&j->pcall, j->pre);
    cancel_call(&j->dcall, j->dec);
    if (j->icall) {
        http_call_cancel(j->icall);
        j->icall = NULL;
    }
    if (j->started) http_stream_end(r);
    else http_reply(r, 499, "text/plain", "", 0); /* only frees: the client is gone */
    j->req = NULL;
    if (job_idle(j)) job_free(j);
}

/* ---- dispatch ---- */

static void dispatch(lb_job *j) {
    if (lb_inject_bootstrap(j->l, j->body, j->pre->hostname, j->pre->bootstrap_port) != 0) {
        http_reply_error(j->req, 500, NULL, NULL, NULL, "out of memory");
        j->req = NULL;
        return;
    }
    char *s = json_dumps(j->body, JSON_COMPACT);
    char *purl = lb_url_join(j->pre, j->ep), *durl = lb_url_join(j->dec, j->ep);
    char err[256] = "out of memory";
    if (s && purl && durl) {
        const char *hdrs[2 * LB_FWD_MAX + 1];
        http_call_req rq = {.method = "POST", .body = s, .body_len = strlen(s),
                            .headers = lb_fwd_headers(j->req, hdrs),
                            .timeout_s = j->l->cfg.timeout_s};
        http_call_cbs pc = {.on_done = on_prefill_done, .ud = j};
        http_call_cbs dc = {.on_done = on_decode_done, .ud = j};
        if (j->stream) dc.on_head = on_decode_head, dc.on_chunk = on_decode_chunk;
        rq.url = purl;
        j->pcall = http_call_start(j->l->base, &rq, &pc, err, sizeof err);
        if (j->pcall) {
            j->pre->in_flight++;
            rq.url = durl;
            j->dcall = http_call_start(j->l->base, &rq, &dc, err, sizeof err);
            if (j->dcall) j->dec->in_flight++;
            else cancel_call(&j->pcall, j->pre);
        }
    }
    free(s), free(purl), free(durl);
    if (!j->pcall) {
        http_reply_error(j->req, 502, NULL, NULL, NULL, "cannot reach the servers: %s", err);
        j->req = NULL;
    } else {
        log_debug("%s -> prefill %s (bootstrap port %d), decode %s", j->ep, j->pre->url,
                  j->pre->bootstrap_port, j->dec->url);
    }
}

static void on_job_info(http_call *c, int status, const char *body, size_t len, const char *err,
                        void *ud) {
    lb_job *j = ud;
    j->icall = NULL;
    lb_server_info_result(j->pre, status, body, len, err);
    if (j->req) {
        if ((status == 401 || status == 403) && j->pre->bootstrap_port == LB_PORT_UNSET) {
            /* the client's credentials were refused: its own error, relayed */
            const char *ct = http_call_header(c, "Content-Type");
            http_reply(j->req, status, ct ? ct : "application/json", body, len);
            j->req = NULL;
        } else if (j->pre->bootstrap_port == LB_PORT_UNSET) {
            j->p_done = true;
            reply_upstream_error(j, j->pre, status, status ? "" : err);
        } else {
            dispatch(j);
        }
    }
    if (job_idle(j)) job_free(j);
}

static void on_picked(lb_server *pre, lb_server *dec, void *ud) {
    lb_job *j = ud;
    j->picking = false;
    j->pre = pre, j->dec = dec;
    if (!j->req) {
        /* the client left while least_load asked the servers */
    } else if (!pre || !dec) {
        http_reply_error(j->req, 503, NULL, NULL, NULL, "no %s server is registered",
                         pre ? "decode" : "prefill");
        j->req = NULL;
    } else if (pre->bootstrap_port == LB_PORT_UNSET) {
        /* its port is not known yet: ask now rather than send null and let decode guess */
        char *url = lb_url_join(pre, "/get_server_info");
        http_call_cbs cbs = {.on_done = on_job_info, .ud = j};
        double t = j->l->cfg.timeout_s < LB_INFO_TIMEOUT_S ? j->l->cfg.timeout_s
                                                            : LB_INFO_TIMEOUT_S;
        const char *hdrs[2 * LB_FWD_MAX + 1];
        http_call_req rq = {.method = "GET", .url = url, .headers = lb_fwd_headers(j->req, hdrs),
                            .timeout_s = t};
        char err[256] = "out of memory";
        j->icall = url ? http_call_start(j->l->base, &rq, &cbs, err, sizeof err) : NULL;
        free(url);
        if (!j->icall) reply_upstream_error(j, pre, 0, err);
    } else {
        dispatch(j);
    }
    if (job_idle(j)) job_free(j);
}

static void proxy(lb *l, http_req *r, const char *ep) {
    json_t *body = http_req_json(r);
    if (!body) return;
    lb_job *j = calloc(1, sizeof *j);
    if (!j) {
        json_decref(body);
        http_reply_error(r, 500, NULL, NULL, NULL, "out of memory");
        return;
    }
    j->l = l, j->req = r, j->ep = ep, j->body = body;
    j->next = l->jobs;
    if (l->jobs) l->jobs->prev = j;
    l->jobs = j;
    j->stream = json_is_true(json_object_get(body, "stream"));
    /* as SGLang: the key's presence for whole replies, its truth for streams */
    const json_t *lp = json_object_get(body, "return_logprob");
    j->logprob = j->stream ? json_is_true(lp) : lp != NULL;
    j->picking = true;
    http_req_on_disconnect(r, on_client_gone, j);
    const char *hdrs[2 * LB_FWD_MAX + 1];
    lb_pick(l, lb_fwd_headers(r, hdrs), on_picked, j);
}

static void h_generate(http_req *r, void *ud) { proxy(ud, r, "/generate"); }
static void h_completions(http_req *r, void *ud) { proxy(ud, r, "/v1/completions"); }
static void h_chat(http_req *r, void *ud) { proxy(ud, r, "/v1/chat/completions"); }

void lb_proxy_shutdown(lb *l) {
    for (lb_job *j = l->jobs, *next; j; j = next) {
        next = j->next;
        cancel_call(&j->pcall, j->pre);
        cancel_call(&j->dcall, j->dec);
        if (j->icall) http_call_cancel(j->icall);
        j->icall = NULL;
        if (j->req) http_reply(j->req, 503, "text/plain", "", 0);
        j->req = NULL;
        /* a least_load pick still waiting frees its job in lb_pick_shutdown */
        if (!j->picking) job_free(j);
    }
}

int lb_add_proxy_routes(lb *l) {
    int rc = 0;
    rc |= http_server_route(l->http, "POST", "/generate", h_generate, l);
    rc |= http_server_route(l->http, "PUT", "/generate", h_generate, l);
    rc |= http_server_route(l->http, "POST", "/v1/completions", h_completions, l);
    rc |= http_server_route(l->http, "POST", "/v1/chat/completions", h_chat, l);
    return rc ? -1 : 0;
}
