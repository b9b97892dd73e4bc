/*
 * stdio.c - stdio upstreams: MCP servers run as child processes speaking
 * newline-delimited JSON on stdin/stdout (see upstream.h, process.h).
 *
 * Each channel (the shared one, and in per_session mode one per session)
 * is a `struct stdio_chan` embedding `struct mg_channel`. The process is
 * supervised: when it dies, pending calls fail at once, and it is
 * restarted after an exponential backoff (reset once it stayed up 30 s),
 * with the handshake replayed. A dedicated channel being closed is never
 * restarted. The reader never waits for a client: channel callbacks only
 * queue output on bounded per-client buffers.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build-info.h"
#include "mcp/protocol.h"
#include "upstream/process.h"
#include "upstream/upstream.h"
#include "util/log.h"

#define STDIN_BACKLOG_MAX (64u * 1024 * 1024)
#define STDERR_LINE_MAX   4096
#define STOP_GRACE_MS     2000
#define STABLE_SECS       30
#define MAX_QUEUE         4096
#define PROBE_TIMEOUT_MS  5000

struct stdio_upstream;

struct stdio_chan {
	struct mg_channel ch; /* first: the channel is the chan */
	struct stdio_upstream *up;
	struct stdio_chan *prev, *next;
	struct mg_process *proc;
	struct bufferevent *in, *out, *err;
	struct event *restart_timer;
	struct event *probe_timer;
	unsigned restarts;
	time_t started;
	bool dedicated;
	bool closing;    /* no restart; freed once the process is reaped */
	bool discarding; /* skipping the rest of an oversized line */
	bool err_discarding;
	size_t scanned; /* leading bytes of stdout's buffer known to hold no newline */
};

struct stdio_upstream {
	struct mg_upstream base; /* first */
	struct stdio_chan *chans;
	size_t nchans;
};

static void chan_spawn(struct stdio_chan *c);

static struct stdio_upstream *sup(struct mg_upstream *up)
{
	return (struct stdio_upstream *)up;
}

/* ---- transport ------------------------------------------------------------------- */

static int chan_send(struct mg_channel *ch, const char *data, size_t len)
{
	struct stdio_chan *c = (struct stdio_chan *)ch;
	if (!c->in)
		return -1;
	struct evbuffer *out = bufferevent_get_output(c->in);
	if (evbuffer_get_length(out) + len > STDIN_BACKLOG_MAX) {
		mg_log_warn("%s: not reading its input (%zu bytes queued); message refused",
		            ch->name, evbuffer_get_length(out));
		return -1;
	}
	if (evbuffer_add(out, data, len) < 0 || evbuffer_add(out, "\n", 1) < 0)
		return -1;
	return 0;
}

static const struct mg_channel_ops stdio_chan_ops = { .send = chan_send };

static void close_pipes(struct stdio_chan *c)
{
	if (c->in) {
		bufferevent_free(c->in);
		c->in = NULL;
	}
	if (c->out) {
		bufferevent_free(c->out);
		c->out = NULL;
	}
	if (c->err) {
		bufferevent_free(c->err);
		c->err = NULL;
	}
}

/* The conversation is over for this process (EOF, protocol violation, or
 * exit): fail pending calls and make sure the process goes away. */
static void chan_lost(struct stdio_chan *c, const char *reason)
{
	close_pipes(c);
	if (c->proc)
		mg_process_stop(c->proc, STOP_GRACE_MS);
	if (c->ch.state != MG_CH_DOWN && c->ch.state != MG_CH_CLOSED)
		mg_channel_lost(&c->ch, reason, c->closing);
}

static void on_stdout(struct bufferevent *bev, void *arg)
{
	struct stdio_chan *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t max = (size_t)c->up->base.cfg->max_message_bytes;
	for (;;) {
		/* Search only what arrived since the last look: a large message
		 * comes in many reads, and rescanning from the start each time
		 * would be quadratic. */
		struct evbuffer_ptr from;
		evbuffer_ptr_set(in, &from, c->scanned, EVBUFFER_PTR_SET);
		struct evbuffer_ptr eol = evbuffer_search_eol(in, &from, NULL, EVBUFFER_EOL_LF);
		if (eol.pos < 0) {
			size_t have = evbuffer_get_length(in);
			c->scanned = have;
			if (have > max) {
				if (!c->discarding)
					mg_log_error("%s: message larger than %zu bytes "
					             "(upstream.max_message_bytes); dropped",
					             c->ch.name, max);
				c->discarding = true;
				evbuffer_drain(in, have);
				c->scanned = 0;
			}
			return;
		}
		size_t len = (size_t)eol.pos;
		c->scanned = 0; /* what follows this line is unscanned */
		if (c->discarding) {
			evbuffer_drain(in, len + 1);
			c->discarding = false;
			continue;
		}
		if (len > max) {
			mg_log_error("%s: message larger than %zu bytes; dropped", c->ch.name, max);
			evbuffer_drain(in, len + 1);
			continue;
		}
		char *line = (char *)evbuffer_pullup(in, (ev_ssize_t)len + 1);
		if (!line)
			return;
		size_t n = len;
		if (n && line[n - 1] == '\r')
			n--;
		if (n)
			mg_channel_receive(&c->ch, line, n);
		/* The callback may have closed this channel's pipes. */
		if (!c->out)
			return;
		evbuffer_drain(in, len + 1);
	}
}

static void on_stderr(struct bufferevent *bev, void *arg)
{
	struct stdio_chan *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
		if (!line) {
			if (evbuffer_get_length(in) > STDERR_LINE_MAX) {
				char buf[256];
				size_t k = evbuffer_remove(in, buf, sizeof buf - 1);
				buf[k] = '\0';
				if (!c->err_discarding)
					mg_log_info("upstream %s: %s…", c->ch.name, buf);
				c->err_discarding = true;
				evbuffer_drain(in, evbuffer_get_length(in));
			}
			return;
		}
		if (c->err_discarding)
			c->err_discarding = false;
		else if (len)
			mg_log_info("upstream %s: %.*s", c->ch.name, (int)(len > 1000 ? 1000 : len),
			            line);
		free(line);
	}
}

static void on_pipe_event(struct bufferevent *bev, short what, void *arg)
{
	struct stdio_chan *c = arg;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (bev == c->err) {
		bufferevent_free(c->err);
		c->err = NULL;
		return;
	}
	if (bev == c->in) {
		/* EPIPE: the child closed its stdin; stdout EOF follows. */
		bufferevent_free(c->in);
		c->in = NULL;
		return;
	}
	chan_lost(c, c->closing ? "upstream closed" : "upstream closed its output");
}

/* ---- supervision ------------------------------------------------------------------ */

static void chan_free(struct stdio_chan *c)
{
	struct stdio_upstream *u = c->up;
	close_pipes(c);
	if (c->restart_timer)
		event_free(c->restart_timer);
	if (c->probe_timer)
		event_free(c->probe_timer);
	mg_channel_deinit(&c->ch);
	if (c->prev)
		c->prev->next = c->next;
	else
		u->chans = c->next;
	if (c->next)
		c->next->prev = c->prev;
	u->nchans--;
	mg_upstream_forget_channel(&u->base, &c->ch, c->dedicated);
	free(c);
}

static void on_restart_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	chan_spawn(arg);
}

static void on_probe_timer(evutil_socket_t fd, short what, void *arg)
{
	struct stdio_chan *c = arg;
	(void)fd;
	(void)what;
	mg_channel_probe_timeout(&c->ch);
}

static void on_process_exit(struct mg_process *p, int status, void *arg)
{
	struct stdio_chan *c = arg;
	(void)p;
	c->proc = NULL;
	char how[96];
	mg_process_describe_status(status, how, sizeof how);
	if (c->closing) {
		mg_log_debug("%s: %s", c->ch.name, how);
		chan_lost(c, "upstream closed");
		chan_free(c);
		return;
	}
	mg_log_warn("%s: %s", c->ch.name, how);
	if (!c->dedicated) /* /health reports the upstream's own processes */
		snprintf(c->up->base.last_error, sizeof c->up->base.last_error, "process %s", how);
	char reason[160];
	snprintf(reason, sizeof reason, "upstream process %s", how);
	chan_lost(c, reason);
	if (time(NULL) - c->started >= STABLE_SECS)
		c->restarts = 0;
	long max_ms = (long)c->up->base.cfg->restart_max_backoff_secs * 1000;
	long delay = 100;
	for (unsigned i = 0; i < c->restarts && delay < max_ms; i++)
		delay *= 2;
	if (delay > max_ms)
		delay = max_ms;
	c->restarts++;
	c->up->base.restarts++;
	mg_log_info("%s: restarting in %ld ms", c->ch.name, delay);
	struct timeval tv = { .tv_sec = delay / 1000, .tv_usec = (delay % 1000) * 1000 };
	evtimer_add(c->restart_timer, &tv);
}

static void chan_spawn(struct stdio_chan *c)
{
	struct stdio_upstream *u = c->up;
	const struct mg_upstream_config *cfg = u->base.cfg;
	struct mg_process_spec spec = {
		.command = cfg->command, .args = &cfg->args, .env = &cfg->env, .cwd = cfg->cwd
	};
	int in_fd, out_fd, err_fd;
	char err[300];
	c->proc = mg_process_spawn(u->base.base, &spec, on_process_exit, c, &in_fd, &out_fd,
	                           &err_fd, err, sizeof err);
	if (!c->proc) {
		mg_log_error("upstream %s: %s", cfg->name, err);
		snprintf(u->base.last_error, sizeof u->base.last_error, "%s", err);
		/* Retry with backoff: the program may appear (npm install finishing). */
		long max_ms = (long)cfg->restart_max_backoff_secs * 1000;
		long delay = 1000L << (c->restarts < 5 ? c->restarts : 5);
		if (delay > max_ms)
			delay = max_ms;
		c->restarts++;
		struct timeval tv = { .tv_sec = delay / 1000, .tv_usec = (delay % 1000) * 1000 };
		evtimer_add(c->restart_timer, &tv);
		if (c->ch.hooks.on_down)
			c->ch.hooks.on_down(&c->ch, err, c->ch.hooks.arg);
		return;
	}
	c->started = time(NULL);
	snprintf(c->ch.name, sizeof c->ch.name, "%s (pid %d)", cfg->name,
	         (int)mg_process_pid(c->proc));
	c->in = bufferevent_socket_new(u->base.base, in_fd, BEV_OPT_CLOSE_ON_FREE);
	c->out = bufferevent_socket_new(u->base.base, out_fd, BEV_OPT_CLOSE_ON_FREE);
	c->err = bufferevent_socket_new(u->base.base, err_fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->in || !c->out || !c->err) {
		chan_lost(c, "out of memory");
		return;
	}
	c->scanned = 0;
	/* A pipe holds 64 KiB: take it in one read, not libevent's 16 KiB. */
	bufferevent_set_max_single_read(c->out, 65536);
	bufferevent_setcb(c->in, NULL, NULL, on_pipe_event, c);
	bufferevent_setcb(c->out, on_stdout, NULL, on_pipe_event, c);
	bufferevent_setcb(c->err, on_stderr, NULL, on_pipe_event, c);
	bufferevent_enable(c->in, EV_WRITE);
	bufferevent_enable(c->out, EV_READ);
	bufferevent_enable(c->err, EV_READ);
	mg_log_debug("%s: started", c->ch.name);
	mg_channel_connected(&c->ch);
	if (c->ch.probing && c->probe_timer) {
		struct timeval tv = { .tv_sec = PROBE_TIMEOUT_MS / 1000,
			              .tv_usec = (PROBE_TIMEOUT_MS % 1000) * 1000 };
		evtimer_add(c->probe_timer, &tv);
	}
}

static struct stdio_chan *chan_new(struct stdio_upstream *u, json_t *init_params,
                                   const struct mg_channel_hooks *hooks, bool dedicated, bool probe)
{
	struct stdio_chan *c = calloc(1, sizeof *c);
	if (!c) {
		json_decref(init_params);
		return NULL;
	}
	mg_channel_init(&c->ch, &stdio_chan_ops, hooks, init_params, u->base.max_depth, MAX_QUEUE);
	snprintf(c->ch.name, sizeof c->ch.name, "%s", u->base.cfg->name);
	c->ch.upstream = &u->base;
	c->up = u;
	c->dedicated = dedicated;
	c->restart_timer = evtimer_new(u->base.base, on_restart_timer, c);
	c->ch.probe = probe;
	if (probe)
		c->probe_timer = evtimer_new(u->base.base, on_probe_timer, c);
	c->next = u->chans;
	if (u->chans)
		u->chans->prev = c;
	u->chans = c;
	u->nchans++;
	if (dedicated)
		u->base.dedicated++;
	return c;
}

/* ---- ops ------------------------------------------------------------------------- */

/* The upstream's own channels (primary, shared, modern: upstream.c) get a
 * process each, started at once. */
static struct mg_channel *stdio_own_open(struct mg_upstream *up, const struct mg_channel_hooks *h,
                                         bool probe)
{
	struct stdio_chan *c =
	    chan_new(sup(up), mg_upstream_gateway_init_params(), h, false, probe);
	if (c)
		chan_spawn(c);
	return c ? &c->ch : NULL;
}

/* The process is alive (it answered, even if with a refusal). */
static bool stdio_own_alive(struct mg_upstream *up, struct mg_channel *ch)
{
	(void)up;
	struct stdio_chan *c = (struct stdio_chan *)ch;
	return c->in && !c->closing;
}

static void stdio_own_ready(struct mg_upstream *up, struct mg_channel *ch)
{
	(void)up;
	struct stdio_chan *c = (struct stdio_chan *)ch;
	if (c->probe_timer)
		evtimer_del(c->probe_timer);
}

static int stdio_start(struct mg_upstream *up, char *err, size_t err_size)
{
	struct mg_channel *ch = mg_upstream_own_channel(up, up->cfg->protocol == MG_PROTOCOL_AUTO);
	if (!ch) {
		snprintf(err, err_size, "out of memory");
		return -1;
	}
	up->primary = ch;
	struct stdio_chan *c = (struct stdio_chan *)ch;
	if (!c->proc && c->restarts == 1) {
		/* The first spawn failed outright: report it, keep retrying. */
		snprintf(err, err_size, "%.300s", up->last_error);
		return -1;
	}
	return 0;
}

static struct mg_channel *stdio_open(struct mg_upstream *up, json_t *init_params,
                                     const struct mg_channel_hooks *hooks, const char *identity,
                                     char *err, size_t err_size)
{
	(void)identity;
	struct stdio_upstream *u = sup(up);
	if (up->dedicated >= (size_t)up->cfg->max_processes) {
		json_decref(init_params);
		snprintf(err, err_size, "upstream %s has reached max_processes (%lld)",
		         up->cfg->name, (long long)up->cfg->max_processes);
		return NULL;
	}
	struct stdio_chan *c = chan_new(u, init_params, hooks, true, false);
	if (!c) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	chan_spawn(c);
	if (!c->proc) {
		snprintf(err, err_size, "%.300s", up->last_error);
		c->closing = true;
		mg_channel_lost(&c->ch, err, true);
		chan_free(c);
		return NULL;
	}
	return &c->ch;
}

static void chan_close(struct stdio_chan *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->ch.ending = true;
	evtimer_del(c->restart_timer);
	memset(&c->ch.hooks, 0, sizeof c->ch.hooks);
	/* Closing stdin asks the server to exit; process.c escalates. */
	if (c->in) {
		bufferevent_free(c->in);
		c->in = NULL;
	}
	if (c->ch.state != MG_CH_CLOSED)
		mg_channel_lost(&c->ch, "upstream closed", true);
	if (c->proc)
		mg_process_stop(c->proc, STOP_GRACE_MS);
	else
		chan_free(c);
}

static void stdio_close(struct mg_upstream *up, struct mg_channel *ch)
{
	(void)up;
	chan_close((struct stdio_chan *)ch);
}

static void stdio_health(struct mg_upstream *up, json_t *out)
{
	struct stdio_upstream *u = sup(up);
	json_object_set_new(out, "processes", json_integer((json_int_t)u->nchans));
	json_object_set_new(out, "sessions_processes", json_integer((json_int_t)up->dedicated));
	struct mg_channel *main_ch = up->shared ? up->shared : up->primary;
	if (main_ch) {
		struct stdio_chan *c = (struct stdio_chan *)main_ch;
		if (c->proc)
			json_object_set_new(out, "pid", json_integer(mg_process_pid(c->proc)));
	}
	if (up->modern && up->modern != main_ch) {
		struct stdio_chan *c = (struct stdio_chan *)up->modern;
		if (c->proc)
			json_object_set_new(out, "modern_pid",
			                    json_integer(mg_process_pid(c->proc)));
	}
}

static void stdio_stop(struct mg_upstream *up)
{
	struct stdio_upstream *u = sup(up);
	struct stdio_chan *c = u->chans, *next;
	for (; c; c = next) {
		next = c->next;
		chan_close(c);
	}
}

static bool stdio_idle(struct mg_upstream *up)
{
	return sup(up)->nchans == 0;
}

static void stdio_free(struct mg_upstream *up)
{
	struct stdio_upstream *u = sup(up);
	while (u->chans) {
		struct stdio_chan *c = u->chans;
		if (c->proc) {
			kill(-mg_process_pid(c->proc), SIGKILL);
			c->proc = NULL;
		}
		c->closing = true;
		chan_free(c);
	}
	free(u);
}

static const struct mg_upstream_ops stdio_ops = {
	.start = stdio_start,
	.own_open = stdio_own_open,
	.own_alive = stdio_own_alive,
	.own_ready = stdio_own_ready,
	.open = stdio_open,
	.close = stdio_close,
	.health = stdio_health,
	.stop = stdio_stop,
	.idle = stdio_idle,
	.free = stdio_free,
};

struct mg_upstream *mg_upstream_stdio_new(struct event_base *base,
                                          const struct mg_upstream_config *cfg,
                                          const struct mg_upstream_hooks *hooks, size_t max_depth)
{
	struct stdio_upstream *u = calloc(1, sizeof *u);
	if (!u)
		return NULL;
	u->base.ops = &stdio_ops;
	u->base.cfg = cfg;
	u->base.base = base;
	u->base.hooks = *hooks;
	u->base.max_depth = max_depth;
	return &u->base;
}
