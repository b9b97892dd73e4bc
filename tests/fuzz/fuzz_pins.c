/*
 * fuzz_pins.c - libFuzzer target for the tool pinning state file
 * (gateway/pins.h): any bytes as pins_file either open or are refused with a
 * message, never crash or leak; a state that opens lists entries whose
 * hashes and times have the documented shape. The same bytes as a tool
 * definition hash without crashing, and the hash ignores key order (a
 * re-serialized copy hashes the same).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/pins.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_entry(void *arg, const char *server, const char *tool,
                        const struct mg_pin_info *info)
{
	(void)arg;
	if (!*server || !*tool || strlen(info->sha256) != MG_PINS_HASH_LEN ||
	    strlen(info->pinned_at) != 20 || (*info->pending && !*info->changed_at))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	if (!*path)
		snprintf(path, sizeof path, "/tmp/mg-fuzz-pins-%ld.json", (long)getpid());
	FILE *f = fopen(path, "wb");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	char err[512];
	struct mg_pins *p = mg_pins_open(path, err, sizeof err);
	if (p) {
		mg_pins_each(p, check_entry, NULL);
		mg_pins_free(p); /* nothing changed: nothing is written */
	} else if (!*err) {
		abort();
	}
	unlink(path);

	json_t *tool = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (json_is_object(tool)) {
		char a[MG_PINS_HASH_LEN + 1], b[MG_PINS_HASH_LEN + 1];
		char *text = json_dumps(tool, JSON_COMPACT);
		json_t *again = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
		if (again && mg_pins_hash(tool, a) == 0 &&
		    (mg_pins_hash(again, b) != 0 || strcmp(a, b) != 0))
			abort();
		json_decref(again);
		free(text);
	}
	json_decref(tool);
	return 0;
}
