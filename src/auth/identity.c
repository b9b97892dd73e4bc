/*
 * identity.c - identities and small helpers shared by the providers.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/internal.h"
#include "util/str.h"

void mg_strv_copy(struct mg_strv *dst, const struct mg_strv *src)
{
	memset(dst, 0, sizeof *dst);
	dst->set = src->set;
	if (!src->n)
		return;
	dst->v = calloc(src->n, sizeof(char *));
	if (!dst->v)
		return;
	for (size_t i = 0; i < src->n; i++)
		dst->v[dst->n++] = mg_strdup(src->v[i]);
}

void mg_strv_release(struct mg_strv *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i]);
	free(v->v);
	memset(v, 0, sizeof *v);
}

void mg_strv_add(struct mg_strv *v, const char *s, size_t len)
{
	for (size_t i = 0; i < v->n; i++) {
		if (strlen(v->v[i]) == len && memcmp(v->v[i], s, len) == 0)
			return;
	}
	char **nv = realloc(v->v, (v->n + 1) * sizeof *nv);
	if (!nv)
		return;
	v->v = nv;
	v->v[v->n] = mg_strndup(s, len);
	if (v->v[v->n])
		v->n++;
}

bool mg_strv_has(const struct mg_strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++) {
		if (strcmp(v->v[i], s) == 0)
			return true;
	}
	return false;
}

int mg_claim_id(const json_t *v, char *out, size_t size)
{
	if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) < size &&
	    !memchr(json_string_value(v), '\0', json_string_length(v))) {
		snprintf(out, size, "%s", json_string_value(v));
		return 0;
	}
	if (json_is_integer(v)) {
		snprintf(out, size, "%lld", (long long)json_integer_value(v));
		return 0;
	}
	return -1;
}

void mg_identity_grant_scopes(struct mg_identity *id, const json_t *scope,
                              const struct mg_kstrvv *mapping)
{
	if (json_is_string(scope)) {
		const char *p = json_string_value(scope);
		while (*p) {
			while (*p == ' ')
				p++;
			size_t n = strcspn(p, " ");
			if (n)
				mg_strv_add(&id->scopes, p, n);
			p += n;
		}
	} else if (json_is_array(scope)) {
		size_t i;
		json_t *v;
		json_array_foreach(scope, i, v)
		{
			if (json_is_string(v))
				mg_strv_add(&id->scopes, json_string_value(v),
				            json_string_length(v));
		}
	}
	id->scopes.set = true;
	if (!mapping->n)
		return;
	/* Tools come only from mapped scopes: no mapped scope, no tools. */
	id->allowed_tools.set = true;
	for (size_t i = 0; i < mapping->n; i++) {
		const struct mg_kstrv *m = &mapping->v[i];
		if (!mg_strv_has(&id->scopes, m->key))
			continue;
		for (size_t k = 0; k < m->value.n; k++)
			mg_strv_add(&id->allowed_tools, m->value.v[k], strlen(m->value.v[k]));
	}
}

struct mg_identity *mg_identity_new(const char *provider, const char *id)
{
	struct mg_identity *i = calloc(1, sizeof *i);
	if (!i)
		return NULL;
	i->refs = 1;
	i->provider = provider;
	i->id = mg_strdup(id);
	size_t n = strlen(provider) + strlen(id) + 2;
	i->key = malloc(n);
	if (!i->id || !i->key) {
		mg_identity_unref(i);
		return NULL;
	}
	snprintf(i->key, n, "%s:%s", provider, id);
	return i;
}

struct mg_identity *mg_identity_ref(struct mg_identity *id)
{
	if (id)
		id->refs++;
	return id;
}

void mg_identity_unref(struct mg_identity *id)
{
	if (!id || --id->refs > 0)
		return;
	free(id->id);
	free(id->key);
	free(id->display);
	mg_strv_release(&id->allowed_tools);
	mg_strv_release(&id->allowed_resources);
	mg_strv_release(&id->allowed_prompts);
	mg_strv_release(&id->scopes);
	json_decref(id->claims);
	free(id);
}

struct mg_identity *mg_identity_anonymous(void)
{
	/* One process-wide immutable identity; the reference count keeps it
	 * alive forever (it starts at 1 and is never released to 0). */
	static struct mg_identity *anon;
	if (!anon)
		anon = mg_identity_new("anonymous", "anonymous");
	return mg_identity_ref(anon);
}

const char *mg_auth_bearer(const char *authorization, size_t *len)
{
	if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
		return NULL;
	const char *t = authorization + 7;
	while (*t == ' ')
		t++;
	size_t n = strlen(t);
	while (n && t[n - 1] == ' ')
		n--;
	if (!n)
		return NULL;
	*len = n;
	return t;
}

bool mg_cidr_match(const struct mg_strv *cidrs, const struct sockaddr *addr)
{
	unsigned char a[16];
	int fam;
	if (addr->sa_family == AF_INET) {
		memcpy(a, &((const struct sockaddr_in *)addr)->sin_addr, 4);
		fam = AF_INET;
	} else if (addr->sa_family == AF_INET6) {
		memcpy(a, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
		fam = AF_INET6;
		/* An IPv4-mapped peer matches IPv4 blocks. */
		static const unsigned char mapped[12] = {
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF
		};
		if (memcmp(a, mapped, 12) == 0) {
			memmove(a, a + 12, 4);
			fam = AF_INET;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < cidrs->n; i++) {
		char host[64];
		const char *c = cidrs->v[i];
		const char *slash = strchr(c, '/');
		size_t hl = slash ? (size_t)(slash - c) : strlen(c);
		if (hl >= sizeof host)
			continue;
		memcpy(host, c, hl);
		host[hl] = '\0';
		unsigned char net[16];
		int nfam = inet_pton(AF_INET, host, net) == 1    ? AF_INET
		           : inet_pton(AF_INET6, host, net) == 1 ? AF_INET6
		                                                 : 0;
		if (nfam != fam)
			continue;
		int max = fam == AF_INET ? 32 : 128;
		int64_t bits = max;
		if (slash && mg_parse_i64(slash + 1, 0, max, &bits) < 0)
			continue;
		int full = (int)bits / 8, rest = (int)bits % 8;
		if (memcmp(a, net, (size_t)full) != 0)
			continue;
		if (rest && ((a[full] ^ net[full]) & (0xFF << (8 - rest))))
			continue;
		return true;
	}
	return false;
}
