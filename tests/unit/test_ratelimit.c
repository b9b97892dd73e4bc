/*
 * test_ratelimit.c - GCRA arithmetic on a fake clock, the memory table
 * (LRU eviction, sweep, long keys), Redis URL parsing, and the limiter in
 * memory mode and with an unreachable Redis (synchronous fallback answers).
 * The Redis backend itself is tested against a real server by
 * tests/redis/run.sh.
 */
#include "support.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "ratelimit/internal.h"
#include "ratelimit/ratelimit.h"

#define SEC 1000000LL

static struct mg_rl_decision gcra(int64_t *tat, int64_t now, double rps, int64_t burst)
{
	struct mg_rate r = { .per_second = rps, .burst = burst };
	struct mg_rl_decision d;
	memset(&d, 0xa5, sizeof d);
	mg_gcra(tat, now, &r, &d);
	return d;
}

/* ---- GCRA ---------------------------------------------------------------------------- */

static void test_gcra_burst_exact(void **state)
{
	(void)state;
	int64_t tat = 0, now = 1000 * SEC;
	for (int i = 0; i < 5; i++) {
		struct mg_rl_decision d = gcra(&tat, now, 1, 5);
		assert_true(d.allowed);
		assert_false(d.fallback);
		assert_int_equal(d.limit, 5);
		assert_int_equal(d.remaining, 4 - i);
		assert_int_equal(d.reset_us, (i + 1) * SEC);
		assert_int_equal(d.retry_after_us, 0);
	}
	int64_t before = tat;
	struct mg_rl_decision d = gcra(&tat, now, 1, 5);
	assert_false(d.allowed);
	assert_int_equal(d.remaining, 0);
	assert_int_equal(d.retry_after_us, SEC);
	assert_int_equal(d.reset_us, 5 * SEC);
	assert_int_equal(tat, before); /* a refusal costs nothing */
}

static void test_gcra_fresh_key(void **state)
{
	(void)state;
	/* A fresh key (TAT 0) behaves as TAT = now, at any now, even 0. */
	int64_t tat = 0;
	struct mg_rl_decision d = gcra(&tat, 0, 10, 5);
	assert_true(d.allowed);
	assert_int_equal(d.remaining, 4);
	assert_int_equal(tat, 100000);
	tat = 0;
	d = gcra(&tat, 5 * SEC, 10, 1);
	assert_true(d.allowed);
	assert_int_equal(d.remaining, 0);
	d = gcra(&tat, 5 * SEC, 10, 1);
	assert_false(d.allowed);
	assert_int_equal(d.retry_after_us, 100000);
}

static void test_gcra_steady_rate(void **state)
{
	(void)state;
	/* A request every T is always allowed, forever, with burst 1. */
	int64_t tat = 0, now = 7;
	for (int i = 0; i < 100000; i++, now += 100000) {
		struct mg_rl_decision d = gcra(&tat, now, 10, 1);
		assert_true(d.allowed);
		assert_int_equal(d.remaining, 0);
	}
	/* One microsecond early is too early. */
	struct mg_rl_decision d = gcra(&tat, now - 1, 10, 1);
	assert_false(d.allowed);
	assert_int_equal(d.retry_after_us, 1);
	/* With a burst, a steady client keeps burst - 1 in hand. */
	tat = 0;
	now = SEC;
	for (int i = 0; i < 1000; i++, now += 100000) {
		d = gcra(&tat, now, 10, 5);
		assert_true(d.allowed);
		assert_int_equal(d.remaining, 4);
		assert_int_equal(d.reset_us, 100000);
	}
}

static void test_gcra_retry_after(void **state)
{
	(void)state;
	int64_t tat = 0, now = 50 * SEC;
	for (int i = 0; i < 3; i++)
		assert_true(gcra(&tat, now, 2, 3).allowed); /* T = 500 ms */
	struct mg_rl_decision d = gcra(&tat, now + 123456, 2, 3);
	assert_false(d.allowed);
	assert_int_equal(d.retry_after_us, 500000 - 123456);
	assert_int_equal(d.reset_us, 1500000 - 123456);
	/* Exactly at now + retry_after it is allowed, and empty again. */
	d = gcra(&tat, now + 500000, 2, 3);
	assert_true(d.allowed);
	assert_int_equal(d.remaining, 0);
	/* After a full refill (reset) the whole burst is back. */
	int64_t full = now + 500000 + d.reset_us;
	d = gcra(&tat, full, 2, 3);
	assert_true(d.allowed);
	assert_int_equal(d.remaining, 2);
	/* Remaining grows one per T of idleness. */
	tat = 0;
	for (int i = 0; i < 4; i++)
		gcra(&tat, 0, 1, 4);
	d = gcra(&tat, 2 * SEC + 999999, 1, 4); /* two cells back, not three */
	assert_true(d.allowed);
	assert_int_equal(d.remaining, 1);
}

static void test_gcra_float_rates(void **state)
{
	(void)state;
	struct mg_gcra_params p;
	struct mg_rate r = { .per_second = 0.5, .burst = 1 };
	mg_gcra_params(&r, &p);
	assert_int_equal(p.t, 2 * SEC);
	r.per_second = 1000;
	mg_gcra_params(&r, &p);
	assert_int_equal(p.t, 1000);
	r.per_second = 3; /* 333333.33 → 333333 */
	mg_gcra_params(&r, &p);
	assert_int_equal(p.t, 333333);
	r.per_second = 1.5; /* 666666.67 → 666667 */
	mg_gcra_params(&r, &p);
	assert_int_equal(p.t, 666667);
	r.per_second = 1e12; /* at least 1 µs */
	mg_gcra_params(&r, &p);
	assert_int_equal(p.t, 1);

	/* 0.5/s: every 2 s exactly, never sooner. */
	int64_t tat = 0, now = SEC;
	assert_true(gcra(&tat, now, 0.5, 1).allowed);
	assert_false(gcra(&tat, now + 2 * SEC - 1, 0.5, 1).allowed);
	assert_true(gcra(&tat, now + 2 * SEC, 0.5, 1).allowed);

	/* 1000/s for 10 s, hammered every 100 µs: exactly 10000 + burst. No
	 * drift: integer microseconds, nothing accumulates. */
	tat = 0;
	int64_t allowed = 0;
	for (now = 0; now < 10 * SEC; now += 100)
		allowed += gcra(&tat, now, 1000, 10).allowed;
	assert_int_equal(allowed, 10000 + 9);

	/* 3/s for an hour, a client retrying exactly at retry_after: one
	 * every 333333 µs, 10801 in all, not one more or less. */
	tat = 0;
	allowed = 0;
	for (now = 0; now < 3600 * SEC;) {
		struct mg_rl_decision d = gcra(&tat, now, 3, 1);
		if (d.allowed)
			allowed++;
		else
			now += d.retry_after_us;
	}
	assert_int_equal(allowed, (3600 * SEC - 1) / 333333 + 1);
}

static void test_gcra_large_burst(void **state)
{
	(void)state;
	int64_t tat = 0, now = 1;
	for (int64_t i = 0; i < 1000000; i++) {
		struct mg_rl_decision d = gcra(&tat, now, 1000, 1000000);
		assert_true(d.allowed);
		if (d.remaining != 1000000 - 1 - i)
			fail_msg("remaining %lld at %lld", (long long)d.remaining, (long long)i);
	}
	assert_false(gcra(&tat, now, 1000, 1000000).allowed);

	/* A burst past the cap: tau is capped, remaining still within range. */
	tat = 0;
	struct mg_rl_decision d = gcra(&tat, 10 * SEC, 1, INT64_MAX);
	assert_true(d.allowed);
	assert_int_equal(d.limit, INT64_MAX);
	assert_int_equal(d.remaining, MG_GCRA_MAX_US / SEC);
	struct mg_gcra_params p;
	struct mg_rate r = { .per_second = 1e-10, .burst = INT64_MAX };
	mg_gcra_params(&r, &p);
	assert_int_equal(p.t, MG_GCRA_MAX_US);
	assert_int_equal(p.tau, MG_GCRA_MAX_US);
}

static void test_gcra_large_times(void **state)
{
	(void)state;
	/* Far in the future: no overflow, same answers. */
	int64_t base = (int64_t)1 << 62;
	int64_t tat = 0;
	for (int i = 0; i < 5; i++)
		assert_true(gcra(&tat, base, 1, 5).allowed);
	struct mg_rl_decision d = gcra(&tat, base, 1, 5);
	assert_false(d.allowed);
	assert_int_equal(d.retry_after_us, SEC);

	/* At the very edge of int64 everything saturates (UBSan watches). */
	int64_t edge = INT64_MAX - 10;
	tat = 0;
	d = gcra(&tat, edge, 1e-9, 1000);
	assert_true(d.allowed);
	assert_int_equal(tat, INT64_MAX);
	assert_true(d.remaining >= 0 && d.remaining <= 999);
	for (int i = 0; i < 10; i++) {
		d = gcra(&tat, edge + i, 1e-9, 1000);
		assert_true(d.reset_us >= 0);
		assert_true(d.retry_after_us >= 0);
		assert_true(d.remaining >= 0 && d.remaining <= 999);
	}
	tat = INT64_MAX;
	d = gcra(&tat, INT64_MAX, 1, 2);
	assert_true(d.allowed);
	assert_int_equal(tat, INT64_MAX);

	/* Very negative times too (a caller's odd clock). */
	tat = 0;
	d = gcra(&tat, INT64_MIN + 5, 1e-9, INT64_MAX);
	assert_true(d.allowed);
	d = gcra(&tat, INT64_MIN, 1e-9, 2);
	assert_true(d.retry_after_us >= 0);
}

static void test_gcra_bad_rates(void **state)
{
	(void)state;
	/* Out-of-contract rates still decide, without UB: the burst, then no
	 * more for a very long time. */
	const double bad[] = { 0, -1, NAN, -INFINITY, 1e-300 };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int64_t tat = 0;
		assert_true(gcra(&tat, SEC, bad[i], 2).allowed);
		assert_true(gcra(&tat, SEC, bad[i], 2).allowed);
		struct mg_rl_decision d = gcra(&tat, SEC, bad[i], 2);
		assert_false(d.allowed);
		assert_int_equal(d.retry_after_us, MG_GCRA_MAX_US);
	}
	int64_t tat = 0;
	struct mg_rl_decision d = gcra(&tat, SEC, INFINITY, 0); /* burst 0 → 1 */
	assert_true(d.allowed);
	assert_int_equal(d.limit, 1);
	assert_int_equal(tat, SEC + 1);
}

/* ---- table --------------------------------------------------------------------------- */

static struct mg_rl_decision tcheck(struct mg_rl_table *t, const char *key, int64_t now)
{
	struct mg_rate r = { .per_second = 1, .burst = 5 };
	struct mg_rl_decision d;
	mg_rl_table_check(t, key, strlen(key), now, &r, &d);
	return d;
}

static void test_table_basic(void **state)
{
	(void)state;
	struct mg_rl_table *t = mg_rl_table_new(100, 60 * SEC);
	assert_non_null(t);
	assert_int_equal(tcheck(t, "id:alice", 0).remaining, 4);
	assert_int_equal(tcheck(t, "id:alice", 0).remaining, 3);
	assert_int_equal(tcheck(t, "id:bob", 0).remaining, 4);
	assert_int_equal(tcheck(t, "id:alic", 0).remaining, 4);
	assert_int_equal(mg_rl_table_size(t), 3);
	/* Binary keys with NUL bytes are distinct by length and content. */
	struct mg_rate r = { .per_second = 1, .burst = 5 };
	struct mg_rl_decision d;
	mg_rl_table_check(t, "a\0b", 3, 0, &r, &d);
	assert_int_equal(d.remaining, 4);
	mg_rl_table_check(t, "a\0c", 3, 0, &r, &d);
	assert_int_equal(d.remaining, 4);
	mg_rl_table_check(t, "a\0b", 3, 0, &r, &d);
	assert_int_equal(d.remaining, 3);
	mg_rl_table_check(t, "", 0, 0, &r, &d);
	assert_int_equal(d.remaining, 4);
	assert_int_equal(mg_rl_table_size(t), 6);
	mg_rl_table_free(t);
}

static void test_table_evict_lru(void **state)
{
	(void)state;
	struct mg_rl_table *t = mg_rl_table_new(3, 3600 * SEC);
	tcheck(t, "a", 0);
	tcheck(t, "b", 0);
	tcheck(t, "c", 0);
	tcheck(t, "a", 1); /* a is now the most recent; b the least */
	tcheck(t, "d", 2); /* full: b goes */
	assert_int_equal(mg_rl_table_size(t), 3);
	assert_int_equal(tcheck(t, "a", 3).remaining, 2); /* kept its state */
	assert_int_equal(tcheck(t, "c", 3).remaining, 3);
	assert_int_equal(tcheck(t, "d", 3).remaining, 3);
	/* order now (recent first): d c a → e evicts a */
	tcheck(t, "e", 4);
	assert_int_equal(tcheck(t, "c", 5).remaining, 2);
	assert_int_equal(tcheck(t, "a", 5).remaining, 4); /* a was forgotten */
	assert_int_equal(mg_rl_table_size(t), 3);
	mg_rl_table_free(t);

	/* A table of one still never refuses for bookkeeping. */
	t = mg_rl_table_new(1, SEC);
	for (int i = 0; i < 100; i++) {
		char k[16];
		snprintf(k, sizeof k, "k%d", i);
		assert_true(tcheck(t, k, i).allowed);
		assert_int_equal(mg_rl_table_size(t), 1);
	}
	mg_rl_table_free(t);
}

static void test_table_many(void **state)
{
	(void)state;
	/* Far more keys than room: the table stays at its bound, the recent
	 * keys keep their state (chains and bucket growth stay consistent). */
	const int max = 5000, n = 50000;
	struct mg_rl_table *t = mg_rl_table_new(max, 3600 * SEC);
	char k[64];
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof k, "ip:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		assert_int_equal(tcheck(t, k, i).remaining, 4);
	}
	assert_int_equal(mg_rl_table_size(t), max);
	for (int i = n - max; i < n; i++) {
		snprintf(k, sizeof k, "ip:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		assert_int_equal(tcheck(t, k, n).remaining, 3);
	}
	for (int i = 0; i < 10; i++) { /* long gone */
		snprintf(k, sizeof k, "ip:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		assert_int_equal(tcheck(t, k, n).remaining, 4);
	}
	assert_int_equal(mg_rl_table_size(t), max);
	mg_rl_table_free(t);
}

static void test_table_sweep(void **state)
{
	(void)state;
	struct mg_rl_table *t = mg_rl_table_new(100, 10 * SEC);
	tcheck(t, "old", 0);
	tcheck(t, "mid", 5 * SEC);
	tcheck(t, "new", 9 * SEC);
	assert_int_equal(mg_rl_table_sweep(t, 9 * SEC), 0);
	assert_int_equal(mg_rl_table_sweep(t, 10 * SEC), 1); /* idle exactly 10 s */
	assert_int_equal(mg_rl_table_size(t), 2);
	tcheck(t, "mid", 12 * SEC);                          /* used again: no longer idle */
	assert_int_equal(mg_rl_table_sweep(t, 19 * SEC), 1); /* "new" */
	assert_int_equal(mg_rl_table_sweep(t, 21 * SEC), 0);
	assert_int_equal(mg_rl_table_sweep(t, 22 * SEC), 1);
	assert_int_equal(mg_rl_table_size(t), 0);
	/* Entries swept are reused. */
	for (int i = 0; i < 100; i++) {
		char k[16];
		snprintf(k, sizeof k, "k%d", i);
		tcheck(t, k, 30 * SEC);
	}
	assert_int_equal(mg_rl_table_sweep_some(t, 100 * SEC, 7), 7);
	assert_int_equal(mg_rl_table_size(t), 93);
	assert_int_equal(mg_rl_table_sweep(t, 100 * SEC), 93);
	mg_rl_table_free(t);

	/* A slow limit keeps its keys past idle_us until its bucket is full
	 * again (tau + T): sweeping never hands out a fresh burst early. */
	t = mg_rl_table_new(100, 10 * SEC);
	struct mg_rate slow = { .per_second = 0.01, .burst = 2 }; /* T 100 s, tau 100 s */
	struct mg_rl_decision d;
	mg_rl_table_check(t, "slow", 4, 0, &slow, &d);
	mg_rl_table_check(t, "slow", 4, 0, &slow, &d);
	assert_int_equal(mg_rl_table_sweep(t, 60 * SEC), 0);
	mg_rl_table_check(t, "slow", 4, 60 * SEC, &slow, &d);
	assert_false(d.allowed);
	assert_int_equal(mg_rl_table_sweep(t, 259 * SEC), 0);
	assert_int_equal(mg_rl_table_sweep(t, 260 * SEC), 1);
	mg_rl_table_free(t);
}

static void test_table_long_keys(void **state)
{
	(void)state;
	struct mg_rl_table *t = mg_rl_table_new(100, 60 * SEC);
	struct mg_rate r = { .per_second = 1, .burst = 5 };
	struct mg_rl_decision d;
	char a[2000], b[2000];
	memset(a, 'x', sizeof a);
	memcpy(b, a, sizeof b);
	b[sizeof b - 1] = 'y';
	mg_rl_table_check(t, a, sizeof a, 0, &r, &d);
	assert_int_equal(d.remaining, 4);
	mg_rl_table_check(t, b, sizeof b, 0, &r, &d);
	assert_int_equal(d.remaining, 4);
	mg_rl_table_check(t, a, sizeof a, 0, &r, &d);
	assert_int_equal(d.remaining, 3);
	/* 512 bytes: stored as is; 513: hashed; distinct from each other. */
	mg_rl_table_check(t, a, 512, 0, &r, &d);
	assert_int_equal(d.remaining, 4);
	mg_rl_table_check(t, a, 513, 0, &r, &d);
	assert_int_equal(d.remaining, 4);
	mg_rl_table_check(t, a, 512, 0, &r, &d);
	assert_int_equal(d.remaining, 3);
	/* The digest itself, as a 32-byte key, is another key. */
	uint8_t dig[MG_SHA256_LEN];
	mg_sha256(a, sizeof a, dig);
	mg_rl_table_check(t, (const char *)dig, sizeof dig, 0, &r, &d);
	assert_int_equal(d.remaining, 4);
	/* Medium keys (heap) through eviction and reuse. */
	mg_rl_table_free(t);
	t = mg_rl_table_new(4, 60 * SEC);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 10; i++) {
			char k[300];
			int n = snprintf(k, sizeof k, "%0*d", 60 + 20 * i, i);
			mg_rl_table_check(t, k, (size_t)n, round, &r, &d);
			assert_int_equal(d.remaining, 4);
			mg_rl_table_check(t, "short", 5, round, &r, &d);
		}
	}
	mg_rl_table_free(t);
}

/* ---- Redis URLs ---------------------------------------------------------------------- */

static void test_redis_url(void **state)
{
	(void)state;
	struct mg_redis_url u;
	char err[256];
	assert_int_equal(mg_redis_url_parse("redis://127.0.0.1", &u, err, sizeof err), 0);
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(u.port, 6379);
	assert_int_equal(u.db, -1);
	assert_null(u.user);
	assert_null(u.password);
	mg_redis_url_free(&u);

	assert_int_equal(
	    mg_redis_url_parse("redis://svc:p%40ss:w@redis.internal:7000/3", &u, err, sizeof err),
	    0);
	assert_string_equal(u.host, "redis.internal");
	assert_int_equal(u.port, 7000);
	assert_int_equal(u.db, 3);
	assert_string_equal(u.user, "svc");
	assert_string_equal(u.password, "p@ss:w");
	mg_redis_url_free(&u);

	assert_int_equal(mg_redis_url_parse("redis://:secret@[::1]:6380/", &u, err, sizeof err), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 6380);
	assert_int_equal(u.db, -1);
	assert_null(u.user);
	assert_string_equal(u.password, "secret");
	mg_redis_url_free(&u);

	/* Like redis-cli: a user-info without ':' is the password. */
	assert_int_equal(mg_redis_url_parse("redis://secret@h", &u, err, sizeof err), 0);
	assert_null(u.user);
	assert_string_equal(u.password, "secret");
	mg_redis_url_free(&u);

	assert_int_equal(mg_redis_url_parse("unix:///run/redis.sock", &u, err, sizeof err), 0);
	assert_true(u.unix_socket);
	assert_string_equal(u.path, "/run/redis.sock");
	assert_int_equal(u.db, -1);
	assert_null(u.password);
	mg_redis_url_free(&u);
	assert_int_equal(mg_redis_url_parse("unix:///run/redis.sock?db=2&password=p%26w&user=u", &u,
	                                    err, sizeof err),
	                 0);
	assert_string_equal(u.path, "/run/redis.sock");
	assert_int_equal(u.db, 2);
	assert_string_equal(u.password, "p&w");
	assert_string_equal(u.user, "u");
	mg_redis_url_free(&u);

	assert_int_equal(mg_redis_url_parse("rediss://h:6380", &u, err, sizeof err), -1);
	assert_string_equal(err, "TLS to Redis is not supported in this build");
	const char *bad[] = { "http://h",        "redis://",        "redis://:6379",
		              "redis://h:0",     "redis://h:65536", "redis://h:x",
		              "redis://h/db",    "redis://h/1/2",   "redis://[::1",
		              "redis://u:%zz@h", "redis://u:%00@h", "redis://h?x=1",
		              "unix://",         "unix:///s?x=1",   "unix://rel",
		              "unix:///s?db",    "unix:///s?user=u" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = 0;
		if (mg_redis_url_parse(bad[i], &u, err, sizeof err) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_true(err[0] != 0);
	}
}

/* ---- the limiter --------------------------------------------------------------------- */

static void test_limiter_memory(void **state)
{
	(void)state;
	struct mg_ratelimiter_opts o = { .max_entries = 1000, .idle_secs = 60 };
	char err[256];
	struct mg_ratelimiter *rl = mg_ratelimiter_new(NULL, &o, err, sizeof err);
	assert_non_null(rl);
	struct mg_rate r = { .per_second = 5, .burst = 5 };
	struct mg_rl_decision d;
	struct mg_rl_wait *w = (struct mg_rl_wait *)&d;
	int allowed = 0;
	for (int i = 0; i < 20; i++) {
		assert_true(mg_ratelimiter_check(rl, "id:a", 4, &r, SEC, &d, NULL, NULL, &w));
		assert_null(w);
		assert_false(d.fallback);
		allowed += d.allowed;
	}
	assert_int_equal(allowed, 5);
	assert_true(mg_ratelimiter_check(rl, "id:b", 4, &r, SEC, &d, NULL, NULL, NULL));
	assert_true(d.allowed);
	struct mg_ratelimiter_state st;
	mg_ratelimiter_state(rl, &st);
	assert_false(st.redis_configured);
	assert_false(st.redis_up);
	assert_int_equal(st.allowed, 6);
	assert_int_equal(st.refused, 15);
	assert_int_equal(st.fallbacks, 0);
	assert_int_equal(st.memory_keys, 2);
	/* Idle keys are swept as checks go by (every 64 checks; no timer). */
	for (int i = 0; i < 64; i++)
		assert_true(
		    mg_ratelimiter_check(rl, "id:c", 4, &r, 100 * SEC, &d, NULL, NULL, NULL));
	mg_ratelimiter_state(rl, &st);
	assert_int_equal(st.memory_keys, 1);
	mg_ratelimiter_cancel(NULL);
	mg_ratelimiter_free(rl);
	mg_ratelimiter_free(NULL);
}

static void never_called(const struct mg_rl_decision *d, void *arg)
{
	(void)d;
	(void)arg;
	fail_msg("done called for a synchronous answer");
}

static void test_limiter_redis_down(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	assert_non_null(base);
	char err[256];
	struct mg_ratelimiter_opts o = { .max_entries = 1000,
		                         .idle_secs = 60,
		                         .redis_url = "rediss://127.0.0.1:6380",
		                         .redis_timeout_ms = 50,
		                         .expected_instances = 2 };
	assert_null(mg_ratelimiter_new(base, &o, err, sizeof err));
	assert_string_equal(err, "TLS to Redis is not supported in this build");
	o.redis_url = "redis://h:99999";
	assert_null(mg_ratelimiter_new(base, &o, err, sizeof err));
	assert_non_null(strstr(err, "port"));

	/* No server on this socket: every check is answered at once from
	 * memory with half the limit (2 instances): rate 10/s → 5/s, burst
	 * 5 → 3. */
	o.redis_url = "unix:///nonexistent/mcp-guard-test.sock";
	struct mg_ratelimiter *rl = mg_ratelimiter_new(base, &o, err, sizeof err);
	assert_non_null(rl);
	struct mg_rate r = { .per_second = 10, .burst = 5 };
	struct mg_rl_decision d;
	int allowed = 0;
	for (int i = 0; i < 10; i++) {
		struct mg_rl_wait *w = NULL;
		assert_true(
		    mg_ratelimiter_check(rl, "id:a", 4, &r, SEC, &d, never_called, NULL, &w));
		assert_null(w);
		assert_true(d.fallback);
		assert_int_equal(d.limit, 3);
		allowed += d.allowed;
	}
	assert_int_equal(allowed, 3);
	assert_true(mg_ratelimiter_check(rl, "id:a", 4, &r, SEC + 200000, &d, NULL, NULL, NULL));
	assert_true(d.allowed); /* T = 200 ms at 5/s */
	struct mg_ratelimiter_state st;
	mg_ratelimiter_state(rl, &st);
	assert_true(st.redis_configured);
	assert_false(st.redis_up);
	assert_int_equal(st.fallbacks, 11);
	assert_int_equal(st.allowed, 4);
	assert_int_equal(st.refused, 7);
	/* Let the reconnect timer fire a few times: still down, no crash. */
	struct timeval tv = { 0, 400000 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	mg_ratelimiter_state(rl, &st);
	assert_false(st.redis_up);
	mg_ratelimiter_free(rl);

	/* A name is resolved off the loop; an unresolvable one is "down". */
	o.redis_url = "redis://no-such-host.invalid:6379";
	o.expected_instances = 0; /* treated as 1 */
	rl = mg_ratelimiter_new(base, &o, err, sizeof err);
	assert_non_null(rl);
	assert_true(mg_ratelimiter_check(rl, "k", 1, &r, SEC, &d, never_called, NULL, NULL));
	assert_true(d.fallback);
	assert_int_equal(d.limit, 5);
	tv.tv_usec = 300000;
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	mg_ratelimiter_state(rl, &st);
	assert_false(st.redis_up);
	mg_ratelimiter_free(rl); /* possibly while resolving: the thread cleans up */

	/* Shares: burst 10 over 3 instances → 4 (rounded up), 1 over 3 → 1;
	 * rate 3/s over 3 → 1/s. */
	o.redis_url = "unix:///nonexistent/mcp-guard-test.sock";
	o.expected_instances = 3;
	rl = mg_ratelimiter_new(base, &o, err, sizeof err);
	assert_non_null(rl);
	struct mg_rate r10 = { .per_second = 3, .burst = 10 };
	assert_true(mg_ratelimiter_check(rl, "x", 1, &r10, SEC, &d, NULL, NULL, NULL));
	assert_int_equal(d.limit, 4);
	assert_int_equal(d.remaining, 3);
	assert_int_equal(d.reset_us, SEC);
	struct mg_rate r1 = { .per_second = 3, .burst = 1 };
	assert_true(mg_ratelimiter_check(rl, "y", 1, &r1, SEC, &d, NULL, NULL, NULL));
	assert_int_equal(d.limit, 1);
	assert_false(mg_ratelimiter_check(rl, "y", 1, &r1, SEC, &d, NULL, NULL, NULL) && d.allowed);
	mg_ratelimiter_free(rl);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gcra_burst_exact), cmocka_unit_test(test_gcra_fresh_key),
		cmocka_unit_test(test_gcra_steady_rate), cmocka_unit_test(test_gcra_retry_after),
		cmocka_unit_test(test_gcra_float_rates), cmocka_unit_test(test_gcra_large_burst),
		cmocka_unit_test(test_gcra_large_times), cmocka_unit_test(test_gcra_bad_rates),
		cmocka_unit_test(test_table_basic),      cmocka_unit_test(test_table_evict_lru),
		cmocka_unit_test(test_table_many),       cmocka_unit_test(test_table_sweep),
		cmocka_unit_test(test_table_long_keys),  cmocka_unit_test(test_redis_url),
		cmocka_unit_test(test_limiter_memory),   cmocka_unit_test(test_limiter_redis_down),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
