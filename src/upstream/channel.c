/*
 * channel.c - id minting, pending calls, handshake and routing for one
 * upstream conversation (see channel.h).
 */
#include "upstream/channel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/jscan.h"
#include "mcp/jsonrpc.h"
#include "mcp/protocol.h"
#include "upstream/upstream.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"

#define MIN_BUCKETS 64

static size_t bucket_of(const struct mg_channel *ch, int64_t id)
{
	uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
	return (size_t)(h >> 32) & (ch->nbuckets - 1);
}

static int grow(struct mg_channel *ch)
{
	size_t n = ch->nbuckets ? ch->nbuckets * 2 : MIN_BUCKETS;
	struct mg_call **b = calloc(n, sizeof *b);
	if (!b)
		return -1;
	struct mg_call **old = ch->buckets;
	size_t oldn = ch->nbuckets;
	ch->buckets = b;
	ch->nbuckets = n;
	for (size_t i = 0; i < oldn; i++) {
		struct mg_call *c = old[i], *next;
		for (; c; c = next) {
			next = c->hnext;
			size_t k = bucket_of(ch, c->up_id);
			c->hnext = b[k];
			b[k] = c;
		}
	}
	free(old);
	return 0;
}

static int reg(struct mg_channel *ch, struct mg_call *c)
{
	if (ch->ncalls + 1 > ch->nbuckets && grow(ch) < 0)
		return -1;
	size_t k = bucket_of(ch, c->up_id);
	c->hnext = ch->buckets[k];
	ch->buckets[k] = c;
	ch->ncalls++;
	c->registered = true;
	return 0;
}

static void unreg(struct mg_channel *ch, struct mg_call *c)
{
	if (!c->registered)
		return;
	struct mg_call **pp = &ch->buckets[bucket_of(ch, c->up_id)];
	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = c->hnext;
	c->hnext = NULL;
	c->registered = false;
	ch->ncalls--;
}

struct mg_call *mg_channel_find(struct mg_channel *ch, int64_t up_id)
{
	if (!ch->nbuckets)
		return NULL;
	for (struct mg_call *c = ch->buckets[bucket_of(ch, up_id)]; c; c = c->hnext) {
		if (c->up_id == up_id)
			return c;
	}
	return NULL;
}

static void on_init_reply(struct mg_call *call, json_t *msg, void *arg);
static void flush_queue(struct mg_channel *ch);

void mg_channel_init(struct mg_channel *ch, const struct mg_channel_ops *ops,
                     const struct mg_channel_hooks *hooks, json_t *init_params, size_t max_depth,
                     size_t max_queue)
{
	memset(ch, 0, sizeof *ch);
	ch->ops = ops;
	ch->hooks = *hooks;
	ch->state = MG_CH_DOWN;
	ch->next_id = 1;
	ch->init_params = init_params;
	ch->max_depth = max_depth;
	ch->max_queue = max_queue;
	snprintf(ch->name, sizeof ch->name, "upstream");
}

static json_t *error_reply(int64_t id, const char *reason)
{
	json_t *jid = json_integer(id);
	json_t *e = mg_rpc_error_new(jid, MG_RPC_INTERNAL_ERROR, reason,
	                             json_pack("{s:s}", "mcpGuard", "upstream_unavailable"));
	json_decref(jid);
	return e;
}

/* Fails every registered and queued call with `reason`. */
static void fail_all(struct mg_channel *ch, const char *reason)
{
	/* Collect first: reply callbacks may register new calls. */
	struct mg_call *list = NULL;
	for (size_t i = 0; i < ch->nbuckets; i++) {
		struct mg_call *c = ch->buckets[i], *next;
		for (; c; c = next) {
			next = c->hnext;
			c->hnext = NULL;
			c->registered = false;
			c->qnext = list;
			list = c;
		}
		ch->buckets[i] = NULL;
	}
	ch->ncalls = 0;
	for (struct mg_call *c = ch->qhead; c; c = c->qnext) {
		/* queued calls are also registered and were collected above */
		free(c->queued_text);
		c->queued_text = NULL;
	}
	ch->qhead = ch->qtail = NULL;
	ch->qlen = 0;
	while (list) {
		struct mg_call *c = list;
		list = c->qnext;
		c->qnext = NULL;
		json_t *e = error_reply(c->up_id, reason);
		if (c->on_reply)
			c->on_reply(c, e, c->arg);
		json_decref(e);
	}
}

/* The legacy session with the server is over (see mg_channel.ready_us). */
static void session_over(struct mg_channel *ch, bool error)
{
	if (!ch->ready_us)
		return;
	uint64_t now = mg_now_us(), began = ch->ready_us;
	ch->ready_us = 0;
	struct mg_upstream *up = ch->upstream;
	if (up && up->hooks.on_session_end)
		up->hooks.on_session_end(up, ch, now > began ? now - began : 0, error,
		                         up->hooks.arg);
}

void mg_channel_deinit(struct mg_channel *ch)
{
	session_over(ch, false); /* the owner frees it: the gateway's decision */
	unreg(ch, &ch->init_call);
	fail_all(ch, "upstream closed");
	free(ch->buckets);
	ch->buckets = NULL;
	ch->nbuckets = 0;
	json_decref(ch->init_params);
	json_decref(ch->init_result);
	json_decref(ch->discover_result);
	ch->init_params = ch->init_result = ch->discover_result = NULL;
}

/* Hands one message to the transport; `call` is the request it carries
 * (NULL for notifications and responses), visible to the transport as
 * ch->sending during the call. */
static int send_as(struct mg_channel *ch, struct mg_call *call, const char *text, size_t len)
{
	ch->sending = call;
	int rc = ch->ops->send(ch, text, len);
	ch->sending = NULL;
	return rc;
}

static int transmit_as(struct mg_channel *ch, struct mg_call *call, json_t *msg)
{
	size_t len;
	char *text = mg_json_dump(msg, &len);
	if (!text)
		return -1;
	int rc = send_as(ch, call, text, len);
	free(text);
	return rc;
}

static int transmit(struct mg_channel *ch, json_t *msg)
{
	return transmit_as(ch, NULL, msg);
}

static void send_initialize(struct mg_channel *ch)
{
	ch->probing = false;
	memset(&ch->init_call, 0, sizeof ch->init_call);
	ch->init_call.on_reply = on_init_reply;
	ch->init_call.arg = ch;
	ch->init_call.ch = ch;
	ch->init_call.up_id = ch->next_id++;
	json_t *req = json_pack("{s:s,s:I,s:s,s:O}", "jsonrpc", "2.0", "id",
	                        (json_int_t)ch->init_call.up_id, "method", "initialize", "params",
	                        ch->init_params ? ch->init_params : json_object());
	if (!req || reg(ch, &ch->init_call) < 0 || transmit_as(ch, &ch->init_call, req) < 0) {
		json_decref(req);
		unreg(ch, &ch->init_call);
		mg_channel_lost(ch, "cannot send initialize", false);
		return;
	}
	ch->init_call.sent = true;
	json_decref(req);
}

static void on_probe_reply(struct mg_call *call, json_t *msg, void *arg)
{
	struct mg_channel *ch = arg;
	(void)call;
	ch->probing = false;
	json_t *result = json_object_get(msg, "result");
	json_t *versions = json_object_get(result, "supportedVersions");
	bool modern = false;
	size_t i;
	json_t *v;
	json_array_foreach(versions, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), MG_MCP_MODERN_VERSION) == 0)
			modern = true;
	}
	if (!modern) {
		/* Any error (or a discover without our version): a legacy server,
		 * which the probe did not disturb. */
		mg_log_debug("%s: server/discover failed; speaking the legacy protocol", ch->name);
		send_initialize(ch);
		return;
	}
	json_decref(ch->discover_result);
	ch->discover_result = json_incref(result);
	ch->modern = true;
	ch->state = MG_CH_READY;
	if (ch->hooks.on_ready)
		ch->hooks.on_ready(ch, result, ch->hooks.arg);
	flush_queue(ch);
}

void mg_channel_connected(struct mg_channel *ch)
{
	ch->state = MG_CH_INITIALIZING;
	ch->modern = false;
	if (!ch->probe) {
		send_initialize(ch);
		return;
	}
	memset(&ch->init_call, 0, sizeof ch->init_call);
	ch->init_call.on_reply = on_probe_reply;
	ch->init_call.arg = ch;
	ch->init_call.ch = ch;
	ch->init_call.up_id = ch->next_id++;
	ch->probing = true;
	json_t *req =
	    json_pack("{s:s,s:I,s:s,s:{s:{s:s,s:{s:s,s:s},s:{}}}}", "jsonrpc", "2.0", "id",
	              (json_int_t)ch->init_call.up_id, "method", "server/discover", "params",
	              "_meta", MG_MCP_META_VERSION, MG_MCP_MODERN_VERSION, MG_MCP_META_CLIENTINFO,
	              "name", "mcp-guard", "version", "probe", MG_MCP_META_CLIENTCAPS);
	if (!req || reg(ch, &ch->init_call) < 0 || transmit_as(ch, &ch->init_call, req) < 0) {
		json_decref(req);
		unreg(ch, &ch->init_call);
		mg_channel_lost(ch, "cannot send server/discover", false);
		return;
	}
	ch->init_call.sent = true;
	json_decref(req);
}

void mg_channel_probe_timeout(struct mg_channel *ch)
{
	if (!ch->probing || ch->state != MG_CH_INITIALIZING)
		return;
	mg_log_debug("%s: no answer to server/discover; speaking the legacy protocol", ch->name);
	unreg(ch, &ch->init_call);
	send_initialize(ch);
}

static void flush_queue(struct mg_channel *ch)
{
	while (ch->qhead && ch->state == MG_CH_READY) {
		struct mg_call *c = ch->qhead;
		ch->qhead = c->qnext;
		if (!ch->qhead)
			ch->qtail = NULL;
		ch->qlen--;
		c->qnext = NULL;
		int rc = send_as(ch, c, c->queued_text, c->queued_len);
		free(c->queued_text);
		c->queued_text = NULL;
		if (rc < 0) {
			unreg(ch, c);
			json_t *e = error_reply(c->up_id, "upstream is not accepting messages");
			if (c->on_reply)
				c->on_reply(c, e, c->arg);
			json_decref(e);
			continue;
		}
		c->sent = true;
	}
}

static void on_init_reply(struct mg_call *call, json_t *msg, void *arg)
{
	struct mg_channel *ch = arg;
	(void)call;
	json_t *result = json_object_get(msg, "result");
	if (!json_is_object(result) ||
	    !json_is_string(json_object_get(result, "protocolVersion"))) {
		json_t *err = json_object_get(msg, "error");
		const char *m = json_string_value(json_object_get(err, "message"));
		char reason[300];
		snprintf(reason, sizeof reason, "initialize failed: %s", m ? m : "no valid result");
		mg_log_error("%s: %s", ch->name, reason);
		if (ch->state != MG_CH_CLOSED) {
			ch->state = MG_CH_DOWN;
			if (ch->hooks.on_down)
				ch->hooks.on_down(ch, reason, ch->hooks.arg);
		}
		return;
	}
	json_decref(ch->init_result);
	ch->init_result = json_incref(result);
	json_t *n = json_pack("{s:s,s:s}", "jsonrpc", "2.0", "method", "notifications/initialized");
	transmit(ch, n);
	json_decref(n);
	ch->state = MG_CH_READY;
	ch->ready_us = mg_now_us();
	if (ch->hooks.on_ready)
		ch->hooks.on_ready(ch, result, ch->hooks.arg);
	flush_queue(ch);
}

void mg_channel_lost(struct mg_channel *ch, const char *reason, bool final)
{
	/* The handshake's own call must not report a second "down". */
	unreg(ch, &ch->init_call);
	ch->state = final ? MG_CH_CLOSED : MG_CH_DOWN;
	session_over(ch, !ch->ending);
	fail_all(ch, reason);
	if (ch->hooks.on_down)
		ch->hooks.on_down(ch, reason, ch->hooks.arg);
}

static int submit(struct mg_channel *ch, struct mg_call *call, char *text, size_t len);

int mg_channel_request(struct mg_channel *ch, struct mg_call *call, json_t *msg)
{
	if (ch->state == MG_CH_CLOSED)
		return -1;
	if (ch->state != MG_CH_READY && ch->qlen >= ch->max_queue)
		return -1;
	call->ch = ch;
	call->up_id = ch->next_id++;
	call->sent = false;
	call->qnext = NULL;
	call->hnext = NULL;
	json_object_set_new(msg, "id", json_integer(call->up_id));
	json_t *params = json_object_get(msg, "params");
	json_t *meta = json_is_object(params) ? json_object_get(params, "_meta") : NULL;
	json_t *tok = json_is_object(meta) ? json_object_get(meta, "progressToken") : NULL;
	call->progress = tok != NULL;
	if (tok)
		json_object_set_new(meta, "progressToken", json_integer(call->up_id));
	size_t len;
	char *text = mg_json_dump(msg, &len);
	return submit(ch, call, text, len);
}

int mg_channel_request_text(struct mg_channel *ch, struct mg_call *call, const char *text,
                            size_t len, size_t id_start, size_t id_end)
{
	if (ch->state == MG_CH_CLOSED)
		return -1;
	if (ch->state != MG_CH_READY && ch->qlen >= ch->max_queue)
		return -1;
	call->ch = ch;
	call->up_id = ch->next_id++;
	call->sent = false;
	call->qnext = NULL;
	call->hnext = NULL;
	call->progress = false;
	char num[MG_I64_CHARS];
	size_t num_len = mg_fmt_i64(num, call->up_id);
	size_t tail = len - id_end;
	char *out = malloc(id_start + num_len + tail + 1);
	if (out) {
		memcpy(out, text, id_start);
		memcpy(out + id_start, num, num_len);
		memcpy(out + id_start + num_len, text + id_end, tail);
		out[id_start + num_len + tail] = '\0';
	}
	return submit(ch, call, out, id_start + num_len + tail);
}

/* Registers `call` and sends `text` (owned; NULL when it could not be
 * built), or queues it until the channel is ready. */
static int submit(struct mg_channel *ch, struct mg_call *call, char *text, size_t len)
{
	if (!text || reg(ch, call) < 0) {
		free(text);
		return -1;
	}
	ch->requests++;
	if (ch->state == MG_CH_READY) {
		int rc = send_as(ch, call, text, len);
		free(text);
		if (rc < 0) {
			unreg(ch, call);
			return -1;
		}
		call->sent = true;
		return 0;
	}
	call->queued_text = text;
	call->queued_len = len;
	if (ch->qtail)
		ch->qtail->qnext = call;
	else
		ch->qhead = call;
	ch->qtail = call;
	ch->qlen++;
	return 0;
}

void mg_channel_cancel(struct mg_call *call, const char *reason)
{
	struct mg_channel *ch = call->ch;
	if (!ch || !call->registered)
		return;
	unreg(ch, call);
	if (call->queued_text) {
		struct mg_call **pp = &ch->qhead, *prev = NULL;
		while (*pp && *pp != call) {
			prev = *pp;
			pp = &(*pp)->qnext;
		}
		if (*pp) {
			*pp = call->qnext;
			if (ch->qtail == call)
				ch->qtail = prev;
			ch->qlen--;
		}
		free(call->queued_text);
		call->queued_text = NULL;
		call->qnext = NULL;
		return;
	}
	if (call->sent && ch->state == MG_CH_READY) {
		json_t *n =
		    json_pack("{s:s,s:s,s:{s:I,s:s}}", "jsonrpc", "2.0", "method",
		              "notifications/cancelled", "params", "requestId",
		              (json_int_t)call->up_id, "reason", reason ? reason : "cancelled");
		transmit(ch, n);
		json_decref(n);
	}
}

int mg_channel_send(struct mg_channel *ch, json_t *msg)
{
	if (ch->state != MG_CH_READY)
		return -1;
	return transmit(ch, msg);
}

static void answer_ping(struct mg_channel *ch, json_t *id)
{
	json_t *r = json_pack("{s:s,s:O,s:{}}", "jsonrpc", "2.0", "id", id, "result");
	transmit(ch, r);
	json_decref(r);
}

void mg_channel_receive(struct mg_channel *ch, const char *text, size_t len)
{
	struct mg_rpc_msg msg;
	struct mg_rpc_fail fail;
	struct mg_jscan js;
	/* Fast path: a result for a call that takes it as text is not parsed
	 * into a tree here at all. */
	if (mg_jscan(text, len, ch->max_depth, &js) == MG_JSCAN_OK && js.kind == MG_JSCAN_RESULT &&
	    js.id_is_int) {
		struct mg_call *c = mg_channel_find(ch, js.id_int);
		if (c && c->on_raw_reply) {
			unreg(ch, c);
			c->on_raw_reply(c, text, len, &js, c->arg);
			return;
		}
	}
	if (mg_rpc_parse(text, len, ch->max_depth, false, &msg, &fail) < 0) {
		ch->errors++;
		mg_log_warn("%s: dropped an invalid message from the upstream: %s", ch->name,
		            fail.message);
		json_decref(fail.id);
		return;
	}
	switch (msg.kind) {
	case MG_RPC_RESPONSE:
	case MG_RPC_ERROR: {
		struct mg_call *c = json_is_integer(msg.id)
		                        ? mg_channel_find(ch, json_integer_value(msg.id))
		                        : NULL;
		if (!c) {
			/* A late reply to a cancelled or timed-out request. */
			mg_log_debug("%s: reply for unknown id dropped", ch->name);
			break;
		}
		unreg(ch, c);
		if (c->on_reply)
			c->on_reply(c, msg.root, c->arg);
		break;
	}
	case MG_RPC_NOTIFICATION:
		if (strcmp(msg.method, "notifications/progress") == 0) {
			json_t *tok = json_object_get(msg.params, "progressToken");
			struct mg_call *c = json_is_integer(tok)
			                        ? mg_channel_find(ch, json_integer_value(tok))
			                        : NULL;
			if (c && c->progress && c->on_progress)
				c->on_progress(c, msg.root, c->arg);
			break;
		}
		{
			/* Modern: a subscription's notifications name the listen request. */
			json_t *meta = json_object_get(msg.params, "_meta");
			json_t *sub = json_is_object(meta)
			                  ? json_object_get(meta, MG_MCP_META_SUBSCRIPTION)
			                  : NULL;
			struct mg_call *c = json_is_integer(sub)
			                        ? mg_channel_find(ch, json_integer_value(sub))
			                        : NULL;
			if (c && c->on_progress) {
				c->on_progress(c, msg.root, c->arg);
				break;
			}
		}
		if (ch->hooks.on_notification)
			ch->hooks.on_notification(ch, msg.root, ch->hooks.arg);
		break;
	case MG_RPC_REQUEST:
		if (strcmp(msg.method, "ping") == 0)
			answer_ping(ch, msg.id);
		else if (ch->hooks.on_request)
			ch->hooks.on_request(ch, msg.root, ch->hooks.arg);
		break;
	case MG_RPC_BATCH:
		break;
	}
	mg_rpc_msg_free(&msg);
}
