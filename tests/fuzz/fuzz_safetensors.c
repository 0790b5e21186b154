/* libFuzzer target for formats/safetensors: the input becomes a memfd file, safetensors_open
 * parses it, and every tensor it accepts is read at its first and last byte and looked up by
 * name, along with all the metadata. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "formats/safetensors.h"

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz_safetensors", MFD_CLOEXEC);
    if (fd < 0) return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64], err[512];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    safetensors_file *f = safetensors_open(path, err, sizeof err);
    close(fd);
    if (!f) return 0;
    json_t *meta = safetensors_metadata(f);
    if (meta) {
        const char *k;
        json_t *v;
        json_object_foreach(meta, k, v) sink += strlen(safetensors_meta_get(f, k));
    }
    for (size_t i = 0; i < safetensors_n_tensors(f); i++) {
        const safetensors_tensor *t = safetensors_tensor_at(f, i);
        if (safetensors_find(f, t->name) != t) __builtin_trap();
        const uint8_t *p = t->view.data;
        if (t->view.nbytes) sink += p[0] + p[t->view.nbytes - 1];
        int64_t n = 1;
        for (int d = 0; d < t->rank; d++) n *= t->shape[d];
        if ((uint64_t)n * t->elem_bytes != t->view.nbytes) __builtin_trap();
    }
    safetensors_close(f);
    return 0;
}
