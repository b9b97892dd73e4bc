/*
 * test_metrics.c - the Prometheus text writer (escaping, number forms,
 * histogram rules), method and status labels, error-type bounds, active
 * identities with time as a parameter, and the process families.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

static char *render(struct mg_metrics *m, uint64_t now)
{
	struct mg_buf b;
	mg_buf_init(&b, 0);
	mg_metrics_render(m, &b, now);
	return mg_buf_steal(&b);
}

static void test_escape(void **state)
{
	(void)state;
	struct mg_buf b;
	mg_buf_init(&b, 0);
	struct mg_prom p;
	mg_prom_begin(&p, &b);
	mg_prom_family(&p, "x_total", "counter", "back\\slash \"quoted\"\nnext line");
	struct mg_prom_label l[] = { { "a", "q\"uo\\te\nnl" }, { "b", "" } };
	mg_prom_sample_u64(&p, "", l, 2, 18446744073709551615ULL);
	assert_string_equal(b.data,
	                    "# HELP x_total back\\\\slash \"quoted\"\\nnext line\n"
	                    "# TYPE x_total counter\n"
	                    "x_total{a=\"q\\\"uo\\\\te\\nnl\",b=\"\"} 18446744073709551615\n");
	mg_buf_free(&b);
}

static void test_numbers(void **state)
{
	(void)state;
	char s[32];
	mg_prom_fmt_double(s, 0.1);
	assert_string_equal(s, "0.1");
	mg_prom_fmt_double(s, 300);
	assert_string_equal(s, "300");
	mg_prom_fmt_double(s, 0.005);
	assert_string_equal(s, "0.005");
	mg_prom_fmt_double(s, 1.0 / 3);
	assert_true(strtod(s, NULL) == 1.0 / 3);
	mg_prom_fmt_double(s, -2);
	assert_string_equal(s, "-2");
	mg_prom_fmt_double(s, 1.0 / 0.0);
	assert_string_equal(s, "+Inf");
	mg_prom_fmt_double(s, -1.0 / 0.0);
	assert_string_equal(s, "-Inf");
	mg_prom_fmt_double(s, 0.0 / 0.0);
	assert_string_equal(s, "NaN");
}

static void test_histogram(void **state)
{
	(void)state;
	struct mg_histogram h;
	mg_histogram_init(&h, &mg_buckets_semconv);
	mg_histogram_observe(&h, 10000);     /* exactly 0.01: le is inclusive */
	mg_histogram_observe(&h, 10001);     /* 0.02 */
	mg_histogram_observe(&h, 1500000);   /* 2 */
	mg_histogram_observe(&h, 400000000); /* beyond 300: +Inf only */
	struct mg_buf b;
	mg_buf_init(&b, 0);
	struct mg_prom p;
	mg_prom_begin(&p, &b);
	mg_prom_family(&p, "d_seconds", "histogram", "h");
	struct mg_prom_label l[] = { { "m", "x" } };
	mg_prom_histogram(&p, l, 1, &h);
	const char *want = "# HELP d_seconds h\n# TYPE d_seconds histogram\n"
	                   "d_seconds_bucket{m=\"x\",le=\"0.01\"} 1\n"
	                   "d_seconds_bucket{m=\"x\",le=\"0.02\"} 2\n"
	                   "d_seconds_bucket{m=\"x\",le=\"0.05\"} 2\n"
	                   "d_seconds_bucket{m=\"x\",le=\"0.1\"} 2\n"
	                   "d_seconds_bucket{m=\"x\",le=\"0.2\"} 2\n"
	                   "d_seconds_bucket{m=\"x\",le=\"0.5\"} 2\n"
	                   "d_seconds_bucket{m=\"x\",le=\"1\"} 2\n"
	                   "d_seconds_bucket{m=\"x\",le=\"2\"} 3\n"
	                   "d_seconds_bucket{m=\"x\",le=\"5\"} 3\n"
	                   "d_seconds_bucket{m=\"x\",le=\"10\"} 3\n"
	                   "d_seconds_bucket{m=\"x\",le=\"30\"} 3\n"
	                   "d_seconds_bucket{m=\"x\",le=\"60\"} 3\n"
	                   "d_seconds_bucket{m=\"x\",le=\"120\"} 3\n"
	                   "d_seconds_bucket{m=\"x\",le=\"300\"} 3\n"
	                   "d_seconds_bucket{m=\"x\",le=\"+Inf\"} 4\n"
	                   "d_seconds_sum{m=\"x\"} 401.520001\n"
	                   "d_seconds_count{m=\"x\"} 4\n";
	assert_string_equal(b.data, want);
	mg_buf_free(&b);
}

static void test_methods(void **state)
{
	(void)state;
	assert_int_equal(mg_metrics_method("tools/call"), MG_MM_TOOLS_CALL);
	assert_int_equal(mg_metrics_method("notifications/initialized"),
	                 MG_MM_NOTIFICATIONS_INITIALIZED);
	assert_int_equal(mg_metrics_method(NULL), MG_MM_UNKNOWN);
	/* Anything a client makes up is "other", including the reserved words. */
	assert_int_equal(mg_metrics_method("tools/call2"), MG_MM_OTHER);
	assert_int_equal(mg_metrics_method("unknown"), MG_MM_OTHER);
	assert_int_equal(mg_metrics_method("response"), MG_MM_OTHER);
	assert_int_equal(mg_metrics_method("other"), MG_MM_OTHER);
	for (int i = 0; i < MG_MM_COUNT; i++)
		assert_non_null(mg_metrics_method_name((enum mg_mmethod)i));
	assert_int_equal(mg_metrics_provider("jwt"), MG_MP_JWT);
	assert_int_equal(mg_metrics_provider("custom"), MG_MP_OTHER);
}

static void test_registry(void **state)
{
	(void)state;
	const char *names[] = { "files\"x" };
	struct mg_metrics *m = mg_metrics_new(names, 1);
	assert_non_null(m);
	mg_metrics_request(m, MG_MM_TOOLS_CALL, MG_MS_OK, MG_ET_NONE, 1000);
	mg_metrics_request(m, MG_MM_TOOLS_CALL, MG_MS_TOOL_ERROR, MG_ET_TOOL_ERROR, 1000);
	mg_metrics_request(m, MG_MM_TOOLS_CALL, MG_MS_ERROR, -32602, 1000);
	mg_metrics_request(m, MG_MM_TOOLS_CALL, MG_MS_ERROR, 42, 1000); /* outside the range */
	mg_metrics_request(m, MG_MM_UNKNOWN, MG_MS_UNAUTHORIZED, MG_ET_OTHER, 10);
	mg_metrics_auth(m, MG_MP_API_KEY, MG_MA_SUCCESS);
	mg_metrics_rate_limit(m, MG_MSC_IDENTITY, false);
	mg_metrics_upstream(m, 0, true, 5000);
	mg_metrics_upstream(m, 7, true, 5000); /* no such upstream: ignored */
	char *t = render(m, 1000000);
	assert_non_null(
	    strstr(t, "mcp_guard_requests_total{method=\"tools/call\",status=\"ok\"} 1\n"));
	assert_non_null(
	    strstr(t, "mcp_guard_requests_total{method=\"unknown\",status=\"unauthorized\"} 1\n"));
	assert_non_null(strstr(t, "mcp_server_operation_duration_seconds_count{mcp_method_name="
	                          "\"tools/call\",error_type=\"tool_error\"} 1\n"));
	assert_non_null(strstr(t, "mcp_server_operation_duration_seconds_count{mcp_method_name="
	                          "\"tools/call\",error_type=\"-32602\"} 1\n"));
	assert_non_null(strstr(t, "mcp_server_operation_duration_seconds_count{mcp_method_name="
	                          "\"tools/call\",error_type=\"_OTHER\"} 1\n"));
	assert_non_null(strstr(t, "mcp_server_operation_duration_seconds_count{mcp_method_name="
	                          "\"tools/call\",error_type=\"\"} 1\n"));
	/* The unknown method has no semantic-convention series. */
	assert_null(strstr(t, "mcp_method_name=\"unknown\""));
	assert_non_null(
	    strstr(t, "mcp_guard_auth_total{provider=\"api_key\",result=\"success\"} 1\n"));
	assert_non_null(
	    strstr(t, "mcp_guard_rate_limit_total{allowed=\"false\",scope=\"identity\"} 1\n"));
	assert_non_null(strstr(t, "mcp_guard_upstream_errors_total{upstream=\"files\\\"x\"} 1\n"));
	assert_non_null(strstr(t, "process_start_time_seconds "));
	assert_non_null(strstr(t, "process_resident_memory_bytes "));
	/* Ends with a newline; every family has one HELP and one TYPE. */
	assert_int_equal(t[strlen(t) - 1], '\n');
	size_t helps = 0, types = 0;
	for (const char *s = t; (s = strstr(s, "# HELP ")); s++)
		helps++;
	for (const char *s = t; (s = strstr(s, "# TYPE ")); s++)
		types++;
	assert_int_equal(helps, types);
	free(t);
	mg_metrics_free(m);
}

static void test_error_series_bounded(void **state)
{
	(void)state;
	struct mg_metrics *m = mg_metrics_new(NULL, 0);
	/* A hostile upstream inventing codes cannot grow the series without bound. */
	for (int32_t c = -32768; c <= -32000; c++)
		for (int k = 0; k < 2; k++)
			mg_metrics_request(m, k ? MG_MM_TOOLS_CALL : MG_MM_PING, MG_MS_ERROR, c, 1);
	assert_true(m->op_err.n <= MG_METRICS_MAX_ERROR_SERIES);
	uint64_t total = 0;
	for (size_t i = 0; i < m->op_err.n; i++)
		total += m->op_err.v[i].h.count;
	assert_int_equal(total, 2 * 769); /* everything counted, the overflow as _OTHER */
	mg_metrics_free(m);
}

static void test_client_operations(void **state)
{
	(void)state;
	const char *names[] = { "files", "remote" };
	struct mg_metrics *m = mg_metrics_new(names, 2);
	mg_metrics_upstream_transport(m, 1, "tcp");
	mg_metrics_client_op(m, 0, MG_MM_TOOLS_CALL, MG_ET_NONE, 1000);
	mg_metrics_client_op(m, 0, MG_MM_TOOLS_CALL, MG_ET_NONE, 30000);
	mg_metrics_client_op(m, 0, MG_MM_TOOLS_CALL, MG_ET_TOOL_ERROR, 1000);
	mg_metrics_client_op(m, 1, MG_MM_RESOURCES_READ, -32002, 1000);
	mg_metrics_client_op(m, 1, MG_MM_TOOLS_CALL, MG_ET_TIMEOUT, 60000000);
	mg_metrics_client_op(m, 1, MG_MM_TOOLS_CALL, MG_ET_UNAVAILABLE, 10);
	mg_metrics_client_op(m, 0, MG_MM_PING, MG_ET_CANCELLED, 10);
	mg_metrics_client_op(m, 2, MG_MM_PING, MG_ET_NONE, 10); /* no such upstream: ignored */
	mg_metrics_session(m, "2025-11-25", MG_ET_NONE, 5000000);
	mg_metrics_session(m, "2025-11-25", MG_ET_NONE, 7000000);
	mg_metrics_session(m, "2025-06-18", MG_ET_UPSTREAM_CLOSED, 1000);
	mg_metrics_client_session(m, 1, "2025-11-25", MG_ET_UPSTREAM_CLOSED, 3000000);
	mg_metrics_client_session(m, 1, "2025-11-25", MG_ET_NONE, 1000);
	mg_metrics_client_session(m, 0, "not-a-date", MG_ET_NONE, 1000);
	char *t = render(m, 1000000);
	const char *want[] = {
		"mcp_client_operation_duration_seconds_count{upstream=\"files\",mcp_method_name="
		"\"tools/call\",network_transport=\"pipe\",error_type=\"\"} 2\n",
		"mcp_client_operation_duration_seconds_bucket{upstream=\"files\",mcp_method_name="
		"\"tools/call\",network_transport=\"pipe\",error_type=\"\",le=\"0.01\"} 1\n",
		"mcp_client_operation_duration_seconds_count{upstream=\"files\",mcp_method_name="
		"\"tools/call\",network_transport=\"pipe\",error_type=\"tool_error\"} 1\n",
		"mcp_client_operation_duration_seconds_count{upstream=\"remote\",mcp_method_name="
		"\"resources/read\",network_transport=\"tcp\",error_type=\"-32002\"} 1\n",
		"mcp_client_operation_duration_seconds_count{upstream=\"remote\",mcp_method_name="
		"\"tools/call\",network_transport=\"tcp\",error_type=\"timeout\"} 1\n",
		"mcp_client_operation_duration_seconds_count{upstream=\"remote\",mcp_method_name="
		"\"tools/call\",network_transport=\"tcp\",error_type=\"unavailable\"} 1\n",
		"mcp_client_operation_duration_seconds_count{upstream=\"files\",mcp_method_name="
		"\"ping\",network_transport=\"pipe\",error_type=\"cancelled\"} 1\n",
		"mcp_server_session_duration_seconds_count{mcp_protocol_version=\"2025-11-25\","
		"network_transport=\"tcp\",error_type=\"\"} 2\n",
		"mcp_server_session_duration_seconds_sum{mcp_protocol_version=\"2025-11-25\","
		"network_transport=\"tcp\",error_type=\"\"} 12\n",
		"mcp_server_session_duration_seconds_count{mcp_protocol_version=\"2025-06-18\","
		"network_transport=\"tcp\",error_type=\"upstream_closed\"} 1\n",
		"mcp_client_session_duration_seconds_count{upstream=\"remote\",mcp_protocol_"
		"version="
		"\"2025-11-25\",network_transport=\"tcp\",error_type=\"upstream_closed\"} 1\n",
		"mcp_client_session_duration_seconds_count{upstream=\"remote\",mcp_protocol_"
		"version="
		"\"2025-11-25\",network_transport=\"tcp\",error_type=\"\"} 1\n",
		"mcp_client_session_duration_seconds_count{upstream=\"files\",mcp_protocol_version="
		"\"other\",network_transport=\"pipe\",error_type=\"\"} 1\n",
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		if (!strstr(t, want[i]))
			fail_msg("missing: %s", want[i]);
	}
	/* Each family once: its samples together. */
	const char *f = strstr(t, "# TYPE mcp_client_operation_duration_seconds histogram\n");
	assert_non_null(f);
	assert_null(strstr(f + 1, "# TYPE mcp_client_operation_duration_seconds"));
	free(t);
	mg_metrics_free(m);
}

/* Advertised names only: a tool the upstream lists (the callback says) */
static bool listed(const char *name, void *arg)
{
	(void)arg;
	return strncmp(name, "tool-", 5) == 0 || strcmp(name, "_OTHER") == 0 ||
	       strcmp(name, "say \"hi\"") == 0;
}

static void test_tool_calls(void **state)
{
	(void)state;
	const char *names[] = { "files", "remote" };
	struct mg_metrics *m = mg_metrics_new(names, 2);
	char *t = render(m, 1000000);
	assert_null(strstr(t, "mcp_guard_tool_calls_total")); /* no series, no family */
	free(t);
	uint16_t a = mg_metrics_tool_slot(m, 0, "tool-a", 6, listed, NULL);
	uint16_t q = mg_metrics_tool_slot(m, 0, "say \"hi\"", 8, listed, NULL);
	assert_true(a > MG_METRICS_TOOL_OTHER && q > MG_METRICS_TOOL_OTHER && a != q);
	assert_int_equal(mg_metrics_tool_slot(m, 0, "tool-a", 6, listed, NULL),
	                 a); /* found again */
	/* not listed, named like the overflow series, or holding a NUL: _OTHER */
	assert_int_equal(mg_metrics_tool_slot(m, 0, "secret-probe", 12, listed, NULL),
	                 MG_METRICS_TOOL_OTHER);
	assert_int_equal(mg_metrics_tool_slot(m, 0, "_OTHER", 6, listed, NULL),
	                 MG_METRICS_TOOL_OTHER);
	assert_int_equal(mg_metrics_tool_slot(m, 0, "tool-a\0x", 8, listed, NULL),
	                 MG_METRICS_TOOL_OTHER);
	assert_int_equal(mg_metrics_tool_slot(m, 2, "tool-a", 6, listed, NULL),
	                 0); /* no upstream */
	mg_metrics_tool_call(m, 0, a, MG_ET_NONE, 1500000);
	mg_metrics_tool_call(m, 0, a, MG_ET_NONE, 500000);
	mg_metrics_tool_call(m, 0, a, MG_ET_TOOL_ERROR, 1000000);
	mg_metrics_tool_call(m, 0, q, MG_ET_TIMEOUT, 1000);
	mg_metrics_tool_call(m, 0, MG_METRICS_TOOL_OTHER, -32602, 1000);
	mg_metrics_tool_call(m, 0, 0, MG_ET_NONE, 1000);   /* not counted */
	mg_metrics_tool_call(m, 0, 999, MG_ET_NONE, 1000); /* no such slot: ignored */
	mg_metrics_tool_call(m, 1, a, MG_ET_NONE, 1000);   /* upstream without tools yet */
	/* at most MG_METRICS_MAX_TOOLS own series per upstream, then _OTHER */
	char name[32];
	for (int i = 0; i < MG_METRICS_MAX_TOOLS + 10; i++) {
		int n = snprintf(name, sizeof name, "tool-%d", i);
		uint16_t s = mg_metrics_tool_slot(m, 1, name, (size_t)n, listed, NULL);
		assert_int_equal(s == MG_METRICS_TOOL_OTHER, i >= MG_METRICS_MAX_TOOLS);
		mg_metrics_tool_call(m, 1, s, MG_ET_NONE, 10);
	}
	t = render(m, 1000000);
	const char *want[] = {
		"mcp_guard_tool_calls_total{upstream=\"files\",tool=\"tool-a\",outcome=\"ok\"} 2\n",
		"mcp_guard_tool_calls_total{upstream=\"files\",tool=\"tool-a\",outcome=\"tool_"
		"error\"} "
		"1\n",
		"mcp_guard_tool_calls_total{upstream=\"files\",tool=\"say \\\"hi\\\"\",outcome="
		"\"error\"} 1\n",
		"mcp_guard_tool_calls_total{upstream=\"files\",tool=\"_OTHER\",outcome=\"error\"} "
		"1\n",
		"mcp_guard_tool_calls_total{upstream=\"remote\",tool=\"tool-0\",outcome=\"ok\"} "
		"1\n",
		"mcp_guard_tool_calls_total{upstream=\"remote\",tool=\"_OTHER\",outcome=\"ok\"} "
		"10\n",
		"mcp_guard_tool_call_seconds_total{upstream=\"files\",tool=\"tool-a\"} 3\n",
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		if (!strstr(t, want[i]))
			fail_msg("missing: %s", want[i]);
	}
	assert_null(strstr(t, "secret-probe"));
	assert_null(strstr(t, "tool=\"tool-256\""));
	/* one _OTHER series per upstream and outcome */
	const char *o = strstr(t, "tool=\"_OTHER\",outcome=\"ok\"");
	assert_non_null(o);
	assert_null(strstr(o + 1, "upstream=\"remote\",tool=\"_OTHER\",outcome=\"ok\""));
	free(t);
	mg_metrics_free(m);
}

static void test_client_series_bounded(void **state)
{
	(void)state;
	enum { N = 64 };
	const char *names[N];
	char buf[N][16];
	for (int i = 0; i < N; i++) {
		snprintf(buf[i], sizeof buf[i], "u%d", i);
		names[i] = buf[i];
	}
	struct mg_metrics *m = mg_metrics_new(names, N);
	/* Hostile upstreams answering every code of the reserved range. */
	for (size_t u = 0; u < N; u++)
		for (int32_t c = -32768; c <= -32000; c += 8)
			mg_metrics_client_op(m, u, MG_MM_TOOLS_CALL, c, 1);
	assert_true(m->client_err.n <= MG_METRICS_MAX_CLIENT_ERROR_SERIES);
	/* Sessions: versions are the gateway's own, but bounded all the same. */
	for (int i = 0; i < 200; i++) {
		char v[32];
		snprintf(v, sizeof v, "%04d-01-01", i);
		mg_metrics_session(m, v, MG_ET_NONE, 1);
	}
	assert_int_equal(m->n_sessions, MG_METRICS_MAX_SESSION_SERIES);
	/* An upstream's own session: any version a server says is a date or
	 * "other", and the series are bounded however many it invents. */
	for (int i = 0; i < 1000; i++) {
		char v[32];
		snprintf(v, sizeof v, i % 2 ? "2025-06-%02d" : "v%d\"\n", i % 100);
		mg_metrics_client_session(m, (size_t)i % N, v, MG_ET_UPSTREAM_CLOSED, 1);
	}
	assert_int_equal(m->n_client_sessions, MG_METRICS_MAX_CLIENT_SESSION_SERIES);
	for (size_t i = 0; i < m->n_client_sessions; i++) {
		const char *v = m->client_sessions[i].version;
		assert_true(strcmp(v, "other") == 0 || (strlen(v) == 10 && v[4] == '-'));
	}
	/* The codes an answer may carry: outside the range, or in the band of
	 * the gateway's own classes, they are "_OTHER". */
	assert_int_equal(mg_metrics_code(-32602), -32602);
	assert_int_equal(mg_metrics_code(-31429), -31429);
	assert_int_equal(mg_metrics_code(42), MG_ET_OTHER);
	assert_int_equal(mg_metrics_code(INT32_MIN + 1), MG_ET_OTHER);
	assert_int_equal(mg_metrics_code(INT64_MIN), MG_ET_OTHER);
	mg_metrics_free(m);
}

static void collect_one(struct mg_prom *p, void *arg)
{
	mg_prom_counter1(p, "mcp_guard_audit_dropped_total", "Dropped.", *(uint64_t *)arg);
}

static void test_collector_and_active(void **state)
{
	(void)state;
	struct mg_metrics *m = mg_metrics_new(NULL, 0);
	uint64_t dropped = 7;
	assert_int_equal(mg_metrics_add_collector(m, collect_one, &dropped), 0);
	uint64_t s = 1000000;
	for (int i = 0; i < 1000; i++) {
		char key[32];
		snprintf(key, sizeof key, "api_key:user%d", i);
		mg_metrics_identity_seen(m, key, 10 * s);
		mg_metrics_identity_seen(m, key, 11 * s); /* the same one again */
	}
	mg_metrics_identity_seen(m, "jwt:late", 200 * s);
	assert_int_equal(mg_metrics_active_identities(m, 300 * s), 1001);
	/* Five minutes after the last sighting, only "late" is left. */
	assert_int_equal(mg_metrics_active_identities(m, 11 * s + 301 * s), 1);
	assert_int_equal(mg_metrics_active_identities(m, 501 * s), 0);
	char *t = render(m, 501 * s);
	assert_non_null(strstr(t, "mcp_guard_active_identities 0\n"));
	assert_non_null(strstr(t, "# TYPE mcp_guard_audit_dropped_total counter\n"
	                          "mcp_guard_audit_dropped_total 7\n"));
	/* No identity id is ever in the output. */
	assert_null(strstr(t, "user1"));
	free(t);
	mg_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_error_series_bounded),
		cmocka_unit_test(test_client_operations),
		cmocka_unit_test(test_client_series_bounded),
		cmocka_unit_test(test_tool_calls),
		cmocka_unit_test(test_collector_and_active),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
