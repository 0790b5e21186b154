/* The shape and hyper-parameters of a decoder-only transformer, read from a GGUF file's
 * metadata or a Hugging Face config.json, validated once so the forward pass can trust them. */
#ifndef SGLC_MODEL_CONFIG_H
#define SGLC_MODEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { ARCH_LLAMA = 0, ARCH_MISTRAL = 1, ARCH_QWEN2 = 2 } model_arch;

/* How RoPE pairs dimensions: NORMAL rotates (2i, 2i+1) (GGUF's permuted Llama Q/K), NEOX
 * rotates (i, i + d/2) (Hugging Face layout, and Qwen2 in either file). */
typedef enum { ROPE_NORMAL = 0, ROPE_NEOX = 1 } rope_style;

typedef struct {
    model_arch arch;
    char arch_name[64];   /* "LlamaForCausalLM" style, as reported to users */
    int n_layers;
    int dim;              /* hidden size */
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int ffn_dim;
    int vocab_size;
    int context_length;   /* max_position_embeddings */
    float rms_eps;
    float rope_theta;
    int rope_dim;         /* dims rotated per head (== head_dim for these archs) */
    rope_style rope;
    /* rope_scaling type "llama3" (Llama 3.1); factor 0 = none */
    float rope_llama3_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_original_context;
    bool tie_embeddings;
    bool qkv_bias;
    int bos_id, eos_id;   /* -1 when unknown */
} model_config;

/* Checks the fields are present, positive and consistent (heads divide dim, kv heads divide
 * heads...). Returns 0 or -1 with a reason in err. */
int model_config_validate(const model_config *c, char *err, size_t err_len);

#endif
