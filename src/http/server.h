/*
 * server.h - the client-facing HTTP/1.1 server: listener, connections,
 * limits, responses (complete or streamed), TLS.
 *
 * Built on libevent bufferevents and the project's own strict parser
 * (parser.h) rather than evhttp: we need JSON error bodies for every limit
 * (413, 431, 408...), a connection cap, TCP_NODELAY, per-client output
 * limits so a slow reader is cut off instead of buffering without bound,
 * and a parser we can fuzz. See docs/dev/architecture.md.
 *
 * One request at a time per connection; pipelined requests wait in the
 * input buffer until the current response is complete. The handler gets a
 * `struct mg_http_req` and must finish it (mg_http_reply, or
 * mg_http_stream_begin ... mg_http_stream_end). If the client goes away
 * first, the close callback fires and the request is gone afterwards.
 */
#ifndef MG_HTTP_SERVER_H
#define MG_HTTP_SERVER_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "http/parser.h"

struct mg_http_server;
struct mg_http_req;

struct mg_http_hdr {
	const char *name;
	const char *value;
};

struct mg_http_server_opts {
	const char *host;
	int port; /* 0 picks a free port (tests) */
	size_t max_connections;
	size_t max_header_bytes;
	size_t max_body_bytes;
	int idle_timeout_secs;   /* idle keep-alive, and the time to receive a request */
	size_t max_output_bytes; /* unsent response bytes per connection before it is cut */
	SSL_CTX *tls;            /* NULL: plain HTTP (the server takes a reference) */
	/* Called for every complete request. */
	void (*on_request)(struct mg_http_req *req, void *arg);
	/* Fills the body of an error the server answers by itself (bad request,
	 * limits, timeouts, connection cap). Must set *ctype. */
	void (*error_body)(int status, const char *reason, struct mg_buf *out, const char **ctype);
	/* Optional: called once for every request given to on_request, when it
	 * ends: `status` is the status sent, or 0 when the client left (or was
	 * cut off) before the response was complete. The request is still
	 * readable (path, note, start time); it must not be answered. */
	void (*on_done)(struct mg_http_req *req, int status, void *arg);
	void *arg;
};

/* Binds and starts listening. Returns NULL with a message in `err`
 * (static storage is not used: err is filled into the caller's buffer). */
struct mg_http_server *mg_http_server_new(struct event_base *base,
                                          const struct mg_http_server_opts *opts, char *err,
                                          size_t err_size);

/* Replaces the TLS context used for new connections (SIGHUP reload of
 * certificates); connections already open keep theirs. Takes a reference. */
void mg_http_server_set_tls(struct mg_http_server *srv, SSL_CTX *ctx);

/* The bound port (useful with port 0). */
int mg_http_server_port(const struct mg_http_server *srv);

/* Stops accepting new connections (shutdown). Idle keep-alive connections
 * are closed; busy ones are closed after their current response. */
void mg_http_server_drain(struct mg_http_server *srv);

/* Open connections and connections with a request in progress. */
size_t mg_http_server_connections(const struct mg_http_server *srv);
size_t mg_http_server_busy(const struct mg_http_server *srv);

/* Closes every connection (close callbacks fire) and frees the server. */
void mg_http_server_free(struct mg_http_server *srv);

/* ---- requests ---------------------------------------------------------------------- */

const char *mg_http_req_method(const struct mg_http_req *req);
const char *mg_http_req_path(const struct mg_http_req *req);
const char *mg_http_req_query(const struct mg_http_req *req);
/* Header value by case-insensitive name (first occurrence), or NULL. */
const char *mg_http_req_header(const struct mg_http_req *req, const char *name);
/* Number of headers named `name`. */
size_t mg_http_req_header_count(const struct mg_http_req *req, const char *name);
/* The parser (for iterating all headers). */
const struct mg_http_parser *mg_http_req_parser(const struct mg_http_req *req);
/* The decoded body (NUL-terminated) and its length. */
const char *mg_http_req_body(const struct mg_http_req *req, size_t *len);
/* Peer address as text ("127.0.0.1", "::1") and as a sockaddr. */
const char *mg_http_req_peer(const struct mg_http_req *req);
const struct sockaddr *mg_http_req_peer_addr(const struct mg_http_req *req);
/* The request's HTTP version as text: "1.1" or "1.0". */
const char *mg_http_req_version(const struct mg_http_req *req);
/* The TLS session when the connection is TLS, else NULL. */
SSL *mg_http_req_ssl(const struct mg_http_req *req);
/* Monotonic microseconds when the request head was complete. */
uint64_t mg_http_req_start_us(const struct mg_http_req *req);

/* Eight bytes of scratch for the handler's bookkeeping (metrics), zero at
 * the start of each request and readable in on_done. */
uint64_t *mg_http_req_note(struct mg_http_req *req);

/* Handler data slot. */
void mg_http_req_set_data(struct mg_http_req *req, void *data);
void *mg_http_req_data(const struct mg_http_req *req);

/* What the handler's router matched for this request and the kind of
 * endpoint, kept so the handler resolves a path once (nginx keeps the
 * matched location in the request the same way). Opaque to the server;
 * NULL and 0 at the start of each request. */
void mg_http_req_set_route(struct mg_http_req *req, void *route, int kind);
/* The kept route (NULL when none was kept); its kind in *kind when not NULL. */
void *mg_http_req_route(const struct mg_http_req *req, int *kind);

/* Called if the client disconnects (or is cut off) before the response is
 * complete. After it returns the request must not be used. */
void mg_http_req_on_close(struct mg_http_req *req, void (*cb)(struct mg_http_req *, void *),
                          void *arg);

/* Adds a header to the response of this request, whichever it is (e.g. rate-limit
 * headers decided before the handler knows how it will answer). Copied.
 * At most MG_HTTP_EXTRA_HEADERS; returns -1 beyond. */
#define MG_HTTP_EXTRA_HEADERS 6
int mg_http_req_add_header(struct mg_http_req *req, const char *name, const char *value);

/* Diverts the complete response of this request (the 2024-11-05 HTTP+SSE
 * transport, where answers travel on another stream): when the handler
 * replies with mg_http_reply[_parts], `fn` gets the status and body first;
 * if it returns true it took the answer, and the client is sent
 * `202 Accepted` with no body instead; false sends the reply unchanged.
 * Streamed replies are not diverted: a handler must not start one on a
 * diverted request (mg_http_req_diverted tells it). */
typedef bool (*mg_http_divert_fn)(struct mg_http_req *req, int status, const char *body, size_t len,
                                  void *arg);
void mg_http_req_divert(struct mg_http_req *req, mg_http_divert_fn fn, void *arg);
bool mg_http_req_diverted(const struct mg_http_req *req);

/* Sends a complete response and finishes the request. `hdrs` may be NULL. */
void mg_http_reply(struct mg_http_req *req, int status, const char *content_type,
                   const struct mg_http_hdr *hdrs, size_t n_hdrs, const void *body, size_t len);

/* The same with the body in pieces (written one after the other, no copy
 * into one block first). */
void mg_http_reply_parts(struct mg_http_req *req, int status, const char *content_type,
                         const struct mg_http_hdr *hdrs, size_t n_hdrs, const struct iovec *parts,
                         size_t n_parts);

/* Starts a streamed response (chunked on HTTP/1.1, close-delimited on 1.0). */
void mg_http_stream_begin(struct mg_http_req *req, int status, const char *content_type,
                          const struct mg_http_hdr *hdrs, size_t n_hdrs);

/* Sends a piece of a streamed response. Returns 0, or -1 when the client is
 * gone or has more than max_output_bytes unsent: the connection is then
 * closed, the request is finished and must not be used, and the close
 * callback is NOT called (the caller already knows). */
int mg_http_stream_send(struct mg_http_req *req, const void *data, size_t len);

/* Unsent bytes queued for this client. */
size_t mg_http_req_pending_output(const struct mg_http_req *req);

/* Ends a streamed response and finishes the request. */
void mg_http_stream_end(struct mg_http_req *req);

/* true once the response head was sent. */
bool mg_http_req_responded(const struct mg_http_req *req);

#endif
