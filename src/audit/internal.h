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
