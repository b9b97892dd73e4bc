/*
 * test_audit.c - the audit log's pure parts and its writer with a fake
 * collector: the fixed serializer, redaction, the hash chain and its
 * verifier (edited, removed, reordered, truncated lines), reading a
 * chain's head back, the spool's order and bound, export framings, and
 * spool-first delivery through the writer thread.
 */
#include "support.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/internal.h"
#include "config/config.h"
#include "util/clock.h"
#include "util/crypto.h"

#define MG_GENESIS_TEXT "0000000000000000000000000000000000000000000000000000000000000000"

static struct mg_config *load(const char *toml)
{
	struct mg_diag d = { 0 };
	struct mg_config *cfg =
	    mg_config_load_buffer(toml, strlen(toml), "t.toml", MG_CONFIG_TOML, NULL, &d);
	if (!cfg)
		mg_diag_print(&d, stderr);
	mg_diag_free(&d);
	assert_non_null(cfg);
	return cfg;
}

static const char upstream_toml[] = "[upstream]\ncommand = \"true\"\n";

static void test_time_format(void **state)
{
	(void)state;
	char t[28];
	mg_audit_format_time(0, t);
	assert_string_equal(t, "1970-01-01T00:00:00.000000Z");
	mg_audit_format_time(1796398222123456LL, t);
	assert_string_equal(t, "2026-12-04T15:30:22.123456Z");
	mg_audit_format_time(1796398222000007LL, t);
	assert_string_equal(t, "2026-12-04T15:30:22.000007Z");
}

static void test_serialize_order_and_escaping(void **state)
{
	(void)state;
	struct mg_buf b;
	mg_buf_init(&b, 0);
	struct mg_audit_event ev = {
		.type = MG_AUDIT_TOOL_CALL_RESULT,
		.request_id = "r1",
		.identity = "ali\"ce\n",
		.provider = "api_key",
		.client = "127.0.0.1",
		.server = "files",
		.method = "tools/call",
		.tool = "echo",
		.success = 0,
		.message = "bad\x01\xff",
		.duration_ms = 12,
	};
	assert_int_equal(mg_audit_serialize(&ev, 1796398222123456LL, NULL, &b), 0);
	assert_string_equal(
	    b.data,
	    "{\"timestamp\":\"2026-12-04T15:30:22.123456Z\",\"event_type\":\"tool_call_result\","
	    "\"request_id\":\"r1\",\"identity_id\":\"ali\\\"ce\\n\",\"provider\":\"api_key\","
	    "\"client_address\":\"127.0.0.1\",\"server\":\"files\",\"method\":\"tools/call\","
	    "\"tool\":\"echo\",\"success\":false,\"duration_ms\":12,"
	    "\"message\":\"bad\\u0001\\u00ff\"}");
	json_error_t je;
	json_t *j = json_loads(b.data, 0, &je);
	assert_non_null(j);
	json_decref(j);
	/* absent members are left out */
	mg_buf_reset(&b);
	struct mg_audit_event bare = { .type = MG_AUDIT_CONFIG_RELOAD,
		                       .success = -1,
		                       .duration_ms = -1 };
	assert_int_equal(mg_audit_serialize(&bare, 0, NULL, &b), 0);
	assert_string_equal(b.data, "{\"timestamp\":\"1970-01-01T00:00:00.000000Z\","
	                            "\"event_type\":\"config_reload\"}");
	mg_buf_free(&b);
}

/* The members of `ev` as mg_audit_members_into writes them, into a
 * buffer of its own size (so ASan sees any byte past it); retried once
 * with the size it asks for. */
static char *members_of_event(const struct mg_audit_event *ev, size_t first_size, size_t *len)
{
	char *buf = malloc(first_size ? first_size : 1);
	assert_non_null(buf);
	size_t n = mg_audit_members_into(ev, buf, first_size);
	if (n >= first_size) {
		size_t need = n;
		free(buf);
		buf = malloc(need);
		assert_non_null(buf);
		n = mg_audit_members_into(ev, buf, need);
		assert_true(n < need);
	}
	assert_int_equal(buf[n], '\0');
	*len = n;
	return buf;
}

/* Members written once as JSON (mg_audit_members_into) give the same
 * record, byte for byte, as the fields; the fields are then ignored. */
static void test_shared_members(void **state)
{
	(void)state;
	struct mg_audit_event ev = {
		.type = MG_AUDIT_TOOL_CALL_RESULT,
		.request_id = "00ff",
		.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
		.identity = "b\xc3\xa9"
		            "b\x01\xff\"",
		.provider = "jwt",
		.client = "::1",
		.server = "files",
		.method = "tools/call",
		.tool = "read\nfile",
		.success = 1,
		.message = "done \"ok\"",
		.duration_ms = 7,
	};
	struct mg_buf whole, shared;
	mg_buf_init(&whole, 0);
	mg_buf_init(&shared, 0);
	assert_int_equal(mg_audit_serialize(&ev, 1796398222123456LL, NULL, &whole), 0);
	/* the members are the record's text from request_id to tool */
	const char *from = strstr(whole.data, ",\"request_id\"");
	const char *to = strstr(whole.data, ",\"success\"");
	assert_non_null(from);
	assert_non_null(to);
	size_t want = (size_t)(to - from);
	/* every buffer size: it fits (the members and a NUL), or the answer
	 * is a size that does */
	for (size_t size = 0; size < 2 * want + 400; size++) {
		size_t len;
		char *members = members_of_event(&ev, size, &len);
		assert_int_equal(len, want);
		assert_memory_equal(members, from, want);
		struct mg_audit_event lean = { .type = ev.type,
			                       .identity = "ignored",
			                       .success = 1,
			                       .message = ev.message,
			                       .duration_ms = 7,
			                       .members = members,
			                       .members_len = len };
		mg_buf_reset(&shared);
		assert_int_equal(mg_audit_serialize(&lean, 1796398222123456LL, NULL, &shared), 0);
		assert_string_equal(shared.data, whole.data);
		free(members);
	}
	/* no members at all: nothing, and a record without them */
	struct mg_audit_event none = { .type = MG_AUDIT_CONFIG_RELOAD,
		                       .success = -1,
		                       .duration_ms = -1 };
	char buf[8];
	assert_int_equal(mg_audit_members_into(&none, buf, sizeof buf), 0);
	assert_int_equal(buf[0], '\0');
	assert_true(mg_audit_members_into(&none, buf, 0) > 0);
	none.members = buf;
	mg_buf_reset(&shared);
	assert_int_equal(mg_audit_serialize(&none, 0, NULL, &shared), 0);
	assert_string_equal(shared.data, "{\"timestamp\":\"1970-01-01T00:00:00.000000Z\","
	                                 "\"event_type\":\"config_reload\"}");
	mg_buf_free(&whole);
	mg_buf_free(&shared);
}

/* Strings are copied a word at a time while checked: a character to
 * escape at any place of any length, and plain strings of every length,
 * come back intact through a JSON parser. */
static void test_string_words(void **state)
{
	(void)state;
	static const char *const specials[] = { "\"", "\\", "\n", "\x01", "\x7f", "\xc3\xa9" };
	struct mg_buf b, b2;
	mg_buf_init(&b, 0);
	mg_buf_init(&b2, 0);
	char s[64];
	for (size_t sp = 0; sp <= sizeof specials / sizeof *specials; sp++) {
		for (size_t n = 0; n < 40; n++) {
			for (size_t at = 0; at <= n; at++) {
				memset(s, 'x', n);
				s[n] = '\0';
				if (sp < sizeof specials / sizeof *specials) {
					size_t l = strlen(specials[sp]);
					if (at + l > n)
						continue;
					memcpy(s + at, specials[sp], l);
				} else if (at) {
					break; /* plain: one string per length */
				}
				struct mg_audit_event ev = { .type = MG_AUDIT_TOOL_CALL,
					                     .tool = s,
					                     .message = s,
					                     .success = -1,
					                     .duration_ms = -1 };
				mg_buf_reset(&b);
				assert_int_equal(mg_audit_serialize(&ev, 0, NULL, &b), 0);
				/* the members written once, from a string with no byte
				 * readable past its NUL, give the same record */
				char *own = strdup(s);
				assert_non_null(own);
				struct mg_audit_event once = ev;
				once.tool = own;
				size_t ml;
				char *members = members_of_event(&once, 0, &ml);
				once.tool = "ignored";
				once.members = members;
				once.members_len = ml;
				assert_int_equal(mg_audit_serialize(&once, 0, NULL, &b2), 0);
				assert_string_equal(b2.data, b.data);
				mg_buf_reset(&b2);
				free(members);
				free(own);
				json_error_t je;
				json_t *j = json_loads(b.data, 0, &je);
				assert_non_null(j);
				const char *tool = json_string_value(json_object_get(j, "tool"));
				if (n) {
					assert_non_null(tool);
					assert_string_equal(tool, s);
					assert_string_equal(
					    json_string_value(json_object_get(j, "message")), s);
				}
				json_decref(j);
			}
		}
	}
	mg_buf_free(&b);
	mg_buf_free(&b2);
}

static char *redact_with(const char *paths_csv, const char *pattern, const char *json)
{
	char *pv[8] = { 0 }, *rv[2] = { 0 };
	struct mg_strv paths = { .v = pv }, pats = { .v = rv };
	char *copy = strdup(paths_csv);
	for (char *tok = strtok(copy, "|"); tok; tok = strtok(NULL, "|"))
		pv[paths.n++] = tok;
	if (pattern)
		rv[pats.n++] = (char *)pattern;
	char err[256];
	size_t ei;
	bool ep;
	struct mg_audit_redactor *rd =
	    mg_audit_redactor_new(&paths, &pats, true, true, err, sizeof err, &ei, &ep);
	assert_non_null(rd);
	json_t *in = json_loads(json, 0, NULL);
	assert_non_null(in);
	json_t *out = mg_audit_redact(rd, in);
	char *s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(in);
	json_decref(out);
	mg_audit_redactor_free(rd);
	free(copy);
	return s;
}

static void test_redaction(void **state)
{
	(void)state;
	char *s = redact_with("$.password|$.user.token", NULL,
	                      "{\"password\":\"p\",\"user\":{\"token\":\"t\",\"name\":\"n\"}}");
	assert_string_equal(s, "{\"password\":\"[REDACTED]\",\"user\":{\"name\":\"n\","
	                       "\"token\":\"[REDACTED]\"}}");
	free(s);
	s = redact_with("$..secret", NULL,
	                "{\"secret\":1,\"a\":[{\"secret\":{\"x\":2}},{\"b\":{\"secret\":\"s\"}}]}");
	assert_string_equal(s, "{\"a\":[{\"secret\":\"[REDACTED]\"},{\"b\":{\"secret\":"
	                       "\"[REDACTED]\"}}],\"secret\":\"[REDACTED]\"}");
	free(s);
	s = redact_with("$.items[*].key|$.list[1]|$['odd key']", NULL,
	                "{\"items\":[{\"key\":1},{\"key\":2}],\"list\":[0,1,2],\"odd key\":3}");
	assert_string_equal(s, "{\"items\":[{\"key\":\"[REDACTED]\"},{\"key\":\"[REDACTED]\"}],"
	                       "\"list\":[0,\"[REDACTED]\",2],\"odd key\":\"[REDACTED]\"}");
	free(s);
	s = redact_with("", "sk-[A-Za-z0-9]{8,}",
	                "{\"a\":\"use sk-ABCDEFGH12 and sk-ZZZZZZZZZZ\",\"b\":[\"sk-12345678\"],"
	                "\"c\":\"sk-short\"}");
	assert_string_equal(s, "{\"a\":\"use [REDACTED] and [REDACTED]\",\"b\":[\"[REDACTED]\"],"
	                       "\"c\":\"sk-short\"}");
	free(s);
	/* the original is never touched; $ redacts everything */
	s = redact_with("$", NULL, "{\"a\":1}");
	assert_string_equal(s, "\"[REDACTED]\"");
	free(s);
}

static void test_redaction_errors(void **state)
{
	(void)state;
	char *bad_paths[] = { "password", "$.", "$[", "$['x'", "$.a[abc]" };
	for (size_t i = 0; i < sizeof bad_paths / sizeof *bad_paths; i++) {
		struct mg_strv p = { .v = &bad_paths[i], .n = 1 };
		char err[256];
		size_t ei = 99;
		bool ep = false;
		assert_null(mg_audit_redactor_new(&p, NULL, true, true, err, sizeof err, &ei, &ep));
		assert_true(ep);
		assert_int_equal(ei, 0);
	}
	char *bad_re[] = { "a(b" };
	struct mg_strv r = { .v = bad_re, .n = 1 };
	char err[256];
	size_t ei;
	bool ep = true;
	assert_null(mg_audit_redactor_new(NULL, &r, true, true, err, sizeof err, &ei, &ep));
	assert_false(ep);
	assert_non_null(strstr(err, "a(b"));
}

static void test_config_rejects_bad_regex_with_location(void **state)
{
	(void)state;
	const char *toml = "[audit]\nredact_patterns = [\"ok\", \"a(b\"]\nredact_paths = "
	                   "[\"nope\"]\n[upstream]\ncommand = \"true\"\n";
	struct mg_diag d = { 0 };
	struct mg_config *cfg =
	    mg_config_load_buffer(toml, strlen(toml), "t.toml", MG_CONFIG_TOML, NULL, &d);
	assert_null(cfg);
	bool re = false, path = false;
	for (size_t i = 0; i < d.n; i++) {
		if (strstr(d.v[i].msg, "regular expression") && d.v[i].line == 2 &&
		    d.v[i].col == 26)
			re = true;
		if (strstr(d.v[i].msg, "JSON path") && d.v[i].line == 3)
			path = true;
	}
	assert_true(re);
	assert_true(path);
	mg_diag_free(&d);
}

static void test_export_headers_from_env(void **state)
{
	(void)state;
	const char *toml = "[audit]\nexport_url = \"https://siem.example.com/x\"\n"
	                   "export_headers = { X-A = \"1\" }\n"
	                   "export_headers_env = { Authorization = \"HEC_AUTH\" }\n"
	                   "[upstream]\ncommand = \"true\"\n";
	char *envp[] = { "HEC_AUTH=Splunk abc", NULL };
	struct mg_diag d = { 0 };
	struct mg_config *cfg =
	    mg_config_load_buffer(toml, strlen(toml), "t.toml", MG_CONFIG_TOML, envp, &d);
	if (!cfg)
		mg_diag_print(&d, stderr);
	assert_non_null(cfg);
	assert_int_equal(cfg->audit.export_headers.n, 2);
	assert_string_equal(cfg->audit.export_headers.v[1].key, "Authorization");
	assert_string_equal(cfg->audit.export_headers.v[1].value, "Splunk abc");
	mg_config_free(cfg);
	mg_diag_free(&d);
	char *none[] = { NULL };
	cfg = mg_config_load_buffer(toml, strlen(toml), "t.toml", MG_CONFIG_TOML, none, &d);
	assert_null(cfg);
	mg_diag_free(&d);
}

/* A chained log of n records in `lines` (each without '\n'). */
static void make_chain(char lines[][512], size_t n)
{
	char prev[MG_AUDIT_HASH_HEX + 1];
	memcpy(prev, mg_audit_genesis, sizeof prev);
	for (size_t i = 0; i < n; i++) {
		struct mg_buf ev, out;
		mg_buf_init(&ev, 0);
		mg_buf_init(&out, 0);
		struct mg_audit_event e = { .type = MG_AUDIT_TOOL_CALL,
			                    .tool = "echo",
			                    .success = -1,
			                    .duration_ms = (int64_t)i };
		assert_int_equal(mg_audit_serialize(&e, 1796398222000000LL + (int64_t)i, NULL, &ev),
		                 0);
		char hash[MG_AUDIT_HASH_HEX + 1];
		assert_int_equal(mg_audit_chain(ev.data, ev.len, i + 1, prev, &out, hash), 0);
		assert_true(out.len < 512);
		memcpy(lines[i], out.data, out.len + 1);
		memcpy(prev, hash, sizeof prev);
		mg_buf_free(&ev);
		mg_buf_free(&out);
	}
}

static int verify_all(char lines[][512], const size_t *order, size_t n, struct mg_audit_verifier *v)
{
	mg_audit_verify_init(v, true);
	for (size_t i = 0; i < n; i++) {
		const char *l = lines[order ? order[i] : i];
		if (mg_audit_verify_line(v, l, strlen(l)) < 0)
			return (int)i;
	}
	return -1;
}

static void test_chain_and_verify(void **state)
{
	(void)state;
	char lines[5][512];
	make_chain(lines, 5);
	struct mg_audit_verifier v;
	assert_int_equal(verify_all(lines, NULL, 5, &v), -1);
	assert_int_equal(v.records, 5);
	/* the hash covers the line without its hash member, brace restored */
	const char *l = lines[2];
	size_t len = strlen(l);
	char *body = strndup(l, len - 75);
	assert_non_null(strstr(body, ",\"seq\":3,\"prev\":\""));
	free(body);

	/* edited: a changed byte */
	char edited[5][512];
	memcpy(edited, lines, sizeof lines);
	char *p = strstr(edited[2], "\"echo\"");
	p[1] = 'E';
	assert_int_equal(verify_all(edited, NULL, 5, &v), 2);
	assert_non_null(strstr(v.reason, "hash mismatch"));
	assert_int_equal(v.fail_seq, 3);

	/* removed: line 2 missing */
	size_t removed[] = { 0, 2, 3, 4 };
	assert_int_equal(verify_all(lines, removed, 4, &v), 1);
	assert_non_null(strstr(v.reason, "seq gap"));
	assert_int_equal(v.fail_seq, 3);

	/* reordered */
	size_t swapped[] = { 0, 2, 1, 3, 4 };
	assert_int_equal(verify_all(lines, swapped, 5, &v), 1);
	assert_non_null(strstr(v.reason, "seq gap"));

	/* re-hashed after an edit: the next record's prev does not match */
	char forged[5][512];
	memcpy(forged, lines, sizeof lines);
	{
		char *q = strstr(forged[1], "\"echo\"");
		q[1] = 'X';
		size_t fl = strlen(forged[1]);
		struct mg_buf out;
		mg_buf_init(&out, 0);
		char *obj = strndup(forged[1], fl - 75);
		char *seqpos = strstr(obj, ",\"seq\":");
		*seqpos = '\0';
		struct mg_buf o2;
		mg_buf_init(&o2, 0);
		mg_buf_printf(&o2, "%s}", obj);
		char hash[65];
		char prev[65];
		memcpy(prev, strstr(forged[1], "\"prev\":\"") + 8, 64);
		prev[64] = '\0';
		assert_int_equal(mg_audit_chain(o2.data, o2.len, 2, prev, &out, hash), 0);
		memcpy(forged[1], out.data, out.len + 1);
		mg_buf_free(&out);
		mg_buf_free(&o2);
		free(obj);
	}
	assert_int_equal(verify_all(forged, NULL, 5, &v), 2);
	assert_non_null(strstr(v.reason, "prev mismatch"));

	/* garbage and truncation */
	mg_audit_verify_init(&v, true);
	assert_int_equal(mg_audit_verify_line(&v, "{\"a\":1}", 7), -1);
	assert_non_null(strstr(v.reason, "bad JSON"));
	mg_audit_verify_init(&v, true);
	assert_int_equal(mg_audit_verify_line(&v, lines[0], strlen(lines[0]) - 3), -1);
	assert_non_null(strstr(v.reason, "bad JSON"));
	/* starting mid-chain is accepted without from_genesis, refused with it */
	mg_audit_verify_init(&v, false);
	assert_int_equal(mg_audit_verify_line(&v, lines[3], strlen(lines[3])), 0);
	assert_int_equal(mg_audit_verify_line(&v, lines[4], strlen(lines[4])), 0);
	mg_audit_verify_init(&v, true);
	assert_int_equal(mg_audit_verify_line(&v, lines[3], strlen(lines[3])), -1);
}

static void test_read_head(void **state)
{
	(void)state;
	char lines[3][512];
	make_chain(lines, 3);
	char path[] = "/tmp/mg-audit-head-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	char hash[65], err[256];
	uint64_t seq = 0;
	assert_int_equal(mg_audit_read_head(path, hash, &seq, err, sizeof err), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(write(fd, lines[i], strlen(lines[i])), (ssize_t)strlen(lines[i]));
		assert_int_equal(write(fd, "\n", 1), 1);
	}
	assert_int_equal(mg_audit_read_head(path, hash, &seq, err, sizeof err), 1);
	assert_int_equal(seq, 3);
	assert_memory_equal(hash, lines[2] + strlen(lines[2]) - 66, 64);
	assert_int_equal(write(fd, "{\"x\":1}\n", 8), 8);
	assert_int_equal(mg_audit_read_head(path, hash, &seq, err, sizeof err), -1);
	close(fd);
	unlink(path);
}

static void batch_of(struct mg_audit_batch *b, int from, int n)
{
	mg_audit_batch_init(b);
	for (int i = from; i < from + n; i++) {
		char l[64];
		int k = snprintf(l, sizeof l,
		                 "{\"timestamp\":\"2026-12-04T15:30:22.00000%dZ\",\"n\":%d}",
		                 i % 10, i);
		mg_audit_batch_add(b, l, (size_t)k);
	}
}

static void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static void test_spool_order_and_bound(void **state)
{
	(void)state;
	char dir[] = "/tmp/mg-spool-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char err[256];
	struct mg_audit_spool *sp = mg_audit_spool_open(dir, 4096, err, sizeof err);
	assert_non_null(sp);
	struct mg_audit_batch b;
	for (int k = 0; k < 3; k++) {
		batch_of(&b, k * 10, 2);
		assert_int_equal(mg_audit_spool_put(sp, &b, err, sizeof err), 0);
		mg_audit_batch_free(&b);
	}
	assert_int_equal(mg_audit_spool_records(sp), 6);
	/* a batch that does not fit is refused */
	batch_of(&b, 0, 100);
	assert_int_equal(mg_audit_spool_put(sp, &b, err, sizeof err), -1);
	mg_audit_batch_free(&b);
	mg_audit_spool_close(sp);
	/* reopened: same order, oldest first */
	sp = mg_audit_spool_open(dir, 4096, err, sizeof err);
	assert_non_null(sp);
	assert_int_equal(mg_audit_spool_files(sp), 3);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(mg_audit_spool_peek(sp, &b, err, sizeof err), 1);
		char want[32];
		snprintf(want, sizeof want, "\"n\":%d}", k * 10);
		assert_non_null(strstr(b.text.data, want));
		assert_int_equal(b.n, 2);
		mg_audit_batch_free(&b);
		mg_audit_spool_pop(sp);
	}
	assert_int_equal(mg_audit_spool_peek(sp, &b, err, sizeof err), 0);
	/* new numbers continue after the old ones */
	batch_of(&b, 50, 1);
	assert_int_equal(mg_audit_spool_put(sp, &b, err, sizeof err), 0);
	mg_audit_batch_free(&b);
	mg_audit_spool_close(sp);
	rm_dir(dir);
}

static void test_framing(void **state)
{
	(void)state;
	struct mg_config *cfg =
	    load("[audit]\nsplunk_index = \"mcp\"\n[upstream]\ncommand = \"true\"\n");
	struct mg_audit_batch b;
	batch_of(&b, 1, 2);
	struct mg_buf body;
	const char *ct;
	mg_buf_init(&body, 0);
	assert_int_equal(mg_audit_frame(3, &cfg->audit, "h", &b, &body, &ct), 0);
	assert_string_equal(ct, "application/x-ndjson");
	assert_string_equal(
	    body.data,
	    "{\"create\":{}}\n{\"timestamp\":\"2026-12-04T15:30:22.000001Z\",\"n\":1}\n"
	    "{\"create\":{}}\n{\"timestamp\":\"2026-12-04T15:30:22.000002Z\",\"n\":2}\n");
	mg_buf_reset(&body);
	assert_int_equal(mg_audit_frame(1, &cfg->audit, "h", &b, &body, &ct), 0);
	assert_string_equal(ct, "application/json");
	assert_string_equal(body.data, "[{\"timestamp\":\"2026-12-04T15:30:22.000001Z\",\"n\":1},"
	                               "{\"timestamp\":\"2026-12-04T15:30:22.000002Z\",\"n\":2}]");
	mg_buf_reset(&body);
	assert_int_equal(mg_audit_frame(2, &cfg->audit, "h", &b, &body, &ct), 0);
	assert_string_equal(
	    body.data,
	    "{\"time\":1796398222.000001,\"host\":\"h\",\"source\":\"mcp-guard\",\"sourcetype\":"
	    "\"mcp-guard:audit\",\"index\":\"mcp\",\"event\":{\"timestamp\":\"2026-12-04T15:30:22."
	    "000001Z\",\"n\":1}}\n{\"time\":1796398222.000002,\"host\":\"h\",\"source\":"
	    "\"mcp-guard\",\"sourcetype\":\"mcp-guard:audit\",\"index\":\"mcp\",\"event\":{"
	    "\"timestamp\":\"2026-12-04T15:30:22.000002Z\",\"n\":2}}\n");
	mg_buf_reset(&body);
	assert_int_equal(mg_audit_frame(0, &cfg->audit, "h", &b, &body, &ct), 0);
	assert_memory_equal(body.data, b.text.data, b.text.len);
	mg_buf_free(&body);
	mg_audit_batch_free(&b);
	mg_config_free(cfg);
}

/* ---- the writer with a fake collector ------------------------------------------------ */

struct fake {
	_Atomic int up;
	_Atomic int hold;
	pthread_mutex_t mu;
	struct mg_buf got; /* every delivered record, in order */
	int deliveries;
};

static enum mg_sink_result fake_deliver(void *self, const struct mg_audit_batch *b, long *ra,
                                        char *err, size_t err_size)
{
	struct fake *f = self;
	*ra = -1;
	while (f->hold) /* a collector that does not answer yet */
		usleep(1000);
	if (!f->up) {
		snprintf(err, err_size, "HTTP 400 (fake)");
		return MG_SINK_REJECT; /* no retries: the test needs no sleeping */
	}
	pthread_mutex_lock(&f->mu);
	mg_buf_append(&f->got, b->text.data, b->text.len);
	f->deliveries++;
	pthread_mutex_unlock(&f->mu);
	return MG_SINK_OK;
}

static const struct mg_audit_sink_ops fake_ops = { .name = "fake", .deliver = fake_deliver };

/* A writer started on the fake collector, with `audit_lines` after
 * "[audit]\nstdout = false\n". The test frees the writer (mg_audit_free),
 * then the rest with rig_free. */
struct rig {
	struct mg_config *cfg;
	struct fake f;
	struct mg_audit_sink sink;
	struct mg_audit *a;
};

static void rig_start(struct rig *r, const char *audit_lines, int up, int hold)
{
	char toml[1024];
	snprintf(toml, sizeof toml, "[audit]\nstdout = false\n%s%s", audit_lines, upstream_toml);
	r->cfg = load(toml);
	memset(&r->f, 0, sizeof r->f);
	r->f.up = up;
	r->f.hold = hold;
	pthread_mutex_init(&r->f.mu, NULL);
	mg_buf_init(&r->f.got, 0);
	r->sink = (struct mg_audit_sink){ .ops = &fake_ops, .self = &r->f };
	char err[256];
	r->a = mg_audit_start(&r->cfg->audit, &r->sink, err, sizeof err);
	assert_non_null(r->a);
}

static void rig_free(struct rig *r)
{
	mg_buf_free(&r->f.got);
	pthread_mutex_destroy(&r->f.mu);
	mg_config_free(r->cfg);
}

/* The records the fake collector took (one line each). */
static size_t rig_lines(const struct rig *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->f.got.len; i++)
		n += r->f.got.data[i] == '\n';
	return n;
}

static void emit_n(struct mg_audit *a, int from, int n)
{
	for (int i = from; i < from + n; i++) {
		char tool[16];
		snprintf(tool, sizeof tool, "t%d", i);
		struct mg_audit_event ev = {
			.type = MG_AUDIT_TOOL_CALL, .tool = tool, .success = -1, .duration_ms = -1
		};
		mg_audit_emit(a, &ev);
	}
}

static void wait_for(struct mg_audit *a, uint64_t spooled, uint64_t exported)
{
	struct mg_audit_stats st;
	for (int i = 0; i < 20000; i++) {
		mg_audit_stats(a, &st);
		if (st.spooled >= spooled && st.exported >= exported)
			return;
		usleep(1000);
	}
	fail_msg("the writer did not get there: spooled %llu exported %llu",
	         (unsigned long long)st.spooled, (unsigned long long)st.exported);
}

static void test_writer_spool_first(void **state)
{
	(void)state;
	char dir[] = "/tmp/mg-wspool-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char lines[512];
	snprintf(lines, sizeof lines,
	         "hash_chain = true\nexport_batch_size = 2\n"
	         "export_interval_secs = 1\nspool_dir = \"%s\"\n",
	         dir);
	struct rig r;
	rig_start(&r, lines, 0, 0);
	struct mg_audit *a = r.a;
	char err[256];
	emit_n(a, 1, 4); /* two batches, both spooled */
	wait_for(a, 4, 0);
	r.f.up = 1;
	/* the collector is tried again at the next interval: the spool first, in
	 * order, then what came since */
	emit_n(a, 5, 3);
	wait_for(a, 4, 6);
	mg_audit_free(a); /* the last partial batch (t7) goes out at shutdown */
	/* every record once, in order, chained */
	struct mg_audit_verifier v;
	mg_audit_verify_init(&v, true);
	const char *p = r.f.got.data;
	for (int i = 1; i <= 7; i++) {
		const char *nl = strchr(p, '\n');
		assert_non_null(nl);
		char want[32];
		snprintf(want, sizeof want, "\"tool\":\"t%d\"", i);
		assert_non_null(memmem(p, (size_t)(nl - p), want, strlen(want)));
		assert_int_equal(mg_audit_verify_line(&v, p, (size_t)(nl - p)), 0);
		p = nl + 1;
	}
	assert_int_equal(*p, '\0');
	assert_true(r.f.deliveries >= 3 && r.f.deliveries <= 5);
	/* the spool is empty again */
	struct mg_audit_spool *sp = mg_audit_spool_open(dir, 1 << 20, err, sizeof err);
	assert_int_equal(mg_audit_spool_files(sp), 0);
	mg_audit_spool_close(sp);
	rm_dir(dir);
	rig_free(&r);
}

static void test_queue_overflow_drops_and_counts(void **state)
{
	(void)state;
	struct rig r;
	rig_start(&r, "queue_size = 16\n", 1, 0);
	struct mg_audit *a = r.a;
	emit_n(a, 0, 5000);
	struct mg_audit_stats st;
	mg_audit_stats(a, &st);
	assert_int_equal(st.emitted + st.dropped, 5000);
	assert_int_equal(st.queue_size, 16);
	mg_audit_free(a);
	/* whatever was not dropped (and counted) was delivered */
	assert_int_equal(rig_lines(&r), st.emitted);
	rig_free(&r);
}

/* queue_size is what the ring holds: events with realistic members (a
 * UUID subject, an IPv6 client, long tool and server names: some 240
 * bytes packed each) all fit while the writer is stuck, none dropped. */
static void test_queue_holds_queue_size_events(void **state)
{
	(void)state;
	struct rig r;
	rig_start(&r, "queue_size = 3200\n", 1, 1);
	struct mg_audit *a = r.a;
	for (int i = 0; i < 3200; i++) {
		char rid[17];
		snprintf(rid, sizeof rid, "%016x", i);
		struct mg_audit_event ev = {
			.type = MG_AUDIT_TOOL_CALL,
			.request_id = rid,
			.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
			.identity = "0b6f4c2e-8d1a-4f3b-9c7e-5a2d1e0f9b8c",
			.provider = "jwt",
			.client = "2001:db8:85a3::8a2e:370:7334",
			.server = "weather-prod",
			.method = "tools/call",
			.tool = "get_forecast_hourly",
			.success = -1,
			.duration_ms = -1,
		};
		mg_audit_emit(a, &ev);
	}
	struct mg_audit_stats st;
	mg_audit_stats(a, &st);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.emitted, 3200);
	r.f.hold = 0;
	mg_audit_free(a);
	rig_free(&r);
}

static void test_queue_block_policy_is_bounded(void **state)
{
	(void)state;
	struct rig r;
	rig_start(&r,
	          "queue_size = 16\noverflow = \"block\"\n"
	          "block_timeout_ms = 1\nexport_batch_size = 1\n",
	          1, 1);
	struct mg_audit *a = r.a;
	/* the writer is stuck in the collector: the queue fills, each further
	 * event waits at most block_timeout_ms and is then dropped and counted */
	emit_n(a, 0, 100);
	struct mg_audit_stats st;
	mg_audit_stats(a, &st);
	assert_int_equal(st.emitted + st.dropped, 100);
	assert_true(st.dropped >= 100 - 2 * 16); /* one run taken, then stuck */
	r.f.hold = 0;
	mg_audit_free(a);
	assert_int_equal(rig_lines(&r), st.emitted);
	rig_free(&r);
}

/* The ring through many laps: records of every size up to a few KiB and
 * large ones arrive once each, whole and in order, chained; with overflow
 * = "block" and a live collector none is dropped. */
static void ring_laps(int queue_size)
{
	char lines[512];
	snprintf(lines, sizeof lines,
	         "hash_chain = true\nqueue_size = %d\n"
	         "overflow = \"block\"\nblock_timeout_ms = 10000\n",
	         queue_size);
	struct rig r;
	rig_start(&r, lines, 1, 0);
	struct mg_audit *a = r.a;
	enum { N = 3000 };
	static char tool[4100], msg[40000];
	for (int i = 0; i < N; i++) {
		int tl = snprintf(tool, sizeof tool, "t%d-", i);
		memset(tool + tl, 'a' + i % 26, (size_t)(i * 7 % 4000));
		tool[tl + i * 7 % 4000] = '\0';
		bool big = i % 97 == 0; /* past an eighth of the 64 KiB ring */
		memset(msg, 'm', big ? 30000 : 10);
		msg[big ? 30000 : 10] = '\0';
		struct mg_audit_event ev = { .type = MG_AUDIT_TOOL_CALL,
			                     .tool = tool,
			                     .message = msg,
			                     .success = -1,
			                     .duration_ms = i };
		mg_audit_emit(a, &ev);
	}
	struct mg_audit_stats st;
	mg_audit_stats(a, &st);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.emitted, N);
	mg_audit_free(a);
	struct mg_audit_verifier v;
	mg_audit_verify_init(&v, true);
	const char *p = r.f.got.data;
	for (int i = 0; i < N; i++) {
		const char *nl = strchr(p, '\n');
		assert_non_null(nl);
		char want[48];
		snprintf(want, sizeof want, "\"tool\":\"t%d-", i);
		assert_non_null(memmem(p, (size_t)(nl - p), want, strlen(want)));
		snprintf(want, sizeof want, "\"duration_ms\":%d,", i);
		assert_non_null(memmem(p, (size_t)(nl - p), want, strlen(want)));
		assert_true((size_t)(nl - p) > (i % 97 == 0 ? 30000u : (size_t)(i * 7 % 4000)));
		assert_int_equal(mg_audit_verify_line(&v, p, (size_t)(nl - p)), 0);
		p = nl + 1;
	}
	assert_int_equal(*p, '\0');
	rig_free(&r);
}

/* 16 events: a 64 KiB ring, 30 KB records by pointer; 4,000: a 1 MiB
 * ring, every record in it. */
static void test_ring_laps_and_outsized_records(void **state)
{
	(void)state;
	ring_laps(16);
	ring_laps(4000);
}

/* The chained line's exact bytes, against digests computed elsewhere
 * (Python hashlib), with and without a reused digest state. */
static void test_chain_exact_bytes(void **state)
{
	(void)state;
	struct mg_sha256_ctx *sha = mg_sha256_ctx_new();
	assert_non_null(sha);
	for (int round = 0; round < 2; round++) {
		struct mg_sha256_ctx *c = round ? sha : NULL;
		struct mg_buf out;
		mg_buf_init(&out, 0);
		char hash[65];
		assert_int_equal(
		    mg_audit_chain_with(c, "{\"a\":1}", 7, 12, mg_audit_genesis, &out, hash), 0);
		assert_string_equal(
		    hash, "a6613d834ecc1e5c374728932932cded0fcef59ee617d08e64d36548cf091827");
		assert_string_equal(out.data,
		                    "{\"a\":1,\"seq\":12,\"prev\":\"" MG_GENESIS_TEXT
		                    "\",\"hash\":\"a6613d834ecc1e5c374728932932cded0fcef59ee6"
		                    "17d08e64d36548cf091827\"}");
		mg_buf_reset(&out);
		assert_int_equal(mg_audit_chain_with(c, "{}", 2, 1, mg_audit_genesis, &out, hash),
		                 0);
		assert_string_equal(
		    hash, "25cda5ce78ea76c6666ae9fbeb3d90bc68b2787dc33df571c97dcaf2d6468d48");
		assert_int_equal(strncmp(out.data, "{\"seq\":1,\"prev\":\"", 17), 0);
		assert_int_equal(mg_audit_chain_with(c, "[]", 2, 1, mg_audit_genesis, &out, hash),
		                 -1);
		mg_buf_free(&out);
	}
	mg_sha256_ctx_free(sha);
}

/* auth_success: the first of each (identity, provider, client) per interval. */
static void test_auth_success_interval(void **state)
{
	(void)state;
	static struct mg_audit_seen s;
	uint64_t sec = 1000000;
	mg_audit_seen_init(&s, 60 * sec);
	assert_true(mg_audit_seen_due(&s, "alice", "api_key", "10.0.0.1", 100 * sec));
	assert_false(mg_audit_seen_due(&s, "alice", "api_key", "10.0.0.1", 101 * sec));
	assert_false(mg_audit_seen_due(&s, "alice", "api_key", "10.0.0.1", 159 * sec));
	/* another client, provider or identity is recorded */
	assert_true(mg_audit_seen_due(&s, "alice", "api_key", "10.0.0.2", 101 * sec));
	assert_true(mg_audit_seen_due(&s, "alice", "jwt", "10.0.0.1", 101 * sec));
	assert_true(mg_audit_seen_due(&s, "bob", "api_key", "10.0.0.1", 101 * sec));
	/* the strings are separated: "ab"+"c" is not "a"+"bc" */
	assert_true(mg_audit_seen_due(&s, "ab", "c", "x", 101 * sec));
	assert_true(mg_audit_seen_due(&s, "a", "bc", "x", 101 * sec));
	/* every byte counts, in whole words and in a last, partial one */
	assert_true(mg_audit_seen_due(&s, "service-account-ab", "jwt", "::1", 101 * sec));
	assert_true(mg_audit_seen_due(&s, "service-account-ac", "jwt", "::1", 101 * sec));
	assert_true(mg_audit_seen_due(&s, "servicx-account-ab", "jwt", "::1", 101 * sec));
	assert_false(mg_audit_seen_due(&s, "service-account-ab", "jwt", "::1", 102 * sec));
	assert_true(mg_audit_seen_due(&s, "carol", "jwt", "::2", 101 * sec));
	assert_true(mg_audit_seen_due(&s, "carol", "jwt", "::3", 101 * sec));
	assert_false(mg_audit_seen_due(&s, "carol", "jwt", "::2", 102 * sec));
	/* the interval elapsed: recorded again, and the clock restarts there */
	assert_true(mg_audit_seen_due(&s, "alice", "api_key", "10.0.0.1", 160 * sec));
	assert_false(mg_audit_seen_due(&s, "alice", "api_key", "10.0.0.1", 219 * sec));
	/* a clock that went back never suppresses */
	assert_true(mg_audit_seen_due(&s, "alice", "api_key", "10.0.0.1", 10 * sec));
	/* NULL strings are fine */
	assert_true(mg_audit_seen_due(&s, NULL, NULL, NULL, 10 * sec));
	assert_false(mg_audit_seen_due(&s, NULL, NULL, NULL, 11 * sec));
	/* 0: every one */
	mg_audit_seen_init(&s, 0);
	assert_true(mg_audit_seen_due(&s, "alice", "api_key", "10.0.0.1", 100 * sec));
	assert_true(mg_audit_seen_due(&s, "alice", "api_key", "10.0.0.1", 100 * sec));
	/* many identities: bounded memory, never a suppression past the interval */
	mg_audit_seen_init(&s, 60 * sec);
	char id[32];
	for (int i = 0; i < 3 * MG_AUDIT_SEEN_SLOTS; i++) {
		snprintf(id, sizeof id, "user%d", i);
		assert_true(mg_audit_seen_due(&s, id, "api_key", "10.0.0.1", 100 * sec));
	}
	assert_true(mg_audit_seen_due(&s, "user0", "api_key", "10.0.0.1", 161 * sec));
}

/* A fresh directory from `dir` (a mkdtemp template) and "a.jsonl" in it. */
static void scratch_file(char *dir, char path[64])
{
	assert_non_null(mkdtemp(dir));
	snprintf(path, 64, "%s/a.jsonl", dir);
}

/* fsync = "batch" with fsync_interval_ms: a sync at most once per interval,
 * and the sink says when the pending one is due so the writer wakes up. */
static void test_file_sync_interval(void **state)
{
	(void)state;
	char dir[] = "/tmp/mg-fsync-XXXXXX", path[64];
	scratch_file(dir, path);
	char err[300];
	struct mg_audit_sink s;
	assert_int_equal(mg_audit_sink_file(&s, path, 1 /* batch */, 60000, err, sizeof err), 0);
	assert_int_equal(s.ops->due_us(s.self), 0); /* nothing written */
	assert_int_equal(s.ops->write(s.self, "{}\n", 3), 0);
	uint64_t due = s.ops->due_us(s.self);
	assert_true(due > mg_now_us() + 50ull * 1000000);
	s.ops->flush(s.self); /* not yet due: still pending */
	assert_int_equal(s.ops->due_us(s.self), due);
	s.ops->free(s.self); /* synced and closed */

	assert_int_equal(mg_audit_sink_file(&s, path, 1, 0, err, sizeof err), 0);
	assert_int_equal(s.ops->write(s.self, "{}\n", 3), 0);
	assert_true(s.ops->due_us(s.self) <= mg_now_us());
	s.ops->flush(s.self); /* interval 0: synced after every run */
	assert_int_equal(s.ops->due_us(s.self), 0);
	s.ops->free(s.self);

	assert_int_equal(mg_audit_sink_file(&s, path, 0 /* never */, 1000, err, sizeof err), 0);
	assert_int_equal(s.ops->write(s.self, "{}\n", 3), 0);
	assert_int_equal(s.ops->due_us(s.self), 0);
	s.ops->free(s.self);
	FILE *f = fopen(path, "r");
	char buf[64] = "";
	assert_int_equal(fread(buf, 1, sizeof buf - 1, f), 9);
	fclose(f);
	unlink(path);
	rmdir(dir);
}

/* Whether a thread of this process is named `name` (/proc/self/task/N/comm). */
static bool thread_named(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	assert_non_null(d);
	bool found = false;
	for (struct dirent *e; !found && (e = readdir(d));) {
		char path[300], comm[32] = "";
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof comm, f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
		found = strcmp(comm, name) == 0;
	}
	closedir(d);
	return found;
}

/* The writer and the file's syncer carry names (top -H, ps -L, perf), and
 * take them with them when they stop. */
static void test_threads_are_named(void **state)
{
	(void)state;
	struct rig r;
	rig_start(&r, "", 1, 0);
	bool named = false;
	for (int i = 0; i < 200 && !(named = thread_named("mg-audit")); i++)
		usleep(5000); /* the thread names itself as it starts */
	assert_true(named);
	mg_audit_free(r.a);
	rig_free(&r);
	assert_false(thread_named("mg-audit"));

	char dir[] = "/tmp/mg-tname-XXXXXX", path[64];
	scratch_file(dir, path);
	char err[300];
	struct mg_audit_sink s;
	assert_int_equal(mg_audit_sink_file(&s, path, 1 /* batch */, 1000, err, sizeof err), 0);
	for (int i = 0; i < 200 && !(named = thread_named("mg-audit-sync")); i++)
		usleep(5000);
	assert_true(named);
	s.ops->free(s.self);
	assert_false(thread_named("mg-audit-sync"));
	unlink(path);
	rmdir(dir);
}

/* The file sink allocates blocks ahead of the records (fallocate,
 * KEEP_SIZE): the size stays exactly the records', other writers'
 * appends and a copytruncate are respected, and a file that cannot be
 * preallocated (/dev/null) is written all the same. */
static void test_file_allocates_ahead(void **state)
{
	(void)state;
	char dir[] = "/tmp/mg-prealloc-XXXXXX", path[64];
	scratch_file(dir, path);
	/* does this file system allocate ahead at all? */
	int probe = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(probe >= 0);
	bool supported = fallocate(probe, FALLOC_FL_KEEP_SIZE, 0, 1 << 20) == 0;
	close(probe);
	unlink(path);

	char err[300];
	struct mg_audit_sink s;
	assert_int_equal(mg_audit_sink_file(&s, path, 0, 0, err, sizeof err), 0);
	assert_int_equal(s.ops->write(s.self, "{\"a\":1}\n", 8), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 8);
	if (supported)
		assert_true((long long)st.st_blocks * 512 >= 4ll << 20);
	else
		print_message("(fallocate unsupported on /tmp: allocation not checked)\n");
	/* another writer appends; then logrotate's copytruncate */
	int other = open(path, O_WRONLY | O_APPEND);
	assert_int_equal(write(other, "{\"b\":2}\n", 8), 8);
	close(other);
	assert_int_equal(s.ops->write(s.self, "{\"c\":3}\n", 8), 0);
	FILE *f = fopen(path, "r");
	char buf[64] = "";
	assert_int_equal(fread(buf, 1, sizeof buf - 1, f), 24);
	fclose(f);
	assert_string_equal(buf, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(stat(path, &st), 0);
	if (supported)
		assert_true(st.st_blocks == 0); /* the blocks ahead went with it */
	assert_int_equal(s.ops->write(s.self, "{\"d\":4}\n", 8), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 8);
	s.ops->free(s.self);
	unlink(path);
	rmdir(dir);

	assert_int_equal(mg_audit_sink_file(&s, "/dev/null", 0, 0, err, sizeof err), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(s.ops->write(s.self, "{}\n", 3), 0);
	s.ops->free(s.self);
}

/* Pages of `path` in [from, to) that are in the page cache. */
static size_t resident_pages(const char *path, size_t from, size_t to)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	void *map = mmap(NULL, to, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	size_t pages = (to + 4095) / 4096, n = 0;
	unsigned char *vec = malloc(pages);
	assert_int_equal(mincore(map, to, vec), 0);
	for (size_t i = from / 4096; i < pages; i++)
		n += vec[i] & 1;
	free(vec);
	munmap(map, to);
	close(fd);
	return n;
}

/* Drop-behind: once synced, what the previous sync made clean leaves the
 * page cache; the last stretch (a follower's lag) stays. */
static void test_file_drops_behind(void **state)
{
	(void)state;
	char dir[] = "/tmp/mg-drop-XXXXXX", path[64];
	scratch_file(dir, path);
	struct statfs fs;
	assert_int_equal(statfs(dir, &fs), 0);
	if (fs.f_type == 0x01021994) { /* TMPFS_MAGIC: its pages are the file */
		print_message("(/tmp is a tmpfs: drop-behind not checked)\n");
		rmdir(dir);
		return;
	}
	static char chunk[64 << 10];
	memset(chunk, 'x', sizeof chunk - 1);
	chunk[sizeof chunk - 1] = '\n';
	char err[300];
	struct mg_audit_sink s;

	/* always: a sync per write, so exactly: after 4 MiB, 3 MiB dropped */
	assert_int_equal(mg_audit_sink_file(&s, path, 2 /* always */, 0, err, sizeof err), 0);
	for (int i = 0; i < 64; i++)
		assert_int_equal(s.ops->write(s.self, chunk, sizeof chunk), 0);
	s.ops->free(s.self);
	assert_int_equal(resident_pages(path, 0, 3u << 20), 0);
	assert_true(resident_pages(path, 3u << 20, 4u << 20) > 0);

	/* batch: the syncer drops; a run per MiB, each given time to sync */
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(mg_audit_sink_file(&s, path, 1 /* batch */, 0, err, sizeof err), 0);
	for (int mib = 0; mib < 4; mib++) {
		for (int i = 0; i < 16; i++)
			assert_int_equal(s.ops->write(s.self, chunk, sizeof chunk), 0);
		s.ops->flush(s.self);
		usleep(200 * 1000);
	}
	s.ops->free(s.self);
	assert_int_equal(resident_pages(path, 0, 1u << 20), 0);
	assert_true(resident_pages(path, 3u << 20, 4u << 20) > 0);

	/* never: the kernel decides; nothing is dropped */
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(mg_audit_sink_file(&s, path, 0 /* never */, 0, err, sizeof err), 0);
	for (int i = 0; i < 32; i++)
		assert_int_equal(s.ops->write(s.self, chunk, sizeof chunk), 0);
	s.ops->free(s.self);
	assert_true(resident_pages(path, 0, 1u << 20) > 0);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_format),
		cmocka_unit_test(test_serialize_order_and_escaping),
		cmocka_unit_test(test_shared_members),
		cmocka_unit_test(test_redaction),
		cmocka_unit_test(test_redaction_errors),
		cmocka_unit_test(test_config_rejects_bad_regex_with_location),
		cmocka_unit_test(test_export_headers_from_env),
		cmocka_unit_test(test_chain_and_verify),
		cmocka_unit_test(test_chain_exact_bytes),
		cmocka_unit_test(test_auth_success_interval),
		cmocka_unit_test(test_file_sync_interval),
		cmocka_unit_test(test_file_allocates_ahead),
		cmocka_unit_test(test_file_drops_behind),
		cmocka_unit_test(test_threads_are_named),
		cmocka_unit_test(test_read_head),
		cmocka_unit_test(test_spool_order_and_bound),
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_writer_spool_first),
		cmocka_unit_test(test_queue_overflow_drops_and_counts),
		cmocka_unit_test(test_ring_laps_and_outsized_records),
		cmocka_unit_test(test_string_words),
		cmocka_unit_test(test_queue_block_policy_is_bounded),
		cmocka_unit_test(test_queue_holds_queue_size_events),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
