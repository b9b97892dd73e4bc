/*
 * jsonrpc.c - strict JSON-RPC 2.0 parsing and error objects (see jsonrpc.h).
 */
#include "mcp/jsonrpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t mg_json_depth(const char *text, size_t len, size_t limit)
{
	size_t depth = 0, max = 0;
	const char *p = text, *end = text + len;
	while (p < end) {
		char c = *p++;
		if (c == '"') {
			/* Skip the string, honouring backslash escapes. */
			while (p < end) {
				const char *q = memchr(p, '"', (size_t)(end - p));
				if (!q)
					return max;
				size_t bs = 0;
				for (const char *b = q; b > p && b[-1] == '\\'; b--)
					bs++;
				p = q + 1;
				if (bs % 2 == 0)
					break;
			}
		} else if (c == '[' || c == '{') {
			if (++depth > max) {
				max = depth;
				if (max > limit)
					return limit + 1;
			}
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return max;
}

static void set_fail(struct mg_rpc_fail *f, int code, const char *msg, json_t *id)
{
	f->code = code;
	snprintf(f->message, sizeof f->message, "%s", msg);
	f->id = id ? json_incref(id) : NULL;
}

static bool id_ok(const json_t *id)
{
	return json_is_string(id) || json_is_integer(id);
}

int mg_rpc_classify(json_t *root, struct mg_rpc_msg *msg, struct mg_rpc_fail *fail)
{
	memset(msg, 0, sizeof *msg);
	msg->root = root;
	if (!json_is_object(root)) {
		set_fail(fail, MG_RPC_INVALID_REQUEST, "a JSON-RPC message must be an object",
		         NULL);
		return -1;
	}
	json_t *id = json_object_get(root, "id");
	json_t *ver = json_object_get(root, "jsonrpc");
	json_t *method = json_object_get(root, "method");
	json_t *params = json_object_get(root, "params");
	json_t *result = json_object_get(root, "result");
	json_t *error = json_object_get(root, "error");
	json_t *good_id = id && id_ok(id) ? id : NULL;

	if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0) {
		set_fail(fail, MG_RPC_INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\"", good_id);
		return -1;
	}
	if (method) {
		if (!json_is_string(method) || json_string_length(method) == 0 ||
		    strlen(json_string_value(method)) != json_string_length(method)) {
			set_fail(fail, MG_RPC_INVALID_REQUEST,
			         "\"method\" must be a non-empty string", good_id);
			return -1;
		}
		if (result || error) {
			set_fail(fail, MG_RPC_INVALID_REQUEST,
			         "a request cannot carry \"result\" or \"error\"", good_id);
			return -1;
		}
		if (params && !json_is_object(params)) {
			set_fail(fail, MG_RPC_INVALID_REQUEST,
			         "\"params\" must be an object in MCP", good_id);
			return -1;
		}
		if (id && !good_id) {
			set_fail(fail, MG_RPC_INVALID_REQUEST,
			         "\"id\" must be a string or an integer", NULL);
			return -1;
		}
		msg->kind = id ? MG_RPC_REQUEST : MG_RPC_NOTIFICATION;
		msg->id = id;
		msg->method = json_string_value(method);
		msg->params = params;
		return 0;
	}
	if (!!result == !!error) {
		set_fail(fail, MG_RPC_INVALID_REQUEST,
		         "a message needs \"method\", or exactly one of \"result\" and \"error\"",
		         good_id);
		return -1;
	}
	if (error) {
		json_t *code = json_object_get(error, "code");
		if (!json_is_object(error) || !json_is_integer(code) ||
		    !json_is_string(json_object_get(error, "message"))) {
			set_fail(fail, MG_RPC_INVALID_REQUEST,
			         "\"error\" must be an object with integer \"code\" and string "
			         "\"message\"",
			         good_id);
			return -1;
		}
		if (id && !json_is_null(id) && !good_id) {
			set_fail(fail, MG_RPC_INVALID_REQUEST,
			         "\"id\" must be a string, an integer or null", NULL);
			return -1;
		}
		msg->kind = MG_RPC_ERROR;
		msg->id = id;
		return 0;
	}
	if (!good_id) {
		set_fail(fail, MG_RPC_INVALID_REQUEST,
		         "a response needs an \"id\" that is a string or an integer", NULL);
		return -1;
	}
	msg->kind = MG_RPC_RESPONSE;
	msg->id = id;
	return 0;
}

/* ---- the fast subset loader (see jsonrpc.h) --------------------------------------------- */

struct fast_in {
	const char *p, *end;
	size_t depth, max_depth;
};

static json_t *fast_value(struct fast_in *s);

static void fast_ws(struct fast_in *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool fast_at(const struct fast_in *s, char c)
{
	return s->p < s->end && *s->p == c;
}

/* A string at s->p ('"') of ASCII (no control byte) with no escape: its bytes. */
static bool fast_string(struct fast_in *s, const char **v, size_t *n)
{
	for (const char *q = s->p + 1; q < s->end; q++) {
		unsigned char c = (unsigned char)*q;
		if (c == '"') {
			*v = s->p + 1;
			*n = (size_t)(q - *v);
			s->p = q + 1;
			return true;
		}
		if (c < 0x20 || c > 0x7F || c == '\\')
			return false;
	}
	return false;
}

/* -?(0|[1-9][0-9]*) of at most 18 digits (no overflow), not followed by a
 * fraction or an exponent. */
static json_t *fast_integer(struct fast_in *s)
{
	const char *q = s->p;
	bool neg = q < s->end && *q == '-';
	if (neg)
		q++;
	if (q >= s->end || *q < '0' || *q > '9')
		return NULL;
	if (*q == '0' && q + 1 < s->end && q[1] >= '0' && q[1] <= '9')
		return NULL;
	long long v = 0;
	int digits = 0;
	for (; q < s->end && *q >= '0' && *q <= '9'; q++) {
		if (++digits > 18)
			return NULL;
		v = v * 10 + (*q - '0');
	}
	if (q < s->end && (*q == '.' || *q == 'e' || *q == 'E'))
		return NULL;
	s->p = q;
	return json_integer(neg ? -v : v);
}

static json_t *fast_literal(struct fast_in *s, const char *word, size_t n, json_t *v)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return NULL;
	s->p += n;
	return v;
}

static json_t *fast_object(struct fast_in *s)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	s->p++;
	fast_ws(s);
	if (fast_at(s, '}')) {
		s->p++;
		return o;
	}
	for (;;) {
		fast_ws(s);
		const char *k;
		size_t kn;
		if (!fast_at(s, '"') || !fast_string(s, &k, &kn))
			break;
		fast_ws(s);
		if (!fast_at(s, ':'))
			break;
		s->p++;
		json_t *v = fast_value(s);
		if (!v)
			break;
		if (json_object_getn(o, k, kn)) { /* a duplicate: jansson's error */
			json_decref(v);
			break;
		}
		if (json_object_setn_new_nocheck(o, k, kn, v) < 0) /* takes v either way */
			break;
		fast_ws(s);
		if (fast_at(s, ',')) {
			s->p++;
			continue;
		}
		if (fast_at(s, '}')) {
			s->p++;
			return o;
		}
		break;
	}
	json_decref(o);
	return NULL;
}

static json_t *fast_array(struct fast_in *s)
{
	json_t *a = json_array();
	if (!a)
		return NULL;
	s->p++;
	fast_ws(s);
	if (fast_at(s, ']')) {
		s->p++;
		return a;
	}
	for (;;) {
		json_t *v = fast_value(s);
		if (!v || json_array_append_new(a, v) < 0) /* takes v either way */
			break;
		fast_ws(s);
		if (fast_at(s, ',')) {
			s->p++;
			continue;
		}
		if (fast_at(s, ']')) {
			s->p++;
			return a;
		}
		break;
	}
	json_decref(a);
	return NULL;
}

static json_t *fast_value(struct fast_in *s)
{
	fast_ws(s);
	if (s->p >= s->end)
		return NULL;
	const char *v;
	size_t n;
	json_t *r;
	switch (*s->p) {
	case '{':
	case '[':
		if (++s->depth > s->max_depth)
			return NULL;
		r = *s->p == '{' ? fast_object(s) : fast_array(s);
		s->depth--;
		return r;
	case '"':
		return fast_string(s, &v, &n) ? json_stringn_nocheck(v, n) : NULL;
	case 't':
		return fast_literal(s, "true", 4, json_true());
	case 'f':
		return fast_literal(s, "false", 5, json_false());
	case 'n':
		return fast_literal(s, "null", 4, json_null());
	default:
		return fast_integer(s);
	}
}

json_t *mg_json_load_fast(const char *text, size_t len, size_t max_depth)
{
	struct fast_in s = { .p = text, .end = text + len, .depth = 0, .max_depth = max_depth };
	json_t *v = fast_value(&s);
	if (!v)
		return NULL;
	fast_ws(&s);
	if (s.p != s.end) {
		json_decref(v);
		return NULL;
	}
	return v;
}

int mg_rpc_parse(const char *text, size_t len, size_t max_depth, bool allow_batch,
                 struct mg_rpc_msg *msg, struct mg_rpc_fail *fail)
{
	memset(msg, 0, sizeof *msg);
	memset(fail, 0, sizeof *fail);
	json_error_t jerr;
	/* The fast loader refuses nesting beyond max_depth itself; what it
	 * declines has its depth checked before jansson (which recurses) sees it. */
	json_t *root = mg_json_load_fast(text, len, max_depth);
	if (!root) {
		if (mg_json_depth(text, len, max_depth) > max_depth) {
			char m[96];
			snprintf(m, sizeof m, "JSON nested deeper than %zu levels", max_depth);
			set_fail(fail, MG_RPC_PARSE_ERROR, m, NULL);
			return -1;
		}
		root = json_loadb(text, len,
		                  JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
	}
	if (!root) {
		char m[160];
		snprintf(m, sizeof m, "parse error at byte %d: %.100s", jerr.position, jerr.text);
		set_fail(fail, MG_RPC_PARSE_ERROR, m, NULL);
		return -1;
	}
	if (json_is_array(root)) {
		if (!allow_batch) {
			json_decref(root);
			set_fail(fail, MG_RPC_INVALID_REQUEST,
			         "JSON-RPC batches are not supported by this protocol version",
			         NULL);
			return -1;
		}
		if (json_array_size(root) == 0) {
			json_decref(root);
			set_fail(fail, MG_RPC_INVALID_REQUEST, "empty batch", NULL);
			return -1;
		}
		msg->root = root;
		msg->kind = MG_RPC_BATCH;
		return 0;
	}
	if (mg_rpc_classify(root, msg, fail) < 0) {
		json_decref(root);
		msg->root = NULL;
		return -1;
	}
	return 0;
}

void mg_rpc_msg_free(struct mg_rpc_msg *msg)
{
	json_decref(msg->root);
	memset(msg, 0, sizeof *msg);
}

json_t *mg_rpc_error_new(json_t *id, int code, const char *message, json_t *data)
{
	json_t *err = json_pack("{s:i,s:s}", "code", code, "message", message);
	if (err && data)
		json_object_set_new(err, "data", data);
	else if (data)
		json_decref(data);
	json_t *o = json_object();
	json_object_set_new(o, "jsonrpc", json_string("2.0"));
	json_object_set_new(o, "id", id ? json_deep_copy(id) : json_null());
	json_object_set_new(o, "error", err ? err : json_object());
	return o;
}

char *mg_json_dump(const json_t *v, size_t *len)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s && len)
		*len = strlen(s);
	return s;
}

bool mg_rpc_id_equal(const json_t *a, const json_t *b)
{
	if (!a || !b)
		return false;
	if (json_is_integer(a) && json_is_integer(b))
		return json_integer_value(a) == json_integer_value(b);
	if (json_is_string(a) && json_is_string(b))
		return json_string_length(a) == json_string_length(b) &&
		       memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) ==
		           0;
	return false;
}

json_t *mg_rpc_progress_token(const struct mg_rpc_msg *msg)
{
	json_t *meta = msg->params ? json_object_get(msg->params, "_meta") : NULL;
	json_t *tok = json_is_object(meta) ? json_object_get(meta, "progressToken") : NULL;
	return json_is_string(tok) || json_is_integer(tok) ? tok : NULL;
}
