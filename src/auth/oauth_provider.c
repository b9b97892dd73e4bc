/*
 * oauth_provider.c - opaque bearer tokens validated by the authorization
 * server: RFC 7662 introspection when introspection_url is set (preferred:
 * it says whether the token is active, for whom, until when, with which
 * scopes), else the userinfo endpoint (GitHub, Google).
 *
 * Last in the chain (mTLS → API key → JWT → OAuth): it sees the bearer
 * tokens the others did not accept. A lookup runs on the event loop through
 * http/client.c (SSRF rule with [auth.oauth].allow_private_networks, no
 * redirects, 5 s, 64 KiB); the request waits (MG_AUTH_AGAIN) and resumes
 * when the answer is in. Concurrent requests with the same token share one
 * lookup; answers are cached by the token's SHA-256 (oauth_token.c), so a
 * client calling in a loop costs one introspection per cache period.
 *
 * The token goes only to the authorization server that issued it, in the
 * introspection body or the userinfo Authorization header; buffers that
 * held it are wiped; it is never logged (reasons name the outcome only).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/internal.h"
#include "auth/oauth.h"
#include "auth/oauth_issuer.h"
#include "http/client.h"
#include "util/log.h"
#include "util/str.h"

#define MAX_TOKEN_BYTES 4096
#define CACHE_SLOTS     4096 /* power of two */
#define MAX_LOOKUPS     256  /* introspection calls in flight */
#define MAX_WAITERS     1024 /* requests waiting for one lookup */

struct oauth_provider;

/* One call to the authorization server about one token. */
struct lookup {
	struct lookup *prev, *next;
	struct oauth_provider *op;
	uint8_t hash[MG_SHA256_LEN];
	struct mg_fetch *fetch;
	struct mg_auth_wait *waiters; /* linked by prev/next */
	size_t n_waiters;
};

struct oauth_provider {
	struct mg_auth_provider base;
	const struct mg_oauth_config *cfg;
	struct mg_oauth_cache *cache;
	struct lookup *lookups;
	size_t n_lookups;
	char *basic;                    /* "Authorization: Basic …" for introspection */
	struct mg_oauth_issuer *issuer; /* authorization_server = true: the gateway's own tokens */
	char issuer_url[512];
};

static struct oauth_provider *op_of(struct mg_auth_provider *p)
{
	return (struct oauth_provider *)p;
}

static int64_t wall_now(void)
{
	return (int64_t)time(NULL);
}

static void waiter_unlink(struct lookup *l, struct mg_auth_wait *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		l->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->lookup = NULL;
	l->n_waiters--;
}

static void waiter_link(struct lookup *l, struct mg_auth_wait *w)
{
	w->prev = NULL;
	w->next = l->waiters;
	if (l->waiters)
		l->waiters->prev = w;
	l->waiters = w;
	w->lookup = l;
	l->n_waiters++;
}

static void lookup_unlink(struct oauth_provider *op, struct lookup *l)
{
	if (l->prev)
		l->prev->next = l->next;
	else
		op->lookups = l->next;
	if (l->next)
		l->next->prev = l->prev;
	l->prev = l->next = NULL;
	op->n_lookups--;
}

static void on_answer(const struct mg_fetch_result *res, void *arg)
{
	struct lookup *l = arg;
	struct oauth_provider *op = l->op;
	struct mg_auth *a = mg_auth_ref(op->base.auth); /* resuming may drop the last waiter's */
	int64_t now = wall_now();
	struct mg_oauth_verdict v;
	if (res->error) {
		memset(&v, 0, sizeof v);
		v.status = MG_AUTH_UNAVAILABLE;
		snprintf(v.reason, sizeof v.reason, "oauth: %s unreachable: %.100s",
		         op->cfg->introspection_url ? "introspection" : "userinfo", res->error);
	} else if (op->cfg->introspection_url) {
		mg_oauth_introspection_verdict(op->cfg, res->status, res->body, res->len, now, &v);
	} else {
		mg_oauth_userinfo_verdict(op->cfg, res->status, res->body, res->len, now, &v);
	}
	if (v.status == MG_AUTH_UNAVAILABLE)
		mg_log_warn("%s", v.reason);
	if (v.cache_until)
		mg_oauth_cache_put(op->cache, l->hash, v.identity, v.cache_until, now);
	l->fetch = NULL;
	lookup_unlink(op, l);
	struct mg_auth_wait *w;
	while ((w = l->waiters)) {
		waiter_unlink(l, w);
		struct mg_auth_outcome o = { .status = v.status };
		if (v.status == MG_AUTH_OK)
			o.identity = mg_identity_ref(v.identity);
		snprintf(o.reason, sizeof o.reason, "%s", v.reason);
		mg_auth_resume(w, &o);
	}
	mg_identity_unref(v.identity);
	free(l);
	mg_auth_unref(a);
}

/* Starts the call to the authorization server; NULL with `err`. */
static struct mg_fetch *ask(struct oauth_provider *op, const char *tok, size_t len,
                            struct lookup *l, char *err, size_t err_size)
{
	struct mg_fetch *f = NULL;
	struct mg_oauth_check_request rq;
	if (mg_oauth_check_request_init(&rq, op->cfg, tok, len) < 0) {
		snprintf(err, err_size, "out of memory");
		goto out;
	}
	struct mg_fetch_opts o;
	mg_oauth_check_request_opts(&rq, op->cfg, &o);
	f = mg_fetch_start(op->base.auth->fetcher, &o, on_answer, l, err, err_size);
out:
	mg_oauth_check_request_free(&rq);
	return f;
}

static enum mg_auth_status oauth_authenticate(struct mg_auth_provider *p,
                                              const struct mg_auth_request *r,
                                              struct mg_auth_outcome *out, struct mg_auth_wait *w)
{
	struct oauth_provider *op = op_of(p);
	size_t len = 0;
	const char *tok = mg_auth_bearer(r->authorization, &len);
	if (!tok)
		return MG_AUTH_DECLINED;
	if (len > MAX_TOKEN_BYTES) {
		snprintf(out->reason, sizeof out->reason, "oauth: token larger than %d bytes",
		         MAX_TOKEN_BYTES);
		return MG_AUTH_INVALID;
	}
	struct mg_identity *id;
	if (op->issuer) {
		/* The gateway's own tokens first: no network needed. */
		enum mg_auth_status st = mg_oauth_issuer_verify(
		    op->issuer, op->cfg, op->issuer_url, mg_auth_resource_url(p->auth), tok, len,
		    r->now, &id, out->reason, sizeof out->reason);
		if (st != MG_AUTH_DECLINED) {
			out->identity = id;
			return st;
		}
	}
	uint8_t hash[MG_SHA256_LEN];
	mg_sha256(tok, len, hash);
	switch (mg_oauth_cache_get(op->cache, hash, r->now, &id)) {
	case MG_OAUTH_HIT:
		out->identity = id;
		return MG_AUTH_OK;
	case MG_OAUTH_REFUSED:
		snprintf(out->reason, sizeof out->reason, "oauth: token refused (remembered)");
		return MG_AUTH_INVALID;
	default:
		break;
	}
	if (!w) {
		snprintf(out->reason, sizeof out->reason, "oauth: cannot wait for introspection");
		return MG_AUTH_UNAVAILABLE;
	}
	struct lookup *l = op->lookups;
	while (l && memcmp(l->hash, hash, MG_SHA256_LEN) != 0)
		l = l->next;
	if (l && l->n_waiters >= MAX_WAITERS) {
		snprintf(out->reason, sizeof out->reason,
		         "oauth: too many requests wait for one "
		         "token's introspection");
		return MG_AUTH_UNAVAILABLE;
	}
	if (!l) {
		if (op->n_lookups >= MAX_LOOKUPS) {
			snprintf(out->reason, sizeof out->reason,
			         "oauth: %d token checks already in flight", MAX_LOOKUPS);
			return MG_AUTH_UNAVAILABLE;
		}
		if (!(l = calloc(1, sizeof *l))) {
			snprintf(out->reason, sizeof out->reason, "out of memory");
			return MG_AUTH_UNAVAILABLE;
		}
		l->op = op;
		memcpy(l->hash, hash, MG_SHA256_LEN);
		char err[200] = "";
		if (!(l->fetch = ask(op, tok, len, l, err, sizeof err))) {
			snprintf(out->reason, sizeof out->reason,
			         "oauth: cannot check the token: %.120s", err);
			free(l);
			return MG_AUTH_UNAVAILABLE;
		}
		l->next = op->lookups;
		if (op->lookups)
			op->lookups->prev = l;
		op->lookups = l;
		op->n_lookups++;
	}
	free(w->token);
	if (!(w->token = mg_strndup(tok, len))) {
		snprintf(out->reason, sizeof out->reason, "out of memory");
		return MG_AUTH_UNAVAILABLE; /* the lookup goes on and fills the cache */
	}
	w->token_len = len;
	w->provider = p;
	waiter_link(l, w);
	return MG_AUTH_AGAIN;
}

static void oauth_cancel(struct mg_auth_provider *p, struct mg_auth_wait *w)
{
	(void)p;
	/* The lookup itself goes on: its answer fills the cache. */
	if (w->lookup)
		waiter_unlink(w->lookup, w);
}

static void oauth_free(struct mg_auth_provider *p)
{
	struct oauth_provider *op = op_of(p);
	/* Waiters hold a reference on the context: none are left here. */
	struct lookup *l = op->lookups;
	while (l) {
		struct lookup *next = l->next;
		mg_fetch_cancel(l->fetch);
		free(l);
		l = next;
	}
	mg_oauth_cache_free(op->cache);
	mg_oauth_issuer_unref(op->issuer);
	free(op);
}

static const struct mg_auth_provider_ops oauth_ops;

struct mg_oauth_issuer *mg_auth_oauth_issuer(const struct mg_auth *a)
{
	for (size_t i = 0; a && i < a->n_providers; i++) {
		if (a->providers[i]->ops == &oauth_ops)
			return ((struct oauth_provider *)a->providers[i])->issuer;
	}
	return NULL;
}

static const struct mg_auth_provider_ops oauth_ops = {
	.name = "oauth",
	.authenticate = oauth_authenticate,
	.cancel = oauth_cancel,
	.free = oauth_free,
};

struct mg_auth_provider *mg_auth_oauth_new(struct mg_auth *a, char *err, size_t err_size)
{
	const struct mg_oauth_config *c = &a->cfg->auth.oauth;
	struct oauth_provider *op = calloc(1, sizeof *op);
	if (!op || !(op->cache = mg_oauth_cache_new(CACHE_SLOTS))) {
		free(op);
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	op->base.ops = &oauth_ops;
	op->base.auth = a;
	op->cfg = c;
	const char *url = c->introspection_url ? c->introspection_url : c->userinfo_url;
	if (!url) {
		oauth_free(&op->base);
		snprintf(err, err_size, "[auth.oauth] needs introspection_url or userinfo_url");
		return NULL;
	}
	if (c->authorization_server) {
		/* A reload keeps the keys, clients and grants already issued. */
		op->issuer =
		    mg_oauth_issuer_ref(a->previous ? mg_auth_oauth_issuer(a->previous) : NULL);
		if (!op->issuer && !(op->issuer = mg_oauth_issuer_new(err, err_size))) {
			oauth_free(&op->base);
			return NULL;
		}
		/* A key file read again on reload: a new key rotates (the old one
		 * keeps validating until its tokens expire). */
		if (mg_oauth_issuer_set_keys(op->issuer, c->signing_key_file,
		                             c->previous_signing_key_file, (int64_t)time(NULL), err,
		                             err_size) < 0) {
			oauth_free(&op->base);
			return NULL;
		}
		mg_oauth_issuer_url(a->resource, op->issuer_url, sizeof op->issuer_url);
	}
	/* Loads libcurl now, so a gateway that cannot check tokens refuses to
	 * start (or to reload) instead of failing every request. */
	char cerr[300] = "no HTTP client";
	if (!a->fetcher || mg_fetcher_prepare(a->fetcher, cerr, sizeof cerr) < 0) {
		oauth_free(&op->base);
		snprintf(err, err_size, "[auth.oauth] %s: %s", url, cerr);
		return NULL;
	}
	return &op->base;
}
