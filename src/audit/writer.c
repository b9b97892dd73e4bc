/*
 * writer.c - the audit queue and its writer thread.
 *
 * The loop thread serializes an event (event.c, after redaction) and puts
 * the line on a bounded ring (`queue_size` lines) under a mutex held only
 * to push a pointer. When the ring is full, `overflow = "drop"` drops the
 * event at once and `overflow = "block"` waits at most `block_timeout_ms`
 * for room and then drops it; every drop is counted
 * (mcp_guard_audit_dropped_total) and logged, at most once per 10 s with
 * the count since the last log line.
 *
 * The writer thread takes every queued line in one go, adds the hash-chain
 * members when `hash_chain = true` (the chain's head lives here; at start
 * it is read back from the last line of the audit file so the chain
 * continues across restarts and rotations), writes the run to the local
 * sinks in one write each (then fsync per policy), and adds the records to
 * the export batch. A batch is exported when it holds
 * `export_batch_size` records or is `export_interval_secs` old: first the
 * spool (oldest file first; nothing new is sent while older batches
 * wait), then the batch; a batch that cannot be delivered after the
 * retries (×3, exponential backoff with jitter, Retry-After honoured) goes
 * to the spool, and only a full or unwritable spool loses records, counted
 * and logged. At shutdown the queue is drained, each pending batch gets one
 * attempt and goes to the spool otherwise, and the chain head is logged.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/internal.h"
#include "util/clock.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/str.h"

#define MAX_EVENT_BYTES   (4u * 1024 * 1024)
#define DROP_LOG_EVERY_US (10u * 1000000)
#define RETRIES           3
#define BACKOFF_BASE_MS   500
#define BACKOFF_MAX_MS    30000
#define TAKE_MAX          1024
#define LINGER_MS         5 /* after a run, the writer collects more for this long */

enum { OVERFLOW_DROP, OVERFLOW_BLOCK };

#define LINE_CAP    512  /* most records fit a buffer of this size */
#define RECYCLE_MAX 2048 /* line buffers kept for reuse */
#define STASH_MAX   64   /* of which the loop holds at most this many */

struct qitem {
	char *line;
	size_t len;
	size_t cap; /* LINE_CAP: goes back to the loop for the next record */
};

struct mg_audit {
	const struct mg_audit_config *cfg;
	struct mg_audit_redactor *rd;

	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	struct qitem *q;
	size_t cap, head, count;
	bool stopping, reopen_req, head_req;
	bool sleeping; /* the writer waits for work: the next event wakes it */
	/* Line buffers written and handed back for reuse: freeing on the
	 * writer what the loop allocated cost glibc a cross-arena free per
	 * record (issue 12's benchmark); now they circulate. */
	char **recycled;
	size_t n_recycled;
	pthread_t thread;
	bool started;

	/* writer thread only */
	struct mg_audit_sink local[2];
	size_t n_local;
	struct mg_audit_sink http;
	bool has_http;
	struct mg_audit_spool *spool;
	bool chain;
	uint64_t seq;
	char prev[MG_AUDIT_HASH_HEX + 1];
	struct mg_audit_batch batch;
	uint64_t batch_since_us;
	uint64_t last_head_log_us;
	uint64_t rng;
	bool export_down;     /* the last attempt failed: batches go to the spool */
	uint64_t retry_at_us; /* when the collector is tried again (one attempt) */

	/* loop thread only */
	uint64_t drop_logged_us, drops_unlogged;
	struct mg_audit_seen *seen; /* which auth_success to record */
	char *stash[STASH_MAX];     /* recycled line buffers, taken under no lock */
	size_t n_stash;

	/* writer thread only (again) */
	struct mg_sha256_ctx *sha; /* the chain's digest state, reused */
	struct mg_buf run;         /* a run of lines, reused */

	_Atomic uint64_t emitted, written, exported, spooled, spool_pending, dropped, export_errors,
	    write_errors, depth;
};

static void deadline_after_ms(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* ---- loop thread ---------------------------------------------------------------------- */

static void count_drop(struct mg_audit *a, uint64_t n, const char *why)
{
	atomic_fetch_add(&a->dropped, n);
	a->drops_unlogged += n;
	uint64_t now = mg_now_us();
	if (a->drop_logged_us == 0 || now - a->drop_logged_us >= DROP_LOG_EVERY_US) {
		mg_log_error("audit: %llu event(s) dropped: %s (total %llu)",
		             (unsigned long long)a->drops_unlogged, why,
		             (unsigned long long)atomic_load(&a->dropped));
		a->drop_logged_us = now;
		a->drops_unlogged = 0;
	}
}

static void enqueue(struct mg_audit *a, char *line, size_t len, size_t cap)
{
	pthread_mutex_lock(&a->mu);
	while (a->n_stash < STASH_MAX && a->n_recycled)
		a->stash[a->n_stash++] = a->recycled[--a->n_recycled];
	if (a->count == a->cap && a->cfg->overflow == OVERFLOW_BLOCK && !a->stopping) {
		struct timespec ts;
		deadline_after_ms(&ts, (uint64_t)a->cfg->block_timeout_ms);
		while (a->count == a->cap && !a->stopping) {
			if (pthread_cond_timedwait(&a->not_full, &a->mu, &ts) == ETIMEDOUT)
				break;
		}
	}
	if (a->count == a->cap || a->stopping) {
		pthread_mutex_unlock(&a->mu);
		free(line);
		count_drop(a, 1, "the audit queue is full (audit.queue_size)");
		return;
	}
	a->q[(a->head + a->count) % a->cap] = (struct qitem){ line, len, cap };
	a->count++;
	atomic_store(&a->depth, a->count);
	/* Under load the writer lingers and drains every LINGER_MS on its own:
	 * waking it per event would cost a futex call per record. */
	if (a->sleeping || a->count >= a->cap / 2)
		pthread_cond_signal(&a->not_empty);
	pthread_mutex_unlock(&a->mu);
	atomic_fetch_add(&a->emitted, 1);
}

void mg_audit_emit(struct mg_audit *a, const struct mg_audit_event *ev)
{
	if (!a)
		return;
	struct mg_buf b;
	mg_buf_init(&b, MAX_EVENT_BYTES);
	/* most records fit: one buffer (recycled) instead of four doublings from 64 */
	b.data = a->n_stash ? a->stash[--a->n_stash] : malloc(LINE_CAP);
	b.cap = b.data ? LINE_CAP : 0;
	int64_t now = mg_unix_us_at(ev->at_us ? ev->at_us : mg_now_us());
	if (mg_audit_serialize(ev, now, a->rd, &b) < 0) {
		/* too large with its arguments or result: record the event without them */
		struct mg_audit_event lean = *ev;
		lean.arguments = NULL;
		lean.result = NULL;
		lean.message = "arguments and result omitted: larger than 4 MiB";
		mg_buf_reset(&b);
		if (mg_audit_serialize(&lean, now, a->rd, &b) < 0) {
			mg_buf_free(&b);
			count_drop(a, 1, "the event could not be serialized");
			return;
		}
	}
	size_t len = b.len, cap = b.cap;
	enqueue(a, mg_buf_steal(&b), len, cap);
}

bool mg_audit_auth_success_due(struct mg_audit *a, const char *identity, const char *provider,
                               const char *client, uint64_t now_us)
{
	if (!a)
		return false;
	return !a->seen || mg_audit_seen_due(a->seen, identity, provider, client, now_us);
}

bool mg_audit_wants_arguments(const struct mg_audit *a)
{
	return a && a->cfg->include_arguments;
}

bool mg_audit_wants_results(const struct mg_audit *a)
{
	return a && a->cfg->include_results;
}

void mg_audit_tool_definition_changed(struct mg_audit *a, const char *server, const char *tool,
                                      const char *old_hash, const char *new_hash)
{
	if (!a)
		return;
	char msg[300];
	snprintf(msg, sizeof msg, "definition changed from %s to %s", old_hash ? old_hash : "none",
	         new_hash ? new_hash : "none");
	struct mg_audit_event ev = { .type = MG_AUDIT_TOOL_DEFINITION_CHANGED,
		                     .server = server,
		                     .tool = tool,
		                     .message = msg,
		                     .success = -1,
		                     .duration_ms = -1 };
	mg_audit_emit(a, &ev);
}

static void request_flag(struct mg_audit *a, bool *flag)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	*flag = true;
	pthread_cond_signal(&a->not_empty);
	pthread_mutex_unlock(&a->mu);
}

void mg_audit_reopen(struct mg_audit *a)
{
	if (a)
		request_flag(a, &a->reopen_req);
}

void mg_audit_log_head(struct mg_audit *a)
{
	if (a)
		request_flag(a, &a->head_req);
}

void mg_audit_stats(const struct mg_audit *a, struct mg_audit_stats *o)
{
	memset(o, 0, sizeof *o);
	if (!a)
		return;
	struct mg_audit *m = (struct mg_audit *)a;
	o->queue_depth = atomic_load(&m->depth);
	o->queue_size = a->cap;
	o->emitted = atomic_load(&m->emitted);
	o->written = atomic_load(&m->written);
	o->exported = atomic_load(&m->exported);
	o->spooled = atomic_load(&m->spooled);
	o->spool_pending = atomic_load(&m->spool_pending);
	o->dropped = atomic_load(&m->dropped);
	o->export_errors = atomic_load(&m->export_errors);
	o->write_errors = atomic_load(&m->write_errors);
}

/* ---- writer thread -------------------------------------------------------------------- */

static bool is_stopping(struct mg_audit *a)
{
	pthread_mutex_lock(&a->mu);
	bool s = a->stopping;
	pthread_mutex_unlock(&a->mu);
	return s;
}

/* Sleeps `ms`, waking early when the gateway stops. */
static void backoff_sleep(struct mg_audit *a, uint64_t ms)
{
	struct timespec ts;
	deadline_after_ms(&ts, ms);
	pthread_mutex_lock(&a->mu);
	while (!a->stopping) {
		if (pthread_cond_timedwait(&a->not_full, &a->mu, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&a->mu);
}

static uint64_t next_rand(struct mg_audit *a)
{
	/* xorshift64*, seeded from the OS: jitter only */
	a->rng ^= a->rng >> 12;
	a->rng ^= a->rng << 25;
	a->rng ^= a->rng >> 27;
	return a->rng * 2685821657736338717ull;
}

/* One batch to the collector: up to 1 + RETRIES attempts (1 when
 * stopping). */
static enum mg_sink_result send_batch(struct mg_audit *a, const struct mg_audit_batch *b,
                                      bool final)
{
	enum mg_sink_result r = MG_SINK_RETRY;
	/* a collector already known to be down gets one attempt per interval, so
	 * the writer keeps up with the queue (into the spool) meanwhile */
	int retries = final || a->export_down ? 0 : RETRIES;
	for (int attempt = 0; attempt <= retries; attempt++) {
		long retry_after = -1;
		char err[300] = "";
		r = a->http.ops->deliver(a->http.self, b, &retry_after, err, sizeof err);
		if (r == MG_SINK_OK) {
			if (a->export_down)
				mg_log_info("audit: the collector takes batches again");
			a->export_down = false;
			return r;
		}
		atomic_fetch_add(&a->export_errors, 1);
		bool last = attempt == retries || r == MG_SINK_REJECT || is_stopping(a);
		mg_log_warn("audit: export of %zu record(s) failed: %s%s", b->n, err,
		            last ? "" : "; retrying");
		if (last)
			break;
		uint64_t ms;
		if (retry_after >= 0) {
			ms = (uint64_t)retry_after * 1000;
		} else {
			ms = (uint64_t)BACKOFF_BASE_MS << attempt;
			ms = ms / 2 + next_rand(a) % (ms + 1); /* 50%..150% */
		}
		if (ms > BACKOFF_MAX_MS)
			ms = BACKOFF_MAX_MS;
		backoff_sleep(a, ms);
	}
	a->export_down = true;
	a->retry_at_us = mg_now_us() + (uint64_t)a->cfg->export_interval_secs * 1000000u;
	return r;
}

static void spool_or_drop(struct mg_audit *a, struct mg_audit_batch *b, const char *why)
{
	char err[300];
	if (a->spool && mg_audit_spool_put(a->spool, b, err, sizeof err) == 0) {
		atomic_fetch_add(&a->spooled, b->n);
		atomic_store(&a->spool_pending, mg_audit_spool_records(a->spool));
		mg_log_warn("audit: %zu record(s) spooled (%s); %llu waiting in %s", b->n, why,
		            (unsigned long long)mg_audit_spool_records(a->spool),
		            a->cfg->spool_dir);
		return;
	}
	atomic_fetch_add(&a->dropped, b->n);
	mg_log_error("audit: %zu exported record(s) lost: %s; %s", b->n, why,
	             a->spool ? err : "no spool_dir is configured");
}

/* Sends the spool (oldest first), then the batch; what cannot be sent
 * goes to the spool. */
static void export_flush(struct mg_audit *a, bool final)
{
	bool down = a->export_down && !final && mg_now_us() < a->retry_at_us;
	while (!down && a->spool && mg_audit_spool_files(a->spool) > 0) {
		struct mg_audit_batch sb;
		char err[300];
		int pr = mg_audit_spool_peek(a->spool, &sb, err, sizeof err);
		if (pr < 0) {
			mg_log_error("audit: %s; skipping that spool file", err);
			mg_audit_spool_pop(a->spool);
			continue;
		}
		enum mg_sink_result r = send_batch(a, &sb, final);
		if (r == MG_SINK_OK) {
			atomic_fetch_add(&a->exported, sb.n);
			mg_audit_spool_pop(a->spool);
			atomic_store(&a->spool_pending, mg_audit_spool_records(a->spool));
			mg_log_info("audit: %zu spooled record(s) delivered; %llu still spooled",
			            sb.n, (unsigned long long)mg_audit_spool_records(a->spool));
		} else {
			down = true;
		}
		mg_audit_batch_free(&sb);
		if (down)
			break;
	}
	if (a->batch.n) {
		enum mg_sink_result r = down ? MG_SINK_RETRY : send_batch(a, &a->batch, final);
		if (r == MG_SINK_OK)
			atomic_fetch_add(&a->exported, a->batch.n);
		else
			spool_or_drop(a, &a->batch,
			              down ? "the collector is down or older batches are waiting"
			              : r == MG_SINK_REJECT ? "the collector refused the batch"
			                                    : "the collector is unreachable");
	}
	mg_audit_batch_free(&a->batch);
	mg_audit_batch_init(&a->batch);
	a->batch_since_us = mg_now_us();
}

static void log_head(struct mg_audit *a)
{
	if (a->chain)
		mg_log_info("audit: chain head seq=%llu hash=%s", (unsigned long long)a->seq,
		            a->prev);
	a->last_head_log_us = mg_now_us();
}

/* Writes a run of queued lines. */
static void process(struct mg_audit *a, struct qitem *items, size_t n)
{
	struct mg_buf run = a->run; /* keeps its allocation from run to run */
	mg_buf_reset(&run);
	uint64_t recs = 0;
	for (size_t i = 0; i < n; i++) {
		size_t start = run.len;
		int rc;
		if (a->chain) {
			char hash[MG_AUDIT_HASH_HEX + 1];
			rc = mg_audit_chain_with(a->sha, items[i].line, items[i].len, a->seq + 1,
			                         a->prev, &run, hash);
			if (rc == 0) {
				a->seq++;
				memcpy(a->prev, hash, sizeof hash);
			}
		} else {
			rc = mg_buf_append(&run, items[i].line, items[i].len);
		}
		if (items[i].cap != LINE_CAP) {
			free(items[i].line);
			items[i].line = NULL;
		} /* (the others go back to the loop: give_back) */
		if (rc < 0 || mg_buf_putc(&run, '\n') < 0) {
			run.len = start;
			atomic_fetch_add(&a->dropped, 1);
			mg_log_error("audit: out of memory: 1 record dropped");
			continue;
		}
		recs++;
		if (a->has_http) {
			if (a->batch.n == 0)
				a->batch_since_us = mg_now_us();
			mg_audit_batch_add(&a->batch, run.data + start, run.len - start - 1);
			if (a->batch.n >= (size_t)a->cfg->export_batch_size)
				export_flush(a, false);
		}
	}
	if (run.len) {
		for (size_t s = 0; s < a->n_local; s++) {
			if (a->local[s].ops->write(a->local[s].self, run.data, run.len) < 0) {
				atomic_fetch_add(&a->write_errors, 1);
				mg_log_error("audit: cannot write to %s: %s", a->local[s].ops->name,
				             strerror(errno));
			}
			if (a->local[s].ops->flush)
				a->local[s].ops->flush(a->local[s].self);
		}
		if (a->n_local)
			atomic_fetch_add(&a->written, recs);
	}
	/* a burst's buffer is not kept forever */
	if (run.cap > (1u << 20)) {
		mg_buf_free(&run);
		mg_buf_init(&run, 0);
	}
	a->run = run;
}

/* Puts the written line buffers back for the loop (a->mu held); frees
 * what does not fit. */
static void give_back(struct mg_audit *a, struct qitem *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!items[i].line)
			continue;
		if (a->recycled && a->n_recycled < RECYCLE_MAX)
			a->recycled[a->n_recycled++] = items[i].line;
		else
			free(items[i].line);
		items[i].line = NULL;
	}
}

/* The earliest due time of the local sinks' pending syncs, or 0. */
static uint64_t local_due(struct mg_audit *a)
{
	uint64_t due = 0;
	for (size_t s = 0; s < a->n_local; s++) {
		uint64_t d =
		    a->local[s].ops->due_us ? a->local[s].ops->due_us(a->local[s].self) : 0;
		if (d && (!due || d < due))
			due = d;
	}
	return due;
}

static void flush_local(struct mg_audit *a)
{
	for (size_t s = 0; s < a->n_local; s++) {
		if (a->local[s].ops->flush)
			a->local[s].ops->flush(a->local[s].self);
	}
}

static void *writer_main(void *arg)
{
	struct mg_audit *a = arg;
	struct qitem *items = calloc(TAKE_MAX, sizeof *items);
	uint64_t interval_us = (uint64_t)a->cfg->export_interval_secs * 1000000u;
	uint64_t head_us = (uint64_t)a->cfg->head_log_interval_secs * 1000000u;
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (a->count == 0 && !a->stopping && !a->reopen_req && !a->head_req) {
			uint64_t now = mg_now_us(), wait_us = 3600ull * 1000000u;
			bool pending = a->has_http &&
			               (a->batch.n || (a->spool && mg_audit_spool_files(a->spool)));
			if (pending) {
				uint64_t due = a->batch_since_us + interval_us;
				wait_us = due > now ? due - now : 0;
			}
			if (head_us && a->chain) {
				uint64_t due = a->last_head_log_us + head_us;
				uint64_t w = due > now ? due - now : 0;
				if (w < wait_us)
					wait_us = w;
			}
			/* a file written since its last sync is synced in time */
			uint64_t sync_due = local_due(a);
			if (sync_due) {
				uint64_t w = sync_due > now ? sync_due - now : 0;
				if (w < wait_us)
					wait_us = w;
			}
			if (wait_us == 0)
				break;
			struct timespec ts;
			deadline_after_ms(&ts, (wait_us + 999) / 1000);
			a->sleeping = true;
			pthread_cond_timedwait(&a->not_empty, &a->mu, &ts);
			a->sleeping = false;
		}
		size_t n = 0;
		while (a->count && n < TAKE_MAX && items) {
			items[n++] = a->q[a->head];
			a->head = (a->head + 1) % a->cap;
			a->count--;
		}
		atomic_store(&a->depth, a->count);
		bool stop = a->stopping && a->count == 0;
		bool reopen = a->reopen_req, head = a->head_req;
		a->reopen_req = a->head_req = false;
		pthread_cond_broadcast(&a->not_full);
		pthread_mutex_unlock(&a->mu);

		if (n)
			process(a, items, n);
		else
			flush_local(a); /* a sync that came due */
		if (reopen) {
			for (size_t s = 0; s < a->n_local; s++) {
				if (a->local[s].ops->reopen)
					a->local[s].ops->reopen(a->local[s].self);
			}
		}
		uint64_t now = mg_now_us();
		if (head || (head_us && a->chain && now - a->last_head_log_us >= head_us))
			log_head(a);
		if (a->has_http && !stop &&
		    (a->batch.n || (a->spool && mg_audit_spool_files(a->spool))) &&
		    now - a->batch_since_us >= interval_us)
			export_flush(a, false);
		pthread_mutex_lock(&a->mu);
		give_back(a, items, n);
		if (stop) {
			pthread_mutex_unlock(&a->mu);
			break;
		}
		if (n) {
			/* group commit: let more records arrive before the next run */
			struct timespec ts;
			deadline_after_ms(&ts, LINGER_MS);
			while (!a->stopping && !a->reopen_req && !a->head_req &&
			       a->count < a->cap / 2) {
				if (pthread_cond_timedwait(&a->not_empty, &a->mu, &ts) == ETIMEDOUT)
					break;
			}
		}
	}
	if (a->has_http)
		export_flush(a, true);
	log_head(a);
	free(items);
	return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static void free_sinks(struct mg_audit *a)
{
	for (size_t s = 0; s < a->n_local; s++) {
		if (a->local[s].ops->free)
			a->local[s].ops->free(a->local[s].self);
	}
	a->n_local = 0;
	if (a->has_http && a->http.ops->free)
		a->http.ops->free(a->http.self);
	a->has_http = false;
}

struct mg_audit *mg_audit_new(const struct mg_audit_config *cfg, char *err, size_t err_size)
{
	return mg_audit_start(cfg, NULL, err, err_size);
}

struct mg_audit *mg_audit_start(const struct mg_audit_config *cfg,
                                const struct mg_audit_sink *export_sink, char *err, size_t err_size)
{
	err[0] = '\0';
	if (!cfg->enabled)
		return NULL;
	struct mg_audit *a = calloc(1, sizeof *a);
	if (!a) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	a->cfg = cfg;
	a->cap = (size_t)cfg->queue_size;
	a->q = calloc(a->cap, sizeof *a->q);
	a->recycled = calloc(RECYCLE_MAX, sizeof *a->recycled);
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->not_empty, &ca);
	pthread_cond_init(&a->not_full, &ca);
	pthread_condattr_destroy(&ca);
	mg_audit_batch_init(&a->batch);
	mg_buf_init(&a->run, 0);
	a->sha = mg_sha256_ctx_new();
	if (cfg->auth_success_interval_secs > 0) {
		a->seen = malloc(sizeof *a->seen);
		if (a->seen)
			mg_audit_seen_init(a->seen,
			                   (uint64_t)cfg->auth_success_interval_secs * 1000000u);
	}
	memcpy(a->prev, mg_audit_genesis, sizeof a->prev);
	a->chain = cfg->hash_chain;
	if (mg_random_bytes(&a->rng, sizeof a->rng) < 0 || a->rng == 0)
		a->rng = 0x9e3779b97f4a7c15ull;
	if (!a->q) {
		snprintf(err, err_size, "out of memory");
		goto fail;
	}
	size_t ei;
	bool ep;
	char why[400];
	a->rd =
	    mg_audit_redactor_new(&cfg->redact_paths, &cfg->redact_patterns, cfg->include_arguments,
	                          cfg->include_results, why, sizeof why, &ei, &ep);
	if (!a->rd) {
		snprintf(err, err_size, "audit.%s[%zu]: %s",
		         ep ? "redact_paths" : "redact_patterns", ei, why);
		goto fail;
	}
	if (cfg->stdout_enabled)
		mg_audit_sink_stdout(&a->local[a->n_local++]);
	if (cfg->file) {
		if (a->chain) {
			uint64_t seq = 0;
			int hr = mg_audit_read_head(cfg->file, a->prev, &seq, why, sizeof why);
			if (hr < 0) {
				snprintf(
				    err, err_size,
				    "audit.file %s: %s (hash_chain = true continues the chain in "
				    "the file; move the file away to start a new chain)",
				    cfg->file, why);
				goto fail;
			}
			if (hr > 0) {
				a->seq = seq;
				mg_log_info("audit: continuing the hash chain of %s at seq %llu",
				            cfg->file, (unsigned long long)seq + 1);
			}
		}
		if (mg_audit_sink_file(&a->local[a->n_local], cfg->file, cfg->fsync,
		                       cfg->fsync_interval_ms, err, err_size) < 0)
			goto fail;
		a->n_local++;
	}
	if (cfg->export_url || export_sink) {
		if (export_sink)
			a->http = *export_sink;
		else if (mg_audit_sink_http(&a->http, cfg, err, err_size) < 0)
			goto fail;
		a->has_http = true;
		if (cfg->spool_dir) {
			a->spool = mg_audit_spool_open(
			    cfg->spool_dir, (uint64_t)cfg->spool_max_bytes, err, err_size);
			if (!a->spool)
				goto fail;
			atomic_store(&a->spool_pending, mg_audit_spool_records(a->spool));
			if (mg_audit_spool_files(a->spool))
				mg_log_info(
				    "audit: %llu record(s) in the spool %s will be sent first",
				    (unsigned long long)mg_audit_spool_records(a->spool),
				    cfg->spool_dir);
		}
	}
	a->batch_since_us = a->last_head_log_us = mg_now_us();
	if (pthread_create(&a->thread, NULL, writer_main, a) != 0) {
		snprintf(err, err_size, "cannot start the audit writer thread");
		goto fail;
	}
	a->started = true;
	return a;
fail:
	mg_audit_free(a);
	return NULL;
}

void mg_audit_free(struct mg_audit *a)
{
	if (!a)
		return;
	if (a->started) {
		pthread_mutex_lock(&a->mu);
		a->stopping = true;
		pthread_cond_broadcast(&a->not_empty);
		pthread_cond_broadcast(&a->not_full);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thread, NULL);
	}
	for (size_t i = 0; i < a->count; i++)
		free(a->q[(a->head + i) % a->cap].line);
	for (size_t i = 0; i < a->n_recycled; i++)
		free(a->recycled[i]);
	free(a->recycled);
	for (size_t i = 0; i < a->n_stash; i++)
		free(a->stash[i]);
	free_sinks(a);
	mg_audit_spool_close(a->spool);
	mg_audit_batch_free(&a->batch);
	mg_buf_free(&a->run);
	mg_sha256_ctx_free(a->sha);
	free(a->seen);
	mg_audit_redactor_free(a->rd);
	pthread_cond_destroy(&a->not_empty);
	pthread_cond_destroy(&a->not_full);
	pthread_mutex_destroy(&a->mu);
	free(a->q);
	free(a);
}
