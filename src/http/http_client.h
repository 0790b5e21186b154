/* An asynchronous HTTP/1.1 client on libevent's evhttp, for the load balancer (relaying requests
 * and SSE streams to prefill and decode servers), the PD bootstrap heartbeat and tests.
 *
 * Promises:
 * - Every call runs on the thread that runs `base` (usually an http_server's loop: pass
 *   http_server_base). Nothing blocks, except that a host name that is not a numeric address is
 *   resolved with the system resolver when the connection opens.
 * - One connection per call, closed when the call ends (no pooling yet).
 * - on_done runs exactly once per started call, unless http_call_cancel came first; after it,
 *   the call is freed. status is the HTTP status, or 0 with err set ("timeout", "connection
 *   failed", ...) when no complete response arrived.
 * - With on_chunk set, the body is handed over piece by piece as it arrives (an SSE relay) and
 *   on_done gets no body; otherwise the body is collected (up to max_body) and handed to
 *   on_done. */
#ifndef SGLC_HTTP_CLIENT_H
#define SGLC_HTTP_CLIENT_H

#include <jansson.h>
#include <stddef.h>

struct event_base;
typedef struct http_call http_call;

typedef struct {
    /* The status line and headers arrived (optional). */
    void (*on_head)(http_call *c, int status, void *ud);
    /* A piece of the body (optional; see above). */
    void (*on_chunk)(http_call *c, const char *data, size_t len, void *ud);
    /* The end. body is NUL-terminated, valid only during the callback. */
    void (*on_done)(http_call *c, int status, const char *body, size_t len, const char *err,
                    void *ud);
    void *ud;
} http_call_cbs;

typedef struct {
    const char *method;       /* "GET", "POST", "PUT", "DELETE" */
    const char *url;          /* http://host:port/path?query; IPv6 hosts in brackets */
    const char *content_type; /* default application/json when there is a body */
    const void *body;
    size_t body_len;
    const char *const *headers; /* NULL, or name, value, name, value, ..., NULL */
    double timeout_s;           /* whole call; 0: 600 s, as SGLang's load balancer */
    size_t max_body;            /* collected body cap; 0: 64 MiB */
} http_call_req;

/* Starts a call. Returns the handle, or NULL with a message in err (bad URL, bad method, out of
 * memory); no callback runs then. */
http_call *http_call_start(struct event_base *base, const http_call_req *req,
                           const http_call_cbs *cbs, char *err, size_t err_len);
/* Same, with body serialised from a JSON value (not stolen). */
http_call *http_call_json(struct event_base *base, const char *method, const char *url,
                          const json_t *body, double timeout_s, const http_call_cbs *cbs,
                          char *err, size_t err_len);
/* A response header, valid from on_head to the end of on_done; NULL if absent. */
const char *http_call_header(const http_call *c, const char *name);
/* Ends the call early (closing its connection); no callback runs after this. Only valid before
 * on_done has run; safe to call from on_head or on_chunk. */
void http_call_cancel(http_call *c);

#endif
