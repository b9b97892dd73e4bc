/*
 * crypto.h - the few primitives every module needs: randomness, SHA-256,
 * base64 and a constant-time comparison. Backed by getrandom(2) and
 * OpenSSL 3 EVP.
 */
#ifndef MG_UTIL_CRYPTO_H
#define MG_UTIL_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MG_SHA256_LEN 32

/* Fills `buf` with `n` bytes from the kernel CSPRNG. Returns 0 or -1. */
int mg_random_bytes(void *buf, size_t n);

/* SHA-256 of `n` bytes into `out`. */
void mg_sha256(const void *data, size_t n, uint8_t out[MG_SHA256_LEN]);

/* A reusable SHA-256 state for one thread hashing many small inputs (the
 * audit chain): no allocation or set-up per digest. NULL when out of
 * memory; mg_sha256_with(NULL, ...) is mg_sha256. */
struct mg_sha256_ctx;
struct mg_sha256_ctx *mg_sha256_ctx_new(void);
void mg_sha256_with(struct mg_sha256_ctx *c, const void *data, size_t n,
                    uint8_t out[MG_SHA256_LEN]);
void mg_sha256_ctx_free(struct mg_sha256_ctx *c);

/* Encodes `n` bytes as base64 into `out` (NUL-terminated). With `url` the
 * URL-safe alphabet is used and padding is omitted. `out_size` must be at
 * least mg_base64_encoded_len(n) + 1. Returns the length written. */
size_t mg_base64_encode(const void *data, size_t n, char *out, size_t out_size, bool url);

/* Length of the encoding of `n` bytes (padded for standard, unpadded for url). */
size_t mg_base64_encoded_len(size_t n, bool url);

/* Decodes base64 (standard or URL alphabet, padding optional but must be
 * correct when present, no whitespace) into `out` (capacity `out_size`).
 * Returns the decoded length, or -1 when malformed or too long. */
long mg_base64_decode(const char *s, size_t n, void *out, size_t out_size);

/* AES-256-GCM with a 12-byte nonce and a 16-byte tag: the one AEAD of the
 * gateway's sealed tokens (OAuth `state`, federated cursors). */
#define MG_AEAD_KEY_LEN   32
#define MG_AEAD_NONCE_LEN 12
#define MG_AEAD_TAG_LEN   16

/* Encrypts (`enc`) or decrypts `n` bytes of `in` into `out` (at least `n`
 * bytes; may not overlap `in`) with `aad` authenticated alongside. Sealing
 * writes the tag to `tag`; opening checks it. Returns `n`, or -1 (opening: the
 * data, the additional data or the key is not the one sealed). */
int mg_aead_gcm(bool enc, const uint8_t key[MG_AEAD_KEY_LEN],
                const uint8_t nonce[MG_AEAD_NONCE_LEN], const void *aad, size_t aad_len,
                const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[MG_AEAD_TAG_LEN]);

/* Compares two equal-length byte strings in time independent of their
 * contents. Returns true when equal. */
bool mg_ct_equal(const void *a, const void *b, size_t n);

#endif
