/* Standard base64 (RFC 4648, with padding): tiktoken files store tokens in it, and the PD
 * control messages carry binary transfer-engine descriptors in JSON with it.
 * Pure functions; no allocation. */
#ifndef SGLC_BASE_BASE64_H
#define SGLC_BASE_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Bytes base64_encode writes for n input bytes (without the NUL). */
static inline size_t base64_encoded_len(size_t n) { return (n + 2) / 3 * 4; }
/* Writes the encoding of in[0..n) and a NUL to out (base64_encoded_len(n) + 1 bytes). */
void base64_encode(const uint8_t *in, size_t n, char *out);
/* Strict decoding (padding required to a multiple of 4, no whitespace): the decoded length, or
 * -1 for malformed input or when more than cap bytes would be written. */
long base64_decode(const uint8_t *s, size_t n, uint8_t *out, size_t cap);

#endif
