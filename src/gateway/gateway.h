/*
 * gateway.h - the gateway process: one event loop serving the MCP endpoint
 * and health endpoints in front of the configured upstreams.
 */
#ifndef MG_GATEWAY_GATEWAY_H
#define MG_GATEWAY_GATEWAY_H

#include "config/config.h"

/* Runs the gateway until SIGTERM/SIGINT and a graceful shutdown. `cfg` is
 * borrowed and must outlive the call. Returns a process exit code
 * (0 after a clean shutdown, 3 when it cannot start). */
int mg_gateway_run(const struct mg_config *cfg);

/* Starts each upstream (or only the one named `only`, when not NULL),
 * performs the handshake, lists its tools and prints a line per upstream;
 * stops everything. `timeout_secs` bounds each upstream. Returns 0 when all
 * answered, 1 otherwise, 2 when no upstream is named `only`. */
int mg_gateway_check_upstreams(const struct mg_config *cfg, int timeout_secs, const char *only);

#endif
