/* Unit tests for src/http: a real server on an ephemeral port (on its own thread), driven by the
 * async client (on the test thread's own event loop) and by raw sockets for what a well-behaved
 * client never sends: malformed requests, oversized bodies, clients that hang up or stop reading
 * in the middle of an SSE stream. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/http_client.h"
#include "http/http_server.h"

#define MAX_BODY 4096
#define MAX_OUTPUT (64 * 1024)

static http_server *srv;
static int port;

/* what the server-side handlers saw, read by the test thread */
static atomic_int disconnects;
static char disconnect_why[32];
static atomic_size_t flood_max_pending;
static atomic_int flood_stopped;
/* cmocka's asserts may only run on the test thread; handlers count their failures here */
static atomic_int server_errors;
#define CHECK(x) ((x) ? (void)0 : (void)atomic_fetch_add(&server_errors, 1))

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool wait_for(atomic_int *v, int at_least, int ms) {
    for (int i = 0; i < ms / 5; i++) {
        if (atomic_load(v) >= at_least) return true;
        sleep_ms(5);
    }
    return atomic_load(v) >= at_least;
}

#define CHECK_EQ(a, b) CHECK((a) == (b))

/* ---------- handlers (run on the server's loop thread) ---------- */

static void h_hello(http_req *r, void *ud) {
    (void)ud;
    http_reply_json(r, 200, json_pack("{s:s}", "hello", "world"));
}

static void h_models(http_req *r, void *ud) {
    (void)ud;
    http_reply_json(r, 200, json_pack("{s:b}", "list", 1));
}

static void h_echo(http_req *r, void *ud) {
    (void)ud;
    json_t *body = http_req_json(r);
    if (!body) return;
    const char *q = http_req_query(r, "tag");
    const char *auth = http_req_header(r, "authorization");
    http_reply_json(r, 200, json_pack("{s:o,s:s?,s:s?}", "got", body, "tag", q, "auth", auth));
}

static void h_model_id(http_req *r, void *ud) {
    (void)ud;
    http_reply_json(r, 200, json_pack("{s:s}", "id", http_req_param(r, "id")));
}

static void h_files(http_req *r, void *ud) {
    (void)ud;
    http_reply_json(r, 200, json_pack("{s:s}", "rest", http_req_param(r, "*")));
}

static void h_sse(http_req *r, void *ud) {
    (void)ud;
    CHECK_EQ(http_sse_start(r), 0);
    for (int i = 0; i < 3; i++) {
        json_t *j = json_pack("{s:i}", "i", i);
        CHECK_EQ(http_sse_send_json(r, j), 0);
        json_decref(j);
    }
    http_sse_send(r, "[DONE]", 6);
    http_stream_end(r);
}

static void on_gone(http_req *r, const char *why, void *ud) {
    (void)ud;
    snprintf(disconnect_why, sizeof disconnect_why, "%s", why);
    CHECK(http_req_gone(r));
    CHECK_EQ(http_sse_send(r, "late", 4), -1); /* writes after the end are dropped */
    http_stream_end(r);
    atomic_fetch_add(&disconnects, 1);
}

/* Starts a stream and keeps it open until the client goes away. */
static void h_sse_hold(http_req *r, void *ud) {
    (void)ud;
    http_req_on_disconnect(r, on_gone, NULL);
    http_sse_start(r);
    http_sse_send(r, "{\"first\":true}", 14);
}

/* Holds the request without replying (a client timeout test). */
static void h_never(http_req *r, void *ud) {
    (void)ud;
    http_req_on_disconnect(r, on_gone, NULL);
}

typedef struct {
    http_req *r;
    struct event *ev;
} flood_state;

static void flood_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    flood_state *f = arg;
    static char chunk[8192];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 4; i++) {
        size_t pending = http_stream_pending(f->r);
        if (pending > atomic_load(&flood_max_pending)) atomic_store(&flood_max_pending, pending);
        if (http_sse_send(f->r, chunk, sizeof chunk) != 0) {
            atomic_store(&flood_stopped, 1);
            event_free(f->ev); /* the disconnect callback ends the request */
            free(f);
            return;
        }
    }
    struct timeval tv = {0, 1000};
    evtimer_add(f->ev, &tv);
}

/* Streams as fast as it can, as a generation would, to a client that may not read. */
static void h_flood(http_req *r, void *ud) {
    (void)ud;
    http_req_on_disconnect(r, on_gone, NULL);
    http_sse_start(r);
    flood_state *f = calloc(1, sizeof *f);
    f->r = r;
    f->ev = evtimer_new(http_server_base(srv), flood_tick, f);
    struct timeval tv = {0, 0};
    evtimer_add(f->ev, &tv);
}

/* A reply produced on another thread and handed to the loop with http_server_post. */
static void later_reply(void *arg) {
    http_reply_json(arg, 200, json_pack("{s:s}", "from", "worker"));
}

static void *later_worker(void *arg) {
    sleep_ms(30);
    CHECK_EQ(http_server_post(srv, later_reply, arg), 0);
    return NULL;
}

static void h_later(http_req *r, void *ud) {
    (void)ud;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, later_worker, r), 0);
    pthread_detach(t);
}

static void add_routes(http_server *s) {
    CHECK_EQ(http_server_route(s, "GET", "/hello", h_hello, NULL), 0);
    CHECK_EQ(http_server_route(s, "GET", "/v1/models/{id}", h_model_id, NULL), 0);
    CHECK_EQ(http_server_route(s, "GET", "/v1/models", h_models, NULL), 0);
    CHECK_EQ(http_server_route(s, "GET", "/files/*", h_files, NULL), 0);
    CHECK_EQ(http_server_route(s, "POST", "/echo", h_echo, NULL), 0);
    CHECK_EQ(http_server_route(s, NULL, "/sse", h_sse, NULL), 0);
    CHECK_EQ(http_server_route(s, "POST", "/sse_hold", h_sse_hold, NULL), 0);
    CHECK_EQ(http_server_route(s, "GET", "/never", h_never, NULL), 0);
    CHECK_EQ(http_server_route(s, "POST", "/flood", h_flood, NULL), 0);
    CHECK_EQ(http_server_route(s, "GET", "/later", h_later, NULL), 0);
}

static int setup(void **state) {
    (void)state;
    char err[256];
    http_server_opts o = {.host = "127.0.0.1", .port = 0, .max_body = MAX_BODY,
                          .max_output = MAX_OUTPUT, .max_header = 2048};
    srv = http_server_new(&o, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    add_routes(srv);
    port = http_server_port(srv);
    if (port <= 0 || http_server_start(srv) != 0) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    http_server_stop(srv, 1.0);
    http_server_wait(srv);
    http_server_free(srv);
    return 0;
}

/* ---------- the async client, on the test thread's own loop ---------- */

typedef struct {
    int status, head_status, chunks;
    char body[65536];
    size_t len;
    char err[128];
    char ctype[64];
    bool done;
} result;

static void c_head(http_call *c, int status, void *ud) {
    result *res = ud;
    res->head_status = status;
    const char *ct = http_call_header(c, "Content-Type");
    snprintf(res->ctype, sizeof res->ctype, "%s", ct ? ct : "");
}

static void c_chunk(http_call *c, const char *data, size_t len, void *ud) {
    (void)c;
    result *res = ud;
    res->chunks++;
    if (res->len + len < sizeof res->body) {
        memcpy(res->body + res->len, data, len);
        res->len += len;
        res->body[res->len] = 0;
    }
}

static void c_done(http_call *c, int status, const char *body, size_t len, const char *err,
                   void *ud) {
    (void)c;
    result *res = ud;
    res->status = status;
    res->done = true;
    if (err) snprintf(res->err, sizeof res->err, "%s", err);
    if (len && len < sizeof res->body) {
        memcpy(res->body, body, len + 1);
        res->len = len;
    }
}

static void call(const char *method, const char *path, const char *body, double timeout,
                 bool stream, result *res) {
    memset(res, 0, sizeof *res);
    struct event_base *base = event_base_new();
    char url[256], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    http_call_cbs cbs = {c_head, stream ? c_chunk : NULL, c_done, res};
    http_call_req rq = {.method = method, .url = url, .body = body,
                        .body_len = body ? strlen(body) : 0, .timeout_s = timeout};
    http_call *c = http_call_start(base, &rq, &cbs, err, sizeof err);
    assert_non_null(c);
    event_base_dispatch(base);
    assert_true(res->done);
    event_base_free(base);
}

static json_t *parse(const result *res) {
    json_error_t e;
    json_t *j = json_loads(res->body, 0, &e);
    if (!j) fail_msg("not JSON: %s (%s)", res->body, e.text);
    return j;
}

static void expect_error(const char *body, int status, const char *type) {
    json_error_t e;
    json_t *j = json_loads(body, 0, &e);
    if (!j) fail_msg("error body is not JSON: %s", body);
    json_t *er = json_object_get(j, "error");
    assert_true(json_is_object(er));
    assert_true(json_is_string(json_object_get(er, "message")));
    assert_true(strlen(json_string_value(json_object_get(er, "message"))) > 0);
    assert_string_equal(json_string_value(json_object_get(er, "type")), type);
    assert_true(json_object_get(er, "param") != NULL);
    assert_int_equal(json_integer_value(json_object_get(er, "code")), status);
    json_decref(j);
}

static void test_client_get_and_post(void **state) {
    (void)state;
    result res;
    call("GET", "/hello", NULL, 5, false, &res);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.head_status, 200);
    assert_string_equal(res.ctype, "application/json");
    json_t *j = parse(&res);
    assert_string_equal(json_string_value(json_object_get(j, "hello")), "world");
    json_decref(j);

    call("POST", "/echo?tag=a%20b", "{\"x\":[1,2,3]}", 5, false, &res);
    assert_int_equal(res.status, 200);
    j = parse(&res);
    assert_int_equal(json_array_size(json_object_get(json_object_get(j, "got"), "x")), 3);
    assert_string_equal(json_string_value(json_object_get(j, "tag")), "a b");
    json_decref(j);

    call("PUT", "/echo", "{}", 5, false, &res);
    assert_int_equal(res.status, 405);
    expect_error(res.body, 405, "MethodNotAllowedError");
}

static void test_routing(void **state) {
    (void)state;
    result res;
    call("GET", "/v1/models", NULL, 5, false, &res);
    json_t *j = parse(&res);
    assert_true(json_is_true(json_object_get(j, "list")));
    json_decref(j);

    call("GET", "/v1/models/my%2Fmodel", NULL, 5, false, &res);
    j = parse(&res);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "my/model");
    json_decref(j);

    call("GET", "/v1/models/a/b", NULL, 5, false, &res); /* {id} is one segment */
    assert_int_equal(res.status, 404);
    expect_error(res.body, 404, "NotFoundError");

    call("GET", "/files/org/name.gguf", NULL, 5, false, &res);
    j = parse(&res);
    assert_string_equal(json_string_value(json_object_get(j, "rest")), "org/name.gguf");
    json_decref(j);

    call("GET", "/files", NULL, 5, false, &res);
    j = parse(&res);
    assert_string_equal(json_string_value(json_object_get(j, "rest")), "");
    json_decref(j);

    call("GET", "/nope", NULL, 5, false, &res);
    assert_int_equal(res.status, 404);
    expect_error(res.body, 404, "NotFoundError");

    assert_int_equal(http_server_route(srv, "GET", "/bad{x}", h_hello, NULL), -1);
    assert_int_equal(http_server_route(srv, "GET", "no-slash", h_hello, NULL), -1);
    assert_int_equal(http_server_route(srv, "GET", "/a/*/b", h_hello, NULL), -1);
}

static void test_json_errors(void **state) {
    (void)state;
    result res;
    call("POST", "/echo", "{\"x\": [1, 2", 5, false, &res);
    assert_int_equal(res.status, 400);
    expect_error(res.body, 400, "BadRequestError");
    assert_non_null(strstr(res.body, "invalid JSON body at line 1"));

    call("POST", "/echo", "[1,2]", 5, false, &res);
    assert_int_equal(res.status, 400);
    assert_non_null(strstr(res.body, "must be a JSON object"));

    call("POST", "/echo", "{\"s\":\"\xff\xfe\"}", 5, false, &res); /* invalid UTF-8 */
    assert_int_equal(res.status, 400);
    expect_error(res.body, 400, "BadRequestError");

    json_t *e = http_error_json(404, NULL, "model", "model_not_found", "no such model");
    json_t *er = json_object_get(e, "error");
    assert_string_equal(json_string_value(json_object_get(er, "param")), "model");
    assert_string_equal(json_string_value(json_object_get(er, "code")), "model_not_found");
    json_decref(e);
}

static void test_client_streaming(void **state) {
    (void)state;
    result res;
    call("POST", "/sse", NULL, 5, true, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.ctype, "text/event-stream");
    assert_true(res.chunks >= 1);
    assert_string_equal(res.body, "data: {\"i\":0}\n\ndata: {\"i\":1}\n\ndata: {\"i\":2}\n\n"
                                  "data: [DONE]\n\n");
}

static void test_client_timeout_and_refused(void **state) {
    (void)state;
    int before = atomic_load(&disconnects);
    result res;
    call("GET", "/never", NULL, 0.3, false, &res);
    assert_int_equal(res.status, 0);
    assert_string_equal(res.err, "timeout");
    /* the client closed its connection: the server's owner of /never hears about it */
    assert_true(wait_for(&disconnects, before + 1, 2000));
    assert_string_equal(disconnect_why, "closed");

    /* a port nobody listens on */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t sl = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &sl);
    int dead_port = ntohs(a.sin_port);
    close(fd);
    memset(&res, 0, sizeof res);
    struct event_base *base = event_base_new();
    char url[128], err[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", dead_port);
    http_call_cbs cbs = {NULL, NULL, c_done, &res};
    http_call_req rq = {.method = "GET", .url = url, .timeout_s = 2};
    assert_non_null(http_call_start(base, &rq, &cbs, err, sizeof err));
    event_base_dispatch(base);
    assert_true(res.done);
    assert_int_equal(res.status, 0);
    assert_true(strlen(res.err) > 0);
    event_base_free(base);

    http_call_req bad = {.method = "GET", .url = "ftp://x/y"};
    assert_null(http_call_start(NULL, &bad, &cbs, err, sizeof err));
    assert_non_null(strstr(err, "http://"));
}

static void test_client_headers(void **state) {
    (void)state;
    result res;
    memset(&res, 0, sizeof res);
    struct event_base *base = event_base_new();
    char url[128], err[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", port);
    const char *hdrs[] = {"Authorization", "Bearer sk-1", NULL};
    http_call_cbs cbs = {NULL, NULL, c_done, &res};
    http_call_req rq = {.method = "POST", .url = url, .body = "{}", .body_len = 2,
                        .headers = hdrs, .timeout_s = 5};
    assert_non_null(http_call_start(base, &rq, &cbs, err, sizeof err));
    event_base_dispatch(base);
    event_base_free(base);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body, "\"auth\":\"Bearer sk-1\""));
}

/* A relay whose own client went away cancels its upstream call mid-stream; the upstream server
 * then sees its client disconnect (what the load balancer needs for aborts to reach the
 * engine). */
static void cancel_on_chunk(http_call *c, const char *data, size_t len, void *ud) {
    (void)data;
    (void)len;
    result *res = ud;
    res->chunks++;
    http_call_cancel(c);
}

static void test_client_cancel_mid_stream(void **state) {
    (void)state;
    int before = atomic_load(&disconnects);
    result res;
    memset(&res, 0, sizeof res);
    struct event_base *base = event_base_new();
    char url[128], err[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/sse_hold", port);
    http_call_cbs cbs = {c_head, cancel_on_chunk, c_done, &res};
    http_call_req rq = {.method = "POST", .url = url, .body = "{}", .body_len = 2,
                        .timeout_s = 5};
    assert_non_null(http_call_start(base, &rq, &cbs, err, sizeof err));
    event_base_dispatch(base);
    event_base_free(base);
    assert_int_equal(res.chunks, 1);
    assert_false(res.done); /* no callback after a cancel */
    assert_int_equal(res.head_status, 200);
    assert_true(wait_for(&disconnects, before + 1, 2000));
    assert_string_equal(disconnect_why, "closed");
}

static void test_post_from_other_thread(void **state) {
    (void)state;
    result res;
    call("GET", "/later", NULL, 5, false, &res);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body, "worker"));
}

/* ---------- raw sockets ---------- */

static int raw_connect(int p) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Sends data and reads until the server closes (or 2 s pass). */
static size_t raw_exchange(const char *data, size_t len, char *out, size_t cap) {
    int fd = raw_connect(port);
    assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
    size_t have = 0;
    for (;;) {
        ssize_t n = recv(fd, out + have, cap - 1 - have, 0);
        if (n <= 0) break;
        have += (size_t)n;
        if (have >= cap - 1) break;
    }
    out[have] = 0;
    close(fd);
    return have;
}

static const char *body_of(const char *resp) {
    const char *p = strstr(resp, "\r\n\r\n");
    return p ? p + 4 : "";
}

static void test_raw_malformed(void **state) {
    (void)state;
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"GARBAGE\r\n\r\n", 400},
        {"get /hello HTTP/1.1\r\n\r\n", 400},
        {"GET hello HTTP/1.1\r\n\r\n", 400},
        {"GET /hello HTTP/2.0\r\n\r\n", 505},
        {"GET /hello HTTP/1.1\r\nNoColon\r\n\r\n", 400},
        {"GET /hello HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400},
        {"POST /echo HTTP/1.1\r\nContent-Length: 12x\r\n\r\n", 400},
        {"POST /echo HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400},
        {"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411},
        {"GET /hello%00x HTTP/1.1\r\n\r\n", 400},
        {"POST /echo HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 413},
    };
    char out[8192];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        raw_exchange(cases[i].req, strlen(cases[i].req), out, sizeof out);
        int status = 0;
        if (sscanf(out, "HTTP/1.%*d %d", &status) != 1) fail_msg("no reply to case %zu", i);
        if (status != cases[i].status)
            fail_msg("case %zu: got %d, want %d: %s", i, status, cases[i].status, out);
        json_t *j = json_loads(body_of(out), 0, NULL);
        if (!j || !json_object_get(j, "error")) fail_msg("case %zu: not an error JSON: %s", i, out);
        json_decref(j);
    }
    /* a header section over max_header */
    char big[4096];
    int n = snprintf(big, sizeof big, "GET /hello HTTP/1.1\r\nX-Big: ");
    memset(big + n, 'a', 3000);
    memcpy(big + n + 3000, "\r\n\r\n", 5);
    raw_exchange(big, strlen(big), out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 431"));
}

static void test_raw_oversized_body(void **state) {
    (void)state;
    /* the 413 comes as soon as the headers are read, before the body is sent */
    char out[8192];
    const char *head = "POST /echo HTTP/1.1\r\nContent-Length: 100000\r\n\r\n";
    raw_exchange(head, strlen(head), out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 413"));
    assert_non_null(strstr(out, "Connection: close"));
    expect_error(body_of(out), 413, "RequestTooLargeError");

    /* and when the client does send the whole body, it still gets the 413 intact */
    size_t len = strlen(head) + 100000;
    char *req = malloc(len);
    memcpy(req, head, strlen(head));
    memset(req + strlen(head), 'a', 100000);
    int fd = raw_connect(port);
    size_t sent = 0;
    while (sent < len) {
        ssize_t k = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
        if (k <= 0) break;
        sent += (size_t)k;
    }
    ssize_t k = recv(fd, out, sizeof out - 1, 0);
    assert_true(k > 0);
    out[k] = 0;
    assert_non_null(strstr(out, "HTTP/1.1 413"));
    close(fd);
    free(req);

    /* a body exactly at the limit is accepted */
    char *jb = malloc(MAX_BODY + 1);
    memset(jb, ' ', MAX_BODY);
    memcpy(jb, "{\"a\":1}", 7);
    jb[MAX_BODY] = 0;
    result res;
    call("POST", "/echo", jb, 5, false, &res);
    assert_int_equal(res.status, 200);
    free(jb);
}

static void test_raw_keepalive_pipelining_expect(void **state) {
    (void)state;
    const char *two = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /v1/models/abc HTTP/1.1\r\nConnection: close\r\n\r\n";
    char out[8192];
    raw_exchange(two, strlen(two), out, sizeof out);
    const char *second = strstr(out + 1, "HTTP/1.1 200");
    assert_non_null(strstr(out, "\"hello\":\"world\""));
    assert_non_null(second);
    assert_non_null(strstr(second, "\"id\":\"abc\""));

    const char *expect = "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n"
                         "Connection: close\r\n\r\n";
    int fd = raw_connect(port);
    send(fd, expect, strlen(expect), MSG_NOSIGNAL);
    ssize_t n = recv(fd, out, sizeof out - 1, 0);
    assert_true(n > 0);
    out[n] = 0;
    assert_non_null(strstr(out, "HTTP/1.1 100 Continue"));
    send(fd, "{}", 2, MSG_NOSIGNAL);
    size_t have = 0;
    while ((n = recv(fd, out + have, sizeof out - 1 - have, 0)) > 0) have += (size_t)n;
    out[have] = 0;
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    close(fd);

    /* HTTP/1.0: no chunked encoding; the stream ends with the connection */
    raw_exchange("POST /sse HTTP/1.0\r\n\r\n", 22, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.0 200"));
    assert_null(strstr(out, "chunked"));
    assert_non_null(strstr(out, "data: [DONE]\n\n"));
}

static void test_disconnect_during_sse(void **state) {
    (void)state;
    int before = atomic_load(&disconnects);
    int fd = raw_connect(port);
    const char *req = "POST /sse_hold HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    send(fd, req, strlen(req), MSG_NOSIGNAL);
    char out[4096];
    size_t have = 0;
    while (!strstr(out, "first")) {
        ssize_t n = recv(fd, out + have, sizeof out - 1 - have, 0);
        assert_true(n > 0);
        have += (size_t)n;
        out[have] = 0;
    }
    assert_non_null(strstr(out, "Transfer-Encoding: chunked"));
    assert_int_equal(atomic_load(&disconnects), before);
    close(fd);
    assert_true(wait_for(&disconnects, before + 1, 2000));
    assert_string_equal(disconnect_why, "closed");
}

static void test_output_cap(void **state) {
    (void)state;
    int before = atomic_load(&disconnects);
    atomic_store(&flood_max_pending, 0);
    atomic_store(&flood_stopped, 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *req = "POST /flood HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    send(fd, req, strlen(req), MSG_NOSIGNAL);
    /* never read: the server must cut us off instead of buffering without bound */
    assert_true(wait_for(&disconnects, before + 1, 5000));
    assert_string_equal(disconnect_why, "output cap");
    assert_true(wait_for(&flood_stopped, 1, 1000));
    assert_true(atomic_load(&flood_max_pending) <= MAX_OUTPUT);
    assert_true(atomic_load(&flood_max_pending) > MAX_OUTPUT / 2); /* it did fill up */
    close(fd);
}

/* ---------- separate servers ---------- */

static void test_ipv6_and_port_zero(void **state) {
    (void)state;
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool have_v6 = probe >= 0 && bind(probe, (struct sockaddr *)&a6, sizeof a6) == 0;
    if (probe >= 0) close(probe);
    if (!have_v6) skip();
    char err[256];
    http_server_opts o = {.host = "::1", .port = 0};
    http_server *s6 = http_server_new(&o, err, sizeof err);
    assert_non_null(s6);
    assert_true(http_server_port(s6) > 0);
    http_server_route(s6, "GET", "/hello", h_hello, NULL);
    assert_int_equal(http_server_start(s6), 0);
    result res;
    memset(&res, 0, sizeof res);
    struct event_base *base = event_base_new();
    char url[128];
    snprintf(url, sizeof url, "http://[::1]:%d/hello", http_server_port(s6));
    http_call_cbs cbs = {NULL, NULL, c_done, &res};
    assert_non_null(http_call_json(base, "GET", url, NULL, 5, &cbs, err, sizeof err));
    event_base_dispatch(base);
    event_base_free(base);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body, "world"));
    http_server_stop(s6, 0);
    http_server_wait(s6);
    http_server_free(s6);

    /* a port in use is a clear error */
    http_server_opts same = {.host = "127.0.0.1", .port = port};
    assert_null(http_server_new(&same, err, sizeof err));
    assert_non_null(strstr(err, "cannot listen"));
    http_server_opts badhost = {.host = "no-such-host.invalid", .port = 0};
    assert_null(http_server_new(&badhost, err, sizeof err));
}

static void test_graceful_stop(void **state) {
    (void)state;
    char err[256];
    http_server_opts o = {.port = 0};
    http_server *s = http_server_new(&o, err, sizeof err);
    assert_non_null(s);
    http_server_route(s, "POST", "/sse_hold", h_sse_hold, NULL);
    int p = http_server_port(s);
    assert_int_equal(http_server_start(s), 0);
    int before = atomic_load(&disconnects);
    int idle = raw_connect(p); /* an idle keep-alive connection closes at once */
    int fd = raw_connect(p);
    const char *req = "POST /sse_hold HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    send(fd, req, strlen(req), MSG_NOSIGNAL);
    char out[4096];
    assert_true(recv(fd, out, sizeof out, 0) > 0);
    http_server_stop(s, 0.2);
    /* the held stream never finishes, so after the grace period its client is cut off */
    assert_true(wait_for(&disconnects, before + 1, 3000));
    assert_string_equal(disconnect_why, "shutdown");
    http_server_wait(s);
    char c;
    assert_int_equal(recv(idle, &c, 1, 0), 0);
    assert_true(http_server_post(s, later_reply, NULL) == -1); /* the loop has ended */
    http_server_free(s);
    close(idle);
    close(fd);
    /* nothing listens any more */
    int fd2 = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_not_equal(connect(fd2, (struct sockaddr *)&a, sizeof a), 0);
    close(fd2);
}

static void test_handlers_saw_no_errors(void **state) {
    (void)state;
    assert_int_equal(atomic_load(&server_errors), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_get_and_post),
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_client_streaming),
        cmocka_unit_test(test_client_timeout_and_refused),
        cmocka_unit_test(test_client_headers),
        cmocka_unit_test(test_client_cancel_mid_stream),
        cmocka_unit_test(test_post_from_other_thread),
        cmocka_unit_test(test_raw_malformed),
        cmocka_unit_test(test_raw_oversized_body),
        cmocka_unit_test(test_raw_keepalive_pipelining_expect),
        cmocka_unit_test(test_disconnect_during_sse),
        cmocka_unit_test(test_output_cap),
        cmocka_unit_test(test_ipv6_and_port_zero),
        cmocka_unit_test(test_graceful_stop),
        cmocka_unit_test(test_handlers_saw_no_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
