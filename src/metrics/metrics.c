/*
 * metrics.c - the Prometheus text writer, histograms and the registry.
 *
 * Format rules (text format 0.0.4, what Prometheus 3 checks): one HELP and
 * one TYPE line per family, every sample of a family right after them,
 * histogram buckets cumulative and ending with le="+Inf" equal to _count,
 * label values escaped (backslash, double quote, line feed), HELP text
 * escaped (backslash, line feed), and the exposition ends with a newline.
 * The writer enforces the escaping and the histogram rules; grouping is
 * the caller's job (write a family's samples before starting the next),
 * which the registry does by construction.
 *
 * Hot path: mg_metrics_request and friends are array increments and a
 * bucket scan of at most 16 integers; the only allocation is the first
 * error series of a (method, error type) pair and the active-identity
 * table growing (bounded).
 */
#include "metrics/metrics.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "util/str.h"

/* ---- writer ---------------------------------------------------------------------- */

void mg_prom_begin(struct mg_prom *p, struct mg_buf *out)
{
	p->out = out;
	p->family[0] = '\0';
}

void mg_prom_escape(struct mg_buf *out, const char *s, bool label)
{
	const char *run = s;
	for (; *s; s++) {
		const char *rep = NULL;
		if (*s == '\\')
			rep = "\\\\";
		else if (*s == '\n')
			rep = "\\n";
		else if (*s == '"' && label)
			rep = "\\\"";
		if (!rep)
			continue;
		mg_buf_append(out, run, (size_t)(s - run));
		mg_buf_puts(out, rep);
		run = s + 1;
	}
	mg_buf_append(out, run, (size_t)(s - run));
}

void mg_prom_family(struct mg_prom *p, const char *name, const char *type, const char *help)
{
	snprintf(p->family, sizeof p->family, "%s", name);
	mg_buf_puts(p->out, "# HELP ");
	mg_buf_puts(p->out, name);
	mg_buf_putc(p->out, ' ');
	mg_prom_escape(p->out, help, false);
	mg_buf_puts(p->out, "\n# TYPE ");
	mg_buf_puts(p->out, name);
	mg_buf_putc(p->out, ' ');
	mg_buf_puts(p->out, type);
	mg_buf_putc(p->out, '\n');
}

size_t mg_prom_fmt_double(char out[32], double v)
{
	if (isnan(v))
		return (size_t)snprintf(out, 32, "NaN");
	if (isinf(v))
		return (size_t)snprintf(out, 32, v > 0 ? "+Inf" : "-Inf");
	if (v == floor(v) && fabs(v) < 9e15) {
		size_t n = mg_fmt_i64(out, (int64_t)v);
		out[n] = '\0';
		return n;
	}
	/* The shortest form that reads back as the same double. */
	int n = 0;
	for (int prec = 1; prec <= 17; prec++) {
		n = snprintf(out, 32, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			break;
	}
	return (size_t)n;
}

static void sample_head(struct mg_prom *p, const char *suffix, const struct mg_prom_label *labels,
                        size_t n, const char *le)
{
	mg_buf_puts(p->out, p->family);
	mg_buf_puts(p->out, suffix);
	if (n || le) {
		mg_buf_putc(p->out, '{');
		for (size_t i = 0; i < n; i++) {
			if (i)
				mg_buf_putc(p->out, ',');
			mg_buf_puts(p->out, labels[i].name);
			mg_buf_puts(p->out, "=\"");
			mg_prom_escape(p->out, labels[i].value ? labels[i].value : "", true);
			mg_buf_putc(p->out, '"');
		}
		if (le) {
			mg_buf_puts(p->out, n ? ",le=\"" : "le=\"");
			mg_buf_puts(p->out, le);
			mg_buf_putc(p->out, '"');
		}
		mg_buf_putc(p->out, '}');
	}
	mg_buf_putc(p->out, ' ');
}

void mg_prom_sample(struct mg_prom *p, const char *suffix, const struct mg_prom_label *labels,
                    size_t n, double v)
{
	char num[32];
	sample_head(p, suffix, labels, n, NULL);
	mg_buf_append(p->out, num, mg_prom_fmt_double(num, v));
	mg_buf_putc(p->out, '\n');
}

static void put_u64(struct mg_buf *out, uint64_t v)
{
	char num[24];
	size_t i = sizeof num;
	do {
		num[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	mg_buf_append(out, num + i, sizeof num - i);
}

void mg_prom_sample_u64(struct mg_prom *p, const char *suffix, const struct mg_prom_label *labels,
                        size_t n, uint64_t v)
{
	sample_head(p, suffix, labels, n, NULL);
	put_u64(p->out, v);
	mg_buf_putc(p->out, '\n');
}

void mg_prom_counter1(struct mg_prom *p, const char *name, const char *help, uint64_t v)
{
	mg_prom_family(p, name, "counter", help);
	mg_prom_sample_u64(p, "", NULL, 0, v);
}

void mg_prom_gauge1(struct mg_prom *p, const char *name, const char *help, double v)
{
	mg_prom_family(p, name, "gauge", help);
	mg_prom_sample(p, "", NULL, 0, v);
}

/* ---- histograms ---------------------------------------------------------------------- */

#define B(x) (uint64_t)((x)*1e6 + 0.5)
const struct mg_buckets mg_buckets_default = {
	.n = 11,
	.le = { .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10 },
	.le_us = { B(.005), B(.01), B(.025), B(.05), B(.1), B(.25), B(.5), B(1), B(2.5), B(5),
	           B(10) },
};
const struct mg_buckets mg_buckets_semconv = {
	.n = 14,
	.le = { .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30, 60, 120, 300 },
	.le_us = { B(.01), B(.02), B(.05), B(.1), B(.2), B(.5), B(1), B(2), B(5), B(10), B(30),
	           B(60), B(120), B(300) },
};
#undef B

void mg_histogram_init(struct mg_histogram *h, const struct mg_buckets *b)
{
	memset(h, 0, sizeof *h);
	h->b = b;
}

void mg_histogram_observe(struct mg_histogram *h, uint64_t us)
{
	h->count++;
	h->sum_us += us;
	for (size_t i = 0; i < h->b->n; i++) {
		if (us <= h->b->le_us[i]) {
			h->n[i]++;
			return;
		}
	}
}

void mg_prom_histogram(struct mg_prom *p, const struct mg_prom_label *labels, size_t n,
                       const struct mg_histogram *h)
{
	uint64_t cum = 0;
	char le[32];
	for (size_t i = 0; i < h->b->n; i++) {
		cum += h->n[i];
		mg_prom_fmt_double(le, h->b->le[i]);
		sample_head(p, "_bucket", labels, n, le);
		put_u64(p->out, cum);
		mg_buf_putc(p->out, '\n');
	}
	sample_head(p, "_bucket", labels, n, "+Inf");
	put_u64(p->out, h->count);
	mg_buf_putc(p->out, '\n');
	mg_prom_sample(p, "_sum", labels, n, (double)h->sum_us / 1e6);
	mg_prom_sample_u64(p, "_count", labels, n, h->count);
}

/* ---- names ------------------------------------------------------------------------- */

static const char *const method_names[MG_MM_COUNT] = {
	[MG_MM_UNKNOWN] = "unknown",
	[MG_MM_INITIALIZE] = "initialize",
	[MG_MM_PING] = "ping",
	[MG_MM_TOOLS_LIST] = "tools/list",
	[MG_MM_TOOLS_CALL] = "tools/call",
	[MG_MM_RESOURCES_LIST] = "resources/list",
	[MG_MM_RESOURCES_TEMPLATES_LIST] = "resources/templates/list",
	[MG_MM_RESOURCES_READ] = "resources/read",
	[MG_MM_RESOURCES_SUBSCRIBE] = "resources/subscribe",
	[MG_MM_RESOURCES_UNSUBSCRIBE] = "resources/unsubscribe",
	[MG_MM_PROMPTS_LIST] = "prompts/list",
	[MG_MM_PROMPTS_GET] = "prompts/get",
	[MG_MM_COMPLETION_COMPLETE] = "completion/complete",
	[MG_MM_LOGGING_SETLEVEL] = "logging/setLevel",
	[MG_MM_SERVER_DISCOVER] = "server/discover",
	[MG_MM_SUBSCRIPTIONS_LISTEN] = "subscriptions/listen",
	[MG_MM_NOTIFICATIONS_INITIALIZED] = "notifications/initialized",
	[MG_MM_NOTIFICATIONS_CANCELLED] = "notifications/cancelled",
	[MG_MM_NOTIFICATIONS_PROGRESS] = "notifications/progress",
	[MG_MM_NOTIFICATIONS_ROOTS_LIST_CHANGED] = "notifications/roots/list_changed",
	[MG_MM_TASKS_GET] = "tasks/get",
	[MG_MM_TASKS_RESULT] = "tasks/result",
	[MG_MM_TASKS_LIST] = "tasks/list",
	[MG_MM_TASKS_CANCEL] = "tasks/cancel",
	[MG_MM_RESPONSE] = "response",
	[MG_MM_OTHER] = "other",
};

static const char *const status_names[MG_MS_COUNT] = {
	[MG_MS_OK] = "ok",
	[MG_MS_ERROR] = "error",
	[MG_MS_TOOL_ERROR] = "tool_error",
	[MG_MS_INVALID] = "invalid",
	[MG_MS_UNAUTHORIZED] = "unauthorized",
	[MG_MS_DENIED] = "denied",
	[MG_MS_RATE_LIMITED] = "rate_limited",
	[MG_MS_CANCELLED] = "cancelled",
};

static const char *const auth_names[MG_MA_COUNT] = { "success", "invalid", "missing",
	                                             "unavailable" };
static const char *const provider_names[MG_MP_COUNT] = { "none",  "api_key",   "jwt",  "mtls",
	                                                 "oauth", "anonymous", "other" };
static const char *const scope_names[MG_MSC_COUNT] = { "identity", "tool", "address" };

const char *mg_metrics_method_name(enum mg_mmethod m)
{
	return (unsigned)m < MG_MM_COUNT ? method_names[m] : "other";
}

enum mg_mmethod mg_metrics_method(const char *name)
{
	if (!name)
		return MG_MM_UNKNOWN;
	/* UNKNOWN, RESPONSE and OTHER are not method names a client can send
	 * (a method literally called "other" is counted as other anyway). */
	for (int i = MG_MM_INITIALIZE; i < MG_MM_RESPONSE; i++) {
		if (strcmp(method_names[i], name) == 0)
			return (enum mg_mmethod)i;
	}
	return MG_MM_OTHER;
}

const char *mg_metrics_status_name(enum mg_mstatus s)
{
	return (unsigned)s < MG_MS_COUNT ? status_names[s] : "error";
}

enum mg_mprovider mg_metrics_provider(const char *name)
{
	if (!name)
		return MG_MP_NONE;
	for (int i = MG_MP_API_KEY; i < MG_MP_OTHER; i++) {
		if (strcmp(provider_names[i], name) == 0)
			return (enum mg_mprovider)i;
	}
	return MG_MP_OTHER;
}

/* ---- registry ---------------------------------------------------------------------- */

struct mg_metrics *mg_metrics_new(const char *const *names, size_t n_upstreams)
{
	struct mg_metrics *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->start_time = (double)time(NULL);
	for (size_t i = 0; i < MG_MM_COUNT; i++) {
		mg_histogram_init(&m->duration[i], &mg_buckets_default);
		mg_histogram_init(&m->op_ok[i], &mg_buckets_semconv);
	}
	m->upstreams = calloc(n_upstreams ? n_upstreams : 1, sizeof *m->upstreams);
	if (!m->upstreams)
		goto fail;
	m->n_upstreams = n_upstreams;
	for (size_t i = 0; i < n_upstreams; i++) {
		m->upstreams[i].name = mg_strdup(names[i] ? names[i] : "");
		if (!m->upstreams[i].name)
			goto fail;
		m->upstreams[i].transport = "pipe";
		mg_histogram_init(&m->upstreams[i].latency, &mg_buckets_default);
	}
	m->op_err.max = MG_METRICS_MAX_ERROR_SERIES;
	m->client_err.max = MG_METRICS_MAX_CLIENT_ERROR_SERIES;
	m->active_max = 1u << 20;
	return m;
fail:
	mg_metrics_free(m);
	return NULL;
}

void mg_metrics_free(struct mg_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; m->upstreams && i < m->n_upstreams; i++) {
		free(m->upstreams[i].name);
		free(m->upstreams[i].op_ok);
		struct mg_metrics_tools *t = m->upstreams[i].tools;
		for (size_t k = 2; t && k < t->n; k++)
			free(t->names[k]);
		free(t);
	}
	free(m->upstreams);
	free(m->op_err.v);
	free(m->client_err.v);
	free(m->client_sessions);
	free(m->active);
	free(m);
}

int mg_metrics_add_collector(struct mg_metrics *m, void (*collect)(struct mg_prom *, void *),
                             void *arg)
{
	size_t max = sizeof m->collectors / sizeof m->collectors[0];
	if (m->n_collectors >= max)
		return -1;
	m->collectors[m->n_collectors++] = (struct mg_metrics_collector){ collect, arg };
	return 0;
}

/* An error type as a label may take: none, JSON-RPC's reserved range,
 * the gateway's own rate-limit code (-31429) and the MG_ET_* classes; any
 * other code an upstream invents is "_OTHER". */
static int32_t error_class(int32_t error)
{
	if (error == MG_ET_NONE || (error >= MG_ET_TOOL_ERROR && error <= MG_ET_UPSTREAM_CLOSED))
		return error;
	return mg_metrics_code(error);
}

static struct mg_histogram *error_series(struct mg_metrics_opsets *set, size_t upstream,
                                         enum mg_mmethod method, int32_t error)
{
	error = error_class(error);
	for (size_t i = 0; i < set->n; i++) {
		struct mg_metrics_opset *s = &set->v[i];
		if (s->method == method && s->error == error && s->upstream == upstream)
			return &s->h;
	}
	/* The last MG_MM_COUNT slots are kept for "_OTHER" series, so the
	 * overflow is still counted (for the server's operations: one per
	 * method, always; for many upstreams, while the slots last). */
	if (error != MG_ET_OTHER && set->n >= set->max - MG_MM_COUNT)
		return error_series(set, upstream, method, MG_ET_OTHER);
	if (set->n >= set->max)
		return NULL;
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 8;
		void *v = realloc(set->v, cap * sizeof *set->v);
		if (!v)
			return NULL;
		set->v = v;
		set->cap = cap;
	}
	struct mg_metrics_opset *s = &set->v[set->n++];
	s->upstream = (uint16_t)upstream;
	s->method = (uint8_t)method;
	s->error = error;
	mg_histogram_init(&s->h, &mg_buckets_semconv);
	return &s->h;
}

void mg_metrics_request(struct mg_metrics *m, enum mg_mmethod method, enum mg_mstatus status,
                        int32_t error, uint64_t duration_us)
{
	if ((unsigned)method >= MG_MM_COUNT)
		method = MG_MM_OTHER;
	if ((unsigned)status >= MG_MS_COUNT)
		status = MG_MS_ERROR;
	m->requests[method][status]++;
	mg_histogram_observe(&m->duration[method], duration_us);
	if (method == MG_MM_UNKNOWN || method == MG_MM_RESPONSE)
		return;
	struct mg_histogram *h =
	    error == MG_ET_NONE ? &m->op_ok[method] : error_series(&m->op_err, 0, method, error);
	if (h)
		mg_histogram_observe(h, duration_us);
}

void mg_metrics_auth(struct mg_metrics *m, enum mg_mprovider p, enum mg_mauth r)
{
	if ((unsigned)p < MG_MP_COUNT && (unsigned)r < MG_MA_COUNT)
		m->auth[p][r]++;
}

void mg_metrics_rate_limit(struct mg_metrics *m, enum mg_mscope scope, bool allowed)
{
	if ((unsigned)scope < MG_MSC_COUNT)
		m->limit[scope][allowed ? 1 : 0]++;
}

void mg_metrics_upstream(struct mg_metrics *m, size_t upstream, bool error, uint64_t latency_us)
{
	if (upstream >= m->n_upstreams)
		return;
	struct mg_metrics_upstream *u = &m->upstreams[upstream];
	u->requests++;
	if (error)
		u->errors++;
	mg_histogram_observe(&u->latency, latency_us);
}

void mg_metrics_upstream_transport(struct mg_metrics *m, size_t i, const char *transport)
{
	if (i < m->n_upstreams)
		m->upstreams[i].transport = transport;
}

void mg_metrics_client_op(struct mg_metrics *m, size_t upstream, enum mg_mmethod method,
                          int32_t error, uint64_t duration_us)
{
	/* (the index is a label's key: at most 65535 upstreams have series) */
	if (upstream >= m->n_upstreams || upstream > UINT16_MAX)
		return;
	if ((unsigned)method >= MG_MM_COUNT || method == MG_MM_UNKNOWN || method == MG_MM_RESPONSE)
		method = MG_MM_OTHER;
	struct mg_metrics_upstream *u = &m->upstreams[upstream];
	struct mg_histogram *h;
	if (error == MG_ET_NONE) {
		if (!u->op_ok) {
			u->op_ok = malloc(MG_MM_COUNT * sizeof *u->op_ok);
			if (!u->op_ok)
				return;
			for (int i = 0; i < MG_MM_COUNT; i++)
				mg_histogram_init(&u->op_ok[i], &mg_buckets_semconv);
		}
		h = &u->op_ok[method];
	} else {
		h = error_series(&m->client_err, upstream, method, error);
	}
	if (h)
		mg_histogram_observe(h, duration_us);
}

/* A protocol version as a label: a YYYY-MM-DD date, else "other". */
static void version_label(const char *version, char out[16])
{
	const char *v = version ? version : "";
	bool date = strlen(v) == 10;
	for (int i = 0; date && i < 10; i++)
		date = i == 4 || i == 7 ? v[i] == '-' : v[i] >= '0' && v[i] <= '9';
	mg_str_copy(out, 16, date ? v : "other");
}

/* The series of (upstream, version, error) in `set` (n of at most max),
 * created on first use; NULL when full. */
static struct mg_metrics_session *session_series(struct mg_metrics_session *set, size_t *n,
                                                 size_t max, size_t upstream, const char *version,
                                                 int32_t error)
{
	char v[sizeof set[0].version];
	version_label(version, v);
	error = error_class(error);
	for (size_t i = 0; i < *n; i++) {
		if (set[i].upstream == upstream && set[i].error == error &&
		    strcmp(set[i].version, v) == 0)
			return &set[i];
	}
	if (*n >= max)
		return NULL;
	struct mg_metrics_session *s = &set[(*n)++];
	s->upstream = (uint16_t)upstream;
	memcpy(s->version, v, sizeof v);
	s->error = error;
	mg_histogram_init(&s->h, &mg_buckets_semconv);
	return s;
}

void mg_metrics_session(struct mg_metrics *m, const char *version, int32_t error,
                        uint64_t duration_us)
{
	/* (versions are the gateway's own; the bound is a safeguard) */
	struct mg_metrics_session *s = session_series(
	    m->sessions, &m->n_sessions, MG_METRICS_MAX_SESSION_SERIES, 0, version, error);
	if (s)
		mg_histogram_observe(&s->h, duration_us);
}

void mg_metrics_client_session(struct mg_metrics *m, size_t upstream, const char *version,
                               int32_t error, uint64_t duration_us)
{
	if (upstream >= m->n_upstreams || upstream > UINT16_MAX)
		return;
	if (!m->client_sessions) {
		m->client_sessions =
		    calloc(MG_METRICS_MAX_CLIENT_SESSION_SERIES, sizeof *m->client_sessions);
		if (!m->client_sessions)
			return;
	}
	/* a server may say any version: the label takes dates only, and the
	 * series are bounded */
	struct mg_metrics_session *s =
	    session_series(m->client_sessions, &m->n_client_sessions,
	                   MG_METRICS_MAX_CLIENT_SESSION_SERIES, upstream, version, error);
	if (s)
		mg_histogram_observe(&s->h, duration_us);
}

/* ---- active identities ---------------------------------------------------------------- */

/* 0 is reserved for "empty". Distinct keys colliding (2^-64 per pair)
 * only undercount by one. */
static uint64_t key_hash(const char *s)
{
	uint64_t h = mg_hash_bytes(0, s, strlen(s));
	return h ? h : 1;
}

static void active_put(struct mg_active *t, size_t cap, uint64_t hash, uint64_t seen, size_t *n)
{
	size_t i = (size_t)hash & (cap - 1);
	while (t[i].hash && t[i].hash != hash)
		i = (i + 1) & (cap - 1);
	if (!t[i].hash)
		(*n)++;
	t[i].hash = hash;
	if (seen > t[i].seen_us)
		t[i].seen_us = seen;
}

/* Rebuilds the table with `cap` slots, keeping entries seen since `since`. */
static int active_rebuild(struct mg_metrics *m, size_t cap, uint64_t since)
{
	struct mg_active *t = calloc(cap, sizeof *t);
	if (!t)
		return -1;
	size_t n = 0;
	for (size_t i = 0; i < m->active_cap; i++) {
		if (m->active[i].hash && m->active[i].seen_us >= since)
			active_put(t, cap, m->active[i].hash, m->active[i].seen_us, &n);
	}
	free(m->active);
	m->active = t;
	m->active_cap = cap;
	m->active_n = n;
	return 0;
}

static uint64_t window_start(uint64_t now_us)
{
	uint64_t w = (uint64_t)MG_ACTIVE_WINDOW_SECS * 1000000;
	return now_us > w ? now_us - w : 0;
}

void mg_metrics_identity_seen(struct mg_metrics *m, const char *key, uint64_t now_us)
{
	uint64_t hash = key_hash(key);
	if (m->active_cap) {
		size_t i = (size_t)hash & (m->active_cap - 1);
		while (m->active[i].hash && m->active[i].hash != hash)
			i = (i + 1) & (m->active_cap - 1);
		if (m->active[i].hash) {
			m->active[i].seen_us = now_us; /* the common case: seen before */
			return;
		}
	}
	/* A new identity. Keep the load at most 1/2: first drop what left the
	 * window (at most once a second), then grow up to the bound. */
	if ((m->active_n + 1) * 2 > m->active_cap) {
		size_t cap = m->active_cap ? m->active_cap : 64;
		if (m->active_cap && now_us - m->active_pruned_us >= 1000000) {
			m->active_pruned_us = now_us;
			active_rebuild(m, cap, window_start(now_us));
		}
		if ((m->active_n + 1) * 2 > cap && cap < m->active_max)
			cap *= 2;
		if ((m->active_n + 1) * 2 > cap)
			return; /* at the bound: saturate rather than grow */
		if (cap != m->active_cap && active_rebuild(m, cap, 0) < 0)
			return;
	}
	active_put(m->active, m->active_cap, hash, now_us, &m->active_n);
}

size_t mg_metrics_active_identities(struct mg_metrics *m, uint64_t now_us)
{
	if (!m->active_cap)
		return 0;
	active_rebuild(m, m->active_cap, window_start(now_us));
	return m->active_n;
}

/* ---- render -------------------------------------------------------------------------- */

const char *mg_metrics_error_type(int32_t e, char buf[16])
{
	/* the MG_ET_* band, from MG_ET_TOOL_ERROR (INT32_MIN) up */
	static const char *const classes[] = { "tool_error", "cancelled",   "_OTHER",
		                               "timeout",    "unavailable", "upstream_closed" };
	_Static_assert(MG_ET_UPSTREAM_CLOSED - MG_ET_TOOL_ERROR + 1 ==
	                   sizeof classes / sizeof classes[0],
	               "a name for every error class");
	if (e >= MG_ET_TOOL_ERROR && e <= MG_ET_UPSTREAM_CLOSED)
		return classes[e - MG_ET_TOOL_ERROR];
	buf[mg_fmt_i64(buf, e)] = '\0';
	return buf;
}

static void render_requests(struct mg_metrics *m, struct mg_prom *p)
{
	mg_prom_family(p, "mcp_guard_requests_total", "counter",
	               "Requests to the MCP endpoint (POST), by MCP method and outcome.");
	for (int i = 0; i < MG_MM_COUNT; i++) {
		for (int s = 0; s < MG_MS_COUNT; s++) {
			if (!m->requests[i][s])
				continue;
			struct mg_prom_label l[] = { { "method", method_names[i] },
				                     { "status", status_names[s] } };
			mg_prom_sample_u64(p, "", l, 2, m->requests[i][s]);
		}
	}
	mg_prom_family(p, "mcp_guard_request_duration_seconds", "histogram",
	               "Time from the request head to the end of the answer, by MCP method.");
	for (int i = 0; i < MG_MM_COUNT; i++) {
		if (!m->duration[i].count)
			continue;
		struct mg_prom_label l[] = { { "method", method_names[i] } };
		mg_prom_histogram(p, l, 1, &m->duration[i]);
	}
	mg_prom_family(p, "mcp_server_operation_duration_seconds", "histogram",
	               "MCP request or notification duration as observed on the receiver "
	               "(OpenTelemetry MCP semantic conventions, mcp.server.operation.duration).");
	for (int i = 0; i < MG_MM_COUNT; i++) {
		if (m->op_ok[i].count) {
			struct mg_prom_label l[] = { { "mcp_method_name", method_names[i] },
				                     { "error_type", "" } };
			mg_prom_histogram(p, l, 2, &m->op_ok[i]);
		}
		for (size_t k = 0; k < m->op_err.n; k++) {
			if (m->op_err.v[k].method != i)
				continue;
			char buf[16];
			struct mg_prom_label l[] = {
				{ "mcp_method_name", method_names[i] },
				{ "error_type", mg_metrics_error_type(m->op_err.v[k].error, buf) }
			};
			mg_prom_histogram(p, l, 2, &m->op_err.v[k].h);
		}
	}
	if (!m->n_sessions)
		return; /* (a family appears with its first series) */
	mg_prom_family(p, "mcp_server_session_duration_seconds", "histogram",
	               "Duration of the MCP sessions of the gateway's clients, from initialize "
	               "to their end (OpenTelemetry MCP semantic conventions, "
	               "mcp.server.session.duration); error_type says why the gateway ended one.");
	for (size_t i = 0; i < m->n_sessions; i++) {
		char buf[16];
		const struct mg_metrics_session *s = &m->sessions[i];
		struct mg_prom_label l[] = {
			{ "mcp_protocol_version", s->version },
			{ "network_transport", "tcp" },
			{ "error_type",
			  s->error == MG_ET_NONE ? "" : mg_metrics_error_type(s->error, buf) }
		};
		mg_prom_histogram(p, l, 3, &s->h);
	}
}

static void render_access(struct mg_metrics *m, struct mg_prom *p, uint64_t now_us)
{
	mg_prom_family(p, "mcp_guard_auth_total", "counter",
	               "Authentication decisions by provider (\"none\" for failures: the chain "
	               "does not say which provider refused) and result.");
	for (int i = 0; i < MG_MP_COUNT; i++) {
		for (int r = 0; r < MG_MA_COUNT; r++) {
			if (!m->auth[i][r])
				continue;
			struct mg_prom_label l[] = { { "provider", provider_names[i] },
				                     { "result", auth_names[r] } };
			mg_prom_sample_u64(p, "", l, 2, m->auth[i][r]);
		}
	}
	mg_prom_family(p, "mcp_guard_rate_limit_total", "counter",
	               "Rate-limit decisions: identity and tool limits (allowed or not), and "
	               "refusals of the per-address limit before authentication.");
	for (int s = 0; s < MG_MSC_COUNT; s++) {
		for (int a = 1; a >= 0; a--) {
			if (!m->limit[s][a])
				continue;
			struct mg_prom_label l[] = { { "allowed", a ? "true" : "false" },
				                     { "scope", scope_names[s] } };
			mg_prom_sample_u64(p, "", l, 2, m->limit[s][a]);
		}
	}
	mg_prom_gauge1(p, "mcp_guard_active_identities",
	               "Distinct identities that authenticated in the last 5 minutes or hold an "
	               "open session.",
	               (double)mg_metrics_active_identities(m, now_us));
}

static void render_upstreams(struct mg_metrics *m, struct mg_prom *p)
{
	mg_prom_family(p, "mcp_guard_upstream_requests_total", "counter",
	               "Requests the gateway forwarded to the upstream.");
	for (size_t i = 0; i < m->n_upstreams; i++) {
		struct mg_prom_label l[] = { { "upstream", m->upstreams[i].name } };
		mg_prom_sample_u64(p, "", l, 1, m->upstreams[i].requests);
	}
	mg_prom_family(p, "mcp_guard_upstream_errors_total", "counter",
	               "Forwarded requests answered with a JSON-RPC error, timed out, or not "
	               "sent because the upstream was unavailable.");
	for (size_t i = 0; i < m->n_upstreams; i++) {
		struct mg_prom_label l[] = { { "upstream", m->upstreams[i].name } };
		mg_prom_sample_u64(p, "", l, 1, m->upstreams[i].errors);
	}
	mg_prom_family(p, "mcp_guard_upstream_request_duration_seconds", "histogram",
	               "Time from forwarding a request to the upstream's answer.");
	for (size_t i = 0; i < m->n_upstreams; i++) {
		struct mg_prom_label l[] = { { "upstream", m->upstreams[i].name } };
		mg_prom_histogram(p, l, 1, &m->upstreams[i].latency);
	}
}

/* ---- tool calls per tool ---------------------------------------------------------- */

uint16_t mg_metrics_tool_slot(struct mg_metrics *m, size_t upstream, const char *name, size_t len,
                              bool (*advertised)(const char *name, void *arg), void *arg)
{
	if (upstream >= m->n_upstreams)
		return 0;
	struct mg_metrics_upstream *u = &m->upstreams[upstream];
	if (!u->tools) {
		u->tools = calloc(1, sizeof *u->tools);
		if (!u->tools)
			return 0;
		u->tools->names[MG_METRICS_TOOL_OTHER] = (char *)"_OTHER"; /* (never looked up) */
		u->tools->n = 2;
	}
	struct mg_metrics_tools *t = u->tools;
	const size_t mask = sizeof t->index / sizeof t->index[0] - 1;
	size_t i = (size_t)mg_hash_bytes(0, name, len) & mask;
	for (; t->index[i]; i = (i + 1) & mask) {
		uint16_t k = t->index[i];
		if (t->lens[k] == len && memcmp(t->names[k], name, len) == 0)
			return k;
	}
	/* a name not seen yet: a series of its own only for a tool the
	 * upstream lists, while there is room (the table stays half empty) */
	if (t->n >= MG_METRICS_MAX_TOOLS + 2 || memchr(name, '\0', len) ||
	    (len == 6 && memcmp(name, "_OTHER", 6) == 0) || !advertised(name, arg))
		return MG_METRICS_TOOL_OTHER;
	char *copy = strndup(name, len);
	if (!copy)
		return MG_METRICS_TOOL_OTHER;
	t->names[t->n] = copy;
	t->lens[t->n] = len;
	t->index[i] = t->n;
	return t->n++;
}

void mg_metrics_tool_call(struct mg_metrics *m, size_t upstream, uint16_t slot, int32_t error,
                          uint64_t duration_us)
{
	if (upstream >= m->n_upstreams || !m->upstreams[upstream].tools)
		return;
	struct mg_metrics_tools *t = m->upstreams[upstream].tools;
	if (!slot || slot >= t->n)
		return;
	t->calls[slot][error == MG_ET_NONE ? 0 : error == MG_ET_TOOL_ERROR ? 1 : 2]++;
	t->us[slot] += duration_us;
}

static void render_tools(struct mg_metrics *m, struct mg_prom *p)
{
	static const char *const outcomes[3] = { "ok", "tool_error", "error" };
	bool any = false;
	for (size_t i = 0; i < m->n_upstreams && !any; i++)
		any = m->upstreams[i].tools != NULL;
	if (!any)
		return;
	mg_prom_family(p, "mcp_guard_tool_calls_total", "counter",
	               "tools/call requests forwarded, per upstream, tool (one the upstream "
	               "lists; any other name is _OTHER) and outcome.");
	for (size_t i = 0; i < m->n_upstreams; i++) {
		const struct mg_metrics_tools *t = m->upstreams[i].tools;
		for (size_t k = 1; t && k < t->n; k++) {
			for (int o = 0; o < 3; o++) {
				if (!t->calls[k][o])
					continue;
				struct mg_prom_label l[] = { { "upstream", m->upstreams[i].name },
					                     { "tool", t->names[k] },
					                     { "outcome", outcomes[o] } };
				mg_prom_sample_u64(p, "", l, 3, t->calls[k][o]);
			}
		}
	}
	mg_prom_family(p, "mcp_guard_tool_call_seconds_total", "counter",
	               "Time from forwarding a tools/call to its answer, summed per upstream "
	               "and tool: divided by the calls' rate, the mean latency of a tool.");
	for (size_t i = 0; i < m->n_upstreams; i++) {
		const struct mg_metrics_tools *t = m->upstreams[i].tools;
		for (size_t k = 1; t && k < t->n; k++) {
			if (!t->calls[k][0] && !t->calls[k][1] && !t->calls[k][2])
				continue;
			struct mg_prom_label l[] = { { "upstream", m->upstreams[i].name },
				                     { "tool", t->names[k] } };
			mg_prom_sample(p, "", l, 2, (double)t->us[k] / 1e6);
		}
	}
}

/* The conventions' client side: the gateway's requests to its upstreams
 * and its sessions with them. A family appears with its first series. */
static void render_client(struct mg_metrics *m, struct mg_prom *p)
{
	bool any_op = m->client_err.n > 0;
	for (size_t i = 0; i < m->n_upstreams && !any_op; i++)
		any_op = m->upstreams[i].op_ok != NULL;
	if (any_op)
		mg_prom_family(
		    p, "mcp_client_operation_duration_seconds", "histogram",
		    "The gateway's MCP requests to its upstreams, from sending one to the "
		    "answer (OpenTelemetry MCP semantic conventions, "
		    "mcp.client.operation.duration).");
	/* (a family's samples may come in any order, so long as they are together) */
	for (size_t i = 0; i < m->n_upstreams; i++) {
		const struct mg_metrics_upstream *u = &m->upstreams[i];
		for (int k = 0; u->op_ok && k < MG_MM_COUNT; k++) {
			if (!u->op_ok[k].count)
				continue;
			struct mg_prom_label l[] = { { "upstream", u->name },
				                     { "mcp_method_name", method_names[k] },
				                     { "network_transport", u->transport },
				                     { "error_type", "" } };
			mg_prom_histogram(p, l, 4, &u->op_ok[k]);
		}
	}
	for (size_t e = 0; e < m->client_err.n; e++) {
		const struct mg_metrics_opset *s = &m->client_err.v[e];
		const struct mg_metrics_upstream *u = &m->upstreams[s->upstream];
		char buf[16];
		struct mg_prom_label l[] = { { "upstream", u->name },
			                     { "mcp_method_name", method_names[s->method] },
			                     { "network_transport", u->transport },
			                     { "error_type",
			                       mg_metrics_error_type(s->error, buf) } };
		mg_prom_histogram(p, l, 4, &s->h);
	}
	if (!m->n_client_sessions)
		return;
	mg_prom_family(p, "mcp_client_session_duration_seconds", "histogram",
	               "Duration of the gateway's own MCP sessions with its upstreams, from the "
	               "initialize handshake to their end (OpenTelemetry MCP semantic conventions, "
	               "mcp.client.session.duration); error_type upstream_closed when the server "
	               "or the transport ended one.");
	for (size_t i = 0; i < m->n_client_sessions; i++) {
		const struct mg_metrics_session *s = &m->client_sessions[i];
		const struct mg_metrics_upstream *u = &m->upstreams[s->upstream];
		char buf[16];
		struct mg_prom_label l[] = {
			{ "upstream", u->name },
			{ "mcp_protocol_version", s->version },
			{ "network_transport", u->transport },
			{ "error_type",
			  s->error == MG_ET_NONE ? "" : mg_metrics_error_type(s->error, buf) }
		};
		mg_prom_histogram(p, l, 4, &s->h);
	}
}

void mg_metrics_render(struct mg_metrics *m, struct mg_buf *out, uint64_t now_us)
{
	struct mg_prom p;
	mg_prom_begin(&p, out);
	render_requests(m, &p);
	render_access(m, &p, now_us);
	render_upstreams(m, &p);
	render_tools(m, &p);
	render_client(m, &p);
	for (size_t i = 0; i < m->n_collectors; i++)
		m->collectors[i].collect(&p, m->collectors[i].arg);
	mg_metrics_process(&p, m->start_time);
}

/* ---- process ---------------------------------------------------------------------- */

/* Reads /proc (procfs answers from memory: no disk wait on the loop). */
void mg_metrics_process(struct mg_prom *p, double start_time)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		mg_prom_family(p, "process_cpu_seconds_total", "counter",
		               "Total user and system CPU time spent in seconds.");
		mg_prom_sample(p, "", NULL, 0,
		               (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		                   (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	}
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		unsigned long long vsz, rss;
		long page = sysconf(_SC_PAGESIZE);
		if (fscanf(f, "%llu %llu", &vsz, &rss) == 2 && page > 0) {
			mg_prom_gauge1(p, "process_resident_memory_bytes",
			               "Resident memory size in bytes.",
			               (double)rss * (double)page);
			mg_prom_gauge1(p, "process_virtual_memory_bytes",
			               "Virtual memory size in bytes.", (double)vsz * (double)page);
		}
		fclose(f);
	}
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		size_t n = 0;
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] != '.')
				n++;
		}
		closedir(d);
		mg_prom_gauge1(p, "process_open_fds", "Number of open file descriptors.",
		               (double)(n > 0 ? n - 1 : 0)); /* minus the one opendir holds */
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		mg_prom_gauge1(p, "process_max_fds", "Maximum number of open file descriptors.",
		               (double)rl.rlim_cur);
	mg_prom_gauge1(p, "process_start_time_seconds",
	               "Start time of the process since unix epoch in seconds.", start_time);
}
