/*
 * jwks.h - a JWKS endpoint's keys, cached: fetched at start, refreshed every
 * cache_duration_secs, refetched early when a token names an unknown `kid`
 * (at most once per MG_JWKS_MIN_REFETCH_SECS, so an unknown-kid flood
 * cannot hammer the IdP), and kept while the IdP is unreachable (stale
 * keys beat no keys). Fetches run on the event loop through the
 * non-blocking client (http/client.h); requests that must wait for keys
 * register a waiter.
 */
#ifndef MG_AUTH_JWKS_H
#define MG_AUTH_JWKS_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/jwt.h"

#define MG_JWKS_MIN_REFETCH_SECS 30
#define MG_JWKS_MAX_BYTES        (256 * 1024)

struct mg_fetcher;
struct mg_jwks;

struct mg_jwks_waiter {
	struct mg_jwks_waiter *prev, *next;
	void (*ready)(struct mg_jwks_waiter *w); /* a fetch finished (keys may be unchanged) */
};

/* `allow_private`: the SSRF rule lets the fetch reach loopback and private
 * addresses (see http/client.h). */
struct mg_jwks *mg_jwks_new(struct event_base *base, struct mg_fetcher *fetcher, const char *url,
                            int64_t cache_secs, bool allow_private);
void mg_jwks_free(struct mg_jwks *j);

/* The cache is shared by successive auth contexts (reloads) while the URL
 * stays the same: references. mg_jwks_free drops one. */
struct mg_jwks *mg_jwks_ref(struct mg_jwks *j);

/* The URL it fetches. */
const char *mg_jwks_url(const struct mg_jwks *j);
bool mg_jwks_allow_private(const struct mg_jwks *j);

/* The current keys (borrowed; NULL before the first successful fetch). */
struct mg_jwk_set *mg_jwks_keys(struct mg_jwks *j);

/* Changes each time the key set is replaced. */
uint64_t mg_jwks_generation(const struct mg_jwks *j);

/* true while a fetch is in flight. */
bool mg_jwks_fetching(const struct mg_jwks *j);

/* true when the last fetch failed (the keys, if any, are stale). */
bool mg_jwks_failing(const struct mg_jwks *j);

/* Asks for a refetch because of an unknown kid. Returns true when a fetch
 * is (now) in flight and worth waiting for, false when the rate limit says
 * no. `now` in Unix seconds. */
bool mg_jwks_refresh_for_kid(struct mg_jwks *j, int64_t now);

/* Registers / removes a waiter for the end of the fetch in flight. */
void mg_jwks_wait(struct mg_jwks *j, struct mg_jwks_waiter *w);
void mg_jwks_unwait(struct mg_jwks *j, struct mg_jwks_waiter *w);

/* Counters. */
uint64_t mg_jwks_fetches(const struct mg_jwks *j);
uint64_t mg_jwks_errors(const struct mg_jwks *j);

#endif
