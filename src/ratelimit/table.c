/*
 * table.c - the in-memory GCRA table: one TAT per key, bounded, O(1).
 *
 * A chained hash table over one array of entries addressed by 32-bit
 * index (so the array may grow by realloc while warming up: no pointer into
 * it is kept across an insertion). Buckets hold the index of the first entry
 * of their chain; unused entries form a free list through the same `chain`
 * field. Every entry in use is also on an intrusive doubly-linked LRU list
 * (head = most recently used), which makes both "evict the least recently
 * used key when full" and "sweep the idle keys" O(1) per key: the sweep
 * walks from the tail and stops at the first key that is not idle.
 *
 * Keys up to KEY_INLINE bytes live in the entry; longer ones (up to
 * MG_RL_MAX_KEY) in a heap buffer that stays with the entry when it is
 * recycled, so a warm table allocates nothing per check; longer still are
 * replaced by their SHA-256 (mg_rl_key_init). The hash is SipHash-1-3 with
 * a random key per table: keys come from clients (addresses, identities,
 * tool names), so the chains must not be predictable.
 *
 * Idle: a key unused for max(idle_us, the largest tau + T seen) is dropped
 * by the sweep. The second term keeps sweeping lossless: after tau + T
 * without a request every key's bucket is full again, so forgetting it
 * changes no decision. LRU eviction when the table is full may forget a
 * limited key; that is the price of the bound.
 */
#include <stdlib.h>
#include <string.h>

#include "ratelimit/internal.h"

#define KEY_INLINE 48
#define NIL        UINT32_MAX

struct rl_entry {
	uint64_t hash;
	int64_t tat;
	int64_t last_used;
	uint32_t chain; /* next in the bucket, or in the free list */
	uint32_t lru_prev, lru_next;
	uint16_t key_len;
	uint16_t heap_cap; /* capacity of heap; 0: none */
	bool hashed;
	bool used;
	char inline_key[KEY_INLINE];
	char *heap; /* keys longer than KEY_INLINE */
};

struct mg_rl_table {
	struct rl_entry *e;
	uint32_t cap;   /* entries allocated */
	uint32_t max;   /* entries allowed */
	uint32_t count; /* entries in use */
	uint32_t free_head;
	uint32_t *buckets;
	uint32_t nbuckets; /* power of two */
	uint32_t lru_head, lru_tail;
	int64_t idle_us;
	int64_t max_hold_us; /* largest tau + T seen */
	uint64_t sip_k0, sip_k1;
};

/* ---- SipHash-1-3 --------------------------------------------------------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = ROTL(v1, 13);                                                                 \
		v1 ^= v0;                                                                          \
		v0 = ROTL(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = ROTL(v3, 16);                                                                 \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = ROTL(v3, 21);                                                                 \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = ROTL(v1, 17);                                                                 \
		v1 ^= v2;                                                                          \
		v2 = ROTL(v2, 32);                                                                 \
	} while (0)

static uint64_t load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static uint64_t siphash13(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
	const uint8_t *in = data;
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
	uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
	uint64_t v3 = 0x7465646279746573ULL ^ k1;
	const uint8_t *end = in + (len - len % 8);
	for (; in != end; in += 8) {
		uint64_t m = load64(in);
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	uint64_t b = (uint64_t)len << 56;
	switch (len & 7) {
	case 7:
		b |= (uint64_t)in[6] << 48;
		/* fall through */
	case 6:
		b |= (uint64_t)in[5] << 40;
		/* fall through */
	case 5:
		b |= (uint64_t)in[4] << 32;
		/* fall through */
	case 4:
		b |= (uint64_t)in[3] << 24;
		/* fall through */
	case 3:
		b |= (uint64_t)in[2] << 16;
		/* fall through */
	case 2:
		b |= (uint64_t)in[1] << 8;
		/* fall through */
	case 1:
		b |= (uint64_t)in[0];
		break;
	default:
		break;
	}
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- keys ---------------------------------------------------------------------------- */

void mg_rl_key_init(struct mg_rl_key *k, const char *key, size_t len)
{
	if (len > MG_RL_MAX_KEY) {
		mg_sha256(key, len, k->digest);
		k->p = (const char *)k->digest;
		k->len = MG_SHA256_LEN;
		k->hashed = true;
	} else {
		k->p = key;
		k->len = len;
		k->hashed = false;
	}
}

static const char *entry_key(const struct rl_entry *e)
{
	return e->key_len <= KEY_INLINE ? e->inline_key : e->heap;
}

static bool entry_matches(const struct rl_entry *e, uint64_t h, const struct mg_rl_key *k)
{
	return e->hash == h && e->key_len == k->len && e->hashed == k->hashed &&
	       memcmp(entry_key(e), k->p, k->len) == 0;
}

/* Stores the key in the entry; the heap buffer of a recycled entry is kept
 * when it is large enough. Returns -1 on allocation failure. */
static int entry_set_key(struct rl_entry *e, const struct mg_rl_key *k)
{
	if (k->len <= KEY_INLINE) {
		memcpy(e->inline_key, k->p, k->len);
	} else {
		if (e->heap_cap < k->len) {
			size_t cap = (k->len + 63) & ~(size_t)63;
			char *p = malloc(cap);
			if (!p)
				return -1;
			if (e->heap_cap)
				free(e->heap);
			e->heap = p;
			e->heap_cap = (uint16_t)cap;
		}
		memcpy(e->heap, k->p, k->len);
	}
	e->key_len = (uint16_t)k->len;
	e->hashed = k->hashed;
	return 0;
}

/* ---- LRU list ------------------------------------------------------------------------ */

static void lru_unlink(struct mg_rl_table *t, uint32_t i)
{
	struct rl_entry *e = &t->e[i];
	if (e->lru_prev != NIL)
		t->e[e->lru_prev].lru_next = e->lru_next;
	else
		t->lru_head = e->lru_next;
	if (e->lru_next != NIL)
		t->e[e->lru_next].lru_prev = e->lru_prev;
	else
		t->lru_tail = e->lru_prev;
}

static void lru_push_head(struct mg_rl_table *t, uint32_t i)
{
	struct rl_entry *e = &t->e[i];
	e->lru_prev = NIL;
	e->lru_next = t->lru_head;
	if (t->lru_head != NIL)
		t->e[t->lru_head].lru_prev = i;
	else
		t->lru_tail = i;
	t->lru_head = i;
}

/* ---- table --------------------------------------------------------------------------- */

struct mg_rl_table *mg_rl_table_new(size_t max_entries, int64_t idle_us)
{
	struct mg_rl_table *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	if (max_entries < 1)
		max_entries = 1;
	if (max_entries > UINT32_MAX / 2)
		max_entries = UINT32_MAX / 2;
	t->max = (uint32_t)max_entries;
	t->idle_us = idle_us > 0 ? idle_us : 0;
	t->free_head = NIL;
	t->lru_head = t->lru_tail = NIL;
	uint64_t k[2];
	if (mg_random_bytes(k, sizeof k) < 0) {
		/* Unpredictable enough without the CSPRNG: address and clock. */
		k[0] = (uint64_t)(uintptr_t)t ^ 0x9e3779b97f4a7c15ULL;
		k[1] = (uint64_t)(uintptr_t)&k ^ (uint64_t)idle_us;
	}
	t->sip_k0 = k[0];
	t->sip_k1 = k[1];
	t->nbuckets = 16;
	t->buckets = malloc(t->nbuckets * sizeof *t->buckets);
	if (!t->buckets) {
		free(t);
		return NULL;
	}
	memset(t->buckets, 0xff, t->nbuckets * sizeof *t->buckets);
	return t;
}

void mg_rl_table_free(struct mg_rl_table *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->cap; i++)
		if (t->e[i].heap_cap)
			free(t->e[i].heap);
	free(t->e);
	free(t->buckets);
	free(t);
}

size_t mg_rl_table_size(const struct mg_rl_table *t)
{
	return t->count;
}

static uint32_t *bucket_of(struct mg_rl_table *t, uint64_t h)
{
	return &t->buckets[h & (t->nbuckets - 1)];
}

static void bucket_remove(struct mg_rl_table *t, uint32_t i)
{
	uint32_t *p = bucket_of(t, t->e[i].hash);
	while (*p != i)
		p = &t->e[*p].chain;
	*p = t->e[i].chain;
}

static void entry_release(struct mg_rl_table *t, uint32_t i)
{
	bucket_remove(t, i);
	lru_unlink(t, i);
	t->e[i].used = false;
	t->e[i].chain = t->free_head;
	t->free_head = i;
	t->count--;
}

/* Doubles the buckets when the chains would grow past one entry on average. */
static void maybe_grow_buckets(struct mg_rl_table *t)
{
	if (t->count < t->nbuckets || t->nbuckets >= (UINT32_MAX / 2 + 1))
		return;
	uint32_t n = t->nbuckets * 2;
	uint32_t *b = malloc((size_t)n * sizeof *b);
	if (!b)
		return; /* longer chains, still correct */
	memset(b, 0xff, (size_t)n * sizeof *b);
	for (uint32_t i = 0; i < t->cap; i++) {
		if (!t->e[i].used)
			continue;
		uint32_t *head = &b[t->e[i].hash & (n - 1)];
		t->e[i].chain = *head;
		*head = i;
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

/* An unused entry index: from the free list, by growing the array, or by
 * evicting the least recently used key. NIL only on allocation failure with
 * an empty table. */
static uint32_t entry_take(struct mg_rl_table *t)
{
	if (t->free_head == NIL && t->cap < t->max) {
		uint32_t ncap = t->cap ? t->cap * 2 : 64;
		if (ncap > t->max || ncap < t->cap)
			ncap = t->max;
		struct rl_entry *e = realloc(t->e, (size_t)ncap * sizeof *e);
		if (e) {
			memset(e + t->cap, 0, (size_t)(ncap - t->cap) * sizeof *e);
			for (uint32_t i = ncap; i-- > t->cap;) {
				e[i].chain = t->free_head;
				t->free_head = i;
			}
			t->e = e;
			t->cap = ncap;
		}
	}
	if (t->free_head == NIL) {
		if (t->lru_tail == NIL)
			return NIL;
		entry_release(t, t->lru_tail);
	}
	uint32_t i = t->free_head;
	t->free_head = t->e[i].chain;
	return i;
}

void mg_rl_table_check_key(struct mg_rl_table *t, const struct mg_rl_key *k, int64_t now_us,
                           const struct mg_rate *r, struct mg_rl_decision *out)
{
	struct mg_gcra_params p;
	mg_gcra_params(r, &p);
	if (p.tau + p.t > t->max_hold_us)
		t->max_hold_us = p.tau + p.t;

	uint64_t h = siphash13(t->sip_k0, t->sip_k1, k->p, k->len);
	uint32_t i = *bucket_of(t, h);
	while (i != NIL && !entry_matches(&t->e[i], h, k))
		i = t->e[i].chain;
	if (i != NIL) {
		lru_unlink(t, i);
	} else {
		i = entry_take(t);
		if (i == NIL) {
			/* Out of memory with nothing to evict: decide as for a fresh
			 * key rather than refuse because of bookkeeping. */
			int64_t tat = 0;
			mg_gcra_with(&tat, now_us, &p, out);
			return;
		}
		struct rl_entry *e = &t->e[i];
		if (entry_set_key(e, k) < 0) {
			e->chain = t->free_head;
			t->free_head = i;
			int64_t tat = 0;
			mg_gcra_with(&tat, now_us, &p, out);
			return;
		}
		e->hash = h;
		e->tat = 0;
		e->used = true;
		uint32_t *head = bucket_of(t, h);
		e->chain = *head;
		*head = i;
		t->count++;
	}
	lru_push_head(t, i);
	t->e[i].last_used = now_us;
	mg_gcra_with(&t->e[i].tat, now_us, &p, out);
	maybe_grow_buckets(t);
}

void mg_rl_table_peek(struct mg_rl_table *t, const char *key, size_t len, int64_t now_us,
                      const struct mg_rate *r, struct mg_rl_decision *out)
{
	struct mg_rl_key k;
	struct mg_gcra_params p;
	mg_rl_key_init(&k, key, len);
	mg_gcra_params(r, &p);
	uint64_t h = siphash13(t->sip_k0, t->sip_k1, k.p, k.len);
	uint32_t i = *bucket_of(t, h);
	while (i != NIL && !entry_matches(&t->e[i], h, &k))
		i = t->e[i].chain;
	/* Decide on a copy: a peek never charges. */
	int64_t tat = i != NIL ? t->e[i].tat : 0;
	mg_gcra_with(&tat, now_us, &p, out);
}

void mg_rl_table_check(struct mg_rl_table *t, const char *key, size_t len, int64_t now_us,
                       const struct mg_rate *r, struct mg_rl_decision *out)
{
	struct mg_rl_key k;
	mg_rl_key_init(&k, key, len);
	mg_rl_table_check_key(t, &k, now_us, r, out);
}

size_t mg_rl_table_sweep_some(struct mg_rl_table *t, int64_t now_us, size_t max)
{
	int64_t idle = t->idle_us > t->max_hold_us ? t->idle_us : t->max_hold_us;
	size_t n = 0;
	while (n < max && t->lru_tail != NIL) {
		int64_t last = t->e[t->lru_tail].last_used;
		int64_t age;
		if (__builtin_sub_overflow(now_us, last, &age))
			age = now_us > last ? INT64_MAX : INT64_MIN;
		if (age < idle)
			break;
		entry_release(t, t->lru_tail);
		n++;
	}
	return n;
}

size_t mg_rl_table_sweep(struct mg_rl_table *t, int64_t now_us)
{
	return mg_rl_table_sweep_some(t, now_us, SIZE_MAX);
}
