/*
 * server.c - HTTP/1.1 connections on libevent bufferevents (see server.h).
 *
 * A connection is READING (parser fed from the input buffer), HANDLING (the
 * request is with the handler; input is held, EOF means the client left),
 * or CLOSING (flushing a final response before closing). Timers: one per
 * connection, armed while READING (idle keep-alive and slow requests) and
 * while output is pending (slow readers). Nothing here blocks.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"

enum conn_state { CONN_READING, CONN_HANDLING, CONN_CLOSING, CONN_LINGERING };

/* After an error answer the client may still be sending (the rest of a body
 * we refused): closing with unread input makes the kernel send a reset,
 * which can destroy the answer in the client's receive buffer before it is
 * read. So such a connection half-closes, reads and discards for a while,
 * then closes (nginx's "lingering close"). */
#define LINGER_SECS      2
#define LINGER_MAX_BYTES (1024 * 1024)

struct mg_http_req {
	struct mg_http_conn *conn;
	bool active;    /* with the handler */
	bool responded; /* head sent */
	bool streaming;
	bool chunked;
	bool head_only;
	void (*close_cb)(struct mg_http_req *, void *);
	void *close_arg;
	void *data;
	void *route; /* what the handler's router matched (opaque) */
	int route_kind;
	uint64_t note;
	int status; /* sent with the response head */
	uint64_t start_us;
	/* Headers added before the response (mg_http_req_add_header). */
	char extra[MG_HTTP_EXTRA_HEADERS][2][96];
	size_t n_extra;
	mg_http_divert_fn divert;
	void *divert_arg;
};

struct mg_http_conn {
	struct mg_http_server *srv;
	struct mg_http_conn *prev, *next;
	struct bufferevent *bev;
	struct event *rev; /* plain TCP: the read event (see conn_read) */
	bool rev_on;       /* ... and it is added */
	struct event *timer;
	struct mg_http_parser parser;
	struct mg_http_req req;
	enum conn_state state;
	bool keep_alive;
	bool got_bytes;  /* any byte of the current request received */
	bool in_process; /* inside process_input: free and re-entry are deferred */
	bool dead;       /* closed while in_process; freed when it returns */
	bool linger;     /* close with a lingering close (after an error answer) */
	bool plain;      /* plain TCP: read by on_plain_read, written by conn_push (below) */
	size_t lingered; /* bytes discarded while lingering */
	char peer[INET6_ADDRSTRLEN];
	struct sockaddr_storage addr;
};

struct mg_http_server {
	struct event_base *base;
	struct mg_http_server_opts o;
	struct evconnlistener *lis;
	struct mg_http_conn *conns;
	size_t n_conns;
	size_t n_busy;
	bool draining;
	int port;
	time_t date_sec;
	char date[64];
};

static const char *reason_phrase(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 406:
		return "Not Acceptable";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 417:
		return "Expectation Failed";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

static const char *http_date(struct mg_http_server *srv)
{
	time_t now = time(NULL);
	if (now != srv->date_sec) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(srv->date, sizeof srv->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		srv->date_sec = now;
	}
	return srv->date;
}

/* ---- connection lifetime ------------------------------------------------------------- */

static void conn_free(struct mg_http_conn *c, bool notify)
{
	struct mg_http_server *srv = c->srv;
	if (c->dead)
		return;
	if (c->req.active) {
		c->req.active = false;
		srv->n_busy--;
		if (notify && c->req.close_cb)
			c->req.close_cb(&c->req, c->req.close_arg);
		if (srv->o.on_done)
			srv->o.on_done(&c->req, 0, srv->o.arg);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->n_conns--;
	if (c->rev) {
		event_free(c->rev); /* before the bufferevent closes the socket */
		c->rev = NULL;
	}
	if (c->bev) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		if (ssl)
			SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->timer) {
		event_free(c->timer);
		c->timer = NULL;
	}
	if (c->in_process) {
		/* process_input is on the stack: it frees the rest when it unwinds. */
		c->dead = true;
		return;
	}
	mg_http_parser_free(&c->parser);
	free(c);
}

static void arm_timer(struct mg_http_conn *c)
{
	struct timeval tv = { .tv_sec = c->srv->o.idle_timeout_secs, .tv_usec = 0 };
	evtimer_add(c->timer, &tv);
}

/* Reading on or off. A plain TCP connection is read by its own event
 * (on_plain_read), not by the bufferevent: a socket bufferevent asks
 * ioctl(FIONREAD) before every read, one syscall per request for nothing.
 * The event stays added while reading (no epoll_ctl per request). */
static void conn_read(struct mg_http_conn *c, bool on)
{
	if (!c->plain) {
		if (on)
			bufferevent_enable(c->bev, EV_READ);
		else
			bufferevent_disable(c->bev, EV_READ);
		return;
	}
	if (on == c->rev_on)
		return;
	c->rev_on = on;
	if (on)
		event_add(c->rev, NULL);
	else
		event_del(c->rev);
}

/* Everything is written: close, or half-close and discard what the client
 * still sends for a while (see LINGER_SECS). TLS connections close at once:
 * a half-close under TLS is not ours to do behind OpenSSL's back. */
static void conn_close_written(struct mg_http_conn *c)
{
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	if (!c->linger || c->srv->draining || bufferevent_openssl_get_ssl(c->bev) || fd < 0 ||
	    shutdown(fd, SHUT_WR) < 0) {
		conn_free(c, true);
		return;
	}
	c->state = CONN_LINGERING;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	conn_read(c, true);
	struct timeval tv = { .tv_sec = LINGER_SECS, .tv_usec = 0 };
	evtimer_add(c->timer, &tv);
}

/* Closes once everything queued has been written. */
static void conn_close_after_flush(struct mg_http_conn *c)
{
	c->state = CONN_CLOSING;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		conn_close_written(c);
		return;
	}
	conn_read(c, false);
	arm_timer(c);
}

/* Plain TCP connections write their output here, right after it was added,
 * instead of through the bufferevent's write event: adding that event for
 * each answer and dropping it once written cost two epoll_ctl calls and a
 * loop turn per request. Their EV_WRITE stays disabled while the output
 * is empty; what the socket does not take (a slow client, a large answer)
 * enables it, and the bufferevent writes the rest as before (with its
 * write timeout, and errors reported to on_event); on_write disables it
 * again once drained. TLS connections always go through the bufferevent. */
static void conn_push(struct mg_http_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (!c->plain || (bufferevent_get_enabled(c->bev) & EV_WRITE) ||
	    evbuffer_get_length(out) == 0)
		return;
	/* A socket bufferevent keeps its output's front frozen (only its own
	 * write callback drains it); it is thawed for this write the same way. */
	evbuffer_unfreeze(out, 1);
	evbuffer_write(out, bufferevent_getfd(c->bev));
	evbuffer_freeze(out, 1);
	if (evbuffer_get_length(out) > 0)
		bufferevent_enable(c->bev, EV_WRITE);
}

/* The response head is assembled here and added to the output in one piece:
 * formatting it with evbuffer_add_printf cost more than the rest of a small
 * answer's HTTP work. */
struct head_buf {
	struct evbuffer *out;
	size_t n;
	char b[1024];
};

static void head_add(struct head_buf *h, const char *s, size_t len)
{
	if (h->n + len > sizeof h->b) {
		evbuffer_add(h->out, h->b, h->n);
		h->n = 0;
		if (len > sizeof h->b) {
			evbuffer_add(h->out, s, len);
			return;
		}
	}
	memcpy(h->b + h->n, s, len);
	h->n += len;
}

static void head_str(struct head_buf *h, const char *s)
{
	head_add(h, s, strlen(s));
}

static void head_field(struct head_buf *h, const char *name, const char *value)
{
	head_str(h, name);
	head_add(h, ": ", 2);
	head_str(h, value);
	head_add(h, "\r\n", 2);
}

static void write_head(struct mg_http_conn *c, int status, const char *ctype,
                       const struct mg_http_hdr *hdrs, size_t n, long long content_length,
                       bool chunked)
{
	struct head_buf h;
	h.out = bufferevent_get_output(c->bev);
	h.n = 0;
	int minor = c->parser.version_minor;
	char line[16] = "HTTP/1.x 000 ";
	line[7] = minor == 0 ? '0' : '1';
	line[9] = (char)('0' + status / 100 % 10);
	line[10] = (char)('0' + status / 10 % 10);
	line[11] = (char)('0' + status % 10);
	head_add(&h, line, 13);
	head_str(&h, reason_phrase(status));
	head_add(&h, "\r\n", 2);
	head_field(&h, "Date", http_date(c->srv));
	if (ctype)
		head_field(&h, "Content-Type", ctype);
	for (size_t i = 0; i < n; i++)
		head_field(&h, hdrs[i].name, hdrs[i].value);
	for (size_t i = 0; i < c->req.n_extra; i++)
		head_field(&h, c->req.extra[i][0], c->req.extra[i][1]);
	if (chunked) {
		head_str(&h, "Transfer-Encoding: chunked\r\n");
	} else if (content_length >= 0) {
		char num[MG_I64_CHARS];
		head_str(&h, "Content-Length: ");
		head_add(&h, num, mg_fmt_i64(num, content_length));
		head_add(&h, "\r\n", 2);
	}
	if (!c->keep_alive)
		head_str(&h, "Connection: close\r\n");
	else if (minor == 0)
		head_str(&h, "Connection: keep-alive\r\n");
	head_add(&h, "\r\n", 2);
	evbuffer_add(h.out, h.b, h.n);
}

static void process_input(struct mg_http_conn *c);

/* The current request is complete: keep the connection or close it. */
static void finish_request(struct mg_http_conn *c)
{
	struct mg_http_req *req = &c->req;
	if (req->active) {
		req->active = false;
		c->srv->n_busy--;
		if (c->srv->o.on_done)
			c->srv->o.on_done(req, req->status, c->srv->o.arg);
	}
	memset(req, 0, sizeof *req);
	req->conn = c;
	if (!c->keep_alive || c->srv->draining) {
		conn_close_after_flush(c);
		return;
	}
	mg_http_parser_reset(&c->parser);
	c->state = CONN_READING;
	c->got_bytes = false;
	conn_read(c, true);
	arm_timer(c);
	/* A pipelined request may already be waiting; when process_input is on
	 * the stack its loop picks it up, so no recursion. */
	if (!c->in_process && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		process_input(c);
}

static void send_error_and_close(struct mg_http_conn *c, int status, const char *reason)
{
	struct mg_buf body;
	const char *ctype = "text/plain";
	mg_buf_init(&body, 4096);
	if (c->srv->o.error_body)
		c->srv->o.error_body(status, reason, &body, &ctype);
	else
		mg_buf_puts(&body, reason);
	c->keep_alive = false;
	c->linger = true;
	if (c->parser.version_minor != 0 && c->parser.version_minor != 1)
		c->parser.version_minor = 1;
	write_head(c, status, ctype, NULL, 0, (long long)body.len, false);
	evbuffer_add(bufferevent_get_output(c->bev), body.data ? body.data : "", body.len);
	mg_buf_free(&body);
	conn_push(c);
	conn_close_after_flush(c);
}

static void dispatch(struct mg_http_conn *c)
{
	struct mg_http_server *srv = c->srv;
	c->state = CONN_HANDLING;
	evtimer_del(c->timer);
	memset(&c->req, 0, sizeof c->req);
	c->req.conn = c;
	c->req.active = true;
	c->req.start_us = mg_now_us();
	c->req.head_only = strcmp(c->parser.method, "HEAD") == 0;
	c->keep_alive = c->parser.keep_alive && !srv->draining;
	srv->n_busy++;
	srv->o.on_request(&c->req, srv->o.arg);
}

static void process_input(struct mg_http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	c->in_process = true;
	while (!c->dead && c->state == CONN_READING) {
		size_t avail = evbuffer_get_length(in);
		struct evbuffer_iovec v = { .iov_base = NULL, .iov_len = 0 };
		if (avail > 0) {
			evbuffer_peek(in, -1, NULL, &v, 1);
			c->got_bytes = true;
		}
		size_t used = 0;
		bool had_head = c->parser.method != NULL;
		enum mg_http_parse_status st =
		    mg_http_parse(&c->parser, v.iov_base, v.iov_len, &used);
		if (used)
			evbuffer_drain(in, used);
		if (st == MG_HTTP_PARSE_ERROR) {
			send_error_and_close(c, c->parser.error_status, c->parser.error);
			break;
		}
		if (st == MG_HTTP_PARSE_HEAD) {
			if (c->parser.expect_continue && !had_head) {
				evbuffer_add(bufferevent_get_output(c->bev),
				             "HTTP/1.1 100 Continue\r\n\r\n", 25);
				conn_push(c);
			}
			continue;
		}
		if (st == MG_HTTP_PARSE_DONE) {
			/* The handler may answer at once (the loop then goes on with a
			 * pipelined request) or later. */
			dispatch(c);
			continue;
		}
		if (used == 0)
			break; /* MORE and nothing buffered: wait for the network */
	}
	c->in_process = false;
	if (c->dead) {
		mg_http_parser_free(&c->parser);
		free(c);
	}
}

/* New input in the connection's input buffer. */
static void input_ready(struct mg_http_conn *c)
{
	if (c->state == CONN_READING) {
		process_input(c);
		return;
	}
	if (c->state == CONN_LINGERING) {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		c->lingered += evbuffer_get_length(in);
		evbuffer_drain(in, evbuffer_get_length(in));
		if (c->lingered > LINGER_MAX_BYTES)
			conn_free(c, true);
		return;
	}
	/* Held input while handling: bound it, the next request waits. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) >
	    c->srv->o.max_header_bytes + c->srv->o.max_body_bytes)
		conn_read(c, false);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	input_ready(arg);
}

#define PLAIN_READ 16384 /* bytes asked of one recv() */

/* Plain TCP: one recv() into the stack, then added to the input buffer
 * (whose end a socket bufferevent keeps frozen: thawed for this, as
 * conn_push does for the output). Not straight into reserved space: a
 * 16 KiB chain allocated per request costs more (a large-bin malloc that
 * consolidates the fast bins) than copying a small request once. The end
 * of input or an error ends the connection, as the bufferevent's event
 * callback does. */
static void on_plain_read(evutil_socket_t fd, short what, void *arg)
{
	struct mg_http_conn *c = arg;
	(void)what;
	char b[PLAIN_READ];
	ssize_t n = recv(fd, b, sizeof b, 0);
	if (n > 0) {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		evbuffer_unfreeze(in, 0);
		int rc = evbuffer_add(in, b, (size_t)n);
		evbuffer_freeze(in, 0);
		if (rc == 0) {
			input_ready(c);
			return;
		}
	} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		return;
	}
	conn_free(c, true); /* EOF, or a read error */
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct mg_http_conn *c = arg;
	(void)bev;
	if (c->plain)
		bufferevent_disable(c->bev, EV_WRITE); /* drained: conn_push writes again */
	if (c->state == CONN_CLOSING)
		conn_close_written(c);
	else if (c->state == CONN_HANDLING)
		evtimer_del(c->timer);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct mg_http_conn *c = arg;
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		conn_free(c, true);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct mg_http_conn *c = arg;
	(void)fd;
	(void)what;
	if (c->state == CONN_READING && c->got_bytes) {
		send_error_and_close(c, 408, "request not received in time");
		return;
	}
	if (c->state == CONN_HANDLING) {
		/* Output has not drained for a whole timeout: the client is not reading. */
		mg_log_debug("http: %s not reading its response; closing", c->peer);
	}
	conn_free(c, true);
}

/* ---- accept ---------------------------------------------------------------------- */

static void refuse(struct mg_http_server *srv, evutil_socket_t fd)
{
	struct mg_buf body;
	const char *ctype = "text/plain";
	char head[256];
	mg_buf_init(&body, 1024);
	if (srv->o.error_body)
		srv->o.error_body(503, "too many connections", &body, &ctype);
	int n = snprintf(head, sizeof head,
	                 "HTTP/1.1 503 Service Unavailable\r\nContent-Type: %s\r\n"
	                 "Content-Length: %zu\r\nRetry-After: 1\r\nConnection: close\r\n\r\n",
	                 ctype, body.len);
	/* Best effort on a fresh socket: the response fits the socket buffer. */
	ssize_t w = send(fd, head, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w == n && body.len)
		w = send(fd, body.data, body.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	mg_buf_free(&body);
	evutil_closesocket(fd);
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
	struct mg_http_server *srv = arg;
	(void)lis;
	if (srv->draining || srv->n_conns >= srv->o.max_connections) {
		refuse(srv, fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct mg_http_conn *c = calloc(1, sizeof *c);
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	c->srv = srv;
	c->req.conn = c;
	if ((size_t)salen <= sizeof c->addr)
		memcpy(&c->addr, sa, (size_t)salen);
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, c->peer, sizeof c->peer);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, c->peer,
		          sizeof c->peer);
	mg_http_parser_init(&c->parser, srv->o.max_header_bytes, srv->o.max_body_bytes);
	if (srv->o.tls) {
		SSL *ssl = SSL_new(srv->o.tls);
		c->bev = ssl ? bufferevent_openssl_socket_new(srv->base, fd, ssl,
		                                              BUFFEREVENT_SSL_ACCEPTING,
		                                              BEV_OPT_CLOSE_ON_FREE)
		             : NULL;
		if (!c->bev && ssl)
			SSL_free(ssl);
	} else {
		c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
		c->plain = true;
	}
	c->timer = evtimer_new(srv->base, on_timer, c);
	if (c->plain && c->bev)
		c->rev = event_new(srv->base, fd, EV_READ | EV_PERSIST, on_plain_read, c);
	if (!c->bev || !c->timer || (c->plain && !c->rev)) {
		if (!c->bev)
			evutil_closesocket(fd);
		if (c->rev)
			event_free(c->rev);
		if (c->bev)
			bufferevent_free(c->bev);
		if (c->timer)
			event_free(c->timer);
		mg_http_parser_free(&c->parser);
		free(c);
		return;
	}
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->n_conns++;
	c->state = CONN_READING;
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	struct timeval wt = { .tv_sec = srv->o.idle_timeout_secs, .tv_usec = 0 };
	bufferevent_set_timeouts(c->bev, NULL, &wt);
	if (c->plain) {
		bufferevent_disable(c->bev, EV_READ | EV_WRITE); /* see conn_read, conn_push */
		conn_read(c, true);
	} else {
		bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	}
	arm_timer(c);
}

static void on_accept_error(struct evconnlistener *lis, void *arg)
{
	(void)lis;
	(void)arg;
	int e = EVUTIL_SOCKET_ERROR();
	/* EMFILE and friends: log and keep going; the listener retries. */
	mg_log_warn("http: accept failed: %s", evutil_socket_error_to_string(e));
}

struct mg_http_server *mg_http_server_new(struct event_base *base,
                                          const struct mg_http_server_opts *opts, char *err,
                                          size_t err_size)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
		                  .ai_socktype = SOCK_STREAM,
		                  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char port[16];
	snprintf(port, sizeof port, "%d", opts->port);
	const char *host = opts->host;
	if (host && host[0] == '[') {
		/* "[::1]" as written in URLs */
		static char bare[64];
		snprintf(bare, sizeof bare, "%.*s", (int)strcspn(host + 1, "]"), host + 1);
		host = bare;
	}
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, err_size, "cannot resolve listen address %s: %s", opts->host,
		         gai_strerror(rc));
		return NULL;
	}
	struct mg_http_server *srv = calloc(1, sizeof *srv);
	if (!srv) {
		freeaddrinfo(res);
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	srv->base = base;
	srv->o = *opts;
	if (srv->o.tls)
		SSL_CTX_up_ref(srv->o.tls);
	srv->lis = evconnlistener_new_bind(
	    base, on_accept, srv, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    1024, res->ai_addr, (int)res->ai_addrlen);
	if (!srv->lis) {
		snprintf(err, err_size, "cannot listen on %s:%d: %s", opts->host, opts->port,
		         strerror(errno));
		freeaddrinfo(res);
		if (srv->o.tls)
			SSL_CTX_free(srv->o.tls);
		free(srv);
		return NULL;
	}
	freeaddrinfo(res);
	evconnlistener_set_error_cb(srv->lis, on_accept_error);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	evutil_socket_t lfd = evconnlistener_get_fd(srv->lis);
	if (getsockname(lfd, (struct sockaddr *)&ss, &sl) == 0)
		srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                           : ((struct sockaddr_in *)&ss)->sin_port);
	return srv;
}

void mg_http_server_set_tls(struct mg_http_server *srv, SSL_CTX *ctx)
{
	if (ctx)
		SSL_CTX_up_ref(ctx);
	if (srv->o.tls)
		SSL_CTX_free(srv->o.tls);
	srv->o.tls = ctx;
}

int mg_http_server_port(const struct mg_http_server *srv)
{
	return srv->port;
}

void mg_http_server_drain(struct mg_http_server *srv)
{
	if (srv->draining)
		return;
	srv->draining = true;
	if (srv->lis) {
		evconnlistener_free(srv->lis);
		srv->lis = NULL;
	}
	struct mg_http_conn *c = srv->conns, *next;
	for (; c; c = next) {
		next = c->next;
		if ((c->state == CONN_READING && !c->got_bytes) || c->state == CONN_LINGERING)
			conn_free(c, true);
		else if (c->state == CONN_HANDLING)
			c->keep_alive = false;
	}
}

size_t mg_http_server_connections(const struct mg_http_server *srv)
{
	return srv->n_conns;
}

size_t mg_http_server_busy(const struct mg_http_server *srv)
{
	return srv->n_busy;
}

void mg_http_server_free(struct mg_http_server *srv)
{
	if (!srv)
		return;
	if (srv->lis)
		evconnlistener_free(srv->lis);
	while (srv->conns)
		conn_free(srv->conns, true);
	if (srv->o.tls)
		SSL_CTX_free(srv->o.tls);
	free(srv);
}

/* ---- request accessors ------------------------------------------------------------ */

const char *mg_http_req_method(const struct mg_http_req *req)
{
	return req->conn->parser.method;
}

const char *mg_http_req_path(const struct mg_http_req *req)
{
	return req->conn->parser.path;
}

const char *mg_http_req_query(const struct mg_http_req *req)
{
	return req->conn->parser.query;
}

const char *mg_http_req_header(const struct mg_http_req *req, const char *name)
{
	const struct mg_http_header *h = mg_http_header_find(&req->conn->parser, name);
	return h ? h->value : NULL;
}

size_t mg_http_req_header_count(const struct mg_http_req *req, const char *name)
{
	return mg_http_header_count(&req->conn->parser, name);
}

const struct mg_http_parser *mg_http_req_parser(const struct mg_http_req *req)
{
	return &req->conn->parser;
}

const char *mg_http_req_body(const struct mg_http_req *req, size_t *len)
{
	const struct mg_buf *b = &req->conn->parser.body;
	*len = b->len;
	return b->data ? b->data : "";
}

const char *mg_http_req_peer(const struct mg_http_req *req)
{
	return req->conn->peer;
}

const struct sockaddr *mg_http_req_peer_addr(const struct mg_http_req *req)
{
	return (const struct sockaddr *)&req->conn->addr;
}

const char *mg_http_req_version(const struct mg_http_req *req)
{
	return req->conn->parser.version_minor == 0 ? "1.0" : "1.1";
}

SSL *mg_http_req_ssl(const struct mg_http_req *req)
{
	return bufferevent_openssl_get_ssl(req->conn->bev);
}

uint64_t mg_http_req_start_us(const struct mg_http_req *req)
{
	return req->start_us;
}

uint64_t *mg_http_req_note(struct mg_http_req *req)
{
	return &req->note;
}

void mg_http_req_set_data(struct mg_http_req *req, void *data)
{
	req->data = data;
}

void *mg_http_req_data(const struct mg_http_req *req)
{
	return req->data;
}

void mg_http_req_set_route(struct mg_http_req *req, void *route, int kind)
{
	req->route = route;
	req->route_kind = kind;
}

void *mg_http_req_route(const struct mg_http_req *req, int *kind)
{
	if (kind)
		*kind = req->route_kind;
	return req->route;
}

int mg_http_req_add_header(struct mg_http_req *req, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	if (req->n_extra >= MG_HTTP_EXTRA_HEADERS || nl >= sizeof req->extra[0][0] ||
	    vl >= sizeof req->extra[0][1])
		return -1;
	for (const char *p = value; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -1; /* never let a value split the header block */
	}
	memcpy(req->extra[req->n_extra][0], name, nl + 1);
	memcpy(req->extra[req->n_extra][1], value, vl + 1);
	req->n_extra++;
	return 0;
}

void mg_http_req_on_close(struct mg_http_req *req, void (*cb)(struct mg_http_req *, void *),
                          void *arg)
{
	req->close_cb = cb;
	req->close_arg = arg;
}

bool mg_http_req_responded(const struct mg_http_req *req)
{
	return req->responded;
}

size_t mg_http_req_pending_output(const struct mg_http_req *req)
{
	return evbuffer_get_length(bufferevent_get_output(req->conn->bev));
}

/* ---- responses ------------------------------------------------------------------- */

void mg_http_reply(struct mg_http_req *req, int status, const char *content_type,
                   const struct mg_http_hdr *hdrs, size_t n_hdrs, const void *body, size_t len)
{
	struct iovec part = { .iov_base = (void *)body, .iov_len = len };
	mg_http_reply_parts(req, status, content_type, hdrs, n_hdrs, &part, 1);
}

void mg_http_req_divert(struct mg_http_req *req, mg_http_divert_fn fn, void *arg)
{
	req->divert = fn;
	req->divert_arg = arg;
}

bool mg_http_req_diverted(const struct mg_http_req *req)
{
	return req->divert != NULL;
}

/* Offers a complete answer to the divert hook; true when it took it. */
static bool divert_reply(struct mg_http_req *req, int status, const struct iovec *parts,
                         size_t n_parts, size_t len)
{
	mg_http_divert_fn fn = req->divert;
	req->divert = NULL;
	struct mg_buf b;
	mg_buf_init(&b, 0);
	for (size_t i = 0; i < n_parts; i++)
		if (parts[i].iov_len &&
		    mg_buf_append(&b, parts[i].iov_base, parts[i].iov_len) < 0) {
			mg_buf_free(&b);
			return false;
		}
	bool taken = fn(req, status, b.data ? b.data : "", len, req->divert_arg);
	mg_buf_free(&b);
	return taken;
}

void mg_http_reply_parts(struct mg_http_req *req, int status, const char *content_type,
                         const struct mg_http_hdr *hdrs, size_t n_hdrs, const struct iovec *parts,
                         size_t n_parts)
{
	struct mg_http_conn *c = req->conn;
	size_t len = 0;
	for (size_t i = 0; i < n_parts; i++)
		len += parts[i].iov_len;
	if (req->divert && divert_reply(req, status, parts, n_parts, len)) {
		status = 202;
		content_type = NULL;
		hdrs = NULL;
		n_hdrs = 0;
		n_parts = 0;
		len = 0;
	}
	req->responded = true;
	req->status = status;
	write_head(c, status, content_type, hdrs, n_hdrs, (long long)len, false);
	if (!req->head_only) {
		struct evbuffer *out = bufferevent_get_output(c->bev);
		for (size_t i = 0; i < n_parts; i++) {
			if (parts[i].iov_len)
				evbuffer_add(out, parts[i].iov_base, parts[i].iov_len);
		}
	}
	conn_push(c);
	finish_request(c);
}

void mg_http_stream_begin(struct mg_http_req *req, int status, const char *content_type,
                          const struct mg_http_hdr *hdrs, size_t n_hdrs)
{
	struct mg_http_conn *c = req->conn;
	req->responded = true;
	req->status = status;
	req->streaming = true;
	req->chunked = c->parser.version_minor == 1;
	if (!req->chunked)
		c->keep_alive = false; /* HTTP/1.0: the end of the body is the close */
	write_head(c, status, content_type, hdrs, n_hdrs, -1, req->chunked);
	bufferevent_flush(c->bev, EV_WRITE, BEV_FLUSH);
	conn_push(c);
}

int mg_http_stream_send(struct mg_http_req *req, const void *data, size_t len)
{
	struct mg_http_conn *c = req->conn;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (evbuffer_get_length(out) + len > c->srv->o.max_output_bytes) {
		mg_log_warn("http: client %s is not reading (%zu bytes unsent); cut off", c->peer,
		            evbuffer_get_length(out));
		conn_free(c, false);
		return -1;
	}
	if (len == 0)
		return 0;
	if (req->chunked) {
		char size[24];
		size_t n = 0;
		for (int shift = 60; shift >= 0; shift -= 4) {
			unsigned d = (unsigned)(len >> shift) & 0xF;
			if (d || n || shift == 0)
				size[n++] = "0123456789abcdef"[d];
		}
		size[n++] = '\r';
		size[n++] = '\n';
		evbuffer_add(out, size, n);
	}
	evbuffer_add(out, data, len);
	if (req->chunked)
		evbuffer_add(out, "\r\n", 2);
	conn_push(c);
	/* Output pending: the timer now watches for a client that stops reading
	 * (on_write stops it once drained; written at once, nothing to watch). */
	if (evbuffer_get_length(out) && !evtimer_pending(c->timer, NULL))
		arm_timer(c);
	return 0;
}

void mg_http_stream_end(struct mg_http_req *req)
{
	struct mg_http_conn *c = req->conn;
	if (req->chunked)
		evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
	conn_push(c);
	finish_request(c);
}
