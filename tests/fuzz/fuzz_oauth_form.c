/*
 * fuzz_oauth_form.c - libFuzzer target for the OAuth form/query parser
 * (auth/oauth_form.c), which reads query strings and bodies of the OAuth
 * endpoints from anyone on the network.
 *
 * Each input is parsed; on success every pair must be within the limits,
 * NUL-free, control-free and valid UTF-8, and encoding the pairs back with
 * mg_oauth_form_add then parsing again must give the same pairs (the
 * encoder and the decoder agree). On failure an error message must be set.
 * Seeds live in tests/fuzz/corpus/oauth_form/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/oauth.h"
#include "util/str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mg_oauth_form f, g;
	char err[160] = "";
	if (mg_oauth_form_parse((const char *)data, size, &f, err, sizeof err) < 0) {
		CHECK(err[0]);
		mg_oauth_form_free(&f);
		return 0;
	}
	CHECK(size <= MG_OAUTH_FORM_MAX_BYTES && f.n <= MG_OAUTH_FORM_MAX_PAIRS);
	struct mg_buf b;
	mg_buf_init(&b, 0);
	for (size_t i = 0; i < f.n; i++) {
		size_t kl = strlen(f.key[i]), vl = strlen(f.value[i]);
		CHECK(mg_utf8_valid(f.key[i], kl) && mg_utf8_valid(f.value[i], vl));
		for (size_t k = 0; k < vl; k++)
			CHECK((unsigned char)f.value[i][k] >= 0x20 && f.value[i][k] != 0x7F);
		CHECK(mg_oauth_form_add(&b, f.key[i], f.value[i]) == 0);
	}
	/* Encoding can triple the size: the round trip may exceed the byte limit. */
	if (b.len <= MG_OAUTH_FORM_MAX_BYTES) {
		CHECK(mg_oauth_form_parse(b.data ? b.data : "", b.len, &g, err, sizeof err) == 0);
		CHECK(g.n == f.n);
		for (size_t i = 0; i < g.n; i++)
			CHECK(strcmp(g.key[i], f.key[i]) == 0 &&
			      strcmp(g.value[i], f.value[i]) == 0);
		CHECK(g.duplicate == f.duplicate);
		mg_oauth_form_free(&g);
	}
	mg_buf_free(&b);
	mg_oauth_form_free(&f);
	return 0;
}
