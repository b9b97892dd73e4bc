/*
 * fuzz_jwt.c - libFuzzer target for JWS verification and JWKS parsing.
 *
 * Each input is tried four ways: as a compact token against a fixed HMAC
 * secret and a fixed JWKS (RSA 2048, P-256, P-384, Ed25519, public halves
 * below), with a policy accepting every algorithm; as the kid peeked from
 * a token; as a JWKS document, which, when it parses, must then verify (or
 * refuse) a fixed ES256 token; and as "header JSON\nclaims JSON", which the
 * harness encodes and signs with the HMAC secret so that the header and
 * claims checks behind the signature are reached too. The seed corpus in
 * corpus/jwt/ holds tokens valid for these keys at FUZZ_NOW.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/jwt.h"
#include "util/crypto.h"

#define FUZZ_NOW 1700000000

static const char hmac_secret[] = "fuzz-secret-0123456789abcdef-0123456789";

static const char rsa_n[] = "oWeI7emgctjTqX56glnk2tqnVJYixfd8iCbKjiT50yqN62MJisaWvARXkvG3QOhG"
                            "2etSkaxX0Hwi3Jg6tCOHfwv4_K5spqfHYEzVLJkjkQeoInFr19Fz2-_QJneFsZWG"
                            "N_yA-fvD2TmVd526wPA3Uffp56ltxru1sLpp7Ug6R45sZPwXsPyTV9byZzJEjLNO"
                            "KkupCVYzaup6hXNznq02leORkN3R9ZplVRvrtMErsjLI_pn5nxcjw5CTwPUoktLt"
                            "TCruG0cECGAJFA5Udv_rqKwTOqmF5rdCOf1P_pOU4TO-6MZHqNAp9KCISjE9Y0-R"
                            "tK1pPOCNpZrfsHQSiT1E6w";

static const char jwks_fmt[] =
    "{\"keys\":["
    "{\"kty\":\"RSA\",\"kid\":\"rsa\",\"e\":\"AQAB\",\"n\":\"%s\"},"
    "{\"kty\":\"EC\",\"kid\":\"p256\",\"crv\":\"P-256\","
    "\"x\":\"cZ5pHJVtziGx-_RIg8IfezUSAUxqCutC6UUI7Yh_U1E\",\"y\":\"ov3TLlM6H-"
    "wT4yYbnKsUijqggZtkshHxIk_LKzch75Y\"},"
    "{\"kty\":\"EC\",\"kid\":\"p384\",\"crv\":\"P-384\",\"alg\":\"ES384\","
    "\"x\":\"0a63hw528fROVrjZAp0rK_6c0KZ4f3hzMZcsNzcZf3vAhxa08MGx6k1os3BXF4wh\","
    "\"y\":\"cRKnSHEqnowhZGMuRs2xaxzyOvieIuhlps28ztrUYsU92B3UKC96LgujIGlXEjt9\"},"
    "{\"kty\":\"OKP\",\"kid\":\"ed\",\"crv\":\"Ed25519\",\"use\":\"sig\","
    "\"x\":\"kEuTjs7_UvC1Jd6D2FZpnaebt8UlOUNtya6pxq16cXc\"}]}";

/* ES256 by the P-256 key above, kid "p256", valid at FUZZ_NOW. */
static const char es256_token[] =
    "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InAyNTYifQ.eyJpc3MiOiJodHRwc"
    "zovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoibWNwLWd1YXJkIiwic3ViIjoiYWxpY2UiLCJle"
    "HAiOjE3MDAwMDM2MDAsImlhdCI6MTY5OTk5OTk5MCwibmJmIjoxNjk5OTk5OTkwfQ.0ZG_lY"
    "JZ2vZeHn3p_FZiyPFYg9K1A2aZrAt0kQ7mEizbXhXvID2vNrXZQ4KMnKN_grRxL71l-0JtJp"
    "rWvz-hlw";

static struct mg_jwk_set *hmac_set, *jwks_set;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Builds b64url(header).b64url(claims).HS256 from "header\nclaims" and
 * verifies it; the alg in the header decides which HMAC the verifier
 * expects, so only HS256 headers pass the signature. */
static void verify_signed(const char *in, size_t size, const struct mg_jwt_policy *p)
{
	const char *nl = memchr(in, '\n', size);
	if (!nl || size > 8192)
		return;
	size_t hn = (size_t)(nl - in), cn = size - hn - 1;
	size_t cap = mg_base64_encoded_len(hn, true) + mg_base64_encoded_len(cn, true) + 64;
	char *tok = malloc(cap);
	if (!tok)
		return;
	size_t n = mg_base64_encode(in, hn, tok, cap, true);
	tok[n++] = '.';
	n += mg_base64_encode(nl + 1, cn, tok + n, cap - n, true);
	unsigned char mac[32];
	unsigned int maclen = 0;
	HMAC(EVP_sha256(), hmac_secret, (int)strlen(hmac_secret), (const unsigned char *)tok, n,
	     mac, &maclen);
	tok[n++] = '.';
	n += mg_base64_encode(mac, maclen, tok + n, cap - n, true);
	struct mg_jwt jwt;
	if (mg_jwt_verify(tok, n, hmac_set, p, &jwt, NULL, 0) == MG_JWT_OK)
		mg_jwt_free(&jwt);
	free(tok);
}

static void init(void)
{
	char doc[2048];
	snprintf(doc, sizeof doc, jwks_fmt, rsa_n);
	char err[256];
	hmac_set = mg_jwk_set_hmac(hmac_secret, strlen(hmac_secret));
	jwks_set = mg_jwk_set_parse(doc, strlen(doc), err, sizeof err);
	if (!hmac_set || !jwks_set || mg_jwk_set_count(jwks_set) != 4)
		abort();
	struct mg_jwt_policy p = { .algs = 1u << MG_JWT_ES256, .now = FUZZ_NOW };
	if (mg_jwt_verify(es256_token, strlen(es256_token), jwks_set, &p, NULL, NULL, 0) !=
	    MG_JWT_OK)
		abort(); /* the constants above do not match */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const aud[] = { "mcp-guard" };
	const char *in = (const char *)data;
	if (!jwks_set)
		init();
	struct mg_jwt_policy p = {
		.algs = (1u << MG_JWT_ALG_COUNT) - 1,
		.issuer = "https://issuer.example",
		.audience = aud,
		.n_audience = 1,
		.leeway_secs = 60,
		.now = FUZZ_NOW,
		.max_token_bytes = 16384,
	};
	struct mg_jwt jwt;
	char why[128];
	if (mg_jwt_verify(in, size, hmac_set, &p, &jwt, why, sizeof why) == MG_JWT_OK)
		mg_jwt_free(&jwt);
	if (mg_jwt_verify(in, size, jwks_set, &p, &jwt, why, sizeof why) == MG_JWT_OK)
		mg_jwt_free(&jwt);
	verify_signed(in, size, &p);
	char kid[64];
	if (mg_jwt_peek_kid(in, size, kid, sizeof kid) == 0)
		(void)mg_jwk_set_has_kid(jwks_set, kid);

	struct mg_jwk_set *set = mg_jwk_set_parse(in, size, why, sizeof why);
	if (set) {
		p.issuer = NULL;
		p.n_audience = 0;
		if (mg_jwt_verify(es256_token, strlen(es256_token), set, &p, &jwt, NULL, 0) ==
		    MG_JWT_OK)
			mg_jwt_free(&jwt);
		(void)mg_jwk_set_has_kid(set, "p256");
		mg_jwk_set_unref(mg_jwk_set_ref(set));
		mg_jwk_set_unref(set);
	}
	return 0;
}
