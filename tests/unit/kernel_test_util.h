/* What the kernel unit tests share: one pseudo-random sequence (the same data on every run and
 * machine) and a CPU backend whose helper threads are running before the first job, so that
 * the tests see parts of a job computed on more than one thread. */
#ifndef SGLC_TESTS_KERNEL_TEST_UTIL_H
#define SGLC_TESTS_KERNEL_TEST_UTIL_H

#include <time.h>

#include "kernels/backend.h"

/* Uniform in [-1, 1), from a linear congruential step of *s. */
static inline float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static inline backend *new_backend(int n_threads) {
    backend *be = backend_create_cpu(n_threads);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return be;
}

#endif
