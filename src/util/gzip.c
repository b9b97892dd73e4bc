/*
 * gzip.c - see gzip.h. One deflate stream per call, into room reserved
 * from deflateBound, so a body is compressed in a single deflate(Z_FINISH).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "util/gzip.h"

#define ZLIB_SONAME "libz.so.1"

static struct {
	int (*init2)(z_streamp, int, int, int, int, int, const char *, int);
	int (*deflate)(z_streamp, int);
	int (*end)(z_streamp);
	uLong (*bound)(z_streamp, uLong);
	const char *(*version)(void);
} Z;
static atomic_bool z_loaded;
static pthread_mutex_t z_mu = PTHREAD_MUTEX_INITIALIZER;

int mg_gzip_load(char *err, size_t err_size)
{
	if (atomic_load(&z_loaded))
		return 0;
	pthread_mutex_lock(&z_mu);
	int rc = 0;
	if (!atomic_load(&z_loaded)) {
		rc = -1;
		void *lib = dlopen(ZLIB_SONAME, RTLD_NOW | RTLD_LOCAL);
		if (!lib) {
			snprintf(err, err_size, "cannot load " ZLIB_SONAME ": %s", dlerror());
			goto out;
		}
		/* (the casts go through void *: ISO C has no object-to-function
		 * pointer conversion, POSIX guarantees this one works) */
		void *f[5] = { dlsym(lib, "deflateInit2_"), dlsym(lib, "deflate"),
			       dlsym(lib, "deflateEnd"), dlsym(lib, "deflateBound"),
			       dlsym(lib, "zlibVersion") };
		for (size_t i = 0; i < 5; i++) {
			if (!f[i]) {
				snprintf(err, err_size, "cannot load " ZLIB_SONAME ": %s",
				         dlerror());
				dlclose(lib);
				goto out;
			}
		}
		memcpy(&Z.init2, &f[0], sizeof f[0]);
		memcpy(&Z.deflate, &f[1], sizeof f[1]);
		memcpy(&Z.end, &f[2], sizeof f[2]);
		memcpy(&Z.bound, &f[3], sizeof f[3]);
		memcpy(&Z.version, &f[4], sizeof f[4]);
		/* zlib's rule: the same major version as the header we built with */
		if (Z.version()[0] != ZLIB_VERSION[0]) {
			snprintf(err, err_size, ZLIB_SONAME " is zlib %s; %c.x is needed",
			         Z.version(), ZLIB_VERSION[0]);
			dlclose(lib);
			goto out;
		}
		atomic_store(&z_loaded, true);
		rc = 0;
	}
out:
	pthread_mutex_unlock(&z_mu);
	return rc;
}

const char *mg_gzip_version(char *err, size_t err_size)
{
	return mg_gzip_load(err, err_size) == 0 ? Z.version() : NULL;
}

int mg_gzip(const void *in, size_t n, int level, struct mg_buf *out)
{
	if (!atomic_load(&z_loaded) || n > (size_t)UINT32_MAX)
		return -1;
	if (level < 0 || level > 9)
		level = Z_DEFAULT_COMPRESSION;
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	/* windowBits 15 + 16: a gzip header and trailer instead of zlib's */
	if (Z.init2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
	            (int)sizeof zs) != Z_OK)
		return -1;
	/* deflateBound is for the zlib wrapper; the gzip one is 12 bytes longer */
	size_t room = (size_t)Z.bound(&zs, (uLong)n) + 32;
	int rc = -1;
	if (mg_buf_reserve(out, room) < 0)
		goto out;
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)n;
	zs.next_out = (Bytef *)out->data + out->len;
	zs.avail_out = (uInt)room;
	if (Z.deflate(&zs, Z_FINISH) != Z_STREAM_END)
		goto out;
	out->len += (size_t)zs.total_out;
	out->data[out->len] = '\0';
	rc = 0;
out:
	Z.end(&zs);
	return rc;
}
