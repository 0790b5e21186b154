/* Loading a model (model/model.h) from a GGUF file or a Hugging Face folder: the config, then
 * every weight looked up by name, its shape checked against the config, and views kept into
 * the mapped file wherever the on-disk layout is the compute layout. Norm weights and biases
 * stored in 16-bit types are widened to float once; --quantization w8a8_int8 quantizes the
 * linear weights here, BF16, Q8_0 and Q4_1 linear weights are repacked into the matmul's panel layouts, and
 * either drops the mapped pages it copied from. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/fp16.h"
#include "base/log.h"
#include "formats/gguf.h"
#include "formats/hf_folder.h"
#include "formats/model_path.h"
#include "kernels/quant.h"
#include "model/model.h"

typedef struct {
    model *m;
    char *err;
    size_t err_len;
    const char *file; /* for messages */
} loader;

static int fail(loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(loader *ld, const char *fmt, ...) {
    int n = snprintf(ld->err, ld->err_len, "%s: ", ld->file);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < ld->err_len) vsnprintf(ld->err + n, ld->err_len - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static void *own(model *m, size_t bytes) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 64;
        void **o = realloc(m->owned, (size_t)cap * sizeof *o);
        size_t *s = realloc(m->owned_sizes, (size_t)cap * sizeof *s);
        if (!o || !s) {
            free(o ? o : m->owned);
            m->owned = NULL;
            return NULL;
        }
        m->owned = o;
        m->owned_sizes = s;
        m->cap_owned = cap;
    }
    void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!p) return NULL;
    m->owned[m->n_owned] = p;
    m->owned_sizes[m->n_owned++] = bytes;
    return p;
}

/* ---- config ------------------------------------------------------------------------------- */

static int gguf_u32_key(gguf_file *g, const char *arch, const char *suffix, uint32_t *out) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_get_u32(g, key, out) ? 0 : -1;
}

static int gguf_f32_key(gguf_file *g, const char *arch, const char *suffix, float *out) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_get_f32(g, key, out) ? 0 : -1;
}

static int config_from_gguf(loader *ld, gguf_file *g, model_config *c) {
    memset(c, 0, sizeof *c);
    char *arch = gguf_get_str(g, "general.architecture");
    if (!arch) return fail(ld, "field 'general.architecture': missing");
    if (!strcmp(arch, "llama")) {
        c->arch = ARCH_LLAMA;
        snprintf(c->arch_name, sizeof c->arch_name, "LlamaForCausalLM");
        c->rope = ROPE_NORMAL; /* GGUF stores Llama's Q/K permuted for interleaved pairs */
    } else if (!strcmp(arch, "qwen2")) {
        c->arch = ARCH_QWEN2;
        snprintf(c->arch_name, sizeof c->arch_name, "Qwen2ForCausalLM");
        c->rope = ROPE_NEOX;
        c->qkv_bias = true;
    } else {
        fail(ld, "field 'general.architecture': unsupported architecture '%s' (this build runs "
                 "llama, qwen2)", arch);
        free(arch);
        return -1;
    }
    uint32_t u;
#define REQ(suffix, field)                                                                     \
    if (gguf_u32_key(g, arch, suffix, &u) != 0) {                                              \
        fail(ld, "field '%s.%s': missing or not an integer", arch, suffix);                    \
        free(arch);                                                                            \
        return -1;                                                                             \
    }                                                                                          \
    field = (int)u;
    REQ("block_count", c->n_layers)
    REQ("embedding_length", c->dim)
    REQ("feed_forward_length", c->ffn_dim)
    REQ("attention.head_count", c->n_heads)
    REQ("context_length", c->context_length)
#undef REQ
    c->n_kv_heads = gguf_u32_key(g, arch, "attention.head_count_kv", &u) == 0 ? (int)u : c->n_heads;
    c->head_dim = c->n_heads ? c->dim / c->n_heads : 0;
    if (gguf_u32_key(g, arch, "attention.key_length", &u) == 0) c->head_dim = (int)u;
    c->rope_dim = gguf_u32_key(g, arch, "rope.dimension_count", &u) == 0 ? (int)u : c->head_dim;
    c->vocab_size = gguf_u32_key(g, arch, "vocab_size", &u) == 0 ? (int)u : 0;
    if (gguf_f32_key(g, arch, "attention.layer_norm_rms_epsilon", &c->rms_eps) != 0)
        c->rms_eps = 1e-5f;
    if (gguf_f32_key(g, arch, "rope.freq_base", &c->rope_theta) != 0) c->rope_theta = 10000.0f;
    char key[256];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    char *scaling = gguf_get_str(g, key);
    if (scaling && strcmp(scaling, "none") != 0) {
        fail(ld, "field '%s': rope scaling '%s' is not supported by this build", key, scaling);
        free(scaling);
        free(arch);
        return -1;
    }
    free(scaling);
    c->bos_id = gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u) ? (int)u : -1;
    c->eos_id = gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u) ? (int)u : -1;
    const gguf_tensor *emb = gguf_find_tensor(g, "token_embd.weight");
    if (c->vocab_size == 0 && emb) c->vocab_size = (int)emb->view.ne[1];
    c->tie_embeddings = gguf_find_tensor(g, "output.weight") == NULL;
    free(arch);
    return 0;
}

static int json_int(const json_t *obj, const char *key, int *out) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    if (x < -2147483647 || x > 2147483647) return -1;
    *out = (int)x;
    return 0;
}

static int first_int(const json_t *v) {
    if (json_is_integer(v)) return (int)json_integer_value(v);
    if (json_is_array(v) && json_array_size(v) > 0 && json_is_integer(json_array_get(v, 0)))
        return (int)json_integer_value(json_array_get(v, 0));
    return -1;
}

static int config_from_hf(loader *ld, const json_t *j, const json_t *gen, model_config *c,
                          int *window) {
    memset(c, 0, sizeof *c);
    const json_t *archs = json_object_get(j, "architectures");
    const char *arch = json_string_value(json_array_get(archs, 0));
    const char *type = json_string_value(json_object_get(j, "model_type"));
    if (!arch) return fail(ld, "field 'architectures': missing");
    snprintf(c->arch_name, sizeof c->arch_name, "%s", arch);
    c->rope = ROPE_NEOX;
    if (!strcmp(arch, "LlamaForCausalLM")) c->arch = ARCH_LLAMA;
    else if (!strcmp(arch, "MistralForCausalLM")) c->arch = ARCH_MISTRAL;
    else if (!strcmp(arch, "Qwen2ForCausalLM")) c->arch = ARCH_QWEN2, c->qkv_bias = true;
    else
        return fail(ld, "field 'architectures': unsupported architecture '%s' (this build runs "
                        "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)", arch);
    (void)type;
#define REQ(key, field)                                                                        \
    if (json_int(j, key, &field) != 0) return fail(ld, "field '%s': missing or not an integer", key);
    REQ("num_hidden_layers", c->n_layers)
    REQ("hidden_size", c->dim)
    REQ("intermediate_size", c->ffn_dim)
    REQ("num_attention_heads", c->n_heads)
    REQ("vocab_size", c->vocab_size)
#undef REQ
    if (json_int(j, "max_position_embeddings", &c->context_length) != 0) c->context_length = 2048;
    if (json_int(j, "num_key_value_heads", &c->n_kv_heads) != 0) c->n_kv_heads = c->n_heads;
    c->head_dim = c->n_heads ? c->dim / c->n_heads : 0;
    if (json_is_integer(json_object_get(j, "head_dim"))) json_int(j, "head_dim", &c->head_dim);
    c->rope_dim = c->head_dim;
    const json_t *v = json_object_get(j, "rms_norm_eps");
    c->rms_eps = json_is_number(v) ? (float)json_number_value(v) : 1e-6f;
    v = json_object_get(j, "rope_theta");
    c->rope_theta = json_is_number(v) ? (float)json_number_value(v) : 10000.0f;
    c->tie_embeddings = json_is_true(json_object_get(j, "tie_word_embeddings"));
    if (json_is_true(json_object_get(j, "attention_bias"))) c->qkv_bias = true;
    /* transformers 5 writes rope_theta and the scaling type together in rope_parameters */
    const json_t *rs = json_object_get(j, "rope_parameters");
    if (json_is_object(rs)) {
        v = json_object_get(rs, "rope_theta");
        if (json_is_number(v)) c->rope_theta = (float)json_number_value(v);
    } else {
        rs = json_object_get(j, "rope_scaling");
    }
    if (json_is_object(rs)) {
        const char *rt = json_string_value(json_object_get(rs, "rope_type"));
        if (!rt) rt = json_string_value(json_object_get(rs, "type"));
        if (rt && !strcmp(rt, "llama3")) {
            c->rope_llama3_factor = (float)json_number_value(json_object_get(rs, "factor"));
            c->rope_low_freq_factor = (float)json_number_value(json_object_get(rs, "low_freq_factor"));
            c->rope_high_freq_factor =
                (float)json_number_value(json_object_get(rs, "high_freq_factor"));
            json_int(rs, "original_max_position_embeddings", &c->rope_original_context);
            if (!(c->rope_llama3_factor > 0 && c->rope_low_freq_factor > 0 &&
                  c->rope_high_freq_factor > c->rope_low_freq_factor &&
                  c->rope_original_context > 0))
                return fail(ld, "field 'rope_scaling': incomplete llama3 parameters");
        } else if (rt && strcmp(rt, "default") != 0) {
            return fail(ld, "field 'rope_scaling': type '%s' is not supported by this build", rt);
        }
    }
    *window = 0;
    const json_t *sw = json_object_get(j, "sliding_window");
    if (json_is_integer(sw) && json_integer_value(sw) > 0) {
        bool use = c->arch == ARCH_MISTRAL || json_is_true(json_object_get(j, "use_sliding_window"));
        if (use && c->arch == ARCH_QWEN2)
            return fail(ld, "field 'use_sliding_window': Qwen2's per-layer sliding window is not "
                            "supported by this build");
        if (use) *window = (int)json_integer_value(sw);
    }
    c->bos_id = first_int(json_object_get(j, "bos_token_id"));
    c->eos_id = first_int(json_object_get(j, "eos_token_id"));
    if (gen) {
        int e = first_int(json_object_get(gen, "eos_token_id"));
        if (e >= 0) c->eos_id = e;
        int b = first_int(json_object_get(gen, "bos_token_id"));
        if (b >= 0) c->bos_id = b;
    }
    return 0;
}

/* ---- weights ------------------------------------------------------------------------------ */

static bool find(model *m, const char *name, tensor_view *out) {
    if (m->gguf) {
        const gguf_tensor *t = gguf_find_tensor(m->gguf, name);
        if (!t) return false;
        *out = t->view;
        return true;
    }
    const safetensors_tensor *t = hf_folder_find(m->hf, name);
    if (!t) return false;
    *out = t->view; /* an unknown dtype shows as DT_COUNT and is refused by the caller */
    return true;
}

static int check_shape(loader *ld, const char *name, const tensor_view *t, int64_t ne0,
                       int64_t ne1) {
    int64_t want1 = ne1 > 0 ? ne1 : 1;
    if (t->ne[0] != ne0 || t->ne[1] != want1 || t->ne[2] != 1 || t->ne[3] != 1) {
        if (ne1 > 0)
            return fail(ld, "tensor '%s': shape [%lld, %lld] does not match the config (expected "
                            "[%lld, %lld] as [in, out])", name, (long long)t->ne[0],
                        (long long)t->ne[1], (long long)ne0, (long long)ne1);
        return fail(ld, "tensor '%s': shape [%lld, %lld] does not match the config (expected "
                        "[%lld])", name, (long long)t->ne[0], (long long)t->ne[1], (long long)ne0);
    }
    return 0;
}

/* A vector (norm weight or bias) as float: mapped when stored as F32, else widened. */
static int load_vector(loader *ld, const char *name, int64_t n, bool required, const float **out) {
    tensor_view t;
    *out = NULL;
    if (!find(ld->m, name, &t)) return required ? fail(ld, "tensor '%s': missing", name) : 0;
    if (check_shape(ld, name, &t, n, 0) != 0) return -1;
    if (t.type == DT_F32) {
        *out = t.data;
        return 0;
    }
    if (t.type != DT_F16 && t.type != DT_BF16)
        return fail(ld, "tensor '%s': type %s not supported for a vector", name, dtype_name(t.type));
    float *f = own(ld->m, (size_t)n * sizeof(float));
    if (!f) return fail(ld, "tensor '%s': out of memory", name);
    const uint16_t *h = t.data;
    for (int64_t i = 0; i < n; i++) f[i] = t.type == DT_F16 ? fp16_to_fp32(h[i]) : bf16_to_fp32(h[i]);
    *out = f;
    return 0;
}

/* Gives the pages behind a weight back to the page cache once a converted copy replaces it. */
static void drop_pages(const void *data, size_t nbytes) {
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t b = ((uintptr_t)data + (uintptr_t)page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t e = ((uintptr_t)data + nbytes) & ~(uintptr_t)(page - 1);
    if (e > b) madvise((void *)b, e - b, MADV_DONTNEED);
}

static int quantize_w8a8(loader *ld, const char *name, model_linear *l) {
    int64_t n_in = l->w.ne[0], n_out = l->w.ne[1];
    int8_t *q = own(ld->m, (size_t)(n_in * n_out));
    float *s = own(ld->m, (size_t)n_out * sizeof(float));
    float *row = malloc((size_t)n_in * sizeof(float));
    if (!q || !s || !row) {
        free(row);
        return fail(ld, "tensor '%s': out of memory quantizing to w8a8_int8", name);
    }
    size_t rb = dtype_row_bytes(l->w.type, n_in);
    for (int64_t o = 0; o < n_out; o++) {
        quant_dequant_row(l->w.type, (const uint8_t *)l->w.data + (size_t)o * rb, row, n_in);
        kern_quantize_w8a8_row(row, n_in, q + o * n_in, &s[o]);
    }
    free(row);
    drop_pages(l->w.data, l->w.nbytes);
    l->is_w8a8 = true;
    l->q8 = (w8a8_weight){q, s, n_in, n_out};
    return 0;
}

/* Repacks a BF16, Q8_0 or Q4_1 weight into panels (kernels/matmul.h) when this CPU's matmul has a
 * kernel for them; the copy replaces the mapped pages, so memory stays the file's size.
 * SGLC_REPACK=0 keeps the file's layout (to compare the two). */
static int maybe_repack(loader *ld, const char *name, model_linear *l) {
    const char *env = getenv("SGLC_REPACK");
    if ((env && !strcmp(env, "0")) || !kern_matmul_packable(&l->w)) return 0;
    void *p = own(ld->m, l->w.nbytes);
    if (!p) return fail(ld, "tensor '%s': out of memory repacking", name);
    kern_matmul_pack(&l->w, p);
    drop_pages(l->w.data, l->w.nbytes);
    l->w.data = p;
    l->w.layout = kern_matmul_pack_layout(l->w.type);
    return 0;
}

static int load_linear(loader *ld, const char *name, const char *bias_name, int64_t n_in,
                       int64_t n_out, model_linear *l) {
    memset(l, 0, sizeof *l);
    if (!find(ld->m, name, &l->w)) return fail(ld, "tensor '%s': missing", name);
    if (check_shape(ld, name, &l->w, n_in, n_out) != 0) return -1;
    if (l->w.type == DT_I8) {
        /* SGLang's w8a8_int8 checkpoint: int8 [out, in] beside weight_scale [out, 1] */
        char sname[512];
        snprintf(sname, sizeof sname, "%.*s_scale", (int)strlen(name), name);
        tensor_view st;
        if (!find(ld->m, sname, &st))
            return fail(ld, "tensor '%s': int8 weight without '%s'", name, sname);
        if (st.ne[0] * st.ne[1] * st.ne[2] * st.ne[3] != n_out)
            return fail(ld, "tensor '%s': expected %lld scales", sname, (long long)n_out);
        const float *scale;
        if (st.type == DT_F32) {
            scale = st.data;
        } else if (st.type == DT_F16 || st.type == DT_BF16) {
            float *f = own(ld->m, (size_t)n_out * sizeof(float));
            if (!f) return fail(ld, "tensor '%s': out of memory", sname);
            const uint16_t *h = st.data;
            for (int64_t i = 0; i < n_out; i++)
                f[i] = st.type == DT_F16 ? fp16_to_fp32(h[i]) : bf16_to_fp32(h[i]);
            scale = f;
        } else {
            return fail(ld, "tensor '%s': type %s not supported for scales", sname,
                        dtype_name(st.type));
        }
        l->is_w8a8 = true;
        l->q8 = (w8a8_weight){l->w.data, scale, n_in, n_out};
    } else if (!kern_matmul_supports(l->w.type)) {
        return fail(ld, "tensor '%s': type %s not supported for matmul by this build", name,
                    dtype_name(l->w.type));
    } else if (ld->m->quant == QUANT_W8A8_INT8) {
        if (quantize_w8a8(ld, name, l) != 0) return -1;
    } else if (maybe_repack(ld, name, l) != 0) {
        return -1;
    }
    if (bias_name && load_vector(ld, bias_name, n_out, false, &l->bias) != 0) return -1;
    ld->m->weight_bytes += l->is_w8a8 ? (size_t)(n_in * n_out) + (size_t)n_out * 4 : l->w.nbytes;
    return 0;
}

typedef struct {
    const char *embd, *out_norm, *output;
    const char *attn_norm, *ffn_norm, *q, *k, *v, *o, *gate, *up, *down, *bq, *bk, *bv;
} name_scheme;

static const name_scheme gguf_names = {
    "token_embd.weight", "output_norm.weight", "output.weight",
    "blk.%d.attn_norm.weight", "blk.%d.ffn_norm.weight", "blk.%d.attn_q.weight",
    "blk.%d.attn_k.weight", "blk.%d.attn_v.weight", "blk.%d.attn_output.weight",
    "blk.%d.ffn_gate.weight", "blk.%d.ffn_up.weight", "blk.%d.ffn_down.weight",
    "blk.%d.attn_q.bias", "blk.%d.attn_k.bias", "blk.%d.attn_v.bias"};

static const name_scheme hf_names = {
    "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
    "model.layers.%d.input_layernorm.weight", "model.layers.%d.post_attention_layernorm.weight",
    "model.layers.%d.self_attn.q_proj.weight", "model.layers.%d.self_attn.k_proj.weight",
    "model.layers.%d.self_attn.v_proj.weight", "model.layers.%d.self_attn.o_proj.weight",
    "model.layers.%d.mlp.gate_proj.weight", "model.layers.%d.mlp.up_proj.weight",
    "model.layers.%d.mlp.down_proj.weight", "model.layers.%d.self_attn.q_proj.bias",
    "model.layers.%d.self_attn.k_proj.bias", "model.layers.%d.self_attn.v_proj.bias"};

static int load_weights(loader *ld, const name_scheme *ns) {
    model *m = ld->m;
    const model_config *c = &m->cfg;
    if (!find(m, ns->embd, &m->tok_embd)) return fail(ld, "tensor '%s': missing", ns->embd);
    if (check_shape(ld, ns->embd, &m->tok_embd, c->dim, c->vocab_size) != 0) return -1;
    if (!kern_matmul_supports(m->tok_embd.type))
        return fail(ld, "tensor '%s': type %s not supported", ns->embd, dtype_name(m->tok_embd.type));
    if (load_vector(ld, ns->out_norm, c->dim, true, &m->out_norm) != 0) return -1;
    tensor_view probe;
    bool tied = !find(m, ns->output, &probe);
    if (tied) {
        /* tied embeddings: the output projection reads the embedding table, repacked for it
         * when that pays (the lookup reads rows from panels as well) */
        memset(&m->output, 0, sizeof m->output);
        m->output.w = m->tok_embd;
        if (m->quant == QUANT_NONE && maybe_repack(ld, ns->embd, &m->output) != 0) return -1;
        m->tok_embd = m->output.w;
        m->weight_bytes += m->tok_embd.nbytes;
    } else {
        model_quant saved = m->quant;
        m->quant = QUANT_NONE; /* lm_head stays in higher precision, as SGLang's w8a8 */
        int rc = load_linear(ld, ns->output, NULL, c->dim, c->vocab_size, &m->output);
        m->quant = saved;
        if (rc != 0) return -1;
    }
    m->cfg.tie_embeddings = tied;
    m->layers = calloc((size_t)c->n_layers, sizeof(model_layer));
    if (!m->layers) return fail(ld, "out of memory");
    int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    for (int l = 0; l < c->n_layers; l++) {
        model_layer *L = &m->layers[l];
        char n1[256], n2[256];
#define NAME(buf, fmt) (snprintf(buf, sizeof buf, fmt, l), buf)
        if (load_vector(ld, NAME(n1, ns->attn_norm), c->dim, true, &L->attn_norm) != 0) return -1;
        if (load_vector(ld, NAME(n1, ns->ffn_norm), c->dim, true, &L->ffn_norm) != 0) return -1;
        const char *bq = c->qkv_bias ? NAME(n2, ns->bq) : NULL;
        if (load_linear(ld, NAME(n1, ns->q), bq, c->dim, qd, &L->wq) != 0) return -1;
        const char *bk = c->qkv_bias ? NAME(n2, ns->bk) : NULL;
        if (load_linear(ld, NAME(n1, ns->k), bk, c->dim, kvd, &L->wk) != 0) return -1;
        const char *bv = c->qkv_bias ? NAME(n2, ns->bv) : NULL;
        if (load_linear(ld, NAME(n1, ns->v), bv, c->dim, kvd, &L->wv) != 0) return -1;
        if (load_linear(ld, NAME(n1, ns->o), NULL, qd, c->dim, &L->wo) != 0) return -1;
        if (load_linear(ld, NAME(n1, ns->gate), NULL, c->dim, c->ffn_dim, &L->w_gate) != 0)
            return -1;
        if (load_linear(ld, NAME(n1, ns->up), NULL, c->dim, c->ffn_dim, &L->w_up) != 0) return -1;
        if (load_linear(ld, NAME(n1, ns->down), NULL, c->ffn_dim, c->dim, &L->w_down) != 0)
            return -1;
#undef NAME
    }
    m->weight_bytes += dtype_row_bytes(m->tok_embd.type, c->dim);
    return 0;
}

static void init_rope(model *m) {
    const model_config *c = &m->cfg;
    kern_rope_init(&m->rope, c->head_dim, c->rope_dim, c->rope == ROPE_NEOX, c->rope_theta,
                   c->rope_llama3_factor, c->rope_low_freq_factor, c->rope_high_freq_factor,
                   c->rope_original_context);
    if (m->gguf) {
        /* Llama 3.1 in GGUF: the llama3 scaling is baked into per-frequency divisors */
        const gguf_tensor *ff = gguf_find_tensor(m->gguf, "rope_freqs.weight");
        if (ff && ff->view.type == DT_F32 && ff->view.ne[0] == c->rope_dim / 2) {
            const float *f = ff->view.data;
            for (int i = 0; i < c->rope_dim / 2; i++)
                if (f[i] > 0) m->rope.inv_freq[i] /= f[i];
        }
    }
}

model *model_load(const char *path, const model_load_opts *opts, char *err, size_t err_len) {
    model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    loader ld = {m, err, err_len, path};
    model_src_kind kind = model_path_resolve(path, m->path, sizeof m->path, err, err_len);
    if (kind == MODEL_SRC_NONE) goto fail;
    ld.file = m->path;
    m->quant = opts ? opts->quantization : QUANT_NONE;
    if (kind == MODEL_SRC_GGUF) {
        m->gguf = gguf_open(m->path, err, err_len);
        if (!m->gguf) goto fail;
        if (config_from_gguf(&ld, m->gguf, &m->cfg) != 0) goto fail;
        uint32_t sw;
        char key[128];
        snprintf(key, sizeof key, "%s.attention.sliding_window",
                 m->cfg.arch == ARCH_QWEN2 ? "qwen2" : "llama");
        if (gguf_get_u32(m->gguf, key, &sw)) m->sliding_window = (int)sw;
    } else {
        m->hf = hf_folder_open(m->path, err, err_len);
        if (!m->hf) goto fail;
        char cfg_path[4200];
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", m->path);
        ld.file = cfg_path;
        if (config_from_hf(&ld, hf_folder_config(m->hf), hf_folder_generation_config(m->hf),
                           &m->cfg, &m->sliding_window) != 0)
            goto fail;
        const json_t *qc = json_object_get(hf_folder_config(m->hf), "quantization_config");
        const char *qm = json_string_value(json_object_get(qc, "quant_method"));
        if (qm && strcmp(qm, "w8a8_int8") != 0) {
            fail(&ld, "field 'quantization_config.quant_method': '%s' is not supported by this "
                      "build (w8a8_int8 is)", qm);
            goto fail;
        }
        ld.file = m->path;
    }
    char why[256];
    if (model_config_validate(&m->cfg, why, sizeof why) != 0) {
        fail(&ld, "%s", why);
        goto fail;
    }
    if (load_weights(&ld, m->gguf ? &gguf_names : &hf_names) != 0) goto fail;
    init_rope(m);
    return m;
fail:
    model_free(m);
    return NULL;
}

void model_free(model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->owned_sizes);
    free(m->layers);
    free(m->ws);
    if (m->gguf) gguf_close(m->gguf);
    if (m->hf) hf_folder_close(m->hf);
    free(m);
}
