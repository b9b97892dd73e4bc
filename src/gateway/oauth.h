/*
 * oauth.h - the gateway's OAuth HTTP endpoints (src/gateway/oauth.c): the
 * login flow GET /oauth/authorize and GET /oauth/callback.
 */
#ifndef MG_GATEWAY_OAUTH_H
#define MG_GATEWAY_OAUTH_H

#include <stdbool.h>

struct mg_gateway;
struct mg_http_req;

/* Answers `req` when `path` is one of the OAuth endpoints (returns true);
 * false: not an OAuth path, the caller routes it. */
bool mg_oauth_route(struct mg_gateway *gw, struct mg_http_req *req, const char *path);

/* Cancels token exchanges in flight and frees the login state (gateway
 * shutdown; call before the fetcher is freed). */
void mg_oauth_gw_free(struct mg_gateway *gw);

#endif
