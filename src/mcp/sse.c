/*
 * sse.c - SSE encoding and bounded incremental decoding (see sse.h).
 */
#include "mcp/sse.h"

#include <stdlib.h>
#include <string.h>

int mg_sse_encode(struct mg_buf *out, const char *id, const char *event, const char *data,
                  size_t len)
{
	size_t start = out->len;
	if (id && mg_buf_printf(out, "id: %s\n", id) < 0)
		goto fail;
	if (event && mg_buf_printf(out, "event: %s\n", event) < 0)
		goto fail;
	/* Every line of the data becomes a "data:" line; a trailing line break
	 * yields a final empty "data:" line so the decoder restores it. */
	size_t i = 0;
	for (;;) {
		size_t j = i;
		while (j < len && data[j] != '\n' && data[j] != '\r')
			j++;
		if (mg_buf_append(out, "data: ", 6) < 0 ||
		    mg_buf_append(out, data + i, j - i) < 0 || mg_buf_putc(out, '\n') < 0)
			goto fail;
		if (j >= len)
			break;
		if (data[j] == '\r' && j + 1 < len && data[j + 1] == '\n')
			j++;
		i = j + 1;
	}
	if (mg_buf_putc(out, '\n') < 0)
		goto fail;
	return 0;
fail:
	out->len = start;
	if (out->data)
		out->data[start] = '\0';
	return -1;
}

int mg_sse_comment(struct mg_buf *out, const char *text)
{
	return mg_buf_printf(out, ": %s\n\n", text);
}

void mg_sse_decoder_init(struct mg_sse_decoder *d, size_t max_event, mg_sse_event_fn on_event,
                         void *arg)
{
	memset(d, 0, sizeof *d);
	d->max_event = max_event;
	d->on_event = on_event;
	d->arg = arg;
	mg_buf_init(&d->line, max_event + 16);
	mg_buf_init(&d->data, max_event);
	mg_buf_init(&d->event, 256);
	mg_buf_init(&d->last_id, 1024);
	d->retry = -1;
}

void mg_sse_decoder_free(struct mg_sse_decoder *d)
{
	mg_buf_free(&d->line);
	mg_buf_free(&d->data);
	mg_buf_free(&d->event);
	mg_buf_free(&d->last_id);
}

static int dispatch(struct mg_sse_decoder *d)
{
	int rc = 0;
	if (d->has_data) {
		struct mg_sse_event ev = {
			.id = d->last_id.data ? d->last_id.data : "",
			.event = d->event.len ? d->event.data : "message",
			.data = d->data.data ? d->data.data : "",
			.data_len = d->data.len,
			.retry_ms = d->retry,
		};
		rc = d->on_event(&ev, d->arg);
	}
	mg_buf_reset(&d->data);
	mg_buf_reset(&d->event);
	d->has_data = false;
	d->retry = -1;
	return rc;
}

/* Interprets one complete line (without its terminator). */
static int process_line(struct mg_sse_decoder *d, const char *l, size_t n)
{
	if (n == 0)
		return dispatch(d);
	if (l[0] == ':')
		return 0;
	const char *colon = memchr(l, ':', n);
	size_t flen = colon ? (size_t)(colon - l) : n;
	const char *v = colon ? colon + 1 : l + n;
	size_t vlen = colon ? n - flen - 1 : 0;
	if (vlen && v[0] == ' ') {
		v++;
		vlen--;
	}
	if (flen == 4 && memcmp(l, "data", 4) == 0) {
		if ((d->has_data && mg_buf_putc(&d->data, '\n') < 0) ||
		    mg_buf_append(&d->data, v, vlen) < 0)
			return -1;
		d->has_data = true;
	} else if (flen == 5 && memcmp(l, "event", 5) == 0) {
		mg_buf_reset(&d->event);
		if (mg_buf_append(&d->event, v, vlen) < 0)
			return -1;
	} else if (flen == 2 && memcmp(l, "id", 2) == 0) {
		/* An id containing NUL is ignored, as the standard says. */
		if (!memchr(v, '\0', vlen)) {
			mg_buf_reset(&d->last_id);
			if (mg_buf_append(&d->last_id, v, vlen) < 0)
				return -1;
		}
	} else if (flen == 5 && memcmp(l, "retry", 5) == 0) {
		long r = 0;
		size_t i = 0;
		for (; i < vlen && v[i] >= '0' && v[i] <= '9' && r < 100000000; i++)
			r = r * 10 + (v[i] - '0');
		if (i == vlen && vlen > 0)
			d->retry = r;
	}
	return 0;
}

int mg_sse_feed(struct mg_sse_decoder *d, const char *p, size_t len)
{
	size_t i = 0;
	if (!d->bom_checked) {
		/* A UTF-8 BOM may start the stream; it can arrive split. */
		static const char bom[] = "\xEF\xBB\xBF";
		while (i < len && d->line.len + i < 3 && p[i] == bom[d->line.len + i])
			i++;
		if (d->line.len + i < 3 && i == len) {
			return mg_buf_append(&d->line, p, len) < 0 ? -1 : 0;
		}
		if (d->line.len + i == 3) {
			mg_buf_reset(&d->line);
		} else {
			i = 0;
		}
		d->bom_checked = true;
	}
	while (i < len) {
		if (d->cr_pending) {
			d->cr_pending = false;
			if (p[i] == '\n') {
				i++;
				continue;
			}
		}
		size_t j = i;
		while (j < len && p[j] != '\n' && p[j] != '\r')
			j++;
		if (mg_buf_append(&d->line, p + i, j - i) < 0)
			return -1;
		if (j == len)
			break;
		if (p[j] == '\r')
			d->cr_pending = true;
		int rc = process_line(d, d->line.data ? d->line.data : "", d->line.len);
		mg_buf_reset(&d->line);
		if (rc)
			return rc;
		i = j + 1;
	}
	return 0;
}
