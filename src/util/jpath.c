/*
 * jpath.c - parsing the JSON paths of jpath.h. Bounded: MG_JPATH_MAX_LEN
 * bytes, MG_JPATH_MAX_SEGMENTS segments, indexes below one million.
 */
#include "util/jpath.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/str.h"

void mg_jpath_free(struct mg_jpath *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->seg[i].name);
	p->n = 0;
}

static bool name_char(char c)
{
	return c && c != '.' && c != '[' && c != ']' && c != '\'' && c != '"' && c != ' ';
}

/* Parses `s` into `p`; 0 or -1 with `err`. */
int mg_jpath_parse(const char *s, struct mg_jpath *p, char *err, size_t err_size)
{
	memset(p, 0, sizeof *p);
	size_t len = strlen(s);
	if (len > MG_JPATH_MAX_LEN) {
		snprintf(err, err_size, "longer than %d bytes", MG_JPATH_MAX_LEN);
		return -1;
	}
	if (s[0] != '$') {
		snprintf(err, err_size, "a JSON path starts with $ (e.g. $.password, $..secret)");
		return -1;
	}
	size_t i = 1;
	while (i < len) {
		if (p->n == MG_JPATH_MAX_SEGMENTS) {
			snprintf(err, err_size, "more than %d segments", MG_JPATH_MAX_SEGMENTS);
			goto fail;
		}
		struct mg_jpath_seg *g = &p->seg[p->n];
		if (s[i] == '.') {
			i++;
			if (s[i] == '.') {
				g->deep = true;
				i++;
			}
			if (s[i] == '*') {
				g->kind = MG_JPATH_ANY;
				i++;
			} else if (s[i] == '[' && g->deep) {
				goto bracket;
			} else {
				size_t st = i;
				while (i < len && name_char(s[i]))
					i++;
				if (i == st) {
					snprintf(err, err_size, "expected a key name at offset %zu",
					         st);
					goto fail;
				}
				g->kind = MG_JPATH_NAME;
				g->name = mg_strndup(s + st, i - st);
			}
			p->n++;
			continue;
		}
		if (s[i] != '[') {
			snprintf(err, err_size, "unexpected '%c' at offset %zu", s[i], i);
			goto fail;
		}
	bracket:
		i++;
		if (s[i] == '*' && s[i + 1] == ']') {
			g->kind = MG_JPATH_ANY;
			i += 2;
		} else if (s[i] == '\'' || s[i] == '"') {
			char q = s[i++];
			size_t st = i;
			while (i < len && s[i] != q)
				i++;
			if (i >= len || s[i + 1] != ']' || i == st) {
				snprintf(err, err_size,
				         "unterminated or empty quoted key at offset %zu", st - 1);
				goto fail;
			}
			g->kind = MG_JPATH_NAME;
			g->name = mg_strndup(s + st, i - st);
			i += 2;
		} else if (s[i] >= '0' && s[i] <= '9') {
			size_t v = 0;
			while (s[i] >= '0' && s[i] <= '9' && v < 1000000)
				v = v * 10 + (size_t)(s[i++] - '0');
			if (s[i] != ']') {
				snprintf(err, err_size, "expected ] at offset %zu", i);
				goto fail;
			}
			g->kind = MG_JPATH_INDEX;
			g->index = v;
			i++;
		} else {
			snprintf(err, err_size,
			         "expected *, a quoted key or an index after [ at offset %zu",
			         i - 1);
			goto fail;
		}
		p->n++;
	}
	return 0;
fail:
	mg_jpath_free(p);
	return -1;
}
