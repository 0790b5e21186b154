/* OpenAI's POST /v1/completions and /v1/chat/completions with SGLang's extras: request checks
 * (every field typed and ranged, 400 naming the parameter), the chat template, and replies and
 * SSE chunks shaped exactly as SGLang sends them: chat streams open each choice with a role
 * delta, carry content deltas, close each choice with one empty-delta finish chunk, then a usage
 * chunk when stream_options.include_usage, then `data: [DONE]`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "chat/chat_template.h"
#include "server/srv_internal.h"

/* ---- replies ---- */

static json_t *finish_str(const srv_choice *c) {
    switch (c->finish) {
    case ENGINE_FINISH_STOP: return json_string("stop");
    case ENGINE_FINISH_LENGTH: return json_string("length");
    case ENGINE_FINISH_ABORT: return json_string("abort");
    case ENGINE_FINISH_ERROR: return json_string("abort");
    default: return json_null();
    }
}

static json_t *matched_stop(const srv_choice *c) {
    if (c->finish != ENGINE_FINISH_STOP) return json_null();
    if (c->matched_stop) return json_string(c->matched_stop);
    return c->matched_token >= 0 ? json_integer(c->matched_token) : json_null();
}

static json_t *usage(const srv_job *j) {
    int64_t prompt = 0, completion = 0, cached = 0;
    for (int i = 0; i < j->n_choices; i++) {
        const srv_choice *c = &j->choices[i];
        if (i % j->n == 0) prompt += c->prompt_tokens, cached += c->cached_tokens;
        completion += c->completion_tokens;
    }
    json_t *u = json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)prompt,
                          "completion_tokens", (json_int_t)completion, "total_tokens",
                          (json_int_t)(prompt + completion));
    json_object_set_new(u, "prompt_tokens_details",
                        j->s->args.enable_cache_report
                            ? json_pack("{s:I}", "cached_tokens", (json_int_t)cached)
                            : json_null());
    if (j->kind == JOB_CHAT) json_object_set_new(u, "reasoning_tokens", json_integer(0));
    return u;
}

static json_t *lp_value(float lp) { return isfinite(lp) ? json_real(lp) : json_real(-9999.0); }

static json_t *token_bytes(srv *s, int32_t id) {
    json_t *a = json_array();
    size_t len = 0;
    const uint8_t *p = s->tok ? tok_piece(s->tok, id, &len) : NULL;
    for (size_t i = 0; p && i < len; i++) json_array_append_new(a, json_integer(p[i]));
    return a;
}

/* Chat: {"content": [{token, logprob, bytes, top_logprobs: [...]}]} over ids [from, to). */
static json_t *chat_logprobs(srv_job *j, const srv_choice *c, int from, int to) {
    if (!j->return_logprob) return json_null();
    json_t *content = json_array();
    int k = j->top_logprobs_num;
    for (int i = from; i < to; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "token", srv_token_text(j->s, c->ids[i]));
        json_object_set_new(e, "logprob", lp_value(c->lp[i]));
        json_object_set_new(e, "bytes", token_bytes(j->s, c->ids[i]));
        json_t *top = json_array();
        for (int t = 0; t < k && c->top_ids; t++) {
            int32_t id = c->top_ids[(size_t)i * k + t];
            json_array_append_new(top, json_pack("{s:o, s:o, s:o}", "token",
                                                 srv_token_text(j->s, id), "logprob",
                                                 lp_value(c->top_lp[(size_t)i * k + t]), "bytes",
                                                 token_bytes(j->s, id)));
        }
        json_object_set_new(e, "top_logprobs", top);
        json_array_append_new(content, e);
    }
    return json_pack("{s:o}", "content", content);
}

static void add_completion_token(srv_job *j, json_t *tokens, json_t *lps, json_t *tops,
                                 json_t *offs, size_t *off, int32_t id, float lp, bool has_lp,
                                 const int32_t *top_ids, const float *top_lp) {
    json_t *t = srv_token_text(j->s, id);
    json_array_append_new(offs, json_integer((json_int_t)*off));
    *off += json_is_string(t) ? json_string_length(t) : 0;
    json_array_append_new(tokens, t);
    json_array_append_new(lps, has_lp ? lp_value(lp) : json_null());
    if (!top_ids) {
        json_array_append_new(tops, json_null());
        return;
    }
    json_t *d = json_object();
    for (int i = 0; i < j->top_logprobs_num; i++) {
        json_t *tt = srv_token_text(j->s, top_ids[i]);
        if (json_is_string(tt)) json_object_set_new(d, json_string_value(tt), lp_value(top_lp[i]));
        json_decref(tt);
    }
    json_array_append_new(tops, d);
}

/* Completions: {tokens, token_logprobs, top_logprobs, text_offset}; with_prompt adds the
 * echoed prompt's tokens first (the first one has no logprob). */
static json_t *completion_logprobs(srv_job *j, const srv_choice *c, int from, int to,
                                   bool with_prompt) {
    if (!j->return_logprob) return json_null();
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(),
           *offs = json_array();
    size_t off = 0;
    int k = j->top_logprobs_num;
    const srv_prompt *p = &j->prompts[(c - j->choices) / j->n];
    for (int64_t pos = 0; with_prompt && pos < p->n; pos++) {
        float lp = NAN;
        const int32_t *tids;
        const float *tlp;
        bool has = srv_prompt_lp(j, c, pos, &lp, &tids, &tlp);
        add_completion_token(j, tokens, lps, tops, offs, &off, p->ids[pos], lp, has, tids, tlp);
    }
    for (int i = from; i < to; i++)
        add_completion_token(j, tokens, lps, tops, offs, &off, c->ids[i], c->lp[i], true,
                             k && c->top_ids ? c->top_ids + (size_t)i * k : NULL,
                             c->top_lp ? c->top_lp + (size_t)i * k : NULL);
    return json_pack("{s:o, s:o, s:o, s:o}", "tokens", tokens, "token_logprobs", lps,
                     "top_logprobs", tops, "text_offset", offs);
}

static const char *echo_text(srv_job *j, const srv_choice *c, char **owned) {
    const srv_prompt *p = &j->prompts[(c - j->choices) / j->n];
    *owned = NULL;
    if (!j->echo) return "";
    if (p->text) return p->text;
    if (j->s->tok) *owned = tok_decode(j->s->tok, p->ids, (size_t)p->n, false, NULL);
    return *owned ? *owned : "";
}

static json_t *chunk_base(srv_job *j) {
    return json_pack("{s:s, s:s, s:I, s:s}", "id", j->id, "object",
                     j->kind == JOB_CHAT ? "chat.completion.chunk" : "text_completion", "created",
                     (json_int_t)j->created, "model", j->s->model_name);
}

static void send_chunk(srv_job *j, json_t *choice) {
    json_t *o = chunk_base(j);
    json_t *choices = json_array();
    json_array_append_new(choices, choice);
    json_object_set_new(o, "choices", choices);
    json_object_set_new(o, "usage", j->continuous_usage ? usage(j) : json_null());
    http_sse_send_json(j->req, o);
    json_decref(o);
}

static json_t *delta(const char *role, json_t *content) {
    json_t *d = json_object();
    json_object_set_new(d, "role", role ? json_string(role) : json_null());
    json_object_set_new(d, "content", content ? content : json_null());
    json_object_set_new(d, "reasoning_content", json_null());
    json_object_set_new(d, "tool_calls", json_null());
    return d;
}

static bool stream_begin(srv_job *j) {
    if (j->gone || !j->stream) return false;
    if (j->sse_started) return true;
    j->sse_started = true;
    return http_sse_start(j->req) == 0;
}

void srv_openai_progress(srv_job *j, srv_choice *c) {
    if (!stream_begin(j)) return;
    int idx = (int)(c - j->choices);
    if (c->finish == ENGINE_FINISH_ERROR) return; /* reported at the end */
    if (!c->started) {
        c->started = true;
        if (j->kind == JOB_CHAT) {
            send_chunk(j, json_pack("{s:i, s:o, s:n, s:n, s:n}", "index", idx, "delta",
                                    delta("assistant", json_string("")), "logprobs",
                                    "finish_reason", "matched_stop"));
        } else if (j->echo) {
            char *owned;
            const char *t = echo_text(j, c, &owned);
            send_chunk(j, json_pack("{s:i, s:s, s:o, s:n, s:n}", "index", idx, "text", t,
                                    "logprobs", completion_logprobs(j, c, 0, 0, true),
                                    "finish_reason", "matched_stop"));
            free(owned);
        }
    }
    size_t safe = srv_choice_safe_len(j, c);
    bool last = c->done;
    if (safe > c->sent || (last && j->kind == JOB_COMPLETION)) {
        json_t *text = json_stringn(c->text + c->sent, safe - c->sent);
        if (!text) text = json_string("");
        int from = c->ids_sent, to = c->n_ids;
        json_t *ch;
        if (j->kind == JOB_CHAT) {
            ch = json_pack("{s:i, s:o, s:o, s:n, s:n}", "index", idx, "delta", delta(NULL, text),
                           "logprobs", chat_logprobs(j, c, from, to), "finish_reason",
                           "matched_stop");
        } else {
            ch = json_pack("{s:i, s:o, s:o, s:o, s:o}", "index", idx, "text", text, "logprobs",
                           completion_logprobs(j, c, from, to, false), "finish_reason",
                           last ? finish_str(c) : json_null(), "matched_stop",
                           last ? matched_stop(c) : json_null());
        }
        send_chunk(j, ch);
        c->sent = safe;
        c->ids_sent = to;
    }
    if (last && j->kind == JOB_CHAT)
        send_chunk(j, json_pack("{s:i, s:o, s:n, s:o, s:o}", "index", idx, "delta",
                                delta(NULL, NULL), "logprobs", "finish_reason", finish_str(c),
                                "matched_stop", matched_stop(c)));
}

static void stream_finish(srv_job *j) {
    if (!stream_begin(j)) {
        http_stream_end(j->req);
        return;
    }
    for (int i = 0; i < j->n_choices; i++)
        if (j->choices[i].finish == ENGINE_FINISH_ERROR) {
            json_t *err = http_error_json(500, NULL, NULL, NULL, j->choices[i].error);
            http_sse_send_json(j->req, err);
            json_decref(err);
            break;
        }
    if (j->include_usage) {
        json_t *o = chunk_base(j);
        json_object_set_new(o, "choices", json_array());
        json_object_set_new(o, "usage", usage(j));
        http_sse_send_json(j->req, o);
        json_decref(o);
    }
    http_sse_send(j->req, "[DONE]", 6);
    http_stream_end(j->req);
}

void srv_openai_finish(srv_job *j) {
    if (j->stream) {
        stream_finish(j);
        return;
    }
    for (int i = 0; i < j->n_choices; i++)
        if (j->choices[i].finish == ENGINE_FINISH_ERROR) {
            http_reply_error(j->req, 500, NULL, NULL, NULL, "%s", j->choices[i].error);
            return;
        }
    json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "id", j->id, "object",
                          j->kind == JOB_CHAT ? "chat.completion" : "text_completion", "created",
                          (json_int_t)j->created, "model", j->s->model_name);
    json_t *choices = json_array();
    for (int i = 0; i < j->n_choices; i++) {
        srv_choice *c = &j->choices[i];
        json_t *ch;
        if (j->kind == JOB_CHAT) {
            json_t *msg = json_pack("{s:s, s:s%, s:n, s:n}", "role", "assistant", "content",
                                    c->text, c->len, "reasoning_content", "tool_calls");
            if (!msg) msg = json_pack("{s:s, s:s, s:n, s:n}", "role", "assistant", "content", "",
                                      "reasoning_content", "tool_calls");
            ch = json_pack("{s:i, s:o, s:o}", "index", i, "message", msg, "logprobs",
                           chat_logprobs(j, c, 0, c->n_ids));
        } else {
            char *owned;
            const char *pre = echo_text(j, c, &owned);
            size_t plen = strlen(pre);
            char *full = malloc(plen + c->len + 1);
            if (full) memcpy(full, pre, plen), memcpy(full + plen, c->text, c->len + 1);
            json_t *text = full ? json_stringn(full, plen + c->len) : NULL;
            free(full), free(owned);
            ch = json_pack("{s:i, s:o, s:o}", "index", i, "text", text ? text : json_string(""),
                           "logprobs", completion_logprobs(j, c, 0, c->n_ids, j->echo));
        }
        json_object_set_new(ch, "finish_reason", finish_str(c));
        json_object_set_new(ch, "matched_stop", matched_stop(c));
        json_array_append_new(choices, ch);
    }
    json_object_set_new(o, "choices", choices);
    json_object_set_new(o, "usage", usage(j));
    http_reply_json(j->req, 200, o);
}

/* ---- requests ---- */

/* The fields both endpoints share (sampling, streaming, SGLang's extras). */
static int parse_common(srv_job *j, const json_t *b, srv_err *e) {
    engine_sampling *s = &j->sp;
    long v;
    const char *str;
    if (srv_get_str(b, "model", &str, e) || srv_get_str(b, "user", &str, e)) return -1;
    if (srv_refuse_constraints(b, e)) return -1;
    static const char *const refused[] = {"lora_path",
                                          "session_params", "functions", "audio", "modalities",
                                          "prediction"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const json_t *x = json_object_get(b, refused[i]);
        if (x && !json_is_null(x))
            return srv_fail(e, 400, refused[i], "%s is not supported by this build", refused[i]);
    }
    v = 1;
    if (srv_get_int(b, "n", 1, 128, &v, e)) return -1;
    j->n = (int)v;
    if (srv_parse_sampling_knobs(b, s, e)) return -1;
    v = 0;
    if (srv_get_int(b, "min_tokens", 0, 1L << 30, &v, e)) return -1;
    s->min_new_tokens = (int)v;
    v = -1;
    const json_t *seed = json_object_get(b, "seed");
    if (seed && !json_is_null(seed)) {
        if (!json_is_integer(seed)) return srv_fail(e, 400, "seed", "seed must be an integer");
        s->has_seed = true;
        s->seed = (uint64_t)json_integer_value(seed);
    }
    if (srv_get_bool(b, "ignore_eos", &s->ignore_eos, e)) return -1;
    if (srv_get_bool(b, "no_stop_trim", &s->no_stop_trim, e)) return -1;
    if (srv_get_bool(b, "skip_special_tokens", &j->skip_special, e)) return -1;
    if (srv_get_bool(b, "stream", &j->stream, e)) return -1;
    const json_t *so = json_object_get(b, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so))
            return srv_fail(e, 400, "stream_options", "stream_options must be an object");
        if (!j->stream)
            return srv_fail(e, 400, "stream_options", "The 'stream_options' parameter is only "
                            "allowed when 'stream' is enabled.");
        if (srv_get_bool(so, "include_usage", &j->include_usage, e)) return -1;
        if (srv_get_bool(so, "continuous_usage_stats", &j->continuous_usage, e)) return -1;
    }
    if (srv_parse_stop(j, json_object_get(b, "stop"), "stop", e)) return -1;
    if (srv_parse_stop_ids(j, json_object_get(b, "stop_token_ids"), "stop_token_ids", e))
        return -1;
    if (srv_parse_logit_bias(j, json_object_get(b, "logit_bias"), "logit_bias", e)) return -1;
    const json_t *rid = json_object_get(b, "rid");
    if (rid && !json_is_null(rid)) {
        if (!json_is_string(rid) || json_string_length(rid) >= 48)
            return srv_fail(e, 400, "rid", "rid must be a string of at most 47 bytes");
        snprintf(j->rid, sizeof j->rid, "%s", json_string_value(rid));
    }
    return 0;
}

static int parse_max_tokens(srv_job *j, const json_t *b, const char *key, long *v, srv_err *e) {
    (void)j;
    const json_t *x = json_object_get(b, key);
    if (x && !json_is_null(x) && json_is_integer(x) && json_integer_value(x) < 0)
        return srv_fail(e, 400, key, "%s must be >= 0, got %lld", key,
                        (long long)json_integer_value(x));
    return srv_get_int(b, key, 0, 1L << 30, v, e);
}

static int parse_completion(srv_job *j, const json_t *b, srv_err *e) {
    srv *s = j->s;
    j->sp.temperature = 1.0f;
    if (parse_common(j, b, e)) return -1;
    long v = 16;
    if (parse_max_tokens(j, b, "max_tokens", &v, e)) return -1;
    j->sp.max_new_tokens = (int)v;
    if (j->sp.min_new_tokens > j->sp.max_new_tokens)
        return srv_fail(e, 400, "min_tokens", "min_tokens must not exceed max_tokens");
    if (srv_get_bool(b, "echo", &j->echo, e)) return -1;
    v = -1;
    if (srv_get_int(b, "logprobs", 0, 20, &v, e)) return -1;
    if (v >= 0) j->return_logprob = true, j->top_logprobs_num = (int)v;
    if (j->echo && j->return_logprob) j->logprob_start_len = 0;
    long best_of = j->n;
    if (srv_get_int(b, "best_of", 1, 128, &best_of, e)) return -1;
    if (best_of != j->n)
        return srv_fail(e, 400, "best_of", "best_of must equal n (this build returns every "
                        "sample it generates)");
    const char *suffix = NULL;
    if (srv_get_str(b, "suffix", &suffix, e)) return -1;
    if (suffix && *suffix) return srv_fail(e, 400, "suffix", "suffix is not supported");
    const json_t *p = json_object_get(b, "prompt");
    if (!p || json_is_null(p)) return srv_fail(e, 400, "prompt", "prompt is required");
    /* a string, a list of strings, a list of ids, or a list of lists of ids */
    bool list = json_is_array(p) && json_array_size(p) > 0 &&
                (json_is_string(json_array_get(p, 0)) || json_is_array(json_array_get(p, 0)));
    if (json_is_array(p) && json_array_size(p) == 0)
        return srv_fail(e, 400, "prompt", "prompt must not be empty");
    if (!json_is_string(p) && !json_is_array(p))
        return srv_fail(e, 400, "prompt", "prompt must be a string, a list of strings, a list of "
                        "token ids or a list of lists of token ids");
    size_t n = list ? json_array_size(p) : 1;
    if (n > 4096) return srv_fail(e, 400, "prompt", "at most 4096 prompts per request");
    j->prompts = calloc(n, sizeof *j->prompts);
    if (!j->prompts) return srv_fail(e, 500, NULL, "out of memory");
    j->n_prompts = (int)n;
    engine_stats st;
    engine_get_stats(s->eng, &st);
    for (size_t i = 0; i < n; i++) {
        const json_t *x = list ? json_array_get(p, i) : p;
        srv_prompt *pr = &j->prompts[i];
        if (json_is_string(x)) {
            if (srv_tokenize_prompt(s, json_string_value(x), json_string_length(x), true, pr,
                                    "prompt", e))
                return -1;
        } else if (srv_parse_ids(x, "prompt", st.vocab_size, &pr->ids, &pr->n, e)) {
            return -1;
        }
        if (pr->n == 0) return srv_fail(e, 400, "prompt", "a prompt is empty");
    }
    return 0;
}

/* messages -> the shape the template expects: content parts joined into a string. */
static json_t *template_messages(const json_t *msgs, srv_err *e) {
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return srv_fail(e, 400, "messages", "messages must be a non-empty list"), NULL;
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const json_t *role = json_object_get(m, "role");
        if (!json_is_object(m) || !json_is_string(role)) {
            json_decref(out);
            return srv_fail(e, 400, "messages", "messages[%zu] must be an object with a string "
                            "'role'", i), NULL;
        }
        const char *r = json_string_value(role);
        if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant") &&
            strcmp(r, "tool") && strcmp(r, "developer") && strcmp(r, "function")) {
            json_decref(out);
            return srv_fail(e, 400, "messages", "messages[%zu]: unknown role '%s'", i, r), NULL;
        }
        json_t *copy = json_deep_copy(m);
        const json_t *content = json_object_get(m, "content");
        if (json_is_array(content)) {
            size_t k;
            json_t *part;
            size_t total = 0;
            json_array_foreach(content, k, part) {
                const json_t *t = json_object_get(part, "text");
                if (!json_is_string(json_object_get(part, "type")) ||
                    strcmp(json_string_value(json_object_get(part, "type")), "text") ||
                    !json_is_string(t)) {
                    json_decref(copy), json_decref(out);
                    return srv_fail(e, 400, "messages", "messages[%zu].content[%zu]: only text "
                                    "parts are supported (this build has no multimodal input)",
                                    i, k), NULL;
                }
                total += json_string_length(t);
            }
            char *buf = malloc(total + 1), *w = buf;
            json_array_foreach(content, k, part) {
                const json_t *t = json_object_get(part, "text");
                if (buf) memcpy(w, json_string_value(t), json_string_length(t));
                w += json_string_length(t);
            }
            if (buf) {
                json_object_set_new(copy, "content", json_stringn(buf, total));
                free(buf);
            }
        } else if (content && !json_is_string(content) && !json_is_null(content)) {
            json_decref(copy), json_decref(out);
            return srv_fail(e, 400, "messages", "messages[%zu].content must be a string, a list "
                            "of parts or null", i), NULL;
        }
        json_array_append_new(out, copy);
    }
    return out;
}

static int check_tools(const json_t *tools, srv_err *e) {
    if (!tools || json_is_null(tools)) return 0;
    if (!json_is_array(tools)) return srv_fail(e, 400, "tools", "tools must be a list");
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        const json_t *f = json_object_get(t, "function");
        if (!json_is_object(t) || !json_is_object(f) ||
            !json_is_string(json_object_get(f, "name")))
            return srv_fail(e, 400, "tools", "tools[%zu] must be {\"type\": \"function\", "
                            "\"function\": {\"name\": ...}}", i);
    }
    return 0;
}

static int parse_chat(srv_job *j, const json_t *b, srv_err *e) {
    srv *s = j->s;
    j->sp.temperature = 0.7f;
    if (parse_common(j, b, e)) return -1;
    bool logprobs = false;
    if (srv_get_bool(b, "logprobs", &logprobs, e)) return -1;
    long v = -1;
    if (srv_get_int(b, "top_logprobs", 0, 20, &v, e)) return -1;
    if (v >= 0 && !logprobs)
        return srv_fail(e, 400, "top_logprobs", "top_logprobs requires logprobs to be true");
    j->return_logprob = logprobs;
    j->top_logprobs_num = v > 0 ? (int)v : 0;
    long max_tokens = -1, mct = -1;
    if (parse_max_tokens(j, b, "max_tokens", &max_tokens, e)) return -1;
    if (parse_max_tokens(j, b, "max_completion_tokens", &mct, e)) return -1;
    if (max_tokens >= 0 && mct >= 0 && max_tokens != mct)
        return srv_fail(e, 400, "max_completion_tokens", "max_tokens and max_completion_tokens "
                        "disagree");
    if (mct >= 0) max_tokens = mct;
    const json_t *rf = json_object_get(b, "response_format");
    if (rf && !json_is_null(rf)) {
        const json_t *type = json_object_get(rf, "type");
        if (!json_is_object(rf) || !json_is_string(type))
            return srv_fail(e, 400, "response_format", "response_format must be an object with "
                            "a 'type'");
        if (strcmp(json_string_value(type), "text"))
            return srv_fail(e, 400, "response_format", "response_format %s: constrained decoding "
                            "is not supported by this build", json_string_value(type));
    }
    const json_t *tools = json_object_get(b, "tools");
    if (check_tools(tools, e)) return -1;
    const json_t *tc = json_object_get(b, "tool_choice");
    if (tc && !json_is_null(tc) && !json_is_string(tc) && !json_is_object(tc))
        return srv_fail(e, 400, "tool_choice", "tool_choice must be a string or an object");
    if (json_is_string(tc) && strcmp(json_string_value(tc), "none") &&
        strcmp(json_string_value(tc), "auto"))
        return srv_fail(e, 400, "tool_choice", "tool_choice '%s' needs a tool-call parser, "
                        "which this build lacks (use auto or none)", json_string_value(tc));
    if (json_is_object(tc))
        return srv_fail(e, 400, "tool_choice", "a named tool_choice needs constrained decoding, "
                        "which this build lacks");
    bool use_tools = json_is_array(tools) && json_array_size(tools) > 0 &&
                     !(json_is_string(tc) && !strcmp(json_string_value(tc), "none"));
    j->tools = use_tools;
    bool cont = false, add_gen = true;
    const json_t *ag = json_object_get(b, "add_generation_prompt");
    if (srv_get_bool(b, "continue_final_message", &cont, e)) return -1;
    if (srv_get_bool(b, "add_generation_prompt", &add_gen, e)) return -1;
    if (cont && ag && json_is_true(ag))
        return srv_fail(e, 400, "continue_final_message", "continue_final_message and "
                        "add_generation_prompt cannot both be true");
    if (cont) add_gen = false;
    const json_t *kw = json_object_get(b, "chat_template_kwargs");
    if (kw && !json_is_null(kw) && !json_is_object(kw))
        return srv_fail(e, 400, "chat_template_kwargs", "chat_template_kwargs must be an object");
    json_t *msgs = template_messages(json_object_get(b, "messages"), e);
    if (!msgs) return -1;
    if (cont) {
        const json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
        if (strcmp(json_string_value(json_object_get(last, "role")), "assistant")) {
            json_decref(msgs);
            return srv_fail(e, 400, "continue_final_message", "continue_final_message needs "
                            "the last message to be from the assistant");
        }
    }
    if (!s->tok) {
        json_decref(msgs);
        return srv_fail(e, 400, "messages", "chat needs the tokenizer, and the server runs with "
                        "--skip-tokenizer-init");
    }
    if (!s->chat_template) {
        json_decref(msgs);
        return srv_fail(e, 400, "messages", "the model has no chat template; start the server "
                        "with --chat-template");
    }
    chat_render_args ra = {.messages = msgs, .tools = use_tools ? tools : NULL,
                           .add_generation_prompt = add_gen, .continue_final_message = cont,
                           .bos_token = s->bos_text, .eos_token = s->eos_text,
                           .extra_kwargs = json_is_object(kw) ? kw : NULL};
    char *prompt = NULL, err[512] = "";
    size_t plen = 0;
    chat_status cs = chat_template_render(s->chat_template, &ra, &prompt, &plen, err, sizeof err);
    json_decref(msgs);
    if (cs != CHAT_OK)
        return srv_fail(e, 400, "messages", "%s%s", cs == CHAT_ERR_RAISED ? "" :
                        "chat template: ", err);
    j->prompts = calloc(1, sizeof *j->prompts);
    if (!j->prompts) return free(prompt), srv_fail(e, 500, NULL, "out of memory");
    j->n_prompts = 1;
    int rc = srv_tokenize_prompt(s, prompt, plen, false, &j->prompts[0], "messages", e);
    free(prompt);
    if (rc) return -1;
    if (max_tokens < 0) { /* as much as the context leaves */
        engine_stats st;
        engine_get_stats(s->eng, &st);
        max_tokens = st.context_length - j->prompts[0].n;
        if (max_tokens < 0) max_tokens = 0;
    }
    j->sp.max_new_tokens = (int)max_tokens;
    if (j->sp.min_new_tokens > j->sp.max_new_tokens)
        return srv_fail(e, 400, "min_tokens", "min_tokens must not exceed max_tokens");
    return 0;
}

static void openai_route(http_req *r, srv *s, srv_job_kind kind) {
    if (!srv_auth(s, r)) return;
    json_t *body = http_req_json(r);
    if (!body) return;
    srv_job *j = srv_job_new(s, r, kind);
    if (!j) {
        json_decref(body);
        http_reply_error(r, 500, NULL, NULL, NULL, "out of memory");
        return;
    }
    srv_new_id(s, kind == JOB_CHAT ? "chatcmpl-" : "cmpl-", j->id, sizeof j->id);
    srv_err e = {0};
    int rc = kind == JOB_CHAT ? parse_chat(j, body, &e) : parse_completion(j, body, &e);
    if (rc == 0) rc = srv_parse_bootstrap(j, body, &e);
    if (s->args.log_requests && rc == 0) {
        char *dump = json_dumps(body, JSON_COMPACT);
        log_info("request %s: %s %.*s", j->id, http_req_path(r),
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

void srv_route_completions(http_req *r, void *ud) { openai_route(r, ud, JOB_COMPLETION); }
void srv_route_chat(http_req *r, void *ud) { openai_route(r, ud, JOB_CHAT); }
