/* Vector helpers of the attention op for x86-64, compiled with AVX2+FMA+F16C in ops_avx2.c and
 * called only when cpu_get() says the CPU has them. Summation order is fixed per call (8 lanes,
 * then a fixed horizontal tree), so results do not depend on how a batch is formed. */
#ifndef SGLC_KERNELS_X86_OPS_X86_H
#define SGLC_KERNELS_X86_OPS_X86_H

#include <stdint.h>

float ops_dot_f32_avx2(const float *a, const float *b, int n);
float ops_dot_f16_avx2(const float *a, const uint16_t *b, int n);
void ops_axpy_f32_avx2(float *y, float a, const float *x, int n);
void ops_axpy_f16_avx2(float *y, float a, const uint16_t *x, int n);
void ops_f32_to_f16_avx2(const float *x, uint16_t *y, int n);

#endif
