/* Element-wise ops and attention (kernels/ops.h). The element-wise ops are a small share of a
 * forward pass next to the matmuls, so they are plain C. Attention is not (it grows with the
 * square of a prompt's length): on AVX2 machines it runs the tiled kernel of x86/attn_avx2.c,
 * elsewhere the scalar path below, which is also the reference the tests compare against. */
#include "kernels/ops.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "base/fp16.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#if defined(__x86_64__)
#include "kernels/x86/ops_x86.h"
#endif

float ops_dot_f32_scalar(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void ops_axpy_f32_scalar(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

/* ---- RMSNorm ------------------------------------------------------------------------------ */

typedef struct {
    const float *x, *w;
    float *y;
    int64_t T, n;
    float eps;
} rmsnorm_job;

static void rmsnorm_task(void *p, int ith, int nth) {
    rmsnorm_job *j = p;
    long b, e;
    tp_split((long)j->T, ith, nth, &b, &e);
    for (long t = b; t < e; t++) {
        const float *x = j->x + t * j->n;
        float *y = j->y + t * j->n;
        float ss = 0;
        for (int64_t i = 0; i < j->n; i++) ss += x[i] * x[i];
        float inv = 1.0f / sqrtf(ss / (float)j->n + j->eps);
        for (int64_t i = 0; i < j->n; i++) y[i] = x[i] * inv * j->w[i];
    }
}

void kern_rmsnorm(backend *be, const float *x, const float *w, float *y, int64_t T, int64_t n,
                  float eps) {
    rmsnorm_job j = {x, w, y, T, n, eps};
    if (T < 4) rmsnorm_task(&j, 0, 1);
    else tp_run(be->tp, rmsnorm_task, &j);
}

/* ---- RoPE --------------------------------------------------------------------------------- */

void kern_rope_init(rope_table *rt, int head_dim, int rope_dim, int neox, float theta,
                    float llama3_factor, float low_freq_factor, float high_freq_factor,
                    int original_context) {
    rt->head_dim = head_dim;
    rt->rope_dim = rope_dim;
    rt->neox = neox;
    for (int i = 0; i < rope_dim / 2; i++) {
        float freq = 1.0f / powf(theta, (float)(2 * i) / (float)rope_dim);
        if (llama3_factor > 0) {
            /* Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, and the band
             * between low_freq_factor and high_freq_factor interpolated smoothly. */
            float low_wavelen = (float)original_context / low_freq_factor;
            float high_wavelen = (float)original_context / high_freq_factor;
            float wavelen = 2.0f * (float)M_PI / freq;
            if (wavelen > low_wavelen) {
                freq = freq / llama3_factor;
            } else if (wavelen >= high_wavelen) {
                float smooth = ((float)original_context / wavelen - low_freq_factor) /
                               (high_freq_factor - low_freq_factor);
                freq = (1 - smooth) * freq / llama3_factor + smooth * freq;
            }
        }
        rt->inv_freq[i] = freq;
    }
}

typedef struct {
    const rope_table *rt;
    float *x;
    int64_t T;
    int n_heads;
    const int32_t *pos;
} rope_job;

static void rope_task(void *p, int ith, int nth) {
    rope_job *j = p;
    const rope_table *rt = j->rt;
    int half = rt->rope_dim / 2;
    long b, e;
    tp_split((long)j->T, ith, nth, &b, &e);
    float cs[256], sn[256];
    for (long t = b; t < e; t++) {
        for (int i = 0; i < half; i++) {
            float angle = (float)j->pos[t] * rt->inv_freq[i];
            cs[i] = cosf(angle);
            sn[i] = sinf(angle);
        }
        for (int h = 0; h < j->n_heads; h++) {
            float *v = j->x + (t * j->n_heads + h) * rt->head_dim;
            for (int i = 0; i < half; i++) {
                int a = rt->neox ? i : 2 * i, c = rt->neox ? i + half : 2 * i + 1;
                float x0 = v[a], x1 = v[c];
                v[a] = x0 * cs[i] - x1 * sn[i];
                v[c] = x0 * sn[i] + x1 * cs[i];
            }
        }
    }
}

void kern_rope(backend *be, const rope_table *rt, float *x, int64_t T, int n_heads,
               const int32_t *pos) {
    rope_job j = {rt, x, T, n_heads, pos};
    if (T < 4) rope_task(&j, 0, 1);
    else tp_run(be->tp, rope_task, &j);
}

/* ---- SiLU gating, adds, embeddings --------------------------------------------------------- */

typedef struct {
    float *gate;
    const float *up;
    int64_t n;
    isa_level isa;
} silu_job;

static void silu_task(void *p, int ith, int nth) {
    silu_job *j = p;
    long b, e;
    tp_split((long)j->n, ith, nth, &b, &e);
#if defined(__x86_64__)
    if (j->isa >= ISA_AVX2) {
        ops_silu_mul_avx2(j->gate + b, j->up + b, e - b);
        return;
    }
#endif
    for (long i = b; i < e; i++) {
        float g = j->gate[i];
        j->gate[i] = g / (1.0f + expf(-g)) * j->up[i];
    }
}

void kern_silu_mul(backend *be, float *gate, const float *up, int64_t T, int64_t n) {
    silu_job j = {gate, up, T * n, be->isa};
    if (T * n < 8192) silu_task(&j, 0, 1);
    else tp_run(be->tp, silu_task, &j);
}

void kern_add(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void kern_add_bias(float *y, const float *b, int64_t T, int64_t n) {
    for (int64_t t = 0; t < T; t++) kern_add(y + t * n, b, n);
}

int kern_get_rows(backend *be, const tensor_view *table, const int32_t *ids, int64_t T,
                  float *out) {
    (void)be;
    int64_t dim = table->ne[0];
    size_t row_bytes = dtype_row_bytes(table->type, dim);
    if (!row_bytes || !kern_matmul_supports(table->type)) return -1;
    for (int64_t t = 0; t < T; t++) {
        if (ids[t] < 0 || ids[t] >= table->ne[1]) return -1;
        if (table->layout != TL_ROWS) {
            kern_matmul_panel_row(table, ids[t], out + t * dim);
            continue;
        }
        const uint8_t *row = (const uint8_t *)table->data + (size_t)ids[t] * row_bytes;
        quant_dequant_row(table->type, row, out + t * dim, dim);
    }
    return 0;
}

/* ---- KV cache and attention ---------------------------------------------------------------- */

static void store_row(dtype_t type, void *base, int64_t slot, int n, const float *x, isa_level isa) {
    (void)isa;
    if (type == DT_F32) {
        memcpy((float *)base + slot * n, x, (size_t)n * sizeof(float));
    } else if (type == DT_F16) {
        uint16_t *dst = (uint16_t *)base + slot * n;
#if defined(__x86_64__)
        if (isa >= ISA_AVX2) {
            ops_f32_to_f16_avx2(x, dst, n);
            return;
        }
#endif
        for (int i = 0; i < n; i++) dst[i] = fp32_to_fp16(x[i]);
    } else {
        uint16_t *dst = (uint16_t *)base + slot * n;
        for (int i = 0; i < n; i++) dst[i] = fp32_to_bf16(x[i]);
    }
}

void kern_kv_store(backend *be, const kv_layer *kv, const float *k, const float *v, int64_t T,
                   const int32_t *slots) {
    for (int64_t t = 0; t < T; t++) {
        store_row(kv->type, kv->k, slots[t], kv->row_elems, k + t * kv->row_elems, be->isa);
        store_row(kv->type, kv->v, slots[t], kv->row_elems, v + t * kv->row_elems, be->isa);
    }
}

/* ---- attention: scalar reference path ----------------------------------------------------- */

typedef float (*dot_fn)(const float *q, const void *k, int n);
typedef void (*axpy_fn)(float *y, float a, const void *x, int n);

static float dot_f32_s(const float *q, const void *k, int n) { return ops_dot_f32_scalar(q, k, n); }
static float dot_f16_s(const float *q, const void *k, int n) {
    const uint16_t *h = k;
    float s = 0;
    for (int i = 0; i < n; i++) s += q[i] * fp16_to_fp32(h[i]);
    return s;
}
static float dot_bf16_s(const float *q, const void *k, int n) {
    const uint16_t *h = k;
    float s = 0;
    for (int i = 0; i < n; i++) s += q[i] * bf16_to_fp32(h[i]);
    return s;
}
static void axpy_f32_s(float *y, float a, const void *x, int n) { ops_axpy_f32_scalar(y, a, x, n); }
static void axpy_f16_s(float *y, float a, const void *x, int n) {
    const uint16_t *h = x;
    for (int i = 0; i < n; i++) y[i] += a * fp16_to_fp32(h[i]);
}
static void axpy_bf16_s(float *y, float a, const void *x, int n) {
    const uint16_t *h = x;
    for (int i = 0; i < n; i++) y[i] += a * bf16_to_fp32(h[i]);
}

typedef struct {
    const kv_layer *kv;
    const float *q;
    int64_t T;
    int n_heads, n_kv_heads, head_dim;
    float scale;
    const attn_batch *ab;
    float *out;
    float *scratch;
    int64_t scratch_per_thread;
    dot_fn dot;
    axpy_fn axpy;
    size_t elem;
} attn_job;

static int32_t attn_first_key(const attn_batch *ab, int64_t t) {
    int32_t last = ab->pos[t];
    return ab->window > 0 && last - ab->window + 1 > 0 ? last - ab->window + 1 : 0;
}

/* One unit of work is (token, kv head): the query heads that share a kv head (grouped-query
 * attention) are scored and summed in the same pass over its keys and values, so each K/V row
 * is read from memory once per group instead of once per query head. */
static void attn_task(void *p, int ith, int nth) {
    attn_job *j = p;
    const attn_batch *ab = j->ab;
    int group = j->n_heads / j->n_kv_heads;
    float *scores = j->scratch + (int64_t)ith * j->scratch_per_thread;
    int hd = j->head_dim;
    const uint8_t *kbase = j->kv->k, *vbase = j->kv->v;
    size_t row_bytes = (size_t)j->kv->row_elems * j->elem;
    long b, e;
    tp_split((long)(j->T * j->n_kv_heads), ith, nth, &b, &e);
    for (long u = b; u < e; u++) {
        int64_t t = u / j->n_kv_heads;
        int kvh = (int)(u % j->n_kv_heads);
        int32_t first = attn_first_key(ab, t);
        int32_t n_keys = ab->pos[t] - first + 1;
        const int32_t *slots = ab->seq_slots[ab->seq[t]];
        size_t head_off = (size_t)kvh * hd * j->elem;
        const float *q = j->q + (t * j->n_heads + (int64_t)kvh * group) * hd;
        float *o = j->out + (t * j->n_heads + (int64_t)kvh * group) * hd;
        float max[64], inv[64];
        for (int g = 0; g < group; g++) max[g] = -INFINITY;
        for (int32_t p = 0; p < n_keys; p++) {
            const uint8_t *k = kbase + (size_t)slots[first + p] * row_bytes + head_off;
            for (int g = 0; g < group; g++) {
                float s = j->dot(q + g * hd, k, hd) * j->scale;
                scores[(int64_t)g * n_keys + p] = s;
                if (s > max[g]) max[g] = s;
            }
        }
        for (int g = 0; g < group; g++) {
            float *sg = scores + (int64_t)g * n_keys, sum = 0;
            for (int32_t p = 0; p < n_keys; p++) {
                sg[p] = expf(sg[p] - max[g]);
                sum += sg[p];
            }
            inv[g] = 1.0f / sum;
        }
        memset(o, 0, (size_t)group * (size_t)hd * sizeof(float));
        for (int32_t p = 0; p < n_keys; p++) {
            const uint8_t *v = vbase + (size_t)slots[first + p] * row_bytes + head_off;
            for (int g = 0; g < group; g++)
                j->axpy(o + g * hd, scores[(int64_t)g * n_keys + p] * inv[g], v, hd);
        }
    }
}

static int attention_scalar(backend *be, const kv_layer *kv, const float *q, int64_t T,
                            int n_heads, int n_kv_heads, int head_dim, float scale,
                            const attn_batch *ab, float *out) {
    int64_t max_keys = 1;
    for (int64_t t = 0; t < T; t++)
        if (ab->pos[t] + 1 > max_keys) max_keys = ab->pos[t] + 1;
    int nth = tp_size(be->tp);
    int64_t per = ((max_keys + 15) & ~(int64_t)15) * (n_heads / n_kv_heads);
    float *scratch = backend_scratch(be, (size_t)(per * nth) * sizeof(float));
    if (!scratch) return -1;
    attn_job j = {kv, q, T, n_heads, n_kv_heads, head_dim, scale, ab, out, scratch, per,
                  NULL, NULL, kv->type == DT_F32 ? 4 : 2};
    if (kv->type == DT_F32) j.dot = dot_f32_s, j.axpy = axpy_f32_s;
    else if (kv->type == DT_F16) j.dot = dot_f16_s, j.axpy = axpy_f16_s;
    else j.dot = dot_bf16_s, j.axpy = axpy_bf16_s;
    if (T * n_kv_heads < 2) attn_task(&j, 0, 1);
    else tp_run(be->tp, attn_task, &j);
    return 0;
}

/* ---- attention: AVX2 tiled path ----------------------------------------------------------- */
#if defined(__x86_64__)

/* A tile is a run of consecutive tokens of one sequence at consecutive positions (a prefill
 * chunk): they share most of their keys, so each K/V row is converted once per tile. Tiles only
 * change speed, never results (x86/ops_x86.h), so their size is a free choice: at most
 * ATTN_TILE_MAX tokens, with the scores of a tile kept within ATTN_TILE_SCORE_BYTES. */
#define ATTN_TILE_MAX 16
#define ATTN_TILE_SCORE_BYTES (512 * 1024)

typedef struct {
    int64_t t0;
    int nq;
} attn_tile;

/* Tokens of the tile that starts at t. */
static int attn_tile_len(const attn_batch *ab, int64_t T, int64_t t, int group) {
    int32_t first = attn_first_key(ab, t);
    int nq = 1;
    while (t + nq < T && nq < ATTN_TILE_MAX && ab->seq[t + nq] == ab->seq[t] &&
           ab->pos[t + nq] == ab->pos[t + nq - 1] + 1) {
        int64_t span = (int64_t)ab->pos[t + nq] - first + 1;
        if ((size_t)(nq + 1) * (size_t)group * (size_t)(span + 16) * sizeof(float) >
            ATTN_TILE_SCORE_BYTES)
            break;
        nq++;
    }
    return nq;
}

typedef struct {
    const kv_layer *kv;
    const float *q;
    float *out;
    int n_heads, n_kv_heads, head_dim;
    float scale;
    const attn_batch *ab;
    const attn_tile *tiles;
    const int32_t *first;
    long n_units;
    float *work;
    size_t work_per_thread;
    atomic_long next;
} attn_tiled_job;

/* Units are (tile, kv head), taken from a shared counter, latest tiles first: a causal prefill's
 * later tokens see more keys, so static ranges would leave one thread with most of the work. */
static void attn_tiled_task(void *p, int ith, int nth) {
    (void)nth;
    attn_tiled_job *j = p;
    float *work = j->work + (size_t)ith * j->work_per_thread;
    int group = j->n_heads / j->n_kv_heads;
    for (;;) {
        long u = atomic_fetch_add(&j->next, 1);
        if (u >= j->n_units) break;
        u = j->n_units - 1 - u;
        const attn_tile *tl = &j->tiles[u / j->n_kv_heads];
        int kvh = (int)(u % j->n_kv_heads);
        int64_t qoff = (tl->t0 * j->n_heads + (int64_t)kvh * group) * j->head_dim;
        ops_attn_tile t = {
            .q = j->q + qoff,
            .out = j->out + qoff,
            .q_stride = (int64_t)j->n_heads * j->head_dim,
            .nq = tl->nq,
            .group = group,
            .head_dim = j->head_dim,
            .scale = j->scale,
            .first = j->first + tl->t0,
            .last = j->ab->pos + tl->t0,
            .slots = j->ab->seq_slots[j->ab->seq[tl->t0]],
            .kv_type = j->kv->type,
            .k = j->kv->k,
            .v = j->kv->v,
            .row_elems = j->kv->row_elems,
            .head_off = (int64_t)kvh * j->head_dim,
        };
        ops_attn_tile_avx2(&t, work);
    }
}

static size_t align64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

static int attention_tiled(backend *be, const kv_layer *kv, const float *q, int64_t T,
                           int n_heads, int n_kv_heads, int head_dim, float scale,
                           const attn_batch *ab, float *out) {
    int group = n_heads / n_kv_heads;
    long n_tiles = 0;
    size_t work = 0;
    for (int64_t t = 0; t < T; n_tiles++) {
        int nq = attn_tile_len(ab, T, t, group);
        size_t w = ops_attn_tile_work_avx2(nq, group, head_dim,
                                           (int64_t)ab->pos[t + nq - 1] - attn_first_key(ab, t) + 1);
        if (w > work) work = w;
        t += nq;
    }
    work = (work + 15) & ~(size_t)15;
    int nth = tp_size(be->tp);
    size_t tiles_bytes = align64((size_t)n_tiles * sizeof(attn_tile));
    size_t first_bytes = align64((size_t)T * sizeof(int32_t));
    uint8_t *scratch =
        backend_scratch(be, tiles_bytes + first_bytes + (size_t)nth * work * sizeof(float));
    if (!scratch) return -1;
    attn_tile *tiles = (attn_tile *)scratch;
    int32_t *first = (int32_t *)(scratch + tiles_bytes);
    for (int64_t t = 0; t < T; t++) first[t] = attn_first_key(ab, t);
    n_tiles = 0;
    for (int64_t t = 0; t < T; n_tiles++) {
        tiles[n_tiles] = (attn_tile){t, attn_tile_len(ab, T, t, group)};
        t += tiles[n_tiles].nq;
    }
    attn_tiled_job j = {.kv = kv, .q = q, .out = out, .n_heads = n_heads,
                        .n_kv_heads = n_kv_heads, .head_dim = head_dim, .scale = scale, .ab = ab,
                        .tiles = tiles, .first = first, .n_units = n_tiles * n_kv_heads,
                        .work = (float *)(scratch + tiles_bytes + first_bytes),
                        .work_per_thread = work};
    atomic_init(&j.next, 0);
    if (j.n_units < 2) attn_tiled_task(&j, 0, 1);
    else tp_run(be->tp, attn_tiled_task, &j);
    return 0;
}
#endif

int kern_attention(backend *be, const kv_layer *kv, const float *q, int64_t T, int n_heads,
                   int n_kv_heads, int head_dim, float scale, const attn_batch *ab, float *out) {
    if (n_kv_heads <= 0 || n_heads % n_kv_heads != 0 || n_heads / n_kv_heads > 64) return -1;
    if (T <= 0) return 0;
#if defined(__x86_64__)
    if (be->isa >= ISA_AVX2 && head_dim % 8 == 0 &&
        (kv->type == DT_F32 || kv->type == DT_F16 || kv->type == DT_BF16))
        return attention_tiled(be, kv, q, T, n_heads, n_kv_heads, head_dim, scale, ab, out);
#endif
    return attention_scalar(be, kv, q, T, n_heads, n_kv_heads, head_dim, scale, ab, out);
}
