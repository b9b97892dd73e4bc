/*
 * sse.h - Server-Sent Events: encoding for the client-facing streams and an
 * incremental, bounded decoder for upstream streams (WHATWG "event stream"
 * interpretation). Pure logic.
 */
#ifndef MG_MCP_SSE_H
#define MG_MCP_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

/* Appends one event: optional "id:", optional "event:", the data split on
 * line breaks into "data:" lines, then a blank line. Returns 0 or -1 when
 * `out` would exceed its maximum. */
int mg_sse_encode(struct mg_buf *out, const char *id, const char *event, const char *data,
                  size_t len);

/* Appends a comment line (": text") and a blank line - used as keep-alive. */
int mg_sse_comment(struct mg_buf *out, const char *text);

/* One decoded event. Pointers are valid during the callback only. */
struct mg_sse_event {
	const char *id;    /* last event id seen on the stream ("" when none) */
	const char *event; /* "message" when the stream named none */
	const char *data;  /* joined with '\n', no trailing newline */
	size_t data_len;
	long retry_ms; /* -1 unless this event set it */
};

typedef int (*mg_sse_event_fn)(const struct mg_sse_event *ev, void *arg);

struct mg_sse_decoder {
	size_t max_event; /* bytes of data per event, and of any one line */
	mg_sse_event_fn on_event;
	void *arg;
	/* private */
	struct mg_buf line;
	struct mg_buf data;
	struct mg_buf event;
	struct mg_buf last_id;
	long retry;
	bool bom_checked;
	bool cr_pending;
	bool has_data;
};

/* Prepares a decoder calling `on_event` for each complete event. */
void mg_sse_decoder_init(struct mg_sse_decoder *d, size_t max_event, mg_sse_event_fn on_event,
                         void *arg);

void mg_sse_decoder_free(struct mg_sse_decoder *d);

/* Feeds bytes. Returns 0; -1 when a line or an event exceeds max_event (the
 * stream must then be dropped); or the first non-zero value returned by the
 * callback (decoding stops there). */
int mg_sse_feed(struct mg_sse_decoder *d, const char *p, size_t len);

#endif
