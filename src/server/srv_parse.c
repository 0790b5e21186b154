/* Request-body checks shared by /generate, /v1/completions and /v1/chat/completions: typed
 * field readers that name the offending parameter, the stop / stop_token_ids / logit_bias
 * forms, token-id prompts, and the refusal of constrained decoding (which this build lacks:
 * such a request gets 400 rather than an unconstrained answer). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/srv_internal.h"

#define SRV_MAX_STOP 64
#define SRV_MAX_STOP_LEN 256
#define SRV_MAX_IDS 1000000

int srv_fail(srv_err *e, int status, const char *param, const char *fmt, ...) {
    e->status = status;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

void srv_reply_err(http_req *r, const srv_err *e) {
    http_reply_error(r, e->status ? e->status : 400, NULL, e->param[0] ? e->param : NULL, NULL,
                     "%s", e->msg);
}

static const json_t *field(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return v && !json_is_null(v) ? v : NULL;
}

int srv_get_bool(const json_t *o, const char *key, bool *out, srv_err *e) {
    const json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_boolean(v)) return srv_fail(e, 400, key, "%s must be a boolean", key);
    *out = json_is_true(v);
    return 0;
}

int srv_get_int(const json_t *o, const char *key, long lo, long hi, long *out, srv_err *e) {
    const json_t *v = field(o, key);
    if (!v) return 0;
    double d;
    if (json_is_integer(v)) d = (double)json_integer_value(v);
    else if (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v))
        d = json_real_value(v);
    else return srv_fail(e, 400, key, "%s must be an integer", key);
    if (d < (double)lo || d > (double)hi)
        return srv_fail(e, 400, key, "%s must be in [%ld, %ld], got %.0f", key, lo, hi, d);
    *out = (long)d;
    return 0;
}

int srv_get_num(const json_t *o, const char *key, double lo, double hi, bool lo_open,
                double *out, srv_err *e) {
    const json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_number(v)) return srv_fail(e, 400, key, "%s must be a number", key);
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi || (lo_open && d == lo))
        return srv_fail(e, 400, key, "%s must be in %c%g, %g], got %g", key, lo_open ? '(' : '[',
                        lo, hi, d);
    *out = d;
    return 0;
}

int srv_get_str(const json_t *o, const char *key, const char **out, srv_err *e) {
    const json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_string(v)) return srv_fail(e, 400, key, "%s must be a string", key);
    *out = json_string_value(v);
    return 0;
}

static int add_stop(srv_job *j, const json_t *s, int i, const char *param, srv_err *e) {
    if (!json_is_string(s)) return srv_fail(e, 400, param, "%s must be a string or a list of "
                                            "strings", param);
    size_t len = json_string_length(s);
    if (len == 0 || len > SRV_MAX_STOP_LEN)
        return srv_fail(e, 400, param, "each stop string must be 1..%d bytes", SRV_MAX_STOP_LEN);
    j->stop[i] = strdup(json_string_value(s));
    if (!j->stop[i]) return srv_fail(e, 500, NULL, "out of memory");
    if (len > j->max_stop_len) j->max_stop_len = len;
    j->sp.n_stop = i + 1;
    return 0;
}

int srv_parse_stop(srv_job *j, const json_t *v, const char *param, srv_err *e) {
    if (!v || json_is_null(v)) return 0;
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (n > SRV_MAX_STOP)
        return srv_fail(e, 400, param, "at most %d stop strings are allowed", SRV_MAX_STOP);
    if (n == 0) return 0;
    j->stop = calloc(n, sizeof *j->stop);
    if (!j->stop) return srv_fail(e, 500, NULL, "out of memory");
    j->sp.stop = (const char *const *)j->stop;
    if (!json_is_array(v)) return add_stop(j, v, 0, param, e);
    for (size_t i = 0; i < n; i++)
        if (add_stop(j, json_array_get(v, i), (int)i, param, e)) return -1;
    return 0;
}

int srv_parse_ids(const json_t *v, const char *param, int vocab, int32_t **ids, int64_t *n,
                  srv_err *e) {
    size_t len = json_array_size(v);
    if (!json_is_array(v)) return srv_fail(e, 400, param, "%s must be a list of token ids", param);
    if (len > SRV_MAX_IDS) return srv_fail(e, 400, param, "%s is too long", param);
    *ids = malloc((len ? len : 1) * sizeof(int32_t));
    if (!*ids) return srv_fail(e, 500, NULL, "out of memory");
    for (size_t i = 0; i < len; i++) {
        const json_t *t = json_array_get(v, i);
        if (!json_is_integer(t)) {
            free(*ids), *ids = NULL;
            return srv_fail(e, 400, param, "%s must be a list of integers", param);
        }
        json_int_t id = json_integer_value(t);
        if (id < 0 || (vocab > 0 && id >= vocab)) {
            free(*ids), *ids = NULL;
            return srv_fail(e, 400, param, "token id %lld in %s is out of range [0, %d)",
                            (long long)id, param, vocab);
        }
        (*ids)[i] = (int32_t)id;
    }
    *n = (int64_t)len;
    return 0;
}

int srv_parse_stop_ids(srv_job *j, const json_t *v, const char *param, srv_err *e) {
    if (!v || json_is_null(v)) return 0;
    int64_t n;
    engine_stats st;
    engine_get_stats(j->s->eng, &st);
    if (srv_parse_ids(v, param, st.vocab_size, &j->stop_ids, &n, e)) return -1;
    if (n > 1024) return srv_fail(e, 400, param, "at most 1024 stop token ids are allowed");
    j->sp.stop_token_ids = j->stop_ids;
    j->sp.n_stop_token_ids = (int)n;
    return 0;
}

int srv_parse_logit_bias(srv_job *j, const json_t *v, const char *param, srv_err *e) {
    if (!v || json_is_null(v)) return 0;
    if (!json_is_object(v))
        return srv_fail(e, 400, param, "%s must be an object of token id -> bias", param);
    size_t n = json_object_size(v);
    if (n > 4096) return srv_fail(e, 400, param, "%s has too many entries", param);
    j->bias = calloc(n ? n : 1, sizeof *j->bias);
    if (!j->bias) return srv_fail(e, 500, NULL, "out of memory");
    engine_stats st;
    engine_get_stats(j->s->eng, &st);
    const char *key;
    json_t *val;
    int i = 0;
    json_object_foreach((json_t *)v, key, val) {
        char *end;
        long id = strtol(key, &end, 10);
        if (!*key || *end || id < 0 || (st.vocab_size > 0 && id >= st.vocab_size))
            return srv_fail(e, 400, param, "%s: '%s' is not a token id in [0, %d)", param, key,
                            st.vocab_size);
        if (!json_is_number(val) || !(fabs(json_number_value(val)) <= 100))
            return srv_fail(e, 400, param, "%s: the bias of %s must be a number in [-100, 100]",
                            param, key);
        j->bias[i].token = (int32_t)id;
        j->bias[i].bias = (float)json_number_value(val);
        i++;
    }
    j->sp.logit_bias = j->bias;
    j->sp.n_logit_bias = i;
    return 0;
}

int srv_refuse_constraints(const json_t *o, srv_err *e) {
    static const char *const keys[] = {"regex", "ebnf", "json_schema", "structural_tag"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (field(o, keys[i]))
            return srv_fail(e, 400, keys[i], "%s: constrained decoding is not supported by this "
                            "build (sglc has no grammar backend yet)", keys[i]);
    return 0;
}

int srv_tokenize_prompt(srv *s, const char *text, size_t len, bool add_special, srv_prompt *p,
                        const char *param, srv_err *e) {
    if (!s->tok)
        return srv_fail(e, 400, param, "%s: the server runs with --skip-tokenizer-init; send "
                        "token ids instead of text", param);
    size_t n;
    if (tok_encode(s->tok, text, len, add_special, true, &p->ids, &n) != 0)
        return srv_fail(e, 500, NULL, "out of memory");
    p->n = (int64_t)n;
    p->text = strndup(text, len);
    if (!p->text) return srv_fail(e, 500, NULL, "out of memory");
    return 0;
}

bool srv_auth(srv *s, http_req *r) {
    if (!s->args.api_key) return true;
    const char *h = http_req_header(r, "Authorization");
    if (h && !strncasecmp(h, "Bearer ", 7) && !strcmp(h + 7, s->args.api_key)) return true;
    http_reply_error(r, 401, "AuthenticationError", NULL, "invalid_api_key", "Unauthorized: %s",
                     h ? "invalid API key" : "missing 'Authorization: Bearer' header");
    return false;
}

json_t *srv_token_text(srv *s, int32_t id) {
    if (!s->tok) return json_null();
    size_t len;
    const uint8_t *piece = tok_piece(s->tok, id, &len);
    json_t *raw = piece ? json_stringn((const char *)piece, len) : NULL;
    if (raw) return raw; /* else a partial UTF-8 character: decode it with U+FFFD */
    char *t = tok_decode(s->tok, &id, 1, false, NULL);
    if (!t) return json_null();
    json_t *j = json_string(t);
    free(t);
    return j ? j : json_null();
}

int srv_parse_sampling_knobs(const json_t *o, engine_sampling *s, srv_err *e) {
    long v;
    double d;
    d = s->temperature;
    if (srv_get_num(o, "temperature", 0, 1e6, false, &d, e)) return -1;
    s->temperature = (float)d;
    d = s->top_p;
    if (srv_get_num(o, "top_p", 0, 1, true, &d, e)) return -1;
    s->top_p = (float)d;
    v = s->top_k;
    if (srv_get_int(o, "top_k", -1, 1L << 30, &v, e)) return -1;
    if (v == 0) return srv_fail(e, 400, "top_k", "top_k must be -1 (all) or >= 1");
    s->top_k = (int)v;
    d = s->min_p;
    if (srv_get_num(o, "min_p", 0, 1, false, &d, e)) return -1;
    s->min_p = (float)d;
    d = s->frequency_penalty;
    if (srv_get_num(o, "frequency_penalty", -2, 2, false, &d, e)) return -1;
    s->frequency_penalty = (float)d;
    d = s->presence_penalty;
    if (srv_get_num(o, "presence_penalty", -2, 2, false, &d, e)) return -1;
    s->presence_penalty = (float)d;
    d = s->repetition_penalty;
    if (srv_get_num(o, "repetition_penalty", 0, 2, true, &d, e)) return -1;
    s->repetition_penalty = (float)d;
    return 0;
}

/* The i-th value of a field that is one value or a list of n_prompts values. */
static const json_t *nth(const json_t *v, int i, bool list) {
    return list ? json_array_get(v, (size_t)i) : v;
}

int srv_parse_bootstrap(srv_job *j, const json_t *body, srv_err *e) {
    const json_t *host = json_object_get(body, "bootstrap_host");
    const json_t *port = json_object_get(body, "bootstrap_port");
    const json_t *room = json_object_get(body, "bootstrap_room");
    if ((!host || json_is_null(host)) && (!room || json_is_null(room))) return 0;
    if (!host || json_is_null(host) || !room || json_is_null(room))
        return srv_fail(e, 400, host && !json_is_null(host) ? "bootstrap_room" : "bootstrap_host",
                        "bootstrap_host and bootstrap_room go together");
    bool list = json_is_array(host);
    int n = j->n_prompts;
    const char *names[] = {"bootstrap_host", "bootstrap_port", "bootstrap_room"};
    const json_t *vals[] = {host, port, room};
    for (int k = 0; k < 3; k++) {
        const json_t *v = vals[k];
        if (!v || json_is_null(v)) continue;
        if (json_is_array(v) != list || (list && (int)json_array_size(v) != n) ||
            (!list && n != 1))
            return srv_fail(e, 400, names[k], "%s: one value per prompt (a list for a batch of "
                            "%d)", names[k], n);
    }
    j->boot = calloc((size_t)n, sizeof *j->boot);
    if (!j->boot) return srv_fail(e, 500, NULL, "out of memory");
    for (int i = 0; i < n; i++) {
        const json_t *h = nth(host, i, list), *p = port ? nth(port, i, list) : NULL,
                     *r = nth(room, i, list);
        if (!json_is_string(h) || json_string_length(h) == 0 || json_string_length(h) >= 256)
            return srv_fail(e, 400, "bootstrap_host", "bootstrap_host must be a host name");
        if (p && !json_is_null(p) &&
            (!json_is_integer(p) || json_integer_value(p) < 1 || json_integer_value(p) > 65535))
            return srv_fail(e, 400, "bootstrap_port", "bootstrap_port must be a port or null");
        if (!json_is_integer(r) || json_integer_value(r) < 0)
            return srv_fail(e, 400, "bootstrap_room", "bootstrap_room must be an integer >= 0");
        j->boot[i].host = json_string_value(h); /* valid while the body lives: copied below */
        j->boot[i].port = p && !json_is_null(p) ? (int)json_integer_value(p) : 0;
        j->boot[i].room = (uint64_t)json_integer_value(r);
    }
    for (int i = 0; i < n; i++) {
        char *copy = strdup(j->boot[i].host);
        if (!copy) {
            for (int k = 0; k < i; k++) free((char *)j->boot[k].host);
            free(j->boot), j->boot = NULL;
            return srv_fail(e, 500, NULL, "out of memory");
        }
        j->boot[i].host = copy;
    }
    return 0;
}
