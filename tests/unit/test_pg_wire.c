/*
 * Unit tests of the PostgreSQL wire codec: startup packets of every kind and every way they can
 * be malformed, message headers at their limits, the message bodies the relay reads, and the
 * messages it writes, byte for byte against the protocol documentation and back through the
 * parsers.
 */
#include <stdint.h>
#include <stdlib.h>

#include "protocols/pg/wire.h"
#include "tests/unit/check.h"

/* A string literal with embedded NULs, as a pointer and a length without the literal's own NUL. */
#define BYTES(s) (const uint8_t *)(s), (sizeof(s) - 1)
#define SLICE(s) ((struct slice){ (const uint8_t *)(s), sizeof(s) - 1 })

static uint8_t pkt[PG_STARTUP_MAX + 64];
static struct pg_startup st;
static char err[256];

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A startup packet in PKT: length word, CODE, then BODY as given. Returns its length. */
static size_t
startup(uint32_t code, const uint8_t *body, size_t len)
{
	put32(pkt, (uint32_t)(8 + len));
	put32(pkt + 4, code);
	memcpy(pkt + 8, body, len);
	return 8 + len;
}

/* Parse the packet made by startup(); 0 or -1, with ERR set on -1. */
static int
parse(size_t len)
{
	err[0] = '\0';
	return pg_startup_parse(pkt, len, &st, err, sizeof(err));
}

static int
slice_is(struct slice s, const char *text)
{
	return s.ptr != NULL && s.len == strlen(text) && memcmp(s.ptr, text, s.len) == 0;
}

static void
startup_v3_params_are_read_in_order(void)
{
	size_t len = startup(PG_PROTOCOL_3_0, BYTES("user\0alice\0database\0prod\0application_name\0psql\0"
	    "options\0-c search_path=a,b -c statement_timeout=5s\0\0"));

	CHECK(parse(len) == 0);
	CHECK(st.kind == PG_STARTUP_NORMAL);
	CHECK(st.protocol == 196608);
	CHECK(PG_PROTOCOL_MAJOR(st.protocol) == 3 && PG_PROTOCOL_MINOR(st.protocol) == 0);
	CHECK(st.nparams == 4);
	CHECK(slice_is(st.params[0].name, "user") && slice_is(st.params[0].value, "alice"));
	CHECK(slice_is(st.params[3].name, "options"));
	CHECK(slice_is(pg_startup_param(&st, "database"), "prod"));
	CHECK(slice_is(pg_startup_param(&st, "application_name"), "psql"));
	CHECK(slice_is(pg_startup_param(&st, "options"), "-c search_path=a,b -c statement_timeout=5s"));
}

static void
startup_param_slices_are_also_c_strings(void)
{
	size_t len = startup(PG_PROTOCOL_3_0, BYTES("user\0alice\0\0"));

	CHECK(parse(len) == 0);
	CHECK_STR((const char *)st.params[0].name.ptr, "user");
	CHECK_STR((const char *)pg_startup_param(&st, "user").ptr, "alice");
}

static void
startup_missing_param_is_null(void)
{
	size_t len = startup(PG_PROTOCOL_3_0, BYTES("user\0alice\0\0"));

	CHECK(parse(len) == 0);
	CHECK(pg_startup_param(&st, "database").ptr == NULL);
	CHECK(pg_startup_param(&st, "use").ptr == NULL);
	CHECK(pg_startup_param(&st, "users").ptr == NULL);
}

static void
startup_empty_value_is_kept(void)
{
	size_t len = startup(PG_PROTOCOL_3_0, BYTES("user\0alice\0database\0\0\0"));
	struct slice db;

	CHECK(parse(len) == 0);
	db = pg_startup_param(&st, "database");
	CHECK(db.ptr != NULL && db.len == 0);
}

static void
startup_without_params_is_valid_layout(void)
{
	size_t len = startup(PG_PROTOCOL_3_0, BYTES("\0"));

	CHECK(parse(len) == 0);
	CHECK(st.nparams == 0);
	CHECK(pg_startup_param(&st, "user").ptr == NULL);
}

static void
startup_minor_version_above_zero_is_accepted_for_negotiation(void)
{
	size_t len = startup(PG_PROTOCOL(3, 2), BYTES("user\0alice\0_pq_.foo\0on\0\0"));

	CHECK(parse(len) == 0);
	CHECK(st.kind == PG_STARTUP_NORMAL);
	CHECK(PG_PROTOCOL_MINOR(st.protocol) == 2);
	CHECK(slice_is(pg_startup_param(&st, "_pq_.foo"), "on"));
}

static void
startup_protocol_2_is_refused(void)
{
	size_t len = startup(PG_PROTOCOL(2, 0), BYTES("user\0alice\0\0"));

	CHECK(parse(len) == -1);
	CHECK_CONTAINS(err, "unsupported frontend protocol 2.0");
}

static void
ssl_request_is_recognised(void)
{
	static const uint8_t req[] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };

	memcpy(pkt, req, sizeof(req));
	CHECK(parse(sizeof(req)) == 0);
	CHECK(st.kind == PG_STARTUP_SSL);
	CHECK(st.protocol == PG_SSL_REQUEST_CODE);
	CHECK(st.protocol == PG_PROTOCOL(1234, 5679));
}

static void
gssenc_request_is_recognised(void)
{
	static const uint8_t req[] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30 };

	memcpy(pkt, req, sizeof(req));
	CHECK(parse(sizeof(req)) == 0);
	CHECK(st.kind == PG_STARTUP_GSSENC);
	CHECK(st.protocol == PG_PROTOCOL(1234, 5680));
}

static void
ssl_request_with_extra_bytes_is_refused(void)
{
	size_t len = startup(PG_SSL_REQUEST_CODE, BYTES("\0\0\0\0"));

	CHECK(parse(len) == -1);
	CHECK_CONTAINS(err, "SSLRequest");
}

static void
cancel_request_gives_pid_and_key(void)
{
	static const uint8_t req[] = { 0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0x30, 0x39, 0xde, 0xad, 0xbe, 0xef };

	memcpy(pkt, req, sizeof(req));
	CHECK(parse(sizeof(req)) == 0);
	CHECK(st.kind == PG_STARTUP_CANCEL);
	CHECK(st.protocol == PG_PROTOCOL(1234, 5678));
	CHECK(st.cancel_pid == 12345);
	CHECK(st.cancel_key == 0xdeadbeef);
	CHECK(st.nparams == 0);
}

static void
cancel_request_of_wrong_length_is_refused(void)
{
	size_t len = startup(PG_CANCEL_REQUEST_CODE, BYTES("\0\0\0\1"));

	CHECK(parse(len) == -1);
	CHECK_CONTAINS(err, "CancelRequest");
}

static void
startup_truncated_in_a_value_is_refused(void)
{
	size_t len = startup(PG_PROTOCOL_3_0, BYTES("user\0ali"));

	CHECK(parse(len) == -1);
	CHECK_CONTAINS(err, "value of parameter \"user\" runs past the end");
}

static void
startup_truncated_in_a_name_is_refused(void)
{
	size_t len = startup(PG_PROTOCOL_3_0, BYTES("user\0alice\0datab"));

	CHECK(parse(len) == -1);
	CHECK_CONTAINS(err, "parameter name runs past the end");
}

static void
startup_without_terminator_is_refused(void)
{
	size_t len = startup(PG_PROTOCOL_3_0, BYTES("user\0alice\0"));

	CHECK(parse(len) == -1);
	CHECK_CONTAINS(err, "does not end with a zero byte");
}

static void
startup_with_odd_number_of_strings_is_refused(void)
{
	size_t len = startup(PG_PROTOCOL_3_0, BYTES("user\0alice\0database\0"));

	CHECK(parse(len) == -1);
	CHECK_CONTAINS(err, "parameter \"database\" has no value");
}

static void
startup_bytes_after_terminator_are_refused(void)
{
	size_t len = startup(PG_PROTOCOL_3_0, BYTES("user\0alice\0\0xy"));

	CHECK(parse(len) == -1);
	CHECK_CONTAINS(err, "2 bytes follow the terminating zero byte");
}

static void
startup_repeated_param_is_refused(void)
{
	size_t len = startup(PG_PROTOCOL_3_0, BYTES("user\0alice\0database\0a\0user\0postgres\0\0"));

	CHECK(parse(len) == -1);
	CHECK_CONTAINS(err, "parameter \"user\" more than once");
	CHECK(st.nparams == 0);
}

/* A NORMAL packet with N distinct parameters p0=v, p1=v, … in PKT. Returns its length. */
static size_t
startup_many(size_t n)
{
	size_t i, off = 8;

	for (i = 0; i < n; i++) {
		off += (size_t)snprintf((char *)pkt + off, sizeof(pkt) - off, "p%zu", i) + 1;
		off += (size_t)snprintf((char *)pkt + off, sizeof(pkt) - off, "v") + 1;
	}
	pkt[off++] = 0;
	put32(pkt, (uint32_t)off);
	put32(pkt + 4, PG_PROTOCOL_3_0);
	return off;
}

static void
startup_with_64_params_is_accepted(void)
{
	CHECK(parse(startup_many(PG_STARTUP_PARAMS_MAX)) == 0);
	CHECK(st.nparams == PG_STARTUP_PARAMS_MAX);
	CHECK(slice_is(pg_startup_param(&st, "p63"), "v"));
}

static void
startup_with_too_many_params_is_refused(void)
{
	CHECK(parse(startup_many(PG_STARTUP_PARAMS_MAX + 1)) == -1);
	CHECK_CONTAINS(err, "more than 64 parameters");
}

static void
startup_huge_length_is_refused(void)
{
	uint32_t n = 0;

	put32(pkt, 0x7fffffff);
	CHECK(pg_startup_length(pkt, 4, &n) == 0);
	CHECK(n == 0x7fffffff);
	CHECK(pg_startup_parse(pkt, PG_STARTUP_MAX + 1, &st, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "invalid length of startup packet");
}

static void
startup_length_below_8_is_refused(void)
{
	put32(pkt, 7);
	CHECK(pg_startup_parse(pkt, 7, &st, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "invalid length of startup packet");
	put32(pkt, 4);
	CHECK(pg_startup_parse(pkt, 4, &st, err, sizeof(err)) == -1);
}

static void
startup_length_word_must_match_the_packet(void)
{
	size_t len = startup(PG_PROTOCOL_3_0, BYTES("user\0alice\0\0"));

	put32(pkt, (uint32_t)len + 1);
	CHECK(parse(len) == -1);
	CHECK_CONTAINS(err, "says");
}

static void
startup_length_needs_four_bytes(void)
{
	uint32_t n = 42;

	put32(pkt, 9);
	CHECK(pg_startup_length(pkt, 3, &n) == -1);
	CHECK(n == 42);
	CHECK(pg_startup_length(pkt, 4, &n) == 0);
	CHECK(n == 9);
}

static void
startup_error_shows_hostile_names_safely(void)
{
	size_t len = startup(PG_PROTOCOL_3_0, BYTES("us\x1b[2J\ner\0"));

	CHECK(parse(len) == -1);
	CHECK_CONTAINS(err, "\"us?[2J?er\" has no value");
}

static void
header_reads_type_and_length(void)
{
	uint8_t type = 0;
	uint32_t length = 0;

	CHECK(pg_msg_header(BYTES("Q\0\0\0\x0dselect 1\0"), 1 << 20, &type, &length, err, sizeof(err)) == 0);
	CHECK(type == PG_MSG_QUERY);
	CHECK(length == 13);
}

static void
header_needs_five_bytes(void)
{
	uint8_t type;
	uint32_t length;

	CHECK(pg_msg_header(BYTES("Q\0\0\0"), 1 << 20, &type, &length, err, sizeof(err)) == PG_MSG_HEADER_INCOMPLETE);
	CHECK(pg_msg_header(NULL, 0, 1 << 20, &type, &length, NULL, 0) == PG_MSG_HEADER_INCOMPLETE);
}

static void
header_length_2_31_is_refused_whatever_the_limit(void)
{
	uint8_t type;
	uint32_t length;

	err[0] = '\0';
	CHECK(pg_msg_header(BYTES("Q\x80\0\0\0"), UINT32_MAX, &type, &length, err, sizeof(err)) == -1);
	CHECK(length == 0x80000000u);
	CHECK_CONTAINS(err, "invalid message length 2147483648 for message type 'Q'");
}

static void
header_length_below_4_is_refused(void)
{
	uint8_t type;
	uint32_t length;

	CHECK(pg_msg_header(BYTES("S\0\0\0\3"), 1 << 20, &type, &length, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "invalid message length 3");
	CHECK(pg_msg_header(BYTES("S\0\0\0\4"), 1 << 20, &type, &length, err, sizeof(err)) == 0);
}

static void
header_length_over_the_callers_limit_is_refused(void)
{
	uint8_t type;
	uint32_t length;

	CHECK(pg_msg_header(BYTES("P\0\0\x04\x01"), 1024, &type, &length, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "over the limit of 1024 bytes");
	CHECK(pg_msg_header(BYTES("P\0\0\x04\0"), 1024, &type, &length, NULL, 0) == 0);
}

static void
header_error_shows_unprintable_type_in_hex(void)
{
	uint8_t type;
	uint32_t length;

	CHECK(pg_msg_header(BYTES("\x01\0\0\0\0"), 1024, &type, &length, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "message type 0x01");
}

static void
frontend_message_names_are_known(void)
{
	CHECK_STR(pg_frontend_msg_name(PG_MSG_QUERY), "Query");
	CHECK_STR(pg_frontend_msg_name(PG_MSG_PARSE), "Parse");
	CHECK(pg_frontend_msg_name('Z') == NULL);
}

static void
query_with_nul_is_read(void)
{
	struct slice sql;

	CHECK(pg_parse_query(SLICE("select 1\0"), &sql) == 0);
	CHECK(slice_is(sql, "select 1"));
}

static void
query_empty_string_is_read(void)
{
	struct slice sql = { NULL, 99 };

	CHECK(pg_parse_query(SLICE("\0"), &sql) == 0);
	CHECK(sql.ptr != NULL && sql.len == 0);
}

static void
query_without_nul_is_refused(void)
{
	struct slice sql;

	CHECK(pg_parse_query(SLICE("select 1"), &sql) == -1);
	CHECK(pg_parse_query(SLICE(""), &sql) == -1);
	CHECK(pg_parse_query((struct slice){ NULL, 5 }, &sql) == -1);
}

static void
query_with_trailing_bytes_is_refused(void)
{
	struct slice sql;

	CHECK(pg_parse_query(SLICE("select 1\0x"), &sql) == -1);
}

static void
query_with_embedded_nul_is_refused(void)
{
	struct slice sql;

	/* A policy that saw only "select 1" must not let "; drop table t" through behind it. */
	CHECK(pg_parse_query(SLICE("select 1\0; drop table t\0"), &sql) == -1);
}

static void
parse_with_params_is_read(void)
{
	struct slice name, sql;
	uint16_t n = 0;

	CHECK(pg_parse_parse(SLICE("s1\0select $1, $2\0\0\2\0\0\0\x17\0\0\0\x19"), &name, &sql, &n) == 0);
	CHECK(slice_is(name, "s1"));
	CHECK(slice_is(sql, "select $1, $2"));
	CHECK(n == 2);
}

static void
parse_unnamed_without_params_is_read(void)
{
	struct slice name, sql;
	uint16_t n = 9;

	CHECK(pg_parse_parse(SLICE("\0select 1\0\0\0"), &name, &sql, &n) == 0);
	CHECK(name.len == 0);
	CHECK(slice_is(sql, "select 1"));
	CHECK(n == 0);
}

static void
parse_with_missing_type_oids_is_refused(void)
{
	struct slice name, sql;
	uint16_t n;

	CHECK(pg_parse_parse(SLICE("s1\0select $1, $2\0\0\2\0\0\0\x17"), &name, &sql, &n) == -1);
	CHECK(pg_parse_parse(SLICE("s1\0select $1\0\0"), &name, &sql, &n) == -1);
	CHECK(pg_parse_parse(SLICE("s1\0select $1"), &name, &sql, &n) == -1);
}

static void
parse_with_trailing_bytes_is_refused(void)
{
	struct slice name, sql;
	uint16_t n;

	CHECK(pg_parse_parse(SLICE("\0select 1\0\0\0z"), &name, &sql, &n) == -1);
}

static void
bind_names_are_read_and_the_rest_checked(void)
{
	struct slice portal, stmt;

	/* portal "p", statement "s1", 1 format (text), 2 values (NULL, "42"), 1 result format (binary) */
	CHECK(pg_parse_bind_names(SLICE("p\0s1\0\0\1\0\0\0\2\xff\xff\xff\xff\0\0\0\2" "42\0\1\0\1"), &portal,
	    &stmt) == 0);
	CHECK(slice_is(portal, "p"));
	CHECK(slice_is(stmt, "s1"));
}

static void
bind_value_past_the_end_is_refused(void)
{
	struct slice portal, stmt;

	CHECK(pg_parse_bind_names(SLICE("\0s1\0\0\0\0\1\0\0\0\x09" "42\0\0"), &portal, &stmt) == -1);
	CHECK(pg_parse_bind_names(SLICE("\0s1\0\0\0\0\1\xff\xff\xff\xfe\0\0"), &portal, &stmt) == -1);
	CHECK(pg_parse_bind_names(SLICE("\0s1\0\0\0\0\0\0\0x"), &portal, &stmt) == -1);
}

static void
execute_is_read(void)
{
	struct slice portal;
	uint32_t rows = 1;

	CHECK(pg_parse_execute(SLICE("\0\0\0\0\0"), &portal, &rows) == 0);
	CHECK(portal.len == 0 && rows == 0);
	CHECK(pg_parse_execute(SLICE("p\0\0\0\1\0"), &portal, &rows) == 0);
	CHECK(slice_is(portal, "p") && rows == 256);
	CHECK(pg_parse_execute(SLICE("p\0\0\0\1"), &portal, &rows) == -1);
}

static void
describe_and_close_targets_are_read(void)
{
	struct slice name;
	char target = 0;

	CHECK(pg_parse_describe_close(SLICE("Ss1\0"), &target, &name) == 0);
	CHECK(target == PG_TARGET_STATEMENT && slice_is(name, "s1"));
	CHECK(pg_parse_describe_close(SLICE("P\0"), &target, &name) == 0);
	CHECK(target == PG_TARGET_PORTAL && name.len == 0);
	CHECK(pg_parse_describe_close(SLICE("Xs1\0"), &target, &name) == -1);
	CHECK(pg_parse_describe_close(SLICE("S"), &target, &name) == -1);
}

/* An ErrorResponse body as PostgreSQL 15 sends it for "select * from t" without the privilege. */
static const char server_error[] =
	"SERROR\0VERROR\0C42501\0Mpermission denied for table t\0Faclchk.c\0L3650\0Raclcheck_error\0\0";

static void
error_response_from_a_server_is_read(void)
{
	char code[6], sev[PG_SEVERITY_MAX];
	struct slice msg;

	CHECK(pg_parse_error_fields(SLICE(server_error), code, &msg, sev) == 0);
	CHECK_STR(code, "42501");
	CHECK_STR(sev, "ERROR");
	CHECK(slice_is(msg, "permission denied for table t"));
}

static void
error_severity_prefers_the_unlocalised_field(void)
{
	char code[6], sev[PG_SEVERITY_MAX];
	struct slice msg;

	CHECK(pg_parse_error_fields(SLICE("SERREUR\0VERROR\0C42P01\0Mla relation \xc2\xab t \xc2\xbb n'existe pas\0\0"),
	    code, &msg, sev) == 0);
	CHECK_STR(sev, "ERROR");
	CHECK_STR(code, "42P01");
}

static void
error_long_localised_severity_is_cut_at_a_character(void)
{
	char code[6], sev[PG_SEVERITY_MAX];
	struct slice msg;

	/* "ПРЕДУПРЕЖДЕНИЕ": 14 two-byte characters; 7 of them fill 15 bytes without splitting one */
	CHECK(pg_parse_error_fields(SLICE("S\xd0\x9f\xd0\xa0\xd0\x95\xd0\x94\xd0\xa3\xd0\x9f\xd0\xa0\xd0\x95\xd0\x96"
	    "\xd0\x94\xd0\x95\xd0\x9d\xd0\x98\xd0\x95\0C01000\0Mx\0\0"), code, &msg, sev) == 0);
	CHECK(strlen(sev) == 14);
	CHECK_STR(sev, "\xd0\x9f\xd0\xa0\xd0\x95\xd0\x94\xd0\xa3\xd0\x9f\xd0\xa0");
}

static void
error_without_sqlstate_or_message_gives_empty_ones(void)
{
	char code[6] = "xxxxx", sev[PG_SEVERITY_MAX] = "x";
	struct slice msg = { NULL, 7 };

	CHECK(pg_parse_error_fields(SLICE("\0"), code, &msg, sev) == 0);
	CHECK_STR(code, "");
	CHECK_STR(sev, "");
	CHECK(msg.len == 0);
}

static void
error_without_terminator_is_refused(void)
{
	char code[6], sev[PG_SEVERITY_MAX];
	struct slice msg;

	CHECK(pg_parse_error_fields(SLICE("SERROR\0C42501\0Mno\0"), code, &msg, sev) == -1);
	CHECK(pg_parse_error_fields(SLICE("SERROR\0C42501\0Mno"), code, &msg, sev) == -1);
	CHECK(pg_parse_error_fields(SLICE(""), code, &msg, sev) == -1);
}

static void
error_with_bytes_after_terminator_is_refused(void)
{
	char code[6], sev[PG_SEVERITY_MAX];
	struct slice msg;

	CHECK(pg_parse_error_fields(SLICE("SERROR\0\0M"), code, &msg, sev) == -1);
}

static void
error_with_malformed_sqlstate_is_refused(void)
{
	char code[6], sev[PG_SEVERITY_MAX];
	struct slice msg;

	CHECK(pg_parse_error_fields(SLICE("C4250\0\0"), code, &msg, sev) == -1);
	CHECK(pg_parse_error_fields(SLICE("C425011\0\0"), code, &msg, sev) == -1);
	CHECK(pg_parse_error_fields(SLICE("C42a01\0\0"), code, &msg, sev) == -1);
}

static void
command_complete_tag_is_read(void)
{
	struct slice tag;

	CHECK(pg_parse_command_complete(SLICE("INSERT 0 1\0"), &tag) == 0);
	CHECK(slice_is(tag, "INSERT 0 1"));
	CHECK(pg_parse_command_complete(SLICE("INSERT 0 1"), &tag) == -1);
	CHECK(pg_parse_command_complete(SLICE("SELECT 1\0\0"), &tag) == -1);
}

static void
ready_status_is_read(void)
{
	char status = 0;

	CHECK(pg_parse_ready(SLICE("T"), &status) == 0);
	CHECK(status == PG_TXN_BLOCK);
	CHECK(pg_parse_ready(SLICE("X"), &status) == -1);
	CHECK(pg_parse_ready(SLICE("II"), &status) == -1);
	CHECK(pg_parse_ready(SLICE(""), &status) == -1);
}

static void
backend_key_is_read(void)
{
	uint32_t pid = 0, key = 0;

	CHECK(pg_parse_backend_key(SLICE("\0\0\x30\x39\xde\xad\xbe\xef"), &pid, &key) == 0);
	CHECK(pid == 12345 && key == 0xdeadbeef);
	CHECK(pg_parse_backend_key(SLICE("\0\0\x30\x39\xde\xad\xbe"), &pid, &key) == -1);
	CHECK(pg_parse_backend_key(SLICE("\0\0\x30\x39\xde\xad\xbe\xef\0"), &pid, &key) == -1);
}

static void
parameter_status_is_read(void)
{
	struct slice name, value;

	CHECK(pg_parse_parameter_status(SLICE("server_version\0" "15.6\0"), &name, &value) == 0);
	CHECK(slice_is(name, "server_version") && slice_is(value, "15.6"));
	CHECK(pg_parse_parameter_status(SLICE("\0x\0"), &name, &value) == -1);
	CHECK(pg_parse_parameter_status(SLICE("a\0b"), &name, &value) == -1);
}

/* The body of a built message, checked to have the header TYPE and a length that matches N. */
static struct slice
body_of(const uint8_t *msg, size_t n, uint8_t type)
{
	uint8_t t = 0;
	uint32_t length = 0;

	CHECK(n >= PG_HEADER_LEN);
	CHECK(pg_msg_header(msg, n, 1 << 20, &t, &length, NULL, 0) == 0);
	CHECK(t == type);
	CHECK(length + 1 == n);
	return (struct slice){ msg + PG_HEADER_LEN, n - PG_HEADER_LEN };
}

static void
error_builder_layout_matches_the_spec(void)
{
	static const char want[] = "E\0\0\0\x25SFATAL\0VFATAL\0C28000\0Mno access\0\0";
	uint8_t out[128];
	size_t n = pg_build_error(out, sizeof(out), "FATAL", PG_SQLSTATE_INVALID_AUTHORIZATION, "no access", NULL,
	    NULL);

	CHECK(n == sizeof(want) - 1);
	CHECK(memcmp(out, want, sizeof(want) - 1) == 0);
}

static void
error_builder_round_trips_with_detail_and_hint(void)
{
	uint8_t out[256];
	char code[6], sev[PG_SEVERITY_MAX];
	struct slice msg, body;
	size_t n = pg_build_error(out, sizeof(out), "ERROR", PG_SQLSTATE_INSUFFICIENT_PRIVILEGE,
	    "policy denied DROP TABLE", "role dba-readonly allows select only", "ask for the dba role");

	CHECK(n > 0);
	body = body_of(out, n, PG_MSG_ERROR);
	CHECK(pg_parse_error_fields(body, code, &msg, sev) == 0);
	CHECK_STR(code, "42501");
	CHECK_STR(sev, "ERROR");
	CHECK(slice_is(msg, "policy denied DROP TABLE"));
	CHECK(memmem(body.ptr, body.len, BYTES("\0Drole dba-readonly allows select only\0")) != NULL);
	CHECK(memmem(body.ptr, body.len, BYTES("\0Hask for the dba role\0\0")) != NULL);
}

static void
error_builder_cuts_a_long_message_at_a_character(void)
{
	char message[201];
	uint8_t out[64];
	char code[6], sev[PG_SEVERITY_MAX];
	struct slice msg;
	size_t i, n;

	for (i = 0; i < 200; i += 2)
		memcpy(message + i, "\xc3\xa9", 2);	/* é */
	message[200] = '\0';
	n = pg_build_error(out, sizeof(out), "ERROR", "54000", message, "detail", "hint");
	CHECK(n > 0 && n <= sizeof(out));
	CHECK(pg_parse_error_fields(body_of(out, n, PG_MSG_ERROR), code, &msg, sev) == 0);
	CHECK(msg.len > 0 && msg.len % 2 == 0);
	CHECK(msg.len >= sizeof(out) - 40);
	CHECK(memchr(out, 'D', n) == NULL);
}

static void
error_builder_leaves_out_a_detail_that_does_not_fit(void)
{
	uint8_t out[60];
	size_t n = pg_build_error(out, sizeof(out), "ERROR", "42501", "denied", "a detail far too long to fit in "
	    "what is left of sixty bytes", "hint");

	CHECK(n > 0);
	CHECK(memmem(out, n, BYTES("Mdenied\0Hhint\0\0")) != NULL);
}

static void
error_builder_refuses_a_bad_sqlstate_or_tiny_buffer(void)
{
	uint8_t out[64];

	CHECK(pg_build_error(out, sizeof(out), "ERROR", "4250", "m", NULL, NULL) == 0);
	CHECK(pg_build_error(out, sizeof(out), "ERROR", "42a01", "m", NULL, NULL) == 0);
	CHECK(pg_build_error(out, sizeof(out), "", "42501", "m", NULL, NULL) == 0);
	CHECK(pg_build_error(out, 20, "ERROR", "42501", "m", NULL, NULL) == 0);
}

static void
notice_builder_uses_type_n(void)
{
	uint8_t out[128];
	char code[6], sev[PG_SEVERITY_MAX];
	struct slice msg;
	size_t n = pg_build_notice(out, sizeof(out), "WARNING", "01000", "session is recorded", NULL, NULL);

	CHECK(n > 0);
	CHECK(pg_parse_error_fields(body_of(out, n, PG_MSG_NOTICE), code, &msg, sev) == 0);
	CHECK_STR(sev, "WARNING");
}

static void
auth_ok_bytes_match_the_spec(void)
{
	uint8_t out[16];

	CHECK(pg_build_auth_ok(out, sizeof(out)) == 9);
	CHECK(memcmp(out, "R\0\0\0\x08\0\0\0\0", 9) == 0);
}

static void
auth_sasl_carries_its_mechanisms(void)
{
	uint8_t out[64];

	CHECK(pg_build_auth(out, sizeof(out), PG_AUTH_SASL, BYTES("SCRAM-SHA-256\0\0")) == 24);
	CHECK(memcmp(out, "R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0", 24) == 0);
}

static void
parameter_status_round_trips(void)
{
	uint8_t out[64];
	struct slice name, value;
	size_t n = pg_build_parameter_status(out, sizeof(out), "client_encoding", "UTF8");

	CHECK(n == 26);
	CHECK(pg_parse_parameter_status(body_of(out, n, PG_MSG_PARAMETER_STATUS), &name, &value) == 0);
	CHECK(slice_is(name, "client_encoding") && slice_is(value, "UTF8"));
}

static void
backend_key_round_trips(void)
{
	uint8_t out[16];
	uint32_t pid, key;
	size_t n = pg_build_backend_key(out, sizeof(out), 4242, 0x01020304);

	CHECK(n == 13);
	CHECK(memcmp(out, "K\0\0\0\x0c\0\0\x10\x92\x01\x02\x03\x04", 13) == 0);
	CHECK(pg_parse_backend_key(body_of(out, n, PG_MSG_BACKEND_KEY), &pid, &key) == 0);
	CHECK(pid == 4242 && key == 0x01020304);
}

static void
ready_round_trips(void)
{
	uint8_t out[8];
	char status;

	CHECK(pg_build_ready(out, sizeof(out), PG_TXN_IDLE) == 6);
	CHECK(memcmp(out, "Z\0\0\0\x05I", 6) == 0);
	CHECK(pg_parse_ready(body_of(out, 6, PG_MSG_READY), &status) == 0);
	CHECK(status == PG_TXN_IDLE);
	CHECK(pg_build_ready(out, sizeof(out), 'x') == 0);
}

static void
negotiate_version_bytes_match_the_spec(void)
{
	static const char want[] = "v\0\0\0\x1b\0\3\0\0\0\0\0\2_pq_.a\0_pq_.bc\0";
	struct slice opts[] = { SLICE("_pq_.a"), SLICE("_pq_.bc") };
	uint8_t out[64];

	CHECK(pg_build_negotiate_version(out, sizeof(out), PG_PROTOCOL_3_0, opts, 2) == sizeof(want) - 1);
	CHECK(memcmp(out, want, sizeof(want) - 1) == 0);
}

static void
negotiate_version_without_options(void)
{
	uint8_t out[16];

	CHECK(pg_build_negotiate_version(out, sizeof(out), PG_PROTOCOL_3_0, NULL, 0) == 13);
	CHECK(memcmp(out, "v\0\0\0\x0c\0\3\0\0\0\0\0\0", 13) == 0);
}

static void
negotiate_version_refuses_a_name_with_nul(void)
{
	struct slice opts[] = { SLICE("_pq_.a\0b") };
	uint8_t out[64];

	CHECK(pg_build_negotiate_version(out, sizeof(out), PG_PROTOCOL_3_0, opts, 1) == 0);
}

static void
query_builder_round_trips(void)
{
	uint8_t out[64];
	struct slice sql;
	size_t n = pg_build_query(out, sizeof(out), "select pg_cancel_backend(1)");

	CHECK(n == 5 + 28);
	CHECK(pg_parse_query(body_of(out, n, PG_MSG_QUERY), &sql) == 0);
	CHECK(slice_is(sql, "select pg_cancel_backend(1)"));
}

static void
terminate_bytes_match_the_spec(void)
{
	uint8_t out[8];

	CHECK(pg_build_terminate(out, sizeof(out)) == 5);
	CHECK(memcmp(out, "X\0\0\0\x04", 5) == 0);
}

static void
cancel_builder_round_trips_through_the_startup_parser(void)
{
	uint8_t out[PG_CANCEL_LEN];

	CHECK(pg_build_cancel(out, sizeof(out), 777, 0xfeedface) == PG_CANCEL_LEN);
	CHECK(get32(out) == 16 && get32(out + 4) == PG_CANCEL_REQUEST_CODE);
	CHECK(pg_startup_parse(out, sizeof(out), &st, err, sizeof(err)) == 0);
	CHECK(st.kind == PG_STARTUP_CANCEL && st.cancel_pid == 777 && st.cancel_key == 0xfeedface);
	CHECK(pg_build_cancel(out, sizeof(out) - 1, 777, 1) == 0);
}

static void
builders_never_write_past_their_capacity(void)
{
	uint8_t out[128];
	size_t full, cap, n;
	struct slice opts[] = { SLICE("_pq_.x") };

	full = pg_build_error(out, sizeof(out), "ERROR", "42501", "m", "d", "h");
	for (cap = 0; cap <= full; cap++) {
		memset(out, 0xa5, sizeof(out));
		n = pg_build_error(out, cap, "ERROR", "42501", "m", "d", "h");
		CHECK(n <= cap);
		CHECK(out[cap] == 0xa5);
	}
	full = pg_build_negotiate_version(out, sizeof(out), PG_PROTOCOL_3_0, opts, 1);
	for (cap = 0; cap < full; cap++) {
		memset(out, 0xa5, sizeof(out));
		CHECK(pg_build_negotiate_version(out, cap, PG_PROTOCOL_3_0, opts, 1) == 0);
		CHECK(out[cap] == 0xa5);
	}
	for (cap = 0; cap < 14; cap++) {
		memset(out, 0xa5, sizeof(out));
		CHECK(pg_build_query(out, cap, "select 1") == 0);
		CHECK(pg_build_parameter_status(out, cap, "a", "b") == (cap >= 9 ? 9 : 0));
		CHECK(out[cap] == 0xa5);
	}
}

int
main(void)
{
	TEST(startup_v3_params_are_read_in_order);
	TEST(startup_param_slices_are_also_c_strings);
	TEST(startup_missing_param_is_null);
	TEST(startup_empty_value_is_kept);
	TEST(startup_without_params_is_valid_layout);
	TEST(startup_minor_version_above_zero_is_accepted_for_negotiation);
	TEST(startup_protocol_2_is_refused);
	TEST(ssl_request_is_recognised);
	TEST(gssenc_request_is_recognised);
	TEST(ssl_request_with_extra_bytes_is_refused);
	TEST(cancel_request_gives_pid_and_key);
	TEST(cancel_request_of_wrong_length_is_refused);
	TEST(startup_truncated_in_a_value_is_refused);
	TEST(startup_truncated_in_a_name_is_refused);
	TEST(startup_without_terminator_is_refused);
	TEST(startup_with_odd_number_of_strings_is_refused);
	TEST(startup_bytes_after_terminator_are_refused);
	TEST(startup_repeated_param_is_refused);
	TEST(startup_with_64_params_is_accepted);
	TEST(startup_with_too_many_params_is_refused);
	TEST(startup_huge_length_is_refused);
	TEST(startup_length_below_8_is_refused);
	TEST(startup_length_word_must_match_the_packet);
	TEST(startup_length_needs_four_bytes);
	TEST(startup_error_shows_hostile_names_safely);
	TEST(header_reads_type_and_length);
	TEST(header_needs_five_bytes);
	TEST(header_length_2_31_is_refused_whatever_the_limit);
	TEST(header_length_below_4_is_refused);
	TEST(header_length_over_the_callers_limit_is_refused);
	TEST(header_error_shows_unprintable_type_in_hex);
	TEST(frontend_message_names_are_known);
	TEST(query_with_nul_is_read);
	TEST(query_empty_string_is_read);
	TEST(query_without_nul_is_refused);
	TEST(query_with_trailing_bytes_is_refused);
	TEST(query_with_embedded_nul_is_refused);
	TEST(parse_with_params_is_read);
	TEST(parse_unnamed_without_params_is_read);
	TEST(parse_with_missing_type_oids_is_refused);
	TEST(parse_with_trailing_bytes_is_refused);
	TEST(bind_names_are_read_and_the_rest_checked);
	TEST(bind_value_past_the_end_is_refused);
	TEST(execute_is_read);
	TEST(describe_and_close_targets_are_read);
	TEST(error_response_from_a_server_is_read);
	TEST(error_severity_prefers_the_unlocalised_field);
	TEST(error_long_localised_severity_is_cut_at_a_character);
	TEST(error_without_sqlstate_or_message_gives_empty_ones);
	TEST(error_without_terminator_is_refused);
	TEST(error_with_bytes_after_terminator_is_refused);
	TEST(error_with_malformed_sqlstate_is_refused);
	TEST(command_complete_tag_is_read);
	TEST(ready_status_is_read);
	TEST(backend_key_is_read);
	TEST(parameter_status_is_read);
	TEST(error_builder_layout_matches_the_spec);
	TEST(error_builder_round_trips_with_detail_and_hint);
	TEST(error_builder_cuts_a_long_message_at_a_character);
	TEST(error_builder_leaves_out_a_detail_that_does_not_fit);
	TEST(error_builder_refuses_a_bad_sqlstate_or_tiny_buffer);
	TEST(notice_builder_uses_type_n);
	TEST(auth_ok_bytes_match_the_spec);
	TEST(auth_sasl_carries_its_mechanisms);
	TEST(parameter_status_round_trips);
	TEST(backend_key_round_trips);
	TEST(ready_round_trips);
	TEST(negotiate_version_bytes_match_the_spec);
	TEST(negotiate_version_without_options);
	TEST(negotiate_version_refuses_a_name_with_nul);
	TEST(query_builder_round_trips);
	TEST(terminate_bytes_match_the_spec);
	TEST(cancel_builder_round_trips_through_the_startup_parser);
	TEST(builders_never_write_past_their_capacity);
	return CHECK_DONE();
}
