/*
 * file.h - whole-file reads with a ceiling and crash-safe replacement of a
 * small state file. Blocking: call them from a worker thread or the CLI,
 * never from the event loop.
 */
#ifndef MG_UTIL_FILE_H
#define MG_UTIL_FILE_H

#include <stddef.h>

#include "util/buf.h"

/* Reads the whole file at `path` into `out` (reset first; its maximum is
 * raised to `max`). 0; 1 when the file does not exist; -1 with `err` when
 * it cannot be read or is larger than `max` bytes. */
int mg_file_read(const char *path, size_t max, struct mg_buf *out, char *err, size_t n);

/* Replaces `path` with `len` bytes of `data` so that a crash leaves either
 * the old or the new contents: a temporary file in the same directory
 * (mode `mode`), fsync, rename(2), fsync of the directory. 0, or -1 with
 * `err`. */
int mg_file_replace(const char *path, const void *data, size_t len, unsigned mode, char *err,
                    size_t n);

#endif
