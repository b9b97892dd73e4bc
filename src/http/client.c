/*
 * client.c - libcurl multi-socket on libevent (see client.h).
 *
 * The classic wiring: curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION) and when to time out (CURLMOPT_TIMERFUNCTION);
 * libevent tells curl when a socket is ready or the timer fired
 * (curl_multi_socket_action). Two rules from experience: never call
 * curl_multi_socket_action from inside the timer *callback curl calls*
 * (only arm the libevent timer there), and completed transfers are reaped
 * after every action. Callbacks to users run from a deferred event so they
 * never re-enter curl.
 *
 * libcurl is not linked: it is dlopen()ed the first time a configuration
 * needs outgoing HTTP (mg_fetcher_prepare), and every curl function is
 * called through the table `C`. Debian's libcurl brings 27 libraries
 * with it (gnutls, krb5, ldap, ssh2, ...) whose constructors and
 * relocations cost several MB of resident memory in every gateway, most of
 * which never fetch anything (systemd loads its optional libraries the same
 * way). curl's headers still give the types and constants; a curl function
 * named directly instead of through `C` fails to link, which keeps it so.
 */
#include "http/client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "http/h1client.h"
#include "util/buf.h"
#include "util/log.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_BYTES  (1024 * 1024)

#define CURL_SONAME        "libcurl.so.4"
#define CURL_MIN_VERSION   0x075500 /* 7.85.0: CURLOPT_PROTOCOLS_STR */
#define CURL_MIN_VERSION_S "7.85.0"

/* ---- libcurl, loaded on demand ------------------------------------------------------ */

/* Every curl function this file calls; each becomes a member of `C` with the
 * prototype from curl.h (the name without "curl_": a member named like a
 * curl.h type-checking macro would be expanded by it). */
#define CURL_FUNCTIONS(X)                                                                          \
	X(global_init)                                                                             \
	X(version_info)                                                                            \
	X(easy_init)                                                                               \
	X(easy_reset)                                                                              \
	X(easy_perform)                                                                            \
	X(easy_pause)                                                                              \
	X(easy_setopt)                                                                             \
	X(easy_getinfo)                                                                            \
	X(easy_cleanup)                                                                            \
	X(easy_strerror)                                                                           \
	X(multi_init)                                                                              \
	X(multi_setopt)                                                                            \
	X(multi_assign)                                                                            \
	X(multi_socket_action)                                                                     \
	X(multi_info_read)                                                                         \
	X(multi_add_handle)                                                                        \
	X(multi_remove_handle)                                                                     \
	X(multi_cleanup)                                                                           \
	X(slist_append)                                                                            \
	X(slist_free_all)                                                                          \
	X(url)                                                                                     \
	X(url_set)                                                                                 \
	X(url_get)                                                                                 \
	X(url_cleanup)                                                                             \
	X(free)

static struct {
	void *lib; /* NULL until loaded and initialised */
#define CURL_MEMBER(name) __typeof__(curl_##name) *name;
	CURL_FUNCTIONS(CURL_MEMBER)
#undef CURL_MEMBER
} C;

/* Process-wide, once, from the loop's thread (start or SIGHUP reload): like
 * the curl_global_init it runs, it must not race other threads. A failure
 * leaves nothing loaded, so a later reload tries again. */
static int curl_load(char *err, size_t err_size)
{
	if (C.lib)
		return 0;
	void *lib = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(err, err_size, "cannot load " CURL_SONAME ": %s", dlerror());
		return -1;
	}
	int rc = -1;
#define CURL_RESOLVE(name)                                                                         \
	if (!(C.name = (__typeof__(C.name))dlsym(lib, "curl_" #name))) {                           \
		snprintf(err, err_size, "cannot load " CURL_SONAME ": %s", dlerror());             \
		goto out;                                                                          \
	}
	CURL_FUNCTIONS(CURL_RESOLVE)
#undef CURL_RESOLVE
	const curl_version_info_data *v = C.version_info(CURLVERSION_NOW);
	if (v->version_num < CURL_MIN_VERSION) {
		snprintf(err, err_size, CURL_SONAME " is libcurl %s; %s or later is needed",
		         v->version, CURL_MIN_VERSION_S);
		goto out;
	}
	if (C.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, err_size, "libcurl: curl_global_init failed");
		goto out;
	}
	C.lib = lib;
	rc = 0;
out:
	if (rc < 0)
		dlclose(lib);
	return rc;
}

/* Easy handles kept for the next transfer: curl_easy_init and
 * curl_easy_cleanup cost ~12k instructions per transfer together (7.88,
 * callgrind); curl_easy_reset on a handle back from the multi costs ~3k.
 * Bounded: beyond this many idle handles the extra ones are cleaned up. */
#define SPARE_MAX 64

/* URLs parsed once (CURLOPT_CURLU): an upstream POSTs to the same URL for
 * every message, and curl parsing it again cost ~13k instructions per
 * transfer. Kept until the fetcher is freed, so a transfer never outlives
 * the handle it reads; a fetcher that fetches more distinct URLs than this
 * parses the others per transfer, as before. */
#define URLS_MAX 4

struct parsed_url {
	char *text;
	CURLU *u;
};

struct mg_fetcher {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct mg_fetch *list;
	CURL *spare[SPARE_MAX]; /* reset handles, not in the multi */
	size_t n_spare;
	struct parsed_url urls[URLS_MAX];
	size_t n_urls;
	bool in_action;
	struct mg_h1_pool *h1; /* the native client's connections, made on first use */
};

/* Streaming transfers run on one of two engines, chosen per URL by
 * mg_fetch_stream_start: libcurl, or the native HTTP/1.1 client for plain
 * http:// (h1client.h). The public calls on a fetch go through its table. */
struct stream_engine {
	void (*pause)(struct mg_fetch *h, bool pause);
	bool (*header)(struct mg_fetch *h, const char *name, char *out, size_t size);
	enum mg_fetch_failure (*failure)(const struct mg_fetch *h);
	void (*cancel)(struct mg_fetch *h);
};

struct mg_fetch {
	struct mg_fetcher *f;
	struct mg_fetch *prev, *next;
	const struct stream_engine *engine;
	struct mg_h1_fetch *h1;       /* native engine: the request */
	enum mg_fetch_failure h1_why; /* native engine: how it ended */
	CURL *easy;
	struct curl_slist *headers;
	struct mg_buf body;
	mg_fetch_fn cb;
	void *arg;
	bool allow_private; /* loopback and private ranges may be connected to */
	bool blocked;       /* the SSRF rule refused the address */
	bool too_big;
	char errbuf[CURL_ERROR_SIZE];
	struct event *done_ev; /* deferred completion (streams: deferred delivery) */
	CURLcode result;
	/* streaming transfers (mg_fetch_stream_start) */
	const struct mg_fetch_stream *stream;
	struct mg_buf hdrs;  /* the response's header lines, raw */
	bool head_complete;  /* the blank line after the headers was seen */
	bool head_delivered; /* on_head was called */
	bool finished;       /* curl completed the transfer (result is set) */
	bool paused;         /* the write callback paused it: delivery is behind */
	bool user_paused;    /* mg_fetch_pause: the reader asked to wait */
	bool in_callback;    /* a user callback is running: cancel defers the free */
	bool cancelled;
};

static void curl_pause(struct mg_fetch *h, bool pause);
static bool curl_header(struct mg_fetch *h, const char *name, char *out, size_t size);
static enum mg_fetch_failure curl_failure(const struct mg_fetch *h);
static void curl_cancel(struct mg_fetch *h);
static const struct stream_engine curl_engine = {
	.pause = curl_pause,
	.header = curl_header,
	.failure = curl_failure,
	.cancel = curl_cancel,
};

#define STREAM_RX_MAX  (256u * 1024) /* bytes buffered before the transfer is paused */
#define STREAM_HDR_MAX (32u * 1024)

/* Per-socket watcher: one event for the socket's life in curl's set,
 * re-armed only when curl changes its interest. */
struct sock_watch {
	struct event *ev;
	short kind; /* the events ev waits for */
};

/* ---- SSRF ---------------------------------------------------------------------------- */

static enum mg_addr_class v4_class(uint32_t a)
{
	/* host byte order */
	if ((a >> 24) == 0 ||                   /* 0.0.0.0/8 "this network" */
	    (a >> 16) == ((169u << 8) | 254) || /* 169.254.0.0/16 link-local, metadata */
	    (a >> 28) == 0xE ||                 /* 224.0.0.0/4 multicast */
	    (a >> 28) == 0xF ||                 /* 240.0.0.0/4 reserved, broadcast */
	    (a >> 8) ==
	        ((192u << 16) | 0)) /* 192.0.0.0/24 IETF (incl. 192.0.0.192 Oracle metadata) */
		return MG_ADDR_FORBIDDEN;
	if ((a >> 24) == 127 ||                 /* loopback */
	    (a >> 24) == 10 ||                  /* 10/8 */
	    (a >> 20) == ((172u << 4) | 1) ||   /* 172.16/12 */
	    (a >> 16) == ((192u << 8) | 168) || /* 192.168/16 */
	    (a >> 22) == ((100u << 2) | 1) ||   /* 100.64/10 CGNAT */
	    (a >> 17) == ((198u << 7) | 9))     /* 198.18/15 benchmarking */
		return MG_ADDR_PRIVATE;
	return MG_ADDR_PUBLIC;
}

enum mg_addr_class mg_fetch_classify(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return v4_class(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
	if (sa->sa_family != AF_INET6)
		return MG_ADDR_FORBIDDEN;
	const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	static const uint8_t zero[16];
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };
	static const uint8_t nat64[12] = { 0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t ec2[16] = { 0xFD, 0, 0x0E, 0xC2, 0, 0, 0,    0,
		                         0,    0, 0,    0,    0, 0, 0x02, 0x54 };
	if (memcmp(b, zero, 15) == 0)
		return b[15] == 1 ? MG_ADDR_PRIVATE : MG_ADDR_FORBIDDEN; /* ::1, :: */
	if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0) {
		/* An IPv4 address in IPv6 clothing is judged as IPv4. */
		uint32_t a =
		    (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
		return v4_class(a);
	}
	if (b[0] == 0x20 && b[1] == 0x02) { /* 2002::/16 6to4: the embedded IPv4 */
		uint32_t a =
		    (uint32_t)b[2] << 24 | (uint32_t)b[3] << 16 | (uint32_t)b[4] << 8 | b[5];
		enum mg_addr_class c = v4_class(a);
		return c == MG_ADDR_PUBLIC ? MG_ADDR_PUBLIC : MG_ADDR_FORBIDDEN;
	}
	if (memcmp(b, ec2, 16) == 0)
		return MG_ADDR_FORBIDDEN; /* fd00:ec2::254, the EC2 metadata service */
	if (b[0] == 0xFF)
		return MG_ADDR_FORBIDDEN; /* multicast */
	if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80)
		return MG_ADDR_FORBIDDEN; /* fe80::/10 link-local */
	if (b[0] == 0xFE && (b[1] & 0xC0) == 0xC0)
		return MG_ADDR_FORBIDDEN; /* fec0::/10 deprecated site-local */
	if ((b[0] & 0xFE) == 0xFC)
		return MG_ADDR_PRIVATE; /* fc00::/7 unique local */
	if (b[0] == 0x01 && b[1] == 0 && memcmp(b + 2, zero, 6) == 0)
		return MG_ADDR_FORBIDDEN; /* 100::/64 discard */
	return MG_ADDR_PUBLIC;
}

bool mg_fetch_address_allowed(const struct sockaddr *sa, bool allow_private)
{
	enum mg_addr_class c = mg_fetch_classify(sa);
	return c == MG_ADDR_PUBLIC || (c == MG_ADDR_PRIVATE && allow_private);
}

static curl_socket_t on_opensocket(void *clientp, curlsocktype purpose,
                                   struct curl_sockaddr *address)
{
	struct mg_fetch *h = clientp;
	(void)purpose;
	if (!mg_fetch_address_allowed(&address->addr, h->allow_private)) {
		h->blocked = true;
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

/* ---- libevent glue ----------------------------------------------------------------- */

static void check_done(struct mg_fetcher *f);
static const char *transfer_error(struct mg_fetch *h, char *buf, size_t size);

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
	struct mg_fetcher *f = arg;
	int flags =
	    (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int running;
	f->in_action = true;
	C.multi_socket_action(f->multi, fd, flags, &running);
	f->in_action = false;
	check_done(f);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct mg_fetcher *f = arg;
	int running;
	(void)fd;
	(void)what;
	f->in_action = true;
	C.multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	f->in_action = false;
	check_done(f);
}

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct mg_fetcher *f = userp;
	struct sock_watch *w = socketp;
	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (w) {
			event_free(w->ev);
			free(w);
			C.multi_assign(f->multi, s, NULL);
		}
		return 0;
	}
	short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) |
	             (what & CURL_POLL_OUT ? EV_WRITE : 0);
	if (!w) {
		w = calloc(1, sizeof *w);
		if (!w)
			return -1;
		w->ev = event_new(f->base, s, kind, on_socket_event, f);
		if (!w->ev) {
			free(w);
			return -1;
		}
		C.multi_assign(f->multi, s, w);
	} else if (w->kind == kind) {
		return 0; /* the same interest: no epoll_ctl */
	} else {
		/* One event per socket, re-armed in place (no free and new). */
		event_del(w->ev);
		event_assign(w->ev, f->base, s, kind, on_socket_event, f);
	}
	w->kind = kind;
	event_add(w->ev, NULL);
	return 0;
}

/* Curl asks for a timer: only arm it here (never act from this callback). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct mg_fetcher *f = userp;
	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(f->timer);
		return 0;
	}
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	evtimer_add(f->timer, &tv);
	return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct mg_fetch *h = userdata;
	size_t n = size * nmemb;
	if (h->stream) {
		/* Only buffer here (we are inside curl); the user sees the bytes
		 * from a deferred event. A full buffer pauses the transfer until
		 * the delivery caught up: that is the backpressure. */
		if (h->body.len && h->body.len + n > STREAM_RX_MAX) {
			h->paused = true;
			return CURL_WRITEFUNC_PAUSE;
		}
		if (mg_buf_append(&h->body, ptr, n) < 0)
			return 0;
		event_active(h->done_ev, 0, 0);
		return n;
	}
	if (mg_buf_append(&h->body, ptr, n) < 0) {
		h->too_big = true;
		return 0; /* aborts the transfer */
	}
	return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct mg_fetch *h = userdata;
	size_t n = size * nmemb;
	if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
		/* A new response head (after a 1xx, the final one follows). */
		mg_buf_reset(&h->hdrs);
		h->head_complete = false;
		return n;
	}
	if ((n == 2 && ptr[0] == '\r' && ptr[1] == '\n') || (n == 1 && ptr[0] == '\n')) {
		long code = 0;
		C.easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200) {
			h->head_complete = true;
			event_active(h->done_ev, 0, 0);
		}
		return n;
	}
	if (mg_buf_append(&h->hdrs, ptr, n) < 0)
		return 0; /* headers larger than STREAM_HDR_MAX: abort */
	return n;
}

/* A handle for a new transfer of `f`: a spare one (reset, so every option
 * is set again by easy_setup), else a new one. NULL when out of memory. */
static CURL *easy_get(struct mg_fetcher *f)
{
	if (f && f->n_spare)
		return f->spare[--f->n_spare];
	return C.easy_init();
}

/* Takes back a handle that is no longer in the multi (or never was). The
 * reset drops every option (the URL, headers, callbacks and their data,
 * CURLOPT_PRIVATE) and the transfer's state; what libcurl caches outside
 * the handle (the multi's connections and DNS) stays. */
static void easy_put(struct mg_fetcher *f, CURL *e)
{
	if (f && f->n_spare < SPARE_MAX) {
		C.easy_reset(e);
		f->spare[f->n_spare++] = e;
		return;
	}
	C.easy_cleanup(e);
}

/* `url` parsed once for `f`, or NULL: the caller then sets CURLOPT_URL
 * (and curl parses it, reporting any error as it always did). The flags
 * are those curl itself parses CURLOPT_URL with. */
static CURLU *url_parsed(struct mg_fetcher *f, const char *url)
{
	if (!f)
		return NULL;
	for (size_t i = 0; i < f->n_urls; i++)
		if (strcmp(f->urls[i].text, url) == 0)
			return f->urls[i].u;
	if (f->n_urls == URLS_MAX)
		return NULL;
	CURLU *u = C.url();
	char *text = strdup(url);
	if (!u || !text ||
	    C.url_set(u, CURLUPART_URL, url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) !=
	        CURLUE_OK) {
		free(text);
		if (u)
			C.url_cleanup(u);
		return NULL;
	}
	f->urls[f->n_urls++] = (struct parsed_url){ .text = text, .u = u };
	return u;
}

static void fetch_free(struct mg_fetch *h)
{
	struct mg_fetcher *f = h->f;
	if (h->prev)
		h->prev->next = h->next;
	else if (f->list == h)
		f->list = h->next;
	if (h->next)
		h->next->prev = h->prev;
	if (h->easy) {
		C.multi_remove_handle(f->multi, h->easy);
		easy_put(f, h->easy);
	}
	if (h->h1)
		mg_h1_cancel(h->h1);
	C.slist_free_all(h->headers);
	if (h->done_ev)
		event_free(h->done_ev);
	mg_buf_free(&h->body);
	mg_buf_free(&h->hdrs);
	free(h);
}

/* Streams: hands what curl buffered to the user, outside curl. */
static void on_stream_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct mg_fetch *h = arg;
	(void)fd;
	(void)what;
	const struct mg_fetch_stream *cb = h->stream;
	h->in_callback = true;
	if (!h->head_delivered && (h->head_complete || h->body.len || h->finished)) {
		long status = 0;
		C.easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
		h->head_delivered = true;
		if (status > 0 && cb->on_head && cb->on_head(h, status, h->arg) != 0)
			h->cancelled = true;
	}
	if (!h->cancelled && h->body.len && cb->on_body) {
		/* The user may read all of it; what it does not want it stops. */
		if (cb->on_body(h, h->body.data, h->body.len, h->arg) != 0)
			h->cancelled = true;
	}
	mg_buf_reset(&h->body);
	h->in_callback = false;
	if (h->cancelled) {
		fetch_free(h);
		return;
	}
	if (h->paused) {
		h->paused = false;
		/* May call on_write at once with what curl held back. */
		if (!h->user_paused)
			C.easy_pause(h->easy, CURLPAUSE_CONT);
	}
	if (h->finished && !h->body.len) {
		char err[CURL_ERROR_SIZE + 64];
		const char *e = transfer_error(h, err, sizeof err);
		h->in_callback = true;
		if (cb->on_end)
			cb->on_end(h, e, h->arg);
		fetch_free(h);
	}
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct mg_fetch *h = arg;
	(void)fd;
	(void)what;
	struct mg_fetch_result r = { 0 };
	char err[CURL_ERROR_SIZE + 64];
	C.easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &r.status);
	r.error = transfer_error(h, err, sizeof err);
	r.body = h->body.data ? h->body.data : "";
	r.len = h->body.len;
	mg_fetch_fn cb = h->cb;
	void *cbarg = h->arg;
	/* Remove before the callback so it may start another fetch safely. */
	h->cb = NULL;
	if (cb)
		cb(&r, cbarg);
	fetch_free(h);
}

static void check_done(struct mg_fetcher *f)
{
	CURLMsg *m;
	int left;
	while ((m = C.multi_info_read(f->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct mg_fetch *h = NULL;
		C.easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&h);
		if (!h)
			continue;
		if (h->stream) {
			if (!h->finished) {
				h->finished = true;
				h->result = m->data.result;
				event_active(h->done_ev, 0, 0);
			}
			continue;
		}
		if (h->done_ev)
			continue;
		h->result = m->data.result;
		h->done_ev = event_new(f->base, -1, 0, on_done, h);
		if (h->done_ev)
			event_active(h->done_ev, 0, 0);
	}
}

/* ---- public ------------------------------------------------------------------------ */

struct mg_fetcher *mg_fetcher_new(struct event_base *base)
{
	struct mg_fetcher *f = calloc(1, sizeof *f);
	if (f)
		f->base = base;
	return f;
}

int mg_fetcher_prepare(struct mg_fetcher *f, char *err, size_t err_size)
{
	if (f->multi)
		return 0;
	if (curl_load(err, err_size) < 0)
		return -1;
	if (!f->timer)
		f->timer = evtimer_new(f->base, on_timeout, f);
	f->multi = C.multi_init();
	if (!f->multi || !f->timer) {
		snprintf(err, err_size, "libcurl: cannot create a transfer set");
		return -1;
	}
	C.multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	C.multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
	C.multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	C.multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
	return 0;
}

const char *mg_fetch_curl_version(char *err, size_t err_size)
{
	if (curl_load(err, err_size) < 0)
		return NULL;
	return C.version_info(CURLVERSION_NOW)->version;
}

void mg_fetcher_free(struct mg_fetcher *f)
{
	if (!f)
		return;
	while (f->list)
		fetch_free(f->list);
	mg_h1_pool_free(f->h1);
	while (f->n_spare)
		C.easy_cleanup(f->spare[--f->n_spare]);
	for (size_t i = 0; i < f->n_urls; i++) {
		free(f->urls[i].text);
		C.url_cleanup(f->urls[i].u);
	}
	if (f->multi)
		C.multi_cleanup(f->multi);
	if (f->timer)
		event_free(f->timer);
	free(f);
}

/* Prepares h->easy for `o` (h is zeroed but for what the caller set).
 * Returns 0, or -1 with `err`. */
static int easy_setup(struct mg_fetch *h, const struct mg_fetch_opts *o, char *err, size_t err_size)
{
	if (strncmp(o->url, "https://", 8) != 0 && strncmp(o->url, "http://", 7) != 0) {
		snprintf(err, err_size, "only http and https URLs are fetched");
		return -1;
	}
	h->allow_private = o->allow_private;
	mg_buf_init(&h->body, o->max_bytes ? o->max_bytes : DEFAULT_MAX_BYTES);
	if (!h->easy)
		h->easy = easy_get(h->f);
	if (!h->easy) {
		snprintf(err, err_size, "cannot create a transfer");
		return -1;
	}
	CURL *e = h->easy;
	CURLU *parsed = url_parsed(h->f, o->url);
	if (parsed)
		C.easy_setopt(e, CURLOPT_CURLU, parsed);
	else
		C.easy_setopt(e, CURLOPT_URL, o->url);
	C.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* Never through a proxy (http_proxy and friends are ignored): the
	 * SSRF rule would then see the proxy's address, not the one reached.
	 * Saying so up front also spares curl its per-transfer getenv calls. */
	C.easy_setopt(e, CURLOPT_PROXY, "");
	C.easy_setopt(e, CURLOPT_NOPROXY, "");
	C.easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	C.easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	C.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	C.easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	long timeout = o->timeout_ms < 0 ? 0 : o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	long connect = o->connect_timeout_ms > 0                   ? o->connect_timeout_ms
	               : o->timeout_ms > 0 && o->timeout_ms < 5000 ? o->timeout_ms
	                                                           : 5000L;
	C.easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
	C.easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect);
	if (!h->stream)
		C.easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
		              (curl_off_t)(o->max_bytes ? o->max_bytes : DEFAULT_MAX_BYTES));
	if (o->http_version == MG_FETCH_HTTP1)
		C.easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	else if (o->http_version == MG_FETCH_H2C)
		C.easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
	else
		C.easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	C.easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	C.easy_setopt(e, CURLOPT_WRITEDATA, h);
	C.easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
	C.easy_setopt(e, CURLOPT_OPENSOCKETDATA, h);
	C.easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
	C.easy_setopt(e, CURLOPT_PRIVATE, h);
	C.easy_setopt(e, CURLOPT_USERAGENT, "mcp-guard");
	if (o->ca_file)
		C.easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
	if (!h->stream)
		C.easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	else {
		C.easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
		C.easy_setopt(e, CURLOPT_HEADERDATA, h);
	}
	for (size_t i = 0; i < o->n_headers; i++)
		h->headers = C.slist_append(h->headers, o->headers[i]);
	if (h->headers)
		C.easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
	if (o->method && strcmp(o->method, "POST") == 0) {
		C.easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
		/* A blocking call (no fetcher) returns before the body goes away. */
		C.easy_setopt(e, h->f ? CURLOPT_COPYPOSTFIELDS : CURLOPT_POSTFIELDS,
		              o->body ? o->body : "");
	} else if (o->method && strcmp(o->method, "GET") != 0) {
		C.easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->method);
	}
	return 0;
}

static const char *blocked_error(bool allow_private)
{
	return allow_private ? "address refused by the SSRF rule (link-local, metadata or reserved "
	                       "range)"
	                     : "address refused by the SSRF rule (loopback, private, link-local, "
	                       "metadata or reserved range; set allow_private_networks = true to "
	                       "allow private ones)";
}

/* The reason a finished transfer failed, or NULL when it completed. */
static const char *transfer_error(struct mg_fetch *h, char *buf, size_t size)
{
	if (h->blocked)
		return blocked_error(h->allow_private);
	if (h->too_big)
		return "response too large";
	if (h->result != CURLE_OK) {
		snprintf(buf, size, "%s", h->errbuf[0] ? h->errbuf : C.easy_strerror(h->result));
		return buf;
	}
	return NULL;
}

/* Links a set-up transfer into `f` and hands it to curl. Returns `h`, or
 * NULL (and frees it) with `err`. */
static struct mg_fetch *transfer_add(struct mg_fetcher *f, struct mg_fetch *h, char *err,
                                     size_t err_size)
{
	h->next = f->list;
	if (f->list)
		f->list->prev = h;
	f->list = h;
	if (C.multi_add_handle(f->multi, h->easy) != CURLM_OK) {
		fetch_free(h);
		snprintf(err, err_size, "cannot start the transfer");
		return NULL;
	}
	return h;
}

/* A new transfer of `f` (libcurl loaded first), or NULL with `err`. */
static struct mg_fetch *fetch_alloc(struct mg_fetcher *f, void *arg, char *err, size_t err_size)
{
	if (mg_fetcher_prepare(f, err, err_size) < 0)
		return NULL;
	struct mg_fetch *h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	h->f = f;
	h->arg = arg;
	h->engine = &curl_engine;
	return h;
}

struct mg_fetch *mg_fetch_start(struct mg_fetcher *f, const struct mg_fetch_opts *o, mg_fetch_fn cb,
                                void *arg, char *err, size_t err_size)
{
	struct mg_fetch *h = fetch_alloc(f, arg, err, err_size);
	if (!h)
		return NULL;
	h->cb = cb;
	if (easy_setup(h, o, err, err_size) < 0) {
		fetch_free(h);
		return NULL;
	}
	return transfer_add(f, h, err, err_size);
}

/* ---- the native engine (h1client.c) --------------------------------------------------- */

/* The native client calls these with the wrapper `h`; each runs the user's
 * callback with in_callback set, so that mg_fetch_cancel from inside it
 * only marks the wrapper, and the native fetch, told to stop by the
 * non-zero return, frees itself. */
static int native_stop(struct mg_fetch *h)
{
	h->h1 = NULL; /* it frees itself on our non-zero return */
	fetch_free(h);
	return 1;
}

static int native_on_head(long status, void *arg)
{
	struct mg_fetch *h = arg;
	int rc = 0;
	h->in_callback = true;
	if (h->stream->on_head)
		rc = h->stream->on_head(h, status, h->arg);
	h->in_callback = false;
	return rc || h->cancelled ? native_stop(h) : 0;
}

static int native_on_body(const char *p, size_t n, void *arg)
{
	struct mg_fetch *h = arg;
	int rc = 0;
	h->in_callback = true;
	if (h->stream->on_body)
		rc = h->stream->on_body(h, p, n, h->arg);
	h->in_callback = false;
	return rc || h->cancelled ? native_stop(h) : 0;
}

static void native_on_end(enum mg_fetch_failure why, const char *error, void *arg)
{
	struct mg_fetch *h = arg;
	h->h1_why = why;
	if (why == MG_FETCH_FAIL_BLOCKED)
		error = blocked_error(h->allow_private);
	h->in_callback = true;
	if (h->stream->on_end)
		h->stream->on_end(h, error, h->arg);
	h->h1 = NULL; /* freed by the native client after this returns */
	fetch_free(h);
}

static const struct mg_h1_callbacks native_callbacks = {
	.on_head = native_on_head,
	.on_body = native_on_body,
	.on_end = native_on_end,
};

static void native_pause(struct mg_fetch *h, bool pause)
{
	mg_h1_pause(h->h1, pause);
}

static bool native_header(struct mg_fetch *h, const char *name, char *out, size_t size)
{
	const struct mg_http_header *hd = h->h1 ? mg_h1_header(h->h1, name) : NULL;
	if (!hd || hd->value_len >= size)
		return false;
	memcpy(out, hd->value, hd->value_len + 1);
	return true;
}

static enum mg_fetch_failure native_failure(const struct mg_fetch *h)
{
	return h->h1_why;
}

static void native_cancel(struct mg_fetch *h)
{
	if (h->in_callback) {
		h->cancelled = true; /* stopped and freed when the callback returns */
		return;
	}
	fetch_free(h); /* cancels h->h1 */
}

static const struct stream_engine native_engine = {
	.pause = native_pause,
	.header = native_header,
	.failure = native_failure,
	.cancel = native_cancel,
};

static struct mg_fetch *native_start(struct mg_fetcher *f, const struct mg_fetch_opts *o,
                                     const struct mg_fetch_stream *cbs, void *arg, char *err,
                                     size_t err_size)
{
	struct mg_fetch *h = fetch_alloc(f, arg, err, err_size);
	if (!h)
		return NULL;
	h->engine = &native_engine;
	h->stream = cbs;
	h->allow_private = o->allow_private;
	if (!f->h1)
		f->h1 = mg_h1_pool_new(f->base);
	h->h1 = f->h1 ? mg_h1_start(f->h1, o, &native_callbacks, h, err, err_size) : NULL;
	if (!h->h1) {
		if (!f->h1)
			snprintf(err, err_size, "out of memory");
		free(h);
		return NULL;
	}
	h->next = f->list;
	if (f->list)
		f->list->prev = h;
	f->list = h;
	return h;
}

struct mg_fetch *mg_fetch_stream_start(struct mg_fetcher *f, const struct mg_fetch_opts *o,
                                       const struct mg_fetch_stream *cbs, void *arg, char *err,
                                       size_t err_size)
{
	if (o->http_version != MG_FETCH_H2C && !f->h1)
		f->h1 = mg_h1_pool_new(f->base);
	if (f->h1 ? mg_h1_pool_accepts(f->h1, o) : mg_h1_accepts(o))
		return native_start(f, o, cbs, arg, err, err_size);
	struct mg_fetch *h = fetch_alloc(f, arg, err, err_size);
	if (!h)
		return NULL;
	h->stream = cbs;
	mg_buf_init(&h->hdrs, STREAM_HDR_MAX);
	h->done_ev = event_new(f->base, -1, 0, on_stream_deliver, h);
	if (!h->done_ev || easy_setup(h, o, err, err_size) < 0) {
		if (!h->done_ev)
			snprintf(err, err_size, "out of memory");
		fetch_free(h);
		return NULL;
	}
	/* A stream's body is bounded by its reader, not here. */
	mg_buf_init(&h->body, 0);
	return transfer_add(f, h, err, err_size);
}

static void curl_pause(struct mg_fetch *h, bool pause)
{
	if (!h->easy || h->finished || h->user_paused == pause)
		return;
	h->user_paused = pause;
	if (pause) {
		C.easy_pause(h->easy, CURLPAUSE_RECV);
		return;
	}
	if (!h->paused) /* the write callback's own pause resumes on delivery */
		C.easy_pause(h->easy, CURLPAUSE_CONT);
}

static enum mg_fetch_failure curl_failure(const struct mg_fetch *h)
{
	if (h->blocked)
		return MG_FETCH_FAIL_BLOCKED;
	if (h->too_big)
		return MG_FETCH_FAIL_TOO_BIG;
	switch (h->result) {
	case CURLE_OK:
		return MG_FETCH_FAIL_NONE;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return MG_FETCH_FAIL_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return MG_FETCH_FAIL_TIMEOUT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
		return MG_FETCH_FAIL_TLS;
	default:
		return MG_FETCH_FAIL_TRANSFER;
	}
}

int mg_fetch_resolve_url(const char *base, const char *ref, char *out, size_t size)
{
	CURLU *u = C.url();
	char *full = NULL, *b_scheme = NULL, *b_host = NULL, *b_port = NULL;
	char *r_scheme = NULL, *r_host = NULL, *r_port = NULL;
	int rc = -1;
	if (!u || C.url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK)
		goto out;
	if (C.url_get(u, CURLUPART_SCHEME, &b_scheme, 0) != CURLUE_OK ||
	    C.url_get(u, CURLUPART_HOST, &b_host, 0) != CURLUE_OK ||
	    C.url_get(u, CURLUPART_PORT, &b_port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto out;
	/* A relative reference is resolved against the base; an absolute one
	 * replaces it (and is then checked below). */
	if (C.url_set(u, CURLUPART_URL, ref, 0) != CURLUE_OK)
		goto out;
	if (C.url_get(u, CURLUPART_SCHEME, &r_scheme, 0) != CURLUE_OK ||
	    C.url_get(u, CURLUPART_HOST, &r_host, 0) != CURLUE_OK ||
	    C.url_get(u, CURLUPART_PORT, &r_port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
	    C.url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK)
		goto out;
	if (strcasecmp(b_scheme, r_scheme) != 0 || strcasecmp(b_host, r_host) != 0 ||
	    strcmp(b_port, r_port) != 0) {
		rc = -2;
		goto out;
	}
	if (strlen(full) >= size)
		goto out;
	memcpy(out, full, strlen(full) + 1);
	rc = 0;
out:
	C.free(full);
	C.free(b_scheme);
	C.free(b_host);
	C.free(b_port);
	C.free(r_scheme);
	C.free(r_host);
	C.free(r_port);
	if (u)
		C.url_cleanup(u);
	return rc;
}

static bool curl_header(struct mg_fetch *h, const char *name, char *out, size_t size)
{
	size_t nl = strlen(name);
	const char *p = h->hdrs.data, *end = p ? p + h->hdrs.len : NULL;
	bool found = false;
	while (p && p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
			const char *v = p + nl + 1, *ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			if ((size_t)(ve - v) < size) {
				memcpy(out, v, (size_t)(ve - v));
				out[ve - v] = '\0';
				found = true; /* the last occurrence wins */
			}
		}
		p = eol + 1;
	}
	return found;
}

int mg_fetch_load(char *err, size_t err_size)
{
	return curl_load(err, err_size);
}

struct mg_fetch_session {
	CURL *easy; /* kept between calls, with its connection; NULL until the first */
};

struct mg_fetch_session *mg_fetch_session_new(void)
{
	return calloc(1, sizeof(struct mg_fetch_session));
}

void mg_fetch_session_free(struct mg_fetch_session *s)
{
	if (!s)
		return;
	if (s->easy)
		C.easy_cleanup(s->easy);
	free(s);
}

int mg_fetch_sync_on(struct mg_fetch_session *s, const struct mg_fetch_opts *o,
                     struct mg_fetch_sync_result *r)
{
	memset(r, 0, sizeof *r);
	r->retry_after_secs = -1;
	mg_buf_init(&r->body, 1);
	if (!C.lib) {
		snprintf(r->error, sizeof r->error, "libcurl is not loaded");
		return -1;
	}
	/* The session's handle is left reset after every call (below), so it
	 * is set up as a new one would be. */
	struct mg_fetch h = { .easy = s ? s->easy : NULL };
	int rc = -1;
	int set = easy_setup(&h, o, r->error, sizeof r->error);
	if (s)
		s->easy = h.easy; /* kept, with its connection, whatever happens below */
	if (set < 0)
		goto out;
	h.result = C.easy_perform(h.easy);
	C.easy_getinfo(h.easy, CURLINFO_RESPONSE_CODE, &r->status);
	curl_off_t ra = -1;
	if (C.easy_getinfo(h.easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
		r->retry_after_secs = (long)ra;
	char ebuf[CURL_ERROR_SIZE + 64];
	const char *e = transfer_error(&h, ebuf, sizeof ebuf);
	if (e) {
		snprintf(r->error, sizeof r->error, "%.255s", e);
		goto out;
	}
	r->body = h.body;
	mg_buf_init(&h.body, 1);
	rc = 0;
out:
	/* A kept handle loses every option (none is left pointing at `h`, its
	 * headers or the body) but keeps its connection cache. */
	if (s && h.easy)
		C.easy_reset(h.easy);
	else if (h.easy)
		C.easy_cleanup(h.easy);
	if (C.lib)
		C.slist_free_all(h.headers);
	mg_buf_free(&h.body);
	return rc;
}

void mg_fetch_sync_result_free(struct mg_fetch_sync_result *r)
{
	mg_buf_free(&r->body);
}

static void curl_cancel(struct mg_fetch *h)
{
	if (h->in_callback) {
		h->cancelled = true; /* freed when the callback returns */
		return;
	}
	fetch_free(h);
}

/* ---- public calls on a fetch, by engine ---------------------------------------------- */

void mg_fetch_pause(struct mg_fetch *h, bool pause)
{
	if (h)
		h->engine->pause(h, pause);
}

enum mg_fetch_failure mg_fetch_failure(const struct mg_fetch *h)
{
	return h->engine->failure(h);
}

bool mg_fetch_header(struct mg_fetch *h, const char *name, char *out, size_t size)
{
	return h->engine->header(h, name, out, size);
}

void mg_fetch_cancel(struct mg_fetch *h)
{
	if (h)
		h->engine->cancel(h);
}

char **mg_fetch_header_lines(const struct mg_kvv *h, size_t extra)
{
	char **lines = calloc(h->n + extra + 1, sizeof *lines);
	for (size_t i = 0; lines && i < h->n; i++) {
		struct mg_buf b;
		mg_buf_init(&b, 0);
		mg_buf_printf(&b, "%s: %s", h->v[i].key, h->v[i].value);
		lines[i] = mg_buf_steal(&b);
		if (!lines[i]) {
			mg_fetch_header_lines_free(lines, i);
			return NULL;
		}
	}
	return lines;
}

void mg_fetch_header_lines_free(char **lines, size_t n)
{
	if (!lines)
		return;
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}
