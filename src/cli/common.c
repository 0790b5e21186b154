/* Implementation of cli/common.h. */
#include "cli/common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

int cli_open_model(const char *command, const char *model_path, const char *quantization,
                   long threads, backend **be, model **m) {
    if (!model_path) {
        fprintf(stderr, "sglc %s: --model-path is required\n", command);
        return 2;
    }
    model_load_opts opts = {QUANT_NONE};
    if (quantization && strcmp(quantization, "none") != 0) {
        if (!strcmp(quantization, "w8a8_int8")) {
            opts.quantization = QUANT_W8A8_INT8;
        } else {
            fprintf(stderr, "sglc %s: --quantization %s is not supported by this build "
                            "(supported: w8a8_int8)\n", command, quantization);
            return 2;
        }
    }
    *be = backend_create_cpu((int)threads);
    if (!*be) {
        fprintf(stderr, "sglc %s: cannot start the CPU backend\n", command);
        return 1;
    }
    char err[1024];
    *m = model_load(model_path, &opts, err, sizeof err);
    if (!*m) {
        fprintf(stderr, "sglc %s: %s\n", command, err);
        backend_destroy(*be);
        *be = NULL;
        return 2;
    }
    return 0;
}

int cli_parse_ids(const char *text, int32_t **ids, int64_t *n) {
    size_t cap = 16;
    int32_t *out = malloc(cap * sizeof *out);
    int64_t count = 0;
    const char *p = text;
    while (out && *p) {
        while (*p == ' ' || *p == ',' || *p == '[' || *p == ']') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX) {
            free(out);
            return -1;
        }
        if ((size_t)count == cap) {
            int32_t *grown = realloc(out, 2 * cap * sizeof *out);
            if (!grown) break;
            out = grown;
            cap *= 2;
        }
        out[count++] = (int32_t)v;
        p = end;
        if (*p && *p != ',' && *p != ' ' && *p != ']') {
            free(out);
            return -1;
        }
    }
    if (!out) return -1;
    *ids = out;
    *n = count;
    return 0;
}

int cli_kv_dtype(const char *command, const char *name, dtype_t *out) {
    if (!name || !strcmp(name, "auto") || !strcmp(name, "fp16") || !strcmp(name, "float16")) {
        *out = DT_F16;
    } else if (!strcmp(name, "fp32") || !strcmp(name, "float32")) {
        *out = DT_F32;
    } else if (!strcmp(name, "bf16") || !strcmp(name, "bfloat16")) {
        *out = DT_BF16;
    } else {
        fprintf(stderr, "sglc %s: --kv-cache-dtype %s is not supported by this build (auto, fp32, "
                        "fp16, bf16)\n", command, name);
        return 2;
    }
    return 0;
}
