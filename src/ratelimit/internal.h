/*
 * internal.h - what the files of src/ratelimit/ share and nothing else
 * includes (tests excepted): GCRA parameters, normalized keys, the limiter
 * struct, and the Redis backend's entry points.
 */
#ifndef MG_RATELIMIT_INTERNAL_H
#define MG_RATELIMIT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ratelimit/ratelimit.h"
#include "util/crypto.h"

/* Keys longer than this are replaced by their SHA-256 digest. */
#define MG_RL_MAX_KEY 512

/* T and tau are capped at 2^50 µs (about 35 years): a limit that slow is
 * "never again" in practice, and the cap keeps every sum of times far from
 * int64 overflow and exact in the doubles of Redis' Lua (< 2^53). */
#define MG_GCRA_MAX_US ((int64_t)1 << 50)

/* Emission interval T (µs, >= 1), tolerance tau = (burst - 1) * T and the
 * burst (>= 1) of a rate; invalid rates (NaN, <= 0) get the largest T. */
struct mg_gcra_params {
	int64_t t;
	int64_t tau;
	int64_t burst;
};
void mg_gcra_params(const struct mg_rate *r, struct mg_gcra_params *p);

/* mg_gcra with the parameters already computed. */
void mg_gcra_with(int64_t *tat_us, int64_t now_us, const struct mg_gcra_params *p,
                  struct mg_rl_decision *out);

/* A key as the table and Redis see it: the caller's bytes, or their digest
 * when longer than MG_RL_MAX_KEY (`hashed`, so a digest never collides with
 * a 32-byte key). `p` points into the caller's key or into `digest`. */
struct mg_rl_key {
	const char *p;
	size_t len;
	bool hashed;
	uint8_t digest[MG_SHA256_LEN];
};
void mg_rl_key_init(struct mg_rl_key *k, const char *key, size_t len);

/* mg_rl_table_check on a normalized key. */
void mg_rl_table_check_key(struct mg_rl_table *t, const struct mg_rl_key *k, int64_t now_us,
                           const struct mg_rate *r, struct mg_rl_decision *out);

/* Removes at most `max` idle keys (the oldest first); returns how many. The
 * limiter calls it every few checks so that no timer is needed. */
size_t mg_rl_table_sweep_some(struct mg_rl_table *t, int64_t now_us, size_t max);

/* ---- Redis URL ------------------------------------------------------------------------ */

struct mg_redis_url {
	bool unix_socket;
	char *host; /* TCP: host name or address (without brackets) */
	int port;
	char *path; /* unix socket path */
	char *user; /* NULL: none ("AUTH password") */
	char *password;
	int64_t db; /* -1: no SELECT */
};

/* Parses redis://[user[:password]@]host[:port][/db], redis://[::1]:port,
 * unix:///path[?db=N][&password=…][&user=…]. A user-info without ':' is the
 * password (as redis-cli reads it). Percent-escapes are decoded.
 * rediss:// is refused ("TLS to Redis is not supported in this build").
 * Returns 0, or -1 with a message in err. Free with mg_redis_url_free. */
int mg_redis_url_parse(const char *url, struct mg_redis_url *u, char *err, size_t err_size);
void mg_redis_url_free(struct mg_redis_url *u);

/* ---- the limiter ---------------------------------------------------------------------- */

struct mg_rl_redis;

struct mg_ratelimiter {
	struct event_base *base;
	struct mg_rl_table *table;
	int64_t expected_instances;
	struct mg_rl_redis *redis; /* NULL: memory only */
	bool freeing;
	uint64_t checks;
	uint64_t allowed, refused, fallbacks, redis_errors, redis_timeouts;
};

/* Decides from the memory table with this instance's share of `r` (rate and
 * burst divided by expected_instances), marks fallback, counts. */
void mg_rl_fallback(struct mg_ratelimiter *rl, const struct mg_rl_key *k, const struct mg_rate *r,
                    int64_t now_us, struct mg_rl_decision *out);

/* Counts a decision (allowed / refused). */
void mg_rl_count(struct mg_ratelimiter *rl, const struct mg_rl_decision *d);

/* The Redis backend (redis.c). new: parses the URL and starts connecting;
 * NULL with err on a bad URL. */
struct mg_rl_redis *mg_rl_redis_new(struct mg_ratelimiter *rl, const struct mg_ratelimiter_opts *o,
                                    char *err, size_t err_size);
/* Drops the connection; pending checks are answered (fallback) first. */
void mg_rl_redis_free(struct mg_rl_redis *r);
bool mg_rl_redis_up(const struct mg_rl_redis *r);
/* Sends a check. Returns true when sent (`done` will be called, *wait set),
 * false when the caller must decide in memory (down, too many in flight). */
bool mg_rl_redis_check(struct mg_rl_redis *r, const struct mg_rl_key *k, const struct mg_rate *rate,
                       int64_t now_us, mg_rl_done_fn done, void *arg, struct mg_rl_wait **wait);
void mg_rl_redis_cancel(struct mg_rl_wait *w);

/* The Lua script (exposed for tests). */
extern const char mg_rl_redis_script[];

#endif
