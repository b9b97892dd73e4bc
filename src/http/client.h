/*
 * client.h - outgoing HTTP requests (JWKS, later introspection, audit and
 * OTLP export, HTTP upstreams) with libcurl's multi-socket API driven by the
 * gateway's libevent loop: nothing blocks, name resolution included
 * (curl's threaded resolver).
 *
 * Every fetch is bounded (time, response size), uses http or https only,
 * never follows redirects, and applies the SSRF rule to the address curl is
 * about to connect to (CURLOPT_OPENSOCKETFUNCTION, after name resolution, so
 * DNS rebinding cannot get around it; literal addresses in the URL get no
 * exemption): link-local (169.254.0.0/16 with the cloud metadata services,
 * fe80::/10), fd00:ec2::254, unspecified, multicast and reserved addresses
 * are always refused; loopback, RFC 1918, CGNAT (100.64.0.0/10) and unique
 * local (fc00::/7) addresses only when the caller allows private networks
 * (`allow_private_networks = true` on the section that names the URL).
 * IPv4-mapped, NAT64 and 6to4 IPv6 addresses are judged by the IPv4 address
 * they carry.
 *
 * libcurl is loaded with dlopen() by mg_fetcher_prepare (or the first fetch),
 * not linked: a gateway whose configuration fetches nothing never maps it or
 * the libraries it depends on.
 */
#ifndef MG_HTTP_CLIENT_H
#define MG_HTTP_CLIENT_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "util/buf.h"

struct mg_fetcher;
struct mg_fetch;

enum mg_fetch_http_version {
	MG_FETCH_HTTP_AUTO, /* HTTP/2 over TLS when the server offers it (ALPN), else HTTP/1.1 */
	MG_FETCH_HTTP1,     /* HTTP/1.1 only */
	MG_FETCH_H2C,       /* HTTP/2 without TLS by prior knowledge */
};

struct mg_kvv;

/* "Name: value" lines of the configured extra headers `h` (names and
 * values checked by the configuration), in a malloc'd array with `extra`
 * NULL slots after them for the caller's own lines; NULL when out of
 * memory. mg_fetch_header_lines_free frees the first h->n lines and the
 * array (not what the caller put in its slots). */
char **mg_fetch_header_lines(const struct mg_kvv *h, size_t extra);
void mg_fetch_header_lines_free(char **lines, size_t n);

struct mg_fetch_opts {
	const char *url;
	const char *method;         /* "GET" (default), "POST", or another (e.g. "DELETE") */
	const char *const *headers; /* "Name: value" lines */
	size_t n_headers;
	const char *body; /* POST: copied by mg_fetch_start, borrowed by mg_fetch_sync_on */
	size_t body_len;
	long timeout_ms;         /* whole request; default 10 s; -1: none (streams) */
	long connect_timeout_ms; /* default: 5 s, or timeout_ms when shorter */
	int http_version;        /* enum mg_fetch_http_version */
	size_t max_bytes;        /* response body; default 1 MiB */
	bool allow_private;      /* loopback and private ranges may be connected to */
	const char *ca_file;     /* PEM CA bundle trusted instead of the default; NULL: default */
};

struct mg_fetch_result {
	long status;      /* HTTP status, 0 when no response */
	const char *body; /* NUL-terminated; valid during the callback */
	size_t len;
	const char *error; /* NULL on a complete response (any status) */
};

typedef void (*mg_fetch_fn)(const struct mg_fetch_result *res, void *arg);

/* One per event loop. Cheap: libcurl is not touched until
 * mg_fetcher_prepare. NULL when out of memory. */
struct mg_fetcher *mg_fetcher_new(struct event_base *base);

/* Loads and initialises libcurl (once per process, from the loop's thread)
 * and sets up `f` for transfers. Call it when a configuration needs
 * outgoing HTTP, so a missing or unusable libcurl is reported when the
 * configuration is loaded instead of at the first fetch. Returns 0 (also
 * when already prepared), or -1 with a reason in `err` such as
 * "cannot load libcurl.so.4: <dlerror>"; a later call tries again. */
int mg_fetcher_prepare(struct mg_fetcher *f, char *err, size_t err_size);

/* Loads libcurl as mg_fetcher_prepare does and returns its version
 * ("7.88.1", static), or NULL with the reason in `err`. */
const char *mg_fetch_curl_version(char *err, size_t err_size);

/* Cancels every fetch in progress (no callbacks) and frees. */
void mg_fetcher_free(struct mg_fetcher *f);

/* Starts a fetch (preparing `f` first if needed); `cb` is called exactly
 * once, later, from the loop (never from inside this call), unless the fetch
 * is cancelled. Returns NULL (and calls nothing) when the URL is refused,
 * libcurl cannot be loaded or resources are exhausted, with a reason in
 * `err`. */
struct mg_fetch *mg_fetch_start(struct mg_fetcher *f, const struct mg_fetch_opts *o, mg_fetch_fn cb,
                                void *arg, char *err, size_t err_size);

/* Stops a fetch; its callback will not be called. Safe from inside the
 * fetch's own stream callbacks (the fetch is freed when they return). */
void mg_fetch_cancel(struct mg_fetch *h);

/* A streaming transfer: the body is handed over as it arrives, for an SSE
 * response or a large one. Callbacks run from the loop, never from inside
 * curl or mg_fetch_stream_start. A callback returning non-zero stops the
 * transfer (nothing more is called, not even on_end). */
struct mg_fetch_stream {
	/* The final response head arrived: `status`; mg_fetch_header reads
	 * its headers (during this and later callbacks). */
	int (*on_head)(struct mg_fetch *h, long status, void *arg);
	/* Body bytes, in order. When the reader is slower than the server,
	 * at most 256 KiB are buffered and then the transfer is paused. */
	int (*on_body)(struct mg_fetch *h, const char *p, size_t n, void *arg);
	/* The transfer ended: `error` is NULL after a complete response (any
	 * status), else the reason (refused address, timeout, reset...). The
	 * fetch is freed after this returns. */
	void (*on_end)(struct mg_fetch *h, const char *error, void *arg);
};

/* Starts a streaming transfer (`cbs` must outlive it; o->max_bytes is not
 * applied: the reader bounds what it keeps). NULL with `err` when it cannot
 * start. */
struct mg_fetch *mg_fetch_stream_start(struct mg_fetcher *f, const struct mg_fetch_opts *o,
                                       const struct mg_fetch_stream *cbs, void *arg, char *err,
                                       size_t err_size);

/* Pauses (or resumes) reading a streaming transfer's answer: the server
 * is then held by TCP flow control. Not from inside curl (stream
 * callbacks are fine: they run outside it). */
void mg_fetch_pause(struct mg_fetch *h, bool pause);

/* Why a finished transfer failed (in on_end), for callers that word their
 * own errors. */
enum mg_fetch_failure {
	MG_FETCH_FAIL_NONE,
	MG_FETCH_FAIL_CONNECT,  /* name resolution or connection refused / unreachable */
	MG_FETCH_FAIL_TIMEOUT,  /* connect or transfer timeout */
	MG_FETCH_FAIL_TLS,      /* handshake or certificate verification */
	MG_FETCH_FAIL_BLOCKED,  /* the SSRF rule refused the address */
	MG_FETCH_FAIL_TOO_BIG,  /* over max_bytes */
	MG_FETCH_FAIL_TRANSFER, /* reset, malformed response, ... */
};
enum mg_fetch_failure mg_fetch_failure(const struct mg_fetch *h);

/* Resolves `ref` (absolute, or relative to `base`) into `out`. Returns 0;
 * -2 when the result is on another origin (scheme, host or port) than
 * `base`; -1 when either does not parse or `out` is too small. libcurl
 * must be loaded (a prepared fetcher). */
int mg_fetch_resolve_url(const char *base, const char *ref, char *out, size_t size);

/* A response header of a streaming transfer (the last one of that name),
 * copied into `out`. false when absent or longer than `size` - 1. */
bool mg_fetch_header(struct mg_fetch *h, const char *name, char *out, size_t size);

/* Loads and initialises libcurl (as mg_fetcher_prepare does) without a
 * fetcher: call it from the main thread before a worker thread uses
 * mg_fetch_sync_on. Returns 0 or -1 with `err`. */
int mg_fetch_load(char *err, size_t err_size);

struct mg_fetch_sync_result {
	long status;           /* HTTP status, 0 when no response */
	long retry_after_secs; /* Retry-After in seconds, -1 when absent */
	struct mg_buf body;    /* the response body (free with mg_fetch_sync_result_free) */
	char error[256];       /* set when mg_fetch_sync_on returns -1 */
};

/* A blocking fetch, for worker threads only (audit and OTLP export): never
 * call it on the event loop. Same rules as mg_fetch_start (schemes, SSRF at
 * connect time, no redirects, time and size bounds); libcurl must have been
 * loaded by mg_fetch_load. The body is borrowed, not copied. Returns 0 when
 * a response arrived (any status), -1 with r->error otherwise. Release `r`
 * with mg_fetch_sync_result_free in both cases.
 *
 * `s` keeps the connection between calls: the exporters post a batch every
 * few hundred milliseconds to the same URL, and a new TCP (and TLS)
 * connection for each cost more than the batch's bytes. A connection is
 * opened (and the SSRF rule applied, at connect time) only when there is
 * none to reuse or the peer closed it. A session is used by one thread at a
 * time; with `s` NULL (out of memory at mg_fetch_session_new) the call uses
 * a connection of its own. */
struct mg_fetch_session;
struct mg_fetch_session *mg_fetch_session_new(void);
int mg_fetch_sync_on(struct mg_fetch_session *s, const struct mg_fetch_opts *o,
                     struct mg_fetch_sync_result *r);
void mg_fetch_sync_result_free(struct mg_fetch_sync_result *r);
void mg_fetch_session_free(struct mg_fetch_session *s);

/* The SSRF classes of an address. */
enum mg_addr_class {
	MG_ADDR_PUBLIC,    /* always allowed */
	MG_ADDR_PRIVATE,   /* loopback, RFC 1918, CGNAT, unique local: when allowed */
	MG_ADDR_FORBIDDEN, /* link-local, metadata, unspecified, multicast, reserved */
};
enum mg_addr_class mg_fetch_classify(const struct sockaddr *sa);

/* true when the gateway may connect to `sa` under the SSRF rule. */
bool mg_fetch_address_allowed(const struct sockaddr *sa, bool allow_private);

#endif
