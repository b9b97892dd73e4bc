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

struct mg_fetcher {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct mg_fetch *list;
	bool in_action;
};

struct mg_fetch {
	struct mg_fetcher *f;
	struct mg_fetch *prev, *next;
	CURL *easy;
	struct curl_slist *headers;
	struct mg_buf body;
	mg_fetch_fn cb;
	void *arg;
	bool literal_ip; /* the URL's host is an IP address */
	bool blocked;    /* the SSRF rule refused the address */
	bool too_big;
	char errbuf[CURL_ERROR_SIZE];
	struct event *done_ev; /* deferred completion */
	CURLcode result;
};

/* Per-socket watcher. */
struct sock_watch {
	struct event *ev;
};

/* ---- SSRF ---------------------------------------------------------------------------- */

static bool v4_blocked(uint32_t a)
{
	/* host byte order */
	return (a >> 24) == 0 ||                   /* 0.0.0.0/8 "this network" */
	       (a >> 16) == ((169u << 8) | 254) || /* 169.254.0.0/16 link-local, metadata */
	       (a >> 28) == 0xE ||                 /* 224.0.0.0/4 multicast */
	       (a >> 28) == 0xF;                   /* 240.0.0.0/4 reserved, broadcast */
}

bool mg_fetch_address_allowed(const struct sockaddr *sa, bool literal)
{
	if (literal)
		return true;
	if (sa->sa_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
		return !v4_blocked(a);
	}
	if (sa->sa_family == AF_INET6) {
		const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		static const uint8_t zero[16];
		if (memcmp(b, zero, 16) == 0)
			return false; /* :: */
		if (b[0] == 0xFF)
			return false; /* multicast */
		if (b[0] == 0xFE && (b[1] & 0xC0) == 0x80)
			return false; /* fe80::/10 link-local */
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };
		if (memcmp(b, mapped, 12) == 0) {
			uint32_t a = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
			             (uint32_t)b[14] << 8 | b[15];
			return !v4_blocked(a);
		}
		return true;
	}
	return false;
}

static curl_socket_t on_opensocket(void *clientp, curlsocktype purpose,
                                   struct curl_sockaddr *address)
{
	struct mg_fetch *h = clientp;
	(void)purpose;
	if (!mg_fetch_address_allowed(&address->addr, h->literal_ip)) {
		h->blocked = true;
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

/* ---- libevent glue ----------------------------------------------------------------- */

static void check_done(struct mg_fetcher *f);

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
		C.multi_assign(f->multi, s, w);
	} else {
		event_free(w->ev);
	}
	w->ev = event_new(f->base, s, kind, on_socket_event, f);
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
	if (mg_buf_append(&h->body, ptr, n) < 0) {
		h->too_big = true;
		return 0; /* aborts the transfer */
	}
	return n;
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
		C.easy_cleanup(h->easy);
	}
	C.slist_free_all(h->headers);
	if (h->done_ev)
		event_free(h->done_ev);
	mg_buf_free(&h->body);
	free(h);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct mg_fetch *h = arg;
	(void)fd;
	(void)what;
	struct mg_fetch_result r = { 0 };
	char err[CURL_ERROR_SIZE + 64];
	C.easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &r.status);
	if (h->blocked)
		r.error = "address refused (link-local, metadata or reserved range)";
	else if (h->too_big)
		r.error = "response too large";
	else if (h->result != CURLE_OK) {
		snprintf(err, sizeof err, "%s",
		         h->errbuf[0] ? h->errbuf : C.easy_strerror(h->result));
		r.error = err;
	}
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
		if (!h || h->done_ev)
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
	if (f->multi)
		C.multi_cleanup(f->multi);
	if (f->timer)
		event_free(f->timer);
	free(f);
}

static bool host_is_literal_ip(const char *url)
{
	CURLU *u = C.url();
	char *host = NULL;
	bool lit = false;
	if (u && C.url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    C.url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host) {
		unsigned char buf[16];
		const char *h = host;
		char tmp[64];
		if (h[0] == '[') {
			snprintf(tmp, sizeof tmp, "%.*s", (int)strcspn(h + 1, "]"), h + 1);
			h = tmp;
		}
		lit = inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
	}
	C.free(host);
	C.url_cleanup(u);
	return lit;
}

struct mg_fetch *mg_fetch_start(struct mg_fetcher *f, const struct mg_fetch_opts *o, mg_fetch_fn cb,
                                void *arg, char *err, size_t err_size)
{
	if (strncmp(o->url, "https://", 8) != 0 && strncmp(o->url, "http://", 7) != 0) {
		snprintf(err, err_size, "only http and https URLs are fetched");
		return NULL;
	}
	if (mg_fetcher_prepare(f, err, err_size) < 0)
		return NULL;
	struct mg_fetch *h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	h->f = f;
	h->cb = cb;
	h->arg = arg;
	h->literal_ip = host_is_literal_ip(o->url);
	mg_buf_init(&h->body, o->max_bytes ? o->max_bytes : DEFAULT_MAX_BYTES);
	h->easy = C.easy_init();
	if (!h->easy) {
		free(h);
		snprintf(err, err_size, "cannot create a transfer");
		return NULL;
	}
	CURL *e = h->easy;
	C.easy_setopt(e, CURLOPT_URL, o->url);
	C.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	C.easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	C.easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	C.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	C.easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	C.easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS);
	C.easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	              o->timeout_ms && o->timeout_ms < 5000 ? o->timeout_ms : 5000L);
	C.easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
	              (curl_off_t)(o->max_bytes ? o->max_bytes : DEFAULT_MAX_BYTES));
	C.easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	C.easy_setopt(e, CURLOPT_WRITEDATA, h);
	C.easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
	C.easy_setopt(e, CURLOPT_OPENSOCKETDATA, h);
	C.easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
	C.easy_setopt(e, CURLOPT_PRIVATE, h);
	C.easy_setopt(e, CURLOPT_USERAGENT, "mcp-guard");
	C.easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	for (size_t i = 0; i < o->n_headers; i++)
		h->headers = C.slist_append(h->headers, o->headers[i]);
	if (h->headers)
		C.easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
	if (o->method && strcmp(o->method, "POST") == 0) {
		C.easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)o->body_len);
		C.easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body ? o->body : "");
	}
	h->next = f->list;
	if (f->list)
		f->list->prev = h;
	f->list = h;
	if (C.multi_add_handle(f->multi, e) != CURLM_OK) {
		fetch_free(h);
		snprintf(err, err_size, "cannot start the transfer");
		return NULL;
	}
	return h;
}

void mg_fetch_cancel(struct mg_fetch *h)
{
	if (h)
		fetch_free(h);
}
