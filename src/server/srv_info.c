/* The small routes: /v1/models, /health, /get_model_info, /get_server_info, /get_load,
 * /flush_cache, /abort_request, /tokenize and /detokenize (vLLM's shapes), /metrics. None of
 * them generates text except /health, which runs one token through the engine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "server/srv_internal.h"

#define SGLC_SERVER_VERSION "0.5.3rc0-sglc"
#define HEALTH_TIMEOUT_S 20 /* SGLANG_HEALTH_CHECK_TIMEOUT */

static bool ready_or_503(srv *s, http_req *r) {
    if (s->ready) return true;
    http_reply_error(r, 503, NULL, NULL, NULL, "%s",
                     s->failed ? "the engine failed to start" : "the server is starting");
    return false;
}

static json_t *model_card(srv *s) {
    engine_stats st;
    engine_get_stats(s->eng, &st);
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:i}", "id", s->model_name, "object", "model",
                     "created", (json_int_t)s->created, "owned_by", "sglang", "root",
                     s->model_name, "max_model_len",
                     st.context_length > 0 ? st.context_length
                     : s->args.context_length > 0 ? (int)s->args.context_length : 0);
}

static void h_models(http_req *r, void *ud) {
    srv *s = ud;
    if (!srv_auth(s, r)) return;
    json_t *data = json_array();
    json_array_append_new(data, model_card(s));
    http_reply_json(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

static void h_model(http_req *r, void *ud) {
    srv *s = ud;
    if (!srv_auth(s, r)) return;
    const char *id = http_req_param(r, "*");
    if (!id || strcmp(id, s->model_name)) {
        http_reply_error(r, 404, "NotFoundError", "model", "model_not_found",
                         "The model '%s' does not exist", id ? id : "");
        return;
    }
    http_reply_json(r, 200, model_card(s));
}

static void health_timeout(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    srv_job *j = arg;
    if (j->replied) return;
    j->replied = true;
    http_reply_error(j->req, 503, NULL, NULL, NULL, "no token within %d s", HEALTH_TIMEOUT_S);
    for (int i = 0; i < j->n_prompts; i++)
        if (j->handles[i]) engine_abort(j->s->eng, j->handles[i]);
}

static void h_health(http_req *r, void *ud) {
    srv *s = ud;
    if (!ready_or_503(s, r)) return;
    srv_job *j = srv_job_new(s, r, JOB_HEALTH);
    if (!j) {
        http_reply(r, 503, "text/plain", "", 0);
        return;
    }
    srv_new_id(s, "HEALTH_CHECK_", j->id, sizeof j->id);
    j->prompts = calloc(1, sizeof *j->prompts);
    if (j->prompts) j->prompts[0].ids = calloc(1, sizeof(int32_t));
    if (!j->prompts || !j->prompts[0].ids) {
        srv_job_free(j);
        http_reply(r, 503, "text/plain", "", 0);
        return;
    }
    j->n_prompts = 1;
    j->prompts[0].n = 1;
    j->sp.max_new_tokens = 1;
    j->sp.temperature = 0;
    if (s->args.disaggregation_mode && strcmp(s->args.disaggregation_mode, "null")) {
        /* as SGLang: PD servers check themselves through the fake transfer */
        j->boot = calloc(1, sizeof *j->boot);
        if (j->boot) j->boot[0].host = strdup("2.2.2.2");
        if (!j->boot || !j->boot[0].host) {
            srv_job_free(j);
            http_reply(r, 503, "text/plain", "", 0);
            return;
        }
        srv_new_id(s, "", j->id, sizeof j->id);
        j->boot[0].room = s->id_rng >> 1;
    }
    if (srv_job_submit(j) != 0) return;
    struct timeval tv = {HEALTH_TIMEOUT_S, 0};
    j->timer = evtimer_new(http_server_base(s->http), health_timeout, j);
    if (j->timer) evtimer_add(j->timer, &tv);
}

static void h_model_info(http_req *r, void *ud) {
    srv *s = ud;
    if (!srv_auth(s, r)) return;
    http_reply_json(r, 200, json_pack("{s:s, s:s, s:b, s:n, s:s, s:b}", "model_path",
                                      s->args.model_path, "tokenizer_path",
                                      s->args.tokenizer_path ? s->args.tokenizer_path
                                                             : s->args.model_path,
                                      "is_generation", 1, "preferred_sampling_params",
                                      "weight_version", "default", "has_image_understanding", 0));
}

static void h_server_info(http_req *r, void *ud) {
    srv *s = ud;
    if (!srv_auth(s, r)) return;
    json_t *o = server_args_to_json(&s->args);
    engine_stats st;
    engine_get_stats(s->eng, &st);
    json_object_set_new(o, "max_total_num_tokens", json_integer(st.max_total_num_tokens));
    json_object_set_new(o, "max_req_input_len", json_integer(st.context_length > 0
                                                                 ? st.context_length - 1 : 0));
    json_object_set_new(o, "max_running_requests_effective",
                        json_integer(st.max_running_requests));
    json_object_set_new(o, "context_length_effective", json_integer(st.context_length));
    json_object_set_new(o, "vocab_size", json_integer(st.vocab_size));
    json_t *is = json_pack("{s:f, s:n, s:i, s:i, s:I, s:f, s:f}", "last_gen_throughput",
                           st.gen_throughput, "avg_spec_accept_length", "num_running_reqs",
                           st.running, "num_queue_reqs", st.queued, "num_used_tokens",
                           (json_int_t)st.used_tokens, "token_usage", st.token_usage,
                           "cache_hit_rate", st.cache_hit_rate);
    json_object_set_new(o, "internal_states", json_pack("[o]", is));
    json_object_set_new(o, "version", json_string(SGLC_SERVER_VERSION));
    json_object_set_new(o, "ready", json_boolean(s->ready));
    http_reply_json(r, 200, o);
}

static void h_load(http_req *r, void *ud) {
    srv *s = ud;
    if (!srv_auth(s, r)) return;
    engine_stats st;
    engine_get_stats(s->eng, &st);
    http_reply_json(r, 200, json_pack("[{s:i, s:i, s:i, s:I}]", "dp_rank", 0, "num_reqs",
                                      st.running + st.queued, "num_waiting_reqs", st.queued,
                                      "num_tokens", (json_int_t)st.used_tokens));
}

static void h_flush(http_req *r, void *ud) {
    srv *s = ud;
    if (!srv_auth(s, r) || !ready_or_503(s, r)) return;
    static const char ok[] = "Cache flushed.\nPlease check backend logs for more details. (When "
                             "there are running or waiting requests, the operation will not be "
                             "performed.)\n";
    static const char busy[] = "Cache not flushed: requests are running or waiting.\n";
    if (engine_flush_cache(s->eng) == 0) http_reply(r, 200, "text/plain", ok, sizeof ok - 1);
    else http_reply(r, 400, "text/plain", busy, sizeof busy - 1);
}

static void h_abort(http_req *r, void *ud) {
    srv *s = ud;
    if (!srv_auth(s, r)) return;
    json_t *b = http_req_json(r);
    if (!b) return;
    srv_err e = {0};
    const char *rid = NULL;
    bool all = false;
    if (srv_get_str(b, "rid", &rid, &e) || srv_get_bool(b, "abort_all", &all, &e)) {
        json_decref(b);
        srv_reply_err(r, &e);
        return;
    }
    if (all) srv_abort_all(s);
    else if (rid) engine_abort_rid(s->eng, rid);
    json_decref(b);
    if (!all && !rid) {
        http_reply_error(r, 400, NULL, "rid", NULL, "rid or abort_all is required");
        return;
    }
    http_reply(r, 200, "application/json", "{}", 2);
}

static void h_tokenize(http_req *r, void *ud) {
    srv *s = ud;
    if (!srv_auth(s, r)) return;
    json_t *b = http_req_json(r);
    if (!b) return;
    srv_err e = {0};
    const char *prompt = NULL;
    bool add_special = true;
    srv_prompt p = {0};
    engine_stats st;
    engine_get_stats(s->eng, &st);
    if (srv_get_str(b, "prompt", &prompt, &e) ||
        srv_get_bool(b, "add_special_tokens", &add_special, &e) ||
        (!prompt && srv_fail(&e, 400, "prompt", "prompt (a string) is required")) ||
        srv_tokenize_prompt(s, prompt, json_string_length(json_object_get(b, "prompt")),
                            add_special, &p, "prompt", &e)) {
        json_decref(b);
        srv_reply_err(r, &e);
        return;
    }
    json_decref(b);
    json_t *ids = json_array();
    for (int64_t i = 0; i < p.n; i++) json_array_append_new(ids, json_integer(p.ids[i]));
    free(p.ids), free(p.text);
    http_reply_json(r, 200, json_pack("{s:I, s:i, s:o}", "count", (json_int_t)p.n,
                                      "max_model_len", st.context_length, "tokens", ids));
}

static void h_detokenize(http_req *r, void *ud) {
    srv *s = ud;
    if (!srv_auth(s, r)) return;
    json_t *b = http_req_json(r);
    if (!b) return;
    srv_err e = {0};
    int32_t *ids = NULL;
    int64_t n = 0;
    const json_t *toks = json_object_get(b, "tokens");
    if (!s->tok) srv_fail(&e, 400, "tokens", "the server runs with --skip-tokenizer-init");
    else if (!toks) srv_fail(&e, 400, "tokens", "tokens (a list of ids) is required");
    else srv_parse_ids(toks, "tokens", (int)tok_vocab_size(s->tok), &ids, &n, &e);
    json_decref(b);
    if (e.status) {
        free(ids);
        srv_reply_err(r, &e);
        return;
    }
    size_t len = 0;
    char *text = tok_decode(s->tok, ids, (size_t)n, false, &len);
    free(ids);
    if (!text) {
        http_reply_error(r, 500, NULL, NULL, NULL, "out of memory");
        return;
    }
    json_t *o = json_pack("{s:s%}", "prompt", text, len);
    free(text);
    http_reply_json(r, 200, o);
}

static void h_metrics(http_req *r, void *ud) {
    srv *s = ud;
    engine_stats st;
    engine_get_stats(s->eng, &st);
    char *text = srv_metrics_render(&s->metrics, &st, s->model_name);
    if (!text) {
        http_reply_error(r, 500, NULL, NULL, NULL, "out of memory");
        return;
    }
    http_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
    free(text);
}

int srv_add_info_routes(srv *s) {
    http_server *h = s->http;
    int rc = 0;
    rc |= http_server_route(h, "GET", "/v1/models", h_models, s);
    rc |= http_server_route(h, "GET", "/v1/models/*", h_model, s);
    rc |= http_server_route(h, "GET", "/health", h_health, s);
    rc |= http_server_route(h, "GET", "/health_generate", h_health, s);
    rc |= http_server_route(h, "GET", "/get_model_info", h_model_info, s);
    rc |= http_server_route(h, "GET", "/get_server_info", h_server_info, s);
    rc |= http_server_route(h, "GET", "/get_load", h_load, s);
    rc |= http_server_route(h, "GET", "/flush_cache", h_flush, s);
    rc |= http_server_route(h, "POST", "/flush_cache", h_flush, s);
    rc |= http_server_route(h, "POST", "/abort_request", h_abort, s);
    rc |= http_server_route(h, "POST", "/tokenize", h_tokenize, s);
    rc |= http_server_route(h, "POST", "/detokenize", h_detokenize, s);
    if (s->args.enable_metrics) rc |= http_server_route(h, "GET", "/metrics", h_metrics, s);
    return rc ? -1 : 0;
}
