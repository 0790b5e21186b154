/* libFuzzer target: tok_load_hf on arbitrary tokenizer.json bytes (written to a temporary file,
 * as the loader reads files), then a short encode/decode with whatever loaded. A bad file must be
 * one error line, never a crash or a leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[] = "/tmp/fuzz_tokenizer_json_XXXXXX.json";
    int fd = mkstemps(path, 5);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        unlink(path);
        return 0;
    }
    close(fd);
    char err[512];
    tokenizer *t = tok_load_hf(path, err, sizeof err);
    unlink(path);
    if (!t) return 0;
    static const char text[] = "Hello <s> world 123 \xe2\x96\x81 \xff";
    int32_t *ids;
    size_t n, len;
    if (tok_encode(t, text, sizeof text - 1, true, true, &ids, &n) == 0) {
        char *s = tok_decode(t, ids, n, false, &len);
        free(s);
        free(ids);
    }
    tok_free(t);
    return 0;
}
