/* Shared state of the load balancer's files (not a public interface). Everything here lives on
 * the LB's one loop thread. Servers are never removed (POST /register only adds), so a job may
 * keep a pointer to the server it was routed to. */
#ifndef SGLC_LB_INTERNAL_H
#define SGLC_LB_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "http/http_client.h"
#include "http/http_server.h"
#include "lb/lb.h"

#define LB_HEALTH_PERIOD_S 2.0  /* background /health checks of every server */
#define LB_HEALTH_TIMEOUT_S 20.0 /* SGLANG_HEALTH_CHECK_TIMEOUT */
#define LB_LOAD_TIMEOUT_S 5.0    /* a /get_load answer for least_load */
#define LB_LOAD_TTL_S 0.15       /* least_load reuses the servers' /get_load answers this long */
#define LB_FWD_MAX 16            /* client headers passed upstream, at most */
#define LB_SHUTDOWN_GRACE_S 5.0

typedef enum { LB_PREFILL = 0, LB_DECODE = 1 } lb_role;
typedef enum { LB_HEALTH_UNKNOWN, LB_HEALTH_UP, LB_HEALTH_DOWN } lb_health;

typedef struct lb lb;

typedef struct {
    lb *l;
    lb_role role;
    char *url;          /* without a trailing slash */
    char *hostname;     /* the URL's host (brackets of IPv6 removed): bootstrap_host */
    int bootstrap_port; /* prefill: a port, LB_PORT_UNSET (still asking) or LB_PORT_NULL */
    lb_health health;
    http_call *health_call; /* background /health in flight */
    http_call *info_call;   /* bootstrap-port discovery in flight */
    int in_flight;          /* requests routed here and not finished */
    /* least_load: the last /get_load answer (reqs INFINITY when it failed) and how many
     * requests the LB routed here since */
    double load_reqs, load_waiting;
    int load_sent;
} lb_server;

typedef struct lb_load_refresh lb_load_refresh;

struct lb {
    lb_config cfg;
    http_server *http;
    struct event_base *base;
    lb_server **servers[2]; /* by lb_role */
    int n_servers[2], cap_servers[2];
    unsigned rr_next[2];
    struct event *tick, *ev_sigterm, *ev_sigint;
    bool stopping;
    uint64_t rng; /* xorshift state, for random picks */
    struct lb_job *jobs; /* live generation requests (lb_proxy.c), freed at exit */
    double load_at;      /* when the cached loads were read (lb_pick.c); 0: never */
    lb_load_refresh *refresh; /* the /get_load round in flight, with the picks waiting on it */
};

/* lb_servers.c */
lb_server *lb_add_server(lb *l, lb_role role, const char *url, int bootstrap_port);
lb_server *lb_find_server(lb *l, lb_role role, const char *url);
/* Starts bootstrap-port discovery for a prefill server that lacks one (no-op otherwise). */
void lb_discover_port(lb_server *s);
/* Applies an answer of s's /get_server_info (status 0: no answer) to its bootstrap port. */
void lb_server_info_result(lb_server *s, int status, const char *body, size_t len,
                           const char *err);
/* One round of background checks: /health of every server, pending discoveries retried. */
void lb_check_servers(lb *l);
void lb_servers_free(lb *l);
uint64_t lb_rand(lb *l);
/* url + path as a new string. */
char *lb_url_join(const lb_server *s, const char *path);

/* lb_headers.c: the client's end-to-end headers (Authorization, Accept, X-Request-Id, ...) as
 * http_call_req.headers wants them: name, value, ..., NULL, filled into out and returned. The
 * values point into r; r NULL gives an empty list. */
const char *const *lb_fwd_headers(const http_req *r, const char *out[2 * LB_FWD_MAX + 1]);

/* lb_pick.c: chooses one prefill and one decode server by the policy. done runs exactly once,
 * maybe inside lb_pick (random, round_robin, least_load with fresh loads) or later (least_load
 * waiting for /get_load, asked with headers), with NULLs when a side has no server or the LB is
 * shutting down. */
typedef void (*lb_pick_fn)(lb_server *prefill, lb_server *decode, void *ud);
void lb_pick(lb *l, const char *const *headers, lb_pick_fn done, void *ud);
/* Cancels a /get_load round still out; its waiting picks get done(NULL, NULL). */
void lb_pick_shutdown(lb *l);

/* lb_json.c: the request and response rewriting of the protocol (pure functions). */
/* Number of prompts of a batch /generate (text or input_ids a list of prompts), or -1. */
int lb_batch_size(const json_t *body);
/* Sets bootstrap_host, bootstrap_port (port < 0: null) and bootstrap_room (lists for a batch). */
int lb_inject_bootstrap(lb *l, json_t *body, const char *host, int port);
/* decode.meta_info.input_token_logprobs = prefill's + decode's (per element for lists). */
void lb_merge_logprobs(const json_t *prefill, json_t *decode);
/* Reads an SSE body: the first event per "index" that carries meta_info.input_token_logprobs.
 * Returns an object {"<index>": [...], ...} (new reference, maybe empty). */
json_t *lb_sse_input_logprobs(const char *body, size_t len);
/* Finds the end of the next SSE event in p[0..n): a blank line, "\n\n" or "\r\n\r\n",
 * whichever comes first. Returns true with the event's length and the separator's. */
bool lb_sse_next(const char *p, size_t n, size_t *ev_len, size_t *sep_len);
/* Rewrites one SSE event (without its separator): when it is `data: {json}` with
 * meta_info.input_token_logprobs, prepends the prefill ones for its index. Returns a new
 * malloc'd event text (without a separator) or NULL to keep the event as it was. */
char *lb_sse_rewrite_event(const char *ev, size_t len, const json_t *prefill_lp, size_t *out_len);

/* lb_proxy.c: /generate, /v1/completions, /v1/chat/completions. */
int lb_add_proxy_routes(lb *l);
/* After the loop has ended: cancels the upstream calls still out and frees their jobs. */
void lb_proxy_shutdown(lb *l);
/* lb_routes.c: everything else. */
int lb_add_admin_routes(lb *l);

#endif
