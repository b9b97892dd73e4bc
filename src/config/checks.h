/*
 * checks.h - cross-field rules of each configuration section, run by the
 * schema decoder after the section's own fields decoded (see schema.h).
 */
#ifndef MG_CONFIG_CHECKS_H
#define MG_CONFIG_CHECKS_H

#include <stdbool.h>

#include "config/schema.h"

void mg_check_tls(struct mg_decode *dc, void *obj, const struct mg_cnode *node, const char *path);
void mg_check_server(struct mg_decode *dc, void *obj, const struct mg_cnode *node,
                     const char *path);
void mg_check_auth(struct mg_decode *dc, void *obj, const struct mg_cnode *node, const char *path);
void mg_check_jwt(struct mg_decode *dc, void *obj, const struct mg_cnode *node, const char *path);
void mg_check_oauth(struct mg_decode *dc, void *obj, const struct mg_cnode *node, const char *path);
void mg_check_mtls(struct mg_decode *dc, void *obj, const struct mg_cnode *node, const char *path);
void mg_check_rate_limit(struct mg_decode *dc, void *obj, const struct mg_cnode *node,
                         const char *path);
void mg_check_audit(struct mg_decode *dc, void *obj, const struct mg_cnode *node, const char *path);
void mg_check_metrics(struct mg_decode *dc, void *obj, const struct mg_cnode *node,
                      const char *path);
/* Splits "host:port" or "[v6]:port" (port 1..65535) into `host` (no
 * brackets) and `port`. Returns 0, or -1 when it is not that form. */
int mg_hostport_split(const char *s, char *host, size_t host_size, int *port);
/* The host (no brackets) and port of an http(s) URL's authority,
 * "scheme://[userinfo@]host[:port]...", the port defaulting to the
 * scheme's (80, 443). Returns 0, or -1 when it does not read so. */
int mg_url_host_port(const char *url, char *host, size_t host_size, int *port);
void mg_check_tracing(struct mg_decode *dc, void *obj, const struct mg_cnode *node,
                      const char *path);
void mg_check_upstream_entry(struct mg_decode *dc, void *obj, const struct mg_cnode *node,
                             const char *path);
void mg_check_upstream(struct mg_decode *dc, void *obj, const struct mg_cnode *node,
                       const char *path);
void mg_check_root(struct mg_decode *dc, void *obj, const struct mg_cnode *node, const char *path);

/* true when `s` is an IPv4/IPv6 address or CIDR block (a.b.c.d/n, x::y/n). */
bool mg_check_cidr_ok(const char *s);

/* true when `host` is a loopback address or "localhost". */
bool mg_host_is_loopback(const char *host);

#endif
