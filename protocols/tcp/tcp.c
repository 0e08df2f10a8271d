/*
 * TCP passthrough. The client speaks TLS with the certificate `postern login` gave it; once
 * identity accepts it, posternd connects to the target and relays plaintext bytes both ways
 * (a target marked benchmark_plaintext skips TLS and identity: benchmarks only). Two ios,
 * bytes forwarded as evbuffer chains (no copy), and backpressure both ways: a side stops
 * being read while its peer has cfg->buffer_limit bytes unsent and resumes when that falls to
 * half. Half-closes pass through, so request/response tools that shut down their sending side
 * still get their answer, even when the request and its FIN arrive before the target answers.
 */
#include "protocols/tcp/tcp.h"

#include <stdlib.h>
#include <unistd.h>

#include "audit/audit.h"
#include "policy/policy.h"
#include "relay/identity.h"
#include "relay/io.h"
#include "relay/log.h"
#include "relay/session.h"

struct tcp_session {
	struct session *s;
	const struct config_target *target;	/* lives as long as s->cfg */
	struct io *client;
	struct io *upstream;		/* NULL until the connect has started */
	bool connected;			/* upstream connect finished */
	bool client_eof, upstream_eof;	/* that side sent FIN */
	size_t limit;			/* bytes buffered per direction before reading stops */
};

static void tcp_client_read(struct io *io, void *arg);
static void tcp_client_drain(struct io *io, void *arg);
static void tcp_client_event(struct io *io, enum io_event ev, void *arg);
static void tcp_upstream_read(struct io *io, void *arg);
static void tcp_upstream_drain(struct io *io, void *arg);
static void tcp_upstream_event(struct io *io, enum io_event ev, void *arg);

static const struct io_callbacks tcp_client_cb = { tcp_client_read, tcp_client_drain, tcp_client_event };
static const struct io_callbacks tcp_upstream_cb = { tcp_upstream_read, tcp_upstream_drain, tcp_upstream_event };

static void
tcp_close(struct tcp_session *t, const char *reason)
{
	struct session *s = t->s;
	char q[160];

	session_set_state(s, SESSION_STATE_CLOSING);
	log_info("session end", "sid=%s protocol=tcp target=%s user=%s client=%s bytes_up=%llu bytes_down=%llu duration=%.3f reason=%s",
	    s->idstr, s->target, s->user[0] ? s->user : "-", s->client_addr,
	    (unsigned long long)atomic_load(&s->bytes_up), (unsigned long long)atomic_load(&s->bytes_down),
	    util_now_wall() - s->started, log_quote(q, sizeof(q), reason));
	audit_session_close(s, reason);
	if (t->client != NULL)
		io_close(t->client);
	if (t->upstream != NULL)
		io_close(t->upstream);
	session_free(s);
	free(t);
}

/* Both sides said FIN and everything they sent is delivered: the session is over. */
static bool
tcp_maybe_done(struct tcp_session *t)
{
	if (t->client_eof && t->upstream_eof && io_unsent(t->client) == 0 && io_unsent(t->upstream) == 0) {
		tcp_close(t, "both sides closed");
		return true;
	}
	return false;
}

/* Move what FROM has buffered to TO, and stop reading FROM while TO is full. */
static size_t
tcp_pump(struct tcp_session *t, struct io *from, struct io *to)
{
	size_t n = io_forward(from, to, 0);

	if (io_backlogged(to, t->limit))
		io_set_reading(from, false);
	return n;
}

static void
tcp_client_read(struct io *io, void *arg)
{
	struct tcp_session *t = arg;

	if (!t->connected) {
		/* Hold early bytes until the target answers, within the same bound. */
		if (io_readable(io) >= t->limit)
			io_set_reading(io, false);
		return;
	}
	session_count_up(t->s, tcp_pump(t, io, t->upstream));
}

static void
tcp_upstream_read(struct io *io, void *arg)
{
	struct tcp_session *t = arg;

	session_count_down(t->s, tcp_pump(t, io, t->client));
}

static void
tcp_client_drain(struct io *io, void *arg)
{
	struct tcp_session *t = arg;

	if (tcp_maybe_done(t))
		return;
	if (!t->upstream_eof && t->upstream != NULL)
		io_set_reading(t->upstream, true);
}

static void
tcp_upstream_drain(struct io *io, void *arg)
{
	struct tcp_session *t = arg;

	if (tcp_maybe_done(t))
		return;
	if (!t->client_eof)
		io_set_reading(t->client, true);
}

/* Open the onward connection; the client's bytes wait in its buffer until it is up. */
static void
tcp_connect_upstream(struct tcp_session *t)
{
	struct session *s = t->s;

	session_set_state(s, SESSION_STATE_CONNECTING);
	t->upstream = io_tcp_connect(s->base, &t->target->addr, s->cfg->connect_timeout, &tcp_upstream_cb, t);
	if (t->upstream == NULL) {
		log_warn("target unreachable", "sid=%s target=%s error=\"cannot start the connection\"", s->idstr, s->target);
		tcp_close(t, "target unreachable");
		return;
	}
	io_set_limit(t->upstream, t->limit);
}

/* The role's policy decides on_connect for tcp sessions too (there is no statement to check). */
static bool
tcp_policy_connect(struct tcp_session *t, const struct identity *id)
{
	const struct roles *roles = &t->s->cfg->roles;
	const char *names[16];
	struct policy_session pol = {
		.id = t->s->idstr, .user = t->s->user, .target = t->s->target, .protocol = "tcp", .login = "",
		.client_addr = t->s->client_addr, .started = t->s->started, .roles = names,
		.policy_file = id->role->policy, .policy_source = id->role->policy_source, .policy_len = id->role->policy_len,
		.config_generation = t->s->cfg->generation, .step_limit = t->s->cfg->policy_instructions,
		.mem_limit = t->s->cfg->policy_memory,
	};
	char reason[POLICY_REASON_MAX], q[POLICY_REASON_MAX + 16];

	for (size_t i = 0; i < roles->n && pol.nroles < sizeof(names) / sizeof(names[0]); i++)
		if (roles_is_member(&roles->list[i], id->user))
			names[pol.nroles++] = roles->list[i].name;
	if (policy_on_connect(&pol, reason, sizeof(reason)) == POLICY_ALLOW) {
		policy_session_end(&pol);
		return true;
	}
	policy_session_end(&pol);
	log_warn("session refused", "sid=%s protocol=tcp target=%s user=%s reason=%s", t->s->idstr, t->s->target,
	    id->user, log_quote(q, sizeof(q), reason));
	tcp_close(t, "denied by policy");
	return false;
}

/* Record the session (start, byte counters, end); refuse it when recording must and cannot. */
static bool
tcp_audit_open(struct tcp_session *t, const struct identity *id)
{
	const struct roles *roles = &t->s->cfg->roles;
	const char *names[16];
	struct audit_session_facts facts = {
		.role = id->role->name, .serial = id->serial, .not_after = id->not_after, .tls = true, .roles = names,
	};
	char reason[768], q[800];

	for (size_t i = 0; i < roles->n && facts.nroles < sizeof(names) / sizeof(names[0]); i++)
		if (roles_is_member(&roles->list[i], id->user))
			names[facts.nroles++] = roles->list[i].name;
	if (audit_session_open(t->s, &facts, reason, sizeof(reason)) == 0)
		return true;
	/* Raw TCP has no error message of its own: the log says why, the client sees a close. */
	log_warn("session refused", "sid=%s protocol=tcp target=%s user=%s reason=%s", t->s->idstr, t->s->target,
	    id->user, log_quote(q, sizeof(q), reason));
	tcp_close(t, "recording unavailable");
	return false;
}

/* The client's TLS handshake is done: check its certificate, then go on to the target. */
static void
tcp_authorised(struct tcp_session *t, struct io *io)
{
	struct session *s = t->s;
	struct identity id;
	char reason[256], q[300];

	io_clear_timeout(io);
	if (identity_check_x509(s->cfg, SSL_get0_peer_certificate(io_ssl(io)), s->target, &id, reason, sizeof(reason)) != 0) {
		log_warn("access denied", "sid=%s protocol=tcp target=%s client=%s reason=%s", s->idstr, s->target,
		    s->client_addr, log_quote(q, sizeof(q), reason));
		tcp_close(t, "access denied");
		return;
	}
	session_set_user(s, id.user, id.serial);
	log_info("access granted", "sid=%s protocol=tcp target=%s user=%s role=%s serial=%llu", s->idstr, s->target,
	    id.user, id.role->name, (unsigned long long)id.serial);
	if (!tcp_policy_connect(t, &id) || !tcp_audit_open(t, &id))
		return;
	tcp_connect_upstream(t);
}

static void
tcp_client_event(struct io *io, enum io_event ev, void *arg)
{
	struct tcp_session *t = arg;

	if (ev == IO_EVENT_EOF) {
		t->client_eof = true;
		if (!t->connected) {
			/* A request then FIN (`echo hi | nc -N`) may beat the onward connect: the bytes
			 * wait in the client's buffer and go on, with the half-close, once the target
			 * answers (the connect timeout still bounds the wait). Before the connect has
			 * started (the TLS handshake is not done) nothing would bound it: end here. */
			if (t->upstream == NULL)
				tcp_close(t, "client left during the TLS handshake");
			return;
		}
		session_count_up(t->s, io_forward(io, t->upstream, 0));
		io_shutdown_write(t->upstream);
		tcp_maybe_done(t);
		return;
	}
	if (ev == IO_EVENT_CONNECTED) {
		tcp_authorised(t, io);
		return;
	}
	tcp_close(t, ev == IO_EVENT_ERROR ? io_error(io) : "client timed out");
}

static void
tcp_upstream_event(struct io *io, enum io_event ev, void *arg)
{
	struct tcp_session *t = arg;
	struct session *s = t->s;
	char q[160];

	switch (ev) {
	case IO_EVENT_CONNECTED:
		t->connected = true;
		io_clear_timeout(io);
		session_set_state(s, SESSION_STATE_ACTIVE);
		log_debug("target connected", "sid=%s target=%s", s->idstr, s->target);
		session_count_up(s, tcp_pump(t, t->client, io));
		if (t->client_eof)
			io_shutdown_write(io);	/* the client left while we connected: FIN after its bytes */
		else if (!io_backlogged(io, t->limit))
			io_set_reading(t->client, true);
		return;
	case IO_EVENT_EOF:
		t->upstream_eof = true;
		session_count_down(s, io_forward(io, t->client, 0));
		io_shutdown_write(t->client);
		tcp_maybe_done(t);
		return;
	case IO_EVENT_ERROR:
	case IO_EVENT_TIMEOUT:
		if (!t->connected) {
			log_warn("target unreachable", "sid=%s target=%s address=%s error=%s", s->idstr, s->target,
			    t->target->address, log_quote(q, sizeof(q), io_error(io)));
			tcp_close(t, "target unreachable");
		} else {
			tcp_close(t, io_error(io));
		}
		return;
	}
}

static void
tcp_kill(struct session *s, const char *reason)
{
	tcp_close(s->proto, reason);
}

static const struct session_ops tcp_session_ops = { .kill = tcp_kill };

void
tcp_accept(struct event_base *base, int worker, int fd, const struct sockaddr *peer,
    struct config *cfg, const struct config_target *target)
{
	struct tcp_session *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto fail;
	t->limit = cfg->buffer_limit;
	t->target = target;
	t->s = session_new(base, worker, cfg, CONFIG_PROTOCOL_TCP, target->name, peer, &tcp_session_ops, t);
	if (t->s == NULL)
		goto fail;
	if (target->benchmark_plaintext)
		t->client = io_tcp_new(base, fd, &tcp_client_cb, t);
	else
		t->client = io_tls_accept(base, fd, identity_tls_ctx(), cfg->handshake_timeout, &tcp_client_cb, t);
	if (t->client == NULL) {
		session_free(t->s);
		goto fail;
	}
	fd = -1;	/* transferred to t->client */
	io_set_limit(t->client, t->limit);
	log_info("session start", "sid=%s protocol=tcp target=%s client=%s worker=%d tls=%s",
	    t->s->idstr, t->s->target, t->s->client_addr, worker, target->benchmark_plaintext ? "no" : "yes");
	if (target->benchmark_plaintext)
		tcp_connect_upstream(t);
	return;
fail:
	log_error("connection refused", "target=%s reason=\"out of memory\"", target->name);
	if (fd >= 0)
		close(fd);
	free(t);
}
