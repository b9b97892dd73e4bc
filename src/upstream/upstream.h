/*
 * upstream.h - an upstream MCP server as the gateway sees it.
 *
 * Every transport (stdio.c; http.c for Streamable HTTP and legacy SSE
 * servers) fills `struct mg_upstream_ops`; upstream.c holds what they share. An upstream's first channel is probed with
 * server/discover (unless `protocol = "legacy"`): a legacy server answers
 * with an error and is initialized on the same process, becoming the
 * *shared* channel; a server that supports 2026-07-28 becomes the *modern*
 * channel, and a second process is initialized for legacy sessions. The
 * shared channel serves every session in `shared` mode; modern requests go
 * to the modern channel when there is one and are bridged through the
 * shared channel otherwise. In `per_session` mode each legacy session also
 * gets a *dedicated* channel (its own process), initialized with the
 * client's own initialize params so sampling, elicitation, roots and
 * logging reach that client.
 */
#ifndef MG_UPSTREAM_UPSTREAM_H
#define MG_UPSTREAM_UPSTREAM_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>

#include "config/config.h"
#include "upstream/channel.h"

struct mg_upstream;

struct mg_upstream_hooks {
	/* A channel of the upstream became ready or went down. */
	void (*on_state)(struct mg_upstream *up, void *arg);
	/* A notification from the shared or the modern channel (`ch` says
	 * which) that no call claimed: list_changed, message, ... */
	void (*on_notification)(struct mg_upstream *up, struct mg_channel *ch, json_t *msg,
	                        void *arg);
	/* A legacy session with the server on channel `ch` (shared or
	 * dedicated) ended after `duration_us`: `error` when the server or the
	 * transport ended it, not the gateway (ch->init_result holds the
	 * version it negotiated). Optional. */
	void (*on_session_end)(struct mg_upstream *up, struct mg_channel *ch, uint64_t duration_us,
	                       bool error, void *arg);
	void *arg;
};

struct mg_upstream_ops {
	/* Starts the shared channel. Returns 0, or -1 with `err` (e.g. the
	 * command does not exist). */
	int (*start)(struct mg_upstream *up, char *err, size_t err_size);
	/* Opens a dedicated channel initialized with `init_params` (stolen),
	 * reporting to `hooks`, for the session of `identity` (borrowed;
	 * HTTP transports send that identity's upstream credentials). NULL
	 * with `err` when it cannot (limit reached, spawn failed). */
	struct mg_channel *(*open)(struct mg_upstream *up, json_t *init_params,
	                           const struct mg_channel_hooks *hooks, const char *identity,
	                           char *err, size_t err_size);
	/* For upstream.c: creates one of the upstream's own channels
	 * (gateway init params, `hooks`, probed when `probe`) and starts
	 * connecting it. NULL when out of memory. */
	struct mg_channel *(*own_open)(struct mg_upstream *up, const struct mg_channel_hooks *hooks,
	                               bool probe);
	/* For upstream.c: true when the channel's last failure was an answer
	 * from a live server (a refused initialize), not a lost transport. */
	bool (*own_alive)(struct mg_upstream *up, struct mg_channel *ch);
	/* For upstream.c, optional: one of the own channels became ready. */
	void (*own_ready)(struct mg_upstream *up, struct mg_channel *ch);
	/* Closes a dedicated channel: pending calls fail, hooks are no longer
	 * called, the process is stopped and freed in the background. */
	void (*close)(struct mg_upstream *up, struct mg_channel *ch);
	/* Adds transport details to a health object. */
	void (*health)(struct mg_upstream *up, json_t *out);
	/* Stops everything (shutdown). Completion: mg_upstream_idle(). */
	void (*stop)(struct mg_upstream *up);
	/* true when no process or connection is left. */
	bool (*idle)(struct mg_upstream *up);
	void (*free)(struct mg_upstream *up);
};

struct mg_upstream {
	const struct mg_upstream_ops *ops;
	const struct mg_upstream_config *cfg; /* borrowed; outlives the upstream */
	struct event_base *base;
	struct mg_upstream_hooks hooks;
	struct mg_channel *primary; /* the first channel, probed */
	struct mg_channel *shared;  /* legacy conversation (initialize), or NULL */
	struct mg_channel *modern;  /* 2026-07-28 conversation, or NULL */
	bool legacy_unsupported;    /* the server refused initialize: modern only */
	bool ready;                 /* a channel completed its handshake and is up */
	bool ever_ready;
	char last_error[320];
	size_t max_depth;
	size_t dedicated; /* open dedicated channels */
	uint64_t restarts;
};

/* Creates a stdio upstream for `cfg` (not started). */
struct mg_upstream *mg_upstream_stdio_new(struct event_base *base,
                                          const struct mg_upstream_config *cfg,
                                          const struct mg_upstream_hooks *hooks, size_t max_depth);

/* Creates a Streamable HTTP (`transport = "http"`) or legacy HTTP+SSE
 * (`"sse"`) upstream for `cfg` (not started). libcurl must load: NULL with
 * `err` otherwise. */
struct mg_upstream *mg_upstream_http_new(struct event_base *base,
                                         const struct mg_upstream_config *cfg,
                                         const struct mg_upstream_hooks *hooks, size_t max_depth,
                                         char *err, size_t err_size);

/* Creates the upstream `cfg` describes, whatever its transport. */
struct mg_upstream *mg_upstream_new(struct event_base *base, const struct mg_upstream_config *cfg,
                                    const struct mg_upstream_hooks *hooks, size_t max_depth,
                                    char *err, size_t err_size);

/* A transport is freeing channel `ch` (a `dedicated` one or one of the
 * upstream's own): the upstream stops pointing at it and counting it. */
void mg_upstream_forget_channel(struct mg_upstream *up, struct mg_channel *ch, bool dedicated);

/* Opens one of the upstream's own channels (see upstream.c); used by
 * transports' start. NULL when out of memory. */
struct mg_channel *mg_upstream_own_channel(struct mg_upstream *up, bool probe);

/* The initialize params the gateway sends for its own (shared) channels. */
json_t *mg_upstream_gateway_init_params(void);

/* Health of one upstream: {"name","transport","mode","status","error",...}. */
json_t *mg_upstream_health(struct mg_upstream *up);

#endif
