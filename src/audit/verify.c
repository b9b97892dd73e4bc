/*
 * verify.c - checking a hash-chained audit log (`mcp-guard audit verify`),
 * and reading a chain's head back when the writer continues a file.
 *
 * A chained record is one line
 *   {…,"seq":N,"prev":"<64 hex>","hash":"<64 hex>"}
 * whose hash is the SHA-256 of the line with its last member removed
 * (`{…,"seq":N,"prev":"…"}`, see event.c). The verifier never
 * re-serializes: it strips the fixed-size `,"hash":"…"}` suffix, puts the
 * brace back and hashes those bytes. It streams: one line at a time, state
 * is the expected next seq and the previous record's hash. The first
 * failure is kept with its reason: bad JSON (also a line that is not a
 * chained record), seq gap (a record removed, inserted or moved), prev
 * mismatch (the record does not follow the one before it), hash mismatch
 * (the record's bytes were edited).
 *
 * A chain cannot show that records were cut off its end: compare the head
 * with one anchored elsewhere (the gateway logs it; docs/observability.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "util/crypto.h"
#include "util/str.h"

#define SUFFIX_LEN  (sizeof ",\"hash\":\"" - 1 + MG_AUDIT_HASH_HEX + 2)
#define MAX_LINE    (16u * 1024 * 1024)
#define HEAD_WINDOW (MAX_LINE + 1)

void mg_audit_verify_init(struct mg_audit_verifier *v, bool from_genesis)
{
	memset(v, 0, sizeof *v);
	memcpy(v->head, mg_audit_genesis, sizeof v->head);
	if (from_genesis) {
		v->started = true;
		v->next_seq = 1;
	}
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

static int fail(struct mg_audit_verifier *v, bool has_seq, uint64_t seq, const char *reason)
{
	v->failed = true;
	v->fail_has_seq = has_seq;
	v->fail_seq = seq;
	snprintf(v->reason, sizeof v->reason, "%s", reason);
	return -1;
}

int mg_audit_verify_line(struct mg_audit_verifier *v, const char *line, size_t len)
{
	static const char hash_key[] = ",\"hash\":\"";
	char reason[200];
	if (v->failed)
		return -1;
	if (len > MAX_LINE)
		return fail(v, false, 0, "bad JSON: the line is longer than 16 MiB");
	if (len < SUFFIX_LEN + 2 || line[len - 1] != '}' || line[len - 2] != '"' ||
	    memcmp(line + len - SUFFIX_LEN, hash_key, sizeof hash_key - 1) != 0 ||
	    !is_hex(line + len - MG_AUDIT_HASH_HEX - 2, MG_AUDIT_HASH_HEX))
		return fail(v, false, 0,
		            "bad JSON: not a chained record (no trailing \"hash\" member)");
	/* the hashed bytes: the line without its hash member, brace restored */
	size_t body = len - SUFFIX_LEN;
	json_error_t je;
	json_t *root = NULL;
	char *hashed = malloc(body + 1);
	if (!hashed)
		return fail(v, false, 0, "out of memory");
	memcpy(hashed, line, body);
	hashed[body] = '}';
	root = json_loadb(hashed, body + 1, JSON_REJECT_DUPLICATES, &je);
	int rc = -1;
	json_t *jseq = root ? json_object_get(root, "seq") : NULL;
	json_t *jprev = root ? json_object_get(root, "prev") : NULL;
	if (!json_is_object(root)) {
		snprintf(reason, sizeof reason, "bad JSON: %s", root ? "not an object" : je.text);
		fail(v, false, 0, reason);
		goto out;
	}
	if (!json_is_integer(jseq) || json_integer_value(jseq) < 1 || !json_is_string(jprev) ||
	    json_string_length(jprev) != MG_AUDIT_HASH_HEX) {
		fail(v, false, 0, "bad JSON: \"seq\" or \"prev\" missing or malformed");
		goto out;
	}
	uint64_t seq = (uint64_t)json_integer_value(jseq);
	if (v->started && seq != v->next_seq) {
		snprintf(reason, sizeof reason,
		         "seq gap: expected seq %llu, found %llu (a record was removed, inserted "
		         "or moved)",
		         (unsigned long long)v->next_seq, (unsigned long long)seq);
		fail(v, true, seq, reason);
		goto out;
	}
	if (v->started && strcmp(json_string_value(jprev), v->head) != 0) {
		fail(v, true, seq,
		     "prev mismatch: \"prev\" is not the hash of the record before it");
		goto out;
	}
	uint8_t d[MG_SHA256_LEN];
	mg_sha256(hashed, body + 1, d);
	char got[MG_AUDIT_HASH_HEX + 1];
	mg_hex(d, MG_SHA256_LEN, got);
	got[MG_AUDIT_HASH_HEX] = '\0';
	if (memcmp(got, line + len - MG_AUDIT_HASH_HEX - 2, MG_AUDIT_HASH_HEX) != 0) {
		fail(v, true, seq, "hash mismatch: the record was changed after it was written");
		goto out;
	}
	memcpy(v->head, got, sizeof v->head);
	v->next_seq = seq + 1;
	v->started = true;
	v->records++;
	rc = 0;
out:
	json_decref(root);
	free(hashed);
	return rc;
}

int mg_audit_read_head(const char *path, char hash_out[MG_AUDIT_HASH_HEX + 1], uint64_t *seq_out,
                       char *err, size_t err_size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, err_size, "cannot open: %s", strerror(errno));
		return -1;
	}
	int rc = -1;
	char *buf = NULL;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		snprintf(err, err_size, "cannot stat: %s", strerror(errno));
		goto out;
	}
	if (st.st_size == 0) {
		rc = 0;
		goto out;
	}
	size_t want = (size_t)st.st_size < HEAD_WINDOW ? (size_t)st.st_size : HEAD_WINDOW;
	buf = malloc(want);
	if (!buf) {
		snprintf(err, err_size, "out of memory");
		goto out;
	}
	ssize_t r = pread(fd, buf, want, st.st_size - (off_t)want);
	if (r != (ssize_t)want) {
		snprintf(err, err_size, "cannot read the last line");
		goto out;
	}
	if (buf[want - 1] != '\n') {
		snprintf(err, err_size, "the last line is incomplete (no line break)");
		goto out;
	}
	size_t end = want - 1, start = end;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	if (start == 0 && (size_t)st.st_size > want) {
		snprintf(err, err_size, "the last line is longer than 16 MiB");
		goto out;
	}
	struct mg_audit_verifier v;
	mg_audit_verify_init(&v, false);
	if (mg_audit_verify_line(&v, buf + start, end - start) < 0) {
		snprintf(err, err_size, "the last line is not a valid chained record: %s",
		         v.reason);
		goto out;
	}
	memcpy(hash_out, v.head, MG_AUDIT_HASH_HEX + 1);
	*seq_out = v.next_seq - 1;
	rc = 1;
out:
	free(buf);
	close(fd);
	return rc;
}
