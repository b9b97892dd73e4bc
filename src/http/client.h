/*
 * client.h - outgoing HTTP requests (JWKS, later introspection, audit and
 * OTLP export, HTTP upstreams) with libcurl's multi-socket API driven by the
 * gateway's libevent loop: nothing blocks, name resolution included
 * (curl's threaded resolver).
 *
 * Every fetch is bounded (time, response size), uses http or https only,
 * never follows redirects, and applies the SSRF rule at connect time:
 * addresses that are link-local (169.254.0.0/16 with the cloud metadata
 * service, fe80::/10), unspecified, multicast or reserved are refused unless
 * the URL names such an address literally - so a DNS name cannot be made to
 * point the gateway at the metadata service. Private and loopback addresses
 * are allowed (IdPs and upstreams inside the network are normal).
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

struct mg_fetcher;
struct mg_fetch;

struct mg_fetch_opts {
	const char *url;
	const char *method;         /* "GET" (default) or "POST" */
	const char *const *headers; /* "Name: value" lines */
	size_t n_headers;
	const char *body; /* copied (POST) */
	size_t body_len;
	long timeout_ms;  /* whole request; default 10 s */
	size_t max_bytes; /* response body; default 1 MiB */
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

/* Stops a fetch; its callback will not be called. */
void mg_fetch_cancel(struct mg_fetch *h);

/* Classifies an address for the SSRF rule: true when the gateway may
 * connect to it. `literal` says whether the URL named this address itself. */
bool mg_fetch_address_allowed(const struct sockaddr *sa, bool literal);

#endif
