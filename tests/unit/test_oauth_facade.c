/*
 * test_oauth_facade.c - the pure parts of the authorization-server facade:
 * redirect-URI rules and matching (the attack list of DESIGN.md §8), CIMD
 * URLs and documents, RFC 7591 registrations, authorization-request checks
 * (PKCE S256 only, RFC 8707 resource), codes and refresh-token families with
 * time as a parameter, and the gateway's own EdDSA tokens.
 */
#include "support.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "auth/oauth.h"
#include "auth/oauth_client.h"
#include "auth/oauth_grants.h"
#include "auth/oauth_issuer.h"
#include "auth/oauth_signer.h"
#include "auth/oauth_state.h"

static void test_redirect_uri_rules(void **state)
{
	(void)state;
	char err[160];
	static const char *const ok[] = {
		"https://app.example.com/callback", "https://app.example.com:8443/cb?x=1",
		"http://127.0.0.1:33418/callback",  "http://localhost/cb",
		"http://[::1]:8080/oauth",          "http://127.0.0.1/",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		assert_int_equal(mg_oauth_redirect_uri_check(ok[i], err, sizeof err), 0);
	static const char *const bad[] = {
		"javascript:alert(1)",
		"javascript://127.0.0.1/%0aalert(1)",
		"data:text/html,<script>alert(1)</script>",
		"myapp://callback",
		"HTTPS://app.example.com/cb",
		"Http://127.0.0.1/cb",
		"http://app.example.com/cb",
		"http://127.0.0.1.evil.example/cb",
		"http://localhost.evil.example/cb",
		"http://127.0.0.2/cb",
		"https://user@app.example.com/cb",
		"https://app.example.com@evil.example/cb",
		"http://127.0.0.1@evil.example/cb",
		"https://app.example.com/cb#frag",
		"https:///cb",
		"https://",
		"https://app.example.com:/cb",
		"https://app.example.com:99999x/cb",
		"https://app.example.com/c b",
		"https://app.example.com/\x01",
		"https://app.example.com\\@evil.example/",
		"",
		"/relative/cb",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (mg_oauth_redirect_uri_check(bad[i], err, sizeof err) != -1)
			fail_msg("accepted %s", bad[i]);
	}
	char longu[600] = "https://app.example.com/";
	memset(longu + strlen(longu), 'a', 500);
	assert_int_equal(mg_oauth_redirect_uri_check(longu, err, sizeof err), -1);
}

static void test_redirect_uri_match(void **state)
{
	(void)state;
	char *v[] = { "https://app.example.com/cb", "http://127.0.0.1:33418/callback" };
	struct mg_strv reg = { .v = v, .n = 2, .set = true };
	assert_true(mg_oauth_redirect_uri_match(&reg, "https://app.example.com/cb"));
	assert_true(mg_oauth_redirect_uri_match(&reg, "http://127.0.0.1:33418/callback"));
	static const char *const no[] = {
		"https://app.example.com/cb/",             /* trailing slash */
		"https://app.example.com/cb/../evil",      /* prefix */
		"https://app.example.com/cbx",             /* prefix */
		"https://app.example.com/c",               /* shorter */
		"https://APP.example.com/cb",              /* case */
		"HTTPS://app.example.com/cb",              /* scheme case */
		"https://app.example.com/CB",              /* path case */
		"https://app.example.com@evil.example/cb", /* userinfo */
		"https://app.example.com/cb#evil",         /* fragment */
		"https://app.example.com.evil.example/cb", /* look-alike host */
		"https://app.example.com/cb?x=1",          /* query */
		"https://app.example.com:443/cb",          /* explicit default port */
		"https://app.example.com/%63b",            /* encoding */
		"http://127.0.0.1:33419/callback",         /* another loopback port */
		"http://localhost:33418/callback",         /* another loopback name */
		"",
	};
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
		if (mg_oauth_redirect_uri_match(&reg, no[i]))
			fail_msg("matched %s", no[i]);
	}
	assert_false(mg_oauth_redirect_uri_match(&reg, NULL));
}

static void test_cimd(void **state)
{
	(void)state;
	char err[160];
	assert_int_equal(
	    mg_oauth_cimd_url_check("https://app.example.com/client.json", err, sizeof err), 0);
	static const char *const bad[] = {
		"http://app.example.com/client.json",
		"https://app.example.com/",
		"https://app.example.com",
		"https://app.example.com/c.json?x=1",
		"https://app.example.com/c.json#x",
		"https://u@app.example.com/c.json",
		"https://app.example.com/a/../c",
		"https://app.example.com/./c",
		"https://app.example.com/a/..",
		"javascript:alert(1)",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (mg_oauth_cimd_url_check(bad[i], err, sizeof err) != -1)
			fail_msg("accepted %s", bad[i]);
	}
	const char *url = "https://app.example.com/client.json";
	const char *doc = "{\"client_id\":\"https://app.example.com/client.json\",\"client_name\":"
	                  "\"App\",\"redirect_uris\":[\"http://127.0.0.1:3000/cb\"],"
	                  "\"token_endpoint_auth_method\":\"none\"}";
	struct mg_oauth_client *c =
	    mg_oauth_client_from_document(url, doc, strlen(doc), 1000, 300, err, sizeof err);
	assert_non_null(c);
	assert_true(c->cimd);
	assert_string_equal(c->client_id, url);
	assert_string_equal(c->name, "App");
	assert_int_equal(c->expires, 1300);
	assert_true(mg_oauth_redirect_uri_match(&c->redirect_uris, "http://127.0.0.1:3000/cb"));
	mg_oauth_client_free(c);
	/* the document must name its own URL */
	static const char *const bad_docs[] = {
		"{\"client_id\":\"https://evil.example/client.json\",\"redirect_uris\":[\"https://"
		"a/cb\"]}",
		"{\"client_id\":\"https://app.example.com/client.json/"
		"\",\"redirect_uris\":[\"https://a/cb\"]}",
		"{\"redirect_uris\":[\"https://a/cb\"]}",
		"{\"client_id\":\"https://app.example.com/"
		"client.json\",\"redirect_uris\":[\"javascript:x\"]}",
		"{\"client_id\":\"https://app.example.com/client.json\"}",
		"[]",
		"{\"client_id\":\"https://app.example.com/client.json\",\"client_id\":\"x\","
		"\"redirect_uris\":[\"https://a/cb\"]}",
	};
	for (size_t i = 0; i < sizeof bad_docs / sizeof bad_docs[0]; i++) {
		c = mg_oauth_client_from_document(url, bad_docs[i], strlen(bad_docs[i]), 1000, 300,
		                                  err, sizeof err);
		if (c)
			fail_msg("accepted document %zu", i);
	}
	/* a private URL is refused by the fetcher's SSRF rule, not here; but a
	 * URL that is not https never gets this far */
	assert_null(mg_oauth_client_from_document("http://127.0.0.1/c.json", doc, strlen(doc), 1000,
	                                          300, err, sizeof err));
}

static void test_register(void **state)
{
	(void)state;
	char err[160];
	const char *code;
	const char *req =
	    "{\"client_name\":\"Inspector\",\"redirect_uris\":"
	    "[\"http://localhost:6274/oauth/callback\"],\"grant_types\":"
	    "[\"authorization_code\",\"refresh_token\"],\"response_types\":[\"code\"],"
	    "\"token_endpoint_auth_method\":\"none\"}";
	struct mg_oauth_client *c =
	    mg_oauth_client_register(req, strlen(req), "cid-1", 1000, &code, err, sizeof err);
	assert_non_null(c);
	assert_string_equal(c->client_id, "cid-1");
	assert_int_equal(c->expires, 1000 + MG_OAUTH_REGISTRATION_SECS);
	json_t *j = mg_oauth_client_registration_json(c, 1000);
	assert_string_equal(json_string_value(json_object_get(j, "client_id")), "cid-1");
	assert_string_equal(json_string_value(json_object_get(j, "token_endpoint_auth_method")),
	                    "none");
	json_decref(j);
	mg_oauth_client_free(c);

	static const struct {
		const char *body, *code;
	} bad[] = {
		{ "{\"redirect_uris\":[\"javascript:alert(document.cookie)\"]}",
		  "invalid_redirect_uri" },
		{ "{\"redirect_uris\":[\"data:text/html,x\"]}", "invalid_redirect_uri" },
		{ "{\"redirect_uris\":[\"http://evil.example/cb\"]}", "invalid_redirect_uri" },
		{ "{\"redirect_uris\":[]}", "invalid_redirect_uri" },
		{ "{}", "invalid_redirect_uri" },
		{ "{\"redirect_uris\":[\"https://a/1\",\"https://a/2\",\"https://a/3\",\"https://a/"
		  "4\","
		  "\"https://a/5\",\"https://a/6\",\"https://a/7\",\"https://a/8\",\"https://a/"
		  "9\"]}",
		  "invalid_redirect_uri" },
		{ "{\"redirect_uris\":[\"https://a/cb\"],\"token_endpoint_auth_method\":"
		  "\"client_secret_basic\"}",
		  "invalid_client_metadata" },
		{ "{\"redirect_uris\":[\"https://a/cb\"],\"grant_types\":[\"implicit\"]}",
		  "invalid_client_metadata" },
		{ "{\"redirect_uris\":[\"https://a/cb\"],\"response_types\":[\"token\"]}",
		  "invalid_client_metadata" },
		{ "{\"redirect_uris\":[\"https://a/cb\"],\"client_name\":7}",
		  "invalid_client_metadata" },
		{ "not json", "invalid_client_metadata" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		c = mg_oauth_client_register(bad[i].body, strlen(bad[i].body), "x", 1000, &code,
		                             err, sizeof err);
		if (c)
			fail_msg("registered %s", bad[i].body);
		assert_string_equal(code, bad[i].code);
	}
}

/* ---- authorization requests -------------------------------------------------------------- */

static int check(const char *query, const struct mg_oauth_client *c, bool *redirectable,
                 const char **code)
{
	struct mg_oauth_form f;
	char err[160];
	struct mg_oauth_authz_request r;
	assert_int_equal(mg_oauth_form_parse(query, strlen(query), &f, err, sizeof err), 0);
	int rc = mg_oauth_authorize_check(&f, c, "https://mcp.example.com/mcp", &r, redirectable,
	                                  code, err, sizeof err);
	mg_oauth_form_free(&f);
	return rc;
}

static void test_authorize_check(void **state)
{
	(void)state;
	char *v[] = { "http://127.0.0.1:3000/cb" };
	struct mg_oauth_client c = { .client_id = "cid", .redirect_uris = { .v = v, .n = 1 } };
	bool redir;
	const char *code;
#define BASE "client_id=cid&redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Fcb"
#define CH   "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	assert_int_equal(check(BASE "&response_type=code&code_challenge=" CH
	                            "&code_challenge_method=S256&state=s&resource=https%3A%2F%2F"
	                            "mcp.example.com%2Fmcp",
	                       &c, &redir, &code),
	                 0);
	assert_int_equal(check(BASE "&response_type=code&code_challenge=" CH
	                            "&code_challenge_method=S256",
	                       &c, &redir, &code),
	                 0);
	static const struct {
		const char *q, *code;
		bool redirectable;
	} bad[] = {
		/* PKCE missing, plain, unknown method, bad challenge */
		{ BASE "&response_type=code", "invalid_request", true },
		{ BASE "&response_type=code&code_challenge=" CH, "invalid_request", true },
		{ BASE "&response_type=code&code_challenge=" CH "&code_challenge_method=plain",
		  "invalid_request", true },
		{ BASE "&response_type=code&code_challenge=" CH "&code_challenge_method=s256",
		  "invalid_request", true },
		{ BASE "&response_type=code&code_challenge=short&code_challenge_method=S256",
		  "invalid_request", true },
		/* another resource (RFC 8707) */
		{ BASE "&response_type=code&code_challenge=" CH "&code_challenge_method=S256"
		       "&resource=https%3A%2F%2Fother.example%2Fmcp",
		  "invalid_target", true },
		{ BASE "&response_type=token&code_challenge=" CH "&code_challenge_method=S256",
		  "unsupported_response_type", true },
		/* not redirectable: wrong client, wrong redirect URI, duplicates */
		{ "client_id=other&redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Fcb&response_type="
		  "code",
		  "invalid_client", false },
		{ "client_id=cid&redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Fcb%2F&response_type="
		  "code",
		  "invalid_request", false },
		{ "client_id=cid&redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Fcb%23x",
		  "invalid_request", false },
		{ BASE "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&response_type=code",
		  "invalid_request", false },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (check(bad[i].q, &c, &redir, &code) != -1)
			fail_msg("accepted %s", bad[i].q);
		assert_string_equal(code, bad[i].code);
		assert_int_equal(redir, bad[i].redirectable);
	}
	assert_int_equal(check(BASE, NULL, &redir, &code), -1);
	assert_string_equal(code, "invalid_client");
#undef BASE
#undef CH
}

/* ---- codes and refresh tokens ------------------------------------------------------------ */

#define VERIFIER  "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define CHALLENGE "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

static struct mg_oauth_grant grant(void)
{
	struct mg_oauth_grant g = { 0 };
	snprintf(g.client_id, sizeof g.client_id, "cid");
	snprintf(g.redirect_uri, sizeof g.redirect_uri, "http://127.0.0.1:3000/cb");
	snprintf(g.code_challenge, sizeof g.code_challenge, CHALLENGE);
	snprintf(g.resource, sizeof g.resource, "https://mcp.example.com/mcp");
	snprintf(g.subject, sizeof g.subject, "alice");
	return g;
}

static void test_codes(void **state)
{
	(void)state;
	struct mg_oauth_grants *g = mg_oauth_grants_new(16, 16, 3600);
	struct mg_oauth_grant gr = grant(), out;
	char code[MG_OAUTH_TOKEN_LEN + 1];
	uint64_t fam;
	const char *cb = "http://127.0.0.1:3000/cb";
	assert_int_equal(mg_oauth_code_issue(g, &gr, 1000, code), 0);
	assert_int_equal(strlen(code), MG_OAUTH_TOKEN_LEN);
	assert_int_equal(mg_oauth_code_redeem(g, code, "cid", cb, VERIFIER, 1010, &out, &fam),
	                 MG_OAUTH_REDEEM_OK);
	assert_string_equal(out.subject, "alice");
	assert_true(mg_oauth_family_active(g, fam, 1010));
	/* code replay: refused, and what it issued is revoked */
	uint64_t fam2;
	assert_int_equal(mg_oauth_code_redeem(g, code, "cid", cb, VERIFIER, 1011, &out, &fam2),
	                 MG_OAUTH_REDEEM_REPLAY);
	assert_false(mg_oauth_family_active(g, fam, 1011));
	/* expired: exactly 60 s later */
	assert_int_equal(mg_oauth_code_issue(g, &gr, 1000, code), 0);
	assert_int_equal(mg_oauth_code_redeem(g, code, "cid", cb, VERIFIER, 1060, &out, &fam),
	                 MG_OAUTH_REDEEM_EXPIRED);
	/* verifier mismatch, missing verifier, another client, another redirect URI: each spends
	 * the code */
	static const struct {
		const char *client, *redirect, *verifier;
	} wrong[] = {
		{ "cid", "http://127.0.0.1:3000/cb",
		  "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK" },
		{ "cid", "http://127.0.0.1:3000/cb", NULL },
		{ "cid", "http://127.0.0.1:3000/cb", CHALLENGE }, /* plain: the challenge itself */
		{ "other", "http://127.0.0.1:3000/cb", VERIFIER },
		{ "cid", "http://127.0.0.1:3000/cb/", VERIFIER },
	};
	for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
		assert_int_equal(mg_oauth_code_issue(g, &gr, 2000, code), 0);
		assert_int_equal(mg_oauth_code_redeem(g, code, wrong[i].client, wrong[i].redirect,
		                                      wrong[i].verifier, 2001, &out, &fam),
		                 MG_OAUTH_REDEEM_MISMATCH);
		assert_int_equal(
		    mg_oauth_code_redeem(g, code, "cid", cb, VERIFIER, 2002, &out, &fam),
		    MG_OAUTH_REDEEM_REPLAY);
	}
	assert_int_equal(mg_oauth_code_redeem(g, "made-up", "cid", cb, VERIFIER, 2002, &out, &fam),
	                 MG_OAUTH_REDEEM_UNKNOWN);
	mg_oauth_grants_free(g);
	/* bounded: 4 live (or spent, unexpired) codes at most */
	g = mg_oauth_grants_new(4, 4, 3600);
	for (int i = 0; i < 4; i++)
		assert_int_equal(mg_oauth_code_issue(g, &gr, 3000, code), 0);
	assert_int_equal(mg_oauth_code_issue(g, &gr, 3000, code), -1);
	assert_int_equal(mg_oauth_code_issue(g, &gr, 3060, code), 0);
	mg_oauth_grants_free(g);
}

static void test_refresh_rotation(void **state)
{
	(void)state;
	struct mg_oauth_grants *g = mg_oauth_grants_new(4, 4, 3600);
	struct mg_oauth_grant gr = grant(), out;
	char code[MG_OAUTH_TOKEN_LEN + 1], r1[MG_OAUTH_TOKEN_LEN + 1], r2[MG_OAUTH_TOKEN_LEN + 1],
	    r3[MG_OAUTH_TOKEN_LEN + 1];
	uint64_t fam, f;
	assert_int_equal(mg_oauth_code_issue(g, &gr, 1000, code), 0);
	assert_int_equal(mg_oauth_code_redeem(g, code, "cid", "http://127.0.0.1:3000/cb", VERIFIER,
	                                      1001, &out, &fam),
	                 MG_OAUTH_REDEEM_OK);
	assert_int_equal(mg_oauth_refresh_issue(g, fam, 1001, r1), 0);
	assert_int_equal(mg_oauth_refresh_redeem(g, r1, "cid", 1100, &out, &f), MG_OAUTH_REDEEM_OK);
	assert_int_equal(f, fam);
	assert_int_equal(mg_oauth_refresh_issue(g, fam, 1100, r2), 0);
	assert_string_not_equal(r1, r2);
	/* another client cannot use it */
	assert_int_equal(mg_oauth_refresh_redeem(g, r2, "other", 1150, &out, &f),
	                 MG_OAUTH_REDEEM_MISMATCH);
	assert_int_equal(mg_oauth_refresh_redeem(g, r2, "cid", 1200, &out, &f), MG_OAUTH_REDEEM_OK);
	assert_int_equal(mg_oauth_refresh_issue(g, fam, 1200, r3), 0);
	/* r1 again after rotation: the family is revoked, r3 dies with it */
	assert_int_equal(mg_oauth_refresh_redeem(g, r1, "cid", 1300, &out, &f),
	                 MG_OAUTH_REDEEM_REPLAY);
	assert_false(mg_oauth_family_active(g, fam, 1300));
	assert_int_equal(mg_oauth_refresh_redeem(g, r3, "cid", 1301, &out, &f),
	                 MG_OAUTH_REDEEM_REVOKED);
	assert_int_equal(mg_oauth_refresh_issue(g, fam, 1301, r3), -1);
	/* a family expires */
	assert_int_equal(mg_oauth_code_issue(g, &gr, 5000, code), 0);
	assert_int_equal(mg_oauth_code_redeem(g, code, "cid", "http://127.0.0.1:3000/cb", VERIFIER,
	                                      5001, &out, &fam),
	                 MG_OAUTH_REDEEM_OK);
	assert_int_equal(mg_oauth_refresh_issue(g, fam, 5001, r1), 0);
	assert_int_equal(mg_oauth_refresh_redeem(g, r1, "cid", 5001 + 3600, &out, &f),
	                 MG_OAUTH_REDEEM_EXPIRED);
	assert_false(mg_oauth_family_active(g, fam, 5001 + 3600));
	mg_oauth_grants_free(g);
}

/* ---- the gateway's own tokens ------------------------------------------------------------ */

static void test_signer(void **state)
{
	(void)state;
	char err[160];
	struct mg_oauth_signer *s = mg_oauth_signer_new(err, sizeof err);
	assert_non_null(s);
	json_t *jwks = mg_oauth_signer_jwks(s);
	char *text = json_dumps(jwks, JSON_COMPACT);
	struct mg_jwk_set *keys = mg_jwk_set_parse(text, strlen(text), err, sizeof err);
	assert_non_null(keys);
	free(text);
	json_decref(jwks);
	json_t *claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s}", "iss", "https://mcp.example.com",
	                           "aud", "https://mcp.example.com/mcp", "sub", "alice", "iat",
	                           (json_int_t)1000, "exp", (json_int_t)1300, "scope", "mcp:read");
	char *tok = mg_oauth_signer_sign(s, claims);
	assert_non_null(tok);
	const char *aud[] = { "https://mcp.example.com/mcp" };
	struct mg_jwt_policy p = { .algs = 1u << mg_jwt_alg_parse("EdDSA"),
		                   .issuer = "https://mcp.example.com",
		                   .audience = aud,
		                   .n_audience = 1,
		                   .now = 1100 };
	struct mg_jwt t;
	assert_int_equal(mg_jwt_verify(tok, strlen(tok), keys, &p, &t, err, sizeof err), MG_JWT_OK);
	assert_string_equal(json_string_value(json_object_get(t.header, "typ")), "at+jwt");
	assert_string_equal(json_string_value(json_object_get(t.header, "kid")),
	                    mg_oauth_signer_kid(s));
	mg_jwt_free(&t);
	/* a token for another audience is refused */
	const char *other[] = { "https://other.example/mcp" };
	p.audience = other;
	assert_int_equal(mg_jwt_verify(tok, strlen(tok), keys, &p, NULL, err, sizeof err),
	                 MG_JWT_BAD_AUDIENCE);
	/* expired */
	p.audience = aud;
	p.now = 1300 + 1;
	assert_int_equal(mg_jwt_verify(tok, strlen(tok), keys, &p, NULL, err, sizeof err),
	                 MG_JWT_EXPIRED);
	/* another gateway's key */
	struct mg_oauth_signer *s2 = mg_oauth_signer_new(err, sizeof err);
	char *tok2 = mg_oauth_signer_sign(s2, claims);
	p.now = 1100;
	assert_int_not_equal(mg_jwt_verify(tok2, strlen(tok2), keys, &p, NULL, err, sizeof err),
	                     MG_JWT_OK);
	free(tok);
	free(tok2);
	json_decref(claims);
	mg_jwk_set_unref(keys);
	mg_oauth_signer_free(s);
	mg_oauth_signer_free(s2);
}

/* ---- the issuer: bounded tables, own tokens -------------------------------------------- */

static void test_issuer(void **state)
{
	(void)state;
	char err[160], reason[160];
	struct mg_oauth_issuer *is = mg_oauth_issuer_new(err, sizeof err);
	assert_non_null(is);
	/* clients: a flood of registrations evicts the oldest, memory stays bounded */
	const char *req = "{\"redirect_uris\":[\"https://a.example/cb\"]}";
	const char *code;
	for (int i = 0; i < MG_OAUTH_MAX_CLIENTS + 10; i++) {
		char id[32];
		snprintf(id, sizeof id, "c%d", i);
		struct mg_oauth_client *c = mg_oauth_client_register(req, strlen(req), id, 1000 + i,
		                                                     &code, err, sizeof err);
		assert_int_equal(mg_oauth_issuer_add_client(is, c, 1000 + i), 0);
	}
	assert_null(mg_oauth_issuer_client(is, "c0", 5000));
	assert_non_null(mg_oauth_issuer_client(is, "c1033", 5000));
	assert_null(mg_oauth_issuer_client(is, "c1033", 2033 + MG_OAUTH_REGISTRATION_SECS));
	/* pending: the same, and lookups are by exact id */
	struct mg_oauth_pending p = { 0 }, *first = NULL;
	char first_id[MG_OAUTH_TOKEN_LEN + 1];
	for (int i = 0; i < MG_OAUTH_MAX_PENDING + 1; i++) {
		struct mg_oauth_pending *pp = mg_oauth_issuer_pend(is, &p, 1000 + i);
		assert_non_null(pp);
		if (!first) {
			first = pp;
			memcpy(first_id, pp->id, sizeof first_id);
		}
	}
	assert_null(mg_oauth_issuer_pending(is, first_id, 1100)); /* evicted */
	assert_null(mg_oauth_issuer_pending(is, "short", 1100));
	/* own tokens */
	struct mg_oauth_grants *g = mg_oauth_issuer_grants(is);
	struct mg_oauth_grant gr = grant(), out;
	char c[MG_OAUTH_TOKEN_LEN + 1];
	uint64_t fam;
	assert_int_equal(mg_oauth_code_issue(g, &gr, 3000, c), 0);
	assert_int_equal(mg_oauth_code_redeem(g, c, "cid", "http://127.0.0.1:3000/cb", VERIFIER,
	                                      3000, &out, &fam),
	                 MG_OAUTH_REDEEM_OK);
	char *tok = mg_oauth_issuer_access_token(is, "https://mcp.example.com", &out, fam, 3000);
	assert_non_null(tok);
	struct mg_oauth_config cfg = { .present = true };
	struct mg_identity *id;
	assert_int_equal(mg_oauth_issuer_verify(is, &cfg, "https://mcp.example.com",
	                                        "https://mcp.example.com/mcp", tok, strlen(tok),
	                                        3001, &id, reason, sizeof reason),
	                 MG_AUTH_OK);
	assert_string_equal(id->key, "oauth:alice");
	mg_identity_unref(id);
	/* another audience, another issuer, expired: invalid */
	assert_int_equal(mg_oauth_issuer_verify(is, &cfg, "https://mcp.example.com",
	                                        "https://other.example/mcp", tok, strlen(tok), 3001,
	                                        &id, reason, sizeof reason),
	                 MG_AUTH_INVALID);
	assert_int_equal(mg_oauth_issuer_verify(is, &cfg, "https://other.example",
	                                        "https://mcp.example.com/mcp", tok, strlen(tok),
	                                        3001, &id, reason, sizeof reason),
	                 MG_AUTH_INVALID);
	assert_int_equal(mg_oauth_issuer_verify(is, &cfg, "https://mcp.example.com",
	                                        "https://mcp.example.com/mcp", tok, strlen(tok),
	                                        3001 + MG_OAUTH_ACCESS_SECS, &id, reason,
	                                        sizeof reason),
	                 MG_AUTH_INVALID);
	/* revoked family: invalid at once */
	mg_oauth_family_revoke(g, fam);
	assert_int_equal(mg_oauth_issuer_verify(is, &cfg, "https://mcp.example.com",
	                                        "https://mcp.example.com/mcp", tok, strlen(tok),
	                                        3001, &id, reason, sizeof reason),
	                 MG_AUTH_INVALID);
	/* someone else's token (another key): not ours, declined */
	struct mg_oauth_issuer *other = mg_oauth_issuer_new(err, sizeof err);
	char *tok2 =
	    mg_oauth_issuer_access_token(other, "https://mcp.example.com", &out, fam, 3000);
	assert_int_equal(mg_oauth_issuer_verify(is, &cfg, "https://mcp.example.com",
	                                        "https://mcp.example.com/mcp", tok2, strlen(tok2),
	                                        3001, &id, reason, sizeof reason),
	                 MG_AUTH_DECLINED);
	free(tok);
	free(tok2);
	mg_oauth_issuer_unref(other);
	mg_oauth_issuer_unref(is);
}

/* ---- signing key rotation ------------------------------------------------------------- */

/* A new key of `type` (EVP_PKEY_ED25519, EVP_PKEY_EC) written as PEM to a temp file. */
static void key_file(int type, char path[64])
{
	snprintf(path, 64, "/tmp/mg-test-key-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	EVP_PKEY *k =
	    type == EVP_PKEY_EC ? EVP_EC_gen("P-256") : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(k);
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	EVP_PKEY_free(k);
}

static enum mg_auth_status verify_at(struct mg_oauth_issuer *is, const char *tok, int64_t now)
{
	struct mg_oauth_config cfg = { .present = true };
	struct mg_identity *id = NULL;
	char reason[160];
	enum mg_auth_status st = mg_oauth_issuer_verify(
	    is, &cfg, "https://mcp.example.com", "https://mcp.example.com/mcp", tok, strlen(tok),
	    now, &id, reason, sizeof reason);
	mg_identity_unref(id);
	return st;
}

static char *token_kid(const char *tok, char kid[64])
{
	assert_int_equal(mg_jwt_peek_kid(tok, strlen(tok), kid, 64), 0);
	return kid;
}

static void test_key_rotation(void **state)
{
	(void)state;
	char err[300], a[64], b[64], ec[64], kid[64], kid_a[64];
	key_file(EVP_PKEY_ED25519, a);
	key_file(EVP_PKEY_ED25519, b);
	key_file(EVP_PKEY_EC, ec);
	struct mg_oauth_issuer *is = mg_oauth_issuer_new(err, sizeof err);
	assert_non_null(is);
	struct mg_oauth_grants *g = mg_oauth_issuer_grants(is);
	struct mg_oauth_grant gr = grant(), out;
	char c[MG_OAUTH_TOKEN_LEN + 1];
	uint64_t fam;
	assert_int_equal(mg_oauth_code_issue(g, &gr, 1000, c), 0);
	assert_int_equal(mg_oauth_code_redeem(g, c, "cid", "http://127.0.0.1:3000/cb", VERIFIER,
	                                      1000, &out, &fam),
	                 MG_OAUTH_REDEEM_OK);
	/* key A from its file; the same file again changes nothing */
	assert_int_equal(mg_oauth_issuer_set_keys(is, a, NULL, 1000, err, sizeof err), 0);
	snprintf(kid_a, sizeof kid_a, "%s", mg_oauth_signer_kid(mg_oauth_issuer_signer(is)));
	assert_int_equal(mg_oauth_issuer_set_keys(is, a, NULL, 1000, err, sizeof err), 0);
	json_t *jwks = mg_oauth_issuer_jwks(is, 1000);
	assert_int_equal(json_array_size(json_object_get(jwks, "keys")), 1);
	json_decref(jwks);
	char *ta = mg_oauth_issuer_access_token(is, "https://mcp.example.com", &out, fam, 1000);
	assert_string_equal(token_kid(ta, kid), kid_a);
	/* the same key file gives the same kid in another process (issuer) */
	struct mg_oauth_issuer *other = mg_oauth_issuer_new(err, sizeof err);
	assert_int_equal(mg_oauth_issuer_set_keys(other, a, NULL, 1000, err, sizeof err), 0);
	assert_string_equal(mg_oauth_signer_kid(mg_oauth_issuer_signer(other)), kid_a);
	mg_oauth_issuer_unref(other);
	/* rotate to B at 1100: new tokens carry B's kid, A's keep validating until they expire */
	assert_int_equal(mg_oauth_issuer_set_keys(is, b, NULL, 1100, err, sizeof err), 0);
	char *tb = mg_oauth_issuer_access_token(is, "https://mcp.example.com", &out, fam, 1100);
	assert_string_not_equal(token_kid(tb, kid), kid_a);
	assert_int_equal(verify_at(is, ta, 1200), MG_AUTH_OK);
	assert_int_equal(verify_at(is, tb, 1200), MG_AUTH_OK);
	jwks = mg_oauth_issuer_jwks(is, 1200);
	json_t *keys = json_object_get(jwks, "keys");
	assert_int_equal(json_array_size(keys), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(keys, 0), "kid")),
	                    kid); /* the signing key first */
	json_decref(jwks);
	assert_true(mg_oauth_issuer_has_kid(is, kid_a, 1100 + MG_OAUTH_ACCESS_SECS));
	/* once A's tokens have all expired, A is gone */
	assert_false(mg_oauth_issuer_has_kid(is, kid_a, 1101 + MG_OAUTH_ACCESS_SECS));
	jwks = mg_oauth_issuer_jwks(is, 1101 + MG_OAUTH_ACCESS_SECS);
	assert_int_equal(json_array_size(json_object_get(jwks, "keys")), 1);
	json_decref(jwks);
	/* A as the configured previous key: accepted and published, never signing */
	assert_int_equal(mg_oauth_issuer_set_keys(is, b, a, 5000, err, sizeof err), 0);
	assert_true(mg_oauth_issuer_has_kid(is, kid_a, 5000));
	char *tb2 = mg_oauth_issuer_access_token(is, "https://mcp.example.com", &out, fam, 5000);
	assert_string_equal(token_kid(tb2, kid), mg_oauth_signer_kid(mg_oauth_issuer_signer(is)));
	assert_string_not_equal(kid, kid_a);
	/* bad files: refused with a reason, the issuer unchanged */
	assert_int_equal(mg_oauth_issuer_set_keys(is, ec, NULL, 5000, err, sizeof err), -1);
	assert_non_null(strstr(err, "not an Ed25519 private key"));
	assert_int_equal(
	    mg_oauth_issuer_set_keys(is, b, "/nonexistent/key.pem", 5000, err, sizeof err), -1);
	assert_non_null(strstr(err, "cannot read"));
	assert_string_equal(mg_oauth_signer_kid(mg_oauth_issuer_signer(is)), kid);
	assert_true(mg_oauth_issuer_has_kid(is, kid_a, 5000));
	/* rotating many times within a token lifetime stays bounded */
	for (int i = 0; i < 10; i++) {
		char k[64];
		key_file(EVP_PKEY_ED25519, k);
		assert_int_equal(mg_oauth_issuer_set_keys(is, k, NULL, 6000 + i, err, sizeof err),
		                 0);
		free(mg_oauth_issuer_access_token(is, "https://mcp.example.com", &out, fam,
		                                  6000 + i));
		unlink(k);
	}
	jwks = mg_oauth_issuer_jwks(is, 6010);
	assert_int_equal(json_array_size(json_object_get(jwks, "keys")), 1 + 4); /* 4 retired */
	json_decref(jwks);
	free(ta);
	free(tb);
	free(tb2);
	unlink(a);
	unlink(b);
	unlink(ec);
	mg_oauth_issuer_unref(is);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redirect_uri_rules),
		cmocka_unit_test(test_redirect_uri_match),
		cmocka_unit_test(test_cimd),
		cmocka_unit_test(test_register),
		cmocka_unit_test(test_authorize_check),
		cmocka_unit_test(test_codes),
		cmocka_unit_test(test_refresh_rotation),
		cmocka_unit_test(test_signer),
		cmocka_unit_test(test_issuer),
		cmocka_unit_test(test_key_rotation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
