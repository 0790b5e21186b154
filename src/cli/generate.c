/* `sglc generate`: one prompt through the model, the continuation streamed to stdout. It is the
 * shortest path from a model file to tokens (no scheduler, no server), which makes it the tool
 * for checking a model against reference logits (--logits-out) and for quick manual runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/common.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"

/* The text side of a generation: the model's tokenizer encodes --prompt and turns output ids
 * into streamed text. Without a tokenizer (--input-ids on a bare model), ids are printed. */
typedef struct {
    tokenizer *tok;
    tok_detok *detok;
    bool json;
} generate_text;

static int generate_text_open(generate_text *tx, model *m, const char *prompt, int32_t **ids,
                              int64_t *n) {
    memset(tx, 0, sizeof *tx);
    char err[1024] = "";
    if (m->gguf) tx->tok = tok_load_gguf(m->gguf, err, sizeof err);
    else tx->tok = tok_load_hf(m->path, err, sizeof err);
    if (!tx->tok && prompt) {
        fprintf(stderr, "sglc generate: --prompt needs the model's tokenizer: %s\n", err);
        return 2;
    }
    if (!tx->tok) log_warn("no tokenizer (%s): printing token ids", err);
    if (prompt) {
        size_t count;
        if (tok_encode(tx->tok, prompt, strlen(prompt), true, true, ids, &count) != 0) {
            fprintf(stderr, "sglc generate: out of memory tokenizing the prompt\n");
            return 1;
        }
        *n = (int64_t)count;
        if (count == 0) {
            fprintf(stderr, "sglc generate: the prompt tokenizes to nothing\n");
            return 2;
        }
    }
    return 0;
}

static void generate_text_begin(generate_text *tx, bool json) {
    tx->json = json;
    if (tx->tok && !json) tx->detok = tok_detok_new(tx->tok, true);
}

static void generate_text_push(generate_text *tx, int32_t id) {
    if (tx->json) return;
    if (!tx->tok) {
        printf("%d ", id);
    } else if (tx->detok) {
        size_t len;
        const char *piece = tok_detok_push(tx->detok, id, &len);
        if (piece) fwrite(piece, 1, len, stdout);
    }
    fflush(stdout);
}

static void print_ids(const int32_t *ids, int64_t n) {
    for (int64_t i = 0; i < n; i++) printf("%s%d", i ? ", " : "", ids[i]);
}

/* JSON string with the escapes JSON requires (the text is valid UTF-8 from the decoder). */
static void print_json_string(const char *s, size_t len) {
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') printf("\\n");
        else if (c == '\r') printf("\\r");
        else if (c == '\t') printf("\\t");
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void generate_text_end(generate_text *tx, const int32_t *in, int64_t n_in,
                              const int32_t *out, int64_t n_out) {
    if (!tx->json) {
        if (tx->detok) {
            size_t len;
            const char *rest = tok_detok_flush(tx->detok, &len);
            if (rest) fwrite(rest, 1, len, stdout);
        }
        printf("\n");
        return;
    }
    printf("{\"input_ids\": [");
    print_ids(in, n_in);
    printf("], \"output_ids\": [");
    print_ids(out, n_out);
    printf("], \"text\": ");
    size_t len = 0;
    char *text = tx->tok ? tok_decode(tx->tok, out, (size_t)n_out, true, &len) : NULL;
    print_json_string(text ? text : "", text ? len : 0);
    free(text);
    printf("}\n");
}

static void generate_text_close(generate_text *tx) {
    tok_detok_free(tx->detok);
    tok_free(tx->tok);
}

typedef struct {
    FILE *logits_out;
    int32_t vocab;
} logit_sink;

static int write_logits(logit_sink *s, const float *logits, int64_t rows) {
    if (!s->logits_out) return 0;
    size_t n = (size_t)rows * (size_t)s->vocab;
    return fwrite(logits, sizeof(float), n, s->logits_out) == n ? 0 : -1;
}

int cli_generate(int argc, char **argv) {
    const char *model_path = NULL, *input_ids = NULL, *prompt = NULL, *logits_path = NULL;
    const char *kv_dtype_name = NULL;
    const char *quantization = NULL;
    long max_new = 128, top_k = -1, seed = 0, threads = 0;
    double temperature = 1.0, top_p = 1.0, min_p = 0.0;
    bool json = false, ignore_eos = false;
    arg_spec specs[] = {
        {"--model-path", ARG_STR, &model_path, "GGUF file, Hugging Face folder or repo id", 0},
        {"--input-ids", ARG_STR, &input_ids, "prompt as token ids: 1,2,3 (no BOS added)", 0},
        {"--prompt", ARG_STR, &prompt, "prompt text (tokenized with the model's tokenizer)", 0},
        {"--max-new-tokens", ARG_INT, &max_new, "tokens to generate (128)", 0},
        {"--temperature", ARG_FLOAT, &temperature, "0 = greedy (1.0)", 0},
        {"--top-p", ARG_FLOAT, &top_p, "nucleus sampling mass (1.0)", 0},
        {"--top-k", ARG_INT, &top_k, "sample among the k best (-1 = all)", 0},
        {"--min-p", ARG_FLOAT, &min_p, "drop tokens below min_p x best probability (0)", 0},
        {"--seed", ARG_INT, &seed, "random seed (0)", 0},
        {"--ignore-eos", ARG_BOOL, &ignore_eos, "do not stop at the end-of-sequence token", 0},
        {"--json", ARG_BOOL, &json, "print {input_ids, output_ids, text} instead of text", 0},
        {"--logits-out", ARG_STR, &logits_path, "write float32 logits [positions][vocab]", 0},
        {"--threads", ARG_INT, &threads, "compute threads (default: CPUs available)", 0},
        {"--quantization", ARG_STR, &quantization, "w8a8_int8: quantize weights at load", 0},
        {"--kv-cache-dtype", ARG_STR, &kv_dtype_name, "auto (= fp16), fp32, fp16, bf16", 0},
    };
    int n_specs = (int)(sizeof specs / sizeof specs[0]);
    const char *pos[1];
    int n_pos;
    int rc = args_parse("generate", specs, n_specs, argc, argv, pos, 0, &n_pos);
    if (rc == 1) {
        args_usage("generate", "--model-path P (--input-ids 1,2,3 | --prompt TEXT) [options]",
                   specs, n_specs);
        return 0;
    }
    if (rc) return rc;
    if (!input_ids == !prompt) {
        fprintf(stderr, "sglc generate: give exactly one of --input-ids and --prompt\n");
        return 2;
    }
    if (max_new < 0 || temperature < 0 || top_p <= 0 || top_p > 1 || min_p < 0 || min_p > 1) {
        fprintf(stderr, "sglc generate: --max-new-tokens >= 0, --temperature >= 0, --top-p in "
                        "(0, 1], --min-p in [0, 1]\n");
        return 2;
    }
    dtype_t kv_type;
    if (cli_kv_dtype("generate", kv_dtype_name, &kv_type) != 0) return 2;
    int32_t *ids = NULL;
    int64_t n_prompt = 0;
    if (input_ids && (cli_parse_ids(input_ids, &ids, &n_prompt) != 0 || n_prompt == 0)) {
        fprintf(stderr, "sglc generate: --input-ids: expected a non-empty list like 1,2,3\n");
        return 2;
    }
    backend *be;
    model *m;
    rc = cli_open_model("generate", model_path, quantization, threads, &be, &m);
    if (rc) {
        free(ids);
        return rc;
    }
    generate_text tx;
    rc = generate_text_open(&tx, m, prompt, &ids, &n_prompt);
    if (rc) goto done_model;
    int32_t vocab = m->cfg.vocab_size;
    for (int64_t i = 0; i < n_prompt; i++)
        if (ids[i] < 0 || ids[i] >= vocab) {
            fprintf(stderr, "sglc generate: input id %d out of range [0, %d)\n", ids[i], vocab);
            rc = 2;
            goto done_text;
        }
    if (n_prompt + max_new > m->cfg.context_length) {
        if (n_prompt >= m->cfg.context_length) {
            fprintf(stderr, "sglc generate: prompt of %lld tokens does not fit the context length "
                            "%d\n", (long long)n_prompt, m->cfg.context_length);
            rc = 2;
            goto done_text;
        }
        max_new = m->cfg.context_length - n_prompt;
    }
    int64_t n_slots = n_prompt + max_new;
    model_kv kv;
    if (model_kv_alloc(m, be, &kv, n_slots, kv_type) != 0) {
        fprintf(stderr, "sglc generate: out of memory for a KV cache of %lld tokens\n",
                (long long)n_slots);
        rc = 1;
        goto done_text;
    }
    logit_sink sink = {NULL, vocab};
    if (logits_path && !(sink.logits_out = fopen(logits_path, "wb"))) {
        fprintf(stderr, "sglc generate: cannot write %s\n", logits_path);
        rc = 1;
        goto done_kv;
    }
    /* one sequence whose slot for position p is p */
    int32_t *slots = malloc((size_t)n_slots * sizeof *slots);
    int32_t *posv = malloc((size_t)n_slots * sizeof *posv);
    int32_t *seqv = calloc((size_t)n_slots, sizeof *seqv);
    int32_t *rows = malloc((size_t)n_slots * sizeof *rows);
    int32_t *out_ids = malloc((size_t)(max_new + 1) * sizeof *out_ids);
    int64_t logit_rows_max = logits_path ? n_prompt : 1;
    float *logits = malloc((size_t)logit_rows_max * (size_t)vocab * sizeof(float));
    void *work = malloc(sampler_work_bytes(vocab));
    if (!slots || !posv || !seqv || !rows || !out_ids || !logits || !work) {
        fprintf(stderr, "sglc generate: out of memory\n");
        rc = 1;
        goto done_buffers;
    }
    for (int64_t p = 0; p < n_slots; p++) slots[p] = (int32_t)p, posv[p] = (int32_t)p;
    const int32_t *seq_slots[1] = {slots};
    sampler_params sp = {(float)temperature, (int)top_k, (float)top_p, (float)min_p};
    sampler_rng rng;
    sampler_rng_seed(&rng, (uint64_t)seed);
    char err[512];
    /* prefill: the whole prompt in one batch; logits for every position only if asked */
    for (int64_t i = 0; i < logit_rows_max; i++) rows[i] = (int32_t)(n_prompt - logit_rows_max + i);
    model_batch b = {n_prompt, ids, posv, seqv, seq_slots, logit_rows_max, rows};
    int64_t n_out = 0;
    if (model_forward(m, be, &kv, &b, logits, err, sizeof err) != 0 ||
        write_logits(&sink, logits, logit_rows_max) != 0) {
        fprintf(stderr, "sglc generate: %s\n", err);
        rc = 1;
        goto done_buffers;
    }
    const float *last = logits + (size_t)(logit_rows_max - 1) * (size_t)vocab;
    int32_t eos = m->cfg.eos_id;
    generate_text_begin(&tx, json);
    while (n_out < max_new) {
        int32_t next = sampler_sample(last, vocab, &sp, &rng, work);
        out_ids[n_out++] = next;
        generate_text_push(&tx, next);
        if ((next == eos && !ignore_eos) || n_out == max_new) break;
        int32_t p = (int32_t)(n_prompt + n_out - 1), r0 = 0;
        model_batch d = {1, &next, &posv[p], seqv, seq_slots, 1, &r0};
        if (model_forward(m, be, &kv, &d, logits, err, sizeof err) != 0 ||
            write_logits(&sink, logits, 1) != 0) {
            fprintf(stderr, "sglc generate: %s\n", err);
            rc = 1;
            goto done_buffers;
        }
        last = logits;
    }
    generate_text_end(&tx, ids, n_prompt, out_ids, n_out);
done_buffers:
    free(slots), free(posv), free(seqv), free(rows), free(out_ids), free(logits), free(work);
    if (sink.logits_out && fclose(sink.logits_out) != 0 && rc == 0) {
        fprintf(stderr, "sglc generate: error writing %s\n", logits_path);
        rc = 1;
    }
done_kv:
    model_kv_free(be, &kv);
done_text:
    generate_text_close(&tx);
done_model:
    free(ids);
    model_free(m);
    backend_destroy(be);
    return rc;
}
