/*
 * writer.c - the audit queue and its writer thread.
 *
 * The loop thread packs an event (event.c: its strings copied raw behind
 * a fixed header, or a tools/call's members as the JSON it escaped once
 * for all the call's records; arguments and result redacted and dumped
 * first, when recorded) straight into a byte ring with one producer (the
 * loop) and one consumer (the writer): no lock and no allocation per
 * event on the loop, which pays only for the copy. The ring holds at most
 * `queue_size` events (and, in bytes, about 160 per event, a power of two;
 * an event bigger than an eighth of it travels by pointer). When it is
 * full, `overflow = "drop"` drops the event at once and `overflow =
 * "block"` waits at most `block_timeout_ms` for room and then drops it;
 * every drop is counted (mcp_guard_audit_dropped_total) and logged, at
 * most once per 10 s with the count since the last log line. The writer
 * is woken only when it sleeps on an empty ring, or lingers while the
 * ring fills past half; the loop publishes a record without a fence, and
 * the writer's first nap after going idle covers the one race that
 * leaves (see ring_commit).
 *
 * The writer thread serializes a run of packs (the fixed serializer of
 * event.c, into one buffer reused from run to run), adds the hash-chain
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
#define NAP_MS            2 /* the first wait of an idle writer (see ring_commit) */

enum { OVERFLOW_DROP, OVERFLOW_BLOCK };

#define RING_BYTES_PER_EVENT 256 /* a tools/call pack takes 170-250 bytes */
#define RING_MIN             (64u * 1024)
#define RING_MAX             (256u * 1024 * 1024)
#define RUN_BYTES            (1u << 20) /* a run stops growing past this */

/* A record in the ring: this header, then a pack (REC_PACK) or a pointer
 * to one (REC_FAR, malloc'd by the loop, freed by the writer); REC_WRAP
 * fills the ring's end when the next record does not fit there. `size`
 * counts the header and is a multiple of 8. */
enum { REC_WRAP, REC_PACK, REC_FAR };
struct rec {
	uint32_t size;
	uint32_t kind;
};
#define REC_HDR sizeof(struct rec)

/* the writer's `sleeping`: how a new record should wake it */
enum { AWAKE, IDLE, LINGERING };

struct mg_audit {
	const struct mg_audit_config *cfg;
	struct mg_audit_redactor *rd;

	/* The ring and its indexes: `tail` (bytes ever written) and `pushed`
	 * (events) are the loop's, `head` and `popped` the writer's; each side
	 * keeps its own copy and publishes it. */
	char *ring;
	size_t ring_size, ring_mask;
	size_t cap; /* events */
	_Alignas(64) _Atomic uint64_t tail;
	_Atomic uint64_t pushed;
	uint64_t tail_own, pushed_own; /* loop thread only */
	_Alignas(64) _Atomic uint64_t head;
	_Atomic uint64_t popped;
	uint64_t head_own, popped_own; /* writer thread only */
	_Atomic int sleeping;          /* AWAKE, IDLE, LINGERING */
	_Atomic bool want_room;        /* the loop waits for room (overflow = block) */

	/* for sleeping and waking only, and the writer's flags */
	_Alignas(64) pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	bool stopping, reopen_req, head_req;
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
	bool export_down;          /* the last attempt failed: batches go to the spool */
	uint64_t retry_at_us;      /* when the collector is tried again (one attempt) */
	struct mg_sha256_ctx *sha; /* the chain's digest state, reused */
	struct mg_buf run;         /* a run of lines, reused */
	size_t *ends;              /* where each line of the run ends (TAKE_MAX) */

	/* loop thread only */
	uint64_t drop_logged_us, drops_unlogged;
	struct mg_audit_seen *seen; /* which auth_success to record */

	_Atomic uint64_t written, exported, spooled, spool_pending, dropped, export_errors,
	    write_errors;
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

/* The ring bytes a record of `need` bytes takes at the tail now (with
 * the wrap filler when it does not fit before the end), or 0 when the
 * ring cannot take it. */
static size_t ring_take(struct mg_audit *a, size_t need)
{
	uint64_t head = atomic_load(&a->head);
	uint64_t popped = atomic_load(&a->popped);
	size_t to_end = a->ring_size - (size_t)(a->tail_own & a->ring_mask);
	size_t take = need <= to_end ? need : to_end + need;
	if (a->pushed_own - popped >= a->cap || a->tail_own + take - head > a->ring_size)
		return 0;
	return take;
}

static void wake_writer(struct mg_audit *a)
{
	pthread_mutex_lock(&a->mu);
	pthread_cond_signal(&a->not_empty);
	pthread_mutex_unlock(&a->mu);
}

/* overflow = "block": waits at most block_timeout_ms for room. */
static size_t wait_for_room(struct mg_audit *a, size_t need)
{
	struct timespec ts;
	deadline_after_ms(&ts, (uint64_t)a->cfg->block_timeout_ms);
	size_t take = 0;
	atomic_store(&a->want_room, true);
	pthread_mutex_lock(&a->mu);
	pthread_cond_signal(&a->not_empty); /* a lingering writer drains now */
	while (!(take = ring_take(a, need)) && !a->stopping) {
		if (pthread_cond_timedwait(&a->not_full, &a->mu, &ts) == ETIMEDOUT) {
			take = ring_take(a, need);
			break;
		}
	}
	pthread_mutex_unlock(&a->mu);
	atomic_store(&a->want_room, false);
	return take;
}

/* Room at the tail for a record of `need` bytes (8-aligned), after the
 * wrap filler when one is due; NULL when full (the policy applied). */
static char *ring_reserve(struct mg_audit *a, size_t need, size_t *take)
{
	*take = ring_take(a, need);
	if (!*take && a->cfg->overflow == OVERFLOW_BLOCK)
		*take = wait_for_room(a, need);
	if (!*take)
		return NULL;
	size_t off = (size_t)(a->tail_own & a->ring_mask);
	if (*take != need) { /* the record starts the next lap */
		struct rec w = { (uint32_t)(a->ring_size - off), REC_WRAP };
		memcpy(a->ring + off, &w, sizeof w);
		off = 0;
	}
	return a->ring + off;
}

/* Publishes the record just written and wakes the writer when it waits
 * for one. */
static void ring_commit(struct mg_audit *a, size_t take)
{
	a->tail_own += take;
	a->pushed_own++;
	atomic_store_explicit(&a->pushed, a->pushed_own, memory_order_relaxed);
	/* No fence here: a locked instruction per record made the loop wait
	 * for the record's stores to reach memory (issue 12's benchmark). The
	 * load below may then pass the store, and see the writer AWAKE when it
	 * has just gone IDLE without seeing this record: the writer's first
	 * nap after going idle (NAP_MS) catches that record. */
	atomic_store_explicit(&a->tail, a->tail_own, memory_order_release);
	int s = atomic_load_explicit(&a->sleeping, memory_order_relaxed);
	if (s == IDLE || (s == LINGERING &&
	                  (a->pushed_own - atomic_load_explicit(&a->popped, memory_order_relaxed) >=
	                       a->cap / 2 ||
	                   a->tail_own - atomic_load_explicit(&a->head, memory_order_relaxed) >=
	                       a->ring_size / 2)))
		wake_writer(a);
}

void mg_audit_emit(struct mg_audit *a, const struct mg_audit_event *ev)
{
	if (!a)
		return;
	char *args = NULL, *result = NULL;
	size_t al = 0, rl = 0;
	if (ev->arguments && mg_audit_redactor_arguments(a->rd))
		args = mg_audit_json_text(a->rd, ev->arguments, &al);
	if (ev->result && mg_audit_redactor_results(a->rd))
		result = mg_audit_json_text(a->rd, ev->result, &rl);
	struct mg_audit_event lean;
	if (al + rl > MAX_EVENT_BYTES) {
		/* too large with its arguments or result: record the event without them */
		lean = *ev;
		lean.message = "arguments and result omitted: larger than 4 MiB";
		free(args);
		free(result);
		args = result = NULL;
		al = rl = 0;
		ev = &lean;
	}
	struct mg_audit_packing pk;
	mg_audit_pack_prepare(&pk, ev, args, al, result, rl);
	int64_t now = mg_unix_us_at(ev->at_us ? ev->at_us : mg_now_us());
	/* (the pad is the record's own: the writer's word reads never reach
	 * the next record, which the loop may be writing) */
	size_t need = (REC_HDR + pk.size + MG_AUDIT_PACK_PAD + 7) & ~(size_t)7;
	void *far = NULL;
	if (need > a->ring_size / 8) {
		/* outsized: the ring carries a pointer */
		far = malloc(pk.size + MG_AUDIT_PACK_PAD);
		if (!far) {
			count_drop(a, 1, "out of memory");
			goto out;
		}
		mg_audit_pack_write(&pk, ev, now, far);
		need = REC_HDR + sizeof far;
	}
	size_t take;
	char *r = ring_reserve(a, need, &take);
	if (!r) {
		free(far);
		count_drop(a, 1, "the audit queue is full (audit.queue_size)");
		goto out;
	}
	struct rec h = { (uint32_t)need, far ? REC_FAR : REC_PACK };
	memcpy(r, &h, sizeof h);
	if (far)
		memcpy(r + REC_HDR, &far, sizeof far);
	else
		mg_audit_pack_write(&pk, ev, now, r + REC_HDR);
	ring_commit(a, take);
out:
	free(args);
	free(result);
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
	uint64_t popped = atomic_load(&m->popped), pushed = atomic_load(&m->pushed);
	o->queue_depth = pushed > popped ? pushed - popped : 0;
	o->queue_size = a->cap;
	o->emitted = pushed;
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

/* Serializes (and chains) the pack at `pack` onto the run; false when
 * out of memory (the record is then dropped and counted). */
static bool serialize_one(struct mg_audit *a, const void *pack)
{
	struct mg_buf *run = &a->run;
	size_t start = run->len;
	int rc = mg_audit_pack_serialize(pack, run);
	if (rc == 0 && a->chain) {
		char hash[MG_AUDIT_HASH_HEX + 1];
		rc = mg_audit_chain_tail(a->sha, run, start, a->seq + 1, a->prev, hash);
		if (rc == 0) {
			a->seq++;
			memcpy(a->prev, hash, sizeof hash);
		}
	}
	if (rc < 0 || mg_buf_putc(run, '\n') < 0) {
		run->len = start;
		atomic_fetch_add(&a->dropped, 1);
		mg_log_error("audit: out of memory: 1 record dropped");
		return false;
	}
	return true;
}

/* Takes a run off the ring (at most TAKE_MAX records or about RUN_BYTES
 * of lines) and serializes it into a->run, line ends in a->ends; frees
 * the records' room at once (the sinks may be slow). Answers how many
 * records were taken; *lines how many lines the run holds. */
static size_t drain(struct mg_audit *a, size_t *lines)
{
	mg_buf_reset(&a->run);
	uint64_t head = a->head_own, tail = atomic_load(&a->tail);
	size_t n = 0, nl = 0;
	while (head != tail && n < TAKE_MAX && a->run.len < RUN_BYTES) {
		const char *r = a->ring + (size_t)(head & a->ring_mask);
		struct rec h;
		memcpy(&h, r, sizeof h);
		head += h.size;
		if (h.kind == REC_WRAP)
			continue;
		n++;
		void *far = NULL;
		if (h.kind == REC_FAR)
			memcpy(&far, r + REC_HDR, sizeof far);
		if (serialize_one(a, far ? far : r + REC_HDR))
			a->ends[nl++] = a->run.len;
		free(far);
	}
	a->head_own = head;
	a->popped_own += n;
	atomic_store_explicit(&a->popped, a->popped_own, memory_order_relaxed);
	atomic_store(&a->head, head); /* seq_cst: before reading `want_room` */
	if (atomic_load(&a->want_room)) {
		pthread_mutex_lock(&a->mu);
		pthread_cond_broadcast(&a->not_full);
		pthread_mutex_unlock(&a->mu);
	}
	*lines = nl;
	return n;
}

/* Writes the run's lines to the local sinks (one write each) and adds
 * them to the export batch. */
static void process(struct mg_audit *a, size_t lines)
{
	struct mg_buf *run = &a->run;
	if (run->len) {
		for (size_t s = 0; s < a->n_local; s++) {
			if (a->local[s].ops->write(a->local[s].self, run->data, run->len) < 0) {
				atomic_fetch_add(&a->write_errors, 1);
				mg_log_error("audit: cannot write to %s: %s", a->local[s].ops->name,
				             strerror(errno));
			}
			if (a->local[s].ops->flush)
				a->local[s].ops->flush(a->local[s].self);
		}
		if (a->n_local)
			atomic_fetch_add(&a->written, lines);
	}
	for (size_t i = 0; a->has_http && i < lines; i++) {
		size_t start = i ? a->ends[i - 1] : 0;
		if (a->batch.n == 0)
			a->batch_since_us = mg_now_us();
		mg_audit_batch_add(&a->batch, run->data + start, a->ends[i] - start - 1);
		if (a->batch.n >= (size_t)a->cfg->export_batch_size)
			export_flush(a, false);
	}
	/* a burst's buffer is not kept forever */
	if (run->cap > 2 * RUN_BYTES) {
		mg_buf_free(run);
		mg_buf_init(run, 0);
	}
}

/* true when the ring holds no record (writer thread). */
static bool ring_empty(struct mg_audit *a)
{
	return atomic_load(&a->tail) == a->head_own;
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
	pthread_setname_np(pthread_self(), "mg-audit"); /* top -H, ps -L, perf */
	uint64_t interval_us = (uint64_t)a->cfg->export_interval_secs * 1000000u;
	uint64_t head_us = (uint64_t)a->cfg->head_log_interval_secs * 1000000u;
	pthread_mutex_lock(&a->mu);
	for (;;) {
		bool napped = false;
		while (!a->stopping && !a->reopen_req && !a->head_req) {
			atomic_store(&a->sleeping, IDLE); /* seq_cst: before reading the tail */
			if (!ring_empty(a))
				break;
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
			/* a short nap first: a record the loop published as this
			 * thread went idle is seen after it (see ring_commit) */
			bool nap = !napped && wait_us > NAP_MS * 1000u;
			if (nap)
				wait_us = NAP_MS * 1000u;
			napped = true;
			struct timespec ts;
			deadline_after_ms(&ts, (wait_us + 999) / 1000);
			if (pthread_cond_timedwait(&a->not_empty, &a->mu, &ts) == ETIMEDOUT && !nap)
				break;
		}
		atomic_store(&a->sleeping, AWAKE);
		/* the loop emits nothing once stopping is set (mg_audit_free runs on
		 * it): what is in the ring then is all there will be */
		bool stopping = a->stopping;
		bool reopen = a->reopen_req, head = a->head_req;
		a->reopen_req = a->head_req = false;
		pthread_mutex_unlock(&a->mu);

		size_t lines, n = drain(a, &lines);
		bool stop = stopping && ring_empty(a);
		if (n)
			process(a, lines);
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
		if (stop)
			break;
		pthread_mutex_lock(&a->mu);
		if (n && !stopping) {
			/* group commit: let more records arrive before the next run
			 * (the loop wakes the writer when the ring fills past half) */
			struct timespec ts;
			deadline_after_ms(&ts, LINGER_MS);
			atomic_store(&a->sleeping, LINGERING);
			while (!a->stopping && !a->reopen_req && !a->head_req &&
			       !atomic_load(&a->want_room)) {
				if (pthread_cond_timedwait(&a->not_empty, &a->mu, &ts) == ETIMEDOUT)
					break;
				if (atomic_load(&a->pushed) - a->popped_own >= a->cap / 2 ||
				    atomic_load(&a->tail) - a->head_own >= a->ring_size / 2)
					break;
			}
			atomic_store(&a->sleeping, AWAKE);
		}
	}
	if (a->has_http)
		export_flush(a, true);
	log_head(a);
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
	/* (its two indexes on cache lines of their own) */
	size_t asize = (sizeof(struct mg_audit) + 63) & ~(size_t)63;
	struct mg_audit *a = aligned_alloc(64, asize);
	if (!a) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	memset(a, 0, asize);
	a->cfg = cfg;
	a->cap = (size_t)cfg->queue_size;
	a->ring_size = RING_MIN;
	while (a->ring_size < RING_MAX && a->ring_size < a->cap * RING_BYTES_PER_EVENT)
		a->ring_size *= 2;
	a->ring_mask = a->ring_size - 1;
	a->ring = malloc(a->ring_size);
	a->ends = calloc(TAKE_MAX, sizeof *a->ends);
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
	if (!a->ring || !a->ends) {
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
	/* what the writer did not take (it was never started) */
	for (uint64_t h = a->head_own; a->ring && h != atomic_load(&a->tail);) {
		struct rec r;
		memcpy(&r, a->ring + (size_t)(h & a->ring_mask), sizeof r);
		if (r.kind == REC_FAR) {
			void *far;
			memcpy(&far, a->ring + (size_t)(h & a->ring_mask) + REC_HDR, sizeof far);
			free(far);
		}
		h += r.size;
	}
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
	free(a->ring);
	free(a->ends);
	free(a);
}
