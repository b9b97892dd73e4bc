/*
 * fcursor.c - the federated endpoint's list cursors (see fcursor.h).
 *
 * Why: the federated endpoint merges tools/list, prompts/list,
 * resources/list and resources/templates/list over the route's servers in a
 * fixed order. Dropping the upstream's nextCursor, or sending the client's
 * cursor to every server, truncates lists (DESIGN §7 "composite cursors").
 * So the gateway's nextCursor says where to continue: at server index i,
 * with that server's own cursor (or its first page). The client hands it
 * back, so it is input: it is sealed, not only signed, because an upstream
 * cursor may reveal upstream internals (offsets, keys, hosts).
 *
 * Wire format (then base64url without padding):
 *
 *     version[1] = 1 | nonce[12] | AES-256-GCM(plaintext) | gcm tag[16]
 *
 * with the additional data "mcp-guard fcursor" | version, and
 *
 *     plaintext = list[1] | route tag[8] | issued[8] | server[4] | flags[1] |
 *                 ulen[2] | upstream cursor[ulen]
 *
 * (integers big endian; flags bit 0: an upstream cursor is present, so an
 * empty upstream cursor "" and "first page" stay different). The list
 * method and route tag are inside the seal rather than in the additional
 * data so that a genuine cursor used in the wrong place gets a precise
 * message ("belongs to prompts/list") instead of "bad seal".
 *
 * The route tag is the caller's: a hash of the route's name and its
 * servers' names (a cursor of one endpoint or configuration is refused on
 * another); the caller may mix in the identity (DESIGN §8: a cursor of one
 * user is refused for another). The server index is returned unchecked:
 * the caller compares it with the route's size.
 *
 * Key: [upstream] cursor_secret (or _env / _file) through HMAC-SHA256, so
 * that several instances behind a load balancer open each other's cursors;
 * unset, a random key per process (cursors die with a restart: the client
 * gets -32602 and lists again from the start). There is no key ring: a
 * changed secret invalidates cursors in flight the same way. A cursor
 * expires MG_FCURSOR_TTL seconds after it was issued.
 *
 * Limits: upstream cursor at most MG_FCURSOR_UPSTREAM_MAX bytes (longer:
 * encode fails and the caller reports the upstream), encoded text at most
 * MG_FCURSOR_TEXT_MAX characters, checked before any decoding.
 */
#include "gateway/fcursor.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERSION       1
#define AAD           "mcp-guard fcursor"
#define HEAD_LEN      (1 + 8 + 8 + 4 + 1 + 2)
#define PLAIN_MAX     (HEAD_LEN + MG_FCURSOR_UPSTREAM_MAX)
#define SEALED_MIN    (1 + MG_AEAD_NONCE_LEN + HEAD_LEN + MG_AEAD_TAG_LEN)
#define SEALED_MAX    (1 + MG_AEAD_NONCE_LEN + PLAIN_MAX + MG_AEAD_TAG_LEN)
#define B64URL_LEN(n) ((n) / 3 * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))
#define FLAG_UPSTREAM 1

_Static_assert(B64URL_LEN(SEALED_MAX) <= MG_FCURSOR_TEXT_MAX,
               "the longest cursor the gateway issues must be accepted back");

static const char *const list_names[MG_FCURSOR_LISTS] = {
	"tools/list",
	"prompts/list",
	"resources/list",
	"resources/templates/list",
};

const char *mg_fcursor_list_name(unsigned list)
{
	return list < MG_FCURSOR_LISTS ? list_names[list] : "?";
}

int mg_fcursor_key_init(struct mg_fcursor_key *k, const void *secret, size_t len)
{
	static const char label[] = "mcp-guard federated cursor key";
	if (!secret)
		return mg_random_bytes(k->k, sizeof k->k);
	unsigned int n = sizeof k->k;
	return HMAC(EVP_sha256(), secret, (int)len, (const unsigned char *)label, sizeof label - 1,
	            k->k, &n)
	           ? 0
	           : -1;
}

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

/* Appends `s` (NULL: a marker distinct from "") length-prefixed to the digest. */
static void tag_add(EVP_MD_CTX *md, const char *s)
{
	uint8_t len[9];
	size_t n = s ? strlen(s) : 0;
	len[0] = s ? 1 : 0;
	put_be(len + 1, n, 8);
	EVP_DigestUpdate(md, len, sizeof len);
	if (n)
		EVP_DigestUpdate(md, s, n);
}

uint64_t mg_fcursor_tag(const char *route, const char *const *servers, size_t n,
                        const char *identity)
{
	uint8_t h[EVP_MAX_MD_SIZE], count[8];
	unsigned int hl = 0;
	uint64_t tag = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	EVP_DigestUpdate(md, "mcp-guard fcursor tag", 21);
	tag_add(md, route);
	put_be(count, n, 8);
	EVP_DigestUpdate(md, count, sizeof count);
	for (size_t i = 0; i < n; i++)
		tag_add(md, servers[i]);
	tag_add(md, identity);
	if (EVP_DigestFinal_ex(md, h, &hl) == 1)
		tag = get_be(h, 8);
out:
	EVP_MD_CTX_free(md);
	return tag;
}

static void aad_of(uint8_t aad[sizeof AAD], uint8_t version)
{
	memcpy(aad, AAD, sizeof AAD - 1);
	aad[sizeof AAD - 1] = version;
}

int mg_fcursor_encode(const struct mg_fcursor_key *k, uint64_t tag, int64_t now,
                      const struct mg_fcursor *c, char **out)
{
	uint8_t plain[PLAIN_MAX], sealed[SEALED_MAX], aad[sizeof AAD];
	size_t ulen = c->upstream ? strlen(c->upstream) : 0;
	int rc = -1;
	*out = NULL;
	if (c->list >= MG_FCURSOR_LISTS || ulen > MG_FCURSOR_UPSTREAM_MAX)
		goto out;
	plain[0] = c->list;
	put_be(plain + 1, tag, 8);
	put_be(plain + 9, (uint64_t)now, 8);
	put_be(plain + 17, c->server, 4);
	plain[21] = c->upstream ? FLAG_UPSTREAM : 0;
	put_be(plain + 22, ulen, 2);
	if (ulen)
		memcpy(plain + HEAD_LEN, c->upstream, ulen);
	size_t plen = HEAD_LEN + ulen;
	sealed[0] = VERSION;
	if (mg_random_bytes(sealed + 1, MG_AEAD_NONCE_LEN) < 0)
		goto out;
	aad_of(aad, VERSION);
	uint8_t *ct = sealed + 1 + MG_AEAD_NONCE_LEN;
	if (mg_aead_gcm(true, k->k, sealed + 1, aad, sizeof aad, plain, plen, ct, ct + plen) !=
	    (int)plen)
		goto out;
	size_t total = 1 + MG_AEAD_NONCE_LEN + plen + MG_AEAD_TAG_LEN;
	size_t tlen = mg_base64_encoded_len(total, true);
	char *text = malloc(tlen + 1);
	if (!text)
		goto out;
	mg_base64_encode(sealed, total, text, tlen + 1, true);
	*out = text;
	rc = 0;
out:
	explicit_bzero(plain, sizeof plain);
	return rc;
}

static bool b64url_only(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false;
	}
	return true;
}

int mg_fcursor_decode(const struct mg_fcursor_key *k, uint64_t tag, uint8_t list, int64_t now,
                      const char *text, struct mg_fcursor *out, char *err, size_t errsz)
{
	uint8_t sealed[SEALED_MAX], plain[PLAIN_MAX], aad[sizeof AAD];
	int rc = -1;
	memset(out, 0, sizeof *out);
	size_t n = text ? strnlen(text, MG_FCURSOR_TEXT_MAX + 1) : 0;
	if (n == 0) {
		snprintf(err, errsz, "cursor is empty");
		goto out;
	}
	if (n > MG_FCURSOR_TEXT_MAX) {
		snprintf(err, errsz, "cursor is longer than %d characters", MG_FCURSOR_TEXT_MAX);
		goto out;
	}
	if (!b64url_only(text, n)) {
		snprintf(err, errsz, "cursor is not base64url text");
		goto out;
	}
	long sn = mg_base64_decode(text, n, sealed, sizeof sealed);
	if (sn < 0) {
		snprintf(err, errsz, "cursor is not base64url text (bad length or trailing bits)");
		goto out;
	}
	if (sealed[0] != VERSION) {
		snprintf(err, errsz, "cursor has unknown version %u", sealed[0]);
		goto out;
	}
	if (sn < SEALED_MIN) {
		snprintf(err, errsz, "cursor is truncated");
		goto out;
	}
	size_t plen = (size_t)sn - 1 - MG_AEAD_NONCE_LEN - MG_AEAD_TAG_LEN;
	const uint8_t *ct = sealed + 1 + MG_AEAD_NONCE_LEN;
	aad_of(aad, VERSION);
	if (mg_aead_gcm(false, k->k, sealed + 1, aad, sizeof aad, ct, plen, plain,
	                (uint8_t *)ct + plen) != (int)plen) {
		snprintf(
		    err, errsz,
		    "cursor is not one this gateway issued (altered, truncated, or sealed with "
		    "another cursor_secret)");
		goto out;
	}
	/* Authentic from here on: the checks below tell the client what it did
	 * wrong rather than defend against forgery. */
	size_t ulen = get_be(plain + 22, 2);
	if (plain[0] >= MG_FCURSOR_LISTS || HEAD_LEN + ulen != plen ||
	    (!(plain[21] & FLAG_UPSTREAM) && ulen) || (plain[21] & ~FLAG_UPSTREAM) ||
	    memchr(plain + HEAD_LEN, '\0', ulen)) {
		snprintf(err, errsz, "cursor is malformed");
		goto out;
	}
	if (plain[0] != list) {
		snprintf(err, errsz, "cursor belongs to %s, not %s", list_names[plain[0]],
		         mg_fcursor_list_name(list));
		goto out;
	}
	if (get_be(plain + 1, 8) != tag) {
		snprintf(err, errsz,
		         "cursor belongs to another endpoint or configuration (list again from the "
		         "start)");
		goto out;
	}
	int64_t issued = (int64_t)get_be(plain + 9, 8);
	if (now - issued > MG_FCURSOR_TTL || issued - now > MG_FCURSOR_SKEW) {
		snprintf(err, errsz, "cursor expired (older than %d s; list again from the start)",
		         MG_FCURSOR_TTL);
		goto out;
	}
	out->list = plain[0];
	out->server = (uint32_t)get_be(plain + 17, 4);
	if (plain[21] & FLAG_UPSTREAM) {
		out->upstream = malloc(ulen + 1);
		if (!out->upstream) {
			snprintf(err, errsz, "out of memory");
			goto out;
		}
		memcpy(out->upstream, plain + HEAD_LEN, ulen);
		out->upstream[ulen] = '\0';
	}
	rc = 0;
out:
	explicit_bzero(plain, sizeof plain);
	if (rc < 0)
		mg_fcursor_clear(out);
	return rc;
}

void mg_fcursor_clear(struct mg_fcursor *c)
{
	free(c->upstream);
	memset(c, 0, sizeof *c);
}
