/*
 * internal.h - what the audit module's own files share (nothing outside
 * src/audit includes it): the sink interface and the redactor's switches.
 */
#ifndef MG_AUDIT_INTERNAL_H
#define MG_AUDIT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"
#include "util/buf.h"

/* true when the redactor records tool arguments / results. */
bool mg_audit_redactor_arguments(const struct mg_audit_redactor *rd);
bool mg_audit_redactor_results(const struct mg_audit_redactor *rd);

/* ---- packs (event.c): an event as the loop hands it to the writer ---------- */

/* The strings of a pack, in record order: the eight members, the
 * message, then the arguments and the result as (redacted) JSON text. */
enum mg_audit_str {
	MG_AS_REQUEST_ID,
	MG_AS_TRACE_ID,
	MG_AS_IDENTITY,
	MG_AS_PROVIDER,
	MG_AS_CLIENT,
	MG_AS_SERVER,
	MG_AS_METHOD,
	MG_AS_TOOL,
	MG_AS_MESSAGE,
	MG_AS_ARGUMENTS,
	MG_AS_RESULT,
	MG_AS_N
};
#define MG_AUDIT_MEMBERS 8 /* MG_AS_REQUEST_ID .. MG_AS_TOOL */

/* A pack's header; the strings' bytes follow it, back to back, without
 * terminators. 8-byte aligned in the ring. */
struct mg_audit_pack {
	int64_t unix_us;
	int64_t duration_ms; /* -1 absent */
	uint32_t len[MG_AS_N];
	uint32_t fragment; /* the members as JSON (mg_audit_members_into), first;
	                      the eight members' lengths are then 0 */
	uint8_t type;      /* enum mg_audit_type */
	int8_t success;    /* -1 absent */
};

/* An event measured for packing: mg_audit_pack_prepare, then room for
 * `size` bytes, then mg_audit_pack_write (the borrowed strings must live
 * until then). */
struct mg_audit_packing {
	const char *s[MG_AS_N];
	uint32_t len[MG_AS_N];
	size_t size;
	const char *fragment; /* the event's members as JSON, or NULL */
	uint32_t fragment_len;
};
void mg_audit_pack_prepare(struct mg_audit_packing *pk, const struct mg_audit_event *ev,
                           const char *args, size_t args_len, const char *result,
                           size_t result_len);
void mg_audit_pack_write(const struct mg_audit_packing *pk, const struct mg_audit_event *ev,
                         int64_t unix_us, void *out);
/* Appends the pack's record (mg_audit_serialize's bytes); 0, -1 when
 * `out` is full. The pack must be followed by MG_AUDIT_PACK_PAD readable
 * bytes: its strings are read a word at a time. */
#define MG_AUDIT_PACK_PAD 8
int mg_audit_pack_serialize(const void *pack, struct mg_buf *out);

/* `v` redacted by `rd` as compact JSON text (malloc'd, *len set); NULL
 * when out of memory. */
char *mg_audit_json_text(const struct mg_audit_redactor *rd, const json_t *v, size_t *len);

/* A batch of records: `text` holds `n` lines, each ending with '\n'. */
struct mg_audit_batch {
	struct mg_buf text;
	size_t n;
};

/* What a sink's deliver answers. */
enum mg_sink_result {
	MG_SINK_OK,    /* taken */
	MG_SINK_RETRY, /* not taken now (transport error, 408/429/5xx): try later */
	MG_SINK_REJECT /* refused for good (400/401/403/413 …): spool, never retry blindly */
};

/* A destination of records, driven by the writer thread only. The local
 * sinks (stdout, file) get every record as it comes (`write`); the export
 * sink gets whole batches (`deliver`). */
struct mg_audit_sink_ops {
	const char *name;
	/* Writes `len` bytes of lines; 0 or -1. */
	int (*write)(void *sink, const char *lines, size_t len);
	/* After a run of writes, and when due_us said so: make them durable per
	 * the fsync policy. */
	void (*flush)(void *sink);
	/* When flush has pending work to do (monotonic us, mg_now_us), or 0:
	 * the writer wakes up then even when no record comes. Optional. */
	uint64_t (*due_us)(void *sink);
	/* Reopens the destination (logrotate). */
	void (*reopen)(void *sink);
	/* Sends one batch (records as lines); `retry_after_secs` is set (-1 when
	 * absent) for MG_SINK_RETRY. */
	enum mg_sink_result (*deliver)(void *sink, const struct mg_audit_batch *b,
	                               long *retry_after_secs, char *err, size_t err_size);
	void (*free)(void *sink);
};

struct mg_audit_sink {
	const struct mg_audit_sink_ops *ops;
	void *self;
};

/* The sinks (sink.c). */
int mg_audit_sink_stdout(struct mg_audit_sink *s);
int mg_audit_sink_file(struct mg_audit_sink *s, const char *path, int64_t fsync_policy,
                       int64_t fsync_interval_ms, char *err, size_t err_size);
int mg_audit_sink_http(struct mg_audit_sink *s, const struct mg_audit_config *cfg, char *err,
                       size_t err_size);

/* Frames a batch for the export format (sink.c; pure, for tests): `body`
 * gets the request body, `*ctype` the content type. */
int mg_audit_frame(int64_t format, const struct mg_audit_config *cfg, const char *host,
                   const struct mg_audit_batch *b, struct mg_buf *body, const char **ctype);

/* The spool (spool.c): batches the export could not deliver, one file
 * each, named by a sequence number so they are re-sent in order. */
struct mg_audit_spool;
struct mg_audit_spool *mg_audit_spool_open(const char *dir, uint64_t max_bytes, char *err,
                                           size_t err_size);
/* Stores a batch; -1 when it would exceed max_bytes or cannot be written. */
int mg_audit_spool_put(struct mg_audit_spool *sp, const struct mg_audit_batch *b, char *err,
                       size_t err_size);
/* Loads the oldest batch: 1 (b filled), 0 when empty, -1 on error. */
int mg_audit_spool_peek(struct mg_audit_spool *sp, struct mg_audit_batch *b, char *err,
                        size_t err_size);
/* Removes the oldest batch (after it was delivered). */
void mg_audit_spool_pop(struct mg_audit_spool *sp);
/* Records and bytes in the spool now. */
uint64_t mg_audit_spool_records(const struct mg_audit_spool *sp);
uint64_t mg_audit_spool_files(const struct mg_audit_spool *sp);
void mg_audit_spool_close(struct mg_audit_spool *sp);

/* mg_audit_new with the export going to `export_sink` (copied; NULL: the
 * HTTP sink of export_url) - for tests with a fake collector. */
struct mg_audit *mg_audit_start(const struct mg_audit_config *cfg,
                                const struct mg_audit_sink *export_sink, char *err,
                                size_t err_size);

void mg_audit_batch_init(struct mg_audit_batch *b);
void mg_audit_batch_free(struct mg_audit_batch *b);
/* Appends one line (without '\n'). */
int mg_audit_batch_add(struct mg_audit_batch *b, const char *line, size_t len);

#endif
