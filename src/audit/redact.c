/*
 * redact.c - what is removed from tool arguments and results before an
 * audit event is queued.
 *
 * Runs on the loop thread on a deep copy of the value, so nothing
 * unredacted is ever put on the queue or leaves the process. Two kinds of
 * rule, both from [audit]:
 *
 * - redact_paths: JSON paths rooted at the recorded value (`$` is the
 *   tool's arguments object, or the tool's result): `$.password`,
 *   `$.user.token`, `$..secret` (that key at any depth), `$.items[*].key`,
 *   `$.list[0]`, `$['key with spaces']`. A matched value becomes the string
 *   "[REDACTED]".
 * - redact_patterns: POSIX extended regular expressions (<regex.h>); every
 *   match inside every string value is replaced by "[REDACTED]".
 *
 * Limits: 64 rules of each kind; paths as util/jpath.h says.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/internal.h"
#include "util/jpath.h"
#include "util/str.h"

#define MAX_RULES 64
#define REDACTED  "[REDACTED]"

struct mg_audit_redactor {
	struct mg_jpath *paths;
	size_t n_paths;
	regex_t *re;
	size_t n_re;
	bool arguments, results;
};

bool mg_audit_redactor_arguments(const struct mg_audit_redactor *rd)
{
	return rd && rd->arguments;
}

bool mg_audit_redactor_results(const struct mg_audit_redactor *rd)
{
	return rd && rd->results;
}

struct mg_audit_redactor *mg_audit_redactor_new(const struct mg_strv *paths,
                                                const struct mg_strv *patterns, bool arguments,
                                                bool results, char *err, size_t err_size,
                                                size_t *err_index, bool *err_is_path)
{
	struct mg_audit_redactor *rd = calloc(1, sizeof *rd);
	size_t np = paths ? paths->n : 0, nr = patterns ? patterns->n : 0;
	char why[256];
	if (!rd)
		goto oom;
	rd->arguments = arguments;
	rd->results = results;
	if (np > MAX_RULES || nr > MAX_RULES) {
		snprintf(err, err_size, "at most %d redact_paths and %d redact_patterns", MAX_RULES,
		         MAX_RULES);
		*err_index = 0;
		*err_is_path = np > MAX_RULES;
		goto fail;
	}
	rd->paths = calloc(np ? np : 1, sizeof *rd->paths);
	rd->re = calloc(nr ? nr : 1, sizeof *rd->re);
	if (!rd->paths || !rd->re)
		goto oom;
	for (size_t i = 0; i < np; i++) {
		if (mg_jpath_parse(paths->v[i], &rd->paths[i], why, sizeof why) < 0) {
			snprintf(err, err_size, "invalid JSON path \"%s\": %s", paths->v[i], why);
			*err_index = i;
			*err_is_path = true;
			goto fail;
		}
		rd->n_paths++;
	}
	for (size_t i = 0; i < nr; i++) {
		int rc = regcomp(&rd->re[i], patterns->v[i], REG_EXTENDED);
		if (rc != 0) {
			regerror(rc, &rd->re[i], why, sizeof why);
			snprintf(err, err_size, "invalid regular expression \"%s\": %s",
			         patterns->v[i], why);
			*err_index = i;
			*err_is_path = false;
			goto fail;
		}
		rd->n_re++;
	}
	return rd;
oom:
	snprintf(err, err_size, "out of memory");
	*err_index = 0;
	*err_is_path = false;
fail:
	mg_audit_redactor_free(rd);
	return NULL;
}

void mg_audit_redactor_free(struct mg_audit_redactor *rd)
{
	if (!rd)
		return;
	for (size_t i = 0; i < rd->n_paths; i++)
		mg_jpath_free(&rd->paths[i]);
	for (size_t i = 0; i < rd->n_re; i++)
		regfree(&rd->re[i]);
	free(rd->paths);
	free(rd->re);
	free(rd);
}

static bool seg_matches_key(const struct mg_jpath_seg *g, const char *key)
{
	return g->kind == MG_JPATH_ANY || (g->kind == MG_JPATH_NAME && strcmp(g->name, key) == 0);
}

static bool seg_matches_index(const struct mg_jpath_seg *g, size_t i)
{
	return g->kind == MG_JPATH_ANY || (g->kind == MG_JPATH_INDEX && g->index == i);
}

static void apply_path(json_t *v, const struct mg_jpath *p, size_t i);

/* A child matched segment i: redact it (last segment) or descend. */
static void on_match(json_t *parent, const char *key, size_t idx, json_t *child,
                     const struct mg_jpath *p, size_t i)
{
	if (i + 1 == p->n) {
		json_t *r = json_string(REDACTED);
		if (key)
			json_object_set_new(parent, key, r);
		else
			json_array_set_new(parent, idx, r);
	} else {
		apply_path(child, p, i + 1);
	}
}

static void apply_path(json_t *v, const struct mg_jpath *p, size_t i)
{
	const struct mg_jpath_seg *g = &p->seg[i];
	if (json_is_object(v)) {
		const char *key;
		json_t *child;
		void *tmp;
		json_object_foreach_safe(v, tmp, key, child)
		{
			/* descend first: a match replaces `child` */
			if (g->deep && (json_is_object(child) || json_is_array(child)))
				apply_path(child, p, i);
			if (seg_matches_key(g, key))
				on_match(v, key, 0, child, p, i);
		}
	} else if (json_is_array(v)) {
		for (size_t k = 0; k < json_array_size(v); k++) {
			json_t *child = json_array_get(v, k);
			if (g->deep && (json_is_object(child) || json_is_array(child)))
				apply_path(child, p, i);
			if (seg_matches_index(g, k))
				on_match(v, NULL, k, child, p, i);
		}
	}
}

/* Replaces every match of the patterns in `s`; NULL when nothing matched. */
static char *redact_string(const struct mg_audit_redactor *rd, const char *s)
{
	char *cur = NULL;
	for (size_t r = 0; r < rd->n_re; r++) {
		const char *in = cur ? cur : s;
		struct mg_buf b;
		mg_buf_init(&b, 0);
		const char *p = in;
		bool any = false;
		regmatch_t m;
		int flags = 0;
		while (*p && regexec(&rd->re[r], p, 1, &m, flags) == 0) {
			any = true;
			mg_buf_append(&b, p, (size_t)m.rm_so);
			mg_buf_puts(&b, REDACTED);
			if (m.rm_eo == m.rm_so) {
				/* an empty match: keep one byte and move on */
				mg_buf_append(&b, p + m.rm_eo, 1);
				p += m.rm_eo + 1;
			} else {
				p += m.rm_eo;
			}
			flags = REG_NOTBOL;
		}
		if (!any) {
			mg_buf_free(&b);
			continue;
		}
		mg_buf_puts(&b, p);
		free(cur);
		cur = mg_buf_steal(&b);
		if (!cur)
			cur = mg_strdup(REDACTED);
	}
	return cur;
}

static void apply_patterns(const struct mg_audit_redactor *rd, json_t *v)
{
	if (json_is_object(v)) {
		const char *key;
		json_t *child;
		void *tmp;
		json_object_foreach_safe(v, tmp, key, child)
		{
			if (json_is_string(child)) {
				char *r = redact_string(rd, json_string_value(child));
				if (r)
					json_object_set_new(v, key, json_string(r));
				free(r);
			} else {
				apply_patterns(rd, child);
			}
		}
	} else if (json_is_array(v)) {
		for (size_t k = 0; k < json_array_size(v); k++) {
			json_t *child = json_array_get(v, k);
			if (json_is_string(child)) {
				char *r = redact_string(rd, json_string_value(child));
				if (r)
					json_array_set_new(v, k, json_string(r));
				free(r);
			} else {
				apply_patterns(rd, child);
			}
		}
	}
}

json_t *mg_audit_redact(const struct mg_audit_redactor *rd, const json_t *v)
{
	for (size_t i = 0; rd && i < rd->n_paths; i++) {
		if (rd->paths[i].n == 0)
			return json_string(REDACTED); /* "$": the whole value */
	}
	json_t *copy = json_deep_copy(v);
	if (!copy || !rd)
		return copy;
	for (size_t i = 0; i < rd->n_paths; i++)
		apply_path(copy, &rd->paths[i], 0);
	if (rd->n_re) {
		if (json_is_string(copy)) {
			char *r = redact_string(rd, json_string_value(copy));
			if (r) {
				json_decref(copy);
				copy = json_string(r);
				free(r);
			}
		} else {
			apply_patterns(rd, copy);
		}
	}
	return copy;
}
