/* libFuzzer target for formats/gguf: the input becomes a file (a memfd, so nothing touches the
 * disk), gguf_open parses it, and every key/value and tensor it accepts is read to the last
 * byte it claims, so ASan sees any pointer that reaches outside the mapping. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "formats/gguf.h"

static volatile uint64_t sink;

static int input_file(const uint8_t *data, size_t size, char *path, size_t len) {
    int fd = memfd_create("fuzz_gguf", MFD_CLOEXEC);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    snprintf(path, len, "/proc/self/fd/%d", fd);
    return fd;
}

static void touch_str(gguf_str s) {
    if (s.len) sink += (uint8_t)s.ptr[0] + (uint8_t)s.ptr[s.len - 1];
}

/* Arrays of arrays are walked element by element, so only the first few are visited. */
static void touch_array(const gguf_file *g, const gguf_kv *kv, int depth) {
    uint64_t n = kv->arr_n < 64 ? kv->arr_n : 64;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        double d;
        int64_t v;
        gguf_str s;
        if (gguf_arr_f64(kv, i, &d)) sink += (uint64_t)(d == d);
        if (gguf_arr_i64(kv, i, &v)) sink += (uint64_t)v;
        if (kv->arr_type == GGUF_STRING && (kv->arr_strs || i < n) && gguf_arr_str(g, kv, i, &s))
            touch_str(s);
        if (kv->arr_type == GGUF_ARRAY && i < n && depth < 4) {
            gguf_kv sub;
            if (gguf_arr_sub(g, kv, i, &sub)) touch_array(g, &sub, depth + 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64], err[512];
    int fd = input_file(data, size, path, sizeof path);
    if (fd < 0) return 0;
    gguf_file *g = gguf_open(path, err, sizeof err);
    close(fd);
    if (!g) return 0;
    for (size_t i = 0; i < gguf_n_kv(g); i++) {
        const gguf_kv *kv = gguf_kv_at(g, i);
        if (gguf_find_kv(g, kv->key) != kv) __builtin_trap();
        uint32_t u;
        int64_t v;
        float f;
        bool b;
        if (gguf_get_u32(g, kv->key, &u)) sink += u;
        if (gguf_get_i64(g, kv->key, &v)) sink += (uint64_t)v;
        if (gguf_get_f32(g, kv->key, &f)) sink += (uint64_t)(f == f);
        if (gguf_get_bool(g, kv->key, &b)) sink += b;
        char *s = gguf_get_str(g, kv->key);
        if (s) sink += (uint8_t)s[0];
        free(s);
        if (kv->type == GGUF_STRING) touch_str(kv->str);
        if (kv->type == GGUF_ARRAY) touch_array(g, kv, 0);
    }
    for (size_t i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        if (gguf_find_tensor(g, t->name) != t) __builtin_trap();
        const uint8_t *p = t->view.data;
        if (t->view.nbytes) sink += p[0] + p[t->view.nbytes - 1];
    }
    gguf_close(g);
    return 0;
}
