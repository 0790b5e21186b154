/* IEEE half and bfloat16 conversions, scalar and exact (round to nearest even), used by file
 * readers, reference kernels and tests. Vector kernels use F16C/NEON instructions instead. */
#ifndef SGLC_BASE_FP16_H
#define SGLC_BASE_FP16_H

#include <stdint.h>
#include <string.h>

static inline float fp32_from_bits(uint32_t w) {
    float f;
    memcpy(&f, &w, 4);
    return f;
}
static inline uint32_t fp32_to_bits(float f) {
    uint32_t w;
    memcpy(&w, &f, 4);
    return w;
}

static inline float fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0) {
        if (mant == 0) return fp32_from_bits(sign);
        /* subnormal: value = mant * 2^-24 */
        float v = (float)mant * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31) return fp32_from_bits(sign | 0x7f800000u | (mant << 13));
    return fp32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
}

static inline uint16_t fp32_to_fp16(float f) {
    uint32_t x = fp32_to_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffff;
    if (absx > 0x7f800000) return (uint16_t)(sign | 0x7e00); /* NaN */
    if (absx >= 0x477ff000) return (uint16_t)(sign | 0x7c00); /* overflow to inf */
    if (absx < 0x38800000) {                                   /* subnormal or zero */
        float a = fp32_from_bits(absx);
        /* scale so the subnormal's units land in the integer part, then round to even */
        float scaled = a * 16777216.0f; /* 2^24 */
        uint32_t m = (uint32_t)scaled;
        float rem = scaled - (float)m;
        if (rem > 0.5f || (rem == 0.5f && (m & 1))) m++;
        return (uint16_t)(sign | m);
    }
    uint32_t exp = ((absx >> 23) - 112) << 10;
    uint32_t mant = (absx >> 13) & 0x3ff;
    uint32_t rest = absx & 0x1fff;
    uint32_t h = exp | mant;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

static inline float bf16_to_fp32(uint16_t b) { return fp32_from_bits((uint32_t)b << 16); }

static inline uint16_t fp32_to_bf16(float f) {
    uint32_t x = fp32_to_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

#endif
