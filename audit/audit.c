/*
 * The audit tap: turns what fronts report into recording events. Everything here runs on the
 * session's worker and stays cheap: events are small JSON objects written straight into the
 * recording's in-memory chunk (no allocation per event), statement text is redacted on the
 * way in, and a per-session timer hands the chunk to the writer at the flush interval.
 */
#include "audit/audit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/format.h"
#include "audit/redact.h"
#include "audit/writer.h"
#include "relay/config.h"
#include "relay/log.h"
#include "relay/session.h"

#define AUDIT_TEXT_MAX		(1u << 20)	/* bytes of statement text recorded; beyond: truncated */
#define AUDIT_PENDING_MAX	32		/* statements awaiting their outcome, for durations */
#define AUDIT_JSON_SLACK	512		/* room for a small event's keys and numbers */
#define AUDIT_REASON_MAX	1024

/* The writer refuses to record: the reason sessions are ended with (static, for the registry). */
static const char audit_kill_behind[] = "recording fell behind: the audit writer could not keep up, and "
    "audit_on_failure = \"refuse\" ends sessions that would go unrecorded";

struct audit_pending {
	uint64_t seq, ts;
	const char *kind;		/* one of audit_kinds */
};

/* What a statement was; an outcome with no statement before it answers an Execute. */
static const char *const audit_kinds[] = { "query", "parse", "execute", "statement" };

/* A session's tap (session.audit), owned by the session's worker. */
struct audit_tap {
	struct session *s;
	struct audit_rec *rec;
	struct event *timer;		/* flush interval */
	struct timeval interval;
	bool armed;
	bool refuse;			/* audit_on_failure = "refuse" when the session began */
	bool kill_sent;
	enum audit_dialect dialect;
	uint64_t up, down;		/* totals in the last bytes event */
	uint64_t dropped_seen;		/* dropped bytes already reported */
	uint64_t statements, denied;
	struct audit_pending pending[AUDIT_PENDING_MAX];
	unsigned p_head, p_count;
};

/* Main-thread state, for status and the writer's failure hook. */
static _Atomic bool audit_refuse_now = true;
static bool audit_started;
static bool audit_on;
static char audit_dir_now[1024];

/* ---- a tiny JSON writer into reserved room ---- */

struct audit_json {
	uint8_t *p;
	size_t len, cap;
	bool comma;
};

static void
aj_raw(struct audit_json *j, const void *s, size_t n)
{
	if (n > j->cap - j->len)
		n = j->cap - j->len;
	memcpy(j->p + j->len, s, n);
	j->len += n;
}

static void
aj_lit(struct audit_json *j, const char *s)
{
	aj_raw(j, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at S (N bytes left), 0 if it is not one. */
static size_t
aj_utf8(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (c == 0xe0 && s[1] < 0xa0) ||
		    (c == 0xed && s[1] >= 0xa0))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80 ||
		    (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
}

/*
 * The body of a JSON string for S[0..N) (6 bytes out per byte in, at most). A byte that is
 * not UTF-8 is written as \u00XX, its Latin-1 reading, so non-UTF-8 client text stays legible.
 */
static void
aj_escape(struct audit_json *j, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *u = (const uint8_t *)s;
	size_t i = 0;

	while (i < n) {
		size_t run = i, k;

		while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\')
			run++;
		aj_raw(j, s + i, run - i);
		i = run;
		if (i >= n)
			break;
		if (u[i] >= 0x80 && (k = aj_utf8(u + i, n - i)) > 0) {
			aj_raw(j, s + i, k);
			i += k;
			continue;
		}
		if (u[i] == '"' || u[i] == '\\') {
			char e[2] = { '\\', (char)u[i] };

			aj_raw(j, e, 2);
		} else if (u[i] == '\n') {
			aj_raw(j, "\\n", 2);
		} else if (u[i] == '\t') {
			aj_raw(j, "\\t", 2);
		} else if (u[i] == '\r') {
			aj_raw(j, "\\r", 2);
		} else {
			char e[6] = { '\\', 'u', '0', '0', hex[u[i] >> 4], hex[u[i] & 15] };

			aj_raw(j, e, 6);
		}
		i++;
	}
}

static inline void
aj_byte(struct audit_json *j, char c)
{
	if (j->len < j->cap)
		j->p[j->len++] = (uint8_t)c;
}

/* ,"KEY": in one go (two events per statement write a handful each). */
static void
aj_key(struct audit_json *j, const char *key)
{
	size_t kl = strlen(key);
	uint8_t *o;

	if (j->cap - j->len < kl + 4) {
		if (j->comma)
			aj_byte(j, ',');
		j->comma = true;
		aj_byte(j, '"');
		aj_raw(j, key, kl);
		aj_byte(j, '"');
		aj_byte(j, ':');
		return;
	}
	o = j->p + j->len;
	if (j->comma)
		*o++ = ',';
	j->comma = true;
	*o++ = '"';
	memcpy(o, key, kl);
	o += kl;
	*o++ = '"';
	*o++ = ':';
	j->len = (size_t)(o - j->p);
}

static void
aj_str(struct audit_json *j, const char *key, const char *s)
{
	aj_key(j, key);
	aj_byte(j, '"');
	if (s != NULL)
		aj_escape(j, s, strlen(s));
	aj_byte(j, '"');
}

static void
aj_u64(struct audit_json *j, const char *key, uint64_t v)
{
	char buf[24];
	size_t n = sizeof(buf);

	aj_key(j, key);
	do {			/* every statement's event has several: no printf on the hot path */
		buf[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	aj_raw(j, buf + n, sizeof(buf) - n);
}

static void
aj_bool(struct audit_json *j, const char *key, bool v)
{
	aj_key(j, key);
	aj_lit(j, v ? "true" : "false");
}

/* Worst-case bytes of a JSON string for N input bytes, with its quotes. */
static size_t
aj_room(size_t n)
{
	return 6 * n + 2;
}

static size_t
aj_room_str(const char *s)
{
	return aj_room(s ? strlen(s) : 0) + 32;
}

/* ---- events ---- */

static bool
audit_begin(struct audit_tap *t, struct audit_json *j, size_t room)
{
	if ((j->p = audit_rec_reserve(t->rec, room)) == NULL)
		return false;
	j->len = 0;
	j->cap = room;
	j->comma = false;
	aj_byte(j, '{');
	return true;
}

static void audit_overflow(struct audit_tap *t);

/* Something to flush, or bytes to count: the flush timer runs (again). */
static void
audit_arm(struct audit_tap *t)
{
	t->s->audit_quiet = false;
	if (!t->armed && t->timer != NULL && event_add(t->timer, &t->interval) == 0)
		t->armed = true;
}

static void
audit_end(struct audit_tap *t, struct audit_json *j, uint8_t type, uint64_t ts)
{
	aj_byte(j, '}');
	audit_rec_commit(t->rec, type, ts, j->len);
	if (audit_rec_dropped(t->rec) != t->dropped_seen)
		audit_overflow(t);
	audit_arm(t);
}

/* The writer's queue was full and events were dropped: end the session, or say so in the recording. */
static void
audit_overflow(struct audit_tap *t)
{
	uint64_t lost = audit_rec_dropped(t->rec) - t->dropped_seen;
	struct audit_json j;

	t->dropped_seen = audit_rec_dropped(t->rec);
	log_error("recording dropped events", "sid=%s bytes=%llu refuse=%s", t->s->idstr, (unsigned long long)lost,
	    t->refuse ? "yes" : "no");
	if (t->refuse) {
		if (!t->kill_sent && session_registry_kill(t->s->idstr, audit_kill_behind) != 0)
			log_warn("cannot end a session that goes unrecorded", "sid=%s", t->s->idstr);
		t->kill_sent = true;
		return;
	}
	if (audit_begin(t, &j, 160)) {
		aj_str(&j, "error", "events were dropped: the audit writer fell behind");
		aj_u64(&j, "bytes", lost);
		aj_lit(&j, "}");
		audit_rec_commit(t->rec, AUDIT_EV_ERROR, audit_now_us(), j.len);
		t->dropped_seen = audit_rec_dropped(t->rec);
	}
}

static void
audit_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct audit_tap *t = arg;
	uint64_t up = atomic_load_explicit(&t->s->bytes_up, memory_order_relaxed);
	uint64_t down = atomic_load_explicit(&t->s->bytes_down, memory_order_relaxed);
	bool moved = up != t->up || down != t->down;
	struct audit_json j;

	t->armed = false;
	if (moved && audit_begin(t, &j, 64)) {
		/* Bytes moved since the last look: a running total each way. */
		aj_u64(&j, "up", up);
		aj_u64(&j, "down", down);
		t->up = up;
		t->down = down;
		audit_end(t, &j, AUDIT_EV_BYTES, audit_now_us());
	}
	if (audit_rec_flush(t->rec) != 0 || audit_rec_dropped(t->rec) != t->dropped_seen)
		audit_overflow(t);
	if (t->armed)
		return;		/* an event above armed it */
	/* Nothing moved and nothing waits: the timer rests, so an idle session costs its worker no
	 * wakeups. The next event re-arms it (audit_end), and so do bytes (session_count_up/down). */
	if (!moved && !audit_rec_pending(t->rec))
		t->s->audit_quiet = true;
	else
		audit_arm(t);
}

void
audit_wake(struct session *s)
{
	s->audit_quiet = false;
	if (s->audit != NULL)
		audit_arm(s->audit);
}

/* KIND as one of audit_kinds (the caller's string may not outlive the call). */
static const char *
audit_kind(const char *kind)
{
	for (size_t i = 0; i < sizeof(audit_kinds) / sizeof(audit_kinds[0]); i++)
		if (kind != NULL && strcmp(kind, audit_kinds[i]) == 0)
			return audit_kinds[i];
	return audit_kinds[3];
}

static void
audit_pending_push(struct audit_tap *t, uint64_t seq, uint64_t ts, const char *kind)
{
	if (t->p_count == AUDIT_PENDING_MAX) {
		t->p_head = (t->p_head + 1) % AUDIT_PENDING_MAX;
		t->p_count--;
	}
	t->pending[(t->p_head + t->p_count) % AUDIT_PENDING_MAX] = (struct audit_pending){ seq, ts, audit_kind(kind) };
	t->p_count++;
}

/* Statement SEQ's start time and kind, or 0 and "execute" when no statement event had it.
 * Outcomes come in order: older entries go. */
static uint64_t
audit_pending_take(struct audit_tap *t, uint64_t seq, const char **kind)
{
	*kind = audit_kinds[2];
	while (t->p_count > 0) {
		struct audit_pending e = t->pending[t->p_head];

		if (e.seq > seq)
			return 0;
		t->p_head = (t->p_head + 1) % AUDIT_PENDING_MAX;
		t->p_count--;
		if (e.seq == seq) {
			*kind = e.kind;
			return e.ts;
		}
	}
	return 0;
}

static const char *const audit_decisions[] = { "allow", "deny", "terminate" };

void
audit_statement(const struct session *s, uint64_t seq, const char *kind, const char *text, size_t len,
    enum audit_decision decision, const char *reason)
{
	struct audit_span spans[AUDIT_REDACT_SPANS_MAX];
	struct audit_tap *t = s->audit;
	struct audit_json j;
	size_t n = len > AUDIT_TEXT_MAX ? AUDIT_TEXT_MAX : len, nspans, pos = 0;
	uint64_t ts;

	if (log_enabled(LOG_LEVEL_DEBUG)) {
		char q[300];

		log_debug("statement", "sid=%s seq=%llu kind=%s bytes=%zu decision=%s reason=%s", s->idstr,
		    (unsigned long long)seq, kind, len, audit_decisions[decision], log_quote(q, sizeof(q), reason ? reason : ""));
	}
	if (t == NULL)
		return;
	ts = audit_now_us();
	audit_pending_push(t, seq, ts, kind);
	t->statements++;
	if (decision != AUDIT_ALLOWED)
		t->denied++;
	if (text == NULL)
		n = 0;
	nspans = audit_redact_spans(text, n, t->dialect, spans, AUDIT_REDACT_SPANS_MAX);
	if (!audit_begin(t, &j, AUDIT_JSON_SLACK + aj_room(n) + aj_room_str(kind) + aj_room_str(reason)))
		return;
	aj_u64(&j, "seq", seq);
	aj_str(&j, "kind", kind);
	aj_str(&j, "decision", audit_decisions[decision]);
	if (reason != NULL && decision != AUDIT_ALLOWED)
		aj_str(&j, "reason", reason);
	aj_key(&j, "text");
	aj_byte(&j, '"');
	for (size_t i = 0; i <= nspans; i++) {
		size_t upto = i < nspans ? spans[i].off : n;

		aj_escape(&j, text + pos, upto - pos);
		if (i < nspans) {
			aj_lit(&j, spans[i].with);
			pos = spans[i].off + spans[i].len;
		}
	}
	aj_byte(&j, '"');
	aj_u64(&j, "len", len);
	if (n < len)
		aj_bool(&j, "truncated", true);
	if (nspans > 0)
		aj_bool(&j, "redacted", true);
	audit_end(t, &j, AUDIT_EV_STATEMENT, ts);
}

/* Rows a CommandComplete tag reports ("SELECT 3", "INSERT 0 5", "UPDATE 2"), or -1. */
static long long
audit_tag_rows(const char *tag)
{
	static const char *const counted[] = { "SELECT ", "INSERT ", "UPDATE ", "DELETE ", "COPY ", "FETCH ",
		"MOVE ", "MERGE ", NULL };
	const char *last;

	for (int i = 0; counted[i] != NULL; i++) {
		if (strncmp(tag, counted[i], strlen(counted[i])) != 0)
			continue;
		last = strrchr(tag, ' ') + 1;
		if (*last == '\0' || strspn(last, "0123456789") != strlen(last))
			return -1;
		return strtoll(last, NULL, 10);
	}
	return -1;
}

void
audit_outcome(const struct session *s, uint64_t seq, const char *tag, const char *sqlstate)
{
	struct audit_tap *t = s->audit;
	struct audit_json j;
	uint64_t ts, start;
	const char *kind;
	long long rows;

	if (log_enabled(LOG_LEVEL_DEBUG)) {
		char q[128];

		log_debug("statement done", "sid=%s seq=%llu outcome=%s", s->idstr, (unsigned long long)seq,
		    sqlstate != NULL ? sqlstate : log_quote(q, sizeof(q), tag ? tag : ""));
	}
	if (t == NULL)
		return;
	ts = audit_now_us();
	start = audit_pending_take(t, seq, &kind);
	if (!audit_begin(t, &j, AUDIT_JSON_SLACK + aj_room_str(tag) + aj_room_str(sqlstate)))
		return;
	aj_u64(&j, "seq", seq);
	aj_str(&j, "kind", kind);
	if (sqlstate != NULL) {
		aj_str(&j, "sqlstate", sqlstate);
	} else {
		aj_str(&j, "tag", tag ? tag : "");
		if (tag != NULL && (rows = audit_tag_rows(tag)) >= 0)
			aj_u64(&j, "rows", (uint64_t)rows);
	}
	if (start != 0 && ts >= start)
		aj_u64(&j, "duration_us", ts - start);
	audit_end(t, &j, AUDIT_EV_OUTCOME, ts);
}

void
audit_data(const struct session *s, uint8_t type, const void *buf, size_t len)
{
	struct audit_tap *t = s->audit;
	const uint8_t *p = buf;
	uint64_t ts;

	if (t == NULL || len == 0)
		return;
	ts = audit_now_us();
	while (len > 0) {
		size_t n = len > AUDIT_EVENT_MAX ? AUDIT_EVENT_MAX : len;
		uint8_t *dst = audit_rec_reserve(t->rec, n);

		if (dst == NULL)
			return;
		memcpy(dst, p, n);
		audit_rec_commit(t->rec, type, ts, n);
		p += n;
		len -= n;
	}
	if (audit_rec_dropped(t->rec) != t->dropped_seen)
		audit_overflow(t);
	audit_arm(t);
}

void
audit_window(const struct session *s, unsigned cols, unsigned rows)
{
	struct audit_tap *t = s->audit;
	struct audit_json j;

	if (t == NULL || !audit_begin(t, &j, 64))
		return;
	aj_u64(&j, "cols", cols);
	aj_u64(&j, "rows", rows);
	audit_end(t, &j, AUDIT_EV_WINDOW, audit_now_us());
}

void
audit_error(const struct session *s, const char *what)
{
	struct audit_tap *t = s->audit;
	struct audit_json j;

	if (t == NULL || !audit_begin(t, &j, AUDIT_JSON_SLACK + aj_room_str(what)))
		return;
	aj_str(&j, "error", what);
	audit_end(t, &j, AUDIT_EV_ERROR, audit_now_us());
}

/* ---- session start and end ---- */

static void
audit_start_event(struct audit_tap *t, const struct audit_session_facts *f)
{
	const struct session *s = t->s;
	size_t room = AUDIT_JSON_SLACK * 2;
	struct audit_json j;
	char until[32] = "";

	room += aj_room_str(s->user) + aj_room_str(s->target) + aj_room_str(s->client_addr) + aj_room_str(s->cfg->node) +
	    aj_room_str(f->login) + aj_room_str(f->database) + aj_room_str(f->role) + aj_room_str(f->application_name);
	for (size_t i = 0; i < f->nroles; i++)
		room += aj_room_str(f->roles[i]) + 1;
	if (!audit_begin(t, &j, room))
		return;
	aj_str(&j, "session", s->idstr);
	aj_str(&j, "user", s->user);
	aj_str(&j, "target", s->target);
	aj_str(&j, "protocol", config_protocol_name(s->protocol));
	aj_str(&j, "login", f->login);
	if (f->database != NULL)
		aj_str(&j, "database", f->database);
	aj_str(&j, "client", s->client_addr);
	aj_str(&j, "node", s->cfg->node);
	aj_key(&j, "roles");
	aj_lit(&j, "[");
	for (size_t i = 0; i < f->nroles; i++) {
		aj_lit(&j, i ? ",\"" : "\"");
		aj_escape(&j, f->roles[i], strlen(f->roles[i]));
		aj_lit(&j, "\"");
	}
	aj_lit(&j, "]");
	if (f->application_name != NULL && f->application_name[0] != '\0')
		aj_str(&j, "application_name", f->application_name);
	aj_bool(&j, "tls", f->tls);
	aj_str(&j, "relay_version", POSTERN_VERSION);
	audit_end(t, &j, AUDIT_EV_START, (uint64_t)(s->started * 1e6));

	/* What let the session in: the certificate, the role, policy's on_connect. */
	if (!audit_begin(t, &j, AUDIT_JSON_SLACK + aj_room_str(f->role) + aj_room_str(f->login)))
		return;
	aj_str(&j, "decision", "allow");
	aj_str(&j, "identity", "x509");
	aj_u64(&j, "serial", f->serial);
	if (f->not_after > 0) {
		struct tm tm;

		gmtime_r(&f->not_after, &tm);
		strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm);
		aj_str(&j, "not_after", until);
	}
	aj_str(&j, "role", f->role);
	aj_str(&j, "on_connect", "allow");
	aj_str(&j, "login", f->login);
	audit_end(t, &j, AUDIT_EV_ACCESS, audit_now_us());
}

int
audit_session_open(struct session *s, const struct audit_session_facts *f, char *reason, size_t rlen)
{
	const struct config *cfg = s->cfg;
	struct audit_rec_info info;
	struct audit_tap *t = NULL;
	char why[512];
	double iv = cfg->audit_flush_interval;

	if (cfg->nauditor_keys == 0 || s->audit != NULL)
		return 0;
	if (!audit_writer_healthy(why, sizeof(why)))
		goto unavailable;
	info = (struct audit_rec_info){
		.session = s->idstr, .user = s->user, .target = s->target, .login = f->login,
		.protocol = config_protocol_name(s->protocol), .database = f->database, .client = s->client_addr,
		.node = cfg->node, .role = f->role, .roles = f->roles, .nroles = f->nroles, .serial = f->serial,
		.start_us = (uint64_t)(s->started * 1e6),
	};
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(why, sizeof(why), "out of memory");
		goto unavailable;
	}
	t->s = s;
	t->refuse = cfg->audit_refuse;
	t->dialect = s->protocol == CONFIG_PROTOCOL_MYSQL ? AUDIT_DIALECT_MYSQL : AUDIT_DIALECT_POSTGRES;
	t->interval.tv_sec = (time_t)iv;
	t->interval.tv_usec = (suseconds_t)((iv - (double)t->interval.tv_sec) * 1e6);
	if ((t->timer = event_new(s->base, -1, 0, audit_timer_cb, t)) == NULL) {
		free(t);
		snprintf(why, sizeof(why), "out of memory");
		goto unavailable;
	}
	if ((t->rec = audit_rec_open(cfg->audit_dir, &info, cfg->auditor_keys, cfg->nauditor_keys, cfg->audit_chunk_size,
	    why, sizeof(why))) == NULL) {
		event_free(t->timer);
		free(t);
		goto unavailable;
	}
	s->audit = t;
	audit_start_event(t, f);
	log_debug("recording", "sid=%s file=%s", s->idstr, audit_rec_path(t->rec));
	return 0;
unavailable:
	if (cfg->audit_refuse) {
		snprintf(reason, rlen, "recording is unavailable: %s; sessions are refused until it is fixed", why);
		return -1;
	}
	{
		char q[600];

		log_warn("session not recorded", "sid=%s user=%s target=%s reason=%s audit_on_failure=allow", s->idstr,
		    s->user, s->target, log_quote(q, sizeof(q), why));
	}
	return 0;
}

/* Why a session ended, as a word an auditor can filter on. */
static const char *
audit_end_cause(const char *reason)
{
	static const struct {
		const char *needle, *cause;
	} causes[] = {
		{ "client quit", "client_quit" },
		{ "client closed the connection", "client_disconnected" },
		{ "client left", "client_disconnected" },
		{ "ended by an administrator", "killed_by_admin" },
		{ "user is locked", "user_locked" },
		{ "access revoked", "access_revoked" },
		{ "terminated by policy", "policy_terminated" },
		{ "relay shutting down", "relay_shutdown" },
		{ "recording", "recording_failed" },
		{ "target closed the connection", "target_gone" },
		{ "lost the connection to the target", "target_gone" },
		{ "cannot connect to target", "target_unreachable" },
		{ "timeout", "timeout" },
		{ "took longer than", "timeout" },
	};

	for (size_t i = 0; i < sizeof(causes) / sizeof(causes[0]); i++)
		if (reason != NULL && strstr(reason, causes[i].needle) != NULL)
			return causes[i].cause;
	return "error";
}

void
audit_session_close(struct session *s, const char *reason)
{
	struct audit_tap *t = s->audit;
	struct audit_json j;
	uint64_t now;

	if (t == NULL)
		return;
	s->audit = NULL;
	now = audit_now_us();
	if (audit_begin(t, &j, AUDIT_JSON_SLACK + aj_room_str(reason))) {
		aj_str(&j, "reason", reason ? reason : "");
		aj_str(&j, "cause", audit_end_cause(reason));
		aj_u64(&j, "bytes_up", atomic_load(&s->bytes_up));
		aj_u64(&j, "bytes_down", atomic_load(&s->bytes_down));
		aj_u64(&j, "statements", t->statements);
		aj_u64(&j, "denied", t->denied);
		aj_u64(&j, "duration_us", now - (uint64_t)(s->started * 1e6));
		aj_lit(&j, "}");
		audit_rec_commit(t->rec, AUDIT_EV_END, now, j.len);
	}
	if (t->timer != NULL)
		event_free(t->timer);
	audit_rec_close(t->rec);
	free(t);
}

/* ---- posternd ---- */

static void
audit_write_failed(const char *session, const char *reason)
{
	/* The session may be gone already (-ENOENT): nothing left to end then. */
	if (atomic_load(&audit_refuse_now) && session_registry_kill(session, reason) == 0)
		log_warn("session ended: its recording failed", "sid=%s", session);
}

static void
audit_settings(const struct config *cfg, struct audit_writer_settings *set)
{
	*set = (struct audit_writer_settings){
		.dir = cfg->nauditor_keys > 0 ? cfg->audit_dir : NULL,
		.min_free = cfg->audit_min_free,
		.retention_days = cfg->audit_retention_days,
		.retention_bytes = cfg->audit_retention_bytes,
		.queue_limit = cfg->audit_queue_limit,
	};
}

/* Make the audit directory and put the node's public key in it, so recordings can be checked. */
static int
audit_prepare_dir(const struct config *cfg, const struct audit_node_key *key, char *err, size_t errlen)
{
	char name[256], path[4096];
	struct stat st;

	if (mkdir(cfg->audit_dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create the audit directory %s: %s", cfg->audit_dir, strerror(errno));
		return -1;
	}
	if (stat(cfg->audit_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "audit_dir %s is not a directory", cfg->audit_dir);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", cfg->audit_dir, audit_node_pub_name(cfg->node, name, sizeof(name)));
	return audit_node_key_write_public(path, cfg->node, key, err, errlen);
}

static struct audit_node_key audit_node;	/* public half only once the writer has the key */

int
audit_start(const struct config *cfg, char *err, size_t errlen)
{
	struct audit_writer_settings set;
	struct audit_node_key key;
	int r = -1;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "cannot initialise libsodium");
		return -1;
	}
	if (audit_node_key_load(cfg->state_dir, cfg->node, &key, err, errlen) != 0)
		return -1;
	memcpy(audit_node.pk, key.pk, sizeof(key.pk));
	if (cfg->nauditor_keys > 0 && audit_prepare_dir(cfg, &key, err, errlen) != 0)
		goto out;
	audit_settings(cfg, &set);
	if (audit_writer_start(&key, &set, err, errlen) != 0)
		goto out;
	audit_writer_on_failure(audit_write_failed);
	audit_started = true;
	audit_configure(cfg);
	r = 0;
out:
	sodium_memzero(&key, sizeof(key));
	return r;
}

void
audit_configure(const struct config *cfg)
{
	struct audit_writer_settings set;
	char err[512];

	if (!audit_started)
		return;
	atomic_store(&audit_refuse_now, cfg->audit_refuse);
	audit_settings(cfg, &set);
	audit_writer_configure(&set);
	if (cfg->nauditor_keys == 0) {
		if (audit_on || audit_dir_now[0] == '\0')
			log_warn("recording is off", "reason=\"no auditor_keys in the configuration: sessions are not recorded\"");
		audit_on = false;
		snprintf(audit_dir_now, sizeof(audit_dir_now), "-");
		return;
	}
	if (audit_prepare_dir(cfg, &audit_node, err, sizeof(err)) != 0) {
		char q[600];

		log_error("recording unavailable", "reason=%s", log_quote(q, sizeof(q), err));
	}
	audit_writer_check_now();
	if (!audit_on || strcmp(audit_dir_now, cfg->audit_dir) != 0)
		log_info("recording sessions", "dir=%s auditors=%zu flush_interval=%.2f chunk_size=%zu on_failure=%s",
		    cfg->audit_dir, cfg->nauditor_keys, cfg->audit_flush_interval, cfg->audit_chunk_size,
		    cfg->audit_refuse ? "refuse" : "allow");
	audit_on = true;
	snprintf(audit_dir_now, sizeof(audit_dir_now), "%s", cfg->audit_dir);
}

void
audit_stop(void)
{
	if (!audit_started)
		return;
	audit_writer_stop();
	audit_started = false;
}

const char *
audit_status(char *buf, size_t size)
{
	char why[512];

	if (!audit_on)
		snprintf(buf, size, "off: no auditor_keys in the configuration");
	else if (!audit_writer_healthy(why, sizeof(why)))
		snprintf(buf, size, "unavailable: %s", why);
	else
		snprintf(buf, size, "on: %s", audit_dir_now);
	return buf;
}
