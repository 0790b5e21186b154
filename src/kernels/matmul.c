/* The matmul driver (kernels/matmul.h): checks shapes, quantizes each activation row once into
 * backend scratch, then splits the output rows between the pool's threads in chunks taken from
 * a shared counter (so a core busy with another process does not hold the others back) and
 * hands blocks of rows x tokens to the path's micro-kernels. Also the scalar path, the K-quant
 * route (kernels/kquants.h), the w8a8 entry and the double-precision reference.
 *
 * Why Y stays batch-invariant: every path computes Y[t][o] from row o of W and the quantized
 * row t of X with one fixed sequence of operations (see x86/matmul_tiles.h); activation rows are
 * quantized one by one; and threads split only output rows, never the sum over the input. */
#include "kernels/matmul.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/fp16.h"
#include "kernels/kquants.h"
#include "kernels/quant.h"

#define MM_L1_WEIGHT_BYTES (32 * 1024)  /* weights of one row chunk, kept near the core */
#define MM_L2_ACT_BYTES (256 * 1024)    /* activations of one token block */
/* Up to this many tokens (decode), every thread quantizes all of X into its own copy instead
 * of sharing one, which saves the pool's second fork-join per matmul (211 per SmolLM2 decode
 * step; each waits for a helper that another process may have descheduled) for a microsecond
 * of repeated work. Each copy is made by the same function from the same X: the same bytes. */
#define MM_PRIVATE_ACT_T 4

/* ---- scalar path: one pair at a time, the same code for every pair ---- */

static float scalar_dot_q(const kern_mm_args *a, const uint8_t *w, const char *xrow) {
    const int64_t n = a->n_in, nb = n / QUANT_QK;
    const int8_t *xq = (const int8_t *)xrow;
    const float *xd = quant_act_d(xrow, n), *xs = quant_act_s(xrow, n);
    float acc = 0.0f, macc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *x = xq + b * QUANT_QK;
        int isum = 0;
        float d, m = 0.0f;
        switch (a->type) {
        case DT_Q8_0: {
            const block_q8_0 *blk = (const block_q8_0 *)w + b;
            for (int j = 0; j < QUANT_QK; j++) isum += blk->qs[j] * x[j];
            d = fp16_to_fp32(blk->d);
            break;
        }
        case DT_Q4_0:
        case DT_Q4_1: {
            const uint8_t *qs;
            if (a->type == DT_Q4_0) {
                const block_q4_0 *blk = (const block_q4_0 *)w + b;
                d = fp16_to_fp32(blk->d);
                m = -8.0f * d;
                qs = blk->qs;
            } else {
                const block_q4_1 *blk = (const block_q4_1 *)w + b;
                d = fp16_to_fp32(blk->d);
                m = fp16_to_fp32(blk->m);
                qs = blk->qs;
            }
            for (int j = 0; j < QUANT_QK / 2; j++)
                isum += (qs[j] & 0x0f) * x[j] + (qs[j] >> 4) * x[j + 16];
            break;
        }
        default: { /* Q5_0, Q5_1 */
            const uint8_t *qs;
            uint32_t qh;
            if (a->type == DT_Q5_0) {
                const block_q5_0 *blk = (const block_q5_0 *)w + b;
                d = fp16_to_fp32(blk->d);
                m = -16.0f * d;
                qs = blk->qs;
                memcpy(&qh, blk->qh, 4);
            } else {
                const block_q5_1 *blk = (const block_q5_1 *)w + b;
                d = fp16_to_fp32(blk->d);
                m = fp16_to_fp32(blk->m);
                qs = blk->qs;
                memcpy(&qh, blk->qh, 4);
            }
            for (int j = 0; j < QUANT_QK / 2; j++) {
                int lo = (qs[j] & 0x0f) | (int)(((qh >> j) << 4) & 0x10);
                int hi = (qs[j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
                isum += lo * x[j] + hi * x[j + 16];
            }
            break;
        }
        }
        float scale = d * xd[b];
        float p = (float)isum * scale;
        acc += p;
        float pm = m * xs[b];
        macc += pm;
    }
    return acc + macc;
}

static float scalar_dot_f(dtype_t type, const uint8_t *w, const float *x, int64_t n) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float wv = type == DT_F32   ? ((const float *)w)[i]
                   : type == DT_F16 ? fp16_to_fp32(((const uint16_t *)w)[i])
                                    : bf16_to_fp32(((const uint16_t *)w)[i]);
        float p = wv * x[i];
        acc += p;
    }
    return acc;
}

void kern_mm_rows_scalar(const kern_mm_args *a, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
    for (int64_t o = r0; o < r1; o++) {
        const uint8_t *w = a->w + o * a->w_stride;
        for (int64_t t = t0; t < t1; t++) {
            const char *xrow = (const char *)a->x + t * a->x_stride;
            float v;
            switch (a->type) {
            case DT_F32: case DT_F16: case DT_BF16:
                v = scalar_dot_f(a->type, w, (const float *)xrow, a->n_in);
                break;
            case DT_I8: {
                int32_t dot = 0;
                for (int64_t i = 0; i < a->n_in; i++)
                    dot += (int32_t)((const int8_t *)w)[i] * ((const int8_t *)xrow)[i];
                v = (float)dot * a->x_scale[t];
                v = v * a->w_scale[o];
                break;
            }
            default: v = scalar_dot_q(a, w, xrow); break;
            }
            a->y[t * a->ldy + o] = v;
        }
    }
}

/* ---- K-quants: activations as q8_K, dot products from kernels/kquants.c ---- */

static void kq_rows(const kern_mm_args *a, isa_level isa, int64_t r0, int64_t r1, int64_t t0,
                    int64_t t1) {
    size_t xs_blocks = a->x_stride / sizeof(block_q8_K);
    for (int64_t o = r0; o < r1; o += 4) {
        int nr = (int)(r1 - o < 4 ? r1 - o : 4);
        for (int64_t t = t0; t < t1; t += 4) {
            int nt = (int)(t1 - t < 4 ? t1 - t : 4);
            const block_q8_K *x = (const block_q8_K *)((const char *)a->x + t * a->x_stride);
            kq_vec_dot_tile(a->type, a->n_in, a->w + o * a->w_stride, a->w_stride, nr, x,
                            xs_blocks, nt, a->y + t * a->ldy + o, (int)a->ldy, isa);
        }
    }
}

/* ---- the driver ---- */

typedef enum { ACT_NONE, ACT_LEGACY, ACT_Q8K, ACT_I8 } act_kind;

typedef struct {
    kern_mm_args a;
    isa_level isa;
    kern_mm_rows_fn rows; /* the path's micro-kernels for this weight */
    int64_t row_align;    /* a chunk of rows is a multiple of this */
    act_kind act;
    const float *X;
    int64_t T, n_out;
    int64_t chunk, n_chunks, t_block;
    bool private_act;      /* each thread quantizes X into x + ith * act_bytes */
    size_t act_bytes;
    atomic_long next;
} mm_job;

static kern_mm_rows_fn rows_fn(isa_level isa) {
#if defined(__x86_64__)
    if (isa >= ISA_AVX512) return kern_mm_rows_avx512;
    if (isa >= ISA_AVX2) return kern_mm_rows_avx2;
#elif defined(__aarch64__)
    if (isa == ISA_NEON) return kern_mm_rows_neon;
#endif
    (void)isa;
    return kern_mm_rows_scalar;
}

/* Quantizes tokens [t0, t1) of X into the activation rows at x. */
static void quantize_rows(const mm_job *job, void *x, long t0, long t1) {
    const int64_t n = job->a.n_in;
    for (long t = t0; t < t1; t++) {
        const float *xf = job->X + t * n;
        char *row = (char *)x + t * job->a.x_stride;
        switch (job->act) {
        case ACT_LEGACY:
#if defined(__x86_64__)
            if (job->isa >= ISA_AVX2) {
                kern_mm_act_avx2(xf, row, n);
                break;
            }
#endif
            quant_act_row_scalar(xf, row, n);
            break;
        case ACT_Q8K: kq_quantize_row_q8_K(xf, (block_q8_K *)row, n); break;
        case ACT_I8:
            quant_act_i8_row_scalar(xf, (int8_t *)row, (float *)&job->a.x_scale[t], n);
            break;
        case ACT_NONE: break;
        }
    }
}

static void quantize_task(void *ctx, int ith, int nth) {
    mm_job *job = ctx;
    long t0, t1;
    tp_split((long)job->T, ith, nth, &t0, &t1);
    quantize_rows(job, (void *)job->a.x, t0, t1);
}

static kern_mm_rows_fn panel_fn(dtype_t type, isa_level isa) {
#if defined(__x86_64__)
    if (isa >= ISA_AVX2)
        return type == DT_Q8_0   ? kern_mm_panel_q8_avx2
               : type == DT_Q4_1 ? kern_mm_panel_q4_1_avx2
                                 : kern_mm_panel_avx2;
#endif
    (void)isa;
    return type == DT_BF16 ? kern_mm_panel_scalar : kern_mm_panel8_scalar;
}

static void rows_task(void *ctx, int ith, int nth) {
    (void)nth;
    mm_job *job = ctx;
    kern_mm_rows_fn rows = job->rows;
    kern_mm_args a = job->a;
    if (job->private_act) {
        a.x = (const char *)job->a.x + (size_t)ith * job->act_bytes;
        quantize_rows(job, (void *)a.x, 0, (long)job->T);
    }
    for (;;) {
        long c = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
        if (c >= job->n_chunks) break;
        int64_t r0 = c * job->chunk;
        int64_t r1 = r0 + job->chunk < job->n_out ? r0 + job->chunk : job->n_out;
        for (int64_t t0 = 0; t0 < job->T; t0 += job->t_block) {
            int64_t t1 = t0 + job->t_block < job->T ? t0 + job->t_block : job->T;
            if (job->act == ACT_Q8K)
                kq_rows(&a, job->isa, r0, r1, t0, t1);
            else
                rows(&a, r0, r1, t0, t1);
        }
    }
}

static isa_level effective_isa(const backend *be) {
    isa_level best = cpu_get()->best;
    return be->isa < best ? be->isa : best;
}

/* Runs a prepared job: activations (if any) then rows. */
static int run_job(backend *be, mm_job *job) {
    int nth = be->tp ? tp_size(be->tp) : 1;
    size_t row_bytes = job->a.w_stride;
    int64_t chunk = (int64_t)(MM_L1_WEIGHT_BYTES / (row_bytes ? row_bytes : 1));
    int64_t per_thread = (job->n_out + 4 * nth - 1) / (4 * nth); /* >= 4 chunks per thread */
    if (chunk > per_thread) chunk = per_thread;
    /* whole tiles: 8 rows is a multiple of every row-layout tile, 16 a panel */
    const int64_t al = job->row_align;
    chunk = (chunk + al - 1) / al * al;
    if (chunk < al) chunk = al;
    job->chunk = chunk;
    job->n_chunks = (job->n_out + chunk - 1) / chunk;
    int64_t tb = (int64_t)(MM_L2_ACT_BYTES / (job->a.x_stride ? job->a.x_stride : 1));
    tb &= ~(int64_t)3;
    job->t_block = tb < 4 ? 4 : tb;
    atomic_init(&job->next, 0);
    if (job->act != ACT_NONE && !job->private_act) tp_run(be->tp, quantize_task, job);
    tp_run(be->tp, rows_task, job);
    return 0;
}

bool kern_matmul_supports(dtype_t type) {
    switch (type) {
    case DT_F32: case DT_F16: case DT_BF16: case DT_Q4_0: case DT_Q4_1: case DT_Q5_0:
    case DT_Q5_1: case DT_Q8_0: case DT_Q4_K: case DT_Q5_K: case DT_Q6_K:
        return true;
    default:
        return false;
    }
}

int kern_matmul(backend *be, const tensor_view *W, const float *X, int64_t T, float *Y) {
    if (!be || !W || !kern_matmul_supports(W->type) || T < 0) return -1;
    const int64_t n = W->ne[0], n_out = W->ne[1];
    size_t row_bytes = dtype_row_bytes(W->type, n);
    if (n <= 0 || n_out <= 0 || row_bytes == 0 || !W->data) return -1;
    if (W->nbytes && W->nbytes < row_bytes * (size_t)n_out) return -1;
    if (T == 0) return 0;
    const int64_t panel_rows = kern_matmul_panel_rows(W->layout);
    if (W->layout != TL_ROWS &&
        (W->layout != kern_matmul_pack_layout(W->type) || n_out % panel_rows))
        return -1;

    mm_job job = {0};
    job.isa = effective_isa(be);
    job.rows = W->layout == TL_ROWS ? rows_fn(job.isa) : panel_fn(W->type, job.isa);
    job.row_align = panel_rows > 8 ? panel_rows : 8; /* 8: every row-layout tile divides it */
    job.X = X;
    job.T = T;
    job.n_out = n_out;
    job.a.type = W->type;
    job.a.w = W->data;
    job.a.w_stride = row_bytes;
    job.a.n_in = n;
    job.a.y = Y;
    job.a.ldy = n_out;
    switch (W->type) {
    case DT_F32: case DT_F16: case DT_BF16:
        job.act = ACT_NONE;
        job.a.x = X;
        job.a.x_stride = (size_t)n * sizeof(float);
        break;
    case DT_Q4_K: case DT_Q5_K: case DT_Q6_K:
        job.act = ACT_Q8K;
        job.a.x_stride = (size_t)(n / KQ_QK_K) * sizeof(block_q8_K);
        break;
    default:
        job.act = ACT_LEGACY;
        job.a.x_stride = quant_act_stride(n);
        break;
    }
    if (job.act != ACT_NONE) {
        int nth = be->tp ? tp_size(be->tp) : 1;
        job.act_bytes = (job.a.x_stride * (size_t)T + 63) & ~(size_t)63;
        job.private_act = T <= MM_PRIVATE_ACT_T;
        void *scratch = backend_scratch(be, job.act_bytes * (size_t)(job.private_act ? nth : 1));
        if (!scratch) return -1;
        job.a.x = scratch;
    }
    return run_job(be, &job);
}

int kern_matmul_w8a8(backend *be, const w8a8_weight *W, const float *X, int64_t T, float *Y) {
    if (!be || !W || !W->q || !W->scale || W->n_in <= 0 || W->n_out <= 0 || T < 0) return -1;
    if (T == 0) return 0;
    mm_job job = {0};
    job.isa = effective_isa(be);
    job.rows = rows_fn(job.isa);
    job.row_align = 8;
    job.act = ACT_I8;
    job.X = X;
    job.T = T;
    job.n_out = W->n_out;
    job.a.type = DT_I8;
    job.a.w = (const uint8_t *)W->q;
    job.a.w_stride = (size_t)W->n_in;
    job.a.w_scale = W->scale;
    job.a.n_in = W->n_in;
    job.a.x_stride = ((size_t)W->n_in + 63) & ~(size_t)63;
    job.a.y = Y;
    job.a.ldy = W->n_out;
    size_t q_bytes = job.a.x_stride * (size_t)T;
    char *scratch = backend_scratch(be, q_bytes + (size_t)T * sizeof(float));
    if (!scratch) return -1;
    job.a.x = scratch;
    job.a.x_scale = (const float *)(scratch + q_bytes);
    return run_job(be, &job);
}

void kern_quantize_w8a8_row(const float *w, int64_t n, int8_t *q, float *scale) {
    quant_act_i8_row_scalar(w, q, scale, n);
}

void kern_matmul_ref(const tensor_view *W, const float *X, int64_t T, float *Y) {
    const int64_t n = W->ne[0], n_out = W->ne[1];
    size_t row_bytes = dtype_row_bytes(W->type, n);
    float *w = malloc((size_t)n * sizeof(float));
    if (!w) return;
    for (int64_t o = 0; o < n_out; o++) {
        if (W->layout != TL_ROWS)
            kern_matmul_panel_row(W, o, w);
        else
            quant_dequant_row(W->type, (const uint8_t *)W->data + o * row_bytes, w, n);
        for (int64_t t = 0; t < T; t++) {
            double acc = 0.0;
            for (int64_t i = 0; i < n; i++) acc += (double)w[i] * (double)X[t * n + i];
            Y[t * n_out + o] = (float)acc;
        }
    }
    free(w);
}
