/* UTF-8 and byte-level helpers for the tokenizer: character lengths, decoding, lossy
 * validation, and GPT-2's byte <-> unicode map that byte-level BPE vocabularies are written in. */
#ifndef SGLC_TOKENIZER_TOK_UTF8_H
#define SGLC_TOKENIZER_TOK_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the UTF-8 sequence a lead byte announces (1 for stray continuation bytes). */
static inline size_t tok_utf8_len(uint8_t c) {
    static const uint8_t lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[c >> 4];
}

/* Length of the valid UTF-8 character at s[0..n), or 0 when it is invalid or truncated. */
size_t tok_utf8_valid_len(const uint8_t *s, size_t n);
/* Decodes one character at s (n bytes left); returns its length (>= 1), *cp = U+FFFD when
 * invalid. */
size_t tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
size_t tok_utf8_encode(uint32_t cp, uint8_t out[4]);

/* GPT-2 byte-level map: byte -> code point, and back (-1 when the code point is not one). */
uint32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(uint32_t cp);

#endif
