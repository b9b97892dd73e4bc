/*
 * pins.h - tool-definition pinning ("rug pull" defence): the first time a
 * server lists a tool, the SHA-256 of its definition is pinned; a later
 * tools/list with a different definition records the change as pending
 * until an operator approves it (`mcp-guard tools approve SERVER TOOL`).
 * Per server, [upstream] tool_pinning says what a pending change does:
 * warn (log it) or block (hide the tool; the caller also refuses calls).
 *
 * The state lives in memory and in [upstream] pins_file (versioned JSON,
 * mode 0600). The gateway's saves go to a worker thread (latest snapshot
 * wins), so nothing here blocks the event loop; the CLI writes the file
 * directly under a lock. Not thread-safe: one thread (the loop) uses a
 * struct mg_pins.
 */
#ifndef MG_GATEWAY_PINS_H
#define MG_GATEWAY_PINS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/crypto.h"

#define MG_PINS_FILE_MAX (16u * 1024 * 1024) /* largest state file read, bytes */
#define MG_PINS_MAX      100000              /* pinned tools at most (all servers) */
#define MG_PINS_NAME_MAX 512                 /* longest server or tool name pinned */
#define MG_PINS_HASH_LEN (2 * MG_SHA256_LEN) /* lowercase hex */

struct mg_pins;

enum mg_pin_state {
	MG_PIN_NEW,     /* first seen: pinned now */
	MG_PIN_SAME,    /* matches the pin */
	MG_PIN_CHANGED, /* differs from the pin: pending until approved (or unusable, see below) */
};

/* What one pinned tool looks like (mg_pins_each). Strings are "" when absent. */
struct mg_pin_info {
	const char *sha256;     /* approved definition */
	const char *pinned_at;  /* RFC 3339 UTC */
	const char *pending;    /* hash of a changed, unapproved definition, or "" */
	const char *changed_at; /* when that change was first seen, or "" */
};

/* Called once per newly seen change (not again for the same changed
 * definition): the lead's audit event `tool_definition_changed` and metric. */
typedef void (*mg_pins_on_change)(void *arg, const char *server, const char *tool,
                                  const char *old_hash, const char *new_hash);

/* The canonical hash of a tool definition: SHA-256 (lowercase hex into
 * `out`) of the compact JSON with sorted keys (at every depth) of the
 * members name, title, description, inputSchema, outputSchema and
 * annotations that are present. 0, or -1 when `tool` is not an object or
 * cannot be serialized. */
int mg_pins_hash(const json_t *tool, char out[MG_PINS_HASH_LEN + 1]);

/* Loads the state file at `path` (a missing file is an empty state; the
 * file is created on the first save). NULL with a message in `err` when the
 * file cannot be read, is larger than MG_PINS_FILE_MAX, is not JSON
 * ("path:line:col: ..."), has duplicate keys, an unknown version or member,
 * or a malformed entry ("path: servers.S.T.sha256: ..."). */
struct mg_pins *mg_pins_open(const char *path, char *err, size_t n);

/* Checks one tool object of `server` from a tools/list result seen at `now`
 * (Unix seconds): a new tool is pinned (and a save queued); a definition
 * that differs from the pin is recorded as pending (save queued) and
 * reported CHANGED; a definition equal to the pin clears a stale pending.
 * A tool without a string name, with a name longer than MG_PINS_NAME_MAX,
 * or beyond MG_PINS_MAX pins, is reported CHANGED and not recorded (fail
 * closed). */
enum mg_pin_state mg_pins_check(struct mg_pins *p, const char *server, const json_t *tool,
                                int64_t now);

/* true when `tool` of `server` has a pending (unapproved) change. With
 * tool_pinning = "block" the caller refuses tools/call of such a tool. */
bool mg_pins_pending(const struct mg_pins *p, const char *server, const char *tool);

/* Applies `mode` (enum mg_tool_pinning) of `server` to a tools/list
 * `tools` array in place, at `now`: off does nothing and returns 0;
 * warn and block check every tool, log a warning and call `on_change`
 * (may be NULL) once per newly seen change; block also removes every tool
 * that has a pending change (or is unusable, see mg_pins_check). Returns
 * how many tools of the array are changed. */
size_t mg_pins_filter(struct mg_pins *p, const char *server, int mode, json_t *tools, int64_t now,
                      mg_pins_on_change on_change, void *arg);

/* Re-reads the file (SIGHUP: the operator approved with the CLI) and
 * merges it with what this process has not written yet: for each tool the
 * pin with the later pinned_at wins, and a pending change equal to the
 * approved hash is cleared. 0, or -1 with `err` (the state is then
 * unchanged). Reads a local file on the calling thread, like the
 * configuration reload. */
int mg_pins_reload(struct mg_pins *p, char *err, size_t n);

/* Calls `fn` for every pinned tool, servers and tools in name order. */
void mg_pins_each(const struct mg_pins *p,
                  void (*fn)(void *arg, const char *server, const char *tool,
                             const struct mg_pin_info *info),
                  void *arg);

/* Waits until every queued save is on disk. 0, or -1 with `err` when the
 * last save failed (the worker also logs it). For tests and shutdown. */
int mg_pins_sync(struct mg_pins *p, char *err, size_t n);

/* Writes what is queued, stops the worker and frees `p` (NULL is fine). */
void mg_pins_free(struct mg_pins *p);

/* The CLI's approval, on the file itself (not on the event loop): under an
 * exclusive lock on "<path>.lock", loads `path`, makes the pending
 * definition of `server`/`tool` the pinned one at `now`, and writes the
 * file (temporary file, fsync, rename, mode 0600). 0; 1 when the tool has
 * no pending change (nothing written); -1 with `err` when the file is bad,
 * the tool is not pinned, or writing failed. A running gateway picks the
 * approval up on SIGHUP. */
int mg_pins_approve_file(const char *path, const char *server, const char *tool, int64_t now,
                         char *err, size_t n);

#endif
