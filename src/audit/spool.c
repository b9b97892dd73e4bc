/*
 * spool.c - batches the HTTP export could not deliver, kept on disk until
 * it can.
 *
 * One file per batch in `spool_dir`, named by a 20-digit sequence number
 * (00000000000000000042.jsonl), holding the batch's records as JSON lines
 * (unframed: the export format is applied when the batch is sent, so a
 * configuration change between restarts still works). A file is written
 * under a temporary name, fsynced and renamed, so a crash leaves either
 * the whole batch or nothing; the writer sends the oldest file first and
 * removes it only after a 2xx, so every record is delivered once in the
 * normal case (a crash between the 2xx and the unlink re-sends that one
 * batch). The spool is bounded by `spool_max_bytes`: a batch that does not
 * fit is refused and the writer counts and logs it as dropped.
 *
 * Used by the writer thread only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/internal.h"
#include "util/buf.h"
#include "util/str.h"

#define MAX_FILES   1000000
#define MAX_BATCH   (256u * 1024 * 1024)
#define NAME_DIGITS 20

struct spool_file {
	uint64_t num;
	uint64_t bytes;
	uint64_t records;
};

struct mg_audit_spool {
	char *dir;
	uint64_t max_bytes;
	struct spool_file *files; /* sorted by num; [head, n) live */
	size_t head, n, cap;
	uint64_t bytes, records;
	uint64_t next_num;
};

static int cmp_file(const void *a, const void *b)
{
	const struct spool_file *x = a, *y = b;
	return x->num < y->num ? -1 : x->num > y->num;
}

static void file_path(const struct mg_audit_spool *sp, uint64_t num, const char *ext, char *out,
                      size_t size)
{
	snprintf(out, size, "%s/%020llu%s", sp->dir, (unsigned long long)num, ext);
}

static int push_file(struct mg_audit_spool *sp, struct spool_file f)
{
	if (sp->n == sp->cap) {
		if (sp->head > 0) {
			memmove(sp->files, sp->files + sp->head,
			        (sp->n - sp->head) * sizeof *sp->files);
			sp->n -= sp->head;
			sp->head = 0;
		}
		struct spool_file *nf = mg_grow(sp->files, &sp->cap, sp->n + 1, sizeof *nf);
		if (!nf)
			return -1;
		sp->files = nf;
	}
	sp->files[sp->n++] = f;
	sp->bytes += f.bytes;
	sp->records += f.records;
	return 0;
}

static int read_file(const char *path, struct mg_buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char chunk[65536];
	ssize_t r;
	int rc = 0;
	while ((r = read(fd, chunk, sizeof chunk)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -1;
			break;
		}
		if (mg_buf_append(out, chunk, (size_t)r) < 0) {
			rc = -1;
			break;
		}
	}
	close(fd);
	return rc;
}

static uint64_t count_lines(const char *p, size_t n)
{
	uint64_t c = 0;
	for (const char *e = p + n; p < e && (p = memchr(p, '\n', (size_t)(e - p))); p++)
		c++;
	return c;
}

struct mg_audit_spool *mg_audit_spool_open(const char *dir, uint64_t max_bytes, char *err,
                                           size_t err_size)
{
	struct mg_audit_spool *sp = calloc(1, sizeof *sp);
	DIR *d = NULL;
	if (!sp || !(sp->dir = mg_strdup(dir))) {
		snprintf(err, err_size, "out of memory");
		goto fail;
	}
	sp->max_bytes = max_bytes;
	sp->next_num = 1;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, err_size, "cannot create spool directory %s: %s", dir,
		         strerror(errno));
		goto fail;
	}
	d = opendir(dir);
	if (!d) {
		snprintf(err, err_size, "cannot open spool directory %s: %s", dir, strerror(errno));
		goto fail;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *name = e->d_name;
		size_t len = strlen(name);
		char path[4096];
		if (len == NAME_DIGITS + 4 && strcmp(name + NAME_DIGITS, ".tmp") == 0) {
			/* a batch that was being written when the process stopped: it
			 * was never acknowledged as spooled, its records were counted
			 * as dropped then */
			snprintf(path, sizeof path, "%s/%s", dir, name);
			unlink(path);
			continue;
		}
		if (len != NAME_DIGITS + 6 || strcmp(name + NAME_DIGITS, ".jsonl") != 0)
			continue;
		uint64_t num = 0;
		bool ok = true;
		for (size_t i = 0; i < NAME_DIGITS; i++) {
			if (name[i] < '0' || name[i] > '9')
				ok = false;
			else
				num = num * 10 + (uint64_t)(name[i] - '0');
		}
		if (!ok || sp->n >= MAX_FILES)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, name);
		struct mg_buf b;
		mg_buf_init(&b, MAX_BATCH);
		if (read_file(path, &b) < 0) {
			mg_buf_free(&b);
			snprintf(err, err_size, "cannot read spool file %s", path);
			goto fail;
		}
		struct spool_file f = { .num = num,
			                .bytes = b.len,
			                .records = count_lines(b.data, b.len) };
		mg_buf_free(&b);
		if (push_file(sp, f) < 0) {
			snprintf(err, err_size, "out of memory");
			goto fail;
		}
		if (num >= sp->next_num)
			sp->next_num = num + 1;
	}
	closedir(d);
	if (sp->n)
		qsort(sp->files, sp->n, sizeof *sp->files, cmp_file);
	return sp;
fail:
	if (d)
		closedir(d);
	mg_audit_spool_close(sp);
	return NULL;
}

int mg_audit_spool_put(struct mg_audit_spool *sp, const struct mg_audit_batch *b, char *err,
                       size_t err_size)
{
	uint64_t len = b->text.len;
	if (sp->bytes + len > sp->max_bytes) {
		snprintf(err, err_size, "the spool is full (%llu of %llu bytes)",
		         (unsigned long long)sp->bytes, (unsigned long long)sp->max_bytes);
		return -1;
	}
	char tmp[4096], final[4096];
	uint64_t num = sp->next_num;
	file_path(sp, num, ".tmp", tmp, sizeof tmp);
	file_path(sp, num, ".jsonl", final, sizeof final);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, err_size, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	const char *p = b->text.data ? b->text.data : "";
	size_t left = b->text.len;
	while (left) {
		ssize_t w = write(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			snprintf(err, err_size, "cannot write %s: %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			return -1;
		}
		p += w;
		left -= (size_t)w;
	}
	if (fsync(fd) < 0 || close(fd) < 0 || rename(tmp, final) < 0) {
		snprintf(err, err_size, "cannot store %s: %s", final, strerror(errno));
		unlink(tmp);
		return -1;
	}
	struct spool_file f = { .num = num, .bytes = len, .records = b->n };
	if (push_file(sp, f) < 0) {
		snprintf(err, err_size, "out of memory");
		return -1;
	}
	sp->next_num++;
	return 0;
}

int mg_audit_spool_peek(struct mg_audit_spool *sp, struct mg_audit_batch *b, char *err,
                        size_t err_size)
{
	if (sp->head == sp->n)
		return 0;
	char path[4096];
	file_path(sp, sp->files[sp->head].num, ".jsonl", path, sizeof path);
	mg_audit_batch_init(b);
	b->text.max = MAX_BATCH;
	if (read_file(path, &b->text) < 0) {
		snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
		mg_audit_batch_free(b);
		return -1;
	}
	b->n = count_lines(b->text.data, b->text.len);
	return 1;
}

void mg_audit_spool_pop(struct mg_audit_spool *sp)
{
	if (sp->head == sp->n)
		return;
	char path[4096];
	struct spool_file *f = &sp->files[sp->head++];
	file_path(sp, f->num, ".jsonl", path, sizeof path);
	unlink(path);
	sp->bytes -= f->bytes;
	sp->records -= f->records;
}

uint64_t mg_audit_spool_records(const struct mg_audit_spool *sp)
{
	return sp ? sp->records : 0;
}

uint64_t mg_audit_spool_files(const struct mg_audit_spool *sp)
{
	return sp ? sp->n - sp->head : 0;
}

void mg_audit_spool_close(struct mg_audit_spool *sp)
{
	if (!sp)
		return;
	free(sp->files);
	free(sp->dir);
	free(sp);
}
