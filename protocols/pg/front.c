/*
 * PostgreSQL front: the startup phase. Reads the startup packet (answering SSLRequest with a
 * TLS handshake and GSSENCRequest with 'N'), takes CancelRequests, refuses plaintext, checks
 * the client certificate and the role grant through identity, asks policy's on_connect, then
 * hands over to upstream.c. Every refusal is a FATAL ErrorResponse with a SQLSTATE and a
 * sentence saying what to do, plus a log line.
 */
#include "protocols/pg/pg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "audit/audit.h"
#include "protocols/pg/session.h"
#include "relay/log.h"

#define PG_ERROR_MAX		1024	/* bytes of an error message posternd writes */
#define PG_CLOSE_LINGER_SEC	5	/* how long a last error may take to leave */

static void pg_client_read(struct io *io, void *arg);
static void pg_client_drain(struct io *io, void *arg);
static void pg_client_event(struct io *io, enum io_event ev, void *arg);
static void pg_unpark(struct pg_session *p);

static const struct io_callbacks pg_client_cb = { pg_client_read, pg_client_drain, pg_client_event };

static void
pg_free_later(evutil_socket_t fd, short what, void *arg)
{
	struct pg_session *p = arg;

	free(p->expect);
	free(p->options);
	free(p);
}

/*
 * End the session: log, release the transports now, the memory one loop later, so callers up
 * the stack may still look at p->state (CLOSED) on their way out.
 */
void
pg_close(struct pg_session *p, const char *reason)
{
	struct session *s = p->s;
	char q[256];

	if (p->state == PG_STATE_CLOSED)
		return;
	p->state = PG_STATE_CLOSED;
	session_set_state(s, SESSION_STATE_CLOSING);
	log_info("session end", "sid=%s protocol=postgres target=%s user=%s client=%s statements=%llu denied=%llu "
	    "bytes_up=%llu bytes_down=%llu duration=%.3f reason=%s", s->idstr, s->target[0] ? s->target : "-",
	    s->user[0] ? s->user : "-", s->client_addr, (unsigned long long)p->statements,
	    (unsigned long long)p->denied, (unsigned long long)atomic_load(&s->bytes_up),
	    (unsigned long long)atomic_load(&s->bytes_down), util_now_wall() - s->started, log_quote(q, sizeof(q), reason));
	audit_session_close(s, reason);
	if (p->pol.user != NULL)
		policy_session_end(&p->pol);
	pg_cancel_unregister(p);
	if (p->timer != NULL)
		event_free(p->timer);
	p->timer = NULL;
	if (p->client != NULL)
		io_close(p->client);
	p->client = NULL;
	pg_upstream_free(p);
	if (event_base_once(s->base, -1, EV_TIMEOUT, pg_free_later, p, NULL) != 0)
		pg_free_later(-1, 0, p);
	session_free(s);
}

/* Send a FATAL and close once it is out (or at once if the client is not reading). */
void
pg_fatal(struct pg_session *p, const char *sqlstate, const char *fmt, ...)
{
	uint8_t msg[PG_ERROR_MAX + 64];
	char text[PG_ERROR_MAX], q[PG_ERROR_MAX + 16];
	size_t n;
	va_list ap;

	if (p->state == PG_STATE_CLOSED || p->state == PG_STATE_CLOSING)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_warn("session refused", "sid=%s protocol=postgres target=%s user=%s client=%s sqlstate=%s error=%s",
	    p->s->idstr, p->s->target[0] ? p->s->target : "-", p->s->user[0] ? p->s->user : "-", p->s->client_addr,
	    sqlstate, log_quote(q, sizeof(q), text));
	if (p->state == PG_STATE_TLS || p->client == NULL) {
		pg_close(p, text);
		return;
	}
	n = pg_build_error(msg, sizeof(msg), "FATAL", sqlstate, text, NULL, NULL);
	if (n > 0)
		(void)io_send(p->client, msg, n);
	p->state = PG_STATE_CLOSING;
	io_set_reading(p->client, false);
	if (p->upstream != NULL)
		io_set_reading(p->upstream, false);
	snprintf(p->deny_reason, sizeof(p->deny_reason), "%.200s", text);
	if (io_unsent(p->client) == 0) {
		pg_close(p, text);
		return;
	}
	if (p->timer != NULL) {
		/* A client that never reads its error does not keep the session. */
		struct timeval tv = { PG_CLOSE_LINGER_SEC, 0 };

		event_del(p->timer);
		event_add(p->timer, &tv);
	}
}

static void
pg_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pg_session *p = arg;

	if (p->state == PG_STATE_RELAY)
		pg_fatal(p, "25P03", "idle-in-transaction timeout: the transaction was idle longer than %.0f s; "
		    "reconnect and commit sooner", p->s->cfg->idle_in_transaction_timeout);
	else if (p->state == PG_STATE_CLOSING)
		pg_close(p, p->deny_reason);
	else
		pg_fatal(p, PG_SQLSTATE_CANNOT_CONNECT_NOW, "connection setup took longer than %.0f s",
		    p->state == PG_STATE_CONNECTING ? p->s->cfg->connect_timeout : p->s->cfg->handshake_timeout);
}

static void
pg_kill(struct session *s, const char *reason)
{
	struct pg_session *p = s->proto;

	if (p->state == PG_STATE_CLOSING) {
		pg_close(p, reason);
		return;
	}
	pg_fatal(p, PG_SQLSTATE_ADMIN_SHUTDOWN, "postern: %s", reason);
	if (p->state == PG_STATE_CLOSING)
		snprintf(p->deny_reason, sizeof(p->deny_reason), "%s", reason);
}

static const struct session_ops pg_session_ops = { .kill = pg_kill };

/* Split "target" or "target/database" and check the target is a PostgreSQL one. */
static bool
pg_pick_target(struct pg_session *p, struct slice dbname)
{
	char name[128];
	const char *slash;
	const struct config_target *t;

	if (dbname.ptr == NULL || dbname.len == 0 || dbname.len >= sizeof(name)) {
		pg_fatal(p, PG_SQLSTATE_INVALID_CATALOG_NAME, "name the target as the database: dbname=TARGET or "
		    "dbname=TARGET/DATABASE (postern ls lists yours)");
		return false;
	}
	memcpy(name, dbname.ptr, dbname.len);
	name[dbname.len] = '\0';
	if ((slash = strchr(name, '/')) != NULL) {
		snprintf(p->database, sizeof(p->database), "%s", slash + 1);
		name[slash - name] = '\0';
	}
	t = config_target_find(p->s->cfg, name);
	if (t == NULL || t->protocol != CONFIG_PROTOCOL_POSTGRES) {
		pg_fatal(p, PG_SQLSTATE_INVALID_CATALOG_NAME, "no PostgreSQL target is named \"%.64s\"; "
		    "postern ls lists yours", name);
		return false;
	}
	p->target = t;
	snprintf(p->s->target, sizeof(p->s->target), "%s", t->name);
	if (p->database[0] == '\0')
		snprintf(p->database, sizeof(p->database), "%s", t->database ? t->database : "");
	return true;
}

/*
 * Settings a client may give at startup: the ones drivers send to shape their session. Any
 * other would set a server setting no policy sees (role, session_replication_role, …): the
 * client must SET it, as a statement the policy checks.
 */
static const char *const pg_startup_ok[] = {
	"application_name", "client_encoding", "datestyle", "timezone", "intervalstyle",
	"extra_float_digits", "search_path", "statement_timeout", "lock_timeout",
	"idle_in_transaction_session_timeout", "bytea_output", "standard_conforming_strings", NULL,
};

static bool
pg_startup_name_ok(const char *name, size_t len)
{
	for (int i = 0; pg_startup_ok[i] != NULL; i++)
		if (strlen(pg_startup_ok[i]) == len && strncasecmp(pg_startup_ok[i], name, len) == 0)
			return true;
	return false;
}

/* Append "-c NAME=VALUE" to F with spaces and backslashes escaped as the server's options parser wants. */
static void
pg_put_option(FILE *f, const char *name, size_t nlen, const char *value, size_t vlen)
{
	fprintf(f, "%s-c %.*s=", ftell(f) ? " " : "", (int)nlen, name);
	for (size_t j = 0; j < vlen; j++) {
		if (value[j] == ' ' || value[j] == '\\')
			fputc('\\', f);
		fputc(value[j], f);
	}
}

/*
 * The client's "options" ("-c name=value", "-cname=value" or "--name=value", space separated,
 * backslash escapes): every setting must be on the allow-list. NAME gets the first that is not.
 */
static bool
pg_options_ok(const char *opt, size_t len, FILE *f, char *bad, size_t badlen)
{
	char word[512];
	size_t i = 0;
	bool want_c = false;

	while (i < len) {
		size_t w = 0;
		const char *kv, *eq;

		while (i < len && opt[i] == ' ')
			i++;
		if (i >= len)
			break;
		while (i < len && opt[i] != ' ' && w + 1 < sizeof(word)) {
			if (opt[i] == '\\' && i + 1 < len)
				i++;
			word[w++] = opt[i++];
		}
		word[w] = '\0';
		if (want_c) {
			kv = word;
			want_c = false;
		} else if (strcmp(word, "-c") == 0) {
			want_c = true;
			continue;
		} else if (strncmp(word, "-c", 2) == 0) {
			kv = word + 2;
		} else if (strncmp(word, "--", 2) == 0) {
			kv = word + 2;
		} else {
			snprintf(bad, badlen, "%.64s", word);
			return false;
		}
		if ((eq = strchr(kv, '=')) == NULL || !pg_startup_name_ok(kv, (size_t)(eq - kv))) {
			snprintf(bad, badlen, "%.*s", (int)(eq ? eq - kv : (long)strlen(kv)), kv);
			return false;
		}
		pg_put_option(f, kv, (size_t)(eq - kv), eq + 1, strlen(eq + 1));
	}
	if (want_c) {
		snprintf(bad, badlen, "-c");
		return false;
	}
	return true;
}

/* Startup parameters other than user and database travel to the target through libpq. */
static bool
pg_keep_params(struct pg_session *p, const struct pg_startup *st)
{
	char bad[128] = "";
	size_t len = 0;
	bool ok = true;
	FILE *f;

	if ((f = open_memstream(&p->options, &len)) == NULL)
		return false;
	for (size_t i = 0; i < st->nparams && ok; i++) {
		const struct pg_param *pp = &st->params[i];
		const char *name = (const char *)pp->name.ptr, *value = (const char *)pp->value.ptr;
		size_t nl = pp->name.len, vl = pp->value.len;

		if ((nl == 4 && memcmp(name, "user", 4) == 0) || (nl == 8 && memcmp(name, "database", 8) == 0) ||
		    (nl > 5 && memcmp(name, "_pq_.", 5) == 0))
			continue;
		if (nl == 16 && memcmp(name, "application_name", 16) == 0) {
			snprintf(p->application_name, sizeof(p->application_name), "%.*s", (int)vl, value);
		} else if (nl == 7 && memcmp(name, "options", 7) == 0) {
			ok = pg_options_ok(value, vl, f, bad, sizeof(bad));
		} else if (pg_startup_name_ok(name, nl)) {
			pg_put_option(f, name, nl, value, vl);
		} else {
			snprintf(bad, sizeof(bad), "%.*s", (int)(nl < 64 ? nl : 64), name);
			ok = false;
		}
	}
	fclose(f);
	if (!ok)
		pg_fatal(p, PG_SQLSTATE_INSUFFICIENT_PRIVILEGE, "postern: the startup setting \"%s\" is not allowed; "
		    "connect without it and SET it in the session (policy checks SET)", bad);
	return ok;
}

static void
pg_policy_session(struct pg_session *p)
{
	const struct roles *roles = &p->s->cfg->roles;
	struct policy_session *pol = &p->pol;
	size_t n = 0;

	for (size_t i = 0; i < roles->n && n < sizeof(p->roles) / sizeof(p->roles[0]); i++)
		if (roles_is_member(&roles->list[i], p->id.user))
			p->roles[n++] = roles->list[i].name;
	pol->id = p->s->idstr;
	pol->user = p->s->user;
	pol->target = p->s->target;
	pol->protocol = "postgres";
	pol->login = p->id.login[0] ? p->id.login : (p->target->user ? p->target->user : "");
	pol->client_addr = p->s->client_addr;
	pol->started = p->s->started;
	pol->roles = p->roles;
	pol->nroles = n;
	pol->policy_file = p->id.role ? p->id.role->policy : NULL;
	pol->policy_source = p->id.role ? p->id.role->policy_source : NULL;
	pol->policy_len = p->id.role ? p->id.role->policy_len : 0;
	pol->config_generation = p->s->cfg->generation;
	pol->step_limit = p->s->cfg->policy_instructions;
	pol->mem_limit = p->s->cfg->policy_memory;
}

/* Open the session's recording; without one (when the config says so) the session goes no further. */
static bool
pg_audit_open(struct pg_session *p)
{
	struct audit_session_facts facts = {
		.login = p->pol.login, .database = p->database, .role = p->id.role ? p->id.role->name : NULL,
		.roles = p->roles, .nroles = p->pol.nroles, .serial = p->id.serial, .not_after = p->id.not_after,
		.application_name = p->application_name, .tls = p->tls,
	};
	char reason[768];

	if (audit_session_open(p->s, &facts, reason, sizeof(reason)) == 0)
		return true;
	pg_fatal(p, PG_SQLSTATE_CANNOT_CONNECT_NOW, "postern: %s", reason);
	return false;
}

/*
 * connect = "lazy": answer the startup from the parameter cache (AuthenticationOk, the target's
 * parameters as last seen, posternd's BackendKeyData, ReadyForQuery) and leave the target
 * unconnected until the client sends something. False on a cache miss: connect now.
 */
static bool
pg_park(struct pg_session *p)
{
	uint8_t out[4096];
	size_t o = pg_build_auth_ok(out, sizeof(out)), n;

	if ((n = pg_param_cached(p, out + o, sizeof(out) - o - 64)) == 0)
		return false;
	o += n;
	(void)pg_cancel_register(p);	/* the key only: the target's half comes with its connection */
	o += pg_build_backend_key(out + o, sizeof(out) - o, p->key_pid, p->key_secret);
	o += pg_build_ready(out + o, sizeof(out) - o, PG_TXN_IDLE);
	p->answered = true;
	p->state = PG_STATE_PARKED;
	session_set_state(p->s, SESSION_STATE_ACTIVE);
	if (p->timer != NULL)
		event_del(p->timer);
	(void)io_send(p->client, out, o);
	log_debug("target connection deferred", "sid=%s target=%s", p->s->idstr, p->s->target);
	/* A first message sent right behind the startup packet is in the buffer already. */
	if (io_readable(p->client) > 0)
		pg_unpark(p);
	return true;
}

/* The client of a parked session sent its first message: connect the target now (it waits in
 * the buffer meanwhile), unless the message is a Terminate. */
static void
pg_unpark(struct pg_session *p)
{
	uint8_t type;
	struct timeval tv;

	if (io_peek(p->client, &type, 1) < 1)
		return;
	if (type == PG_MSG_TERMINATE) {
		pg_close(p, "client quit");
		return;
	}
	p->state = PG_STATE_CONNECTING;
	session_set_state(p->s, SESSION_STATE_CONNECTING);
	if (p->timer != NULL) {
		tv.tv_sec = (time_t)p->s->cfg->connect_timeout + 1;
		tv.tv_usec = 0;
		event_add(p->timer, &tv);
	}
	pg_upstream_start(p);
	if (p->state == PG_STATE_CONNECTING && io_readable(p->client) >= p->s->cfg->buffer_limit)
		io_set_reading(p->client, false);
}

static void
pg_startup(struct pg_session *p, const struct pg_startup *st)
{
	char reason[POLICY_REASON_MAX];
	SSL *ssl = io_ssl(p->client);

	if (PG_PROTOCOL_MAJOR(st->protocol) != 3) {
		pg_fatal(p, PG_SQLSTATE_FEATURE_NOT_SUPPORTED, "unsupported frontend protocol %u.%u: postern speaks 3.0",
		    PG_PROTOCOL_MAJOR(st->protocol), PG_PROTOCOL_MINOR(st->protocol));
		return;
	}
	if (!p->tls) {
		pg_fatal(p, PG_SQLSTATE_INVALID_AUTHORIZATION, "postern requires TLS with your client certificate: "
		    "connect with sslmode=require (or verify-full) and the sslcert/sslkey from postern login");
		return;
	}
	if (PG_PROTOCOL_MINOR(st->protocol) > 0) {
		struct slice unsupported[PG_STARTUP_PARAMS_MAX];
		uint8_t msg[2048];
		size_t n = 0, len;

		for (size_t i = 0; i < st->nparams; i++)
			if (st->params[i].name.len > 5 && memcmp(st->params[i].name.ptr, "_pq_.", 5) == 0)
				unsupported[n++] = st->params[i].name;
		if ((len = pg_build_negotiate_version(msg, sizeof(msg), PG_PROTOCOL_3_0, unsupported, n)) > 0)
			(void)io_send(p->client, msg, len);
	}
	if (!pg_pick_target(p, pg_startup_param(st, "database")))
		return;
	if (identity_check_x509(p->s->cfg, ssl ? SSL_get0_peer_certificate(ssl) : NULL, p->target->name, &p->id,
	    reason, sizeof(reason)) != 0) {
		pg_fatal(p, PG_SQLSTATE_INVALID_AUTHORIZATION, "%s", reason);
		return;
	}
	session_set_user(p->s, p->id.user, p->id.serial);
	if (!pg_keep_params(p, st))
		return;
	pg_policy_session(p);
	if (policy_on_connect(&p->pol, reason, sizeof(reason)) != POLICY_ALLOW) {
		pg_fatal(p, PG_SQLSTATE_INSUFFICIENT_PRIVILEGE, "postern: connection denied by policy: %s", reason);
		return;
	}
	if (!pg_audit_open(p))
		return;
	log_info("access granted", "sid=%s protocol=postgres target=%s user=%s role=%s database=%s serial=%llu",
	    p->s->idstr, p->s->target, p->id.user, p->id.role->name, p->database[0] ? p->database : "-",
	    (unsigned long long)p->id.serial);
	if (p->target->lazy_connect && pg_park(p))
		return;
	p->state = PG_STATE_CONNECTING;
	session_set_state(p->s, SESSION_STATE_CONNECTING);
	pg_upstream_start(p);
}

/* Read one startup packet if it is all there and act on it. */
static void
pg_startup_read(struct pg_session *p)
{
	struct pg_startup st;
	uint8_t buf[PG_STARTUP_MAX];
	uint32_t len;
	char err[256];

	if (io_peek(p->client, buf, 4) < 4)
		return;
	if (pg_startup_length(buf, 4, &len) != 0 || len < PG_STARTUP_MIN || len > PG_STARTUP_MAX) {
		pg_fatal(p, PG_SQLSTATE_PROTOCOL_VIOLATION, "invalid startup packet length; is this a PostgreSQL client?");
		return;
	}
	if (io_readable(p->client) < len)
		return;
	/* A copy, so the packet's slices outlive its bytes in the input buffer. */
	(void)io_recv(p->client, buf, len);
	if (pg_startup_parse(buf, len, &st, err, sizeof(err)) != 0) {
		uint32_t version = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | buf[7];

		/* PostgreSQL answers a version it does not speak with 0A000, anything else with 08P01. */
		pg_fatal(p, PG_PROTOCOL_MAJOR(version) != 3 && PG_PROTOCOL_MAJOR(version) != 1234 ?
		    PG_SQLSTATE_FEATURE_NOT_SUPPORTED : PG_SQLSTATE_PROTOCOL_VIOLATION, "%s", err);
		return;
	}
	switch (st.kind) {
	case PG_STARTUP_SSL:
		if (p->tls || io_readable(p->client) != 0) {
			pg_fatal(p, PG_SQLSTATE_PROTOCOL_VIOLATION, "unexpected data with the SSLRequest");
			return;
		}
		/* One byte on a fresh socket: the kernel takes it at once, before TLS starts. */
		if (write(io_fd(p->client), "S", 1) != 1 ||
		    io_upgrade_tls_accept(p->client, identity_api_ctx(), 0) != 0) {
			pg_close(p, "could not start TLS");
			return;
		}
		p->state = PG_STATE_TLS;
		return;
	case PG_STARTUP_GSSENC:
		(void)io_send(p->client, "N", 1);
		return;
	case PG_STARTUP_CANCEL:
		pg_cancel_request(st.cancel_pid, st.cancel_key, p->s->client_addr);
		pg_close(p, "cancel request");
		return;
	case PG_STARTUP_NORMAL:
		pg_startup(p, &st);
		return;
	}
}

static void
pg_client_read(struct io *io, void *arg)
{
	struct pg_session *p = arg;

	switch (p->state) {
	case PG_STATE_STARTUP:
		pg_startup_read(p);
		return;
	case PG_STATE_RELAY:
		pg_relay_client_read(p);
		return;
	case PG_STATE_PARKED:
		pg_unpark(p);
		return;
	case PG_STATE_CONNECTING:
		/* Early queries wait in the buffer, within the same bound as any other. */
		if (io_readable(io) >= p->s->cfg->buffer_limit)
			io_set_reading(io, false);
		return;
	case PG_STATE_TLS:
		return;
	case PG_STATE_CLOSING:
	case PG_STATE_CLOSED:
		io_skip(io, io_readable(io));
		return;
	}
}

static void
pg_client_drain(struct io *io, void *arg)
{
	struct pg_session *p = arg;

	if (p->state == PG_STATE_CLOSING) {
		if (io_unsent(io) == 0)
			pg_close(p, p->deny_reason[0] ? p->deny_reason : "closed");
		return;
	}
	if (p->state == PG_STATE_RELAY && p->upstream != NULL)
		pg_relay_upstream_read(p);	/* resumes reading the target if it was paused */
}

static void
pg_client_event(struct io *io, enum io_event ev, void *arg)
{
	struct pg_session *p = arg;

	switch (ev) {
	case IO_EVENT_CONNECTED:
		/* TLS handshake done: the real startup packet comes next, over TLS. */
		if (p->state != PG_STATE_TLS)
			return;
		p->tls = true;
		p->state = PG_STATE_STARTUP;
		pg_startup_read(p);
		return;
	case IO_EVENT_EOF:
		pg_close(p, p->state == PG_STATE_RELAY || p->state == PG_STATE_PARKED ? "client closed the connection" :
		    "client left during setup");
		return;
	case IO_EVENT_ERROR:
	case IO_EVENT_TIMEOUT:
		pg_close(p, io_error(io));
		return;
	}
}

void
pg_accept(struct event_base *base, int worker, int fd, const struct sockaddr *peer,
    struct config *cfg, const struct config_target *target)
{
	struct pg_session *p;
	struct timeval tv;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		goto fail;
	p->txn = PG_TXN_IDLE;
	p->s = session_new(base, worker, cfg, CONFIG_PROTOCOL_POSTGRES, "", peer, &pg_session_ops, p);
	if (p->s == NULL)
		goto fail;
	p->client = io_tcp_new(base, fd, &pg_client_cb, p);
	if (p->client == NULL) {
		session_free(p->s);
		goto fail;
	}
	io_set_limit(p->client, cfg->buffer_limit);
	if ((p->timer = event_new(base, -1, 0, pg_timer_cb, p)) != NULL) {
		tv.tv_sec = (time_t)cfg->handshake_timeout;
		tv.tv_usec = (suseconds_t)((cfg->handshake_timeout - (double)tv.tv_sec) * 1e6);
		event_add(p->timer, &tv);
	}
	log_debug("connection", "sid=%s protocol=postgres client=%s worker=%d", p->s->idstr, p->s->client_addr, worker);
	return;
fail:
	log_error("connection refused", "protocol=postgres reason=\"out of memory\"");
	close(fd);
	free(p);
}
