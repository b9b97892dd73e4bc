/*
 * authz.c - tool / resource / prompt permissions and list filtering (see
 * authz.h).
 */
#include "authz/authz.h"

#include <stdio.h>
#include <string.h>

bool mg_glob_match(const char *pattern, const char *s, size_t len)
{
	/* Iterative matching with one backtrack point per '*': O(n*m) worst
	 * case, no recursion. */
	size_t p = 0, i = 0, star = (size_t)-1, mark = 0;
	size_t plen = strlen(pattern);
	while (i < len) {
		if (p < plen && pattern[p] == '*') {
			star = p++;
			mark = i;
		} else if (p < plen && pattern[p] == s[i]) {
			p++;
			i++;
		} else if (star != (size_t)-1) {
			p = star + 1;
			i = ++mark;
		} else {
			return false;
		}
	}
	while (p < plen && pattern[p] == '*')
		p++;
	return p == plen;
}

bool mg_authz_list_allows(const struct mg_strv *allow, const char *name, size_t len)
{
	if (!allow->set)
		return true;
	for (size_t i = 0; i < allow->n; i++) {
		if (mg_glob_match(allow->v[i], name, len))
			return true;
	}
	return false;
}

/* "<server>/<glob>": the glob, when the part before the slash is the
 * server's name exactly. */
static const char *server_glob(const char *pattern, const char *server)
{
	const char *slash = strchr(pattern, '/');
	size_t sl = strlen(server);
	if (!slash || (size_t)(slash - pattern) != sl || memcmp(pattern, server, sl) != 0)
		return NULL;
	return slash + 1;
}

bool mg_authz_allows_in(const struct mg_strv *allow, const struct mg_authz_scope *sc,
                        enum mg_authz_kind kind, const char *name, size_t len)
{
	if (!allow->set)
		return true;
	if (!sc || !sc->server)
		return mg_authz_list_allows(allow, name, len);
	/* Tools and prompts are named <server><sep><name> on the federated
	 * endpoint; resource URIs carry no prefix anywhere. */
	bool prefixed = kind != MG_AUTHZ_RESOURCE;
	size_t sl = strlen(sc->server), pl = sc->sep ? strlen(sc->sep) : 0;
	const char *inner = name;
	size_t inner_len = len;
	if (sc->federated && prefixed) {
		/* The server's own name follows "<server><sep>"; a name without
		 * that prefix is not the server's. */
		if (!pl || len <= sl + pl || memcmp(name, sc->server, sl) != 0 ||
		    memcmp(name + sl, sc->sep, pl) != 0)
			return mg_authz_list_allows(allow, name, len);
		inner = name + sl + pl;
		inner_len = len - sl - pl;
	}
	char qualified[512];
	size_t ql = 0;
	if (!sc->federated && prefixed && pl && sl + pl + len < sizeof qualified) {
		memcpy(qualified, sc->server, sl);
		memcpy(qualified + sl, sc->sep, pl);
		memcpy(qualified + sl + pl, name, len);
		ql = sl + pl + len;
	}
	for (size_t i = 0; i < allow->n; i++) {
		const char *p = allow->v[i], *g;
		if (mg_glob_match(p, name, len) ||
		    ((g = server_glob(p, sc->server)) && mg_glob_match(g, inner, inner_len)) ||
		    (ql && mg_glob_match(p, qualified, ql)))
			return true;
	}
	return false;
}

static int string_target(json_t *v, enum mg_authz_kind kind, struct mg_authz_target *t)
{
	if (!json_is_string(v))
		return -1;
	t->kind = kind;
	t->name = json_string_value(v);
	t->len = json_string_length(v);
	return 0;
}

int mg_authz_target(const struct mg_rpc_msg *msg, struct mg_authz_target *t)
{
	memset(t, 0, sizeof *t);
	const char *m = msg->method;
	json_t *p = msg->params;
	if (!m)
		return 0;
	if (strcmp(m, "tools/call") == 0)
		return string_target(json_object_get(p, "name"), MG_AUTHZ_TOOL, t);
	if (strcmp(m, "prompts/get") == 0)
		return string_target(json_object_get(p, "name"), MG_AUTHZ_PROMPT, t);
	if (strcmp(m, "resources/read") == 0 || strcmp(m, "resources/subscribe") == 0 ||
	    strcmp(m, "resources/unsubscribe") == 0)
		return string_target(json_object_get(p, "uri"), MG_AUTHZ_RESOURCE, t);
	if (strcmp(m, "completion/complete") == 0) {
		json_t *ref = json_object_get(p, "ref");
		const char *type = json_string_value(json_object_get(ref, "type"));
		if (type && strcmp(type, "ref/prompt") == 0)
			return string_target(json_object_get(ref, "name"), MG_AUTHZ_PROMPT, t);
		if (type && strcmp(type, "ref/resource") == 0)
			return string_target(json_object_get(ref, "uri"), MG_AUTHZ_RESOURCE, t);
		return -1;
	}
	return 0;
}

bool mg_authz_permits(const struct mg_identity *id, const struct mg_authz_target *t)
{
	switch (t->kind) {
	case MG_AUTHZ_TOOL:
		return mg_authz_allows_in(&id->allowed_tools, t->scope, t->kind, t->name, t->len);
	case MG_AUTHZ_RESOURCE:
		return mg_authz_allows_in(&id->allowed_resources, t->scope, t->kind, t->name,
		                          t->len);
	case MG_AUTHZ_PROMPT:
		return mg_authz_allows_in(&id->allowed_prompts, t->scope, t->kind, t->name, t->len);
	default:
		return true;
	}
}

bool mg_authz_scopes_granting(const struct mg_kstrvv *mapping, const char *tool, size_t len,
                              char *out, size_t size)
{
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < mapping->n; i++) {
		if (!mapping->v[i].value.set ||
		    !mg_authz_list_allows(&mapping->v[i].value, tool, len))
			continue;
		int w = snprintf(out + n, size - n, "%s%s", n ? " " : "", mapping->v[i].key);
		if (w < 0 || (size_t)w >= size - n)
			break;
		n += (size_t)w;
	}
	return n > 0;
}

bool mg_authz_restricted(const struct mg_identity *id)
{
	return id->allowed_tools.set || id->allowed_resources.set || id->allowed_prompts.set;
}

static size_t filter_array(json_t *arr, const char *key, const struct mg_strv *allow,
                           const struct mg_authz_scope *sc, enum mg_authz_kind kind)
{
	if (!json_is_array(arr) || !allow->set)
		return 0;
	size_t removed = 0;
	for (size_t i = 0; i < json_array_size(arr);) {
		json_t *v = json_object_get(json_array_get(arr, i), key);
		if (json_is_string(v) && mg_authz_allows_in(allow, sc, kind, json_string_value(v),
		                                            json_string_length(v))) {
			i++;
			continue;
		}
		json_array_remove(arr, i);
		removed++;
	}
	return removed;
}

bool mg_authz_filters(const char *method)
{
	return strcmp(method, "tools/list") == 0 || strcmp(method, "prompts/list") == 0 ||
	       strcmp(method, "resources/list") == 0 ||
	       strcmp(method, "resources/templates/list") == 0;
}

size_t mg_authz_filter(const struct mg_identity *id, const char *method, json_t *result)
{
	return mg_authz_filter_in(id, method, result, NULL);
}

size_t mg_authz_filter_in(const struct mg_identity *id, const char *method, json_t *result,
                          const struct mg_authz_scope *sc)
{
	if (!json_is_object(result))
		return 0;
	if (strcmp(method, "tools/list") == 0)
		return filter_array(json_object_get(result, "tools"), "name", &id->allowed_tools,
		                    sc, MG_AUTHZ_TOOL);
	if (strcmp(method, "prompts/list") == 0)
		return filter_array(json_object_get(result, "prompts"), "name",
		                    &id->allowed_prompts, sc, MG_AUTHZ_PROMPT);
	if (strcmp(method, "resources/list") == 0)
		return filter_array(json_object_get(result, "resources"), "uri",
		                    &id->allowed_resources, sc, MG_AUTHZ_RESOURCE);
	if (strcmp(method, "resources/templates/list") == 0)
		return filter_array(json_object_get(result, "resourceTemplates"), "uriTemplate",
		                    &id->allowed_resources, sc, MG_AUTHZ_RESOURCE);
	return 0;
}
