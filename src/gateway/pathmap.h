/*
 * pathmap.h - which route a request path reaches (pure: no gateway state,
 * unit-tested on its own).
 */
#ifndef MG_GATEWAY_PATHMAP_H
#define MG_GATEWAY_PATHMAP_H

#include <stdbool.h>
#include <stddef.h>

struct mg_pathmap;

struct mg_pathmap_hit {
	void *value;
	int kind;
	size_t matched; /* length of the entry's path */
};

/* An empty map; NULL when out of memory. */
struct mg_pathmap *mg_pathmap_new(void);
void mg_pathmap_free(struct mg_pathmap *m);

/* Adds `path` (copied) → (value, kind). With `prefix`, the entry also
 * serves every path below it on a segment boundary ("/files" serves
 * "/files/x", never "/filesx"). Returns 0, -1 when the path is already in
 * the map (or out of memory). */
int mg_pathmap_add(struct mg_pathmap *m, const char *path, bool prefix, void *value, int kind);

/* The entry for `path`: an exact entry, else the longest prefix entry
 * (case-sensitive). false when none. */
bool mg_pathmap_match(const struct mg_pathmap *m, const char *path, struct mg_pathmap_hit *out);

#endif
