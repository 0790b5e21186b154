/* Scalar encoders and decoders of the weight formats (kernels/quant.h). They follow GGML's
 * reference code (ggml-quants.c) step for step, so rows we quantize match the bytes llama.cpp
 * would write and rows we decode give llama.cpp's floats. Speed is secondary here: the
 * matmul kernels never decode whole rows. */
#include "kernels/quant.h"

#include <math.h>
#include <string.h>

#include "base/fp16.h"
#include "kernels/kquants.h"

static uint32_t load_qh(const uint8_t qh[4]) {
    uint32_t v;
    memcpy(&v, qh, 4);
    return v;
}

static void dequant_q4_0(const block_q4_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QUANT_QK / 2; j++) {
            y[i * QUANT_QK + j] = (float)((b[i].qs[j] & 0x0f) - 8) * d;
            y[i * QUANT_QK + j + 16] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void dequant_q4_1(const block_q4_1 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
        for (int j = 0; j < QUANT_QK / 2; j++) {
            float lo = (float)(b[i].qs[j] & 0x0f) * d;
            float hi = (float)(b[i].qs[j] >> 4) * d;
            y[i * QUANT_QK + j] = lo + m;
            y[i * QUANT_QK + j + 16] = hi + m;
        }
    }
}

static void dequant_q5_0(const block_q5_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = fp16_to_fp32(b[i].d);
        uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < QUANT_QK / 2; j++) {
            int h0 = (int)((qh >> j) << 4) & 0x10;
            int h1 = (int)(qh >> (j + 12)) & 0x10;
            y[i * QUANT_QK + j] = (float)(((b[i].qs[j] & 0x0f) | h0) - 16) * d;
            y[i * QUANT_QK + j + 16] = (float)(((b[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

static void dequant_q5_1(const block_q5_1 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
        uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < QUANT_QK / 2; j++) {
            int h0 = (int)((qh >> j) << 4) & 0x10;
            int h1 = (int)(qh >> (j + 12)) & 0x10;
            float lo = (float)((b[i].qs[j] & 0x0f) | h0) * d;
            float hi = (float)((b[i].qs[j] >> 4) | h1) * d;
            y[i * QUANT_QK + j] = lo + m;
            y[i * QUANT_QK + j + 16] = hi + m;
        }
    }
}

static void dequant_q8_0(const block_q8_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QUANT_QK; j++) y[i * QUANT_QK + j] = (float)b[i].qs[j] * d;
    }
}

bool quant_can_dequant(dtype_t type) {
    switch (type) {
    case DT_F32: case DT_F16: case DT_BF16: case DT_Q4_0: case DT_Q4_1: case DT_Q5_0:
    case DT_Q5_1: case DT_Q8_0: case DT_Q4_K: case DT_Q5_K: case DT_Q6_K:
        return true;
    default:
        return false;
    }
}

void quant_dequant_row(dtype_t type, const void *src, float *dst, int64_t n) {
    int64_t nb = n / QUANT_QK;
    switch (type) {
    case DT_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case DT_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = fp16_to_fp32(((const uint16_t *)src)[i]);
        break;
    case DT_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_fp32(((const uint16_t *)src)[i]);
        break;
    case DT_Q4_0: dequant_q4_0(src, dst, nb); break;
    case DT_Q4_1: dequant_q4_1(src, dst, nb); break;
    case DT_Q5_0: dequant_q5_0(src, dst, nb); break;
    case DT_Q5_1: dequant_q5_1(src, dst, nb); break;
    case DT_Q8_0: dequant_q8_0(src, dst, nb); break;
    case DT_Q4_K: case DT_Q5_K: case DT_Q6_K: kq_dequant_row(type, src, dst, n); break;
    default: memset(dst, 0, (size_t)n * sizeof(float)); break;
    }
}

/* Q4_0 / Q5_0: the value of largest magnitude (sign kept) maps to -8 / -16. */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void quantize_q4_0(const float *x, block_q4_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QUANT_QK) {
        float d = signed_absmax(x, QUANT_QK) / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QUANT_QK / 2; j++) {
            int q0 = (int8_t)(x[j] * id + 8.5f), q1 = (int8_t)(x[j + 16] * id + 8.5f);
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void min_max(const float *x, int n, float *min, float *max) {
    float lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *min = lo;
    *max = hi;
}

static void quantize_q4_1(const float *x, block_q4_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QUANT_QK) {
        float min, max;
        min_max(x, QUANT_QK, &min, &max);
        float d = (max - min) / 15.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        y[i].m = fp32_to_fp16(min);
        for (int j = 0; j < QUANT_QK / 2; j++) {
            int q0 = (int8_t)((x[j] - min) * id + 0.5f);
            int q1 = (int8_t)((x[j + 16] - min) * id + 0.5f);
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void quantize_q5_0(const float *x, block_q5_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QUANT_QK) {
        float d = signed_absmax(x, QUANT_QK) / -16.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < QUANT_QK / 2; j++) {
            int q0 = (int8_t)(x[j] * id + 16.5f), q1 = (int8_t)(x[j + 16] * id + 16.5f);
            q0 = q0 < 31 ? q0 : 31;
            q1 = q1 < 31 ? q1 : 31;
            y[i].qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= ((uint32_t)(q0 & 0x10) >> 4) << j;
            qh |= ((uint32_t)(q1 & 0x10) >> 4) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static void quantize_q5_1(const float *x, block_q5_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QUANT_QK) {
        float min, max;
        min_max(x, QUANT_QK, &min, &max);
        float d = (max - min) / 31.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        y[i].m = fp32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < QUANT_QK / 2; j++) {
            int q0 = (int)((x[j] - min) * id + 0.5f), q1 = (int)((x[j + 16] - min) * id + 0.5f);
            q0 = q0 < 31 ? q0 : 31;
            q1 = q1 < 31 ? q1 : 31;
            y[i].qs[j] = (uint8_t)((q0 & 0x0f) | ((q1 & 0x0f) << 4));
            qh |= ((uint32_t)(q0 & 0x10) >> 4) << j;
            qh |= ((uint32_t)(q1 & 0x10) >> 4) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static void quantize_q8_0(const float *x, block_q8_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QUANT_QK) {
        float amax = 0.0f;
        for (int j = 0; j < QUANT_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < QUANT_QK; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

int quant_quantize_row(dtype_t type, const float *src, void *dst, int64_t n) {
    if (n < 0 || n % dtype_block_elems(type) != 0) return -1;
    int64_t nb = n / QUANT_QK;
    switch (type) {
    case DT_F32: memcpy(dst, src, (size_t)n * sizeof(float)); return 0;
    case DT_F16:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = fp32_to_fp16(src[i]);
        return 0;
    case DT_BF16:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = fp32_to_bf16(src[i]);
        return 0;
    case DT_Q4_0: quantize_q4_0(src, dst, nb); return 0;
    case DT_Q4_1: quantize_q4_1(src, dst, nb); return 0;
    case DT_Q5_0: quantize_q5_0(src, dst, nb); return 0;
    case DT_Q5_1: quantize_q5_1(src, dst, nb); return 0;
    case DT_Q8_0: quantize_q8_0(src, dst, nb); return 0;
    default: return -1;
    }
}

void quant_act_row_scalar(const float *x, void *row, int64_t n) {
    int8_t *qs = row;
    float *d = (float *)((char *)row + n), *s = d + n / QUANT_QK;
    for (int64_t b = 0; b < n / QUANT_QK; b++) {
        const float *xb = x + b * QUANT_QK;
        float amax = 0.0f;
        for (int j = 0; j < QUANT_QK; j++) amax = fmaxf(amax, fabsf(xb[j]));
        float db = amax / 127.0f;
        float id = db != 0.0f ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < QUANT_QK; j++) {
            int q = (int)quant_round(xb[j] * id);
            qs[b * QUANT_QK + j] = (int8_t)q;
            sum += q;
        }
        /* scales kept at half precision, as GGML's q8_0/q8_1 blocks store them, so products
         * with GGUF weights round as llama.cpp's do */
        d[b] = fp16_to_fp32(fp32_to_fp16(db));
        s[b] = fp16_to_fp32(fp32_to_fp16(db * (float)sum));
    }
}

void quant_act_i8_row_scalar(const float *x, int8_t *q, float *d, int64_t n) {
    float amax = 0.0f;
    for (int64_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    for (int64_t i = 0; i < n; i++) q[i] = (int8_t)quant_round(x[i] * id);
    *d = amax / 127.0f;
}
