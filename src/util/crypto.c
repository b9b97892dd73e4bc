/*
 * crypto.c - randomness, hashing, base64, AES-256-GCM and constant-time
 * compare.
 */
/* SHA256_Init/Update/Final are deprecated in OpenSSL 3 but kept: for the
 * short inputs hashed per request (an API key, a rate-limit key, an audit
 * record) they cost half of EVP_Digest, which allocates a context and
 * dispatches through the provider on every call. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "util/crypto.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <sys/random.h>

int mg_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* EVP_sha256() makes EVP_Digest fetch the implementation from the provider
 * on every call (about a third of an API key check); fetch it once. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void mg_sha256(const void *data, size_t n, uint8_t out[MG_SHA256_LEN])
{
#ifndef OPENSSL_NO_DEPRECATED_3_0
	SHA256_CTX c;
	if (SHA256_Init(&c) == 1 && SHA256_Update(&c, data, n) == 1 && SHA256_Final(out, &c) == 1)
		return;
#endif
	pthread_once(&sha256_once, sha256_fetch);
	unsigned int len = MG_SHA256_LEN;
	EVP_Digest(data, n, out, &len, sha256_md ? sha256_md : EVP_sha256(), NULL);
}

struct mg_sha256_ctx *mg_sha256_ctx_new(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return (struct mg_sha256_ctx *)EVP_MD_CTX_new();
}

void mg_sha256_with(struct mg_sha256_ctx *c, const void *data, size_t n, uint8_t out[MG_SHA256_LEN])
{
#ifndef OPENSSL_NO_DEPRECATED_3_0
	(void)c; /* the low-level digest keeps no context between calls */
	mg_sha256(data, n, out);
#else
	EVP_MD_CTX *x = (EVP_MD_CTX *)c;
	unsigned int len = MG_SHA256_LEN;
	if (!x || !sha256_md || EVP_DigestInit_ex2(x, sha256_md, NULL) != 1 ||
	    EVP_DigestUpdate(x, data, n) != 1 || EVP_DigestFinal_ex(x, out, &len) != 1)
		mg_sha256(data, n, out);
#endif
}

void mg_sha256_ctx_free(struct mg_sha256_ctx *c)
{
	EVP_MD_CTX_free((EVP_MD_CTX *)c);
}

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t mg_base64_encoded_len(size_t n, bool url)
{
	if (!url)
		return (n + 2) / 3 * 4;
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t mg_base64_encode(const void *data, size_t n, char *out, size_t out_size, bool url)
{
	const unsigned char *s = data;
	const char *abc = url ? b64_url : b64_std;
	size_t need = mg_base64_encoded_len(n, url);
	if (out_size < need + 1) {
		if (out_size)
			out[0] = '\0';
		return 0;
	}
	size_t o = 0, i = 0;
	for (; i + 2 < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
		out[o++] = abc[v & 63];
	}
	if (n - i == 1) {
		unsigned v = (unsigned)s[i] << 16;
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		if (!url) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
		if (!url)
			out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

/* Value of a base64 or base64url character + 1; 0 for anything else. */
static const unsigned char b64_table[256] = {
	['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,
	['H'] = 8,  ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14,
	['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21,
	['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28,
	['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35,
	['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
	['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
	['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
	['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63,
	['-'] = 63, ['/'] = 64, ['_'] = 64,
};

long mg_base64_decode(const char *s, size_t n, void *out, size_t out_size)
{
	unsigned char *o = out;
	size_t pad = 0;
	while (pad < 2 && n > 0 && s[n - 1] == '=') {
		n--;
		pad++;
	}
	if (n % 4 == 1 || (pad && (n + pad) % 4 != 0))
		return -1;
	size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	if (need > out_size)
		return -1;
	size_t k = 0;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned v = b64_table[(unsigned char)s[i]];
		if (!v)
			return -1;
		acc = (acc << 6) | (v - 1);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[k++] = (unsigned char)(acc >> bits & 0xFF);
		}
	}
	/* Leftover bits must be zero, or two encodings would decode the same. */
	if (bits && (acc & ((1u << bits) - 1)))
		return -1;
	return (long)k;
}

bool mg_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(x[i] ^ y[i]);
	return d == 0;
}

int mg_aead_gcm(bool enc, const uint8_t key[MG_AEAD_KEY_LEN],
                const uint8_t nonce[MG_AEAD_NONCE_LEN], const void *aad, size_t aad_len,
                const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[MG_AEAD_TAG_LEN])
{
	int rc = -1, len = 0, fin = 0;
	if (n > INT_MAX || aad_len > INT_MAX)
		return -1;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (!c)
		goto out;
	if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, MG_AEAD_NONCE_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) != 1 ||
	    EVP_CipherUpdate(c, NULL, &len, aad, (int)aad_len) != 1 ||
	    EVP_CipherUpdate(c, out, &len, in, (int)n) != 1)
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, MG_AEAD_TAG_LEN, tag) != 1)
		goto out;
	if (EVP_CipherFinal_ex(c, out + len, &fin) != 1)
		goto out; /* opening: the tag did not match */
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, MG_AEAD_TAG_LEN, tag) != 1)
		goto out;
	rc = len + fin;
out:
	EVP_CIPHER_CTX_free(c);
	return rc;
}
