/*
 * test_toml.c - unit tests for the TOML parser (config/toml.c).
 *
 * Each test parses an inline document and checks the tree (types, values,
 * locations of values and keys) or the exact located error. The toml-test
 * corpus (make toml-test) covers the grammar; these cover what it does not:
 * locations, messages, limits, CRLF and error precedence.
 */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"

#define CDOC_PARSE    mg_toml_parse
#define CDOC_OK_FILE  "test.toml"
#define CDOC_BAD_FILE "bad.toml"
#include "support_cdoc.h"

static void assert_at(const struct mg_cloc *loc, uint32_t line, uint32_t col)
{
	if (loc->line != line || loc->col != col)
		fail_msg("located at %u:%u, expected %u:%u", loc->line, loc->col, line, col);
}

static const char *config_doc = "# mcp-guard\n"
                                "title = \"gateway\"\n"
                                "\n"
                                "[server]\n"
                                "host = '127.0.0.1'\n"
                                "port = 8080  # comment\n"
                                "tls.enabled = false\n"
                                "ratio = 0.5\n"
                                "\n"
                                "[[upstream]]\n"
                                "name = \"files\"\n"
                                "args = [\n"
                                "  \"--root\", # first\n"
                                "  \"/srv\",\n"
                                "]\n"
                                "env = { HOME = \"/tmp\", DEBUG = \"1\" }\n"
                                "\n"
                                "[[upstream]]\n"
                                "name = \"web\"\n"
                                "started = 1979-05-27 07:32:00.5z\n";

static void test_config_document(void **state)
{
	(void)state;
	struct mg_cdoc *doc = parse_ok(config_doc);
	struct mg_cnode *root = mg_cdoc_root(doc);
	assert_int_equal(root->count, 3);

	struct mg_cnode *title = get(doc, root, "title");
	assert_int_equal(title->type, MG_CNODE_STRING);
	assert_string_equal(title->str, "gateway");
	assert_at(&title->key_loc, 2, 1);
	assert_at(&title->loc, 2, 9);
	assert_string_equal(title->loc.file, "test.toml");

	struct mg_cnode *server = get(doc, root, "server");
	assert_int_equal(server->type, MG_CNODE_TABLE);
	assert_at(&server->key_loc, 4, 2);
	struct mg_cnode *host = get(doc, server, "host");
	assert_string_equal(host->str, "127.0.0.1");
	assert_at(&host->loc, 5, 8);
	struct mg_cnode *port = get(doc, server, "port");
	assert_int_equal(port->type, MG_CNODE_INTEGER);
	assert_int_equal(port->i, 8080);
	assert_at(&port->key_loc, 6, 1);
	assert_at(&port->loc, 6, 8);
	struct mg_cnode *tls = get(doc, server, "tls");
	assert_int_equal(tls->type, MG_CNODE_TABLE);
	assert_at(&tls->key_loc, 7, 1);
	struct mg_cnode *enabled = get(doc, tls, "enabled");
	assert_int_equal(enabled->type, MG_CNODE_BOOL);
	assert_false(enabled->b);
	assert_at(&enabled->key_loc, 7, 5);
	assert_at(&enabled->loc, 7, 15);
	struct mg_cnode *ratio = get(doc, server, "ratio");
	assert_int_equal(ratio->type, MG_CNODE_FLOAT);
	assert_true(ratio->f == 0.5);

	struct mg_cnode *up = get(doc, root, "upstream");
	assert_int_equal(up->type, MG_CNODE_ARRAY);
	assert_int_equal(up->count, 2);
	assert_at(&up->key_loc, 10, 3);
	struct mg_cnode *first = up->first;
	assert_int_equal(first->type, MG_CNODE_TABLE);
	assert_at(&first->loc, 10, 1);
	struct mg_cnode *args = get(doc, first, "args");
	assert_int_equal(args->type, MG_CNODE_ARRAY);
	assert_int_equal(args->count, 2);
	assert_at(&args->loc, 12, 8);
	assert_string_equal(args->first->str, "--root");
	assert_at(&args->first->loc, 13, 3);
	assert_string_equal(args->last->str, "/srv");
	assert_at(&args->last->loc, 14, 3);
	struct mg_cnode *env = get(doc, first, "env");
	assert_int_equal(env->type, MG_CNODE_TABLE);
	assert_int_equal(env->count, 2);
	struct mg_cnode *debug = get(doc, env, "DEBUG");
	assert_string_equal(debug->str, "1");
	assert_at(&debug->key_loc, 16, 24);
	assert_at(&debug->loc, 16, 32);

	struct mg_cnode *second = up->last;
	assert_string_equal(get(doc, second, "name")->str, "web");
	struct mg_cnode *started = get(doc, second, "started");
	assert_int_equal(started->type, MG_CNODE_DATETIME);
	assert_string_equal(started->str, "1979-05-27T07:32:00.500Z");
	assert_int_equal(started->len, strlen("1979-05-27T07:32:00.500Z"));
	assert_at(&started->loc, 20, 11);
	mg_cdoc_free(doc);
}

static void test_values(void **state)
{
	(void)state;
	struct mg_cdoc *doc = parse_ok("hex = 0xDEAD_beef\n"
	                               "oct = 0o755\n"
	                               "bin = -0\n"
	                               "min = -9223372036854775808\n"
	                               "max = 9_223_372_036_854_775_807\n"
	                               "ninf = -inf\n"
	                               "nan = nan\n"
	                               "exp = 1e-3\n"
	                               "ld = 2024-02-29\n"
	                               "lt = 07:32:00\n"
	                               "ldt = 2000-02-29t00:00:00.123456\n"
	                               "odt = 1985-06-18 17:04:07-05:30\n"
	                               "nul = \"a\\u0000b\"\n"
	                               "\"k\\u0000\" = 1\n"
	                               "uni = \"\\U0001F600\\u00e9\"\n");
	struct mg_cnode *root = mg_cdoc_root(doc);
	assert_int_equal(get(doc, root, "hex")->i, 0xDEADBEEF);
	assert_int_equal(get(doc, root, "oct")->i, 0755);
	assert_int_equal(get(doc, root, "bin")->i, 0);
	assert_true(get(doc, root, "min")->i == INT64_MIN);
	assert_true(get(doc, root, "max")->i == INT64_MAX);
	assert_true(isinf(get(doc, root, "ninf")->f) && get(doc, root, "ninf")->f < 0);
	assert_true(isnan(get(doc, root, "nan")->f));
	assert_true(get(doc, root, "exp")->f == 1e-3);
	assert_int_equal(get(doc, root, "ld")->type, MG_CNODE_DATE_LOCAL);
	assert_string_equal(get(doc, root, "ld")->str, "2024-02-29");
	assert_int_equal(get(doc, root, "lt")->type, MG_CNODE_TIME_LOCAL);
	assert_string_equal(get(doc, root, "lt")->str, "07:32:00");
	assert_int_equal(get(doc, root, "ldt")->type, MG_CNODE_DATETIME_LOCAL);
	assert_string_equal(get(doc, root, "ldt")->str, "2000-02-29T00:00:00.123456");
	assert_string_equal(get(doc, root, "odt")->str, "1985-06-18T17:04:07-05:30");
	struct mg_cnode *nul = get(doc, root, "nul");
	assert_int_equal(nul->len, 3);
	assert_memory_equal(nul->str, "a\0b", 4);
	struct mg_cnode *k = mg_cnode_get(doc, root, "k\0", 2);
	assert_non_null(k);
	assert_int_equal(k->key_len, 2);
	assert_string_equal(get(doc, root, "uni")->str, "\xF0\x9F\x98\x80\xC3\xA9");
	mg_cdoc_free(doc);
}

static void test_crlf(void **state)
{
	(void)state;
	const char *text = "a = 1\r\n"
	                   "s = \"\"\"\r\n"
	                   "one\r\n"
	                   "two \\\r\n"
	                   "   three\"\"\"\r\n"
	                   "lit = '''x\r\ny'''\r\n"
	                   "[t] # c\r\n"
	                   "b = 2";
	struct mg_cdoc *doc = parse_ok(text);
	struct mg_cnode *root = mg_cdoc_root(doc);
	assert_string_equal(get(doc, root, "s")->str, "one\ntwo three");
	assert_string_equal(get(doc, root, "lit")->str, "x\ny");
	struct mg_cnode *b = get(doc, get(doc, root, "t"), "b");
	assert_at(&b->key_loc, 9, 1);
	assert_at(&b->loc, 9, 5);
	mg_cdoc_free(doc);
	expect_error("a = 1\r\nb = \r\n", 2, 5, "expected a value for key \"b\", found '\\n'");
	expect_error("a = 1\rb = 2\n", 1, 6, "carriage return (U+000D) is only allowed before");
}

static void test_bom(void **state)
{
	(void)state;
	struct mg_cdoc *doc = parse_ok("\xEF\xBB\xBFk = 1\n");
	struct mg_cnode *k = get(doc, mg_cdoc_root(doc), "k");
	assert_at(&k->key_loc, 1, 1);
	assert_at(&k->loc, 1, 5);
	mg_cdoc_free(doc);
	expect_error("\xEF\xBB\xBFk = x\n", 1, 5, "expected a value, found 'x'");
	expect_error("k = 1\n\xEF\xBB\xBF", 2, 1, "expected a key, found");
}

static void test_duplicate_key(void **state)
{
	(void)state;
	expect_error("[server]\nhost = \"a\"\nport = 1\n\nport = 2\n", 5, 1,
	             "duplicate key \"server.port\" (first defined at line 3, column 1)");
	expect_error("t = { a = 1, a = 2 }\n", 1, 14,
	             "duplicate key \"a\" (first defined at line 1, column 7)");
	expect_error("a.b = 1\na.b = 2\n", 2, 3,
	             "duplicate key \"a.b\" (first defined at line 1, column 3)");
	expect_error("\"x y\" = 1\n'x y' = 2\n", 2, 1, "duplicate key \"'x y'\"");
}

static void test_bad_escape(void **state)
{
	(void)state;
	expect_error("s = \"tab\\qx\"\n", 1, 9,
	             "invalid escape: expected one of b t n f r \" \\ u U after '\\', found 'q'");
	expect_error("s = \"\\x41\"\n", 1, 6, "escape '\\x' is TOML 1.1");
	expect_error("s = \"\\uD800\"\n", 1, 6, "escape '\\uD800' is a surrogate");
	expect_error("s = \"\\U00110000\"\n", 1, 6, "escape '\\U00110000' is beyond U+10FFFF");
	expect_error("s = \"\\u12\"\n", 1, 10, "expected 4 hex digits after '\\u', found '\"'");
	expect_error("s = \"\"\"a \\  b\"\"\"\n", 1, 10,
	             "a backslash followed by whitespace must end the line");
}

static void test_table_redefinition(void **state)
{
	(void)state;
	expect_error("[a]\nx = 1\n[b]\n[a]\n", 4, 2,
	             "table \"a\" is already defined at line 1, column 2");
	expect_error("[a.b]\n[a]\n[a]\n", 3, 2,
	             "table \"a\" is already defined at line 2, column 2");
	expect_error("[a]\nb.c = 1\n[a.b]\n", 3, 4,
	             "table \"a.b\" is already defined by dotted keys at line 2, column 1");
	expect_error("[a.b.c]\n[a]\nb.c.d = 1\n", 3, 3,
	             "cannot add keys to table \"a.b.c\" with dotted keys: it is defined by the "
	             "header at line 1, column 6");
	expect_error("a = { b = 1 }\n[a]\n", 2, 2, "is already defined as an inline table");
	expect_error("a = { b = 1 }\na.c = 2\n", 2, 1, "cannot add keys to inline table \"a\"");
	expect_error("a = [1]\n[[a]]\n", 2, 3,
	             "cannot append tables to \"a\": it is a static array");
	expect_error("[[a]]\n[a]\n", 2, 2, "use [[a]] to add an element");
	expect_error("a = 1\n[a.b]\n", 2, 2,
	             "key \"a\" is already defined as an integer at line 1, column 1");

	/* What is allowed: super-tables after sub-tables, sub-tables of dotted
	 * tables, headers through arrays of tables. */
	struct mg_cdoc *doc = parse_ok("[a.b]\nx = 1\n[a]\ny = 2\n[c]\nd.e = 1\n[c.d.f]\n"
	                               "[[g]]\n[g.h]\n[[g]]\n[g.h]\n");
	struct mg_cnode *root = mg_cdoc_root(doc);
	struct mg_cnode *a = get(doc, root, "a");
	assert_at(&a->key_loc, 3, 2); /* points at the header that defined it */
	assert_int_equal(get(doc, root, "g")->count, 2);
	mg_cdoc_free(doc);
}

static void test_unterminated(void **state)
{
	(void)state;
	expect_error("a = \"abc", 1, 9,
	             "expected '\"' to close the string started at line 1, column 5, found end of "
	             "input");
	expect_error("a = \"abc\nb = 1\n", 1, 9,
	             "found '\\n' (use \"\"\" for a multi-line string)");
	expect_error("a = '''\nabc\n", 3, 1,
	             "expected \"'''\" to close the string started at line 1, column 5");
	expect_error("a = [1,\n2\n", 3, 1, "expected ',' or ']' after an array element, found end");
	expect_error("[a.b\n", 1, 5, "expected ']' to close the table header, found '\\n'");
	expect_error("a = {b = 1\n", 1, 11, "expected ',' or '}' after a key/value pair");
}

static void test_syntax_messages(void **state)
{
	(void)state;
	expect_error("port 8080\n", 1, 6, "expected '=' after key \"port\", found '8080'");
	expect_error("[server]\nport\n", 2, 5,
	             "expected '=' after key \"server.port\", found '\\n'");
	expect_error("a = 99999999999999999999\n", 1, 5,
	             "integer 99999999999999999999 does not fit in 64 bits");
	expect_error("a = -9223372036854775809\n", 1, 5, "does not fit in 64 bits");
	expect_error("a = 0x8000000000000000\n", 1, 5, "does not fit in 64 bits");
	expect_error("a = 1e400\n", 1, 5, "float 1e400 is out of range");
	expect_error("a = 2023-02-29\n", 1, 13, "day 29 is out of range for 2023-02 (01-28)");
	expect_error("a = 12:30\n", 1, 10, "TOML 1.0 requires seconds");
	expect_error("a = truee\n", 1, 5, "expected a value, found 'truee'");
	expect_error("a = 1 b = 2\n", 1, 7, "expected the end of the line after a key/value pair");
	expect_error("a = { b = 1, }\n", 1, 14, "trailing comma");
	expect_error("a = {\nb = 1 }\n", 1, 6, "an inline table must be on one line");
	expect_error("a = 1 # ok\n\tb = 03\n", 2, 6, "leading zeros are not allowed");
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	expect_error("a = \"\xC3\"\n", 1, 6, "invalid UTF-8: expected a continuation byte");
	expect_error("# \xFF\n", 1, 3, "invalid UTF-8: byte 0xFF cannot start a character");
	expect_error("a = 'x'\n# \xC0\xAF\n", 2, 3, "invalid UTF-8");
	expect_error("s = \"\xED\xA0\x80\"\n", 1, 6, "encoded surrogate U+D800");
	expect_error("s = \"\xF4\x90\x80\x80\"\n", 1, 6, "beyond U+10FFFF");
	expect_error("s = \"\xE2\x82", 1, 6, "found end of input");
}

static void test_nul_and_controls(void **state)
{
	(void)state;
	expect_error_n("a = \"x\0y\"\n", 10, 1, 7, "NUL byte (U+0000) is not allowed");
	expect_error_n("\0", 1, 1, 1, "NUL byte");
	expect_error("a = 1 # \x01\n", 1, 9, "control character U+0001 is not allowed");
	expect_error("a = \"\x7f\"\n", 1, 6, "control character U+007F");
	expect_error("a = 1\x0c\n", 1, 6, "control character U+000C");
	/* The first error in the file wins: a syntax error before the bad byte
	 * is reported, and a bad byte before a syntax error is reported. */
	expect_error_n("a = = 1\n\0", 9, 1, 5, "expected a value, found '='");
	expect_error_n("a = \"\0\"\nb = = 1\n", 16, 1, 6, "NUL byte");
	expect_error_n("key\0 = 1\n", 9, 1, 4, "NUL byte");
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = malloc(hl + ul * n + tl + 1);
	assert_non_null(s);
	memcpy(s, head, hl);
	for (size_t i = 0; i < n; i++)
		memcpy(s + hl + i * ul, unit, ul);
	memcpy(s + hl + ul * n, tail, tl + 1);
	return s;
}

static void test_depth(void **state)
{
	(void)state;
	/* MG_CDOC_MAX_DEPTH nested arrays are fine, one more is not. */
	char *open = repeat("a = ", "[", MG_CDOC_MAX_DEPTH, "");
	char *s = repeat(open, "]", MG_CDOC_MAX_DEPTH, "\n");
	mg_cdoc_free(parse_ok(s));
	free(s);
	free(open);
	s = repeat("a = ", "[", MG_CDOC_MAX_DEPTH + 1, "");
	expect_error(s, 1, 5 + MG_CDOC_MAX_DEPTH, "nested deeper than 64 levels");
	free(s);
	/* Inline tables, dotted keys and headers count the same way. */
	s = repeat("a = ", "{b=", 100000, "");
	expect_error(s, 1, 5 + 3 * MG_CDOC_MAX_DEPTH, "nested deeper than 64 levels");
	free(s);
	s = repeat("a", ".a", 1000, " = 1\n"); /* 64 tables, then a value */
	expect_error(s, 1, 1 + 2 * (MG_CDOC_MAX_DEPTH + 1), "nested deeper than 64 levels");
	free(s);
	s = repeat("[a", ".a", 1000, "]\n");
	expect_error(s, 1, 2 + 2 * MG_CDOC_MAX_DEPTH, "nested deeper than 64 levels");
	free(s);
	/* An array of tables counts twice: the array and its table. Line L is
	 * [[a.a...]] with L parts, nested 2L deep, so line 33 is too deep. */
	char *text = calloc(1, 64 * 80);
	assert_non_null(text);
	size_t used = 0;
	for (int line = 1; line <= 40; line++) {
		used += (size_t)snprintf(text + used, 64 * 80 - used, "[[a");
		for (int i = 1; i < line; i++)
			used += (size_t)snprintf(text + used, 64 * 80 - used, ".a");
		used += (size_t)snprintf(text + used, 64 * 80 - used, "]]\n");
	}
	expect_error(text, 33, 3 + 2 * 32, "nested deeper than 64 levels");
	free(text);
}

static void test_limits(void **state)
{
	(void)state;
	/* Too big: located at the first byte past the limit. */
	size_t n = MG_CDOC_MAX_BYTES + 10;
	char *big = malloc(n);
	assert_non_null(big);
	memset(big, '#', n);
	big[0] = '\n';
	expect_error_n(big, n, 2, MG_CDOC_MAX_BYTES, "more than the limit of 4194304");
	/* Exactly at the limit is fine. */
	struct mg_cerror err;
	struct mg_cdoc *doc = mg_toml_parse(big, MG_CDOC_MAX_BYTES, "big.toml", &err);
	assert_non_null(doc);
	mg_cdoc_free(doc);
	free(big);

	/* Too many values: an array of 1.5 million integers. */
	size_t count = MG_CDOC_MAX_NODES + MG_CDOC_MAX_NODES / 2;
	char *s = repeat("a = [", "0,", count, "]\n");
	expect_error(s, 1, (uint32_t)(6 + 2 * (MG_CDOC_MAX_NODES - 2)), "too many values");
	free(s);
}

static void test_api_edges(void **state)
{
	(void)state;
	struct mg_cdoc *doc = mg_toml_parse(NULL, 0, NULL, NULL);
	assert_non_null(doc);
	assert_int_equal(mg_cdoc_root(doc)->count, 0);
	assert_string_equal(mg_cdoc_file(doc), "<input>");
	mg_cdoc_free(doc);
	assert_null(mg_toml_parse("x", 1, NULL, NULL));
	struct mg_cerror err;
	assert_null(mg_toml_parse("x", 1, NULL, &err));
	assert_string_equal(err.loc.file, "<input>");
	assert_int_equal(err.loc.line, 1);
	assert_int_equal(err.loc.col, 2);
	/* Only `len` bytes are read: no terminator needed, none looked at. */
	doc = mg_toml_parse("a = 1x", 5, "f", &err);
	assert_non_null(doc);
	assert_int_equal(get(doc, mg_cdoc_root(doc), "a")->i, 1);
	mg_cdoc_free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_document),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_bom),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_bad_escape),
		cmocka_unit_test(test_table_redefinition),
		cmocka_unit_test(test_unterminated),
		cmocka_unit_test(test_syntax_messages),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_nul_and_controls),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_api_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
