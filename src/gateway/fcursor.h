/*
 * fcursor.h - the federated endpoint's list cursor: "continue this list at
 * server index `server` with that server's own cursor `upstream`", sealed
 * (AES-256-GCM) so a client can neither read nor change it, and bound to one
 * list method and one route (`tag`). Design notes at the top of fcursor.c.
 *
 * Pure: no I/O; randomness from util/crypto, time as a parameter.
 */
#ifndef MG_GATEWAY_FCURSOR_H
#define MG_GATEWAY_FCURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "util/crypto.h"

/* The list methods a federated cursor can belong to (`list` below). */
enum mg_fcursor_list {
	MG_FCURSOR_TOOLS = 0,              /* tools/list */
	MG_FCURSOR_PROMPTS = 1,            /* prompts/list */
	MG_FCURSOR_RESOURCES = 2,          /* resources/list */
	MG_FCURSOR_RESOURCE_TEMPLATES = 3, /* resources/templates/list */
};
#define MG_FCURSOR_LISTS 4

#define MG_FCURSOR_UPSTREAM_MAX 4096 /* longest upstream cursor carried, bytes */
#define MG_FCURSOR_TEXT_MAX     5600 /* longest encoded cursor accepted, characters */
#define MG_FCURSOR_TTL          3600 /* seconds a cursor stays valid after it was issued */
#define MG_FCURSOR_SKEW                                                                            \
	300 /* seconds a cursor may come from the future (clocks of
                                        several instances) */

/* The sealing key. */
struct mg_fcursor_key {
	uint8_t k[MG_AEAD_KEY_LEN];
};

/* A decoded cursor. `server` is NOT checked against anything here: the
 * caller must refuse (-32602) an index >= the number of servers of its
 * route before using it. */
struct mg_fcursor {
	uint8_t list;    /* enum mg_fcursor_list */
	uint32_t server; /* index of the server to continue at, in the route's order */
	char *upstream;  /* that server's cursor (malloc'd, NUL-terminated), or NULL: its first
	                    page */
};

/* Fills `k` from `secret` (`len` bytes; HMAC-SHA256 over a fixed label, so
 * the secret itself is never the AES key), or with random bytes when
 * `secret` is NULL (cursors then only open in this process). 0, or -1 when
 * no randomness is available. */
int mg_fcursor_key_init(struct mg_fcursor_key *k, const void *secret, size_t len);

/* A route tag for mg_fcursor_encode/decode: the first 8 bytes of SHA-256
 * over `route` (the endpoint's name or path), the `n` server names in the
 * route's order, and `identity` (NULL: none; pass the caller's identity to
 * bind cursors to it, DESIGN §8), each length-prefixed so that no two
 * different inputs share an encoding. A reload that changes the route's
 * servers or their order changes the tag, so older cursors are refused. */
uint64_t mg_fcursor_tag(const char *route, const char *const *servers, size_t n,
                        const char *identity);

/* The textual name of list method `list` ("tools/list", ...), or "?". */
const char *mg_fcursor_list_name(unsigned list);

/* Seals `c` into printable text (base64url, no padding) bound to `tag` and
 * issued at `now` (Unix seconds). On success *out is the malloc'd text
 * (owned by the caller, at most MG_FCURSOR_TEXT_MAX characters) and 0 is
 * returned; -1 when c->list is not a list method, c->upstream is longer
 * than MG_FCURSOR_UPSTREAM_MAX, or on allocation/randomness failure. */
int mg_fcursor_encode(const struct mg_fcursor_key *k, uint64_t tag, int64_t now,
                      const struct mg_fcursor *c, char **out);

/* Opens `text` (NUL-terminated, from the client) received at `now` for list
 * method `list` on the route `tag`. 0 and *out filled (release with
 * mg_fcursor_clear), or -1 with a precise message in `err` (never the
 * plaintext) for anything empty, too long, not base64url, truncated, of an
 * unknown version, forged or edited or sealed with another key, expired,
 * for another list method or another route; *out is then empty. */
int mg_fcursor_decode(const struct mg_fcursor_key *k, uint64_t tag, uint8_t list, int64_t now,
                      const char *text, struct mg_fcursor *out, char *err, size_t errsz);

/* Frees c->upstream and empties `c` (safe on an empty cursor). */
void mg_fcursor_clear(struct mg_fcursor *c);

#endif
