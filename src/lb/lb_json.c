/* The JSON side of SGLang's mini-LB protocol: which requests are batches, the bootstrap fields
 * that tell a prefill and a decode server where to meet, and the merge of the prefill server's
 * input-token logprobs (it alone ran the prompt) into the decode server's answer, whole or as
 * SSE events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/lb_internal.h"

int lb_batch_size(const json_t *body) {
    const json_t *t = json_object_get(body, "text");
    if (t && !json_is_null(t)) return json_is_array(t) ? (int)json_array_size(t) : -1;
    const json_t *ids = json_object_get(body, "input_ids");
    if (!json_is_array(ids) || json_array_size(ids) == 0) return -1;
    return json_is_array(json_array_get(ids, 0)) ? (int)json_array_size(ids) : -1;
}

static json_t *port_json(int port) { return port > 0 ? json_integer(port) : json_null(); }

static json_t *new_room(lb *l) { return json_integer((json_int_t)(lb_rand(l) >> 1)); }

int lb_inject_bootstrap(lb *l, json_t *body, const char *host, int port) {
    int n = lb_batch_size(body);
    int rc = 0;
    if (n < 0) {
        rc |= json_object_set_new(body, "bootstrap_host", json_string(host));
        rc |= json_object_set_new(body, "bootstrap_port", port_json(port));
        rc |= json_object_set_new(body, "bootstrap_room", new_room(l));
        return rc ? -1 : 0;
    }
    json_t *hosts = json_array(), *ports = json_array(), *rooms = json_array();
    for (int i = 0; i < n; i++) {
        rc |= json_array_append_new(hosts, json_string(host));
        rc |= json_array_append_new(ports, port_json(port));
        rc |= json_array_append_new(rooms, new_room(l));
    }
    rc |= json_object_set_new(body, "bootstrap_host", hosts);
    rc |= json_object_set_new(body, "bootstrap_port", ports);
    rc |= json_object_set_new(body, "bootstrap_room", rooms);
    return rc ? -1 : 0;
}

/* Prepends prefill's input logprobs (pl) to the ones in decode's meta_info. Where decode sent
 * none (it did not run the prompt), prefill's stand alone. */
static void merge_meta(const json_t *pl, json_t *decode) {
    json_t *dm = json_object_get(decode, "meta_info");
    if (!json_is_array(pl) || !json_is_object(dm)) return;
    json_t *dl = json_object_get(dm, "input_token_logprobs");
    if (dl && !json_is_array(dl) && !json_is_null(dl)) return;
    json_t *merged = json_deep_copy(pl);
    if (!merged) return;
    if (dl && json_array_extend(merged, dl) != 0) {
        json_decref(merged);
        return;
    }
    json_object_set_new(dm, "input_token_logprobs", merged);
}

static const json_t *input_lp(const json_t *resp) {
    return json_object_get(json_object_get(resp, "meta_info"), "input_token_logprobs");
}

void lb_merge_logprobs(const json_t *prefill, json_t *decode) {
    if (json_is_array(prefill) && json_is_array(decode)) {
        size_t n = json_array_size(prefill) < json_array_size(decode) ? json_array_size(prefill)
                                                                       : json_array_size(decode);
        for (size_t i = 0; i < n; i++)
            merge_meta(input_lp(json_array_get(prefill, i)), json_array_get(decode, i));
    } else if (json_is_object(prefill) && json_is_object(decode)) {
        merge_meta(input_lp(prefill), decode);
    }
}

/* The JSON of a `data: {...}` event, or NULL (comments, [DONE], other fields, bad JSON). */
static json_t *event_json(const char *ev, size_t len) {
    if (len < 5 || strncmp(ev, "data:", 5)) return NULL;
    const char *p = ev + 5, *end = ev + len;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ')) end--;
    if (end - p == 6 && !strncmp(p, "[DONE]", 6)) return NULL;
    json_error_t je;
    json_t *j = json_loadb(p, (size_t)(end - p), 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static void index_key(const json_t *ev, char *key, size_t n) {
    const json_t *ix = json_object_get(ev, "index");
    snprintf(key, n, "%lld", json_is_integer(ix) ? (long long)json_integer_value(ix) : 0LL);
}

bool lb_sse_next(const char *p, size_t n, size_t *ev_len, size_t *sep_len) {
    const char *lf = memmem(p, n, "\n\n", 2);
    const char *crlf = memmem(p, lf ? (size_t)(lf - p) + 2 : n, "\r\n\r\n", 4);
    if (crlf && (!lf || crlf < lf)) {
        *ev_len = (size_t)(crlf - p), *sep_len = 4;
        return true;
    }
    if (!lf) return false;
    *ev_len = (size_t)(lf - p), *sep_len = 2;
    return true;
}

json_t *lb_sse_input_logprobs(const char *body, size_t len) {
    json_t *out = json_object();
    size_t i = 0;
    while (out && i < len) {
        size_t evlen = len - i, seplen = 0;
        lb_sse_next(body + i, len - i, &evlen, &seplen);
        json_t *ev = event_json(body + i, evlen);
        const json_t *lp = input_lp(ev);
        char key[32];
        index_key(ev, key, sizeof key);
        if (json_is_array(lp) && !json_object_get(out, key))
            json_object_set(out, key, (json_t *)lp);
        json_decref(ev);
        i += evlen + seplen;
    }
    return out;
}

char *lb_sse_rewrite_event(const char *ev, size_t len, const json_t *prefill_lp,
                           size_t *out_len) {
    json_t *j = event_json(ev, len);
    if (!j) return NULL;
    char key[32];
    index_key(j, key, sizeof key);
    const json_t *pl = json_object_get(prefill_lp, key);
    char *out = NULL;
    if (json_is_array(pl) && json_is_object(json_object_get(j, "meta_info"))) {
        merge_meta(pl, j);
        char *s = json_dumps(j, JSON_COMPACT);
        size_t n = s ? strlen(s) : 0;
        out = s ? malloc(n + 7) : NULL;
        if (out) {
            memcpy(out, "data: ", 6);
            memcpy(out + 6, s, n + 1);
            *out_len = n + 6;
        }
        free(s);
    }
    json_decref(j);
    return out;
}
