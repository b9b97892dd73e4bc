/*
 * mtls.c - mutual TLS: the identity is a field of the client certificate.
 *
 * Direct TLS: the certificate verified by OpenSSL against
 * server.tls.client_ca_path. Behind a TLS-terminating proxy: the
 * X-Client-Cert-* headers it sets, believed only when the connection comes
 * from an address in auth.mtls.trusted_proxies (from anyone else they are
 * ignored - and never forwarded upstream). Also: the TLS server context.
 */
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/internal.h"
#include "util/log.h"

struct mtls_provider {
	struct mg_auth_provider base;
	const struct mg_mtls_config *cfg;
};

/* Copies a certificate string if it is plain UTF-8 without NUL or control
 * characters (a CN with an embedded NUL is a classic spoof). */
static bool cert_string(ASN1_STRING *s, char *out, size_t size)
{
	unsigned char *utf8 = NULL;
	int n = ASN1_STRING_to_UTF8(&utf8, s);
	bool ok = n > 0 && (size_t)n < size;
	for (int i = 0; ok && i < n; i++) {
		if (utf8[i] < 0x20 || utf8[i] == 0x7F)
			ok = false;
	}
	if (ok) {
		memcpy(out, utf8, (size_t)n);
		out[n] = '\0';
	}
	OPENSSL_free(utf8);
	return ok;
}

static bool cert_identity(X509 *cert, int64_t source, char *out, size_t size)
{
	if (source == MG_MTLS_CN) {
		X509_NAME *name = X509_get_subject_name(cert);
		int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
		if (idx < 0)
			return false;
		return cert_string(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)), out,
		                   size);
	}
	int want = source == MG_MTLS_SAN_DNS ? GEN_DNS : GEN_EMAIL;
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	bool found = false;
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && !found; i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		if (g->type == want)
			found = cert_string(want == GEN_DNS ? g->d.dNSName : g->d.rfc822Name, out,
			                    size);
	}
	GENERAL_NAMES_free(names);
	return found;
}

static const char *source_name(int64_t s)
{
	return s == MG_MTLS_CN ? "cn" : s == MG_MTLS_SAN_DNS ? "san_dns" : "san_email";
}

static enum mg_auth_status mtls_authenticate(struct mg_auth_provider *p,
                                             const struct mg_auth_request *r,
                                             struct mg_auth_outcome *out, struct mg_auth_wait *w)
{
	struct mtls_provider *m = (struct mtls_provider *)p;
	(void)w;
	char who[256];
	bool have = false;
	X509 *cert = r->ssl ? SSL_get0_peer_certificate(r->ssl) : NULL;
	if (cert) {
		if (SSL_get_verify_result(r->ssl) != X509_V_OK) {
			snprintf(out->reason, sizeof out->reason,
			         "client certificate not verified");
			return MG_AUTH_INVALID;
		}
		if (!cert_identity(cert, m->cfg->identity_source, who, sizeof who)) {
			snprintf(out->reason, sizeof out->reason,
			         "client certificate has no usable %s",
			         source_name(m->cfg->identity_source));
			return MG_AUTH_INVALID;
		}
		have = true;
	} else if (r->peer && m->cfg->trusted_proxies.n &&
	           mg_cidr_match(&m->cfg->trusted_proxies, r->peer)) {
		const char *v = m->cfg->identity_source == MG_MTLS_CN        ? r->fwd_cn
		                : m->cfg->identity_source == MG_MTLS_SAN_DNS ? r->fwd_san_dns
		                                                             : r->fwd_san_email;
		if (!v && !r->fwd_verified)
			return MG_AUTH_DECLINED;
		if (!r->fwd_verified || (strcasecmp(r->fwd_verified, "SUCCESS") != 0 &&
		                         strcasecmp(r->fwd_verified, "true") != 0)) {
			snprintf(out->reason, sizeof out->reason,
			         "proxy reports the client certificate as not verified");
			return MG_AUTH_INVALID;
		}
		if (!v || !*v || strlen(v) >= sizeof who) {
			snprintf(out->reason, sizeof out->reason, "proxy sent no client %s",
			         source_name(m->cfg->identity_source));
			return MG_AUTH_INVALID;
		}
		snprintf(who, sizeof who, "%s", v);
		have = true;
	}
	if (!have)
		return MG_AUTH_DECLINED;
	struct mg_identity *id = mg_identity_new("mtls", who);
	if (!id)
		return MG_AUTH_UNAVAILABLE;
	mg_strv_copy(&id->allowed_tools, &m->cfg->allowed_tools);
	id->rate_limit = (double)m->cfg->rate_limit;
	out->identity = id;
	return MG_AUTH_OK;
}

static void mtls_free(struct mg_auth_provider *p)
{
	free(p);
}

static const struct mg_auth_provider_ops mtls_ops = {
	.name = "mtls",
	.authenticate = mtls_authenticate,
	.free = mtls_free,
};

struct mg_auth_provider *mg_auth_mtls_new(struct mg_auth *a, char *err, size_t err_size)
{
	struct mtls_provider *m = calloc(1, sizeof *m);
	if (!m) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	m->cfg = &a->cfg->auth.mtls;
	m->base.ops = &mtls_ops;
	m->base.auth = a;
	return &m->base;
}

static void tls_error(char *err, size_t size, const char *what, const char *path)
{
	unsigned long e = ERR_get_error();
	char buf[256];
	ERR_error_string_n(e, buf, sizeof buf);
	snprintf(err, size, "%s %s: %s", what, path ? path : "", e ? buf : "unknown error");
	ERR_clear_error();
}

SSL_CTX *mg_tls_server_ctx(const struct mg_tls_config *tls, char *err, size_t err_size)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		tls_error(err, err_size, "cannot create a TLS context", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(ctx, tls->cert_path) != 1) {
		tls_error(err, err_size, "cannot load certificate", tls->cert_path);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, tls->key_path, SSL_FILETYPE_PEM) != 1) {
		tls_error(err, err_size, "cannot load private key", tls->key_path);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_error(err, err_size, "private key does not match certificate", tls->key_path);
		goto fail;
	}
	if (tls->client_ca_path) {
		if (SSL_CTX_load_verify_locations(ctx, tls->client_ca_path, NULL) != 1) {
			tls_error(err, err_size, "cannot load client CA", tls->client_ca_path);
			goto fail;
		}
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(tls->client_ca_path);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
		SSL_CTX_set_verify_depth(ctx, 8);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}
