/* `sglc launch_lb` (SGLang's `python -m sglang.srt.disaggregation.launch_lb`): the mini load
 * balancer in front of prefill and decode servers. Its flags take lists, which the shared
 * args table cannot express, so they are read here: `--prefill URL [PORT] [URL [PORT]]...`
 * (SGLang's router form, a bootstrap port after its URL) and `--prefill URL...
 * --prefill-bootstrap-ports P...` (the mini LB's form, matched by position) both work; every
 * mistake exits 2 with a message naming the flag. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli/cli.h"
#include "lb/lb.h"

#define CMD "sglc launch_lb"

static void usage(void) {
    printf("usage: sglc launch_lb --prefill URL [BOOTSTRAP_PORT] [URL [PORT]]... --decode URL...\n"
           "                      [options]\n\n"
           "options:\n"
           "  --prefill URL [PORT]...          prefill servers, each optionally followed by its\n"
           "                                   bootstrap port (or 'none'); repeatable. A prefill\n"
           "                                   server without a port is asked for it\n"
           "                                   (/get_server_info)\n"
           "  --decode URL...                  decode servers; repeatable\n"
           "  --prefill-bootstrap-ports P...   bootstrap ports of the prefill servers, in order\n"
           "  --host HOST                      address to listen on (default 0.0.0.0)\n"
           "  --port PORT                      port to listen on (default 8000)\n"
           "  --policy NAME                    random (default), round_robin or least_load\n"
           "  --timeout SECONDS                bound on every upstream request (default 600)\n"
           "  --log-level LEVEL                debug, info (default), warning, error\n"
           "  --help                           this text\n");
}

static bool is_flag(const char *a) { return a[0] == '-' && a[1] == '-'; }

/* "none" -> LB_PORT_NULL; 1..65535 -> the port; else -3. */
static int parse_port(const char *s) {
    if (!strcmp(s, "none") || !strcmp(s, "null")) return LB_PORT_NULL;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > 65535) return -3;
    return (int)v;
}

static bool looks_like_port(const char *s) {
    return !strcmp(s, "none") || !strcmp(s, "null") ||
           (s[0] >= '0' && s[0] <= '9' && !strchr(s, ':'));
}

typedef struct {
    lb_prefill_cfg *prefill;
    int n_prefill;
    const char **decode;
    int n_decode;
    int *ports_list;
    int n_ports_list;
    bool ports_list_seen;
    const char *host, *policy, *log_level;
    long port;
    double timeout_s;
} lb_cli;

/* The values of a flag: the `=value` part, then the following arguments up to the next flag. */
static int take_values(int argc, char **argv, int *i, const char *eq, const char **vals,
                       int *n) {
    *n = 0;
    if (eq) vals[(*n)++] = eq + 1;
    while (*i + 1 < argc && !is_flag(argv[*i + 1])) vals[(*n)++] = argv[++*i];
    return *n;
}

static int parse(lb_cli *c, int argc, char **argv) {
    const char **vals = calloc((size_t)argc + 1, sizeof *vals);
    c->prefill = calloc((size_t)argc + 1, sizeof *c->prefill);
    c->decode = calloc((size_t)argc + 1, sizeof *c->decode);
    c->ports_list = calloc((size_t)argc + 1, sizeof *c->ports_list);
    if (!vals || !c->prefill || !c->decode || !c->ports_list) {
        free(vals);
        fprintf(stderr, CMD ": out of memory\n");
        return 2;
    }
    int rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            rc = 1;
            break;
        }
        if (!is_flag(a)) {
            fprintf(stderr, CMD ": unexpected argument '%s' (see " CMD " --help)\n", a);
            rc = 2;
            break;
        }
        char name[64];
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, a, len);
        name[len] = 0;
        for (size_t k = 2; k < len; k++)
            if (name[k] == '_') name[k] = '-';
        int n;
        if (!strcmp(name, "--prefill")) {
            if (!take_values(argc, argv, &i, eq, vals, &n)) {
                fprintf(stderr, CMD ": --prefill needs a URL\n");
                rc = 2;
            }
            bool port_set = false;
            for (int k = 0; k < n && !rc; k++) {
                if (looks_like_port(vals[k])) {
                    int p = parse_port(vals[k]);
                    if (k == 0 || port_set || p == -3) {
                        fprintf(stderr, CMD ": --prefill: '%s' is not %s\n", vals[k],
                                p == -3 ? "a port (1..65535 or none)"
                                        : "expected here (give URL [PORT] pairs)");
                        rc = 2;
                        break;
                    }
                    c->prefill[c->n_prefill - 1].bootstrap_port = p;
                    port_set = true;
                } else {
                    char err[512];
                    if (lb_check_url(vals[k], err, sizeof err)) {
                        fprintf(stderr, CMD ": --prefill: %s\n", err);
                        rc = 2;
                    }
                    c->prefill[c->n_prefill++] = (lb_prefill_cfg){vals[k], LB_PORT_UNSET};
                    port_set = false;
                }
            }
        } else if (!strcmp(name, "--decode")) {
            if (!take_values(argc, argv, &i, eq, vals, &n)) {
                fprintf(stderr, CMD ": --decode needs a URL\n");
                rc = 2;
            }
            for (int k = 0; k < n && !rc; k++) {
                char err[512];
                if (lb_check_url(vals[k], err, sizeof err)) {
                    fprintf(stderr, CMD ": --decode: %s\n", err);
                    rc = 2;
                }
                c->decode[c->n_decode++] = vals[k];
            }
        } else if (!strcmp(name, "--prefill-bootstrap-ports")) {
            c->ports_list_seen = true;
            if (!take_values(argc, argv, &i, eq, vals, &n)) {
                fprintf(stderr, CMD ": --prefill-bootstrap-ports needs at least one port\n");
                rc = 2;
            }
            for (int k = 0; k < n && !rc; k++) {
                int p = parse_port(vals[k]);
                if (p == -3) {
                    fprintf(stderr, CMD ": --prefill-bootstrap-ports: '%s' is not a port "
                            "(1..65535 or none)\n", vals[k]);
                    rc = 2;
                }
                c->ports_list[c->n_ports_list++] = p;
            }
        } else if (!strcmp(name, "--host") || !strcmp(name, "--port") ||
                   !strcmp(name, "--policy") || !strcmp(name, "--timeout") ||
                   !strcmp(name, "--log-level")) {
            const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
            if (!v) {
                fprintf(stderr, CMD ": %s needs a value\n", name);
                rc = 2;
            } else if (!strcmp(name, "--host")) {
                c->host = v;
            } else if (!strcmp(name, "--policy")) {
                c->policy = v;
            } else if (!strcmp(name, "--log-level")) {
                c->log_level = v;
            } else if (!strcmp(name, "--port")) {
                char *end;
                errno = 0;
                c->port = strtol(v, &end, 10);
                if (errno || end == v || *end || c->port < 1 || c->port > 65535) {
                    fprintf(stderr, CMD ": --port expects a port (1..65535), got '%s'\n", v);
                    rc = 2;
                }
            } else {
                char *end;
                errno = 0;
                c->timeout_s = strtod(v, &end);
                if (errno || end == v || *end || !(c->timeout_s > 0) || c->timeout_s > 1e7) {
                    fprintf(stderr, CMD ": --timeout expects seconds > 0, got '%s'\n", v);
                    rc = 2;
                }
            }
        } else {
            fprintf(stderr, CMD ": unknown option '%s' (see " CMD " --help)\n", name);
            rc = 2;
        }
    }
    free(vals);
    return rc;
}

/* Checks what the flags say together: the ports list against the prefill list, the policy. */
static int check(lb_cli *c, lb_policy *policy) {
    if (c->n_prefill == 0 || c->n_decode == 0) {
        fprintf(stderr, CMD ": needs at least one --prefill URL and one --decode URL\n");
        return 2;
    }
    if (c->n_ports_list > c->n_prefill) {
        fprintf(stderr, CMD ": --prefill-bootstrap-ports has %d port(s) for %d prefill "
                "server(s)\n", c->n_ports_list, c->n_prefill);
        return 2;
    }
    for (int k = 0; k < c->n_ports_list; k++) {
        lb_prefill_cfg *p = &c->prefill[k];
        if (p->bootstrap_port != LB_PORT_UNSET && p->bootstrap_port != c->ports_list[k]) {
            fprintf(stderr, CMD ": --prefill-bootstrap-ports: prefill server %s already has "
                    "bootstrap port %s after its URL; give it one way only\n", p->url,
                    p->bootstrap_port > 0 ? "set" : "none");
            return 2;
        }
        p->bootstrap_port = c->ports_list[k];
    }
    if (!strcmp(c->policy, "po2") || !strcmp(c->policy, "power_of_two")) {
        fprintf(stderr, CMD ": --policy %s (power of two choices) is not implemented, as in "
                "SGLang's mini LB; use random, round_robin or least_load\n", c->policy);
        return 2;
    }
    if (lb_policy_parse(c->policy, policy) != 0) {
        fprintf(stderr, CMD ": --policy must be random, round_robin or least_load, got '%s'\n",
                c->policy);
        return 2;
    }
    if (c->log_level && log_parse_level(c->log_level) < 0) {
        fprintf(stderr, CMD ": --log-level must be debug, info, warning or error, got '%s'\n",
                c->log_level);
        return 2;
    }
    return 0;
}

int cli_launch_lb(int argc, char **argv) {
    lb_cli c = {.host = "0.0.0.0", .policy = "random", .port = 8000, .timeout_s = 600};
    int rc = parse(&c, argc, argv);
    lb_policy policy = LB_POLICY_RANDOM;
    if (rc == 0) rc = check(&c, &policy);
    if (rc == 0) {
        if (c.log_level) log_set_level((log_level)log_parse_level(c.log_level));
        lb_config cfg = {.host = c.host,
                         .port = (int)c.port,
                         .policy = policy,
                         .timeout_s = c.timeout_s,
                         .prefill = c.prefill,
                         .n_prefill = c.n_prefill,
                         .decode = c.decode,
                         .n_decode = c.n_decode};
        rc = lb_run(&cfg);
    } else if (rc == 1) {
        rc = 0; /* --help */
    }
    free(c.prefill), free(c.decode), free(c.ports_list);
    return rc;
}
