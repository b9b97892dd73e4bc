/*
 * pathmap.c - request path → route.
 *
 * A handful of entries (a few per upstream), so a flat array searched
 * linearly: an exact entry wins; otherwise the longest prefix entry whose
 * path ends at a segment boundary of the request path. Comparisons are
 * byte-wise (case-sensitive) on the path as received: the HTTP parser has
 * already refused what is not a plain absolute path.
 */
#include "gateway/pathmap.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

struct entry {
	char *path;
	size_t len;
	bool prefix;
	void *value;
	int kind;
};

struct mg_pathmap {
	struct entry *v;
	size_t n, cap;
};

struct mg_pathmap *mg_pathmap_new(void)
{
	return calloc(1, sizeof(struct mg_pathmap));
}

void mg_pathmap_free(struct mg_pathmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	free(m);
}

int mg_pathmap_add(struct mg_pathmap *m, const char *path, bool prefix, void *value, int kind)
{
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->v[i].path, path) == 0)
			return -1;
	}
	struct entry *v = mg_grow(m->v, &m->cap, m->n + 1, sizeof *v);
	if (!v)
		return -1;
	m->v = v;
	char *copy = strdup(path);
	if (!copy)
		return -1;
	m->v[m->n++] = (struct entry){
		.path = copy, .len = strlen(path), .prefix = prefix, .value = value, .kind = kind
	};
	return 0;
}

/* `path` lies below entry e: e's path, then "/" (or e is "/"). */
static bool below(const struct entry *e, const char *path, size_t len)
{
	if (!e->prefix || len <= e->len || memcmp(path, e->path, e->len) != 0)
		return false;
	return e->path[e->len - 1] == '/' || path[e->len] == '/';
}

bool mg_pathmap_match(const struct mg_pathmap *m, const char *path, struct mg_pathmap_hit *out)
{
	size_t len = strlen(path);
	const struct entry *best = NULL;
	for (size_t i = 0; i < m->n; i++) {
		const struct entry *e = &m->v[i];
		if (e->len == len && memcmp(e->path, path, len) == 0) {
			best = e;
			break;
		}
		if (below(e, path, len) && (!best || e->len > best->len))
			best = e;
	}
	if (!best)
		return false;
	*out = (struct mg_pathmap_hit){ .value = best->value,
		                        .kind = best->kind,
		                        .matched = best->len };
	return true;
}
