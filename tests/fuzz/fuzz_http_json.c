/* libFuzzer target for src/http's request path: the input is raw bytes a client might send
 * (request line, headers, JSON body, pipelined requests, garbage). They go through a socketpair
 * into a server connection, so the real parser, router, JSON body handling, error replies and
 * SSE writer all run; the loop is turned until the server has closed the connection. A hang
 * (a connection that never closes after its client is done) aborts. */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "http/http_server.h"

static http_server *srv;

static void h_json(http_req *r, void *ud) {
    (void)ud;
    json_t *body = http_req_json(r);
    if (!body) return;
    json_t *model = json_object_get(body, "model");
    json_t *n = json_object_get(body, "n");
    if (model && !json_is_string(model)) {
        json_decref(body);
        http_reply_error(r, 400, NULL, "model", NULL, "model must be a string");
        return;
    }
    if (json_is_true(json_object_get(body, "stream"))) {
        json_int_t k = json_is_integer(n) ? json_integer_value(n) : 1;
        if (k < 0 || k > 16) k = 1;
        http_sse_start(r);
        for (json_int_t i = 0; i < k; i++) http_sse_send_json(r, body);
        http_sse_send(r, "[DONE]", 6);
        http_stream_end(r);
    } else {
        http_reply_json(r, 200, json_pack("{s:o}", "echo", body));
        return;
    }
    json_decref(body);
}

static void h_param(http_req *r, void *ud) {
    (void)ud;
    const char *id = http_req_param(r, "id");
    const char *rest = http_req_param(r, "*");
    const char *q = http_req_query(r, "q");
    const char *h = http_req_header(r, "Authorization");
    http_reply_json(r, 200, json_pack("{s:s?,s:s?,s:s?,s:b}", "id", id, "rest", rest, "q", q,
                                      "auth", h != NULL));
}

static void setup(void) {
    char err[256];
    http_server_opts o = {.port = 0, .max_body = 8192, .max_header = 4096, .max_output = 65536};
    srv = http_server_new(&o, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "fuzz_http_json: %s\n", err);
        abort();
    }
    http_server_route(srv, "POST", "/v1/chat/completions", h_json, NULL);
    http_server_route(srv, NULL, "/generate", h_json, NULL);
    http_server_route(srv, "GET", "/v1/models/{id}", h_param, NULL);
    http_server_route(srv, "GET", "/files/*", h_param, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!srv) setup();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 0;
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    if (http_server_adopt_fd(srv, sv[0]) != 0) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    size_t sent = 0;
    char sink[65536];
    struct event_base *base = http_server_base(srv);
    for (long turn = 0; http_server_connections(srv) > 0; turn++) {
        if (turn > 200000) {
            fprintf(stderr, "fuzz_http_json: the server never closed the connection\n");
            abort();
        }
        if (sent < size) {
            ssize_t k = send(sv[1], data + sent, size - sent, MSG_NOSIGNAL);
            if (k > 0) sent += (size_t)k;
            if (sent == size) shutdown(sv[1], SHUT_WR);
        } else if (size == 0 && turn == 0) {
            shutdown(sv[1], SHUT_WR);
        }
        while (read(sv[1], sink, sizeof sink) > 0) {
        }
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
    close(sv[1]);
    return 0;
}
