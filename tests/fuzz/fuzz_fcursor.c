/*
 * fuzz_fcursor.c - libFuzzer target for the federated list cursor
 * (gateway/fcursor.h): decoding arbitrary client text never reads out of
 * bounds, never leaks, and never opens (the key is random and unknown to
 * the input); a cursor the gateway sealed from the input opens to exactly
 * what was sealed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/fcursor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mg_fcursor_key key;
	static int ready;
	if (!ready) {
		if (mg_fcursor_key_init(&key, NULL, 0) < 0)
			abort();
		ready = 1;
	}
	const int64_t now = 1800000000;
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	struct mg_fcursor c;
	char err[200];
	uint8_t list = size ? data[0] % MG_FCURSOR_LISTS : 0;
	if (mg_fcursor_decode(&key, 42, list, now, s, &c, err, sizeof err) == 0)
		abort(); /* forged without the key */
	if (c.upstream)
		abort();
	/* Seal the input (up to its first NUL) as an upstream cursor and open it again. */
	struct mg_fcursor in = { .list = list, .server = (uint32_t)size, .upstream = s };
	char *text = NULL;
	if (mg_fcursor_encode(&key, 42, now, &in, &text) == 0) {
		if (mg_fcursor_decode(&key, 42, list, now, text, &c, err, sizeof err) != 0 ||
		    c.list != list || c.server != (uint32_t)size || strcmp(c.upstream, s) != 0)
			abort();
		mg_fcursor_clear(&c);
		if (mg_fcursor_decode(&key, 43, list, now, text, &c, err, sizeof err) == 0)
			abort();
		free(text);
	} else if (strlen(s) <= MG_FCURSOR_UPSTREAM_MAX) {
		abort();
	}
	free(s);
	return 0;
}
