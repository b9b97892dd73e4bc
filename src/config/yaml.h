/*
 * yaml.h - YAML (1.2 core schema subset) loader producing a configuration
 * tree (tree.h), built on libyaml's event parser.
 *
 * One document; mappings become tables, sequences arrays, plain scalars are
 * typed by the YAML 1.2 core schema (null, bool, integer, float, else
 * string: `yes`/`on` and `0644`-as-octal are YAML 1.1 and do not apply),
 * quoted and block scalars are strings unless explicitly tagged with
 * !!str/!!int/!!float/!!bool/!!null. Anchors are ignored; aliases, merge
 * keys (<<), other tags, duplicate keys, non-scalar keys, multiple
 * documents, invalid UTF-8 and NUL bytes are errors with the exact
 * location.
 */
#ifndef MG_CONFIG_YAML_H
#define MG_CONFIG_YAML_H

#include "config/tree.h"

/* Same contract as mg_toml_parse. */
struct mg_cdoc *mg_yaml_parse(const char *text, size_t len, const char *file,
                              struct mg_cerror *err);

#endif
