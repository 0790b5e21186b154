/* What the files of src/server/ share: the server state, the job (one HTTP request turned into
 * one engine submission per prompt), request parsing helpers and the metrics collector.
 *
 * Threads: everything here lives on the HTTP loop thread. Engine events are read on that
 * thread too (the engine's eventfd is watched by the loop), so no state here takes a lock; the
 * scheduler thread only appends to the engine's outbox and never waits on us.
 * Ownership: a job owns its http_req until it replies, and lives until both its reply is done
 * and every engine handle it submitted has reported handle_done. */
#ifndef SGLC_SERVER_SRV_INTERNAL_H
#define SGLC_SERVER_SRV_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/server_args.h"
#include "http/http_server.h"
#include "runtime/engine.h"
#include "tokenizer/tokenizer.h"

/* ---- metrics (srv_metrics.c) ---- */
#define SRV_HIST_MAX 32
typedef struct {
    const double *bounds;
    int n_bounds;
    uint64_t counts[SRV_HIST_MAX + 1]; /* per bucket (not cumulative); the last is +Inf */
    double sum;
    uint64_t count;
} srv_hist;

typedef struct {
    uint64_t prompt_tokens, generation_tokens, cached_tokens, requests, aborted;
    srv_hist ttft, itl, e2e;
} srv_metrics;

void srv_metrics_init(srv_metrics *m);
void srv_hist_observe(srv_hist *h, double v);
/* The Prometheus text exposition of m and the engine's gauges (caller frees). */
char *srv_metrics_render(const srv_metrics *m, const engine_stats *st, const char *model_name);

/* ---- the server ---- */
typedef struct srv_job srv_job;

typedef struct {
    uint64_t handle;
    srv_job *job;
    int prompt; /* which prompt of the job */
} srv_handle_slot;

typedef struct srv {
    server_args args;
    engine *eng;
    tokenizer *tok;       /* NULL with --skip-tokenizer-init */
    char *chat_template;  /* Jinja source, or NULL */
    char *bos_text, *eos_text;
    const char *model_name;
    http_server *http;
    struct event *ev_engine, *ev_sigterm, *ev_sigint;
    bool ready, failed, stopping;
    bool pd_decode; /* --disaggregation-mode decode: prompt logprobs are prefill's to report */
    long created;
    srv_metrics metrics;
    srv_handle_slot *slots; /* live engine handles */
    int n_slots, cap_slots;
    int n_jobs;             /* live jobs (for tests of leaks, and shutdown) */
    uint64_t id_rng;
} srv;

/* ---- jobs (srv_job.c) ---- */
typedef enum { JOB_NATIVE, JOB_COMPLETION, JOB_CHAT, JOB_HEALTH } srv_job_kind;

typedef struct {
    int32_t *ids;
    int n_ids, cap;
    float *lp;          /* [n_ids] when logprobs */
    int32_t *top_ids;   /* [n_ids][n_top] */
    float *top_lp;
    char *text;         /* decoded output, NUL-terminated */
    size_t len, cap_text;
    size_t sent;        /* bytes of text already streamed */
    int ids_sent;       /* ids already streamed (native output_ids / logprob tokens) */
    tok_detok *detok;
    engine_finish finish;
    int32_t matched_token;
    char *matched_stop;
    char error[256];
    int64_t prompt_tokens, completion_tokens, cached_tokens;
    int n_prompt_lp, prompt_lp_start;
    float *prompt_lp;
    int32_t *prompt_top_ids;
    float *prompt_top_lp;
    double t_first, t_last;
    bool done, started; /* started: the first stream chunk of this choice went out */
} srv_choice;

typedef struct {
    int32_t *ids;
    int64_t n;
    char *text; /* the prompt as text (for echo); NULL when ids were given */
} srv_prompt;

struct srv_job {
    srv *s;
    http_req *req;
    srv_job_kind kind;
    bool stream, gone, replied, failed;
    bool sse_started; /* the SSE reply has begun */
    int n_prompts, n;
    srv_prompt *prompts;
    uint64_t *handles; /* [n_prompts]; 0 once done or never submitted */
    int live;          /* handles not yet done */
    srv_choice *choices; /* [n_prompts * n], index = prompt * n + sample */
    int n_choices, n_done;
    engine_sampling sp;
    char **stop;
    int32_t *stop_ids;
    engine_logit_bias *bias;
    size_t max_stop_len;
    bool skip_special;
    /* output options */
    bool return_logprob, return_text_in_logprobs, echo, include_usage, continuous_usage;
    int top_logprobs_num;
    int logprob_start_len;
    bool batch;          /* native: the reply is a list */
    bool tools;          /* chat: tools were given */
    struct event *timer; /* /health: answers 503 if no token comes in time */
    engine_bootstrap *boot; /* [n_prompts] PD: bootstrap_host/port/room, or NULL */
    char id[64];
    char rid[64];
    long created;
    double t_start;
};

srv_job *srv_job_new(srv *s, http_req *req, srv_job_kind kind);
/* Frees the job's own memory (not the request). */
void srv_job_free(srv_job *j);
/* Submits every prompt. On failure replies the error itself (400/503) and the job is owned by
 * the engine's remaining events (or freed); returns -1. */
int srv_job_submit(srv_job *j);
/* Reads every pending engine event (loop thread). */
void srv_pump_events(srv *s);
/* Aborts every live handle of every job (shutdown). */
void srv_abort_all(srv *s);
/* Streaming: text of choice c that is safe to send (not a possible start of a stop string). */
size_t srv_choice_safe_len(const srv_job *j, const srv_choice *c);
/* The logprob of prompt position pos, when the engine computed one (position 0 never has one);
 * top ids/logprobs point into the choice (NULL without top_logprobs). */
bool srv_prompt_lp(const srv_job *j, const srv_choice *c, int64_t pos, float *lp,
                   const int32_t **top_ids, const float **top_lp);
void srv_new_id(srv *s, const char *prefix, char *out, size_t len);

/* The kind-specific replies (srv_native.c, srv_openai.c). progress: new output for choice c
 * (stream only); finish: every choice is done (stream: end it; otherwise the JSON reply). */
void srv_native_progress(srv_job *j, srv_choice *c);
void srv_native_finish(srv_job *j);
void srv_openai_progress(srv_job *j, srv_choice *c);
void srv_openai_finish(srv_job *j);

/* ---- parsing helpers (srv_parse.c) ---- */
typedef struct {
    int status;
    char param[64];
    char msg[512];
} srv_err;

int srv_fail(srv_err *e, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Optional fields: absent or null leaves *out alone (returns 0); a wrong type or range fails. */
int srv_get_bool(const json_t *o, const char *key, bool *out, srv_err *e);
/* temperature, top_p, top_k, min_p and the three penalties, as /generate's sampling_params
 * and the OpenAI bodies both spell them: absent keys keep s's values. */
int srv_parse_sampling_knobs(const json_t *o, engine_sampling *s, srv_err *e);
int srv_get_int(const json_t *o, const char *key, long lo, long hi, long *out, srv_err *e);
int srv_get_num(const json_t *o, const char *key, double lo, double hi, bool lo_open,
                double *out, srv_err *e);
int srv_get_str(const json_t *o, const char *key, const char **out, srv_err *e);
/* stop: a string or a list of strings; stop_token_ids; logit_bias ({"id": bias}). */
int srv_parse_stop(srv_job *j, const json_t *v, const char *param, srv_err *e);
int srv_parse_stop_ids(srv_job *j, const json_t *v, const char *param, srv_err *e);
int srv_parse_logit_bias(srv_job *j, const json_t *v, const char *param, srv_err *e);
/* A list of token ids (each an integer in [0, vocab)). */
int srv_parse_ids(const json_t *v, const char *param, int vocab, int32_t **ids, int64_t *n,
                  srv_err *e);
/* PD: bootstrap_host, bootstrap_port and bootstrap_room, each one value or (for a batch) a
 * list with one per prompt, as SGLang's load balancer sends them. Absent: j->boot stays NULL. */
int srv_parse_bootstrap(srv_job *j, const json_t *body, srv_err *e);
/* Refuses constrained decoding fields (regex, ebnf, json_schema, structural_tag). */
int srv_refuse_constraints(const json_t *o, srv_err *e);
/* Tokenizes text into a prompt (add_special: BOS as the vocabulary says). */
int srv_tokenize_prompt(srv *s, const char *text, size_t len, bool add_special, srv_prompt *p,
                        const char *param, srv_err *e);
void srv_reply_err(http_req *r, const srv_err *e);
/* Checks the API key; replies 401 and returns false when it is wrong or missing. */
bool srv_auth(srv *s, http_req *r);

/* ---- routes ---- */
void srv_route_generate(http_req *r, void *ud);
void srv_route_completions(http_req *r, void *ud);
void srv_route_chat(http_req *r, void *ud);
int srv_add_info_routes(srv *s);

/* Loads the chat template and bos/eos texts (srv_template.c). */
int srv_load_chat_template(srv *s, char *err, size_t err_len);

/* Shared by native and OpenAI replies: the text of a token for logprobs. */
json_t *srv_token_text(srv *s, int32_t id);

#endif
