/* Replies for http_server: whole bodies, JSON, errors in OpenAI's shape, and chunked streams
 * (SSE) with the per-connection output cap. Every finishing call frees the request, whether or
 * not its client is still there, so owners have exactly one way to let go of it. */
#include "http/http_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *http_status_phrase(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

/* The exception names the openai Python SDK raises for each status (SGLang uses the same). */
static const char *default_error_type(int status) {
    switch (status) {
    case 400: return "BadRequestError";
    case 401: return "AuthenticationError";
    case 403: return "PermissionDeniedError";
    case 404: return "NotFoundError";
    case 405: return "MethodNotAllowedError";
    case 408: return "RequestTimeoutError";
    case 409: return "ConflictError";
    case 413: return "RequestTooLargeError";
    case 422: return "UnprocessableEntityError";
    case 429: return "RateLimitError";
    case 503: return "ServiceUnavailableError";
    default: return status < 500 ? "BadRequestError" : "InternalServerError";
    }
}

json_t *http_error_json(int status, const char *type, const char *param, const char *code,
                        const char *message) {
    json_t *e = json_object();
    json_object_set_new(e, "message", json_string(message ? message : ""));
    json_object_set_new(e, "type", json_string(type ? type : default_error_type(status)));
    json_object_set_new(e, "param", param ? json_string(param) : json_null());
    json_object_set_new(e, "code", code ? json_string(code) : json_integer(status));
    json_t *o = json_object();
    json_object_set_new(o, "error", e);
    return o;
}

void http_write_head(http_req *r, int status, const char *content_type, long content_length) {
    struct evbuffer *out = bufferevent_get_output(http_conn_bev(r->conn));
    evbuffer_add_printf(out, "HTTP/1.%d %d %s\r\n", r->http10 ? 0 : 1, status,
                        http_status_phrase(status));
    if (content_type) evbuffer_add_printf(out, "Content-Type: %s\r\n", content_type);
    if (content_length >= 0) {
        evbuffer_add_printf(out, "Content-Length: %ld\r\n", content_length);
    } else if (!r->http10) {
        evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n");
        r->chunked = true;
    } else {
        r->keep_alive = false; /* HTTP/1.0: the end of the body is the end of the connection */
    }
    if (r->srv->stopping) r->keep_alive = false;
    if (!r->keep_alive) evbuffer_add_printf(out, "Connection: close\r\n");
    else if (r->http10) evbuffer_add_printf(out, "Connection: keep-alive\r\n");
    for (int i = 0; i < r->n_out_headers; i++)
        evbuffer_add_printf(out, "%s: %s\r\n", r->out_headers[i].name, r->out_headers[i].value);
    evbuffer_add(out, "\r\n", 2);
    r->started = true;
}

/* Detaches the request from its connection (which then reads the next request or closes) and
 * frees it. */
static void finish(http_req *r) {
    if (r->conn) http_conn_request_done(r->conn);
    http_req_free(r);
}

void http_reply(http_req *r, int status, const char *content_type, const void *body, size_t len) {
    if (r->conn && !r->started) {
        http_write_head(r, status, content_type, (long)len);
        if (len) bufferevent_write(http_conn_bev(r->conn), body, len);
    } else if (r->conn) {
        http_stream_end(r); /* misuse: a stream was started; end it rather than corrupt it */
        return;
    }
    finish(r);
}

void http_reply_json(http_req *r, int status, json_t *body) {
    char *s = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(body);
    if (!s) {
        static const char oom[] = "{\"error\":{\"message\":\"cannot serialise the reply\","
                                  "\"type\":\"InternalServerError\",\"param\":null,\"code\":500}}";
        http_reply(r, 500, "application/json", oom, sizeof oom - 1);
        return;
    }
    http_reply(r, status, "application/json", s, strlen(s));
    free(s);
}

void http_reply_error(http_req *r, int status, const char *type, const char *param,
                      const char *code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_reply_json(r, status, http_error_json(status, type, param, code, msg));
}

int http_stream_start(http_req *r, int status, const char *content_type) {
    if (!r->conn || r->started) return -1;
    http_write_head(r, status, content_type, -1);
    return 0;
}

int http_sse_start(http_req *r) {
    http_req_set_header(r, "Cache-Control", "no-cache");
    return http_stream_start(r, 200, "text/event-stream");
}

size_t http_stream_pending(const http_req *r) {
    if (!r->conn) return 0;
    return evbuffer_get_length(bufferevent_get_output(http_conn_bev(r->conn)));
}

/* Writes one chunk made of up to three pieces. The cap counts what is still unsent, so a client
 * reading at any pace keeps streaming and one that stops is cut off. */
static int write_chunk(http_req *r, const void *a, size_t alen, const void *b, size_t blen,
                       const void *c, size_t clen) {
    if (!r->conn || !r->started) return -1;
    size_t len = alen + blen + clen;
    if (len == 0) return 0;
    if (http_stream_pending(r) + len > r->srv->opts.max_output) {
        http_conn_cut(r->conn, "output cap");
        return -1;
    }
    struct evbuffer *out = bufferevent_get_output(http_conn_bev(r->conn));
    if (r->chunked) evbuffer_add_printf(out, "%zx\r\n", len);
    if (alen) evbuffer_add(out, a, alen);
    if (blen) evbuffer_add(out, b, blen);
    if (clen) evbuffer_add(out, c, clen);
    if (r->chunked) evbuffer_add(out, "\r\n", 2);
    return 0;
}

int http_stream_write(http_req *r, const void *data, size_t len) {
    return write_chunk(r, data, len, NULL, 0, NULL, 0);
}

int http_sse_send(http_req *r, const char *payload, size_t len) {
    return write_chunk(r, "data: ", 6, payload, len, "\n\n", 2);
}

int http_sse_send_json(http_req *r, const json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) return -1;
    int rc = http_sse_send(r, s, strlen(s));
    free(s);
    return rc;
}

void http_stream_end(http_req *r) {
    if (r->conn && r->started && r->chunked)
        bufferevent_write(http_conn_bev(r->conn), "0\r\n\r\n", 5);
    else if (r->conn && !r->started) http_write_head(r, 200, NULL, 0);
    finish(r);
}
