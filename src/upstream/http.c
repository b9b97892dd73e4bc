/*
 * http.c - remote upstreams: Streamable HTTP servers (transport = "http")
 * and legacy HTTP+SSE servers (transport = "sse", the 2024-11-05 revision).
 *
 * A channel (struct http_chan, embedding struct mg_channel) is one MCP
 * conversation with the server: for a legacy server one upstream session
 * (Mcp-Session-Id), for a 2026-07-28 server a stateless sequence of POSTs.
 * Every message the channel sends is one POST (struct post) carried by the
 * upstream's own libcurl multi handle (http/client.c: keep-alive pool,
 * HTTP/2 over TLS when offered, h2c by prior knowledge when configured).
 * What comes back - one JSON body, or an SSE stream with progress,
 * logging and server→client requests before the answer - is fed message by
 * message into mg_channel_receive, so ids, progress and routing work
 * exactly as for a stdio process. A failure the channel cannot see (no
 * answer, an HTTP error without a JSON-RPC body, an oversized answer) is
 * turned into a JSON-RPC error for the request's minted id, worded for the
 * client (naming the upstream, never its address); the detail goes to the
 * log.
 *
 * Legacy sessions: the Mcp-Session-Id of the initialize answer is sent with
 * every later message; the GET stream is opened once the session is ready
 * (for list_changed, resource updates and requests outside a call), and is
 * reopened with Last-Event-ID when it drops. A POST stream that ends before
 * its answer is resumed with a GET carrying its last event id. A 404 for the
 * session means the server forgot it: the gateway's own channel initializes
 * a new one; a client's dedicated channel closes, its session ends, and the
 * client, answered 404, initializes again (as the spec prescribes). Closing
 * a channel sends DELETE for its session.
 *
 * Legacy HTTP+SSE: the channel first GETs the stream, waits for the
 * `endpoint` event (an endpoint on another origin is refused), then POSTs
 * every message there; answers come back as `message` events on the
 * stream. A dropped stream loses the session: pending calls fail, and the
 * channel reconnects with backoff.
 *
 * Trace context: a request whose params._meta carries `traceparent` (the
 * tracer sampled it) also sends it, with `tracestate`, as HTTP headers.
 *
 * Credentials: the upstream's `headers`, replaced per header by the
 * identity's own (`identity_headers`) for that identity's requests. The
 * client's Authorization never travels (it is not even seen here).
 *
 * Memory: a post is freed when its transfer ends or is cancelled; a
 * closing channel is freed once its last transfer is gone. Callbacks that
 * can close a channel (mg_channel_receive) run with the post marked busy,
 * so nothing is freed under the caller's feet.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/client.h"
#include "mcp/jsonrpc.h"
#include "mcp/params.h"
#include "mcp/protocol.h"
#include "mcp/sse.h"
#include "upstream/upstream.h"
#include "util/buf.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/str.h"

#define MAX_QUEUE        4096
#define PROBE_TIMEOUT_MS 5000
#define SIDE_TIMEOUT_MS  30000 /* notifications, responses and DELETE */
#define ERROR_BODY_MAX   65536
#define RETRY_MIN_MS     250
#define RETRY_MAX_MS     30000
#define SESSION_ID_MAX   256
#define EVENT_ID_MAX     256
#define URL_MAX          2048
#define MAX_HEADERS      64
#define BACKLOG_HIGH     (1024u * 1024) /* client bytes unread: stop reading upstream */
#define BACKLOG_LOW      (256u * 1024)  /* ... and go on below this */
#define HOLD_CHECK_MS    20
#define PARAM_VALUE_MAX  4096 /* an Mcp-Param-* value, decoded (as the gateway's check) */

struct http_upstream;
struct http_chan;

/* One transfer of a channel: a POST, the GET stream, or a GET resuming a
 * POST's stream. */
struct post {
	struct http_chan *c;     /* NULL for a DELETE on the upstream's side list */
	struct http_upstream *u; /* the side list's owner */
	const char *why;         /* set when a stream is refused: the reason */
	struct post *prev, *next;
	struct mg_fetch *f;
	int64_t up_id; /* the request carried, or -1 */
	bool get;      /* the channel's GET stream */
	bool resume;   /* a GET resuming a POST stream (Last-Event-ID) */
	bool init;     /* carries the handshake (initialize or server/discover) */
	bool sse;      /* the answer is an event stream */
	bool busy;     /* inside a callback that may free the channel's state */
	bool cancelled;
	bool expired; /* 404 for the session */
	bool discard; /* a body that carries no message */
	bool held;    /* paused: the client behind it is not reading */
	bool got_event;
	bool lists_tools; /* a 2026-07-28 tools/list: learn x-mcp-header from the answer */
	long status;
	struct mg_sse_decoder dec;
	struct mg_buf body;
	char last_event_id[EVENT_ID_MAX];
};

struct http_chan {
	struct mg_channel ch; /* first */
	struct http_upstream *up;
	struct http_chan *prev, *next;
	char *identity; /* a dedicated channel's identity (owned), or NULL */
	char session_id[SESSION_ID_MAX];
	char endpoint[URL_MAX]; /* sse transport: where messages are POSTed */
	char get_event_id[EVENT_ID_MAX];
	struct post *posts;
	struct post *get; /* the GET stream, or NULL */
	struct event *retry_timer;
	struct event *probe_timer;
	unsigned failures;     /* consecutive transport failures (backoff) */
	unsigned get_failures; /* consecutive GET stream failures */
	bool dedicated;
	bool closing;
	bool transport_failed; /* the last failure was the network, not an answer */
	bool get_unsupported;  /* the server answered 405 to GET */
};

struct http_upstream {
	struct mg_upstream base; /* first */
	struct mg_fetcher *fetcher;
	struct http_chan *chans;
	size_t nchans;
	struct post *side;        /* DELETEs still running, not tied to a channel */
	struct event *hold_timer; /* checks held posts while any is held */
	size_t held;
	json_t *tool_params; /* x-mcp-header annotations from this server's tools/list */
	bool sse;            /* transport = "sse" */
};

static struct http_upstream *hup(struct mg_upstream *up)
{
	return (struct http_upstream *)up;
}

static void chan_connect(struct http_chan *c);
static void chan_free(struct http_chan *c);
static void chan_transport_failed(struct http_chan *c, const char *reason);
static void maybe_open_get(struct http_chan *c);
static int post_start(struct http_chan *c, const char *url, const char *method, const char *body,
                      size_t len, int64_t up_id, bool init, long timeout_ms, const char *event_id);

/* ---- headers ------------------------------------------------------------------------ */

static const struct mg_kvv *identity_headers(const struct mg_upstream_config *cfg, const char *id)
{
	if (!id)
		return NULL;
	for (size_t i = 0; i < cfg->n_identity_headers; i++)
		if (strcmp(cfg->identity_headers[i].identity, id) == 0)
			return &cfg->identity_headers[i].headers;
	return NULL;
}

static bool kvv_has(const struct mg_kvv *m, const char *key)
{
	for (size_t i = 0; m && i < m->n; i++)
		if (strcasecmp(m->v[i].key, key) == 0)
			return true;
	return false;
}

/* The request's extra header lines. Lines formatted here go into `room`
 * (the common ones: protocol version, session id, credentials; they are
 * copied into the request before the hdrs go out of scope) or, when it is
 * full, into their own allocation: no printf and no malloc per request. */
#define HDR_ROOM 2048
struct hdrs {
	const char *v[MAX_HEADERS];
	char *owned[MAX_HEADERS]; /* the lines of v allocated here */
	size_t n, n_owned;
	size_t used; /* bytes of room taken */
	char room[HDR_ROOM];
};

/* A constant "Name: value" line (static storage): no formatting. */
static void hdr_line(struct hdrs *h, const char *line)
{
	if (h->n < MAX_HEADERS)
		h->v[h->n++] = line;
}

static void hdr_add(struct hdrs *h, const char *name, const char *value)
{
	if (h->n >= MAX_HEADERS)
		return;
	size_t nl = strlen(name), vl = strlen(value), need = nl + 2 + vl + 1;
	char *line;
	if (need <= HDR_ROOM - h->used) {
		line = h->room + h->used;
		h->used += need;
	} else {
		if (h->n_owned >= MAX_HEADERS || !(line = malloc(need)))
			return;
		h->owned[h->n_owned++] = line;
	}
	memcpy(line, name, nl);
	memcpy(line + nl, ": ", 2);
	memcpy(line + nl + 2, value, vl + 1);
	h->v[h->n++] = line;
}

static void hdrs_free(struct hdrs *h)
{
	for (size_t i = 0; i < h->n_owned; i++)
		free(h->owned[i]);
	h->n = h->n_owned = h->used = 0;
}

/* The configured credentials: the upstream's headers, each replaced by
 * the identity's own of the same name. */
static void add_credentials(struct hdrs *h, const struct mg_upstream_config *cfg,
                            const char *identity)
{
	const struct mg_kvv *own = identity_headers(cfg, identity);
	for (size_t i = 0; i < cfg->headers.n; i++)
		if (!kvv_has(own, cfg->headers.v[i].key))
			hdr_add(h, cfg->headers.v[i].key, cfg->headers.v[i].value);
	for (size_t i = 0; own && i < own->n; i++)
		hdr_add(h, own->v[i].key, own->v[i].value);
}

/* A header whose value is `v` (n bytes): as is when it is plain visible
 * ASCII with no leading or trailing space, else in the spec's
 * "=?base64?…?=" form. */
static void add_encoded_header(struct hdrs *h, const char *name, const char *v, size_t n)
{
	bool plain = n > 0 && v[0] != ' ' && v[n - 1] != ' ';
	for (size_t i = 0; plain && i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7E)
			plain = false;
	if (plain) {
		hdr_add(h, name, v);
		return;
	}
	size_t cap = mg_base64_encoded_len(n, false) + 16;
	char *b = malloc(cap);
	if (!b)
		return;
	memcpy(b, "=?base64?", 9);
	size_t k = mg_base64_encode(v, n, b + 9, cap - 9, false);
	memcpy(b + 9 + k, "?=", 3);
	hdr_add(h, name, b);
	free(b);
}

/* Mcp-Name's value. */
static void add_name_header(struct hdrs *h, const char *name)
{
	add_encoded_header(h, "Mcp-Name", name, strlen(name));
}

/* The Mcp-Param-{Name} headers of a 2026-07-28 tools/call (SEP-2243): one
 * per x-mcp-header argument of the tool (learned from this server's
 * tools/list answers) with a non-null value, encoded as the client had to
 * encode it. The server validates them against the body, so without them
 * it refuses the call (400, -32020). The gateway has checked the client's
 * own headers against the same body before; for a bridged legacy client
 * these are the only ones. */
static void add_param_headers(struct hdrs *h, struct http_upstream *u, const char *tool,
                              json_t *arguments)
{
	json_t *spec = json_object_get(u->tool_params, tool);
	size_t i, j;
	json_t *p;
	json_array_foreach(json_object_get(spec, "headers"), i, p)
	{
		const char *name = json_string_value(json_object_get(p, "header"));
		json_t *v = arguments, *k;
		json_array_foreach(json_object_get(p, "path"), j, k) v =
		    json_is_object(v) ? json_object_get(v, json_string_value(k)) : NULL;
		if (!name || !v || json_is_null(v))
			continue;
		char full[160], num[32];
		snprintf(full, sizeof full, "Mcp-Param-%s", name);
		if (json_is_string(v) && json_string_length(v) <= PARAM_VALUE_MAX)
			add_encoded_header(h, full, json_string_value(v), json_string_length(v));
		else if (json_is_integer(v)) {
			snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
			hdr_add(h, full, num);
		} else if (json_is_boolean(v))
			hdr_add(h, full, json_is_true(v) ? "true" : "false");
	}
}

/* Learns the x-mcp-header annotations from a message answering a
 * tools/list (a result with `tools`; anything else is ignored). */
static void learn_tool_params(struct http_upstream *u, const char *text, size_t len)
{
	if (!memmem(text, len, "\"tools\"", 7))
		return;
	json_t *m = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *tools = json_object_get(json_object_get(m, "result"), "tools");
	if (json_is_array(tools))
		mg_mcp_params_learn(u->tool_params, tools);
	json_decref(m);
}

/* The 2026-07-28 request headers: Mcp-Method and, for the methods that
 * name a target, Mcp-Name, from the body; a tools/call's Mcp-Param-*
 * headers. Notes in `p` whether the answer lists tools. */
static void add_modern_headers(struct hdrs *h, struct post *p, const char *text, size_t len)
{
	json_t *m = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	const char *method = json_string_value(json_object_get(m, "method"));
	if (method) {
		hdr_add(h, "Mcp-Method", method);
		json_t *params = json_object_get(m, "params");
		const char *name = NULL;
		if (strcmp(method, "tools/call") == 0 || strcmp(method, "prompts/get") == 0)
			name = json_string_value(json_object_get(params, "name"));
		else if (strcmp(method, "resources/read") == 0)
			name = json_string_value(json_object_get(params, "uri"));
		if (name)
			add_name_header(h, name);
		if (name && strcmp(method, "tools/call") == 0)
			add_param_headers(h, p->u, name, json_object_get(params, "arguments"));
		p->lists_tools = strcmp(method, "tools/list") == 0;
	}
	json_decref(m);
}

/* W3C trace context: a sampled request carries it in params._meta
 * (the gateway's tracer put it there); HTTP servers read the headers. Only
 * well-formed values travel (they go into a header). */
static void add_trace_headers(struct hdrs *h, const char *text, size_t len)
{
	json_t *m = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *meta = json_object_get(json_object_get(m, "params"), "_meta");
	static const char *const names[] = { "traceparent", "tracestate", NULL };
	for (size_t i = 0; names[i]; i++) {
		const char *v = json_string_value(json_object_get(meta, names[i]));
		if (!v || !*v || strlen(v) > 512)
			continue;
		bool ok = true;
		for (const char *c = v; *c && ok; c++)
			ok = *c >= 0x20 && *c < 0x7F;
		if (ok)
			hdr_add(h, names[i], v);
	}
	json_decref(m);
}

static void add_protocol_headers(struct hdrs *h, struct http_chan *c)
{
	const char *version = NULL;
	if (c->ch.modern || c->ch.probing)
		version = MG_MCP_MODERN_VERSION;
	else if (c->ch.init_result)
		version = json_string_value(json_object_get(c->ch.init_result, "protocolVersion"));
	if (version)
		hdr_add(h, "MCP-Protocol-Version", version);
	if (c->session_id[0])
		hdr_add(h, "Mcp-Session-Id", c->session_id);
}

/* ---- synthesized answers --------------------------------------------------------------- */

/* Answers the request `up_id` (when the channel still waits for it) with
 * an error the client may read; `detail` goes to the log only. */
static void fail_request(struct http_chan *c, int64_t up_id, const char *what, const char *detail,
                         long status)
{
	if (up_id < 0 || !mg_channel_find(&c->ch, up_id))
		return;
	/* A legacy server refusing the era probe is the normal case. */
	bool probe = c->ch.probing && up_id == c->ch.init_call.up_id;
	mg_log(probe ? MG_LOG_DEBUG : MG_LOG_WARN, "%s: request %lld: %s%s%s", c->ch.name,
	       (long long)up_id, what, detail ? ": " : "", detail ? detail : "");
	char msg[300];
	snprintf(msg, sizeof msg, "upstream %s: %s", c->up->base.cfg->name, what);
	json_t *data =
	    json_pack("{s:s,s:s}", "mcpGuard", "upstream_error", "upstream", c->up->base.cfg->name);
	if (status > 0)
		json_object_set_new(data, "httpStatus", json_integer(status));
	json_t *id = json_integer(up_id);
	json_t *e = mg_rpc_error_new(id, MG_RPC_INTERNAL_ERROR, msg, data);
	json_decref(id);
	size_t len;
	char *text = mg_json_dump(e, &len);
	json_decref(e);
	if (text)
		mg_channel_receive(&c->ch, text, len);
	free(text);
}

static const char *failure_words(enum mg_fetch_failure f)
{
	switch (f) {
	case MG_FETCH_FAIL_CONNECT:
		return "unreachable (connection failed)";
	case MG_FETCH_FAIL_TIMEOUT:
		return "did not answer in time";
	case MG_FETCH_FAIL_TLS:
		return "TLS handshake failed";
	case MG_FETCH_FAIL_BLOCKED:
		return "address refused by the SSRF rule (allow_private_networks)";
	case MG_FETCH_FAIL_TOO_BIG:
		return "answer larger than max_message_bytes";
	default:
		return "transfer failed";
	}
}

/* ---- posts ----------------------------------------------------------------------------- */

/* Unlinks and frees a post (its transfer is over or cancelled). */
static void post_destroy(struct post *p)
{
	struct http_chan *c = p->c;
	struct post **head = c ? &c->posts : &p->u->side;
	if (c && c->get == p)
		c->get = NULL;
	if (p->held && p->u->held)
		p->u->held--;
	if (p->prev)
		p->prev->next = p->next;
	else if (*head == p)
		*head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	mg_sse_decoder_free(&p->dec);
	mg_buf_free(&p->body);
	free(p);
}

/* The same, and frees a closing channel whose last transfer this was:
 * the caller must not touch the channel afterwards when it was closing. */
static void post_unlink_free(struct post *p)
{
	struct http_chan *c = p->c;
	post_destroy(p);
	if (c && c->closing && !c->posts)
		chan_free(c);
}

/* Stops a transfer: freed now, or when its running callback returns. The
 * channel itself is never freed here. */
static void post_cancel(struct post *p)
{
	if (p->busy) {
		p->cancelled = true;
		return;
	}
	mg_fetch_cancel(p->f);
	p->f = NULL;
	post_destroy(p);
}

/* Feeds one message from the server to the channel. Returns non-zero when
 * the transfer must stop (its channel went away meanwhile). */
static int deliver(struct post *p, const char *text, size_t len)
{
	struct http_chan *c = p->c;
	if (!c || c->closing)
		return 1;
	if (p->lists_tools)
		learn_tool_params(p->u, text, len);
	p->busy = true;
	mg_channel_receive(&c->ch, text, len);
	p->busy = false;
	return p->cancelled ? 1 : 0;
}

static int on_sse_event(const struct mg_sse_event *ev, void *arg)
{
	struct post *p = arg;
	struct http_chan *c = p->c;
	if (ev->id && ev->id[0]) {
		char *dst = p->get ? c->get_event_id : p->last_event_id;
		snprintf(dst, EVENT_ID_MAX, "%s", ev->id);
	}
	if (c->up->sse && p->get && strcmp(ev->event, "endpoint") == 0) {
		char url[URL_MAX];
		char *ref = mg_strndup(ev->data, ev->data_len);
		int rc =
		    ref ? mg_fetch_resolve_url(c->up->base.cfg->url, ref, url, sizeof url) : -1;
		free(ref);
		if (rc == -2) {
			mg_log_error(
			    "%s: the server's endpoint event names another origin than %s; "
			    "refused",
			    c->ch.name, c->up->base.cfg->url);
			p->why = "the SSE endpoint event names another origin (refused)";
			return 1;
		}
		if (rc < 0) {
			mg_log_error("%s: the server's endpoint event is not a usable URL",
			             c->ch.name);
			p->why = "the SSE endpoint event is not a usable URL";
			return 1;
		}
		bool first = !c->endpoint[0];
		snprintf(c->endpoint, sizeof c->endpoint, "%s", url);
		if (first) {
			c->failures = 0;
			p->busy = true;
			mg_channel_connected(&c->ch);
			p->busy = false;
			return p->cancelled ? 1 : 0;
		}
		return 0;
	}
	if (strcmp(ev->event, "message") != 0 || ev->data_len == 0)
		return 0; /* other event types, and priming events without data */
	p->got_event = true;
	if (p->get)
		c->get_failures = 0;
	return deliver(p, ev->data, ev->data_len);
}

/* A callback is stopping its transfer (client.c frees the fetch, and no
 * on_end follows): the post goes too. Returns 1 for the callback. */
static int post_stop(struct post *p)
{
	p->f = NULL;
	post_unlink_free(p);
	return 1;
}

static int on_post_head(struct mg_fetch *f, long status, void *arg)
{
	struct post *p = arg;
	struct http_chan *c = p->c;
	const struct mg_upstream_config *cfg = c->up->base.cfg;
	p->status = status;
	char ctype[128] = "";
	mg_fetch_header(f, "Content-Type", ctype, sizeof ctype);
	if (p->init && status >= 200 && status < 300 && !c->ch.probing) {
		char sid[SESSION_ID_MAX];
		if (mg_fetch_header(f, "Mcp-Session-Id", sid, sizeof sid)) {
			bool ok = sid[0] != '\0';
			for (const char *s = sid; *s; s++)
				if (*s < 0x21 || *s > 0x7E)
					ok = false;
			if (ok)
				snprintf(c->session_id, sizeof c->session_id, "%s", sid);
			else
				mg_log_warn(
				    "%s: ignoring an Mcp-Session-Id with invalid characters",
				    c->ch.name);
		}
	}
	if (status == 404 && c->session_id[0] && !p->init)
		p->expired = true;
	if (p->get && status == 405) {
		c->get_unsupported = true;
		mg_log_debug("%s: the server offers no GET stream", c->ch.name);
		return post_stop(p);
	}
	bool ok = status >= 200 && status < 300;
	if (ok && strncasecmp(ctype, "text/event-stream", 17) == 0) {
		p->sse = true;
		mg_sse_decoder_init(&p->dec, (size_t)cfg->max_message_bytes, on_sse_event, p);
		return 0;
	}
	if (p->get && ok) {
		mg_log_warn("%s: the GET stream answered %s, not text/event-stream", c->ch.name,
		            ctype[0] ? ctype : "no content type");
		c->get_unsupported = true;
		return post_stop(p);
	}
	if (ok && (c->up->sse || strncasecmp(ctype, "application/json", 16) != 0)) {
		/* Legacy SSE answers on the stream ("Accepted" here); a Streamable
		 * HTTP answer that is neither JSON nor SSE carries no message. */
		p->discard = true;
		return 0;
	}
	mg_buf_init(&p->body, ok ? (size_t)cfg->max_message_bytes : ERROR_BODY_MAX);
	return 0;
}

/* Backpressure: a streamed answer whose client is not reading is paused
 * (the server is held by TCP flow control, nothing piles up here) and
 * resumed once the client caught up; a timer looks every 20 ms while any
 * transfer is held. */
static size_t post_backlog(struct post *p)
{
	struct mg_call *call = p->up_id >= 0 ? mg_channel_find(&p->c->ch, p->up_id) : NULL;
	return call && call->backlog ? call->backlog(call, call->arg) : 0;
}

static void arm_hold_timer(struct http_upstream *u)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = HOLD_CHECK_MS * 1000 };
	if (u->hold_timer && !evtimer_pending(u->hold_timer, NULL))
		evtimer_add(u->hold_timer, &tv);
}

static void post_check_backlog(struct post *p)
{
	if (p->held || !p->f || post_backlog(p) <= BACKLOG_HIGH)
		return;
	mg_fetch_pause(p->f, true);
	p->held = true;
	p->u->held++;
	arm_hold_timer(p->u);
}

static void on_hold_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_upstream *u = arg;
	(void)fd;
	(void)what;
	for (struct http_chan *c = u->chans; c; c = c->next)
		for (struct post *p = c->posts; p; p = p->next)
			if (p->held && post_backlog(p) < BACKLOG_LOW) {
				p->held = false;
				u->held--;
				mg_fetch_pause(p->f, false);
			}
	if (u->held)
		arm_hold_timer(u);
}

static int on_post_body(struct mg_fetch *f, const char *data, size_t n, void *arg)
{
	struct post *p = arg;
	(void)f;
	if (p->discard)
		return 0;
	if (p->sse) {
		p->busy = true;
		int rc = mg_sse_feed(&p->dec, data, n);
		p->busy = false;
		if (p->cancelled) {
			post_unlink_free(p);
			return 1;
		}
		if (rc == -1) {
			fail_request(p->c, p->up_id, "event larger than max_message_bytes", NULL,
			             0);
			if (p->get)
				mg_log_error("%s: an event on the GET stream is larger than "
				             "max_message_bytes; stream dropped",
				             p->c->ch.name);
		}
		if (rc == 0 && !p->get)
			post_check_backlog(p);
		if (rc != 0) {
			struct http_chan *c = p->c;
			bool reconnect = p->get && c->up->sse && !c->closing;
			const char *why = p->why ? p->why : "the SSE stream was dropped";
			post_unlink_free(p);
			if (reconnect)
				chan_transport_failed(c, why);
			return 1;
		}
		return 0;
	}
	if (mg_buf_append(&p->body, data, n) < 0) {
		if (p->status >= 200 && p->status < 300)
			fail_request(p->c, p->up_id, "answer larger than max_message_bytes", NULL,
			             0);
		else
			fail_request(p->c, p->up_id, "error answer too large", NULL, p->status);
		post_unlink_free(p);
		return 1;
	}
	return 0;
}

/* An HTTP error status: pass a JSON-RPC error body on when it answers this
 * request, else answer with our own error. */
static void post_http_error(struct post *p)
{
	struct http_chan *c = p->c;
	if (p->up_id < 0 && !p->init) {
		mg_log_warn("%s: message refused: HTTP %ld", c->ch.name, p->status);
		return;
	}
	if (p->up_id >= 0 && p->body.len) {
		json_t *m = json_loadb(p->body.data, p->body.len, JSON_REJECT_DUPLICATES, NULL);
		json_t *id = json_object_get(m, "id");
		bool ours = json_is_integer(id) && json_integer_value(id) == p->up_id &&
		            json_is_object(json_object_get(m, "error"));
		json_decref(m);
		if (ours && deliver(p, p->body.data, p->body.len) != 0)
			return;
	}
	char what[80];
	snprintf(what, sizeof what, "answered HTTP %ld", p->status);
	char detail[200] = "";
	if (p->body.len) {
		/* Upstream text is untrusted: only printable bytes reach the log. */
		size_t k = 0;
		for (size_t i = 0; i < p->body.len && k + 1 < sizeof detail; i++) {
			unsigned char ch = (unsigned char)p->body.data[i];
			detail[k++] = ch >= 0x20 && ch < 0x7F ? (char)ch : '.';
		}
		detail[k] = '\0';
	}
	fail_request(c, p->up_id, what, detail[0] ? detail : NULL, p->status);
}

static void session_expired(struct http_chan *c)
{
	mg_log_warn("%s: the server no longer knows session %s", c->ch.name, c->session_id);
	c->session_id[0] = '\0';
	c->get_event_id[0] = '\0';
	if (c->get)
		post_cancel(c->get);
	if (c->dedicated) {
		/* The client's state on the server is gone: its session ends, and
		 * the client (answered 404) initializes again. */
		mg_channel_lost(&c->ch, "upstream session expired", true);
		return;
	}
	mg_channel_lost(&c->ch, "upstream session expired; a new one is being initialized", false);
	if (!c->closing)
		chan_connect(c);
}

static void schedule_retry(struct http_chan *c, unsigned failures)
{
	long delay = RETRY_MIN_MS;
	long max_ms = (long)c->up->base.cfg->restart_max_backoff_secs * 1000;
	if (max_ms > RETRY_MAX_MS)
		max_ms = RETRY_MAX_MS;
	for (unsigned i = 1; i < failures && delay < max_ms; i++)
		delay *= 2;
	if (delay > max_ms)
		delay = max_ms;
	/* Jitter: several gateways must not reconnect in lockstep. */
	uint32_t r = 0;
	mg_random_bytes(&r, sizeof r);
	delay = delay / 2 + (long)(r % (uint32_t)(delay / 2 + 1));
	struct timeval tv = { .tv_sec = delay / 1000, .tv_usec = (delay % 1000) * 1000 };
	evtimer_add(c->retry_timer, &tv);
}

static void on_post_end(struct mg_fetch *f, const char *error, void *arg)
{
	struct post *p = arg;
	struct http_chan *c = p->c;
	p->f = NULL;
	if (c->closing) {
		post_unlink_free(p);
		return;
	}
	p->busy = true;
	if (error && p->up_id >= 0 && !mg_channel_find(&c->ch, p->up_id) && !p->get) {
		/* Nobody waits for this one any more (a probe given up, a
		 * cancelled call): its failure says nothing about the server. */
		p->busy = false;
		post_destroy(p);
		return;
	}
	if (error) {
		enum mg_fetch_failure why = mg_fetch_failure(f);
		if (p->status == 0 &&
		    (why == MG_FETCH_FAIL_CONNECT || why == MG_FETCH_FAIL_TLS ||
		     why == MG_FETCH_FAIL_BLOCKED || why == MG_FETCH_FAIL_TIMEOUT)) {
			/* The server is not there: the conversation is lost, every
			 * call waiting on it fails with the reason. */
			mg_log_warn("%s: %s", c->ch.name, error);
			char reason[200];
			snprintf(reason, sizeof reason, "upstream %s: %s", c->up->base.cfg->name,
			         failure_words(why));
			p->busy = false;
			post_destroy(p);
			chan_transport_failed(c, reason);
			return;
		}
		if (p->get)
			mg_log_info("%s: GET stream ended: %s", c->ch.name, error);
		else if (p->up_id >= 0 || p->init)
			fail_request(c, p->up_id, failure_words(why), error, 0);
		else
			mg_log_warn("%s: message not delivered: %s", c->ch.name, error);
	} else if (p->expired) {
		p->busy = false;
		post_destroy(p);
		session_expired(c);
		return;
	} else if (p->status >= 200 && p->status < 300) {
		if (!p->sse && p->body.len) {
			if (deliver(p, p->body.data, p->body.len) != 0)
				goto out;
		} else if (!p->sse && (p->up_id >= 0) && !c->up->sse) {
			fail_request(c, p->up_id, "accepted the request without answering it", NULL,
			             p->status);
		}
	} else if (!c->up->sse || p->up_id >= 0 || p->init) {
		post_http_error(p);
	}
	if (p->cancelled)
		goto out;
	/* A stream that ended before its answer: resume it where it stopped
	 * (legacy Streamable HTTP keeps the events of a stream for a GET with
	 * Last-Event-ID), else the request has failed. */
	if (!error && p->sse && p->up_id >= 0 && mg_channel_find(&c->ch, p->up_id) && !c->up->sse) {
		if (p->last_event_id[0] && c->session_id[0] && !p->resume && !c->closing) {
			post_start(c, c->up->base.cfg->url, "GET", NULL, 0, p->up_id, false, -1,
			           p->last_event_id);
		} else {
			fail_request(c, p->up_id, "closed the stream before answering", NULL, 0);
		}
	}
out:;
	bool ended_get = p->get && !p->cancelled;
	bool closing = c->closing;
	char why[120];
	snprintf(why, sizeof why, "%s", p->why ? p->why : "the SSE stream closed");
	if (p->get && p->status && (p->status < 200 || p->status >= 300) && !p->why)
		snprintf(why, sizeof why, "the SSE stream was refused: HTTP %ld", p->status);
	p->busy = false;
	post_unlink_free(p);
	if (closing)
		return;
	if (ended_get) {
		if (c->up->sse) {
			chan_transport_failed(c, why);
		} else if (!c->get_unsupported) {
			c->get_failures++;
			schedule_retry(c, c->get_failures);
		}
		return;
	}
	maybe_open_get(c);
}

static const struct mg_fetch_stream post_callbacks = {
	.on_head = on_post_head,
	.on_body = on_post_body,
	.on_end = on_post_end,
};

/* A DELETE on the upstream's side list: only its end matters. */
static void on_side_end(struct mg_fetch *f, const char *error, void *arg)
{
	struct post *p = arg;
	(void)f;
	p->f = NULL;
	if (error)
		mg_log_debug("upstream %s: DELETE of a session: %s", p->u->base.cfg->name, error);
	post_destroy(p);
}

static const struct mg_fetch_stream side_callbacks = { .on_end = on_side_end };

/* Starts one transfer for channel `c`. `event_id` makes it a GET resuming
 * after that event. Returns 0, or -1 when it could not start. */
static int post_start(struct http_chan *c, const char *url, const char *method, const char *body,
                      size_t len, int64_t up_id, bool init, long timeout_ms, const char *event_id)
{
	struct http_upstream *u = c->up;
	const struct mg_upstream_config *cfg = u->base.cfg;
	struct post *p = calloc(1, sizeof *p);
	if (!p)
		return -1;
	p->c = c;
	p->u = u;
	p->up_id = up_id;
	p->init = init;
	p->get = strcmp(method, "GET") == 0 && up_id < 0;
	p->resume = strcmp(method, "GET") == 0 && up_id >= 0;
	struct hdrs h;
	h.n = h.n_owned = h.used = 0;
	if (strcmp(method, "POST") == 0) {
		hdr_line(&h, "Content-Type: application/json");
		hdr_line(&h, "Accept: application/json, text/event-stream");
	} else if (strcmp(method, "GET") == 0) {
		hdr_line(&h, "Accept: text/event-stream");
	}
	if (event_id && event_id[0])
		hdr_add(&h, "Last-Event-ID", event_id);
	if (!u->sse) {
		add_protocol_headers(&h, c);
		if (body && (c->ch.modern || c->ch.probing))
			add_modern_headers(&h, p, body, len);
	}
	if (body && len && memmem(body, len, "\"traceparent\"", 13))
		add_trace_headers(&h, body, len);
	const char *identity = c->identity;
	if (c->ch.sending && c->ch.sending->identity)
		identity = c->ch.sending->identity;
	add_credentials(&h, cfg, identity);
	struct mg_fetch_opts o = {
		.url = url,
		.method = method,
		.headers = h.v,
		.n_headers = h.n,
		.body = body,
		.body_len = len,
		.timeout_ms = timeout_ms,
		.connect_timeout_ms = (long)cfg->connect_timeout_secs * 1000,
		.http_version = cfg->http2_prior_knowledge ? MG_FETCH_H2C : MG_FETCH_HTTP_AUTO,
		.allow_private = cfg->allow_private_networks,
	};
	char err[256];
	p->f = mg_fetch_stream_start(u->fetcher, &o, &post_callbacks, p, err, sizeof err);
	hdrs_free(&h);
	if (!p->f) {
		mg_log_error("%s: cannot start a request: %s", c->ch.name, err);
		free(p);
		return -1;
	}
	p->next = c->posts;
	if (c->posts)
		c->posts->prev = p;
	c->posts = p;
	if (p->get)
		c->get = p;
	return 0;
}

/* ---- the channel's transport ---------------------------------------------------------- */

/* notifications/cancelled also stops the transfer of the request it names. */
static void abort_cancelled(struct http_chan *c, const char *text, size_t len)
{
	if (len > 4096 || !memmem(text, len, "notifications/cancelled", 23))
		return;
	json_t *m = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *rid = json_object_get(json_object_get(m, "params"), "requestId");
	if (json_is_integer(rid) && strcmp(json_string_value(json_object_get(m, "method")) ?: "",
	                                   "notifications/cancelled") == 0) {
		int64_t id = json_integer_value(rid);
		for (struct post *p = c->posts, *next; p; p = next) {
			next = p->next;
			if (p->up_id == id && !p->get)
				post_cancel(p);
		}
	}
	json_decref(m);
}

static int chan_send(struct mg_channel *ch, const char *data, size_t len)
{
	struct http_chan *c = (struct http_chan *)ch;
	if (c->closing)
		return -1;
	const char *url = c->up->sse ? c->endpoint : c->up->base.cfg->url;
	if (!url[0])
		return -1;
	struct mg_call *call = ch->sending;
	int64_t up_id = call ? call->up_id : -1;
	bool init = call && call == &ch->init_call;
	/* Requests are bounded by the gateway's own deadline (which cancels
	 * them); what expects no answer gets a short one; the handshake, which
	 * no client waits for, is bounded here (a timeout reconnects). */
	long timeout = call ? -1 : SIDE_TIMEOUT_MS;
	if (init) {
		int64_t secs = c->up->base.cfg->request_timeout_secs;
		timeout = ch->probing ? 2 * PROBE_TIMEOUT_MS : (secs > 0 ? secs : 30) * 1000;
	}
	if (post_start(c, url, "POST", data, len, up_id, init, timeout, NULL) < 0)
		return -1;
	if (!call)
		abort_cancelled(c, data, len);
	return 0;
}

static const struct mg_channel_ops http_chan_ops = { .send = chan_send };

static void maybe_open_get(struct http_chan *c)
{
	if (c->up->sse || c->closing || c->get || c->get_unsupported || c->ch.modern ||
	    c->ch.state != MG_CH_READY || !c->session_id[0] ||
	    evtimer_pending(c->retry_timer, NULL))
		return;
	post_start(c, c->up->base.cfg->url, "GET", NULL, 0, -1, false, -1,
	           c->get_event_id[0] ? c->get_event_id : NULL);
}

/* Connects (again): the handshake for Streamable HTTP, the SSE stream for
 * the legacy transport (the handshake follows its endpoint event). */
static void chan_connect(struct http_chan *c)
{
	if (c->closing)
		return;
	if (!c->up->sse) {
		mg_channel_connected(&c->ch);
		if (c->ch.probing && c->probe_timer) {
			struct timeval tv = { .tv_sec = PROBE_TIMEOUT_MS / 1000,
				              .tv_usec = (PROBE_TIMEOUT_MS % 1000) * 1000 };
			evtimer_add(c->probe_timer, &tv);
		}
		return;
	}
	c->endpoint[0] = '\0';
	if (post_start(c, c->up->base.cfg->url, "GET", NULL, 0, -1, false, -1, NULL) < 0)
		chan_transport_failed(c, "cannot open the SSE stream");
}

static void chan_transport_failed(struct http_chan *c, const char *reason)
{
	if (c->closing)
		return;
	c->transport_failed = true;
	c->failures++;
	if (!c->dedicated)
		snprintf(c->up->base.last_error, sizeof c->up->base.last_error, "%s", reason);
	for (struct post *p = c->posts, *next; p; p = next) {
		next = p->next;
		if (p->get || c->up->sse)
			post_cancel(p);
	}
	c->session_id[0] = '\0';
	c->endpoint[0] = '\0';
	c->get_event_id[0] = '\0';
	if (c->dedicated) {
		/* A client's conversation does not come back by itself: its state
		 * on the server is gone. */
		if (c->ch.state != MG_CH_CLOSED)
			mg_channel_lost(&c->ch, reason, true);
		return;
	}
	if (c->ch.state != MG_CH_DOWN && c->ch.state != MG_CH_CLOSED)
		mg_channel_lost(&c->ch, reason, false);
	else if (c->ch.hooks.on_down && c->failures == 1)
		c->ch.hooks.on_down(&c->ch, reason, c->ch.hooks.arg);
	c->up->base.restarts++;
	if (c->failures == 1 || c->failures % 10 == 0)
		mg_log_warn("%s: %s; reconnecting", c->ch.name, reason);
	schedule_retry(c, c->failures);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_chan *c = arg;
	(void)fd;
	(void)what;
	if (c->closing)
		return;
	if (c->ch.state == MG_CH_DOWN) {
		chan_connect(c);
		return;
	}
	maybe_open_get(c);
}

static void on_probe_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_chan *c = arg;
	(void)fd;
	(void)what;
	mg_channel_probe_timeout(&c->ch);
}

static void chan_free(struct http_chan *c)
{
	struct http_upstream *u = c->up;
	while (c->posts) {
		struct post *p = c->posts;
		mg_fetch_cancel(p->f);
		p->f = NULL;
		if (p->held && u->held)
			u->held--;
		c->posts = p->next;
		mg_sse_decoder_free(&p->dec);
		mg_buf_free(&p->body);
		free(p);
	}
	if (c->retry_timer)
		event_free(c->retry_timer);
	if (c->probe_timer)
		event_free(c->probe_timer);
	mg_channel_deinit(&c->ch);
	if (c->prev)
		c->prev->next = c->next;
	else
		u->chans = c->next;
	if (c->next)
		c->next->prev = c->prev;
	u->nchans--;
	mg_upstream_forget_channel(&u->base, &c->ch, c->dedicated);
	free(c->identity);
	free(c);
}

/* Sends DELETE for a session the gateway is done with (not tied to the
 * channel, which may be freed first). */
static void send_delete(struct http_chan *c)
{
	struct http_upstream *u = c->up;
	const struct mg_upstream_config *cfg = u->base.cfg;
	struct hdrs h;
	h.n = h.n_owned = h.used = 0;
	add_protocol_headers(&h, c);
	add_credentials(&h, cfg, c->identity);
	struct post *p = calloc(1, sizeof *p);
	if (!p) {
		hdrs_free(&h);
		return;
	}
	p->up_id = -1;
	p->u = u;
	struct mg_fetch_opts o = {
		.url = cfg->url,
		.method = "DELETE",
		.headers = h.v,
		.n_headers = h.n,
		.timeout_ms = SIDE_TIMEOUT_MS / 6,
		.connect_timeout_ms = (long)cfg->connect_timeout_secs * 1000,
		.http_version = cfg->http2_prior_knowledge ? MG_FETCH_H2C : MG_FETCH_HTTP_AUTO,
		.allow_private = cfg->allow_private_networks,
	};
	char err[256];
	p->f = mg_fetch_stream_start(u->fetcher, &o, &side_callbacks, p, err, sizeof err);
	hdrs_free(&h);
	if (!p->f) {
		free(p);
		return;
	}
	/* Kept on the upstream's side list so stop waits for it. */
	p->next = u->side;
	if (u->side)
		u->side->prev = p;
	u->side = p;
}

static void chan_close(struct http_chan *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->ch.ending = true;
	evtimer_del(c->retry_timer);
	if (c->probe_timer)
		evtimer_del(c->probe_timer);
	memset(&c->ch.hooks, 0, sizeof c->ch.hooks);
	if (c->ch.state != MG_CH_CLOSED)
		mg_channel_lost(&c->ch, "upstream closed", true);
	if (c->session_id[0] && !c->up->sse)
		send_delete(c);
	for (struct post *p = c->posts, *next; p; p = next) {
		next = p->next;
		post_cancel(p); /* a busy one is freed when its callback returns */
	}
	if (!c->posts)
		chan_free(c);
}

static struct http_chan *chan_new(struct http_upstream *u, json_t *init_params,
                                  const struct mg_channel_hooks *hooks, bool dedicated, bool probe,
                                  const char *identity)
{
	struct http_chan *c = calloc(1, sizeof *c);
	if (!c) {
		json_decref(init_params);
		return NULL;
	}
	mg_channel_init(&c->ch, &http_chan_ops, hooks, init_params, u->base.max_depth, MAX_QUEUE);
	snprintf(c->ch.name, sizeof c->ch.name, "upstream %s", u->base.cfg->name);
	c->ch.upstream = &u->base;
	c->up = u;
	c->dedicated = dedicated;
	c->identity = identity ? mg_strdup(identity) : NULL;
	c->retry_timer = evtimer_new(u->base.base, on_retry_timer, c);
	c->ch.probe = probe && !u->sse;
	if (c->ch.probe)
		c->probe_timer = evtimer_new(u->base.base, on_probe_timer, c);
	c->next = u->chans;
	if (u->chans)
		u->chans->prev = c;
	u->chans = c;
	u->nchans++;
	if (dedicated)
		u->base.dedicated++;
	return c;
}

/* ---- ops ------------------------------------------------------------------------------- */

static struct mg_channel *http_own_open(struct mg_upstream *up, const struct mg_channel_hooks *h,
                                        bool probe)
{
	struct http_chan *c =
	    chan_new(hup(up), mg_upstream_gateway_init_params(), h, false, probe, NULL);
	if (c)
		chan_connect(c);
	return c ? &c->ch : NULL;
}

static bool http_own_alive(struct mg_upstream *up, struct mg_channel *ch)
{
	(void)up;
	struct http_chan *c = (struct http_chan *)ch;
	return !c->closing && !c->transport_failed;
}

static void http_own_ready(struct mg_upstream *up, struct mg_channel *ch)
{
	(void)up;
	struct http_chan *c = (struct http_chan *)ch;
	c->failures = 0;
	c->transport_failed = false;
	if (c->probe_timer)
		evtimer_del(c->probe_timer);
}

static int http_start(struct mg_upstream *up, char *err, size_t err_size)
{
	struct mg_channel *ch = mg_upstream_own_channel(up, up->cfg->protocol == MG_PROTOCOL_AUTO);
	if (!ch) {
		snprintf(err, err_size, "out of memory");
		return -1;
	}
	up->primary = ch;
	return 0;
}

static struct mg_channel *http_open(struct mg_upstream *up, json_t *init_params,
                                    const struct mg_channel_hooks *hooks, const char *identity,
                                    char *err, size_t err_size)
{
	struct http_upstream *u = hup(up);
	if (up->dedicated >= (size_t)up->cfg->max_processes) {
		json_decref(init_params);
		snprintf(err, err_size,
		         "upstream %s has reached max_processes (%lld upstream sessions)",
		         up->cfg->name, (long long)up->cfg->max_processes);
		return NULL;
	}
	struct http_chan *c = chan_new(u, init_params, hooks, true, false, identity);
	if (!c) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	chan_connect(c);
	return &c->ch;
}

static void http_close(struct mg_upstream *up, struct mg_channel *ch)
{
	(void)up;
	chan_close((struct http_chan *)ch);
}

static void http_health(struct mg_upstream *up, json_t *out)
{
	struct http_upstream *u = hup(up);
	json_object_set_new(out, "url", json_string(up->cfg->url));
	json_object_set_new(out, "sessions_upstream", json_integer((json_int_t)up->dedicated));
	size_t transfers = 0;
	for (struct http_chan *c = u->chans; c; c = c->next)
		for (struct post *p = c->posts; p; p = p->next)
			transfers++;
	json_object_set_new(out, "transfers", json_integer((json_int_t)transfers));
}

static void http_stop(struct mg_upstream *up)
{
	struct http_upstream *u = hup(up);
	for (struct http_chan *c = u->chans, *next; c; c = next) {
		next = c->next;
		chan_close(c);
	}
}

static bool http_idle(struct mg_upstream *up)
{
	struct http_upstream *u = hup(up);
	return u->nchans == 0 && !u->side;
}

static void http_free(struct mg_upstream *up)
{
	struct http_upstream *u = hup(up);
	while (u->chans) {
		struct http_chan *c = u->chans;
		c->closing = true;
		chan_free(c);
	}
	while (u->side) {
		struct post *p = u->side;
		u->side = p->next;
		mg_fetch_cancel(p->f);
		mg_sse_decoder_free(&p->dec);
		mg_buf_free(&p->body);
		free(p);
	}
	mg_fetcher_free(u->fetcher);
	json_decref(u->tool_params);
	if (u->hold_timer)
		event_free(u->hold_timer);
	free(u);
}

static const struct mg_upstream_ops http_ops = {
	.start = http_start,
	.open = http_open,
	.close = http_close,
	.own_open = http_own_open,
	.own_alive = http_own_alive,
	.own_ready = http_own_ready,
	.health = http_health,
	.stop = http_stop,
	.idle = http_idle,
	.free = http_free,
};

struct mg_upstream *mg_upstream_http_new(struct event_base *base,
                                         const struct mg_upstream_config *cfg,
                                         const struct mg_upstream_hooks *hooks, size_t max_depth,
                                         char *err, size_t err_size)
{
	struct http_upstream *u = calloc(1, sizeof *u);
	if (!u) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	u->base.ops = &http_ops;
	u->base.cfg = cfg;
	u->base.base = base;
	u->base.hooks = *hooks;
	u->base.max_depth = max_depth;
	u->sse = cfg->transport == MG_TRANSPORT_SSE;
	u->hold_timer = evtimer_new(base, on_hold_timer, u);
	u->tool_params = json_object();
	/* One transfer set per upstream: its own connection pool. */
	u->fetcher = mg_fetcher_new(base);
	if (!u->tool_params || !u->fetcher || mg_fetcher_prepare(u->fetcher, err, err_size) < 0) {
		if (!u->tool_params || !u->fetcher)
			snprintf(err, err_size, "out of memory");
		mg_fetcher_free(u->fetcher);
		json_decref(u->tool_params);
		if (u->hold_timer)
			event_free(u->hold_timer);
		free(u);
		return NULL;
	}
	return &u->base;
}
