/*
 * metrics.h - Prometheus metrics: a text-format 0.0.4 writer, fixed-bucket
 * histograms, and the gateway's registry of counters.
 *
 * Everything here is plain memory touched only by the event-loop thread:
 * the hot path increments uint64 counters and fixed-bucket histograms
 * (no locks, no allocation); the text is rendered on scrape. Label values
 * are bounded by construction: an MCP method is an index into a fixed list
 * (anything else is "other"), an error type is a JSON-RPC code in the
 * reserved range or one of a few words, an upstream is a configured name.
 * No identity id, tool name or path ever becomes a label value.
 *
 * State that lives elsewhere (sessions, upstream health, the rate
 * limiter, the auth context, later the audit queue) is read at scrape time
 * by *collectors*: a function that writes its families with the mg_prom_*
 * calls. Adding `mcp_guard_audit_*` is one collector:
 *
 *     static void collect_audit(struct mg_prom *p, void *arg)
 *     {
 *             struct mg_audit_stats st;
 *             mg_audit_stats(arg, &st);
 *             mg_prom_gauge1(p, "mcp_guard_audit_queue_depth", "Events waiting.", st.queued);
 *             mg_prom_counter1(p, "mcp_guard_audit_dropped_total", "Events dropped.", st.dropped);
 *     }
 *     mg_metrics_add_collector(m, collect_audit, audit);
 */
#ifndef MG_METRICS_METRICS_H
#define MG_METRICS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define MG_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- the text writer ------------------------------------------------------------- */

struct mg_prom_label {
	const char *name;
	const char *value; /* escaped by the writer (\\ \" \n) */
};

/* Writes one exposition into a buffer. Families are written one at a time:
 * mg_prom_family, then that family's samples, then the next family. */
struct mg_prom {
	struct mg_buf *out;
	char family[128]; /* the family being written */
};

/* Starts writing into `out` (appended to; the caller owns it). */
void mg_prom_begin(struct mg_prom *p, struct mg_buf *out);

/* Starts a family: one HELP and one TYPE line. `type` is "counter",
 * "gauge" or "histogram"; `help` is escaped (\\ and \n). */
void mg_prom_family(struct mg_prom *p, const char *name, const char *type, const char *help);

/* One sample of the current family: its name plus `suffix` ("" or e.g.
 * "_bucket"), the labels, and the value (integers print exactly, other
 * values in the shortest form that reads back the same; +Inf, -Inf, NaN). */
void mg_prom_sample(struct mg_prom *p, const char *suffix, const struct mg_prom_label *labels,
                    size_t n, double v);
void mg_prom_sample_u64(struct mg_prom *p, const char *suffix, const struct mg_prom_label *labels,
                        size_t n, uint64_t v);

/* A family with a single unlabelled sample. */
void mg_prom_counter1(struct mg_prom *p, const char *name, const char *help, uint64_t v);
void mg_prom_gauge1(struct mg_prom *p, const char *name, const char *help, double v);

/* Appends a label value with \\, \" and \n escaped (exposed for tests). */
void mg_prom_escape(struct mg_buf *out, const char *s, bool label);

/* Formats `v` as the text format wants it; returns the length (< 32). */
size_t mg_prom_fmt_double(char out[32], double v);

/* ---- histograms ------------------------------------------------------------------ */

#define MG_HIST_MAX_BUCKETS 16

/* Upper bounds in seconds, ascending; the +Inf bucket is implicit. */
struct mg_buckets {
	size_t n;
	double le[MG_HIST_MAX_BUCKETS];
	uint64_t le_us[MG_HIST_MAX_BUCKETS]; /* the same in microseconds (observe compares these) */
};

/* The Prometheus client default: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10. */
extern const struct mg_buckets mg_buckets_default;
/* The OpenTelemetry MCP semantic conventions' advice for
 * mcp.server.operation.duration: .01 .02 .05 .1 .2 .5 1 2 5 10 30 60 120 300. */
extern const struct mg_buckets mg_buckets_semconv;

struct mg_histogram {
	const struct mg_buckets *b;
	uint64_t count;
	uint64_t sum_us;
	uint64_t n[MG_HIST_MAX_BUCKETS]; /* per bucket, not cumulative; +Inf is count - all */
};

void mg_histogram_init(struct mg_histogram *h, const struct mg_buckets *b);
/* Records one observation of `us` microseconds. */
void mg_histogram_observe(struct mg_histogram *h, uint64_t us);
/* Writes the _bucket (cumulative, le="+Inf" = count), _sum and _count
 * samples of the current family with `labels` plus le. */
void mg_prom_histogram(struct mg_prom *p, const struct mg_prom_label *labels, size_t n,
                       const struct mg_histogram *h);

/* ---- the gateway's registry ------------------------------------------------------- */

/* MCP methods that may appear as a label value; anything else is OTHER.
 * UNKNOWN: answered before the body was read (authentication, address
 * limit, identity limit, malformed JSON). RESPONSE: a client's answer to a
 * server request. */
enum mg_mmethod {
	MG_MM_UNKNOWN,
	MG_MM_INITIALIZE,
	MG_MM_PING,
	MG_MM_TOOLS_LIST,
	MG_MM_TOOLS_CALL,
	MG_MM_RESOURCES_LIST,
	MG_MM_RESOURCES_TEMPLATES_LIST,
	MG_MM_RESOURCES_READ,
	MG_MM_RESOURCES_SUBSCRIBE,
	MG_MM_RESOURCES_UNSUBSCRIBE,
	MG_MM_PROMPTS_LIST,
	MG_MM_PROMPTS_GET,
	MG_MM_COMPLETION_COMPLETE,
	MG_MM_LOGGING_SETLEVEL,
	MG_MM_SERVER_DISCOVER,
	MG_MM_SUBSCRIPTIONS_LISTEN,
	MG_MM_NOTIFICATIONS_INITIALIZED,
	MG_MM_NOTIFICATIONS_CANCELLED,
	MG_MM_NOTIFICATIONS_PROGRESS,
	MG_MM_NOTIFICATIONS_ROOTS_LIST_CHANGED,
	MG_MM_TASKS_GET,
	MG_MM_TASKS_RESULT,
	MG_MM_TASKS_LIST,
	MG_MM_TASKS_CANCEL,
	MG_MM_RESPONSE,
	MG_MM_OTHER,
	MG_MM_COUNT
};

/* The label value of a method index. */
const char *mg_metrics_method_name(enum mg_mmethod m);
/* The index of a method name (NULL: UNKNOWN; not in the list: OTHER). */
enum mg_mmethod mg_metrics_method(const char *name);

/* How a request to the MCP endpoint ended (label `status`). */
enum mg_mstatus {
	MG_MS_OK,           /* a result, or 202 for a notification/response */
	MG_MS_ERROR,        /* a JSON-RPC error (upstream's or gateway's), or a 5xx */
	MG_MS_TOOL_ERROR,   /* tools/call result with isError: true */
	MG_MS_INVALID,      /* refused as malformed or not allowed by the protocol (4xx) */
	MG_MS_UNAUTHORIZED, /* authentication failed (401/403/503 from ACCESS) */
	MG_MS_DENIED,       /* authorization refused the tool/resource/prompt */
	MG_MS_RATE_LIMITED, /* 429 */
	MG_MS_CANCELLED,    /* the client left before the answer was complete */
	MG_MS_COUNT
};
const char *mg_metrics_status_name(enum mg_mstatus s);

/* Error type of the semantic-convention histogram: a JSON-RPC code in
 * [-32768, -32000] or the gateway's -31429 (rate limited) as itself, any
 * other code as "_OTHER", or one of these. */
#define MG_ET_NONE       0
#define MG_ET_TOOL_ERROR INT32_MIN
#define MG_ET_CANCELLED  (INT32_MIN + 1)
#define MG_ET_OTHER      (INT32_MIN + 2)
/* Client operations (the gateway's calls to its upstreams) and sessions: */
#define MG_ET_TIMEOUT         (INT32_MIN + 3) /* no answer in time */
#define MG_ET_UNAVAILABLE     (INT32_MIN + 4) /* the upstream could not be reached or started */
#define MG_ET_UPSTREAM_CLOSED (INT32_MIN + 5) /* the upstream ended the conversation */

/* An error code from an answer as an error type: JSON-RPC's reserved
 * range and the gateway's -31429 as themselves, anything else (including
 * values in the MG_ET_* band) "_OTHER". */
static inline int32_t mg_metrics_code(int64_t code)
{
	return (code >= -32768 && code <= -32000) || code == -31429 ? (int32_t)code : MG_ET_OTHER;
}

/* The label value of an error type: the code as text (written into buf),
 * "tool_error", "cancelled", "timeout", "unavailable", "upstream_closed"
 * or "_OTHER". */
const char *mg_metrics_error_type(int32_t e, char buf[16]);

enum mg_mauth { MG_MA_SUCCESS, MG_MA_INVALID, MG_MA_MISSING, MG_MA_UNAVAILABLE, MG_MA_COUNT };
enum mg_mprovider {
	MG_MP_NONE, /* a failure: the chain does not say which provider refused */
	MG_MP_API_KEY,
	MG_MP_JWT,
	MG_MP_MTLS,
	MG_MP_OAUTH,
	MG_MP_ANONYMOUS,
	MG_MP_OTHER,
	MG_MP_COUNT
};
enum mg_mscope { MG_MSC_IDENTITY, MG_MSC_TOOL, MG_MSC_ADDRESS, MG_MSC_COUNT };

/* Tool calls per tool (mcp_guard_tool_calls_total): the tools an
 * upstream advertised in its tools/list, at most MG_METRICS_MAX_TOOLS per
 * upstream; a call of any other name counts as tool "_OTHER", so a client
 * cannot make series. Slot 1 is "_OTHER"; 0 means "not counted". */
#define MG_METRICS_MAX_TOOLS  256
#define MG_METRICS_TOOL_OTHER 1
struct mg_metrics_tools {
	char *names[MG_METRICS_MAX_TOOLS + 2];       /* by slot (names[1]: "_OTHER") */
	size_t lens[MG_METRICS_MAX_TOOLS + 2];       /* their lengths */
	uint64_t calls[MG_METRICS_MAX_TOOLS + 2][3]; /* by slot, [ok, tool_error, error] */
	uint64_t us[MG_METRICS_MAX_TOOLS + 2];       /* forwarded → answered, summed */
	uint16_t index[2 * MG_METRICS_MAX_TOOLS];    /* open addressing: slot, 0 empty */
	uint16_t n;                                  /* slots used, "_OTHER" included */
};

/* Per upstream, counted by the gateway for every request it forwarded. */
struct mg_metrics_upstream {
	char *name;
	const char *transport; /* network_transport: "pipe" (stdio) or "tcp" */
	uint64_t requests, errors;
	struct mg_histogram latency;
	/* mcp_client_operation_duration_seconds without an error, per method
	 * (MG_MM_COUNT, allocated on the first observation) */
	struct mg_histogram *op_ok;
	struct mg_metrics_tools *tools; /* allocated on the first tools/call */
};

/* Histogram series keyed by (upstream, method, error type), created on
 * first use and bounded: at most `max`, the last MG_MM_COUNT kept for
 * "_OTHER" so an overflow is still counted (mg_metrics.c error_series). */
struct mg_metrics_opset {
	uint16_t upstream; /* client operations: the upstream's index; else 0 */
	uint8_t method;
	int32_t error;
	struct mg_histogram h;
};
struct mg_metrics_opsets {
	struct mg_metrics_opset *v;
	size_t n, cap, max;
};

#define MG_METRICS_MAX_ERROR_SERIES          256
#define MG_METRICS_MAX_CLIENT_ERROR_SERIES   1024
#define MG_METRICS_MAX_SESSION_SERIES        64
#define MG_METRICS_MAX_CLIENT_SESSION_SERIES 256
#define MG_ACTIVE_WINDOW_SECS                300

struct mg_metrics_collector {
	void (*collect)(struct mg_prom *p, void *arg);
	void *arg;
};

struct mg_metrics {
	uint64_t requests[MG_MM_COUNT][MG_MS_COUNT];
	struct mg_histogram duration[MG_MM_COUNT];
	/* mcp_server_operation_duration_seconds: successes per method; errors
	 * per (method, error type), created on first use, at most
	 * MG_METRICS_MAX_ERROR_SERIES (beyond: error_type "_OTHER"). */
	struct mg_histogram op_ok[MG_MM_COUNT];
	struct mg_metrics_opsets op_err;
	/* mcp_client_operation_duration_seconds errors, per (upstream, method,
	 * error type); its successes are in each upstream's op_ok */
	struct mg_metrics_opsets client_err;
	/* mcp_server_session_duration_seconds, per (protocol version, error
	 * type); the version is one the gateway negotiated (bounded). */
	struct mg_metrics_session {
		uint16_t upstream; /* client sessions: the upstream's index */
		char version[16];
		int32_t error;
		struct mg_histogram h;
	} sessions[MG_METRICS_MAX_SESSION_SERIES];
	size_t n_sessions;
	/* mcp_client_session_duration_seconds: the gateway's sessions with its
	 * upstreams, per (upstream, version, error type) */
	struct mg_metrics_session *client_sessions;
	size_t n_client_sessions;
	uint64_t auth[MG_MP_COUNT][MG_MA_COUNT];
	uint64_t limit[MG_MSC_COUNT][2]; /* [scope][allowed] */
	struct mg_metrics_upstream *upstreams;
	size_t n_upstreams;
	/* Active identities: 64-bit hashes of identity keys (never the keys) and
	 * when each was last seen, open addressing, bounded. */
	struct mg_active {
		uint64_t hash; /* 0: empty */
		uint64_t seen_us;
	} * active;
	size_t active_cap, active_n, active_max;
	uint64_t active_pruned_us;
	struct mg_metrics_collector collectors[16];
	size_t n_collectors;
	double start_time; /* Unix time of mg_metrics_new (process_start_time_seconds) */
};

/* A registry for `n_upstreams` upstreams named `names` (copied). NULL when
 * out of memory. Their network_transport is "pipe" until set. */
struct mg_metrics *mg_metrics_new(const char *const *names, size_t n_upstreams);
/* Sets upstream `i`'s network_transport label ("pipe" or "tcp": static). */
void mg_metrics_upstream_transport(struct mg_metrics *m, size_t i, const char *transport);
void mg_metrics_free(struct mg_metrics *m);

/* Adds a collector called on every render after the registry's own
 * families, in the order added. Returns -1 when the table (16) is full. */
int mg_metrics_add_collector(struct mg_metrics *m, void (*collect)(struct mg_prom *, void *),
                             void *arg);

/* One request to the MCP endpoint ended: `duration_us` from the request
 * head to the end of the answer; `error` is MG_ET_NONE, a JSON-RPC code or
 * an MG_ET_* value. The semantic-convention histogram gets methods only
 * (not UNKNOWN, RESPONSE). */
void mg_metrics_request(struct mg_metrics *m, enum mg_mmethod method, enum mg_mstatus status,
                        int32_t error, uint64_t duration_us);

void mg_metrics_auth(struct mg_metrics *m, enum mg_mprovider p, enum mg_mauth r);
/* The provider index of an identity's provider name. */
enum mg_mprovider mg_metrics_provider(const char *name);
void mg_metrics_rate_limit(struct mg_metrics *m, enum mg_mscope scope, bool allowed);
/* A forwarded request ended (error: the answer was an error, or none came). */
void mg_metrics_upstream(struct mg_metrics *m, size_t upstream, bool error, uint64_t latency_us);
/* The gateway's call of `method` to `upstream` ended after `duration_us`
 * (mcp_client_operation_duration_seconds): `error` is MG_ET_NONE, the
 * upstream's JSON-RPC code, MG_ET_TOOL_ERROR, MG_ET_TIMEOUT,
 * MG_ET_CANCELLED (the client left) or MG_ET_UNAVAILABLE (not sent). */
void mg_metrics_client_op(struct mg_metrics *m, size_t upstream, enum mg_mmethod method,
                          int32_t error, uint64_t duration_us);
/* The slot of tool `name` (`len` bytes) of `upstream` for
 * mg_metrics_tool_call: its own when already counted, or when
 * `advertised` says the upstream lists it (called only for a name not yet
 * counted) and there is room; else MG_METRICS_TOOL_OTHER. 0 when out of
 * memory (the call is then not counted). */
uint16_t mg_metrics_tool_slot(struct mg_metrics *m, size_t upstream, const char *name, size_t len,
                              bool (*advertised)(const char *name, void *arg), void *arg);
/* A tools/call of the tool in `slot` ended after `duration_us`: `error` as
 * for mg_metrics_client_op (MG_ET_NONE ok, MG_ET_TOOL_ERROR, else error). */
void mg_metrics_tool_call(struct mg_metrics *m, size_t upstream, uint16_t slot, int32_t error,
                          uint64_t duration_us);
/* A client's session ended after `duration_us`
 * (mcp_server_session_duration_seconds): `version` is the protocol
 * version it negotiated, `error` MG_ET_NONE (the client ended it, it
 * idled out, the gateway stopped) or why the gateway had to end it. */
void mg_metrics_session(struct mg_metrics *m, const char *version, int32_t error,
                        uint64_t duration_us);
/* The gateway's own session with `upstream` ended after `duration_us`
 * (mcp_client_session_duration_seconds): `version` as the server
 * negotiated it (anything but a YYYY-MM-DD date counts as "other"),
 * `error` MG_ET_NONE when the gateway ended it, MG_ET_UPSTREAM_CLOSED when
 * the server or the transport did. */
void mg_metrics_client_session(struct mg_metrics *m, size_t upstream, const char *version,
                               int32_t error, uint64_t duration_us);

/* Identity `key` was seen at `now_us` (monotonic). */
void mg_metrics_identity_seen(struct mg_metrics *m, const char *key, uint64_t now_us);
/* Distinct identities seen within MG_ACTIVE_WINDOW_SECS before `now_us`;
 * older entries are dropped. */
size_t mg_metrics_active_identities(struct mg_metrics *m, uint64_t now_us);

/* Renders every family, then the collectors', then the process_* families. */
void mg_metrics_render(struct mg_metrics *m, struct mg_buf *out, uint64_t now_us);

/* The standard process_* families (CPU seconds, resident and virtual
 * memory, open and max fds, start time) of this process. `start_time` is
 * the Unix time the process started. */
void mg_metrics_process(struct mg_prom *p, double start_time);

#endif
