/*
 * audit.h - the audit log: who did what through the gateway, provably.
 *
 * The gateway describes an event on the loop thread (mg_audit_emit),
 * which packs it - its strings copied raw behind a fixed header, tool
 * arguments and results only when enabled and only after redaction (see
 * redact.c) - into a bounded single-producer ring: no lock, no
 * allocation, no escaping on the loop. One writer thread per gateway
 * (writer.c) takes runs of packs off the ring, serializes each into one
 * compact JSON line with the fixed serializer in event.c (keys in a fixed
 * order), adds the hash-chain members (`seq`, `prev`, `hash`) when
 * `hash_chain = true`, and hands them to the sinks (sink.c): stdout, an
 * append-only file, and an HTTP export in batches with retries and a
 * spool directory for batches the export could not deliver. Nothing here
 * blocks the loop: when the ring is full the configured policy applies
 * (drop at once, or wait at most `block_timeout_ms`), and every drop is
 * counted and logged.
 *
 * When audit is disabled, mg_audit_new returns NULL and mg_audit_on(NULL)
 * is false: callers test it once before building anything.
 */
#ifndef MG_AUDIT_AUDIT_H
#define MG_AUDIT_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "util/buf.h"

struct mg_audit;
struct mg_audit_redactor;

enum mg_audit_type {
	MG_AUDIT_AUTH_SUCCESS,
	MG_AUDIT_AUTH_FAILURE,
	MG_AUDIT_TOOL_CALL,
	MG_AUDIT_TOOL_CALL_RESULT,
	MG_AUDIT_RATE_LIMITED,
	MG_AUDIT_AUTHZ_DENIED,
	MG_AUDIT_SESSION_START,
	MG_AUDIT_SESSION_END,
	MG_AUDIT_UPSTREAM_ERROR,
	MG_AUDIT_CONFIG_RELOAD,
	MG_AUDIT_TOOL_DEFINITION_CHANGED,
	MG_AUDIT_N_TYPES
};

/* One event as the gateway describes it. Every string is borrowed (NULL or
 * "" = absent) and must never hold a credential. `arguments` and `result`
 * are borrowed too; they are recorded only when the configuration asks for
 * them, after redaction. */
struct mg_audit_event {
	enum mg_audit_type type;
	const char *request_id;
	const char *trace_id;
	const char *identity;
	const char *provider;
	const char *client; /* client address */
	const char *server; /* upstream name */
	const char *method;
	const char *tool;
	int success;         /* -1 absent, 0 false, 1 true */
	const char *message; /* human-readable detail */
	int64_t duration_ms; /* -1 absent */
	const json_t *arguments;
	const json_t *result;
	/* The eight string members from request_id to tool, already written
	 * as JSON by mg_audit_members_into, `members_len` bytes (NULL: taken
	 * from the fields above, which are then ignored): the records about
	 * one call share them, so they are escaped once per call, not once
	 * per record. */
	const char *members;
	size_t members_len;
	/* When it happened (mg_now_us; 0: now). The record's timestamp is the
	 * wall-clock time of that instant (mg_unix_us_at). */
	uint64_t at_us;
};

/* Counters for /metrics (mcp_guard_audit_*). Read with mg_audit_stats. */
struct mg_audit_stats {
	uint64_t queue_depth;   /* events waiting for the writer now */
	uint64_t queue_size;    /* capacity of the queue */
	uint64_t emitted;       /* events queued */
	uint64_t written;       /* events written to stdout/file (each once) */
	uint64_t exported;      /* events delivered to export_url (2xx) */
	uint64_t spooled;       /* events written to the spool directory */
	uint64_t spool_pending; /* events in the spool now */
	uint64_t dropped;       /* events lost: queue full, spool full, sink failure */
	uint64_t export_errors; /* export attempts that failed (each retry counts) */
	uint64_t write_errors;  /* stdout/file write failures */
};

/* ---- the gateway's side (loop thread) ------------------------------------------------ */

/* Starts audit for `cfg->audit` (NULL when disabled, and then `err` is
 * empty). Loads libcurl when an export URL is set (call from the main
 * thread), compiles the redaction rules, opens the file (continuing its
 * hash chain), starts the writer thread. NULL with `err` on failure. The
 * configuration must outlive the returned handle. */
struct mg_audit *mg_audit_new(const struct mg_audit_config *cfg, char *err, size_t err_size);

/* true when `a` records events (a is NULL when audit is off). */
static inline bool mg_audit_on(const struct mg_audit *a)
{
	return a != NULL;
}

/* true when tool arguments / results are recorded (so the caller can skip
 * building them). */
bool mg_audit_wants_arguments(const struct mg_audit *a);
bool mg_audit_wants_results(const struct mg_audit *a);

/* Redacts (arguments and result), packs and queues one event for the
 * writer, which serializes it. Never blocks the caller except under
 * overflow = "block" (at most block_timeout_ms). No-op when a is NULL.
 * The loop thread's only: the ring has one producer. */
void mg_audit_emit(struct mg_audit *a, const struct mg_audit_event *ev);

/* A tool's definition changed (tool pinning): `server`, `tool`, and the
 * old and new definition hashes (hex) in the message. */
void mg_audit_tool_definition_changed(struct mg_audit *a, const char *server, const char *tool,
                                      const char *old_hash, const char *new_hash);

/* Asks the writer to reopen the file (SIGUSR1, logrotate). Async-safe to
 * call from the loop; the writer does the reopening. */
void mg_audit_reopen(struct mg_audit *a);

/* Asks the writer to log the current chain head (anchoring). */
void mg_audit_log_head(struct mg_audit *a);

/* Snapshot of the counters (any thread). Zeroes when a is NULL. */
void mg_audit_stats(const struct mg_audit *a, struct mg_audit_stats *out);

/* Flushes everything queued to the sinks (the export gets one attempt per
 * batch; what it cannot take goes to the spool), logs the chain head, stops
 * the thread and frees. NULL is fine. */
void mg_audit_free(struct mg_audit *a);

/* ---- pure pieces (event.c, redact.c, chain.c), for tests and the verifier ---------- */

/* The name of an event type ("tool_call"). */
const char *mg_audit_type_name(enum mg_audit_type t);

/* Formats `unix_us` (microseconds since the epoch) as RFC 3339 UTC with
 * microseconds: "2026-12-04T15:30:22.123456Z". `out` holds 28 bytes. */
void mg_audit_format_time(int64_t unix_us, char out[28]);

/* The string members of `ev` (request_id, trace_id, identity_id,
 * provider, client_address, server, method, tool) as the record has them
 * (`,"request_id":"…"` and so on; absent and empty ones left out), for
 * mg_audit_event.members. Written to `out` (`size` bytes) with a NUL after
 * them when they fit: the answer is then their length (< size).
 * Otherwise the answer is a size that fits them (> size) and the bytes
 * of `out` are unspecified: a caller with a buffer on hand allocates only
 * for an outsized call, and calls again. */
size_t mg_audit_members_into(const struct mg_audit_event *ev, char *out, size_t size);

/* Appends the event as one JSON object without a line break, keys in this
 * order: timestamp, event_type, request_id, trace_id, identity_id,
 * provider, client_address, server, method, tool, success, duration_ms,
 * message, arguments, result. Absent members are left out. `arguments` and
 * `result` are written only when `rd` asks for them, redacted by it (rd
 * may be NULL: neither is written). Returns 0, -1 when `out` is full. The
 * writer thread writes the same bytes from the event's pack. */
int mg_audit_serialize(const struct mg_audit_event *ev, int64_t unix_us,
                       const struct mg_audit_redactor *rd, struct mg_buf *out);

/* Compiles the redaction rules: `paths` are JSON paths ($.a.b, $..key,
 * $.a[*].b, $['a b']), `patterns` POSIX extended regular expressions
 * applied to string values. NULL with a message naming the bad entry (its
 * index in `err_index`, and whether it was a path) on error. */
struct mg_audit_redactor *mg_audit_redactor_new(const struct mg_strv *paths,
                                                const struct mg_strv *patterns, bool arguments,
                                                bool results, char *err, size_t err_size,
                                                size_t *err_index, bool *err_is_path);
void mg_audit_redactor_free(struct mg_audit_redactor *rd);

/* A deep copy of `v` with the rules applied (caller decrefs); NULL when out
 * of memory. */
json_t *mg_audit_redact(const struct mg_audit_redactor *rd, const json_t *v);

#define MG_AUDIT_HASH_HEX 64

/* The chain's genesis `prev`: 64 zeros. */
extern const char mg_audit_genesis[MG_AUDIT_HASH_HEX + 1];

/* Chains one serialized event `obj` (a JSON object "{…}" without a line
 * break): appends to `out` the line
 *   {…,"seq":<seq>,"prev":"<prev>","hash":"<hash>"}
 * where <hash> is the hex SHA-256 of the exact bytes
 *   {…,"seq":<seq>,"prev":"<prev>"}
 * (the line without its `,"hash":"…"` member). Writes <hash> to
 * `hash_out` (65 bytes). Returns 0, -1 when `out` is full or obj is not an
 * object. */
int mg_audit_chain(const char *obj, size_t len, uint64_t seq, const char *prev, struct mg_buf *out,
                   char hash_out[MG_AUDIT_HASH_HEX + 1]);

struct mg_sha256_ctx;
/* mg_audit_chain hashing with a reusable SHA-256 state (the writer's). */
int mg_audit_chain_with(struct mg_sha256_ctx *sha, const char *obj, size_t len, uint64_t seq,
                        const char *prev, struct mg_buf *out, char hash_out[MG_AUDIT_HASH_HEX + 1]);
/* The same for an object already at the end of `out` (from `start`): it
 * is chained where it is, no copy. On -1, out->len may have moved past
 * `start` (the caller cuts it back). */
int mg_audit_chain_tail(struct mg_sha256_ctx *sha, struct mg_buf *out, size_t start, uint64_t seq,
                        const char *prev, char hash_out[MG_AUDIT_HASH_HEX + 1]);

/* ---- auth_success records (seen.c) ----------------------------------------------------- */

/* Which successful authentications are recorded: the first of each
 * (identity, provider, client address) within `interval_us` (0: every
 * one). A fixed table of MG_AUDIT_SEEN_SLOTS recent triples, by a 64-bit
 * hash; a slot reused by another triple only makes a record come sooner,
 * never later. Pure (time is a parameter). */
#define MG_AUDIT_SEEN_SLOTS 4096
struct mg_audit_seen {
	uint64_t interval_us;
	struct {
		uint64_t hash, at_us;
	} slot[MG_AUDIT_SEEN_SLOTS];
};
void mg_audit_seen_init(struct mg_audit_seen *s, uint64_t interval_us);
/* true when an auth_success for this triple is to be recorded now (and
 * remembers that it was). */
bool mg_audit_seen_due(struct mg_audit_seen *s, const char *identity, const char *provider,
                       const char *client, uint64_t now_us);

/* The gateway's question (loop thread): record this auth_success? Uses
 * `audit.auth_success_interval_secs`. false when a is NULL. */
bool mg_audit_auth_success_due(struct mg_audit *a, const char *identity, const char *provider,
                               const char *client, uint64_t now_us);

/* ---- verification (verify.c) ---------------------------------------------------------- */

/* A streaming verifier of one chain, fed line by line across files. */
struct mg_audit_verifier {
	uint64_t records;
	uint64_t next_seq; /* expected seq of the next record */
	bool started;
	char head[MG_AUDIT_HASH_HEX + 1]; /* hash of the last good record */
	/* the first failure */
	bool failed;
	char reason[256];
	uint64_t fail_seq; /* the seq of the failing record when it had one, else 0 */
	bool fail_has_seq;
};

/* Prepares `v` (the first record may start at any seq when `from_genesis`
 * is false; true requires seq 1 with the genesis prev). */
void mg_audit_verify_init(struct mg_audit_verifier *v, bool from_genesis);

/* Checks the next line (without its line break). Returns 0 when it
 * continues the chain, -1 when it does not (v->reason, v->fail_seq). */
int mg_audit_verify_line(struct mg_audit_verifier *v, const char *line, size_t len);

/* Reads the chain head (hash and seq) from the last line of `path`, for a
 * writer continuing a file. Returns 1 when found, 0 when the file is absent
 * or empty, -1 when its last line is not a chained record (`err`). */
int mg_audit_read_head(const char *path, char hash_out[MG_AUDIT_HASH_HEX + 1], uint64_t *seq_out,
                       char *err, size_t err_size);

#endif
