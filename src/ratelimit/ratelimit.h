/*
 * ratelimit.h - per-identity rate limiting with GCRA (the generic cell rate
 * algorithm, as the governor crate implements it), in memory or shared
 * between gateway instances through Redis.
 *
 * PREACCESS phase. A limit is a sustained rate (requests per second) and a
 * burst (requests that may arrive at once above it). GCRA keeps one number
 * per key, the theoretical arrival time (TAT): a request at time t is
 * allowed when t >= TAT - tau (tau = (burst - 1) * T, T = 1 / rate), and
 * then TAT = max(TAT, t) + T. Pure arithmetic takes time as a parameter.
 *
 * Keys are strings chosen by the caller: "id:<identity key>" for the
 * identity, "tool:<identity key>:<tool>" for per-tool limits, "ip:<addr>"
 * for unauthenticated floods.
 */
#ifndef MG_RATELIMIT_RATELIMIT_H
#define MG_RATELIMIT_RATELIMIT_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mg_rate {
	double per_second; /* > 0 */
	int64_t burst;     /* >= 1 */
};

struct mg_rl_decision {
	bool allowed;
	int64_t limit;     /* the burst size (X-RateLimit-Limit); in a fallback, this
	                         * instance's share of it */
	int64_t remaining; /* requests that could still be made now (X-RateLimit-Remaining) */
	int64_t reset_us;  /* until the bucket is full again (X-RateLimit-Reset, in s rounded up) */
	int64_t
	    retry_after_us; /* refused: until one request is allowed (Retry-After, s rounded up) */
	bool fallback;      /* decided in memory because the shared store is unavailable */
};

/* GCRA on one TAT (microseconds; 0 = never used). Pure. With
 * T = round(1e6 / per_second) (>= 1) and tau = (burst - 1) * T, both capped
 * at 2^50 µs: allowed iff now >= tat - tau, then tat = max(tat, now) + T,
 * remaining = floor((now - (tat - tau - T)) / T) in [0, burst - 1],
 * reset = tat - now; refused: remaining 0, retry_after = tat - tau - now,
 * tat unchanged. Saturating: no input overflows. */
void mg_gcra(int64_t *tat_us, int64_t now_us, const struct mg_rate *r, struct mg_rl_decision *out);

/* ---- in-memory table ----------------------------------------------------------------- */

struct mg_rl_table;

/* A table of at most `max_entries` keys; a key unused for `idle_us` may be
 * evicted (and is, when space is needed). The sweep keeps a key at least
 * tau + T of the slowest rate it has seen, so it never forgets a key whose
 * bucket is not full yet; the LRU eviction of a full table may. Keys longer
 * than 512 bytes are kept as their SHA-256. NULL when out of memory. */
struct mg_rl_table *mg_rl_table_new(size_t max_entries, int64_t idle_us);
void mg_rl_table_free(struct mg_rl_table *t);

/* Checks and updates `key` (any bytes, `len` long) in O(1). When the table
 * is full and nothing is evictable, the least recently used key is evicted
 * (never refuse because of bookkeeping). */
void mg_rl_table_check(struct mg_rl_table *t, const char *key, size_t len, int64_t now_us,
                       const struct mg_rate *r, struct mg_rl_decision *out);

/* Decides for `key` as mg_rl_table_check would, without charging it. */
void mg_rl_table_peek(struct mg_rl_table *t, const char *key, size_t len, int64_t now_us,
                      const struct mg_rate *r, struct mg_rl_decision *out);

/* Removes keys idle longer than idle_us; returns how many. Call from a timer. */
size_t mg_rl_table_sweep(struct mg_rl_table *t, int64_t now_us);

size_t mg_rl_table_size(const struct mg_rl_table *t);

/* ---- the limiter (memory, or Redis with memory fallback) ------------------------------ */

struct mg_ratelimiter;

struct mg_ratelimiter_opts {
	size_t max_entries; /* 0: 100000 */
	int64_t idle_secs;
	const char *redis_url;      /* NULL: memory only. redis://[user:pass@]host[:port][/db]
	                         * or unix:///path[?db=N][&password=…][&user=…];
	                         * rediss:// (TLS) is refused by mg_ratelimiter_new */
	int64_t redis_timeout_ms;   /* per check; beyond it the memory limiter answers (<= 0: 50) */
	int64_t expected_instances; /* while Redis is down each instance allows rate / this,
	                             * burst / this rounded up (<= 1: 1) */
	const char *key_prefix;     /* namespacing in Redis; NULL: "mcp-guard:rl:" */
};

typedef void (*mg_rl_done_fn)(const struct mg_rl_decision *d, void *arg);

/* A limiter. With a redis_url it starts connecting on `base` (required
 * then; NULL is fine for memory only) and answers from memory until Redis is
 * up. NULL with a message in `err` on a bad URL or out of memory. */
struct mg_ratelimiter *mg_ratelimiter_new(struct event_base *base,
                                          const struct mg_ratelimiter_opts *o, char *err,
                                          size_t err_size);

/* Frees the limiter (NULL is fine). Checks still pending are answered from
 * memory (their `done` is called, with fallback set) before it returns. Do
 * not call it from a `done` callback. */
void mg_ratelimiter_free(struct mg_ratelimiter *rl);

struct mg_rl_wait;

/* Checks `key` against `r` at `now_us` (monotonic for memory; Redis uses its
 * own clock, TIME, so instances agree). Returns true with `out` filled when
 * decided at once (memory, or Redis down: fallback), or false and calls
 * `done` later (Redis), after at most redis_timeout_ms (then with a memory
 * decision, out->fallback set). *wait lets the caller cancel (`wait` may
 * be NULL; *wait is NULL after a synchronous answer). `done` is called once,
 * never from inside this call; with `done` NULL the answer is always
 * synchronous (from memory when Redis is configured). The key is copied. */
bool mg_ratelimiter_check(struct mg_ratelimiter *rl, const char *key, size_t len,
                          const struct mg_rate *r, int64_t now_us, struct mg_rl_decision *out,
                          mg_rl_done_fn done, void *arg, struct mg_rl_wait **wait);

/* Would a request for `key` be allowed now? Memory only, synchronous, and
 * charges nothing: for limits consulted before work and charged only by
 * its failure (unauthenticated floods). */
void mg_ratelimiter_peek(struct mg_ratelimiter *rl, const char *key, size_t len,
                         const struct mg_rate *r, int64_t now_us, struct mg_rl_decision *out);

/* Cancels a pending check; `done` will not be called. Only valid before
 * `done` was called; NULL is fine. */
void mg_ratelimiter_cancel(struct mg_rl_wait *w);

/* State for /health and metrics. allowed + refused count every decision;
 * fallbacks those made in memory while Redis was configured (down, timed
 * out, error, too many in flight); redis_errors error or malformed replies;
 * redis_timeouts checks answered by the timer. redis_up: connected, set up
 * (AUTH, SELECT, script loaded) and answering. */
struct mg_ratelimiter_state {
	bool redis_configured;
	bool redis_up;
	uint64_t allowed, refused, fallbacks, redis_errors, redis_timeouts;
	size_t memory_keys;
};
void mg_ratelimiter_state(const struct mg_ratelimiter *rl, struct mg_ratelimiter_state *out);

#endif
