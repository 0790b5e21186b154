/* Implementation of base/base64.h. */
#include "base/base64.h"

static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(uint8_t c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

void base64_encode(const uint8_t *in, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t x = (uint32_t)in[i] << 16;
        if (i + 1 < n) x |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) x |= in[i + 2];
        out[k++] = ALPHABET[x >> 18 & 63];
        out[k++] = ALPHABET[x >> 12 & 63];
        out[k++] = i + 1 < n ? ALPHABET[x >> 6 & 63] : '=';
        out[k++] = i + 2 < n ? ALPHABET[x & 63] : '=';
    }
    out[k] = 0;
}

long base64_decode(const uint8_t *s, size_t n, uint8_t *out, size_t cap) {
    if (n == 0 || n % 4) return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            if (s[i + j] == '=' && i + 4 == n && j >= 2) {
                v[j] = 0, pad++;
            } else if (pad || (v[j] = b64_value(s[i + j])) < 0) {
                return -1;
            }
        }
        uint32_t x =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        uint8_t b[3] = {(uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x};
        if (k + 3 - (size_t)pad > cap) return -1;
        for (int j = 0; j < 3 - pad; j++)
            out[k++] = b[j];
    }
    return (long)k;
}
