/*
 * h1client.h - the native HTTP/1.1 keep-alive client for plain http://
 * upstreams, on libevent events.
 *
 * libcurl's multi machinery cost about half of the event loop's
 * instructions per proxied request (bench scenario 4); this client does
 * the one thing an MCP upstream over http:// needs - HTTP/1.1 requests on
 * a pool of keep-alive connections, with the answer streamed to the
 * caller - and nothing else. client.c chooses it per transfer for
 * streaming fetches (mg_fetch_stream_start) of URLs it accepts
 * (mg_h1_accepts); https://, h2c, unusual URLs and one-off fetches stay on
 * libcurl. The contract is the streaming fetch's (client.h): callbacks
 * from the loop only, never from inside mg_h1_start; pause/resume; a
 * failure class and a reason; cancel from anywhere.
 *
 * Addresses: literal IPs are connected to directly; "localhost" (and
 * *.localhost, as libcurl does) means 127.0.0.1 then ::1; other names are
 * resolved with evdns_getaddrinfo, never blocking the loop. Every address
 * is checked by mg_fetch_address_allowed (the SSRF rule of client.h) just
 * before connecting to it; refused ones are skipped, and when none is
 * left the fetch fails as MG_FETCH_FAIL_BLOCKED.
 *
 * Pool: per origin (host and port), at most H1_IDLE_MAX idle connections,
 * reused last-in first-out (the warmest). A connection is dropped when the
 * answer says "Connection: close", is close-delimited, or was not read to
 * its end (cancel, error, timeout), when it is idle for H1_IDLE_SECS, and
 * when the server closes it or sends anything while it is idle.
 *
 * Retry rule: a request is sent once, except when it went out on a reused
 * idle connection and that connection closed (EOF or reset) before a
 * single byte of the answer came back. That is the keep-alive race (the
 * server closed the idle connection while the request was on its way),
 * the server cannot have processed the request, and it is sent again, once,
 * on a new connection - for POST too, since MCP JSON-RPC POSTs are what
 * meets it. Timeouts, refused connections and partial answers are never
 * retried.
 */
#ifndef MG_HTTP_H1CLIENT_H
#define MG_HTTP_H1CLIENT_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

#include "http/client.h"
#include "http/parser.h"

struct mg_h1_pool;
struct mg_h1_fetch;

#define H1_IDLE_MAX  64
#define H1_IDLE_SECS 30

struct mg_h1_callbacks {
	/* The final answer's head (status); headers via mg_h1_header. */
	int (*on_head)(long status, void *arg);
	/* Body bytes, in order (chunked encoding removed). */
	int (*on_body)(const char *p, size_t n, void *arg);
	/* The end: why == MG_FETCH_FAIL_NONE and error NULL after a complete
	 * answer. The fetch is freed after this returns. */
	void (*on_end)(enum mg_fetch_failure why, const char *error, void *arg);
};

/* A pool for one event loop (one per mg_fetcher). NULL when out of
 * memory. */
struct mg_h1_pool *mg_h1_pool_new(struct event_base *base);

/* Cancels every fetch (no callbacks), closes every connection, frees. */
void mg_h1_pool_free(struct mg_h1_pool *p);

/* true when `o` is for this client: an http:// URL it parses (host, port,
 * origin-form path of visible ASCII, no user info) without h2c. */
bool mg_h1_accepts(const struct mg_fetch_opts *o);

/* The same, remembering the last URL in `p` (mg_h1_start with the same URL
 * then does not split it again). */
bool mg_h1_pool_accepts(struct mg_h1_pool *p, const struct mg_fetch_opts *o);

/* Starts a request (o->max_bytes is not applied: the reader bounds what it
 * keeps). NULL with `err` when the request cannot be built (a header with
 * CR or LF...); every other failure arrives through on_end. */
struct mg_h1_fetch *mg_h1_start(struct mg_h1_pool *p, const struct mg_fetch_opts *o,
                                const struct mg_h1_callbacks *cbs, void *arg, char *err,
                                size_t err_size);

/* Stops reading the answer (the server is held by TCP flow control) or
 * resumes; what was read already is delivered on resume, from the loop. */
void mg_h1_pause(struct mg_h1_fetch *h, bool pause);

/* Stops a fetch: no more callbacks. Safe from inside its callbacks (the
 * fetch is freed when they return). */
void mg_h1_cancel(struct mg_h1_fetch *h);

/* A header of the answer (the last of that name), after on_head. */
const struct mg_http_header *mg_h1_header(const struct mg_h1_fetch *h, const char *name);

#endif
