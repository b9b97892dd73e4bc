/*
 * params.c - x-mcp-header annotations and Mcp-Param-* validation (see
 * params.h and the 2026-07-28 Streamable HTTP page).
 */
#include "mcp/params.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mcp/jsonrpc.h"

#define SAFE_INT_MAX 9007199254740991LL

static bool tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool token(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++) {
		if (!tchar((unsigned char)*s))
			return false;
	}
	return true;
}

/* Keywords through which an annotation is not "statically reachable". */
static bool dynamic_keyword(const char *k)
{
	static const char *const kw[] = { "items",
		                          "prefixItems",
		                          "additionalProperties",
		                          "anyOf",
		                          "oneOf",
		                          "allOf",
		                          "not",
		                          "if",
		                          "then",
		                          "else",
		                          "$ref",
		                          "$defs",
		                          "definitions",
		                          "patternProperties",
		                          "dependentSchemas",
		                          "contains",
		                          "unevaluatedProperties",
		                          NULL };
	for (size_t i = 0; kw[i]; i++) {
		if (strcmp(k, kw[i]) == 0)
			return true;
	}
	return false;
}

/* Walks a schema. `path` is the properties chain so far (NULL once the
 * walk left it: any annotation below is invalid). Returns false when the
 * tool must be rejected. */
static bool walk(json_t *schema, json_t *path, int depth, json_t *out, const char **why)
{
	if (!json_is_object(schema))
		return true;
	if (depth > MG_PARAMS_MAX_DEPTH) {
		/* Too deep to inspect: refuse rather than miss an annotation. */
		*why = "schema nested too deeply";
		return false;
	}
	json_t *ann = json_object_get(schema, "x-mcp-header");
	if (ann) {
		if (!path) {
			*why = "x-mcp-header on a property that is not statically reachable";
			return false;
		}
		if (!json_is_string(ann) || !token(json_string_value(ann))) {
			*why = "x-mcp-header is not a valid header name";
			return false;
		}
		const char *type = json_string_value(json_object_get(schema, "type"));
		if (!type || (strcmp(type, "string") && strcmp(type, "integer") &&
		              strcmp(type, "boolean"))) {
			*why =
			    "x-mcp-header on a property that is not a string, integer or boolean";
			return false;
		}
		size_t i;
		json_t *e;
		json_array_foreach(out, i, e)
		{
			if (strcasecmp(json_string_value(json_object_get(e, "header")),
			               json_string_value(ann)) == 0) {
				*why = "duplicate x-mcp-header name";
				return false;
			}
		}
		if (json_array_size(out) >= MG_PARAMS_MAX_HEADERS) {
			*why = "too many x-mcp-header annotations";
			return false;
		}
		json_array_append_new(
		    out, json_pack("{s:O,s:O,s:s}", "header", ann, "path", path, "type", type));
	}
	const char *k;
	json_t *v;
	json_object_foreach(schema, k, v)
	{
		if (strcmp(k, "properties") == 0 && json_is_object(v)) {
			const char *pk;
			json_t *ps;
			json_object_foreach(v, pk, ps)
			{
				json_t *sub = NULL;
				if (path) {
					sub = json_copy(path);
					json_array_append_new(sub, json_string(pk));
				}
				bool ok = walk(ps, sub, depth + 1, out, why);
				json_decref(sub);
				if (!ok)
					return false;
			}
		} else if (dynamic_keyword(k)) {
			if (json_is_array(v)) {
				size_t i;
				json_t *item;
				json_array_foreach(v, i, item)
				{
					if (!walk(item, NULL, depth + 1, out, why))
						return false;
				}
			} else if (json_is_object(v)) {
				/* $defs/definitions hold named schemas; others are one. */
				bool named = strcmp(k, "$defs") == 0 ||
				             strcmp(k, "definitions") == 0 ||
				             strcmp(k, "patternProperties") == 0 ||
				             strcmp(k, "dependentSchemas") == 0;
				if (named) {
					const char *nk;
					json_t *ns;
					json_object_foreach(v, nk, ns)
					{
						(void)nk;
						if (!walk(ns, NULL, depth + 1, out, why))
							return false;
					}
				} else if (!walk(v, NULL, depth + 1, out, why)) {
					return false;
				}
			}
		}
	}
	return true;
}

size_t mg_mcp_params_learn(json_t *registry, json_t *tools)
{
	size_t n = 0, i;
	json_t *tool;
	json_array_foreach(tools, i, tool)
	{
		const char *name = json_string_value(json_object_get(tool, "name"));
		if (!name)
			continue;
		if (!json_object_get(registry, name) &&
		    json_object_size(registry) >= MG_PARAMS_MAX_TOOLS)
			break;
		json_t *headers = json_array();
		json_t *root = json_array();
		const char *why = NULL;
		bool ok = walk(json_object_get(tool, "inputSchema"), root, 0, headers, &why);
		json_decref(root);
		json_t *entry;
		if (ok) {
			entry = json_pack("{s:o}", "headers", headers);
		} else {
			json_decref(headers);
			entry = json_pack("{s:[],s:b,s:s}", "headers", "invalid", 1, "reason", why);
		}
		json_object_set_new(registry, name, entry);
		n++;
	}
	return n;
}

static json_t *value_at(json_t *args, json_t *path)
{
	size_t i;
	json_t *k;
	json_t *v = args;
	json_array_foreach(path, i, k)
	{
		if (!json_is_object(v))
			return NULL;
		v = json_object_get(v, json_string_value(k));
	}
	return v;
}

static int mismatch(struct mg_mcp_reject *out, const char *fmt, const char *header)
{
	memset(out, 0, sizeof *out);
	out->http_status = 400;
	out->code = MG_RPC_HEADER_MISMATCH;
	snprintf(out->message, sizeof out->message, fmt, header);
	return -1;
}

int mg_mcp_params_check(json_t *spec, json_t *arguments, mg_header_fn get, void *ctx,
                        struct mg_mcp_reject *out)
{
	json_t *headers = json_object_get(spec, "headers");
	size_t i;
	json_t *h;
	json_array_foreach(headers, i, h)
	{
		const char *name = json_string_value(json_object_get(h, "header"));
		char full[160];
		snprintf(full, sizeof full, "Mcp-Param-%s", name);
		const char *raw = get(ctx, full);
		json_t *v = value_at(arguments, json_object_get(h, "path"));
		char dec[4096];
		long n = -1;
		if (raw) {
			n = mg_mcp_header_decode(raw, dec, sizeof dec);
			if (n < 0)
				return mismatch(
				    out, "Header mismatch: %s header value is malformed", full);
		}
		if (!v || json_is_null(v))
			continue; /* the client must omit it; a stray header is ignored */
		if (!raw)
			return mismatch(out, "Header mismatch: %s header is required", full);
		bool equal = false;
		if (json_is_string(v)) {
			equal = json_string_length(v) == (size_t)n &&
			        memcmp(json_string_value(v), dec, (size_t)n) == 0;
		} else if (json_is_integer(v) || json_is_real(v)) {
			/* Numerically: "42" equals 42 and 42.0. */
			char *end;
			double hv = strtod(dec, &end);
			double bv = json_number_value(v);
			equal = *dec && *end == '\0' && hv == bv && bv >= -SAFE_INT_MAX &&
			        bv <= SAFE_INT_MAX;
		} else if (json_is_boolean(v)) {
			equal = strcmp(dec, json_is_true(v) ? "true" : "false") == 0;
		}
		if (!equal)
			return mismatch(
			    out, "Header mismatch: %s header value does not match the body", full);
	}
	return 0;
}
