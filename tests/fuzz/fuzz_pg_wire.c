/*
 * libFuzzer harness for the PostgreSQL wire codec (protocols/pg/wire.c). Each input goes to
 * every parser whole, then is framed as a stream of regular messages the way the relay frames a
 * connection, each body going to the parsers for its type, and finally feeds the builders, whose
 * output must parse back to what went in. Besides the sanitizers' findings, a broken invariant
 * (a slice outside the input, an oversized build, a round trip that differs) aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/pg/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MSG_MAX	(1u << 20)	/* the relay's usual message limit */

#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

static const uint8_t *in_start;
static size_t in_size;

/* A slice handed back by a parser must lie inside the input. */
static void
require_inside(struct slice s)
{
	REQUIRE(s.ptr != NULL);
	REQUIRE(s.ptr >= in_start && s.len <= in_size && (size_t)(s.ptr - in_start) <= in_size - s.len);
}

/* A string slice must also have its NUL right after it and none inside. */
static void
require_cstring(struct slice s)
{
	require_inside(s);
	REQUIRE((size_t)(s.ptr - in_start) + s.len < in_size && s.ptr[s.len] == 0);
	REQUIRE(s.len == 0 || memchr(s.ptr, 0, s.len) == NULL);
}

static void
require_err(const char *err, size_t size)
{
	REQUIRE(memchr(err, 0, size) != NULL && err[0] != '\0');
}

static void
fuzz_startup(const uint8_t *data, size_t size)
{
	static struct pg_startup st;	/* 2 KB: kept off the stack of every run */
	char err[256];
	uint32_t len;
	size_t i;

	if (pg_startup_length(data, size, &len) == 0)
		REQUIRE(size >= 4);
	err[0] = '\0';
	if (pg_startup_parse(data, size, &st, err, sizeof(err)) != 0) {
		require_err(err, sizeof(err));
		return;
	}
	REQUIRE(size >= PG_STARTUP_MIN && size <= PG_STARTUP_MAX);
	REQUIRE(st.nparams <= PG_STARTUP_PARAMS_MAX);
	for (i = 0; i < st.nparams; i++) {
		require_cstring(st.params[i].name);
		require_cstring(st.params[i].value);
		REQUIRE(st.params[i].name.len > 0);
		REQUIRE(pg_startup_param(&st, (const char *)st.params[i].name.ptr).ptr == st.params[i].value.ptr);
	}
	(void)pg_startup_param(&st, "user");
}

/* Every body parser on BODY; TYPE, when not 0, says which ones the relay would really use. */
static void
fuzz_bodies(struct slice body)
{
	struct slice a, b;
	char sqlstate[PG_SQLSTATE_LEN + 1], severity[PG_SEVERITY_MAX], c;
	uint16_t n16;
	uint32_t x, y;

	if (pg_parse_query(body, &a) == 0) {
		require_cstring(a);
		REQUIRE(a.len + 1 == body.len);
	}
	if (pg_parse_parse(body, &a, &b, &n16) == 0) {
		require_cstring(a);
		require_cstring(b);
		REQUIRE(a.len + b.len + 2 + 2 + (size_t)n16 * 4 == body.len);
	}
	if (pg_parse_bind_names(body, &a, &b) == 0) {
		require_cstring(a);
		require_cstring(b);
	}
	if (pg_parse_execute(body, &a, &x) == 0)
		require_cstring(a);
	if (pg_parse_describe_close(body, &c, &a) == 0) {
		REQUIRE(c == PG_TARGET_STATEMENT || c == PG_TARGET_PORTAL);
		require_cstring(a);
	}
	if (pg_parse_error_fields(body, sqlstate, &a, severity) == 0) {
		REQUIRE(strlen(sqlstate) == 0 || strlen(sqlstate) == PG_SQLSTATE_LEN);
		REQUIRE(strlen(severity) < PG_SEVERITY_MAX);
		if (a.len > 0)
			require_cstring(a);
	}
	if (pg_parse_command_complete(body, &a) == 0)
		require_cstring(a);
	if (pg_parse_ready(body, &c) == 0)
		REQUIRE(c == PG_TXN_IDLE || c == PG_TXN_BLOCK || c == PG_TXN_FAILED);
	if (pg_parse_backend_key(body, &x, &y) == 0)
		REQUIRE(body.len == 8);
	if (pg_parse_parameter_status(body, &a, &b) == 0) {
		require_cstring(a);
		require_cstring(b);
		REQUIRE(a.len > 0);
	}
}

/* The input as a stream of regular messages, framed as the relay frames a connection. */
static void
fuzz_stream(const uint8_t *data, size_t size)
{
	char err[160];
	size_t off = 0;
	uint8_t type;
	uint32_t length;
	int r;

	while (off < size) {
		err[0] = '\0';
		r = pg_msg_header(data + off, size - off, FUZZ_MSG_MAX, &type, &length, err, sizeof(err));
		if (r == PG_MSG_HEADER_INCOMPLETE) {
			REQUIRE(size - off < PG_HEADER_LEN);
			return;
		}
		if (r != 0) {
			require_err(err, sizeof(err));
			REQUIRE(length < 4 || length > FUZZ_MSG_MAX);
			return;
		}
		REQUIRE(length >= 4 && length <= FUZZ_MSG_MAX);
		if (size - off - 1 < length)
			return;	/* the relay would wait for the rest */
		(void)pg_frontend_msg_name(type);
		fuzz_bodies((struct slice){ data + off + PG_HEADER_LEN, length - 4 });
		off += (size_t)length + 1;
	}
}

/* The fixed-shape builders with values from the input, parsed back where a parser exists. */
static void
fuzz_fixed_builders(const uint8_t *data, size_t size, size_t cap)
{
	static struct pg_startup st;
	uint8_t out[64];
	uint32_t a = 0, b = 0, pid, key;
	size_t n;
	char status;

	cap = cap < sizeof(out) ? cap : sizeof(out);
	if (size >= 9) {
		a = (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8 | data[4];
		b = (uint32_t)data[5] << 24 | (uint32_t)data[6] << 16 | (uint32_t)data[7] << 8 | data[8];
	}
	n = pg_build_backend_key(out, cap, a, b);
	REQUIRE(n == 0 || n == 13);
	if (n > 0) {
		REQUIRE(pg_parse_backend_key((struct slice){ out + PG_HEADER_LEN, 8 }, &pid, &key) == 0);
		REQUIRE(pid == a && key == b);
	}
	n = pg_build_cancel(out, cap, a, b);
	REQUIRE(n == 0 || n == PG_CANCEL_LEN);
	if (n > 0) {
		REQUIRE(pg_startup_parse(out, n, &st, NULL, 0) == 0);
		REQUIRE(st.kind == PG_STARTUP_CANCEL && st.cancel_pid == a && st.cancel_key == b);
	}
	n = pg_build_ready(out, cap, size > 1 ? (char)data[1] : 'I');
	if (n > 0) {
		REQUIRE(pg_parse_ready((struct slice){ out + PG_HEADER_LEN, 1 }, &status) == 0);
		REQUIRE(status == (size > 1 ? (char)data[1] : 'I'));
	}
	REQUIRE(pg_build_auth(out, cap, a, data, size < 32 ? size : 32) <= cap);
	REQUIRE(pg_build_auth_ok(out, cap) == (cap >= 9 ? 9 : 0));
	REQUIRE(pg_build_terminate(out, cap) == (cap >= 5 ? 5 : 0));
}

/* Builders fed from the input, and their output parsed back. */
static void
fuzz_builders(const uint8_t *data, size_t size)
{
	uint8_t out[1024];
	char text[600], sqlstate[PG_SQLSTATE_LEN + 1], severity[PG_SEVERITY_MAX];
	struct slice body, msg, opts[8];
	size_t tlen, cap, n, nopts, i;
	uint8_t type;
	uint32_t length;

	if (size == 0)
		return;
	cap = (size_t)data[0] * 4 % sizeof(out);	/* 0 to 1020: every size, tiny ones included */
	tlen = size - 1 < sizeof(text) - 1 ? size - 1 : sizeof(text) - 1;
	memcpy(text, data + 1, tlen);
	text[tlen] = '\0';	/* up to the first NUL, as a C caller would pass it */
	tlen = strlen(text);

	n = pg_build_error(out, cap, "ERROR", PG_SQLSTATE_INSUFFICIENT_PRIVILEGE, text, text, "hint");
	REQUIRE(n <= cap);
	if (n > 0) {
		REQUIRE(pg_msg_header(out, n, FUZZ_MSG_MAX, &type, &length, NULL, 0) == 0);
		REQUIRE(type == PG_MSG_ERROR && (size_t)length + 1 == n);
		body = (struct slice){ out + PG_HEADER_LEN, n - PG_HEADER_LEN };
		REQUIRE(pg_parse_error_fields(body, sqlstate, &msg, severity) == 0);
		REQUIRE(strcmp(sqlstate, "42501") == 0 && strcmp(severity, "ERROR") == 0);
		REQUIRE(msg.len <= tlen && memcmp(msg.ptr, text, msg.len) == 0);
		if (msg.len < tlen && n + 4 <= cap)	/* cut only when it had to be */
			abort();
	}

	n = pg_build_query(out, cap, text);
	if (n > 0) {
		REQUIRE(n == tlen + 6 && n <= cap);
		REQUIRE(pg_parse_query((struct slice){ out + PG_HEADER_LEN, n - PG_HEADER_LEN }, &msg) == 0);
		REQUIRE(msg.len == tlen && memcmp(msg.ptr, text, tlen) == 0);
	}

	/* The text split at its spaces as the unsupported option names. */
	for (nopts = 0, i = 0; nopts < 8 && i <= tlen; nopts++) {
		const char *sp = memchr(text + i, ' ', tlen - i);
		size_t end = sp != NULL ? (size_t)(sp - text) : tlen;

		opts[nopts] = (struct slice){ (const uint8_t *)text + i, end - i };
		i = end + 1;
	}
	n = pg_build_negotiate_version(out, cap, PG_PROTOCOL_3_0, opts, nopts);
	REQUIRE(n <= cap);
	if (n > 0)
		REQUIRE(out[0] == PG_MSG_NEGOTIATE_VERSION);
	n = pg_build_notice(out, cap, "WARNING", "01000", text, NULL, NULL);
	REQUIRE(n <= cap);
	fuzz_fixed_builders(data, size, cap);
	n = pg_build_parameter_status(out, cap, "application_name", text);
	if (n > 0) {
		struct slice name, value;

		REQUIRE(pg_parse_parameter_status((struct slice){ out + PG_HEADER_LEN, n - PG_HEADER_LEN }, &name,
		    &value) == 0);
		REQUIRE(value.len == tlen && memcmp(value.ptr, text, tlen) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	in_start = data;
	in_size = size;
	fuzz_startup(data, size);
	fuzz_bodies((struct slice){ data, size });
	fuzz_stream(data, size);
	fuzz_builders(data, size);
	return 0;
}
