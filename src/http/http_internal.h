/* Shared by the files of src/http/ only: the server, connection and request structures, so the
 * parser (http_server.c), the router (http_route.c) and the replies (http_reply.c) can each
 * stay one concern. Nothing here is part of the module's API. */
#ifndef SGLC_HTTP_INTERNAL_H
#define SGLC_HTTP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "http/http_server.h"

struct bufferevent;
struct event;
struct evconnlistener;

#define HTTP_MAX_ROUTES 128
#define HTTP_MAX_LISTENERS 8
#define HTTP_MAX_PARAMS 8
#define HTTP_MAX_HEADERS 100

typedef struct {
    char *name, *value;
} http_pair;

typedef struct http_conn http_conn;

typedef enum {
    CONN_READ_HEAD,  /* waiting for (the rest of) a request line and headers */
    CONN_READ_BODY,  /* headers parsed, body bytes still arriving */
    CONN_HANDLING,   /* a handler owns the request; the reply may not have started */
    CONN_CLOSING,    /* reply done (or refused); close once the output is flushed */
} http_conn_state;

struct http_req {
    http_server *srv;
    http_conn *conn; /* NULL once the client is gone */
    char method[16];
    char *target; /* raw request target */
    char *path;   /* decoded path */
    http_pair *query;
    int n_query;
    http_pair headers[HTTP_MAX_HEADERS];
    int n_headers;
    http_pair params[HTTP_MAX_PARAMS];
    int n_params;
    char *body;
    size_t body_len, body_have;
    char peer[64];
    /* reply */
    http_pair *out_headers;
    int n_out_headers;
    bool http10, keep_alive, started, chunked;
    http_disconnect_fn on_disconnect;
    void *disconnect_ud;
    struct event *notify_ev; /* runs on_disconnect from the loop */
    bool notified;
    const char *gone_why;
};

struct http_conn {
    http_server *srv;
    struct bufferevent *bev;
    http_conn *prev, *next;
    http_conn_state state;
    http_req *req;      /* the request being read or handled */
    size_t head_bytes;  /* bytes of request line + headers read so far */
    int in_callback;    /* >0 while a libevent callback for this connection is on the stack */
    bool dead;          /* closed while in a callback; freed when the callback unwinds */
    bool processing;    /* conn_process is on the stack */
    bool lingering;     /* write side shut after an early reply; input is being discarded */
    char peer[64];
};

typedef struct {
    char method[16]; /* "" = any */
    char *pattern;
    bool exact; /* no {name} segment and no prefix star */
    http_handler_fn fn;
    void *ud;
} http_route;

typedef struct http_task {
    http_task_fn fn;
    void *arg;
    struct http_task *next;
} http_task;

struct http_server {
    http_server_opts opts;
    struct event_base *base;
    struct evconnlistener *listeners[HTTP_MAX_LISTENERS];
    int n_listeners;
    int port;
    http_route routes[HTTP_MAX_ROUTES];
    int n_routes;
    http_conn *conns; /* doubly linked */
    int n_conns;
    /* posted tasks: any thread appends under the lock, the loop thread drains */
    pthread_mutex_t task_lock;
    http_task *task_head, *task_tail;
    struct event *task_ev;
    bool loop_ended;
    /* shutdown */
    bool stopping;
    struct event *grace_ev;
    double grace_s;
    pthread_t thread;
    bool thread_started;
};

/* http_route.c: finds the route for a request; fills r->params. Returns the route, or NULL with
 * *status set to 404 (no such path) or 405 (path known, method not). */
const http_route *http_route_find(http_server *s, http_req *r, int *status);
void http_route_free_all(http_server *s);

/* http_server.c, used by the replies */
void http_conn_request_done(http_conn *c);
void http_conn_cut(http_conn *c, const char *why);
struct bufferevent *http_conn_bev(http_conn *c);
void http_req_free(http_req *r);

/* http_reply.c */
void http_write_head(http_req *r, int status, const char *content_type, long content_length);

#endif
