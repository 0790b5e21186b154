/* Validation of model/config.h. Loading lives with each file format (model/loader.c). */
#include "model/config.h"

#include <stdio.h>

int model_config_validate(const model_config *c, char *err, size_t err_len) {
#define NEED(cond, ...)                                                                        \
    if (!(cond)) {                                                                             \
        snprintf(err, err_len, __VA_ARGS__);                                                   \
        return -1;                                                                             \
    }
    NEED(c->n_layers > 0 && c->n_layers <= 1024, "num_hidden_layers %d out of range", c->n_layers);
    NEED(c->dim > 0 && c->dim <= 65536, "hidden_size %d out of range", c->dim);
    NEED(c->n_heads > 0 && c->n_heads <= 1024, "num_attention_heads %d out of range", c->n_heads);
    NEED(c->n_kv_heads > 0 && c->n_heads % c->n_kv_heads == 0,
         "num_key_value_heads %d does not divide num_attention_heads %d", c->n_kv_heads,
         c->n_heads);
    NEED(c->head_dim > 0 && c->head_dim <= 1024 && c->head_dim % 2 == 0,
         "head_dim %d out of range or odd", c->head_dim);
    NEED(c->rope_dim > 0 && c->rope_dim <= c->head_dim && c->rope_dim % 2 == 0,
         "rope dimension %d invalid for head_dim %d", c->rope_dim, c->head_dim);
    NEED(c->ffn_dim > 0 && c->ffn_dim <= 1 << 20, "intermediate_size %d out of range", c->ffn_dim);
    NEED(c->vocab_size > 0 && c->vocab_size <= 1 << 24, "vocab_size %d out of range",
         c->vocab_size);
    NEED(c->context_length > 0, "max_position_embeddings %d out of range", c->context_length);
    NEED(c->rms_eps > 0 && c->rms_eps < 1, "rms_norm_eps %g out of range", (double)c->rms_eps);
    NEED(c->rope_theta > 0, "rope_theta %g out of range", (double)c->rope_theta);
#undef NEED
    return 0;
}
