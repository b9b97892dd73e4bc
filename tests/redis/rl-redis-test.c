/*
 * rl-redis-test.c - the Redis rate limiter against a real redis-server.
 *
 * Starts its own redis-server on 127.0.0.1 (a free port, no persistence,
 * a password, a unix socket), writes its PID to $RL_REDIS_PIDFILE so the
 * runner can stop it if this program dies, and drives two limiters on one
 * event loop:
 *
 *   1. one global limit across two instances (rps 5, burst 5: 20 checks in
 *      flight at once across both → exactly 5 allowed), AUTH + SELECT, TTL
 *   2. NOSCRIPT recovery (SCRIPT FLUSH between checks, and under a burst)
 *   3. Redis killed mid-test → fallback answers, redis_up false; restarted
 *      on the same port → shared limiting resumes within the backoff
 *   4. Redis stopped (SIGSTOP) → fallback after redis_timeout_ms; a long
 *      stall drops the connection; SIGCONT → back up; cancel; free with
 *      checks pending
 *   5. a wrong password and a unix socket URL
 *
 * Prints PASS/FAIL per case; exits 1 when any failed. With --bench it
 * measures throughput instead (memory ns/check, Redis checks/s).
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "ratelimit/ratelimit.h"

#define PASSWORD   "rl-test-pw"
#define TIMEOUT_MS 100

static struct event_base *base;
static pid_t redis_pid = -1;
static int redis_port;
static char sock_path[128];
static char dir[64];
static int failures;
static bool case_failed;

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void check_that(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check_that(bool ok, const char *fmt, ...)
{
	if (ok)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "    not ok: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	case_failed = true;
}

static void begin(const char *name)
{
	printf("---- %s\n", name);
	fflush(stdout);
	case_failed = false;
}

static void end(const char *name)
{
	printf("%s %s\n", case_failed ? "FAIL" : "PASS", name);
	fflush(stdout);
	if (case_failed)
		failures++;
}

/* ---- redis-server -------------------------------------------------------------------- */

static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &len) < 0) {
		perror("free port");
		exit(2);
	}
	close(s);
	return ntohs(a.sin_port);
}

static redisContext *sync_client(void)
{
	struct timeval tv = { 1, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
	if (!c || c->err) {
		if (c)
			redisFree(c);
		return NULL;
	}
	redisReply *r = redisCommand(c, "AUTH %s", PASSWORD);
	bool ok = r && r->type == REDIS_REPLY_STATUS;
	if (r)
		freeReplyObject(r);
	if (!ok) {
		redisFree(c);
		return NULL;
	}
	return c;
}

static void redis_start(void)
{
	char port[16], pidfile[200], logfile[200];
	snprintf(port, sizeof port, "%d", redis_port);
	snprintf(pidfile, sizeof pidfile, "%s/redis.pid", dir);
	snprintf(logfile, sizeof logfile, "%s/redis.log", dir);
	redis_pid = fork();
	if (redis_pid < 0) {
		perror("fork");
		exit(2);
	}
	if (redis_pid == 0) {
		execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
		       "--save", "", "--appendonly", "no", "--requirepass", PASSWORD,
		       "--unixsocket", sock_path, "--unixsocketperm", "700", "--daemonize", "no",
		       "--logfile", logfile, "--dir", dir, (char *)NULL);
		_exit(127);
	}
	const char *pf = getenv("RL_REDIS_PIDFILE");
	if (pf) {
		FILE *f = fopen(pf, "w");
		if (f) {
			fprintf(f, "%d\n", (int)redis_pid);
			fclose(f);
		}
	}
	for (int i = 0; i < 100; i++) {
		redisContext *c = sync_client();
		if (c) {
			redisFree(c);
			return;
		}
		usleep(50000);
	}
	fprintf(stderr, "redis-server did not start (see %s)\n", logfile);
	exit(2);
}

static void redis_signal(int sig)
{
	if (redis_pid > 0)
		kill(redis_pid, sig);
}

static void redis_kill(void)
{
	if (redis_pid <= 0)
		return;
	kill(redis_pid, SIGCONT);
	kill(redis_pid, SIGKILL);
	waitpid(redis_pid, NULL, 0);
	redis_pid = -1;
	const char *pf = getenv("RL_REDIS_PIDFILE");
	if (pf)
		(void)!truncate(pf, 0); /* the runner must not signal a reused PID */
}

/* One command on a fresh synchronous connection (test side only). */
static redisReply *redis_cmd(const char *fmt, ...)
{
	redisContext *c = sync_client();
	if (!c)
		return NULL;
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	redisFree(c);
	return r;
}

/* ---- event loop helpers -------------------------------------------------------------- */

static void spin(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static bool is_up(struct mg_ratelimiter *rl)
{
	struct mg_ratelimiter_state st;
	mg_ratelimiter_state(rl, &st);
	return st.redis_up;
}

static bool wait_up(struct mg_ratelimiter *rl, int ms)
{
	int64_t deadline = now_us() + (int64_t)ms * 1000;
	while (!is_up(rl) && now_us() < deadline)
		spin(10);
	return is_up(rl);
}

struct result {
	bool answered;
	bool sync;
	struct mg_rl_decision d;
	int64_t started, finished;
	struct mg_rl_wait *wait;
};

static void on_done(const struct mg_rl_decision *d, void *arg)
{
	struct result *r = arg;
	if (r->answered)
		fprintf(stderr, "    not ok: done called twice\n"), case_failed = true;
	r->answered = true;
	r->d = *d;
	r->finished = now_us();
}

static void check_async(struct mg_ratelimiter *rl, const char *key, const struct mg_rate *rate,
                        struct result *r)
{
	memset(r, 0, sizeof *r);
	r->started = now_us();
	if (mg_ratelimiter_check(rl, key, strlen(key), rate, r->started, &r->d, on_done, r,
	                         &r->wait)) {
		r->answered = true;
		r->sync = true;
		r->finished = now_us();
	}
}

static bool all_answered(struct result *r, int n)
{
	for (int i = 0; i < n; i++)
		if (!r[i].answered)
			return false;
	return true;
}

static bool wait_all(struct result *r, int n, int ms)
{
	int64_t deadline = now_us() + (int64_t)ms * 1000;
	while (!all_answered(r, n) && now_us() < deadline)
		event_base_loop(base, EVLOOP_ONCE);
	return all_answered(r, n);
}

static struct mg_ratelimiter *limiter(const char *url)
{
	struct mg_ratelimiter_opts o = { .max_entries = 10000,
		                         .idle_secs = 60,
		                         .redis_url = url,
		                         .redis_timeout_ms = TIMEOUT_MS,
		                         .expected_instances = 2,
		                         .key_prefix = "rltest:" };
	char err[256];
	struct mg_ratelimiter *rl = mg_ratelimiter_new(base, &o, err, sizeof err);
	if (!rl) {
		fprintf(stderr, "mg_ratelimiter_new(%s): %s\n", url, err);
		exit(2);
	}
	return rl;
}

static const struct mg_rate five = { .per_second = 5, .burst = 5 };

/* 20 checks in flight at once, alternating between the two limiters. */
static int global_burst(struct mg_ratelimiter *a, struct mg_ratelimiter *b, const char *key,
                        int *fallbacks)
{
	struct result r[20];
	for (int i = 0; i < 20; i++)
		check_async(i % 2 ? b : a, key, &five, &r[i]);
	check_that(wait_all(r, 20, 3000), "all 20 answered");
	int allowed = 0, fb = 0;
	for (int i = 0; i < 20; i++) {
		allowed += r[i].d.allowed;
		fb += r[i].d.fallback;
		if (!r[i].d.fallback && !r[i].d.allowed)
			check_that(r[i].d.retry_after_us > 0 && r[i].d.retry_after_us <= 200000,
			           "retry_after %lld in (0, 200ms]",
			           (long long)r[i].d.retry_after_us);
	}
	*fallbacks = fb;
	return allowed;
}

/* ---- cases --------------------------------------------------------------------------- */

static void case_global(struct mg_ratelimiter *a, struct mg_ratelimiter *b)
{
	begin("1 one global limit across two instances (rps 5, burst 5, 20 checks)");
	int fb;
	int allowed = global_burst(a, b, "id:global", &fb);
	check_that(fb == 0, "no fallback (got %d)", fb);
	check_that(allowed == 5, "exactly 5 allowed (got %d)", allowed);

	/* One by one, waiting for each: remaining counts down 4..0. */
	struct result r;
	int64_t rem_expected = 4;
	for (int i = 0; i < 7; i++) {
		check_async(i % 2 ? b : a, "id:sequential", &five, &r);
		check_that(wait_all(&r, 1, 2000) && !r.sync, "answered by Redis");
		if (i < 5) {
			check_that(r.d.allowed, "check %d allowed", i);
			check_that(r.d.remaining == rem_expected, "remaining %lld, expected %lld",
			           (long long)r.d.remaining, (long long)rem_expected);
			check_that(r.d.limit == 5, "limit 5");
			rem_expected--;
		} else {
			check_that(!r.d.allowed, "check %d refused", i);
		}
	}
	/* Stored in db 2 (SELECT), with an expiry of about tau + T (1 s). */
	redisContext *c = sync_client();
	redisReply *rep = c ? redisCommand(c, "SELECT 2") : NULL;
	if (rep)
		freeReplyObject(rep);
	rep = c ? redisCommand(c, "PTTL rltest:id:sequential") : NULL;
	check_that(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0 &&
	               rep->integer <= 1000,
	           "PTTL in (0, 1000] ms (got %lld)",
	           rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -99);
	if (rep)
		freeReplyObject(rep);
	/* The TAT is stored as an integer (µs), not as 1.7e+15. */
	rep = c ? redisCommand(c, "GET rltest:id:sequential") : NULL;
	check_that(rep && rep->type == REDIS_REPLY_STRING && rep->len >= 16 &&
	               strspn(rep->str, "0123456789") == rep->len,
	           "TAT stored as integer microseconds (got %s)",
	           rep && rep->type == REDIS_REPLY_STRING ? rep->str : "?");
	if (rep)
		freeReplyObject(rep);
	if (c)
		redisFree(c);
	/* A key longer than 512 bytes is stored under its digest. */
	char longkey[2000];
	memset(longkey, 'k', sizeof longkey - 1);
	longkey[sizeof longkey - 1] = 0;
	check_async(a, longkey, &five, &r);
	check_that(wait_all(&r, 1, 2000) && !r.d.fallback && r.d.remaining == 4,
	           "long key decided by Redis");
	struct mg_ratelimiter_state st;
	mg_ratelimiter_state(a, &st);
	check_that(st.fallbacks == 0 && st.redis_errors == 0 && st.redis_timeouts == 0,
	           "no fallbacks/errors/timeouts (%llu/%llu/%llu)",
	           (unsigned long long)st.fallbacks, (unsigned long long)st.redis_errors,
	           (unsigned long long)st.redis_timeouts);
	end("1 one global limit across two instances (rps 5, burst 5, 20 checks)");
}

static void case_noscript(struct mg_ratelimiter *a, struct mg_ratelimiter *b)
{
	begin("2 NOSCRIPT recovery");
	struct result r;
	check_async(a, "id:ns", &five, &r);
	check_that(wait_all(&r, 1, 2000) && !r.d.fallback, "first check by Redis");
	redisReply *rep = redis_cmd("SCRIPT FLUSH");
	check_that(rep && rep->type == REDIS_REPLY_STATUS, "SCRIPT FLUSH");
	if (rep)
		freeReplyObject(rep);
	check_async(a, "id:ns", &five, &r);
	check_that(wait_all(&r, 1, 2000), "answered");
	check_that(!r.d.fallback && r.d.allowed && r.d.remaining == 3,
	           "reloaded and retried: allowed, remaining 3 (fallback %d remaining %lld)",
	           r.d.fallback, (long long)r.d.remaining);
	/* Again, with 20 checks in flight on both connections at once. */
	rep = redis_cmd("SCRIPT FLUSH");
	if (rep)
		freeReplyObject(rep);
	int fb;
	int allowed = global_burst(a, b, "id:ns-burst", &fb);
	check_that(fb == 0, "no fallback after the flush (got %d)", fb);
	check_that(allowed == 5, "exactly 5 allowed (got %d)", allowed);
	struct mg_ratelimiter_state sa, sb;
	mg_ratelimiter_state(a, &sa);
	mg_ratelimiter_state(b, &sb);
	check_that(sa.redis_errors + sb.redis_errors == 0, "no Redis errors counted");
	end("2 NOSCRIPT recovery");
}

static void case_kill_restart(struct mg_ratelimiter *a, struct mg_ratelimiter *b)
{
	begin("3 Redis killed mid-test, then restarted on the same port");
	/* A stream of checks, one every 2 ms; Redis is killed in the middle. */
	enum { N = 150, KILL_AT = 50 };
	static struct result r[N];
	for (int i = 0; i < N; i++) {
		if (i == KILL_AT)
			redis_kill();
		check_async(i % 2 ? b : a, "id:kill", &five, &r[i]);
		spin(2);
	}
	check_that(wait_all(r, N, 3000), "all %d answered", N);
	int by_redis = 0, fb = 0, late = 0;
	for (int i = 0; i < N; i++) {
		by_redis += !r[i].d.fallback;
		fb += r[i].d.fallback;
		if (i >= KILL_AT && !r[i].d.fallback)
			late++;
	}
	printf("    %d answered by Redis before the kill, %d by the fallback\n", by_redis, fb);
	check_that(by_redis > 0 && late == 0, "Redis before the kill, fallback after (%d late)",
	           late);
	/* Let both notice. */
	int64_t deadline = now_us() + 2000000;
	while ((is_up(a) || is_up(b)) && now_us() < deadline)
		spin(10);
	check_that(!is_up(a) && !is_up(b), "redis_up false on both");
	/* Answered at once from memory with half the limit (2 instances). */
	int allowed = 0;
	for (int i = 0; i < 10; i++) {
		struct result x;
		check_async(a, "id:down", &five, &x);
		check_that(x.sync && x.d.fallback, "synchronous fallback");
		check_that(x.d.limit == 3, "fallback limit 3 (got %lld)", (long long)x.d.limit);
		allowed += x.d.allowed;
	}
	check_that(allowed == 3, "3 allowed per instance while down (got %d)", allowed);
	/* Keep checking while down for a while, so the backoff grows. */
	spin(1500);
	int64_t restarted = now_us();
	redis_start();
	bool up = wait_up(a, 15000) && wait_up(b, 15000);
	check_that(up, "both up again");
	printf("    back up %.1f s after the restart\n", (double)(now_us() - restarted) / 1e6);
	int fbs;
	allowed = global_burst(a, b, "id:after-restart", &fbs);
	check_that(fbs == 0 && allowed == 5, "shared limit again: 5 allowed (got %d, %d fallback)",
	           allowed, fbs);
	end("3 Redis killed mid-test, then restarted on the same port");
}

static int done_calls;
static void count_done(const struct mg_rl_decision *d, void *arg)
{
	(void)d;
	(void)arg;
	done_calls++;
}

static void case_timeout(struct mg_ratelimiter *a, struct mg_ratelimiter *b)
{
	begin("4 Redis stopped (SIGSTOP): timeout, fallback, stall, recovery");
	struct mg_ratelimiter_state st0, st;
	mg_ratelimiter_state(a, &st0);
	redis_signal(SIGSTOP);
	struct result r;
	check_async(a, "id:timeout", &five, &r);
	check_that(!r.sync, "sent to Redis");
	check_that(wait_all(&r, 1, 3000), "answered");
	int64_t took = (r.finished - r.started) / 1000;
	printf("    fallback answer after %lld ms (redis_timeout_ms %d)\n", (long long)took,
	       TIMEOUT_MS);
	check_that(r.d.fallback, "fallback");
	check_that(took >= TIMEOUT_MS - 1 && took < TIMEOUT_MS + 400, "after about %d ms (%lld)",
	           TIMEOUT_MS, (long long)took);
	mg_ratelimiter_state(a, &st);
	check_that(st.redis_timeouts == st0.redis_timeouts + 1, "one timeout counted");
	/* A cancelled check: done is never called; its record outlives it. */
	done_calls = 0;
	struct mg_rl_decision d;
	struct mg_rl_wait *w = NULL;
	bool sync =
	    mg_ratelimiter_check(b, "id:cancel", 9, &five, now_us(), &d, count_done, NULL, &w);
	check_that(!sync && w, "pending");
	mg_ratelimiter_cancel(w);
	/* Keep checking through a stall longer than 1 s: the connection is
	 * dropped and checks become synchronous. */
	int64_t deadline = now_us() + 3000000;
	int n = 0;
	while (is_up(a) && now_us() < deadline) {
		check_async(a, "id:stall", &five, &r);
		wait_all(&r, 1, 1000);
		check_that(r.d.fallback, "fallback while stopped");
		n++;
	}
	check_that(!is_up(a), "redis_up false after the stall (%d checks)", n);
	check_async(a, "id:stall", &five, &r);
	check_that(r.sync && r.d.fallback, "synchronous while down");
	check_that(done_calls == 0, "cancelled check never answered");
	redis_signal(SIGCONT);
	check_that(wait_up(a, 15000) && wait_up(b, 15000), "both up after SIGCONT");
	spin(300); /* late replies to the orphans arrive and are dropped */
	check_that(done_calls == 0, "cancelled check never answered after SIGCONT");
	check_async(a, "id:after-stop", &five, &r);
	check_that(wait_all(&r, 1, 2000) && !r.d.fallback && r.d.allowed, "Redis answers again");
	end("4 Redis stopped (SIGSTOP): timeout, fallback, stall, recovery");
}

static void case_free_pending(void)
{
	begin("5 free with checks in flight; wrong password; unix socket");
	char url[256];
	snprintf(url, sizeof url, "redis://:%s@127.0.0.1:%d/2", PASSWORD, redis_port);
	struct mg_ratelimiter *c = limiter(url);
	check_that(wait_up(c, 5000), "up");
	struct result r[50];
	for (int i = 0; i < 50; i++)
		check_async(c, "id:free", &five, &r[i]);
	mg_ratelimiter_free(c); /* pending checks are answered (fallback), nothing leaks */
	check_that(all_answered(r, 50), "all answered by free");
	/* And with Redis stopped (orphans queued behind a timeout). */
	c = limiter(url);
	check_that(wait_up(c, 5000), "up");
	redis_signal(SIGSTOP);
	for (int i = 0; i < 50; i++)
		check_async(c, "id:free2", &five, &r[i]);
	wait_all(r, 50, 2000);
	check_that(all_answered(r, 50), "answered by the timeout");
	for (int i = 0; i < 10; i++)
		check_async(c, "id:free3", &five, &r[i]);
	mg_ratelimiter_free(c);
	redis_signal(SIGCONT);
	check_that(all_answered(r, 10), "all answered by free");

	snprintf(url, sizeof url, "redis://:wrong@127.0.0.1:%d", redis_port);
	c = limiter(url);
	spin(500);
	check_that(!is_up(c), "wrong password: not up");
	check_async(c, "id:pw", &five, &r[0]);
	check_that(r[0].sync && r[0].d.fallback, "fallback");
	mg_ratelimiter_free(c);

	/* unix socket, password and database as query parameters */
	snprintf(url, sizeof url, "unix://%s?db=3&password=%s", sock_path, PASSWORD);
	c = limiter(url);
	check_that(wait_up(c, 5000), "unix socket: up");
	check_async(c, "id:unix", &five, &r[0]);
	check_that(wait_all(r, 1, 2000) && !r[0].d.fallback && r[0].d.allowed, "decided by Redis");
	mg_ratelimiter_free(c);
	redisContext *sc = sync_client();
	redisReply *rep = sc ? redisCommand(sc, "SELECT 3") : NULL;
	if (rep)
		freeReplyObject(rep);
	rep = sc ? redisCommand(sc, "EXISTS rltest:id:unix") : NULL;
	check_that(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1, "key in db 3");
	if (rep)
		freeReplyObject(rep);
	if (sc)
		redisFree(sc);
	end("5 free with checks in flight; wrong password; unix socket");
}

/* ---- throughput ---------------------------------------------------------------------- */

/* CPU time (µs) of this process, and of redis-server from /proc. */
static int64_t self_cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t redis_cpu_us(void)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)redis_pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')');
	unsigned long long ut = 0, st = 0;
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (int64_t)(ut + st) * 1000000 / sysconf(_SC_CLK_TCK);
}

static int bench_inflight, bench_done;
static struct mg_ratelimiter *bench_rl;
static char bench_keys[1000][32];

static void bench_on_done(const struct mg_rl_decision *d, void *arg)
{
	(void)d;
	(void)arg;
	bench_inflight--;
	bench_done++;
}

static void bench(void)
{
	const struct mg_rate rate = { .per_second = 1e6, .burst = 1000 };
	struct mg_rl_decision d;
	for (int i = 0; i < 1000; i++)
		snprintf(bench_keys[i], sizeof bench_keys[i], "id:user-%d", i);

	/* Memory: 1000 keys, round robin; then 100k keys in a 100k table. */
	struct mg_ratelimiter_opts mo = { .max_entries = 200000, .idle_secs = 3600 };
	char err[256];
	struct mg_ratelimiter *m = mg_ratelimiter_new(NULL, &mo, err, sizeof err);
	const int n = 20000000;
	int64_t t0 = now_us();
	for (int i = 0; i < n; i++)
		mg_ratelimiter_check(m, bench_keys[i % 1000], strlen(bench_keys[i % 1000]), &rate,
		                     t0 + i / 64, &d, NULL, NULL, NULL);
	int64_t t1 = now_us();
	printf("memory, 1000 keys:   %.1f ns/check, %.1f M checks/s\n",
	       (double)(t1 - t0) * 1000 / n, n / (double)(t1 - t0));
	(void)self_cpu_us;
	static char many[100000][24];
	for (int i = 0; i < 100000; i++)
		snprintf(many[i], sizeof many[i], "ip:10.%d.%d", i / 256, i % 256);
	t0 = now_us();
	for (int i = 0; i < n; i++) {
		int k = (int)(((uint64_t)i * 2654435761u) % 100000);
		mg_ratelimiter_check(m, many[k], strlen(many[k]), &rate, t0 + i / 64, &d, NULL,
		                     NULL, NULL);
	}
	t1 = now_us();
	printf("memory, 100k keys:   %.1f ns/check, %.1f M checks/s\n",
	       (double)(t1 - t0) * 1000 / n, n / (double)(t1 - t0));
	mg_ratelimiter_free(m);

	/* Redis: one instance, up to `window` checks in flight. */
	char url[256];
	snprintf(url, sizeof url, "redis://:%s@127.0.0.1:%d", PASSWORD, redis_port);
	struct mg_ratelimiter_opts o = { .max_entries = 10000,
		                         .idle_secs = 60,
		                         .redis_url = url,
		                         .redis_timeout_ms =
		                             5000, /* measure Redis, not fallbacks */
		                         .expected_instances = 1 };
	bench_rl = mg_ratelimiter_new(base, &o, err, sizeof err);
	if (!wait_up(bench_rl, 5000)) {
		printf("redis bench: not up\n");
		failures++;
		return;
	}
	const int windows[] = { 1, 100, 1000, 10000 };
	for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
		int total = windows[w] == 1 ? 20000 : 300000;
		int sent = 0;
		bench_done = 0;
		bench_inflight = 0;
		t0 = now_us();
		int64_t c0 = self_cpu_us(), r0 = redis_cpu_us();
		while (bench_done < total) {
			while (sent < total && bench_inflight < windows[w]) {
				const char *k = bench_keys[sent % 1000];
				if (mg_ratelimiter_check(bench_rl, k, strlen(k), &rate, now_us(),
				                         &d, bench_on_done, NULL, NULL))
					bench_done++;
				else
					bench_inflight++;
				sent++;
			}
			event_base_loop(base, EVLOOP_ONCE);
		}
		t1 = now_us();
		int64_t c1 = self_cpu_us(), r1 = redis_cpu_us();
		printf("redis, %5d in flight: %.0f checks/s; CPU per check: client %.1f µs, "
		       "redis-server %.1f µs\n",
		       windows[w], total / ((double)(t1 - t0) / 1e6), (double)(c1 - c0) / total,
		       (double)(r1 - r0) / total);
	}
	struct mg_ratelimiter_state st;
	mg_ratelimiter_state(bench_rl, &st);
	printf("redis: fallbacks %llu timeouts %llu errors %llu\n",
	       (unsigned long long)st.fallbacks, (unsigned long long)st.redis_timeouts,
	       (unsigned long long)st.redis_errors);
	mg_ratelimiter_free(bench_rl);
}

int main(int argc, char **argv)
{
	bool do_bench = argc > 1 && strcmp(argv[1], "--bench") == 0;
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof dir, "/tmp/mg-rl-redis.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(sock_path, sizeof sock_path, "%s/redis.sock", dir);
	redis_port = free_port();
	redis_start();
	base = event_base_new();
	printf("redis-server pid %d on 127.0.0.1:%d\n", (int)redis_pid, redis_port);

	if (do_bench) {
		bench();
	} else {
		char url[256];
		snprintf(url, sizeof url, "redis://:%s@127.0.0.1:%d/2", PASSWORD, redis_port);
		struct mg_ratelimiter *a = limiter(url), *b = limiter(url);
		begin("0 both instances connect");
		check_that(wait_up(a, 5000) && wait_up(b, 5000), "both up");
		end("0 both instances connect");
		case_global(a, b);
		case_noscript(a, b);
		case_kill_restart(a, b);
		case_timeout(a, b);
		mg_ratelimiter_free(a);
		mg_ratelimiter_free(b);
		case_free_pending();
	}
	event_base_free(base);
	redis_kill();
	char path[200];
	snprintf(path, sizeof path, "%s/redis.log", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/redis.pid", dir);
	unlink(path);
	unlink(sock_path); /* left behind by SIGKILL */
	rmdir(dir);
	printf("%s\n", failures ? "FAILED" : "all passed");
	return failures ? 1 : 0;
}
