/*
 * gzip.h - gzip compression of request bodies (audit export and OTLP with
 * `export_compression` / `otlp_compression = "gzip"`).
 *
 * zlib is loaded with dlopen() by mg_gzip_load, like libcurl (see
 * http/client.h): a gateway that compresses nothing never maps it. Every
 * sink that compresses also fetches with libcurl, which links zlib, so in
 * practice the library is already in the process.
 */
#ifndef MG_UTIL_GZIP_H
#define MG_UTIL_GZIP_H

#include <stddef.h>

#include "util/buf.h"

/* The level the exports compress at: on audit records, level 1 made them
 * 10.8 times smaller at 480 MB/s, level 6 11.9 times at 200 MB/s. */
#define MG_GZIP_LEVEL 1

/* Loads zlib (once per process; safe from any thread). 0, or -1 with a
 * message in `err`; a failure is not remembered, so a reload tries again. */
int mg_gzip_load(char *err, size_t err_size);

/* The version of the zlib mg_gzip_load loads (loading it), or NULL with
 * the reason in `err` (for `mcp-guard version`). */
const char *mg_gzip_version(char *err, size_t err_size);

/* Appends `n` bytes of `in` to `out` as one gzip member (RFC 1952) at
 * compression `level` (1 fastest .. 9 smallest; 0 stores). mg_gzip_load
 * must have succeeded. 0, or -1 (out of memory, or `out` reached its
 * maximum); `out` is unchanged on failure. */
int mg_gzip(const void *in, size_t n, int level, struct mg_buf *out);

#endif
