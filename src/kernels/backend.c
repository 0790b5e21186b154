/* CPU implementation of kernels/backend.h. Large buffers come from mmap so that pages are
 * touched (and counted as resident) only when used, and go back to the system at once. */
#include "kernels/backend.h"

#include <stdlib.h>
#include <sys/mman.h>

backend *backend_create_cpu(int n_threads) {
    backend *be = calloc(1, sizeof *be);
    if (!be) return NULL;
    if (n_threads <= 0) n_threads = cpu_count_available();
    be->device = DEVICE_CPU;
    be->n_threads = n_threads;
    be->tp = tp_create(n_threads);
    be->isa = cpu_get()->level;
    return be;
}

void backend_destroy(backend *be) {
    if (!be) return;
    tp_destroy(be->tp);
    free(be->scratch);
    free(be);
}

void *backend_scratch(backend *be, size_t bytes) {
    if (bytes <= be->scratch_size) return be->scratch;
    free(be->scratch);
    size_t size = (bytes + 63) & ~(size_t)63;
    be->scratch = aligned_alloc(64, size);
    be->scratch_size = be->scratch ? size : 0;
    return be->scratch;
}

void *backend_alloc(backend *be, size_t bytes) {
    (void)be;
    if (bytes == 0) return NULL;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void backend_free(backend *be, void *ptr, size_t bytes) {
    (void)be;
    if (ptr) munmap(ptr, bytes);
}
