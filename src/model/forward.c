/* The forward pass of a Llama-family decoder over a ragged batch (model/model.h), written as a
 * sequence of ops on the backend, llama2.c style:
 *   x = embed(tokens)
 *   per layer:  h = rmsnorm(x);  q,k,v = h Wq, h Wk, h Wv (+bias);  rope(q, k);  store k, v
 *               x += attention(q, K, V) Wo
 *               h = rmsnorm(x);  x += (silu(h Wgate) * h Wup) Wdown
 *   logits = rmsnorm(x[rows]) Wout
 * Every op computes a token's row from that token alone (attention from its own sequence's
 * cache), so a request's logits do not depend on what else shares the batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

static int linear(backend *be, const model_linear *l, const float *x, int64_t T, float *y) {
    int rc = l->is_w8a8 ? kern_matmul_w8a8(be, &l->q8, x, T, y) : kern_matmul(be, &l->w, x, T, y);
    if (rc == 0 && l->bias) kern_add_bias(y, l->bias, T, l->is_w8a8 ? l->q8.n_out : l->w.ne[1]);
    return rc;
}

size_t model_kv_bytes_per_slot(const model *m, dtype_t type) {
    size_t elem = type == DT_F32 ? 4 : 2;
    return (size_t)m->cfg.n_layers * 2 * (size_t)m->cfg.n_kv_heads * (size_t)m->cfg.head_dim * elem;
}

int model_kv_alloc(model *m, backend *be, model_kv *kv, int64_t n_slots, dtype_t type) {
    memset(kv, 0, sizeof *kv);
    if (type != DT_F32 && type != DT_F16 && type != DT_BF16) return -1;
    int row = m->cfg.n_kv_heads * m->cfg.head_dim;
    size_t elem = type == DT_F32 ? 4 : 2;
    size_t one = (size_t)n_slots * (size_t)row * elem;
    kv->layers = calloc((size_t)m->cfg.n_layers, sizeof(kv_layer));
    if (!kv->layers) return -1;
    kv->n_layers = m->cfg.n_layers;
    kv->n_slots = n_slots;
    kv->type = type;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        kv_layer *L = &kv->layers[l];
        L->type = type;
        L->n_slots = n_slots;
        L->row_elems = row;
        L->k = backend_alloc(be, one);
        L->v = backend_alloc(be, one);
        if (!L->k || !L->v) {
            model_kv_free(be, kv);
            return -1;
        }
        kv->bytes += 2 * one;
    }
    return 0;
}

void model_kv_free(backend *be, model_kv *kv) {
    if (!kv->layers) return;
    size_t one = (size_t)kv->n_slots * (size_t)kv->layers[0].row_elems *
                 (kv->type == DT_F32 ? 4 : 2);
    for (int l = 0; l < kv->n_layers; l++) {
        backend_free(be, kv->layers[l].k, one);
        backend_free(be, kv->layers[l].v, one);
    }
    free(kv->layers);
    memset(kv, 0, sizeof *kv);
}

/* Activation buffers for T tokens, laid out in one allocation that only grows. */
typedef struct {
    float *x, *h, *q, *k, *v, *att, *gate, *up;
    int32_t *slots;
} buffers;

static int workspace(model *m, int64_t T, buffers *b) {
    const model_config *c = &m->cfg;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t wide = (size_t)c->ffn_dim > qd ? (size_t)c->ffn_dim : qd;
    size_t per_token = 2 * (size_t)c->dim + 2 * qd + 2 * kvd + 2 * wide + 1;
    if (T > m->ws_tokens) {
        free(m->ws);
        m->ws_floats = per_token * (size_t)T + 64;
        m->ws = aligned_alloc(64, ((m->ws_floats * sizeof(float)) + 63) & ~(size_t)63);
        if (!m->ws) {
            m->ws_tokens = 0;
            return -1;
        }
        m->ws_tokens = T;
    }
    float *p = m->ws;
    size_t t = (size_t)T;
    b->x = p, p += t * c->dim;
    b->h = p, p += t * c->dim;
    b->q = p, p += t * qd;
    b->att = p, p += t * qd;
    b->k = p, p += t * kvd;
    b->v = p, p += t * kvd;
    b->gate = p, p += t * wide;
    b->up = p, p += t * wide;
    b->slots = (int32_t *)p;
    return 0;
}

int model_forward(model *m, backend *be, model_kv *kv, const model_batch *b, float *logits,
                  char *err, size_t err_len) {
    const model_config *c = &m->cfg;
    int64_t T = b->n_tokens;
    if (T <= 0) return 0;
    buffers B;
    if (workspace(m, T, &B) != 0) {
        snprintf(err, err_len, "out of memory for activations of %lld tokens", (long long)T);
        return -1;
    }
    for (int64_t t = 0; t < T; t++) {
        if (b->tokens[t] < 0 || b->tokens[t] >= c->vocab_size) {
            snprintf(err, err_len, "token id %d out of range [0, %d)", b->tokens[t], c->vocab_size);
            return -1;
        }
        B.slots[t] = b->seq_slots[b->seq[t]][b->pos[t]];
    }
    if (kern_get_rows(be, &m->tok_embd, b->tokens, T, B.x) != 0) {
        snprintf(err, err_len, "embedding lookup failed");
        return -1;
    }
    float scale = 1.0f / sqrtf((float)c->head_dim);
    attn_batch ab = {b->pos, b->seq, b->seq_slots, m->sliding_window};
    int rc = 0;
    for (int l = 0; l < c->n_layers && rc == 0; l++) {
        const model_layer *L = &m->layers[l];
        kern_rmsnorm(be, B.x, L->attn_norm, B.h, T, c->dim, c->rms_eps);
        rc |= linear(be, &L->wq, B.h, T, B.q);
        rc |= linear(be, &L->wk, B.h, T, B.k);
        rc |= linear(be, &L->wv, B.h, T, B.v);
        kern_rope(be, &m->rope, B.q, T, c->n_heads, b->pos);
        kern_rope(be, &m->rope, B.k, T, c->n_kv_heads, b->pos);
        kern_kv_store(be, &kv->layers[l], B.k, B.v, T, B.slots);
        rc |= kern_attention(be, &kv->layers[l], B.q, T, c->n_heads, c->n_kv_heads, c->head_dim,
                             scale, &ab, B.att);
        rc |= linear(be, &L->wo, B.att, T, B.h);
        kern_add(B.x, B.h, T * c->dim);
        kern_rmsnorm(be, B.x, L->ffn_norm, B.h, T, c->dim, c->rms_eps);
        rc |= linear(be, &L->w_gate, B.h, T, B.gate);
        rc |= linear(be, &L->w_up, B.h, T, B.up);
        kern_silu_mul(be, B.gate, B.up, T, c->ffn_dim);
        rc |= linear(be, &L->w_down, B.gate, T, B.h);
        kern_add(B.x, B.h, T * c->dim);
    }
    if (rc != 0) {
        snprintf(err, err_len, "out of memory in a layer op");
        return -1;
    }
    if (b->n_logits <= 0) return 0;
    /* gather the rows that need logits, normalise, project to the vocabulary */
    for (int64_t i = 0; i < b->n_logits; i++)
        memmove(B.h + i * c->dim, B.x + (int64_t)b->logit_rows[i] * c->dim,
                (size_t)c->dim * sizeof(float));
    kern_rmsnorm(be, B.h, m->out_norm, B.h, b->n_logits, c->dim, c->rms_eps);
    if (linear(be, &m->output, B.h, b->n_logits, logits) != 0) {
        snprintf(err, err_len, "out of memory in the output projection");
        return -1;
    }
    return 0;
}
