/*
 * test_yaml.c - unit tests for the YAML configuration loader (config/yaml.c).
 *
 * Each test parses an inline document and checks the tree (types, values,
 * locations) or the exact located error.
 */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/yaml.h"

#define CDOC_PARSE    mg_yaml_parse
#define CDOC_OK_FILE  "test.yaml"
#define CDOC_BAD_FILE "bad.yaml"
#include "support_cdoc.h"

static struct mg_cnode *item(struct mg_cnode *array, size_t i)
{
	assert_int_equal(array->type, MG_CNODE_ARRAY);
	struct mg_cnode *n = array->first;
	while (n && i--)
		n = n->next;
	assert_non_null(n);
	return n;
}

static void assert_str(const struct mg_cnode *n, const char *s)
{
	assert_int_equal(n->type, MG_CNODE_STRING);
	assert_int_equal(n->len, strlen(s));
	assert_string_equal(n->str, s);
}

static void assert_int(const struct mg_cnode *n, int64_t v)
{
	assert_int_equal(n->type, MG_CNODE_INTEGER);
	assert_true(n->i == v);
}

static void test_config_document(void **state)
{
	(void)state;
	struct mg_cdoc *doc = parse_ok("# mcp-guard\n"
	                               "server:\n"
	                               "  listen: \"0.0.0.0:8080\"\n"
	                               "  tls:\n"
	                               "    enabled: false\n"
	                               "    cert: /etc/cert.pem\n"
	                               "auth:\n"
	                               "  api_keys:\n"
	                               "    - id: a\n"
	                               "      key_hash: b\n"
	                               "    - {id: c, key_hash: d}\n"
	                               "upstreams:\n"
	                               "  - name: everything\n"
	                               "    command: [npx, -y, server-everything]\n"
	                               "    timeout: 30\n");
	struct mg_cnode *root = mg_cdoc_root(doc);
	assert_int_equal(root->type, MG_CNODE_TABLE);
	assert_int_equal(root->count, 3);
	assert_string_equal(root->first->key, "server");
	assert_string_equal(root->last->key, "upstreams");

	struct mg_cnode *server = get(doc, root, "server");
	assert_int_equal(server->type, MG_CNODE_TABLE);
	assert_str(get(doc, server, "listen"), "0.0.0.0:8080");
	struct mg_cnode *tls = get(doc, server, "tls");
	assert_int_equal(get(doc, tls, "enabled")->type, MG_CNODE_BOOL);
	assert_false(get(doc, tls, "enabled")->b);
	assert_str(get(doc, tls, "cert"), "/etc/cert.pem");

	struct mg_cnode *keys = get(doc, get(doc, root, "auth"), "api_keys");
	assert_int_equal(keys->type, MG_CNODE_ARRAY);
	assert_int_equal(keys->count, 2);
	assert_int_equal(item(keys, 0)->type, MG_CNODE_TABLE);
	assert_str(get(doc, item(keys, 0), "id"), "a");
	assert_str(get(doc, item(keys, 0), "key_hash"), "b");
	assert_str(get(doc, item(keys, 1), "id"), "c");
	assert_str(get(doc, item(keys, 1), "key_hash"), "d");
	assert_ptr_equal(item(keys, 1)->parent, keys);

	struct mg_cnode *up = item(get(doc, root, "upstreams"), 0);
	struct mg_cnode *cmd = get(doc, up, "command");
	assert_int_equal(cmd->count, 3);
	assert_str(item(cmd, 0), "npx");
	assert_str(item(cmd, 1), "-y");
	assert_str(item(cmd, 2), "server-everything");
	assert_int(get(doc, up, "timeout"), 30);
	mg_cdoc_free(doc);
}

static void test_scalar_typing(void **state)
{
	(void)state;
	struct mg_cdoc *doc =
	    parse_ok("yes: yes\n"
	             "no: no\n"
	             "on: on\n"
	             "off: Off\n"
	             "t1: true\nt2: True\nt3: TRUE\nf1: false\nf2: False\nf3: FALSE\n"
	             "tmixed: tRUE\n"
	             "n1: ~\nn2: null\nn3: Null\nn4: NULL\nn5:\nnmixed: nULL\n"
	             "hex: 0x1F\noct: 0o17\ndec: -42\npos: +7\nzero: 0\nlead: 0644\n"
	             "min: -9223372036854775808\nmax: 9223372036854775807\n"
	             "under: 1_000\n"
	             "exp: 1e3\nfl: 1.5\ndot: .5\ntrail: 1.\nneg: -2.5e-3\n"
	             "inf: .inf\nninf: -.Inf\npinf: +.INF\nnan: .NaN\n"
	             "q1: \"123\"\nq2: 'true'\nq3: \"\"\nq4: '~'\n"
	             "lit: |\n  line1\n  line2\n"
	             "fold: >\n  a\n  b\n"
	             "plain: hello world\n"
	             "url: http://x:1/y\n"
	             "ver: 1.2.3\n"
	             "hexsign: -0x1F\n");
	struct mg_cnode *r = mg_cdoc_root(doc);
	assert_str(get(doc, r, "yes"), "yes");
	assert_str(get(doc, r, "no"), "no");
	assert_str(get(doc, r, "on"), "on");
	assert_str(get(doc, r, "off"), "Off");
	const char *trues[] = { "t1", "t2", "t3" }, *falses[] = { "f1", "f2", "f3" };
	for (int i = 0; i < 3; i++) {
		assert_int_equal(get(doc, r, trues[i])->type, MG_CNODE_BOOL);
		assert_true(get(doc, r, trues[i])->b);
		assert_int_equal(get(doc, r, falses[i])->type, MG_CNODE_BOOL);
		assert_false(get(doc, r, falses[i])->b);
	}
	assert_str(get(doc, r, "tmixed"), "tRUE");
	const char *nulls[] = { "n1", "n2", "n3", "n4", "n5" };
	for (int i = 0; i < 5; i++)
		assert_int_equal(get(doc, r, nulls[i])->type, MG_CNODE_NULL);
	assert_str(get(doc, r, "nmixed"), "nULL");
	assert_int(get(doc, r, "hex"), 31);
	assert_int(get(doc, r, "oct"), 15);
	assert_int(get(doc, r, "dec"), -42);
	assert_int(get(doc, r, "pos"), 7);
	assert_int(get(doc, r, "zero"), 0);
	assert_int(get(doc, r, "lead"), 644);
	assert_int(get(doc, r, "min"), INT64_MIN);
	assert_int(get(doc, r, "max"), INT64_MAX);
	assert_str(get(doc, r, "under"), "1_000");

	struct {
		const char *key;
		double v;
	} floats[] = { { "exp", 1000.0 },
		       { "fl", 1.5 },
		       { "dot", 0.5 },
		       { "trail", 1.0 },
		       { "neg", -2.5e-3 } };
	for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
		struct mg_cnode *n = get(doc, r, floats[i].key);
		assert_int_equal(n->type, MG_CNODE_FLOAT);
		assert_true(n->f == floats[i].v);
	}
	assert_int_equal(get(doc, r, "inf")->type, MG_CNODE_FLOAT);
	assert_true(isinf(get(doc, r, "inf")->f) && get(doc, r, "inf")->f > 0);
	assert_true(isinf(get(doc, r, "ninf")->f) && get(doc, r, "ninf")->f < 0);
	assert_true(isinf(get(doc, r, "pinf")->f) && get(doc, r, "pinf")->f > 0);
	assert_true(isnan(get(doc, r, "nan")->f));

	assert_str(get(doc, r, "q1"), "123");
	assert_str(get(doc, r, "q2"), "true");
	assert_str(get(doc, r, "q3"), "");
	assert_str(get(doc, r, "q4"), "~");
	assert_str(get(doc, r, "lit"), "line1\nline2\n");
	assert_str(get(doc, r, "fold"), "a b\n");
	assert_str(get(doc, r, "plain"), "hello world");
	assert_str(get(doc, r, "url"), "http://x:1/y");
	assert_str(get(doc, r, "ver"), "1.2.3");
	assert_str(get(doc, r, "hexsign"), "-0x1F");
	mg_cdoc_free(doc);
}

static void test_tags(void **state)
{
	(void)state;
	struct mg_cdoc *doc = parse_ok("s: !!str 123\n"
	                               "sb: !!str true\n"
	                               "i: !!int \"42\"\n"
	                               "ih: !!int 0x10\n"
	                               "f: !!float 3\n"
	                               "fq: !!float '2.5'\n"
	                               "b: !!bool \"false\"\n"
	                               "n: !!null ''\n"
	                               "v: !<tag:yaml.org,2002:int> 7\n"
	                               "!!str k: v\n");
	struct mg_cnode *r = mg_cdoc_root(doc);
	assert_str(get(doc, r, "s"), "123");
	assert_str(get(doc, r, "sb"), "true");
	assert_int(get(doc, r, "i"), 42);
	assert_int(get(doc, r, "ih"), 16);
	assert_int_equal(get(doc, r, "f")->type, MG_CNODE_FLOAT);
	assert_true(get(doc, r, "f")->f == 3.0);
	assert_true(get(doc, r, "fq")->f == 2.5);
	assert_int_equal(get(doc, r, "b")->type, MG_CNODE_BOOL);
	assert_false(get(doc, r, "b")->b);
	assert_int_equal(get(doc, r, "n")->type, MG_CNODE_NULL);
	assert_int(get(doc, r, "v"), 7);
	assert_str(get(doc, r, "k"), "v");
	mg_cdoc_free(doc);

	expect_error("a: !!int 1.5\n", 1, 4, "value of \"a\": \"1.5\" is not a valid !!int value");
	expect_error("!!int k: 1\n", 1, 1, "mapping key: \"k\" is not a valid !!int value");
	expect_error("a: !!bool yes\n", 1, 4, "\"yes\" is not a valid !!bool value");
	expect_error("a: !!null 0\n", 1, 4, "\"0\" is not a valid !!null value");
	expect_error("a: !!float x\n", 1, 4, "\"x\" is not a valid !!float value");
	expect_error("a: !!int 99999999999999999999\n", 1, 4, "out of range");
}

static void test_locations(void **state)
{
	(void)state;
	struct mg_cdoc *doc = parse_ok("server:\n"
	                               "  port: 8080\n"
	                               "  hosts: [a, \"b\"]\n"
	                               "\xc3\xa9t\xc3\xa9: \xc3\xa9 x\n"
	                               "empty:\n"
	                               "list:\n"
	                               "  - k: v\n");
	struct mg_cnode *r = mg_cdoc_root(doc);
	assert_int_equal(r->loc.line, 1);
	assert_int_equal(r->loc.col, 1);
	struct mg_cnode *server = get(doc, r, "server");
	assert_string_equal(server->key_loc.file, "test.yaml");
	assert_string_equal(server->loc.file, "test.yaml");
	assert_int_equal(server->key_loc.line, 1);
	assert_int_equal(server->key_loc.col, 1);
	assert_int_equal(server->loc.line, 2);
	assert_int_equal(server->loc.col, 3);

	struct mg_cnode *port = get(doc, server, "port");
	assert_int_equal(port->key_loc.line, 2);
	assert_int_equal(port->key_loc.col, 3);
	assert_int_equal(port->loc.line, 2);
	assert_int_equal(port->loc.col, 9);

	struct mg_cnode *hosts = get(doc, server, "hosts");
	assert_int_equal(hosts->loc.line, 3);
	assert_int_equal(hosts->loc.col, 10);
	assert_int_equal(item(hosts, 0)->loc.col, 11);
	assert_int_equal(item(hosts, 1)->loc.col, 14);

	/* Columns count bytes: "été" is 5 bytes. */
	struct mg_cnode *ete = get(doc, r, "\xc3\xa9t\xc3\xa9");
	assert_int_equal(ete->key_loc.line, 4);
	assert_int_equal(ete->key_loc.col, 1);
	assert_int_equal(ete->loc.col, 8);
	assert_str(ete, "\xc3\xa9 x");

	/* An empty value sits right after its colon. */
	struct mg_cnode *empty = get(doc, r, "empty");
	assert_int_equal(empty->type, MG_CNODE_NULL);
	assert_int_equal(empty->loc.line, 5);
	assert_int_equal(empty->loc.col, 7);

	struct mg_cnode *k = get(doc, item(get(doc, r, "list"), 0), "k");
	assert_int_equal(k->key_loc.line, 7);
	assert_int_equal(k->key_loc.col, 5);
	assert_int_equal(k->loc.col, 8);
	mg_cdoc_free(doc);

	/* A UTF-8 BOM does not shift columns; CRLF counts as one line break. */
	doc = parse_ok("\xef\xbb\xbf"
	               "a: 1\r\nb: 2\r\n");
	r = mg_cdoc_root(doc);
	assert_int_equal(get(doc, r, "a")->key_loc.col, 1);
	assert_int_equal(get(doc, r, "b")->key_loc.line, 2);
	assert_int_equal(get(doc, r, "b")->loc.col, 4);
	mg_cdoc_free(doc);
}

static void test_empty_documents(void **state)
{
	(void)state;
	const char *inputs[] = { "", "# only a comment\n", "---\n", "--- # c\n...\n", "\n\n  \n" };
	for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
		struct mg_cdoc *doc = parse_ok(inputs[i]);
		assert_int_equal(mg_cdoc_root(doc)->type, MG_CNODE_TABLE);
		assert_int_equal(mg_cdoc_root(doc)->count, 0);
		mg_cdoc_free(doc);
	}
	struct mg_cerror err;
	struct mg_cdoc *doc = mg_yaml_parse(NULL, 0, NULL, &err);
	assert_non_null(doc);
	assert_int_equal(mg_cdoc_root(doc)->count, 0);
	mg_cdoc_free(doc);
}

static void test_accepted_oddities(void **state)
{
	(void)state;
	/* Anchors without aliases are ignored; a quoted "<<" is an ordinary
	 * key; keys are kept as written; an explicit document is fine. */
	struct mg_cdoc *doc = parse_ok("%YAML 1.2\n"
	                               "---\n"
	                               "base: &b {x: 1}\n"
	                               "\"<<\": 2\n"
	                               "1: one\n"
	                               "? complex\n"
	                               ": value\n"
	                               "nul: \"a\\0b\"\n"
	                               "...\n");
	struct mg_cnode *r = mg_cdoc_root(doc);
	assert_int(get(doc, get(doc, r, "base"), "x"), 1);
	assert_int(get(doc, r, "<<"), 2);
	assert_str(get(doc, r, "1"), "one");
	assert_str(get(doc, r, "complex"), "value");
	struct mg_cnode *nul = get(doc, r, "nul");
	assert_int_equal(nul->len, 3);
	assert_memory_equal(nul->str, "a\0b", 3);
	mg_cdoc_free(doc);
}

static void test_duplicate_key(void **state)
{
	(void)state;
	expect_error("server:\n"
	             "  host: a\n"
	             "  port: 1\n"
	             "  port: 2\n",
	             4, 3, "duplicate key \"port\" (first at line 3, column 3)");
	expect_error("a: {x: 1, x: 2}\n", 1, 11, "duplicate key \"x\" (first at line 1, column 5)");
	/* The same key in different tables is fine. */
	struct mg_cdoc *doc = parse_ok("a: {x: 1}\nb: {x: 2}\nc: [{x: 1}, {x: 2}]\n");
	mg_cdoc_free(doc);
}

static void test_alias(void **state)
{
	(void)state;
	expect_error("a: &base 1\nb: *base\n", 2, 4,
	             "aliases (*name) are not supported in configuration files (found *base)");
	expect_error("a: [*x]\n", 1, 5, "aliases (*name) are not supported");
	/* Billion laughs stops at the first alias. */
	expect_error("a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\n", 2, 8, "aliases");
}

static void test_merge_key(void **state)
{
	(void)state;
	expect_error("base: &b {x: 1}\nderived:\n  <<: *b\n", 3, 3,
	             "merge keys (<<) are not supported");
	expect_error("a: {<<: {x: 1}}\n", 1, 5, "merge keys (<<) are not supported");
}

static void test_unknown_tag(void **state)
{
	(void)state;
	expect_error("a: !custom 1\n", 1, 4, "tag !custom is not supported");
	expect_error("a: !!binary aGk=\n", 1, 4, "tag !!binary is not supported");
	expect_error("a: ! x\n", 1, 4, "tag ! is not supported");
	expect_error("a: !!map {x: 1}\n", 1, 4, "tag !!map is not supported");
	expect_error("a: !!seq [1]\n", 1, 4, "tag !!seq is not supported");
	expect_error("!!python/object:os.system x: 1\n", 1, 1,
	             "tag !!python/object:os.system is not supported");
}

static void test_non_scalar_key(void **state)
{
	(void)state;
	expect_error("? [a, b]\n: 1\n", 1, 3, "mapping keys must be scalars, found a sequence");
	expect_error("{x: 1}: 2\n", 1, 1, "mapping keys must be scalars, found a mapping");
	expect_error("a: {[1]: 2}\n", 1, 5, "mapping keys must be scalars, found a sequence");
}

static void test_two_documents(void **state)
{
	(void)state;
	expect_error("a: 1\n---\nb: 2\n", 2, 1, "a second document is not allowed");
	expect_error("---\na: 1\n---\n", 3, 1, "a second document is not allowed");
}

static void test_root_not_mapping(void **state)
{
	(void)state;
	expect_error("- a\n- b\n", 1, 1, "must be a mapping (key: value lines), found a sequence");
	expect_error("hello\n", 1, 1,
	             "must be a mapping (key: value lines), found the scalar \"hello\"");
	expect_error("--- 42\n", 1, 5, "found the scalar \"42\"");
	expect_error("--- ~\n", 1, 5, "found the scalar \"~\"");
	expect_error("[a]\n", 1, 1, "found a sequence");
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	expect_error("a: ok\nb: \xff\n", 2, 4, "invalid UTF-8: byte 0xFF cannot start a character");
	expect_error("a: \"x\xc3\"\n", 1, 6,
	             "invalid UTF-8: byte 0xC3 starts a truncated sequence");
	expect_error("a: \xc0\xaf\n", 1, 4, "invalid UTF-8");
	expect_error("a: \xe0\x80\xaf\n", 1, 4, "overlong");
	expect_error("a: \xed\xa0\x80\n", 1, 4, "U+D800");
	expect_error("a: \xf4\x90\x80\x80\n", 1, 4, "invalid UTF-8");
	expect_error("\xef\xbb\xbf"
	             "a: \x80\n",
	             1, 4, "invalid UTF-8");
	expect_error("\xff\xfe"
	             "a\0:\0",
	             1, 1, "invalid UTF-8");
	expect_error("a: \x01\n", 1, 4, "control character U+0001 is not allowed");
	expect_error("a: \xc2\x80\n", 1, 4, "control character U+0080 is not allowed");
	expect_error("a: \"\\ud800\"\n", 1, 7,
	             "syntax error: found invalid Unicode character escape");
}

static void test_nul_byte(void **state)
{
	(void)state;
	static const char text[] = "a: 1\nbc: x\0y\n";
	expect_error_n(text, sizeof text - 1, 2, 6, "NUL byte");
	expect_error_n("\0", 1, 1, 1, "NUL byte");
}

static void test_too_deep(void **state)
{
	(void)state;
	/* The root plus MG_CDOC_MAX_DEPTH nested levels are allowed. */
	char buf[512];
	size_t n = 0;
	n += (size_t)snprintf(buf + n, sizeof buf - n, "a: ");
	for (int i = 0; i < MG_CDOC_MAX_DEPTH; i++)
		buf[n++] = '[';
	for (int i = 0; i < MG_CDOC_MAX_DEPTH; i++)
		buf[n++] = ']';
	buf[n++] = '\n';
	buf[n] = '\0';
	struct mg_cdoc *doc = parse_ok(buf);
	mg_cdoc_free(doc);

	n = (size_t)snprintf(buf, sizeof buf, "a: ");
	for (int i = 0; i <= MG_CDOC_MAX_DEPTH; i++)
		buf[n++] = '[';
	buf[n] = '\0';
	expect_error(buf, 1, 4 + MG_CDOC_MAX_DEPTH, "nesting is too deep");

	/* Block style too, and a very deep input stops early. */
	size_t big = 1000000;
	char *deep = malloc(big * 4 + 1);
	assert_non_null(deep);
	for (size_t i = 0; i < big; i++)
		memcpy(deep + i * 4, "{a: ", 4);
	deep[big * 4] = '\0';
	expect_error(deep, 1, 1 + 4 * (MG_CDOC_MAX_DEPTH + 1), "nesting is too deep");
	free(deep);
}

static void test_too_big(void **state)
{
	(void)state;
	size_t len = MG_CDOC_MAX_BYTES + 1;
	char *text = malloc(len);
	assert_non_null(text);
	memset(text, '#', len);
	expect_error_n(text, len, 1, 1, "input is too large");
	/* Exactly at the limit is fine. */
	text[MG_CDOC_MAX_BYTES - 1] = '\n';
	struct mg_cerror err;
	struct mg_cdoc *doc = mg_yaml_parse(text, MG_CDOC_MAX_BYTES, "big.yaml", &err);
	assert_non_null(doc);
	mg_cdoc_free(doc);
	free(text);
}

static void test_too_many_values(void **state)
{
	(void)state;
	size_t count = MG_CDOC_MAX_NODES + 10, len = 4 + count * 2 + 2;
	char *text = malloc(len + 1);
	assert_non_null(text);
	memcpy(text, "a: [", 4);
	for (size_t i = 0; i < count; i++)
		memcpy(text + 4 + i * 2, "1,", 2);
	memcpy(text + len - 2, "]\n", 2);
	text[len] = '\0';
	struct mg_cerror err;
	assert_null(mg_yaml_parse(text, len, "many.yaml", &err));
	assert_non_null(strstr(err.msg, "too many values"));
	free(text);
}

static void test_integer_overflow(void **state)
{
	(void)state;
	expect_error("port: 9223372036854775808\n", 1, 7,
	             "value of \"port\": integer \"9223372036854775808\" is out of range");
	expect_error("a: -9223372036854775809\n", 1, 4, "out of range");
	expect_error("a: 0x8000000000000000\n", 1, 4, "out of range");
	expect_error("a: 0o1000000000000000000000\n", 1, 4, "out of range");
	expect_error("a: [1, 123456789012345678901234567890]\n", 1, 8, "out of range");
	expect_error("a: 1e400\n", 1, 4, "float \"1e400\" is out of range");
}

static void test_syntax_errors(void **state)
{
	(void)state;
	expect_error("a: [1, 2\n", 2, 1,
	             "syntax error: did not find expected ',' or ']' (while parsing a flow "
	             "sequence at line 1, column 4)");
	expect_error("a:\n\tb: 1\n", 2, 1,
	             "syntax error: tab character; YAML indentation uses spaces");
	expect_error("a: b: c\n", 1, 5, "syntax error: mapping values are not allowed");
	expect_error("a: \"open\n", 2, 1, "syntax error: found unexpected end of stream");
	expect_error("\xc3\xa9\xc3\xa9: [1, 2}\n", 1, 12, "syntax error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_document),
		cmocka_unit_test(test_scalar_typing),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_locations),
		cmocka_unit_test(test_empty_documents),
		cmocka_unit_test(test_accepted_oddities),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_alias),
		cmocka_unit_test(test_merge_key),
		cmocka_unit_test(test_unknown_tag),
		cmocka_unit_test(test_non_scalar_key),
		cmocka_unit_test(test_two_documents),
		cmocka_unit_test(test_root_not_mapping),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_too_deep),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_too_many_values),
		cmocka_unit_test(test_integer_overflow),
		cmocka_unit_test(test_syntax_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
