/* The backend object that every op receives: where memory comes from, which threads compute,
 * and the scratch space ops may use. model/ and runtime/ see only this and the op functions,
 * never a loop over elements, so a CUDA (or Ascend) backend can replace the CPU one without
 * touching them. This is the CPU backend; buffers are host memory. */
#ifndef SGLC_KERNELS_BACKEND_H
#define SGLC_KERNELS_BACKEND_H

#include <stddef.h>

#include "base/cpu.h"
#include "base/threadpool.h"

typedef enum { DEVICE_CPU = 0, DEVICE_CUDA = 1 } device_kind;

typedef struct backend {
    device_kind device;
    threadpool *tp;
    int n_threads;
    isa_level isa;       /* path the ops take (cpu_get()->level at creation) */
    /* Scratch for ops (quantized activations, attention scores); grown on demand by
     * backend_scratch, owned by the backend, valid until the next call of backend_scratch. */
    void *scratch;
    size_t scratch_size;
} backend;

/* n_threads <= 0 means every CPU the process may run on. */
backend *backend_create_cpu(int n_threads);
void backend_destroy(backend *be);
/* Returns at least `bytes` of 64-byte-aligned scratch; NULL when memory is exhausted. */
void *backend_scratch(backend *be, size_t bytes);
/* Device memory for long-lived buffers (KV pool, repacked weights); 64-byte aligned. */
void *backend_alloc(backend *be, size_t bytes);
void backend_free(backend *be, void *ptr, size_t bytes);

#endif
