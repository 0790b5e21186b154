/* A request's side of a step: building it from the caller's input, turning its logits into the
 * next token (penalties, logit_bias, min_new_tokens, sampling, logprobs), deciding when it is
 * finished (eos, stop token ids, stop strings matched across token boundaries, length), and
 * reporting its tokens as engine events. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sched_internal.h"
#include "tokenizer/tokenizer.h"

static void *dup_array(const void *a, size_t n, size_t size) {
    if (!a || n == 0) return NULL;
    void *p = malloc(n * size);
    if (p) memcpy(p, a, n * size);
    return p;
}

sched_req *sched_req_new(uint64_t handle, int index, const char *rid, sched_group *g,
                         const int32_t *ids, int64_t n, const engine_sampling *sp,
                         uint64_t default_seed) {
    sched_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->handle = handle;
    r->index = index;
    snprintf(r->rid, sizeof r->rid, "%s", rid ? rid : "");
    r->group = g;
    r->sp = *sp;
    r->row = -1;
    r->pd_aux = -1;
    r->prefilling = true;
    r->n_prompt = r->n_tokens = n;
    int64_t cap = n + sp->max_new_tokens;
    r->tokens = malloc((size_t)cap * sizeof(int32_t));
    bool ok = r->tokens != NULL;
    if (ok) memcpy(r->tokens, ids, (size_t)n * sizeof(int32_t));
    if (sp->n_stop > 0) {
        r->stop = calloc((size_t)sp->n_stop, sizeof(char *));
        ok = ok && r->stop;
        for (int i = 0; ok && i < sp->n_stop; i++) {
            r->stop[i] = strdup(sp->stop[i]);
            ok = r->stop[i] != NULL;
            int len = ok ? (int)strlen(r->stop[i]) : 0;
            if (len > r->max_stop_len) r->max_stop_len = len;
        }
    }
    r->stop_ids = dup_array(sp->stop_token_ids, (size_t)sp->n_stop_token_ids, sizeof(int32_t));
    r->bias = dup_array(sp->logit_bias, (size_t)sp->n_logit_bias, sizeof(engine_logit_bias));
    ok = ok && (sp->n_stop_token_ids == 0 || r->stop_ids) && (sp->n_logit_bias == 0 || r->bias);
    r->sp.stop = NULL, r->sp.stop_token_ids = NULL, r->sp.logit_bias = NULL;
    if (sp->return_logprob) {
        size_t k = (size_t)(sp->top_logprobs_num > 0 ? sp->top_logprobs_num : 0);
        size_t m = (size_t)(sp->max_new_tokens > 0 ? sp->max_new_tokens : 1);
        r->out_lp = malloc(m * sizeof(float));
        ok = ok && r->out_lp;
        if (k) {
            r->out_top_ids = malloc(m * k * sizeof(int32_t));
            r->out_top_lp = malloc(m * k * sizeof(float));
            ok = ok && r->out_top_ids && r->out_top_lp;
        }
        if (sp->logprob_start_len >= 0) {
            r->lp_start = sp->logprob_start_len > 0 ? sp->logprob_start_len : 1;
            size_t np = (size_t)n;
            r->prompt_lp = malloc(np * sizeof(float));
            ok = ok && r->prompt_lp;
            if (k) {
                r->prompt_top_ids = malloc(np * k * sizeof(int32_t));
                r->prompt_top_lp = malloc(np * k * sizeof(float));
                ok = ok && r->prompt_top_ids && r->prompt_top_lp;
            }
        }
    } else {
        r->sp.logprob_start_len = -1;
        r->sp.top_logprobs_num = 0;
    }
    /* n samples of one seeded request differ from each other, yet each is reproducible */
    uint64_t seed = sp->has_seed ? sp->seed : default_seed ^ (handle * 0x9e3779b97f4a7c15ull);
    sampler_rng_seed(&r->rng, seed + (uint64_t)index * 0x632be59bd9b4e019ull);
    if (!ok) {
        sched_req_free(r);
        return NULL;
    }
    return r;
}

void sched_req_free(sched_req *r) {
    if (!r) return;
    for (int i = 0; r->stop && i < r->sp.n_stop; i++) free(r->stop[i]);
    free(r->stop), free(r->stop_ids), free(r->bias), free(r->tokens);
    free(r->out_lp), free(r->out_top_ids), free(r->out_top_lp);
    free(r->prompt_lp), free(r->prompt_top_ids), free(r->prompt_top_lp);
    free(r);
}

static bool is_eos(const sched *s, int32_t t) {
    for (int i = 0; i < s->n_eos; i++)
        if (s->eos_ids[i] == t) return true;
    return false;
}

void sched_sample(sched *s, sched_req *r, const float *logits) {
    const engine_sampling *sp = &r->sp;
    int64_t n_out = r->n_tokens - r->n_prompt;
    bool penalise = sp->frequency_penalty != 0 || sp->presence_penalty != 0 ||
                    (sp->repetition_penalty != 1.0f && sp->repetition_penalty > 0);
    bool mask_stop = n_out < sp->min_new_tokens;
    const float *l = logits;
    if (penalise || sp->n_logit_bias || mask_stop) {
        float *b = s->row_buf;
        memcpy(b, logits, (size_t)s->vocab * sizeof(float));
        if (penalise) {
            sampler_penalties pen = {sp->frequency_penalty, sp->presence_penalty,
                                     sp->repetition_penalty};
            sampler_apply_penalties(b, s->vocab, &pen, r->tokens, r->n_prompt,
                                    r->tokens + r->n_prompt, n_out, s->marks);
        }
        for (int i = 0; i < sp->n_logit_bias; i++) b[r->bias[i].token] += r->bias[i].bias;
        if (mask_stop) { /* min_new_tokens: nothing that would end the request yet */
            for (int i = 0; i < s->n_eos; i++) b[s->eos_ids[i]] = -INFINITY;
            for (int i = 0; i < sp->n_stop_token_ids; i++) b[r->stop_ids[i]] = -INFINITY;
        }
        l = b;
    }
    sampler_params p = {sp->temperature, sp->top_k, sp->top_p, sp->min_p};
    int32_t tok = sampler_sample(l, s->vocab, &p, &r->rng, s->work);
    if (sp->return_logprob && n_out < sp->max_new_tokens) {
        int k = sp->top_logprobs_num;
        r->out_lp[n_out] = sampler_logprobs(l, s->vocab, tok, k,
                                            k ? r->out_top_ids + n_out * k : NULL,
                                            k ? r->out_top_lp + n_out * k : NULL, s->work);
    }
    r->tokens[r->n_tokens++] = tok;
}

void sched_prompt_logprob(sched *s, sched_req *r, int64_t pos, const float *logits) {
    int64_t i = pos + 1 - r->lp_start;
    int k = r->sp.top_logprobs_num;
    if (i < 0 || pos + 1 >= r->n_prompt) return;
    r->prompt_lp[i] = sampler_logprobs(logits, s->vocab, r->tokens[pos + 1], k,
                                       k ? r->prompt_top_ids + i * k : NULL,
                                       k ? r->prompt_top_lp + i * k : NULL, s->work);
}

/* Looks for a stop string ending in the last token's bytes. The tail of the output (enough
 * tokens to cover the longest stop string plus the new piece) is rebuilt from token pieces, so
 * a stop string split across tokens is found at the token that completes it. */
static int match_stop_string(sched *s, sched_req *r, int *trim) {
    if (!r->sp.n_stop || !s->tok) return -1;
    int64_t first = r->n_prompt, last = r->n_tokens - 1;
    size_t last_len = 0, need;
    if (!tok_piece(s->tok, r->tokens[last], &last_len)) return -1;
    need = last_len + (size_t)r->max_stop_len;
    /* walk back until enough bytes are covered */
    int64_t from = last;
    size_t total = last_len;
    while (from > first && total < need) {
        size_t len = 0;
        tok_piece(s->tok, r->tokens[from - 1], &len);
        total += len;
        from--;
    }
    if (total > (size_t)s->stop_buf_cap) return -1; /* bounded by validation at submit */
    size_t pos = 0;
    for (int64_t i = from; i <= last; i++) {
        size_t len = 0;
        const uint8_t *p = tok_piece(s->tok, r->tokens[i], &len);
        if (p) memcpy(s->stop_buf + pos, p, len);
        pos += len;
    }
    /* bytes after the earliest stop match are trimmed: (tail bytes) - (match start) */
    for (int k = 0; k < r->sp.n_stop; k++) {
        size_t sl = strlen(r->stop[k]);
        if (sl == 0 || sl > pos) continue;
        size_t start = pos - last_len >= sl ? pos - last_len - sl + 1 : 0;
        for (size_t j = start; j + sl <= pos; j++)
            if (!memcmp(s->stop_buf + j, r->stop[k], sl)) {
                *trim = (int)(pos - j);
                return k;
            }
    }
    return -1;
}

engine_finish sched_check_finish(sched *s, sched_req *r, int32_t *matched_token,
                                 const char **matched_stop, int *trim) {
    int64_t n_out = r->n_tokens - r->n_prompt;
    int32_t t = r->tokens[r->n_tokens - 1];
    *matched_token = -1, *matched_stop = NULL, *trim = 0;
    if (n_out >= r->sp.min_new_tokens) {
        for (int i = 0; i < r->sp.n_stop_token_ids; i++)
            if (r->stop_ids[i] == t) {
                *matched_token = t;
                return ENGINE_FINISH_STOP;
            }
        if (!r->sp.ignore_eos && is_eos(s, t)) {
            *matched_token = t;
            return ENGINE_FINISH_STOP;
        }
        int k = match_stop_string(s, r, trim);
        if (k >= 0) {
            *matched_stop = r->stop[k];
            if (r->sp.no_stop_trim) *trim = 0;
            return ENGINE_FINISH_STOP;
        }
    }
    if (n_out >= r->sp.max_new_tokens || r->n_tokens >= s->cfg.context_length)
        return ENGINE_FINISH_LENGTH;
    return ENGINE_FINISH_NONE;
}

void sched_emit(sched *s, sched_req *r, engine_finish finish, int32_t matched_token,
                const char *matched_stop, int trim, const char *error) {
    engine_event ev;
    memset(&ev, 0, sizeof ev);
    ev.handle = r->handle;
    snprintf(ev.rid, sizeof ev.rid, "%s", r->rid);
    ev.index = r->index;
    int64_t from = r->n_emitted, n_out = r->n_tokens - r->n_prompt;
    ev.n_ids = (int)(n_out - from);
    int k = r->sp.top_logprobs_num;
    bool oom = false;
    if (ev.n_ids > 0) {
        ev.ids = dup_array(r->tokens + r->n_prompt + from, (size_t)ev.n_ids, sizeof(int32_t));
        oom |= !ev.ids;
        if (r->out_lp) {
            ev.logprobs = dup_array(r->out_lp + from, (size_t)ev.n_ids, sizeof(float));
            oom |= !ev.logprobs;
            if (k) {
                ev.n_top = k;
                ev.top_ids = dup_array(r->out_top_ids + from * k, (size_t)ev.n_ids * k, 4);
                ev.top_logprobs = dup_array(r->out_top_lp + from * k, (size_t)ev.n_ids * k, 4);
                oom |= !ev.top_ids || !ev.top_logprobs;
            }
        }
    }
    if (from == 0 && r->prompt_lp && r->prompt_lp_done) {
        ev.prompt_lp_start = r->lp_start;
        ev.n_prompt_lp = r->n_prompt > r->lp_start ? (int)(r->n_prompt - r->lp_start) : 0;
        ev.n_top = k;
        if (ev.n_prompt_lp) {
            ev.prompt_logprobs = dup_array(r->prompt_lp, (size_t)ev.n_prompt_lp, sizeof(float));
            oom |= !ev.prompt_logprobs;
            if (k) {
                ev.prompt_top_ids = dup_array(r->prompt_top_ids, (size_t)ev.n_prompt_lp * k, 4);
                ev.prompt_top_logprobs =
                    dup_array(r->prompt_top_lp, (size_t)ev.n_prompt_lp * k, 4);
                oom |= !ev.prompt_top_ids || !ev.prompt_top_logprobs;
            }
        }
    }
    r->n_emitted = n_out;
    ev.finish = finish;
    ev.matched_token = matched_token;
    ev.matched_stop = matched_stop ? strdup(matched_stop) : NULL;
    ev.stop_trim_bytes = trim;
    ev.prompt_tokens = r->n_prompt;
    ev.completion_tokens = n_out;
    ev.cached_tokens = r->cached_tokens;
    if (error) snprintf(ev.error, sizeof ev.error, "%s", error);
    if (oom && finish == ENGINE_FINISH_NONE) {
        engine_event_clear(&ev);
        r->n_emitted = from; /* try again with the next token */
        return;
    }
    if (finish != ENGINE_FINISH_NONE && r->group) {
        ev.handle_done = --r->group->refs == 0;
        if (ev.handle_done) free(r->group);
        r->group = NULL;
    }
    s->emit(s->emit_ctx, &ev);
}
