/* The mini load balancer for PD disaggregation (SGLang's mini_lb): one HTTP front that picks a
 * prefill and a decode server per request, tells both where to meet (bootstrap host, port and
 * room), sends them the same request at once and relays the decode server's answer.
 *
 * Promises:
 * - lb_run serves until SIGTERM/SIGINT and returns the exit status (0, or 1 when it cannot
 *   listen). Everything runs on one event-loop thread; the LB knows HTTP and JSON only.
 * - The config is copied; its strings must stay valid while lb_run runs.
 * - A prefill server given without a bootstrap port has it asked from its /get_server_info
 *   (retried until the server answers); a server that reports none gets bootstrap_port null.
 * - The client's end-to-end headers (Authorization, Accept, X-Request-Id, ...; never hop-by-hop
 *   ones) go with every upstream call made for its request, fan-outs included, so backends
 *   started with --api-key work behind the LB.
 * - An upstream that fails (no answer, garbage, a cut-off or oversized body, --timeout) gets
 *   the client a 502/504 in OpenAI's error shape, or an error event in a started stream. */
#ifndef SGLC_LB_LB_H
#define SGLC_LB_LB_H

#include <stddef.h>

#define LB_PORT_UNSET (-1) /* bootstrap port not given: ask the server */
#define LB_PORT_NULL (-2)  /* bootstrap port explicitly none: send null */

typedef enum { LB_POLICY_RANDOM, LB_POLICY_ROUND_ROBIN, LB_POLICY_LEAST_LOAD } lb_policy;

typedef struct {
    const char *url;    /* http://host:port (no trailing slash needed) */
    int bootstrap_port; /* 1..65535, LB_PORT_UNSET or LB_PORT_NULL */
} lb_prefill_cfg;

typedef struct {
    const char *host; /* "0.0.0.0" as SGLang */
    int port;         /* 8000 */
    lb_policy policy;
    double timeout_s; /* bounds every upstream call (600, as SGLang's aiohttp timeout) */
    const lb_prefill_cfg *prefill;
    int n_prefill;
    const char *const *decode;
    int n_decode;
} lb_config;

/* "random", "round_robin", "least_load" -> 0 and *out; -1 otherwise. */
int lb_policy_parse(const char *name, lb_policy *out);
const char *lb_policy_name(lb_policy p);
/* Checks that url is http://host[:port][/] with a host; 0 or -1 with a reason in err. */
int lb_check_url(const char *url, char *err, size_t err_len);
int lb_run(const lb_config *cfg);

#endif
