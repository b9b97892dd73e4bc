/*
 * internal.h - types shared by the gateway's own files (gateway.c,
 * session.c, mcp.c and the MCP endpoint's phase files, which share more
 * through pipeline.h). Nothing outside src/gateway includes this.
 *
 * Ownership in one paragraph: the gateway owns sessions, upstreams and the
 * HTTP server. A session owns its GET streams and the list of its
 * exchanges (in-flight requests). An exchange owns its client-side state
 * (the original id and progress token) and its `struct mg_call`; it holds
 * the HTTP request until it answers, and is freed when the answer is sent,
 * the client leaves, or it times out - exactly one of the three, and each
 * path first detaches the others (cancel the call, clear the close
 * callback, delete the timer).
 */
#ifndef MG_GATEWAY_INTERNAL_H
#define MG_GATEWAY_INTERNAL_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "http/server.h"
#include "mcp/jsonrpc.h"
#include "mcp/protocol.h"
#include "metrics/metrics.h"
#include "upstream/upstream.h"
#include "util/buf.h"
#include "util/log.h"

#define MG_SESSION_ID_LEN    32 /* hex of 128 random bits */
#define MG_MAX_CLIENT_OUTPUT (32u * 1024 * 1024)
#define MG_METHOD_MAX        128
#define MG_SSE_RETRY_MS      1000 /* reconnection delay suggested to SSE clients */

struct mg_gateway;
struct mg_session;
struct mg_access;
struct mg_hold;
struct mg_ratelimiter;
struct mg_tracer;
struct mg_jscan;
struct mg_auth;
struct mg_auth_outcome;
struct mg_oauth_gw;
struct mg_pathmap;
struct mg_pins;

/* What a path of the gateway serves. */
enum mg_ep_kind {
	MG_EP_MCP,      /* the MCP endpoint (Streamable HTTP, both eras) */
	MG_EP_SSE,      /* the 2024-11-05 transport's stream (GET) */
	MG_EP_MESSAGES, /* the 2024-11-05 transport's POST target */
};

/* An endpoint: the paths that reach one upstream, and what the gateway
 * keeps per upstream (route.c). The single [upstream] form has one route
 * at server.mcp_path; [[upstream.servers]] give one route per server, at
 * its path_prefix and at <mcp_path>/<name>. */
#define MG_ROUTE_LEARNED 8 /* tools/list pages remembered as learned */
struct mg_route {
	struct mg_gateway *gw;
	const char *name; /* the upstream's name (borrowed from the configuration) */
	struct mg_upstream *up;
	size_t index;             /* in gw->routes (metrics) */
	char *path;               /* the MCP endpoint (path_prefix, or server.mcp_path) */
	char *alias;              /* <mcp_path>/<name> (several servers), or NULL */
	char *messages_path;      /* where 2024-11-05 clients POST (the endpoint event) */
	bool required;            /* /ready waits for it */
	bool federated;           /* a member of the federated endpoint (gw->fed) */
	struct mg_fed *fed;       /* the federated route's state (its up is NULL) */
	uint64_t fed_failures;    /* list calls of the federation that failed */
	char fed_last_error[200]; /* the last one's reason */
	json_t *resource_refs;    /* shared-mode subscription refcounts: uri -> count */
	json_t *tool_params;      /* x-mcp-header annotations learned from tools/list */
	/* SHA-256 of the last tools/list results (pages) learned from: the same
	 * result again teaches nothing (learning overwrites per tool name), so
	 * it is relayed as text. */
	uint8_t tools_learned[MG_ROUTE_LEARNED][32];
	unsigned n_learned, next_learned;
};

/* One SSE response stream (a GET stream, a request's stream, or a
 * subscriptions/listen stream). */
struct mg_stream {
	struct mg_gateway *gw;
	struct mg_http_req *req; /* NULL once the client is gone or the stream ended */
	struct event *keepalive;
	uint64_t number; /* within the session, for event ids; 0 = no ids */
	uint64_t seq;
};

/* How an exchange crosses eras: a modern client in front of a legacy
 * upstream, or a legacy client in front of a modern-only one. */
enum mg_bridge { MG_BRIDGE_NONE, MG_BRIDGE_TO_LEGACY, MG_BRIDGE_TO_MODERN };

/* How a forwarded request ended, for the upstream's metrics. */
enum mg_x_answer { MG_X_NONE, MG_X_OK, MG_X_ERROR };

/* One client request in flight to an upstream. */
struct mg_exchange {
	struct mg_gateway *gw;
	struct mg_http_req *req;
	struct mg_session *session;      /* legacy; NULL for modern requests */
	struct mg_route *route;          /* the endpoint it came through */
	struct mg_identity *identity;    /* who asked (a reference) */
	struct mg_exchange *prev, *next; /* in the session, or the gateway's modern list */
	struct mg_call call;
	struct mg_channel *ch;
	json_t *orig_id;
	json_t *orig_token; /* the client's progressToken, or NULL */
	bool modern;        /* the client speaks 2026-07-28 */
	bool up_decided;    /* up_error says how the upstream's side ended */
	uint8_t mmethod;    /* enum mg_mmethod of `method` (metrics on) */
	enum mg_bridge bridge;
	int log_level; /* modern: _meta logLevel (syslog index), -1 = none */
	bool listen;   /* a forwarded subscriptions/listen: no deadline */
	bool accept_sse;
	bool sse; /* answering with an SSE stream */
	struct mg_stream stream;
	struct event *timeout;
	char method[MG_METHOD_MAX];
	uint64_t start_us;
	/* A tools/call being audited (its result is recorded): its record
	 * members as JSON (mg_audit_members_into), then a NUL and the raw
	 * tool name; in audit_inline unless they do not fit (then malloc'd). */
	char *audit_members;
	size_t audit_members_len;
	char audit_rid[17];    /* audit request id (when audit is on) */
	char audit_client[64]; /* client address, for events after the request is gone */
	/* tools/call: the tool's mcp_guard_tool_calls_total slot; 0 none (in
	 * what was padding: 2 more bytes elsewhere made the exchange 544) */
	uint16_t tool_slot;
	struct mg_log_ctx log;   /* request and trace id for log lines of its callbacks */
	uint64_t sent_us;        /* forwarded at (metrics); 0: not forwarded */
	enum mg_x_answer answer; /* what the upstream's side came to (metrics) */
	/* How the upstream's side ended, once decided (up_decided; see
	 * mg_obs_upstream_done): MG_ET_NONE, its JSON-RPC code, or
	 * MG_ET_TOOL_ERROR, MG_ET_TIMEOUT, MG_ET_CANCELLED, MG_ET_UNAVAILABLE
	 * (metrics/metrics.h). (In what was padding: the exchange stays 536
	 * bytes.) */
	int32_t up_error;
	/* Last: MG_X_AUDIT_INLINE bytes allocated only with audit on, so an
	 * exchange without audit is not a third larger to clear. */
	char audit_inline[];
};
#define MG_X_AUDIT_INLINE 384

/* A subscriptions/listen stream (modern). */
struct mg_listener {
	struct mg_gateway *gw;
	struct mg_route *route;
	struct mg_listener *prev, *next;
	struct mg_stream stream;
	json_t *sub_id; /* the listen request's id */
	bool tools, prompts, resources;
	json_t *uris; /* array of subscribed resource URIs, or NULL */
};

/* A legacy (2025-xx) session. */
struct mg_session {
	struct mg_gateway *gw;
	struct mg_session *prev, *next; /* in the hash bucket chain order-less list */
	char id[MG_SESSION_ID_LEN + 1];
	char *identity;
	char protocol_version[16];
	struct mg_route *route; /* the endpoint that created it: used only there */
	struct mg_upstream *up;
	struct mg_channel *ch;        /* dedicated channel (per_session), else NULL */
	struct mg_http_req *init_req; /* initialize waiting for a dedicated channel */
	json_t *init_id;
	struct mg_stream get; /* the GET stream (req NULL when none) */
	struct mg_exchange *exchanges;
	size_t n_exchanges;
	uint64_t next_stream;
	struct event *idle;
	int log_level;         /* shared mode: -1 = not set; index in syslog order 0..7 */
	json_t *subscriptions; /* array of resource URIs (shared mode) */
	/* replay ring for the GET stream */
	struct mg_replay {
		uint64_t seq;
		char *text;
		size_t len;
	} * ring;
	size_t ring_cap;   /* server.sse_replay_events: the most kept */
	size_t ring_alloc; /* slots allocated: grows (doubling) to ring_cap as events come */
	size_t ring_head, ring_len;
	bool initialized;
	bool ended;
	uint64_t created_us; /* for session_end's duration */
	bool bridged;        /* served through a modern-only upstream */
	bool legacy_sse;     /* a 2024-11-05 HTTP+SSE session: ends with its stream */
	json_t *client_info; /* from initialize, for bridged requests' _meta */
	json_t *client_caps;
};

struct mg_gateway {
	struct event_base *base;
	const struct mg_config *cfg;
	struct mg_http_server *http;
	struct mg_route **routes; /* one per upstream, in configuration order */
	struct mg_route *fed;     /* the federated endpoint (federation = true), or NULL */
	struct mg_pins *pins;     /* tool pinning state (upstream.pins_file), or NULL */
	size_t n_routes;
	struct mg_pathmap *table;   /* path -> route (route.c, pathmap.c) */
	struct mg_auth *auth;       /* current auth context (swapped on SIGHUP) */
	struct mg_fetcher *fetcher; /* outgoing HTTP (JWKS) */
	struct mg_config *reloaded; /* configuration loaded by the last SIGHUP */
	struct mg_session **buckets;
	size_t nbuckets, nsessions;
	struct mg_exchange *modern; /* modern exchanges in flight */
	struct mg_listener *listeners;
	struct mg_access *accesses; /* requests waiting in the ACCESS phase (JWKS) */
	struct mg_hold *holds;      /* requests waiting for a rate-limit decision (Redis) */
	struct mg_ratelimiter *rl;  /* NULL when rate_limit.enabled is false */
	struct mg_audit *audit;     /* NULL when audit is off */
	struct mg_oauth_gw *oauth;  /* login flow state (gateway/oauth.c), made on first use */
	time_t started;
	/* SIGHUP reloads (mcp_guard_config_*): counts, whether the last one
	 * worked, and when the configuration in force was loaded (unix µs) */
	uint64_t reloads_ok, reloads_failed;
	bool last_reload_ok;
	int64_t config_loaded_unix_us;
	bool draining;
	bool loopback;
	struct event *sig_term, *sig_int, *sig_hup, *sig_chld, *sig_usr1;
	struct event *shutdown_timer;
	int shutdown_phase;
	uint64_t phase_start_us;
	uint64_t requests_total, errors_total, denied_total, limited_total;
	struct mg_metrics *metrics;   /* NULL when metrics.enabled is false */
	struct mg_http_server *admin; /* metrics.listen, or NULL */
	struct mg_tracer *tracer;     /* tracing.enabled, or NULL */
	void *trace_free;             /* observe.c: per-request trace state kept for reuse */
	size_t n_trace_free;
};

/* ---- route.c ------------------------------------------------------------------- */

/* Creates and starts every upstream of the configuration, one route each,
 * and the path table. Returns 0, or -1 after logging why. */
int mg_routes_start(struct mg_gateway *gw);
/* The route serving `path` and what it is there; NULL when none. */
struct mg_route *mg_route_find(struct mg_gateway *gw, const char *path, enum mg_ep_kind *kind);
/* Keeps the router's match (`r`, an endpoint of `kind`) with `req`, so
 * the pipeline does not look the path up again (mg_req_route). */
void mg_req_keep_route(struct mg_http_req *req, struct mg_route *r, enum mg_ep_kind kind);
/* The route of a request the router already matched (never NULL after
 * mg_mcp_handle accepted it): the single upstream's, else the one kept
 * with the request, else (nothing kept) a lookup of its path. */
struct mg_route *mg_req_route(struct mg_gateway *gw, struct mg_http_req *req);
/* Stops every upstream (shutdown); true once all are idle. */
void mg_routes_stop(struct mg_gateway *gw);
bool mg_routes_idle(struct mg_gateway *gw);
/* Frees routes, upstreams and the table. */
void mg_routes_free(struct mg_gateway *gw);
/* GET /routes: names, paths, transports and states. */
json_t *mg_routes_json(struct mg_gateway *gw);

/* ---- federate.c ---------------------------------------------------------------- */

struct mg_fed;
/* Creates the federated route (federation = true) over the routes with
 * federate = true, at server.mcp_path. 0, or -1 after logging why. */
int mg_fed_start(struct mg_gateway *gw);
void mg_fed_free(struct mg_gateway *gw);
/* The federated handshake: {"capabilities","serverInfo","instructions"} from
 * the ready members (new reference), or NULL when none is ready. */
json_t *mg_fed_handshake(struct mg_route *fed);
/* The member that owns resource `uri`, or NULL. */
struct mg_route *mg_fed_owner(struct mg_route *fed, const char *uri);
/* A member (re)became ready: federated clients get list_changed. */
void mg_fed_member_ready(struct mg_route *m);
/* List requests in flight on the federated endpoint; answering them all. */
size_t mg_fed_inflight(struct mg_gateway *gw);
void mg_fed_abort_all(struct mg_gateway *gw, const char *why);

/* Tool pinning on a tools/list `tools` array of route `r` (in place; the
 * route's tool_pinning says warn or block). */
void mg_route_pin_tools(struct mg_route *r, json_t *tools);
/* true when r pins tools (its tools/list results are read as trees). */
bool mg_route_pins(const struct mg_route *r);
/* Whether r learned from a tools/list result with this SHA-256 already;
 * remembering one (the oldest of MG_ROUTE_LEARNED forgotten). */
bool mg_route_learned(const struct mg_route *r, const uint8_t digest[32]);
void mg_route_learned_add(struct mg_route *r, const uint8_t digest[32]);
/* true when r's tool_pinning blocks `tool` (a pending change). */
bool mg_route_tool_blocked(struct mg_route *r, const char *tool);

/* ---- session.c ------------------------------------------------------------------- */

/* Creates a session of `route` bound to `identity`; NULL when
 * max_sessions reached. */
struct mg_session *mg_session_new(struct mg_gateway *gw, struct mg_route *route,
                                  const char *identity);
struct mg_session *mg_session_find(struct mg_gateway *gw, const char *id);
/* Ends a session: exchanges cancelled and answered, streams closed,
 * dedicated channel closed, memory freed. `error` (MG_ET_*) says why the
 * gateway had to end it, MG_ET_NONE when it ended normally (the client
 * deleted it, it idled out, the gateway stops): the error_type of
 * mcp_server_session_duration_seconds. */
void mg_session_end(struct mg_session *s, const char *why, int32_t error);
void mg_session_touch(struct mg_session *s);
/* Delivers a server→client message to the session: the GET stream, else
 * the replay ring. */
void mg_session_deliver(struct mg_session *s, const char *json, size_t len);
/* Opens the GET stream (replaying after `last_event_id` when given). */
void mg_session_open_get(struct mg_session *s, struct mg_http_req *req, const char *last_event_id);

/* A dedicated channel is starting for this session's initialize: answer
 * the client if it leaves, bound the wait by the request timeout. */
void mg_session_init_wait(struct mg_session *s, struct mg_http_req *req);

/* Starts an SSE response on `req` with the usual headers. */
void mg_stream_begin(struct mg_stream *st, struct mg_gateway *gw, struct mg_http_req *req,
                     uint64_t number, const struct mg_http_hdr *extra, size_t n_extra);
/* Sends the priming event (id, retry, no data) of a resumable stream. */
void mg_stream_prime(struct mg_stream *st);
/* Sends one event. Returns 0, or -1 when the client is gone (the stream is
 * then detached: st->req is NULL and its close callback will not fire). */
int mg_stream_send(struct mg_stream *st, const char *json, size_t len);
/* Ends the stream (no-op when detached). */
void mg_stream_end(struct mg_stream *st);
/* Detaches without touching the request (the client is already gone). */
void mg_stream_detach(struct mg_stream *st);

/* ---- mcp.c and the endpoint's phase files (pipeline.h) ---------------------------- */

void mg_mcp_handle(struct mg_gateway *gw, struct mg_http_req *req);
/* (notify.c) The route's shared channel is (again) ready: renew upstream
 * subscriptions. */
void mg_mcp_upstream_ready(struct mg_route *r);
/* (notify.c) A notification from a route's shared or modern channel: fan
 * out to that route's sessions and listeners. */
void mg_mcp_upstream_notification(struct mg_route *r, struct mg_channel *ch, json_t *msg);
/* Ends every exchange and stream (shutdown deadline). */
void mg_mcp_abort_all(struct mg_gateway *gw, const char *why);
/* Ends GET and listen streams cleanly (start of shutdown). */
void mg_mcp_close_streams(struct mg_gateway *gw);
size_t mg_mcp_inflight(struct mg_gateway *gw);
/* (exchange.c) Answers the client with an error, cancels the upstream call, frees. */
void mg_exchange_abort(struct mg_exchange *x, int code, const char *why);
/* (modern.c) Frees a subscriptions/listen stream's state (the stream is detached). */
void mg_listener_free(struct mg_listener *l);
/* A session is ending: drop what the endpoint keeps for it. */
void mg_mcp_session_ended(struct mg_session *s);

/* The per-address limit (limit.c) and the authentication failure answer
 * (access.c) of the MCP endpoint, for /metrics (same credentials, same flood
 * protection). */
bool mg_mcp_ip_allowed_or_reply(struct mg_gateway *gw, struct mg_http_req *req);
void mg_mcp_ip_charge(struct mg_gateway *gw, struct mg_http_req *req);
void mg_mcp_reply_auth_failure(struct mg_gateway *gw, struct mg_http_req *req, struct mg_auth *auth,
                               const struct mg_auth_outcome *o);

/* ---- observe.c (metrics) ----------------------------------------------------------- */

/* Creates the registry (metrics.enabled) and the admin listener
 * (metrics.listen). `main_opts` are the main listener's options (limits are
 * copied). Returns 0, or -1 with `err`. */
int mg_obs_start(struct mg_gateway *gw, const struct mg_http_server_opts *main_opts, char *err,
                 size_t err_size);
/* Frees the admin listener and the registry (after the main listener). */
void mg_obs_free(struct mg_gateway *gw);
/* The main listener's on_done hook: counts requests to the MCP endpoint. */
void mg_obs_on_done(struct mg_http_req *req, int status, void *arg);
/* Serves the metrics path; false when `req` is for another path. */
bool mg_obs_route(struct mg_gateway *gw, struct mg_http_req *req);
/* Marks in the request's note, read when it ends: the parsed message's
 * method; an outcome the status cannot tell; the answer's JSON-RPC error
 * code or tool_error (tree or text answer). */
void mg_obs_method(struct mg_http_req *req, const struct mg_rpc_msg *msg);
void mg_obs_outcome(struct mg_http_req *req, enum mg_mstatus st);
void mg_obs_rpc_error(struct mg_http_req *req, int code);
void mg_obs_answer(struct mg_http_req *req, json_t *msg);
void mg_obs_raw_answer(struct mg_http_req *req, bool tool_error);
/* Counters that are not per request. */
void mg_obs_auth(struct mg_gateway *gw, struct mg_http_req *req, const struct mg_auth_outcome *o);
void mg_obs_limit(struct mg_gateway *gw, struct mg_http_req *req, enum mg_mscope scope,
                  bool allowed);
/* Tracing: when this request's trace is sampled, the upstream call gets a
 * CLIENT span: its traceparent (55 characters and a NUL) goes to `tp`, the
 * tracestate to carry (or NULL) to `*ts`, and true is returned. Nothing in
 * msg changes: the caller splices them into the client's text, or puts them
 * into the tree with mg_obs_trace_put. */
bool mg_obs_trace_inject(struct mg_http_req *req, const struct mg_rpc_msg *msg,
                         const struct mg_route *upstream, char tp[56], const char **ts);
/* Sets msg's params._meta traceparent (and tracestate, or removes it). */
void mg_obs_trace_put(struct mg_rpc_msg *msg, const char *tp, const char *ts);
/* The trace id of `req` (16 bytes) once its trace is decided; false when
 * tracing is off or the body is not parsed yet. */
bool mg_obs_trace_id(const struct mg_http_req *req, uint8_t out[16]);
/* The upstream's side of an exchange ended as x->up_error says (set
 * up_decided first): the end of the CLIENT span, before the client is
 * answered. */
void mg_obs_upstream_done(struct mg_exchange *x);
/* An exchange is being freed: the upstream's request, error and latency. */
void mg_obs_exchange_end(struct mg_exchange *x);
/* How an upstream's answer `msg` ended, as an error type (MG_ET_*): its
 * JSON-RPC code, MG_ET_UNAVAILABLE for an error the channel made up for an
 * upstream that went away (mcpGuard: "upstream_unavailable"),
 * MG_ET_TOOL_ERROR for isError when `tool_call`, else MG_ET_NONE. */
int32_t mg_obs_answer_error(json_t *msg, bool tool_call);
/* A request the gateway sent to route r's upstream at `sent_us` (not
 * through an exchange: a federated list's part) ended with `error`
 * (mcp_client_operation_duration_seconds). */
void mg_obs_client_op(struct mg_gateway *gw, const struct mg_route *r, const char *method,
                      int32_t error, uint64_t sent_us);
/* The MCP method of `req` as its note holds it (mg_obs_method). */
enum mg_mmethod mg_obs_req_method(struct mg_http_req *req);
/* The mcp_guard_tool_calls_total slot of a tools/call of tool `name` (a
 * JSON string) on `r`: its own series once `r`'s upstream listed the tool
 * (r->tool_params), else "_OTHER". */
uint16_t mg_obs_tool_slot(struct mg_gateway *gw, struct mg_route *r, json_t *name);
/* A session ended (mcp_server_session_duration_seconds). */
void mg_obs_session_end(struct mg_session *s, int32_t error);
/* The gateway's own session with route r's upstream on `ch` ended
 * (mcp_client_session_duration_seconds). */
void mg_obs_upstream_session_end(struct mg_route *r, struct mg_channel *ch, uint64_t duration_us,
                                 bool error);

/* ---- gateway.c ------------------------------------------------------------------ */

/* The main listener's router (the admin listener hands /health, /live and
 * /ready to it). */
void mg_gateway_on_request(struct mg_http_req *req, void *arg);

/* Sends a JSON body with `status`. */
void mg_reply_json(struct mg_http_req *req, int status, json_t *body,
                   const struct mg_http_hdr *hdrs, size_t n);
/* Sends a JSON-RPC error (id may be NULL) with `status`. */
void mg_reply_rpc_error(struct mg_http_req *req, int status, json_t *id, int code,
                        const char *message, json_t *data);

#endif
