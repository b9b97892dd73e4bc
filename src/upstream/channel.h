/*
 * channel.h - one JSON-RPC conversation with an upstream MCP server.
 *
 * A channel owns an id space: every request sent through it gets an id the
 * channel mints (1, 2, 3, ...), so any number of client sessions can share
 * it; the caller keeps the client's original id and restores it. A
 * request's progressToken is replaced by the minted id, so progress
 * notifications find their request without another table. The channel
 * performs the MCP initialize handshake itself, queues requests (bounded)
 * until the upstream is ready, answers the upstream's pings, and hands
 * other notifications and server→client requests to its owner.
 *
 * The channel outlives its transport: when a stdio child crashes, every
 * pending call is answered with an error, and when the transport is back
 * the handshake runs again. Transports (stdio.c, later HTTP) embed the
 * channel as their first member and fill `ops`.
 */
#ifndef MG_UPSTREAM_CHANNEL_H
#define MG_UPSTREAM_CHANNEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mg_channel;
struct mg_call;
struct mg_jscan;
struct mg_upstream;

/* The reply (a whole response or error object, borrowed). The call is
 * already unregistered when this runs. */
typedef void (*mg_call_reply_fn)(struct mg_call *call, json_t *msg, void *arg);
/* The reply as text, when it is a result that passed mg_jscan (the owner
 * may relay it with only the id changed, at the offsets in `js`). Set
 * on_raw_reply to be offered this instead of on_reply; an owner that
 * needs the tree after all parses `text` itself (mg_rpc_parse succeeds
 * on anything mg_jscan accepted). The call is already unregistered. */
typedef void (*mg_call_raw_reply_fn)(struct mg_call *call, const char *text, size_t len,
                                     const struct mg_jscan *js, void *arg);
/* A notification that belongs to the call: notifications/progress for its
 * token, or (modern upstreams) a notification whose
 * _meta["io.modelcontextprotocol/subscriptionId"] is the call's id. The
 * message still carries the minted value; the owner restores its own. */
typedef void (*mg_call_progress_fn)(struct mg_call *call, json_t *msg, void *arg);

/* One request in flight. Allocated by the caller (usually embedded in its
 * exchange), registered by mg_channel_request. */
struct mg_call {
	mg_call_reply_fn on_reply;
	mg_call_raw_reply_fn on_raw_reply; /* optional, see above */
	mg_call_progress_fn on_progress;
	void *arg;
	/* Who the request is for ("api_key:alice"; borrowed, must outlive the
	 * call; NULL for the gateway's own): an HTTP transport sends that
	 * identity's upstream credentials with it. */
	const char *identity;
	/* Optional: bytes the client behind this call has not read yet. A
	 * transport that streams the answer pauses reading from the server
	 * while this is high (backpressure from a slow client). */
	size_t (*backlog)(struct mg_call *call, void *arg);
	/* channel-owned */
	struct mg_channel *ch;
	int64_t up_id;
	bool registered;
	bool sent; /* written to the transport (not just queued) */
	bool progress;
	struct mg_call *hnext;
	struct mg_call *qnext;
	char *queued_text;
	size_t queued_len;
};

enum mg_channel_state {
	MG_CH_DOWN,         /* no transport (starting, restarting or stopped) */
	MG_CH_INITIALIZING, /* transport up, probe or handshake in progress */
	MG_CH_READY,
	MG_CH_CLOSED, /* stopped for good */
};

struct mg_channel_ops {
	/* Writes one serialized message (no newline). Returns 0, or -1 when
	 * the transport cannot take it (gone, or its backlog is full). When
	 * the message is a request, ch->sending is its call (up_id, identity).
	 * A transport that learns later that a request failed feeds an error
	 * response for its up_id to mg_channel_receive. */
	int (*send)(struct mg_channel *ch, const char *data, size_t len);
};

struct mg_channel_hooks {
	/* Handshake done; `result` is the initialize result (borrowed). */
	void (*on_ready)(struct mg_channel *ch, json_t *result, void *arg);
	/* Transport lost or handshake failed. */
	void (*on_down)(struct mg_channel *ch, const char *reason, void *arg);
	/* A notification other than progress for a known call (borrowed). */
	void (*on_notification)(struct mg_channel *ch, json_t *msg, void *arg);
	/* A server→client request other than ping (borrowed); the owner must
	 * answer it with mg_channel_send. */
	void (*on_request)(struct mg_channel *ch, json_t *msg, void *arg);
	void *arg;
};

struct mg_channel {
	const struct mg_channel_ops *ops;
	struct mg_channel_hooks hooks;
	char name[96]; /* for logs: "<upstream> (pid N)" */
	enum mg_channel_state state;
	int64_t next_id;
	struct mg_call **buckets;
	size_t nbuckets;
	size_t ncalls;
	struct mg_call *qhead, *qtail; /* waiting for READY */
	size_t qlen;
	size_t max_queue;
	size_t max_depth;
	json_t *init_params;     /* what the handshake sends (owned) */
	json_t *init_result;     /* last successful initialize result (owned) */
	bool probe;              /* start with server/discover (spec's stdio era probe) */
	bool probing;            /* the probe is in flight */
	bool modern;             /* the probe succeeded: this conversation is 2026-07-28 */
	json_t *discover_result; /* the probe's DiscoverResult (owned) */
	struct mg_call init_call;
	struct mg_call *sending;   /* during ops->send: the request being sent, or NULL */
	uint64_t requests, errors; /* counters for health and metrics */
	/* The upstream the channel belongs to (set by the transport), told
	 * through its on_session_end hook when a legacy session with the
	 * server ends: the channel leaves READY, or is freed while READY. */
	struct mg_upstream *upstream;
	uint64_t ready_us; /* the session is up since (monotonic µs); 0: no session */
	bool ending;       /* the owner closes the conversation on purpose (not an error) */
};

/* Prepares a channel in state DOWN. `init_params` (stolen) is the
 * initialize request's params. */
void mg_channel_init(struct mg_channel *ch, const struct mg_channel_ops *ops,
                     const struct mg_channel_hooks *hooks, json_t *init_params, size_t max_depth,
                     size_t max_queue);

/* Fails every call and releases memory (the transport is already gone). */
void mg_channel_deinit(struct mg_channel *ch);

/* The transport is connected: probe with server/discover when `probe` is
 * set (a DiscoverResult supporting 2026-07-28 makes the channel modern and
 * ready; any error means legacy and initialize follows on the same
 * transport), else send initialize. */
void mg_channel_connected(struct mg_channel *ch);

/* The probe got no answer in time: treat the server as legacy and send
 * initialize (the spec's "does not respond within a reasonable timeout"). */
void mg_channel_probe_timeout(struct mg_channel *ch);

/* The transport is gone: every registered or queued call gets an error
 * reply (-32603, `reason`), state becomes DOWN (or CLOSED when `final`). */
void mg_channel_lost(struct mg_channel *ch, const char *reason, bool final);

/* Sends a request for `call`. `msg` is a complete request object owned by
 * the caller; its "id" (and params._meta.progressToken, if any) are
 * replaced with the minted id. Queued while the channel is initializing or
 * restarting. Returns 0, or -1 when the channel is closed or the queue is
 * full (nothing was registered then). */
int mg_channel_request(struct mg_channel *ch, struct mg_call *call, json_t *msg);

/* The same for a request the caller already holds as text, unchanged but
 * for its id at text[id_start, id_end): the minted id is spliced in there,
 * nothing is parsed or serialized. The text must carry no progressToken
 * (use mg_channel_request, which replaces it) and no line break. */
int mg_channel_request_text(struct mg_channel *ch, struct mg_call *call, const char *text,
                            size_t len, size_t id_start, size_t id_end);

/* Withdraws a call. If it reached the upstream, notifications/cancelled is
 * sent with `reason`. No reply callback follows. Safe on a finished call. */
void mg_channel_cancel(struct mg_call *call, const char *reason);

/* Sends a notification or a response as is (no id rewriting). Returns 0
 * or -1 when the channel is not ready. */
int mg_channel_send(struct mg_channel *ch, json_t *msg);

/* Feeds one message received from the transport. */
void mg_channel_receive(struct mg_channel *ch, const char *text, size_t len);

/* Finds a registered call by minted id (NULL when none). */
struct mg_call *mg_channel_find(struct mg_channel *ch, int64_t up_id);

#endif
