/*
 * test_channel.c - the upstream channel's id and progress-token remapping,
 * queueing until the handshake completes, cancellation and failure, with
 * a fake transport that records what would be written to the upstream.
 */
#include "support.h"

#include <stdlib.h>
#include <string.h>

#include "mcp/jscan.h"
#include "mcp/jsonrpc.h"
#include "upstream/channel.h"

struct fake {
	struct mg_channel ch; /* first, like a real transport */
	char sent[16][512];
	int nsent;
	bool refuse;
	int ready, down;
	json_t *notes[4];
	int nnotes;
};

static int fake_send(struct mg_channel *ch, const char *data, size_t len)
{
	struct fake *f = (struct fake *)ch;
	if (f->refuse)
		return -1;
	if (f->nsent < 16)
		snprintf(f->sent[f->nsent++], sizeof f->sent[0], "%.*s", (int)len, data);
	return 0;
}

static const struct mg_channel_ops fake_ops = { .send = fake_send };

static void on_ready(struct mg_channel *ch, json_t *result, void *arg)
{
	(void)result;
	(void)arg;
	((struct fake *)ch)->ready++;
}

static void on_down(struct mg_channel *ch, const char *reason, void *arg)
{
	(void)reason;
	(void)arg;
	((struct fake *)ch)->down++;
}

static void on_note(struct mg_channel *ch, json_t *msg, void *arg)
{
	struct fake *f = (struct fake *)ch;
	(void)arg;
	if (f->nnotes < 4)
		f->notes[f->nnotes++] = json_incref(msg);
}

struct client {
	struct mg_call call;
	json_t *reply;
	json_t *progress;
	int nreplies;
	char raw[256]; /* what on_raw_reply saw, with the id span marked */
	int nraw;
};

static void on_reply(struct mg_call *call, json_t *msg, void *arg)
{
	struct client *c = arg;
	(void)call;
	c->nreplies++;
	json_decref(c->reply);
	c->reply = json_deep_copy(msg);
}

static void on_progress(struct mg_call *call, json_t *msg, void *arg)
{
	struct client *c = arg;
	(void)call;
	json_decref(c->progress);
	c->progress = json_deep_copy(msg);
}

static void on_raw_reply(struct mg_call *call, const char *text, size_t len,
                         const struct mg_jscan *js, void *arg)
{
	struct client *c = arg;
	(void)call;
	c->nraw++;
	snprintf(c->raw, sizeof c->raw, "%.*s[%.*s]%.*s", (int)js->id.start, text,
	         (int)(js->id.end - js->id.start), text + js->id.start, (int)(len - js->id.end),
	         text + js->id.end);
}

static void setup_fake(struct fake *f)
{
	memset(f, 0, sizeof *f);
	struct mg_channel_hooks h = { .on_ready = on_ready,
		                      .on_down = on_down,
		                      .on_notification = on_note };
	mg_channel_init(&f->ch, &fake_ops, &h, json_pack("{s:s}", "protocolVersion", "2025-11-25"),
	                64, 2);
}

static void feed(struct fake *f, const char *text)
{
	mg_channel_receive(&f->ch, text, strlen(text));
}

static void handshake(struct fake *f)
{
	mg_channel_connected(&f->ch);
	assert_non_null(strstr(f->sent[0], "\"method\":\"initialize\""));
	char id[32], reply[256];
	snprintf(id, sizeof id, "\"id\":%lld", (long long)f->ch.init_call.up_id);
	assert_non_null(strstr(f->sent[0], id));
	snprintf(reply, sizeof reply,
	         "{\"jsonrpc\":\"2.0\",%s,\"result\":{\"protocolVersion\":\"2025-11-25\","
	         "\"capabilities\":{}}}",
	         id);
	feed(f, reply);
	assert_int_equal(f->ready, 1);
	assert_string_equal(f->sent[1],
	                    "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
}

static void client_init(struct client *c)
{
	memset(c, 0, sizeof *c);
	c->call.on_reply = on_reply;
	c->call.on_progress = on_progress;
	c->call.arg = c;
}

static void client_free(struct client *c)
{
	json_decref(c->reply);
	json_decref(c->progress);
}

static void test_remap_and_restore(void **state)
{
	(void)state;
	struct fake f;
	setup_fake(&f);
	handshake(&f);
	struct client a, b;
	client_init(&a);
	client_init(&b);
	/* Two clients with the same id "7" and a progress token each. */
	json_t *ma = json_pack("{s:s,s:s,s:s,s:{s:{s:s}}}", "jsonrpc", "2.0", "id", "7", "method",
	                       "tools/call", "params", "_meta", "progressToken", "tok-a");
	json_t *mb = json_pack("{s:s,s:i,s:s,s:{s:{s:i}}}", "jsonrpc", "2.0", "id", 7, "method",
	                       "tools/call", "params", "_meta", "progressToken", 99);
	assert_int_equal(mg_channel_request(&f.ch, &a.call, ma), 0);
	assert_int_equal(mg_channel_request(&f.ch, &b.call, mb), 0);
	assert_int_equal(a.call.up_id, 2);
	assert_int_equal(b.call.up_id, 3);
	assert_non_null(strstr(f.sent[2], "\"id\":2"));
	assert_non_null(strstr(f.sent[2], "\"progressToken\":2"));
	assert_non_null(strstr(f.sent[3], "\"progressToken\":3"));
	/* Progress for b, then replies out of order. */
	feed(&f, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":"
	         "{\"progressToken\":3,\"progress\":1}}");
	assert_non_null(b.progress);
	assert_null(a.progress);
	feed(&f, "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"x\":\"b\"}}");
	feed(&f, "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"x\":\"a\"}}");
	assert_int_equal(a.nreplies, 1);
	assert_int_equal(b.nreplies, 1);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(a.reply, "result"), "x")), "a");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(b.reply, "result"), "x")), "b");
	/* A duplicate or unknown reply is dropped. */
	feed(&f, "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}");
	assert_int_equal(a.nreplies, 1);
	assert_int_equal(f.ch.ncalls, 0);
	json_decref(ma);
	json_decref(mb);
	client_free(&a);
	client_free(&b);
	mg_channel_deinit(&f.ch);
}

/* Requests held as text get the minted id spliced in; results for calls
 * that take text arrive unparsed, anything else takes the tree path. */
static void test_text_paths(void **state)
{
	(void)state;
	struct fake f;
	setup_fake(&f);
	struct client a, b;
	client_init(&a);
	client_init(&b);
	a.call.on_raw_reply = on_raw_reply;
	b.call.on_raw_reply = on_raw_reply;
	/* Queued before the handshake, sent after it, id spliced. */
	const char *req = "{\"jsonrpc\":\"2.0\", \"id\" : \"client-7\",\"method\":\"tools/call\","
	                  "\"params\":{\"name\":\"echo\"}}";
	struct mg_jscan js;
	assert_int_equal(mg_jscan(req, strlen(req), 64, &js), MG_JSCAN_OK);
	assert_int_equal(
	    mg_channel_request_text(&f.ch, &a.call, req, strlen(req), js.id.start, js.id.end), 0);
	assert_int_equal(f.nsent, 0);
	handshake(&f);
	assert_int_equal(a.call.up_id, 1); /* minted before initialize's */
	assert_string_equal(f.sent[2], "{\"jsonrpc\":\"2.0\", \"id\" : 1,\"method\":\"tools/call\","
	                               "\"params\":{\"name\":\"echo\"}}");
	assert_int_equal(
	    mg_channel_request_text(&f.ch, &b.call, req, strlen(req), js.id.start, js.id.end), 0);
	assert_int_equal(b.call.up_id, 3);
	/* A result: text, id located. */
	feed(&f, "{\"jsonrpc\":\"2.0\",\"result\":{\"content\":[]},\"id\":1}");
	assert_int_equal(a.nraw, 1);
	assert_int_equal(a.nreplies, 0);
	assert_string_equal(a.raw, "{\"jsonrpc\":\"2.0\",\"result\":{\"content\":[]},\"id\":[1]}");
	/* An error, or a text outside the fast subset: the parsed path. */
	feed(&f, "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-1,\"message\":\"no\"}}");
	assert_int_equal(b.nraw, 0);
	assert_int_equal(b.nreplies, 1);
	assert_non_null(json_object_get(b.reply, "error"));
	assert_int_equal(f.ch.ncalls, 0);
	client_free(&a);
	client_free(&b);
	mg_channel_deinit(&f.ch);
}

static void test_queue_cancel_and_loss(void **state)
{
	(void)state;
	struct fake f;
	setup_fake(&f);
	struct client a, b, c;
	client_init(&a);
	client_init(&b);
	client_init(&c);
	json_t *m = json_pack("{s:s,s:i,s:s}", "jsonrpc", "2.0", "id", 1, "method", "tools/list");
	/* Not connected: queued, up to max_queue (2). */
	assert_int_equal(mg_channel_request(&f.ch, &a.call, m), 0);
	assert_int_equal(mg_channel_request(&f.ch, &b.call, m), 0);
	assert_int_equal(mg_channel_request(&f.ch, &c.call, m), -1);
	assert_int_equal(f.nsent, 0);
	/* Cancelling a queued call sends nothing. */
	mg_channel_cancel(&b.call, "bye");
	handshake(&f); /* initialize gets id 3: a and b took 1 and 2 */
	assert_int_equal(f.nsent, 3);
	assert_non_null(strstr(f.sent[2], "\"method\":\"tools/list\""));
	/* Cancelling a sent call notifies the upstream with its minted id. */
	mg_channel_cancel(&a.call, "client left");
	assert_int_equal(f.nsent, 4);
	assert_non_null(strstr(f.sent[3], "notifications/cancelled"));
	assert_non_null(strstr(f.sent[3], "\"requestId\":1"));
	assert_int_equal(a.nreplies, 0);
	/* Transport loss fails everything pending with an error, once. */
	assert_int_equal(mg_channel_request(&f.ch, &c.call, m), 0);
	mg_channel_lost(&f.ch, "process exited", false);
	assert_int_equal(c.nreplies, 1);
	json_t *err = json_object_get(c.reply, "error");
	assert_int_equal(json_integer_value(json_object_get(err, "code")), MG_RPC_INTERNAL_ERROR);
	assert_int_equal(f.down, 1);
	assert_int_equal(f.ch.state, MG_CH_DOWN);
	json_decref(m);
	client_free(&a);
	client_free(&b);
	client_free(&c);
	mg_channel_deinit(&f.ch);
}

static void test_upstream_messages(void **state)
{
	(void)state;
	struct fake f;
	setup_fake(&f);
	handshake(&f);
	/* Pings are answered by the channel itself, with the same id. */
	feed(&f, "{\"jsonrpc\":\"2.0\",\"id\":\"p1\",\"method\":\"ping\"}");
	assert_string_equal(f.sent[2], "{\"jsonrpc\":\"2.0\",\"id\":\"p1\",\"result\":{}}");
	/* Notifications go to the owner; garbage and duplicate keys are dropped. */
	feed(&f, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}");
	feed(&f, "not json");
	feed(&f, "{\"jsonrpc\":\"2.0\",\"id\":5,\"id\":6,\"result\":{}}");
	assert_int_equal(f.nnotes, 1);
	assert_true(f.ch.errors >= 2);
	json_decref(f.notes[0]);
	/* A failed initialize reports down, not ready. */
	struct fake g;
	setup_fake(&g);
	mg_channel_connected(&g.ch);
	feed(&g, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32602,\"message\":\"no\"}}");
	assert_int_equal(g.ready, 0);
	assert_int_equal(g.down, 1);
	mg_channel_deinit(&g.ch);
	mg_channel_deinit(&f.ch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remap_and_restore),
		cmocka_unit_test(test_text_paths),
		cmocka_unit_test(test_queue_cancel_and_loss),
		cmocka_unit_test(test_upstream_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
