/* The async client of src/http on evhttp's client side, which handles response framing
 * (Content-Length, chunked, close-delimited) and hands chunks over as they arrive. What this
 * file adds: a whole-call deadline, cancellation, one exactly-once completion callback, and
 * freeing the connection outside libevent's own callbacks (evhttp may still touch it after
 * calling us, so the free is deferred to the next loop turn). */
#include "http/http_client.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct http_call {
    struct event_base *base;
    struct evhttp_connection *evcon;
    struct evhttp_request *req; /* NULL once libevent has freed it */
    struct event *deadline;
    http_call_cbs cbs;
    bool done;    /* on_done ran (or cancel): no more user callbacks */
    bool freeing; /* the deferred free is scheduled */
    bool have_err;
    enum evhttp_request_error err;
};

static void free_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    http_call *c = arg;
    /* frees a still-pending request without calling its callbacks */
    if (c->evcon) evhttp_connection_free(c->evcon);
    if (c->deadline) event_free(c->deadline);
    free(c);
}

static void schedule_free(http_call *c) {
    if (c->freeing) return;
    c->freeing = true;
    if (c->deadline) event_del(c->deadline);
    struct timeval zero = {0, 0};
    if (event_base_once(c->base, -1, EV_TIMEOUT, free_cb, c, &zero) != 0)
        c->evcon = NULL; /* cannot defer: leak the connection rather than free it under evhttp */
}

static const char *error_text(enum evhttp_request_error e) {
    switch (e) {
    case EVREQ_HTTP_TIMEOUT: return "timeout";
    case EVREQ_HTTP_EOF: return "connection closed before the response ended";
    case EVREQ_HTTP_INVALID_HEADER: return "invalid response";
    case EVREQ_HTTP_BUFFER_ERROR: return "connection failed";
    case EVREQ_HTTP_REQUEST_CANCEL: return "cancelled";
    case EVREQ_HTTP_DATA_TOO_LONG: return "response body too large";
    default: return "request failed";
    }
}

static void finish(http_call *c, int status, const char *body, size_t len, const char *err) {
    if (c->done) return;
    c->done = true;
    if (c->cbs.on_done) c->cbs.on_done(c, status, body ? body : "", len, err, c->cbs.ud);
    c->req = NULL;
    schedule_free(c);
}

static void error_cb(enum evhttp_request_error e, void *arg) {
    http_call *c = arg;
    c->have_err = true;
    c->err = e;
}

static int header_cb(struct evhttp_request *req, void *arg) {
    http_call *c = arg;
    c->req = req;
    if (!c->done && c->cbs.on_head)
        c->cbs.on_head(c, evhttp_request_get_response_code(req), c->cbs.ud);
    return 0;
}

static void chunk_cb(struct evhttp_request *req, void *arg) {
    http_call *c = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    if (c->done || !c->cbs.on_chunk) return; /* libevent drains what we leave */
    size_t len = evbuffer_get_length(in);
    const char *p = len ? (const char *)evbuffer_pullup(in, -1) : NULL;
    if (p) c->cbs.on_chunk(c, p, len, c->cbs.ud);
}

static void done_cb(struct evhttp_request *req, void *arg) {
    http_call *c = arg;
    if (c->done) return;
    int status = req ? evhttp_request_get_response_code(req) : 0;
    if (!req || status == 0) {
        finish(c, 0, NULL, 0, c->have_err ? error_text(c->err) : "connection failed");
        return;
    }
    c->req = req;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = "";
    if (!c->cbs.on_chunk && evbuffer_add(in, "", 1) == 0) {
        body = (const char *)evbuffer_pullup(in, -1);
    } else {
        len = 0;
    }
    finish(c, status, body ? body : "", body ? len : 0, NULL);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    finish(arg, 0, NULL, 0, "timeout");
}

const char *http_call_header(const http_call *c, const char *name) {
    if (!c->req) return NULL;
    return evhttp_find_header(evhttp_request_get_input_headers(c->req), name);
}

void http_call_cancel(http_call *c) {
    if (c->done) return;
    c->done = true;
    c->req = NULL;
    schedule_free(c);
}

static int method_type(const char *m, enum evhttp_cmd_type *t) {
    static const struct {
        const char *name;
        enum evhttp_cmd_type type;
    } map[] = {{"GET", EVHTTP_REQ_GET},        {"POST", EVHTTP_REQ_POST},
               {"PUT", EVHTTP_REQ_PUT},        {"DELETE", EVHTTP_REQ_DELETE},
               {"HEAD", EVHTTP_REQ_HEAD},      {"PATCH", EVHTTP_REQ_PATCH},
               {"OPTIONS", EVHTTP_REQ_OPTIONS}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(m, map[i].name)) {
            *t = map[i].type;
            return 0;
        }
    return -1;
}

http_call *http_call_start(struct event_base *base, const http_call_req *rq,
                           const http_call_cbs *cbs, char *err, size_t err_len) {
    enum evhttp_cmd_type type;
    if (!rq->method || method_type(rq->method, &type) != 0) {
        snprintf(err, err_len, "unsupported method '%s'", rq->method ? rq->method : "(null)");
        return NULL;
    }
    struct evhttp_uri *uri = rq->url ? evhttp_uri_parse(rq->url) : NULL;
    const char *scheme = uri ? evhttp_uri_get_scheme(uri) : NULL;
    const char *host = uri ? evhttp_uri_get_host(uri) : NULL;
    if (!uri || !scheme || strcasecmp(scheme, "http") || !host || !*host) {
        snprintf(err, err_len, "not an http:// URL: '%s'", rq->url ? rq->url : "(null)");
        if (uri) evhttp_uri_free(uri);
        return NULL;
    }
    int port = evhttp_uri_get_port(uri);
    if (port < 0) port = 80;
    char bare[256], target[4096], host_hdr[300];
    size_t hl = strlen(host);
    if (host[0] == '[' && hl >= 2 && hl - 2 < sizeof bare) { /* IPv6 literal */
        memcpy(bare, host + 1, hl - 2);
        bare[hl - 2] = 0;
    } else {
        snprintf(bare, sizeof bare, "%s", host);
    }
    snprintf(host_hdr, sizeof host_hdr, "%s:%d", host, port);
    const char *path = evhttp_uri_get_path(uri);
    const char *query = evhttp_uri_get_query(uri);
    int tl = snprintf(target, sizeof target, "%s%s%s", path && *path ? path : "/", query ? "?" : "",
                      query ? query : "");
    evhttp_uri_free(uri);
    if (tl < 0 || (size_t)tl >= sizeof target) {
        snprintf(err, err_len, "URL too long");
        return NULL;
    }

    http_call *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    c->base = base;
    c->cbs = *cbs;
    double timeout = rq->timeout_s > 0 ? rq->timeout_s : 600;
    c->evcon = evhttp_connection_base_new(base, NULL, bare, (unsigned short)port);
    c->deadline = evtimer_new(base, deadline_cb, c);
    struct evhttp_request *req = evhttp_request_new(done_cb, c);
    if (!c->evcon || !c->deadline || !req) {
        snprintf(err, err_len, "cannot open a connection to %s", host_hdr);
        if (req) evhttp_request_free(req);
        if (c->evcon) evhttp_connection_free(c->evcon);
        if (c->deadline) event_free(c->deadline);
        free(c);
        return NULL;
    }
    evhttp_connection_set_timeout(c->evcon, (int)ceil(timeout));
    evhttp_connection_set_retries(c->evcon, 0);
    if (!c->cbs.on_chunk)
        evhttp_connection_set_max_body_size(c->evcon,
                                            (ev_ssize_t)(rq->max_body ? rq->max_body : 64u << 20));
    evhttp_request_set_error_cb(req, error_cb);
    evhttp_request_set_header_cb(req, header_cb);
    if (c->cbs.on_chunk) evhttp_request_set_chunked_cb(req, chunk_cb);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", host_hdr);
    evhttp_add_header(h, "Connection", "close");
    for (const char *const *p = rq->headers; p && p[0] && p[1]; p += 2)
        evhttp_add_header(h, p[0], p[1]);
    if (rq->body && rq->body_len) {
        evhttp_add_header(h, "Content-Type",
                          rq->content_type ? rq->content_type : "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), rq->body, rq->body_len);
    }
    struct timeval tv = {(time_t)timeout, (suseconds_t)((timeout - floor(timeout)) * 1e6)};
    evtimer_add(c->deadline, &tv);
    if (evhttp_make_request(c->evcon, req, type, target) != 0) {
        /* evhttp has freed req */
        snprintf(err, err_len, "cannot send the request to %s", host_hdr);
        evhttp_connection_free(c->evcon);
        event_free(c->deadline);
        free(c);
        return NULL;
    }
    return c;
}

http_call *http_call_json(struct event_base *base, const char *method, const char *url,
                          const json_t *body, double timeout_s, const http_call_cbs *cbs, char *err,
                          size_t err_len) {
    char *s = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (body && !s) {
        snprintf(err, err_len, "cannot serialise the request body");
        return NULL;
    }
    http_call_req rq = {.method = method,
                        .url = url,
                        .content_type = "application/json",
                        .body = s,
                        .body_len = s ? strlen(s) : 0,
                        .timeout_s = timeout_s};
    http_call *c = http_call_start(base, &rq, cbs, err, err_len);
    free(s);
    return c;
}
