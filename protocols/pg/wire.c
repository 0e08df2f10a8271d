/*
 * PostgreSQL protocol 3.0 codec: a bounded reader and a capacity-checked writer over caller
 * buffers, and on them the startup packet, the message header, the bodies the relay reads and
 * the messages it writes. Everything here parses attacker input (clients and, should one be
 * compromised, servers), so every read is checked against what is there and a malformed
 * message is an error, never a guess.
 */
#include "protocols/pg/wire.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Big-endian integers, byte by byte: wire buffers have no alignment. */
static uint16_t
be16_get(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t
be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Write an error sentence, tolerating a caller that wants none. */
static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Copy at most 64 bytes of attacker-chosen NAME into DST for an error message, with anything
 * outside printable ASCII shown as '?', so that a hostile name cannot forge log lines or send
 * control characters back to a terminal.
 */
static const char *
printable(char *dst, size_t size, const uint8_t *name, size_t len)
{
	size_t i, n = len < size - 1 ? len : size - 1;

	for (i = 0; i < n; i++)
		dst[i] = name[i] >= 0x20 && name[i] < 0x7f ? (char)name[i] : '?';
	dst[n] = '\0';
	return dst;
}

#define PRINTABLE_MAX 65	/* bytes of a printable() buffer */

/* Sequential reader over one message body. Each getter fails, and leaves nothing, when short. */
struct pg_reader {
	const uint8_t *p;	/* the body */
	size_t len;		/* its length */
	size_t off;		/* bytes consumed */
};

static bool
rd_u8(struct pg_reader *r, uint8_t *v)
{
	if (r->len - r->off < 1)
		return false;
	*v = r->p[r->off++];
	return true;
}

static bool
rd_u16(struct pg_reader *r, uint16_t *v)
{
	if (r->len - r->off < 2)
		return false;
	*v = be16_get(r->p + r->off);
	r->off += 2;
	return true;
}

static bool
rd_u32(struct pg_reader *r, uint32_t *v)
{
	if (r->len - r->off < 4)
		return false;
	*v = be32_get(r->p + r->off);
	r->off += 4;
	return true;
}

static bool
rd_skip(struct pg_reader *r, size_t n)
{
	if (r->len - r->off < n)
		return false;
	r->off += n;
	return true;
}

/* A NUL-terminated string; S gets it without the NUL. */
static bool
rd_str(struct pg_reader *r, struct slice *s)
{
	const uint8_t *nul;

	if (r->off >= r->len)
		return false;
	nul = memchr(r->p + r->off, 0, r->len - r->off);
	if (nul == NULL)
		return false;
	s->ptr = r->p + r->off;
	s->len = (size_t)(nul - s->ptr);
	r->off += s->len + 1;
	return true;
}

static bool
rd_end(const struct pg_reader *r)
{
	return r->off == r->len;
}

static struct pg_reader
rd_init(struct slice body)
{
	struct pg_reader r = { body.ptr, body.len, 0 };

	if (r.p == NULL)
		r.len = 0;	/* a NULL slice reads as empty, never as memory */
	return r;
}

/* Writer with a fixed capacity; the first write that does not fit marks it full for good. */
struct pg_writer {
	uint8_t *out;
	size_t cap;
	size_t len;
	bool full;
};

static void
wr_bytes(struct pg_writer *w, const void *p, size_t n)
{
	if (w->full || n > w->cap - w->len) {
		w->full = true;
		return;
	}
	if (n > 0)
		memcpy(w->out + w->len, p, n);
	w->len += n;
}

static void
wr_u8(struct pg_writer *w, uint8_t v)
{
	wr_bytes(w, &v, 1);
}

static void
wr_u32(struct pg_writer *w, uint32_t v)
{
	uint8_t b[4];

	be32_put(b, v);
	wr_bytes(w, b, 4);
}

static void
wr_str(struct pg_writer *w, const void *s, size_t n)
{
	wr_bytes(w, s, n);
	wr_u8(w, 0);
}

/* Start a message of TYPE; wr_finish() fills in the length. */
static struct pg_writer
wr_begin(uint8_t *out, size_t cap, uint8_t type)
{
	struct pg_writer w = { out, out == NULL ? 0 : cap, 0, false };

	wr_u8(&w, type);
	wr_u32(&w, 0);
	return w;
}

static size_t
wr_finish(struct pg_writer *w)
{
	if (w->full || w->len - 1 > PG_MSG_LENGTH_MAX)
		return 0;
	be32_put(w->out + 1, (uint32_t)(w->len - 1));
	return w->len;
}

static bool
slice_has_nul(struct slice s)
{
	return s.len > 0 && memchr(s.ptr, 0, s.len) != NULL;
}

static bool
sqlstate_valid(const uint8_t *s, size_t len)
{
	size_t i;

	if (len != PG_SQLSTATE_LEN)
		return false;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return true;
}

/*
 * The longest prefix of S, at most MAX bytes of its LEN, that does not end inside a UTF-8
 * sequence, so a cut message is still valid text for the client's decoder.
 */
static size_t
utf8_cut(const uint8_t *s, size_t len, size_t max)
{
	size_t k, back;

	if (len <= max)
		return len;
	/* s[max] is the first byte left out: if it continues a sequence, leave out its lead too. */
	for (k = max, back = 0; k > 0 && back < 4 && (s[k] & 0xc0) == 0x80; k--, back++)
		;
	return back < 4 ? k : max;	/* four continuation bytes in a row is not UTF-8 anyway */
}

int
pg_startup_length(const uint8_t *buf, size_t len, uint32_t *out)
{
	if (buf == NULL || len < 4)
		return -1;
	*out = be32_get(buf);
	return 0;
}

/* Check that no parameter before the last one in S has the last one's name. */
static bool
startup_param_repeated(const struct pg_startup *s)
{
	const struct slice *name = &s->params[s->nparams - 1].name;
	size_t i;

	for (i = 0; i + 1 < s->nparams; i++)
		if (s->params[i].name.len == name->len && memcmp(s->params[i].name.ptr, name->ptr, name->len) == 0)
			return true;
	return false;
}

/* The name/value pairs of a NORMAL startup packet, from offset 8 to the final zero byte. */
static int
startup_params(const uint8_t *buf, size_t len, struct pg_startup *out, char *err, size_t errlen)
{
	char shown[PRINTABLE_MAX];
	size_t off = PG_STARTUP_MIN;
	const uint8_t *nul;
	struct pg_param *p;

	for (;;) {
		if (off >= len) {
			set_err(err, errlen, "invalid startup packet layout: the parameter list does not end with "
			    "a zero byte");
			return -1;
		}
		if (buf[off] == 0)
			break;
		if (out->nparams == PG_STARTUP_PARAMS_MAX) {
			set_err(err, errlen, "startup packet has more than %d parameters; send fewer connection "
			    "parameters (use SET after connecting for the rest)", PG_STARTUP_PARAMS_MAX);
			return -1;
		}
		p = &out->params[out->nparams];
		nul = memchr(buf + off, 0, len - off);
		if (nul == NULL) {
			set_err(err, errlen, "invalid startup packet layout: a parameter name runs past the end "
			    "of the packet");
			return -1;
		}
		p->name.ptr = buf + off;
		p->name.len = (size_t)(nul - p->name.ptr);
		off += p->name.len + 1;
		printable(shown, sizeof(shown), p->name.ptr, p->name.len);
		if (off >= len) {
			set_err(err, errlen, "invalid startup packet layout: parameter \"%s\" has no value", shown);
			return -1;
		}
		nul = memchr(buf + off, 0, len - off);
		if (nul == NULL) {
			set_err(err, errlen, "invalid startup packet layout: the value of parameter \"%s\" runs "
			    "past the end of the packet", shown);
			return -1;
		}
		p->value.ptr = buf + off;
		p->value.len = (size_t)(nul - p->value.ptr);
		off += p->value.len + 1;
		out->nparams++;
		/*
		 * PostgreSQL lets the last of two take effect; a relay that checked the first could be
		 * walked past, so a repeat is refused outright.
		 */
		if (startup_param_repeated(out)) {
			set_err(err, errlen, "startup packet names parameter \"%s\" more than once", shown);
			return -1;
		}
	}
	if (off != len - 1) {
		set_err(err, errlen, "invalid startup packet layout: %zu bytes follow the terminating zero byte",
		    len - 1 - off);
		return -1;
	}
	return 0;
}

int
pg_startup_parse(const uint8_t *buf, size_t len, struct pg_startup *out, char *err, size_t errlen)
{
	uint32_t declared, code;

	out->kind = PG_STARTUP_NORMAL;
	out->protocol = 0;
	out->nparams = 0;
	out->cancel_pid = out->cancel_key = 0;
	if (buf == NULL || len < PG_STARTUP_MIN || len > PG_STARTUP_MAX) {
		set_err(err, errlen, "invalid length of startup packet: %zu bytes, outside %d to %d", buf ? len : 0,
		    PG_STARTUP_MIN, PG_STARTUP_MAX);
		return -1;
	}
	declared = be32_get(buf);
	if (declared != len) {
		set_err(err, errlen, "invalid length of startup packet: it says %u bytes but is %zu", declared, len);
		return -1;
	}
	code = be32_get(buf + 4);
	out->protocol = code;
	switch (code) {
	case PG_SSL_REQUEST_CODE:
	case PG_GSSENC_REQUEST_CODE:
		if (len != PG_STARTUP_MIN) {
			set_err(err, errlen, "invalid length of %s: %zu bytes, not %d",
			    code == PG_SSL_REQUEST_CODE ? "SSLRequest" : "GSSENCRequest", len, PG_STARTUP_MIN);
			return -1;
		}
		out->kind = code == PG_SSL_REQUEST_CODE ? PG_STARTUP_SSL : PG_STARTUP_GSSENC;
		return 0;
	case PG_CANCEL_REQUEST_CODE:
		if (len != PG_CANCEL_LEN) {
			set_err(err, errlen, "invalid length of CancelRequest: %zu bytes, not %d", len, PG_CANCEL_LEN);
			return -1;
		}
		out->kind = PG_STARTUP_CANCEL;
		out->cancel_pid = be32_get(buf + 8);
		out->cancel_key = be32_get(buf + 12);
		return 0;
	default:
		break;
	}
	if (PG_PROTOCOL_MAJOR(code) != PG_PROTOCOL_MAJOR(PG_PROTOCOL_3_0)) {
		set_err(err, errlen, "unsupported frontend protocol %u.%u: this server supports 3.0; use a client "
		    "that speaks protocol 3 (PostgreSQL 7.4 or later)", PG_PROTOCOL_MAJOR(code), PG_PROTOCOL_MINOR(code));
		return -1;
	}
	if (startup_params(buf, len, out, err, errlen) != 0) {
		out->nparams = 0;
		return -1;
	}
	return 0;
}

struct slice
pg_startup_param(const struct pg_startup *s, const char *name)
{
	struct slice none = { NULL, 0 };
	size_t i, n = strlen(name);

	if (s->kind != PG_STARTUP_NORMAL)
		return none;
	for (i = 0; i < s->nparams; i++)
		if (s->params[i].name.len == n && memcmp(s->params[i].name.ptr, name, n) == 0)
			return s->params[i].value;
	return none;
}

int
pg_msg_header(const uint8_t *buf, size_t len, uint32_t max, uint8_t *type, uint32_t *length, char *err,
    size_t errlen)
{
	char shown[8];

	if (buf == NULL || len < PG_HEADER_LEN)
		return PG_MSG_HEADER_INCOMPLETE;
	if (max > PG_MSG_LENGTH_MAX)
		max = PG_MSG_LENGTH_MAX;
	*type = buf[0];
	*length = be32_get(buf + 1);
	if (*length >= 4 && *length <= max)
		return 0;
	if (*type >= 0x20 && *type < 0x7f)
		snprintf(shown, sizeof(shown), "'%c'", *type);
	else
		snprintf(shown, sizeof(shown), "0x%02x", *type);
	if (*length < 4)
		set_err(err, errlen, "invalid message length %u for message type %s: the length counts itself, "
		    "so it is at least 4", *length, shown);
	else
		set_err(err, errlen, "invalid message length %u for message type %s: over the limit of %u bytes",
		    *length, shown, max);
	return -1;
}

const char *
pg_frontend_msg_name(uint8_t type)
{
	switch (type) {
	case PG_MSG_BIND:		return "Bind";
	case PG_MSG_CLOSE:		return "Close";
	case PG_MSG_COPY_DATA:		return "CopyData";
	case PG_MSG_COPY_DONE:		return "CopyDone";
	case PG_MSG_COPY_FAIL:		return "CopyFail";
	case PG_MSG_DESCRIBE:		return "Describe";
	case PG_MSG_EXECUTE:		return "Execute";
	case PG_MSG_FLUSH:		return "Flush";
	case PG_MSG_FUNCTION_CALL:	return "FunctionCall";
	case PG_MSG_PARSE:		return "Parse";
	case PG_MSG_PASSWORD:		return "PasswordMessage";
	case PG_MSG_QUERY:		return "Query";
	case PG_MSG_SYNC:		return "Sync";
	case PG_MSG_TERMINATE:		return "Terminate";
	default:			return NULL;
	}
}

int
pg_parse_query(struct slice body, struct slice *sql)
{
	struct pg_reader r = rd_init(body);

	return rd_str(&r, sql) && rd_end(&r) ? 0 : -1;
}

int
pg_parse_parse(struct slice body, struct slice *stmt_name, struct slice *sql, uint16_t *nparams)
{
	struct pg_reader r = rd_init(body);

	if (!rd_str(&r, stmt_name) || !rd_str(&r, sql) || !rd_u16(&r, nparams))
		return -1;
	return rd_skip(&r, (size_t)*nparams * 4) && rd_end(&r) ? 0 : -1;
}

int
pg_parse_bind_names(struct slice body, struct slice *portal, struct slice *stmt_name)
{
	struct pg_reader r = rd_init(body);
	uint16_t n, i;
	uint32_t vlen;

	if (!rd_str(&r, portal) || !rd_str(&r, stmt_name))
		return -1;
	/* The rest is only walked, so that a Bind the relay passes on is at least well formed. */
	if (!rd_u16(&r, &n) || !rd_skip(&r, (size_t)n * 2))	/* parameter format codes */
		return -1;
	if (!rd_u16(&r, &n))					/* parameter values */
		return -1;
	for (i = 0; i < n; i++) {
		if (!rd_u32(&r, &vlen))
			return -1;
		if (vlen == UINT32_MAX)				/* -1: SQL NULL, no bytes */
			continue;
		if (vlen > PG_MSG_LENGTH_MAX || !rd_skip(&r, vlen))
			return -1;
	}
	if (!rd_u16(&r, &n) || !rd_skip(&r, (size_t)n * 2))	/* result format codes */
		return -1;
	return rd_end(&r) ? 0 : -1;
}

int
pg_parse_execute(struct slice body, struct slice *portal, uint32_t *max_rows)
{
	struct pg_reader r = rd_init(body);

	return rd_str(&r, portal) && rd_u32(&r, max_rows) && rd_end(&r) ? 0 : -1;
}

int
pg_parse_describe_close(struct slice body, char *target, struct slice *name)
{
	struct pg_reader r = rd_init(body);
	uint8_t t;

	if (!rd_u8(&r, &t) || (t != PG_TARGET_STATEMENT && t != PG_TARGET_PORTAL))
		return -1;
	if (!rd_str(&r, name) || !rd_end(&r))
		return -1;
	*target = (char)t;
	return 0;
}

int
pg_parse_error_fields(struct slice body, char *sqlstate, struct slice *message, char *severity)
{
	struct pg_reader r = rd_init(body);
	struct slice value, sev_s = { NULL, 0 }, sev_v = { NULL, 0 }, msg = { NULL, 0 }, *sev;
	char code[PG_SQLSTATE_LEN + 1] = "";
	uint8_t field;
	size_t n;

	for (;;) {
		if (!rd_u8(&r, &field))
			return -1;	/* no terminating zero field code */
		if (field == 0)
			break;
		if (!rd_str(&r, &value))
			return -1;
		switch (field) {
		case PG_FIELD_SEVERITY:
			sev_s = value;
			break;
		case PG_FIELD_SEVERITY_V:
			sev_v = value;
			break;
		case PG_FIELD_SQLSTATE:
			if (!sqlstate_valid(value.ptr, value.len))
				return -1;
			memcpy(code, value.ptr, PG_SQLSTATE_LEN);
			code[PG_SQLSTATE_LEN] = '\0';
			break;
		case PG_FIELD_MESSAGE:
			msg = value;
			break;
		default:
			break;	/* other fields are for the client, which gets the message as it was */
		}
	}
	if (!rd_end(&r))
		return -1;
	sev = sev_v.ptr != NULL ? &sev_v : &sev_s;
	n = sev->ptr != NULL ? utf8_cut(sev->ptr, sev->len, PG_SEVERITY_MAX - 1) : 0;
	if (n > 0)
		memcpy(severity, sev->ptr, n);
	severity[n] = '\0';
	memcpy(sqlstate, code, sizeof(code));
	if (msg.ptr == NULL)
		msg.ptr = body.ptr;	/* absent: an empty slice that still points into BODY */
	*message = msg;
	return 0;
}

int
pg_parse_command_complete(struct slice body, struct slice *tag)
{
	struct pg_reader r = rd_init(body);

	return rd_str(&r, tag) && rd_end(&r) ? 0 : -1;
}

int
pg_parse_ready(struct slice body, char *status)
{
	if (body.ptr == NULL || body.len != 1)
		return -1;
	if (body.ptr[0] != PG_TXN_IDLE && body.ptr[0] != PG_TXN_BLOCK && body.ptr[0] != PG_TXN_FAILED)
		return -1;
	*status = (char)body.ptr[0];
	return 0;
}

int
pg_parse_backend_key(struct slice body, uint32_t *pid, uint32_t *key)
{
	struct pg_reader r = rd_init(body);

	/* Protocol 3.0 keys are exactly 4 bytes; 3.2's longer keys would need negotiating first. */
	return rd_u32(&r, pid) && rd_u32(&r, key) && rd_end(&r) ? 0 : -1;
}

int
pg_parse_parameter_status(struct slice body, struct slice *name, struct slice *value)
{
	struct pg_reader r = rd_init(body);

	if (!rd_str(&r, name) || name->len == 0)
		return -1;
	return rd_str(&r, value) && rd_end(&r) ? 0 : -1;
}

/* ErrorResponse and NoticeResponse differ only in their type byte. */
static size_t
build_error_like(uint8_t type, uint8_t *out, size_t cap, const char *severity, const char *sqlstate,
    const char *message, const char *detail, const char *hint)
{
	struct pg_writer w;
	size_t slen, mlen, dlen, hlen, fixed, room;

	if (severity == NULL || sqlstate == NULL || message == NULL || out == NULL)
		return 0;
	slen = strlen(severity);
	if (slen == 0 || !sqlstate_valid((const uint8_t *)sqlstate, strlen(sqlstate)))
		return 0;
	mlen = strlen(message);
	dlen = detail != NULL ? strlen(detail) : 0;
	hlen = hint != NULL ? strlen(hint) : 0;
	/* header; S and V; C; M's code and NUL; the terminating zero field code */
	fixed = PG_HEADER_LEN + 2 * (slen + 2) + (PG_SQLSTATE_LEN + 2) + 2 + 1;
	if (slen > cap || fixed > cap)
		return 0;
	room = cap - fixed;
	if (mlen > room) {
		mlen = utf8_cut((const uint8_t *)message, mlen, room);
		detail = hint = NULL;	/* no room left for them */
	}
	room -= mlen;
	if (detail != NULL && dlen + 2 <= room)
		room -= dlen + 2;
	else
		detail = NULL;
	if (hint != NULL && hlen + 2 > room)
		hint = NULL;

	w = wr_begin(out, cap, type);
	wr_u8(&w, PG_FIELD_SEVERITY);
	wr_str(&w, severity, slen);
	wr_u8(&w, PG_FIELD_SEVERITY_V);
	wr_str(&w, severity, slen);
	wr_u8(&w, PG_FIELD_SQLSTATE);
	wr_str(&w, sqlstate, PG_SQLSTATE_LEN);
	wr_u8(&w, PG_FIELD_MESSAGE);
	wr_str(&w, message, mlen);
	if (detail != NULL) {
		wr_u8(&w, PG_FIELD_DETAIL);
		wr_str(&w, detail, dlen);
	}
	if (hint != NULL) {
		wr_u8(&w, PG_FIELD_HINT);
		wr_str(&w, hint, hlen);
	}
	wr_u8(&w, 0);
	return wr_finish(&w);
}

size_t
pg_build_error(uint8_t *out, size_t cap, const char *severity, const char *sqlstate, const char *message,
    const char *detail, const char *hint)
{
	return build_error_like(PG_MSG_ERROR, out, cap, severity, sqlstate, message, detail, hint);
}

size_t
pg_build_notice(uint8_t *out, size_t cap, const char *severity, const char *sqlstate, const char *message,
    const char *detail, const char *hint)
{
	return build_error_like(PG_MSG_NOTICE, out, cap, severity, sqlstate, message, detail, hint);
}

size_t
pg_build_auth(uint8_t *out, size_t cap, uint32_t code, const uint8_t *data, size_t len)
{
	struct pg_writer w;

	if (data == NULL && len > 0)
		return 0;
	w = wr_begin(out, cap, PG_MSG_AUTH);
	wr_u32(&w, code);
	wr_bytes(&w, data, len);
	return wr_finish(&w);
}

size_t
pg_build_auth_ok(uint8_t *out, size_t cap)
{
	return pg_build_auth(out, cap, PG_AUTH_OK, NULL, 0);
}

size_t
pg_build_parameter_status(uint8_t *out, size_t cap, const char *name, const char *value)
{
	struct pg_writer w;

	if (name == NULL || name[0] == '\0' || value == NULL)
		return 0;
	w = wr_begin(out, cap, PG_MSG_PARAMETER_STATUS);
	wr_str(&w, name, strlen(name));
	wr_str(&w, value, strlen(value));
	return wr_finish(&w);
}

size_t
pg_build_backend_key(uint8_t *out, size_t cap, uint32_t pid, uint32_t key)
{
	struct pg_writer w = wr_begin(out, cap, PG_MSG_BACKEND_KEY);

	wr_u32(&w, pid);
	wr_u32(&w, key);
	return wr_finish(&w);
}

size_t
pg_build_ready(uint8_t *out, size_t cap, char status)
{
	struct pg_writer w;

	if (status != PG_TXN_IDLE && status != PG_TXN_BLOCK && status != PG_TXN_FAILED)
		return 0;
	w = wr_begin(out, cap, PG_MSG_READY);
	wr_u8(&w, (uint8_t)status);
	return wr_finish(&w);
}

size_t
pg_build_negotiate_version(uint8_t *out, size_t cap, uint32_t newest_version, const struct slice *unsupported,
    size_t n)
{
	struct pg_writer w;
	size_t i;

	if (n > PG_MSG_LENGTH_MAX || (n > 0 && unsupported == NULL))
		return 0;
	for (i = 0; i < n; i++)
		if ((unsupported[i].ptr == NULL && unsupported[i].len > 0) || slice_has_nul(unsupported[i]))
			return 0;
	w = wr_begin(out, cap, PG_MSG_NEGOTIATE_VERSION);
	wr_u32(&w, newest_version);
	wr_u32(&w, (uint32_t)n);
	for (i = 0; i < n; i++)
		wr_str(&w, unsupported[i].ptr, unsupported[i].len);
	return wr_finish(&w);
}

size_t
pg_build_query(uint8_t *out, size_t cap, const char *sql)
{
	struct pg_writer w;

	if (sql == NULL)
		return 0;
	w = wr_begin(out, cap, PG_MSG_QUERY);
	wr_str(&w, sql, strlen(sql));
	return wr_finish(&w);
}

size_t
pg_build_terminate(uint8_t *out, size_t cap)
{
	struct pg_writer w = wr_begin(out, cap, PG_MSG_TERMINATE);

	return wr_finish(&w);
}

size_t
pg_build_cancel(uint8_t *out, size_t cap, uint32_t pid, uint32_t key)
{
	if (out == NULL || cap < PG_CANCEL_LEN)
		return 0;
	be32_put(out, PG_CANCEL_LEN);
	be32_put(out + 4, PG_CANCEL_REQUEST_CODE);
	be32_put(out + 8, pid);
	be32_put(out + 12, key);
	return PG_CANCEL_LEN;
}
