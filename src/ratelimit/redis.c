/*
 * redis.c - GCRA shared between gateway instances through Redis.
 *
 * One Lua script does the whole check atomically with Redis' own clock
 * (TIME), so instances with skewed clocks still agree; it stores the TAT
 * with an expiry of (TAT - now), after which a key is equivalent to a fresh
 * one and simply vanishes. The script is loaded with SCRIPT LOAD when the
 * connection is made and run with EVALSHA; a NOSCRIPT answer (SCRIPT FLUSH,
 * a failover to a replica that never saw the script) loads it again and
 * retries once on the same connection (pipelined: the load runs first).
 *
 * hiredis 0.14.1, async API on the gateway's libevent loop. What a person
 * changing this must know about it:
 *
 *  - It has no timeouts. Every check arms a timer (a libevent common
 *    timeout: O(1) for many timers of one duration); when it fires the
 *    memory table answers (fallback) and the check's record stays queued in
 *    hiredis, "orphaned", until hiredis calls back with the late reply or
 *    with NULL on disconnect; only then is it recycled. mg_ratelimiter_cancel
 *    orphans a record the same way. No reply callback ever sees freed memory.
 *  - On disconnect and on redisAsyncFree hiredis calls every pending reply
 *    callback with a NULL reply before the disconnect callback; pending
 *    checks are answered from memory there. A `done` may re-enter
 *    mg_ratelimiter_check at that point, so the state leaves UP first.
 *  - redisAsyncFree inside a reply callback is deferred by hiredis until the
 *    callback returns; outside it is immediate. Never free the context in the
 *    connect or disconnect callback (hiredis frees it itself afterwards).
 *  - A failed connect calls the connect callback with REDIS_ERR and frees
 *    the context; the disconnect callback is only called for contexts that
 *    were connected.
 *  - redisAsyncConnect resolves names with blocking getaddrinfo(3). Names
 *    are therefore resolved on a short-lived thread and hiredis is given the
 *    numeric address; literals and unix sockets connect at once.
 *  - hiredis 0.14 sets TCP_NODELAY itself; it is set again on connect to
 *    make the requirement explicit.
 *
 * States: IDLE (waiting for the reconnect timer) → RESOLVING → CONNECTING
 * (AUTH, SELECT, SCRIPT LOAD pipelined, bounded by a handshake deadline) →
 * UP. Any failure goes back to IDLE with an exponential backoff (100 ms to
 * 10 s). Only UP sends checks; in every other state the memory table
 * answers at once (fallback). A connection that answers nothing for
 * max(1 s, 4 × redis_timeout_ms) while checks wait (a hung or stopped
 * Redis) is dropped too, so requests stop paying the timeout each.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "ratelimit/internal.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"

#define DEFAULT_PREFIX    "mcp-guard:rl:"
#define BACKOFF_MIN_MS    100
#define BACKOFF_MAX_MS    10000
#define MAX_INFLIGHT      16384 /* checks queued in hiredis, orphans included */
#define MAX_FREE_WAITS    1024
#define STALL_MIN_US      1000000
#define HANDSHAKE_MIN_MS  1000
#define DIGEST_HEX_LEN    (2 * MG_SHA256_LEN)
#define REDIS_KEY_MAX_LEN (MG_RL_MAX_KEY + 1)

/* KEYS[1] the key; ARGV: T, tau, burst - 1 (µs, integers < 2^51). Returns
 * {allowed, remaining, reset_us, retry_after_us}. Same algorithm as gcra.c.
 * Numbers are doubles in Lua 5.1, exact below 2^53. A number passed to
 * redis.call is written by Redis itself as an integer when it is one
 * ("%.17g" up to 7.0, an integer printer since), never as 1.7e+15 (which
 * tostring() would give); string.format would cost a third of the script. */
const char mg_rl_redis_script[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local t = tonumber(ARGV[1])\n"
    "local tau = tonumber(ARGV[2])\n"
    "local maxrem = tonumber(ARGV[3])\n"
    "local tm = redis.call('TIME')\n"
    "local now = tonumber(tm[1]) * 1000000 + tonumber(tm[2])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]))\n"
    "if not tat or tat == 0 then tat = now end\n"
    "local allow_at = tat - tau\n"
    "if now < allow_at then\n"
    "  return {0, 0, tat - now, allow_at - now}\n"
    "end\n"
    "local nxt = math.max(tat, now) + t\n"
    "local ahead = nxt - now\n"
    "redis.call('SET', KEYS[1], nxt, 'PX', math.ceil(ahead / 1000))\n"
    "local room = tau + t - ahead\n"
    "local rem = 0\n"
    "if room > 0 then\n"
    "  rem = math.floor(room / t)\n"
    "  if (rem + 1) * t <= room then rem = rem + 1 end\n"
    "  if rem * t > room then rem = rem - 1 end\n"
    "end\n"
    "if rem > maxrem then rem = maxrem end\n"
    "return {1, rem, ahead, 0}\n";

enum conn_state { RS_IDLE, RS_RESOLVING, RS_CONNECTING, RS_UP, RS_CLOSING };

struct resolve;

struct mg_rl_redis {
	struct mg_ratelimiter *rl;
	struct event_base *base;
	struct mg_redis_url url;
	char target[300]; /* for logs: host:port or the socket path, never a password */
	char *prefix;
	size_t prefix_len;
	const struct timeval *check_tv; /* common timeout of redis_timeout_ms */
	int64_t stall_us;
	int64_t handshake_ms;

	redisAsyncContext *ac;
	enum conn_state state;
	char sha[41];
	struct event *timer; /* IDLE: reconnect; CONNECTING: handshake deadline */
	int64_t backoff_ms;
	struct resolve *resolving;
	bool logged_down;

	size_t inflight;
	int64_t waiting_since_us; /* last reply, or first send after silence */
	struct mg_rl_wait *free_waits;
	size_t n_free;
	char keybuf[sizeof DEFAULT_PREFIX + 256 + REDIS_KEY_MAX_LEN + DIGEST_HEX_LEN];
	char *keyheap; /* keybuf too small for a long prefix */
};

struct mg_rl_wait {
	struct mg_rl_redis *r;
	struct event *timer;
	mg_rl_done_fn done; /* NULL once answered or cancelled: an orphan */
	void *arg;
	struct mg_rate rate;
	int64_t now_us;
	bool retried;
	struct mg_rl_wait *next_free;
	struct mg_rl_key key; /* key.p points into keybuf or key.digest */
	char keybuf[MG_RL_MAX_KEY];
};

/* ---- URL ----------------------------------------------------------------------------- */

/* malloc'd percent-decoded copy of s[0..n); NULL when malformed or when it
 * would contain a NUL. */
static char *pct_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			out[o++] = s[i];
			continue;
		}
		int hi = i + 1 < n ? mg_hex_value(s[i + 1]) : -1;
		int lo = i + 2 < n ? mg_hex_value(s[i + 2]) : -1;
		if (hi < 0 || lo < 0 || (hi | lo) == 0) {
			free(out);
			return NULL;
		}
		out[o++] = (char)(hi * 16 + lo);
		i += 2;
	}
	out[o] = 0;
	return out;
}

void mg_redis_url_free(struct mg_redis_url *u)
{
	free(u->host);
	free(u->path);
	free(u->user);
	if (u->password) {
		explicit_bzero(u->password, strlen(u->password));
		free(u->password);
	}
	memset(u, 0, sizeof *u);
}

static int parse_db(const char *s, size_t n, int64_t *db)
{
	char tmp[24];
	if (n == 0 || n >= sizeof tmp)
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = 0;
	return mg_parse_i64(tmp, 0, INT32_MAX, db);
}

int mg_redis_url_parse(const char *url, struct mg_redis_url *u, char *err, size_t err_size)
{
	memset(u, 0, sizeof *u);
	u->db = -1;
	u->port = 6379;
	if (mg_str_starts_with(url, "rediss://")) {
		snprintf(err, err_size, "TLS to Redis is not supported in this build");
		return -1;
	}
	if (mg_str_starts_with(url, "unix://")) {
		const char *p = url + 7;
		const char *q = strchr(p, '?');
		size_t n = q ? (size_t)(q - p) : strlen(p);
		if (n < 2 || p[0] != '/') {
			snprintf(
			    err, err_size,
			    "expected unix:///path/to/redis.sock[?db=N][&password=…][&user=…]");
			goto fail;
		}
		u->unix_socket = true;
		u->path = pct_decode(p, n);
		if (!u->path) {
			snprintf(err, err_size, "unix socket URL: bad %%-escape in the path");
			goto fail;
		}
		/* Query parameters, as redis-py reads them. */
		while (q && *q) {
			const char *param = q + 1;
			const char *pend = param + strcspn(param, "&");
			const char *eq = memchr(param, '=', (size_t)(pend - param));
			char **dst = NULL;
			if (!eq)
				goto bad_param;
			size_t klen = (size_t)(eq - param);
			const char *v = eq + 1;
			size_t vlen = (size_t)(pend - v);
			if (klen == 2 && memcmp(param, "db", 2) == 0) {
				if (parse_db(v, vlen, &u->db) < 0)
					goto bad_param;
			} else if (klen == 8 && memcmp(param, "password", 8) == 0) {
				dst = &u->password;
			} else if (klen == 4 && memcmp(param, "user", 4) == 0) {
				dst = &u->user;
			} else {
				goto bad_param;
			}
			if (dst) {
				free(*dst);
				*dst = vlen ? pct_decode(v, vlen) : NULL;
				if (vlen && !*dst)
					goto bad_param;
			}
			q = *pend ? pend : NULL;
		}
		if (u->user && !u->password) {
			snprintf(err, err_size, "unix socket URL: user= needs a password=");
			goto fail;
		}
		return 0;
	}
	if (!mg_str_starts_with(url, "redis://")) {
		snprintf(err, err_size,
		         "expected redis://[user:password@]host[:port][/db] or unix:///path");
		return -1;
	}
	const char *rest = url + 8;
	const char *at = strrchr(rest, '@');
	const char *host = rest;
	if (at) {
		const char *colon = memchr(rest, ':', (size_t)(at - rest));
		const char *pw = rest;
		if (colon) {
			if (colon > rest) {
				u->user = pct_decode(rest, (size_t)(colon - rest));
				if (!u->user)
					goto bad_escape;
			}
			pw = colon + 1;
		}
		if (at > pw) {
			u->password = pct_decode(pw, (size_t)(at - pw));
			if (!u->password)
				goto bad_escape;
		}
		host = at + 1;
	}
	const char *host_end;
	const char *after;
	if (host[0] == '[') {
		host_end = strchr(host, ']');
		if (!host_end) {
			snprintf(err, err_size, "redis URL: missing ']' after the IPv6 address");
			goto fail;
		}
		u->host = mg_strndup(host + 1, (size_t)(host_end - host - 1));
		after = host_end + 1;
	} else {
		host_end = host + strcspn(host, ":/?#");
		u->host = mg_strndup(host, (size_t)(host_end - host));
		after = host_end;
	}
	if (!u->host || !u->host[0]) {
		snprintf(err, err_size, "redis URL: no host");
		goto fail;
	}
	if (*after == ':') {
		const char *pe = after + 1 + strcspn(after + 1, "/");
		int64_t port;
		char tmp[8];
		size_t n = (size_t)(pe - after - 1);
		if (n == 0 || n >= sizeof tmp)
			goto bad_port;
		memcpy(tmp, after + 1, n);
		tmp[n] = 0;
		if (mg_parse_i64(tmp, 1, 65535, &port) < 0)
			goto bad_port;
		u->port = (int)port;
		after = pe;
	}
	if (*after == '/') {
		after++;
		if (*after && parse_db(after, strlen(after), &u->db) < 0) {
			snprintf(
			    err, err_size,
			    "redis URL: expected a database number after the '/', found \"%s\"",
			    after);
			goto fail;
		}
	} else if (*after) {
		snprintf(err, err_size, "redis URL: unexpected \"%s\" after the host", after);
		goto fail;
	}
	return 0;
bad_port:
	snprintf(err, err_size, "redis URL: the port must be a number from 1 to 65535");
	goto fail;
bad_param:
	snprintf(err, err_size,
	         "unix socket URL: expected ?db=N, password=… or user=… after the path");
	goto fail;
bad_escape:
	snprintf(err, err_size, "redis URL: bad %%-escape in the user name or password");
fail:
	mg_redis_url_free(u);
	return -1;
}

/* ---- name resolution off the loop ---------------------------------------------------- */

/* One resolution: the thread and the loop each hold a reference; the loop
 * drops its own when it reads the answer or gives up (free), the thread
 * after writing it. The socketpair wakes the loop. */
struct resolve {
	atomic_int refs;
	int fds[2];
	char *host;
	int err;
	char addr[INET6_ADDRSTRLEN];
	struct event *ev;
	struct mg_rl_redis *r;
};

static void resolve_release(struct resolve *rs, int fd)
{
	close(fd);
	if (atomic_fetch_sub(&rs->refs, 1) == 1) {
		free(rs->host);
		free(rs);
	}
}

static void *resolve_thread(void *arg)
{
	struct resolve *rs = arg;
	pthread_setname_np(pthread_self(), "mg-resolve");
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
	struct addrinfo *res = NULL;
	rs->err = getaddrinfo(rs->host, NULL, &hints, &res);
	if (!rs->err) {
		/* IPv4 first, as hiredis itself does. */
		const struct addrinfo *pick = res;
		for (const struct addrinfo *a = res; a; a = a->ai_next)
			if (a->ai_family == AF_INET) {
				pick = a;
				break;
			}
		if (getnameinfo(pick->ai_addr, pick->ai_addrlen, rs->addr, sizeof rs->addr, NULL, 0,
		                NI_NUMERICHOST) != 0)
			rs->err = EAI_FAIL;
		freeaddrinfo(res);
	}
	char c = 1;
	(void)!send(rs->fds[1], &c, 1, MSG_NOSIGNAL);
	resolve_release(rs, rs->fds[1]);
	return NULL;
}

static void connect_to(struct mg_rl_redis *r, const char *addr);
static void schedule_reconnect(struct mg_rl_redis *r, const char *reason);

static void on_resolved(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct resolve *rs = arg;
	struct mg_rl_redis *r = rs->r;
	char c;
	(void)!recv(rs->fds[0], &c, 1, 0);
	event_free(rs->ev);
	r->resolving = NULL;
	char addr[INET6_ADDRSTRLEN];
	int err = rs->err;
	memcpy(addr, rs->addr, sizeof addr);
	resolve_release(rs, rs->fds[0]);
	if (err) {
		char why[200];
		snprintf(why, sizeof why, "cannot resolve %s: %s", r->url.host, gai_strerror(err));
		r->state = RS_IDLE;
		schedule_reconnect(r, why);
		return;
	}
	connect_to(r, addr);
}

static void resolve_start(struct mg_rl_redis *r)
{
	struct resolve *rs = calloc(1, sizeof *rs);
	if (!rs)
		goto fail;
	rs->host = mg_strdup(r->url.host);
	if (!rs->host || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, rs->fds) < 0) {
		free(rs->host);
		free(rs);
		goto fail;
	}
	rs->r = r;
	atomic_init(&rs->refs, 2);
	rs->ev = event_new(r->base, rs->fds[0], EV_READ, on_resolved, rs);
	pthread_attr_t attr;
	pthread_t th;
	bool started = false;
	if (rs->ev && pthread_attr_init(&attr) == 0) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		started = pthread_create(&th, &attr, resolve_thread, rs) == 0;
		pthread_attr_destroy(&attr);
	}
	if (!started) {
		if (rs->ev)
			event_free(rs->ev);
		close(rs->fds[0]);
		close(rs->fds[1]);
		free(rs->host);
		free(rs);
		goto fail;
	}
	event_add(rs->ev, NULL);
	r->resolving = rs;
	r->state = RS_RESOLVING;
	return;
fail:
	r->state = RS_IDLE;
	schedule_reconnect(r, "cannot start the resolver");
}

/* Drops a pending resolution; the thread frees it when it finishes. */
static void resolve_abandon(struct mg_rl_redis *r)
{
	struct resolve *rs = r->resolving;
	if (!rs)
		return;
	r->resolving = NULL;
	event_free(rs->ev);
	resolve_release(rs, rs->fds[0]);
}

/* ---- connection ---------------------------------------------------------------------- */

static void mark_down(struct mg_rl_redis *r, const char *reason)
{
	if (r->logged_down)
		return;
	r->logged_down = true;
	mg_log_warn("rate limit: Redis at %s unavailable (%s); deciding in memory with 1/%lld of "
	            "each limit until it is back",
	            r->target, reason && reason[0] ? reason : "connection lost",
	            (long long)r->rl->expected_instances);
}

static void mark_up(struct mg_rl_redis *r)
{
	r->state = RS_UP;
	r->backoff_ms = BACKOFF_MIN_MS;
	r->waiting_since_us = (int64_t)mg_now_us();
	event_del(r->timer);
	if (r->logged_down)
		mg_log_info("rate limit: Redis at %s is back; limits are shared again", r->target);
	else
		mg_log_info("rate limit: connected to Redis at %s; limits are shared", r->target);
	r->logged_down = false;
}

static void schedule_reconnect(struct mg_rl_redis *r, const char *reason)
{
	mark_down(r, reason);
	if (r->rl->freeing)
		return;
	struct timeval tv = { .tv_sec = r->backoff_ms / 1000,
		              .tv_usec = (r->backoff_ms % 1000) * 1000 };
	event_add(r->timer, &tv);
	r->backoff_ms *= 2;
	if (r->backoff_ms > BACKOFF_MAX_MS)
		r->backoff_ms = BACKOFF_MAX_MS;
}

/* Gives up the current connection (handshake error, deadline, stall). The
 * state leaves UP before hiredis runs the pending callbacks, which answer
 * their checks from memory (now, or when the current callback returns). */
static void abandon(struct mg_rl_redis *r, const char *reason)
{
	redisAsyncContext *ac = r->ac;
	r->ac = NULL;
	r->state = RS_IDLE;
	event_del(r->timer);
	schedule_reconnect(r, reason);
	if (ac)
		redisAsyncFree(ac);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct mg_rl_redis *r = ac->data;
	if (ac != r->ac)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees the context after this returns. */
		r->ac = NULL;
		r->state = RS_IDLE;
		event_del(r->timer);
		schedule_reconnect(r, ac->errstr);
		return;
	}
	if (!r->url.unix_socket) {
		int one = 1;
		setsockopt(ac->c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	(void)status;
	struct mg_rl_redis *r = ac->data;
	if (ac != r->ac)
		return; /* abandoned: already handled */
	r->ac = NULL;
	r->state = RS_IDLE;
	event_del(r->timer);
	schedule_reconnect(r, ac->errstr && ac->errstr[0] ? ac->errstr : "connection closed");
}

static void on_handshake_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct mg_rl_redis *r = privdata;
	redisReply *rep = reply;
	if (!rep || ac != r->ac)
		return;
	if (rep->type == REDIS_REPLY_ERROR) {
		char why[200];
		snprintf(why, sizeof why, "connection setup refused: %s", rep->str);
		abandon(r, why);
	}
}

static void on_script_loaded(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct mg_rl_redis *r = privdata;
	redisReply *rep = reply;
	if (!rep || ac != r->ac)
		return;
	if (rep->type == REDIS_REPLY_STRING && rep->len == 40) {
		memcpy(r->sha, rep->str, 40);
		r->sha[40] = 0;
		if (r->state == RS_CONNECTING)
			mark_up(r);
		return;
	}
	char why[200];
	snprintf(why, sizeof why, "SCRIPT LOAD: %s",
	         rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
	if (r->state == RS_CONNECTING)
		abandon(r, why);
	else
		mg_log_debug("rate limit: Redis at %s: %s", r->target, why);
}

static int send_script_load(struct mg_rl_redis *r)
{
	const char *argv[] = { "SCRIPT", "LOAD", mg_rl_redis_script };
	size_t lens[] = { 6, 4, sizeof mg_rl_redis_script - 1 };
	return redisAsyncCommandArgv(r->ac, on_script_loaded, r, 3, argv, lens);
}

static void connect_to(struct mg_rl_redis *r, const char *addr)
{
	redisAsyncContext *ac = r->url.unix_socket ? redisAsyncConnectUnix(r->url.path)
	                                           : redisAsyncConnect(addr, r->url.port);
	if (!ac) {
		r->state = RS_IDLE;
		schedule_reconnect(r, "out of memory");
		return;
	}
	if (ac->err) {
		char why[200];
		snprintf(why, sizeof why, "%s", ac->errstr);
		redisAsyncFree(ac);
		r->state = RS_IDLE;
		schedule_reconnect(r, why);
		return;
	}
	ac->data = r;
	if (redisLibeventAttach(ac, r->base) != REDIS_OK) {
		redisAsyncFree(ac);
		r->state = RS_IDLE;
		schedule_reconnect(r, "cannot attach to the event loop");
		return;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	r->ac = ac;
	r->state = RS_CONNECTING;
	r->sha[0] = 0;
	/* Commands queue until the socket is connected; all three are pipelined. */
	int rc = REDIS_OK;
	if (r->url.password) {
		const char *argv[3] = { "AUTH" };
		size_t lens[3] = { 4 };
		int n = 1;
		if (r->url.user) {
			argv[n] = r->url.user;
			lens[n++] = strlen(r->url.user);
		}
		argv[n] = r->url.password;
		lens[n++] = strlen(r->url.password);
		rc |= redisAsyncCommandArgv(ac, on_handshake_reply, r, n, argv, lens);
	}
	if (r->url.db >= 0)
		rc |= redisAsyncCommand(ac, on_handshake_reply, r, "SELECT %lld",
		                        (long long)r->url.db);
	rc |= send_script_load(r);
	if (rc != REDIS_OK) {
		abandon(r, "cannot queue the connection setup");
		return;
	}
	struct timeval tv = { .tv_sec = r->handshake_ms / 1000,
		              .tv_usec = (r->handshake_ms % 1000) * 1000 };
	event_add(r->timer, &tv);
}

static bool is_numeric_host(const char *h)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

static void start_connect(struct mg_rl_redis *r)
{
	if (r->url.unix_socket || is_numeric_host(r->url.host))
		connect_to(r, r->url.unix_socket ? NULL : r->url.host);
	else
		resolve_start(r);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct mg_rl_redis *r = arg;
	if (r->state == RS_IDLE)
		start_connect(r);
	else if (r->state == RS_CONNECTING)
		abandon(r, "no answer to the connection setup in time");
}

/* ---- checks -------------------------------------------------------------------------- */

static void wait_recycle(struct mg_rl_redis *r, struct mg_rl_wait *w)
{
	if (r->n_free < MAX_FREE_WAITS) {
		w->next_free = r->free_waits;
		r->free_waits = w;
		r->n_free++;
		return;
	}
	event_free(w->timer);
	free(w);
}

static void on_wait_timeout(evutil_socket_t fd, short what, void *arg);

static struct mg_rl_wait *wait_get(struct mg_rl_redis *r)
{
	struct mg_rl_wait *w = r->free_waits;
	if (w) {
		r->free_waits = w->next_free;
		r->n_free--;
		return w;
	}
	w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->r = r;
	w->timer = event_new(r->base, -1, 0, on_wait_timeout, w);
	if (!w->timer) {
		free(w);
		return NULL;
	}
	return w;
}

static char hexdigit(unsigned v)
{
	return "0123456789abcdef"[v & 15];
}

static void on_check_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* Queues EVALSHA for `w`; returns false when hiredis refuses (closing). */
static bool send_check(struct mg_rl_redis *r, struct mg_rl_wait *w)
{
	struct mg_gcra_params p;
	mg_gcra_params(&w->rate, &p);
	char *kb = r->keyheap ? r->keyheap : r->keybuf;
	size_t klen = r->prefix_len;
	memcpy(kb, r->prefix, klen);
	if (w->key.hashed) {
		/* '#' + hex: never the same as a key of up to MG_RL_MAX_KEY
		 * bytes, whose digest it would have to be. */
		kb[klen++] = '#';
		for (size_t i = 0; i < MG_SHA256_LEN; i++) {
			kb[klen++] = hexdigit(w->key.digest[i] >> 4);
			kb[klen++] = hexdigit(w->key.digest[i]);
		}
	} else {
		memcpy(kb + klen, w->key.p, w->key.len);
		klen += w->key.len;
	}
	char ts[24], taus[24], rems[24];
	int tl = snprintf(ts, sizeof ts, "%lld", (long long)p.t);
	int taul = snprintf(taus, sizeof taus, "%lld", (long long)p.tau);
	int reml = snprintf(rems, sizeof rems, "%lld", (long long)(p.burst - 1));
	const char *argv[] = { "EVALSHA", r->sha, "1", kb, ts, taus, rems };
	size_t lens[] = { 7, 40, 1, klen, (size_t)tl, (size_t)taul, (size_t)reml };
	if (redisAsyncCommandArgv(r->ac, on_check_reply, w, 7, argv, lens) != REDIS_OK)
		return false;
	if (r->inflight++ == 0)
		r->waiting_since_us = (int64_t)mg_now_us();
	return true;
}

/* Answers `w` from memory, recycles it, then calls its `done` (last: done
 * may re-enter the limiter). */
static void answer_fallback(struct mg_rl_redis *r, struct mg_rl_wait *w)
{
	struct mg_rl_decision d;
	mg_rl_fallback(r->rl, &w->key, &w->rate, w->now_us, &d);
	mg_rl_done_fn done = w->done;
	void *arg = w->arg;
	w->done = NULL;
	event_del(w->timer);
	wait_recycle(r, w);
	done(&d, arg);
}

static bool parse_decision(const redisReply *rep, const struct mg_rate *rate,
                           struct mg_rl_decision *d)
{
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 4)
		return false;
	for (size_t i = 0; i < 4; i++)
		if (rep->element[i]->type != REDIS_REPLY_INTEGER)
			return false;
	struct mg_gcra_params p;
	mg_gcra_params(rate, &p);
	d->allowed = rep->element[0]->integer == 1;
	d->limit = p.burst;
	d->remaining = rep->element[1]->integer;
	d->reset_us = rep->element[2]->integer;
	d->retry_after_us = rep->element[3]->integer;
	d->fallback = false;
	return true;
}

static void on_check_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct mg_rl_wait *w = privdata;
	struct mg_rl_redis *r = w->r;
	redisReply *rep = reply;
	r->inflight--;
	if (!rep) {
		/* The connection is going away: nothing more may be sent on it. */
		if (ac == r->ac && r->state == RS_UP)
			r->state = RS_CLOSING;
	} else {
		r->waiting_since_us = (int64_t)mg_now_us();
	}
	if (!w->done) {
		wait_recycle(r, w); /* late reply after a timeout or cancel */
		return;
	}
	if (!rep) {
		answer_fallback(r, w);
		return;
	}
	if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0 &&
	    !w->retried && ac == r->ac && r->state == RS_UP) {
		w->retried = true;
		if (send_script_load(r) == REDIS_OK && send_check(r, w))
			return;
	}
	struct mg_rl_decision d;
	if (!parse_decision(rep, &w->rate, &d)) {
		r->rl->redis_errors++;
		mg_log_debug("rate limit: Redis answered a check with %s",
		             rep->type == REDIS_REPLY_ERROR ? rep->str : "an unexpected reply");
		answer_fallback(r, w);
		return;
	}
	mg_rl_done_fn done = w->done;
	void *arg = w->arg;
	w->done = NULL;
	event_del(w->timer);
	wait_recycle(r, w);
	mg_rl_count(r->rl, &d);
	done(&d, arg);
}

static void on_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct mg_rl_wait *w = arg;
	struct mg_rl_redis *r = w->r;
	struct mg_rl_decision d;
	r->rl->redis_timeouts++;
	mg_rl_fallback(r->rl, &w->key, &w->rate, w->now_us, &d);
	mg_rl_done_fn done = w->done;
	void *darg = w->arg;
	w->done = NULL; /* an orphan now: recycled when hiredis calls back */
	if (r->state == RS_UP && (int64_t)mg_now_us() - r->waiting_since_us >= r->stall_us)
		abandon(r, "no reply within the timeout");
	done(&d, darg);
}

bool mg_rl_redis_check(struct mg_rl_redis *r, const struct mg_rl_key *k, const struct mg_rate *rate,
                       int64_t now_us, mg_rl_done_fn done, void *arg, struct mg_rl_wait **wait)
{
	if (r->state != RS_UP || r->inflight >= MAX_INFLIGHT)
		return false;
	struct mg_rl_wait *w = wait_get(r);
	if (!w)
		return false;
	w->done = done;
	w->arg = arg;
	w->rate = *rate;
	w->now_us = now_us;
	w->retried = false;
	w->key = *k;
	if (k->hashed) {
		w->key.p = (const char *)w->key.digest;
	} else {
		memcpy(w->keybuf, k->p, k->len);
		w->key.p = w->keybuf;
	}
	if (!send_check(r, w)) {
		r->rl->redis_errors++;
		w->done = NULL;
		wait_recycle(r, w);
		return false;
	}
	event_add(w->timer, r->check_tv);
	if (wait)
		*wait = w;
	return true;
}

void mg_rl_redis_cancel(struct mg_rl_wait *w)
{
	w->done = NULL;
	event_del(w->timer);
}

bool mg_rl_redis_up(const struct mg_rl_redis *r)
{
	return r->state == RS_UP;
}

/* ---- lifetime ------------------------------------------------------------------------ */

struct mg_rl_redis *mg_rl_redis_new(struct mg_ratelimiter *rl, const struct mg_ratelimiter_opts *o,
                                    char *err, size_t err_size)
{
	struct mg_rl_redis *r = calloc(1, sizeof *r);
	if (!r) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	r->rl = rl;
	r->base = rl->base;
	if (mg_redis_url_parse(o->redis_url, &r->url, err, err_size) < 0) {
		free(r);
		return NULL;
	}
	if (r->url.unix_socket)
		snprintf(r->target, sizeof r->target, "%s", r->url.path);
	else if (strchr(r->url.host, ':'))
		snprintf(r->target, sizeof r->target, "[%s]:%d", r->url.host, r->url.port);
	else
		snprintf(r->target, sizeof r->target, "%s:%d", r->url.host, r->url.port);
	const char *prefix = o->key_prefix ? o->key_prefix : DEFAULT_PREFIX;
	r->prefix = mg_strdup(prefix);
	r->prefix_len = strlen(prefix);
	if (r->prefix_len + 1 + REDIS_KEY_MAX_LEN + DIGEST_HEX_LEN > sizeof r->keybuf)
		r->keyheap = malloc(r->prefix_len + 1 + REDIS_KEY_MAX_LEN + DIGEST_HEX_LEN);
	int64_t timeout_ms = o->redis_timeout_ms > 0 ? o->redis_timeout_ms : 50;
	if (timeout_ms > 3600000)
		timeout_ms = 3600000;
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	r->check_tv = event_base_init_common_timeout(r->base, &tv);
	r->stall_us = 4 * timeout_ms * 1000 > STALL_MIN_US ? 4 * timeout_ms * 1000 : STALL_MIN_US;
	r->handshake_ms = 4 * timeout_ms > HANDSHAKE_MIN_MS ? 4 * timeout_ms : HANDSHAKE_MIN_MS;
	r->timer = event_new(r->base, -1, 0, on_timer, r);
	r->backoff_ms = BACKOFF_MIN_MS;
	if (!r->prefix || !r->check_tv || !r->timer ||
	    (r->prefix_len + 1 + REDIS_KEY_MAX_LEN + DIGEST_HEX_LEN > sizeof r->keybuf &&
	     !r->keyheap)) {
		snprintf(err, err_size, "out of memory");
		if (r->timer)
			event_free(r->timer);
		free(r->keyheap);
		free(r->prefix);
		mg_redis_url_free(&r->url);
		free(r);
		return NULL;
	}
	start_connect(r);
	return r;
}

void mg_rl_redis_free(struct mg_rl_redis *r)
{
	if (!r)
		return;
	resolve_abandon(r);
	r->state = RS_IDLE;
	event_del(r->timer);
	if (r->ac) {
		/* Runs every pending callback with NULL: waiting checks are
		 * answered from memory, orphans come back to the free list. */
		redisAsyncContext *ac = r->ac;
		r->ac = NULL;
		redisAsyncFree(ac);
	}
	while (r->free_waits) {
		struct mg_rl_wait *w = r->free_waits;
		r->free_waits = w->next_free;
		event_free(w->timer);
		free(w);
	}
	event_free(r->timer);
	free(r->keyheap);
	free(r->prefix);
	mg_redis_url_free(&r->url);
	free(r);
}
