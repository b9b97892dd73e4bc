/*
 * test_authz.c - globs, request targets, permissions, scope hints, and list
 * filtering on real server-everything responses (tests/unit/data/).
 */
#include "support.h"

#include <string.h>

#include "authz/authz.h"
#include <stdio.h>
#include <stdlib.h>

static void test_glob(void **state)
{
	(void)state;
	struct {
		const char *p, *s;
		bool m;
	} c[] = {
		{ "echo", "echo", true },
		{ "echo", "echo2", false },
		{ "echo", "Echo", false },
		{ "get_*", "get_sum", true },
		{ "get_*", "get_", true },
		{ "get_*", "get", false },
		{ "*", "", true },
		{ "*", "anything", true },
		{ "*_admin", "db_admin", true },
		{ "*_admin", "db_admin2", false },
		{ "a*b*c", "axxbyyc", true },
		{ "a*b*c", "axxbyy", false },
		{ "**", "x", true },
		{ "file:///docs/*", "file:///docs/a/b.md", true },
		{ "file:///docs/*", "file:///doc", false },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		if (mg_glob_match(c[i].p, c[i].s, strlen(c[i].s)) != c[i].m)
			fail_msg("glob %s vs %s", c[i].p, c[i].s);
	}
	/* Names with NUL bytes and look-alikes are just other names. */
	assert_false(mg_glob_match("echo", "echo\0x", 6));
	assert_false(mg_glob_match("echo",
	                           "\xef\xbd\x85"
	                           "cho",
	                           6));
}

static struct mg_identity *ident(char **tools, size_t n, bool set)
{
	struct mg_identity *id = mg_identity_new("api_key", "t");
	id->allowed_tools.set = set;
	if (n) {
		id->allowed_tools.v = calloc(n, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			id->allowed_tools.v[i] = strdup(tools[i]);
		id->allowed_tools.n = n;
	}
	return id;
}

static void test_targets_and_permits(void **state)
{
	(void)state;
	char *tools[] = { "echo", "get-*" };
	struct mg_identity *id = ident(tools, 2, true);
	const char *cases[][2] = {
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/"
		  "call\",\"params\":{\"name\":\"echo\"}}",
		  "y" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/"
		  "call\",\"params\":{\"name\":\"get-sum\"}}",
		  "y" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/"
		  "call\",\"params\":{\"name\":\"rm\"}}",
		  "n" },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/"
		  "call\",\"params\":{\"name\":\"ech\\u006f\"}}",
		  "y" }, /* JSON escapes decode to the same bytes the upstream sees */
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", "y" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct mg_rpc_msg m;
		struct mg_rpc_fail f;
		assert_int_equal(mg_rpc_parse(cases[i][0], strlen(cases[i][0]), 64, false, &m, &f),
		                 0);
		struct mg_authz_target t;
		assert_int_equal(mg_authz_target(&m, &t), 0);
		assert_int_equal(mg_authz_permits(id, &t), cases[i][1][0] == 'y');
		mg_rpc_msg_free(&m);
	}
	/* A tool named by something other than a string cannot be authorized. */
	const char *bad = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/"
	                  "call\",\"params\":{\"name\":[\"echo\"]}}";
	struct mg_rpc_msg m;
	struct mg_rpc_fail f;
	assert_int_equal(mg_rpc_parse(bad, strlen(bad), 64, false, &m, &f), 0);
	struct mg_authz_target t;
	assert_int_equal(mg_authz_target(&m, &t), -1);
	mg_rpc_msg_free(&m);
	/* Completion refs name prompts or resources. */
	const char *comp =
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"completion/complete\",\"params\":"
	    "{\"ref\":{\"type\":\"ref/prompt\",\"name\":\"secret\"}}}";
	assert_int_equal(mg_rpc_parse(comp, strlen(comp), 64, false, &m, &f), 0);
	assert_int_equal(mg_authz_target(&m, &t), 0);
	assert_int_equal(t.kind, MG_AUTHZ_PROMPT);
	id->allowed_prompts.set = true;
	assert_false(mg_authz_permits(id, &t));
	mg_rpc_msg_free(&m);
	mg_identity_unref(id);
}

static void test_scopes_granting(void **state)
{
	(void)state;
	char *r[] = { "get_*" }, *a[] = { "*" };
	struct mg_kstrv e[] = { { "mcp:read", { r, 1, true } }, { "mcp:admin", { a, 1, true } } };
	struct mg_kstrvv map = { e, 2 };
	char out[128];
	assert_true(mg_authz_scopes_granting(&map, "get_x", 5, out, sizeof out));
	assert_string_equal(out, "mcp:read mcp:admin");
	assert_true(mg_authz_scopes_granting(&map, "rm", 2, out, sizeof out));
	assert_string_equal(out, "mcp:admin");
	struct mg_kstrvv one = { e, 1 };
	assert_false(mg_authz_scopes_granting(&one, "rm", 2, out, sizeof out));
}

static json_t *load(const char *file)
{
	char path[256];
	json_error_t e;
	snprintf(path, sizeof path, "tests/unit/data/%s", file);
	json_t *j = json_load_file(path, 0, &e);
	if (!j)
		fail_msg("cannot load %s (run from the repository root): %s", path, e.text);
	return j;
}

static void test_filter_real_lists(void **state)
{
	(void)state;
	json_t *tools = load("everything-tools-list.json");
	size_t all = json_array_size(json_object_get(tools, "tools"));
	assert_true(all >= 10);
	char *allow[] = { "echo", "get-*" };
	struct mg_identity *id = ident(allow, 2, true);
	json_object_set_new(tools, "nextCursor", json_string("page-2"));
	size_t removed = mg_authz_filter(id, "tools/list", tools);
	json_t *left = json_object_get(tools, "tools");
	assert_int_equal(removed + json_array_size(left), all);
	size_t i;
	json_t *t;
	json_array_foreach(left, i, t)
	{
		const char *n = json_string_value(json_object_get(t, "name"));
		assert_true(strcmp(n, "echo") == 0 || strncmp(n, "get-", 4) == 0);
		/* Entries that stay are untouched (schema and all). */
		assert_non_null(json_object_get(t, "inputSchema"));
	}
	assert_string_equal(json_string_value(json_object_get(tools, "nextCursor")), "page-2");
	mg_identity_unref(id);
	json_decref(tools);

	/* Empty allow list: a valid empty list. Unset: nothing removed. */
	json_t *prompts = load("everything-prompts-list.json");
	struct mg_identity *none = ident(NULL, 0, false);
	none->allowed_prompts.set = true;
	assert_true(mg_authz_filter(none, "prompts/list", prompts) > 0);
	assert_int_equal(json_array_size(json_object_get(prompts, "prompts")), 0);
	assert_true(json_is_array(json_object_get(prompts, "prompts")));
	json_decref(prompts);
	json_t *res = load("everything-resources-list.json");
	size_t nres = json_array_size(json_object_get(res, "resources"));
	assert_int_equal(mg_authz_filter(none, "resources/list", res), 0);
	assert_int_equal(json_array_size(json_object_get(res, "resources")), nres);
	mg_identity_unref(none);
	json_decref(res);
}

/* Server-qualified names (several upstreams): "<server>/<glob>", the
 * federated "<server><sep><name>", and plain names only on the server's own
 * endpoint. */
static void test_scoped_names(void **state)
{
	(void)state;
	static char *pats[] = { "files/read_*", "everything__echo", "plain_*", "demo/*" };
	struct mg_strv allow = { .v = pats, .n = 4, .set = true };
	struct mg_authz_scope files_own = { .server = "files", .sep = "__" };
	struct mg_authz_scope files_fed = { .server = "files", .sep = "__", .federated = true };
	struct mg_authz_scope every_own = { .server = "everything", .sep = "__" };
	struct mg_authz_scope every_fed = { .server = "everything",
		                            .sep = "__",
		                            .federated = true };
	struct {
		const struct mg_authz_scope *sc;
		const char *name;
		bool ok;
	} c[] = {
		{ &files_own, "read_file", true },        /* files/read_* */
		{ &files_fed, "files__read_file", true }, /* the same, federated */
		{ &files_fed, "read_file", false }, /* a federated name always has its prefix */
		{ &files_own, "write_file", false },
		{ &files_fed, "files__write_file", false },
		{ &every_own, "echo", true }, /* everything__echo on its own endpoint */
		{ &every_fed, "everything__echo", true },
		{ &every_fed, "everything__echo2", false },
		{ &every_own, "plain_x", true },              /* plain: on the own endpoint */
		{ &every_fed, "everything__plain_x", false }, /* ... but not federated */
		{ &files_own, "read", false }, /* "files/read_*" needs the underscore */
		{ NULL, "plain_y", true },     /* no scope: plain globs */
		{ NULL, "read_file", false },
		{ &(struct mg_authz_scope){ .server = "fi", .sep = "__" }, "read_file", false },
		{ &(struct mg_authz_scope){ .server = "demo", .sep = "__", .federated = true },
		  "demo://resource/1", true }, /* resources: "demo/<glob>": demo's URIs */
		{ &files_fed, "demo://resource/1", false },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		/* URIs have a scheme; everything else here is a tool name. */
		enum mg_authz_kind k = strstr(c[i].name, "://") ? MG_AUTHZ_RESOURCE : MG_AUTHZ_TOOL;
		if (mg_authz_allows_in(&allow, c[i].sc, k, c[i].name, strlen(c[i].name)) != c[i].ok)
			fail_msg("case %zu: %s on %s", i, c[i].name,
			         c[i].sc ? c[i].sc->server : "(none)");
	}
	struct mg_strv unset = { 0 };
	assert_true(mg_authz_allows_in(&unset, &files_fed, MG_AUTHZ_TOOL, "files__x", 8));
	/* A filtered federated list keeps what the names allow. */
	json_t *res = json_pack("{s:[{s:s},{s:s},{s:s}]}", "tools", "name", "files__read_a", "name",
	                        "files__write_a", "name", "files__read_b");
	struct mg_identity id = { .allowed_tools = allow };
	assert_int_equal(mg_authz_filter_in(&id, "tools/list", res, &files_fed), 1);
	assert_int_equal(json_array_size(json_object_get(res, "tools")), 2);
	json_decref(res);
}

/* What a name is comes from the request or the list, never from its bytes:
 * a tool or prompt may be named with a ':' (the federated prefix still
 * decides whose it is), a resource URI need not have one (it is never read
 * as prefixed). */
static void test_scoped_kinds(void **state)
{
	(void)state;
	static char *pats[] = { "files/read_*", "files/docs/*" };
	struct mg_strv allow = { .v = pats, .n = 2, .set = true };
	struct mg_identity id = { .allowed_tools = allow,
		                  .allowed_prompts = allow,
		                  .allowed_resources = allow };
	struct mg_authz_scope fed = { .server = "files", .sep = "__", .federated = true };
	struct {
		enum mg_authz_kind kind;
		const char *name;
		bool ok;
	} c[] = {
		/* files' tool "read_x:y", federated as files__read_x:y */
		{ MG_AUTHZ_TOOL, "files__read_x:y", true },
		/* a ':' does not make a name without files' prefix a URI of files */
		{ MG_AUTHZ_TOOL, "read_x:y", false },
		{ MG_AUTHZ_TOOL, "weather__read_x:y", false },
		{ MG_AUTHZ_PROMPT, "read_p:q", false },
		{ MG_AUTHZ_PROMPT, "files__read_p:q", true },
		/* a URI of files without a ':' is still one of files' URIs */
		{ MG_AUTHZ_RESOURCE, "docs/readme", true },
		{ MG_AUTHZ_RESOURCE, "file:///srv/docs/readme", false },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		struct mg_authz_target t = { .kind = c[i].kind,
			                     .name = c[i].name,
			                     .len = strlen(c[i].name),
			                     .scope = &fed };
		if (mg_authz_permits(&id, &t) != c[i].ok)
			fail_msg("case %zu: %s", i, c[i].name);
	}
	/* Lists are filtered by the same rule. */
	json_t *res =
	    json_pack("{s:[{s:s},{s:s}]}", "tools", "name", "read_x:y", "name", "files__read_x:y");
	assert_int_equal(mg_authz_filter_in(&id, "tools/list", res, &fed), 1);
	assert_string_equal(json_string_value(json_object_get(
	                        json_array_get(json_object_get(res, "tools"), 0), "name")),
	                    "files__read_x:y");
	json_decref(res);
	res = json_pack("{s:[{s:s},{s:s}]}", "resources", "uri", "docs/readme", "uri", "notes/x");
	assert_int_equal(mg_authz_filter_in(&id, "resources/list", res, &fed), 1);
	json_decref(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_glob),
		cmocka_unit_test(test_targets_and_permits),
		cmocka_unit_test(test_scopes_granting),
		cmocka_unit_test(test_filter_real_lists),
		cmocka_unit_test(test_scoped_names),
		cmocka_unit_test(test_scoped_kinds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
