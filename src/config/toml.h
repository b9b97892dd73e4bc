/*
 * toml.h - TOML 1.0 parser producing a configuration tree (tree.h).
 *
 * The input must be valid UTF-8, at most MG_CDOC_MAX_BYTES, nested at most
 * MG_CDOC_MAX_DEPTH deep. Everything TOML 1.0 defines is accepted and
 * everything else is rejected with the first error's exact location.
 */
#ifndef MG_CONFIG_TOML_H
#define MG_CONFIG_TOML_H

#include "config/tree.h"

/* Parses `len` bytes of `text` into a new document named `file`.
 * Returns the document (caller frees with mg_cdoc_free), or NULL with `err`
 * filled (err->loc.file points into static or caller storage that outlives
 * the call: the `file` argument). */
struct mg_cdoc *mg_toml_parse(const char *text, size_t len, const char *file,
                              struct mg_cerror *err);

#endif
