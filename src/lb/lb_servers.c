/* The LB's list of prefill and decode servers and what it learns about them in the background:
 * whether each answers /health (every LB_HEALTH_PERIOD_S), and each prefill server's bootstrap
 * port when the command line left it out (SGLang's own PD guide starts the LB without ports, so
 * the decode server would fall back to its default and never meet the prefill server). */
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "lb/lb_internal.h"

static const char *role_name(lb_role r) { return r == LB_PREFILL ? "prefill" : "decode"; }

static char *host_of(const char *url) {
    struct evhttp_uri *u = evhttp_uri_parse(url);
    const char *h = u ? evhttp_uri_get_host(u) : NULL;
    char *out = NULL;
    if (h) {
        size_t n = strlen(h);
        if (n >= 2 && h[0] == '[' && h[n - 1] == ']') out = strndup(h + 1, n - 2);
        else out = strdup(h);
    }
    if (u) evhttp_uri_free(u);
    return out;
}

lb_server *lb_find_server(lb *l, lb_role role, const char *url) {
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/') n--;
    for (int i = 0; i < l->n_servers[role]; i++) {
        const char *u = l->servers[role][i]->url;
        if (strlen(u) == n && !strncmp(u, url, n)) return l->servers[role][i];
    }
    return NULL;
}

lb_server *lb_add_server(lb *l, lb_role role, const char *url, int bootstrap_port) {
    if (l->n_servers[role] == l->cap_servers[role]) {
        int cap = l->cap_servers[role] ? 2 * l->cap_servers[role] : 8;
        lb_server **p = realloc(l->servers[role], (size_t)cap * sizeof *p);
        if (!p) return NULL;
        l->servers[role] = p;
        l->cap_servers[role] = cap;
    }
    lb_server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/') n--;
    s->l = l;
    s->role = role;
    s->url = strndup(url, n);
    s->hostname = host_of(url);
    s->bootstrap_port = role == LB_PREFILL ? bootstrap_port : LB_PORT_NULL;
    if (!s->url || !s->hostname) {
        free(s->url), free(s->hostname), free(s);
        return NULL;
    }
    l->servers[role][l->n_servers[role]++] = s;
    if (role == LB_PREFILL && bootstrap_port > 0)
        log_info("prefill server %s (bootstrap port %d)", s->url, bootstrap_port);
    else if (role == LB_PREFILL && bootstrap_port == LB_PORT_NULL)
        log_info("prefill server %s (bootstrap port null)", s->url);
    else
        log_info("%s server %s", role_name(role), s->url);
    lb_discover_port(s);
    return s;
}

char *lb_url_join(const lb_server *s, const char *path) {
    size_t a = strlen(s->url), b = strlen(path);
    char *u = malloc(a + b + 1);
    if (!u) return NULL;
    memcpy(u, s->url, a);
    memcpy(u + a, path, b + 1);
    return u;
}

static double cap_timeout(const lb *l, double t) {
    return l->cfg.timeout_s > 0 && l->cfg.timeout_s < t ? l->cfg.timeout_s : t;
}

static http_call *get(lb_server *s, const char *path, double timeout_s,
                      void (*done)(http_call *, int, const char *, size_t, const char *, void *)) {
    char *url = lb_url_join(s, path);
    if (!url) return NULL;
    http_call_cbs cbs = {.on_done = done, .ud = s};
    http_call_req rq = {.method = "GET", .url = url, .timeout_s = cap_timeout(s->l, timeout_s)};
    char err[256];
    http_call *c = http_call_start(s->l->base, &rq, &cbs, err, sizeof err);
    if (!c) log_warn("%s server %s: %s", role_name(s->role), s->url, err);
    free(url);
    return c;
}

/* ---- bootstrap port discovery ---- */

void lb_server_info_result(lb_server *s, int status, const char *body, size_t len,
                           const char *err) {
    if (s->bootstrap_port != LB_PORT_UNSET) return;
    if (status != 200) {
        log_info("prefill server %s: /get_server_info %s%s; will ask again", s->url,
                 status ? "answered " : "failed: ", status ? http_status_phrase(status) : err);
        return;
    }
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    const json_t *mode = json_object_get(j, "disaggregation_mode");
    const json_t *port = json_object_get(j, "disaggregation_bootstrap_port");
    const char *m = json_is_string(mode) ? json_string_value(mode) : NULL;
    json_int_t p = json_is_integer(port) ? json_integer_value(port) : 0;
    if (!m || strcmp(m, "prefill")) {
        log_warn("prefill server %s reports disaggregation_mode '%s', not 'prefill'; sending "
                 "bootstrap_port null (the decode server uses its own default)", s->url,
                 m ? m : "null");
        s->bootstrap_port = LB_PORT_NULL;
    } else if (p < 1 || p > 65535) {
        log_warn("prefill server %s reports no disaggregation_bootstrap_port; sending "
                 "bootstrap_port null (the decode server uses its own default)", s->url);
        s->bootstrap_port = LB_PORT_NULL;
    } else {
        s->bootstrap_port = (int)p;
        log_info("prefill server %s: bootstrap port %d (from its /get_server_info)", s->url,
                 s->bootstrap_port);
    }
    json_decref(j);
}

static void on_info(http_call *c, int status, const char *body, size_t len, const char *err,
                    void *ud) {
    (void)c;
    lb_server *s = ud;
    s->info_call = NULL;
    lb_server_info_result(s, status, body, len, err);
}

void lb_discover_port(lb_server *s) {
    if (s->role != LB_PREFILL || s->bootstrap_port != LB_PORT_UNSET || s->info_call) return;
    s->info_call = get(s, "/get_server_info", 10.0, on_info);
}

/* ---- health ---- */

static void on_health(http_call *c, int status, const char *body, size_t len, const char *err,
                      void *ud) {
    (void)c, (void)body, (void)len;
    lb_server *s = ud;
    s->health_call = NULL;
    lb_health h = status == 200 ? LB_HEALTH_UP : LB_HEALTH_DOWN;
    if (h != s->health) {
        if (h == LB_HEALTH_UP) log_info("%s server %s is healthy", role_name(s->role), s->url);
        else
            log_warn("%s server %s is unhealthy (/health: %s)", role_name(s->role), s->url,
                     status ? http_status_phrase(status) : err);
    }
    s->health = h;
}

void lb_check_servers(lb *l) {
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < l->n_servers[r]; i++) {
            lb_server *s = l->servers[r][i];
            lb_discover_port(s);
            if (!s->health_call) s->health_call = get(s, "/health", LB_HEALTH_TIMEOUT_S, on_health);
        }
}

void lb_servers_free(lb *l) {
    for (int r = 0; r < 2; r++) {
        for (int i = 0; i < l->n_servers[r]; i++) {
            lb_server *s = l->servers[r][i];
            if (s->health_call) http_call_cancel(s->health_call);
            if (s->info_call) http_call_cancel(s->info_call);
            free(s->url), free(s->hostname), free(s);
        }
        free(l->servers[r]);
        l->servers[r] = NULL;
        l->n_servers[r] = 0;
    }
}

uint64_t lb_rand(lb *l) {
    /* xorshift64*: random picks need no cryptographic strength */
    uint64_t x = l->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    l->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}
