/*
 * jwt.c - compact JWS verification and JWK sets on OpenSSL 3 EVP.
 *
 * The jwt auth provider calls mg_jwt_verify() once per request with a key
 * set (a static HMAC secret, or a JWKS document parsed by
 * mg_jwk_set_parse() and shared by reference count with the JWKS cache)
 * and a policy built from the configuration. Nothing here does I/O or
 * reads the clock.
 *
 * What a person changing this file must keep (jwt.h lists the attacks):
 *  - The order of mg_jwt_verify(): cheap syntax checks on the whole token,
 *    then the header (alg against the policy, forbidden members), one key
 *    chosen without trying several, the signature, and only then the
 *    claims. The payload is decoded before the signature check (a cheap
 *    syntax check) but parsed as JSON only after it.
 *  - A key fits an alg by kty, curve and the JWK's own `alg`; nothing in
 *    the token can make an RSA or EC public key act as an HMAC secret.
 *  - JSON is parsed with JSON_REJECT_DUPLICATES after a depth pre-scan, and
 *    base64url strictly (no padding, no '+' or '/').
 *  - Signature sizes are exact: the RSA modulus length, 64 or 96 raw bytes
 *    for ES256 / ES384 (converted to DER here), 64 for Ed25519, the digest
 *    length for HMAC.
 *  - Every failure path releases what it took, and OpenSSL's error queue is
 *    cleared, so a stream of bad tokens leaves nothing behind.
 *  - Keys are prepared once per set (struct mg_jwk): EVP_PKEY from the JWK
 *    members with EVP_PKEY_fromdata, then a verification context per
 *    algorithm the key fits, which each token copies.
 */
#include "auth/jwt.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "util/crypto.h"
#include "util/str.h"

#define JWT_DEFAULT_MAX_TOKEN 16384
#define JWT_MAX_DEPTH         16   /* nesting of header, claims and JWKS documents */
#define JWT_KID_MAX           255  /* bytes of a `kid`, in tokens and JWKs */
#define JWT_SIG_MAX           1024 /* RSA 8192 */
#define JWKS_MAX_BYTES        (256 * 1024)
#define JWKS_MAX_KEYS         100
#define RSA_MIN_BITS          2048
#define RSA_MAX_BITS          8192
#define RSA_MAX_E_BYTES       4 /* larger exponents only make verification slow */
#define HMAC_MAX_SECRET       (64 * 1024)

enum jwk_kty { KTY_OCT, KTY_RSA, KTY_EC, KTY_OKP };
enum jwk_crv { CRV_NONE, CRV_P256, CRV_P384, CRV_ED25519 };
enum sig_kind { SIG_HMAC, SIG_PKCS1, SIG_PSS, SIG_ECDSA, SIG_EDDSA };

static const struct alg_info {
	const char *name;
	enum jwk_kty kty;
	enum jwk_crv crv; /* CRV_NONE: any (RSA, oct) */
	enum sig_kind kind;
	const char *md; /* digest name; NULL for EdDSA */
	size_t coord;   /* ECDSA: bytes of r and of s */
} alg_table[MG_JWT_ALG_COUNT] = {
	[MG_JWT_HS256] = { "HS256", KTY_OCT, CRV_NONE, SIG_HMAC, "SHA256", 0 },
	[MG_JWT_HS384] = { "HS384", KTY_OCT, CRV_NONE, SIG_HMAC, "SHA384", 0 },
	[MG_JWT_HS512] = { "HS512", KTY_OCT, CRV_NONE, SIG_HMAC, "SHA512", 0 },
	[MG_JWT_RS256] = { "RS256", KTY_RSA, CRV_NONE, SIG_PKCS1, "SHA256", 0 },
	[MG_JWT_RS384] = { "RS384", KTY_RSA, CRV_NONE, SIG_PKCS1, "SHA384", 0 },
	[MG_JWT_RS512] = { "RS512", KTY_RSA, CRV_NONE, SIG_PKCS1, "SHA512", 0 },
	[MG_JWT_PS256] = { "PS256", KTY_RSA, CRV_NONE, SIG_PSS, "SHA256", 0 },
	[MG_JWT_PS384] = { "PS384", KTY_RSA, CRV_NONE, SIG_PSS, "SHA384", 0 },
	[MG_JWT_PS512] = { "PS512", KTY_RSA, CRV_NONE, SIG_PSS, "SHA512", 0 },
	[MG_JWT_ES256] = { "ES256", KTY_EC, CRV_P256, SIG_ECDSA, "SHA256", 32 },
	[MG_JWT_ES384] = { "ES384", KTY_EC, CRV_P384, SIG_ECDSA, "SHA384", 48 },
	[MG_JWT_EDDSA] = { "EdDSA", KTY_OKP, CRV_ED25519, SIG_EDDSA, NULL, 0 },
};

/* One verification key. */
struct mg_jwk {
	char *kid; /* NULL when the JWK has none */
	int alg;   /* enum mg_jwt_alg, or -1 when the JWK names none */
	enum jwk_kty kty;
	enum jwk_crv crv;
	EVP_PKEY *pkey; /* RSA, EC, OKP */
	size_t sig_len; /* RSA: modulus bytes, the exact signature size */
	/* For each algorithm the key fits, a context set up once for
	 * verification and copied for every token: in OpenSSL 3.0, fetching
	 * and initialising per token cost a third of an RS256 verification
	 * and take global locks. The templates are only read after the set
	 * is built, so threads sharing the set may copy them concurrently. */
	EVP_MD_CTX *verify[MG_JWT_ALG_COUNT]; /* RS*, PS*, ES*, EdDSA */
	EVP_MAC_CTX *mac[MG_JWT_ALG_COUNT];   /* HS* (oct) */
};

struct mg_jwk_set {
	atomic_size_t refs;
	size_t n;
	size_t skipped;
	bool ignore_kid; /* one HMAC secret: a token's kid selects nothing */
	struct mg_jwk keys[];
};

/* ---- small helpers --------------------------------------------------------- */

static void set_msg(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_msg(char *buf, size_t size, const char *fmt, ...)
{
	if (!buf || !size)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

static bool b64url_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* Bytes that `n` characters of unpadded base64 decode to; -1 when no
 * such encoding exists. */
static long b64url_decoded_len(size_t n)
{
	if (n % 4 == 1)
		return -1;
	return (long)(n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0));
}

/* Strict base64url (RFC 7515 §2): URL alphabet only, no padding, no
 * whitespace, canonical trailing bits. Returns the decoded length or -1. */
static long b64url_decode(const char *s, size_t n, void *out, size_t out_size)
{
	for (size_t i = 0; i < n; i++)
		if (!b64url_char((unsigned char)s[i]))
			return -1;
	if (b64url_decoded_len(n) < 0)
		return -1;
	return mg_base64_decode(s, n, out, out_size);
}

/* Maximum nesting of `len` bytes of JSON text, stopping once `limit` is
 * exceeded; strings are skipped. The text need not be valid JSON (jansson
 * judges that afterwards); this only bounds the work jansson will do. */
static size_t json_depth(const char *text, size_t len, size_t limit)
{
	size_t depth = 0, max = 0;
	bool in_str = false, esc = false;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max) {
				max = depth;
				if (max > limit)
					return max;
			}
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return max;
}

/* Parses `len` bytes as one JSON object, duplicates rejected, depth bounded. */
static json_t *parse_object(const char *text, size_t len)
{
	if (json_depth(text, len, JWT_MAX_DEPTH) > JWT_MAX_DEPTH)
		return NULL;
	json_error_t jerr;
	json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (v && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

/* Decodes one base64url token part and parses it as a JSON object. */
static json_t *decode_object(const char *s, size_t n)
{
	if (n == 0)
		return NULL;
	char *buf = malloc(n);
	if (!buf)
		return NULL;
	json_t *v = NULL;
	long k = b64url_decode(s, n, buf, n);
	if (k > 0)
		v = parse_object(buf, (size_t)k);
	free(buf);
	return v;
}

static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

/* ---- algorithms and statuses ----------------------------------------------- */

int mg_jwt_alg_parse(const char *name)
{
	if (!name)
		return -1;
	for (int i = 0; i < MG_JWT_ALG_COUNT; i++)
		if (strcmp(name, alg_table[i].name) == 0)
			return i;
	return -1;
}

const char *mg_jwt_alg_name(enum mg_jwt_alg alg)
{
	if ((unsigned)alg >= MG_JWT_ALG_COUNT)
		return "?";
	return alg_table[alg].name;
}

const char *mg_jwt_status_name(enum mg_jwt_status st)
{
	switch (st) {
	case MG_JWT_OK:
		return "ok";
	case MG_JWT_MALFORMED:
		return "malformed token";
	case MG_JWT_BAD_HEADER:
		return "bad header";
	case MG_JWT_ALG_REJECTED:
		return "algorithm rejected";
	case MG_JWT_UNKNOWN_KID:
		return "unknown key id";
	case MG_JWT_BAD_SIGNATURE:
		return "bad signature";
	case MG_JWT_EXPIRED:
		return "expired";
	case MG_JWT_NOT_YET_VALID:
		return "not yet valid";
	case MG_JWT_BAD_ISSUER:
		return "bad issuer";
	case MG_JWT_BAD_AUDIENCE:
		return "bad audience";
	}
	return "?";
}

/* ---- key sets -------------------------------------------------------------- */

static bool key_fits(const struct mg_jwk *k, enum mg_jwt_alg alg)
{
	const struct alg_info *a = &alg_table[alg];
	if (k->kty != a->kty)
		return false;
	if (a->crv != CRV_NONE && k->crv != a->crv)
		return false;
	return k->alg < 0 || k->alg == (int)alg;
}

static void jwk_clear(struct mg_jwk *k)
{
	free(k->kid);
	EVP_PKEY_free(k->pkey);
	for (int i = 0; i < MG_JWT_ALG_COUNT; i++) {
		EVP_MD_CTX_free(k->verify[i]);
		EVP_MAC_CTX_free(k->mac[i]);
	}
	memset(k, 0, sizeof *k);
}

static EVP_MD_CTX *verify_template(EVP_PKEY *pkey, enum mg_jwt_alg alg)
{
	const struct alg_info *a = &alg_table[alg];
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	if (!m || EVP_DigestVerifyInit_ex(m, &pctx, a->md, NULL, NULL, pkey, NULL) != 1)
		goto fail;
	/* PSS: salt length = digest length (RFC 7518 §3.5), enforced when
	 * verifying; MGF1 with the same hash. */
	if (a->kind == SIG_PSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
	     EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, a->md, NULL) <= 0 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0))
		goto fail;
	if (a->kind == SIG_PKCS1 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
		goto fail;
	return m;
fail:
	EVP_MD_CTX_free(m);
	return NULL;
}

static EVP_MAC_CTX *mac_template(const void *secret, size_t len, enum mg_jwt_alg alg)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)alg_table[alg].md,
		                                 0),
		OSSL_PARAM_construct_end(),
	};
	if (c && EVP_MAC_init(c, secret, len, params) != 1) {
		EVP_MAC_CTX_free(c);
		c = NULL;
	}
	EVP_MAC_free(mac); /* the context holds its own reference */
	return c;
}

/* Builds the verification templates of a loaded key (`secret` for oct).
 * Returns 0 or -1. */
static int jwk_prepare(struct mg_jwk *k, const void *secret, size_t len)
{
	for (int i = 0; i < MG_JWT_ALG_COUNT; i++) {
		enum mg_jwt_alg alg = (enum mg_jwt_alg)i;
		if (!key_fits(k, alg))
			continue;
		if (alg_table[alg].kind == SIG_HMAC)
			k->mac[alg] = mac_template(secret, len, alg);
		else
			k->verify[alg] = verify_template(k->pkey, alg);
		if (!k->mac[alg] && !k->verify[alg])
			return -1;
	}
	return 0;
}

static struct mg_jwk_set *set_new(size_t n)
{
	struct mg_jwk_set *set = calloc(1, sizeof *set + n * sizeof set->keys[0]);
	if (set)
		atomic_init(&set->refs, 1);
	return set;
}

struct mg_jwk_set *mg_jwk_set_ref(struct mg_jwk_set *set)
{
	if (set)
		atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
	return set;
}

void mg_jwk_set_unref(struct mg_jwk_set *set)
{
	if (!set || atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < set->n; i++)
		jwk_clear(&set->keys[i]);
	free(set);
}

size_t mg_jwk_set_count(const struct mg_jwk_set *set)
{
	return set ? set->n : 0;
}

size_t mg_jwk_set_skipped(const struct mg_jwk_set *set)
{
	return set ? set->skipped : 0;
}

bool mg_jwk_set_has_kid(const struct mg_jwk_set *set, const char *kid)
{
	if (!set || !kid)
		return false;
	for (size_t i = 0; i < set->n; i++)
		if (set->keys[i].kid && strcmp(set->keys[i].kid, kid) == 0)
			return true;
	return false;
}

struct mg_jwk_set *mg_jwk_set_hmac(const void *secret, size_t len)
{
	if (!secret || len == 0 || len > HMAC_MAX_SECRET)
		return NULL;
	struct mg_jwk_set *set = set_new(1);
	if (!set)
		return NULL;
	struct mg_jwk *k = &set->keys[0];
	k->kty = KTY_OCT;
	k->crv = CRV_NONE;
	k->alg = -1;
	set->n = 1;
	set->ignore_kid = true;
	/* The MAC contexts keep their own copy of the secret. */
	if (jwk_prepare(k, secret, len) < 0) {
		mg_jwk_set_unref(set);
		ERR_clear_error();
		return NULL;
	}
	return set;
}

/* Decodes the base64url string member `name` of `jwk` into `out`, which
 * must come out `min`..`max` bytes long. Returns the length or -1. */
static long jwk_bytes(const json_t *jwk, const char *name, unsigned char *out, size_t min,
                      size_t max)
{
	const json_t *v = json_object_get(jwk, name);
	if (!json_is_string(v))
		return -1;
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	long want = b64url_decoded_len(n);
	if (want < 0 || (size_t)want < min || (size_t)want > max)
		return -1;
	return b64url_decode(s, n, out, max);
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM *params)
{
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

/* Validates a public key the way OpenSSL does for its type (EC: the point
 * is on the curve and not the identity). */
static bool pkey_public_ok(EVP_PKEY *pkey)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	bool ok = ctx && EVP_PKEY_public_check(ctx) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static const char *jwk_load_rsa(const json_t *jwk, struct mg_jwk *k)
{
	unsigned char n[RSA_MAX_BITS / 8 + 1], e[RSA_MAX_E_BYTES];
	const char *why = NULL;
	long nl = jwk_bytes(jwk, "n", n, 1, sizeof n);
	long el = jwk_bytes(jwk, "e", e, 1, sizeof e);
	if (nl < 0)
		return "RSA key without a valid \"n\"";
	if (el < 0)
		return "RSA key without a valid \"e\" (at most 32 bits)";
	BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	if (!bn || !be || !bld) {
		why = "out of memory";
		goto out;
	}
	int bits = BN_num_bits(bn);
	if (bits < RSA_MIN_BITS) {
		why = "RSA key under 2048 bits";
		goto out;
	}
	if (bits > RSA_MAX_BITS) {
		why = "RSA key over 8192 bits";
		goto out;
	}
	/* OpenSSL's own public check runs a primality test on n: too slow to
	 * offer to a document, and it adds nothing to verification. */
	if (!BN_is_odd(bn) || !BN_is_odd(be) || BN_is_one(be)) {
		why = "RSA key with an even modulus or exponent";
		goto out;
	}
	if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld))) {
		why = "out of memory";
		goto out;
	}
	k->pkey = pkey_fromdata("RSA", params);
	if (!k->pkey) {
		why = "RSA key rejected by OpenSSL";
		goto out;
	}
	k->kty = KTY_RSA;
	k->crv = CRV_NONE;
	k->sig_len = ((size_t)bits + 7) / 8;
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return why;
}

static const char *jwk_load_ec(const json_t *jwk, struct mg_jwk *k)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	const char *group;
	size_t clen;
	if (!crv)
		return "EC key without \"crv\"";
	if (strcmp(crv, "P-256") == 0) {
		group = "prime256v1";
		clen = 32;
		k->crv = CRV_P256;
	} else if (strcmp(crv, "P-384") == 0) {
		group = "secp384r1";
		clen = 48;
		k->crv = CRV_P384;
	} else {
		return "EC key on an unsupported curve";
	}
	/* RFC 7518 §6.2.1.2: x and y are the full coordinate length. */
	unsigned char pub[1 + 2 * 48];
	pub[0] = 0x04;
	if (jwk_bytes(jwk, "x", pub + 1, clen, clen) < 0 ||
	    jwk_bytes(jwk, "y", pub + 1 + clen, clen, clen) < 0)
		return "EC key with malformed \"x\" or \"y\"";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * clen),
		OSSL_PARAM_construct_end(),
	};
	k->pkey = pkey_fromdata("EC", params);
	if (!k->pkey || !pkey_public_ok(k->pkey))
		return "EC key not a point on its curve";
	k->kty = KTY_EC;
	return NULL;
}

static const char *jwk_load_okp(const json_t *jwk, struct mg_jwk *k)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	if (!crv || strcmp(crv, "Ed25519") != 0)
		return "OKP key on an unsupported curve";
	unsigned char x[32];
	if (jwk_bytes(jwk, "x", x, sizeof x, sizeof x) < 0)
		return "OKP key with malformed \"x\"";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, x, sizeof x),
		OSSL_PARAM_construct_end(),
	};
	k->pkey = pkey_fromdata("ED25519", params);
	if (!k->pkey)
		return "Ed25519 key rejected by OpenSSL";
	k->kty = KTY_OKP;
	k->crv = CRV_ED25519;
	return NULL;
}

/* Members that make a JWK private (RFC 7518 §6.3.2, §6.2.2, RFC 8037 §2)
 * or symmetric (§6.4: "k"); none belongs in a set of verification keys. */
static const char *const private_members[] = { "d", "p", "q", "dp", "dq", "qi", "oth", "k" };

/* Loads one JWK into `k`. Returns NULL, or why the key is skipped. */
static const char *jwk_load(const json_t *jwk, struct mg_jwk *k)
{
	memset(k, 0, sizeof *k);
	k->alg = -1;
	if (!json_is_object(jwk))
		return "not an object";
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	if (!kty)
		return "no \"kty\"";
	for (size_t i = 0; i < sizeof private_members / sizeof private_members[0]; i++)
		if (json_object_get(jwk, private_members[i]))
			return "private or symmetric key material";
	const json_t *use = json_object_get(jwk, "use");
	if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0))
		return "\"use\" is not \"sig\"";
	const json_t *ops = json_object_get(jwk, "key_ops");
	if (ops) {
		bool verify = false;
		size_t i;
		const json_t *op;
		if (!json_is_array(ops))
			return "malformed \"key_ops\"";
		json_array_foreach(ops, i, op)
		{
			if (!json_is_string(op))
				return "malformed \"key_ops\"";
			if (strcmp(json_string_value(op), "verify") == 0)
				verify = true;
		}
		if (!verify)
			return "\"key_ops\" without \"verify\"";
	}
	const json_t *alg = json_object_get(jwk, "alg");
	if (alg) {
		k->alg = mg_jwt_alg_parse(json_string_value(alg));
		if (k->alg < 0)
			return "unsupported \"alg\"";
	}
	const json_t *kid = json_object_get(jwk, "kid");
	if (kid && (!json_is_string(kid) || json_string_length(kid) == 0 ||
	            json_string_length(kid) > JWT_KID_MAX))
		return "malformed \"kid\"";

	const char *why;
	if (strcmp(kty, "RSA") == 0)
		why = jwk_load_rsa(jwk, k);
	else if (strcmp(kty, "EC") == 0)
		why = jwk_load_ec(jwk, k);
	else if (strcmp(kty, "OKP") == 0)
		why = jwk_load_okp(jwk, k);
	else
		why = "unsupported \"kty\"";
	if (!why && k->alg >= 0 && !key_fits(k, (enum mg_jwt_alg)k->alg))
		why = "\"alg\" does not fit the key type";
	if (!why && kid && !(k->kid = mg_strdup(json_string_value(kid))))
		why = "out of memory";
	if (!why && jwk_prepare(k, NULL, 0) < 0)
		why = "key refused by OpenSSL for verification";
	if (why) {
		jwk_clear(k);
		ERR_clear_error();
	}
	return why;
}

struct mg_jwk_set *mg_jwk_set_parse(const char *json, size_t len, char *err, size_t err_size)
{
	struct mg_jwk_set *set = NULL;
	json_t *root = NULL;
	set_msg(err, err_size, "%s", "");
	if (!json || len == 0) {
		set_msg(err, err_size, "JWKS document is empty");
		goto fail;
	}
	if (len > JWKS_MAX_BYTES) {
		set_msg(err, err_size, "JWKS document larger than %d KiB", JWKS_MAX_BYTES / 1024);
		goto fail;
	}
	if (json_depth(json, len, JWT_MAX_DEPTH) > JWT_MAX_DEPTH) {
		set_msg(err, err_size, "JWKS document nested deeper than %d levels", JWT_MAX_DEPTH);
		goto fail;
	}
	json_error_t jerr;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		set_msg(err, err_size, "JWKS document is not JSON: %.80s at byte %d", jerr.text,
		        jerr.position);
		goto fail;
	}
	const json_t *keys = json_object_get(root, "keys");
	if (!json_is_object(root) || !json_is_array(keys)) {
		set_msg(err, err_size, "JWKS document has no \"keys\" array");
		goto fail;
	}
	size_t n = json_array_size(keys);
	if (n > JWKS_MAX_KEYS) {
		set_msg(err, err_size, "JWKS document has %zu keys, more than %d", n,
		        JWKS_MAX_KEYS);
		goto fail;
	}
	set = set_new(n);
	if (!set) {
		set_msg(err, err_size, "out of memory");
		goto fail;
	}
	const char *first_why = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *why = jwk_load(json_array_get(keys, i), &set->keys[set->n]);
		if (why) {
			set->skipped++;
			if (!first_why)
				first_why = why;
		} else {
			set->n++;
		}
	}
	if (set->n == 0) {
		set_msg(err, err_size, "JWKS document has no usable key (%zu skipped%s%s)",
		        set->skipped, first_why ? "; first: " : "", first_why ? first_why : "");
		goto fail;
	}
	json_decref(root);
	return set;
fail:
	mg_jwk_set_unref(set);
	json_decref(root);
	ERR_clear_error();
	return NULL;
}

/* ---- signatures ------------------------------------------------------------ */

/* Appends a DER INTEGER holding the unsigned big-endian `n` bytes at `p`. */
static size_t der_uint(unsigned char *out, const unsigned char *p, size_t n)
{
	while (n > 1 && p[0] == 0) {
		p++;
		n--;
	}
	size_t pad = (p[0] & 0x80) ? 1 : 0;
	out[0] = 0x02;
	out[1] = (unsigned char)(n + pad);
	if (pad)
		out[2] = 0;
	memcpy(out + 2 + pad, p, n);
	return 2 + pad + n;
}

/* JWS ECDSA signatures are R || S (RFC 7518 §3.4); OpenSSL wants the DER
 * SEQUENCE of two INTEGERs. `clen` is at most 48, so every length fits in
 * one byte. */
static size_t ecdsa_raw_to_der(const unsigned char *sig, size_t clen, unsigned char *der)
{
	size_t n = 2;
	n += der_uint(der + n, sig, clen);
	n += der_uint(der + n, sig + clen, clen);
	der[0] = 0x30;
	der[1] = (unsigned char)(n - 2);
	return n;
}

/* Checks `sig` over `msg` with key `k` for `alg`. Returns true when valid. */
static bool verify_sig(const struct mg_jwk *k, enum mg_jwt_alg alg, const unsigned char *msg,
                       size_t mlen, const unsigned char *sig, size_t slen)
{
	const struct alg_info *a = &alg_table[alg];
	unsigned char der[8 + 2 * (3 + 48)];
	bool ok = false;

	if (a->kind == SIG_HMAC) {
		unsigned char mac[EVP_MAX_MD_SIZE];
		size_t maclen = 0;
		EVP_MAC_CTX *c = k->mac[alg] ? EVP_MAC_CTX_dup(k->mac[alg]) : NULL;
		if (c && EVP_MAC_update(c, msg, mlen) == 1 &&
		    EVP_MAC_final(c, mac, &maclen, sizeof mac) == 1 && slen == maclen)
			ok = CRYPTO_memcmp(mac, sig, maclen) == 0;
		EVP_MAC_CTX_free(c);
		OPENSSL_cleanse(mac, sizeof mac);
		goto out;
	}

	switch (a->kind) {
	case SIG_PKCS1:
	case SIG_PSS:
		if (slen != k->sig_len)
			return false;
		break;
	case SIG_ECDSA:
		if (slen != 2 * a->coord)
			return false;
		slen = ecdsa_raw_to_der(sig, a->coord, der);
		sig = der;
		break;
	case SIG_EDDSA:
		if (slen != 64)
			return false;
		break;
	case SIG_HMAC:
		break;
	}
	EVP_MD_CTX *m = k->verify[alg] ? EVP_MD_CTX_new() : NULL;
	if (m && EVP_MD_CTX_copy_ex(m, k->verify[alg]) == 1)
		ok = EVP_DigestVerify(m, sig, slen, msg, mlen) == 1;
	EVP_MD_CTX_free(m);
out:
	if (!ok)
		ERR_clear_error();
	return ok;
}

/* ---- tokens ---------------------------------------------------------------- */

static bool typ_ok(const char *typ)
{
	if (strncasecmp(typ, "application/", 12) == 0)
		typ += 12;
	return strcasecmp(typ, "JWT") == 0 || strcasecmp(typ, "at+jwt") == 0;
}

/* Header members that carry or point to keys, or demand extensions. */
static const char *const forbidden_members[] = { "jwk", "jku", "x5u", "x5c", "crit" };

static enum mg_jwt_status check_header(const json_t *hdr, const struct mg_jwt_policy *policy,
                                       enum mg_jwt_alg *alg, const char **kid, char *why,
                                       size_t why_size)
{
	const char *name = json_string_value(json_object_get(hdr, "alg"));
	if (!name) {
		set_msg(why, why_size, "no \"alg\" in header");
		return MG_JWT_ALG_REJECTED;
	}
	int a = mg_jwt_alg_parse(name);
	if (a < 0) {
		set_msg(why, why_size, "unsupported \"alg\"");
		return MG_JWT_ALG_REJECTED;
	}
	if (!(policy->algs & (1u << a))) {
		set_msg(why, why_size, "alg %s not accepted", alg_table[a].name);
		return MG_JWT_ALG_REJECTED;
	}
	*alg = (enum mg_jwt_alg)a;
	for (size_t i = 0; i < sizeof forbidden_members / sizeof forbidden_members[0]; i++) {
		if (json_object_get(hdr, forbidden_members[i])) {
			set_msg(why, why_size, "header member \"%s\" not accepted",
			        forbidden_members[i]);
			return MG_JWT_BAD_HEADER;
		}
	}
	const json_t *typ = json_object_get(hdr, "typ");
	if (typ && (!json_is_string(typ) || !typ_ok(json_string_value(typ)))) {
		set_msg(why, why_size, "\"typ\" is not JWT or at+jwt");
		return MG_JWT_BAD_HEADER;
	}
	const json_t *k = json_object_get(hdr, "kid");
	*kid = NULL;
	if (k) {
		if (!json_is_string(k) || json_string_length(k) == 0 ||
		    json_string_length(k) > JWT_KID_MAX) {
			set_msg(why, why_size, "malformed \"kid\"");
			return MG_JWT_BAD_HEADER;
		}
		*kid = json_string_value(k);
	}
	return MG_JWT_OK;
}

/* Picks the one key for `alg` (and `kid`); never several to try. */
static enum mg_jwt_status select_key(const struct mg_jwk_set *keys, enum mg_jwt_alg alg,
                                     const char *kid, const struct mg_jwk **out, char *why,
                                     size_t why_size)
{
	const struct mg_jwk *match = NULL;
	size_t fits = 0;
	bool kid_seen = false;
	if (keys->ignore_kid)
		kid = NULL;
	for (size_t i = 0; i < keys->n; i++) {
		const struct mg_jwk *k = &keys->keys[i];
		if (kid) {
			if (!k->kid || strcmp(k->kid, kid) != 0)
				continue;
			kid_seen = true;
		}
		if (key_fits(k, alg)) {
			match = k;
			fits++;
		}
	}
	if (kid && !kid_seen) {
		set_msg(why, why_size, "no key with this kid");
		return MG_JWT_UNKNOWN_KID;
	}
	if (fits == 0) {
		set_msg(why, why_size, "alg %s does not fit the %s", alg_table[alg].name,
		        kid ? "key with this kid" : "keys of the set");
		return MG_JWT_ALG_REJECTED;
	}
	if (fits > 1) {
		set_msg(why, why_size, "%s",
		        kid ? "several keys share this kid"
		            : "several keys fit and the token has no kid");
		return MG_JWT_UNKNOWN_KID;
	}
	*out = match;
	return MG_JWT_OK;
}

/* Reads a NumericDate claim. Fractions round towards the stricter answer
 * for the comparison the caller makes: down for `exp`, up for `nbf`/`iat`.
 * Returns 1 when present, 0 when absent, -1 when not a usable number. */
static int claim_time(const json_t *claims, const char *name, bool round_up, int64_t *out)
{
	const json_t *v = json_object_get(claims, name);
	if (!v)
		return 0;
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return 1;
	}
	if (!json_is_real(v))
		return -1;
	double d = json_real_value(v);
	if (!(d > -9.0e18 && d < 9.0e18))
		return -1;
	*out = (int64_t)(round_up ? ceil(d) : floor(d));
	return 1;
}

static bool aud_match(const char *aud, const struct mg_jwt_policy *policy)
{
	for (size_t i = 0; i < policy->n_audience; i++)
		if (policy->audience[i] && strcmp(aud, policy->audience[i]) == 0)
			return true;
	return false;
}

static enum mg_jwt_status check_claims(const json_t *claims, const struct mg_jwt_policy *policy,
                                       int64_t *exp_out, char *why, size_t why_size)
{
	int64_t exp = 0, nbf = 0, iat = 0;
	int has_exp = claim_time(claims, "exp", false, &exp);
	int has_nbf = claim_time(claims, "nbf", true, &nbf);
	int has_iat = claim_time(claims, "iat", true, &iat);
	if (has_exp < 0 || has_nbf < 0 || has_iat < 0) {
		set_msg(why, why_size, "exp, nbf or iat is not a number");
		return MG_JWT_MALFORMED;
	}
	const json_t *iss = json_object_get(claims, "iss");
	if (iss && !json_is_string(iss)) {
		set_msg(why, why_size, "iss is not a string");
		return MG_JWT_MALFORMED;
	}
	const json_t *aud = json_object_get(claims, "aud");
	if (aud && !json_is_string(aud)) {
		size_t i;
		const json_t *v;
		if (!json_is_array(aud)) {
			set_msg(why, why_size, "aud is not a string or an array");
			return MG_JWT_MALFORMED;
		}
		json_array_foreach(aud, i, v)
		{
			if (!json_is_string(v)) {
				set_msg(why, why_size, "aud holds a non-string");
				return MG_JWT_MALFORMED;
			}
		}
	}

	int64_t leeway = policy->leeway_secs > 0 ? policy->leeway_secs : 0;
	if (!has_exp) {
		set_msg(why, why_size, "no exp");
		return MG_JWT_EXPIRED;
	}
	if (policy->now > sat_add(exp, leeway)) {
		set_msg(why, why_size, "exp is past");
		return MG_JWT_EXPIRED;
	}
	if (has_nbf && nbf > sat_add(policy->now, leeway)) {
		set_msg(why, why_size, "nbf in the future");
		return MG_JWT_NOT_YET_VALID;
	}
	if (has_iat && iat > sat_add(policy->now, leeway)) {
		set_msg(why, why_size, "iat in the future");
		return MG_JWT_NOT_YET_VALID;
	}
	if (policy->issuer && (!iss || strcmp(json_string_value(iss), policy->issuer) != 0)) {
		set_msg(why, why_size, "%s", iss ? "iss does not match" : "no iss");
		return MG_JWT_BAD_ISSUER;
	}
	if (policy->n_audience > 0) {
		bool ok = false;
		if (json_is_string(aud)) {
			ok = aud_match(json_string_value(aud), policy);
		} else if (aud) {
			size_t i;
			const json_t *v;
			json_array_foreach(aud, i, v)
			{
				if (aud_match(json_string_value(v), policy)) {
					ok = true;
					break;
				}
			}
		}
		if (!ok) {
			set_msg(why, why_size, "%s", aud ? "aud does not match" : "no aud");
			return MG_JWT_BAD_AUDIENCE;
		}
	}
	*exp_out = exp;
	return MG_JWT_OK;
}

enum mg_jwt_status mg_jwt_verify(const char *token, size_t len, const struct mg_jwk_set *keys,
                                 const struct mg_jwt_policy *policy, struct mg_jwt *out, char *why,
                                 size_t why_size)
{
	enum mg_jwt_status st = MG_JWT_MALFORMED;
	json_t *hdr = NULL, *claims = NULL;
	char *payload = NULL;
	long plen = 0;
	enum mg_jwt_alg alg = MG_JWT_HS256;
	const char *kid = NULL;
	const struct mg_jwk *key = NULL;
	int64_t exp = 0;
	unsigned char sig[JWT_SIG_MAX];

	if (out)
		memset(out, 0, sizeof *out);
	set_msg(why, why_size, "%s", "");
	if (!token || !keys || !policy) {
		set_msg(why, why_size, "no token, keys or policy");
		return MG_JWT_MALFORMED;
	}
	size_t max = policy->max_token_bytes ? policy->max_token_bytes : JWT_DEFAULT_MAX_TOKEN;
	if (len == 0 || len > max) {
		set_msg(why, why_size, "token empty or larger than %zu bytes", max);
		goto out;
	}

	/* Three non-empty base64url parts: header.payload.signature. */
	size_t dots[2] = { 0, 0 }, nd = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)token[i];
		if (c == '.') {
			if (nd == 2) {
				nd = 3;
				break;
			}
			dots[nd++] = i;
		} else if (!b64url_char(c)) {
			set_msg(why, why_size, "token holds a byte outside base64url");
			goto out;
		}
	}
	if (nd != 2) {
		set_msg(why, why_size, "token is not three parts");
		goto out;
	}
	const char *h64 = token, *p64 = token + dots[0] + 1, *s64 = token + dots[1] + 1;
	size_t hn = dots[0], pn = dots[1] - dots[0] - 1, sn = len - dots[1] - 1;
	if (hn == 0 || pn == 0 || sn == 0) {
		set_msg(why, why_size, "empty header, payload or signature");
		goto out;
	}

	hdr = decode_object(h64, hn);
	if (!hdr) {
		set_msg(why, why_size, "header is not a base64url JSON object");
		goto out;
	}
	st = check_header(hdr, policy, &alg, &kid, why, why_size);
	if (st != MG_JWT_OK)
		goto out;

	st = MG_JWT_MALFORMED;
	payload = malloc(pn);
	if (!payload) {
		set_msg(why, why_size, "out of memory");
		goto out;
	}
	plen = b64url_decode(p64, pn, payload, pn);
	long slen = b64url_decoded_len(sn);
	if (plen <= 0 || slen <= 0) {
		set_msg(why, why_size, "payload or signature is not base64url");
		goto out;
	}
	if ((size_t)slen > sizeof sig) {
		st = MG_JWT_BAD_SIGNATURE;
		set_msg(why, why_size, "signature too long");
		goto out;
	}
	slen = b64url_decode(s64, sn, sig, sizeof sig);
	if (slen <= 0) {
		set_msg(why, why_size, "signature is not base64url");
		goto out;
	}

	st = select_key(keys, alg, kid, &key, why, why_size);
	if (st != MG_JWT_OK)
		goto out;
	if (!verify_sig(key, alg, (const unsigned char *)token, dots[1], sig, (size_t)slen)) {
		st = MG_JWT_BAD_SIGNATURE;
		set_msg(why, why_size, "%s signature does not verify", alg_table[alg].name);
		goto out;
	}

	claims = parse_object(payload, (size_t)plen);
	if (!claims) {
		st = MG_JWT_MALFORMED;
		set_msg(why, why_size, "payload is not a JSON object");
		goto out;
	}
	st = check_claims(claims, policy, &exp, why, why_size);
	if (st != MG_JWT_OK)
		goto out;
	if (out) {
		out->alg = alg;
		out->header = hdr;
		out->claims = claims;
		out->exp = exp;
		hdr = claims = NULL;
	}
out:
	json_decref(hdr);
	json_decref(claims);
	free(payload);
	return st;
}

int mg_jwt_peek_kid(const char *token, size_t len, char *kid, size_t kid_size)
{
	if (!token || !kid || kid_size == 0)
		return -1;
	const char *dot = memchr(token, '.', len);
	if (!dot || dot == token || (size_t)(dot - token) > JWT_DEFAULT_MAX_TOKEN)
		return -1;
	json_t *hdr = decode_object(token, (size_t)(dot - token));
	const json_t *v = json_object_get(hdr, "kid");
	int rc = -1;
	if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) < kid_size) {
		memcpy(kid, json_string_value(v), json_string_length(v) + 1);
		rc = 0;
	}
	json_decref(hdr);
	return rc;
}

void mg_jwt_free(struct mg_jwt *jwt)
{
	if (!jwt)
		return;
	json_decref(jwt->header);
	json_decref(jwt->claims);
	memset(jwt, 0, sizeof *jwt);
}
