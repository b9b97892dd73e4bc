/*
 * jtext.h - walking JSON text that mg_jscan accepted, without a tree.
 *
 * The fast paths relay upstream answers as text (jscan.h). A few of them
 * need to look one level further in than jscan records: the items of a
 * list result and one member of each item (a federated list renames every
 * tool, a relayed tools/call result says isError or not). These helpers
 * walk such text: they skip values by their brackets and quotes only, so
 * they are exact on text mg_jscan accepted (valid JSON, no key with an
 * escape, so keys compare byte for byte) and merely bounded - never past
 * `end`, never an answer of "found" they cannot back - on anything else.
 */
#ifndef MG_MCP_JTEXT_H
#define MG_MCP_JTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "mcp/jscan.h"

/* The value of member `key` of the object at `obj` (braces included).
 * false when absent, or when `obj` is not an object. */
bool mg_jtext_member(const char *text, struct mg_jspan obj, const char *key, struct mg_jspan *out);

/* The values of several members in one walk: out[i] for keys[i] (both n
 * long; {0, 0} when absent). Answers how many were found. */
size_t mg_jtext_members(const char *text, struct mg_jspan obj, const char *const *keys, size_t n,
                        struct mg_jspan *out);

/* The elements of the array at `arr` (brackets included), one by one:
 *
 *   struct mg_jiter it;
 *   struct mg_jspan e;
 *   mg_jtext_items(&it, text, arr);
 *   while (mg_jtext_next(&it, &e) > 0) ...
 *
 * next answers 1 with an element, 0 at the end (it->pos is then just past
 * the closing bracket, so `arr` may extend beyond the array: only its
 * start matters), -1 on text it cannot walk (not an array; only when the
 * text did not pass mg_jscan). */
struct mg_jiter {
	const char *text;
	size_t pos, end;
	bool started, done, bad;
};
void mg_jtext_items(struct mg_jiter *it, const char *text, struct mg_jspan arr);
int mg_jtext_next(struct mg_jiter *it, struct mg_jspan *out);

/* The members of the object at `obj` one by one, each value walked once:
 *
 *   struct mg_jfields f;
 *   struct mg_jspan key;   (the key's bytes, quotes excluded)
 *   size_t at;             (where its value starts)
 *   mg_jtext_fields(&f, text, obj);
 *   while (mg_jtext_field(&f, &key, &at) > 0)
 *           either mg_jtext_field_skip(&f)         (then f.pos ends the value)
 *           or walk the value and mg_jtext_field_resume(&f, just past it)
 *
 * field answers 1 with a member, 0 at the end, -1 on text it cannot walk.
 * Exactly one of skip or resume must follow each member. */
struct mg_jfields {
	const char *text;
	size_t pos, end;
	bool started, bad;
};
void mg_jtext_fields(struct mg_jfields *f, const char *text, struct mg_jspan obj);
int mg_jtext_field(struct mg_jfields *f, struct mg_jspan *key, size_t *value);
void mg_jtext_field_skip(struct mg_jfields *f);
void mg_jtext_field_resume(struct mg_jfields *f, size_t pos);
/* true when `key` (from mg_jtext_field) is `name`. */
bool mg_jtext_key_is(const char *text, struct mg_jspan key, const char *name);

/* true when the value at `v` is the literal `true`. */
bool mg_jtext_is_true(const char *text, struct mg_jspan v);

/* true when member `key` of the object at `obj` is the literal `true`.
 * Text without the key's bytes is answered by one search, without a walk
 * (the common case: a tool result without isError). Like every walk here,
 * for text mg_jscan accepted: its keys carry no escape. */
bool mg_jtext_member_true(const char *text, struct mg_jspan obj, const char *key);

/* true when the value at `v` is a string without escapes (its content,
 * quotes excluded, is then text[v.start + 1, v.end - 1) as it is). */
bool mg_jtext_plain_string(const char *text, struct mg_jspan v);

#endif
