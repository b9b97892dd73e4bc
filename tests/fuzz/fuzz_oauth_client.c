/*
 * fuzz_oauth_client.c - libFuzzer target for what the authorization-server
 * facade reads from anyone: redirect URIs and client_id URLs (rules), RFC
 * 7591 registration bodies and Client ID Metadata Documents (JSON), and
 * sealed login states (base64url, AES-GCM).
 *
 * Invariants: no crash, leak or hang; a URI accepted as a redirect URI
 * matches itself and nothing with one byte appended; a registered client
 * holds only redirect URIs that pass the rules; a state that opens must
 * have been sealed with the key (random input never opens: the seal is
 * authenticated). Seeds live in tests/fuzz/corpus/oauth_client/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/oauth_client.h"
#include "auth/oauth_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[200];
	char *s = malloc(size + 2);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	/* URI rules (as a C string: stops at a NUL, as the callers' strings do) */
	if (mg_oauth_redirect_uri_check(s, err, sizeof err) == 0) {
		char *v[] = { s };
		struct mg_strv reg = { .v = v, .n = 1, .set = true };
		CHECK(mg_oauth_redirect_uri_match(&reg, s));
		size_t n = strlen(s);
		char *longer = malloc(n + 2);
		if (longer) {
			memcpy(longer, s, n);
			longer[n] = '/';
			longer[n + 1] = '\0';
			CHECK(!mg_oauth_redirect_uri_match(&reg, longer));
			free(longer);
		}
		CHECK(strstr(s, "://") && !strchr(s, '#'));
	}
	(void)mg_oauth_cimd_url_check(s, err, sizeof err);
	/* JSON documents */
	const char *code;
	struct mg_oauth_client *c = mg_oauth_client_register((const char *)data, size, "fuzz", 1000,
	                                                     &code, err, sizeof err);
	if (c) {
		CHECK(c->redirect_uris.n >= 1 && c->redirect_uris.n <= MG_OAUTH_MAX_REDIRECTS);
		for (size_t i = 0; i < c->redirect_uris.n; i++)
			CHECK(mg_oauth_redirect_uri_check(c->redirect_uris.v[i], err, sizeof err) ==
			      0);
		json_t *j = mg_oauth_client_registration_json(c, 1000);
		json_decref(j);
		mg_oauth_client_free(c);
	}
	c = mg_oauth_client_from_document("https://app.example.com/client.json", (const char *)data,
	                                  size, 1000, 300, err, sizeof err);
	if (c) {
		CHECK(strcmp(c->client_id, "https://app.example.com/client.json") == 0);
		mg_oauth_client_free(c);
	}
	/* sealed state: random bytes never open */
	static const uint8_t key[MG_OAUTH_KEY_LEN] = { 1, 2, 3 };
	struct mg_oauth_state st;
	CHECK(mg_oauth_state_open(key, (const char *)data, size, 0, &st, err, sizeof err) < 0);
	free(s);
	return 0;
}
