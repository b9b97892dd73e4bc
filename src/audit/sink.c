/*
 * sink.c - where audit records go: stdout, a file, an HTTP collector.
 *
 * Each sink is a `struct mg_audit_sink_ops` table (internal.h) driven only
 * by the writer thread, so nothing here needs a lock and everything here
 * may block (write, fsync, HTTP).
 *
 * - stdout: JSON lines; the gateway's diagnostics go to stderr.
 * - file: opened O_APPEND (several writers and logrotate's copytruncate
 *   stay line-safe), reopened on request (SIGUSR1 after logrotate moved the
 *   file); fsync "never", "batch" (after each run of records the writer
 *   drained, at most once per fsync_interval_ms: in a VM a sync is a
 *   journal commit and a virtio kick, and one per 5 ms run cost more than
 *   everything else audit does - issue 12's benchmark) or "always" (after
 *   every record). A batch sync runs on a thread of the sink's own (on a
 *   dup of the descriptor): fdatasync waits for the disk, ~35 ms for a
 *   second of records at 50,000 requests/s here and far longer on a busy
 *   disk, and the writer must go on draining the queue meanwhile or the
 *   queue overflows (issue 12's benchmark dropped records that way).
 *   A regular file is given its blocks ahead of the
 *   records (fallocate, KEEP_SIZE: the size stays the records'), up to
 *   PREALLOC bytes past the end: ext4 otherwise reserves a block for every
 *   page the writer dirties, which made writing a tools/call's two records
 *   (600 bytes) cost 0.35-0.53 µs instead of 0.28 µs once the file had
 *   grown (a microbenchmark of 900 MB in 60 KB runs). The blocks past the end are released when the file is
 *   deleted or truncated (logrotate's copytruncate); until then `du` may
 *   count up to PREALLOC more than `ls -l`.
 * - http: one POST per batch through mg_fetch_sync_on (SSRF rules of
 *   src/http/client.c, allow_private_networks), framed per export_format
 *   (mg_audit_frame, exact framings in docs/observability.md): ndjson,
 *   json_array (Datadog logs intake), splunk_hec (concatenated envelopes),
 *   elasticsearch_bulk (`{"create":{}}` action lines). 2xx is delivered;
 *   408, 429, 5xx and transport errors are worth retrying; anything else
 *   (400, 401, 403, 413 …) is a refusal that retrying will not fix.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/internal.h"
#include "http/client.h"
#include "util/clock.h"
#include "util/gzip.h"
#include "util/log.h"
#include "util/str.h"

/* ---- batches ------------------------------------------------------------------------ */

void mg_audit_batch_init(struct mg_audit_batch *b)
{
	mg_buf_init(&b->text, 0);
	b->n = 0;
}

void mg_audit_batch_free(struct mg_audit_batch *b)
{
	mg_buf_free(&b->text);
	b->n = 0;
}

int mg_audit_batch_add(struct mg_audit_batch *b, const char *line, size_t len)
{
	if (mg_buf_append(&b->text, line, len) < 0 || mg_buf_putc(&b->text, '\n') < 0)
		return -1;
	b->n++;
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* ---- stdout -------------------------------------------------------------------------- */

static int stdout_write(void *self, const char *lines, size_t len)
{
	(void)self;
	return write_all(STDOUT_FILENO, lines, len);
}

static const struct mg_audit_sink_ops stdout_ops = {
	.name = "stdout",
	.write = stdout_write,
};

int mg_audit_sink_stdout(struct mg_audit_sink *s)
{
	*s = (struct mg_audit_sink){ .ops = &stdout_ops, .self = NULL };
	return 0;
}

/* ---- file ---------------------------------------------------------------------------- */

enum { FSYNC_NEVER, FSYNC_BATCH, FSYNC_ALWAYS };

#define PREALLOC  (4u << 20)
#define DROP_STEP (1 << 20) /* the least run of synced pages worth dropping */

/* Drop-behind: the page cache keeps what was written (and, once synced,
 * clean) until memory runs short. For a log written once and read, if at
 * all, by a shipper that follows it, that only costs: 50 MB/s of records
 * take a fresh page for every 4 KiB, which on the benchmark's VM made
 * writing a tools/call's two records cost 0.37-1.36 µs (memory the guest
 * had not touched yet) instead of 0.11 µs plus 0.09 µs to drop them, and it
 * crowds out the cache of everything else on the host. So after a sync
 * the pages that the *previous* sync made clean are dropped: a follower
 * lagging less than one sync (or one DROP_STEP) still reads from memory.
 * Pages someone dirtied again are left alone by the kernel. */
struct dropper {
	off_t from; /* dropped up to here */
	off_t mark; /* synced at the previous drop, dropped at the next */
};

static void drop_behind(struct dropper *d, int fd, off_t synced_end)
{
	if (synced_end < d->mark) /* truncated (copytruncate): start over */
		*d = (struct dropper){ 0 };
	if (synced_end - d->mark < DROP_STEP)
		return;
	off_t to = d->mark & ~(off_t)4095;
	if (to > d->from && posix_fadvise(fd, d->from, to - d->from, POSIX_FADV_DONTNEED) == 0)
		d->from = to;
	d->mark = synced_end;
}

struct file_sink {
	char *path;
	int fd;
	bool prealloc;   /* a regular file on a file system that allocates ahead */
	off_t end;       /* where this sink believes the file ends */
	off_t alloc_end; /* blocks are allocated up to here */
	int64_t fsync_policy;
	uint64_t interval_us;  /* batch: the least time between syncs */
	uint64_t last_sync_us; /* mg_now_us of the last sync */
	bool dirty;
	struct dropper drop; /* always, or batch without a syncer */
	/* batch: the syncer thread, fed one descriptor at a time */
	bool has_syncer;
	pthread_t syncer;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned gen;      /* counts opens: a new file starts a new dropper */
	int sync_fd;       /* a dup of fd to sync, -1 when none is waiting */
	off_t sync_end;    /* where the file ended when that sync was last asked for */
	unsigned sync_gen; /* the gen of sync_fd's file */
	bool stop;
};

static void *syncer_main(void *arg)
{
	struct file_sink *f = arg;
	pthread_setname_np(pthread_self(), "mg-audit-sync");
	struct dropper drop = { 0 };
	unsigned gen = 0; /* the first request (gen 1 or more) starts the dropper */
	pthread_mutex_lock(&f->mu);
	for (;;) {
		while (f->sync_fd < 0 && !f->stop)
			pthread_cond_wait(&f->cv, &f->mu);
		if (f->sync_fd < 0)
			break; /* stopping, nothing waiting */
		int d = f->sync_fd;
		off_t end = f->sync_end;
		if (f->sync_gen != gen) {
			gen = f->sync_gen;
			drop = (struct dropper){ 0 };
		}
		f->sync_fd = -1;
		pthread_mutex_unlock(&f->mu);
		if (fdatasync(d) == 0)
			drop_behind(&drop, d, end);
		close(d);
		pthread_mutex_lock(&f->mu);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

/* A sync of everything written so far on the writer's thread. */
static void sync_here(struct file_sink *f)
{
	if (fdatasync(f->fd) == 0)
		drop_behind(&f->drop, f->fd, f->end);
}

/* A sync of everything written so far, on the syncer when there is one
 * (a sync still waiting there covers these records too: it starts later). */
static void sync_soon(struct file_sink *f)
{
	if (!f->has_syncer) {
		sync_here(f);
		return;
	}
	pthread_mutex_lock(&f->mu);
	if (f->sync_fd >= 0 && f->sync_gen != f->gen) {
		pthread_mutex_unlock(&f->mu);
		sync_here(f); /* the waiting sync is of the file before a reopen */
		return;
	}
	if (f->sync_fd < 0) {
		f->sync_fd = dup(f->fd);
		if (f->sync_fd < 0) {
			pthread_mutex_unlock(&f->mu);
			sync_here(f); /* out of descriptors: here, then */
			return;
		}
		f->sync_gen = f->gen;
		pthread_cond_signal(&f->cv);
	}
	f->sync_end = f->end;
	pthread_mutex_unlock(&f->mu);
}

static void syncer_stop(struct file_sink *f)
{
	if (!f->has_syncer)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = true; /* a sync still waiting is done first */
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->syncer, NULL);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	f->has_syncer = false;
}

static int file_open(struct file_sink *f, char *err, size_t err_size)
{
	f->fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (f->fd < 0) {
		snprintf(err, err_size, "cannot open %s: %s", f->path, strerror(errno));
		return -1;
	}
	struct stat st;
	f->prealloc = fstat(f->fd, &st) == 0 && S_ISREG(st.st_mode);
	f->end = f->alloc_end = f->prealloc ? st.st_size : 0;
	f->drop = (struct dropper){ 0 };
	f->gen++;
	return 0;
}

/* Blocks for the next `len` bytes and PREALLOC more, when the file's
 * allocation runs out. Advisory: other writers appending, a truncation, a
 * file system without fallocate or a full disk only make it do less (the
 * write itself then says what is wrong). */
static void file_allocate_ahead(struct file_sink *f, size_t len)
{
	if (!f->prealloc || f->end + (off_t)len <= f->alloc_end)
		return;
	struct stat st;
	if (fstat(f->fd, &st) == 0)
		f->end = st.st_size; /* others may have appended, or truncated */
	if (fallocate(f->fd, FALLOC_FL_KEEP_SIZE, f->end, (off_t)(len + PREALLOC)) == 0) {
		f->alloc_end = f->end + (off_t)(len + PREALLOC);
	} else if (errno == ENOSPC || errno == EINTR || errno == EDQUOT) {
		f->alloc_end = f->end + (off_t)len; /* tried again after these */
	} else {
		f->prealloc = false; /* not supported here (EOPNOTSUPP, ENODEV …) */
	}
}

static int file_write(void *self, const char *lines, size_t len)
{
	struct file_sink *f = self;
	if (f->fd < 0) {
		char err[300];
		if (file_open(f, err, sizeof err) < 0)
			return -1;
	}
	file_allocate_ahead(f, len);
	if (write_all(f->fd, lines, len) < 0)
		return -1;
	f->end += (off_t)len;
	f->dirty = true;
	if (f->fsync_policy == FSYNC_ALWAYS) {
		sync_here(f);
		f->dirty = false;
	}
	return 0;
}

static void file_flush(void *self)
{
	struct file_sink *f = self;
	if (f->fsync_policy != FSYNC_BATCH || f->fd < 0) {
		f->dirty = false;
		return;
	}
	uint64_t now = mg_now_us();
	if (!f->dirty || (f->interval_us && now - f->last_sync_us < f->interval_us))
		return; /* file_due tells the writer when to come back */
	sync_soon(f);
	f->dirty = false;
	f->last_sync_us = now;
}

static uint64_t file_due(void *self)
{
	struct file_sink *f = self;
	if (!f->dirty || f->fsync_policy != FSYNC_BATCH || f->fd < 0)
		return 0;
	return f->last_sync_us + f->interval_us;
}

static void file_reopen(void *self)
{
	struct file_sink *f = self;
	char err[300];
	if (f->fd >= 0) {
		if (f->dirty && f->fsync_policy != FSYNC_NEVER)
			fdatasync(f->fd);
		close(f->fd);
	}
	f->dirty = false;
	if (file_open(f, err, sizeof err) < 0)
		mg_log_error("audit: %s (retrying at the next record)", err);
	else
		mg_log_info("audit: reopened %s", f->path);
}

static void file_free(void *self)
{
	struct file_sink *f = self;
	syncer_stop(f);
	if (f->fd >= 0) {
		if (f->dirty && f->fsync_policy != FSYNC_NEVER)
			fdatasync(f->fd);
		close(f->fd);
	}
	free(f->path);
	free(f);
}

static const struct mg_audit_sink_ops file_ops = {
	.name = "file",
	.write = file_write,
	.flush = file_flush,
	.due_us = file_due,
	.reopen = file_reopen,
	.free = file_free,
};

int mg_audit_sink_file(struct mg_audit_sink *s, const char *path, int64_t fsync_policy,
                       int64_t fsync_interval_ms, char *err, size_t err_size)
{
	struct file_sink *f = calloc(1, sizeof *f);
	if (!f || !(f->path = mg_strdup(path))) {
		free(f);
		snprintf(err, err_size, "out of memory");
		return -1;
	}
	f->fsync_policy = fsync_policy;
	f->interval_us = fsync_interval_ms > 0 ? (uint64_t)fsync_interval_ms * 1000u : 0;
	f->last_sync_us = mg_now_us();
	f->sync_fd = -1;
	if (file_open(f, err, err_size) < 0) {
		free(f->path);
		free(f);
		return -1;
	}
	if (fsync_policy == FSYNC_BATCH) {
		pthread_mutex_init(&f->mu, NULL);
		pthread_cond_init(&f->cv, NULL);
		f->has_syncer = pthread_create(&f->syncer, NULL, syncer_main, f) == 0;
		if (!f->has_syncer) {
			pthread_cond_destroy(&f->cv);
			pthread_mutex_destroy(&f->mu); /* syncs on the writer, then */
		}
	}
	*s = (struct mg_audit_sink){ .ops = &file_ops, .self = f };
	return 0;
}

/* ---- framing ------------------------------------------------------------------------- */

enum { FMT_NDJSON, FMT_JSON_ARRAY, FMT_SPLUNK_HEC, FMT_ES_BULK };

/* Seconds.microseconds since the epoch from a record's leading timestamp
 * ({"timestamp":"2026-12-04T15:30:22.123456Z",…}); false when absent. */
static bool record_time(const char *line, size_t len, long long *secs, long *us)
{
	static const char lead[] = "{\"timestamp\":\"";
	size_t ll = sizeof lead - 1;
	if (len < ll + 27 || memcmp(line, lead, ll) != 0)
		return false;
	const char *t = line + ll;
	struct tm tm = { 0 };
	const char *end = strptime(t, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end != t + 19 || t[19] != '.' || t[26] != 'Z')
		return false;
	long v = 0;
	for (int i = 20; i < 26; i++) {
		if (t[i] < '0' || t[i] > '9')
			return false;
		v = v * 10 + (t[i] - '0');
	}
	*secs = (long long)timegm(&tm);
	*us = v;
	return true;
}

static int put_json_str(struct mg_buf *b, const char *s)
{
	json_t *j = json_string(s ? s : "");
	char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
	int rc = t ? mg_buf_puts(b, t) : -1;
	free(t);
	json_decref(j);
	return rc;
}

int mg_audit_frame(int64_t format, const struct mg_audit_config *cfg, const char *host,
                   const struct mg_audit_batch *b, struct mg_buf *body, const char **ctype)
{
	const char *p = b->text.data ? b->text.data : "";
	const char *end = p + b->text.len;
	if (format == FMT_NDJSON) {
		*ctype = "application/x-ndjson";
		return mg_buf_append(body, p, b->text.len);
	}
	*ctype = format == FMT_ES_BULK ? "application/x-ndjson" : "application/json";
	if (format == FMT_JSON_ARRAY && mg_buf_putc(body, '[') < 0)
		return -1;
	bool first = true;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		int rc = 0;
		switch (format) {
		case FMT_JSON_ARRAY:
			rc = (first ? 0 : mg_buf_putc(body, ',')) | mg_buf_append(body, p, len);
			break;
		case FMT_ES_BULK:
			rc = mg_buf_puts(body, "{\"create\":{}}\n") | mg_buf_append(body, p, len) |
			     mg_buf_putc(body, '\n');
			break;
		case FMT_SPLUNK_HEC: {
			long long secs = 0;
			long us = 0;
			if (!record_time(p, len, &secs, &us))
				secs = (long long)time(NULL);
			rc = mg_buf_printf(body, "{\"time\":%lld.%06ld,\"host\":", secs, us);
			rc |= put_json_str(body, host);
			rc |= mg_buf_puts(body, ",\"source\":");
			rc |= put_json_str(body, cfg->splunk_source);
			rc |= mg_buf_puts(body, ",\"sourcetype\":");
			rc |= put_json_str(body, cfg->splunk_sourcetype);
			if (cfg->splunk_index) {
				rc |= mg_buf_puts(body, ",\"index\":");
				rc |= put_json_str(body, cfg->splunk_index);
			}
			rc |= mg_buf_puts(body, ",\"event\":");
			rc |= mg_buf_append(body, p, len);
			rc |= mg_buf_puts(body, "}\n");
			break;
		}
		default:
			return -1;
		}
		if (rc < 0)
			return -1;
		first = false;
		p += len + 1;
	}
	if (format == FMT_JSON_ARRAY && mg_buf_putc(body, ']') < 0)
		return -1;
	return 0;
}

/* ---- http ---------------------------------------------------------------------------- */

struct http_sink {
	const struct mg_audit_config *cfg;
	char host[256];
	char **headers; /* "Name: value", the last two slots for Content-Type and -Encoding */
	size_t n_headers;
	struct mg_buf zout;            /* export_compression = "gzip": the body compressed */
	struct mg_fetch_session *conn; /* kept between batches; NULL: one per batch */
};

static enum mg_sink_result http_deliver(void *self, const struct mg_audit_batch *b,
                                        long *retry_after, char *err, size_t err_size)
{
	struct http_sink *h = self;
	struct mg_buf body;
	const char *ctype = "application/json";
	enum mg_sink_result res = MG_SINK_RETRY;
	char ctype_line[64];
	struct mg_fetch_sync_result r = { 0 };
	*retry_after = -1;
	mg_buf_init(&body, 0);
	if (mg_audit_frame(h->cfg->export_format, h->cfg, h->host, b, &body, &ctype) < 0) {
		snprintf(err, err_size, "cannot frame the batch (out of memory)");
		goto out;
	}
	snprintf(ctype_line, sizeof ctype_line, "Content-Type: %s", ctype);
	size_t nh = h->n_headers;
	h->headers[nh++] = ctype_line;
	const char *data = body.data ? body.data : "";
	size_t len = body.len;
	if (h->cfg->export_compression == MG_COMPRESS_GZIP) {
		mg_buf_reset(&h->zout);
		if (mg_gzip(data, len, MG_GZIP_LEVEL, &h->zout) < 0) {
			snprintf(err, err_size, "cannot compress the batch (out of memory)");
			goto out;
		}
		h->headers[nh++] = "Content-Encoding: gzip";
		data = h->zout.data;
		len = h->zout.len;
	}
	struct mg_fetch_opts o = {
		.url = h->cfg->export_url,
		.method = "POST",
		.headers = (const char *const *)h->headers,
		.n_headers = nh,
		.body = data,
		.body_len = len,
		.timeout_ms = h->cfg->export_timeout_secs * 1000,
		.max_bytes = 64 * 1024,
		.allow_private = h->cfg->allow_private_networks,
	};
	if (mg_fetch_sync_on(h->conn, &o, &r) < 0) {
		snprintf(err, err_size, "%s", r.error);
		goto out;
	}
	if (r.status >= 200 && r.status < 300) {
		res = MG_SINK_OK;
	} else if (r.status == 408 || r.status == 429 || r.status >= 500) {
		*retry_after = r.retry_after_secs;
		snprintf(err, err_size, "HTTP %ld", r.status);
	} else {
		res = MG_SINK_REJECT;
		snprintf(err, err_size, "HTTP %ld (not retried)", r.status);
	}
out:
	h->headers[h->n_headers] = h->headers[h->n_headers + 1] = NULL;
	mg_fetch_sync_result_free(&r);
	mg_buf_free(&body);
	return res;
}

static void http_free(void *self)
{
	struct http_sink *h = self;
	mg_fetch_header_lines_free(h->headers, h->n_headers);
	mg_fetch_session_free(h->conn);
	mg_buf_free(&h->zout);
	free(h);
}

static const struct mg_audit_sink_ops http_ops = {
	.name = "http",
	.deliver = http_deliver,
	.free = http_free,
};

int mg_audit_sink_http(struct mg_audit_sink *s, const struct mg_audit_config *cfg, char *err,
                       size_t err_size)
{
	struct http_sink *h = calloc(1, sizeof *h);
	if (!h)
		goto oom;
	h->cfg = cfg;
	if (gethostname(h->host, sizeof h->host) < 0)
		snprintf(h->host, sizeof h->host, "mcp-guard");
	h->host[sizeof h->host - 1] = '\0';
	mg_buf_init(&h->zout, 0);
	h->headers = mg_fetch_header_lines(&cfg->export_headers, 2);
	if (!h->headers)
		goto oom;
	h->n_headers = cfg->export_headers.n;
	if (mg_fetch_load(err, err_size) < 0) {
		http_free(h);
		return -1;
	}
	if (cfg->export_compression == MG_COMPRESS_GZIP) {
		char why[200];
		if (mg_gzip_load(why, sizeof why) < 0) {
			snprintf(err, err_size, "audit.export_compression = \"gzip\": %s", why);
			http_free(h);
			return -1;
		}
	}
	h->conn = mg_fetch_session_new();
	*s = (struct mg_audit_sink){ .ops = &http_ops, .self = h };
	return 0;
oom:
	if (h)
		http_free(h);
	snprintf(err, err_size, "out of memory");
	return -1;
}
