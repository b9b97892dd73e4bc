/*
 * file.c - bounded whole-file reads and atomic replacement (see file.h).
 *
 * The temporary file is named "<path>.tmp.<pid>.<thread>" so that the
 * gateway's worker and a CLI writing the same path at once never share
 * one; whoever renames last wins, which is why writers that merge (pins)
 * also hold a lock around read-modify-write.
 */
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int mg_file_read(const char *path, size_t max, struct mg_buf *out, char *err, size_t n)
{
	int rc = -1;
	mg_buf_reset(out);
	out->max = max;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, n, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	char chunk[65536];
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, n, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		if (mg_buf_append(out, chunk, (size_t)r) < 0) {
			snprintf(err, n, "%s is larger than %zu bytes", path, max);
			goto out;
		}
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

int mg_file_replace(const char *path, const void *data, size_t len, unsigned mode, char *err,
                    size_t n)
{
	char tmp[4096], dir[4096];
	int k = snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%ld", path, (long)getpid(),
	                 (long)syscall(SYS_gettid));
	if (k < 0 || (size_t)k >= sizeof tmp) {
		snprintf(err, n, "path too long: %s", path);
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(err, n, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	const char *p = data;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			snprintf(err, n, "cannot write %s: %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	if (fchmod(fd, mode) < 0 || fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
		snprintf(err, n, "cannot store %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	/* The rename itself is durable only once the directory is synced. */
	const char *slash = strrchr(path, '/');
	if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else if (slash)
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	else
		snprintf(dir, sizeof dir, ".");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}
