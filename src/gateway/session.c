/*
 * session.c - legacy MCP sessions, SSE streams and the replay ring.
 *
 * Session ids are 128 random bits (getrandom) in hex, bound to the identity
 * that created them; they are looked up in a hash table and are never an
 * authentication by themselves. Each session buffers what it could not
 * deliver on its GET stream in a bounded ring (server.sse_replay_events)
 * so a client reconnecting with Last-Event-ID misses nothing; a client that
 * does not read its stream is cut off (mg_stream_send fails), never the
 * upstream. Every SSE stream sends a keep-alive comment when idle.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "gateway/internal.h"
#include "mcp/sse.h"
#include "util/clock.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/str.h"

static uint64_t hash_id(const char *id)
{
	uint64_t h = 1469598103934665603ull;
	for (; *id; id++) {
		h ^= (unsigned char)*id;
		h *= 1099511628211ull;
	}
	return h;
}

static int grow_table(struct mg_gateway *gw)
{
	size_t n = gw->nbuckets ? gw->nbuckets * 2 : 256;
	struct mg_session **b = calloc(n, sizeof *b);
	if (!b)
		return -1;
	for (size_t i = 0; i < gw->nbuckets; i++) {
		struct mg_session *s = gw->buckets[i], *next;
		for (; s; s = next) {
			next = s->next;
			size_t k = hash_id(s->id) & (n - 1);
			s->prev = NULL;
			s->next = b[k];
			if (b[k])
				b[k]->prev = s;
			b[k] = s;
		}
	}
	free(gw->buckets);
	gw->buckets = b;
	gw->nbuckets = n;
	return 0;
}

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
	struct mg_session *s = arg;
	(void)fd;
	(void)what;
	if (s->init_req) {
		mg_log_warn("session %.8s…: the upstream did not finish initialize in time", s->id);
		mg_session_end(s, "the upstream did not answer initialize in time", MG_ET_TIMEOUT);
		return;
	}
	if (s->legacy_sse && !s->get.req) {
		mg_session_end(s, "the SSE stream closed", MG_ET_NONE);
		return;
	}
	if (s->ch && s->ch->state == MG_CH_CLOSED) {
		/* The remote server forgot the session (HTTP 404). */
		mg_session_end(s, "the upstream session ended", MG_ET_UPSTREAM_CLOSED);
		return;
	}
	if (!s->initialized && !s->n_exchanges && !s->get.req && s->ch &&
	    s->ch->state != MG_CH_READY) {
		mg_session_end(s, "the upstream could not be started", MG_ET_UNAVAILABLE);
		return;
	}
	if (s->n_exchanges || s->get.req) {
		/* Busy or listening: not idle. */
		mg_session_touch(s);
		return;
	}
	mg_log_info("session %.8s… idle for %llds; ended", s->id,
	            (long long)s->gw->cfg->server.session_idle_timeout_secs);
	mg_session_end(s, "idle timeout", MG_ET_NONE);
}

/* session_start / session_end: the identity is the session's binding key
 * ("provider:id"); the session id itself is a bearer value and is never
 * recorded, only its first 8 characters. */
static void audit_session(struct mg_session *s, enum mg_audit_type type, int success,
                          const char *why)
{
	const char *colon = s->identity ? strchr(s->identity, ':') : NULL;
	char provider[32] = "", msg[300];
	if (colon)
		snprintf(provider, sizeof provider, "%.*s",
		         (int)((size_t)(colon - s->identity) < sizeof provider
		                   ? (size_t)(colon - s->identity)
		                   : sizeof provider - 1),
		         s->identity);
	snprintf(msg, sizeof msg, "session %.8s…%s%s", s->id, why ? ": " : "", why ? why : "");
	struct mg_audit_event ev = {
		.type = type,
		.identity = colon ? colon + 1 : s->identity,
		.provider = provider,
		.server = s->route->name,
		.success = success,
		.message = msg,
		.duration_ms = type == MG_AUDIT_SESSION_END
		                   ? (int64_t)((mg_now_us() - s->created_us) / 1000)
		                   : -1,
	};
	mg_audit_emit(s->gw->audit, &ev);
}

struct mg_session *mg_session_new(struct mg_gateway *gw, struct mg_route *route,
                                  const char *identity)
{
	if (gw->nsessions >= (size_t)gw->cfg->server.max_sessions)
		return NULL;
	if (gw->nsessions + 1 > gw->nbuckets && grow_table(gw) < 0)
		return NULL;
	struct mg_session *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	uint8_t raw[16];
	if (mg_random_bytes(raw, sizeof raw) < 0) {
		free(s);
		return NULL;
	}
	for (size_t i = 0; i < sizeof raw; i++)
		snprintf(s->id + 2 * i, 3, "%02x", raw[i]);
	s->gw = gw;
	s->route = route;
	s->up = route->up;
	s->identity = mg_strdup(identity);
	s->log_level = -1;
	s->ring_cap = (size_t)gw->cfg->server.sse_replay_events;
	/* The ring is allocated by the first event: most sessions never get one,
	 * and 10,000 idle sessions must not cost 10,000 full rings. */
	s->idle = evtimer_new(gw->base, on_idle, s);
	s->next_stream = 1;
	size_t k = hash_id(s->id) & (gw->nbuckets - 1);
	s->next = gw->buckets[k];
	if (s->next)
		s->next->prev = s;
	gw->buckets[k] = s;
	gw->nsessions++;
	mg_session_touch(s);
	s->created_us = mg_now_us();
	if (gw->audit)
		audit_session(s, MG_AUDIT_SESSION_START, 1, NULL);
	return s;
}

struct mg_session *mg_session_find(struct mg_gateway *gw, const char *id)
{
	if (!gw->nbuckets || strlen(id) != MG_SESSION_ID_LEN)
		return NULL;
	for (struct mg_session *s = gw->buckets[hash_id(id) & (gw->nbuckets - 1)]; s; s = s->next) {
		/* Constant time, so probing reveals nothing about stored ids. */
		if (mg_ct_equal(s->id, id, MG_SESSION_ID_LEN))
			return s->ended ? NULL : s;
	}
	return NULL;
}

void mg_session_touch(struct mg_session *s)
{
	const struct mg_config *cfg = s->gw->cfg;
	long secs = (long)cfg->server.session_idle_timeout_secs;
	if (s->ch && s->up && s->up->cfg->idle_timeout_secs < secs)
		secs = (long)s->up->cfg->idle_timeout_secs;
	struct timeval tv = { .tv_sec = secs, .tv_usec = 0 };
	evtimer_add(s->idle, &tv);
}

/* Makes room for one more event without evicting, while the ring is below
 * its cap. Until the ring is full nothing was evicted, so ring_head is 0 and
 * the events are in order from slot 0: realloc keeps them in place. */
static void ring_grow(struct mg_session *s)
{
	if (s->ring_len < s->ring_alloc || s->ring_alloc >= s->ring_cap)
		return;
	size_t n = s->ring_alloc ? s->ring_alloc * 2 : 8;
	if (n > s->ring_cap)
		n = s->ring_cap;
	struct mg_replay *r = realloc(s->ring, n * sizeof *r);
	if (!r) {
		/* Keep what fits: the ring stops growing here. */
		s->ring_cap = s->ring_alloc;
		return;
	}
	s->ring = r;
	s->ring_alloc = n;
}

static void ring_push(struct mg_session *s, uint64_t seq, const char *json, size_t len)
{
	ring_grow(s);
	if (!s->ring_alloc)
		return;
	size_t slot;
	if (s->ring_len == s->ring_alloc) {
		slot = s->ring_head;
		free(s->ring[slot].text);
		s->ring_head = (s->ring_head + 1) % s->ring_alloc;
	} else {
		slot = (s->ring_head + s->ring_len) % s->ring_alloc;
		s->ring_len++;
	}
	s->ring[slot].seq = seq;
	s->ring[slot].text = mg_strndup(json, len);
	s->ring[slot].len = s->ring[slot].text ? len : 0;
}

void mg_session_deliver(struct mg_session *s, const char *json, size_t len)
{
	/* Every GET-stream message gets the next sequence number and goes into
	 * the ring, sent or not, so any reconnect can resume after what it saw. */
	uint64_t seq = ++s->get.seq;
	ring_push(s, seq, json, len);
	if (!s->get.req)
		return;
	char id[48];
	snprintf(id, sizeof id, "0_%llu", (unsigned long long)seq);
	struct mg_buf b;
	mg_buf_init(&b, 0);
	mg_sse_encode(&b, id, NULL, json, len);
	if (mg_http_stream_send(s->get.req, b.data, b.len) < 0)
		mg_stream_detach(&s->get);
	mg_buf_free(&b);
}

static void on_get_close(struct mg_http_req *req, void *arg)
{
	struct mg_session *s = arg;
	(void)req;
	mg_stream_detach(&s->get);
	if (s->legacy_sse) {
		/* The 2024-11-05 transport has no reconnection: the stream was the
		 * session. End it on the next loop turn (not inside the close). */
		struct timeval now = { 0, 0 };
		evtimer_add(s->idle, &now);
		return;
	}
	mg_session_touch(s);
}

void mg_session_open_get(struct mg_session *s, struct mg_http_req *req, const char *last_event_id)
{
	uint64_t after = 0;
	bool resume = false;
	if (last_event_id) {
		/* Our ids are "<stream>_<seq>"; only the GET stream (0) replays. */
		unsigned long long stream, seq;
		char tail;
		if (sscanf(last_event_id, "%llu_%llu%c", &stream, &seq, &tail) == 2 &&
		    stream == 0) {
			after = seq;
			resume = true;
		}
	}
	if (s->get.req) {
		/* One GET stream per session: the newer connection wins. */
		struct mg_http_req *old = s->get.req;
		mg_http_req_on_close(old, NULL, NULL);
		mg_stream_end(&s->get);
	}
	uint64_t seq = s->get.seq;
	mg_stream_begin(&s->get, s->gw, req, 0, NULL, 0);
	s->get.seq = seq;
	mg_http_req_on_close(req, on_get_close, s);
	if (!resume) {
		mg_stream_prime(&s->get);
		return;
	}
	for (size_t i = 0; i < s->ring_len && s->get.req; i++) {
		struct mg_replay *r = &s->ring[(s->ring_head + i) % s->ring_alloc];
		if (r->seq <= after || !r->text)
			continue;
		char id[48];
		snprintf(id, sizeof id, "0_%llu", (unsigned long long)r->seq);
		struct mg_buf b;
		mg_buf_init(&b, 0);
		mg_sse_encode(&b, id, NULL, r->text, r->len);
		if (mg_http_stream_send(s->get.req, b.data, b.len) < 0)
			mg_stream_detach(&s->get);
		mg_buf_free(&b);
	}
	/* Primed after the replay, so ids on the stream never go backwards. */
	mg_stream_prime(&s->get);
}

static void free_session(struct mg_session *s)
{
	struct mg_gateway *gw = s->gw;
	if (s->prev)
		s->prev->next = s->next;
	else
		gw->buckets[hash_id(s->id) & (gw->nbuckets - 1)] = s->next;
	if (s->next)
		s->next->prev = s->prev;
	gw->nsessions--;
	for (size_t i = 0; i < s->ring_len; i++)
		free(s->ring[(s->ring_head + i) % s->ring_alloc].text);
	free(s->ring);
	if (s->idle)
		event_free(s->idle);
	json_decref(s->subscriptions);
	json_decref(s->init_id);
	json_decref(s->client_info);
	json_decref(s->client_caps);
	free(s->identity);
	free(s);
}

void mg_session_end(struct mg_session *s, const char *why, int32_t error)
{
	if (s->ended)
		return;
	s->ended = true;
	mg_obs_session_end(s, error);
	mg_log_debug("session %.8s… ended: %s", s->id, why);
	if (s->gw->audit)
		audit_session(s, MG_AUDIT_SESSION_END, -1, why);
	/* The exchanges answer their clients and remove themselves. */
	while (s->exchanges) {
		struct mg_exchange *x = s->exchanges;
		mg_exchange_abort(x, MG_RPC_INTERNAL_ERROR, why);
	}
	if (s->init_req) {
		mg_http_req_on_close(s->init_req, NULL, NULL);
		mg_reply_rpc_error(s->init_req, 503, s->init_id, MG_RPC_INTERNAL_ERROR, why, NULL);
		s->init_req = NULL;
	}
	if (s->get.req) {
		mg_http_req_on_close(s->get.req, NULL, NULL);
		mg_stream_end(&s->get);
	}
	if (s->ch) {
		s->up->ops->close(s->up, s->ch);
		s->ch = NULL;
	}
	mg_mcp_session_ended(s);
	free_session(s);
}

static void on_init_client_close(struct mg_http_req *req, void *arg)
{
	struct mg_session *s = arg;
	(void)req;
	s->init_req = NULL;
	/* Nobody is waiting for this session any more. */
	struct timeval now = { 0, 0 };
	evtimer_add(s->idle, &now);
}

void mg_session_init_wait(struct mg_session *s, struct mg_http_req *req)
{
	mg_http_req_on_close(req, on_init_client_close, s);
	struct timeval tv = { .tv_sec = s->gw->cfg->server.request_timeout_secs, .tv_usec = 0 };
	evtimer_add(s->idle, &tv);
}

/* ---- streams ------------------------------------------------------------------------ */

static void on_keepalive(evutil_socket_t fd, short what, void *arg)
{
	struct mg_stream *st = arg;
	(void)fd;
	(void)what;
	if (!st->req)
		return;
	static const char ka[] = ": keep-alive\n\n";
	if (mg_http_stream_send(st->req, ka, sizeof ka - 1) < 0)
		mg_stream_detach(st);
}

void mg_stream_begin(struct mg_stream *st, struct mg_gateway *gw, struct mg_http_req *req,
                     uint64_t number, const struct mg_http_hdr *extra, size_t n_extra)
{
	struct mg_http_hdr h[8];
	size_t n = 0;
	h[n++] = (struct mg_http_hdr){ "Cache-Control", "no-cache, no-transform" };
	h[n++] = (struct mg_http_hdr){ "X-Accel-Buffering", "no" };
	for (size_t i = 0; i < n_extra && n < 8; i++)
		h[n++] = extra[i];
	st->gw = gw;
	st->req = req;
	st->number = number;
	st->seq = 0;
	mg_http_stream_begin(req, 200, "text/event-stream", h, n);
	if (!st->keepalive)
		st->keepalive = event_new(gw->base, -1, EV_PERSIST, on_keepalive, st);
	struct timeval tv = { .tv_sec = gw->cfg->server.sse_keepalive_secs, .tv_usec = 0 };
	event_add(st->keepalive, &tv);
}

void mg_stream_prime(struct mg_stream *st)
{
	/* An event with an id and empty data is not dispatched by SSE clients
	 * but sets their Last-Event-ID, so even a stream cut before its first
	 * message can be resumed (2025-11-25, SEP-1699). */
	if (!st->req)
		return;
	char ev[96];
	int n =
	    snprintf(ev, sizeof ev, "id: %llu_%llu\nretry: %d\ndata: \n\n",
	             (unsigned long long)st->number, (unsigned long long)st->seq, MG_SSE_RETRY_MS);
	if (mg_http_stream_send(st->req, ev, (size_t)n) < 0)
		mg_stream_detach(st);
}

int mg_stream_send(struct mg_stream *st, const char *json, size_t len)
{
	if (!st->req)
		return -1;
	struct mg_buf b;
	mg_buf_init(&b, 0);
	if (st->number) {
		char id[48];
		snprintf(id, sizeof id, "%llu_%llu", (unsigned long long)st->number,
		         (unsigned long long)++st->seq);
		mg_sse_encode(&b, id, NULL, json, len);
	} else {
		mg_sse_encode(&b, NULL, NULL, json, len);
	}
	int rc = mg_http_stream_send(st->req, b.data, b.len);
	mg_buf_free(&b);
	if (rc < 0) {
		mg_stream_detach(st);
		return -1;
	}
	return 0;
}

void mg_stream_detach(struct mg_stream *st)
{
	st->req = NULL;
	if (st->keepalive) {
		event_free(st->keepalive);
		st->keepalive = NULL;
	}
}

void mg_stream_end(struct mg_stream *st)
{
	struct mg_http_req *req = st->req;
	mg_stream_detach(st);
	if (req)
		mg_http_stream_end(req);
}
