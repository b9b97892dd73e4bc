/*
 * oauth_form.c - application/x-www-form-urlencoded in both directions, for
 * the OAuth endpoints (query strings, token and introspection bodies).
 *
 * Input comes from anyone on the network, so the parser is strict and
 * bounded: a fixed number of pairs, a size limit, every %-escape checked,
 * no NUL or control characters after decoding, valid UTF-8 only. It keeps
 * duplicates visible (`duplicate`) because OAuth parameters must not repeat
 * (RFC 6749 §3.1) and a second `redirect_uri` is a classic confusion.
 *
 * Also here: the outgoing side, client authentication (Basic) and the
 * request that checks a token at the authorization server, shared by the
 * resource-server check and the facade's login.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/oauth.h"
#include "http/client.h"
#include "util/crypto.h"
#include "util/str.h"

/* Decodes s[0..n) into a new string; NULL with `err` when malformed. */
static char *decode(const char *s, size_t n, char *err, size_t err_size)
{
	char *out = malloc(n + 1);
	if (!out) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi = i + 2 < n ? mg_hex_value((unsigned char)s[i + 1]) : -1;
			int lo = i + 2 < n ? mg_hex_value((unsigned char)s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				snprintf(err, err_size, "bad %%-escape at byte %zu", i);
				free(out);
				return NULL;
			}
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (c < 0x20 || c == 0x7F) {
			snprintf(err, err_size, "control character 0x%02x in a parameter", c);
			free(out);
			return NULL;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	if (!mg_utf8_valid(out, o)) {
		snprintf(err, err_size, "a parameter is not valid UTF-8");
		free(out);
		return NULL;
	}
	return out;
}

int mg_oauth_form_parse(const char *s, size_t len, struct mg_oauth_form *f, char *err,
                        size_t err_size)
{
	int rc = -1;
	memset(f, 0, sizeof *f);
	if (len > MG_OAUTH_FORM_MAX_BYTES) {
		snprintf(err, err_size, "parameters larger than %d bytes", MG_OAUTH_FORM_MAX_BYTES);
		goto out;
	}
	size_t i = 0;
	while (i < len) {
		const char *amp = memchr(s + i, '&', len - i);
		size_t end = amp ? (size_t)(amp - s) : len;
		if (end > i) {
			if (f->n == MG_OAUTH_FORM_MAX_PAIRS) {
				snprintf(err, err_size, "more than %d parameters",
				         MG_OAUTH_FORM_MAX_PAIRS);
				goto out;
			}
			const char *eq = memchr(s + i, '=', end - i);
			size_t klen = eq ? (size_t)(eq - (s + i)) : end - i;
			char *k = decode(s + i, klen, err, err_size);
			if (!k)
				goto out;
			char *v =
			    eq ? decode(eq + 1, end - klen - i - 1, err, err_size) : mg_strdup("");
			if (!v) {
				free(k);
				goto out;
			}
			if (mg_oauth_form_get(f, k))
				f->duplicate = true;
			f->key[f->n] = k;
			f->value[f->n] = v;
			f->n++;
		}
		i = end + 1;
	}
	rc = 0;
out:
	return rc;
}

void mg_oauth_form_free(struct mg_oauth_form *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->key[i]);
		free(f->value[i]);
	}
	f->n = 0;
}

const char *mg_oauth_form_get(const struct mg_oauth_form *f, const char *key)
{
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->key[i], key) == 0)
			return f->value[i];
	}
	return NULL;
}

int mg_oauth_urlencode(struct mg_buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
		if (keep ? mg_buf_putc(b, (char)c) < 0
		         : mg_buf_printf(b, "%%%c%c", hex[c >> 4], hex[c & 15]) < 0)
			return -1;
	}
	return 0;
}

int mg_oauth_form_add(struct mg_buf *b, const char *key, const char *value)
{
	if ((b->len && mg_buf_putc(b, '&') < 0) || mg_oauth_urlencode(b, key, strlen(key)) < 0 ||
	    mg_buf_putc(b, '=') < 0 || mg_oauth_urlencode(b, value, strlen(value)) < 0)
		return -1;
	return 0;
}

int mg_oauth_basic_auth(struct mg_buf *out, const char *id, const char *secret)
{
	int rc = -1;
	struct mg_buf cred;
	mg_buf_init(&cred, 8192);
	if (mg_oauth_urlencode(&cred, id, strlen(id)) < 0 || mg_buf_putc(&cred, ':') < 0 ||
	    mg_oauth_urlencode(&cred, secret, strlen(secret)) < 0)
		goto out;
	size_t n = mg_base64_encoded_len(cred.len, false) + 1;
	char *b64 = malloc(n);
	if (!b64)
		goto out;
	mg_base64_encode(cred.data, cred.len, b64, n, false);
	rc = mg_buf_printf(out, "Authorization: Basic %s", b64) < 0 ? -1 : 0;
	explicit_bzero(b64, n);
	free(b64);
out:
	if (cred.data)
		explicit_bzero(cred.data, cred.len);
	mg_buf_free(&cred);
	return rc;
}

int mg_oauth_check_request_init(struct mg_oauth_check_request *rq,
                                const struct mg_oauth_config *cfg, const char *tok, size_t len)
{
	memset(rq, 0, sizeof *rq);
	mg_buf_init(&rq->body, 3 * len + 256);
	mg_buf_init(&rq->auth, len + 8192);
	if (cfg->introspection_url) {
		rq->url = cfg->introspection_url;
		rq->method = "POST";
		if (mg_buf_puts(&rq->body, "token=") < 0 ||
		    mg_oauth_urlencode(&rq->body, tok, len) < 0 ||
		    mg_buf_puts(&rq->body, "&token_type_hint=access_token") < 0 ||
		    mg_oauth_basic_auth(&rq->auth, cfg->client_id,
		                        cfg->client_secret ? cfg->client_secret : "") < 0)
			return -1;
		rq->headers[0] = "Content-Type: application/x-www-form-urlencoded";
		rq->headers[1] = "Accept: application/json";
		rq->headers[2] = rq->auth.data;
		rq->n_headers = 3;
	} else {
		rq->url = cfg->userinfo_url;
		rq->method = "GET";
		if (mg_buf_printf(&rq->auth, "Authorization: Bearer %.*s", (int)len, tok) < 0)
			return -1;
		rq->headers[0] = rq->auth.data;
		rq->headers[1] = "Accept: application/json";
		rq->n_headers = 2;
	}
	return 0;
}

void mg_oauth_check_request_opts(const struct mg_oauth_check_request *rq,
                                 const struct mg_oauth_config *cfg, struct mg_fetch_opts *o)
{
	*o = (struct mg_fetch_opts){
		.url = rq->url,
		.method = rq->method,
		.headers = rq->headers,
		.n_headers = rq->n_headers,
		.body = rq->body.data,
		.body_len = rq->body.len,
		.timeout_ms = 5000,
		.max_bytes = 64 * 1024,
		.allow_private = cfg->allow_private_networks,
		.ca_file = cfg->ca_file,
	};
}

void mg_oauth_check_request_free(struct mg_oauth_check_request *rq)
{
	if (rq->body.data)
		explicit_bzero(rq->body.data, rq->body.len);
	if (rq->auth.data)
		explicit_bzero(rq->auth.data, rq->auth.len);
	mg_buf_free(&rq->body);
	mg_buf_free(&rq->auth);
}
