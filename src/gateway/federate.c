/*
 * federate.c - one endpoint over several servers ([upstream] federation).
 *
 * The federated route (gw->fed) has no upstream of its own: its members are
 * the routes of the servers with federate = true, in configuration order.
 * Tools and prompts are named <server><sep><name> (tool_separator); server
 * names cannot contain the separator (configuration check), so the split at
 * its first occurrence is unambiguous and no two servers' names collide.
 * Resources keep their URIs: the server that listed a URI (or a template
 * whose fixed prefix it starts with) owns it; when two servers list one
 * URI, the first in configuration order does. A URI no server listed is
 * refused, never tried on every server (DESIGN §8).
 *
 *   initialize / server/discover  answered by the gateway: the union of the
 *                                 ready members' capabilities
 *   the four list methods        fan-out: one page of every member that is
 *                                 not finished, in parallel, merged in member
 *                                 order; the cursor says, per member, "first
 *                                 page", "continue at <its cursor>" or
 *                                 "done", sealed by fcursor.c and bound to
 *                                 this route, its members and the identity
 *   tools/call, prompts/get,      one member, name rewritten, then the
 *   completion/complete (prompt)  ordinary exchange (exchange.c) on that
 *                                 member's route: progress, cancellation,
 *                                 timeouts, audit and metrics as for a
 *                                 single upstream
 *   resources/read, completion    the URI's owner
 *   (resource), subscriptions
 *   ping                          answered here
 *
 * A member that is down, or fails a list call, is left out of that listing
 * (logged, counted in /health) instead of failing the request; when it comes
 * back, federated clients get list_changed so they list again. Each call
 * uses the member's shared conversation (per_session fidelity - sampling,
 * roots, per-client logging - is available at the server's own endpoint).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz/authz.h"
#include "build-info.h"
#include "gateway/fcursor.h"
#include "gateway/internal.h"
#include "gateway/pathmap.h"
#include "gateway/pipeline.h"
#include "mcp/jtext.h"
#include "mcp/params.h"
#include "util/clock.h"
#include "util/crypto.h"
#include "util/log.h"

#define FED_MAX_URIS     100000 /* resource URIs remembered with their owner */
#define FED_MAX_PREFIXES 4096   /* template prefixes remembered */

struct fed_prefix {
	char *prefix;
	size_t len;
	size_t member;
};

struct mg_fed {
	struct mg_route **members;
	size_t n;
	const char *sep;
	size_t seplen;
	json_t *uri_owner; /* uri -> member index */
	struct fed_prefix *prefixes;
	size_t n_prefixes, cap_prefixes;
	struct mg_fcursor_key key;
	const char **names; /* members' names, for cursor tags */
	char **prefix;      /* members' "<name><sep>" as JSON string content */
	size_t *prefix_len;
	struct mg_fedlist *lists; /* list requests in flight */
};

/* The list methods, in fcursor order, and the member of each result. */
static const struct {
	const char *method, *cap, *items, *name_key;
	bool prefixed;
} lists[MG_FCURSOR_LISTS] = {
	[MG_FCURSOR_TOOLS] = { "tools/list", "tools", "tools", "name", true },
	[MG_FCURSOR_PROMPTS] = { "prompts/list", "prompts", "prompts", "name", true },
	[MG_FCURSOR_RESOURCES] = { "resources/list", "resources", "resources", "uri", false },
	[MG_FCURSOR_RESOURCE_TEMPLATES] = { "resources/templates/list", "resources",
	                                    "resourceTemplates", "uriTemplate", false },
};

/* One member's part of a list request. */
struct fed_part {
	struct mg_fedlist *fl;
	size_t member;
	struct mg_call call;
	bool asked, answered, failed;
	uint64_t sent_us; /* sent at, until its client operation is counted */
	char *items;      /* its items as JSON text, comma-separated, renamed */
	size_t items_len;
	char *next; /* its nextCursor */
};

/* A federated list request in flight. */
struct mg_fedlist {
	struct mg_gateway *gw;
	struct mg_route *route;
	struct mg_http_req *req;
	struct mg_identity *id;
	bool filter; /* the identity's authorization filters the items */
	struct mg_log_ctx log;
	json_t *orig_id;
	bool modern;
	unsigned list;
	struct fed_part *parts;
	int *state; /* per member: 0 first page, 1 continue, 2 done */
	char **cursor;
	size_t waiting;
	struct event *timer;
	struct mg_fedlist *prev, *next;
};

/* ---- setup ---------------------------------------------------------------------------- */

/* Member i's "<name><sep>", JSON-escaped without the quotes: what a
 * listed name gets in front of it, spliced into the text as it is. */
static int member_prefix(struct mg_fed *f, size_t i, const char *name)
{
	size_t nl = strlen(name);
	char *plain = malloc(nl + f->seplen + 1);
	if (!plain)
		return -1;
	memcpy(plain, name, nl);
	memcpy(plain + nl, f->sep, f->seplen + 1);
	json_t *v = json_string(plain);
	free(plain);
	size_t len = 0;
	char *quoted = v ? mg_json_dump(v, &len) : NULL;
	json_decref(v);
	if (!quoted || len < 2) {
		free(quoted);
		return -1;
	}
	memmove(quoted, quoted + 1, len - 2);
	quoted[len - 2] = '\0';
	f->prefix[i] = quoted;
	f->prefix_len[i] = len - 2;
	return 0;
}

int mg_fed_start(struct mg_gateway *gw)
{
	const struct mg_upstream_section *us = &gw->cfg->upstream;
	if (!us->federation)
		return 0;
	struct mg_route *r = calloc(1, sizeof *r);
	struct mg_fed *f = calloc(1, sizeof *f);
	if (!r || !f) {
		free(r);
		free(f);
		mg_log_error("out of memory");
		return -1;
	}
	gw->fed = r;
	r->gw = gw;
	r->fed = f;
	r->name = "federation";
	r->index = SIZE_MAX;
	r->path = strdup(gw->cfg->server.mcp_path);
	r->messages_path = strdup(gw->cfg->server.messages_path);
	r->resource_refs = json_object();
	r->tool_params = json_object();
	f->sep = us->tool_separator ? us->tool_separator : "__";
	f->seplen = strlen(f->sep);
	f->uri_owner = json_object();
	f->members = calloc(gw->n_routes ? gw->n_routes : 1, sizeof *f->members);
	f->names = calloc(gw->n_routes ? gw->n_routes : 1, sizeof *f->names);
	f->prefix = calloc(gw->n_routes ? gw->n_routes : 1, sizeof *f->prefix);
	f->prefix_len = calloc(gw->n_routes ? gw->n_routes : 1, sizeof *f->prefix_len);
	if (!r->path || !r->messages_path || !r->resource_refs || !r->tool_params ||
	    !f->uri_owner || !f->members || !f->names || !f->prefix || !f->prefix_len) {
		mg_log_error("out of memory");
		return -1;
	}
	for (size_t i = 0; i < gw->n_routes; i++) {
		if (!gw->routes[i]->up->cfg->federate)
			continue;
		gw->routes[i]->federated = true;
		f->names[f->n] = gw->routes[i]->name;
		if (member_prefix(f, f->n, gw->routes[i]->name) < 0) {
			mg_log_error("out of memory");
			return -1;
		}
		f->members[f->n++] = gw->routes[i];
	}
	const char *secret = us->cursor_secret;
	if (mg_fcursor_key_init(&f->key, secret, secret ? strlen(secret) : 0) < 0) {
		mg_log_error("federation: no randomness for the cursor key");
		return -1;
	}
	if (mg_pathmap_add(gw->table, r->path, false, r, MG_EP_MCP) < 0) {
		mg_log_error("federation: %s is already served by a server's path_prefix", r->path);
		return -1;
	}
	if (gw->cfg->server.legacy_sse &&
	    (mg_pathmap_add(gw->table, gw->cfg->server.sse_path, false, r, MG_EP_SSE) < 0 ||
	     mg_pathmap_add(gw->table, r->messages_path, false, r, MG_EP_MESSAGES) < 0)) {
		mg_log_error("federation: %s or %s is already served by a server's path_prefix",
		             gw->cfg->server.sse_path, r->messages_path);
		return -1;
	}
	return 0;
}

void mg_fed_free(struct mg_gateway *gw)
{
	struct mg_route *r = gw->fed;
	if (!r)
		return;
	struct mg_fed *f = r->fed;
	if (f) {
		json_decref(f->uri_owner);
		for (size_t i = 0; i < f->n_prefixes; i++)
			free(f->prefixes[i].prefix);
		free(f->prefixes);
		for (size_t i = 0; i < f->n; i++)
			free(f->prefix[i]);
		free(f->prefix);
		free(f->prefix_len);
		free(f->members);
		free(f->names);
		free(f);
	}
	free(r->path);
	free(r->messages_path);
	json_decref(r->resource_refs);
	json_decref(r->tool_params);
	free(r);
	gw->fed = NULL;
}

/* ---- members -------------------------------------------------------------------------- */

static struct mg_route *member_named(struct mg_fed *f, const char *name, size_t len)
{
	for (size_t i = 0; i < f->n; i++) {
		if (strlen(f->members[i]->name) == len &&
		    memcmp(f->members[i]->name, name, len) == 0)
			return f->members[i];
	}
	return NULL;
}

/* A member's capabilities, from its handshake (NULL when it has none yet). */
static json_t *member_caps(struct mg_route *m)
{
	struct mg_upstream *up = m->up;
	if (up->shared && up->shared->state == MG_CH_READY && up->shared->init_result)
		return json_object_get(up->shared->init_result, "capabilities");
	if (up->modern && up->modern->state == MG_CH_READY && up->modern->discover_result)
		return json_object_get(up->modern->discover_result, "capabilities");
	return NULL;
}

static bool member_has(struct mg_route *m, const char *cap)
{
	json_t *caps = member_caps(m);
	return caps && json_object_get(caps, cap) != NULL;
}

/* The channel a client of era `modern` uses on member `m`, and how it is
 * bridged; NULL when the member has no ready conversation. */
struct mg_channel *mg_fed_channel(struct mg_route *m, bool modern, enum mg_bridge *bridge)
{
	struct mg_upstream *up = m->up;
	bool shared = up->shared && up->shared->state == MG_CH_READY;
	bool mod = up->modern && up->modern->state == MG_CH_READY;
	*bridge = MG_BRIDGE_NONE;
	if (modern && mod)
		return up->modern;
	if (!modern && shared)
		return up->shared;
	if (modern && shared) {
		*bridge = MG_BRIDGE_TO_LEGACY;
		return up->shared;
	}
	if (!modern && mod) {
		*bridge = MG_BRIDGE_TO_MODERN;
		return up->modern;
	}
	return NULL;
}

/* Splits a federated name: the member and where the member's own name
 * starts; NULL when no member has that prefix. */
static struct mg_route *split_name(struct mg_fed *f, const char *name, const char **inner)
{
	const char *at = strstr(name, f->sep);
	if (!at || at == name || !at[f->seplen])
		return NULL;
	struct mg_route *m = member_named(f, name, (size_t)(at - name));
	if (m)
		*inner = at + f->seplen;
	return m;
}

/* The member that owns `uri`: the one that listed it, else the one whose
 * listed template's fixed prefix it starts with (the longest). Never a
 * guess: a URI no server listed has no owner (DESIGN §8). */
struct mg_route *mg_fed_owner(struct mg_route *fed, const char *uri)
{
	struct mg_fed *f = fed->fed;
	json_t *v = json_object_get(f->uri_owner, uri);
	if (json_is_integer(v) && (size_t)json_integer_value(v) < f->n)
		return f->members[json_integer_value(v)];
	size_t best = SIZE_MAX, best_len = 0, ul = strlen(uri);
	for (size_t i = 0; i < f->n_prefixes; i++) {
		struct fed_prefix *p = &f->prefixes[i];
		if (p->len > best_len && p->len <= ul && memcmp(uri, p->prefix, p->len) == 0) {
			best = p->member;
			best_len = p->len;
		}
	}
	return best != SIZE_MAX ? f->members[best] : NULL;
}

/* Remembers that URIs starting with tpl[0, len) belong to `member` (when
 * two servers list one, the first in configuration order). */
static void learn_prefix(struct mg_fed *f, const char *tpl, size_t len, size_t member)
{
	if (len < 4 || !memchr(tpl, ':', len))
		return;
	for (size_t i = 0; i < f->n_prefixes; i++) {
		if (f->prefixes[i].len == len && memcmp(f->prefixes[i].prefix, tpl, len) == 0) {
			if (member < f->prefixes[i].member)
				f->prefixes[i].member = member;
			return;
		}
	}
	if (f->n_prefixes >= FED_MAX_PREFIXES)
		return;
	struct fed_prefix *v = mg_grow(f->prefixes, &f->cap_prefixes, f->n_prefixes + 1, sizeof *v);
	if (!v)
		return;
	f->prefixes = v;
	char *copy = strndup(tpl, len);
	if (!copy)
		return;
	f->prefixes[f->n_prefixes++] = (struct fed_prefix){ copy, len, member };
}

/* A listed URI and its owner. */
static void learn_uri(struct mg_fed *f, const char *uri, size_t member)
{
	json_t *had = json_object_get(f->uri_owner, uri);
	if ((!had && json_object_size(f->uri_owner) < FED_MAX_URIS) ||
	    (had && (size_t)json_integer_value(had) > member))
		json_object_set_new(f->uri_owner, uri, json_integer((json_int_t)member));
}

/* A template's fixed part (up to its first '{'). */
static void learn_template(struct mg_fed *f, const char *tpl, size_t member)
{
	learn_prefix(f, tpl, strcspn(tpl, "{"), member);
}

/* ---- the handshake -------------------------------------------------------------------- */

/* Capabilities the gateway announces: what any ready member offers. */
static json_t *union_caps(struct mg_fed *f)
{
	json_t *out = json_object();
	static const char *const plain[] = { "logging", "completions", NULL };
	for (size_t i = 0; i < f->n; i++) {
		json_t *caps = member_caps(f->members[i]);
		if (!caps)
			continue;
		for (size_t k = 0; plain[k]; k++) {
			if (json_object_get(caps, plain[k]) && !json_object_get(out, plain[k]))
				json_object_set_new(out, plain[k], json_object());
		}
		static const char *const listed[] = { "tools", "prompts", "resources", NULL };
		for (size_t k = 0; listed[k]; k++) {
			json_t *c = json_object_get(caps, listed[k]);
			if (!json_is_object(c))
				continue;
			json_t *o = json_object_get(out, listed[k]);
			if (!o) {
				o = json_object();
				json_object_set_new(out, listed[k], o);
			}
			/* list_changed is announced always: the gateway sends it when a
			 * member comes back. */
			json_object_set_new(o, "listChanged", json_true());
			if (json_is_true(json_object_get(c, "subscribe")))
				json_object_set_new(o, "subscribe", json_true());
		}
	}
	return out;
}

json_t *mg_fed_handshake(struct mg_route *fed)
{
	struct mg_fed *f = fed->fed;
	bool any = false;
	for (size_t i = 0; i < f->n; i++)
		any = any || member_caps(f->members[i]) != NULL;
	if (!any)
		return NULL;
	json_t *h =
	    json_pack("{s:o,s:{s:s,s:s,s:s}}", "capabilities", union_caps(f), "serverInfo", "name",
	              "mcp-guard", "title", "mcp-guard federation", "version", MG_VERSION);
	/* The members' instructions, each under its server's name. */
	struct mg_buf b;
	mg_buf_init(&b, 0);
	for (size_t i = 0; i < f->n; i++) {
		struct mg_upstream *up = f->members[i]->up;
		json_t *src = up->shared && up->shared->init_result ? up->shared->init_result
		              : up->modern                          ? up->modern->discover_result
		                                                    : NULL;
		const char *in = json_string_value(json_object_get(src, "instructions"));
		if (!in || !*in)
			continue;
		mg_buf_printf(&b, "%s## %s (tools and prompts named %s%s...)\n\n%s\n",
		              b.len ? "\n" : "", f->members[i]->name, f->members[i]->name, f->sep,
		              in);
	}
	if (b.len)
		json_object_set_new(h, "instructions", json_stringn(b.data, b.len));
	mg_buf_free(&b);
	return h;
}

void mg_fed_discover(struct mg_gateway *gw, struct mg_http_req *req, struct mg_rpc_msg *msg,
                     struct mg_route *fed)
{
	json_t *h = mg_fed_handshake(fed);
	if (!h) {
		struct mg_http_hdr hd[] = { { "Retry-After", "1" } };
		json_t *e =
		    mg_rpc_error_new(msg->id, MG_RPC_INTERNAL_ERROR,
		                     "no federated server is ready yet; retry shortly", NULL);
		mg_reply_json(req, 503, e, hd, 1);
		json_decref(e);
		return;
	}
	json_t *result =
	    json_pack("{s:s,s:o,s:O,s:{s:O}}", "resultType", "complete", "supportedVersions",
	              mg_mcp_versions_json(), "capabilities", json_object_get(h, "capabilities"),
	              "_meta", MG_MCP_META_SERVERINFO, json_object_get(h, "serverInfo"));
	json_t *instr = json_object_get(h, "instructions");
	if (instr)
		json_object_set(result, "instructions", instr);
	json_object_set_new(result, "ttlMs", json_integer(0));
	json_object_set_new(result, "cacheScope", json_string("private"));
	json_decref(h);
	mg_reply_result(gw, req, msg->id, result, true);
}

/* ---- lists ---------------------------------------------------------------------------- */

static uint64_t cursor_tag(struct mg_route *fed, const struct mg_identity *id)
{
	struct mg_fed *f = fed->fed;
	return mg_fcursor_tag(fed->path, f->names, f->n, id ? id->key : NULL);
}

/* The part's request to its server ended (once; a part never sent has
 * nothing to count): a client operation. */
static void part_counted(struct fed_part *p, int32_t error)
{
	struct mg_fedlist *fl = p->fl;
	if (!p->sent_us)
		return;
	mg_obs_client_op(fl->gw, fl->route->fed->members[p->member], lists[fl->list].method, error,
	                 p->sent_us);
	p->sent_us = 0;
}

static void fedlist_free(struct mg_fedlist *fl)
{
	struct mg_fed *f = fl->route->fed;
	if (fl->prev)
		fl->prev->next = fl->next;
	else if (f->lists == fl)
		f->lists = fl->next;
	if (fl->next)
		fl->next->prev = fl->prev;
	size_t n = f->n;
	for (size_t i = 0; i < n; i++) {
		mg_channel_cancel(&fl->parts[i].call, "the client left");
		part_counted(&fl->parts[i], MG_ET_CANCELLED);
		free(fl->parts[i].items);
		free(fl->parts[i].next);
		free(fl->cursor[i]);
	}
	if (fl->req)
		mg_http_req_on_close(fl->req, NULL, NULL);
	if (fl->timer)
		event_free(fl->timer);
	mg_identity_unref(fl->id);
	json_decref(fl->orig_id);
	free(fl->parts);
	free(fl->state);
	free(fl->cursor);
	free(fl);
}

static void count_failure(struct mg_route *m, const char *method, const char *why)
{
	m->fed_failures++;
	snprintf(m->fed_last_error, sizeof m->fed_last_error, "%s: %s", method, why);
	mg_log_warn("federation: %s failed for server %s (%s); its items are left out of this "
	            "page",
	            method, m->name, why);
}

/* The composite cursor for the members' next pages, sealed; NULL when every
 * member is done (*err set when it cannot be carried). */
static char *next_cursor(struct mg_fedlist *fl, bool *err)
{
	struct mg_fed *f = fl->route->fed;
	bool more = false;
	*err = false;
	for (size_t i = 0; i < f->n && !more; i++)
		more = fl->parts[i].answered && fl->parts[i].next;
	if (!more)
		return NULL;
	/* Per member: [1, its cursor] to continue there, [2] when it is done
	 * (last page, failed, down, no such capability, done before). */
	json_t *composite = json_array();
	for (size_t i = 0; i < f->n; i++) {
		struct fed_part *p = &fl->parts[i];
		json_array_append_new(composite, p->answered && p->next
		                                     ? json_pack("[i,s]", 1, p->next)
		                                     : json_pack("[i]", 2));
	}
	char *text = mg_json_dump(composite, NULL);
	json_decref(composite);
	struct mg_fcursor c = { .list = (uint8_t)fl->list,
		                .server = (uint32_t)f->n,
		                .upstream = text };
	char *out = NULL;
	if (!text || mg_fcursor_encode(&f->key, cursor_tag(fl->route, fl->id), (int64_t)time(NULL),
	                               &c, &out) < 0) {
		*err = true;
		out = NULL;
	}
	free(text);
	return out;
}

/* Every part answered (or the deadline passed): the merged page, as the
 * members' items side by side (each already text), never as a tree. */
static void fedlist_finish(struct mg_fedlist *fl)
{
	struct mg_fed *f = fl->route->fed;
	for (size_t i = 0; i < f->n; i++) {
		struct fed_part *p = &fl->parts[i];
		if (p->asked && !p->answered && !p->failed) {
			mg_channel_cancel(&p->call, "deadline");
			part_counted(p, MG_ET_TIMEOUT);
			count_failure(f->members[i], lists[fl->list].method,
			              "no answer within the request timeout");
			p->failed = true;
		}
	}
	struct mg_http_req *req = fl->req;
	fl->req = NULL;
	mg_http_req_on_close(req, NULL, NULL);
	bool err;
	char *cursor = next_cursor(fl, &err);
	if (err) {
		mg_log_warn("federation: the servers' %s cursors are too long to carry (more "
		            "than %d bytes together)",
		            lists[fl->list].method, MG_FCURSOR_UPSTREAM_MAX);
		mg_reply_rpc_error(req, 200, fl->orig_id, MG_RPC_INTERNAL_ERROR,
		                   "the servers' cursors are too long to page through "
		                   "the federated endpoint",
		                   NULL);
		fedlist_free(fl);
		return;
	}
	size_t id_len = 0;
	char *id = mg_json_dump(fl->orig_id, &id_len);
	struct mg_buf head, tail;
	mg_buf_init(&head, 0);
	mg_buf_init(&tail, 0);
	int rc = id ? 0 : -1;
	rc |= mg_buf_printf(&head, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"%s\":[",
	                    id ? id : "null", lists[fl->list].items);
	rc |= mg_buf_putc(&tail, ']');
	if (cursor)
		rc |= mg_buf_printf(&tail, ",\"nextCursor\":\"%s\"", cursor); /* base64url */
	if (fl->modern)
		rc |= mg_buf_puts(&tail, ",\"resultType\":\"complete\"");
	rc |= mg_buf_puts(&tail, "}}");
	struct iovec *iov = calloc(2 * f->n + 2, sizeof *iov);
	if (rc < 0 || !iov) {
		mg_reply_rpc_error(req, 503, fl->orig_id, MG_RPC_INTERNAL_ERROR, "out of memory",
		                   NULL);
	} else {
		size_t k = 0;
		iov[k++] = (struct iovec){ head.data, head.len };
		bool first = true;
		for (size_t i = 0; i < f->n; i++) {
			struct fed_part *p = &fl->parts[i];
			if (!p->items_len)
				continue;
			if (!first)
				iov[k++] = (struct iovec){ (void *)",", 1 };
			iov[k++] = (struct iovec){ p->items, p->items_len };
			first = false;
		}
		iov[k++] = (struct iovec){ tail.data, tail.len };
		struct mg_http_hdr h[4];
		size_t nh = 0;
		mg_cors_headers(fl->gw, req, h, &nh);
		mg_http_reply_parts(req, 200, "application/json", h, nh, iov, k);
	}
	free(iov);
	mg_buf_free(&head);
	mg_buf_free(&tail);
	free(id);
	free(cursor);
	fedlist_free(fl);
}

/* The member's nextCursor (NULL, or a string); a server that answers with
 * the cursor it was given would page forever: its list ends here. */
static void take_next(struct fed_part *p, const char *next, size_t len)
{
	struct mg_fedlist *fl = p->fl;
	if (!next || !len)
		return;
	const char *had = fl->cursor[p->member];
	if (had && strlen(had) == len && memcmp(had, next, len) == 0)
		count_failure(fl->route->fed->members[p->member], lists[fl->list].method,
		              "it repeated the cursor it was given");
	else
		p->next = strndup(next, len);
}

/* A member's page as a tree (an error, an answer outside the fast subset,
 * or one that must be learned from or filtered): learned from, renamed,
 * filtered, kept as text. */
static void part_tree(struct fed_part *p, json_t *msg)
{
	struct mg_fedlist *fl = p->fl;
	struct mg_fed *f = fl->route->fed;
	struct mg_route *m = f->members[p->member];
	const char *method = lists[fl->list].method;
	json_t *result = json_object_get(msg, "result");
	json_t *arr =
	    json_is_object(result) ? json_object_get(result, lists[fl->list].items) : NULL;
	if (!json_is_array(arr)) {
		json_t *err = json_object_get(msg, "error");
		const char *why = json_string_value(json_object_get(err, "message"));
		count_failure(m, method, why ? why : "an answer without the list");
		p->failed = true;
		return;
	}
	p->answered = true;
	json_t *next = json_object_get(result, "nextCursor");
	if (json_is_string(next))
		take_next(p, json_string_value(next), json_string_length(next));
	if (fl->list == MG_FCURSOR_TOOLS) {
		mg_route_pin_tools(m, arr);
		mg_mcp_params_learn(m->tool_params, arr);
	}
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
	{
		json_t *name = json_object_get(v, lists[fl->list].name_key);
		if (!json_is_string(name))
			continue;
		if (lists[fl->list].prefixed) {
			size_t nl = json_string_length(name), ml = strlen(m->name);
			char *full = malloc(ml + f->seplen + nl + 1);
			if (!full)
				continue;
			memcpy(full, m->name, ml);
			memcpy(full + ml, f->sep, f->seplen);
			memcpy(full + ml + f->seplen, json_string_value(name), nl + 1);
			json_object_set_new(v, lists[fl->list].name_key,
			                    json_stringn(full, ml + f->seplen + nl));
			free(full);
		} else if (fl->list == MG_FCURSOR_RESOURCES)
			learn_uri(f, json_string_value(name), p->member);
		else
			learn_template(f, json_string_value(name), p->member);
	}
	/* What the identity may use, by the names it sees. */
	struct mg_authz_scope sc = { .server = m->name, .sep = f->sep, .federated = true };
	if (fl->filter)
		mg_authz_filter_in(fl->id, method, result, &sc);
	size_t len = 0;
	char *text = mg_json_dump(json_object_get(result, lists[fl->list].items), &len);
	if (!text || len < 2) {
		free(text);
		count_failure(m, method, "out of memory");
		p->answered = false;
		p->failed = true;
		return;
	}
	/* "[a,b]" -> "a,b" */
	memmove(text, text + 1, len - 2);
	p->items = text;
	p->items_len = len - 2;
}

/* Learns a listed resource URI or template from its text (a plain string:
 * no escapes, checked by the caller). */
static void learn_text(struct mg_fedlist *fl, size_t member, const char *s, size_t len)
{
	struct mg_fed *f = fl->route->fed;
	char *z = strndup(s, len);
	if (!z)
		return;
	if (fl->list == MG_FCURSOR_RESOURCES)
		learn_uri(f, z, member);
	else
		learn_template(f, z, member);
	free(z);
}

/* A member's page as text (the fast path): each item copied with the
 * member's prefix spliced into its name, resources learned as they pass.
 * false when the page needs the tree after all (then nothing is kept). */
static bool part_text(struct fed_part *p, const char *text, const struct mg_jscan *js)
{
	struct mg_fedlist *fl = p->fl;
	struct mg_fed *f = fl->route->fed;
	const char *name_key = lists[fl->list].name_key;
	bool prefixed = lists[fl->list].prefixed;
	struct mg_jspan nc = { 0, 0 }, k, e, v;
	bool have_items = false, ok = true;
	struct mg_buf out;
	mg_buf_init(&out, 0);
	/* One walk over the result: the items copied as they pass. */
	struct mg_jfields fi;
	size_t at;
	int fr = -1;
	mg_jtext_fields(&fi, text, js->result);
	while (ok && (fr = mg_jtext_field(&fi, &k, &at)) > 0) {
		if (mg_jtext_key_is(text, k, "nextCursor")) {
			mg_jtext_field_skip(&fi);
			nc = (struct mg_jspan){ at, fi.pos };
			continue;
		}
		if (!mg_jtext_key_is(text, k, lists[fl->list].items)) {
			mg_jtext_field_skip(&fi);
			continue;
		}
		if (text[at] != '[')
			break; /* not a list: the tree path says so */
		have_items = true;
		struct mg_jiter it;
		int r;
		mg_jtext_items(&it, text, (struct mg_jspan){ at, js->result.end });
		while ((r = mg_jtext_next(&it, &e)) > 0) {
			if (out.len && mg_buf_putc(&out, ',') < 0)
				break;
			bool named = text[e.start] == '{' &&
			             mg_jtext_member(text, e, name_key, &v) && text[v.start] == '"';
			int rc = 0;
			if (!named) {
				rc = mg_buf_append(&out, text + e.start, e.end - e.start);
			} else if (prefixed) {
				rc |= mg_buf_append(&out, text + e.start, v.start + 1 - e.start);
				rc |= mg_buf_append(&out, f->prefix[p->member],
				                    f->prefix_len[p->member]);
				rc |= mg_buf_append(&out, text + v.start + 1, e.end - v.start - 1);
			} else if (!mg_jtext_plain_string(text, v)) {
				break; /* an escaped URI: learned from the tree */
			} else {
				learn_text(fl, p->member, text + v.start + 1, v.end - v.start - 2);
				rc = mg_buf_append(&out, text + e.start, e.end - e.start);
			}
			if (rc < 0)
				break;
		}
		ok = r == 0;
		if (ok)
			mg_jtext_field_resume(&fi, it.pos);
	}
	if (!ok || fr != 0 || !have_items) {
		mg_buf_free(&out);
		return false;
	}
	if (nc.end && !mg_jtext_plain_string(text, nc)) {
		if (!(nc.end - nc.start == 4 && memcmp(text + nc.start, "null", 4) == 0)) {
			mg_buf_free(&out);
			return false; /* escaped or not a string: the tree's exact reading */
		}
		nc = (struct mg_jspan){ 0, 0 };
	}
	p->answered = true;
	if (nc.end)
		take_next(p, text + nc.start + 1, nc.end - nc.start - 2);
	p->items_len = out.len;
	p->items = mg_buf_steal(&out);
	return true;
}

static void part_done(struct mg_fedlist *fl)
{
	if (--fl->waiting == 0)
		fedlist_finish(fl);
}

static void on_part_reply(struct mg_call *call, json_t *msg, void *arg)
{
	struct fed_part *p = arg;
	struct mg_fedlist *fl = p->fl;
	(void)call;
	struct mg_log_ctx prev = mg_log_ctx_set(&fl->log);
	part_counted(p, mg_obs_answer_error(msg, false));
	part_tree(p, msg);
	part_done(fl);
	mg_log_ctx_restore(prev);
}

/* A member's page as text. Tools are learned from (parameters, pins) as a
 * tree the first time a page's text is seen (the route remembers the
 * digests of the pages it learned from); a filtering identity or a pinning
 * server takes the tree every time. */
static void on_part_raw(struct mg_call *call, const char *text, size_t len,
                        const struct mg_jscan *js, void *arg)
{
	struct fed_part *p = arg;
	struct mg_fedlist *fl = p->fl;
	struct mg_route *m = fl->route->fed->members[p->member];
	(void)call;
	struct mg_log_ctx prev = mg_log_ctx_set(&fl->log);
	part_counted(p, MG_ET_NONE);
	uint8_t digest[MG_SHA256_LEN];
	bool learn = false;
	if (fl->list == MG_FCURSOR_TOOLS && !fl->filter && !mg_route_pins(m)) {
		mg_sha256(text + js->result.start, js->result.end - js->result.start, digest);
		learn = !mg_route_learned(m, digest);
	}
	bool tree = fl->filter || learn || (fl->list == MG_FCURSOR_TOOLS && mg_route_pins(m)) ||
	            !part_text(p, text, js);
	if (tree) {
		struct mg_rpc_msg msg;
		struct mg_rpc_fail fail;
		if (mg_rpc_parse(text, len, (size_t)fl->gw->cfg->server.max_json_depth, false, &msg,
		                 &fail) < 0) {
			json_decref(fail.id);
			count_failure(m, lists[fl->list].method, "an answer that cannot be read");
			p->failed = true;
		} else {
			part_tree(p, msg.root);
			mg_rpc_msg_free(&msg);
			if (learn && p->answered)
				mg_route_learned_add(m, digest);
		}
	}
	part_done(fl);
	mg_log_ctx_restore(prev);
}

static void on_fedlist_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct mg_fedlist *fl = arg;
	(void)fd;
	(void)what;
	struct mg_log_ctx prev = mg_log_ctx_set(&fl->log);
	fedlist_finish(fl);
	mg_log_ctx_restore(prev);
}

static void on_fedlist_close(struct mg_http_req *req, void *arg)
{
	struct mg_fedlist *fl = arg;
	(void)req;
	fl->req = NULL;
	fedlist_free(fl);
}

/* Opens the client's cursor into per-member states; false after answering. */
static bool open_cursor(struct mg_fedlist *fl, struct mg_rpc_msg *msg)
{
	struct mg_fed *f = fl->route->fed;
	json_t *cur = msg->params ? json_object_get(msg->params, "cursor") : NULL;
	if (!cur || json_is_null(cur))
		return true; /* every member from its first page */
	char err[200] = "";
	struct mg_fcursor c = { 0 };
	json_t *comp = NULL;
	if (!json_is_string(cur))
		snprintf(err, sizeof err, "the cursor must be a string");
	else if (mg_fcursor_decode(&f->key, cursor_tag(fl->route, fl->id), (uint8_t)fl->list,
	                           (int64_t)time(NULL), json_string_value(cur), &c, err,
	                           sizeof err) == 0) {
		comp = c.upstream && c.server == f->n ? json_loads(c.upstream, 0, NULL) : NULL;
		if (!json_is_array(comp) || json_array_size(comp) != f->n)
			snprintf(err, sizeof err,
			         "the cursor does not match this endpoint's servers");
	}
	for (size_t i = 0; !err[0] && i < f->n; i++) {
		json_t *e = json_array_get(comp, i);
		json_t *st = json_array_get(e, 0), *cs = json_array_get(e, 1);
		json_int_t s = json_is_integer(st) ? json_integer_value(st) : -1;
		if (s == 1 && json_is_string(cs)) {
			fl->state[i] = 1;
			fl->cursor[i] = strdup(json_string_value(cs));
		} else if (s == 0 || s == 2)
			fl->state[i] = (int)s;
		else
			snprintf(err, sizeof err,
			         "the cursor does not match this endpoint's servers");
	}
	json_decref(comp);
	mg_fcursor_clear(&c);
	if (!err[0])
		return true;
	char m[300];
	snprintf(m, sizeof m, "Invalid params: invalid cursor (%s)", err);
	mg_reply_rpc_error(fl->req, 200, msg->id, MG_RPC_INVALID_PARAMS, m, NULL);
	return false;
}

/* The member's request for its next page (legacy form on a shared
 * conversation, with the 2026-07-28 _meta on a modern one). */
static json_t *part_request(struct mg_fedlist *fl, size_t i, struct mg_channel *ch)
{
	struct mg_route *m = fl->route->fed->members[i];
	json_t *params = json_object();
	if (fl->cursor[i])
		json_object_set_new(params, "cursor", json_string(fl->cursor[i]));
	if (ch == m->up->modern)
		json_object_set_new(params, "_meta",
		                    json_pack("{s:s,s:{s:s,s:s},s:{}}", MG_MCP_META_VERSION,
		                              MG_MCP_MODERN_VERSION, MG_MCP_META_CLIENTINFO, "name",
		                              "mcp-guard", "version", MG_VERSION,
		                              MG_MCP_META_CLIENTCAPS));
	return json_pack("{s:s,s:i,s:s,s:o}", "jsonrpc", "2.0", "id", 0, "method",
	                 lists[fl->list].method, "params", params);
}

static void fed_list(struct mg_gateway *gw, struct mg_http_req *req, struct mg_route *fed,
                     struct mg_rpc_msg *msg, struct mg_identity *id, unsigned list, bool modern)
{
	struct mg_fed *f = fed->fed;
	size_t slots = f->n ? f->n : 1;
	struct mg_fedlist *fl = calloc(1, sizeof *fl);
	if (!fl || !(fl->parts = calloc(slots, sizeof *fl->parts)) ||
	    !(fl->state = calloc(slots, sizeof *fl->state)) ||
	    !(fl->cursor = calloc(slots, sizeof *fl->cursor))) {
		if (fl) {
			free(fl->parts);
			free(fl->state);
		}
		free(fl);
		mg_reply_rpc_error(req, 503, msg->id, MG_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	fl->gw = gw;
	fl->route = fed;
	fl->req = req;
	fl->id = mg_identity_ref(id);
	fl->filter = id && mg_authz_restricted(id);
	fl->log = mg_pipeline_log_ctx(req);
	fl->orig_id = json_incref(msg->id);
	fl->modern = modern;
	fl->list = list;
	fl->next = f->lists;
	if (f->lists)
		f->lists->prev = fl;
	f->lists = fl;
	if (!open_cursor(fl, msg)) {
		fl->req = NULL;
		fedlist_free(fl);
		return;
	}
	mg_http_req_on_close(req, on_fedlist_close, fl);
	for (size_t i = 0; i < f->n; i++) {
		struct fed_part *p = &fl->parts[i];
		p->fl = fl;
		p->member = i;
		if (fl->state[i] == 2)
			continue;
		struct mg_route *m = f->members[i];
		if (!member_has(m, lists[list].cap)) {
			/* Down (counted) or without this capability (nothing to list). */
			if (!member_caps(m))
				count_failure(m, lists[list].method, "the server is not available");
			continue;
		}
		enum mg_bridge bridge;
		/* Any ready conversation lists the same items: the shared one
		 * needs no _meta. */
		struct mg_channel *ch = mg_fed_channel(m, false, &bridge);
		json_t *rq = part_request(fl, i, ch);
		p->call.on_reply = on_part_reply;
		p->call.on_raw_reply = on_part_raw;
		p->call.arg = p;
		p->call.identity = fl->id ? fl->id->key : NULL;
		p->asked = true;
		fl->waiting++;
		if (!rq || mg_channel_request(ch, &p->call, rq) < 0) {
			fl->waiting--;
			p->asked = false;
			p->failed = true;
			count_failure(m, lists[list].method, "cannot send the request");
		} else {
			p->sent_us = mg_now_us();
		}
		json_decref(rq);
	}
	if (fl->waiting == 0) {
		fedlist_finish(fl);
		return;
	}
	const struct mg_server_config *sc = &gw->cfg->server;
	fl->timer = evtimer_new(gw->base, on_fedlist_timeout, fl);
	struct timeval tv = { .tv_sec = (time_t)sc->request_timeout_secs, .tv_usec = 0 };
	if (fl->timer)
		evtimer_add(fl->timer, &tv);
	gw->requests_total++;
}

size_t mg_fed_inflight(struct mg_gateway *gw)
{
	size_t n = 0;
	if (gw->fed)
		for (struct mg_fedlist *fl = gw->fed->fed->lists; fl; fl = fl->next)
			n++;
	return n;
}

void mg_fed_abort_all(struct mg_gateway *gw, const char *why)
{
	if (!gw->fed)
		return;
	while (gw->fed->fed->lists) {
		struct mg_fedlist *fl = gw->fed->fed->lists;
		struct mg_http_req *req = fl->req;
		fl->req = NULL;
		if (req) {
			mg_http_req_on_close(req, NULL, NULL);
			mg_reply_rpc_error(req, 503, fl->orig_id, MG_RPC_INTERNAL_ERROR, why, NULL);
		}
		fedlist_free(fl);
	}
}

/* ---- requests ------------------------------------------------------------------------- */

static const char *req_header(void *ctx, const char *name)
{
	return mg_http_req_header(ctx, name);
}

static void reply_unknown(struct mg_http_req *req, json_t *id, const char *what, const char *name)
{
	char m[300];
	snprintf(m, sizeof m, "%s: %.200s", what, name);
	mg_reply_rpc_error(req, 200, id, MG_RPC_INVALID_PARAMS, m, NULL);
}

/* Rewrites json string `holder[key]` (a federated name) to the member's own
 * name; the member, or NULL after answering "unknown". */
static struct mg_route *route_by_name(struct mg_route *fed, struct mg_http_req *req,
                                      struct mg_rpc_msg *msg, json_t *holder, const char *what)
{
	json_t *name = json_object_get(holder, "name");
	const char *inner = NULL;
	struct mg_route *m =
	    json_is_string(name) ? split_name(fed->fed, json_string_value(name), &inner) : NULL;
	if (!m) {
		reply_unknown(req, msg->id, what,
		              json_is_string(name) ? json_string_value(name) : "");
		return NULL;
	}
	if (holder == msg->params)
		msg->name_cut = (size_t)(inner - json_string_value(name));
	json_object_set_new(holder, "name", json_string(inner));
	return m;
}

void mg_fed_request(struct mg_gateway *gw, struct mg_http_req *req, struct mg_session *s,
                    struct mg_route *fed, struct mg_rpc_msg *msg, struct mg_identity *id,
                    bool modern)
{
	const char *m = msg->method;
	for (unsigned l = 0; l < MG_FCURSOR_LISTS; l++) {
		if (strcmp(m, lists[l].method) == 0) {
			fed_list(gw, req, fed, msg, id, l, modern);
			return;
		}
	}
	if (strcmp(m, "ping") == 0) {
		mg_reply_result(gw, req, msg->id, json_object(), modern);
		return;
	}
	struct mg_route *member = NULL;
	if (strcmp(m, "tools/call") == 0)
		member = route_by_name(fed, req, msg, msg->params, "Unknown tool");
	else if (strcmp(m, "prompts/get") == 0)
		member = route_by_name(fed, req, msg, msg->params, "Unknown prompt");
	else if (strcmp(m, "resources/read") == 0 || strcmp(m, "resources/subscribe") == 0 ||
	         strcmp(m, "resources/unsubscribe") == 0 || strcmp(m, "completion/complete") == 0) {
		json_t *ref = strcmp(m, "completion/complete") == 0
		                  ? json_object_get(msg->params, "ref")
		                  : msg->params;
		const char *type = json_string_value(json_object_get(ref, "type"));
		if (type && strcmp(type, "ref/prompt") == 0)
			member = route_by_name(fed, req, msg, ref, "Unknown prompt");
		else {
			const char *uri = json_string_value(json_object_get(ref, "uri"));
			member = uri ? mg_fed_owner(fed, uri) : NULL;
			if (!member) {
				char mm[300];
				snprintf(
				    mm, sizeof mm,
				    "Unknown resource: %.200s (no federated server listed it; list "
				    "resources or templates first)",
				    uri ? uri : "");
				mg_reply_rpc_error(req, 200, msg->id, MG_RPC_INVALID_PARAMS, mm,
				                   NULL);
				return;
			}
		}
	} else {
		mg_reply_rpc_error(req, 200, msg->id, MG_RPC_METHOD_NOT_FOUND,
		                   "Method not found on the federated endpoint", NULL);
		return;
	}
	if (!member)
		return;
	msg->edited = true;
	if (modern && strcmp(m, "tools/call") == 0) {
		/* Mcp-Param-* headers against the member's own annotations. */
		json_t *spec = json_object_get(
		    member->tool_params, json_string_value(json_object_get(msg->params, "name")));
		struct mg_mcp_reject rej;
		if (spec && mg_mcp_params_check(spec, json_object_get(msg->params, "arguments"),
		                                req_header, req, &rej) < 0) {
			mg_reply_rpc_error(req, rej.http_status, msg->id, rej.code, rej.message,
			                   NULL);
			return;
		}
	}
	enum mg_bridge bridge;
	struct mg_channel *ch = mg_fed_channel(member, modern, &bridge);
	mg_exchange_start(gw, req, s, member, ch, msg, modern, bridge, id);
}

/* ---- notifications -------------------------------------------------------------------- */

void mg_fed_member_ready(struct mg_route *m)
{
	struct mg_gateway *gw = m->gw;
	if (!gw->fed || !m->federated)
		return;
	/* The member is back (or up for the first time): federated clients list
	 * again and see its tools, prompts and resources. */
	static const char *const kinds[] = { "tools", "prompts", "resources", NULL };
	for (size_t k = 0; kinds[k]; k++) {
		if (!member_has(m, kinds[k]))
			continue;
		char method[64];
		snprintf(method, sizeof method, "notifications/%s/list_changed", kinds[k]);
		json_t *n = json_pack("{s:s,s:s}", "jsonrpc", "2.0", "method", method);
		mg_mcp_fed_notify(gw->fed, n);
		json_decref(n);
	}
}
