/*
 * h1client.c - native HTTP/1.1 keep-alive client on libevent events. See
 * h1client.h for the contract, the pool and the retry rule.
 *
 * A fetch goes: start (URL split, request serialized once into `req`, so
 * a retry sends the same bytes) -> an idle connection of its origin, or
 * addresses (literal, localhost, or evdns) -> connect to the next allowed
 * one -> one send() -> the answer is read with recv() into the
 * connection's buffer, fed to the response parser and handed to the
 * callbacks as slices of that buffer -> at the end the connection goes
 * back to the idle list or is closed.
 *
 * Connections are plain sockets with two events (read, persistent, with
 * the idle timeout; write, only while connecting or while the socket does
 * not take the whole request), not bufferevents: a bufferevent asks
 * ioctl(FIONREAD) before every read and adds and drops its write event
 * for every request, three syscalls per request that a keep-alive
 * connection does not need. In steady state a request costs one send()
 * and one recv() (bench scenario 4).
 *
 * Callbacks: on_head and on_body run from the read event (or from `kick`,
 * the fetch's own deferred event, after a resume); on_end runs from there
 * or from `kick` (failures found while starting). Every callback is
 * bracketed by in_callback so that a cancel from inside it only marks the
 * fetch, which is freed when control comes back here.
 *
 * Name resolution: evdns_getaddrinfo's callback may run later than a
 * cancel (libevent delivers the cancellation itself as a deferred
 * callback), so the request's argument is a small ticket the fetch lets go
 * of, never the fetch itself.
 */
#include "http/h1client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event_struct.h>
#include <event2/util.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/h1response.h"
#include "util/buf.h"

#define DEFAULT_TIMEOUT_MS 10000
#define HEAD_MAX           (32u * 1024)  /* answer head, and extensions + trailers */
#define RX_MAX             (256u * 1024) /* input read ahead of the reader */
#define RX_CHUNK           (16u * 1024)  /* one recv() */
#define MAX_ADDRS          8
#define HOST_MAX           256
/* Freed fetches kept for the next requests (malloc of a ~2.5 KB object
 * and its buffers cost ~3k instructions a request). */
#define SPARE_MAX     64
#define SPARE_REQ_CAP (64u * 1024)

struct origin {
	struct origin *next;
	char host[HOST_MAX]; /* as in the URL, without brackets */
	unsigned port;
	struct conn *idle; /* most recently used first */
	size_t n_idle;
};

struct conn {
	struct mg_h1_pool *pool;
	struct origin *origin;
	struct conn *prev, *next; /* in origin->idle */
	struct mg_h1_fetch *fetch;
	evutil_socket_t fd;
	struct event rev; /* EV_READ | EV_PERSIST, with the idle timeout */
	struct event wev; /* connect completion, and output the socket did not take */
	struct mg_buf in; /* read, not yet parsed from in_off */
	size_t in_off;
	struct mg_buf out; /* not yet sent from out_off */
	size_t out_off;
	bool connecting;
	bool reading; /* rev is added */
	bool eof;     /* the server closed its side */
	bool failed;  /* a read or write error */
};

struct addrs {
	struct sockaddr_storage a[MAX_ADDRS];
	socklen_t len[MAX_ADDRS];
	size_t n, next;
};

struct dns_ticket {
	struct mg_h1_fetch *fetch; /* NULL once the fetch let go */
};

struct mg_h1_fetch {
	struct mg_h1_pool *pool;
	struct mg_h1_fetch *prev, *next; /* pool->fetches */
	struct origin *origin;
	struct conn *conn;
	const struct mg_h1_callbacks *cbs;
	void *arg;
	struct mg_buf req; /* the serialized request */
	struct mg_h1_response resp;
	struct addrs *addrs; /* only while connecting */
	struct dns_ticket *dns;
	/* Embedded (event_assign): no allocation per request. */
	struct event deadline; /* the whole request (timeout_ms) */
	struct event ctimer;   /* connect_timeout_ms */
	struct event kick;     /* deferred delivery: a failure's on_end, or a resume */
	long connect_ms;
	bool allow_private;
	bool head_method; /* HEAD: no body follows */
	bool blocked;     /* an address was refused by the SSRF rule */
	bool reused;      /* the request went out on an idle connection */
	bool retried;     /* the retry rule was used */
	bool connected;   /* the current connection is established */
	bool paused;
	bool head_done; /* on_head was called */
	bool in_callback;
	bool cancelled;
	bool ending; /* on_end is due or running */
	enum mg_fetch_failure why;
	const char *error;
	char errbuf[160];
};

struct url_parts;

struct mg_h1_pool {
	struct event_base *base;
	struct evdns_base *dns;
	struct origin *origins;
	struct mg_h1_fetch *fetches;
	struct mg_h1_fetch *spare; /* freed fetches kept for reuse, at most SPARE_MAX */
	size_t n_spare;
	/* The last URL split (an upstream sends every request to the same
	 * one): its text, whether this client takes it, and its parts
	 * (path as an offset into the text). */
	char *url;
	bool url_ok;
	size_t path_off;
	struct url_parts *parts;
};

/* ---- URLs ---------------------------------------------------------------------------- */

struct url_parts {
	char host[HOST_MAX];
	unsigned port;
	bool explicit_port;
	bool bracketed;   /* an IPv6 literal */
	const char *path; /* origin-form: "/..." or "" (means "/") */
};

static bool host_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '_';
}

/* Splits an http:// URL; false for anything this client leaves to curl. */
static bool url_split(const char *url, struct url_parts *u)
{
	if (strncasecmp(url, "http://", 7) != 0)
		return false;
	memset(u, 0, sizeof *u);
	const char *a = url + 7, *e = a + strcspn(a, "/?#");
	if (memchr(a, '@', (size_t)(e - a)))
		return false; /* user info */
	const char *hs = a, *he;
	const char *port = NULL;
	if (*a == '[') {
		const char *rb = memchr(a, ']', (size_t)(e - a));
		if (!rb)
			return false;
		hs = a + 1;
		he = rb;
		u->bracketed = true;
		if (rb + 1 < e) {
			if (rb[1] != ':')
				return false;
			port = rb + 2;
		}
	} else {
		const char *colon = memchr(a, ':', (size_t)(e - a));
		he = colon ? colon : e;
		if (colon)
			port = colon + 1;
		for (const char *c = hs; c < he; c++)
			if (!host_byte((unsigned char)*c))
				return false;
	}
	if (he == hs || (size_t)(he - hs) >= sizeof u->host)
		return false;
	memcpy(u->host, hs, (size_t)(he - hs));
	u->host[he - hs] = '\0';
	if (u->bracketed) {
		struct in6_addr a6;
		if (inet_pton(AF_INET6, u->host, &a6) != 1)
			return false;
	}
	u->port = 80;
	if (port) {
		if (port == e || e - port > 5)
			return false;
		unsigned v = 0;
		for (const char *c = port; c < e; c++) {
			if (*c < '0' || *c > '9')
				return false;
			v = v * 10 + (unsigned)(*c - '0');
		}
		if (v == 0 || v > 65535)
			return false;
		u->port = v;
		u->explicit_port = true;
	}
	u->path = e;
	for (const char *c = e; *c && *c != '#'; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
			return false;
	return true;
}

bool mg_h1_accepts(const struct mg_fetch_opts *o)
{
	struct url_parts u;
	return o->http_version != MG_FETCH_H2C && url_split(o->url, &u);
}

/* url_split through the pool's one-entry cache: a strcmp instead of the
 * split (~350 instructions) for every request after the first. */
static bool url_split_cached(struct mg_h1_pool *p, const char *url, struct url_parts *u)
{
	if (p->url && strcmp(p->url, url) == 0) {
		if (!p->url_ok)
			return false;
		*u = *p->parts;
		u->path = url + p->path_off;
		return true;
	}
	bool ok = url_split(url, u);
	if (!p->parts)
		p->parts = malloc(sizeof *p->parts);
	char *copy = p->parts ? strdup(url) : NULL;
	if (copy) {
		free(p->url);
		p->url = copy;
		p->url_ok = ok;
		if (ok) {
			*p->parts = *u;
			p->path_off = (size_t)(u->path - url);
		}
	}
	return ok;
}

bool mg_h1_pool_accepts(struct mg_h1_pool *p, const struct mg_fetch_opts *o)
{
	struct url_parts u;
	return o->http_version != MG_FETCH_H2C && url_split_cached(p, o->url, &u);
}

/* ---- connections --------------------------------------------------------------------- */

static void conn_close(struct conn *c)
{
	if (!c)
		return;
	if (c->fetch)
		c->fetch->conn = NULL;
	event_del(&c->rev);
	event_del(&c->wev);
	if (c->fd >= 0)
		close(c->fd);
	mg_buf_free(&c->in);
	mg_buf_free(&c->out);
	free(c);
}

/* Watches the socket for reading (or stops): the only epoll_ctl calls of a
 * connection's life besides its first and last are pauses. */
static void conn_read_on(struct conn *c, bool on)
{
	if (on == c->reading)
		return;
	c->reading = on;
	if (on) {
		struct timeval idle = { .tv_sec = H1_IDLE_SECS, .tv_usec = 0 };
		event_add(&c->rev, &idle);
	} else {
		event_del(&c->rev);
	}
}

/* One recv() into `in` (no ioctl(FIONREAD) first, as bufferevents do).
 * Returns 1 when bytes came, 0 when none are ready (or RX_MAX are already
 * waiting), -1 when the connection closed (c->eof) or failed (c->failed). */
static int conn_fill(struct conn *c)
{
	size_t unparsed = c->in.len - c->in_off;
	if (c->in_off) {
		if (unparsed)
			memmove(c->in.data, c->in.data + c->in_off, unparsed);
		c->in.len = unparsed;
		c->in_off = 0;
	}
	if (unparsed >= RX_MAX)
		return 0;
	size_t want = RX_MAX - unparsed < RX_CHUNK ? RX_MAX - unparsed : RX_CHUNK;
	if (mg_buf_reserve(&c->in, want) < 0) {
		c->failed = true;
		return -1;
	}
	ssize_t n = recv(c->fd, c->in.data + c->in.len, want, 0);
	if (n > 0) {
		c->in.len += (size_t)n;
		c->in.data[c->in.len] = '\0';
		return 1;
	}
	if (n == 0) {
		c->eof = true;
		return -1;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return 0;
	c->failed = true;
	return -1;
}

/* Sends what `out` holds; the write event waits for the rest. Returns -1
 * on an error (c->failed). */
static int conn_flush(struct conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n =
		    send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			event_add(&c->wev, NULL);
			return 0;
		}
		c->failed = true;
		return -1;
	}
	mg_buf_reset(&c->out);
	c->out_off = 0;
	return 0;
}

static void idle_unlink(struct conn *c)
{
	struct origin *o = c->origin;
	if (c->prev)
		c->prev->next = c->next;
	else
		o->idle = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	o->n_idle--;
}

static void conn_put_idle(struct conn *c)
{
	struct origin *o = c->origin;
	c->fetch = NULL;
	if (o->n_idle >= H1_IDLE_MAX || c->in.len > c->in_off || c->out.len > c->out_off ||
	    c->eof || c->failed) {
		conn_close(c);
		return;
	}
	mg_buf_reset(&c->in);
	c->in_off = 0;
	conn_read_on(c, true); /* a close (or any byte) while idle drops it */
	c->prev = NULL;
	c->next = o->idle;
	if (o->idle)
		o->idle->prev = c;
	o->idle = c;
	o->n_idle++;
}

/* ---- fetch life ---------------------------------------------------------------------- */

static void on_conn_read(evutil_socket_t fd, short what, void *arg);
static void on_conn_write(evutil_socket_t fd, short what, void *arg);
static void connect_next(struct mg_h1_fetch *h);

static void fetch_free(struct mg_h1_fetch *h)
{
	struct mg_h1_pool *p = h->pool;
	if (h->prev)
		h->prev->next = h->next;
	else if (p->fetches == h)
		p->fetches = h->next;
	if (h->next)
		h->next->prev = h->prev;
	if (h->dns)
		h->dns->fetch = NULL; /* the resolver's callback frees the ticket */
	if (h->conn) {
		h->conn->fetch = NULL;
		conn_close(h->conn); /* an unfinished answer: not reusable */
	}
	event_del(&h->deadline);
	event_del(&h->ctimer);
	event_del(&h->kick);
	free(h->addrs);
	h->addrs = NULL;
	if (p->n_spare < SPARE_MAX) {
		/* Kept with its buffers' memory for the next request. */
		if (h->req.cap > SPARE_REQ_CAP)
			mg_buf_free(&h->req);
		mg_h1_response_reset(&h->resp);
		h->next = p->spare;
		p->spare = h;
		p->n_spare++;
		return;
	}
	mg_buf_free(&h->req);
	mg_h1_response_free(&h->resp);
	free(h);
}

/* A zeroed fetch: a spare one (its buffers' memory kept) or a new one. */
static struct mg_h1_fetch *fetch_get(struct mg_h1_pool *p)
{
	struct mg_h1_fetch *h = p->spare;
	if (!h) {
		h = calloc(1, sizeof *h);
		if (h) {
			mg_buf_init(&h->req, 0);
			mg_h1_response_init(&h->resp, HEAD_MAX, 0);
		}
		return h;
	}
	p->spare = h->next;
	p->n_spare--;
	struct mg_buf req = h->req, head = h->resp.head;
	memset(h, 0, sizeof *h);
	mg_h1_response_init(&h->resp, HEAD_MAX, 0);
	h->resp.head = head;
	mg_buf_reset(&h->resp.head);
	h->req = req;
	mg_buf_reset(&h->req);
	return h;
}

/* Calls on_end and frees: from the loop, never from inside mg_h1_start. */
static void end_now(struct mg_h1_fetch *h)
{
	h->ending = true;
	if (h->conn) {
		struct conn *c = h->conn;
		h->conn = NULL;
		c->fetch = NULL;
		conn_close(c);
	}
	h->in_callback = true;
	if (h->cbs->on_end)
		h->cbs->on_end(h->why, h->error, h->arg);
	fetch_free(h);
}

/* A failure: on_end follows from `kick` (never from the caller's stack,
 * which may be mg_h1_start or an event callback about to touch the
 * connection). */
static void fail(struct mg_h1_fetch *h, enum mg_fetch_failure why, const char *error)
{
	if (h->ending)
		return;
	h->ending = true;
	h->why = why;
	if (error != h->errbuf)
		snprintf(h->errbuf, sizeof h->errbuf, "%s", error);
	h->error = h->errbuf;
	if (h->conn) {
		struct conn *c = h->conn;
		h->conn = NULL;
		c->fetch = NULL;
		conn_close(c);
	}
	evtimer_del(&h->ctimer);
	evtimer_del(&h->deadline);
	event_active(&h->kick, 0, 0);
}

/* Runs one user callback; returns false when the fetch is gone (the
 * callback cancelled it or asked to stop). */
static bool after_callback(struct mg_h1_fetch *h, int rc)
{
	h->in_callback = false;
	if (rc != 0 || h->cancelled) {
		fetch_free(h);
		return false;
	}
	return true;
}

/* The answer is complete: the connection goes back (or is closed), then
 * on_end. */
static void complete(struct mg_h1_fetch *h)
{
	struct conn *c = h->conn;
	h->conn = NULL;
	if (c) {
		c->fetch = NULL;
		if (h->resp.keep_alive)
			conn_put_idle(c);
		else
			conn_close(c);
	}
	evtimer_del(&h->deadline);
	h->why = MG_FETCH_FAIL_NONE;
	h->error = NULL;
	end_now(h);
}

/* Feeds what the connection has read to the parser and the callbacks, until
 * it is empty, the reader paused, or the fetch ended. Returns false when
 * `h` must not be touched any more (freed, or its end is scheduled). */
static bool process(struct mg_h1_fetch *h)
{
	while (h->conn && !h->paused && !h->ending) {
		struct conn *c = h->conn;
		size_t n = c->in.len - c->in_off;
		const char *data = n ? c->in.data + c->in_off : "";
		size_t used = 0;
		const char *body;
		size_t body_len;
		enum mg_h1_status st =
		    mg_h1_response_feed(&h->resp, data, n, &used, &body, &body_len);
		int rc = 0;
		switch (st) {
		case MG_H1_HEAD:
			c->in_off += used;
			h->head_done = true;
			h->in_callback = true;
			if (h->cbs->on_head)
				rc = h->cbs->on_head(h->resp.status, h->arg);
			if (!after_callback(h, rc))
				return false;
			break;
		case MG_H1_BODY:
			h->in_callback = true;
			if (h->cbs->on_body)
				rc = h->cbs->on_body(body, body_len, h->arg);
			if (!after_callback(h, rc))
				return false;
			c->in_off += used; /* still h->conn: only a cancel closes it */
			break;
		case MG_H1_DONE:
			c->in_off += used;
			complete(h);
			return false;
		case MG_H1_ERROR:
			snprintf(h->errbuf, sizeof h->errbuf, "malformed answer: %s",
			         h->resp.error);
			fail(h, h->resp.too_big ? MG_FETCH_FAIL_TOO_BIG : MG_FETCH_FAIL_TRANSFER,
			     h->errbuf);
			return false;
		case MG_H1_MORE:
			c->in_off += used;
			return true;
		}
	}
	if (h->conn && h->paused)
		conn_read_on(h->conn, false);
	return !h->ending;
}

/* Attaches `c` to `h` and sends the request. */
static void send_on(struct mg_h1_fetch *h, struct conn *c)
{
	h->conn = c;
	c->fetch = h;
	/* On an established connection the request goes out with one send()
	 * right here; the write event only waits for what the socket did not
	 * take. A send error is seen by the read side (or the write event). */
	size_t sent = 0;
	if (!c->connecting && c->out.len == c->out_off) {
		ssize_t n = send(c->fd, h->req.data, h->req.len, MSG_NOSIGNAL);
		if (n > 0)
			sent = (size_t)n;
	}
	if (sent < h->req.len) {
		if (mg_buf_append(&c->out, h->req.data + sent, h->req.len - sent) < 0) {
			fail(h, MG_FETCH_FAIL_TRANSFER, "out of memory");
			return;
		}
		event_add(&c->wev, NULL);
	}
	if (!c->connecting)
		conn_read_on(c, !h->paused);
}

/* A new connection for the retry rule, or the first one. */
static void connect_fresh(struct mg_h1_fetch *h);

/* The connection closed or failed while `h` was on it, after everything
 * read was processed: the answer's end (close-delimited), a failure, or
 * the keep-alive race (retried once on a new connection). */
static void conn_lost(struct mg_h1_fetch *h, struct conn *c)
{
	bool untouched = mg_h1_response_untouched(&h->resp);
	if (untouched && h->reused && !h->retried) {
		/* The keep-alive race: the idle connection was closed under
		 * the request. Sent again, once, on a new connection. */
		h->retried = true;
		h->conn = NULL;
		c->fetch = NULL;
		conn_close(c);
		connect_fresh(h);
		return;
	}
	if (c->eof) {
		enum mg_h1_status st = mg_h1_response_eof(&h->resp);
		if (st == MG_H1_DONE) {
			complete(h);
			return;
		}
		fail(h, MG_FETCH_FAIL_TRANSFER, h->resp.error);
		return;
	}
	fail(h, MG_FETCH_FAIL_TRANSFER,
	     untouched ? "connection reset before an answer" : "connection reset");
}

static void on_conn_read(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct mg_h1_fetch *h = c->fetch;
	(void)fd;
	if (!h) {
		/* Idle: the server closed, spoke out of turn, or the idle time
		 * is over. */
		idle_unlink(c);
		conn_close(c);
		return;
	}
	if (what & EV_TIMEOUT)
		return; /* the idle timer, while a long answer is in progress */
	int r = conn_fill(c);
	if (r == 0)
		return;
	if (!process(h) || h->conn != c)
		return; /* ended (or cancelled) with what was read */
	if (r < 0 && !(h->paused && c->in.len > c->in_off))
		conn_lost(h, c); /* else seen on resume, after the bytes before it */
}

/* The connect finished, or the socket takes more of the request. */
static void on_conn_write(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct mg_h1_fetch *h = c->fetch;
	(void)what;
	if (!h) {
		conn_close(c);
		return;
	}
	if (c->connecting) {
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			/* This address failed: the next one. */
			h->conn = NULL;
			c->fetch = NULL;
			conn_close(c);
			connect_next(h);
			return;
		}
		c->connecting = false;
		h->connected = true;
		evtimer_del(&h->ctimer);
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		conn_read_on(c, !h->paused);
	}
	if (conn_flush(c) < 0)
		conn_lost(h, c);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	fail(arg, MG_FETCH_FAIL_TIMEOUT, "connection timed out");
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct mg_h1_fetch *h = arg;
	(void)fd;
	(void)what;
	fail(h, MG_FETCH_FAIL_TIMEOUT,
	     h->head_done ? "the answer did not end in time" : "no answer in time");
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct mg_h1_fetch *h = arg;
	(void)fd;
	(void)what;
	if (h->ending) {
		end_now(h);
		return;
	}
	if (!h->conn || h->paused)
		return;
	/* What was read while paused, then the close seen meanwhile, or
	 * reading again. */
	if (!process(h) || !h->conn || h->paused)
		return;
	if (h->conn->eof || h->conn->failed)
		conn_lost(h, h->conn);
	else
		conn_read_on(h->conn, true);
}

/* Connects to the next address the SSRF rule allows. */
static void connect_next(struct mg_h1_fetch *h)
{
	struct addrs *al = h->addrs;
	while (al && al->next < al->n) {
		size_t i = al->next++;
		const struct sockaddr *sa = (const struct sockaddr *)&al->a[i];
		if (!mg_fetch_address_allowed(sa, h->allow_private)) {
			h->blocked = true;
			continue;
		}
		int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		struct conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			fail(h, MG_FETCH_FAIL_TRANSFER, "out of memory");
			return;
		}
		c->fd = fd;
		c->pool = h->pool;
		c->origin = h->origin;
		mg_buf_init(&c->in, 0);
		mg_buf_init(&c->out, 0);
		event_assign(&c->rev, h->pool->base, fd, EV_READ | EV_PERSIST, on_conn_read, c);
		event_assign(&c->wev, h->pool->base, fd, EV_WRITE, on_conn_write, c);
		if (connect(fd, sa, al->len[i]) == 0) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			h->connected = true;
			evtimer_del(&h->ctimer);
		} else if (errno == EINPROGRESS) {
			c->connecting = true;
			h->connected = false;
			event_add(&c->wev, NULL);
		} else {
			conn_close(c);
			continue;
		}
		send_on(h, c);
		return;
	}
	if (h->blocked)
		fail(h, MG_FETCH_FAIL_BLOCKED, "address refused by the SSRF rule");
	else
		fail(h, MG_FETCH_FAIL_CONNECT, "connection failed");
}

static void add_addr(struct mg_h1_fetch *h, const struct sockaddr *sa, socklen_t len)
{
	struct addrs *al = h->addrs;
	if (al->n == MAX_ADDRS || len > sizeof al->a[0])
		return;
	memcpy(&al->a[al->n], sa, len);
	al->len[al->n++] = len;
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	struct dns_ticket *t = arg;
	struct mg_h1_fetch *h = t->fetch;
	free(t);
	if (!h) { /* the fetch let go */
		if (res)
			evutil_freeaddrinfo(res);
		return;
	}
	h->dns = NULL;
	if (result != 0) {
		snprintf(h->errbuf, sizeof h->errbuf, "cannot resolve the host name: %s",
		         evutil_gai_strerror(result));
		if (res)
			evutil_freeaddrinfo(res);
		fail(h, MG_FETCH_FAIL_CONNECT, h->errbuf);
		return;
	}
	for (struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next)
		add_addr(h, ai->ai_addr, (socklen_t)ai->ai_addrlen);
	evutil_freeaddrinfo(res);
	connect_next(h);
}

static void set_port(struct sockaddr_storage *ss, unsigned port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

/* Fills the addresses (literal, localhost) or asks evdns. */
static void resolve(struct mg_h1_fetch *h)
{
	const char *host = h->origin->host;
	unsigned port = h->origin->port;
	if (!h->addrs)
		h->addrs = malloc(sizeof *h->addrs);
	if (!h->addrs) {
		fail(h, MG_FETCH_FAIL_TRANSFER, "out of memory");
		return;
	}
	h->addrs->n = h->addrs->next = 0;
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	size_t hl = strlen(host);
	if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
		add_addr(h, (struct sockaddr *)&a4, sizeof a4);
	} else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
		add_addr(h, (struct sockaddr *)&a6, sizeof a6);
	} else if (strcasecmp(host, "localhost") == 0 ||
	           (hl > 10 && strcasecmp(host + hl - 10, ".localhost") == 0)) {
		a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a6.sin6_addr = in6addr_loopback;
		add_addr(h, (struct sockaddr *)&a4, sizeof a4);
		add_addr(h, (struct sockaddr *)&a6, sizeof a6);
	} else {
		struct mg_h1_pool *p = h->pool;
		if (!p->dns)
			p->dns = evdns_base_new(p->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
			                                     EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		struct dns_ticket *t = p->dns ? calloc(1, sizeof *t) : NULL;
		if (!t) {
			fail(h, MG_FETCH_FAIL_CONNECT, "cannot resolve the host name: no resolver");
			return;
		}
		t->fetch = h;
		h->dns = t;
		struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC,
			                         .ai_socktype = SOCK_STREAM,
			                         .ai_protocol = IPPROTO_TCP };
		char serv[8];
		snprintf(serv, sizeof serv, "%u", port);
		/* May call on_resolved before returning (hosts file, errors). */
		evdns_getaddrinfo(p->dns, host, serv, &hints, on_resolved, t);
		return;
	}
	for (size_t i = 0; i < h->addrs->n; i++)
		set_port(&h->addrs->a[i], port);
	connect_next(h);
}

static void connect_fresh(struct mg_h1_fetch *h)
{
	h->reused = false;
	mg_h1_response_reset(&h->resp);
	h->resp.head_request = h->head_method;
	struct timeval tv = { .tv_sec = h->connect_ms / 1000,
		              .tv_usec = (h->connect_ms % 1000) * 1000 };
	evtimer_add(&h->ctimer, &tv);
	resolve(h);
}

/* ---- public -------------------------------------------------------------------------- */

struct mg_h1_pool *mg_h1_pool_new(struct event_base *base)
{
	struct mg_h1_pool *p = calloc(1, sizeof *p);
	if (p)
		p->base = base;
	return p;
}

void mg_h1_pool_free(struct mg_h1_pool *p)
{
	if (!p)
		return;
	while (p->fetches)
		fetch_free(p->fetches);
	while (p->spare) {
		struct mg_h1_fetch *h = p->spare;
		p->spare = h->next;
		mg_buf_free(&h->req);
		mg_h1_response_free(&h->resp);
		free(h);
	}
	while (p->origins) {
		struct origin *o = p->origins;
		p->origins = o->next;
		while (o->idle) {
			struct conn *c = o->idle;
			idle_unlink(c);
			conn_close(c);
		}
		free(o);
	}
	if (p->dns)
		evdns_base_free(p->dns, 1); /* fails pending lookups: tickets freed */
	free(p->url);
	free(p->parts);
	free(p);
}

static struct origin *origin_get(struct mg_h1_pool *p, const struct url_parts *u)
{
	for (struct origin *o = p->origins; o; o = o->next)
		if (o->port == u->port && strcasecmp(o->host, u->host) == 0)
			return o;
	struct origin *o = calloc(1, sizeof *o);
	if (!o)
		return NULL;
	snprintf(o->host, sizeof o->host, "%s", u->host);
	o->port = u->port;
	o->next = p->origins;
	p->origins = o;
	return o;
}

/* Decimal digits of `v` at the end of `buf` (NUL-terminated); returns them. */
static const char *fmt_uint(char *buf, size_t size, uint64_t v)
{
	char *p = buf + size - 1;
	*p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) && p > buf);
	return p;
}

#define PUT_LIT(q, s) (memcpy(q, s, sizeof s - 1), q + sizeof s - 1)

static char *put_bytes(char *q, const char *s, size_t n)
{
	memcpy(q, s, n);
	return q + n;
}

/* The request's bytes, once, written by pointer into room measured first
 * (an append per piece cost ~4k instructions a request). Returns 0 or -1
 * with `err`. */
static int serialize(struct mg_buf *b, const struct url_parts *u, const struct mg_fetch_opts *o,
                     char *err, size_t err_size)
{
	const char *method = o->method ? o->method : "GET";
	size_t plen = strcspn(u->path, "#"), mlen = strlen(method), hlen = strlen(u->host);
	bool has_accept = false;
	/* + the fixed text: request line, Host, port, User-Agent, Accept,
	 * Content-Length with its number, the blank line (< 130 bytes) */
	size_t need = mlen + plen + hlen + 160 + o->body_len;
	for (size_t i = 0; i < o->n_headers; i++) {
		const char *h = o->headers[i];
		size_t n = strlen(h);
		if (memchr(h, '\r', n) || memchr(h, '\n', n) || !memchr(h, ':', n)) {
			snprintf(err, err_size, "invalid request header");
			return -1;
		}
		has_accept |= n >= 7 && strncasecmp(h, "Accept:", 7) == 0;
		need += n + 2;
	}
	if (mlen == 0) {
		snprintf(err, err_size, "invalid request method");
		return -1;
	}
	for (const char *m = method; *m; m++)
		if (*m < 'A' || *m > 'Z') {
			snprintf(err, err_size, "invalid request method");
			return -1;
		}
	if (mg_buf_reserve(b, need) < 0) {
		snprintf(err, err_size, "out of memory");
		return -1;
	}
	char num[24];
	char *q = b->data + b->len;
	q = put_bytes(q, method, mlen);
	q = plen && u->path[0] == '/' ? PUT_LIT(q, " ") : PUT_LIT(q, " /");
	q = put_bytes(q, u->path, plen);
	q = PUT_LIT(q, " HTTP/1.1\r\nHost: ");
	if (u->bracketed)
		*q++ = '[';
	q = put_bytes(q, u->host, hlen);
	if (u->bracketed)
		*q++ = ']';
	if (u->explicit_port) {
		const char *pn = fmt_uint(num, sizeof num, u->port);
		*q++ = ':';
		q = put_bytes(q, pn, strlen(pn));
	}
	q = PUT_LIT(q, "\r\nUser-Agent: mcp-guard\r\n");
	if (!has_accept)
		q = PUT_LIT(q, "Accept: */*\r\n");
	for (size_t i = 0; i < o->n_headers; i++) {
		q = put_bytes(q, o->headers[i], strlen(o->headers[i]));
		q = PUT_LIT(q, "\r\n");
	}
	bool body = o->body_len || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0;
	if (body) {
		const char *bn = fmt_uint(num, sizeof num, o->body_len);
		q = PUT_LIT(q, "Content-Length: ");
		q = put_bytes(q, bn, strlen(bn));
		q = PUT_LIT(q, "\r\n");
	}
	q = PUT_LIT(q, "\r\n");
	if (body && o->body_len)
		q = put_bytes(q, o->body, o->body_len);
	b->len = (size_t)(q - b->data);
	b->data[b->len] = '\0';
	return 0;
}

struct mg_h1_fetch *mg_h1_start(struct mg_h1_pool *p, const struct mg_fetch_opts *o,
                                const struct mg_h1_callbacks *cbs, void *arg, char *err,
                                size_t err_size)
{
	struct url_parts u;
	if (!url_split_cached(p, o->url, &u)) {
		snprintf(err, err_size, "URL not supported by the native client");
		return NULL;
	}
	struct mg_h1_fetch *h = fetch_get(p);
	if (!h) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	h->pool = p;
	h->cbs = cbs;
	h->arg = arg;
	h->allow_private = o->allow_private;
	h->origin = origin_get(p, &u);
	evtimer_assign(&h->deadline, p->base, on_deadline, h);
	evtimer_assign(&h->ctimer, p->base, on_connect_timeout, h);
	event_assign(&h->kick, p->base, -1, 0, on_kick, h);
	if (!h->origin) {
		snprintf(err, err_size, "out of memory");
		goto fail;
	}
	if (serialize(&h->req, &u, o, err, err_size) < 0)
		goto fail;
	h->next = p->fetches;
	if (p->fetches)
		p->fetches->prev = h;
	p->fetches = h;
	long timeout = o->timeout_ms < 0 ? 0 : o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	h->connect_ms = o->connect_timeout_ms > 0                   ? o->connect_timeout_ms
	                : o->timeout_ms > 0 && o->timeout_ms < 5000 ? o->timeout_ms
	                                                            : 5000L;
	if (timeout) {
		struct timeval tv = { .tv_sec = timeout / 1000,
			              .tv_usec = (timeout % 1000) * 1000 };
		evtimer_add(&h->deadline, &tv);
	}
	h->head_method = o->method && strcmp(o->method, "HEAD") == 0;
	h->resp.head_request = h->head_method;
	struct origin *og = h->origin;
	if (og->idle) {
		struct conn *c = og->idle; /* LIFO: the warmest */
		idle_unlink(c);
		h->reused = true;
		h->connected = true;
		send_on(h, c);
		return h;
	}
	connect_fresh(h);
	return h;
fail:
	mg_buf_free(&h->req);
	mg_h1_response_free(&h->resp);
	free(h);
	return NULL;
}

void mg_h1_pause(struct mg_h1_fetch *h, bool pause)
{
	if (!h || h->ending || h->paused == pause)
		return;
	h->paused = pause;
	if (!h->conn)
		return;
	if (pause)
		conn_read_on(h->conn, false);
	else
		event_active(&h->kick, 0, 0);
}

void mg_h1_cancel(struct mg_h1_fetch *h)
{
	if (!h)
		return;
	if (h->in_callback) {
		h->cancelled = true;
		return;
	}
	fetch_free(h);
}

const struct mg_http_header *mg_h1_header(const struct mg_h1_fetch *h, const char *name)
{
	return mg_h1_response_header(&h->resp, name);
}
