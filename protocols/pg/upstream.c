/*
 * The onward connection: libpq, driven asynchronously on the worker's loop
 * (PQconnectStartParams, then PQconnectPoll on socket readiness), with the target's login and
 * password injected from posternd's config, TLS to the target (sslmode up to verify-full with
 * the target's CA), several hosts and target_session_attrs for failover. Once connected,
 * libpq's SSL object is taken over (pg_upstream_detach) and relayed raw by an io, and the
 * PGconn is freed: it would otherwise hold its 32 KiB of buffers for the whole session.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "protocols/pg/session.h"
#include "relay/log.h"

#define PG_CONN_PARAMS_MAX	20

/* The GUC_REPORT parameters PostgreSQL 15 reports at startup, passed on to the client. */
static const char *const pg_reported[] = {
	"server_version", "server_encoding", "client_encoding", "application_name",
	"default_transaction_read_only", "in_hot_standby", "is_superuser", "session_authorization",
	"DateStyle", "IntervalStyle", "TimeZone", "integer_datetimes", "standard_conforming_strings", NULL,
};

static void pg_upstream_poll(evutil_socket_t fd, short what, void *arg);

/*
 * The parameter cache, for targets with connect = "lazy". Each connection to a target stores
 * what the target reported (pg_reported but application_name, which is the client's own),
 * under the target, the login, the database and the startup options, for this configuration
 * generation. A later client with the same key is answered from it at once and the target is
 * connected only when the client sends its first message (PgBouncer's model): an idle client
 * then holds no target connection, no backend and none of its memory. The real values follow
 * as ParameterStatus messages when the connection is made, ahead of the first reply.
 */
#define PG_PARAM_CACHE_SLOTS	64
#define PG_PARAM_VALUES_MAX	1024	/* bytes of the values of one entry */

struct pg_param_entry {
	char *key;			/* target \0 login \0 database \0 options, as one string of keylen */
	size_t keylen;
	long generation;		/* the configuration it was seen under */
	uint64_t used;			/* stamp of the last store or hit, for eviction */
	char values[PG_PARAM_VALUES_MAX];	/* "name\0value\0" pairs */
	size_t vlen;
};

static pthread_mutex_t pg_param_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pg_param_entry pg_param_cache[PG_PARAM_CACHE_SLOTS];
static uint64_t pg_param_clock;

/* The cache key of P's connection, into BUF; its length, or 0 if it does not fit. */
static size_t
pg_param_key(const struct pg_session *p, char *buf, size_t size)
{
	const char *parts[4] = { p->target->name, p->pol.login, p->database, p->options ? p->options : "" };
	size_t n = 0;

	for (int i = 0; i < 4; i++) {
		size_t l = strlen(parts[i]) + 1;

		if (n + l > size)
			return 0;
		memcpy(buf + n, parts[i], l);
		n += l;
	}
	return n;
}

/* The entry for KEY (under pg_param_mu), or NULL. */
static struct pg_param_entry *
pg_param_find(const char *key, size_t klen)
{
	for (int i = 0; i < PG_PARAM_CACHE_SLOTS; i++)
		if (pg_param_cache[i].keylen == klen && memcmp(pg_param_cache[i].key, key, klen) == 0)
			return &pg_param_cache[i];
	return NULL;
}

static void
pg_param_store(const struct pg_session *p, PGconn *conn)
{
	struct pg_param_entry *e = NULL, tmp = { .vlen = 0 };
	char key[1024];
	size_t klen = pg_param_key(p, key, sizeof(key));

	if (klen == 0)
		return;
	for (int i = 0; pg_reported[i] != NULL; i++) {
		const char *v = PQparameterStatus(conn, pg_reported[i]);
		size_t nl = strlen(pg_reported[i]) + 1, vl;

		if (v == NULL || strcmp(pg_reported[i], "application_name") == 0)
			continue;
		vl = strlen(v) + 1;
		if (tmp.vlen + nl + vl > sizeof(tmp.values))
			return;
		memcpy(tmp.values + tmp.vlen, pg_reported[i], nl);
		memcpy(tmp.values + tmp.vlen + nl, v, vl);
		tmp.vlen += nl + vl;
	}
	pthread_mutex_lock(&pg_param_mu);
	e = pg_param_find(key, klen);
	/* A session of an older configuration does not replace what the current one saw. */
	if (e != NULL && e->generation > p->s->cfg->generation)
		goto out;
	for (int i = 0; i < PG_PARAM_CACHE_SLOTS && e == NULL; i++)
		if (pg_param_cache[i].key == NULL)
			e = &pg_param_cache[i];
	if (e == NULL) {
		e = &pg_param_cache[0];
		for (int i = 1; i < PG_PARAM_CACHE_SLOTS; i++)
			if (pg_param_cache[i].used < e->used)
				e = &pg_param_cache[i];
	}
	if (e->keylen != klen || memcmp(e->key, key, klen) != 0) {
		char *k = malloc(klen);

		if (k == NULL)
			goto out;
		memcpy(k, key, klen);
		free(e->key);
		e->key = k;
		e->keylen = klen;
	}
	e->generation = p->s->cfg->generation;
	e->used = ++pg_param_clock;
	memcpy(e->values, tmp.values, tmp.vlen);
	e->vlen = tmp.vlen;
out:
	pthread_mutex_unlock(&pg_param_mu);
}

/* ParameterStatus messages of P's key from the cache into OUT (the client's application_name
 * included), noting each; bytes written, or 0 on a miss (or if they do not fit). */
size_t
pg_param_cached(struct pg_session *p, uint8_t *out, size_t cap)
{
	char key[1024], values[PG_PARAM_VALUES_MAX];
	size_t klen = pg_param_key(p, key, sizeof(key)), vlen = 0, o = 0, n;
	struct pg_param_entry *e;

	if (klen == 0)
		return 0;
	pthread_mutex_lock(&pg_param_mu);
	if ((e = pg_param_find(key, klen)) != NULL && e->generation == p->s->cfg->generation) {
		memcpy(values, e->values, e->vlen);
		vlen = e->vlen;
		e->used = ++pg_param_clock;
	}
	pthread_mutex_unlock(&pg_param_mu);
	if (vlen == 0)
		return 0;
	for (size_t at = 0; at < vlen;) {
		const char *name = values + at, *value = name + strlen(name) + 1;

		at = (size_t)(value - values) + strlen(value) + 1;
		if ((n = pg_build_parameter_status(out + o, cap - o, name, value)) == 0)
			return 0;
		o += n;
		pg_note_parameter(p, (struct slice){ (const uint8_t *)name, strlen(name) },
		    (struct slice){ (const uint8_t *)value, strlen(value) });
	}
	if ((n = pg_build_parameter_status(out + o, cap - o, "application_name", p->application_name)) == 0)
		return 0;
	return o + n;
}

void
pg_upstream_free(struct pg_session *p)
{
	bool relayed = p->upstream != NULL;

	/* The goodbye libpq would have said: Terminate, behind what is queued and only at a
	 * message boundary (never inside a message the client is still streaming). */
	if (relayed && p->c_left == 0)
		if (io_send(p->upstream, "X\0\0\0\4", 5) == 0)
			io_flush(p->upstream);
	if (relayed)
		io_close(p->upstream);
	p->upstream = NULL;
	if (p->conn_ev != NULL)
		event_free(p->conn_ev);
	p->conn_ev = NULL;
	if (p->conn != NULL) {
		/* A plaintext target's PGconn, kept for its socket: libpq's own Terminate would go
		 * straight to the socket after whatever the relay left there, perhaps inside a
		 * message. Once relayed, the socket is shut first, so libpq sends nothing. */
		if (relayed && PQsocket(p->conn) >= 0)
			(void)shutdown(PQsocket(p->conn), SHUT_RDWR);
		/* Nonblocking: the goodbye (Terminate, TLS close) never stalls the worker. */
		PQsetnonblocking(p->conn, 1);
		PQfinish(p->conn);
	}
	p->conn = NULL;
}

/* Wait for libpq's socket to be readable or writable, within the connect deadline. */
static void
pg_upstream_wait(struct pg_session *p, short what)
{
	double left = p->deadline - util_now_mono();
	struct timeval tv;

	if (left < 0)
		left = 0;
	tv.tv_sec = (time_t)left;
	tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
	if (p->conn_ev != NULL)
		event_free(p->conn_ev);
	/* The socket can change between polls: libpq moves on to the next host after a failure. */
	p->conn_ev = event_new(p->s->base, PQsocket(p->conn), what, pg_upstream_poll, p);
	if (p->conn_ev == NULL || event_add(p->conn_ev, &tv) != 0)
		pg_fatal(p, PG_SQLSTATE_CONNECTION_FAILURE, "cannot wait for the target connection");
}

/* The first line of libpq's error, for the client and the log (it never holds the password). */
static const char *
pg_upstream_error(struct pg_session *p, char *buf, size_t size)
{
	const char *msg = PQerrorMessage(p->conn);
	size_t n = strcspn(msg, "\n");

	snprintf(buf, size, "%.*s", (int)n, msg);
	return buf;
}

/*
 * Take libpq's TLS connection over and free the PGconn. The SSL object gets a reference of ours
 * and a socket BIO on a duplicate of the socket; then, with the SSL marked shut down both ways
 * (quietly), PQfinish can neither write its Terminate nor a close_notify, nor read: it only
 * frees, closes its copy of the socket and drops its reference. Nothing libpq left behind may
 * run later: its verify callback and application data are cleared and renegotiation refused.
 * Returns the socket that is now ours, or -1 (the PGconn is then untouched).
 */
static int
pg_upstream_detach(struct pg_session *p, SSL *ssl)
{
	int fd = fcntl(PQsocket(p->conn), F_DUPFD_CLOEXEC, 3);
	BIO *bio;

	if (fd < 0)
		return -1;
	if ((bio = BIO_new_socket(fd, BIO_NOCLOSE)) == NULL || SSL_up_ref(ssl) != 1) {
		BIO_free(bio);
		close(fd);
		ERR_clear_error();
		return -1;
	}
	SSL_set_bio(ssl, bio, bio);
	SSL_set_verify(ssl, SSL_get_verify_mode(ssl), NULL);
	SSL_set_app_data(ssl, NULL);
	SSL_set_default_passwd_cb_userdata(ssl, NULL);
	SSL_set_options(ssl, SSL_OP_NO_RENEGOTIATION);
	SSL_set_quiet_shutdown(ssl, 1);
	SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	PQfinish(p->conn);
	p->conn = NULL;
	SSL_set_shutdown(ssl, 0);
	SSL_set_quiet_shutdown(ssl, 0);
	ERR_clear_error();
	return fd;
}

static void
pg_upstream_ready(struct pg_session *p)
{
	uint8_t msg[512];
	size_t n;
	SSL *ssl = PQsslStruct(p->conn, "OpenSSL");
	int fd = PQsocket(p->conn);
	char host[256];
	bool cancel_pending = false;

	PQsetnonblocking(p->conn, 1);
	snprintf(host, sizeof(host), "%s", PQhost(p->conn) ? PQhost(p->conn) : "");
	/* What the client would have got from the target: AuthenticationOk, the reported
	 * parameters, a BackendKeyData (posternd's own, for cancels), ReadyForQuery. Built into one
	 * buffer and sent once (one TLS record, not one per message) when the relay is set up.
	 * A client answered from the parameter cache already has all but the parameters' real
	 * values: those follow, ahead of the reply to its first message. */
	{
		uint8_t out[4096];
		size_t o = 0;

		if (p->target->lazy_connect)
			pg_param_store(p, p->conn);
		if (!p->answered)
			o += pg_build_auth_ok(out + o, sizeof(out) - o);
		for (int i = 0; pg_reported[i] != NULL; i++) {
			const char *v = PQparameterStatus(p->conn, pg_reported[i]);

			if (v != NULL) {
				if ((n = pg_build_parameter_status(msg, sizeof(msg), pg_reported[i], v)) > 0 &&
				    n <= sizeof(out) - o) {
					memcpy(out + o, msg, n);
					o += n;
				}
				pg_note_parameter(p, (struct slice){ (const uint8_t *)pg_reported[i], strlen(pg_reported[i]) },
				    (struct slice){ (const uint8_t *)v, strlen(v) });
			}
		}
		cancel_pending = pg_cancel_register(p);
		if (!p->answered) {
			o += pg_build_backend_key(out + o, sizeof(out) - o, p->key_pid, p->key_secret);
			o += pg_build_ready(out + o, sizeof(out) - o, PG_TXN_IDLE);
		}
		/* A plaintext target keeps its PGconn (its goodbye would reach the target). */
		if (ssl != NULL && (fd = pg_upstream_detach(p, ssl)) < 0) {
			pg_fatal(p, PG_SQLSTATE_CONNECTION_FAILURE, "cannot relay the target connection");
			return;
		}
		p->upstream = ssl != NULL ? io_tls_adopt(p->s->base, fd, ssl, true, &pg_upstream_cb, p)
		    : io_tcp_adopt(p->s->base, fd, &pg_upstream_cb, p);
		if (p->upstream == NULL) {
			if (ssl != NULL) {
				SSL_free(ssl);
				close(fd);
			}
			pg_fatal(p, PG_SQLSTATE_CONNECTION_FAILURE, "cannot relay the target connection");
			return;
		}
		io_set_limit(p->upstream, p->s->cfg->buffer_limit);
		(void)io_send(p->client, out, o);
	}
	log_info("target connected", "sid=%s target=%s host=%s login=%s tls=%s", p->s->idstr, p->s->target,
	    host, p->pol.login, ssl != NULL ? "yes" : "no");
	pg_relay_start(p);
	/* A cancel the client sent while the target was being connected: its query is on its way now. */
	if (cancel_pending && p->state == PG_STATE_RELAY)
		pg_cancel_pending_send(p);
}

static void
pg_upstream_poll(evutil_socket_t fd, short what, void *arg)
{
	struct pg_session *p = arg;
	char err[512];

	/* Killed or refused meanwhile (a lock, an admin): the FATAL is on its way; stop connecting. */
	if (p->state != PG_STATE_CONNECTING)
		return;
	if (what & EV_TIMEOUT) {
		pg_fatal(p, PG_SQLSTATE_CONNECTION_FAILURE, "cannot connect to target \"%s\": no answer within %.0f s",
		    p->s->target, p->s->cfg->connect_timeout);
		return;
	}
	switch (PQconnectPoll(p->conn)) {
	case PGRES_POLLING_READING:
		pg_upstream_wait(p, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		pg_upstream_wait(p, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		event_free(p->conn_ev);
		p->conn_ev = NULL;
		pg_upstream_ready(p);
		return;
	default:
		pg_fatal(p, PG_SQLSTATE_CONNECTION_FAILURE, "cannot connect to target \"%s\": %s", p->s->target,
		    pg_upstream_error(p, err, sizeof(err)));
		return;
	}
}

/* host and hostaddr lists from the target's resolved addresses (no DNS on the worker). */
static void
pg_upstream_hosts(const struct config_target *t, char *host, size_t hsize, char *addr, size_t asize,
    char *port, size_t psize)
{
	size_t h = 0, a = 0, o = 0;
	const char *list = t->address;

	host[0] = addr[0] = port[0] = '\0';
	for (size_t i = 0; i < t->naddrs; i++) {
		char buf[96], *colon;
		size_t len = strcspn(list, ",");

		/* The name as written, for TLS verification; the address as resolved, to connect. */
		while (*list == ' ')
			list++, len--;
		snprintf(buf, sizeof(buf), "%.*s", (int)len, list);
		list += strcspn(list, ",") + (list[strcspn(list, ",")] == ',');
		colon = strrchr(buf, ':');
		if (colon != NULL)
			*colon = '\0';
		h += (size_t)snprintf(host + h, h < hsize ? hsize - h : 0, "%s%s", i ? "," : "",
		    buf[0] == '[' ? buf + 1 : buf);
		if (buf[0] == '[' && h > 0 && h <= hsize && host[h - 1] == ']')
			host[--h] = '\0';
		util_addr_format((const struct sockaddr *)&t->addrs[i].ss, buf, sizeof(buf));
		colon = strrchr(buf, ':');
		*colon = '\0';
		a += (size_t)snprintf(addr + a, a < asize ? asize - a : 0, "%s%s", i ? "," : "",
		    buf[0] == '[' ? buf + 1 : buf);
		if (buf[0] == '[' && a > 0 && a <= asize && addr[a - 1] == ']')
			addr[--a] = '\0';
		o += (size_t)snprintf(port + o, o < psize ? psize - o : 0, "%s%s", i ? "," : "", colon + 1);
	}
}

void
pg_upstream_start(struct pg_session *p)
{
	const struct config_target *t = p->target;
	const char *keys[PG_CONN_PARAMS_MAX], *vals[PG_CONN_PARAMS_MAX];
	char host[1024], addr[1024], port[256], err[512];
	const char *sslmode = t->sslmode ? t->sslmode : (t->ca_file ? "verify-full" : "require");
	int k = 0;

	pg_upstream_hosts(t, host, sizeof(host), addr, sizeof(addr), port, sizeof(port));
#define PG_KV(key, val) do { if ((val) != NULL && *(val) != '\0') { keys[k] = (key); vals[k] = (val); k++; } } while (0)
	PG_KV("host", host);
	PG_KV("hostaddr", addr);
	PG_KV("port", port);
	PG_KV("user", p->pol.login);	/* the role's login, else the target's (pg_policy_session) */
	PG_KV("password", t->password);
	PG_KV("dbname", p->database);
	PG_KV("sslmode", sslmode);
	PG_KV("sslrootcert", t->ca_file);
	PG_KV("target_session_attrs", t->target_session_attrs);
	PG_KV("application_name", p->application_name);
	PG_KV("options", p->options);
	/* The target's own settings file and password file must not leak into the connection. */
	PG_KV("passfile", "/dev/null");
#undef PG_KV
	keys[k] = vals[k] = NULL;
	p->deadline = util_now_mono() + p->s->cfg->connect_timeout;
	p->conn = PQconnectStartParams(keys, vals, 0);
	if (p->conn == NULL || PQstatus(p->conn) == CONNECTION_BAD) {
		pg_fatal(p, PG_SQLSTATE_CONNECTION_FAILURE, "cannot connect to target \"%s\": %s", p->s->target,
		    p->conn ? pg_upstream_error(p, err, sizeof(err)) : "out of memory");
		return;
	}
	/* libpq's protocol: start as if PQconnectPoll had asked to write. */
	pg_upstream_wait(p, EV_WRITE);
}
