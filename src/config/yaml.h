/*
 * yaml.h - YAML (1.2 core schema subset) loader producing a configuration
 * tree (tree.h), built on libyaml's event parser.
 *
 * One document; mappings become tables, sequences arrays, plain scalars are
 * typed (null, bool, integer, float, else string), quoted scalars are
 * strings. Duplicate keys, non-scalar keys, aliases, multiple documents,
 * invalid UTF-8 and NUL bytes are errors with the exact location.
 */
#ifndef MG_CONFIG_YAML_H
#define MG_CONFIG_YAML_H

#include "config/tree.h"

/* Same contract as mg_toml_parse. */
struct mg_cdoc *mg_yaml_parse(const char *text, size_t len, const char *file,
                              struct mg_cerror *err);

#endif
