/*
 * tree.c - configuration document tree: arena, nodes, member index.
 *
 * Memory comes from a chunked bump arena owned by the document. Table
 * members are found through one open-addressing hash per document keyed by
 * (table, key); removal leaves a tombstone. See tree.h.
 */
#include "config/tree.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK (64u * 1024)
#define TOMBSTONE   ((struct mg_cnode *)1)

struct chunk {
	struct chunk *next;
	size_t used, size;
	max_align_t data[];
};

struct mg_cdoc {
	struct chunk *chunks;
	char *file;
	struct mg_cnode *root;
	size_t nodes;
	struct mg_cnode **slots; /* member index */
	size_t cap, used;        /* used counts live entries and tombstones */
};

static void *arena_alloc(struct mg_cdoc *doc, size_t n)
{
	n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	struct chunk *c = doc->chunks;
	if (!c || c->size - c->used < n) {
		size_t size = n > ARENA_CHUNK / 2 ? n : ARENA_CHUNK;
		c = malloc(sizeof *c + size);
		if (!c)
			return NULL;
		c->size = size;
		c->used = 0;
		if (n > ARENA_CHUNK / 2 && doc->chunks) {
			/* A big block gets its own chunk behind the current one so the
			 * current chunk's free space is not wasted. */
			c->next = doc->chunks->next;
			doc->chunks->next = c;
		} else {
			c->next = doc->chunks;
			doc->chunks = c;
		}
	}
	void *p = (char *)c->data + c->used;
	c->used += n;
	memset(p, 0, n);
	return p;
}

struct mg_cdoc *mg_cdoc_new(const char *file)
{
	struct mg_cdoc *doc = calloc(1, sizeof *doc);
	if (!doc)
		return NULL;
	doc->file = strdup(file ? file : "<input>");
	doc->root = doc->file ? mg_cnode_new(doc, MG_CNODE_TABLE, 1, 1) : NULL;
	if (!doc->root) {
		mg_cdoc_free(doc);
		return NULL;
	}
	return doc;
}

void mg_cdoc_free(struct mg_cdoc *doc)
{
	if (!doc)
		return;
	struct chunk *c = doc->chunks;
	while (c) {
		struct chunk *next = c->next;
		free(c);
		c = next;
	}
	free(doc->slots);
	free(doc->file);
	free(doc);
}

struct mg_cnode *mg_cdoc_root(struct mg_cdoc *doc)
{
	return doc->root;
}

const char *mg_cdoc_file(const struct mg_cdoc *doc)
{
	return doc->file;
}

void *mg_cdoc_alloc(struct mg_cdoc *doc, size_t n)
{
	return arena_alloc(doc, n);
}

char *mg_cdoc_strndup(struct mg_cdoc *doc, const char *s, size_t n)
{
	char *p = arena_alloc(doc, n + 1);
	if (!p)
		return NULL;
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

struct mg_cnode *mg_cnode_new(struct mg_cdoc *doc, enum mg_cnode_type type, uint32_t line,
                              uint32_t col)
{
	if (doc->nodes >= MG_CDOC_MAX_NODES)
		return NULL;
	struct mg_cnode *n = arena_alloc(doc, sizeof *n);
	if (!n)
		return NULL;
	doc->nodes++;
	n->type = type;
	n->loc.file = doc->file;
	n->loc.line = line;
	n->loc.col = col;
	n->key_loc = n->loc;
	return n;
}

void mg_cnode_push(struct mg_cnode *array, struct mg_cnode *child)
{
	child->parent = array;
	child->next = NULL;
	if (array->last)
		array->last->next = child;
	else
		array->first = child;
	array->last = child;
	array->count++;
}

static uint64_t slot_hash(const struct mg_cnode *table, const char *key, size_t len)
{
	uint64_t h = 1469598103934665603ull ^ ((uint64_t)(uintptr_t)table * 0x9E3779B97F4A7C15ull);
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

static bool slot_matches(const struct mg_cnode *n, const struct mg_cnode *table, const char *key,
                         size_t len)
{
	return n != TOMBSTONE && n->parent == table && n->key_len == len &&
	       memcmp(n->key, key, len) == 0;
}

static int grow_index(struct mg_cdoc *doc)
{
	size_t cap = doc->cap ? doc->cap * 2 : 64;
	struct mg_cnode **slots = calloc(cap, sizeof *slots);
	if (!slots)
		return -1;
	size_t used = 0;
	for (size_t i = 0; i < doc->cap; i++) {
		struct mg_cnode *n = doc->slots[i];
		if (!n || n == TOMBSTONE)
			continue;
		size_t j = slot_hash(n->parent, n->key, n->key_len) & (cap - 1);
		while (slots[j])
			j = (j + 1) & (cap - 1);
		slots[j] = n;
		used++;
	}
	free(doc->slots);
	doc->slots = slots;
	doc->cap = cap;
	doc->used = used;
	return 0;
}

struct mg_cnode *mg_cnode_get(const struct mg_cdoc *doc, const struct mg_cnode *table,
                              const char *key, size_t key_len)
{
	if (!doc->cap || !table || table->type != MG_CNODE_TABLE)
		return NULL;
	size_t j = slot_hash(table, key, key_len) & (doc->cap - 1);
	for (struct mg_cnode *n; (n = doc->slots[j]) != NULL; j = (j + 1) & (doc->cap - 1)) {
		if (slot_matches(n, table, key, key_len))
			return n;
	}
	return NULL;
}

struct mg_cnode *mg_cnode_getz(const struct mg_cdoc *doc, const struct mg_cnode *table,
                               const char *key)
{
	return mg_cnode_get(doc, table, key, strlen(key));
}

int mg_cnode_set(struct mg_cdoc *doc, struct mg_cnode *table, const char *key, size_t key_len,
                 struct mg_cnode *child)
{
	if (mg_cnode_get(doc, table, key, key_len))
		return 1;
	if ((doc->used + 1) * 4 >= doc->cap * 3 && grow_index(doc) < 0)
		return -1;
	char *k = mg_cdoc_strndup(doc, key, key_len);
	if (!k)
		return -1;
	child->key = k;
	child->key_len = key_len;
	mg_cnode_push(table, child);
	size_t j = slot_hash(table, key, key_len) & (doc->cap - 1);
	while (doc->slots[j] && doc->slots[j] != TOMBSTONE)
		j = (j + 1) & (doc->cap - 1);
	if (!doc->slots[j])
		doc->used++;
	doc->slots[j] = child;
	return 0;
}

bool mg_cnode_remove(struct mg_cdoc *doc, struct mg_cnode *table, const char *key, size_t key_len)
{
	if (!doc->cap)
		return false;
	size_t j = slot_hash(table, key, key_len) & (doc->cap - 1);
	for (struct mg_cnode *n; (n = doc->slots[j]) != NULL; j = (j + 1) & (doc->cap - 1)) {
		if (!slot_matches(n, table, key, key_len))
			continue;
		doc->slots[j] = TOMBSTONE;
		struct mg_cnode *prev = NULL;
		for (struct mg_cnode *c = table->first; c; prev = c, c = c->next) {
			if (c != n)
				continue;
			if (prev)
				prev->next = c->next;
			else
				table->first = c->next;
			if (table->last == c)
				table->last = prev;
			table->count--;
			break;
		}
		return true;
	}
	return false;
}

const char *mg_cnode_type_name(enum mg_cnode_type type)
{
	switch (type) {
	case MG_CNODE_TABLE:
		return "table";
	case MG_CNODE_ARRAY:
		return "array";
	case MG_CNODE_STRING:
		return "string";
	case MG_CNODE_INTEGER:
		return "integer";
	case MG_CNODE_FLOAT:
		return "float";
	case MG_CNODE_BOOL:
		return "boolean";
	case MG_CNODE_DATETIME:
		return "offset date-time";
	case MG_CNODE_DATETIME_LOCAL:
		return "local date-time";
	case MG_CNODE_DATE_LOCAL:
		return "local date";
	case MG_CNODE_TIME_LOCAL:
		return "local time";
	case MG_CNODE_NULL:
		return "null";
	}
	return "?";
}
