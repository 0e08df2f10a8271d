/*
 * PostgreSQL relay loop. Bytes move between client and target as evbuffer chains; the relay
 * reads only message headers, plus the whole of the few messages it must understand: Query
 * and Parse (policy), and the target's ErrorResponse, CommandComplete and ReadyForQuery.
 *
 * It keeps a model of the protocol: a FIFO with one entry per forwarded request that gets a
 * reply (Query, Parse, Bind, Describe, Execute, Close, Sync, FunctionCall), popped as the
 * target's replies come back (PostgreSQL answers strictly in order). The model tells which
 * reply answers which request, which is what makes denial exact:
 *
 * A denied statement is not simply answered by posternd, because that would break the order
 * of replies in a pipeline and the transaction semantics (PostgreSQL aborts the transaction,
 * or the implicit transaction of an extended batch, on any error). Instead posternd sends the
 * target, in the denied message's place, a statement that fails by itself
 * (DO … RAISE EXCEPTION) — a Query for a Query, Parse+Bind+Execute for a Parse — marks those
 * requests as injected, drops their success replies (ParseComplete, BindComplete) and replaces
 * their error with its own 42501 carrying the policy's reason. The target then skips the rest
 * of the batch up to Sync and answers ReadyForQuery with the right transaction status, exactly
 * as it does after any error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "policy/sql.h"
#include "protocols/pg/session.h"
#include "relay/log.h"

/* The statement a denied one is replaced with: it fails on the target by itself. */
#define PG_DENY_SQL	"DO $postern$BEGIN RAISE EXCEPTION USING ERRCODE = '42501', " \
			"MESSAGE = 'postern: statement denied by policy'; END$postern$"
#define PG_SMALL_MAX	(64u << 10)	/* target messages posternd reads whole: E, C, Z */

enum pg_verdict_on_reply {
	PG_REPLY_FORWARD,
	PG_REPLY_DROP,		/* a success reply to an injected request */
	PG_REPLY_REPLACE,	/* the error of an injected request: send posternd's own */
};

static void pg_upstream_read_cb(struct io *io, void *arg);
static void pg_upstream_drain_cb(struct io *io, void *arg);
static void pg_upstream_event_cb(struct io *io, enum io_event ev, void *arg);

const struct io_callbacks pg_upstream_cb = { pg_upstream_read_cb, pg_upstream_drain_cb, pg_upstream_event_cb };

static inline void
pg_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- the model ---- */

static bool
pg_expect_push_seq(struct pg_session *p, uint8_t kind, bool injected, uint32_t seq)
{
	if (p->e_count == p->e_cap) {
		uint32_t cap = p->e_cap ? p->e_cap * 2 : 64;
		struct pg_expect *grown;

		if (cap > PG_EXPECT_MAX || (grown = malloc(cap * sizeof(*grown))) == NULL)
			return false;
		/* Unroll the ring into the new array. */
		for (uint32_t i = 0; i < p->e_count; i++)
			grown[i] = p->expect[(p->e_head + i) % p->e_cap];
		free(p->expect);
		p->expect = grown;
		p->e_cap = cap;
		p->e_head = 0;
	}
	p->expect[(p->e_head + p->e_count) % p->e_cap] = (struct pg_expect){ .kind = kind, .injected = injected, .seq = seq };
	p->e_count++;
	return true;
}

static bool
pg_expect_push(struct pg_session *p, uint8_t kind, bool injected)
{
	return pg_expect_push_seq(p, kind, injected, 0);
}

/* An Execute is a statement too: record it with the portal it runs, then expect its reply. */
static bool
pg_execute(struct pg_session *p, uint32_t total)
{
	const uint8_t *buf = total <= PG_SMALL_MAX ? io_pullup(p->client, total) : NULL;
	struct slice portal = { (const uint8_t *)"", 0 };
	uint32_t max_rows, seq = ++p->seq;

	if (buf != NULL && pg_parse_execute((struct slice){ buf + PG_HEADER_LEN, total - PG_HEADER_LEN }, &portal, &max_rows) != 0)
		portal = (struct slice){ (const uint8_t *)"", 0 };
	audit_statement(p->s, seq, "execute", (const char *)portal.ptr, portal.len, AUDIT_ALLOWED, NULL);
	return pg_expect_push_seq(p, PG_MSG_EXECUTE, false, seq);
}

static struct pg_expect *
pg_expect_head(struct pg_session *p)
{
	return p->e_count ? &p->expect[p->e_head] : NULL;
}

static void
pg_expect_pop(struct pg_session *p)
{
	struct pg_expect *e = pg_expect_head(p);

	if (e == NULL)
		return;
	if (e->seq != 0)
		audit_outcome(p->s, e->seq, p->outcome_tag, p->outcome_state[0] ? p->outcome_state : NULL);
	p->outcome_tag[0] = p->outcome_state[0] = '\0';
	p->e_head = (p->e_head + 1) % p->e_cap;
	p->e_count--;
}

/* Remove the Sync entries right after the head (see PG_MSG_COPY_IN). */
static void
pg_expect_drop_syncs_after_head(struct pg_session *p)
{
	uint32_t n = 0;

	if (p->e_count < 2)
		return;
	while (n + 1 < p->e_count && p->expect[(p->e_head + 1 + n) % p->e_cap].kind == PG_MSG_SYNC)
		n++;
	for (uint32_t i = 1; i + n < p->e_count; i++)
		p->expect[(p->e_head + i) % p->e_cap] = p->expect[(p->e_head + i + n) % p->e_cap];
	p->e_count -= n;
}

static bool
pg_is_sync_point(uint8_t kind)
{
	return kind == PG_MSG_QUERY || kind == PG_MSG_SYNC || kind == PG_MSG_FUNCTION_CALL;
}

/* An error ended an extended-protocol request: the target skips the rest up to Sync. */
static void
pg_expect_error_skip(struct pg_session *p)
{
	struct pg_expect *e;

	pg_expect_pop(p);
	while ((e = pg_expect_head(p)) != NULL && !pg_is_sync_point(e->kind))
		pg_expect_pop(p);
	/* No Sync forwarded yet: what the client sends before it is skipped too. */
	p->skipping = e == NULL;
}

static void
pg_idle_timer(struct pg_session *p, bool arm)
{
	double t = p->s->cfg->idle_in_transaction_timeout;
	struct timeval tv;

	if (p->timer == NULL || t <= 0)
		return;
	event_del(p->timer);
	if (!arm)
		return;
	tv.tv_sec = (time_t)t;
	tv.tv_usec = (suseconds_t)((t - (double)tv.tv_sec) * 1e6);
	event_add(p->timer, &tv);
}

/* The target reports a setting: keep those that change how SQL text splits into tokens. */
void
pg_note_parameter(struct pg_session *p, struct slice name, struct slice value)
{
	if (name.len == 27 && memcmp(name.ptr, "standard_conforming_strings", 27) == 0) {
		if (value.len == 3 && memcmp(value.ptr, "off", 3) == 0)
			p->sql_modes |= SQL_MODE_PG_NO_STANDARD_STRINGS;
		else
			p->sql_modes &= ~SQL_MODE_PG_NO_STANDARD_STRINGS;
	}
}

/* Account for one target message of TYPE (BODY read only for E, C, Z, S). */
static enum pg_verdict_on_reply
pg_model_reply(struct pg_session *p, uint8_t type, struct slice body)
{
	struct pg_expect *head = pg_expect_head(p);
	bool injected = head != NULL && head->injected;
	char status, sqlstate[6] = "", severity[PG_SEVERITY_MAX];
	struct slice msg, tag;

	switch (type) {
	case PG_MSG_PARSE_COMPLETE:
	case PG_MSG_BIND_COMPLETE:
	case PG_MSG_CLOSE_COMPLETE:
		if (head != NULL && head->kind == (type == PG_MSG_PARSE_COMPLETE ? PG_MSG_PARSE :
		    type == PG_MSG_BIND_COMPLETE ? PG_MSG_BIND : PG_MSG_CLOSE)) {
			pg_expect_pop(p);
			return injected ? PG_REPLY_DROP : PG_REPLY_FORWARD;
		}
		return PG_REPLY_FORWARD;
	case PG_MSG_NO_DATA:
	case PG_MSG_ROW_DESCRIPTION:
		if (head != NULL && head->kind == PG_MSG_DESCRIBE)
			pg_expect_pop(p);
		return PG_REPLY_FORWARD;
	case PG_MSG_COMMAND_COMPLETE:
		if (body.ptr != NULL && pg_parse_command_complete(body, &tag) == 0) {
			size_t n = tag.len < sizeof(p->outcome_tag) - 1 ? tag.len : sizeof(p->outcome_tag) - 1;

			memcpy(p->outcome_tag, tag.ptr, n);	/* every statement: no printf */
			p->outcome_tag[n] = '\0';
		}
		/* fall through */
	case PG_MSG_EMPTY_QUERY:
	case PG_MSG_PORTAL_SUSPENDED:
		if (head != NULL && head->kind == PG_MSG_EXECUTE)
			pg_expect_pop(p);
		return PG_REPLY_FORWARD;
	case PG_MSG_COPY_IN:
		/* Syncs the client sent after the request that started this COPY reach the target in
		 * copy-in mode, where it ignores them: they get no ReadyForQuery. */
		p->copy_starts++;
		if (p->copy_ends < p->copy_starts)
			pg_expect_drop_syncs_after_head(p);
		return PG_REPLY_FORWARD;
	case PG_MSG_PARAMETER_STATUS:
		if (body.ptr != NULL && pg_parse_parameter_status(body, &msg, &tag) == 0)
			pg_note_parameter(p, msg, tag);
		return PG_REPLY_FORWARD;
	case PG_MSG_ERROR:
		if (p->copy_ends < p->copy_starts)
			p->copy_ends = p->copy_starts;	/* the COPY is over on the target's side */
		if (body.ptr != NULL && pg_parse_error_fields(body, sqlstate, &msg, severity) == 0 && head != NULL)
			snprintf(p->outcome_state, sizeof(p->outcome_state), "%s", injected ? PG_SQLSTATE_INSUFFICIENT_PRIVILEGE : sqlstate);
		if (head == NULL)
			return PG_REPLY_FORWARD;	/* not an answer: e.g. the target shutting down */
		if (!pg_is_sync_point(head->kind))
			pg_expect_error_skip(p);
		return injected ? PG_REPLY_REPLACE : PG_REPLY_FORWARD;
	case PG_MSG_READY:
		if (body.ptr != NULL && pg_parse_ready(body, &status) == 0)
			p->txn = status;
		while ((head = pg_expect_head(p)) != NULL) {
			uint8_t kind = head->kind;

			pg_expect_pop(p);
			if (pg_is_sync_point(kind))
				break;
		}
		pg_idle_timer(p, p->txn != PG_TXN_IDLE && p->e_count == 0);
		return PG_REPLY_FORWARD;
	default:
		return PG_REPLY_FORWARD;	/* data rows, notices, notifications, parameter status, copy data */
	}
}

/* ---- client to target ---- */

static size_t
pg_build_deny_parse(uint8_t *out, size_t cap)
{
	size_t sql = strlen(PG_DENY_SQL), n = 0, len;

	/* Parse "" PG_DENY_SQL, no parameter types. */
	len = 4 + 1 + sql + 1 + 2;
	if (1 + len + 15 + 11 > cap)
		return 0;
	out[n++] = PG_MSG_PARSE;
	pg_put32(out + n, (uint32_t)len);
	n += 4;
	out[n++] = '\0';
	memcpy(out + n, PG_DENY_SQL, sql + 1);
	n += sql + 1;
	out[n++] = 0;
	out[n++] = 0;
	/* Bind "" to "": no parameter formats, no parameters, no result formats. */
	out[n++] = PG_MSG_BIND;
	pg_put32(out + n, 4 + 1 + 1 + 2 + 2 + 2);
	n += 4;
	memset(out + n, 0, 8);
	n += 8;
	/* Execute "" without a row limit. */
	out[n++] = PG_MSG_EXECUTE;
	pg_put32(out + n, 4 + 1 + 4);
	n += 4;
	memset(out + n, 0, 5);
	n += 5;
	return n;
}

/* Replace the client's denied message with a statement that fails on the target. */
static bool
pg_deny(struct pg_session *p, uint8_t type, uint32_t total, const char *reason, uint32_t seq)
{
	uint8_t msg[512];
	size_t n;

	io_skip(p->client, total);
	snprintf(p->deny_reason, sizeof(p->deny_reason), "%s", reason);
	if (type == PG_MSG_QUERY) {
		n = pg_build_query(msg, sizeof(msg), PG_DENY_SQL);
		if (n == 0 || !pg_expect_push_seq(p, PG_MSG_QUERY, true, seq))
			return false;
	} else {
		n = pg_build_deny_parse(msg, sizeof(msg));
		if (n == 0 || !pg_expect_push_seq(p, PG_MSG_PARSE, true, seq) || !pg_expect_push(p, PG_MSG_BIND, true) ||
		    !pg_expect_push(p, PG_MSG_EXECUTE, true))
			return false;
	}
	return io_send(p->upstream, msg, n) == 0;
}

/* Refuse a FunctionCall: recorded as denied, answered with the target's own error in its place. */
static void
pg_function_call(struct pg_session *p, uint32_t total)
{
	static const char reason[] = "FunctionCall messages are not allowed through postern; call the function with SELECT";
	uint32_t seq = ++p->seq;

	p->statements++;
	p->denied++;
	audit_statement(p->s, seq, "function_call", "", 0, AUDIT_DENIED, reason);
	log_info("statement denied", "sid=%s protocol=postgres target=%s user=%s message=FunctionCall reason=\"%s\"",
	    p->s->idstr, p->s->target, p->s->user, reason);
	if (total > PG_SMALL_MAX) {
		/* Not worth waiting for: drop it as it streams, then answer. */
		pg_fatal(p, PG_SQLSTATE_INSUFFICIENT_PRIVILEGE, "postern: %s", reason);
		return;
	}
	if (!pg_deny(p, PG_MSG_QUERY, total, reason, seq))
		pg_fatal(p, PG_SQLSTATE_PROGRAM_LIMIT_EXCEEDED, "too many requests in flight");
}

/* A Query or Parse is all in the buffer: ask policy, then forward it or deny it. */
static void
pg_statement(struct pg_session *p, uint8_t type, uint32_t total)
{
	const uint8_t *buf = io_pullup(p->client, total);
	struct slice body = { buf + PG_HEADER_LEN, total - PG_HEADER_LEN }, sql, name;
	struct policy_query q = { .prepared = type == PG_MSG_PARSE, .sql_modes = p->sql_modes };
	char reason[POLICY_REASON_MAX], qr[POLICY_REASON_MAX + 16];
	enum policy_verdict v;
	uint16_t nparams;
	uint32_t seq;
	int r;

	r = type == PG_MSG_QUERY ? pg_parse_query(body, &sql) : pg_parse_parse(body, &name, &sql, &nparams);
	if (r != 0) {
		pg_fatal(p, PG_SQLSTATE_PROTOCOL_VIOLATION, "malformed %s message", type == PG_MSG_QUERY ? "Query" : "Parse");
		return;
	}
	seq = ++p->seq;
	q.text = (const char *)sql.ptr;
	q.full_len = sql.len;
	q.len = sql.len > p->s->cfg->max_statement ? p->s->cfg->max_statement : sql.len;
	q.truncated = q.len < sql.len;
	p->statements++;
	if (q.truncated && !p->s->cfg->allow_truncated_statements) {
		/* What policy cannot see whole, it cannot allow: fail closed. */
		snprintf(reason, sizeof(reason), "statement of %zu bytes is over max_statement (%zu); policy cannot check it",
		    sql.len, p->s->cfg->max_statement);
		v = POLICY_DENY;
	} else {
		v = policy_on_query(&p->pol, &q, reason, sizeof(reason));
	}
	audit_statement(p->s, seq, type == PG_MSG_QUERY ? "query" : "parse", q.text, sql.len,
	    v == POLICY_ALLOW ? AUDIT_ALLOWED : v == POLICY_DENY ? AUDIT_DENIED : AUDIT_TERMINATED, v == POLICY_ALLOW ? NULL : reason);
	if (v == POLICY_ALLOW) {
		if (!pg_expect_push_seq(p, type, false, seq)) {
			pg_fatal(p, PG_SQLSTATE_PROGRAM_LIMIT_EXCEEDED, "too many requests in flight");
			return;
		}
		p->c_left = total;
		p->c_drop = false;
		return;
	}
	p->denied++;
	log_info(v == POLICY_DENY ? "statement denied" : "session terminated by policy",
	    "sid=%s protocol=postgres target=%s user=%s message=%s reason=%s", p->s->idstr, p->s->target,
	    p->s->user, type == PG_MSG_QUERY ? "Query" : "Parse", log_quote(qr, sizeof(qr), reason));
	if (v == POLICY_TERMINATE) {
		pg_fatal(p, PG_SQLSTATE_INSUFFICIENT_PRIVILEGE, "postern: session terminated by policy: %s", reason);
		return;
	}
	if (!pg_deny(p, type, total, reason, seq))
		pg_fatal(p, PG_SQLSTATE_PROGRAM_LIMIT_EXCEEDED, "too many requests in flight");
}

void
pg_relay_client_read(struct pg_session *p)
{
	uint8_t hdr[PG_HEADER_LEN], type;
	uint32_t len, total;
	char err[128];
	int r;

	while (p->state == PG_STATE_RELAY) {
		if (io_backlogged(p->upstream, p->s->cfg->buffer_limit) || p->e_count >= PG_EXPECT_MAX - 4) {
			io_set_reading(p->client, false);	/* resumed by pg_relay_upstream_read */
			return;
		}
		if (p->c_left > 0) {
			size_t avail = io_readable(p->client), n;

			if (avail == 0)
				break;
			n = avail < p->c_left ? avail : p->c_left;
			if (p->c_drop)
				io_skip(p->client, n);
			else
				n = io_forward(p->client, p->upstream, n);
			p->c_left -= (uint32_t)n;
			session_count_up(p->s, n);
			continue;
		}
		if (io_peek(p->client, hdr, sizeof(hdr)) < sizeof(hdr))
			break;
		r = pg_msg_header(hdr, sizeof(hdr), PG_MSG_LENGTH_MAX, &type, &len, err, sizeof(err));
		if (r != 0) {
			pg_fatal(p, PG_SQLSTATE_PROTOCOL_VIOLATION, "%s", err);
			return;
		}
		total = len + 1;
		pg_idle_timer(p, false);
		switch (type) {
		case PG_MSG_QUERY:
		case PG_MSG_PARSE:
			if (total > p->s->cfg->max_message) {
				pg_fatal(p, PG_SQLSTATE_PROGRAM_LIMIT_EXCEEDED, "a %s message of %u bytes is over this relay's "
				    "max_message; send smaller statements", type == PG_MSG_QUERY ? "Query" : "Parse", total);
				return;
			}
			if (io_readable(p->client) < total)
				return;
			if (p->skipping && type == PG_MSG_PARSE) {
				/* The target would skip it; if the model were ever wrong about that, an
				 * unchecked Parse must not reach it: drop it (fail closed). */
				p->c_left = total;
				p->c_drop = true;
				continue;
			}
			pg_statement(p, type, total);
			continue;
		case PG_MSG_SYNC:
			p->skipping = false;
			if (p->copy_starts <= p->copy_ends && !pg_expect_push(p, type, false))
				goto full;
			break;
		case PG_MSG_EXECUTE:
			if (p->skipping)
				break;
			if (io_readable(p->client) < total && total <= PG_SMALL_MAX)
				return;	/* small: wait for it whole, to record the portal */
			if (!pg_execute(p, total))
				goto full;
			break;
		case PG_MSG_BIND:
		case PG_MSG_DESCRIBE:
		case PG_MSG_CLOSE:
			if (!p->skipping && !pg_expect_push(p, type, false))
				goto full;
			break;
		case PG_MSG_FUNCTION_CALL:
			/* A FunctionCall runs any function by OID with any arguments (query_to_xml runs
			 * SQL): policy cannot see into it, so it is refused like a denied statement. */
			if (io_readable(p->client) < total && total <= PG_SMALL_MAX)
				return;
			pg_function_call(p, total);
			continue;
		case PG_MSG_COPY_DONE:
		case PG_MSG_COPY_FAIL:
			p->copy_ends++;
			break;
		case PG_MSG_FLUSH:
		case PG_MSG_COPY_DATA:
			break;
		case PG_MSG_TERMINATE:
			pg_close(p, "client quit");
			return;
		default:
			pg_fatal(p, PG_SQLSTATE_PROTOCOL_VIOLATION, "invalid frontend message type %u", type);
			return;
		}
		p->c_left = total;
		p->c_drop = false;
	}
	return;
full:
	pg_fatal(p, PG_SQLSTATE_PROGRAM_LIMIT_EXCEEDED, "too many requests in flight");
}

/* ---- target to client ---- */

static void
pg_replace_error(struct pg_session *p)
{
	uint8_t msg[POLICY_REASON_MAX + 128];
	char text[POLICY_REASON_MAX + 64];
	size_t n;

	snprintf(text, sizeof(text), "postern: denied by policy: %s", p->deny_reason);
	n = pg_build_error(msg, sizeof(msg), "ERROR", PG_SQLSTATE_INSUFFICIENT_PRIVILEGE, text, NULL, NULL);
	if (n > 0)
		(void)io_send(p->client, msg, n);
}

void
pg_relay_upstream_read(struct pg_session *p)
{
	uint8_t hdr[PG_HEADER_LEN], type;
	uint32_t len, total;
	char err[128];

	while (p->state == PG_STATE_RELAY) {
		struct slice body = { NULL, 0 };
		enum pg_verdict_on_reply v;

		if (io_backlogged(p->client, p->s->cfg->buffer_limit)) {
			io_set_reading(p->upstream, false);	/* resumed when the client drains */
			return;
		}
		if (p->u_left > 0) {
			size_t avail = io_readable(p->upstream), n;

			if (avail == 0)
				break;
			n = avail < p->u_left ? avail : p->u_left;
			if (p->u_drop)
				io_skip(p->upstream, n);
			else
				n = io_forward(p->upstream, p->client, n);
			p->u_left -= (uint32_t)n;
			session_count_down(p->s, n);
			continue;
		}
		if (io_peek(p->upstream, hdr, sizeof(hdr)) < sizeof(hdr))
			break;
		if (pg_msg_header(hdr, sizeof(hdr), PG_MSG_LENGTH_MAX, &type, &len, err, sizeof(err)) != 0) {
			pg_fatal(p, PG_SQLSTATE_CONNECTION_FAILURE, "the target sent an invalid message: %s", err);
			return;
		}
		total = len + 1;
		if ((type == PG_MSG_ERROR || type == PG_MSG_COMMAND_COMPLETE || type == PG_MSG_READY ||
		    type == PG_MSG_PARAMETER_STATUS) && total <= PG_SMALL_MAX) {
			const uint8_t *buf = io_pullup(p->upstream, total);

			if (buf == NULL)
				break;
			body.ptr = buf + PG_HEADER_LEN;
			body.len = total - PG_HEADER_LEN;
		}
		v = pg_model_reply(p, type, body);
		if (v == PG_REPLY_REPLACE) {
			io_skip(p->upstream, total);
			pg_replace_error(p);
			continue;
		}
		p->u_left = total;
		p->u_drop = v == PG_REPLY_DROP;
	}
	if (p->state == PG_STATE_RELAY) {
		io_set_reading(p->upstream, true);
		if (!io_backlogged(p->upstream, p->s->cfg->buffer_limit) && p->e_count < PG_EXPECT_MAX - 4)
			io_set_reading(p->client, true);
	}
}

static void
pg_upstream_read_cb(struct io *io, void *arg)
{
	pg_relay_upstream_read(arg);
}

static void
pg_upstream_drain_cb(struct io *io, void *arg)
{
	struct pg_session *p = arg;

	if (p->state == PG_STATE_RELAY) {
		io_set_reading(p->client, true);
		pg_relay_client_read(p);
	}
}

static void
pg_upstream_event_cb(struct io *io, enum io_event ev, void *arg)
{
	struct pg_session *p = arg;

	if (ev == IO_EVENT_EOF)
		pg_fatal(p, PG_SQLSTATE_ADMIN_SHUTDOWN, "the target closed the connection");
	else if (ev == IO_EVENT_ERROR)
		pg_fatal(p, PG_SQLSTATE_CONNECTION_FAILURE, "lost the connection to the target: %s", io_error(io));
}

void
pg_relay_start(struct pg_session *p)
{
	p->state = PG_STATE_RELAY;
	session_set_state(p->s, SESSION_STATE_ACTIVE);
	if (p->timer != NULL)
		event_del(p->timer);
	io_set_reading(p->client, true);
	pg_relay_client_read(p);
	if (p->state == PG_STATE_RELAY)
		pg_relay_upstream_read(p);
}
