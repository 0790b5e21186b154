/* ServerArgs for `sglc launch_server`: every flag SGLang's launch_server takes that sglc knows,
 * with SGLang's names, defaults and derived settings.
 *
 * Promises:
 * - One table (server_args_table) describes every flag: name and aliases, type, default,
 *   the values that are valid at all, the values this build honours, and why it cannot honour
 *   the others. Parsing, --help, validation, refusals and the JSON dump all read that table, so
 *   a flag cannot be parsed and then silently ignored.
 * - A value that is not valid (wrong type, not a choice, out of range) is a usage error; a valid
 *   value this build cannot honour (--attention-backend ascend, --tp-size 16, --quantization fp8)
 *   is a refusal naming the flag and what this build has. Both mean exit status 2.
 * - Strings in server_args point into argv or at static defaults: keep argv alive.
 * - Not thread-safe while parsing; the result is plain data. */
#ifndef SGLC_CONFIG_SERVER_ARGS_H
#define SGLC_CONFIG_SERVER_ARGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* An optional number that was not given (SGLang's None). Floats use NAN. */
#define SERVER_ARGS_UNSET (-9223372036854775807L - 1)

typedef struct {
    /* model and tokenizer */
    const char *model_path;
    const char *tokenizer_path; /* default: model_path */
    const char *tokenizer_mode;
    bool skip_tokenizer_init;
    bool trust_remote_code;
    long context_length; /* UNSET: the model's max_position_embeddings */
    const char *dtype;
    const char *kv_cache_dtype;
    const char *quantization; /* NULL: none */
    const char *served_model_name; /* default: model_path */
    const char *chat_template;
    /* HTTP */
    const char *host;
    long port;
    const char *api_key;
    /* memory and scheduling */
    double mem_fraction_static; /* NAN: the runtime's heuristic */
    long max_running_requests;  /* UNSET: derived from the KV pool */
    long max_queued_requests;   /* UNSET: no limit */
    long max_total_tokens;      /* UNSET: from memory */
    long chunked_prefill_size;  /* UNSET: by memory (server_args_default_chunked_prefill); -1 off */
    long max_prefill_tokens;
    const char *schedule_policy;
    double schedule_conservativeness;
    bool disable_radix_cache;
    long page_size;
    bool enable_mixed_chunk;
    /* runtime */
    const char *device;            /* NULL: auto (cpu here) */
    const char *attention_backend; /* NULL: auto (torch_native here) */
    long threads;                  /* sglc's own: compute threads; 0: the physical cores */
    long random_seed;              /* resolved: a random value in [0, 2^30] when not given */
    long stream_interval;
    double watchdog_timeout;
    bool skip_server_warmup;
    bool disable_cuda_graph;
    /* logging and metrics */
    const char *log_level;
    bool log_requests;
    long log_requests_level;
    long decode_log_interval;
    bool enable_metrics;
    bool enable_cache_report;
    /* parallelism */
    long tp_size;
    long dp_size;
    long ep_size;
    long pp_size;
    long nnodes;
    long node_rank;
    const char *dist_init_addr;
    bool enable_dp_attention;
    bool enable_deepep_moe; /* deprecated in SGLang: sets moe_a2a_backend = deepep */
    const char *moe_a2a_backend;
    const char *deepep_mode;
    const char *speculative_algorithm;
    /* PD disaggregation */
    const char *disaggregation_mode; /* "null", "prefill", "decode" */
    long disaggregation_bootstrap_port;
    const char *disaggregation_transfer_backend;
    long disaggregation_decode_tp; /* UNSET: prefill mode makes it tp_size */
    long disaggregation_decode_dp; /* UNSET: prefill mode makes it dp_size */
    long num_reserved_decode_tokens;
} server_args;

typedef enum { SA_STR, SA_INT, SA_FLOAT, SA_BOOL } server_arg_type;

/* One flag. Value sets ("valid", "honoured") are '|'-separated alternatives; for numbers an
 * alternative may be a range "lo..hi" with either end left open ("1.." or "..65535"). */
typedef struct {
    const char *name;      /* "model-path"; the field is the same with '_' */
    const char *aliases;   /* other names SGLang accepts, '|'-separated, or NULL */
    server_arg_type type;
    size_t offset;         /* of the field in server_args */
    const char *def;       /* default as text; NULL: None */
    const char *valid;     /* values accepted at all; NULL: any of the type */
    const char *honoured;  /* values this build honours; NULL: every valid value. BOOL: "false"
                            * means only the default is honoured */
    const char *refusal;   /* why other values cannot be honoured */
    const char *help;
} server_arg_spec;

const server_arg_spec *server_args_table(int *n);

/* Sets every field to its default (no random seed yet, nothing derived). */
void server_args_defaults(server_args *out);

/* Parses argv[1..argc) (argv[0], the command, is skipped): `--flag value`, `--flag=value`,
 * dashes or underscores, SGLang's aliases (--model, --tp, ...); boolean flags take no value. Then
 * validates, derives SGLang's settings (see server_args_derive), and refuses what this build
 * cannot honour. Returns 0; 1 when --help was printed (to stdout); 2 on a usage error or a
 * refusal, with the reason in err (one line per refused flag, each naming it). */
int server_args_parse(int argc, char **argv, server_args *out, char *err, size_t err_len);

/* SGLang's derived settings: tokenizer_path and served_model_name default to model_path;
 * enable_deepep_moe sets moe_a2a_backend=deepep; deepep forces ep_size = tp_size; decode mode
 * disables the radix cache; prefill mode makes the decode TP/DP default to its own; the ascend
 * attention backend forces page_size 128; an unset random_seed gets a random value. */
void server_args_derive(server_args *a);

/* Refusals only (after derive): returns the number of flags this build cannot honour, with
 * one line each in err. */
int server_args_check_support(const server_args *a, char *err, size_t err_len);

/* SGLang's default chunked prefill size by memory: < 35 GB 2048, < 160 GB 8192, else 16384. */
long server_args_default_chunked_prefill(double mem_gb);

/* Every field by SGLang's field name (model_path, tp_size, ...); unset values are null. */
json_t *server_args_to_json(const server_args *a);

void server_args_print_help(void);

#endif
