/*
 * test_jwt.c - JWS verification and JWK sets: every algorithm with keys
 * generated here (the production code only verifies, so this file signs),
 * RFC 7515 / RFC 8037 vectors, and the known attacks: alg none, HMAC with
 * an RSA public key, keys carried in the header, confused key selection,
 * duplicate members, truncation, lax base64, DER ECDSA signatures.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "auth/jwt.h"
#include "util/crypto.h"

#define NOW 1700000000LL
#define ISS "https://issuer.example"
#define AUD "mcp-guard"

static const char secret[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char *const audiences[] = { "other", AUD };

static struct {
	EVP_PKEY *rsa, *rsa2, *rsa1024, *ec256, *ec384, *ed;
	struct mg_jwk_set *jwks; /* rsa "rsa1", ec256 "ec1", ec384 "ec2", ed "ed1" */
	struct mg_jwk_set *hmac;
} K;

/* ---- helpers: encoding, keys, signing -------------------------------------- */

static char *b64url(const void *data, size_t n)
{
	size_t cap = mg_base64_encoded_len(n, true) + 1;
	char *s = malloc(cap);
	assert_non_null(s);
	mg_base64_encode(data, n, s, cap, true);
	return s;
}

static char *bn_b64(const BIGNUM *bn, int pad)
{
	unsigned char buf[1100];
	int n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
	assert_true(n > 0);
	return b64url(buf, (size_t)n);
}

/* The public JWK of `pk` as a jansson object. */
static json_t *jwk_of(EVP_PKEY *pk, const char *kid, const char *alg)
{
	json_t *j = json_object();
	if (EVP_PKEY_is_a(pk, "RSA")) {
		BIGNUM *n = NULL, *e = NULL;
		assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n), 1);
		assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e), 1);
		char *ns = bn_b64(n, 0), *es = bn_b64(e, 0);
		json_object_set_new(j, "kty", json_string("RSA"));
		json_object_set_new(j, "n", json_string(ns));
		json_object_set_new(j, "e", json_string(es));
		free(ns);
		free(es);
		BN_free(n);
		BN_free(e);
	} else if (EVP_PKEY_is_a(pk, "EC")) {
		BIGNUM *x = NULL, *y = NULL;
		int bits = EVP_PKEY_get_bits(pk);
		int clen = (bits + 7) / 8;
		assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
		assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
		char *xs = bn_b64(x, clen), *ys = bn_b64(y, clen);
		json_object_set_new(j, "kty", json_string("EC"));
		json_object_set_new(j, "crv", json_string(bits == 256 ? "P-256" : "P-384"));
		json_object_set_new(j, "x", json_string(xs));
		json_object_set_new(j, "y", json_string(ys));
		free(xs);
		free(ys);
		BN_free(x);
		BN_free(y);
	} else {
		unsigned char raw[32];
		size_t n = sizeof raw;
		assert_int_equal(EVP_PKEY_get_raw_public_key(pk, raw, &n), 1);
		char *xs = b64url(raw, n);
		json_object_set_new(j, "kty", json_string("OKP"));
		json_object_set_new(j, "crv", json_string("Ed25519"));
		json_object_set_new(j, "x", json_string(xs));
		free(xs);
	}
	if (kid)
		json_object_set_new(j, "kid", json_string(kid));
	if (alg)
		json_object_set_new(j, "alg", json_string(alg));
	return j;
}

/* A JWKS document from a NULL-terminated array of JWK objects (stolen). */
static char *jwks_doc(json_t *const *list)
{
	json_t *keys = json_array();
	for (; *list; list++)
		json_array_append_new(keys, *list);
	json_t *doc = json_pack("{s:o}", "keys", keys);
	char *s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return s;
}

#define JWKS(...) jwks_doc((json_t *const[]){ __VA_ARGS__, NULL })

static struct mg_jwk_set *parse_set(char *doc)
{
	char err[256];
	struct mg_jwk_set *set = mg_jwk_set_parse(doc, strlen(doc), err, sizeof err);
	free(doc);
	return set;
}

struct signer {
	enum mg_jwt_alg alg;
	EVP_PKEY *pk;
	const void *secret; /* HS*: the HMAC key */
	size_t secret_len;
	int pss_salt;   /* 0: the digest length (correct); else this salt length */
	bool ecdsa_der; /* leave the ECDSA signature in DER (wrong) */
};

static const char *md_of(enum mg_jwt_alg alg)
{
	switch (alg) {
	case MG_JWT_HS256:
	case MG_JWT_RS256:
	case MG_JWT_PS256:
	case MG_JWT_ES256:
		return "SHA256";
	case MG_JWT_HS384:
	case MG_JWT_RS384:
	case MG_JWT_PS384:
	case MG_JWT_ES384:
		return "SHA384";
	case MG_JWT_EDDSA:
		return NULL;
	default:
		return "SHA512";
	}
}

static size_t sign(const struct signer *s, const char *msg, size_t n, unsigned char *sig)
{
	const char *md = md_of(s->alg);
	if (s->alg <= MG_JWT_HS512) {
		unsigned int len = 0;
		assert_non_null(HMAC(EVP_get_digestbyname(md), s->secret, (int)s->secret_len,
		                     (const unsigned char *)msg, n, sig, &len));
		return len;
	}
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char der[1100];
	size_t len = sizeof der;
	assert_int_equal(EVP_DigestSignInit_ex(mctx, &pctx, md, NULL, NULL, s->pk, NULL), 1);
	if (s->alg >= MG_JWT_PS256 && s->alg <= MG_JWT_PS512) {
		assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
		assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(
		                pctx, s->pss_salt ? s->pss_salt : RSA_PSS_SALTLEN_DIGEST) > 0);
	}
	assert_int_equal(EVP_DigestSign(mctx, der, &len, (const unsigned char *)msg, n), 1);
	EVP_MD_CTX_free(mctx);
	if ((s->alg == MG_JWT_ES256 || s->alg == MG_JWT_ES384) && !s->ecdsa_der) {
		int clen = s->alg == MG_JWT_ES256 ? 32 : 48;
		const unsigned char *p = der;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
		assert_non_null(es);
		const BIGNUM *r, *sv;
		ECDSA_SIG_get0(es, &r, &sv);
		BN_bn2binpad(r, sig, clen);
		BN_bn2binpad(sv, sig + clen, clen);
		ECDSA_SIG_free(es);
		return (size_t)(2 * clen);
	}
	memcpy(sig, der, len);
	return len;
}

/* "b64(header).b64(payload).b64(sig)", malloc'd. */
static char *make_token(const char *header, const char *payload, const struct signer *s)
{
	char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
	size_t in_len = strlen(h) + 1 + strlen(p);
	char *tok = malloc(in_len + 1 + 1500);
	assert_non_null(tok);
	snprintf(tok, in_len + 1, "%s.%s", h, p);
	unsigned char sig[1100];
	size_t n = sign(s, tok, in_len, sig);
	tok[in_len] = '.';
	mg_base64_encode(sig, n, tok + in_len + 1, 1500, true);
	free(h);
	free(p);
	return tok;
}

static char *header_json(const char *alg, const char *kid)
{
	char *s = malloc(256);
	assert_non_null(s);
	if (kid)
		snprintf(s, 256, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid);
	else
		snprintf(s, 256, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
	return s;
}

#define CLAIMS_FMT                                                                                 \
	"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"alice\",\"exp\":%lld,\"iat\":%lld}"

static char *claims_json(void)
{
	char *s = malloc(256);
	assert_non_null(s);
	snprintf(s, 256, CLAIMS_FMT, NOW + 3600, NOW - 10);
	return s;
}

static struct signer signer_for(enum mg_jwt_alg alg)
{
	struct signer s = { .alg = alg };
	switch (alg) {
	case MG_JWT_HS256:
	case MG_JWT_HS384:
	case MG_JWT_HS512:
		s.secret = secret;
		s.secret_len = strlen(secret);
		break;
	case MG_JWT_ES256:
		s.pk = K.ec256;
		break;
	case MG_JWT_ES384:
		s.pk = K.ec384;
		break;
	case MG_JWT_EDDSA:
		s.pk = K.ed;
		break;
	default:
		s.pk = K.rsa;
		break;
	}
	return s;
}

static const char *kid_for(enum mg_jwt_alg alg)
{
	switch (alg) {
	case MG_JWT_HS256:
	case MG_JWT_HS384:
	case MG_JWT_HS512:
		return NULL;
	case MG_JWT_ES256:
		return "ec1";
	case MG_JWT_ES384:
		return "ec2";
	case MG_JWT_EDDSA:
		return "ed1";
	default:
		return "rsa1";
	}
}

/* A token for `alg` with the standard claims, signed with the right key. */
static char *good_token(enum mg_jwt_alg alg)
{
	char *h = header_json(mg_jwt_alg_name(alg), kid_for(alg)), *c = claims_json();
	struct signer s = signer_for(alg);
	char *t = make_token(h, c, &s);
	free(h);
	free(c);
	return t;
}

static char *token_with(enum mg_jwt_alg alg, const char *header, const char *claims)
{
	struct signer s = signer_for(alg);
	return make_token(header, claims, &s);
}

static struct mg_jwt_policy policy(void)
{
	struct mg_jwt_policy p = {
		.algs = (1u << MG_JWT_ALG_COUNT) - 1,
		.issuer = ISS,
		.audience = audiences,
		.n_audience = 2,
		.leeway_secs = 60,
		.now = NOW,
		.max_token_bytes = 16384,
	};
	return p;
}

static struct mg_jwk_set *set_for(enum mg_jwt_alg alg)
{
	return alg <= MG_JWT_HS512 ? K.hmac : K.jwks;
}

/* Verifies and checks the output contract: filled on OK, empty otherwise. */
static enum mg_jwt_status check_n(const char *tok, size_t len, const struct mg_jwk_set *set,
                                  const struct mg_jwt_policy *p)
{
	struct mg_jwt jwt;
	char why[128];
	memset(&jwt, 0x5a, sizeof jwt);
	enum mg_jwt_status st = mg_jwt_verify(tok, len, set, p, &jwt, why, sizeof why);
	if (st == MG_JWT_OK) {
		assert_non_null(jwt.header);
		assert_non_null(jwt.claims);
		assert_true(jwt.exp != 0);
		mg_jwt_free(&jwt);
	} else {
		assert_null(jwt.header);
		assert_null(jwt.claims);
		assert_true(why[0] != '\0');
	}
	return st;
}

static enum mg_jwt_status check(const char *tok, const struct mg_jwk_set *set,
                                const struct mg_jwt_policy *p)
{
	return check_n(tok, strlen(tok), set, p);
}

/* Signs `header`/`claims` with `alg`'s key and verifies with the default
 * policy and set. */
static enum mg_jwt_status check_with(enum mg_jwt_alg alg, const char *header, const char *claims)
{
	struct mg_jwt_policy p = policy();
	char *t = token_with(alg, header, claims);
	enum mg_jwt_status st = check(t, set_for(alg), &p);
	free(t);
	return st;
}

static enum mg_jwt_status check_claims(const char *claims)
{
	return check_with(MG_JWT_HS256, "{\"alg\":\"HS256\"}", claims);
}

/* ---- fixtures ---------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	K.rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	K.rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	K.rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	K.ec256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	K.ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	K.ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!K.rsa || !K.rsa2 || !K.rsa1024 || !K.ec256 || !K.ec384 || !K.ed)
		return -1;
	K.jwks = parse_set(JWKS(jwk_of(K.rsa, "rsa1", NULL), jwk_of(K.ec256, "ec1", NULL),
	                        jwk_of(K.ec384, "ec2", "ES384"), jwk_of(K.ed, "ed1", "EdDSA")));
	K.hmac = mg_jwk_set_hmac(secret, strlen(secret));
	return K.jwks && K.hmac ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	mg_jwk_set_unref(K.jwks);
	mg_jwk_set_unref(K.hmac);
	EVP_PKEY_free(K.rsa);
	EVP_PKEY_free(K.rsa2);
	EVP_PKEY_free(K.rsa1024);
	EVP_PKEY_free(K.ec256);
	EVP_PKEY_free(K.ec384);
	EVP_PKEY_free(K.ed);
	return 0;
}

/* ---- tests ------------------------------------------------------------- */

static void test_alg_names(void **state)
{
	(void)state;
	for (int i = 0; i < MG_JWT_ALG_COUNT; i++)
		assert_int_equal(mg_jwt_alg_parse(mg_jwt_alg_name((enum mg_jwt_alg)i)), i);
	assert_int_equal(mg_jwt_alg_parse("EdDSA"), MG_JWT_EDDSA);
	assert_int_equal(mg_jwt_alg_parse("none"), -1);
	assert_int_equal(mg_jwt_alg_parse("hs256"), -1);
	assert_int_equal(mg_jwt_alg_parse("ES512"), -1);
	assert_int_equal(mg_jwt_alg_parse(NULL), -1);
	assert_string_equal(mg_jwt_status_name(MG_JWT_EXPIRED), "expired");
	assert_string_equal(mg_jwt_status_name(MG_JWT_BAD_SIGNATURE), "bad signature");
	for (int i = MG_JWT_OK; i <= MG_JWT_BAD_AUDIENCE; i++)
		assert_string_not_equal(mg_jwt_status_name((enum mg_jwt_status)i), "?");
}

static void test_each_alg_ok(void **state)
{
	(void)state;
	assert_int_equal(mg_jwk_set_count(K.jwks), 4);
	assert_int_equal(mg_jwk_set_skipped(K.jwks), 0);
	for (int i = 0; i < MG_JWT_ALG_COUNT; i++) {
		enum mg_jwt_alg alg = (enum mg_jwt_alg)i;
		struct mg_jwt_policy p = policy();
		struct mg_jwt jwt;
		char *t = good_token(alg);
		assert_int_equal(mg_jwt_verify(t, strlen(t), set_for(alg), &p, &jwt, NULL, 0),
		                 MG_JWT_OK);
		assert_int_equal(jwt.alg, alg);
		assert_int_equal(jwt.exp, NOW + 3600);
		assert_string_equal(json_string_value(json_object_get(jwt.claims, "sub")), "alice");
		assert_string_equal(json_string_value(json_object_get(jwt.header, "alg")),
		                    mg_jwt_alg_name(alg));
		mg_jwt_free(&jwt);
		assert_null(jwt.claims);
		free(t);

		/* Without kid: each key type appears once in the set. */
		char *h = header_json(mg_jwt_alg_name(alg), NULL);
		assert_int_equal(check_with(alg, h,
		                            "{\"exp\":1700003600,\"iss\":\"" ISS
		                            "\",\"aud\":[\"" AUD "\"]}"),
		                 MG_JWT_OK);
		free(h);

		/* Only this algorithm in the policy: still fine; all but it: rejected. */
		t = good_token(alg);
		p.algs = 1u << alg;
		assert_int_equal(check(t, set_for(alg), &p), MG_JWT_OK);
		p.algs = ((1u << MG_JWT_ALG_COUNT) - 1) & ~(1u << alg);
		assert_int_equal(check(t, set_for(alg), &p), MG_JWT_ALG_REJECTED);
		free(t);
	}
}

/* RFC 7515 A.1 (HS256), A.3 (ES256), RFC 8037 A.4 (Ed25519). */
static void test_rfc_vectors(void **state)
{
	(void)state;
	static const char a1_key[] = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3"
	                             "Yj0iPS4hcgUuTwjAzZr1Z9CAow";
	static const char a1[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
	                         "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtc"
	                         "GxlLmNvbS9pc19yb290Ijp0"
	                         "cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
	static const char a3_jwks[] = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
	                              "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
	                              "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";
	static const char a3[] =
	    "eyJhbGciOiJFUzI1NiJ9."
	    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ij"
	    "p0"
	    "cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-"
	    "Kg6NU1Q";
	static const char a4_jwks[] = "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
	                              "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";
	static const char a4[] = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
	                         "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5B"
	                         "hVsPt9g7sVvpAr_MuM0KAg";
	struct mg_jwt_policy p = policy();
	p.issuer = "joe";
	p.n_audience = 0;
	p.now = 1300819000;
	unsigned char key[64];
	long kl = mg_base64_decode(a1_key, strlen(a1_key), key, sizeof key);
	assert_int_equal(kl, 64);
	struct mg_jwk_set *hs = mg_jwk_set_hmac(key, (size_t)kl);
	struct mg_jwt jwt;
	assert_int_equal(mg_jwt_verify(a1, strlen(a1), hs, &p, &jwt, NULL, 0), MG_JWT_OK);
	assert_int_equal(jwt.exp, 1300819380);
	assert_true(json_is_true(json_object_get(jwt.claims, "http://example.com/is_root")));
	mg_jwt_free(&jwt);
	p.now = 1300819380 + 61;
	assert_int_equal(check(a1, hs, &p), MG_JWT_EXPIRED);
	mg_jwk_set_unref(hs);

	p.now = 1300819000;
	char err[128];
	struct mg_jwk_set *ec = mg_jwk_set_parse(a3_jwks, strlen(a3_jwks), err, sizeof err);
	assert_non_null(ec);
	assert_int_equal(check(a3, ec, &p), MG_JWT_OK);
	char *bad = strdup(a3);
	bad[strlen(bad) - 10] ^= 1; /* 'P' -> 'Q' */
	assert_int_equal(check(bad, ec, &p), MG_JWT_BAD_SIGNATURE);
	free(bad);
	mg_jwk_set_unref(ec);

	/* The Ed25519 example signs plain text: the signature verifies, then
	 * the payload is found not to be a JSON object. */
	struct mg_jwk_set *ed = mg_jwk_set_parse(a4_jwks, strlen(a4_jwks), err, sizeof err);
	assert_non_null(ed);
	assert_int_equal(check(a4, ed, &p), MG_JWT_MALFORMED);
	bad = strdup(a4);
	bad[strlen(bad) - 20] ^= 1;
	assert_int_equal(check(bad, ed, &p), MG_JWT_BAD_SIGNATURE);
	free(bad);
	mg_jwk_set_unref(ed);
}

static void test_tampered(void **state)
{
	(void)state;
	for (int i = 0; i < MG_JWT_ALG_COUNT; i++) {
		enum mg_jwt_alg alg = (enum mg_jwt_alg)i;
		struct mg_jwt_policy p = policy();
		char *t = good_token(alg);
		/* One payload character changed. */
		char *c = strchr(t, '.') + 10;
		*c = *c == 'A' ? 'B' : 'A';
		assert_int_equal(check(t, set_for(alg), &p), MG_JWT_BAD_SIGNATURE);
		free(t);

		/* One signature character changed. */
		t = good_token(alg);
		c = strrchr(t, '.') + 5;
		*c = *c == 'A' ? 'B' : 'A';
		assert_int_equal(check(t, set_for(alg), &p), MG_JWT_BAD_SIGNATURE);
		free(t);

		/* The signature of another token by the same key. */
		t = good_token(alg);
		char *h = header_json(mg_jwt_alg_name(alg), kid_for(alg));
		char *t2 = token_with(alg, h, "{\"exp\":1800000000}");
		char *mix = malloc(strlen(t) + strlen(t2));
		size_t in_len = (size_t)(strrchr(t, '.') - t);
		memcpy(mix, t, in_len);
		snprintf(mix + in_len, strlen(t2), "%s", strrchr(t2, '.'));
		assert_int_equal(check(mix, set_for(alg), &p), MG_JWT_BAD_SIGNATURE);
		free(mix);
		free(t2);
		free(h);
		free(t);
	}
}

static void test_alg_none(void **state)
{
	(void)state;
	struct mg_jwt_policy p = policy();
	char *c = claims_json();
	char *pl = b64url(c, strlen(c));
	static const char *const names[] = { "none", "None", "NONE", "nOnE", "", "HS256 " };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char h[64], t[1024];
		snprintf(h, sizeof h, "{\"alg\":\"%s\"}", names[i]);
		char *hb = b64url(h, strlen(h));
		/* Unsigned: the empty signature alone makes it malformed. */
		snprintf(t, sizeof t, "%s.%s.", hb, pl);
		assert_int_equal(check(t, K.hmac, &p), MG_JWT_MALFORMED);
		assert_int_equal(check(t, K.jwks, &p), MG_JWT_MALFORMED);
		/* With something in the signature: the alg is refused. */
		snprintf(t, sizeof t, "%s.%s.AAAA", hb, pl);
		assert_int_equal(check(t, K.hmac, &p), MG_JWT_ALG_REJECTED);
		assert_int_equal(check(t, K.jwks, &p), MG_JWT_ALG_REJECTED);
		free(hb);
	}
	/* alg missing or not a string. */
	static const char *const hdrs[] = { "{}", "{\"typ\":\"JWT\"}", "{\"alg\":null}",
		                            "{\"alg\":256}", "{\"alg\":[\"HS256\"]}" };
	for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++)
		assert_int_equal(check_with(MG_JWT_HS256, hdrs[i], c), MG_JWT_ALG_REJECTED);
	free(pl);
	free(c);
}

/* The classic confusion: HS256 with the RSA public key (PEM or DER, as a
 * verifier would hold it) as the HMAC secret. */
static void test_hmac_with_rsa_public_key(void **state)
{
	(void)state;
	unsigned char *der = NULL;
	int der_len = i2d_PUBKEY(K.rsa, &der);
	assert_true(der_len > 0);
	BIO *bio = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PUBKEY(bio, K.rsa), 1);
	char *pem;
	long pem_len = BIO_get_mem_data(bio, &pem);
	const struct {
		const void *k;
		size_t n;
	} secrets[] = { { der, (size_t)der_len }, { pem, (size_t)pem_len } };
	char *c = claims_json();
	for (size_t i = 0; i < 2; i++) {
		struct signer s = { .alg = MG_JWT_HS256,
			            .secret = secrets[i].k,
			            .secret_len = secrets[i].n };
		struct mg_jwt_policy p = policy();
		for (int with_kid = 0; with_kid < 2; with_kid++) {
			char *h = header_json("HS256", with_kid ? "rsa1" : NULL);
			char *t = make_token(h, c, &s);
			enum mg_jwt_status st = check(t, K.jwks, &p);
			assert_int_equal(st, MG_JWT_ALG_REJECTED);
			/* Even a policy that lists only HS256 cannot make it pass. */
			p.algs = 1u << MG_JWT_HS256;
			st = check(t, K.jwks, &p);
			assert_int_equal(st, MG_JWT_ALG_REJECTED);
			/* And a jwks-mode policy refuses HS* outright. */
			p.algs = ((1u << MG_JWT_ALG_COUNT) - 1) & ~7u;
			assert_int_equal(check(t, K.jwks, &p), MG_JWT_ALG_REJECTED);
			p = policy();
			free(h);
			free(t);
		}
	}
	free(c);
	BIO_free(bio);
	OPENSSL_free(der);
}

static void test_header_rejects(void **state)
{
	(void)state;
	char *c = claims_json();
	static const char *const bad[] = {
		"{\"alg\":\"HS256\",\"jwk\":{\"kty\":\"oct\",\"k\":\"AAAA\"}}",
		"{\"alg\":\"HS256\",\"jku\":\"https://evil.example/jwks\"}",
		"{\"alg\":\"HS256\",\"x5u\":\"https://evil.example/cert\"}",
		"{\"alg\":\"HS256\",\"x5c\":[\"MIIB\"]}",
		"{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}",
		"{\"alg\":\"HS256\",\"crit\":[]}",
		"{\"alg\":\"HS256\",\"typ\":\"JOSE\"}",
		"{\"alg\":\"HS256\",\"typ\":\"JWT \"}",
		"{\"alg\":\"HS256\",\"typ\":\"application/\"}",
		"{\"alg\":\"HS256\",\"typ\":1}",
		"{\"alg\":\"HS256\",\"kid\":1}",
		"{\"alg\":\"HS256\",\"kid\":\"\"}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(check_with(MG_JWT_HS256, bad[i], c), MG_JWT_BAD_HEADER);

	/* Keys in the header are refused even when they are the right key. */
	json_t *jwk = jwk_of(K.ec256, "ec1", NULL);
	json_t *h = json_pack("{s:s,s:s,s:O}", "alg", "ES256", "kid", "ec1", "jwk", jwk);
	char *hs = json_dumps(h, JSON_COMPACT);
	assert_int_equal(check_with(MG_JWT_ES256, hs, c), MG_JWT_BAD_HEADER);
	free(hs);
	json_decref(h);
	json_decref(jwk);

	/* A 300-byte kid. */
	char big[400];
	memset(big, 'k', sizeof big);
	snprintf(big, sizeof big, "{\"alg\":\"HS256\",\"kid\":\"%0300d\"}", 7);
	assert_int_equal(check_with(MG_JWT_HS256, big, c), MG_JWT_BAD_HEADER);

	static const char *const good[] = {
		"{\"alg\":\"HS256\",\"typ\":\"jwt\"}",
		"{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}",
		"{\"alg\":\"HS256\",\"typ\":\"application/at+JWT\"}",
		"{\"alg\":\"HS256\",\"typ\":\"Application/JWT\"}",
		"{\"alg\":\"HS256\",\"cty\":\"text/plain\",\"x5t\":\"abc\"}",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		assert_int_equal(check_with(MG_JWT_HS256, good[i], c), MG_JWT_OK);
	free(c);
}

static void test_key_selection(void **state)
{
	(void)state;
	char *c = claims_json();
	struct mg_jwt_policy p = policy();

	/* kid not in the set. */
	assert_int_equal(check_with(MG_JWT_RS256, "{\"alg\":\"RS256\",\"kid\":\"nope\"}", c),
	                 MG_JWT_UNKNOWN_KID);
	/* kid of a key of another type. */
	assert_int_equal(check_with(MG_JWT_RS256, "{\"alg\":\"RS256\",\"kid\":\"ec1\"}", c),
	                 MG_JWT_ALG_REJECTED);
	/* ES384 token naming the P-256 key: right kty, wrong curve. */
	assert_int_equal(check_with(MG_JWT_ES384, "{\"alg\":\"ES384\",\"kid\":\"ec1\"}", c),
	                 MG_JWT_ALG_REJECTED);
	/* ES256 token against the P-384 key, which also says alg ES384. */
	assert_int_equal(check_with(MG_JWT_ES256, "{\"alg\":\"ES256\",\"kid\":\"ec2\"}", c),
	                 MG_JWT_ALG_REJECTED);
	/* The HMAC set is one secret without kid: a token's kid is not
	 * consulted there, and RS256 never fits it, with or without kid. */
	assert_int_equal(check_with(MG_JWT_HS256, "{\"alg\":\"HS256\",\"kid\":\"k\"}", c),
	                 MG_JWT_OK);
	char *t = good_token(MG_JWT_RS256);
	assert_int_equal(check(t, K.hmac, &p), MG_JWT_ALG_REJECTED);
	free(t);
	t = token_with(MG_JWT_RS256, "{\"alg\":\"RS256\"}", c);
	assert_int_equal(check(t, K.hmac, &p), MG_JWT_ALG_REJECTED);
	free(t);

	/* Two RSA keys, token without kid: no trial verification. */
	struct mg_jwk_set *two =
	    parse_set(JWKS(jwk_of(K.rsa, "a", NULL), jwk_of(K.rsa2, "b", NULL)));
	assert_non_null(two);
	t = token_with(MG_JWT_RS256, "{\"alg\":\"RS256\"}", c);
	assert_int_equal(check(t, two, &p), MG_JWT_UNKNOWN_KID);
	free(t);
	t = token_with(MG_JWT_RS256, "{\"alg\":\"RS256\",\"kid\":\"a\"}", c);
	assert_int_equal(check(t, two, &p), MG_JWT_OK);
	free(t);
	/* Right kid, other key's signature. */
	struct signer s2 = { .alg = MG_JWT_RS256, .pk = K.rsa2 };
	t = make_token("{\"alg\":\"RS256\",\"kid\":\"a\"}", c, &s2);
	assert_int_equal(check(t, two, &p), MG_JWT_BAD_SIGNATURE);
	free(t);
	mg_jwk_set_unref(two);

	/* Two keys without kid but only one fits the alg. */
	two = parse_set(JWKS(jwk_of(K.rsa, NULL, "RS256"), jwk_of(K.rsa2, NULL, "PS256")));
	assert_non_null(two);
	t = token_with(MG_JWT_RS256, "{\"alg\":\"RS256\"}", c);
	assert_int_equal(check(t, two, &p), MG_JWT_OK);
	free(t);
	s2.alg = MG_JWT_PS256;
	t = make_token("{\"alg\":\"PS256\"}", c, &s2);
	assert_int_equal(check(t, two, &p), MG_JWT_OK);
	free(t);
	mg_jwk_set_unref(two);

	/* Two keys sharing a kid and fitting the same alg: ambiguous. */
	two = parse_set(JWKS(jwk_of(K.rsa, "same", NULL), jwk_of(K.rsa2, "same", NULL)));
	t = token_with(MG_JWT_RS256, "{\"alg\":\"RS256\",\"kid\":\"same\"}", c);
	assert_int_equal(check(t, two, &p), MG_JWT_UNKNOWN_KID);
	free(t);
	mg_jwk_set_unref(two);

	/* The JWK says RS256; a PS256 token with the same key is refused. */
	struct mg_jwk_set *rs = parse_set(JWKS(jwk_of(K.rsa, "r", "RS256")));
	t = token_with(MG_JWT_PS256, "{\"alg\":\"PS256\",\"kid\":\"r\"}", c);
	assert_int_equal(check(t, rs, &p), MG_JWT_ALG_REJECTED);
	free(t);
	t = token_with(MG_JWT_RS256, "{\"alg\":\"RS256\",\"kid\":\"r\"}", c);
	assert_int_equal(check(t, rs, &p), MG_JWT_OK);
	free(t);
	mg_jwk_set_unref(rs);
	free(c);
}

static void test_signature_details(void **state)
{
	(void)state;
	char *c = claims_json();
	struct mg_jwt_policy p = policy();

	/* ES256 signature left in DER. */
	for (int i = 0; i < 2; i++) {
		enum mg_jwt_alg alg = i ? MG_JWT_ES384 : MG_JWT_ES256;
		struct signer s = signer_for(alg);
		s.ecdsa_der = true;
		char *h = header_json(mg_jwt_alg_name(alg), kid_for(alg));
		char *t = make_token(h, c, &s);
		assert_int_equal(check(t, K.jwks, &p), MG_JWT_BAD_SIGNATURE);
		free(t);
		free(h);
	}
	/* Raw signature one byte short / long. */
	char *t = good_token(MG_JWT_ES256);
	size_t n = strlen(t);
	char *sigp = strrchr(t, '.') + 1;
	unsigned char raw[128];
	long rl = mg_base64_decode(sigp, strlen(sigp), raw, sizeof raw);
	assert_int_equal(rl, 64);
	char *buf = malloc(n + 16);
	size_t in_len = (size_t)(sigp - t);
	for (int d = -1; d <= 1; d += 2) {
		memcpy(buf, t, in_len);
		unsigned char r2[65];
		memcpy(r2, raw, 64);
		r2[64] = 0;
		mg_base64_encode(r2, (size_t)(64 + d), buf + in_len, n + 16 - in_len, true);
		assert_int_equal(check(buf, K.jwks, &p), MG_JWT_BAD_SIGNATURE);
	}
	/* Zero r and s. */
	memset(raw, 0, 64);
	memcpy(buf, t, in_len);
	mg_base64_encode(raw, 64, buf + in_len, n + 16 - in_len, true);
	assert_int_equal(check(buf, K.jwks, &p), MG_JWT_BAD_SIGNATURE);
	free(buf);
	free(t);

	/* PSS with another salt length than the digest length. */
	static const int salts[] = { 1, 20, 64, RSA_PSS_SALTLEN_MAX };
	for (size_t i = 0; i < sizeof salts / sizeof salts[0]; i++) {
		struct signer s = signer_for(MG_JWT_PS256);
		s.pss_salt = salts[i];
		t = make_token("{\"alg\":\"PS256\"}", c, &s);
		assert_int_equal(check(t, K.jwks, &p), MG_JWT_BAD_SIGNATURE);
		free(t);
	}
	/* A PKCS#1 v1.5 signature labelled PS256 and the reverse. */
	struct signer s = signer_for(MG_JWT_RS256);
	t = make_token("{\"alg\":\"PS256\"}", c, &s);
	assert_int_equal(check(t, K.jwks, &p), MG_JWT_BAD_SIGNATURE);
	free(t);
	s = signer_for(MG_JWT_PS256);
	t = make_token("{\"alg\":\"RS256\"}", c, &s);
	assert_int_equal(check(t, K.jwks, &p), MG_JWT_BAD_SIGNATURE);
	free(t);
	/* RS384 signature labelled RS256. */
	s = signer_for(MG_JWT_RS384);
	t = make_token("{\"alg\":\"RS256\"}", c, &s);
	assert_int_equal(check(t, K.jwks, &p), MG_JWT_BAD_SIGNATURE);
	free(t);
	/* HS512 MAC labelled HS256 (longer than the digest). */
	s = signer_for(MG_JWT_HS512);
	t = make_token("{\"alg\":\"HS256\"}", c, &s);
	assert_int_equal(check(t, K.hmac, &p), MG_JWT_BAD_SIGNATURE);
	free(t);
	/* Truncated HMAC: a 16-byte prefix of the right MAC. */
	t = good_token(MG_JWT_HS256);
	sigp = strrchr(t, '.') + 1;
	rl = mg_base64_decode(sigp, strlen(sigp), raw, sizeof raw);
	mg_base64_encode(raw, 16, sigp, 64, true);
	assert_int_equal(check(t, K.hmac, &p), MG_JWT_BAD_SIGNATURE);
	free(t);
	/* A signature larger than any key allows. */
	buf = malloc(4000);
	t = good_token(MG_JWT_RS256);
	snprintf(buf, 4000, "%s", t);
	sigp = strrchr(buf, '.') + 1;
	memset(sigp, 'A', 2000);
	sigp[2000] = '\0';
	assert_int_equal(check(buf, K.jwks, &p), MG_JWT_BAD_SIGNATURE);
	free(buf);
	free(t);
	free(c);
}

static void test_exp(void **state)
{
	(void)state;
	char c[256];
	/* Expired beyond the leeway, within it, at the edge. */
	snprintf(c, sizeof c, "{\"exp\":%lld,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}", NOW - 61);
	assert_int_equal(check_claims(c), MG_JWT_EXPIRED);
	snprintf(c, sizeof c, "{\"exp\":%lld,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}", NOW - 60);
	assert_int_equal(check_claims(c), MG_JWT_OK);
	snprintf(c, sizeof c, "{\"exp\":%lld,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}", NOW - 30);
	assert_int_equal(check_claims(c), MG_JWT_OK);
	/* Fractional seconds. */
	snprintf(c, sizeof c, "{\"exp\":%lld.5,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}", NOW - 61);
	assert_int_equal(check_claims(c), MG_JWT_EXPIRED);
	snprintf(c, sizeof c, "{\"exp\":%lld.5,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}", NOW - 60);
	assert_int_equal(check_claims(c), MG_JWT_OK);
	snprintf(c, sizeof c, "{\"exp\":%lld.0e0,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}",
	         NOW + 100);
	assert_int_equal(check_claims(c), MG_JWT_OK);
	/* Missing, wrong type, absurd values (no overflow). */
	assert_int_equal(check_claims("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}"), MG_JWT_EXPIRED);
	assert_int_equal(check_claims("{\"exp\":\"1800000000\",\"iss\":\"" ISS "\"}"),
	                 MG_JWT_MALFORMED);
	assert_int_equal(check_claims("{\"exp\":null}"), MG_JWT_MALFORMED);
	assert_int_equal(check_claims("{\"exp\":true}"), MG_JWT_MALFORMED);
	assert_int_equal(check_claims("{\"exp\":1e300}"), MG_JWT_MALFORMED);
	assert_int_equal(check_claims("{\"exp\":-1e300}"), MG_JWT_MALFORMED);
	assert_int_equal(check_claims("{\"exp\":99999999999999999999}"), MG_JWT_MALFORMED);
	assert_int_equal(
	    check_claims("{\"exp\":9223372036854775807,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}"),
	    MG_JWT_OK);
	assert_int_equal(check_claims("{\"exp\":-9223372036854775808}"), MG_JWT_EXPIRED);
	assert_int_equal(check_claims("{\"exp\":0}"), MG_JWT_EXPIRED);

	/* Without leeway, a negative leeway counts as none. */
	struct mg_jwt_policy p = policy();
	p.leeway_secs = -100;
	snprintf(c, sizeof c, "{\"exp\":%lld,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}", NOW - 1);
	char *t = token_with(MG_JWT_HS256, "{\"alg\":\"HS256\"}", c);
	assert_int_equal(check(t, K.hmac, &p), MG_JWT_EXPIRED);
	p.leeway_secs = INT64_MAX;
	assert_int_equal(check(t, K.hmac, &p), MG_JWT_OK);
	free(t);
}

static void test_nbf_iat(void **state)
{
	(void)state;
	char c[256];
	const char *fmt = "{\"exp\":%lld,\"%s\":%lld,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}";
	static const char *const names[] = { "nbf", "iat" };
	for (int i = 0; i < 2; i++) {
		snprintf(c, sizeof c, fmt, NOW + 3600, names[i], NOW + 61);
		assert_int_equal(check_claims(c), MG_JWT_NOT_YET_VALID);
		snprintf(c, sizeof c, fmt, NOW + 3600, names[i], NOW + 60);
		assert_int_equal(check_claims(c), MG_JWT_OK);
		snprintf(c, sizeof c, fmt, NOW + 3600, names[i], NOW - 1000);
		assert_int_equal(check_claims(c), MG_JWT_OK);
		snprintf(c, sizeof c, fmt, NOW + 3600, names[i], (long long)INT64_MAX);
		assert_int_equal(check_claims(c), MG_JWT_NOT_YET_VALID);
		/* Fractions round up: 60.5 s ahead is beyond a 60 s leeway. */
		snprintf(c, sizeof c,
		         "{\"exp\":%lld,\"%s\":%lld.5,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}",
		         NOW + 3600, names[i], NOW + 60);
		assert_int_equal(check_claims(c), MG_JWT_NOT_YET_VALID);
		snprintf(c, sizeof c, "{\"exp\":%lld,\"%s\":\"soon\"}", NOW + 3600, names[i]);
		assert_int_equal(check_claims(c), MG_JWT_MALFORMED);
	}
}

static void test_iss(void **state)
{
	(void)state;
	char c[256];
	const char *fmt = "{\"exp\":%lld,\"iss\":%s,\"aud\":\"" AUD "\"}";
	snprintf(c, sizeof c, fmt, NOW + 100, "\"https://evil.example\"");
	assert_int_equal(check_claims(c), MG_JWT_BAD_ISSUER);
	snprintf(c, sizeof c, fmt, NOW + 100, "\"" ISS "/\"");
	assert_int_equal(check_claims(c), MG_JWT_BAD_ISSUER);
	snprintf(c, sizeof c, fmt, NOW + 100, "\"HTTPS://issuer.example\"");
	assert_int_equal(check_claims(c), MG_JWT_BAD_ISSUER);
	snprintf(c, sizeof c, fmt, NOW + 100, "[\"" ISS "\"]");
	assert_int_equal(check_claims(c), MG_JWT_MALFORMED);
	snprintf(c, sizeof c, fmt, NOW + 100, "7");
	assert_int_equal(check_claims(c), MG_JWT_MALFORMED);
	snprintf(c, sizeof c, "{\"exp\":%lld,\"aud\":\"" AUD "\"}", NOW + 100);
	assert_int_equal(check_claims(c), MG_JWT_BAD_ISSUER);

	/* No issuer in the policy: any iss, or none. */
	struct mg_jwt_policy p = policy();
	p.issuer = NULL;
	char *t = token_with(MG_JWT_HS256, "{\"alg\":\"HS256\"}", c);
	assert_int_equal(check(t, K.hmac, &p), MG_JWT_OK);
	free(t);
}

static void test_aud(void **state)
{
	(void)state;
	char c[256];
	const char *fmt = "{\"exp\":%lld,\"iss\":\"" ISS "\",\"aud\":%s}";
	const struct {
		const char *aud;
		enum mg_jwt_status st;
	} cases[] = {
		{ "\"" AUD "\"", MG_JWT_OK },
		{ "\"other\"", MG_JWT_OK },
		{ "\"mcp-guard2\"", MG_JWT_BAD_AUDIENCE },
		{ "\"MCP-GUARD\"", MG_JWT_BAD_AUDIENCE },
		{ "[\"x\",\"" AUD "\"]", MG_JWT_OK },
		{ "[\"" AUD "\"]", MG_JWT_OK },
		{ "[\"x\",\"y\"]", MG_JWT_BAD_AUDIENCE },
		{ "[]", MG_JWT_BAD_AUDIENCE },
		{ "[\"" AUD "\",3]", MG_JWT_MALFORMED },
		{ "[[\"" AUD "\"]]", MG_JWT_MALFORMED },
		{ "{\"" AUD "\":1}", MG_JWT_MALFORMED },
		{ "3", MG_JWT_MALFORMED },
		{ "null", MG_JWT_MALFORMED },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(c, sizeof c, fmt, NOW + 100, cases[i].aud);
		assert_int_equal(check_claims(c), cases[i].st);
	}
	snprintf(c, sizeof c, "{\"exp\":%lld,\"iss\":\"" ISS "\"}", NOW + 100);
	assert_int_equal(check_claims(c), MG_JWT_BAD_AUDIENCE);

	/* No audience in the policy: aud is not required but must be well-typed. */
	struct mg_jwt_policy p = policy();
	p.n_audience = 0;
	char *t = token_with(MG_JWT_HS256, "{\"alg\":\"HS256\"}", c);
	assert_int_equal(check(t, K.hmac, &p), MG_JWT_OK);
	free(t);
	snprintf(c, sizeof c, fmt, NOW + 100, "[1]");
	t = token_with(MG_JWT_HS256, "{\"alg\":\"HS256\"}", c);
	assert_int_equal(check(t, K.hmac, &p), MG_JWT_MALFORMED);
	free(t);
}

static void test_duplicates_and_shapes(void **state)
{
	(void)state;
	char c[256];
	snprintf(c, sizeof c, CLAIMS_FMT, NOW + 3600, NOW);
	/* Duplicate alg in the header, duplicate exp in the payload. */
	assert_int_equal(check_with(MG_JWT_HS256, "{\"alg\":\"HS256\",\"alg\":\"none\"}", c),
	                 MG_JWT_MALFORMED);
	assert_int_equal(check_with(MG_JWT_HS256, "{\"alg\":\"HS256\",\"alg\":\"HS256\"}", c),
	                 MG_JWT_MALFORMED);
	snprintf(c, sizeof c, "{\"exp\":%lld,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%lld}",
	         NOW - 1000, NOW + 3600);
	assert_int_equal(check_claims(c), MG_JWT_MALFORMED);

	/* Header and payload must be JSON objects. */
	snprintf(c, sizeof c, CLAIMS_FMT, NOW + 3600, NOW);
	assert_int_equal(check_with(MG_JWT_HS256, "[\"HS256\"]", c), MG_JWT_MALFORMED);
	assert_int_equal(check_with(MG_JWT_HS256, "\"HS256\"", c), MG_JWT_MALFORMED);
	assert_int_equal(check_with(MG_JWT_HS256, "{\"alg\":\"HS256\"} x", c), MG_JWT_MALFORMED);
	assert_int_equal(check_with(MG_JWT_HS256, "{\"alg\":\"HS256\",\"x\":\"\\u0000\"}", c),
	                 MG_JWT_MALFORMED);
	assert_int_equal(check_claims("[1]"), MG_JWT_MALFORMED);
	assert_int_equal(check_claims("42"), MG_JWT_MALFORMED);
	assert_int_equal(check_claims("{\"exp\":1,"), MG_JWT_MALFORMED);
	assert_int_equal(check_claims("{\"a\":\"\xff\"}"), MG_JWT_MALFORMED);
	/* Empty payload. */
	struct signer s = signer_for(MG_JWT_HS256);
	char *t = make_token("{\"alg\":\"HS256\"}", "", &s);
	struct mg_jwt_policy p = policy();
	assert_int_equal(check(t, K.hmac, &p), MG_JWT_MALFORMED);
	free(t);

	/* Depth: claims nested 16 deep pass, 17 deep do not. */
	char deep[512];
	for (int depth = 15; depth <= 16; depth++) {
		int o = snprintf(
		    deep, sizeof deep,
		    "{\"exp\":%lld,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"x\":", NOW + 100);
		for (int i = 0; i < depth; i++)
			deep[o++] = '[';
		for (int i = 0; i < depth; i++)
			deep[o++] = ']';
		deep[o++] = '}';
		deep[o] = '\0';
		assert_int_equal(check_claims(deep), depth == 15 ? MG_JWT_OK : MG_JWT_MALFORMED);
	}
	/* Brackets inside strings do not count. */
	snprintf(c, sizeof c,
	         "{\"exp\":%lld,\"iss\":\"" ISS "\",\"aud\":\"" AUD
	         "\",\"x\":\"[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[\"}",
	         NOW + 100);
	assert_int_equal(check_claims(c), MG_JWT_OK);
}

static void test_truncated(void **state)
{
	(void)state;
	for (int i = 0; i < MG_JWT_ALG_COUNT; i++) {
		enum mg_jwt_alg alg = (enum mg_jwt_alg)i;
		struct mg_jwt_policy p = policy();
		char *t = good_token(alg);
		size_t n = strlen(t);
		char *copy = malloc(n + 1);
		assert_int_equal(check_n(t, n, set_for(alg), &p), MG_JWT_OK);
		for (size_t k = 0; k < n; k++) {
			/* A fresh allocation of exactly k bytes lets ASan see overreads. */
			char *pre = malloc(k ? k : 1);
			memcpy(pre, t, k);
			assert_int_not_equal(check_n(pre, k, set_for(alg), &p), MG_JWT_OK);
			free(pre);
		}
		/* Every single-character deletion fails too. */
		for (size_t k = 0; k < n; k++) {
			memcpy(copy, t, k);
			memcpy(copy + k, t + k + 1, n - k);
			assert_int_not_equal(check(copy, set_for(alg), &p), MG_JWT_OK);
		}
		free(copy);
		free(t);
	}
}

static void test_sizes_and_bytes(void **state)
{
	(void)state;
	struct mg_jwt_policy p = policy();
	char *t = good_token(MG_JWT_HS256);
	size_t n = strlen(t);
	p.max_token_bytes = n;
	assert_int_equal(check(t, K.hmac, &p), MG_JWT_OK);
	p.max_token_bytes = n - 1;
	assert_int_equal(check(t, K.hmac, &p), MG_JWT_MALFORMED);

	/* An oversized token with a big claim, against the default cap. */
	p = policy();
	char *big = malloc(20000);
	int o =
	    snprintf(big, 20000, "{\"exp\":%lld,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"x\":\"",
	             NOW + 100);
	memset(big + o, 'x', 13000);
	snprintf(big + o + 13000, 20000 - (size_t)o - 13000, "\"}");
	char *bt = token_with(MG_JWT_HS256, "{\"alg\":\"HS256\"}", big);
	assert_true(strlen(bt) > 16384);
	assert_int_equal(check(bt, K.hmac, &p), MG_JWT_MALFORMED);
	p.max_token_bytes = 0; /* the default, 16384 */
	assert_int_equal(check(bt, K.hmac, &p), MG_JWT_MALFORMED);
	p.max_token_bytes = 32768;
	assert_int_equal(check(bt, K.hmac, &p), MG_JWT_OK);
	free(bt);
	free(big);

	/* Bytes outside base64url anywhere, and extra parts. */
	p = policy();
	char *copy = malloc(n + 8);
	static const char bad[] = { '=', '+', '/', ' ', '\n', '\0', '\xc3', '%', '*' };
	for (size_t b = 0; b < sizeof bad; b++) {
		for (size_t at = 0; at <= n; at += n / 7) {
			memcpy(copy, t, at);
			copy[at] = bad[b];
			memcpy(copy + at + 1, t + at, n - at + 1);
			assert_int_equal(check_n(copy, n + 1, K.hmac, &p), MG_JWT_MALFORMED);
		}
	}
	snprintf(copy, n + 8, "%s.", t);
	assert_int_equal(check(copy, K.hmac, &p), MG_JWT_MALFORMED);
	snprintf(copy, n + 8, "%s.AA", t);
	assert_int_equal(check(copy, K.hmac, &p), MG_JWT_MALFORMED);
	snprintf(copy, n + 8, ".%s", t);
	assert_int_equal(check(copy, K.hmac, &p), MG_JWT_MALFORMED);
	assert_int_equal(check("..", K.hmac, &p), MG_JWT_MALFORMED);
	assert_int_equal(check("", K.hmac, &p), MG_JWT_MALFORMED);
	assert_int_equal(check("a.b.c", K.hmac, &p), MG_JWT_MALFORMED);
	/* Arguments missing. */
	struct mg_jwt jwt;
	assert_int_equal(mg_jwt_verify(NULL, 3, K.hmac, &p, &jwt, NULL, 0), MG_JWT_MALFORMED);
	assert_int_equal(mg_jwt_verify(t, n, NULL, &p, &jwt, NULL, 0), MG_JWT_MALFORMED);
	assert_int_equal(mg_jwt_verify(t, n, K.hmac, NULL, &jwt, NULL, 0), MG_JWT_MALFORMED);
	/* out may be NULL: the answer alone. */
	assert_int_equal(mg_jwt_verify(t, n, K.hmac, &p, NULL, NULL, 0), MG_JWT_OK);
	free(copy);
	free(t);
}

/* '+', '/' and '=' in parts whose base64url form is otherwise right. */
static void test_lax_base64(void **state)
{
	(void)state;
	struct mg_jwt_policy p = policy();
	int found_dash = 0, found_us = 0;
	for (int i = 0; i < 200 && (found_dash < 3 || found_us < 3); i++) {
		char c[256];
		snprintf(c, sizeof c,
		         "{\"exp\":%lld,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"jti\":\"%d\"}",
		         NOW + 100, i);
		char *t = token_with(MG_JWT_HS256, "{\"alg\":\"HS256\"}", c);
		assert_int_equal(check(t, K.hmac, &p), MG_JWT_OK);
		char *sp = strrchr(t, '.') + 1;
		char *m = strpbrk(sp, "-_");
		if (m) {
			*m = *m == '-' ? '+' : '/';
			if (*m == '+')
				found_dash++;
			else
				found_us++;
			assert_int_equal(check(t, K.hmac, &p), MG_JWT_MALFORMED);
		}
		free(t);
	}
	assert_true(found_dash > 0 && found_us > 0);

	/* Padding on a header whose length is not a multiple of three:
	 * {"alg":"HS256"} is 15 bytes; add a space inside to get 16. */
	char c[256];
	snprintf(c, sizeof c, CLAIMS_FMT, NOW + 3600, NOW);
	char *t = token_with(MG_JWT_HS256, "{\"alg\": \"HS256\"}", c);
	assert_int_equal(check(t, K.hmac, &p), MG_JWT_OK);
	size_t n = strlen(t);
	char *dot = strchr(t, '.');
	char *padded = malloc(n + 4);
	size_t hl = (size_t)(dot - t);
	memcpy(padded, t, hl);
	memcpy(padded + hl, "==", 2);
	memcpy(padded + hl + 2, dot, n - hl + 1);
	assert_int_equal(check(padded, K.hmac, &p), MG_JWT_MALFORMED);
	/* The same on the signature (32 bytes -> 43 chars + one '='). */
	snprintf(padded, n + 4, "%s=", t);
	assert_int_equal(check(padded, K.hmac, &p), MG_JWT_MALFORMED);
	free(padded);
	free(t);
}

static void test_jwks_parse(void **state)
{
	(void)state;
	char err[256];

	/* Unusable keys are skipped and counted. */
	json_t *priv = jwk_of(K.ec256, "priv", NULL);
	json_object_set_new(priv, "d", json_string("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"));
	json_t *enc = jwk_of(K.ec256, "enc", NULL);
	json_object_set_new(enc, "use", json_string("enc"));
	json_t *ops = jwk_of(K.ec256, "ops", NULL);
	json_object_set_new(ops, "key_ops", json_pack("[s]", "encrypt"));
	json_t *ops_ok = jwk_of(K.ed, "ops_ok", NULL);
	json_object_set_new(ops_ok, "key_ops", json_pack("[s,s]", "sign", "verify"));
	json_object_set_new(ops_ok, "use", json_string("sig"));
	json_t *mismatch = jwk_of(K.ec256, "mismatch", "RS256");
	json_t *unknown_alg = jwk_of(K.rsa, "oaep", "RSA-OAEP");
	json_t *oct = json_pack("{s:s,s:s,s:s}", "kty", "oct", "kid", "oct", "k", "c2VjcmV0");
	json_t *p521 =
	    json_pack("{s:s,s:s,s:s,s:s}", "kty", "EC", "crv", "P-521", "x", "AAAA", "y", "AAAA");
	json_t *x448 = json_pack("{s:s,s:s,s:s}", "kty", "OKP", "crv", "Ed448", "x", "AAAA");
	json_t *bad_kid = jwk_of(K.ed, NULL, NULL);
	json_object_set_new(bad_kid, "kid", json_integer(5));
	json_t *short_x = jwk_of(K.ec256, "short", NULL);
	json_object_set_new(short_x, "x", json_string("AAAA"));
	json_t *off_curve = jwk_of(K.ec256, "off", NULL);
	json_object_set_new(off_curve, "y",
	                    json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"));
	json_t *padded = jwk_of(K.ed, "padded", NULL);
	char xs[64];
	snprintf(xs, sizeof xs, "%s=", json_string_value(json_object_get(padded, "x")));
	json_object_set_new(padded, "x", json_string(xs));
	json_t *even_e = jwk_of(K.rsa, "even", NULL);
	json_object_set_new(even_e, "e", json_string("AQAA"));
	json_t *rsa_priv = jwk_of(K.rsa, "rsapriv", NULL);
	json_object_set_new(rsa_priv, "p", json_string("AQAB"));
	json_t *rsa_k = jwk_of(K.rsa, "rsak", NULL);
	json_object_set_new(rsa_k, "k", json_string("AQAB"));
	json_t *big_e = jwk_of(K.rsa, "bige", NULL);
	json_object_set_new(big_e, "e", json_string("AQAAAAAB"));

	char *doc = JWKS(jwk_of(K.rsa1024, "small", NULL), priv, enc, ops, ops_ok, mismatch,
	                 unknown_alg, oct, p521, x448, bad_kid, short_x, off_curve, padded, even_e,
	                 big_e, rsa_priv, rsa_k, json_string("not a key"),
	                 json_pack("{s:s}", "kty", "RSA"), jwk_of(K.rsa, "good", "PS512"));
	struct mg_jwk_set *set = mg_jwk_set_parse(doc, strlen(doc), err, sizeof err);
	assert_non_null(set);
	assert_int_equal(mg_jwk_set_count(set), 2);
	assert_int_equal(mg_jwk_set_skipped(set), 19);
	assert_true(mg_jwk_set_has_kid(set, "good"));
	assert_true(mg_jwk_set_has_kid(set, "ops_ok"));
	assert_false(mg_jwk_set_has_kid(set, "small"));
	assert_false(mg_jwk_set_has_kid(set, "priv"));
	assert_false(mg_jwk_set_has_kid(set, "oct"));
	assert_false(mg_jwk_set_has_kid(set, "goo"));
	assert_false(mg_jwk_set_has_kid(set, NULL));
	assert_false(mg_jwk_set_has_kid(NULL, "good"));
	mg_jwk_set_unref(set);
	free(doc);

	/* Only unusable keys: refused, with the first reason. */
	doc = JWKS(jwk_of(K.rsa1024, "small", NULL));
	assert_null(mg_jwk_set_parse(doc, strlen(doc), err, sizeof err));
	assert_non_null(strstr(err, "2048"));
	free(doc);
	json_t *dpriv = jwk_of(K.ed, "x", NULL);
	json_object_set_new(dpriv, "d", json_string("AAAA"));
	doc = JWKS(dpriv);
	assert_null(mg_jwk_set_parse(doc, strlen(doc), err, sizeof err));
	free(doc);

	/* Document shape. */
	static const char *const bad_docs[] = {
		"",
		"{",
		"[]",
		"{}",
		"{\"keys\":{}}",
		"{\"keys\":[]}",
		"{\"keys\":[],\"keys\":[]}",
		"\"keys\"",
		"{\"keys\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
	};
	for (size_t i = 0; i < sizeof bad_docs / sizeof bad_docs[0]; i++) {
		err[0] = '\0';
		assert_null(mg_jwk_set_parse(bad_docs[i], strlen(bad_docs[i]), err, sizeof err));
		assert_true(err[0] != '\0');
	}
	assert_null(mg_jwk_set_parse(NULL, 0, NULL, 0));

	/* 100 keys are fine, 101 are not. */
	for (int n = 100; n <= 101; n++) {
		json_t *keys = json_array();
		for (int i = 0; i < n; i++) {
			char kid[16];
			snprintf(kid, sizeof kid, "k%d", i);
			json_array_append_new(keys, jwk_of(K.ed, kid, NULL));
		}
		json_t *d = json_pack("{s:o}", "keys", keys);
		doc = json_dumps(d, JSON_COMPACT);
		set = mg_jwk_set_parse(doc, strlen(doc), err, sizeof err);
		if (n == 100) {
			assert_non_null(set);
			assert_int_equal(mg_jwk_set_count(set), 100);
			assert_true(mg_jwk_set_has_kid(set, "k99"));
			/* 100 keys fit EdDSA: without kid that is ambiguous. */
			struct mg_jwt_policy p = policy();
			char *t = token_with(MG_JWT_EDDSA, "{\"alg\":\"EdDSA\"}", "{}");
			assert_int_equal(check(t, set, &p), MG_JWT_UNKNOWN_KID);
			free(t);
			t = token_with(MG_JWT_EDDSA, "{\"alg\":\"EdDSA\",\"kid\":\"k42\"}",
			               "{\"exp\":1700000100,\"iss\":\"" ISS "\",\"aud\":\"" AUD
			               "\"}");
			assert_int_equal(check(t, set, &p), MG_JWT_OK);
			free(t);
			mg_jwk_set_unref(set);
		} else {
			assert_null(set);
			assert_non_null(strstr(err, "101"));
		}
		free(doc);
		json_decref(d);
	}

	/* Over 256 KiB, even when valid; exactly 256 KiB parses. */
	char *jwk = JWKS(jwk_of(K.ed, "e", NULL));
	size_t jl = strlen(jwk);
	for (size_t size = 256 * 1024; size <= 256 * 1024 + 1; size++) {
		doc = malloc(size);
		memcpy(doc, jwk, jl - 1);
		memset(doc + jl - 1, ' ', size - jl);
		doc[size - 1] = '}';
		set = mg_jwk_set_parse(doc, size, err, sizeof err);
		if (size == 256 * 1024) {
			assert_non_null(set);
			mg_jwk_set_unref(set);
		} else {
			assert_null(set);
			assert_non_null(strstr(err, "256"));
		}
		free(doc);
	}
	free(jwk);
}

static void test_hmac_set(void **state)
{
	(void)state;
	assert_null(mg_jwk_set_hmac("", 0));
	assert_null(mg_jwk_set_hmac(NULL, 5));
	char buf[64];
	memcpy(buf, secret, sizeof buf);
	struct mg_jwk_set *set = mg_jwk_set_hmac(buf, sizeof buf);
	assert_non_null(set);
	memset(buf, 0, sizeof buf); /* the set has its own copy */
	assert_int_equal(mg_jwk_set_count(set), 1);
	assert_int_equal(mg_jwk_set_skipped(set), 0);
	assert_false(mg_jwk_set_has_kid(set, "x"));
	struct mg_jwt_policy p = policy();
	for (int i = 0; i < MG_JWT_ALG_COUNT; i++) {
		char *t = good_token((enum mg_jwt_alg)i);
		enum mg_jwt_status st = check(t, set, &p);
		if (i <= MG_JWT_HS512)
			assert_int_equal(st, MG_JWT_OK);
		else
			assert_int_equal(st, MG_JWT_ALG_REJECTED);
		free(t);
	}
	/* A different secret. */
	struct signer s = { .alg = MG_JWT_HS256, .secret = "another secret", .secret_len = 14 };
	char *c = claims_json();
	char *t = make_token("{\"alg\":\"HS256\"}", c, &s);
	assert_int_equal(check(t, set, &p), MG_JWT_BAD_SIGNATURE);
	free(t);
	free(c);
	mg_jwk_set_unref(set);
}

static void test_refcount(void **state)
{
	(void)state;
	struct mg_jwk_set *set = mg_jwk_set_hmac(secret, strlen(secret));
	assert_ptr_equal(mg_jwk_set_ref(set), set);
	assert_ptr_equal(mg_jwk_set_ref(set), set);
	mg_jwk_set_unref(set);
	mg_jwk_set_unref(set);
	/* Still alive with the last reference. */
	struct mg_jwt_policy p = policy();
	char *t = good_token(MG_JWT_HS256);
	assert_int_equal(check(t, set, &p), MG_JWT_OK);
	free(t);
	mg_jwk_set_unref(set);
	assert_null(mg_jwk_set_ref(NULL));
	mg_jwk_set_unref(NULL);
	assert_int_equal(mg_jwk_set_count(NULL), 0);
	mg_jwt_free(NULL);

	/* A verified token keeps nothing from the set alive. */
	set = mg_jwk_set_ref(K.jwks);
	t = good_token(MG_JWT_ES256);
	struct mg_jwt jwt;
	assert_int_equal(mg_jwt_verify(t, strlen(t), set, &p, &jwt, NULL, 0), MG_JWT_OK);
	mg_jwk_set_unref(set);
	assert_int_equal(jwt.alg, MG_JWT_ES256);
	mg_jwt_free(&jwt);
	free(t);
}

static void test_peek_kid(void **state)
{
	(void)state;
	char kid[16];
	char *t = good_token(MG_JWT_RS256);
	assert_int_equal(mg_jwt_peek_kid(t, strlen(t), kid, sizeof kid), 0);
	assert_string_equal(kid, "rsa1");
	assert_int_equal(mg_jwt_peek_kid(t, strlen(t), kid, 4), -1);
	assert_int_equal(mg_jwt_peek_kid(t, strlen(t), kid, 5), 0);
	assert_int_equal(mg_jwt_peek_kid(t, 3, kid, sizeof kid), -1);
	free(t);
	t = good_token(MG_JWT_HS256);
	assert_int_equal(mg_jwt_peek_kid(t, strlen(t), kid, sizeof kid), -1);
	free(t);
	assert_int_equal(mg_jwt_peek_kid("", 0, kid, sizeof kid), -1);
	assert_int_equal(mg_jwt_peek_kid(".", 1, kid, sizeof kid), -1);
	assert_int_equal(mg_jwt_peek_kid("e30.e30.AA", 10, kid, sizeof kid), -1);
	/* {"kid":"a","kid":"b"} */
	assert_int_equal(mg_jwt_peek_kid("eyJraWQiOiJhIiwia2lkIjoiYiJ9.x.y", 32, kid, sizeof kid),
	                 -1);
	/* {"kid":"a"} with padding */
	assert_int_equal(mg_jwt_peek_kid("eyJraWQiOiJhIn0=.x.y", 20, kid, sizeof kid), -1);
	assert_int_equal(mg_jwt_peek_kid("eyJraWQiOiJhIn0.x.y", 19, kid, sizeof kid), 0);
	assert_string_equal(kid, "a");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alg_names),
		cmocka_unit_test(test_each_alg_ok),
		cmocka_unit_test(test_rfc_vectors),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_alg_none),
		cmocka_unit_test(test_hmac_with_rsa_public_key),
		cmocka_unit_test(test_header_rejects),
		cmocka_unit_test(test_key_selection),
		cmocka_unit_test(test_signature_details),
		cmocka_unit_test(test_exp),
		cmocka_unit_test(test_nbf_iat),
		cmocka_unit_test(test_iss),
		cmocka_unit_test(test_aud),
		cmocka_unit_test(test_duplicates_and_shapes),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_sizes_and_bytes),
		cmocka_unit_test(test_lax_base64),
		cmocka_unit_test(test_jwks_parse),
		cmocka_unit_test(test_hmac_set),
		cmocka_unit_test(test_refcount),
		cmocka_unit_test(test_peek_kid),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
