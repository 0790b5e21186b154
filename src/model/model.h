/* A loaded decoder-only transformer (Llama, Mistral, Qwen2 families) and its forward pass over
 * a ragged batch of tokens from many sequences. The model owns its weights (mapped from the
 * file, or repacked/quantized copies that replace the mapped pages) and a workspace for
 * activations that grows with the largest batch seen; it is used by one thread at a time (the
 * scheduler), with the kernels' worker threads under it. */
#ifndef SGLC_MODEL_MODEL_H
#define SGLC_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/tensor.h"
#include "kernels/backend.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "model/config.h"

typedef struct gguf_file gguf_file;
typedef struct hf_folder hf_folder;

/* One linear layer: y = x W^T (+ b). W is a mapped or owned tensor, or a w8a8 int8 copy. */
typedef struct {
    tensor_view w;
    bool is_w8a8;
    w8a8_weight q8;
    const float *bias; /* NULL when none */
} model_linear;

typedef struct {
    const float *attn_norm, *ffn_norm;
    model_linear wq, wk, wv, wo, w_gate, w_up, w_down;
} model_layer;

typedef enum { QUANT_NONE = 0, QUANT_W8A8_INT8 = 1 } model_quant;

typedef struct {
    model_quant quantization; /* --quantization: quantize linear weights while loading */
} model_load_opts;

typedef struct model {
    model_config cfg;
    char path[4096];
    gguf_file *gguf;
    hf_folder *hf;
    tensor_view tok_embd;
    const float *out_norm;
    model_linear output;
    model_layer *layers;
    rope_table rope;
    int sliding_window; /* 0 = none */
    model_quant quant;  /* how linear weights are stored now */
    size_t weight_bytes; /* bytes of weights read per decode step (all linears + 1 embedding row) */
    /* owned allocations (converted norms, biases, quantized weights) */
    void **owned;
    size_t *owned_sizes;
    int n_owned, cap_owned;
    /* activation workspace */
    float *ws;
    size_t ws_floats;
    int64_t ws_tokens;
} model;

/* Loads a .gguf file or a Hugging Face folder (model_path_resolve decides). NULL on error, with
 * "FILE: tensor/field: reason" in err. */
model *model_load(const char *path, const model_load_opts *opts, char *err, size_t err_len);
void model_free(model *m);

/* The KV cache the forward pass writes: one kv_layer per layer, n_slots token slots each. */
typedef struct {
    kv_layer *layers;
    int n_layers;
    int64_t n_slots;
    dtype_t type;
    size_t bytes;
} model_kv;

int model_kv_alloc(model *m, backend *be, model_kv *kv, int64_t n_slots, dtype_t type);
void model_kv_free(backend *be, model_kv *kv);
/* Bytes of KV per token slot for this model and type. */
size_t model_kv_bytes_per_slot(const model *m, dtype_t type);

/* A ragged batch: token t of the batch is tokens[t] of sequence seq[t] at position pos[t];
 * its K/V go to seq_slots[seq[t]][pos[t]], and it attends to that sequence's slots for
 * positions up to pos[t] (which must already be written, or be in this batch). Logits are
 * computed for the n_logits tokens listed in logit_rows (ascending). */
typedef struct {
    int64_t n_tokens;
    const int32_t *tokens;
    const int32_t *pos;
    const int32_t *seq;
    const int32_t *const *seq_slots;
    int64_t n_logits;
    const int32_t *logit_rows;
} model_batch;

/* Runs the batch; writes logits [n_logits][vocab]. Returns 0, or -1 with err set (a token id
 * out of range, out of memory). Bit-identical per token whatever else is in the batch. */
int model_forward(model *m, backend *be, model_kv *kv, const model_batch *b, float *logits,
                  char *err, size_t err_len);

#endif
