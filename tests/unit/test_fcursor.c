/*
 * test_fcursor.c - the federated list cursor (gateway/fcursor.h): round
 * trips, and every way a client can hand back something the gateway did
 * not issue for this list and route: each single-bit flip, truncation,
 * another tag, list method or key, oversize, empty, not base64, expired.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/fcursor.h"
#include "util/crypto.h"

#define NOW 1800000000
#define TAG 0x0123456789abcdefULL

static struct mg_fcursor_key key(const char *secret)
{
	struct mg_fcursor_key k;
	assert_int_equal(mg_fcursor_key_init(&k, secret, secret ? strlen(secret) : 0), 0);
	return k;
}

static char *enc(const struct mg_fcursor_key *k, uint8_t list, uint32_t server,
                 const char *upstream)
{
	struct mg_fcursor c = { .list = list, .server = server, .upstream = (char *)upstream };
	char *text = NULL;
	assert_int_equal(mg_fcursor_encode(k, TAG, NOW, &c, &text), 0);
	assert_non_null(text);
	assert_true(strlen(text) <= MG_FCURSOR_TEXT_MAX);
	for (const char *p = text; *p; p++)
		assert_non_null(
		    strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
	return text;
}

/* Decodes `text` for tools/list on TAG at NOW; expects failure with a message containing
 * `want`. */
static void refused(const struct mg_fcursor_key *k, const char *text, const char *want)
{
	struct mg_fcursor c;
	char err[200] = "";
	assert_int_equal(
	    mg_fcursor_decode(k, TAG, MG_FCURSOR_TOOLS, NOW, text, &c, err, sizeof err), -1);
	assert_null(c.upstream);
	if (!strstr(err, want))
		fail_msg("expected \"%s\" in \"%s\"", want, err);
}

static void test_roundtrip(void **state)
{
	(void)state;
	struct mg_fcursor_key k = key(NULL);
	for (uint8_t list = 0; list < MG_FCURSOR_LISTS; list++) {
		char *text = enc(&k, list, 7, "upstream-cursor:42");
		struct mg_fcursor c;
		char err[200];
		assert_int_equal(
		    mg_fcursor_decode(&k, TAG, list, NOW + 10, text, &c, err, sizeof err), 0);
		assert_int_equal(c.list, list);
		assert_int_equal(c.server, 7);
		assert_string_equal(c.upstream, "upstream-cursor:42");
		mg_fcursor_clear(&c);
		assert_null(c.upstream);
		mg_fcursor_clear(&c); /* twice is fine */
		free(text);
	}
	/* Two encodings of the same position differ (fresh nonce). */
	char *a = enc(&k, 0, 1, "x"), *b = enc(&k, 0, 1, "x");
	assert_string_not_equal(a, b);
	free(a);
	free(b);
	assert_string_equal(mg_fcursor_list_name(MG_FCURSOR_RESOURCE_TEMPLATES),
	                    "resources/templates/list");
	assert_string_equal(mg_fcursor_list_name(9), "?");
}

static void test_null_and_empty_upstream(void **state)
{
	(void)state;
	struct mg_fcursor_key k = key("a shared secret of the deployment, 32+ bytes");
	char err[200];
	struct mg_fcursor c;
	char *text = enc(&k, MG_FCURSOR_PROMPTS, UINT32_MAX, NULL);
	assert_int_equal(
	    mg_fcursor_decode(&k, TAG, MG_FCURSOR_PROMPTS, NOW, text, &c, err, sizeof err), 0);
	assert_null(c.upstream);
	assert_int_equal(c.server, UINT32_MAX); /* returned as is: the caller checks the range */
	free(text);
	/* "" is a cursor, not "first page". */
	text = enc(&k, MG_FCURSOR_PROMPTS, 0, "");
	assert_int_equal(
	    mg_fcursor_decode(&k, TAG, MG_FCURSOR_PROMPTS, NOW, text, &c, err, sizeof err), 0);
	assert_non_null(c.upstream);
	assert_string_equal(c.upstream, "");
	mg_fcursor_clear(&c);
	free(text);
}

static void test_shared_secret(void **state)
{
	(void)state;
	/* Two instances with the same secret open each other's cursors. */
	struct mg_fcursor_key a = key("one secret shared by the instances!!"),
	                      b = key("one secret shared by the instances!!");
	char *text = enc(&a, 0, 2, "abc");
	struct mg_fcursor c;
	char err[200];
	assert_int_equal(mg_fcursor_decode(&b, TAG, 0, NOW, text, &c, err, sizeof err), 0);
	assert_string_equal(c.upstream, "abc");
	mg_fcursor_clear(&c);
	free(text);
}

static void test_every_bit_flip(void **state)
{
	(void)state;
	struct mg_fcursor_key k = key(NULL);
	char *text = enc(&k, 0, 3, "cursor");
	uint8_t raw[256];
	long n = mg_base64_decode(text, strlen(text), raw, sizeof raw);
	assert_true(n > 0);
	char flipped[512];
	for (long i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			raw[i] ^= (uint8_t)(1u << bit);
			mg_base64_encode(raw, (size_t)n, flipped, sizeof flipped, true);
			refused(&k, flipped, "cursor");
			raw[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* And every bit of the text itself. */
	size_t tn = strlen(text);
	for (size_t i = 0; i < tn; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(flipped, text, tn + 1);
			flipped[i] = (char)(flipped[i] ^ (1 << bit));
			if (flipped[i] == '\0')
				continue; /* a shorter string: the truncation test's business */
			refused(&k, flipped, "cursor");
		}
	}
	free(text);
}

static void test_truncated(void **state)
{
	(void)state;
	struct mg_fcursor_key k = key(NULL);
	char *text = enc(&k, 0, 3, "cursor");
	size_t n = strlen(text);
	for (size_t len = 1; len < n; len++) {
		char *t = strndup(text, len);
		refused(&k, t, "cursor");
		free(t);
	}
	refused(&k, "AQ", "truncated"); /* version byte only */
	free(text);
}

static void test_wrong_place(void **state)
{
	(void)state;
	struct mg_fcursor_key k = key(NULL), other = key(NULL);
	char *text = enc(&k, MG_FCURSOR_PROMPTS, 0, "p");
	refused(&k, text, "belongs to prompts/list, not tools/list");
	free(text);

	text = enc(&k, MG_FCURSOR_TOOLS, 0, "p");
	struct mg_fcursor c;
	char err[200];
	assert_int_equal(mg_fcursor_decode(&k, TAG ^ 1, 0, NOW, text, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "another endpoint or configuration"));
	refused(&other, text, "not one this gateway issued");
	/* Expired, and from too far in the future. */
	assert_int_equal(
	    mg_fcursor_decode(&k, TAG, 0, NOW + MG_FCURSOR_TTL, text, &c, err, sizeof err), 0);
	mg_fcursor_clear(&c);
	assert_int_equal(
	    mg_fcursor_decode(&k, TAG, 0, NOW + MG_FCURSOR_TTL + 1, text, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "expired"));
	assert_int_equal(
	    mg_fcursor_decode(&k, TAG, 0, NOW - MG_FCURSOR_SKEW - 1, text, &c, err, sizeof err),
	    -1);
	assert_non_null(strstr(err, "expired"));
	free(text);
}

static void test_limits(void **state)
{
	(void)state;
	struct mg_fcursor_key k = key(NULL);
	char *big = malloc(MG_FCURSOR_UPSTREAM_MAX + 2);
	memset(big, 'z', MG_FCURSOR_UPSTREAM_MAX + 1);
	big[MG_FCURSOR_UPSTREAM_MAX + 1] = '\0';
	struct mg_fcursor c = { .list = 0, .server = 0, .upstream = big };
	char *text = NULL;
	assert_int_equal(mg_fcursor_encode(&k, TAG, NOW, &c, &text), -1); /* 4 KiB + 1 */
	assert_null(text);
	big[MG_FCURSOR_UPSTREAM_MAX] = '\0';
	text = enc(&k, 0, 0, big); /* exactly 4 KiB: the longest, still accepted */
	struct mg_fcursor d;
	char err[200];
	assert_int_equal(mg_fcursor_decode(&k, TAG, 0, NOW, text, &d, err, sizeof err), 0);
	assert_int_equal(strlen(d.upstream), MG_FCURSOR_UPSTREAM_MAX);
	mg_fcursor_clear(&d);
	free(text);
	c.list = MG_FCURSOR_LISTS;
	c.upstream = NULL;
	assert_int_equal(mg_fcursor_encode(&k, TAG, NOW, &c, &text), -1);

	char *huge = malloc(MG_FCURSOR_TEXT_MAX + 2);
	memset(huge, 'A', MG_FCURSOR_TEXT_MAX + 1);
	huge[MG_FCURSOR_TEXT_MAX + 1] = '\0';
	refused(&k, huge, "longer than");
	free(huge);
	free(big);
}

static void test_garbage(void **state)
{
	(void)state;
	struct mg_fcursor_key k = key(NULL);
	refused(&k, "", "empty");
	refused(&k, NULL, "empty");
	refused(&k, "abc+def/", "not base64url");
	refused(&k, "abc=", "not base64url");
	refused(&k, "ab cd", "not base64url");
	refused(&k, "A", "not base64url");  /* impossible length */
	refused(&k, "Ab", "not base64url"); /* non-zero trailing bits */
	refused(&k, "AAAA", "unknown version 0");
	refused(&k, "AgAA", "unknown version 2");
	char ones[200];
	memset(ones, 'A', sizeof ones - 1);
	ones[0] = 'A';
	ones[1] = 'Q'; /* version 1, then zeros: the right length, a bad seal */
	ones[sizeof ones - 1] = '\0';
	refused(&k, ones, "not one this gateway issued");
}

static void test_tag(void **state)
{
	(void)state;
	const char *ab[] = { "a", "b" }, *ba[] = { "b", "a" }, *a_b[] = { "a_b" }, *x[] = { "ab" };
	const char *a[] = { "a" }, *b[] = { "b" };
	uint64_t t = mg_fcursor_tag("/mcp", ab, 2, NULL);
	assert_int_equal(t, mg_fcursor_tag("/mcp", ab, 2, NULL));       /* stable */
	assert_int_not_equal(t, mg_fcursor_tag("/mcp", ba, 2, NULL));   /* order */
	assert_int_not_equal(t, mg_fcursor_tag("/other", ab, 2, NULL)); /* route */
	assert_int_not_equal(t, mg_fcursor_tag("/mcp", ab, 2, "api_key:alice"));
	assert_int_not_equal(mg_fcursor_tag("/mcp", ab, 2, "api_key:alice"),
	                     mg_fcursor_tag("/mcp", ab, 2, "api_key:bob"));
	assert_int_not_equal(mg_fcursor_tag("/mcp", ab, 2, ""),
	                     mg_fcursor_tag("/mcp", ab, 2, NULL));
	assert_int_not_equal(mg_fcursor_tag("/mcp", x, 1, NULL),
	                     mg_fcursor_tag("/mcp", a_b, 1, NULL));
	/* Length prefixes: ["a","b"] is not ["ab"], nor route "/mcpa" + ["b"]. */
	assert_int_not_equal(t, mg_fcursor_tag("/mcp", x, 1, NULL));
	assert_int_not_equal(mg_fcursor_tag("/mcp", ab, 2, NULL),
	                     mg_fcursor_tag("/mcpa", b, 1, NULL));
	assert_int_not_equal(mg_fcursor_tag("/mcp", a, 1, NULL),
	                     mg_fcursor_tag("/mcp", a, 0, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_null_and_empty_upstream),
		cmocka_unit_test(test_shared_secret),
		cmocka_unit_test(test_every_bit_flip),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_wrong_place),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_tag),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
