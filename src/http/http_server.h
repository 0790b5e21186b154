/* The HTTP/1.1 server that the API server, the load balancer and the PD bootstrap server share.
 *
 * Promises:
 * - One event loop (libevent) per server, run on the caller's thread (http_server_run) or on a
 *   thread of its own (http_server_start). Every http_req_* / http_reply_* / http_stream_* call
 *   happens on that loop thread; other threads hand work to it with http_server_post, which never
 *   blocks on the network.
 * - Requests are read in full (headers <= max_header, body <= max_body) before a handler runs.
 *   Malformed HTTP gets 400, an oversized body 413 (before the body is read), an unknown path 404,
 *   a known path with another method 405 — all as JSON in OpenAI's error shape
 *   {"error": {"message", "type", "param", "code"}}.
 * - Ownership of a request: the handler receives an http_req and owns it until it calls one
 *   finishing function (http_reply, http_reply_json, http_reply_error, http_stream_end). It may
 *   finish inside the handler or later (from a posted task). If the client goes away first, the
 *   disconnect callback fires once (on the loop thread), later writes are dropped (they return
 *   -1), and the owner must still call a finishing function, which then only frees the request.
 * - Streaming replies (SSE) are chunked; a connection whose unsent output would exceed
 *   max_output is cut off (the disconnect callback fires), so a client that stops reading costs
 *   at most max_output bytes.
 * - Errors at setup (bind, bad host) come back as NULL/-1 with a message in err. */
#ifndef SGLC_HTTP_SERVER_H
#define SGLC_HTTP_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct event_base;

typedef struct http_server http_server;
typedef struct http_req http_req;

typedef void (*http_handler_fn)(http_req *req, void *ud);
/* Why the client is gone: "closed" (EOF or reset), "output cap", "timeout", "shutdown". */
typedef void (*http_disconnect_fn)(http_req *req, const char *why, void *ud);
typedef void (*http_task_fn)(void *arg);

typedef struct {
    const char *host;      /* "127.0.0.1" (default), "0.0.0.0", "::", "::1", a hostname */
    int port;              /* 0: the kernel picks one; read it with http_server_port */
    size_t max_body;       /* bytes; default 32 MiB */
    size_t max_header;     /* bytes of request line + headers; default 64 KiB */
    size_t max_output;     /* unsent reply bytes per connection; default 8 MiB */
    double idle_timeout_s; /* reading a request / writing a reply makes no progress; default 60 */
} http_server_opts;

/* Binds and listens; the loop does not run until http_server_run or http_server_start. */
http_server *http_server_new(const http_server_opts *opts, char *err, size_t err_len);
/* Frees everything. The loop must have stopped (or never run); requests still owned by
 * handlers at this point must not be used afterwards. */
void http_server_free(http_server *s);
int http_server_port(const http_server *s);
struct event_base *http_server_base(http_server *s);

/* Routes, matched in the order added. method: "GET", "POST", ... or NULL for any. pattern: an
 * exact path ("/generate"), with {name} segments ("/v1/models/{id}", read by http_req_param), or
 * ending in a "*" segment for a prefix: "/static/" + "*" matches "/static" and everything below
 * it, and http_req_param(r, "*") is the rest of the path (decoded, so it may hold '/', as model
 * ids like "org/name" in /v1/models/...). An exact
 * route beats a pattern route. A {name} segment matches one non-empty segment; percent-escapes in
 * it are decoded. Returns 0, or -1 for a malformed pattern or too many routes. */
int http_server_route(http_server *s, const char *method, const char *pattern,
                      http_handler_fn fn, void *ud);

/* Runs the loop on this thread until http_server_stop has drained it. Returns 0. */
int http_server_run(http_server *s);
/* Runs the loop on a new thread. Returns 0 or -1. */
int http_server_start(http_server *s);
/* Any thread. Stops accepting; idle connections close; requests in progress get grace_s seconds
 * to finish, then their clients are cut off (disconnect callbacks fire with "shutdown") and the
 * loop ends. Returns at once; http_server_wait waits for a loop started by http_server_start. */
void http_server_stop(http_server *s, double grace_s);
void http_server_wait(http_server *s);
/* Any thread: runs fn(arg) on the loop thread soon. Returns 0, or -1 when out of memory or the
 * loop has ended (fn is then not called). Tasks run in the order posted. */
int http_server_post(http_server *s, http_task_fn fn, void *arg);
/* For tests and fuzzing: serve one already-connected socket as if it had been accepted. */
int http_server_adopt_fd(http_server *s, int fd);
/* Loop thread. Connections open now (accepted and not yet closed). */
int http_server_connections(const http_server *s);

/* ---- the request (loop thread only) ---- */
const char *http_req_method(const http_req *r);
const char *http_req_path(const http_req *r);  /* percent-decoded, without the query */
const char *http_req_query(const http_req *r, const char *name); /* decoded; NULL if absent */
const char *http_req_header(const http_req *r, const char *name); /* case-insensitive */
const char *http_req_param(const http_req *r, const char *name);  /* from a {name} segment */
const char *http_req_body(const http_req *r, size_t *len);         /* NUL-terminated */
const char *http_req_peer(const http_req *r);                      /* "ip:port" */
/* Parses the body as a JSON object. On failure replies 400 (naming line, column and reason) and
 * returns NULL: the request is then finished and must not be used again. */
json_t *http_req_json(http_req *r);
void http_req_on_disconnect(http_req *r, http_disconnect_fn fn, void *ud);
/* True once the client is gone (writes are dropped). */
bool http_req_gone(const http_req *r);
/* Adds a reply header (before the reply starts). */
void http_req_set_header(http_req *r, const char *name, const char *value);

/* ---- finishing replies ---- */
void http_reply(http_req *r, int status, const char *content_type, const void *body, size_t len);
/* Serialises body compactly and takes the caller's reference to it. */
void http_reply_json(http_req *r, int status, json_t *body);
/* {"error": {"message", "type", "param", "code"}}. type NULL: chosen from status
 * (BadRequestError, AuthenticationError, NotFoundError, ...); param NULL: null; code NULL: the
 * status as a number. */
void http_reply_error(http_req *r, int status, const char *type, const char *param,
                      const char *code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The error object on its own (new reference), e.g. for `data: {"error": ...}` in a stream. */
json_t *http_error_json(int status, const char *type, const char *param, const char *code,
                        const char *message);
const char *http_status_phrase(int status);

/* ---- streaming (chunked) replies ---- */
/* Starts a chunked reply. Returns 0, or -1 when the client is already gone. */
int http_stream_start(http_req *r, int status, const char *content_type);
/* 200 text/event-stream with Cache-Control: no-cache. */
int http_sse_start(http_req *r);
/* Queues raw bytes as one chunk. Returns 0, or -1 when the client is gone or was just cut off
 * because its unsent output would exceed max_output. */
int http_stream_write(http_req *r, const void *data, size_t len);
/* Queues "data: <payload>\n\n". */
int http_sse_send(http_req *r, const char *payload, size_t len);
int http_sse_send_json(http_req *r, const json_t *j);
/* Unsent bytes on this request's connection (0 when gone). */
size_t http_stream_pending(const http_req *r);
/* Finishes the reply (the last chunk) and the request. */
void http_stream_end(http_req *r);

#endif
