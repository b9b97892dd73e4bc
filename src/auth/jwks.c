/*
 * jwks.c - cached JWKS (see jwks.h).
 */
#include "auth/jwks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/client.h"
#include "util/log.h"
#include "util/str.h"

#define RETRY_MIN_SECS 2
#define RETRY_MAX_SECS 300

struct mg_jwks {
	int refs;
	struct event_base *base;
	struct mg_fetcher *fetcher;
	char *url;
	int64_t cache_secs;
	bool allow_private;
	struct mg_jwk_set *keys;
	uint64_t generation;
	struct mg_fetch *inflight;
	struct event *timer;
	int64_t last_kid_refetch;
	int64_t retry_secs;
	bool failing;
	struct mg_jwks_waiter *waiters;
	uint64_t fetches, errors;
};

static void start_fetch(struct mg_jwks *j);

static void schedule(struct mg_jwks *j, int64_t secs)
{
	struct timeval tv = { .tv_sec = secs, .tv_usec = 0 };
	evtimer_add(j->timer, &tv);
}

static void wake_waiters(struct mg_jwks *j)
{
	/* Detach the list first: a waiter's callback may wait again. */
	struct mg_jwks_waiter *w = j->waiters;
	j->waiters = NULL;
	while (w) {
		struct mg_jwks_waiter *next = w->next;
		w->prev = w->next = NULL;
		w->ready(w);
		w = next;
	}
}

static void on_fetched(const struct mg_fetch_result *res, void *arg)
{
	struct mg_jwks *j = arg;
	j->inflight = NULL;
	char err[256] = "";
	struct mg_jwk_set *set = NULL;
	if (res->error)
		snprintf(err, sizeof err, "%s", res->error);
	else if (res->status != 200)
		snprintf(err, sizeof err, "HTTP status %ld", res->status);
	else
		set = mg_jwk_set_parse(res->body, res->len, err, sizeof err);
	if (set) {
		if (mg_jwk_set_skipped(set))
			mg_log_warn("jwks %s: %zu key(s) skipped as unusable", j->url,
			            mg_jwk_set_skipped(set));
		if (!j->keys || j->failing)
			mg_log_info("jwks %s: %zu key(s) loaded", j->url, mg_jwk_set_count(set));
		mg_jwk_set_unref(j->keys);
		j->keys = set;
		j->generation++;
		j->failing = false;
		j->retry_secs = RETRY_MIN_SECS;
		schedule(j, j->cache_secs);
	} else {
		j->errors++;
		if (!j->failing)
			mg_log_warn("jwks %s: fetch failed: %s%s", j->url, err,
			            j->keys ? " (keeping the keys already known)" : "");
		j->failing = true;
		schedule(j, j->retry_secs);
		j->retry_secs =
		    j->retry_secs * 2 > RETRY_MAX_SECS ? RETRY_MAX_SECS : j->retry_secs * 2;
	}
	wake_waiters(j);
}

static void start_fetch(struct mg_jwks *j)
{
	if (j->inflight)
		return;
	struct mg_fetch_opts o = {
		.url = j->url,
		.timeout_ms = 10000,
		.max_bytes = MG_JWKS_MAX_BYTES,
		.headers =
		    (const char *const[]){ "Accept: application/json, application/jwk-set+json" },
		.n_headers = 1,
		.allow_private = j->allow_private,
	};
	char err[256];
	j->fetches++;
	j->inflight = mg_fetch_start(j->fetcher, &o, on_fetched, j, err, sizeof err);
	if (!j->inflight) {
		j->errors++;
		j->failing = true;
		mg_log_warn("jwks %s: cannot fetch: %s", j->url, err);
		schedule(j, j->retry_secs);
		wake_waiters(j);
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	start_fetch(arg);
}

struct mg_jwks *mg_jwks_new(struct event_base *base, struct mg_fetcher *fetcher, const char *url,
                            int64_t cache_secs, bool allow_private)
{
	struct mg_jwks *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	j->refs = 1;
	j->base = base;
	j->fetcher = fetcher;
	j->url = mg_strdup(url);
	j->cache_secs = cache_secs;
	j->allow_private = allow_private;
	j->retry_secs = RETRY_MIN_SECS;
	j->timer = evtimer_new(base, on_timer, j);
	if (!j->url || !j->timer) {
		mg_jwks_free(j);
		return NULL;
	}
	start_fetch(j);
	return j;
}

struct mg_jwks *mg_jwks_ref(struct mg_jwks *j)
{
	if (j)
		j->refs++;
	return j;
}

bool mg_jwks_allow_private(const struct mg_jwks *j)
{
	return j->allow_private;
}

const char *mg_jwks_url(const struct mg_jwks *j)
{
	return j->url;
}

void mg_jwks_free(struct mg_jwks *j)
{
	if (!j || --j->refs > 0)
		return;
	mg_fetch_cancel(j->inflight);
	if (j->timer)
		event_free(j->timer);
	mg_jwk_set_unref(j->keys);
	free(j->url);
	free(j);
}

struct mg_jwk_set *mg_jwks_keys(struct mg_jwks *j)
{
	return j->keys;
}

uint64_t mg_jwks_generation(const struct mg_jwks *j)
{
	return j->generation;
}

bool mg_jwks_fetching(const struct mg_jwks *j)
{
	return j->inflight != NULL;
}

bool mg_jwks_failing(const struct mg_jwks *j)
{
	return j->failing;
}

bool mg_jwks_refresh_for_kid(struct mg_jwks *j, int64_t now)
{
	if (j->inflight)
		return true;
	if (now - j->last_kid_refetch < MG_JWKS_MIN_REFETCH_SECS)
		return false;
	j->last_kid_refetch = now;
	start_fetch(j);
	return j->inflight != NULL;
}

void mg_jwks_wait(struct mg_jwks *j, struct mg_jwks_waiter *w)
{
	w->prev = NULL;
	w->next = j->waiters;
	if (j->waiters)
		j->waiters->prev = w;
	j->waiters = w;
}

void mg_jwks_unwait(struct mg_jwks *j, struct mg_jwks_waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else if (j->waiters == w)
		j->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
}

uint64_t mg_jwks_fetches(const struct mg_jwks *j)
{
	return j->fetches;
}

uint64_t mg_jwks_errors(const struct mg_jwks *j)
{
	return j->errors;
}
