/*
 * auth-bench.c - what authentication costs per request, measured on the
 * gateway's own code (libmg.a), not through HTTP.
 *
 *   1. RS256 signature verification alone (mg_jwt_verify): verifies/s on
 *      one core - the cost of a token the gateway has not seen before.
 *   2. The JWT provider through the whole chain (mg_auth_authenticate) with
 *      a JWKS fetched over loopback HTTP from a server in this process:
 *        - a new token each call (cache miss: parse + RSA verify + claims),
 *        - the same tokens again (warm token cache), the issue's target:
 *          under 5 µs median.
 *   3. An API key through the chain (SHA-256 + constant-time compare).
 *
 * Every call is timed on its own (CLOCK_MONOTONIC, about 20 ns of its own)
 * and reported as median / p99 / mean. Single-threaded: one core. Bounded:
 * fixed call counts, a 2 s window for the raw verify loop, loopback only.
 *
 *   sh bench/auth-bench.sh            build against build/libmg.a and run
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "auth/auth.h"
#include "auth/jwt.h"
#include "config/config.h"
#include "http/client.h"
#include "util/crypto.h"

#define ISSUER   "https://idp.bench.invalid"
#define AUDIENCE "http://127.0.0.1:3000/mcp"
#define N_TOKENS 2000
#define N_WARM   200000

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("auth-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* base64url without padding, malloc'ed (the gateway's own encoder). */
static char *b64url(const unsigned char *p, size_t n)
{
	size_t size = mg_base64_encoded_len(n, true) + 1;
	char *out = malloc(size);
	if (!out)
		die("out of memory");
	mg_base64_encode(p, n, out, size, true);
	return out;
}

static char *b64url_str(const char *s)
{
	return b64url((const unsigned char *)s, strlen(s));
}

static char *bn_b64url(EVP_PKEY *k, const char *name)
{
	BIGNUM *bn = NULL;
	if (!EVP_PKEY_get_bn_param(k, name, &bn))
		die("cannot read the RSA %s", name);
	int n = BN_num_bytes(bn);
	unsigned char *buf = malloc((size_t)n);
	if (!buf)
		die("out of memory");
	BN_bn2bin(bn, buf);
	char *s = b64url(buf, (size_t)n);
	free(buf);
	BN_free(bn);
	return s;
}

/* An RS256 compact JWS for subject `sub`, valid for an hour. */
static char *sign_token(EVP_PKEY *k, int sub, long now)
{
	char payload[512];
	snprintf(payload, sizeof payload,
	         "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"user-%d\",\"iat\":%ld,\"exp\":%ld,"
	         "\"scope\":\"mcp:read mcp:write\",\"jti\":\"bench-%d\"}",
	         ISSUER, AUDIENCE, sub, now, now + 3600, sub);
	char *h = b64url_str("{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"bench-1\"}");
	char *p = b64url_str(payload);
	size_t in_len = strlen(h) + 1 + strlen(p);
	char *in = malloc(in_len + 1);
	if (!in)
		die("out of memory");
	snprintf(in, in_len + 1, "%s.%s", h, p);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sig[512];
	size_t sig_len = sizeof sig;
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) != 1 ||
	    EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)in, in_len) != 1)
		die("cannot sign a token");
	EVP_MD_CTX_free(md);
	char *s = b64url(sig, sig_len);
	size_t tok_len = in_len + 1 + strlen(s);
	char *tok = malloc(tok_len + 1);
	if (!tok)
		die("out of memory");
	snprintf(tok, tok_len + 1, "%s.%s", in, s);
	free(h);
	free(p);
	free(in);
	free(s);
	return tok;
}

/* --- the JWKS server (loopback) --- */

static char *jwks_json;
static int jwks_requests;

static void serve_jwks(struct evhttp_request *req, void *arg)
{
	(void)arg;
	jwks_requests++;
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, jwks_json, strlen(jwks_json));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "application/json");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

/* --- timing --- */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void report(const char *what, int64_t *ns, size_t n)
{
	int64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += ns[i];
	qsort(ns, n, sizeof *ns, cmp_i64);
	printf("%-44s median %8.2f µs   p99 %8.2f µs   mean %8.2f µs   (%zu calls)\n", what,
	       (double)ns[n / 2] / 1000.0, (double)ns[n * 99 / 100] / 1000.0,
	       (double)sum / (double)n / 1000.0, n);
}

/* --- authentication through the chain --- */

static struct event_base *base;
static bool async_done;
static struct mg_auth_outcome async_out;

static void on_auth(const struct mg_auth_outcome *o, void *arg)
{
	(void)arg;
	async_out = *o;
	async_done = true;
}

/* One authentication; returns the nanoseconds it took when answered at
 * once, or -1 when it had to wait (then the loop runs until it is done). */
static int64_t authenticate(struct mg_auth *a, const char *authorization, const char *api_key)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(40000) };
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct mg_auth_request r = {
		.authorization = authorization,
		.api_key = api_key,
		.peer = (const struct sockaddr *)&peer,
		.now = (int64_t)time(NULL),
	};
	struct mg_auth_outcome out;
	struct mg_auth_wait *w = NULL;
	int64_t t0 = now_ns();
	bool sync = mg_auth_authenticate(a, &r, &out, on_auth, NULL, &w);
	int64_t dt = now_ns() - t0;
	if (!sync) {
		async_done = false;
		while (!async_done)
			event_base_loop(base, EVLOOP_ONCE);
		out = async_out;
		dt = -1;
	}
	if (out.status != MG_AUTH_OK)
		die("authentication failed: status %d (%s)", (int)out.status, out.reason);
	mg_identity_unref(out.identity);
	return dt;
}

static struct mg_config *load_config(const char *text)
{
	struct mg_diag diag = { 0 };
	struct mg_config *cfg =
	    mg_config_load_buffer(text, strlen(text), "bench.toml", MG_CONFIG_TOML, NULL, &diag);
	if (!cfg) {
		mg_diag_print(&diag, stderr);
		die("the benchmark's configuration is invalid");
	}
	mg_diag_free(&diag);
	return cfg;
}

int main(void)
{
	base = event_base_new();
	if (!base)
		die("no event base");

	/* An RSA-2048 key and its JWKS. */
	EVP_PKEY *key = EVP_RSA_gen(2048);
	if (!key)
		die("cannot generate an RSA key");
	char *n = bn_b64url(key, OSSL_PKEY_PARAM_RSA_N);
	char *e = bn_b64url(key, OSSL_PKEY_PARAM_RSA_E);
	size_t jl = strlen(n) + strlen(e) + 128;
	jwks_json = malloc(jl);
	if (!jwks_json)
		die("out of memory");
	snprintf(
	    jwks_json, jl,
	    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"bench-1\",\"use\":\"sig\",\"alg\":\"RS256\","
	    "\"n\":\"%s\",\"e\":\"%s\"}]}",
	    n, e);

	long now = (long)time(NULL);
	char **tokens = calloc(N_TOKENS, sizeof *tokens);
	char **authz = calloc(N_TOKENS, sizeof *authz);
	if (!tokens || !authz)
		die("out of memory");
	for (int i = 0; i < N_TOKENS; i++) {
		tokens[i] = sign_token(key, i, now);
		size_t l = strlen(tokens[i]) + 8;
		authz[i] = malloc(l);
		if (!authz[i])
			die("out of memory");
		snprintf(authz[i], l, "Bearer %s", tokens[i]);
	}

	/* 1. RS256 verification alone, for 2 s. */
	struct mg_jwk_set *keys = mg_jwk_set_parse(jwks_json, strlen(jwks_json), NULL, 0);
	if (!keys)
		die("the JWKS does not parse");
	const char *aud[] = { AUDIENCE };
	struct mg_jwt_policy pol = {
		.algs = 1u << mg_jwt_alg_parse("RS256"),
		.issuer = ISSUER,
		.audience = aud,
		.n_audience = 1,
		.leeway_secs = 60,
		.now = now,
	};
	int64_t t0 = now_ns();
	long verifies = 0;
	while (now_ns() - t0 < 2000000000) {
		for (int i = 0; i < 100; i++) {
			const char *t = tokens[(verifies + i) % N_TOKENS];
			if (mg_jwt_verify(t, strlen(t), keys, &pol, NULL, NULL, 0) != MG_JWT_OK)
				die("a token does not verify");
		}
		verifies += 100;
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	printf("%-44s %8.0f verifies/s on one core (%.1f µs each)\n",
	       "RS256-2048 verify (mg_jwt_verify)", (double)verifies / secs,
	       secs * 1e6 / (double)verifies);
	mg_jwk_set_unref(keys);

	/* 2. The JWT provider with its JWKS over loopback HTTP. */
	struct evhttp *http = evhttp_new(base);
	evhttp_set_cb(http, "/jwks", serve_jwks, NULL);
	struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
	if (!bs)
		die("cannot listen on 127.0.0.1");
	struct sockaddr_in sin;
	socklen_t sl = sizeof sin;
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl);
	char cfg_text[1024];
	snprintf(cfg_text, sizeof cfg_text,
	         "[upstream]\ntransport = \"stdio\"\ncommand = \"true\"\n"
	         "[auth.jwt]\nmode = \"jwks\"\njwks_url = "
	         "\"http://127.0.0.1:%d/jwks\"\nallow_private_networks = true\n"
	         "algorithms = [\"RS256\"]\nissuer = \"%s\"\naudience = \"%s\"\n"
	         "scope_tool_mapping = { \"mcp:read\" = [\"get_*\", \"echo\"] }\n",
	         ntohs(sin.sin_port), ISSUER, AUDIENCE);
	struct mg_config *cfg = load_config(cfg_text);
	struct mg_fetcher *fetcher = mg_fetcher_new(base);
	char err[256];
	struct mg_auth *a = mg_auth_new(base, cfg, fetcher, err, sizeof err);
	if (!a)
		die("%s", err);

	/* The first token waits for the JWKS; then every new token is a miss. */
	if (authenticate(a, authz[0], NULL) >= 0 && jwks_requests == 0)
		die("the JWKS was not fetched");
	int64_t *ns = calloc(N_WARM, sizeof *ns);
	if (!ns)
		die("out of memory");
	size_t m = 0;
	for (int i = 1; i < N_TOKENS; i++) {
		int64_t dt = authenticate(a, authz[i], NULL);
		if (dt >= 0)
			ns[m++] = dt;
	}
	report("JWT RS256, new token (cache miss)", ns, m);

	m = 0;
	for (int i = 0; i < N_WARM; i++) {
		int64_t dt = authenticate(a, authz[i % 64], NULL);
		if (dt >= 0)
			ns[m++] = dt;
	}
	report("JWT RS256, warm token cache (64 tokens)", ns, m);
	m = 0;
	for (int i = 0; i < N_WARM; i++) {
		int64_t dt = authenticate(a, authz[i % N_TOKENS], NULL);
		if (dt >= 0)
			ns[m++] = dt;
	}
	report("JWT RS256, warm token cache (2000 tokens)", ns, m);
	struct mg_auth_stats st;
	mg_auth_stats(a, &st);
	printf("%-44s %llu JWKS fetch(es), %llu cache hits\n", "JWT provider counters",
	       (unsigned long long)st.jwks_fetches, (unsigned long long)st.jwt_cache_hits);
	mg_auth_unref(a);
	mg_config_free(cfg);

	/* 3. An API key among 100 configured keys. */
	const char *api_key = "mcp_bench-key-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
	size_t cap = 100 * 160 + 256;
	char *kc = malloc(cap);
	if (!kc)
		die("out of memory");
	size_t off =
	    (size_t)snprintf(kc, cap, "[upstream]\ntransport = \"stdio\"\ncommand = \"true\"\n");
	for (int i = 0; i < 100; i++) {
		/* 99 other keys (hashes of other strings), ours last: the compare
		 * walks them all whichever matches. */
		char other[64], hash[64];
		if (i == 99)
			snprintf(other, sizeof other, "%s", api_key);
		else
			snprintf(other, sizeof other, "mcp_other-%d", i);
		uint8_t dg[MG_SHA256_LEN];
		mg_sha256(other, strlen(other), dg);
		mg_base64_encode(dg, sizeof dg, hash, sizeof hash, false);
		off += (size_t)snprintf(kc + off, cap - off,
		                        "[[auth.api_keys]]\nid = \"k%d\"\nkey_hash = \"%s\"\n", i,
		                        hash);
	}
	cfg = load_config(kc);
	a = mg_auth_new(base, cfg, fetcher, err, sizeof err);
	if (!a)
		die("%s", err);
	m = 0;
	for (int i = 0; i < N_WARM; i++) {
		int64_t dt = authenticate(a, NULL, api_key);
		if (dt >= 0)
			ns[m++] = dt;
	}
	report("API key (X-API-Key, 100 keys configured)", ns, m);
	m = 0;
	char bearer[128];
	snprintf(bearer, sizeof bearer, "Bearer %s", api_key);
	for (int i = 0; i < N_WARM; i++) {
		int64_t dt = authenticate(a, bearer, NULL);
		if (dt >= 0)
			ns[m++] = dt;
	}
	report("API key (Authorization: Bearer, 100 keys)", ns, m);
	mg_auth_unref(a);
	mg_config_free(cfg);

	/* The clock's own cost, for reading the figures above. */
	m = 0;
	for (int i = 0; i < N_WARM; i++) {
		int64_t a0 = now_ns();
		ns[m++] = now_ns() - a0;
	}
	report("(timer overhead)", ns, m);

	free(kc);
	free(ns);
	for (int i = 0; i < N_TOKENS; i++) {
		free(tokens[i]);
		free(authz[i]);
	}
	free(tokens);
	free(authz);
	free(n);
	free(e);
	free(jwks_json);
	EVP_PKEY_free(key);
	mg_fetcher_free(fetcher);
	evhttp_free(http);
	event_base_free(base);
	return 0;
}
