/* Routing for http_server: a short table matched segment by segment. Exact paths are tried
 * before patterns so that "/v1/models" never falls into "/v1/models/{id}". Patterns match the
 * raw (still percent-encoded) path so an escaped '/' stays inside its segment; each captured
 * value is decoded on its own. */
#include "http/http_internal.h"

#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

int http_server_route(http_server *s, const char *method, const char *pattern,
                      http_handler_fn fn, void *ud) {
    if (!pattern || pattern[0] != '/' || !fn || s->n_routes >= HTTP_MAX_ROUTES) return -1;
    if (method && strlen(method) >= sizeof s->routes[0].method) return -1;
    int n_params = 0;
    for (const char *p = pattern; *p; p++) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            /* a parameter is a whole segment: "/{id}" followed by '/' or the end */
            if (!close || close == p + 1 || p[-1] != '/' || (close[1] && close[1] != '/'))
                return -1;
            n_params++;
            p = close;
        } else if (*p == '*' && (p[-1] != '/' || p[1])) {
            return -1;
        }
    }
    if (n_params + 1 > HTTP_MAX_PARAMS) return -1;
    http_route *r = &s->routes[s->n_routes];
    memset(r, 0, sizeof *r);
    if (method) strcpy(r->method, method);
    r->pattern = strdup(pattern);
    if (!r->pattern) return -1;
    r->exact = !strchr(pattern, '{') && !strchr(pattern, '*');
    r->fn = fn;
    r->ud = ud;
    s->n_routes++;
    return 0;
}

void http_route_free_all(http_server *s) {
    for (int i = 0; i < s->n_routes; i++) free(s->routes[i].pattern);
    s->n_routes = 0;
}

static int add_param(http_req *r, const char *name, size_t nlen, const char *raw, size_t rlen) {
    if (r->n_params >= HTTP_MAX_PARAMS) return -1;
    char *enc = malloc(rlen + 1);
    char *key = malloc(nlen + 1);
    if (!enc || !key) {
        free(enc);
        free(key);
        return -1;
    }
    memcpy(enc, raw, rlen);
    enc[rlen] = 0;
    memcpy(key, name, nlen);
    key[nlen] = 0;
    size_t out_len = 0;
    char *val = evhttp_uridecode(enc, 0, &out_len);
    free(enc);
    if (!val || strlen(val) != out_len) {
        free(val);
        free(key);
        return -1;
    }
    r->params[r->n_params].name = key;
    r->params[r->n_params].value = val;
    r->n_params++;
    return 0;
}

static void clear_params(http_req *r) {
    for (int i = 0; i < r->n_params; i++) {
        free(r->params[i].name);
        free(r->params[i].value);
    }
    r->n_params = 0;
}

/* path: the raw path (up to '?'). Returns true when it matches, with params filled. */
static bool match(const char *pat, const char *path, size_t plen, http_req *r) {
    const char *p = pat, *q = path, *end = path + plen;
    while (*p) {
        if (p[0] == '*') { /* a star segment: the rest, possibly empty */
            return add_param(r, "*", 1, q, (size_t)(end - q)) == 0;
        }
        if (p[0] == '/' && p[1] == '*' && q == end) /* the prefix itself, without a slash */
            return add_param(r, "*", 1, q, 0) == 0;
        if (p[0] == '{') {
            const char *close = strchr(p, '}');
            const char *seg_end = memchr(q, '/', (size_t)(end - q));
            if (!seg_end) seg_end = end;
            if (seg_end == q) return false;
            if (add_param(r, p + 1, (size_t)(close - p - 1), q, (size_t)(seg_end - q)) != 0)
                return false;
            p = close + 1;
            q = seg_end;
            continue;
        }
        if (q == end || *p != *q) return false;
        p++;
        q++;
    }
    return q == end;
}

const http_route *http_route_find(http_server *s, http_req *r, int *status) {
    const char *qm = strchr(r->target, '?');
    size_t plen = qm ? (size_t)(qm - r->target) : strlen(r->target);
    bool path_known = false;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < s->n_routes; i++) {
            const http_route *rt = &s->routes[i];
            if (rt->exact != (pass == 0)) continue;
            bool ok = rt->exact ? !strcmp(rt->pattern, r->path) : match(rt->pattern, r->target,
                                                                         plen, r);
            if (!ok) {
                clear_params(r);
                continue;
            }
            if (rt->method[0] && strcmp(rt->method, r->method)) {
                path_known = true;
                clear_params(r);
                continue;
            }
            return rt;
        }
    }
    *status = path_known ? 405 : 404;
    return NULL;
}
