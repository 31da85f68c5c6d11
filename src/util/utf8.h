/* utf8.h — the one UTF-8 sequence scanner, shared by the detokenizer (its
 * lossy decode) and the response builder (lossy JSON strings): both must
 * replace exactly the same bytes with U+FFFD. */
#ifndef TM_UTF8_H
#define TM_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s[i] (i < n), or 0 if invalid; then
 * *bad = bytes of the maximal invalid subpart (>= 1), as Unicode's
 * "substitution of maximal subparts" (Python's and Rust's lossy decoding)
 * counts them. */
size_t tm_utf8_seq(const uint8_t *s, size_t n, size_t i, size_t *bad);

#endif
