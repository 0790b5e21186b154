/* The server half of src/http: listening sockets, connections on bufferevents, the HTTP/1.1
 * request parser, posted tasks and graceful shutdown.
 *
 * Why not evhttp's server: in libevent 2.1 it answers oversized bodies and malformed requests
 * with fixed HTML pages (no hook to answer in OpenAI's JSON shape), and it stops reading a
 * connection while a handler owns the request, so a client that hangs up mid-generation is only
 * noticed at the next write. Parsing a request line and headers is small; owning it lets the
 * server answer every error as JSON, notice EOF at once (the request can be aborted and its KV
 * freed), and bound what a connection may buffer. The async client (http_client.c) does use
 * evhttp, where it fits. */
#include "http/http_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_LINGER_S 2 /* after an early error reply, how long unread input is drained */

static pthread_once_t http_once = PTHREAD_ONCE_INIT;

/* libevent needs its locking set up before the first event_base is made, so that other threads
 * may call event_active on it; a peer that vanishes must not kill the process with SIGPIPE. */
static void http_global_init(void) {
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
}

static void conn_process(http_conn *c);
static void conn_close(http_conn *c, const char *why);

/* ---------- requests ---------- */

static void free_pairs(http_pair *p, int n) {
    for (int i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].value);
    }
}

static void notify_cb(evutil_socket_t fd, short what, void *arg);

void http_req_free(http_req *r) {
    if (!r) return;
    free(r->target);
    free(r->path);
    free_pairs(r->query, r->n_query);
    free(r->query);
    free_pairs(r->headers, r->n_headers);
    free_pairs(r->params, r->n_params);
    free_pairs(r->out_headers, r->n_out_headers);
    free(r->out_headers);
    free(r->body);
    if (r->notify_ev) event_free(r->notify_ev);
    free(r);
}

/* The disconnect callback always runs from the loop on its own, never inside an http_* call
 * the owner is making (a cut-off can happen inside http_stream_write), so owners need no
 * re-entrancy guard. */
static void schedule_notify(http_req *r, const char *why) {
    r->gone_why = why;
    if (!r->on_disconnect || r->notified) return;
    if (!r->notify_ev) r->notify_ev = evtimer_new(r->srv->base, notify_cb, r);
    if (!r->notify_ev) return;
    struct timeval zero = {0, 0};
    evtimer_add(r->notify_ev, &zero);
}

static void notify_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    http_req *r = arg;
    if (r->notified || !r->on_disconnect) return;
    r->notified = true;
    r->on_disconnect(r, r->gone_why ? r->gone_why : "closed", r->disconnect_ud);
}

void http_req_on_disconnect(http_req *r, http_disconnect_fn fn, void *ud) {
    r->on_disconnect = fn;
    r->disconnect_ud = ud;
    if (!r->conn) schedule_notify(r, r->gone_why);
}

bool http_req_gone(const http_req *r) { return r->conn == NULL; }

static const char *find_pair(const http_pair *p, int n, const char *name, bool nocase) {
    for (int i = 0; i < n; i++)
        if (nocase ? !strcasecmp(p[i].name, name) : !strcmp(p[i].name, name)) return p[i].value;
    return NULL;
}

const char *http_req_method(const http_req *r) { return r->method; }
const char *http_req_path(const http_req *r) { return r->path; }
const char *http_req_peer(const http_req *r) { return r->peer; }
const char *http_req_query(const http_req *r, const char *name) {
    return find_pair(r->query, r->n_query, name, false);
}
const char *http_req_header(const http_req *r, const char *name) {
    return find_pair(r->headers, r->n_headers, name, true);
}
const char *http_req_param(const http_req *r, const char *name) {
    return find_pair(r->params, r->n_params, name, false);
}
const char *http_req_body(const http_req *r, size_t *len) {
    if (len) *len = r->body_len;
    return r->body ? r->body : "";
}

json_t *http_req_json(http_req *r) {
    if (r->body_len == 0) {
        http_reply_error(r, 400, NULL, NULL, NULL, "request body is empty; expected a JSON object");
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, &e);
    if (!j) {
        http_reply_error(r, 400, NULL, NULL, NULL, "invalid JSON body at line %d column %d: %s",
                         e.line, e.column, e.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        http_reply_error(r, 400, NULL, NULL, NULL, "request body must be a JSON object");
        return NULL;
    }
    return j;
}

void http_req_set_header(http_req *r, const char *name, const char *value) {
    http_pair *p = realloc(r->out_headers, sizeof *p * (size_t)(r->n_out_headers + 1));
    if (!p) return;
    r->out_headers = p;
    p[r->n_out_headers].name = strdup(name);
    p[r->n_out_headers].value = strdup(value);
    if (!p[r->n_out_headers].name || !p[r->n_out_headers].value) {
        free(p[r->n_out_headers].name);
        free(p[r->n_out_headers].value);
        return;
    }
    r->n_out_headers++;
}

/* ---------- connections ---------- */

struct bufferevent *http_conn_bev(http_conn *c) { return c->bev; }

static void set_read_timeout(http_conn *c, double secs) {
    struct timeval rt = {(time_t)secs, (suseconds_t)((secs - (double)(time_t)secs) * 1e6)};
    double ws = c->srv->opts.idle_timeout_s;
    struct timeval wt = {(time_t)ws, (suseconds_t)((ws - (double)(time_t)ws) * 1e6)};
    bufferevent_set_timeouts(c->bev, secs > 0 ? &rt : NULL, &wt);
}

static void maybe_finish_stop(http_server *s) {
    if (s->stopping && s->n_conns == 0) event_base_loopbreak(s->base);
}

static void conn_free_struct(http_conn *c) {
    free(c);
}

/* Closes the socket now. A request a handler owns is detached (its owner is told through the
 * disconnect callback); one still being read is freed. */
static void conn_close(http_conn *c, const char *why) {
    if (c->dead) return;
    http_server *s = c->srv;
    if (c->req) {
        http_req *r = c->req;
        c->req = NULL;
        r->conn = NULL;
        if (c->state == CONN_HANDLING) schedule_notify(r, why);
        else http_req_free(r);
    }
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->n_conns--;
    bufferevent_free(c->bev);
    c->bev = NULL;
    c->dead = true;
    if (c->in_callback == 0) conn_free_struct(c);
    maybe_finish_stop(s);
}

void http_conn_cut(http_conn *c, const char *why) { conn_close(c, why); }

/* After an early error (413, 400) the client may still be sending the body; closing with
 * unread input would reset the connection and could destroy our reply before the client
 * reads it. So the write side is shut, and input is drained for a short while. */
static void conn_linger(http_conn *c) {
    if (c->srv->stopping) {
        conn_close(c, "closed");
        return;
    }
    c->lingering = true;
    shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    struct evbuffer *in = bufferevent_get_input(c->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    set_read_timeout(c, HTTP_LINGER_S);
    bufferevent_enable(c->bev, EV_READ);
}

void http_conn_request_done(http_conn *c) {
    http_req *r = c->req;
    c->req = NULL;
    bool keep = r && r->keep_alive && !c->srv->stopping && c->state == CONN_HANDLING;
    if (!keep) {
        c->state = CONN_CLOSING;
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
            if (c->in_callback) return; /* the write callback or the read loop closes it */
            conn_linger(c);
        }
        return;
    }
    c->state = CONN_READ_HEAD;
    c->head_bytes = 0;
    set_read_timeout(c, c->srv->opts.idle_timeout_s);
    bufferevent_enable(c->bev, EV_READ);
    /* a pipelined request may already be waiting; the read loop handles it if it is running */
    if (!c->processing && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
        c->in_callback++;
        conn_process(c);
        c->in_callback--;
        if (c->dead && c->in_callback == 0) conn_free_struct(c);
    }
}

/* Replies with an error before any handler saw the request and closes after it, because the
 * rest of the input (an unread body, a broken framing) cannot be trusted. */
static void early_error(http_conn *c, int status, const char *fmt, const char *detail) {
    http_req *r = c->req;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) {
            conn_close(c, "closed");
            return;
        }
        r->srv = c->srv;
        r->conn = c;
        snprintf(r->peer, sizeof r->peer, "%s", c->peer);
        c->req = r;
    }
    r->keep_alive = false;
    c->state = CONN_HANDLING;
    http_reply_error(r, status, NULL, NULL, NULL, fmt, detail ? detail : "");
}

static char *dup_range(const char *p, size_t n) {
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

static int parse_request_line(http_conn *c, const char *line) {
    http_req *r = calloc(1, sizeof *r);
    if (!r) return -1;
    r->srv = c->srv;
    r->conn = c;
    snprintf(r->peer, sizeof r->peer, "%s", c->peer);
    c->req = r;
    const char *sp1 = strchr(line, ' ');
    const char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strchr(sp2 + 1, ' ')) {
        early_error(c, 400, "malformed request line%s", "");
        return 1;
    }
    size_t mlen = (size_t)(sp1 - line);
    if (mlen == 0 || mlen >= sizeof r->method) {
        early_error(c, 400, "malformed request method%s", "");
        return 1;
    }
    for (size_t i = 0; i < mlen; i++) {
        if (!isupper((unsigned char)line[i])) {
            early_error(c, 400, "malformed request method%s", "");
            return 1;
        }
        r->method[i] = line[i];
    }
    const char *ver = sp2 + 1;
    if (!strcmp(ver, "HTTP/1.1")) r->keep_alive = true;
    else if (!strcmp(ver, "HTTP/1.0")) r->http10 = true;
    else {
        early_error(c, 505, "unsupported HTTP version '%s'", strncmp(ver, "HTTP/", 5) ? "?" : ver);
        return 1;
    }
    if (sp1[1] != '/') {
        early_error(c, 400, "request target must be a path starting with '/'%s", "");
        return 1;
    }
    r->target = dup_range(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    return r->target ? 0 : -1;
}

static int parse_header_line(http_conn *c, const char *line) {
    http_req *r = c->req;
    if (line[0] == ' ' || line[0] == '\t') {
        early_error(c, 400, "folded header lines are not accepted%s", "");
        return 1;
    }
    const char *colon = strchr(line, ':');
    if (!colon || colon == line) {
        early_error(c, 400, "malformed header line%s", "");
        return 1;
    }
    for (const char *p = line; p < colon; p++) {
        if (*p <= ' ' || *p >= 127) {
            early_error(c, 400, "malformed header name%s", "");
            return 1;
        }
    }
    if (r->n_headers >= HTTP_MAX_HEADERS) {
        early_error(c, 431, "more than %s headers", "100");
        return 1;
    }
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    size_t vlen = strlen(v);
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) vlen--;
    http_pair *h = &r->headers[r->n_headers];
    h->name = dup_range(line, (size_t)(colon - line));
    h->value = dup_range(v, vlen);
    if (!h->name || !h->value) {
        free(h->name);
        free(h->value);
        return -1;
    }
    r->n_headers++;
    return 0;
}

static bool header_has_token(const char *value, const char *token) {
    size_t n = strlen(token);
    for (const char *p = value; p && *p;) {
        while (*p == ' ' || *p == ',') p++;
        if (!strncasecmp(p, token, n) && (p[n] == 0 || p[n] == ',' || p[n] == ' ')) return true;
        p = strchr(p, ',');
    }
    return false;
}

/* Headers are complete: decide framing, keep-alive and the body size. */
static int finish_head(http_conn *c) {
    http_req *r = c->req;
    const char *conn_h = http_req_header(r, "Connection");
    if (conn_h && header_has_token(conn_h, "close")) r->keep_alive = false;
    if (conn_h && r->http10 && header_has_token(conn_h, "keep-alive")) r->keep_alive = true;
    if (http_req_header(r, "Transfer-Encoding")) {
        early_error(c, 411, "chunked request bodies are not accepted; send Content-Length%s", "");
        return 1;
    }
    unsigned long long len = 0;
    const char *first = NULL;
    for (int i = 0; i < r->n_headers; i++) {
        if (strcasecmp(r->headers[i].name, "Content-Length")) continue;
        const char *v = r->headers[i].value;
        if (first && strcmp(first, v)) {
            early_error(c, 400, "conflicting Content-Length headers%s", "");
            return 1;
        }
        first = v;
        if (!*v || strlen(v) > 19) {
            early_error(c, *v ? 413 : 400, "invalid Content-Length '%s'", *v ? "too large" : "");
            return 1;
        }
        len = 0;
        for (const char *p = v; *p; p++) {
            if (!isdigit((unsigned char)*p)) {
                early_error(c, 400, "invalid Content-Length%s", "");
                return 1;
            }
            len = len * 10 + (unsigned)(*p - '0');
        }
    }
    if (len > c->srv->opts.max_body) {
        char msg[64];
        snprintf(msg, sizeof msg, "%zu", c->srv->opts.max_body);
        early_error(c, 413, "request body is larger than the limit of %s bytes", msg);
        return 1;
    }
    r->body_len = (size_t)len;
    r->body = malloc(r->body_len + 1);
    if (!r->body) return -1;
    r->body[r->body_len] = 0;
    const char *expect = http_req_header(r, "Expect");
    if (expect && !strcasecmp(expect, "100-continue") && !r->http10 && len > 0)
        bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    c->state = CONN_READ_BODY;
    return 0;
}

static int split_target(http_req *r) {
    const char *q = strchr(r->target, '?');
    size_t plen = q ? (size_t)(q - r->target) : strlen(r->target);
    char *raw = dup_range(r->target, plen);
    if (!raw) return -1;
    size_t out_len = 0;
    r->path = evhttp_uridecode(raw, 0, &out_len);
    free(raw);
    if (!r->path) return -1;
    if (strlen(r->path) != out_len) return 1; /* an escaped NUL */
    if (!q || !q[1]) return 0;
    struct evkeyvalq kv;
    TAILQ_INIT(&kv);
    if (evhttp_parse_query_str(q + 1, &kv) != 0) {
        evhttp_clear_headers(&kv);
        return 1;
    }
    int n = 0;
    struct evkeyval *e;
    TAILQ_FOREACH(e, &kv, next) n++;
    r->query = calloc((size_t)n, sizeof *r->query);
    if (!r->query) {
        evhttp_clear_headers(&kv);
        return -1;
    }
    TAILQ_FOREACH(e, &kv, next) {
        r->query[r->n_query].name = strdup(e->key);
        r->query[r->n_query].value = strdup(e->value);
        r->n_query++;
    }
    evhttp_clear_headers(&kv);
    return 0;
}

static void dispatch(http_conn *c) {
    http_req *r = c->req;
    c->state = CONN_HANDLING;
    set_read_timeout(c, 0); /* handlers may take long; only a stalled write times out */
    int rc = split_target(r);
    if (rc != 0) {
        if (rc < 0) conn_close(c, "closed");
        else http_reply_error(r, 400, NULL, NULL, NULL, "malformed request target");
        return;
    }
    int status = 404;
    const http_route *route = http_route_find(c->srv, r, &status);
    if (!route) {
        if (status == 405)
            http_reply_error(r, 405, NULL, NULL, NULL, "method %s is not allowed for %s",
                             r->method, r->path);
        else http_reply_error(r, 404, NULL, NULL, NULL, "no route for %s %s", r->method, r->path);
        return;
    }
    route->fn(r, route->ud);
}

/* Reads as much of the current request as has arrived; runs handlers for complete ones. */
static void conn_process(http_conn *c) {
    http_server *s = c->srv;
    c->processing = true;
    while (!c->dead) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        if (c->lingering) {
            evbuffer_drain(in, evbuffer_get_length(in));
            break;
        }
        if (c->state == CONN_READ_HEAD) {
            size_t n = 0;
            char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
            if (!line) {
                if (c->head_bytes + evbuffer_get_length(in) > s->opts.max_header)
                    early_error(c, 431, "request headers are larger than %s bytes", "the limit");
                break;
            }
            c->head_bytes += n + 2;
            int rc = 0;
            if (c->head_bytes > s->opts.max_header)
                early_error(c, 431, "request headers are larger than %s bytes", "the limit"),
                    rc = 1;
            else if (strlen(line) != n)
                early_error(c, 400, "NUL byte in request head%s", ""), rc = 1;
            else if (!c->req && n == 0)
                rc = 0; /* blank lines before a request are allowed (RFC 9112 2.2) */
            else if (!c->req) rc = parse_request_line(c, line);
            else if (n == 0) rc = finish_head(c);
            else rc = parse_header_line(c, line);
            free(line);
            if (rc < 0) conn_close(c, "closed");
            if (rc != 0) break;
            if (c->state == CONN_READ_BODY && c->req->body_len == 0) dispatch(c);
        } else if (c->state == CONN_READ_BODY) {
            http_req *r = c->req;
            size_t want = r->body_len - r->body_have;
            if (want > (1u << 30)) want = 1u << 30;
            int got = evbuffer_remove(in, r->body + r->body_have, want);
            if (got > 0) r->body_have += (size_t)got;
            if (r->body_have < r->body_len) break;
            dispatch(c);
        } else {
            break; /* a handler owns the request: later input waits (bounded by the watermark) */
        }
    }
    c->processing = false;
    if (!c->dead && c->state == CONN_CLOSING && !c->lingering &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_linger(c);
}

static void read_cb(struct bufferevent *bev, void *arg) {
    (void)bev;
    http_conn *c = arg;
    c->in_callback++;
    conn_process(c);
    c->in_callback--;
    if (c->dead && c->in_callback == 0) conn_free_struct(c);
}

static void write_cb(struct bufferevent *bev, void *arg) {
    (void)bev;
    http_conn *c = arg;
    if (c->state == CONN_CLOSING && !c->lingering) {
        c->in_callback++;
        conn_linger(c);
        c->in_callback--;
        if (c->dead && c->in_callback == 0) conn_free_struct(c);
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg) {
    (void)bev;
    http_conn *c = arg;
    const char *why = (what & BEV_EVENT_TIMEOUT) ? "timeout" : "closed";
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        c->in_callback++;
        conn_close(c, why);
        c->in_callback--;
        if (c->dead && c->in_callback == 0) conn_free_struct(c);
    }
}

static void conn_new(http_server *s, evutil_socket_t fd, const char *peer) {
    http_conn *c = calloc(1, sizeof *c);
    struct bufferevent *bev =
        c ? bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (!bev) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->srv = s;
    c->bev = bev;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    /* input beyond this waits in the kernel while a handler owns the request */
    bufferevent_setwatermark(bev, EV_READ, 0, 1 << 20);
    bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
    set_read_timeout(c, s->opts.idle_timeout_s);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void format_peer(const struct sockaddr *sa, char *out, size_t len) {
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        snprintf(out, len, "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        snprintf(out, len, "[%s]:%d", host, port);
    } else {
        snprintf(out, len, "local");
    }
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg) {
    (void)l;
    (void)len;
    http_server *s = arg;
    char peer[64];
    format_peer(sa, peer, sizeof peer);
    if (s->stopping) {
        evutil_closesocket(fd);
        return;
    }
    conn_new(s, fd, peer);
}

int http_server_adopt_fd(http_server *s, int fd) {
    if (evutil_make_socket_nonblocking(fd) != 0) return -1;
    conn_new(s, fd, "adopted");
    return 0;
}

int http_server_connections(const http_server *s) { return s->n_conns; }

/* ---------- posted tasks ---------- */

static void run_tasks(http_server *s) {
    pthread_mutex_lock(&s->task_lock);
    http_task *t = s->task_head;
    s->task_head = s->task_tail = NULL;
    pthread_mutex_unlock(&s->task_lock);
    while (t) {
        http_task *next = t->next;
        t->fn(t->arg);
        free(t);
        t = next;
    }
}

static void task_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    run_tasks(arg);
}

int http_server_post(http_server *s, http_task_fn fn, void *arg) {
    http_task *t = malloc(sizeof *t);
    if (!t) return -1;
    t->fn = fn;
    t->arg = arg;
    t->next = NULL;
    pthread_mutex_lock(&s->task_lock);
    if (s->loop_ended) {
        pthread_mutex_unlock(&s->task_lock);
        free(t);
        return -1;
    }
    if (s->task_tail) s->task_tail->next = t;
    else s->task_head = t;
    s->task_tail = t;
    /* activated under the lock so the loop cannot end between the append and the wake-up */
    event_active(s->task_ev, EV_READ, 0);
    pthread_mutex_unlock(&s->task_lock);
    return 0;
}

/* ---------- lifecycle ---------- */

static int bind_listener(http_server *s, char *err, size_t err_len) {
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", s->opts.port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int rc = getaddrinfo(s->opts.host, port_s, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_len, "cannot resolve host '%s': %s", s->opts.host, gai_strerror(rc));
        return -1;
    }
    /* one address: with port 0 two addresses would get two different ports */
    struct evconnlistener *l = evconnlistener_new_bind(
        s->base, accept_cb, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        1024, res->ai_addr, (int)res->ai_addrlen);
    int e = errno;
    freeaddrinfo(res);
    if (!l) {
        snprintf(err, err_len, "cannot listen on %s:%d: %s", s->opts.host, s->opts.port,
                 strerror(e));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &sl);
    s->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    s->listeners[s->n_listeners++] = l;
    return 0;
}

http_server *http_server_new(const http_server_opts *opts, char *err, size_t err_len) {
    pthread_once(&http_once, http_global_init);
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    if (opts) s->opts = *opts;
    if (!s->opts.host || !*s->opts.host) s->opts.host = "127.0.0.1";
    if (!s->opts.max_body) s->opts.max_body = 32u << 20;
    if (!s->opts.max_header) s->opts.max_header = 64u << 10;
    if (!s->opts.max_output) s->opts.max_output = 8u << 20;
    if (s->opts.idle_timeout_s <= 0) s->opts.idle_timeout_s = 60;
    if (s->opts.port < 0 || s->opts.port > 65535) {
        snprintf(err, err_len, "port %d is out of range", s->opts.port);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->task_lock, NULL);
    s->base = event_base_new();
    s->task_ev = s->base ? event_new(s->base, -1, 0, task_cb, s) : NULL;
    if (!s->task_ev) {
        snprintf(err, err_len, "cannot create the event loop");
        http_server_free(s);
        return NULL;
    }
    if (bind_listener(s, err, err_len) != 0) {
        http_server_free(s);
        return NULL;
    }
    return s;
}

int http_server_port(const http_server *s) { return s->port; }
struct event_base *http_server_base(http_server *s) { return s->base; }

int http_server_run(http_server *s) {
    event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
    /* connections closed by the shutdown have disconnect notices queued; deliver them so the
     * owners release their requests (every connection is closed, so nothing else can run) */
    event_base_loop(s->base, EVLOOP_NONBLOCK);
    pthread_mutex_lock(&s->task_lock);
    s->loop_ended = true;
    pthread_mutex_unlock(&s->task_lock);
    run_tasks(s); /* tasks posted before the end still run, so what they own is released */
    return 0;
}

static void *loop_thread(void *arg) {
    http_server_run(arg);
    return NULL;
}

int http_server_start(http_server *s) {
    if (s->thread_started) return -1;
    if (pthread_create(&s->thread, NULL, loop_thread, s) != 0) return -1;
    s->thread_started = true;
    return 0;
}

void http_server_wait(http_server *s) {
    if (s->thread_started) {
        pthread_join(s->thread, NULL);
        s->thread_started = false;
    }
}

static void grace_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    http_server *s = arg;
    while (s->conns) conn_close(s->conns, "shutdown");
    event_base_loopbreak(s->base);
}

static void stop_task(void *arg) {
    http_server *s = arg;
    if (s->stopping) return;
    s->stopping = true;
    for (int i = 0; i < s->n_listeners; i++) evconnlistener_free(s->listeners[i]);
    s->n_listeners = 0;
    for (http_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        bool idle = c->state == CONN_READ_HEAD && !c->req &&
                    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
        if (idle || c->lingering) conn_close(c, "shutdown");
    }
    if (s->n_conns == 0) {
        event_base_loopbreak(s->base);
        return;
    }
    double g = s->grace_s > 0 ? s->grace_s : 0;
    struct timeval tv = {(time_t)g, (suseconds_t)((g - (double)(time_t)g) * 1e6)};
    s->grace_ev = evtimer_new(s->base, grace_cb, s);
    if (s->grace_ev) evtimer_add(s->grace_ev, &tv);
    else grace_cb(-1, 0, s);
}

void http_server_stop(http_server *s, double grace_s) {
    pthread_mutex_lock(&s->task_lock);
    s->grace_s = grace_s;
    pthread_mutex_unlock(&s->task_lock);
    http_server_post(s, stop_task, s);
}

void http_server_free(http_server *s) {
    if (!s) return;
    http_server_wait(s);
    while (s->conns) conn_close(s->conns, "shutdown");
    for (int i = 0; i < s->n_listeners; i++) evconnlistener_free(s->listeners[i]);
    run_tasks(s);
    if (s->grace_ev) event_free(s->grace_ev);
    if (s->task_ev) event_free(s->task_ev);
    http_route_free_all(s);
    if (s->base) event_base_free(s->base);
    pthread_mutex_destroy(&s->task_lock);
    free(s);
}
