/*
 * load.c - reads a configuration file and produces `struct mg_config`:
 * file → tree (TOML or YAML) → environment overrides → schema decode.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "config/schema.h"
#include "config/toml.h"
#include "config/yaml.h"
#include "util/buf.h"
#include "util/str.h"

static enum mg_config_format guess_format(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (dot && (strcmp(dot, ".yaml") == 0 || strcmp(dot, ".yml") == 0))
		return MG_CONFIG_YAML;
	return MG_CONFIG_TOML;
}

struct mg_config *mg_config_load_buffer(const char *text, size_t len, const char *name,
                                        enum mg_config_format format, char *const *envp,
                                        struct mg_diag *diag)
{
	struct mg_cerror err = { 0 };
	struct mg_cdoc *doc;
	struct mg_config *cfg = NULL;
	if (format == MG_CONFIG_AUTO)
		format = guess_format(name);
	if (format == MG_CONFIG_YAML)
		doc = mg_yaml_parse(text, len, name, &err);
	else
		doc = mg_toml_parse(text, len, name, &err);
	if (!doc) {
		mg_diag_add(diag, false, name, err.loc.line, err.loc.col, "", "%s",
		            err.msg[0] ? err.msg : "cannot parse");
		return NULL;
	}
	size_t errors = mg_schema_apply_env(doc, envp, diag);
	cfg = calloc(1, sizeof *cfg);
	if (!cfg) {
		mg_diag_add(diag, false, name, 0, 0, "", "out of memory");
		goto out;
	}
	errors += mg_schema_decode(doc, cfg, envp, diag);
	cfg->source = mg_strdup(name);
	if (errors) {
		mg_config_free(cfg);
		cfg = NULL;
	}
out:
	mg_cdoc_free(doc);
	return cfg;
}

struct mg_config *mg_config_load(const char *path, enum mg_config_format format, char *const *envp,
                                 struct mg_diag *diag)
{
	struct stat st;
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		mg_diag_add(diag, false, path, 0, 0, "", "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fileno(fp), &st) == 0 && !S_ISREG(st.st_mode)) {
		fclose(fp);
		mg_diag_add(diag, false, path, 0, 0, "", "not a regular file");
		return NULL;
	}
	struct mg_buf b;
	mg_buf_init(&b, MG_CDOC_MAX_BYTES);
	char chunk[16384];
	size_t r;
	while ((r = fread(chunk, 1, sizeof chunk, fp)) > 0) {
		if (mg_buf_append(&b, chunk, r) < 0) {
			fclose(fp);
			mg_buf_free(&b);
			mg_diag_add(
			    diag, false, path, 0, 0, "",
			    "file is larger than %u bytes; this is not a configuration file",
			    MG_CDOC_MAX_BYTES);
			return NULL;
		}
	}
	bool failed = ferror(fp);
	fclose(fp);
	if (failed) {
		mg_buf_free(&b);
		mg_diag_add(diag, false, path, 0, 0, "", "read error");
		return NULL;
	}
	struct mg_config *cfg =
	    mg_config_load_buffer(b.data ? b.data : "", b.len, path, format, envp, diag);
	mg_buf_free(&b);
	return cfg;
}

void mg_config_free(struct mg_config *cfg)
{
	if (!cfg)
		return;
	mg_schema_free(&mg_schema_root, cfg);
	/* The single [upstream] form has no name/path_prefix keys; the upstream
	 * check fills them, so they are freed here rather than by the schema. */
	free(cfg->upstream.single.name);
	free(cfg->upstream.single.path_prefix);
	free(cfg->source);
	free(cfg);
}

size_t mg_config_upstreams(const struct mg_config *cfg, const struct mg_upstream_config **out)
{
	if (cfg->upstream.n_servers) {
		*out = cfg->upstream.servers;
		return cfg->upstream.n_servers;
	}
	*out = &cfg->upstream.single;
	return cfg->upstream.single_present ? 1 : 0;
}
