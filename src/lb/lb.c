/* The LB's wiring: the HTTP server and its routes, the servers from the command line, the
 * background health/discovery timer, and shutdown on SIGTERM/SIGINT. Everything after start-up
 * runs on the loop thread. */
#include "lb/lb.h"

#include <event2/event.h>
#include <event2/http.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "lb/lb_internal.h"

int lb_policy_parse(const char *name, lb_policy *out) {
    if (!strcmp(name, "random")) *out = LB_POLICY_RANDOM;
    else if (!strcmp(name, "round_robin")) *out = LB_POLICY_ROUND_ROBIN;
    else if (!strcmp(name, "least_load")) *out = LB_POLICY_LEAST_LOAD;
    else return -1;
    return 0;
}

const char *lb_policy_name(lb_policy p) {
    return p == LB_POLICY_ROUND_ROBIN ? "round_robin"
           : p == LB_POLICY_LEAST_LOAD ? "least_load" : "random";
}

int lb_check_url(const char *url, char *err, size_t err_len) {
    struct evhttp_uri *u = evhttp_uri_parse(url);
    const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
    const char *host = u ? evhttp_uri_get_host(u) : NULL;
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    int rc = 0;
    if (!u || !scheme || !host || !*host) {
        snprintf(err, err_len, "'%s' is not a URL like http://host:port", url);
        rc = -1;
    } else if (strcasecmp(scheme, "http")) {
        snprintf(err, err_len, "'%s': only http:// servers are supported", url);
        rc = -1;
    } else if (path && *path && strspn(path, "/") != strlen(path)) {
        snprintf(err, err_len, "'%s': give the server's base URL, without a path", url);
        rc = -1;
    } else if (evhttp_uri_get_query(u) || evhttp_uri_get_fragment(u)) {
        snprintf(err, err_len, "'%s': give the server's base URL, without a query", url);
        rc = -1;
    }
    if (u) evhttp_uri_free(u);
    return rc;
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    lb_check_servers(arg);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    (void)what;
    lb *l = arg;
    if (l->stopping) {
        http_server_stop(l->http, 0);
        return;
    }
    l->stopping = true;
    log_info("received %s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_server_stop(l->http, LB_SHUTDOWN_GRACE_S);
}

static int setup(lb *l, char *err, size_t err_len) {
    const lb_config *c = &l->cfg;
    http_server_opts ho = {.host = c->host, .port = c->port};
    l->http = http_server_new(&ho, err, err_len);
    if (!l->http) return -1;
    l->base = http_server_base(l->http);
    if (lb_add_proxy_routes(l) || lb_add_admin_routes(l)) {
        snprintf(err, err_len, "cannot register the routes");
        return -1;
    }
    for (int i = 0; i < c->n_prefill; i++)
        if (!lb_find_server(l, LB_PREFILL, c->prefill[i].url) &&
            !lb_add_server(l, LB_PREFILL, c->prefill[i].url, c->prefill[i].bootstrap_port)) {
            snprintf(err, err_len, "cannot add prefill server %s", c->prefill[i].url);
            return -1;
        }
    for (int i = 0; i < c->n_decode; i++)
        if (!lb_find_server(l, LB_DECODE, c->decode[i]) &&
            !lb_add_server(l, LB_DECODE, c->decode[i], LB_PORT_NULL)) {
            snprintf(err, err_len, "cannot add decode server %s", c->decode[i]);
            return -1;
        }
    struct timeval tv = {(time_t)LB_HEALTH_PERIOD_S, 0};
    l->tick = event_new(l->base, -1, EV_PERSIST, on_tick, l);
    l->ev_sigterm = evsignal_new(l->base, SIGTERM, on_signal, l);
    l->ev_sigint = evsignal_new(l->base, SIGINT, on_signal, l);
    if (!l->tick || !l->ev_sigterm || !l->ev_sigint || event_add(l->tick, &tv) ||
        event_add(l->ev_sigterm, NULL) || event_add(l->ev_sigint, NULL)) {
        snprintf(err, err_len, "cannot set up the timer or the signals");
        return -1;
    }
    lb_check_servers(l);
    return 0;
}

int lb_run(const lb_config *cfg) {
    lb *l = calloc(1, sizeof *l);
    if (!l) return 1;
    l->cfg = *cfg;
    if (getrandom(&l->rng, sizeof l->rng, 0) != (ssize_t)sizeof l->rng)
        l->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (!l->rng) l->rng = 0x9E3779B97F4A7C15ULL;
    signal(SIGPIPE, SIG_IGN);
    char err[1024] = "";
    int rc = 0;
    if (setup(l, err, sizeof err) != 0) {
        log_error("%s", err);
        rc = 1;
    } else {
        log_info("load balancer (policy %s, timeout %.0f s) listening on http://%s:%d with %d "
                 "prefill and %d decode server(s)", lb_policy_name(cfg->policy), cfg->timeout_s,
                 cfg->host, http_server_port(l->http), l->n_servers[LB_PREFILL],
                 l->n_servers[LB_DECODE]);
        http_server_run(l->http);
        log_info("shutting down");
    }
    lb_proxy_shutdown(l);
    lb_pick_shutdown(l);
    lb_servers_free(l);
    /* one more turn of the loop runs the deferred frees of the calls just cancelled */
    if (l->base) event_base_loop(l->base, EVLOOP_NONBLOCK);
    if (l->tick) event_free(l->tick);
    if (l->ev_sigterm) event_free(l->ev_sigterm);
    if (l->ev_sigint) event_free(l->ev_sigint);
    if (l->http) http_server_free(l->http);
    free(l);
    return rc;
}
