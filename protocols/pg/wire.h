/*
 * The PostgreSQL frontend/backend protocol 3.0 as bytes: message codes, the startup packet, a
 * message header, the bodies the relay must read (Query and Parse for policy, the backend's
 * errors and status for the audit and the session state) and the messages the relay writes
 * itself (errors, authentication, status, cancel). Pure functions over caller buffers: no I/O,
 * no allocation, so the PostgreSQL front and the fuzz harness share every line.
 *
 * Every parser is bounded by the slice it is given, never reads past it, rejects a message with
 * bytes left over or missing, and returns 0 or -1. Slices that parsers hand back point into the
 * caller's buffer and live as long as it does.
 */
#ifndef POSTERN_PG_WIRE_H
#define POSTERN_PG_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "relay/util.h"

/* Frontend (client to server) message types. */
#define PG_MSG_BIND			'B'
#define PG_MSG_CLOSE			'C'
#define PG_MSG_COPY_DATA		'd'	/* both directions */
#define PG_MSG_COPY_DONE		'c'	/* both directions */
#define PG_MSG_COPY_FAIL		'f'
#define PG_MSG_DESCRIBE			'D'
#define PG_MSG_EXECUTE			'E'
#define PG_MSG_FLUSH			'H'
#define PG_MSG_FUNCTION_CALL		'F'
#define PG_MSG_PARSE			'P'
#define PG_MSG_PASSWORD			'p'	/* also SASLInitialResponse, SASLResponse, GSSResponse */
#define PG_MSG_QUERY			'Q'
#define PG_MSG_SYNC			'S'
#define PG_MSG_TERMINATE		'X'

/* Backend (server to client) message types. */
#define PG_MSG_AUTH			'R'
#define PG_MSG_BACKEND_KEY		'K'
#define PG_MSG_BIND_COMPLETE		'2'
#define PG_MSG_CLOSE_COMPLETE		'3'
#define PG_MSG_COMMAND_COMPLETE		'C'
#define PG_MSG_COPY_BOTH		'W'
#define PG_MSG_COPY_IN			'G'
#define PG_MSG_COPY_OUT			'H'
#define PG_MSG_DATA_ROW			'D'
#define PG_MSG_EMPTY_QUERY		'I'
#define PG_MSG_ERROR			'E'
#define PG_MSG_FUNCTION_RESULT		'V'
#define PG_MSG_NEGOTIATE_VERSION	'v'
#define PG_MSG_NO_DATA			'n'
#define PG_MSG_NOTICE			'N'
#define PG_MSG_NOTIFICATION		'A'
#define PG_MSG_PARAMETER_DESCRIPTION	't'
#define PG_MSG_PARAMETER_STATUS		'S'
#define PG_MSG_PARSE_COMPLETE		'1'
#define PG_MSG_PORTAL_SUSPENDED		's'
#define PG_MSG_READY			'Z'
#define PG_MSG_ROW_DESCRIPTION		'T'

/* Protocol versions and the special request codes that take the version's place. */
#define PG_PROTOCOL(major, minor)	(((uint32_t)(major) << 16) | (uint32_t)(minor))
#define PG_PROTOCOL_MAJOR(v)		((uint32_t)(v) >> 16)
#define PG_PROTOCOL_MINOR(v)		((uint32_t)(v) & 0xffff)
#define PG_PROTOCOL_3_0			196608		/* PG_PROTOCOL(3, 0) */
#define PG_SSL_REQUEST_CODE		80877103	/* PG_PROTOCOL(1234, 5679) */
#define PG_GSSENC_REQUEST_CODE		80877104	/* PG_PROTOCOL(1234, 5680) */
#define PG_CANCEL_REQUEST_CODE		80877102	/* PG_PROTOCOL(1234, 5678) */

/* The single byte the server answers an SSLRequest or GSSENCRequest with. */
#define PG_SSL_ACCEPT			'S'
#define PG_GSSENC_ACCEPT		'G'
#define PG_ENCRYPTION_REJECT		'N'

/* AuthenticationRequest ('R') codes. */
#define PG_AUTH_OK			0
#define PG_AUTH_KERBEROS_V5		2
#define PG_AUTH_CLEARTEXT_PASSWORD	3
#define PG_AUTH_MD5_PASSWORD		5
#define PG_AUTH_GSS			7
#define PG_AUTH_GSS_CONTINUE		8
#define PG_AUTH_SSPI			9
#define PG_AUTH_SASL			10
#define PG_AUTH_SASL_CONTINUE		11
#define PG_AUTH_SASL_FINAL		12

/* ReadyForQuery transaction status. */
#define PG_TXN_IDLE			'I'
#define PG_TXN_BLOCK			'T'
#define PG_TXN_FAILED			'E'

/* Describe and Close say which kind of object they name. */
#define PG_TARGET_STATEMENT		'S'
#define PG_TARGET_PORTAL		'P'

/* ErrorResponse and NoticeResponse field codes. */
#define PG_FIELD_SEVERITY		'S'	/* localised */
#define PG_FIELD_SEVERITY_V		'V'	/* never localised (9.6+) */
#define PG_FIELD_SQLSTATE		'C'
#define PG_FIELD_MESSAGE		'M'
#define PG_FIELD_DETAIL			'D'
#define PG_FIELD_HINT			'H'
#define PG_FIELD_POSITION		'P'
#define PG_FIELD_INTERNAL_POSITION	'p'
#define PG_FIELD_INTERNAL_QUERY		'q'
#define PG_FIELD_WHERE			'W'
#define PG_FIELD_SCHEMA			's'
#define PG_FIELD_TABLE			't'
#define PG_FIELD_COLUMN			'c'
#define PG_FIELD_DATATYPE		'd'
#define PG_FIELD_CONSTRAINT		'n'
#define PG_FIELD_FILE			'F'
#define PG_FIELD_LINE			'L'
#define PG_FIELD_ROUTINE		'R'

/* SQLSTATEs the relay itself reports (PostgreSQL's errcodes.txt). */
#define PG_SQLSTATE_FEATURE_NOT_SUPPORTED	"0A000"
#define PG_SQLSTATE_CONNECTION_FAILURE		"08006"
#define PG_SQLSTATE_PROTOCOL_VIOLATION		"08P01"
#define PG_SQLSTATE_INVALID_AUTHORIZATION	"28000"
#define PG_SQLSTATE_INVALID_PASSWORD		"28P01"
#define PG_SQLSTATE_INVALID_CATALOG_NAME	"3D000"
#define PG_SQLSTATE_INSUFFICIENT_PRIVILEGE	"42501"
#define PG_SQLSTATE_TOO_MANY_CONNECTIONS	"53300"
#define PG_SQLSTATE_PROGRAM_LIMIT_EXCEEDED	"54000"
#define PG_SQLSTATE_QUERY_CANCELED		"57014"
#define PG_SQLSTATE_ADMIN_SHUTDOWN		"57P01"
#define PG_SQLSTATE_CANNOT_CONNECT_NOW		"57P03"

/* Sizes and limits. */
#define PG_HEADER_LEN		5	/* type byte + Int32 length */
#define PG_STARTUP_MIN		8	/* length word + version or request code */
#define PG_STARTUP_MAX		10000	/* PostgreSQL's MAX_STARTUP_PACKET_LENGTH */
#define PG_STARTUP_PARAMS_MAX	64	/* name/value pairs we accept; libpq sends about 10 */
#define PG_CANCEL_LEN		16	/* length, code, process id, secret key */
#define PG_SQLSTATE_LEN		5
#define PG_SEVERITY_MAX		16	/* bytes for a severity, with its NUL */
#define PG_MSG_LENGTH_MAX	0x7fffffffu	/* lengths are Int32 on the wire */

/* A startup packet name/value pair. */
struct pg_param {
	struct slice name;	/* never empty */
	struct slice value;	/* may be empty */
};

enum pg_startup_kind {
	PG_STARTUP_NORMAL,	/* StartupMessage: a protocol version and parameters */
	PG_STARTUP_SSL,		/* SSLRequest */
	PG_STARTUP_GSSENC,	/* GSSENCRequest */
	PG_STARTUP_CANCEL,	/* CancelRequest */
};

struct pg_startup {
	enum pg_startup_kind kind;
	uint32_t protocol;	/* the version or request code as sent; for NORMAL, major is 3 */
	struct pg_param params[PG_STARTUP_PARAMS_MAX];	/* NORMAL: in packet order */
	size_t nparams;
	uint32_t cancel_pid;	/* CANCEL: the process id from BackendKeyData */
	uint32_t cancel_key;	/* CANCEL: the secret key from BackendKeyData */
};

/*
 * The length of the startup packet at BUF (its first 4 bytes, big-endian) into *OUT. Returns -1
 * while fewer than 4 bytes are there. The caller checks it against PG_STARTUP_MIN and
 * PG_STARTUP_MAX before waiting for that many bytes.
 */
int pg_startup_length(const uint8_t *buf, size_t len, uint32_t *out) __attribute__((warn_unused_result));

/*
 * Parse a whole startup packet (LEN bytes, length word included). NORMAL packets must be
 * protocol 3.x (a minor above 0 is accepted: the caller answers with NegotiateProtocolVersion),
 * hold name/value pairs ending in a single zero byte exactly at the end, and name no parameter
 * twice. SSL and GSSENC requests are exactly 8 bytes, CancelRequest exactly 16. The parameter
 * slices point into BUF, and each is followed by a NUL there, so .ptr is also a C string while
 * BUF lives. On failure writes a sentence for a FATAL ErrorResponse (SQLSTATE 08P01, or 0A000
 * for an unsupported protocol version) into ERR. Whether "user" is present is for the caller to
 * check: PostgreSQL answers that with 28000, not a protocol violation.
 */
int pg_startup_parse(const uint8_t *buf, size_t len, struct pg_startup *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The value of parameter NAME in a NORMAL startup packet, or a slice with ptr NULL. */
struct slice pg_startup_param(const struct pg_startup *s, const char *name);

/* pg_msg_header() result when fewer than PG_HEADER_LEN bytes are there yet. */
#define PG_MSG_HEADER_INCOMPLETE 1

/*
 * Read a regular message header: *TYPE and *LENGTH (which counts itself but not the type
 * byte; the whole message is LENGTH + 1 bytes). Returns 0 when the header is there,
 * PG_MSG_HEADER_INCOMPLETE when fewer than 5 bytes are, and -1 when the length is below 4 or
 * above MAX (the caller's limit; never above PG_MSG_LENGTH_MAX), with a sentence in ERR (which
 * may be NULL) saying which. *TYPE and *LENGTH are set on -1 too, for the caller's log.
 */
int pg_msg_header(const uint8_t *buf, size_t len, uint32_t max, uint8_t *type, uint32_t *length, char *err,
    size_t errlen) __attribute__((warn_unused_result));

/* "Query", "Parse", … for a frontend message type, or NULL for one the protocol does not have. */
const char *pg_frontend_msg_name(uint8_t type);

/*
 * Parsers of message bodies. BODY is what follows the 5-byte header. Strings come back without
 * their NUL, and a string with a NUL inside it cannot happen: the first NUL ends it.
 */

/* Query: one string, nothing after it. */
int pg_parse_query(struct slice body, struct slice *sql) __attribute__((warn_unused_result));

/* Parse: statement name (empty for the unnamed one), query, Int16 count and that many Int32 type OIDs. */
int pg_parse_parse(struct slice body, struct slice *stmt_name, struct slice *sql, uint16_t *nparams)
	__attribute__((warn_unused_result));

/*
 * Bind: only the portal and statement names, which is all the relay tracks; the parameter
 * values that follow are left unread (they are bounded by the message length the header gave).
 */
int pg_parse_bind_names(struct slice body, struct slice *portal, struct slice *stmt_name)
	__attribute__((warn_unused_result));

/* Execute: portal name and row limit (0 for all). */
int pg_parse_execute(struct slice body, struct slice *portal, uint32_t *max_rows) __attribute__((warn_unused_result));

/* Describe or Close: PG_TARGET_STATEMENT or PG_TARGET_PORTAL, then the name. */
int pg_parse_describe_close(struct slice body, char *target, struct slice *name) __attribute__((warn_unused_result));

/*
 * ErrorResponse or NoticeResponse: SQLSTATE (5 characters [0-9A-Z] and a NUL; empty if absent)
 * into SQLSTATE[6], the primary message (empty if absent) and the severity into
 * SEVERITY[PG_SEVERITY_MAX]: the never-localised V field when present, else S (cut at a UTF-8
 * boundary if it is longer). Fields the relay does not need are skipped but still checked.
 */
int pg_parse_error_fields(struct slice body, char *sqlstate, struct slice *message, char *severity)
	__attribute__((warn_unused_result));

/* CommandComplete: the tag ("SELECT 3", "INSERT 0 1"). */
int pg_parse_command_complete(struct slice body, struct slice *tag) __attribute__((warn_unused_result));

/* ReadyForQuery: PG_TXN_IDLE, PG_TXN_BLOCK or PG_TXN_FAILED; any other byte is an error. */
int pg_parse_ready(struct slice body, char *status) __attribute__((warn_unused_result));

/* BackendKeyData: process id and secret key. */
int pg_parse_backend_key(struct slice body, uint32_t *pid, uint32_t *key) __attribute__((warn_unused_result));

/* ParameterStatus: name (not empty) and value. */
int pg_parse_parameter_status(struct slice body, struct slice *name, struct slice *value)
	__attribute__((warn_unused_result));

/*
 * Builders write a whole message, header included, into OUT (capacity CAP) and return its
 * length, or 0 when it does not fit or an argument is not valid for the wire (a SQLSTATE that
 * is not 5 characters, a slice with a NUL in it).
 */

/*
 * ErrorResponse with S and V (SEVERITY, e.g. "ERROR" or "FATAL"), C (SQLSTATE), M (MESSAGE),
 * and D (DETAIL) and H (HINT) when they are not NULL. The message comes first: when it does
 * not fit CAP it is cut at a UTF-8 character boundary, and detail and hint go in only if they
 * fit whole after it, so a client always gets the error; 0 only if even S, V, C and an empty M
 * do not fit.
 */
size_t pg_build_error(uint8_t *out, size_t cap, const char *severity, const char *sqlstate, const char *message,
    const char *detail, const char *hint) __attribute__((warn_unused_result));
/* NoticeResponse, the same fields (SEVERITY "NOTICE", "WARNING", …). */
size_t pg_build_notice(uint8_t *out, size_t cap, const char *severity, const char *sqlstate, const char *message,
    const char *detail, const char *hint) __attribute__((warn_unused_result));

/* AuthenticationOk. */
size_t pg_build_auth_ok(uint8_t *out, size_t cap) __attribute__((warn_unused_result));
/* An AuthenticationRequest CODE (PG_AUTH_…) followed by DATA (LEN bytes; an MD5 salt, SASL mechanisms, …). */
size_t pg_build_auth(uint8_t *out, size_t cap, uint32_t code, const uint8_t *data, size_t len)
	__attribute__((warn_unused_result));
size_t pg_build_parameter_status(uint8_t *out, size_t cap, const char *name, const char *value)
	__attribute__((warn_unused_result));
size_t pg_build_backend_key(uint8_t *out, size_t cap, uint32_t pid, uint32_t key)
	__attribute__((warn_unused_result));
/* ReadyForQuery with STATUS PG_TXN_IDLE, PG_TXN_BLOCK or PG_TXN_FAILED. */
size_t pg_build_ready(uint8_t *out, size_t cap, char status) __attribute__((warn_unused_result));

/*
 * NegotiateProtocolVersion: NEWEST_VERSION is a whole version number, e.g. PG_PROTOCOL_3_0,
 * which is what PostgreSQL sends (PG_PROTOCOL_LATEST) and libpq reads, whatever older
 * documentation says about "newest minor"; then the N protocol options ("_pq_.…") not recognised.
 */
size_t pg_build_negotiate_version(uint8_t *out, size_t cap, uint32_t newest_version, const struct slice *unsupported,
    size_t n) __attribute__((warn_unused_result));

/* Frontend messages the relay sends upstream itself. */
size_t pg_build_query(uint8_t *out, size_t cap, const char *sql) __attribute__((warn_unused_result));
size_t pg_build_terminate(uint8_t *out, size_t cap) __attribute__((warn_unused_result));
/* CancelRequest: PG_CANCEL_LEN bytes, sent on a new connection in place of a startup packet. */
size_t pg_build_cancel(uint8_t *out, size_t cap, uint32_t pid, uint32_t key) __attribute__((warn_unused_result));

#endif
