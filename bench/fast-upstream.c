/*
 * fast-upstream.c - an MCP server that answers in microseconds, so that a
 * benchmark measures the gateway in front of it, not the server.
 *
 *   fast-upstream --stdio [--tools N] [--big-bytes N]
 *   fast-upstream --http PORT [--tools N] [--big-bytes N] [--no-sessions] [--jwks FILE]
 *
 * It speaks the legacy MCP family (initialize, notifications/initialized,
 * ping, tools/list, tools/call) over newline-delimited stdio or over
 * Streamable HTTP (POST answered with application/json, 202 for
 * notifications, Mcp-Session-Id minted on initialize and checked afterwards,
 * DELETE ends nothing but answers 200, GET is 405 as the spec allows).
 *
 * Tools: "echo" ({message} -> "Echo: <message>", as server-everything),
 * "big" (a text of --big-bytes bytes, default 1 MiB), and enough "tool-NNNNN"
 * entries to make --tools in all (default 8). Every list and big answer is
 * built once at start; a message is scanned, never parsed into a tree.
 *
 * HTTP mode is one epoll loop on 127.0.0.1 only; with --jwks it also serves
 * that file at GET /jwks.json (the JWT scenario's key set). It exits on
 * SIGTERM/SIGINT (HTTP) or at EOF on stdin (stdio).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fbuf.h"
#include "minijson.h"

#define MAX_MESSAGE (64u << 20)
#define MAX_HEADER  (64u << 10)

/* ---- MCP ----------------------------------------------------------------------------- */

static struct fbuf g_tools_result; /* {"tools":[...]} */
static struct fbuf g_big_result;   /* {"content":[{"type":"text","text":"..."}]} */

static const char *const legacy_versions[] = { "2024-11-05", "2025-03-26", "2025-06-18",
	                                       "2025-11-25" };

static void build_canned(long ntools, long big_bytes)
{
	fb_str(&g_tools_result,
	       "{\"tools\":[{\"name\":\"echo\",\"description\":\"Echoes back the input string\","
	       "\"inputSchema\":{\"type\":\"object\",\"properties\":{\"message\":{\"type\":"
	       "\"string\",\"description\":\"Message to echo\"}},\"required\":[\"message\"]}},"
	       "{\"name\":\"big\",\"description\":\"Returns a large text\",\"inputSchema\":"
	       "{\"type\":\"object\",\"properties\":{}}}");
	for (long i = 2; i < ntools; i++)
		fb_fmt(&g_tools_result,
		       ",{\"name\":\"tool-%05ld\",\"description\":\"Synthetic tool number %ld for "
		       "list benchmarks\",\"inputSchema\":{\"type\":\"object\",\"properties\":{"
		       "\"value\":{\"type\":\"string\"}}}}",
		       i, i);
	fb_str(&g_tools_result, "]}");

	fb_str(&g_big_result, "{\"content\":[{\"type\":\"text\",\"text\":\"");
	fb_reserve(&g_big_result, (size_t)big_bytes + 8);
	static const char pattern[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	for (long i = 0; i < big_bytes; i++)
		g_big_result.p[g_big_result.len + (size_t)i] = pattern[i % 36];
	g_big_result.len += (size_t)big_bytes;
	fb_str(&g_big_result, "\"}]}");
}

static void reply_head(struct fbuf *out, struct mj_span id)
{
	fb_str(out, "{\"jsonrpc\":\"2.0\",\"id\":");
	fb_add(out, id.p, (size_t)(id.e - id.p));
}

static void reply_error(struct fbuf *out, struct mj_span id, int code, const char *msg)
{
	reply_head(out, id);
	fb_fmt(out, ",\"error\":{\"code\":%d,\"message\":\"%s\"}}", code, msg);
}

struct msg_info {
	bool initialize; /* the message was an initialize request */
	bool replied;    /* a response was appended */
};

/* Answers one JSON-RPC message [m, m+n) into out. */
static void handle_message(const char *m, size_t n, struct fbuf *out, struct msg_info *info)
{
	static const char null_text[] = "null";
	const struct mj_span null_id = { null_text, null_text + 4 };
	struct mj_span msg = { m, m + n }, id, method, params = { NULL, NULL };

	info->initialize = false;
	info->replied = false;
	if (!mj_valid(msg.p, msg.e) || *mj_ws(msg.p, msg.e) != '{') {
		reply_error(out, null_id, -32700, "Parse error");
		info->replied = true;
		return;
	}
	bool has_id = mj_get(msg, "id", &id);
	if (!mj_get(msg, "method", &method))
		return; /* a response from the client: nothing to do */
	if (!has_id)
		return; /* a notification */
	mj_get(msg, "params", &params);
	info->replied = true;

	if (mj_str_eq(method, "tools/call", 10)) {
		struct mj_span name, msgv;
		if (!params.p || !mj_get(params, "name", &name)) {
			reply_error(out, id, -32602, "Missing tool name");
			return;
		}
		if (mj_str_eq(name, "echo", 4)) {
			static const char *const path[] = { "arguments", "message" };
			if (!mj_path(params, path, 2, &msgv) || *msgv.p != '"') {
				reply_error(out, id, -32602, "echo needs a string message");
				return;
			}
			reply_head(out, id);
			fb_str(out,
			       ",\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"Echo: ");
			fb_add(out, msgv.p + 1, (size_t)(msgv.e - msgv.p - 1));
			fb_str(out, "}]}}");
		} else if (mj_str_eq(name, "big", 3)) {
			reply_head(out, id);
			fb_str(out, ",\"result\":");
			fb_add(out, g_big_result.p, g_big_result.len);
			fb_str(out, "}");
		} else if (name.e - name.p > 7 && memcmp(name.p, "\"tool-", 6) == 0) {
			reply_head(out, id);
			fb_str(out,
			       ",\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}}");
		} else {
			reply_error(out, id, -32602, "Unknown tool");
		}
	} else if (mj_str_eq(method, "tools/list", 10)) {
		reply_head(out, id);
		fb_str(out, ",\"result\":");
		fb_add(out, g_tools_result.p, g_tools_result.len);
		fb_str(out, "}");
	} else if (mj_str_eq(method, "initialize", 10)) {
		const char *version = "2025-11-25";
		struct mj_span pv;
		if (params.p && mj_get(params, "protocolVersion", &pv))
			for (size_t i = 0; i < sizeof legacy_versions / sizeof *legacy_versions;
			     i++)
				if (mj_str_eq(pv, legacy_versions[i], 10))
					version = legacy_versions[i];
		reply_head(out, id);
		fb_fmt(out,
		       ",\"result\":{\"protocolVersion\":\"%s\",\"capabilities\":{\"tools\":{"
		       "\"listChanged\":false}},\"serverInfo\":{\"name\":\"fast-upstream\","
		       "\"version\":\"1.0.0\"}}}",
		       version);
		info->initialize = true;
	} else if (mj_str_eq(method, "ping", 4)) {
		reply_head(out, id);
		fb_str(out, ",\"result\":{}}");
	} else {
		reply_error(out, id, -32601, "Method not found");
	}
}

/* ---- stdio --------------------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads whole chunks, answers every complete line in them, writes the
 * answers in one go: a burst of requests costs one read and one write. */
static int run_stdio(void)
{
	struct fbuf in = { 0 }, out = { 0 };
	struct msg_info info;
	fb_reserve(&in, 256 << 10);
	for (;;) {
		if (in.cap - in.len < 64 << 10) {
			if (in.cap >= MAX_MESSAGE * 2u) {
				fprintf(stderr, "fast-upstream: message too large\n");
				return 1;
			}
			fb_reserve(&in, in.cap);
		}
		ssize_t r = read(0, in.p + in.len, in.cap - in.len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		in.len += (size_t)r;
		size_t off = 0;
		for (;;) {
			char *nl = memchr(in.p + off, '\n', in.len - off);
			if (!nl)
				break;
			size_t n = (size_t)(nl - (in.p + off));
			if (n > 0) {
				handle_message(in.p + off, n, &out, &info);
				if (info.replied)
					fb_add(&out, "\n", 1);
			}
			off += n + 1;
		}
		if (out.len) {
			if (write_all(1, out.p, out.len) < 0)
				return 0;
			out.len = 0;
		}
		memmove(in.p, in.p + off, in.len - off);
		in.len -= off;
	}
}

/* ---- Streamable HTTP ------------------------------------------------------------------ */

struct conn {
	int fd;
	bool want_out; /* EPOLLOUT armed */
	bool closing;  /* close once output is flushed */
	struct fbuf in, out;
	size_t out_off;
};

static int g_epfd;
static bool g_sessions = true;
static uint64_t g_session_base, g_session_next;
static struct fbuf g_jwks;
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void conn_close(struct conn *c)
{
	epoll_ctl(g_epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in.p);
	free(c->out.p);
	free(c);
}

static bool header_is(const char *line, size_t n, const char *name, const char **val, size_t *vlen)
{
	size_t k = strlen(name);
	if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
		return false;
	const char *v = line + k + 1, *e = line + n;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*val = v;
	*vlen = (size_t)(e - v);
	return true;
}

static void http_reply(struct conn *c, int status, const char *reason, const char *ctype,
                       const char *extra, const char *body, size_t blen)
{
	fb_fmt(&c->out, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s%s%s%s\r\n", status, reason,
	       blen, ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "",
	       extra ? extra : "", c->closing ? "Connection: close\r\n" : "");
	fb_add(&c->out, body, blen);
}

static bool session_known(const char *v, size_t n)
{
	char tmp[40];
	if (n != 32)
		return false;
	memcpy(tmp, v, 16);
	tmp[16] = 0;
	char *end;
	unsigned long long base = strtoull(tmp, &end, 16);
	if (*end || base != g_session_base)
		return false;
	memcpy(tmp, v + 16, 16);
	unsigned long long num = strtoull(tmp, &end, 16);
	return !*end && num < g_session_next;
}

/* Handles one complete request whose header block is [p, p+hlen) and body
 * [p+hlen, p+hlen+blen). */
static void http_request(struct conn *c, const char *p, size_t hlen, const char *body, size_t blen)
{
	const char *sp1 = memchr(p, ' ', hlen);
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', hlen - (size_t)(sp1 + 1 - p)) : NULL;
	if (!sp2) {
		c->closing = true;
		http_reply(c, 400, "Bad Request", NULL, NULL, "", 0);
		return;
	}
	const char *meth = p, *path = sp1 + 1;
	size_t mlen = (size_t)(sp1 - p), plen = (size_t)(sp2 - path);
	const char *q = memchr(path, '?', plen);
	if (q)
		plen = (size_t)(q - path);
	const char *sid = NULL;
	size_t sidlen = 0;
	const char *line = memchr(p, '\n', hlen);
	while (line && (size_t)(line + 1 - p) < hlen) {
		line++;
		const char *le = memchr(line, '\n', hlen - (size_t)(line - p));
		if (!le)
			break;
		size_t n = (size_t)(le - line);
		if (n && line[n - 1] == '\r')
			n--;
		const char *v;
		size_t vl;
		if (header_is(line, n, "mcp-session-id", &v, &vl)) {
			sid = v;
			sidlen = vl;
		} else if (header_is(line, n, "connection", &v, &vl) && vl == 5 &&
		           strncasecmp(v, "close", 5) == 0) {
			c->closing = true;
		}
		line = le;
	}

	if (plen == 10 && memcmp(path, "/jwks.json", 10) == 0 && g_jwks.len) {
		http_reply(c, 200, "OK", "application/json", NULL, g_jwks.p, g_jwks.len);
		return;
	}
	if (plen == 7 && memcmp(path, "/health", 7) == 0) {
		http_reply(c, 200, "OK", "text/plain", NULL, "ok", 2);
		return;
	}
	if (plen != 4 || memcmp(path, "/mcp", 4) != 0) {
		http_reply(c, 404, "Not Found", NULL, NULL, "", 0);
		return;
	}
	if (mlen == 6 && memcmp(meth, "DELETE", 6) == 0) {
		http_reply(c, 200, "OK", NULL, NULL, "", 0);
		return;
	}
	if (mlen != 4 || memcmp(meth, "POST", 4) != 0) {
		http_reply(c, 405, "Method Not Allowed", NULL, "Allow: POST, DELETE\r\n", "", 0);
		return;
	}

	static struct fbuf out;
	struct msg_info info;
	out.len = 0;
	handle_message(body, blen, &out, &info);
	if (g_sessions && !info.initialize) {
		if (!sid) {
			static const char e[] =
			    "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":"
			    "-32000,\"message\":\"Missing Mcp-Session-Id\"}}";
			http_reply(c, 400, "Bad Request", "application/json", NULL, e,
			           sizeof e - 1);
			return;
		}
		if (!session_known(sid, sidlen)) {
			static const char e[] =
			    "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":"
			    "-32001,\"message\":\"Session not found\"}}";
			http_reply(c, 404, "Not Found", "application/json", NULL, e, sizeof e - 1);
			return;
		}
	}
	if (!info.replied) {
		http_reply(c, 202, "Accepted", NULL, NULL, "", 0);
		return;
	}
	char extra[64] = "";
	if (g_sessions && info.initialize)
		snprintf(extra, sizeof extra, "Mcp-Session-Id: %016llx%016llx\r\n",
		         (unsigned long long)g_session_base, (unsigned long long)g_session_next++);
	http_reply(c, 200, "OK", "application/json", extra, out.p, out.len);
}

/* Answers every complete request in the input buffer. Returns -1 to close. */
static int http_process(struct conn *c)
{
	size_t off = 0;
	while (!c->closing) {
		const char *p = c->in.p + off;
		size_t avail = c->in.len - off;
		const char *end = avail >= 4 ? memmem(p, avail, "\r\n\r\n", 4) : NULL;
		if (!end) {
			if (avail > MAX_HEADER)
				return -1;
			break;
		}
		size_t hlen = (size_t)(end - p) + 4;
		size_t blen = 0;
		const char *line = memchr(p, '\n', hlen);
		bool chunked = false;
		while (line && (size_t)(line + 1 - p) < hlen) {
			line++;
			const char *le = memchr(line, '\n', hlen - (size_t)(line - p));
			if (!le)
				break;
			size_t n = (size_t)(le - line);
			if (n && line[n - 1] == '\r')
				n--;
			const char *v;
			size_t vl;
			if (header_is(line, n, "content-length", &v, &vl)) {
				char tmp[24];
				if (vl == 0 || vl >= sizeof tmp)
					return -1;
				memcpy(tmp, v, vl);
				tmp[vl] = 0;
				char *ep;
				unsigned long long cl = strtoull(tmp, &ep, 10);
				if (*ep || cl > MAX_MESSAGE)
					return -1;
				blen = (size_t)cl;
			} else if (header_is(line, n, "transfer-encoding", &v, &vl)) {
				chunked = true;
			}
			line = le;
		}
		if (chunked) {
			c->closing = true;
			http_reply(c, 501, "Not Implemented", NULL, NULL, "", 0);
			break;
		}
		if (avail < hlen + blen)
			break;
		http_request(c, p, hlen, p + hlen, blen);
		off += hlen + blen;
	}
	memmove(c->in.p, c->in.p + off, c->in.len - off);
	c->in.len -= off;
	return 0;
}

static int http_flush(struct conn *c)
{
	int rc = fb_write(c->fd, &c->out, &c->out_off);
	if (rc < 0 || (rc == 0 && c->closing))
		return -1;
	bool pending = rc > 0;
	if (pending != c->want_out) {
		struct epoll_event ev = { .events = EPOLLIN | (pending ? EPOLLOUT : 0u),
			                  .data.ptr = c };
		epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &ev);
		c->want_out = pending;
	}
	return 0;
}

static int run_http(int port)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sa = { .sin_family = AF_INET,
		                  .sin_port = htons((uint16_t)port),
		                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0) {
		fprintf(stderr, "fast-upstream: cannot listen on 127.0.0.1:%d: %s\n", port,
		        strerror(errno));
		return 3;
	}
	g_epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(g_epfd, EPOLL_CTL_ADD, lfd, &lev);
	struct sigaction sig = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sig, NULL);
	sigaction(SIGINT, &sig, NULL);
	signal(SIGPIPE, SIG_IGN);
	g_session_base = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid() << 32;

	struct epoll_event evs[256];
	while (!g_stop) {
		int n = epoll_wait(g_epfd, evs, 256, 500);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				for (;;) {
					int fd =
					    accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (fd < 0)
						break;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					struct conn *nc = calloc(1, sizeof *nc);
					if (!nc) {
						close(fd);
						continue;
					}
					nc->fd = fd;
					struct epoll_event ev = { .events = EPOLLIN,
						                  .data.ptr = nc };
					epoll_ctl(g_epfd, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
				if (c->in.cap - c->in.len < 16384)
					fb_reserve(&c->in, c->in.cap ? c->in.cap : 16384);
				ssize_t r = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
				if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
					conn_close(c);
					continue;
				}
				if (r > 0) {
					c->in.len += (size_t)r;
					if (http_process(c) < 0) {
						conn_close(c);
						continue;
					}
				}
			}
			if (http_flush(c) < 0)
				conn_close(c);
		}
	}
	return 0;
}

/* ---- main ----------------------------------------------------------------------------- */

static long arg_long(const char *s, const char *name, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max) {
		fprintf(stderr, "fast-upstream: %s wants a number in %ld..%ld, got '%s'\n", name,
		        min, max, s);
		exit(2);
	}
	return v;
}

static int read_file(const char *path, struct fbuf *b)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		fb_add(b, tmp, n);
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	long ntools = 8, big = 1 << 20, port = -1;
	bool stdio_mode = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--stdio") == 0) {
			stdio_mode = true;
		} else if (strcmp(a, "--http") == 0 && i + 1 < argc) {
			port = arg_long(argv[++i], a, 1, 65535);
		} else if (strcmp(a, "--tools") == 0 && i + 1 < argc) {
			ntools = arg_long(argv[++i], a, 2, 1000000);
		} else if (strcmp(a, "--big-bytes") == 0 && i + 1 < argc) {
			big = arg_long(argv[++i], a, 0, 256L << 20);
		} else if (strcmp(a, "--no-sessions") == 0) {
			g_sessions = false;
		} else if (strcmp(a, "--jwks") == 0 && i + 1 < argc) {
			if (read_file(argv[++i], &g_jwks) < 0) {
				fprintf(stderr, "fast-upstream: cannot read %s\n", argv[i]);
				return 2;
			}
		} else {
			fprintf(stderr, "usage: fast-upstream --stdio | --http PORT [--tools N] "
			                "[--big-bytes N] [--no-sessions] [--jwks FILE]\n");
			return 2;
		}
	}
	if (stdio_mode == (port > 0)) {
		fprintf(stderr, "fast-upstream: give exactly one of --stdio, --http PORT\n");
		return 2;
	}
	build_canned(ntools, big);
	return stdio_mode ? run_stdio() : run_http((int)port);
}
