/*
 * test_util.c - buffers, base64, hashing, constant-time compare, UTF-8,
 * number parsing.
 */
#include "support.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/crypto.h"
#include "util/gzip.h"
#include "util/log.h"
#include "util/str.h"

static void test_buf_limit(void **state)
{
	(void)state;
	struct mg_buf b;
	mg_buf_init(&b, 8);
	assert_int_equal(mg_buf_puts(&b, "12345678"), 0);
	assert_int_equal(mg_buf_putc(&b, '9'), -1);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.data, "12345678");
	mg_buf_consume(&b, 3);
	assert_string_equal(b.data, "45678");
	assert_int_equal(mg_buf_printf(&b, "%d", 123), 0);
	assert_int_equal(mg_buf_printf(&b, "%d", 4), -1);
	mg_buf_free(&b);
}

static void test_base64(void **state)
{
	(void)state;
	char out[64];
	uint8_t raw[64];
	mg_base64_encode("foobar", 6, out, sizeof out, false);
	assert_string_equal(out, "Zm9vYmFy");
	mg_base64_encode("fooba", 5, out, sizeof out, false);
	assert_string_equal(out, "Zm9vYmE=");
	mg_base64_encode("foob", 4, out, sizeof out, true);
	assert_string_equal(out, "Zm9vYg");
	const uint8_t bin[] = { 0xfb, 0xff };
	mg_base64_encode(bin, 2, out, sizeof out, true);
	assert_string_equal(out, "-_8");
	assert_int_equal(mg_base64_decode("-_8", 3, raw, sizeof raw), 2);
	assert_memory_equal(raw, bin, 2);
	assert_int_equal(mg_base64_decode("Zm9vYmE=", 8, raw, sizeof raw), 5);
	assert_int_equal(mg_base64_decode("Zm9vYmE", 7, raw, sizeof raw), 5);
	/* Non-canonical trailing bits, bad characters, bad length. */
	assert_int_equal(mg_base64_decode("Zm9vYmF=", 8, raw, sizeof raw), -1);
	assert_int_equal(mg_base64_decode("Zm9v YmE", 8, raw, sizeof raw), -1);
	assert_int_equal(mg_base64_decode("Z", 1, raw, sizeof raw), -1);
	assert_int_equal(mg_base64_decode("Zm9vYmFy", 8, raw, 5), -1);
}

static void test_sha256_and_ct(void **state)
{
	(void)state;
	uint8_t d[MG_SHA256_LEN];
	char b64[64];
	mg_sha256("", 0, d);
	mg_base64_encode(d, sizeof d, b64, sizeof b64, false);
	assert_string_equal(b64, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	assert_true(mg_ct_equal("abc", "abc", 3));
	assert_false(mg_ct_equal("abc", "abd", 3));
	uint8_t r1[16], r2[16];
	assert_int_equal(mg_random_bytes(r1, 16), 0);
	assert_int_equal(mg_random_bytes(r2, 16), 0);
	assert_false(mg_ct_equal(r1, r2, 16));
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(mg_utf8_valid("héllo €𝄞", strlen("héllo €𝄞")));
	assert_false(mg_utf8_valid("\xc0\xaf", 2));         /* overlong */
	assert_false(mg_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	assert_false(mg_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(mg_utf8_valid("\xe2\x82", 2));         /* truncated */
}

static void test_parse(void **state)
{
	(void)state;
	int64_t v;
	double f;
	assert_int_equal(mg_parse_i64("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(mg_parse_i64("101", 0, 100, &v), -1);
	assert_int_equal(mg_parse_i64("4x", 0, 100, &v), -1);
	assert_int_equal(mg_parse_i64(" 4", 0, 100, &v), -1);
	assert_int_equal(mg_parse_i64("", 0, 100, &v), -1);
	assert_int_equal(mg_parse_i64("99999999999999999999", INT64_MIN, INT64_MAX, &v), -1);
	assert_int_equal(mg_parse_double("0.5", &f), 0);
	assert_int_equal(mg_parse_double("inf", &f), -1);
	assert_int_equal(mg_str_distance("hots", "host", 8), 1);
	assert_int_equal(mg_str_distance("kitten", "sitting", 8), 3);
	assert_true(mg_str_eq_ci("Content-Type", "content-type"));
	/* mg_fmt_i64 agrees with printf at the edges. */
	static const int64_t nums[] = { 0, 7, -7, 10, 1234567890123, INT64_MAX, INT64_MIN };
	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
		char a[MG_I64_CHARS + 1], b[32];
		a[mg_fmt_i64(a, nums[i])] = '\0';
		snprintf(b, sizeof b, "%lld", (long long)nums[i]);
		assert_string_equal(a, b);
	}
	/* mg_str_copy: truncates as snprintf("%s") does; NULL is "" */
	char small[5];
	assert_int_equal(mg_str_copy(small, sizeof small, "tools/call"), 4);
	assert_string_equal(small, "tool");
	assert_int_equal(mg_str_copy(small, sizeof small, "ab"), 2);
	assert_string_equal(small, "ab");
	assert_int_equal(mg_str_copy(small, sizeof small, NULL), 0);
	assert_string_equal(small, "");
	assert_int_equal(mg_str_copy(small, 1, "x"), 0);
	assert_string_equal(small, "");
	/* ... and at every length and digit pair */
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		int64_t r = (int64_t)(x >> (x % 64));
		if (i & 1)
			r = -r;
		char a[MG_I64_CHARS + 1], b[32];
		a[mg_fmt_i64(a, r)] = '\0';
		snprintf(b, sizeof b, "%lld", (long long)r);
		assert_string_equal(a, b);
	}
}

/* Runs mg_log_info(msg) with stderr sent to a temporary file; returns the
 * line written (static buffer). */
static const char *logged(const char *msg)
{
	static char out[4096];
	fflush(stderr);
	int saved = dup(2);
	FILE *f = tmpfile();
	assert_non_null(f);
	dup2(fileno(f), 2);
	mg_log_info("%s", msg);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	size_t n = fread(out, 1, sizeof out - 1, f);
	out[n] = '\0';
	fclose(f);
	return out;
}

static void *other_thread(void *arg)
{
	struct mg_log_ctx *c = arg;
	*c = mg_log_ctx_get();
	return NULL;
}

static void test_log_ctx(void **state)
{
	(void)state;
	char buf[MG_LOG_CTX_CHARS];
	mg_log_ctx_clear();
	assert_int_equal(mg_log_ctx_format(NULL, buf), 0);
	assert_string_equal(buf, "");
	const char *l = logged("no request");
	assert_non_null(strstr(l, " INFO  no request\n"));
	assert_null(strstr(l, "request_id="));

	struct mg_log_ctx c = { .request_id = 0x0123456789abcdefull };
	struct mg_log_ctx prev = mg_log_ctx_set(&c);
	assert_int_equal(prev.request_id, 0);
	assert_string_equal((mg_log_ctx_format(&c, buf), buf), " request_id=0123456789abcdef");
	l = logged("denied");
	assert_non_null(strstr(l, " denied request_id=0123456789abcdef\n"));

	uint8_t tid[16];
	for (int i = 0; i < 16; i++)
		tid[i] = (uint8_t)(0xa0 + i);
	mg_log_ctx_set_trace(tid);
	l = logged("with trace");
	assert_non_null(strstr(l, " with trace request_id=0123456789abcdef "
	                          "trace_id=a0a1a2a3a4a5a6a7a8a9aaabacadaeaf\n"));

	/* Worker threads never see the loop's context. */
	pthread_t th;
	struct mg_log_ctx seen = { .request_id = 1 };
	assert_int_equal(pthread_create(&th, NULL, other_thread, &seen), 0);
	pthread_join(th, NULL);
	assert_int_equal(seen.request_id, 0);

	/* A long message is cut, the context and the line break stay. */
	char *big = malloc(5000);
	memset(big, 'x', 4999);
	big[4999] = '\0';
	l = logged(big);
	free(big);
	assert_non_null(strstr(l, "x request_id=0123456789abcdef trace_id="));
	assert_int_equal(l[strlen(l) - 1], '\n');
	assert_true(strlen(l) < 2048);

	/* A nested request's context, then back to the outer one, then none. */
	struct mg_log_ctx inner = { .request_id = 0x42 };
	struct mg_log_ctx outer = mg_log_ctx_set(&inner);
	assert_non_null(strstr(logged("inner"), " inner request_id=0000000000000042\n"));
	mg_log_ctx_restore(outer);
	assert_non_null(strstr(logged("outer"), "request_id=0123456789abcdef trace_id=a0a1"));
	mg_log_ctx_restore(prev);
	assert_null(strstr(logged("after"), "request_id="));
	/* A trace id without a request is ignored. */
	mg_log_ctx_set_trace(tid);
	assert_int_equal(mg_log_ctx_get().has_trace, false);
}

/* What one mg_log call writes to stderr, in `format`. */
static char *log_line(enum mg_log_format format, const char *fmt, const char *arg)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	int saved = dup(STDERR_FILENO);
	dup2(fds[1], STDERR_FILENO);
	mg_log_set_format(format);
	mg_log_info(fmt, arg);
	mg_log_set_format(MG_LOG_TEXT);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fds[1]);
	static char buf[8192];
	ssize_t n = read(fds[0], buf, sizeof buf - 1);
	close(fds[0]);
	assert_true(n > 0);
	buf[n] = '\0';
	return buf;
}

/* The JSON log format: one object per line, whatever the message holds;
 * the request context as members. */
static void test_log_json(void **state)
{
	(void)state;
	mg_log_ctx_clear();
	char *l = log_line(MG_LOG_JSON, "upstream %s: \"quoted\"\n\tand \x01", "caf\xc3\xa9");
	assert_int_equal(l[strlen(l) - 1], '\n');
	assert_ptr_equal(strchr(l, '\n'), l + strlen(l) - 1); /* one line */
	json_error_t je;
	json_t *j = json_loads(l, 0, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
	assert_string_equal(json_string_value(json_object_get(j, "msg")),
	                    "upstream caf\xc3\xa9: \"quoted\"\n\tand \x01");
	assert_int_equal(strlen(json_string_value(json_object_get(j, "time"))), 24);
	assert_null(json_object_get(j, "request_id"));
	json_decref(j);
	/* invalid UTF-8: the bytes as \u00XX, the line still parses */
	l = log_line(MG_LOG_JSON, "bad %s", "\xff\xfe");
	j = json_loads(l, 0, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "bad \xc3\xbf\xc3\xbe");
	json_decref(j);
	/* the request's ids */
	struct mg_log_ctx c = { .request_id = 0x0123456789abcdefull };
	struct mg_log_ctx prev = mg_log_ctx_set(&c);
	uint8_t tid[16];
	for (int i = 0; i < 16; i++)
		tid[i] = (uint8_t)(0xa0 + i);
	mg_log_ctx_set_trace(tid);
	l = log_line(MG_LOG_JSON, "%s", "x");
	j = json_loads(l, 0, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "request_id")),
	                    "0123456789abcdef");
	assert_string_equal(json_string_value(json_object_get(j, "trace_id")),
	                    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
	json_decref(j);
	/* long messages are cut, never inside an escape or a character */
	static char big[4096];
	for (size_t shift = 0; shift < 6; shift++) {
		size_t n = 0;
		while (n + 3 < sizeof big - 1) {
			if (n % 7 == shift % 7)
				big[n++] = '"';
			else if (n % 5 == 0) {
				memcpy(big + n, "\xe2\x82\xac", 3); /* € */
				n += 3;
			} else
				big[n++] = 'a';
		}
		big[n] = '\0';
		l = log_line(MG_LOG_JSON, "%s", big);
		assert_true(strlen(l) <= 2048);
		j = json_loads(l, 0, &je);
		if (!j)
			fail_msg("shift %zu: %s", shift, je.text);
		assert_non_null(json_object_get(j, "request_id"));
		json_decref(j);
	}
	mg_log_ctx_restore(prev);
	/* the text format is unchanged */
	l = log_line(MG_LOG_TEXT, "plain %s", "line");
	assert_non_null(strstr(l, " INFO  plain line"));
	assert_int_equal(l[0], '2');
}

static void test_json_plain(void **state)
{
	(void)state;
	assert_true(mg_json_plain("", 0));
	assert_true(mg_json_plain("tools/call echo 127.0.0.1 ~!", 28));
	const char *bad[] = { "a\"b", "a\\b", "a\nb", "a\x7f", "caf\xc3\xa9", "\x01" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		/* at every position of a long string, in the 8-byte loop and the tail */
		for (size_t pos = 0; pos < 20; pos++) {
			char s[64];
			memset(s, 'x', sizeof s);
			size_t bl = strlen(bad[i]);
			memcpy(s + pos, bad[i], bl);
			assert_false(mg_json_plain(s, 24));
		}
	}
	char all[256];
	for (int c = 0; c < 256; c++) {
		memset(all, 'a', 16);
		all[c % 16] = (char)c;
		bool plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
		assert_int_equal(mg_json_plain(all, 16), plain);
		assert_int_equal(mg_json_plain(all, 5), c % 16 < 5 ? plain : true);
	}
	/* short strings (bytes, two 4-byte words): every byte at every position */
	for (size_t n = 1; n <= 9; n++) {
		for (size_t pos = 0; pos < n; pos++) {
			for (int c = 0; c < 256; c++) {
				char s[16];
				memset(s, 'z', sizeof s);
				s[pos] = (char)c;
				bool plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
				assert_int_equal(mg_json_plain(s, n), plain);
			}
		}
	}
	/* every length up to 40, one bad byte at every position: the short
	 * loop, the words and the overlapping last word */
	for (size_t n = 1; n <= 40; n++) {
		char s[48];
		memset(s, 'y', sizeof s);
		assert_true(mg_json_plain(s, n));
		for (size_t pos = 0; pos < n; pos++) {
			static const unsigned char bytes[] = { '"',  '\\', '\n', 0x01, 0x1f,
				                               0x7f, 0x80, 0xc3, 0xff };
			for (size_t i = 0; i < sizeof bytes; i++) {
				memset(s, 'y', sizeof s);
				s[pos] = (char)bytes[i];
				assert_false(mg_json_plain(s, n));
			}
			/* a bad byte just past the end is not looked at */
			memset(s, 'y', sizeof s);
			s[n] = '"';
			assert_true(mg_json_plain(s, n));
		}
	}
}

/* Array growth: doubling from 8, the caller's array kept on failure. */
static void test_grow(void **state)
{
	(void)state;
	int *v = NULL;
	size_t cap = 0;
	v = mg_grow(v, &cap, 1, sizeof *v);
	assert_non_null(v);
	assert_int_equal(cap, 8);
	for (int i = 0; i < 8; i++)
		v[i] = i;
	assert_ptr_equal(mg_grow(v, &cap, 8, sizeof *v), v); /* room: unchanged */
	int *w = mg_grow(v, &cap, 9, sizeof *v);
	assert_non_null(w);
	assert_int_equal(cap, 16);
	assert_int_equal(w[7], 7);
	w[8] = 8;
	v = w;
	w = mg_grow(v, &cap, 100, sizeof *v); /* 16 -> 32 -> 64 -> 128 */
	assert_non_null(w);
	assert_int_equal(cap, 128);
	v = w;
	/* Sizes that overflow: NULL, the array and its capacity untouched. */
	assert_null(mg_grow(v, &cap, SIZE_MAX / 2, sizeof *v));
	assert_null(mg_grow(v, &cap, SIZE_MAX / 2 + 1, 2));
	assert_int_equal(cap, 128);
	assert_int_equal(v[8], 8);
	free(v);
}

/* mg_unix_us_at: the wall clock of a monotonic reading, within the
 * second its offset may be stale; older readings map to earlier times. */
static void test_unix_at(void **state)
{
	(void)state;
	struct timespec w;
	clock_gettime(CLOCK_REALTIME, &w);
	int64_t wall = (int64_t)w.tv_sec * 1000000 + w.tv_nsec / 1000;
	uint64_t now = mg_now_us();
	int64_t at = mg_unix_us_at(now);
	assert_true(at >= wall - 1000000 && at <= wall + 1000000);
	/* the same offset for a reading of a moment ago: exactly that much earlier */
	assert_true(mg_unix_us_at(now - 250000) == at - 250000);
	/* two seconds later, the offset is read again: still the wall clock */
	int64_t later = mg_unix_us_at(now + 2000000);
	assert_true(later >= wall + 1000000 && later <= wall + 3000000);
}

/* mg_hex (eight bytes at a time by word arithmetic) agrees with printf
 * for every byte value, at every length and alignment, and writes exactly
 * 2n bytes. */
static void test_hex(void **state)
{
	(void)state;
	uint8_t d[300];
	for (size_t i = 0; i < sizeof d; i++)
		d[i] = (uint8_t)(i * 7 + (i >> 8)); /* all 256 values, in no order */
	for (size_t off = 0; off < 8; off++) {
		for (size_t n = 0; n <= 260; n += n < 20 ? 1 : 37) {
			char got[2 * 300 + 1], want[2 * 300 + 1];
			memset(got, 'X', sizeof got);
			mg_hex(d + off, n, got);
			assert_int_equal(got[2 * n], 'X');
			got[2 * n] = '\0';
			for (size_t i = 0; i < n; i++)
				snprintf(want + 2 * i, 3, "%02x", d[off + i]);
			want[2 * n] = '\0';
			assert_string_equal(got, want);
		}
	}
	char u[17];
	mg_hex_u64(0x0123456789abcdefull, u);
	u[16] = '\0';
	assert_string_equal(u, "0123456789abcdef");
	mg_hex_u64(0xfedcba9876543210ull, u);
	assert_string_equal(u, "fedcba9876543210");
}

/* What zlib's own inflate makes of mg_gzip's output (one gzip member). */
static void gunzip_equals(const struct mg_buf *z, const void *want, size_t n)
{
	assert_true(z->len >= 18);
	assert_int_equal((unsigned char)z->data[0], 0x1f); /* the gzip magic */
	assert_int_equal((unsigned char)z->data[1], 0x8b);
	unsigned char *back = malloc(n + 1);
	assert_non_null(back);
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
	zs.next_in = (Bytef *)z->data;
	zs.avail_in = (uInt)z->len;
	zs.next_out = back;
	zs.avail_out = (uInt)n + 1;
	assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
	assert_int_equal(zs.total_out, n);
	assert_int_equal(zs.avail_in, 0); /* nothing after the member */
	inflateEnd(&zs);
	assert_memory_equal(back, want, n);
	free(back);
}

static void test_gzip(void **state)
{
	(void)state;
	char err[256];
	assert_int_equal(mg_gzip_load(err, sizeof err), 0);
	assert_int_equal(mg_gzip_load(err, sizeof err), 0); /* once is enough; twice is fine */
	/* audit-like lines: compress well */
	struct mg_buf in, z;
	mg_buf_init(&in, 0);
	mg_buf_init(&z, 0);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(
		    mg_buf_printf(&in,
		                  "{\"timestamp\":\"2026-12-07T03:00:%02d.%06dZ\","
		                  "\"event_type\":\"tool_call\",\"request_id\":\"%08x\"}\n",
		                  i % 60, i * 37, (unsigned)i * 2654435761u),
		    0);
	assert_int_equal(mg_gzip(in.data, in.len, MG_GZIP_LEVEL, &z), 0);
	assert_true(z.len * 5 < in.len);
	gunzip_equals(&z, in.data, in.len);
	/* appended after what the buffer held */
	mg_buf_reset(&z);
	assert_int_equal(mg_buf_puts(&z, "keep"), 0);
	assert_int_equal(mg_gzip("abc", 3, 9, &z), 0);
	assert_memory_equal(z.data, "keep", 4);
	struct mg_buf tail = { .data = z.data + 4, .len = z.len - 4 };
	gunzip_equals(&tail, "abc", 3);
	/* random bytes do not shrink, and still come back; empty input too */
	unsigned char rnd[65536];
	assert_int_equal(mg_random_bytes(rnd, sizeof rnd), 0);
	mg_buf_reset(&z);
	assert_int_equal(mg_gzip(rnd, sizeof rnd, MG_GZIP_LEVEL, &z), 0);
	gunzip_equals(&z, rnd, sizeof rnd);
	mg_buf_reset(&z);
	assert_int_equal(mg_gzip("", 0, MG_GZIP_LEVEL, &z), 0);
	gunzip_equals(&z, "", 0);
	/* a buffer at its ceiling refuses and keeps what it had */
	struct mg_buf small;
	mg_buf_init(&small, 64);
	assert_int_equal(mg_buf_puts(&small, "x"), 0);
	assert_int_equal(mg_gzip(rnd, 4096, MG_GZIP_LEVEL, &small), -1);
	assert_int_equal(small.len, 1);
	assert_string_equal(small.data, "x");
	mg_buf_free(&small);
	mg_buf_free(&in);
	mg_buf_free(&z);
}

/* mg_hash_bytes: every byte of every length counts, chained strings are
 * told apart by their lengths, and only the string's own bytes are read
 * (each copy is exactly its size: ASan sees a byte past it). */
static void test_hash_bytes(void **state)
{
	(void)state;
	for (size_t n = 0; n <= 40; n++) {
		char *a = malloc(n ? n : 1);
		assert_non_null(a);
		memset(a, 'x', n);
		uint64_t base = mg_hash_bytes(7, a, n);
		assert_int_equal(mg_hash_bytes(7, a, n), base);
		for (size_t i = 0; i < n; i++) {
			a[i] = 'y';
			assert_true(mg_hash_bytes(7, a, n) != base);
			a[i] = 'x';
		}
		if (n)
			assert_true(mg_hash_bytes(7, a, n - 1) != base);
		free(a);
	}
	uint64_t ab_c = mg_hash_bytes(mg_hash_bytes(1, "ab", 2), "c", 1);
	uint64_t a_bc = mg_hash_bytes(mg_hash_bytes(1, "a", 1), "bc", 2);
	assert_true(ab_c != a_bc);
	assert_true(mg_hash_bytes(1, NULL, 0) != mg_hash_bytes(2, NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_limit),     cmocka_unit_test(test_base64),
		cmocka_unit_test(test_sha256_and_ct), cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_parse),         cmocka_unit_test(test_log_ctx),
		cmocka_unit_test(test_log_json),      cmocka_unit_test(test_json_plain),
		cmocka_unit_test(test_grow),          cmocka_unit_test(test_unix_at),
		cmocka_unit_test(test_hex),           cmocka_unit_test(test_gzip),
		cmocka_unit_test(test_hash_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
