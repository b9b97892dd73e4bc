/*
 * pins.c - tool-definition pinning (see pins.h).
 *
 * Why: an MCP server can change what a tool says it does after a user has
 * trusted it (a "rug pull": the description of `read_file` starts telling
 * the model to send ~/.ssh somewhere). The gateway pins the hash of each
 * tool's definition on first sight (trust on first use) and notices every
 * later change; the operator approves changes with the CLI.
 *
 * State: a jansson object servers → tools → entry, the very shape of the
 * file, so lookups are hash lookups and saving is one json_dumps:
 *
 *   {"version":1,"servers":{"files":{"read_file":{"sha256":"…",
 *     "pinned_at":"2026-12-04T18:00:00Z","pending":"…","changed_at":"…"}}}}
 *
 * Saving: the event loop never writes. A change marks the state dirty; at
 * the end of mg_pins_check / mg_pins_filter a deep copy is handed to a
 * worker thread through a one-slot queue (a newer snapshot replaces one not
 * yet written: latest wins). The worker, under flock on "<file>.lock",
 * re-reads the file, merges approvals found there (below), and replaces the
 * file (tmp, fsync, rename, 0600).
 *
 * Merge (worker and SIGHUP reload): the CLI approves on the file while the
 * gateway runs, so neither may overwrite the other. Per tool: an entry only
 * on one side is kept; when both pin different hashes, the file's wins if
 * its pinned_at is later or it equals the pending hash in memory (an
 * approval); a pending hash equal to the winning pin is cleared. Removing
 * entries by hand therefore takes a restart.
 *
 * Names and hashes from upstreams are untrusted text: names are bounded,
 * and logged with control characters replaced.
 */
#include "gateway/pins.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "util/file.h"
#include "util/log.h"

#define TIME_LEN 20 /* 2026-12-04T18:00:00Z */

struct mg_pins {
	char *path;
	json_t *servers; /* server → tool → entry */
	size_t count;    /* pinned tools */
	bool dirty;      /* changed since the last snapshot was queued */

	/* The worker and its one-slot queue (under mu). */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool started;
	bool stop;
	bool busy;      /* the worker is writing a snapshot */
	json_t *queued; /* the next snapshot (a whole document), or NULL */
	int last_rc;
	char last_err[256];
};

/* ---- small pieces --------------------------------------------------------------------- */

static void fmt_time(int64_t now, char out[TIME_LEN + 1])
{
	time_t t = (time_t)now;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, TIME_LEN + 1, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static bool time_ok(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
	if (strlen(s) != TIME_LEN)
		return false;
	for (size_t i = 0; i < TIME_LEN; i++) {
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
			return false;
	}
	return true;
}

static bool hash_ok(const char *s)
{
	if (strlen(s) != MG_PINS_HASH_LEN)
		return false;
	for (const char *c = s; *c; c++) {
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
			return false;
	}
	return true;
}

static const char *get_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

/* `s` for a log line: at most 64 bytes, control characters and quotes replaced. */
static const char *printable(const char *s, char out[68])
{
	size_t i = 0;
	for (; i < 64 && s[i]; i++)
		out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '"') ? '?' : s[i];
	if (s[i]) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
	return out;
}

int mg_pins_hash(const json_t *tool, char out[MG_PINS_HASH_LEN + 1])
{
	static const char *const members[] = { "name",        "title",        "description",
		                               "inputSchema", "outputSchema", "annotations" };
	int rc = -1;
	char *text = NULL;
	json_t *canon = json_object();
	if (!json_is_object(tool) || !canon)
		goto out;
	for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
		json_t *v = json_object_get(tool, members[i]);
		if (v && json_object_set(canon, members[i], v) < 0)
			goto out;
	}
	text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		goto out;
	uint8_t h[MG_SHA256_LEN];
	mg_sha256(text, strlen(text), h);
	for (size_t i = 0; i < MG_SHA256_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
	rc = 0;
out:
	free(text);
	json_decref(canon);
	return rc;
}

/* ---- the file ------------------------------------------------------------------------- */

/* Checks one tool entry; the message names its place. */
static int check_entry(const char *path, const char *server, const char *tool, const json_t *e,
                       char *err, size_t n)
{
	const char *key;
	json_t *v;
	if (!json_is_object(e)) {
		snprintf(err, n, "%s: servers.%s.%s: expected an object", path, server, tool);
		return -1;
	}
	json_object_foreach((json_t *)e, key, v)
	{
		bool is_hash = !strcmp(key, "sha256") || !strcmp(key, "pending");
		bool is_time = !strcmp(key, "pinned_at") || !strcmp(key, "changed_at");
		if (!is_hash && !is_time) {
			snprintf(err, n,
			         "%s: servers.%s.%s: unknown member \"%s\" (expected sha256, "
			         "pinned_at, pending, changed_at)",
			         path, server, tool, key);
			return -1;
		}
		const char *s = json_string_value(v);
		if (!s || (is_hash && !hash_ok(s)) || (is_time && !time_ok(s))) {
			snprintf(err, n, "%s: servers.%s.%s.%s: expected %s", path, server, tool,
			         key,
			         is_hash ? "64 lowercase hex digits (SHA-256)"
			                 : "an RFC 3339 UTC time like \"2026-01-31T12:00:00Z\"");
			return -1;
		}
	}
	if (!json_object_get(e, "sha256") || !json_object_get(e, "pinned_at")) {
		snprintf(err, n, "%s: servers.%s.%s: sha256 and pinned_at are required", path,
		         server, tool);
		return -1;
	}
	if (!json_object_get(e, "pending") != !json_object_get(e, "changed_at")) {
		snprintf(err, n, "%s: servers.%s.%s: pending and changed_at go together", path,
		         server, tool);
		return -1;
	}
	return 0;
}

/* Parses a state file's text into its `servers` object (new reference) and
 * its number of pins. An empty file is an empty state. */
static json_t *parse_state(const char *path, const char *text, size_t len, size_t *count, char *err,
                           size_t n)
{
	json_error_t je;
	json_t *doc = NULL, *servers = NULL;
	*count = 0;
	if (len == 0)
		return json_object();
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!doc) {
		snprintf(err, n, "%s:%d:%d: %s", path, je.line, je.column, je.text);
		return NULL;
	}
	const char *key;
	json_t *v;
	if (!json_is_object(doc)) {
		snprintf(err, n, "%s: expected a JSON object {\"version\":1,\"servers\":{...}}",
		         path);
		goto fail;
	}
	json_object_foreach(doc, key, v)
	{
		if (strcmp(key, "version") && strcmp(key, "servers")) {
			snprintf(err, n, "%s: unknown member \"%s\" (expected version, servers)",
			         path, key);
			goto fail;
		}
	}
	json_t *ver = json_object_get(doc, "version");
	if (!json_is_integer(ver) || json_integer_value(ver) != 1) {
		snprintf(err, n,
		         "%s: version: expected 1 (this mcp-guard reads pin files of version 1)",
		         path);
		goto fail;
	}
	servers = json_object_get(doc, "servers");
	if (!json_is_object(servers)) {
		snprintf(err, n, "%s: servers: expected an object", path);
		goto fail;
	}
	const char *sname, *tname;
	json_t *tools, *e;
	json_object_foreach(servers, sname, tools)
	{
		if (!*sname || strlen(sname) > MG_PINS_NAME_MAX || !json_is_object(tools)) {
			snprintf(err, n,
			         "%s: servers.%s: expected an object of tools under a name of "
			         "1 to %d bytes",
			         path, sname, MG_PINS_NAME_MAX);
			goto fail;
		}
		json_object_foreach(tools, tname, e)
		{
			if (!*tname || strlen(tname) > MG_PINS_NAME_MAX) {
				snprintf(err, n, "%s: servers.%s: tool names have 1 to %d bytes",
				         path, sname, MG_PINS_NAME_MAX);
				goto fail;
			}
			if (check_entry(path, sname, tname, e, err, n) < 0)
				goto fail;
			if (++*count > MG_PINS_MAX) {
				snprintf(err, n, "%s: more than %d pinned tools", path,
				         MG_PINS_MAX);
				goto fail;
			}
		}
	}
	json_incref(servers);
	json_decref(doc);
	return servers;
fail:
	json_decref(doc);
	return NULL;
}

/* Reads and parses `path`; a missing file is an empty state. */
static json_t *load_state(const char *path, size_t *count, char *err, size_t n)
{
	struct mg_buf b;
	mg_buf_init(&b, MG_PINS_FILE_MAX);
	json_t *servers = NULL;
	int r = mg_file_read(path, MG_PINS_FILE_MAX, &b, err, n);
	if (r == 1) {
		*count = 0;
		servers = json_object();
	} else if (r == 0) {
		servers = parse_state(path, b.data ? b.data : "", b.len, count, err, n);
	}
	mg_buf_free(&b);
	return servers;
}

/* Takes approvals found in `disk` into `mine` (see the merge rule at the top). */
static void merge(json_t *mine, const json_t *disk)
{
	const char *sname, *tname;
	json_t *dtools, *d;
	json_object_foreach((json_t *)disk, sname, dtools)
	{
		json_t *mtools = json_object_get(mine, sname);
		if (!mtools) {
			json_object_set_new(mine, sname, json_deep_copy(dtools));
			continue;
		}
		json_object_foreach(dtools, tname, d)
		{
			json_t *m = json_object_get(mtools, tname);
			if (!m) {
				json_object_set_new(mtools, tname, json_deep_copy(d));
				continue;
			}
			const char *dsha = get_str(d, "sha256"), *msha = get_str(m, "sha256");
			if (!strcmp(dsha, msha))
				continue;
			if (strcmp(get_str(d, "pinned_at"), get_str(m, "pinned_at")) > 0 ||
			    !strcmp(dsha, get_str(m, "pending"))) {
				json_object_set_new(m, "sha256", json_string(dsha));
				json_object_set_new(m, "pinned_at",
				                    json_string(get_str(d, "pinned_at")));
				if (!strcmp(dsha, get_str(m, "pending"))) {
					json_object_del(m, "pending");
					json_object_del(m, "changed_at");
				}
			}
		}
	}
}

static size_t count_pins(const json_t *servers)
{
	size_t n = 0;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)servers, k, v) n += json_object_size(v);
	return n;
}

/* An exclusive lock on "<path>.lock" (the file itself is replaced by
 * rename, so it cannot carry the lock). The fd, or -1 with `err`. */
static int lock_file(const char *path, char *err, size_t n)
{
	char lp[4096];
	int k = snprintf(lp, sizeof lp, "%s.lock", path);
	if (k < 0 || (size_t)k >= sizeof lp) {
		snprintf(err, n, "path too long: %s", path);
		return -1;
	}
	int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, n, "cannot open %s: %s", lp, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			snprintf(err, n, "cannot lock %s: %s", lp, strerror(errno));
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* Writes `servers` as the whole file. */
static int store(const char *path, json_t *servers, char *err, size_t n)
{
	json_t *doc = json_pack("{s:i,s:O}", "version", 1, "servers", servers);
	char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	int rc = -1;
	if (!text) {
		snprintf(err, n, "out of memory");
		goto out;
	}
	size_t len = strlen(text);
	char *t = realloc(text, len + 2);
	if (!t) {
		snprintf(err, n, "out of memory");
		goto out;
	}
	text = t;
	memcpy(text + len, "\n", 2);
	rc = mg_file_replace(path, text, len + 1, 0600, err, n);
out:
	free(text);
	json_decref(doc);
	return rc;
}

/* Under the lock: merge what is on disk into `servers` and write it. */
static int save_merged(const char *path, json_t *servers, char *err, size_t n)
{
	int fd = lock_file(path, err, n);
	if (fd < 0)
		return -1;
	size_t count;
	char lerr[256];
	json_t *disk = load_state(path, &count, lerr, sizeof lerr);
	int rc = -1;
	if (!disk) {
		/* Never replace a file we cannot read: it may hold approvals. */
		snprintf(err, n, "not saved: %.200s", lerr);
		goto out;
	}
	merge(servers, disk);
	json_decref(disk);
	rc = store(path, servers, err, n);
out:
	close(fd);
	return rc;
}

/* ---- the worker ----------------------------------------------------------------------- */

static void *writer_main(void *arg)
{
	struct mg_pins *p = arg;
	pthread_setname_np(pthread_self(), "mg-pins");
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->queued && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!p->queued)
			break;
		json_t *snap = p->queued;
		p->queued = NULL;
		p->busy = true;
		pthread_mutex_unlock(&p->mu);
		char err[256] = "";
		int rc = save_merged(p->path, snap, err, sizeof err);
		json_decref(snap);
		if (rc < 0)
			mg_log_error("tool pinning: %s", err);
		pthread_mutex_lock(&p->mu);
		p->busy = false;
		p->last_rc = rc;
		snprintf(p->last_err, sizeof p->last_err, "%s", err);
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Hands a snapshot of a dirty state to the worker (starting it the first time). */
static void queue_save(struct mg_pins *p)
{
	if (!p->dirty)
		return;
	json_t *snap = json_deep_copy(p->servers);
	if (!snap) {
		mg_log_error("tool pinning: out of memory; %s not saved", p->path);
		return;
	}
	p->dirty = false;
	pthread_mutex_lock(&p->mu);
	if (!p->started) {
		if (pthread_create(&p->thread, NULL, writer_main, p) != 0) {
			pthread_mutex_unlock(&p->mu);
			json_decref(snap);
			p->dirty = true;
			mg_log_error("tool pinning: cannot start the writer thread; %s not saved",
			             p->path);
			return;
		}
		p->started = true;
	}
	json_decref(p->queued);
	p->queued = snap;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

int mg_pins_sync(struct mg_pins *p, char *err, size_t n)
{
	queue_save(p);
	pthread_mutex_lock(&p->mu);
	while (p->queued || p->busy)
		pthread_cond_wait(&p->cv, &p->mu);
	int rc = p->last_rc;
	if (rc < 0)
		snprintf(err, n, "%s", p->last_err);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* ---- the state ------------------------------------------------------------------------ */

struct mg_pins *mg_pins_open(const char *path, char *err, size_t n)
{
	struct mg_pins *p = calloc(1, sizeof *p);
	if (!p || !(p->path = strdup(path))) {
		snprintf(err, n, "out of memory");
		goto fail;
	}
	p->servers = load_state(path, &p->count, err, n);
	if (!p->servers)
		goto fail;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	return p;
fail:
	if (p)
		free(p->path);
	free(p);
	return NULL;
}

void mg_pins_free(struct mg_pins *p)
{
	if (!p)
		return;
	queue_save(p);
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_signal(&p->cv);
	bool started = p->started;
	pthread_mutex_unlock(&p->mu);
	if (started)
		pthread_join(p->thread, NULL);
	json_decref(p->queued);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	json_decref(p->servers);
	free(p->path);
	free(p);
}

/* One tool: the state, and when a change is seen for the first time
 * (`*fresh`), the pinned hash it differs from (`old`) and its own (`now_hash`). */
static enum mg_pin_state check_one(struct mg_pins *p, const char *server, const json_t *tool,
                                   int64_t now, bool *fresh, char old[MG_PINS_HASH_LEN + 1],
                                   char hash[MG_PINS_HASH_LEN + 1])
{
	*fresh = false;
	const char *name = json_string_value(json_object_get(tool, "name"));
	if (!name || !*name || strlen(name) > MG_PINS_NAME_MAX || !*server ||
	    strlen(server) > MG_PINS_NAME_MAX || mg_pins_hash(tool, hash) < 0)
		return MG_PIN_CHANGED;
	char when[TIME_LEN + 1];
	fmt_time(now, when);
	json_t *tools = json_object_get(p->servers, server);
	json_t *e = tools ? json_object_get(tools, name) : NULL;
	if (!e) {
		if (p->count >= MG_PINS_MAX)
			return MG_PIN_CHANGED;
		if (!tools) {
			tools = json_object();
			if (json_object_set_new(p->servers, server, tools) < 0)
				return MG_PIN_CHANGED;
		}
		e = json_pack("{s:s,s:s}", "sha256", hash, "pinned_at", when);
		if (json_object_set_new(tools, name, e) < 0)
			return MG_PIN_CHANGED;
		p->count++;
		p->dirty = true;
		return MG_PIN_NEW;
	}
	if (!strcmp(get_str(e, "sha256"), hash)) {
		if (json_object_get(e, "pending")) {
			/* Changed back to what was approved: nothing to approve any more. */
			json_object_del(e, "pending");
			json_object_del(e, "changed_at");
			p->dirty = true;
		}
		return MG_PIN_SAME;
	}
	if (strcmp(get_str(e, "pending"), hash)) {
		json_object_set_new(e, "pending", json_string(hash));
		json_object_set_new(e, "changed_at", json_string(when));
		p->dirty = true;
		*fresh = true;
		snprintf(old, MG_PINS_HASH_LEN + 1, "%s", get_str(e, "sha256"));
	}
	return MG_PIN_CHANGED;
}

enum mg_pin_state mg_pins_check(struct mg_pins *p, const char *server, const json_t *tool,
                                int64_t now)
{
	bool fresh;
	char old[MG_PINS_HASH_LEN + 1], hash[MG_PINS_HASH_LEN + 1];
	enum mg_pin_state st = check_one(p, server, tool, now, &fresh, old, hash);
	queue_save(p);
	return st;
}

bool mg_pins_pending(const struct mg_pins *p, const char *server, const char *tool)
{
	json_t *e = json_object_get(json_object_get(p->servers, server), tool);
	return e && json_object_get(e, "pending");
}

size_t mg_pins_filter(struct mg_pins *p, const char *server, int mode, json_t *tools, int64_t now,
                      mg_pins_on_change on_change, void *arg)
{
	size_t changed = 0, i = 0;
	if (mode == MG_PINNING_OFF || !json_is_array(tools))
		return 0;
	while (i < json_array_size(tools)) {
		json_t *tool = json_array_get(tools, i);
		bool fresh;
		char old[MG_PINS_HASH_LEN + 1], hash[MG_PINS_HASH_LEN + 1] = "";
		if (check_one(p, server, tool, now, &fresh, old, hash) != MG_PIN_CHANGED) {
			i++;
			continue;
		}
		changed++;
		const char *name = json_string_value(json_object_get(tool, "name"));
		char sb[68], tb[68];
		if (fresh) {
			mg_log_warn(
			    "tool pinning: server \"%s\" changed the definition of tool \"%s\" "
			    "(pinned sha256 %.12s, now %.12s); %s; approve with `mcp-guard "
			    "tools approve %s %s` and reload (SIGHUP)",
			    printable(server, sb), printable(name, tb), old, hash,
			    mode == MG_PINNING_BLOCK ? "hidden until approved"
			                             : "still listed (tool_pinning = warn)",
			    printable(server, sb), printable(name, tb));
			if (on_change)
				on_change(arg, server, name, old, hash);
		}
		if (mode == MG_PINNING_BLOCK)
			json_array_remove(tools, i);
		else
			i++;
	}
	queue_save(p);
	return changed;
}

int mg_pins_reload(struct mg_pins *p, char *err, size_t n)
{
	size_t count;
	json_t *disk = load_state(p->path, &count, err, n);
	if (!disk)
		return -1;
	merge(p->servers, disk);
	json_decref(disk);
	p->count = count_pins(p->servers);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of `o`, sorted (malloc'd array), or NULL when empty. */
static const char **sorted_keys(const json_t *o, size_t *n)
{
	*n = json_object_size(o);
	const char **keys = *n ? malloc(*n * sizeof *keys) : NULL;
	if (!keys) {
		*n = 0;
		return NULL;
	}
	size_t i = 0;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)o, k, v) keys[i++] = k;
	qsort(keys, *n, sizeof *keys, cmp_str);
	return keys;
}

void mg_pins_each(const struct mg_pins *p,
                  void (*fn)(void *arg, const char *server, const char *tool,
                             const struct mg_pin_info *info),
                  void *arg)
{
	size_t ns, nt;
	const char **servers = sorted_keys(p->servers, &ns);
	for (size_t i = 0; i < ns; i++) {
		json_t *tools = json_object_get(p->servers, servers[i]);
		const char **names = sorted_keys(tools, &nt);
		for (size_t j = 0; j < nt; j++) {
			json_t *e = json_object_get(tools, names[j]);
			struct mg_pin_info info = {
				.sha256 = get_str(e, "sha256"),
				.pinned_at = get_str(e, "pinned_at"),
				.pending = get_str(e, "pending"),
				.changed_at = get_str(e, "changed_at"),
			};
			fn(arg, servers[i], names[j], &info);
		}
		free(names);
	}
	free(servers);
}

int mg_pins_approve_file(const char *path, const char *server, const char *tool, int64_t now,
                         char *err, size_t n)
{
	int rc = -1;
	json_t *servers = NULL;
	int fd = lock_file(path, err, n);
	if (fd < 0)
		return -1;
	size_t count;
	servers = load_state(path, &count, err, n);
	if (!servers)
		goto out;
	json_t *e = json_object_get(json_object_get(servers, server), tool);
	if (!e) {
		snprintf(err, n, "%s: no pinned tool \"%s\" of server \"%s\"", path, tool, server);
		goto out;
	}
	if (!json_object_get(e, "pending")) {
		rc = 1;
		goto out;
	}
	char when[TIME_LEN + 1];
	fmt_time(now, when);
	json_object_set(e, "sha256", json_object_get(e, "pending"));
	json_object_set_new(e, "pinned_at", json_string(when));
	json_object_del(e, "pending");
	json_object_del(e, "changed_at");
	rc = store(path, servers, err, n);
out:
	json_decref(servers);
	close(fd);
	return rc;
}
