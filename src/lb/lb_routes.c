/* The LB's other routes: /v1/models and /get_model_info from the first prefill server (as
 * SGLang); /health, /health_generate, /flush_cache, /get_server_info and /get_load asked of
 * every server at once (a "fan-out") and summed up; POST /register to add a server while
 * running. Unlike SGLang's mini LB, a fan-out reports the servers that failed instead of always
 * answering 200, and /health is 503 while no prefill/decode pair answers its /health. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "lb/lb_internal.h"

typedef struct fan fan;
typedef void (*fan_fn)(fan *f);

typedef struct {
    lb_server *srv;
    http_call *call;
    bool done;
    int status;
    char *body;
    size_t len;
    char *ctype; /* the answer's Content-Type, if any */
    char err[96];
    fan *f;
} fan_item;

struct fan {
    lb *l;
    http_req *req; /* NULL once replied */
    fan_item *items;
    int n, pending;
    fan_fn on_item; /* after each answer (optional); may reply early */
    fan_fn on_all;  /* when every server answered and no reply was made yet */
};

static void fan_free(fan *f) {
    for (int i = 0; i < f->n; i++) {
        if (f->items[i].call) http_call_cancel(f->items[i].call);
        free(f->items[i].body);
        free(f->items[i].ctype);
    }
    free(f->items);
    free(f);
}

static void fan_on_done(http_call *c, int status, const char *body, size_t len, const char *err,
                        void *ud) {
    fan_item *it = ud;
    fan *f = it->f;
    const char *ct = status ? http_call_header(c, "Content-Type") : NULL;
    it->ctype = ct ? strdup(ct) : NULL;
    it->call = NULL;
    it->done = true;
    it->status = status;
    snprintf(it->err, sizeof it->err, "%s", err ? err : "");
    it->body = malloc(len + 1);
    if (it->body) {
        memcpy(it->body, body, len + 1);
        it->len = len;
    }
    f->pending--;
    if (f->req && f->on_item) f->on_item(f);
    if (f->req && f->pending == 0) f->on_all(f);
    if (!f->req) fan_free(f); /* replied: the calls still out are cancelled */
}

static void fan_gone(http_req *r, const char *why, void *ud) {
    (void)why;
    fan *f = ud;
    http_reply(r, 499, "text/plain", "", 0); /* only frees */
    f->req = NULL;
    fan_free(f);
}

#define FAN_PREFILL 1
#define FAN_DECODE 2
#define FAN_ALL 3
#define FAN_FIRST 4 /* only the first server of each role asked */

/* Asks method path of every server of the roles in mask, with the client's headers (its
 * Authorization above all: a backend started with --api-key checks it on every route). */
static void fan_start(lb *l, http_req *r, int mask, const char *method, const char *path,
                      double timeout_s, fan_fn on_item, fan_fn on_all) {
    int total = l->n_servers[0] + l->n_servers[1];
    fan *f = calloc(1, sizeof *f);
    if (f) f->items = calloc((size_t)total + 1, sizeof *f->items);
    if (!f || !f->items) {
        free(f);
        http_reply_error(r, 500, NULL, NULL, NULL, "out of memory");
        return;
    }
    f->l = l, f->req = r, f->on_item = on_item, f->on_all = on_all;
    for (int role = 0; role < 2; role++)
        if (mask & (1 << role))
            for (int i = 0; i < l->n_servers[role] && !(i && (mask & FAN_FIRST)); i++)
                f->items[f->n++] = (fan_item){.srv = l->servers[role][i], .f = f};
    if (timeout_s > l->cfg.timeout_s) timeout_s = l->cfg.timeout_s;
    const char *hdrs[2 * LB_FWD_MAX + 1];
    lb_fwd_headers(r, hdrs);
    f->pending = f->n + 1; /* held until every call has started */
    for (int i = 0; i < f->n; i++) {
        fan_item *it = &f->items[i];
        char *url = lb_url_join(it->srv, path);
        http_call_cbs cbs = {.on_done = fan_on_done, .ud = it};
        http_call_req rq = {.method = method, .url = url, .headers = hdrs,
                            .timeout_s = timeout_s};
        char err[96] = "out of memory";
        it->call = url ? http_call_start(l->base, &rq, &cbs, err, sizeof err) : NULL;
        free(url);
        if (!it->call) {
            it->done = true;
            snprintf(it->err, sizeof it->err, "%s", err);
            f->pending--;
        }
    }
    http_req_on_disconnect(r, fan_gone, f);
    f->pending--;
    if (f->on_item) f->on_item(f);
    if (f->req && f->pending == 0) f->on_all(f);
    if (!f->req) fan_free(f);
}

static const char *role_name(lb_role r) { return r == LB_PREFILL ? "prefill" : "decode"; }

/* "prefill http://a:1: 503 Service Unavailable; decode http://b:2: connection failed" */
static void failures(const fan *f, char *out, size_t n) {
    size_t k = 0;
    out[0] = 0;
    for (int i = 0; i < f->n && k < n; i++) {
        const fan_item *it = &f->items[i];
        if (it->status == 200) continue;
        int w = it->status ? snprintf(out + k, n - k, "%s%s %s: %d %s", k ? "; " : "",
                                      role_name(it->srv->role), it->srv->url, it->status,
                                      http_status_phrase(it->status))
                           : snprintf(out + k, n - k, "%s%s %s: %s", k ? "; " : "",
                                      role_name(it->srv->role), it->srv->url, it->err);
        if (w < 0) break;
        k += (size_t)w;
    }
}

static int n_failed(const fan *f) {
    int n = 0;
    for (int i = 0; i < f->n; i++) n += f->items[i].status != 200;
    return n;
}

static json_t *body_json(const fan_item *it) {
    json_error_t je;
    json_t *j = it->status == 200 && it->body ? json_loadb(it->body, it->len, 0, &je) : NULL;
    if (j) return j;
    char msg[256];
    if (it->status) snprintf(msg, sizeof msg, "%d %s", it->status, http_status_phrase(it->status));
    else snprintf(msg, sizeof msg, "%s", it->err);
    return json_pack("{s:s, s:s}", "url", it->srv->url, "error", msg);
}

/* ---- /health: 200 as soon as one prefill and one decode server answer theirs ---- */

static bool have_pair(const fan *f) {
    bool up[2] = {false, false};
    for (int i = 0; i < f->n; i++)
        if (f->items[i].done && f->items[i].status == 200) up[f->items[i].srv->role] = true;
    return up[0] && up[1];
}

static void health_item(fan *f) {
    for (int i = 0; i < f->n; i++) {
        fan_item *it = &f->items[i];
        if (it->done) it->srv->health = it->status == 200 ? LB_HEALTH_UP : LB_HEALTH_DOWN;
    }
    if (have_pair(f)) {
        http_reply(f->req, 200, "text/plain", "", 0);
        f->req = NULL;
    }
}

static void health_all(fan *f) {
    char why[2048];
    failures(f, why, sizeof why);
    http_reply_error(f->req, 503, "ServiceUnavailableError", NULL, NULL,
                     "no healthy prefill/decode pair%s%s", why[0] ? ": " : "", why);
    f->req = NULL;
}

static void h_health(http_req *r, void *ud) {
    fan_start(ud, r, FAN_ALL, "GET", "/health", LB_HEALTH_TIMEOUT_S, health_item, health_all);
}

/* ---- /health_generate and /flush_cache: every server must say yes ---- */

static void health_generate_all(fan *f) {
    if (n_failed(f) == 0 && f->n > 0) {
        http_reply(f->req, 200, "text/plain", "", 0);
    } else {
        char why[2048];
        failures(f, why, sizeof why);
        http_reply_error(f->req, 503, "ServiceUnavailableError", NULL, NULL, "%s",
                         f->n ? why : "no servers");
    }
    f->req = NULL;
}

static void h_health_generate(http_req *r, void *ud) {
    fan_start(ud, r, FAN_ALL, "GET", "/health_generate", LB_HEALTH_TIMEOUT_S, NULL,
              health_generate_all);
}

static void flush_all(fan *f) {
    if (n_failed(f) == 0) {
        char msg[128];
        int n = snprintf(msg, sizeof msg, "Cache flushed on %d server(s).\n", f->n);
        http_reply(f->req, 200, "text/plain", msg, (size_t)n);
    } else {
        /* 400 when every failure is a server's own refusal (requests running), else 502 */
        bool refused = true;
        for (int i = 0; i < f->n; i++)
            if (f->items[i].status != 200 && f->items[i].status != 400) refused = false;
        char why[2048];
        failures(f, why, sizeof why);
        http_reply_error(f->req, refused ? 400 : 502, NULL, NULL, NULL, "cache not flushed on %d "
                         "server(s): %s", n_failed(f), why);
    }
    f->req = NULL;
}

static void h_flush(http_req *r, void *ud) {
    fan_start(ud, r, FAN_ALL, "POST", "/flush_cache", ((lb *)ud)->cfg.timeout_s, NULL, flush_all);
}

/* ---- /get_server_info and /get_load ---- */

static void server_info_all(fan *f) {
    json_t *pre = json_array(), *dec = json_array(), *states = json_array();
    for (int i = 0; i < f->n; i++) {
        json_t *j = body_json(&f->items[i]);
        if (f->items[i].srv->role == LB_DECODE) {
            json_t *is = json_object_get(j, "internal_states");
            if (json_is_array(is)) json_array_extend(states, is);
            json_array_append_new(dec, j);
        } else {
            json_array_append_new(pre, j);
        }
    }
    if (json_array_size(states) == 0) /* SGLang's fallback */
        json_array_append_new(states, json_pack("{s:f, s:n}", "last_gen_throughput", 0.0,
                                                "avg_spec_accept_length"));
    http_reply_json(f->req, 200, json_pack("{s:o, s:o, s:o}", "internal_states", states,
                                           "prefill", pre, "decode", dec));
    f->req = NULL;
}

static void h_server_info(http_req *r, void *ud) {
    fan_start(ud, r, FAN_ALL, "GET", "/get_server_info", 30.0, NULL, server_info_all);
}

static void load_all(fan *f) {
    json_t *side[2] = {json_array(), json_array()};
    for (int i = 0; i < f->n; i++) {
        const fan_item *it = &f->items[i];
        json_t *j = body_json(it);
        if (it->status == 200) j = json_pack("{s:s, s:o}", "url", it->srv->url, "load", j);
        json_array_append_new(side[it->srv->role], j);
    }
    http_reply_json(f->req, 200, json_pack("{s:o, s:o}", "prefill", side[0], "decode", side[1]));
    f->req = NULL;
}

static void h_load(http_req *r, void *ud) {
    fan_start(ud, r, FAN_ALL, "GET", "/get_load", LB_LOAD_TIMEOUT_S, NULL, load_all);
}

/* ---- from the first prefill server ---- */

static void first_prefill_all(fan *f) {
    fan_item *it = &f->items[0];
    if (it->status == 0) {
        http_reply_error(f->req, strcmp(it->err, "timeout") ? 502 : 504, NULL, NULL, NULL,
                         "prefill server %s failed: %s", it->srv->url, it->err);
    } else {
        http_reply(f->req, it->status, it->ctype ? it->ctype : "application/json",
                   it->body ? it->body : "", it->len);
    }
    f->req = NULL;
}

static void first_prefill(lb *l, http_req *r, const char *path) {
    if (l->n_servers[LB_PREFILL] == 0) {
        http_reply_error(r, 503, NULL, NULL, NULL, "no prefill server is registered");
        return;
    }
    fan_start(l, r, FAN_PREFILL | FAN_FIRST, "GET", path, 30.0, NULL, first_prefill_all);
}

static void h_models(http_req *r, void *ud) { first_prefill(ud, r, "/v1/models"); }
static void h_model_info(http_req *r, void *ud) { first_prefill(ud, r, "/get_model_info"); }

/* GET /v1/models/{id}: the id (decoded by the router, maybe with '/' as in "org/name") is
 * escaped again for the upstream URL. */
static void h_model(http_req *r, void *ud) {
    static const char hex[] = "0123456789ABCDEF";
    const char *id = http_req_param(r, "*");
    size_t n = id ? strlen(id) : 0;
    char *path = malloc(sizeof "/v1/models/" + 3 * n);
    if (!path) {
        http_reply_error(r, 500, NULL, NULL, NULL, "out of memory");
        return;
    }
    char *o = path + sprintf(path, "/v1/models/");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)id[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~/", ch))
            *o++ = (char)ch;
        else
            *o++ = '%', *o++ = hex[ch >> 4], *o++ = hex[ch & 15];
    }
    *o = 0;
    first_prefill(ud, r, path);
    free(path);
}

/* ---- POST /register {mode, registry_url, bootstrap_port} ---- */

static void h_register(http_req *r, void *ud) {
    lb *l = ud;
    json_t *b = http_req_json(r);
    if (!b) return;
    const json_t *mode = json_object_get(b, "mode"), *url = json_object_get(b, "registry_url");
    const json_t *port = json_object_get(b, "bootstrap_port");
    const char *m = json_is_string(mode) ? json_string_value(mode) : "";
    lb_role role = !strcasecmp(m, "prefill") ? LB_PREFILL : LB_DECODE;
    char err[256];
    if (strcasecmp(m, "prefill") && strcasecmp(m, "decode")) {
        http_reply_error(r, 400, NULL, "mode", NULL, "Invalid mode. Must be either PREFILL or "
                         "DECODE.");
    } else if (!json_is_string(url) || lb_check_url(json_string_value(url), err, sizeof err)) {
        http_reply_error(r, 400, NULL, "registry_url", NULL, "registry_url: %s",
                         json_is_string(url) ? err : "a string URL is required");
    } else if (port && !json_is_null(port) &&
               (!json_is_integer(port) || json_integer_value(port) < 1 ||
                json_integer_value(port) > 65535)) {
        http_reply_error(r, 400, NULL, "bootstrap_port", NULL,
                         "bootstrap_port must be an integer in 1..65535 or null");
    } else if (lb_find_server(l, role, json_string_value(url))) {
        http_reply(r, 200, "text/plain", "", 0); /* already known */
    } else {
        int p = json_is_integer(port) ? (int)json_integer_value(port) : LB_PORT_UNSET;
        if (!lb_add_server(l, role, json_string_value(url), p)) {
            http_reply_error(r, 500, NULL, NULL, NULL, "out of memory");
        } else {
            log_info("registered %s server %s", role_name(role), json_string_value(url));
            http_reply(r, 200, "text/plain", "", 0);
        }
    }
    json_decref(b);
}

int lb_add_admin_routes(lb *l) {
    http_server *h = l->http;
    int rc = 0;
    rc |= http_server_route(h, "GET", "/health", h_health, l);
    rc |= http_server_route(h, "GET", "/health_generate", h_health_generate, l);
    rc |= http_server_route(h, "GET", "/flush_cache", h_flush, l);
    rc |= http_server_route(h, "POST", "/flush_cache", h_flush, l);
    rc |= http_server_route(h, "GET", "/get_server_info", h_server_info, l);
    rc |= http_server_route(h, "GET", "/get_load", h_load, l);
    rc |= http_server_route(h, "GET", "/v1/models", h_models, l);
    rc |= http_server_route(h, "GET", "/v1/models/*", h_model, l);
    rc |= http_server_route(h, "GET", "/get_model_info", h_model_info, l);
    rc |= http_server_route(h, "POST", "/register", h_register, l);
    return rc ? -1 : 0;
}
