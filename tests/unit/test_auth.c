/*
 * test_auth.c - the provider chain with API keys, mTLS forwarded headers and
 * HMAC JWTs: outcomes, aggregation, challenges, metadata, CIDR matching.
 */
#include "support.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "config/config.h"
#include "util/crypto.h"
#include <openssl/hmac.h>

/* hash of the key "mcp_test_key_alice" */
static char alice_hash[64];

static struct mg_config *load(const char *text)
{
	struct mg_diag d = { 0 };
	char *env[] = { "S=0123456789abcdef0123456789abcdef", NULL };
	struct mg_config *c =
	    mg_config_load_buffer(text, strlen(text), "t.toml", MG_CONFIG_TOML, env, &d);
	if (!c)
		mg_diag_print(&d, stderr);
	mg_diag_free(&d);
	return c;
}

static struct mg_config *config_with_keys(void)
{
	uint8_t h[MG_SHA256_LEN];
	mg_sha256("mcp_test_key_alice", 18, h);
	mg_base64_encode(h, sizeof h, alice_hash, sizeof alice_hash, false);
	char text[1024];
	snprintf(text, sizeof text,
	         "[server]\npublic_url = \"https://mcp.example.com\"\n"
	         "[[auth.api_keys]]\nid = \"alice\"\nkey_hash = \"%s\"\n"
	         "allowed_tools = [\"echo\"]\nrate_limit = 7\n"
	         "[auth.mtls]\nenabled = true\ntrusted_proxies = [\"10.0.0.0/8\"]\n"
	         "[auth.jwt]\nsecret_env = \"S\"\naudience = \"https://mcp.example.com/mcp\"\n"
	         "required_scopes = [\"mcp:use\"]\nrate_limit_claim = \"rps\"\n"
	         "[upstream]\ncommand = \"x\"\n",
	         alice_hash);
	return load(text);
}

static struct mg_auth_outcome run(struct mg_auth *a, struct mg_auth_request *r)
{
	struct mg_auth_outcome o;
	struct mg_auth_wait *w;
	r->now = time(NULL);
	assert_true(mg_auth_authenticate(a, r, &o, NULL, NULL, &w));
	return o;
}

static void test_api_keys(void **state)
{
	(void)state;
	struct mg_config *c = config_with_keys();
	assert_non_null(c);
	char err[256];
	struct mg_auth *a = mg_auth_new(NULL, c, NULL, err, sizeof err);
	assert_non_null(a);
	struct mg_auth_request r = { .authorization = "Bearer mcp_test_key_alice" };
	struct mg_auth_outcome o = run(a, &r);
	assert_int_equal(o.status, MG_AUTH_OK);
	assert_string_equal(o.identity->key, "api_key:alice");
	assert_true(o.identity->allowed_tools.set);
	assert_string_equal(o.identity->allowed_tools.v[0], "echo");
	assert_true(o.identity->rate_limit == 7.0);
	mg_identity_unref(o.identity);
	struct mg_auth_request r2 = { .api_key = "mcp_test_key_alice" };
	o = run(a, &r2);
	assert_int_equal(o.status, MG_AUTH_OK);
	mg_identity_unref(o.identity);
	/* A wrong mcp_ key is a failure; no credentials is "declined". */
	struct mg_auth_request r3 = { .authorization = "Bearer mcp_wrong" };
	o = run(a, &r3);
	assert_int_equal(o.status, MG_AUTH_INVALID);
	assert_false(o.insufficient_scope);
	struct mg_auth_request r4 = { 0 };
	o = run(a, &r4);
	assert_int_equal(o.status, MG_AUTH_DECLINED);
	mg_auth_unref(a);
	mg_config_free(c);
}

static void test_forwarded_cert(void **state)
{
	(void)state;
	struct mg_config *c = config_with_keys();
	char err[256];
	struct mg_auth *a = mg_auth_new(NULL, c, NULL, err, sizeof err);
	struct sockaddr_in trusted = { .sin_family = AF_INET }, other = { .sin_family = AF_INET };
	inet_pton(AF_INET, "10.1.2.3", &trusted.sin_addr);
	inet_pton(AF_INET, "192.168.1.9", &other.sin_addr);
	struct mg_auth_request r = { .peer = (struct sockaddr *)&trusted,
		                     .fwd_cn = "agent-7",
		                     .fwd_verified = "SUCCESS" };
	struct mg_auth_outcome o = run(a, &r);
	assert_int_equal(o.status, MG_AUTH_OK);
	assert_string_equal(o.identity->key, "mtls:agent-7");
	mg_identity_unref(o.identity);
	/* The same headers from an untrusted address are ignored. */
	r.peer = (struct sockaddr *)&other;
	o = run(a, &r);
	assert_int_equal(o.status, MG_AUTH_DECLINED);
	/* A trusted proxy reporting a failed verification is a failure. */
	r.peer = (struct sockaddr *)&trusted;
	r.fwd_verified = "FAILED:unable to verify";
	o = run(a, &r);
	assert_int_equal(o.status, MG_AUTH_INVALID);
	mg_auth_unref(a);
	mg_config_free(c);
}

static char *b64url(const char *s, size_t n, char *out, size_t size)
{
	mg_base64_encode(s, n, out, size, true);
	return out;
}

static void hs256(const char *payload, char *out, size_t size)
{
	char h[128], p[1024], sig[128], input[2048];
	b64url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", 27, h, sizeof h);
	b64url(payload, strlen(payload), p, sizeof p);
	snprintf(input, sizeof input, "%s.%s", h, p);
	unsigned char mac[32];
	unsigned int maclen = 0;

	HMAC(EVP_sha256(), "0123456789abcdef0123456789abcdef", 32, (unsigned char *)input,
	     strlen(input), mac, &maclen);
	mg_base64_encode(mac, maclen, sig, sizeof sig, true);
	snprintf(out, size, "Bearer %s.%s", input, sig);
}

static void test_jwt_scopes(void **state)
{
	(void)state;
	struct mg_config *c = config_with_keys();
	char err[256], auth[2048], payload[512];
	struct mg_auth *a = mg_auth_new(NULL, c, NULL, err, sizeof err);
	long exp = (long)time(NULL) + 300;
	snprintf(payload, sizeof payload,
	         "{\"sub\":\"bob\",\"aud\":[\"x\",\"https://mcp.example.com/mcp\"],\"exp\":%ld,"
	         "\"scope\":\"a mcp:use b\"}",
	         exp);
	hs256(payload, auth, sizeof auth);
	struct mg_auth_request r = { .authorization = auth };
	struct mg_auth_outcome o = run(a, &r);
	assert_int_equal(o.status, MG_AUTH_OK);
	assert_string_equal(o.identity->key, "jwt:bob");
	assert_int_equal(o.identity->scopes.n, 3);
	assert_int_equal(o.identity->expires, exp);
	assert_true(o.identity->rate_limit == 0); /* no rps claim: the default */
	mg_identity_unref(o.identity);
	struct mg_auth_stats st;
	mg_auth_stats(a, &st);
	assert_int_equal(st.jwt_cache_hits, 0);
	/* Second time: from the verified-token cache, same answer. */
	o = run(a, &r);
	assert_int_equal(o.status, MG_AUTH_OK);
	assert_string_equal(o.identity->key, "jwt:bob");
	mg_identity_unref(o.identity);
	mg_auth_stats(a, &st);
	assert_int_equal(st.jwt_cache_hits, 1);
	assert_int_equal(st.ok, 2);
	/* rate_limit_claim: a positive number is the identity's rate; anything
	 * else is ignored. */
	const char *rps[][2] = { { "2.5", "2.5" }, { "0", "0" }, { "-3", "0" }, { "\"9\"", "0" } };
	for (size_t i = 0; i < sizeof rps / sizeof rps[0]; i++) {
		snprintf(payload, sizeof payload,
		         "{\"sub\":\"carl\",\"aud\":\"https://mcp.example.com/mcp\",\"exp\":%ld,"
		         "\"scope\":\"mcp:use\",\"rps\":%s}",
		         exp, rps[i][0]);
		hs256(payload, auth, sizeof auth);
		o = run(a, &r);
		assert_int_equal(o.status, MG_AUTH_OK);
		char got[32];
		snprintf(got, sizeof got, "%g", o.identity->rate_limit);
		assert_string_equal(got, rps[i][1]);
		mg_identity_unref(o.identity);
	}
	/* Valid but without the required scope: 403 material. */
	snprintf(payload, sizeof payload,
	         "{\"sub\":\"bob\",\"aud\":\"https://mcp.example.com/mcp\",\"exp\":%ld,"
	         "\"scope\":\"other\"}",
	         exp);
	hs256(payload, auth, sizeof auth);
	o = run(a, &r);
	assert_int_equal(o.status, MG_AUTH_INVALID);
	assert_true(o.insufficient_scope);
	/* Wrong audience: plain invalid. */
	snprintf(payload, sizeof payload,
	         "{\"sub\":\"bob\",\"aud\":\"https://other\",\"exp\":%ld,\"scope\":\"mcp:use\"}",
	         exp);
	hs256(payload, auth, sizeof auth);
	o = run(a, &r);
	assert_int_equal(o.status, MG_AUTH_INVALID);
	assert_false(o.insufficient_scope);
	mg_auth_unref(a);
	mg_config_free(c);
}

static void test_challenge_and_metadata(void **state)
{
	(void)state;
	struct mg_config *c = config_with_keys();
	char err[256], ch[1024];
	struct mg_auth *a = mg_auth_new(NULL, c, NULL, err, sizeof err);
	mg_auth_challenge(a, NULL, ch, sizeof ch);
	assert_string_equal(ch, "Bearer resource_metadata=\"https://mcp.example.com/.well-known/"
	                        "oauth-protected-resource/mcp\", scope=\"mcp:use\"");
	mg_auth_challenge(a, "invalid_token", ch, sizeof ch);
	assert_non_null(strstr(ch, ", error=\"invalid_token\""));
	json_t *m = mg_auth_resource_metadata(a);
	assert_string_equal(json_string_value(json_object_get(m, "resource")),
	                    "https://mcp.example.com/mcp");
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(m, "bearer_methods_supported"), 0)),
	    "header");
	json_decref(m);
	mg_auth_unref(a);
	mg_config_free(c);
}

static void test_cidr(void **state)
{
	(void)state;
	char *items[] = { "10.0.0.0/8", "192.168.1.7", "2001:db8::/32" };
	struct mg_strv v = { .v = items, .n = 3, .set = true };
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	inet_pton(AF_INET, "10.200.0.1", &a4.sin_addr);
	assert_true(mg_cidr_match(&v, (struct sockaddr *)&a4));
	inet_pton(AF_INET, "11.0.0.1", &a4.sin_addr);
	assert_false(mg_cidr_match(&v, (struct sockaddr *)&a4));
	inet_pton(AF_INET, "192.168.1.7", &a4.sin_addr);
	assert_true(mg_cidr_match(&v, (struct sockaddr *)&a4));
	inet_pton(AF_INET6, "2001:db8:1::5", &a6.sin6_addr);
	assert_true(mg_cidr_match(&v, (struct sockaddr *)&a6));
	inet_pton(AF_INET6, "::ffff:10.9.9.9", &a6.sin6_addr);
	assert_true(mg_cidr_match(&v, (struct sockaddr *)&a6));
	inet_pton(AF_INET6, "2001:db9::1", &a6.sin6_addr);
	assert_false(mg_cidr_match(&v, (struct sockaddr *)&a6));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_keys),   cmocka_unit_test(test_forwarded_cert),
		cmocka_unit_test(test_jwt_scopes), cmocka_unit_test(test_challenge_and_metadata),
		cmocka_unit_test(test_cidr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
