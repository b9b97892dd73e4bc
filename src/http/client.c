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
 */
#include "http/client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/log.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_BYTES  (1024 * 1024)

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
	curl_multi_socket_action(f->multi, fd, flags, &running);
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
	curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
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
			curl_multi_assign(f->multi, s, NULL);
		}
		return 0;
	}
	short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) |
	             (what & CURL_POLL_OUT ? EV_WRITE : 0);
	if (!w) {
		w = calloc(1, sizeof *w);
		if (!w)
			return -1;
		curl_multi_assign(f->multi, s, w);
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
		curl_multi_remove_handle(f->multi, h->easy);
		curl_easy_cleanup(h->easy);
	}
	curl_slist_free_all(h->headers);
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
	curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &r.status);
	if (h->blocked)
		r.error = "address refused (link-local, metadata or reserved range)";
	else if (h->too_big)
		r.error = "response too large";
	else if (h->result != CURLE_OK) {
		snprintf(err, sizeof err, "%s",
		         h->errbuf[0] ? h->errbuf : curl_easy_strerror(h->result));
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
	while ((m = curl_multi_info_read(f->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct mg_fetch *h = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&h);
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
	static bool global_done;
	if (!global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return NULL;
		global_done = true;
	}
	struct mg_fetcher *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->base = base;
	f->multi = curl_multi_init();
	f->timer = evtimer_new(base, on_timeout, f);
	if (!f->multi || !f->timer) {
		mg_fetcher_free(f);
		return NULL;
	}
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
	return f;
}

void mg_fetcher_free(struct mg_fetcher *f)
{
	if (!f)
		return;
	while (f->list)
		fetch_free(f->list);
	if (f->multi)
		curl_multi_cleanup(f->multi);
	if (f->timer)
		event_free(f->timer);
	free(f);
}

static bool host_is_literal_ip(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL;
	bool lit = false;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host) {
		unsigned char buf[16];
		const char *h = host;
		char tmp[64];
		if (h[0] == '[') {
			snprintf(tmp, sizeof tmp, "%.*s", (int)strcspn(h + 1, "]"), h + 1);
			h = tmp;
		}
		lit = inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
	}
	curl_free(host);
	curl_url_cleanup(u);
	return lit;
}

struct mg_fetch *mg_fetch_start(struct mg_fetcher *f, const struct mg_fetch_opts *o, mg_fetch_fn cb,
                                void *arg, char *err, size_t err_size)
{
	if (strncmp(o->url, "https://", 8) != 0 && strncmp(o->url, "http://", 7) != 0) {
		snprintf(err, err_size, "only http and https URLs are fetched");
		return NULL;
	}
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
	h->easy = curl_easy_init();
	if (!h->easy) {
		free(h);
		snprintf(err, err_size, "cannot create a transfer");
		return NULL;
	}
	CURL *e = h->easy;
	curl_easy_setopt(e, CURLOPT_URL, o->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	                 o->timeout_ms && o->timeout_ms < 5000 ? o->timeout_ms : 5000L);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
	                 (curl_off_t)(o->max_bytes ? o->max_bytes : DEFAULT_MAX_BYTES));
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, h);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, h);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "mcp-guard");
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	for (size_t i = 0; i < o->n_headers; i++)
		h->headers = curl_slist_append(h->headers, o->headers[i]);
	if (h->headers)
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
	if (o->method && strcmp(o->method, "POST") == 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)o->body_len);
		curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body ? o->body : "");
	}
	h->next = f->list;
	if (f->list)
		f->list->prev = h;
	f->list = h;
	if (curl_multi_add_handle(f->multi, e) != CURLM_OK) {
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
