/*
 * test_oauth.c - the pure parts of [auth.oauth]: form/query parsing and
 * encoding, the validated-token cache (time as a parameter), reading
 * introspection and userinfo answers, and the built-in providers' URLs.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/oauth.h"
#include "auth/oauth_state.h"
#include "config/config.h"
#include "util/crypto.h"

/* ---- forms ----------------------------------------------------------------------------- */

static int parse(const char *s, struct mg_oauth_form *f, char *err)
{
	return mg_oauth_form_parse(s, strlen(s), f, err, 160);
}

static void test_form_parse(void **state)
{
	(void)state;
	struct mg_oauth_form f;
	char err[160];
	assert_int_equal(parse("a=1&b=x+y%20z&&c&d=%C3%A9", &f, err), 0);
	assert_int_equal(f.n, 4);
	assert_string_equal(mg_oauth_form_get(&f, "a"), "1");
	assert_string_equal(mg_oauth_form_get(&f, "b"), "x y z");
	assert_string_equal(mg_oauth_form_get(&f, "c"), "");
	assert_string_equal(mg_oauth_form_get(&f, "d"), "\xC3\xA9");
	assert_null(mg_oauth_form_get(&f, "e"));
	assert_false(f.duplicate);
	mg_oauth_form_free(&f);

	assert_int_equal(parse("redirect_uri=a&redirect_uri=b", &f, err), 0);
	assert_true(f.duplicate);
	assert_string_equal(mg_oauth_form_get(&f, "redirect_uri"), "a");
	mg_oauth_form_free(&f);

	assert_int_equal(parse("", &f, err), 0);
	assert_int_equal(f.n, 0);
	mg_oauth_form_free(&f);

	static const char *const bad[] = { "a=%",   "a=%4",  "a=%zz", "a=%00",
		                           "a=%0A", "a=%FF", "%=1",   "a=%C3" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(parse(bad[i], &f, err), -1);
		mg_oauth_form_free(&f);
	}
	/* a raw control byte, too many pairs, too many bytes */
	assert_int_equal(parse("a=\x01", &f, err), -1);
	mg_oauth_form_free(&f);
	char many[400] = "";
	for (int i = 0; i <= MG_OAUTH_FORM_MAX_PAIRS; i++)
		memcpy(many + 4 * i, "k=v&", 5);
	assert_int_equal(parse(many, &f, err), -1);
	assert_non_null(strstr(err, "more than"));
	mg_oauth_form_free(&f);
	char *big = malloc(MG_OAUTH_FORM_MAX_BYTES + 2);
	memset(big, 'a', MG_OAUTH_FORM_MAX_BYTES + 1);
	big[MG_OAUTH_FORM_MAX_BYTES + 1] = '\0';
	assert_int_equal(parse(big, &f, err), -1);
	mg_oauth_form_free(&f);
	free(big);
}

static void test_form_encode(void **state)
{
	(void)state;
	struct mg_buf b;
	mg_buf_init(&b, 1024);
	assert_int_equal(mg_oauth_form_add(&b, "token", "a b+c/=&~"), 0);
	assert_int_equal(mg_oauth_form_add(&b, "x", "\xC3\xA9"), 0);
	assert_string_equal(b.data, "token=a%20b%2Bc%2F%3D%26~&x=%C3%A9");
	/* round trip */
	struct mg_oauth_form f;
	char err[160];
	assert_int_equal(mg_oauth_form_parse(b.data, b.len, &f, err, sizeof err), 0);
	assert_string_equal(mg_oauth_form_get(&f, "token"), "a b+c/=&~");
	mg_oauth_form_free(&f);
	mg_buf_free(&b);
	/* a full buffer is an error, not a truncation */
	mg_buf_init(&b, 8);
	assert_int_equal(mg_oauth_form_add(&b, "token", "abcdef"), -1);
	mg_buf_free(&b);
}

/* ---- cache ----------------------------------------------------------------------------- */

static void hash_of(const char *tok, uint8_t *h)
{
	mg_sha256(tok, strlen(tok), h);
}

static void test_cache(void **state)
{
	(void)state;
	struct mg_oauth_cache *c = mg_oauth_cache_new(16);
	uint8_t h1[MG_SHA256_LEN], h2[MG_SHA256_LEN];
	hash_of("one", h1);
	hash_of("two", h2);
	struct mg_identity *id = mg_identity_new("oauth", "alice"), *got;
	assert_int_equal(mg_oauth_cache_get(c, h1, 100, &got), MG_OAUTH_MISS);
	mg_oauth_cache_put(c, h1, id, 200, 100);
	mg_oauth_cache_put(c, h2, NULL, 110, 100);
	assert_int_equal(mg_oauth_cache_get(c, h1, 199, &got), MG_OAUTH_HIT);
	assert_string_equal(got->id, "alice");
	mg_identity_unref(got);
	assert_int_equal(mg_oauth_cache_get(c, h2, 105, &got), MG_OAUTH_REFUSED);
	assert_null(got);
	/* expiry: exactly at `until` the entry is gone */
	assert_int_equal(mg_oauth_cache_get(c, h1, 200, &got), MG_OAUTH_MISS);
	assert_int_equal(mg_oauth_cache_get(c, h2, 110, &got), MG_OAUTH_MISS);
	/* already expired: not stored */
	mg_oauth_cache_put(c, h1, id, 50, 100);
	assert_int_equal(mg_oauth_cache_get(c, h1, 100, &got), MG_OAUTH_MISS);
	/* bounded: many more tokens than slots never grows past the slots */
	for (int i = 0; i < 1000; i++) {
		char t[32];
		uint8_t h[MG_SHA256_LEN];
		snprintf(t, sizeof t, "tok-%d", i);
		hash_of(t, h);
		mg_oauth_cache_put(c, h, id, 1000 + i, 100);
	}
	assert_true(mg_oauth_cache_count(c) <= 16);
	mg_identity_unref(id);
	mg_oauth_cache_free(c);
}

/* ---- answers --------------------------------------------------------------------------- */

static struct mg_oauth_config cfg_with(const char **aud, size_t n_aud)
{
	struct mg_oauth_config c = { 0 };
	c.present = true;
	c.user_id_claim = "sub";
	c.cache_duration_secs = 300;
	c.audience.v = (char **)aud;
	c.audience.n = n_aud;
	c.audience.set = n_aud > 0;
	return c;
}

static void verdict(const struct mg_oauth_config *c, const char *body, int64_t now,
                    struct mg_oauth_verdict *v)
{
	mg_oauth_introspection_verdict(c, 200, body, strlen(body), now, v);
}

static void test_introspection(void **state)
{
	(void)state;
	const char *aud[] = { "https://gw/mcp" };
	struct mg_oauth_config c = cfg_with(aud, 1);
	static char *mk[] = { "mcp:read", NULL }, *tools[] = { "get_*" };
	struct mg_kstrv map = { .key = mk[0], .value = { .v = tools, .n = 1, .set = true } };
	c.scope_tool_mapping.v = &map;
	c.scope_tool_mapping.n = 1;
	struct mg_oauth_verdict v;

	verdict(&c,
	        "{\"active\":true,\"sub\":\"alice\",\"aud\":[\"x\",\"https://gw/mcp\"],"
	        "\"scope\":\"mcp:read other\",\"exp\":1100,\"username\":\"Alice\"}",
	        1000, &v);
	assert_int_equal(v.status, MG_AUTH_OK);
	assert_string_equal(v.identity->id, "alice");
	assert_string_equal(v.identity->key, "oauth:alice");
	assert_string_equal(v.identity->display, "Alice");
	assert_int_equal(v.identity->scopes.n, 2);
	assert_int_equal(v.identity->allowed_tools.n, 1);
	assert_string_equal(v.identity->allowed_tools.v[0], "get_*");
	assert_int_equal(v.identity->expires, 1100);
	assert_int_equal(v.cache_until, 1100); /* exp before now + 300 */
	mg_identity_unref(v.identity);

	verdict(&c, "{\"active\":true,\"sub\":\"a\",\"aud\":\"https://gw/mcp\",\"exp\":99999}",
	        1000, &v);
	assert_int_equal(v.status, MG_AUTH_OK);
	assert_int_equal(v.cache_until, 1300);
	mg_identity_unref(v.identity);

	static const char *const refused[] = {
		"{\"active\":false}",
		"{\"active\":\"true\",\"sub\":\"a\",\"aud\":\"https://gw/mcp\"}",
		"{\"active\":1,\"sub\":\"a\",\"aud\":\"https://gw/mcp\"}",
		"{\"sub\":\"a\",\"aud\":\"https://gw/mcp\"}",
		"{\"active\":true,\"sub\":\"a\",\"aud\":\"https://gw/mcp\",\"exp\":1000}",
		"{\"active\":true,\"sub\":\"a\",\"aud\":\"https://gw/mcp\",\"exp\":\"2000\"}",
		"{\"active\":true,\"sub\":\"a\",\"aud\":\"https://gw/mcp\",\"nbf\":1001}",
		"{\"active\":true,\"sub\":\"a\",\"aud\":\"https://gw/mcp/\"}",
		"{\"active\":true,\"sub\":\"a\",\"aud\":[\"https://GW/mcp\"]}",
		"{\"active\":true,\"sub\":\"a\"}",
		"{\"active\":true,\"aud\":\"https://gw/mcp\"}",
		"{\"active\":true,\"sub\":\"\",\"aud\":\"https://gw/mcp\"}",
	};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		verdict(&c, refused[i], 1000, &v);
		assert_int_equal(v.status, MG_AUTH_INVALID);
		assert_null(v.identity);
		assert_int_equal(v.cache_until, 1000 + MG_OAUTH_NEGATIVE_TTL);
	}
	/* not an answer: unavailable, never cached */
	static const char *const broken[] = { "", "[]", "{\"active\":true,\"active\":false}",
		                              "not json" };
	for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
		verdict(&c, broken[i], 1000, &v);
		assert_int_equal(v.status, MG_AUTH_UNAVAILABLE);
		assert_int_equal(v.cache_until, 0);
	}
	mg_oauth_introspection_verdict(&c, 500, "{\"active\":true}", 15, 1000, &v);
	assert_int_equal(v.status, MG_AUTH_UNAVAILABLE);
	mg_oauth_introspection_verdict(&c, 401, "{}", 2, 1000, &v);
	assert_int_equal(v.status, MG_AUTH_UNAVAILABLE);

	/* no audience configured: any aud, and none, is accepted */
	struct mg_oauth_config any = cfg_with(NULL, 0);
	verdict(&any, "{\"active\":true,\"sub\":\"a\"}", 1000, &v);
	assert_int_equal(v.status, MG_AUTH_OK);
	mg_identity_unref(v.identity);
}

static void test_userinfo(void **state)
{
	(void)state;
	struct mg_oauth_config c = cfg_with(NULL, 0);
	c.user_id_claim = "login";
	struct mg_oauth_verdict v;
	const char *gh = "{\"login\":\"octocat\",\"id\":1,\"name\":\"The Octocat\"}";
	mg_oauth_userinfo_verdict(&c, 200, gh, strlen(gh), 1000, &v);
	assert_int_equal(v.status, MG_AUTH_OK);
	assert_string_equal(v.identity->id, "octocat");
	assert_string_equal(v.identity->display, "The Octocat");
	assert_int_equal(v.cache_until, 1300);
	mg_identity_unref(v.identity);
	c.user_id_claim = "id";
	mg_oauth_userinfo_verdict(&c, 200, gh, strlen(gh), 1000, &v);
	assert_string_equal(v.identity->id, "1");
	mg_identity_unref(v.identity);
	mg_oauth_userinfo_verdict(&c, 401, "{}", 2, 1000, &v);
	assert_int_equal(v.status, MG_AUTH_INVALID);
	assert_int_equal(v.cache_until, 1000 + MG_OAUTH_NEGATIVE_TTL);
	mg_oauth_userinfo_verdict(&c, 502, "", 0, 1000, &v);
	assert_int_equal(v.status, MG_AUTH_UNAVAILABLE);
	assert_int_equal(v.cache_until, 0);
}

/* ---- built-in providers ---------------------------------------------------------------- */

static struct mg_config *load(const char *text, struct mg_diag *d)
{
	char *env[] = { "CS=client-secret", NULL };
	return mg_config_load_buffer(text, strlen(text), "t.toml", MG_CONFIG_TOML, env, d);
}

static void test_providers(void **state)
{
	(void)state;
	struct mg_diag d = { 0 };
	struct mg_config *c =
	    load("[upstream]\ncommand = \"x\"\n[auth.oauth]\nprovider = \"github\"\n"
	         "client_id = \"Iv1.x\"\nclient_secret_env = \"CS\"\n",
	         &d);
	assert_non_null(c);
	const struct mg_oauth_config *o = &c->auth.oauth;
	assert_string_equal(o->authorization_url, "https://github.com/login/oauth/authorize");
	assert_string_equal(o->token_url, "https://github.com/login/oauth/access_token");
	assert_string_equal(o->userinfo_url, "https://api.github.com/user");
	assert_null(o->introspection_url);
	assert_string_equal(o->user_id_claim, "login");
	assert_string_equal(o->client_secret, "client-secret");
	assert_int_equal(o->cache_duration_secs, 300);
	assert_false(o->allow_private_networks);
	mg_config_free(c);
	mg_diag_free(&d);

	memset(&d, 0, sizeof d);
	c = load("[upstream]\ncommand = \"x\"\n[auth.oauth]\nprovider = \"okta\"\n"
	         "client_id = \"0oa\"\nclient_secret = \"s\"\n"
	         "issuer = \"https://dev-1.okta.com/oauth2/default/\"\n"
	         "audience = [\"api://default\"]\n",
	         &d);
	assert_non_null(c);
	o = &c->auth.oauth;
	assert_string_equal(o->introspection_url,
	                    "https://dev-1.okta.com/oauth2/default/v1/introspect");
	assert_string_equal(o->authorization_url,
	                    "https://dev-1.okta.com/oauth2/default/v1/authorize");
	assert_string_equal(o->user_id_claim, "sub");
	mg_config_free(c);
	mg_diag_free(&d);

	/* okta without an issuer; custom introspection without a secret */
	static const char *const bad[] = {
		"[upstream]\ncommand = \"x\"\n[auth.oauth]\nprovider = \"okta\"\nclient_id = "
		"\"a\"\n",
		"[upstream]\ncommand = \"x\"\n[auth.oauth]\nclient_id = \"a\"\n"
		"authorization_url = \"https://i/a\"\ntoken_url = \"https://i/t\"\n"
		"introspection_url = \"https://i/i\"\n",
	};
	static const char *const want[] = { "auth.oauth.issuer", "auth.oauth.client_secret" };
	for (size_t i = 0; i < 2; i++) {
		memset(&d, 0, sizeof d);
		c = load(bad[i], &d);
		assert_null(c);
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		mg_diag_print(&d, f);
		fclose(f);
		assert_non_null(strstr(text, want[i]));
		free(text);
		mg_diag_free(&d);
	}
}

/* ---- PKCE, state, replay ---------------------------------------------------------------- */

static void test_pkce(void **state)
{
	(void)state;
	/* RFC 7636 appendix B */
	char ch[MG_OAUTH_CHALLENGE_LEN + 1];
	const char *v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
	mg_oauth_pkce_challenge(v, strlen(v), ch);
	assert_string_equal(ch, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
	assert_true(mg_oauth_pkce_check(v, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
	assert_false(mg_oauth_pkce_check(v, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
	/* plain: the challenge is the verifier itself - refused */
	assert_false(mg_oauth_pkce_check(v, v));
	assert_false(mg_oauth_pkce_check(NULL, ch));
	assert_false(mg_oauth_pkce_check(v, NULL));
	/* syntax */
	assert_false(mg_oauth_pkce_verifier_ok("short"));
	assert_false(mg_oauth_pkce_verifier_ok("dBjftJeZ4CVP+mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
	char longv[130];
	memset(longv, 'a', 129);
	longv[129] = '\0';
	assert_false(mg_oauth_pkce_verifier_ok(longv));
	longv[128] = '\0';
	assert_true(mg_oauth_pkce_verifier_ok(longv));
	/* fresh pairs differ and match */
	char v1[MG_OAUTH_VERIFIER_LEN + 1], v2[MG_OAUTH_VERIFIER_LEN + 1], c1[44], c2[44];
	assert_int_equal(mg_oauth_pkce_new(v1, c1), 0);
	assert_int_equal(mg_oauth_pkce_new(v2, c2), 0);
	assert_string_not_equal(v1, v2);
	assert_true(mg_oauth_pkce_check(v1, c1));
	assert_false(mg_oauth_pkce_check(v1, c2));
}

static void test_state(void **state)
{
	(void)state;
	uint8_t key[MG_OAUTH_KEY_LEN], other[MG_OAUTH_KEY_LEN];
	mg_oauth_state_key("0123456789abcdef0123456789abcdef", 32, key);
	mg_oauth_state_key("0123456789abcdef0123456789abcdeX", 32, other);
	struct mg_oauth_state st = { .exp = 1600 }, got;
	memset(st.id, 7, sizeof st.id);
	snprintf(st.verifier, sizeof st.verifier, "dBjftJeZ4CVP-mJ92IZ62QjM3cDUfrMbjbyzBzTyMPI");
	snprintf(st.ctx, sizeof st.ctx, "facade:abc");
	char s[MG_OAUTH_STATE_MAX + 1], s2[MG_OAUTH_STATE_MAX + 1], err[160];
	int n = mg_oauth_state_seal(key, &st, s, sizeof s);
	assert_true(n > 0);
	/* the verifier is not readable in the state */
	assert_null(strstr(s, "dBjftJeZ"));
	assert_int_equal(mg_oauth_state_open(key, s, (size_t)n, 1000, &got, err, sizeof err), 0);
	assert_memory_equal(got.id, st.id, sizeof st.id);
	assert_int_equal(got.exp, 1600);
	assert_string_equal(got.verifier, st.verifier);
	assert_string_equal(got.ctx, "facade:abc");
	/* a fresh nonce: sealing twice gives two different states */
	assert_true(mg_oauth_state_seal(key, &st, s2, sizeof s2) > 0);
	assert_string_not_equal(s, s2);
	/* expired: at exp and after */
	assert_int_equal(mg_oauth_state_open(key, s, (size_t)n, 1600, &got, err, sizeof err), -1);
	assert_non_null(strstr(err, "expired"));
	/* another key */
	assert_int_equal(mg_oauth_state_open(other, s, (size_t)n, 1000, &got, err, sizeof err), -1);
	/* every single-character change is refused */
	for (int i = 0; i < n; i++) {
		char t[MG_OAUTH_STATE_MAX + 1];
		memcpy(t, s, (size_t)n + 1);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		assert_int_equal(
		    mg_oauth_state_open(key, t, (size_t)n, 1000, &got, err, sizeof err), -1);
	}
	/* truncated, empty, garbage, too long */
	assert_int_equal(mg_oauth_state_open(key, s, (size_t)n - 1, 1000, &got, err, sizeof err),
	                 -1);
	assert_int_equal(mg_oauth_state_open(key, "", 0, 1000, &got, err, sizeof err), -1);
	assert_int_equal(mg_oauth_state_open(key, "!!!!", 4, 1000, &got, err, sizeof err), -1);
	char big[MG_OAUTH_STATE_MAX + 2];
	memset(big, 'A', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(mg_oauth_state_open(key, big, strlen(big), 1000, &got, err, sizeof err),
	                 -1);
	/* fields too long to seal */
	memset(st.ctx, 'c', sizeof st.ctx - 1);
	st.ctx[sizeof st.ctx - 1] = '\0';
	assert_true(mg_oauth_state_seal(key, &st, s, sizeof s) > 0); /* exactly the maximum */
	assert_int_equal(mg_oauth_state_seal(key, &st, s, 64), -1);  /* output too small */
}

static void test_replay(void **state)
{
	(void)state;
	struct mg_oauth_replay *r = mg_oauth_replay_new(4);
	uint8_t a[MG_OAUTH_STATE_ID_LEN] = { 1 }, b[MG_OAUTH_STATE_ID_LEN] = { 2 };
	assert_int_equal(mg_oauth_replay_use(r, a, 200, 100), 0);
	assert_int_equal(mg_oauth_replay_use(r, a, 200, 150), -1);
	assert_int_equal(mg_oauth_replay_use(r, b, 200, 150), 0);
	/* full of live ids: fail closed */
	uint8_t c[MG_OAUTH_STATE_ID_LEN] = { 3 }, d[MG_OAUTH_STATE_ID_LEN] = { 4 },
	        e[MG_OAUTH_STATE_ID_LEN] = { 5 };
	assert_int_equal(mg_oauth_replay_use(r, c, 300, 150), 0);
	assert_int_equal(mg_oauth_replay_use(r, d, 300, 150), 0);
	assert_int_equal(mg_oauth_replay_use(r, e, 300, 150), -2);
	/* after a and b expire their slots are reused; c is still a replay */
	assert_int_equal(mg_oauth_replay_use(r, e, 300, 200), 0);
	assert_int_equal(mg_oauth_replay_use(r, c, 300, 200), -1);
	assert_int_equal(mg_oauth_replay_use(r, e, 300, 250), -1);
	mg_oauth_replay_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form_parse), cmocka_unit_test(test_form_encode),
		cmocka_unit_test(test_cache),      cmocka_unit_test(test_introspection),
		cmocka_unit_test(test_userinfo),   cmocka_unit_test(test_providers),
		cmocka_unit_test(test_pkce),       cmocka_unit_test(test_state),
		cmocka_unit_test(test_replay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
