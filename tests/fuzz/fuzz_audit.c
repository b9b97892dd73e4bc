/*
 * fuzz_audit.c - libFuzzer target for the audit log's parsers: the chain
 * verifier (lines split at '\n', fed in order) and the redaction JSON path
 * parser. Invariants: never crash; a line the writer chains is always
 * accepted; after a failure the verifier keeps refusing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "util/jpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct mg_audit_verifier v;
	mg_audit_verify_init(&v, size & 1);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		bool failed = v.failed;
		int rc = mg_audit_verify_line(&v, p, len);
		if (failed && rc == 0)
			abort();
		p += len + 1;
	}
	/* the input as a JSON path */
	char *s = strndup((const char *)data, size < 600 ? size : 600);
	if (s) {
		struct mg_jpath jp;
		char err[200];
		if (mg_jpath_parse(s, &jp, err, sizeof err) == 0)
			mg_jpath_free(&jp);
		free(s);
	}
	/* the input as an event message, chained: the verifier must accept it */
	char *msg = strndup((const char *)data, size < 4096 ? size : 4096);
	if (msg) {
		struct mg_audit_event ev = { .type = MG_AUDIT_TOOL_CALL,
			                     .message = msg,
			                     .tool = msg,
			                     .success = -1,
			                     .duration_ms = (int64_t)size };
		struct mg_buf b, line;
		mg_buf_init(&b, 0);
		mg_buf_init(&line, 0);
		char hash[MG_AUDIT_HASH_HEX + 1];
		if (mg_audit_serialize(&ev, (int64_t)size * 1000003, NULL, &b) == 0 &&
		    mg_audit_chain(b.data, b.len, 1, mg_audit_genesis, &line, hash) == 0) {
			struct mg_audit_verifier v2;
			mg_audit_verify_init(&v2, true);
			if (mg_audit_verify_line(&v2, line.data, line.len) != 0)
				abort();
		}
		mg_buf_free(&b);
		mg_buf_free(&line);
		free(msg);
	}
	return 0;
}
