/*
 * mcpload.c - a closed-loop MCP load generator (libevent, one thread).
 *
 *   mcpload --url http://127.0.0.1:PORT/mcp -c 64 --warmup 1 --duration 3 \
 *           [--family legacy|modern] [--call echo|big|list] [--tool NAME] [--rate R] \
 *           [--sut-pid PID] [--idle-sessions N] [-H 'Name: value'] ...
 *
 * Each virtual user (VU) owns one keep-alive TCP connection and, in the legacy
 * family, one MCP session: POST initialize (keeps Mcp-Session-Id and the
 * negotiated version for MCP-Protocol-Version), POST notifications/initialized,
 * then tools/call in a closed loop, and DELETE at the end. In the modern family
 * (2026-07-28) every request is stateless: _meta in params, MCP-Protocol-Version,
 * Mcp-Method and Mcp-Name headers. With --rate the VUs share a fixed schedule
 * and latency counts from the scheduled send time (no coordinated omission).
 *
 * Every answer is checked: HTTP status, content type (JSON or an SSE stream,
 * whose events are searched for the answer), well-formed JSON, the exact id,
 * no JSON-RPC error, and the result itself (the echo of this request's unique
 * message, the tool count, the text length). Anything else is an error of a
 * named kind, never throughput.
 *
 * Phases: wait for an idle machine (bounded) -> idle RSS of the system under
 * test -> session setup -> warm-up -> measuring window -> drain; with
 * --idle-sessions N, then N more sessions each holding an open GET stream,
 * and a second warm-up + window with them open; -> teardown (DELETE) ->
 * RSS after. For --sut-pid the whole process tree (the pid and its
 * descendants, found through /proc) is measured: RSS from statm, peak RSS
 * from VmHWM after resetting it (clear_refs 5) at the window start, CPU time
 * from the scheduler (/proc/<pid>/task/<tid>/schedstat, in ns), and apart
 * the root's main thread (a gateway's event loop: its helper threads, an
 * audit writer or a span exporter, are the rest of the root's). The load
 * generator's own CPU (getrusage) and every core's busy time (/proc/stat)
 * are reported for the same window, so a run shows whether the load
 * generator or a neighbour was the limit.
 *
 * Output: one JSON object on stdout. Traffic goes to loopback addresses only;
 * every phase is bounded in time and an alarm ends the process regardless.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "fbuf.h"
#include "minijson.h"

#define MAX_CPUS      64
#define MAX_PIDS      4096
#define MAX_HEADERS   16
#define MAX_BODY      (256u << 20)
#define DRAIN_SECS    5.0
#define TEARDOWN_SECS 5.0

/* ---- small helpers ------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct timeval tv_of(double secs)
{
	if (secs < 0)
		secs = 0;
	struct timeval tv = { .tv_sec = (time_t)secs,
		              .tv_usec = (suseconds_t)((secs - floor(secs)) * 1e6) };
	return tv;
}

/* Writes s as a JSON string literal (quotes included). */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* ---- /proc: the system under test and the machine ---------------------------------- */

struct cpu_times {
	int n;
	unsigned long long busy[MAX_CPUS], total[MAX_CPUS];
};

static void read_cpu_times(struct cpu_times *ct)
{
	memset(ct, 0, sizeof *ct);
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		int idx;
		unsigned long long v[8] = { 0 };
		if (strncmp(line, "cpu", 3) != 0 || !isdigit((unsigned char)line[3]))
			continue;
		if (sscanf(line + 3, "%d %llu %llu %llu %llu %llu %llu %llu %llu", &idx, &v[0],
		           &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 5)
			continue;
		if (idx < 0 || idx >= MAX_CPUS)
			continue;
		unsigned long long total = 0;
		for (int i = 0; i < 8; i++)
			total += v[i];
		ct->total[idx] = total;
		ct->busy[idx] = total - v[3] - v[4]; /* minus idle and iowait */
		if (idx + 1 > ct->n)
			ct->n = idx + 1;
	}
	fclose(f);
}

/* Reads /proc/<pid>/stat: parent pid and CPU ticks (own, or own + reaped
 * children). Returns -1 if the process is gone. */
static int read_pid_stat(pid_t pid, pid_t *ppid, unsigned long long *ticks,
                         unsigned long long *child_ticks)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	/* after ')': state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
	 * utime stime cutime cstime */
	char state;
	int pp;
	unsigned long long ut, st, cut, cst;
	if (sscanf(p + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &state,
	           &pp, &ut, &st, &cut, &cst) != 6)
		return -1;
	if (ppid)
		*ppid = pp;
	if (ticks)
		*ticks = ut + st;
	if (child_ticks)
		*child_ticks = cut + cst;
	return 0;
}

/* CPU time of one thread in ns (/proc/<pid>/task/<tid>/schedstat); -1
 * when unreadable. */
static int tid_cpu_ns(pid_t pid, pid_t tid, unsigned long long *ns)
{
	char path[96], buf[128];
	snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", (int)pid, (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	*ns = strtoull(buf, NULL, 10);
	return 0;
}

/* CPU time of a process in ns: the sum over its threads of the scheduler's
 * run time (/proc/<pid>/task/<tid>/schedstat), which is exact, where the
 * clock ticks of /proc/<pid>/stat round every process to 10 ms - too coarse
 * when a tree has hundreds of processes. Falls back to the ticks. */
static unsigned long long pid_cpu_ns(pid_t pid)
{
	char path[64];
	unsigned long long sum = 0;
	bool any = false;
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (!isdigit((unsigned char)de->d_name[0]))
				continue;
			unsigned long long t;
			if (tid_cpu_ns(pid, (pid_t)strtol(de->d_name, NULL, 10), &t) == 0) {
				sum += t;
				any = true;
			}
		}
		closedir(d);
	}
	if (!any) {
		unsigned long long t = 0;
		read_pid_stat(pid, NULL, &t, NULL);
		sum = t * (1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK));
	}
	return sum;
}

/* The root and all its descendants. */
static int tree_pids(pid_t root, pid_t *out, int max)
{
	static pid_t all[65536], parent[65536];
	int nall = 0, n = 0;
	if (root <= 0 || max < 1)
		return 0;
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d)) && nall < 65536) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid_t pid = (pid_t)strtol(de->d_name, NULL, 10), pp;
		if (read_pid_stat(pid, &pp, NULL, NULL) == 0) {
			all[nall] = pid;
			parent[nall++] = pp;
		}
	}
	closedir(d);
	out[n++] = root;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < nall && n < max; j++)
			if (parent[j] == out[i])
				out[n++] = all[j];
	return n;
}

static long pid_rss_kb(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	unsigned long size, res;
	if (sscanf(buf, "%lu %lu", &size, &res) != 2)
		return 0;
	return (long)(res * (unsigned long)sysconf(_SC_PAGESIZE) / 1024);
}

static long pid_hwm_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = 0;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

/* Resident memory of one process split into anonymous (heap, stacks) and
 * file-backed (binaries and shared libraries, shared with other processes). */
static void pid_rss_split(pid_t pid, long *anon_kb, long *file_kb, long *pss_kb)
{
	char path[64], line[256];
	*anon_kb = *file_kb = *pss_kb = 0;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "RssAnon:", 8) == 0)
			*anon_kb = strtol(line + 8, NULL, 10);
		else if (strncmp(line, "RssFile:", 8) == 0)
			*file_kb = strtol(line + 8, NULL, 10);
	}
	fclose(f);
	/* PSS: shared pages divided among the processes that map them */
	snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "Pss:", 4) == 0)
			*pss_kb = strtol(line + 4, NULL, 10);
	fclose(f);
}

static bool pid_clear_hwm(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/clear_refs", (int)pid);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = write(fd, "5", 1) == 1;
	close(fd);
	return ok;
}

struct tree_snap {
	int n;
	pid_t pids[MAX_PIDS];
	unsigned long long cpu_ns[MAX_PIDS]; /* own CPU time (reaped children excluded: they may
	                                      * have run before the window) */
	unsigned long long root_cpu_ns;      /* the root's own CPU time */
	unsigned long long main_cpu_ns;      /* its main thread's (a gateway's event loop) */
	long rss_kb, root_rss_kb;
};

static void tree_snap(pid_t root, struct tree_snap *s)
{
	s->n = tree_pids(root, s->pids, MAX_PIDS);
	s->rss_kb = 0;
	s->root_cpu_ns = 0;
	s->main_cpu_ns = 0;
	if (s->n)
		tid_cpu_ns(s->pids[0], s->pids[0], &s->main_cpu_ns);
	for (int i = 0; i < s->n; i++) {
		unsigned long long t = pid_cpu_ns(s->pids[i]);
		s->cpu_ns[i] = t;
		if (i == 0)
			s->root_cpu_ns = t;
		long kb = pid_rss_kb(s->pids[i]);
		if (i == 0)
			s->root_rss_kb = kb;
		s->rss_kb += kb;
	}
}

/* RSS of the tree and of its root alone. */
struct rss_pair {
	long tree_kb, root_kb;
};

static struct rss_pair tree_rss(pid_t root)
{
	static struct tree_snap s;
	struct rss_pair r = { 0, 0 };
	if (root <= 0)
		return r;
	tree_snap(root, &s);
	r.tree_kb = s.rss_kb;
	r.root_kb = s.root_rss_kb;
	return r;
}

static double self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

/* ---- options and state --------------------------------------------------------------- */

enum family { FAM_LEGACY, FAM_MODERN };
enum call_kind { CALL_ECHO, CALL_BIG, CALL_LIST };

enum err_kind {
	E_CONNECT,
	E_TIMEOUT,
	E_CLOSED,
	E_HTTP_PARSE,
	E_STATUS,
	E_CTYPE,
	E_JSON,
	E_RPC_ERROR,
	E_WRONG_ID,
	E_WRONG_RESULT,
	E_NKINDS
};
static const char *const err_names[E_NKINDS] = { "connect",     "timeout",     "closed",
	                                         "http_parse",  "http_status", "content_type",
	                                         "bad_json",    "rpc_error",   "wrong_id",
	                                         "wrong_result" };

enum step {
	ST_NONE,
	ST_CONNECT, /* modern: waiting for the connection only */
	ST_INIT,
	ST_NOTIFY,
	ST_READY, /* set up, no request in flight */
	ST_CALL,
	ST_DELETE,
	ST_GET,
	ST_STREAM,
	ST_DONE
};

enum phase { P_SETUP, P_WARMUP, P_MEASURE, P_DRAIN, P_IDLE_OPEN, P_TEARDOWN, P_END };

struct opts {
	char host[64];
	int port;
	char path[256];
	int conc;
	double warmup, duration, rate;
	enum family fam;
	enum call_kind call;
	long expect_tools, expect_bytes;
	const char *tool; /* the echo tool's name (--tool; "echo", or a federated name) */
	pid_t sut_pid;
	int idle_sessions, idle_wave;
	bool idle_get; /* idle sessions open a GET stream (default) */
	double setup_timeout, req_timeout;
	double wait_idle_pct, wait_idle_max;
	const char *headers[MAX_HEADERS];
	int nheaders;
	bool no_delete;
};

struct round {
	bool used;
	uint64_t *lat; /* ns, one per successful request in the window */
	size_t n, cap;
	uint64_t errors[E_NKINDS];
	char err_sample[240];
	uint64_t t0, t1;
	struct cpu_times cpu0, cpu1;
	double self0, self1;
	double sut_cpu_s, sut_root_cpu_s, sut_main_cpu_s;
	long rss_peak_kb, rss_end_kb, root_peak_kb, root_end_kb;
	int procs;
	bool hwm_ok;
};

struct loader;

struct vu {
	struct loader *ld;
	int idx;
	bool idle; /* an idle session holding a GET stream (scenario 5) */
	int fd;
	bool connected;
	struct event *rev, *wev, *tev;
	enum step step;
	bool busy; /* a request is in flight */
	struct fbuf out, in, body;
	size_t out_off;
	char session[160];
	char proto[32];
	uint64_t seq;
	uint64_t start_ns; /* latency origin of the request in flight */
	uint64_t sent_ns;  /* when it was written (timeouts) */
	uint64_t sched_ns; /* rate mode: next scheduled send */
	char idtext[32];
	char expect[48];
	bool setup_counted;
};

struct loader {
	struct opts o;
	struct event_base *base;
	struct event *phase_ev, *sweep_ev;
	enum phase phase;
	int round_idx;
	struct round rounds[2];
	struct vu *vus;  /* o.conc load VUs */
	struct vu *idle; /* o.idle_sessions idle VUs */
	int ready, setup_failed;
	char setup_err[240];
	uint64_t setup_t0, setup_t1;
	int inflight;
	int idle_started, idle_ok, idle_failed;
	bool idle_filling;
	char idle_err[240];
	uint64_t idle_t0, idle_t1;
	struct rss_pair idle_rss;
	int teardown_pending, deleted, delete_failed;
	uint64_t interval_ns;
	struct fbuf scratch;
	struct tree_snap snap0, snap1;
	struct rss_pair rss_idle, rss_sessions, rss_after;
	long idle_anon_kb, idle_file_kb, idle_pss_kb;
	double waited_s, idle_busy_pct;
	struct sockaddr_in addr;
};

static void phase_enter(struct loader *ld, enum phase p);
static void vu_next(struct vu *v);
static void vu_send(struct vu *v);
static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);

/* Marks a request in flight or not; only load VUs count for the drain. */
static void set_busy(struct vu *v, bool busy)
{
	if (v->busy != busy && !v->idle)
		v->ld->inflight += busy ? 1 : -1;
	v->busy = busy;
}

static struct round *cur_round(struct loader *ld)
{
	return &ld->rounds[ld->round_idx];
}

static bool running(const struct loader *ld)
{
	return ld->phase == P_WARMUP || ld->phase == P_MEASURE;
}

/* ---- errors and samples -------------------------------------------------------------- */

static void note_error(struct vu *v, enum err_kind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note_error(struct vu *v, enum err_kind k, const char *fmt, ...)
{
	struct loader *ld = v->ld;
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char *sample;
	if (v->idle) {
		sample = ld->idle_err;
	} else if (v->step == ST_INIT || v->step == ST_NOTIFY ||
	           (v->step == ST_CONNECT && !v->setup_counted)) {
		sample = ld->setup_err;
	} else {
		struct round *r = cur_round(ld);
		if (ld->phase == P_MEASURE)
			r->errors[k]++;
		sample = r->err_sample;
	}
	if (!sample[0])
		snprintf(sample, 240, "%s: %s", err_names[k], msg);
}

static void record_ok(struct vu *v, uint64_t t)
{
	struct loader *ld = v->ld;
	if (ld->phase != P_MEASURE)
		return;
	struct round *r = cur_round(ld);
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 1 << 16;
		uint64_t *p = realloc(r->lat, cap * sizeof *p);
		if (!p)
			return;
		r->lat = p;
		r->cap = cap;
	}
	r->lat[r->n++] = t > v->start_ns ? t - v->start_ns : 0;
}

/* ---- connections ---------------------------------------------------------------------- */

static void vu_close(struct vu *v)
{
	if (v->rev) {
		event_free(v->rev);
		v->rev = NULL;
	}
	if (v->wev) {
		event_free(v->wev);
		v->wev = NULL;
	}
	if (v->fd >= 0)
		close(v->fd);
	v->fd = -1;
	v->connected = false;
	v->in.len = 0;
	v->out.len = v->out_off = 0;
}

static int vu_connect(struct vu *v)
{
	struct loader *ld = v->ld;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&ld->addr, sizeof ld->addr) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	v->fd = fd;
	v->connected = false;
	v->rev = event_new(ld->base, fd, EV_READ | EV_PERSIST, on_read, v);
	v->wev = event_new(ld->base, fd, EV_WRITE, on_write, v);
	event_add(v->rev, NULL);
	event_add(v->wev, NULL);
	return 0;
}

static void vu_flush(struct vu *v)
{
	/* A write error is left to the read side, which sees it too. */
	if (fb_write(v->fd, &v->out, &v->out_off) > 0)
		event_add(v->wev, NULL);
}

static void setup_done(struct vu *v, bool ok);

/* The connection broke (or timed out) with a request in flight: count it,
 * reconnect and go on (the MCP session outlives the connection). */
static void vu_broken(struct vu *v, enum err_kind k, const char *why)
{
	struct loader *ld = v->ld;
	enum step st = v->step;
	note_error(v, k, "%s", why);
	vu_close(v);
	if (v->busy) {
		set_busy(v, false);
	}
	if (v->idle) {
		v->step = ST_DONE;
		if (st != ST_STREAM)
			setup_done(v, false);
		return;
	}
	if (st == ST_INIT || st == ST_NOTIFY || st == ST_CONNECT) {
		v->step = ST_DONE;
		setup_done(v, false);
		return;
	}
	if (st == ST_DELETE) {
		v->step = ST_DONE;
		ld->delete_failed++;
		if (--ld->teardown_pending == 0)
			phase_enter(ld, P_END);
		return;
	}
	v->step = ST_READY;
	vu_next(v);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
	struct vu *v = arg;
	(void)what;
	if (!v->connected) {
		int err = 0;
		socklen_t len = sizeof err;
		getsockopt((int)fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			vu_broken(v, E_CONNECT, strerror(err));
			return;
		}
		v->connected = true;
		if (v->step == ST_CONNECT) {
			v->step = ST_READY;
			setup_done(v, true);
			return;
		}
	}
	vu_flush(v);
}

/* ---- requests ------------------------------------------------------------------------- */

static const char *call_name(enum call_kind k)
{
	return k == CALL_ECHO ? "echo" : k == CALL_BIG ? "big" : "list";
}

static void put_head(struct vu *v, const char *method, const char *mcp_method, const char *mcp_name,
                     size_t clen, const char *accept)
{
	struct loader *ld = v->ld;
	fb_fmt(&v->out, "%s %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: %s\r\n", method, ld->o.path,
	       ld->o.host, ld->o.port, accept);
	if (ld->o.fam == FAM_MODERN) {
		fb_fmt(&v->out, "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: %s\r\n",
		       mcp_method);
		if (mcp_name)
			fb_fmt(&v->out, "Mcp-Name: %s\r\n", mcp_name);
	} else {
		if (v->proto[0])
			fb_fmt(&v->out, "MCP-Protocol-Version: %s\r\n", v->proto);
		if (v->session[0])
			fb_fmt(&v->out, "Mcp-Session-Id: %s\r\n", v->session);
	}
	for (int i = 0; i < ld->o.nheaders; i++)
		fb_fmt(&v->out, "%s\r\n", ld->o.headers[i]);
	if (strcmp(method, "POST") == 0)
		fb_fmt(&v->out, "Content-Type: application/json\r\nContent-Length: %zu\r\n", clen);
	fb_fmt(&v->out, "\r\n");
}

static const char modern_meta[] =
    "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
    "\"io.modelcontextprotocol/clientInfo\":{\"name\":\"mcpload\",\"version\":\"1.0.0\"},"
    "\"io.modelcontextprotocol/clientCapabilities\":{}}";

static void post(struct vu *v, const char *mcp_method, const char *mcp_name, const char *body,
                 size_t blen, enum step st)
{
	put_head(v, "POST", mcp_method, mcp_name, blen, "application/json, text/event-stream");
	fb_add(&v->out, body, blen);
	v->step = st;
	set_busy(v, true);
	v->sent_ns = now_ns();
	vu_send(v);
}

static void vu_send(struct vu *v)
{
	if (v->fd < 0 && vu_connect(v) < 0) {
		vu_broken(v, E_CONNECT, strerror(errno));
		return;
	}
	if (v->connected)
		vu_flush(v);
}

static void send_init(struct vu *v)
{
	char body[320];
	v->seq++;
	snprintf(v->idtext, sizeof v->idtext, "%llu", (unsigned long long)v->seq);
	int n = snprintf(body, sizeof body,
	                 "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"initialize\",\"params\":{"
	                 "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{"
	                 "\"name\":\"mcpload\",\"version\":\"1.0.0\"}}}",
	                 v->idtext);
	v->session[0] = 0;
	v->proto[0] = 0;
	post(v, "initialize", NULL, body, (size_t)n, ST_INIT);
}

static void send_call(struct vu *v, uint64_t origin)
{
	struct loader *ld = v->ld;
	char body[512];
	int n;
	v->seq++;
	snprintf(v->idtext, sizeof v->idtext, "%llu", (unsigned long long)v->seq);
	const char *meta = ld->o.fam == FAM_MODERN ? modern_meta : "";
	const char *comma = ld->o.fam == FAM_MODERN ? "," : "";
	const char *mname = NULL, *mmethod = "tools/call";
	if (ld->o.call == CALL_ECHO) {
		snprintf(v->expect, sizeof v->expect, "Echo: m%d-%llu", v->idx,
		         (unsigned long long)v->seq);
		n = snprintf(body, sizeof body,
		             "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"tools/call\",\"params\":{"
		             "\"name\":\"%s\",\"arguments\":{\"message\":\"%s\"}%s%s}}",
		             v->idtext, ld->o.tool, v->expect + 6, comma, meta);
		mname = ld->o.tool;
	} else if (ld->o.call == CALL_BIG) {
		n = snprintf(body, sizeof body,
		             "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"tools/call\",\"params\":{"
		             "\"name\":\"big\",\"arguments\":{}%s%s}}",
		             v->idtext, comma, meta);
		mname = "big";
	} else {
		n = snprintf(
		    body, sizeof body,
		    "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"tools/list\",\"params\":{%s}}",
		    v->idtext, meta);
		mmethod = "tools/list";
	}
	v->start_ns = origin;
	post(v, mmethod, mname, body, (size_t)n, ST_CALL);
}

static void on_sched(evutil_socket_t fd, short what, void *arg)
{
	struct vu *v = arg;
	(void)fd;
	(void)what;
	if (!running(v->ld) || v->step != ST_READY || v->busy)
		return;
	uint64_t now = now_ns();
	if (now <
	    v->sched_ns) { /* a timer may fire a little early: never send before the schedule */
		struct timeval tv = tv_of((double)(v->sched_ns - now) / 1e9);
		evtimer_add(v->tev, &tv);
		return;
	}
	send_call(v, v->sched_ns);
}

/* Issues the VU's next request, or parks it when the phase says so. */
static void vu_next(struct vu *v)
{
	struct loader *ld = v->ld;
	if (v->step == ST_DONE)
		return;
	v->step = ST_READY;
	if (!running(ld)) {
		if (ld->phase == P_DRAIN && ld->inflight == 0)
			phase_enter(ld, ld->o.idle_sessions > 0 && ld->round_idx == 0 ? P_IDLE_OPEN
			                                                              : P_TEARDOWN);
		return;
	}
	if (ld->o.fam == FAM_LEGACY && !v->session[0] && !v->proto[0]) {
		send_init(v); /* the session was lost: a new one */
		return;
	}
	if (ld->o.rate <= 0) {
		send_call(v, now_ns());
		return;
	}
	uint64_t now = now_ns();
	v->sched_ns += ld->interval_ns;
	if (v->sched_ns <= now) {
		send_call(v, v->sched_ns);
		return;
	}
	struct timeval tv = tv_of((double)(v->sched_ns - now) / 1e9);
	evtimer_add(v->tev, &tv);
}

/* ---- responses ------------------------------------------------------------------------ */

struct resp {
	int status;
	struct mj_span ctype, session, body;
	bool close;
	size_t consumed;
};

static bool hdr(const char *line, size_t n, const char *name, struct mj_span *val)
{
	size_t k = strlen(name);
	if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
		return false;
	const char *p = line + k + 1, *e = line + n;
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	val->p = p;
	val->e = e;
	return true;
}

/* Parses one response from the input buffer. Returns 1 when complete, 0 when
 * more bytes are needed, -1 when malformed. headers_only: a stream. */
static int parse_response(struct vu *v, struct resp *r, bool headers_only)
{
	const char *p = v->in.p;
	size_t avail = v->in.len;
	memset(r, 0, sizeof *r);
	const char *end = avail >= 4 ? memmem(p, avail, "\r\n\r\n", 4) : NULL;
	if (!end)
		return avail > 65536 ? -1 : 0;
	size_t hlen = (size_t)(end - p) + 4;
	if (hlen < 12 || memcmp(p, "HTTP/1.", 7) != 0)
		return -1;
	r->status = (int)strtol(p + 9, NULL, 10);
	if (r->status < 100 || r->status > 599)
		return -1;
	long long clen = -1;
	bool chunked = false;
	const char *line = memchr(p, '\n', hlen);
	while (line && (size_t)(line + 1 - p) < hlen) {
		line++;
		const char *le = memchr(line, '\n', hlen - (size_t)(line - p));
		if (!le)
			break;
		size_t n = (size_t)(le - line);
		if (n && line[n - 1] == '\r')
			n--;
		struct mj_span val;
		if (hdr(line, n, "content-length", &val))
			clen = strtoll(val.p, NULL, 10);
		else if (hdr(line, n, "transfer-encoding", &val))
			chunked = (size_t)(val.e - val.p) >= 7 &&
			          strncasecmp(val.e - 7, "chunked", 7) == 0;
		else if (hdr(line, n, "content-type", &val))
			r->ctype = val;
		else if (hdr(line, n, "mcp-session-id", &val))
			r->session = val;
		else if (hdr(line, n, "connection", &val))
			r->close =
			    (size_t)(val.e - val.p) == 5 && strncasecmp(val.p, "close", 5) == 0;
		line = le;
	}
	if (headers_only) {
		r->consumed = hlen;
		return 1;
	}
	if (r->status < 200 || r->status == 204 || r->status == 304) {
		r->body.p = r->body.e = p + hlen;
		r->consumed = hlen;
		return 1;
	}
	if (clen >= 0) {
		if ((unsigned long long)clen > MAX_BODY)
			return -1;
		if (avail < hlen + (size_t)clen)
			return 0;
		r->body.p = p + hlen;
		r->body.e = p + hlen + clen;
		r->consumed = hlen + (size_t)clen;
		return 1;
	}
	if (!chunked)
		return -1; /* read-until-close bodies are not keep-alive: refuse them */
	/* Walk the chunks without copying until the last one is in, then copy. */
	size_t pos = hlen;
	for (;;) {
		const char *le = pos < avail ? memmem(p + pos, avail - pos, "\r\n", 2) : NULL;
		if (!le)
			return avail - pos > 64 ? -1 : 0;
		char *ep;
		unsigned long long sz = strtoull(p + pos, &ep, 16);
		if (ep == p + pos || sz > MAX_BODY)
			return -1;
		size_t data = (size_t)(le - p) + 2;
		if (sz == 0) {
			if (avail < data + 2)
				return 0;
			if (memcmp(p + data, "\r\n", 2) != 0)
				return -1; /* trailers: not used by MCP servers */
			r->consumed = data + 2;
			break;
		}
		if (avail < data + sz + 2)
			return 0;
		pos = data + sz + 2;
	}
	v->body.len = 0;
	pos = hlen;
	for (;;) {
		const char *le = memmem(p + pos, avail - pos, "\r\n", 2);
		unsigned long long sz = strtoull(p + pos, NULL, 16);
		size_t data = (size_t)(le - p) + 2;
		if (sz == 0)
			break;
		fb_add(&v->body, p + data, (size_t)sz);
		pos = data + sz + 2;
	}
	r->body.p = v->body.p ? v->body.p : p;
	r->body.e = r->body.p + v->body.len;
	return 1;
}

static bool ctype_is(struct mj_span ct, const char *t)
{
	size_t n = strlen(t);
	return (size_t)(ct.e - ct.p) >= n && strncasecmp(ct.p, t, n) == 0;
}

/* Finds the JSON-RPC response with our id among the events of an SSE body. */
static bool sse_find(struct loader *ld, struct mj_span body, const char *idtext,
                     struct mj_span *msg)
{
	const char *p = body.p, *e = body.e;
	ld->scratch.len = 0;
	while (p < e) {
		const char *le = memchr(p, '\n', (size_t)(e - p));
		const char *lend = le ? le : e;
		size_t n = (size_t)(lend - p);
		if (n && p[n - 1] == '\r')
			n--;
		if (n == 0) { /* end of an event */
			if (ld->scratch.len) {
				struct mj_span m = { ld->scratch.p,
					             ld->scratch.p + ld->scratch.len },
				               id;
				if (mj_valid(m.p, m.e) && mj_get(m, "id", &id) &&
				    mj_raw_eq(id, idtext, strlen(idtext))) {
					*msg = m;
					return true;
				}
			}
			ld->scratch.len = 0;
		} else if (n >= 5 && memcmp(p, "data:", 5) == 0) {
			const char *d = p + 5;
			if (d < p + n && *d == ' ')
				d++;
			if (ld->scratch.len)
				fb_add(&ld->scratch, "\n", 1);
			fb_add(&ld->scratch, d, (size_t)(p + n - d));
		}
		p = le ? le + 1 : e;
	}
	if (ld->scratch.len) {
		struct mj_span m = { ld->scratch.p, ld->scratch.p + ld->scratch.len }, id;
		if (mj_valid(m.p, m.e) && mj_get(m, "id", &id) &&
		    mj_raw_eq(id, idtext, strlen(idtext))) {
			*msg = m;
			return true;
		}
	}
	return false;
}

/* Extracts and checks the JSON-RPC answer to the request in flight; on
 * success *result is its result member. Returns -1 (error noted) or 0. */
static int check_answer(struct vu *v, const struct resp *r, struct mj_span *result)
{
	struct mj_span msg, id, err;
	if (r->status != 200) {
		note_error(v, E_STATUS, "HTTP %d: %.*s", r->status,
		           (int)(r->body.e - r->body.p > 120 ? 120 : r->body.e - r->body.p),
		           r->body.p);
		return -1;
	}
	if (ctype_is(r->ctype, "application/json")) {
		msg = r->body;
	} else if (ctype_is(r->ctype, "text/event-stream")) {
		if (!sse_find(v->ld, r->body, v->idtext, &msg)) {
			note_error(v, E_WRONG_ID, "no answer with id %s in the SSE stream",
			           v->idtext);
			return -1;
		}
	} else {
		note_error(v, E_CTYPE, "content type '%.*s'", (int)(r->ctype.e - r->ctype.p),
		           r->ctype.p);
		return -1;
	}
	/* One validating pass over the message finds every member we check. */
	static const char *const keys[] = { "id", "error", "jsonrpc", "result" };
	struct mj_span m[4];
	if (!mj_members(msg.p, msg.e, keys, m, 4)) {
		note_error(v, E_JSON, "not a JSON object (%zu bytes)", (size_t)(msg.e - msg.p));
		return -1;
	}
	id = m[0];
	err = m[1];
	if (!id.p || !mj_raw_eq(id, v->idtext, strlen(v->idtext))) {
		note_error(v, E_WRONG_ID, "expected id %s", v->idtext);
		return -1;
	}
	if (err.p) {
		note_error(v, E_RPC_ERROR, "%.*s", (int)(err.e - err.p > 160 ? 160 : err.e - err.p),
		           err.p);
		return -1;
	}
	if (!m[2].p || !mj_str_eq(m[2], "2.0", 3) || !m[3].p) {
		note_error(v, E_WRONG_RESULT, "no jsonrpc 2.0 result");
		return -1;
	}
	*result = m[3];
	return 0;
}

static bool check_result(struct vu *v, struct mj_span res)
{
	struct loader *ld = v->ld;
	static const char *const text_path[] = { "content" };
	struct mj_span content, first, text, tools;
	if (ld->o.call == CALL_LIST) {
		long n = mj_get(res, "tools", &tools) ? mj_count_valid(tools) : -1;
		if (n < 0 || (ld->o.expect_tools > 0 && n != ld->o.expect_tools)) {
			note_error(v, E_WRONG_RESULT, "tools/list gave %ld tools, expected %ld", n,
			           ld->o.expect_tools);
			return false;
		}
		return true;
	}
	if (!mj_path(res, text_path, 1, &content) || !mj_index(content, 0, &first) ||
	    !mj_get(first, "text", &text) || *text.p != '"') {
		note_error(v, E_WRONG_RESULT, "no content[0].text");
		return false;
	}
	if (ld->o.call == CALL_ECHO) {
		if (!mj_str_eq(text, v->expect, strlen(v->expect))) {
			note_error(v, E_WRONG_RESULT, "expected \"%s\", got %.*s", v->expect,
			           (int)(text.e - text.p > 60 ? 60 : text.e - text.p), text.p);
			return false;
		}
	} else if (ld->o.expect_bytes > 0 && text.e - text.p - 2 != ld->o.expect_bytes) {
		note_error(v, E_WRONG_RESULT, "text of %ld bytes, expected %ld",
		           (long)(text.e - text.p - 2), ld->o.expect_bytes);
		return false;
	}
	return true;
}

static void setup_done(struct vu *v, bool ok)
{
	struct loader *ld = v->ld;
	if (v->idle) {
		if (ok)
			ld->idle_ok++;
		else
			ld->idle_failed++;
		if (ld->phase == P_IDLE_OPEN)
			phase_enter(ld, P_IDLE_OPEN); /* start the next, or finish */
		return;
	}
	if (v->setup_counted) {
		if (ok)
			vu_next(v); /* a re-initialized session during load */
		return;
	}
	v->setup_counted = true;
	if (ok)
		ld->ready++;
	else
		ld->setup_failed++;
	if (ld->phase == P_SETUP && ld->ready + ld->setup_failed == ld->o.conc)
		phase_enter(ld, P_WARMUP);
}

static void send_notify(struct vu *v)
{
	static const char body[] = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";
	post(v, "notifications/initialized", NULL, body, sizeof body - 1, ST_NOTIFY);
}

static void send_get(struct vu *v)
{
	put_head(v, "GET", NULL, NULL, 0, "text/event-stream");
	v->step = ST_GET;
	set_busy(v, false);
	v->sent_ns = now_ns();
	vu_send(v);
}

static void handle_response(struct vu *v, const struct resp *r)
{
	struct loader *ld = v->ld;
	struct mj_span res, pv;
	uint64_t t = now_ns();
	if (v->busy) {
		set_busy(v, false);
	}
	switch (v->step) {
	case ST_INIT:
		if (check_answer(v, r, &res) < 0) {
			v->step = ST_DONE;
			vu_close(v);
			setup_done(v, false);
			return;
		}
		if (r->session.p && (size_t)(r->session.e - r->session.p) < sizeof v->session)
			snprintf(v->session, sizeof v->session, "%.*s",
			         (int)(r->session.e - r->session.p), r->session.p);
		if (mj_get(res, "protocolVersion", &pv) && pv.e - pv.p == 12)
			snprintf(v->proto, sizeof v->proto, "%.10s", pv.p + 1);
		else
			snprintf(v->proto, sizeof v->proto, "2025-03-26");
		send_notify(v);
		return;
	case ST_NOTIFY:
		if (r->status != 202 && r->status != 200 && r->status != 204) {
			note_error(v, E_STATUS, "notifications/initialized: HTTP %d", r->status);
			v->step = ST_DONE;
			vu_close(v);
			setup_done(v, false);
			return;
		}
		if (v->idle && ld->o.idle_get) {
			send_get(v);
			return;
		}
		if (v->idle) { /* a session on an open, idle connection, no stream */
			v->step = ST_STREAM;
			setup_done(v, true);
			return;
		}
		v->step = ST_READY;
		setup_done(v, true);
		return;
	case ST_CALL:
		if (check_answer(v, r, &res) == 0) {
			if (check_result(v, res))
				record_ok(v, t);
		} else if (r->status == 404 && ld->o.fam == FAM_LEGACY) {
			v->session[0] = 0; /* session gone: vu_next starts a new one */
			v->proto[0] = 0;
		}
		vu_next(v);
		return;
	case ST_DELETE:
		if (r->status >= 200 && r->status < 300)
			ld->deleted++;
		else
			ld->delete_failed++;
		v->step = ST_DONE;
		vu_close(v);
		if (--ld->teardown_pending == 0)
			phase_enter(ld, P_END);
		return;
	case ST_GET:
		if (r->status != 200 || !ctype_is(r->ctype, "text/event-stream")) {
			note_error(v, E_STATUS, "GET stream: HTTP %d", r->status);
			v->step = ST_DONE;
			vu_close(v);
			setup_done(v, false);
			return;
		}
		v->step = ST_STREAM;
		setup_done(v, true);
		return;
	default:
		return;
	}
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct vu *v = arg;
	(void)what;
	for (;;) {
		if (v->step == ST_STREAM)
			v->in.len = 0; /* keep-alives and events on an idle stream: discard */
		if (v->in.cap - v->in.len < 16384) {
			if (v->in.cap > MAX_BODY) {
				vu_broken(v, E_HTTP_PARSE, "response too large");
				return;
			}
			fb_reserve(&v->in, v->in.cap < 16384 ? 16384 : v->in.cap);
		}
		ssize_t n = read((int)fd, v->in.p + v->in.len, v->in.cap - v->in.len);
		if (n > 0) {
			v->in.len += (size_t)n;
			if ((size_t)n < v->in.cap - (v->in.len - (size_t)n))
				break; /* drained the socket */
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (v->step == ST_STREAM) {
			v->step = ST_DONE;
			vu_close(v);
			return;
		}
		vu_broken(v, E_CLOSED, n == 0 ? "connection closed by peer" : strerror(errno));
		return;
	}
	while (v->in.len && v->step != ST_STREAM && v->fd >= 0) {
		struct resp r;
		int rc = parse_response(v, &r, v->step == ST_GET);
		if (rc == 0)
			return;
		if (rc < 0 || (!v->busy && v->step != ST_GET)) {
			vu_broken(v, E_HTTP_PARSE,
			          rc < 0 ? "malformed HTTP response" : "unsolicited response");
			return;
		}
		size_t used = r.consumed;
		if (r.close) {
			/* The server ends keep-alive after this response (nginx does
			 * after keepalive_requests): close first, so that the next
			 * request goes out on a new connection. The spans in r stay
			 * valid: closing keeps the buffer's memory. */
			vu_close(v);
			handle_response(v, &r);
			return;
		}
		handle_response(v, &r);
		if (v->fd < 0 || v->in.len < used)
			return;
		memmove(v->in.p, v->in.p + used, v->in.len - used);
		v->in.len -= used;
	}
}

/* ---- phases --------------------------------------------------------------------------- */

static void take_window_start(struct loader *ld)
{
	struct round *r = cur_round(ld);
	r->used = true;
	r->n = 0;
	memset(r->errors, 0, sizeof r->errors);
	r->err_sample[0] = 0;
	if (ld->o.sut_pid > 0) {
		tree_snap(ld->o.sut_pid, &ld->snap0);
		r->hwm_ok = true;
		for (int i = 0; i < ld->snap0.n; i++)
			r->hwm_ok &= pid_clear_hwm(ld->snap0.pids[i]);
	}
	read_cpu_times(&r->cpu0);
	r->self0 = self_cpu_s();
	r->t0 = now_ns();
}

static void take_window_end(struct loader *ld)
{
	struct round *r = cur_round(ld);
	r->t1 = now_ns();
	r->self1 = self_cpu_s();
	read_cpu_times(&r->cpu1);
	if (ld->o.sut_pid > 0) {
		tree_snap(ld->o.sut_pid, &ld->snap1);
		unsigned long long total = 0;
		long hwm = 0;
		for (int i = 0; i < ld->snap1.n; i++) {
			unsigned long long before = 0;
			for (int j = 0; j < ld->snap0.n; j++)
				if (ld->snap0.pids[j] == ld->snap1.pids[i])
					before = ld->snap0.cpu_ns[j];
			if (ld->snap1.cpu_ns[i] > before)
				total += ld->snap1.cpu_ns[i] - before;
			hwm += pid_hwm_kb(ld->snap1.pids[i]);
		}
		r->sut_cpu_s = (double)total / 1e9;
		r->sut_root_cpu_s = (double)(ld->snap1.root_cpu_ns - ld->snap0.root_cpu_ns) / 1e9;
		r->sut_main_cpu_s = (double)(ld->snap1.main_cpu_ns - ld->snap0.main_cpu_ns) / 1e9;
		r->rss_end_kb = ld->snap1.rss_kb;
		r->root_end_kb = ld->snap1.root_rss_kb;
		long root_hwm = ld->snap1.n ? pid_hwm_kb(ld->snap1.pids[0]) : 0;
		r->root_peak_kb =
		    r->hwm_ok && root_hwm > r->root_end_kb ? root_hwm : r->root_end_kb;
		r->rss_peak_kb = r->hwm_ok && hwm > ld->snap1.rss_kb ? hwm : ld->snap1.rss_kb;
		r->procs = ld->snap1.n;
	}
}

static void start_vus_running(struct loader *ld)
{
	uint64_t now = now_ns();
	for (int i = 0; i < ld->o.conc; i++) {
		struct vu *v = &ld->vus[i];
		if (v->step != ST_READY || v->busy)
			continue;
		if (ld->o.rate > 0) {
			/* stagger the VUs over one interval; vu_next adds the interval */
			v->sched_ns = now + ld->interval_ns * (uint64_t)i / (uint64_t)ld->o.conc -
			              ld->interval_ns;
		}
		vu_next(v);
	}
}

static void on_phase_timer(evutil_socket_t fd, short what, void *arg)
{
	struct loader *ld = arg;
	(void)fd;
	(void)what;
	switch (ld->phase) {
	case P_SETUP:
		/* setup timed out: the stragglers count as failed */
		for (int i = 0; i < ld->o.conc; i++) {
			struct vu *v = &ld->vus[i];
			if (!v->setup_counted) {
				note_error(v, E_TIMEOUT, "session setup timed out");
				vu_close(v);
				set_busy(v, false);
				v->step = ST_DONE;
				v->setup_counted = true;
				ld->setup_failed++;
			}
		}
		phase_enter(ld, P_WARMUP);
		break;
	case P_WARMUP:
		phase_enter(ld, P_MEASURE);
		break;
	case P_MEASURE:
		take_window_end(ld);
		phase_enter(ld, P_DRAIN);
		break;
	case P_DRAIN:
		phase_enter(ld, ld->o.idle_sessions > 0 && ld->round_idx == 0 ? P_IDLE_OPEN
		                                                              : P_TEARDOWN);
		break;
	case P_IDLE_OPEN:
		if (!ld->idle_err[0])
			snprintf(ld->idle_err, sizeof ld->idle_err, "opening timed out");
		ld->phase = P_DRAIN; /* so that the failures below do not start more */
		for (int i = 0; i < ld->o.idle_sessions; i++) {
			struct vu *v = &ld->idle[i];
			if (i >= ld->idle_started) {
				ld->idle_failed++;
			} else if (v->step != ST_STREAM && v->step != ST_DONE) {
				vu_close(v);
				set_busy(v, false);
				v->step = ST_DONE;
				ld->idle_failed++;
			}
		}
		ld->idle_t1 = now_ns();
		ld->idle_rss = tree_rss(ld->o.sut_pid);
		ld->round_idx = 1;
		phase_enter(ld, P_WARMUP);
		break;
	case P_TEARDOWN:
		phase_enter(ld, P_END);
		break;
	case P_END:
		event_base_loopbreak(ld->base);
		break;
	}
}

static void arm_phase(struct loader *ld, double secs)
{
	struct timeval tv = tv_of(secs);
	evtimer_add(ld->phase_ev, &tv);
}

static void phase_enter(struct loader *ld, enum phase p)
{
	if (p == P_IDLE_OPEN && ld->phase == P_IDLE_OPEN) {
		/* A session finished opening: keep the wave full, or move on. A
		 * session that fails at once re-enters here from send_init: the
		 * outer call goes on filling, so the stack stays flat. */
		if (ld->idle_filling)
			return;
		ld->idle_filling = true;
		while (ld->idle_started < ld->o.idle_sessions &&
		       ld->idle_started - ld->idle_ok - ld->idle_failed < ld->o.idle_wave) {
			struct vu *v = &ld->idle[ld->idle_started++];
			send_init(v);
		}
		ld->idle_filling = false;
		if (ld->idle_ok + ld->idle_failed == ld->o.idle_sessions) {
			evtimer_del(ld->phase_ev);
			ld->idle_t1 = now_ns();
			ld->idle_rss = tree_rss(ld->o.sut_pid);
			ld->round_idx = 1;
			phase_enter(ld, P_WARMUP);
		}
		return;
	}
	evtimer_del(ld->phase_ev);
	ld->phase = p;
	switch (p) {
	case P_SETUP:
		ld->setup_t0 = now_ns();
		arm_phase(ld, ld->o.setup_timeout);
		for (int i = 0; i < ld->o.conc; i++) {
			struct vu *v = &ld->vus[i];
			if (ld->o.fam == FAM_LEGACY) {
				send_init(v);
			} else {
				v->step = ST_CONNECT;
				if (vu_connect(v) < 0)
					vu_broken(v, E_CONNECT, strerror(errno));
			}
		}
		break;
	case P_WARMUP:
		if (ld->round_idx == 0) {
			ld->setup_t1 = now_ns();
			ld->rss_sessions = tree_rss(ld->o.sut_pid);
		}
		if (ld->ready == 0) {
			phase_enter(ld, P_TEARDOWN);
			return;
		}
		if (ld->o.warmup > 0) {
			arm_phase(ld, ld->o.warmup);
			start_vus_running(ld);
		} else {
			phase_enter(ld, P_MEASURE);
		}
		break;
	case P_MEASURE:
		take_window_start(ld);
		arm_phase(ld, ld->o.duration);
		if (ld->o.warmup <= 0)
			start_vus_running(ld);
		break;
	case P_DRAIN:
		for (int i = 0; i < ld->o.conc; i++)
			evtimer_del(ld->vus[i].tev);
		if (ld->inflight == 0) {
			phase_enter(ld, ld->o.idle_sessions > 0 && ld->round_idx == 0 ? P_IDLE_OPEN
			                                                              : P_TEARDOWN);
			return;
		}
		arm_phase(ld, DRAIN_SECS);
		break;
	case P_IDLE_OPEN:
		ld->idle_t0 = now_ns();
		arm_phase(ld, ld->o.setup_timeout);
		ld->phase = P_IDLE_OPEN;
		phase_enter(ld, P_IDLE_OPEN);
		break;
	case P_TEARDOWN:
		ld->teardown_pending = 0;
		for (int i = 0; i < ld->o.idle_sessions; i++)
			vu_close(&ld->idle[i]);
		for (int i = 0; i < ld->o.conc; i++) {
			struct vu *v = &ld->vus[i];
			if (v->busy) { /* still in flight after the drain: abandon */
				set_busy(v, false);
				vu_close(v);
			}
			if (ld->o.fam == FAM_LEGACY && v->session[0] && !ld->o.no_delete &&
			    v->step != ST_DONE) {
				put_head(v, "DELETE", NULL, NULL, 0, "application/json");
				v->step = ST_DELETE;
				set_busy(v, true);
				v->sent_ns = now_ns();
				ld->teardown_pending++;
				vu_send(v);
			} else {
				vu_close(v);
				v->step = ST_DONE;
			}
		}
		if (ld->teardown_pending == 0) {
			phase_enter(ld, P_END);
			return;
		}
		arm_phase(ld, TEARDOWN_SECS);
		break;
	case P_END:
		for (int i = 0; i < ld->o.conc; i++)
			vu_close(&ld->vus[i]);
		arm_phase(ld, 0.15); /* let the server release the sessions */
		break;
	}
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct loader *ld = arg;
	(void)fd;
	(void)what;
	uint64_t now = now_ns(), limit = (uint64_t)(ld->o.req_timeout * 1e9);
	uint64_t setup_limit = (uint64_t)(ld->o.setup_timeout * 1e9);
	for (int i = 0; i < ld->o.conc; i++) {
		struct vu *v = &ld->vus[i];
		bool setup = v->step == ST_INIT || v->step == ST_NOTIFY;
		if (v->busy && now - v->sent_ns > (setup ? setup_limit : limit))
			vu_broken(v, E_TIMEOUT, "no answer within the request timeout");
	}
	for (int i = 0; i < ld->idle_started; i++) {
		struct vu *v = &ld->idle[i];
		if ((v->busy || v->step == ST_GET) && now - v->sent_ns > setup_limit)
			vu_broken(v, E_TIMEOUT, "idle session setup timed out");
	}
}

/* ---- report --------------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const struct round *r, double p)
{
	if (!r->n)
		return 0;
	size_t i = (size_t)ceil(p * (double)r->n);
	if (i > 0)
		i--;
	if (i >= r->n)
		i = r->n - 1;
	return (double)r->lat[i] / 1000.0;
}

static void print_round(FILE *f, struct loader *ld, struct round *r)
{
	double win = (double)(r->t1 - r->t0) / 1e9;
	uint64_t errs = 0;
	if (win <= 0)
		win = 1e-9;
	qsort(r->lat, r->n, sizeof *r->lat, cmp_u64);
	double sum = 0;
	for (size_t i = 0; i < r->n; i++)
		sum += (double)r->lat[i];
	fprintf(f, "{\"window_s\":%.3f,\"requests\":%zu,\"rps\":%.1f,", win, r->n,
	        (double)r->n / win);
	fprintf(f,
	        "\"lat_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,"
	        "\"mean\":%.1f},",
	        pct(r, 0.50), pct(r, 0.90), pct(r, 0.99), pct(r, 0.999),
	        r->n ? (double)r->lat[r->n - 1] / 1000.0 : 0.0,
	        r->n ? sum / (double)r->n / 1000.0 : 0.0);
	fprintf(f, "\"errors\":{");
	for (int k = 0; k < E_NKINDS; k++) {
		errs += r->errors[k];
		fprintf(f, "\"%s\":%llu,", err_names[k], (unsigned long long)r->errors[k]);
	}
	fprintf(f, "\"total\":%llu},\"error_sample\":", (unsigned long long)errs);
	json_str(f, r->err_sample);
	double self = r->self1 - r->self0;
	double busy_total = 0;
	double hz = (double)sysconf(_SC_CLK_TCK);
	fprintf(f, ",\"loader_cpu_s\":%.3f,\"loader_cpu_pct\":%.1f,\"core_busy_pct\":[", self,
	        100.0 * self / win);
	for (int c = 0; c < r->cpu1.n; c++) {
		double b = (double)(r->cpu1.busy[c] - r->cpu0.busy[c]);
		double t = (double)(r->cpu1.total[c] - r->cpu0.total[c]);
		busy_total += b / hz;
		fprintf(f, "%s%.1f", c ? "," : "", t > 0 ? 100.0 * b / t : 0.0);
	}
	double others = busy_total - self - r->sut_cpu_s;
	fprintf(f, "],\"others_cpu_pct\":%.1f", others > 0 ? 100.0 * others / win : 0.0);
	if (ld->o.sut_pid > 0)
		fprintf(f,
		        ",\"sut_cpu_s\":%.3f,\"sut_cpu_pct\":%.1f,\"sut_root_cpu_s\":%.3f,"
		        "\"sut_main_cpu_s\":%.3f,\"sut_rss_peak_kb\":%ld,\"sut_rss_end_kb\":%ld,"
		        "\"root_rss_peak_kb\":%ld,"
		        "\"root_rss_end_kb\":%ld,\"sut_procs\":%d,\"peak_from_hwm\":%s",
		        r->sut_cpu_s, 100.0 * r->sut_cpu_s / win, r->sut_root_cpu_s,
		        r->sut_main_cpu_s, r->rss_peak_kb, r->rss_end_kb, r->root_peak_kb,
		        r->root_end_kb, r->procs, r->hwm_ok ? "true" : "false");
	fprintf(f, "}");
}

static void print_report(struct loader *ld)
{
	FILE *f = stdout;
	fprintf(f, "{\"target\":\"http://%s:%d%s\",\"family\":\"%s\",\"call\":\"%s\",\"c\":%d,",
	        ld->o.host, ld->o.port, ld->o.path, ld->o.fam == FAM_LEGACY ? "legacy" : "modern",
	        call_name(ld->o.call), ld->o.conc);
	fprintf(f, "\"rate\":%.0f,\"warmup_s\":%.2f,\"duration_s\":%.2f,", ld->o.rate, ld->o.warmup,
	        ld->o.duration);
	fprintf(f, "\"wait_idle\":{\"waited_s\":%.2f,\"busy_pct\":%.1f},", ld->waited_s,
	        ld->idle_busy_pct);
	fprintf(f, "\"setup\":{\"ok\":%d,\"failed\":%d,\"seconds\":%.3f,\"error\":", ld->ready,
	        ld->setup_failed,
	        ld->setup_t1 > ld->setup_t0 ? (double)(ld->setup_t1 - ld->setup_t0) / 1e9 : 0.0);
	json_str(f, ld->setup_err);
	fprintf(f, "},\"result\":");
	if (ld->rounds[0].used)
		print_round(f, ld, &ld->rounds[0]);
	else
		fprintf(f, "null");
	if (ld->o.idle_sessions > 0) {
		fprintf(f,
		        ",\"idle_sessions\":{\"requested\":%d,\"ok\":%d,\"failed\":%d,"
		        "\"seconds\":%.3f,\"rss_kb\":%ld,\"root_rss_kb\":%ld,\"error\":",
		        ld->o.idle_sessions, ld->idle_ok, ld->idle_failed,
		        ld->idle_t1 > ld->idle_t0 ? (double)(ld->idle_t1 - ld->idle_t0) / 1e9 : 0.0,
		        ld->idle_rss.tree_kb, ld->idle_rss.root_kb);
		json_str(f, ld->idle_err);
		fprintf(f, "},\"result_with_idle\":");
		if (ld->rounds[1].used)
			print_round(f, ld, &ld->rounds[1]);
		else
			fprintf(f, "null");
	}
	fprintf(f, ",\"teardown\":{\"deleted\":%d,\"failed\":%d}", ld->deleted, ld->delete_failed);
	if (ld->o.sut_pid > 0)
		fprintf(
		    f,
		    ",\"sut\":{\"pid\":%d,\"rss_idle_kb\":%ld,\"rss_sessions_kb\":%ld,"
		    "\"rss_after_kb\":%ld,\"root_rss_idle_kb\":%ld,\"root_rss_sessions_kb\":%ld,"
		    "\"root_rss_after_kb\":%ld,\"root_rss_idle_anon_kb\":%ld,"
		    "\"root_rss_idle_file_kb\":%ld,\"root_pss_idle_kb\":%ld}",
		    (int)ld->o.sut_pid, ld->rss_idle.tree_kb, ld->rss_sessions.tree_kb,
		    ld->rss_after.tree_kb, ld->rss_idle.root_kb, ld->rss_sessions.root_kb,
		    ld->rss_after.root_kb, ld->idle_anon_kb, ld->idle_file_kb, ld->idle_pss_kb);
	fprintf(f, "}\n");
	fflush(f);
}

/* ---- main ------------------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: mcpload --url http://127.0.0.1:PORT/PATH [-c N] [--warmup S] "
	    "[--duration S]\n"
	    "  [--family legacy|modern] [--call echo|big|list] [--tool NAME] [--expect-tools N]\n"
	    "  [--expect-bytes N] [--rate R] [--sut-pid PID] [--idle-sessions N]\n"
	    "  [--idle-wave N] [--idle-get 0|1] [--setup-timeout S] [--timeout S]\n"
	    "  [--wait-idle PCT] [--wait-idle-max S] [-H 'Name: value'] [--no-delete]\n");
	exit(2);
}

static double arg_num(const char *s, const char *name, double min, double max)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || v < min || v > max) {
		fprintf(stderr, "mcpload: %s wants a number in %g..%g, got '%s'\n", name, min, max,
		        s);
		exit(2);
	}
	return v;
}

static void parse_url(struct opts *o, const char *url)
{
	if (strncmp(url, "http://", 7) != 0)
		usage();
	const char *h = url + 7, *colon = strchr(h, ':'), *slash = strchr(h, '/');
	if (!colon || !slash || colon > slash || (size_t)(colon - h) >= sizeof o->host)
		usage();
	snprintf(o->host, sizeof o->host, "%.*s", (int)(colon - h), h);
	char port[8] = { 0 };
	if (slash - colon - 1 <= 0 || slash - colon - 1 >= (long)sizeof port)
		usage();
	memcpy(port, colon + 1, (size_t)(slash - colon - 1));
	o->port = (int)arg_num(port, "port", 1, 65535);
	snprintf(o->path, sizeof o->path, "%s", slash);
}

int main(int argc, char **argv)
{
	static struct loader L;
	struct loader *ld = &L;
	struct opts *o = &ld->o;
	bool have_url = false;
	o->conc = 1;
	o->tool = "echo";
	o->warmup = 1;
	o->duration = 3;
	o->setup_timeout = 60;
	o->req_timeout = 10;
	o->idle_wave = 256;
	o->idle_get = true;
	o->wait_idle_pct = 100;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--no-delete") == 0) {
			o->no_delete = true;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (strcmp(a, "--url") == 0) {
			parse_url(o, v);
			have_url = true;
		} else if (strcmp(a, "-c") == 0) {
			o->conc = (int)arg_num(v, a, 1, 100000);
		} else if (strcmp(a, "--warmup") == 0) {
			o->warmup = arg_num(v, a, 0, 15);
		} else if (strcmp(a, "--duration") == 0) {
			o->duration = arg_num(v, a, 0.1, 15);
		} else if (strcmp(a, "--family") == 0) {
			if (strcmp(v, "legacy") && strcmp(v, "modern"))
				usage();
			o->fam = strcmp(v, "legacy") == 0 ? FAM_LEGACY : FAM_MODERN;
		} else if (strcmp(a, "--call") == 0) {
			if (strcmp(v, "echo") == 0)
				o->call = CALL_ECHO;
			else if (strcmp(v, "big") == 0)
				o->call = CALL_BIG;
			else if (strcmp(v, "list") == 0)
				o->call = CALL_LIST;
			else
				usage();
		} else if (strcmp(a, "--tool") == 0) {
			if (strlen(v) > 128 || strpbrk(v, "\"\\\r\n"))
				usage();
			o->tool = v;
		} else if (strcmp(a, "--expect-tools") == 0) {
			o->expect_tools = (long)arg_num(v, a, 0, 1e7);
		} else if (strcmp(a, "--expect-bytes") == 0) {
			o->expect_bytes = (long)arg_num(v, a, 0, MAX_BODY);
		} else if (strcmp(a, "--rate") == 0) {
			o->rate = arg_num(v, a, 0, 1e7);
		} else if (strcmp(a, "--sut-pid") == 0) {
			o->sut_pid = (pid_t)arg_num(v, a, 1, 1e9);
		} else if (strcmp(a, "--idle-sessions") == 0) {
			o->idle_sessions = (int)arg_num(v, a, 0, 1e6);
		} else if (strcmp(a, "--idle-get") == 0) {
			o->idle_get = arg_num(v, a, 0, 1) != 0;
		} else if (strcmp(a, "--idle-wave") == 0) {
			o->idle_wave = (int)arg_num(v, a, 1, 1e5);
		} else if (strcmp(a, "--setup-timeout") == 0) {
			o->setup_timeout = arg_num(v, a, 0.1, 600);
		} else if (strcmp(a, "--timeout") == 0) {
			o->req_timeout = arg_num(v, a, 0.01, 600);
		} else if (strcmp(a, "--wait-idle") == 0) {
			o->wait_idle_pct = arg_num(v, a, 0, 100);
		} else if (strcmp(a, "--wait-idle-max") == 0) {
			o->wait_idle_max = arg_num(v, a, 0, 600);
		} else if (strcmp(a, "-H") == 0) {
			if (o->nheaders == MAX_HEADERS || !strchr(v, ':') || strpbrk(v, "\r\n"))
				usage();
			o->headers[o->nheaders++] = v;
		} else {
			usage();
		}
	}
	if (!have_url)
		usage();

	/* Loopback only: this tool never sends load anywhere else. */
	if (inet_pton(AF_INET, strcmp(o->host, "localhost") == 0 ? "127.0.0.1" : o->host,
	              &ld->addr.sin_addr) != 1 ||
	    (ntohl(ld->addr.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "mcpload: %s is not a loopback IPv4 address\n", o->host);
		return 2;
	}
	ld->addr.sin_family = AF_INET;
	ld->addr.sin_port = htons((uint16_t)o->port);

	/* Bounded no matter what happens below. */
	alarm((unsigned)(o->wait_idle_max + 2 * o->setup_timeout + 2 * (o->warmup + o->duration) +
	                 DRAIN_SECS * 2 + TEARDOWN_SECS + 30));
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	/* Wait (bounded) for the machine to be idle: the whole machine's busy
	 * share over 250 ms windows must fall to --wait-idle percent. */
	uint64_t w0 = now_ns();
	for (;;) {
		struct cpu_times a, b;
		read_cpu_times(&a);
		usleep(150000);
		read_cpu_times(&b);
		double busy = 0, total = 0;
		for (int c = 0; c < b.n; c++) {
			busy += (double)(b.busy[c] - a.busy[c]);
			total += (double)(b.total[c] - a.total[c]);
		}
		ld->idle_busy_pct = total > 0 ? 100.0 * busy / total : 0;
		ld->waited_s = (double)(now_ns() - w0) / 1e9;
		if (ld->idle_busy_pct <= o->wait_idle_pct || ld->waited_s >= o->wait_idle_max)
			break;
	}
	ld->rss_idle = tree_rss(o->sut_pid);
	if (o->sut_pid > 0)
		pid_rss_split(o->sut_pid, &ld->idle_anon_kb, &ld->idle_file_kb, &ld->idle_pss_kb);

	struct event_config *cfg = event_config_new();
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	event_config_set_flag(cfg, EVENT_BASE_FLAG_NO_CACHE_TIME);
	ld->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (!ld->base) {
		fprintf(stderr, "mcpload: no event base\n");
		return 1;
	}
	ld->phase_ev = evtimer_new(ld->base, on_phase_timer, ld);
	ld->sweep_ev = event_new(ld->base, -1, EV_PERSIST, on_sweep, ld);
	struct timeval sweep = tv_of(0.1);
	event_add(ld->sweep_ev, &sweep);
	if (o->rate > 0)
		ld->interval_ns = (uint64_t)(1e9 * o->conc / o->rate);

	ld->vus = calloc((size_t)o->conc, sizeof *ld->vus);
	ld->idle = o->idle_sessions ? calloc((size_t)o->idle_sessions, sizeof *ld->idle) : NULL;
	if (!ld->vus || (o->idle_sessions && !ld->idle)) {
		fprintf(stderr, "mcpload: out of memory\n");
		return 1;
	}
	for (int i = 0; i < o->conc + o->idle_sessions; i++) {
		struct vu *v = i < o->conc ? &ld->vus[i] : &ld->idle[i - o->conc];
		v->ld = ld;
		v->idx = i;
		v->fd = -1;
		v->idle = i >= o->conc;
		v->tev = evtimer_new(ld->base, on_sched, v);
	}
	ld->phase = P_SETUP;
	phase_enter(ld, P_SETUP);
	event_base_dispatch(ld->base);
	ld->rss_after = tree_rss(o->sut_pid);
	print_report(ld);
	return 0;
}
