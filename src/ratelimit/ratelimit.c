/*
 * ratelimit.c - the limiter the PREACCESS phase calls: memory only, or
 * Redis (redis.c) with the memory table as its fallback.
 *
 * Memory mode answers every check at once from the table with the full
 * rate. Redis mode sends the check and answers later; whenever Redis cannot
 * answer (not connected yet, down, too many checks in flight, timed out, an
 * error reply) the table answers instead, with this instance's share of the
 * limit: rate / expected_instances and burst / expected_instances rounded
 * up (at least 1), so N instances together stay near the global limit.
 *
 * The table is swept a little every SWEEP_EVERY checks (the oldest idle
 * keys first, at most two per check on average), with the caller's clock:
 * no timer, and no clock of our own to disagree with the caller's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit/internal.h"

#define DEFAULT_MAX_ENTRIES 100000
#define SWEEP_EVERY         64  /* checks */
#define SWEEP_MAX           128 /* keys removed at most per sweep: 2 per check */

struct mg_ratelimiter *mg_ratelimiter_new(struct event_base *base,
                                          const struct mg_ratelimiter_opts *o, char *err,
                                          size_t err_size)
{
	struct mg_ratelimiter *rl = calloc(1, sizeof *rl);
	if (!rl)
		goto oom;
	rl->base = base;
	rl->expected_instances = o->expected_instances > 1 ? o->expected_instances : 1;
	int64_t idle_us = o->idle_secs > 0 ? o->idle_secs : 0;
	if (idle_us > INT64_MAX / 1000000)
		idle_us = INT64_MAX;
	else
		idle_us *= 1000000;
	rl->table = mg_rl_table_new(o->max_entries ? o->max_entries : DEFAULT_MAX_ENTRIES, idle_us);
	if (!rl->table)
		goto oom;
	if (o->redis_url && o->redis_url[0]) {
		if (!base) {
			snprintf(err, err_size, "the Redis rate limiter needs an event loop");
			goto fail;
		}
		rl->redis = mg_rl_redis_new(rl, o, err, err_size);
		if (!rl->redis)
			goto fail;
	}
	return rl;
oom:
	snprintf(err, err_size, "out of memory");
fail:
	if (rl)
		mg_rl_table_free(rl->table);
	free(rl);
	return NULL;
}

void mg_ratelimiter_free(struct mg_ratelimiter *rl)
{
	if (!rl)
		return;
	rl->freeing = true;
	mg_rl_redis_free(rl->redis); /* may answer pending checks from the table */
	rl->redis = NULL;
	mg_rl_table_free(rl->table);
	free(rl);
}

void mg_rl_count(struct mg_ratelimiter *rl, const struct mg_rl_decision *d)
{
	if (d->allowed)
		rl->allowed++;
	else
		rl->refused++;
}

void mg_rl_fallback(struct mg_ratelimiter *rl, const struct mg_rl_key *k, const struct mg_rate *r,
                    int64_t now_us, struct mg_rl_decision *out)
{
	struct mg_rate share = *r;
	int64_t n = rl->expected_instances;
	if (n > 1) {
		share.per_second = r->per_second / (double)n;
		int64_t b = r->burst < 1 ? 1 : r->burst;
		share.burst = b / n + (b % n != 0);
	}
	mg_rl_table_check_key(rl->table, k, now_us, &share, out);
	out->fallback = true;
	rl->fallbacks++;
	mg_rl_count(rl, out);
}

bool mg_ratelimiter_check(struct mg_ratelimiter *rl, const char *key, size_t len,
                          const struct mg_rate *r, int64_t now_us, struct mg_rl_decision *out,
                          mg_rl_done_fn done, void *arg, struct mg_rl_wait **wait)
{
	if (wait)
		*wait = NULL;
	struct mg_rl_key k;
	mg_rl_key_init(&k, key, len);
	if (++rl->checks % SWEEP_EVERY == 0)
		mg_rl_table_sweep_some(rl->table, now_us, SWEEP_MAX);
	if (rl->redis) {
		if (done && !rl->freeing &&
		    mg_rl_redis_check(rl->redis, &k, r, now_us, done, arg, wait))
			return false;
		mg_rl_fallback(rl, &k, r, now_us, out);
		return true;
	}
	mg_rl_table_check_key(rl->table, &k, now_us, r, out);
	mg_rl_count(rl, out);
	return true;
}

void mg_ratelimiter_cancel(struct mg_rl_wait *w)
{
	if (w)
		mg_rl_redis_cancel(w);
}

void mg_ratelimiter_state(const struct mg_ratelimiter *rl, struct mg_ratelimiter_state *out)
{
	memset(out, 0, sizeof *out);
	out->redis_configured = rl->redis != NULL;
	out->redis_up = rl->redis && mg_rl_redis_up(rl->redis);
	out->allowed = rl->allowed;
	out->refused = rl->refused;
	out->fallbacks = rl->fallbacks;
	out->redis_errors = rl->redis_errors;
	out->redis_timeouts = rl->redis_timeouts;
	out->memory_keys = mg_rl_table_size(rl->table);
}

void mg_ratelimiter_peek(struct mg_ratelimiter *rl, const char *key, size_t len,
                         const struct mg_rate *r, int64_t now_us, struct mg_rl_decision *out)
{
	mg_rl_table_peek(rl->table, key, len, now_us, r, out);
}
