/* SGLang's native POST /generate: text or input_ids (one or a batch), sampling_params with
 * SGLang's names, logprobs as [logprob, id, text|null] triples, and SSE streaming in which
 * `text` is cumulative and `output_ids` holds only the new ids. Also the reply of /health, which
 * is a one-token generation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "server/srv_internal.h"

static json_t *lp_triple(srv_job *j, float lp, int32_t id, bool has_lp) {
    json_t *t = json_array();
    json_array_append_new(t, has_lp && isfinite(lp) ? json_real(lp) : json_null());
    json_array_append_new(t, json_integer(id));
    json_array_append_new(t, j->return_text_in_logprobs ? srv_token_text(j->s, id) : json_null());
    return t;
}

static json_t *top_list(srv_job *j, const int32_t *ids, const float *lps, int k) {
    json_t *a = json_array();
    for (int i = 0; ids && i < k; i++) json_array_append_new(a, lp_triple(j, lps[i], ids[i], 1));
    return a;
}

static json_t *finish_reason(const srv_choice *c) {
    switch (c->finish) {
    case ENGINE_FINISH_STOP:
        return c->matched_stop ? json_pack("{s:s, s:s}", "type", "stop", "matched", c->matched_stop)
                               : json_pack("{s:s, s:i}", "type", "stop", "matched",
                                           (int)c->matched_token);
    case ENGINE_FINISH_LENGTH:
        return json_pack("{s:s, s:I}", "type", "length", "length", (json_int_t)c->n_ids);
    case ENGINE_FINISH_ABORT:
        return json_pack("{s:s, s:s, s:i, s:s}", "type", "abort", "message",
                         c->error[0] ? c->error : "aborted", "status_code", 400, "err_type",
                         "BadRequestError");
    case ENGINE_FINISH_ERROR:
        return json_pack("{s:s, s:s, s:i, s:s}", "type", "abort", "message", c->error,
                         "status_code", 500, "err_type", "InternalServerError");
    default:
        return json_null();
    }
}

static json_t *meta_info(srv_job *j, srv_choice *c) {
    json_t *m = json_pack("{s:s, s:I, s:I, s:I, s:s}", "id", j->rid[0] ? j->rid : j->id,
                          "prompt_tokens", (json_int_t)c->prompt_tokens, "completion_tokens",
                          (json_int_t)c->completion_tokens, "cached_tokens",
                          (json_int_t)c->cached_tokens, "weight_version", "default");
    json_object_set_new(m, "finish_reason", finish_reason(c));
    if (c->done) json_object_set_new(m, "e2e_latency", json_real(time_now_s() - j->t_start));
    if (j->return_logprob) {
        int k = j->top_logprobs_num;
        json_t *in = json_array(), *in_top = json_array(), *out = json_array(),
               *out_top = json_array();
        int p = (int)(c - j->choices) / j->n;
        const srv_prompt *pr = &j->prompts[p];
        int64_t first = j->s->pd_decode ? pr->n : j->logprob_start_len;
        for (int64_t pos = first; pos >= 0 && pos < pr->n; pos++) {
            float lp = NAN;
            const int32_t *tids;
            const float *tlp;
            bool has = srv_prompt_lp(j, c, pos, &lp, &tids, &tlp);
            json_array_append_new(in, lp_triple(j, lp, pr->ids[pos], has));
            if (k) json_array_append_new(in_top, tids ? top_list(j, tids, tlp, k) : json_null());
        }
        for (int i = 0; i < c->n_ids; i++) {
            json_array_append_new(out, lp_triple(j, c->lp ? c->lp[i] : NAN, c->ids[i], c->lp));
            if (k)
                json_array_append_new(out_top, top_list(j, c->top_ids + (size_t)i * k,
                                                        c->top_lp + (size_t)i * k, k));
        }
        json_object_set_new(m, "input_token_logprobs", in);
        json_object_set_new(m, "output_token_logprobs", out);
        json_object_set_new(m, "input_top_logprobs", in_top);
        json_object_set_new(m, "output_top_logprobs", out_top);
    }
    return m;
}

static json_t *choice_json(srv_job *j, srv_choice *c, size_t text_len, int ids_from) {
    json_t *o = json_object();
    if (j->s->tok) json_object_set_new(o, "text", json_stringn(c->text, text_len));
    json_t *ids = json_array();
    for (int i = ids_from; i < c->n_ids; i++) json_array_append_new(ids, json_integer(c->ids[i]));
    json_object_set_new(o, "output_ids", ids);
    json_object_set_new(o, "meta_info", meta_info(j, c));
    if (j->batch || j->n > 1) json_object_set_new(o, "index", json_integer(c - j->choices));
    return o;
}

static bool stream_begin(srv_job *j) {
    if (j->gone) return false;
    if (j->sse_started) return true;
    j->sse_started = true;
    return http_sse_start(j->req) == 0;
}

void srv_native_progress(srv_job *j, srv_choice *c) {
    if (!stream_begin(j)) return;
    size_t safe = srv_choice_safe_len(j, c);
    if (!c->done && safe == c->sent && c->ids_sent == c->n_ids) return;
    json_t *o = choice_json(j, c, safe, c->ids_sent);
    c->sent = safe;
    c->ids_sent = c->n_ids;
    http_sse_send_json(j->req, o);
    json_decref(o);
}

void srv_native_finish(srv_job *j) {
    if (j->kind == JOB_HEALTH) {
        srv_choice *c = &j->choices[0];
        if (c->finish == ENGINE_FINISH_ERROR) http_reply(j->req, 503, "text/plain", "", 0);
        else http_reply(j->req, 200, "text/plain", "", 0);
        return;
    }
    if (j->stream) {
        if (stream_begin(j)) http_sse_send(j->req, "[DONE]", 6);
        http_stream_end(j->req);
        return;
    }
    for (int i = 0; i < j->n_choices; i++)
        if (j->choices[i].finish == ENGINE_FINISH_ERROR) {
            http_reply_error(j->req, 500, NULL, NULL, NULL, "%s", j->choices[i].error);
            return;
        }
    json_t *body;
    if (!j->batch && j->n == 1) {
        body = choice_json(j, &j->choices[0], j->choices[0].len, 0);
    } else {
        body = json_array();
        for (int i = 0; i < j->n_choices; i++)
            json_array_append_new(body, choice_json(j, &j->choices[i], j->choices[i].len, 0));
    }
    http_reply_json(j->req, 200, body);
}

/* sampling_params of /generate; unknown keys are refused so a typo is not silently ignored. */
static int parse_sampling(srv_job *j, const json_t *sp, srv_err *e) {
    static const char *const known[] = {
        "max_new_tokens", "min_new_tokens", "temperature", "top_p", "top_k", "min_p",
        "frequency_penalty", "presence_penalty", "repetition_penalty", "stop", "stop_token_ids",
        "ignore_eos", "skip_special_tokens", "spaces_between_special_tokens", "no_stop_trim", "n",
        "logit_bias", "sampling_seed", "regex", "ebnf", "json_schema", "structural_tag",
        "custom_params", "stream_interval"};
    if (!sp || json_is_null(sp)) return 0;
    if (!json_is_object(sp)) return srv_fail(e, 400, "sampling_params", "sampling_params must be "
                                             "an object (one for the whole batch)");
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)sp, key, val) {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) ok |= !strcmp(key, known[i]);
        if (!ok) return srv_fail(e, 400, key, "sampling_params: unknown parameter '%s'", key);
    }
    if (srv_refuse_constraints(sp, e)) return -1;
    long v;
    bool b;
    engine_sampling *s = &j->sp;
    v = s->max_new_tokens;
    if (srv_get_int(sp, "max_new_tokens", 0, 1L << 30, &v, e)) return -1;
    s->max_new_tokens = (int)v;
    v = s->min_new_tokens;
    if (srv_get_int(sp, "min_new_tokens", 0, 1L << 30, &v, e)) return -1;
    s->min_new_tokens = (int)v;
    if (s->min_new_tokens > s->max_new_tokens)
        return srv_fail(e, 400, "min_new_tokens", "min_new_tokens must not exceed max_new_tokens");
    if (srv_parse_sampling_knobs(sp, s, e)) return -1;
    if (srv_get_bool(sp, "ignore_eos", &s->ignore_eos, e)) return -1;
    if (srv_get_bool(sp, "no_stop_trim", &s->no_stop_trim, e)) return -1;
    if (srv_get_bool(sp, "skip_special_tokens", &j->skip_special, e)) return -1;
    if (srv_get_bool(sp, "spaces_between_special_tokens", &b, e)) return -1;
    v = 1;
    if (srv_get_int(sp, "n", 1, 128, &v, e)) return -1;
    j->n = (int)v;
    v = -1;
    if (srv_get_int(sp, "sampling_seed", 0, 1L << 62, &v, e)) return -1;
    if (v >= 0) s->has_seed = true, s->seed = (uint64_t)v;
    if (srv_parse_stop(j, json_object_get(sp, "stop"), "stop", e)) return -1;
    if (srv_parse_stop_ids(j, json_object_get(sp, "stop_token_ids"), "stop_token_ids", e))
        return -1;
    return srv_parse_logit_bias(j, json_object_get(sp, "logit_bias"), "logit_bias", e);
}

/* text: a string or a list of strings; input_ids: a list of ids or a list of lists. */
static int parse_inputs(srv_job *j, const json_t *body, srv_err *e) {
    srv *s = j->s;
    const json_t *text = json_object_get(body, "text"), *ids = json_object_get(body, "input_ids");
    if (text && json_is_null(text)) text = NULL;
    if (ids && json_is_null(ids)) ids = NULL;
    const json_t *embeds = json_object_get(body, "input_embeds");
    if (embeds && !json_is_null(embeds))
        return srv_fail(e, 400, "input_embeds", "input_embeds is not supported by this build");
    if (!text == !ids)
        return srv_fail(e, 400, text ? "input_ids" : "text", "Either text or input_ids should "
                        "be provided (exactly one of them)");
    const json_t *src = text ? text : ids;
    const char *param = text ? "text" : "input_ids";
    bool list = text ? json_is_array(text)
                     : json_is_array(ids) && json_array_size(ids) > 0 &&
                           json_is_array(json_array_get(ids, 0));
    size_t n = list ? json_array_size(src) : 1;
    if (list && n == 0) return srv_fail(e, 400, param, "%s: the batch is empty", param);
    if (n > 4096) return srv_fail(e, 400, param, "%s: at most 4096 prompts per request", param);
    j->batch = list;
    j->prompts = calloc(n, sizeof *j->prompts);
    if (!j->prompts) return srv_fail(e, 500, NULL, "out of memory");
    j->n_prompts = (int)n;
    engine_stats st;
    engine_get_stats(s->eng, &st);
    for (size_t i = 0; i < n; i++) {
        const json_t *v = list ? json_array_get(src, i) : src;
        srv_prompt *p = &j->prompts[i];
        if (text) {
            if (!json_is_string(v))
                return srv_fail(e, 400, "text", "text must be a string or a list of strings");
            if (srv_tokenize_prompt(s, json_string_value(v), json_string_length(v), true, p,
                                    "text", e))
                return -1;
        } else if (srv_parse_ids(v, "input_ids", st.vocab_size, &p->ids, &p->n, e)) {
            return -1;
        }
        if (p->n == 0) return srv_fail(e, 400, param, "%s: a prompt is empty", param);
    }
    return 0;
}

static int parse_generate(srv_job *j, const json_t *body, srv_err *e) {
    j->sp.max_new_tokens = 128;
    if (parse_inputs(j, body, e)) return -1;
    if (parse_sampling(j, json_object_get(body, "sampling_params"), e)) return -1;
    if (srv_get_bool(body, "stream", &j->stream, e)) return -1;
    if (srv_get_bool(body, "return_logprob", &j->return_logprob, e)) return -1;
    if (srv_get_bool(body, "return_text_in_logprobs", &j->return_text_in_logprobs, e)) return -1;
    long v = -1;
    if (srv_get_int(body, "logprob_start_len", -1, 1L << 30, &v, e)) return -1;
    j->logprob_start_len = (int)v;
    v = 0;
    if (srv_get_int(body, "top_logprobs_num", 0, 20, &v, e)) return -1;
    j->top_logprobs_num = (int)v;
    const json_t *rid = json_object_get(body, "rid");
    if (rid && !json_is_null(rid)) {
        if (json_is_array(rid) && json_array_size(rid) > 0) rid = json_array_get(rid, 0);
        if (!json_is_string(rid) || json_string_length(rid) >= sizeof j->rid - 8)
            return srv_fail(e, 400, "rid", "rid must be a string of at most 55 bytes");
        snprintf(j->rid, sizeof j->rid, "%s", json_string_value(rid));
    }
    static const char *const refused[] = {"lora_path",
                                          "token_ids_logprob", "session_params"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const json_t *x = json_object_get(body, refused[i]);
        if (x && !json_is_null(x))
            return srv_fail(e, 400, refused[i], "%s is not supported by this build", refused[i]);
    }
    bool hidden = false;
    if (srv_get_bool(body, "return_hidden_states", &hidden, e)) return -1;
    if (hidden)
        return srv_fail(e, 400, "return_hidden_states", "return_hidden_states is not supported");
    return 0;
}

void srv_route_generate(http_req *r, void *ud) {
    srv *s = ud;
    if (!srv_auth(s, r)) return;
    json_t *body = http_req_json(r);
    if (!body) return;
    srv_job *j = srv_job_new(s, r, JOB_NATIVE);
    if (!j) {
        json_decref(body);
        http_reply_error(r, 500, NULL, NULL, NULL, "out of memory");
        return;
    }
    srv_new_id(s, "", j->id, sizeof j->id);
    srv_err e = {0};
    int rc = parse_generate(j, body, &e);
    if (rc == 0) rc = srv_parse_bootstrap(j, body, &e);
    if (s->args.log_requests && rc == 0) {
        char *dump = json_dumps(body, JSON_COMPACT);
        log_info("request %s: /generate %.*s", j->id,
                 s->args.log_requests_level >= 3 ? 1 << 20 : 400, dump ? dump : "");
        free(dump);
    }
    json_decref(body);
    if (rc) {
        srv_reply_err(r, &e);
        srv_job_free(j);
        return;
    }
    srv_job_submit(j);
}
