/*
 * postern connect: one process, one libevent loop, a listener on loopback and any number of
 * connections through it.
 *
 * For a PostgreSQL target each local connection goes: read the tool's startup packet (an
 * SSLRequest or GSSENCRequest gets 'N': the hop on loopback is plaintext), connect to the
 * relay's PostgreSQL front, send it an SSLRequest, do TLS with the session's certificate
 * (verify-full against the relay's CA and host), send the startup packet with the target as
 * the database, then copy bytes both ways. For a tcp target it is TLS to the target's listener
 * at once, then bytes. The credentials are read again for every connection, so a new postern
 * login takes effect without a restart; expired ones get the tool a FATAL that says to run
 * postern login (PostgreSQL) or a closed connection (tcp), and a line on stderr.
 *
 * Only the user who runs postern connect may use it: a loopback port is open to every local
 * account, so each connection's owner is looked up in the kernel's socket table and anyone
 * else is turned away. Each side's buffer is bounded: a side is not read while the other has
 * CONNECT_BUFFER_MAX bytes waiting, and is read again when that falls to half.
 */
#include "client/connect.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "client/launch.h"
#include "client/login.h"

#define CONNECT_BIND_DEFAULT	"127.0.0.1"
#define CONNECT_BUFFER_MAX	(256u << 10)	/* bytes waiting for one side before the other is not read */
#define CONNECT_TIMEOUT_SEC	15		/* the local startup packet; the relay's connect and TLS */
#define CONNECT_DRAIN_SEC	15		/* the last bytes to a side after the other has gone */
#define CONNECT_FIRST_MAX	(16u << 10)	/* the relay's first reply is read for the log up to this */
#define CONNECT_ERR_MAX		1024
#define CONNECT_PROC_NET	"/proc/net"
#define CONNECT_PROTO_PG	"postgres"
#define CONNECT_PROTO_TCP	"tcp"

enum connect_state {
	CONNECT_STATE_STARTUP,		/* postgres: reading the tool's startup packet */
	CONNECT_STATE_DIALING,		/* TCP connect to the relay */
	CONNECT_STATE_SSLREQ,		/* postgres: SSLRequest sent, waiting for the relay's answer */
	CONNECT_STATE_TLS,		/* TLS handshake with the relay */
	CONNECT_STATE_PIPE,		/* bytes both ways */
	CONNECT_STATE_DRAIN,		/* one side has gone: its last bytes go to the other, then close */
	CONNECT_STATE_CLOSED,		/* transports freed; the memory goes one loop later */
};

struct connect_run;

struct connect_conn {			/* one local connection and its way to the relay */
	struct connect_run *run;
	struct connect_conn *prev, *next;	/* run->conns */
	unsigned long id;		/* 1, 2, …: for messages */
	enum connect_state state;
	struct bufferevent *local;	/* the tool's socket, plaintext on loopback */
	struct bufferevent *relay;	/* plain while dialing and asking for TLS, then OpenSSL's */
	int relay_fd;			/* the relay socket while relay is plain (we close it) */
	const struct addrinfo *ai;	/* the relay address being tried */
	SSL *ssl;			/* made with this connection's credentials; owned until TLS starts */
	uint8_t *startup;		/* postgres: the packet for the relay once TLS is up */
	size_t startup_len;
	bool first_seen;		/* postgres: the relay's first reply has been looked at */
	bool cancel;			/* postgres: a CancelRequest, not a session */
	char peer[64];			/* the tool's address, for messages */
	char refuse[160];		/* postgres: why this tool may not go on, said once its startup is in */
};

struct connect_run {			/* one postern connect */
	struct event_base *base;
	struct evconnlistener *listener;
	struct event *sigint, *sigterm;
	struct addrinfo *relay;		/* where the relay serves the target, resolved once */
	struct target target;
	bool postgres;			/* else a tcp target */
	char spec[TARGETS_NAME_MAX + 256];	/* TARGET or TARGET/DATABASE, as the user wrote it */
	char user[CREDS_USER_MAX];
	char url_host[HTTPS_HOST_MAX];	/* the relay's name, checked in its certificate */
	bool url_is_ip;
	char relay_text[HTTPS_HOST_MAX + 16];	/* "host:port" for messages */
	char listen_host[INET6_ADDRSTRLEN];	/* where we listen, numeric */
	unsigned listen_port;
	char listen_text[80];		/* "127.0.0.1:N" or "[::1]:N" */
	unsigned long next_id;
	struct connect_conn *conns;	/* live connections, to close them on Ctrl-C */
	size_t served;			/* connections accepted */
};

struct connect_opts {			/* postern connect's arguments */
	const char *spec;
	const char *bind;
	long port;			/* 0: any free one */
};

/* ---- pure helpers (unit-tested) ---- */

/* Append NAME=VALUE (C strings) to the packet being built at OUT[*O]; false when it does not fit. */
static bool
connect_put_param(uint8_t *out, size_t cap, size_t *o, const char *name, size_t nlen, const char *value,
    size_t vlen)
{
	if (*o + nlen + vlen + 2 > cap)
		return false;
	memcpy(out + *o, name, nlen);
	out[*o + nlen] = '\0';
	memcpy(out + *o + nlen + 1, value, vlen);
	out[*o + nlen + 1 + vlen] = '\0';
	*o += nlen + vlen + 2;
	return true;
}

size_t
connect_pg_startup_rewrite(const struct pg_startup *st, const char *target, const char *dbname, const char *user,
    uint8_t *out, size_t cap)
{
	size_t o = 8, tlen = strlen(target);
	bool have_db = false, have_user = false;

	if (st->kind != PG_STARTUP_NORMAL || cap < 9 || cap > PG_STARTUP_MAX)
		return 0;
	for (size_t i = 0; i < st->nparams; i++) {
		const struct pg_param *p = &st->params[i];
		const char *name = (const char *)p->name.ptr, *value = (const char *)p->value.ptr;
		size_t vlen = p->value.len;

		if (p->name.len == 8 && memcmp(name, "database", 8) == 0) {
			have_db = true;
			/* The tool may pick another database of the same target, never another target. */
			if (!(vlen > tlen + 1 && memcmp(value, target, tlen) == 0 && value[tlen] == '/')) {
				value = dbname;
				vlen = strlen(dbname);
			}
		} else if (p->name.len == 4 && memcmp(name, "user", 4) == 0) {
			if (vlen == 0)
				continue;	/* put ours below */
			have_user = true;
		}
		if (!connect_put_param(out, cap, &o, name, p->name.len, value, vlen))
			return 0;
	}
	if ((!have_db && !connect_put_param(out, cap, &o, "database", 8, dbname, strlen(dbname))) ||
	    (!have_user && !connect_put_param(out, cap, &o, "user", 4, user, strlen(user))) || o + 1 > cap)
		return 0;
	out[o++] = '\0';
	out[0] = (uint8_t)(o >> 24);
	out[1] = (uint8_t)(o >> 16);
	out[2] = (uint8_t)(o >> 8);
	out[3] = (uint8_t)o;
	out[4] = (uint8_t)(st->protocol >> 24);
	out[5] = (uint8_t)(st->protocol >> 16);
	out[6] = (uint8_t)(st->protocol >> 8);
	out[7] = (uint8_t)st->protocol;
	return o;
}

bool
connect_is_loopback(const char *text)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, text, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, text, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

/*
 * SA as the kernel writes it in /proc/net/tcp or tcp6: each 32-bit word of the address as the
 * host-order number of its network-order bytes, in hex, then ":" and the port. AS_V6 writes an
 * IPv4 address in its IPv4-mapped IPv6 form (for tcp6). 0, or -1 for another family.
 */
static int
connect_proc_addr(const struct sockaddr *sa, bool as_v6, char *out, size_t outlen)
{
	uint32_t w[4];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		if (!as_v6) {
			memcpy(&w[0], &in->sin_addr, 4);
			snprintf(out, outlen, "%08X:%04X", w[0], ntohs(in->sin_port));
			return 0;
		}
		{
			struct in6_addr m;

			memset(&m, 0, sizeof(m));
			m.s6_addr[10] = m.s6_addr[11] = 0xff;
			memcpy(&m.s6_addr[12], &in->sin_addr, 4);
			memcpy(w, &m, sizeof(w));
		}
		snprintf(out, outlen, "%08X%08X%08X%08X:%04X", w[0], w[1], w[2], w[3], ntohs(in->sin_port));
		return 0;
	}
	if (sa->sa_family == AF_INET6 && as_v6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		memcpy(w, &in6->sin6_addr, sizeof(w));
		snprintf(out, outlen, "%08X%08X%08X%08X:%04X", w[0], w[1], w[2], w[3], ntohs(in6->sin6_port));
		return 0;
	}
	return -1;
}

/* The owner of the socket from PEER to LOCAL in the table FILE; 0 with *UID, else -1. */
static int
connect_proc_lookup(const char *file, const struct sockaddr *peer, const struct sockaddr *local, bool v6,
    uid_t *uid)
{
	char want_local[64], want_rem[64], line[512], a[64], b[64];
	FILE *f;
	int r = -1;

	if (connect_proc_addr(peer, v6, want_local, sizeof(want_local)) != 0 ||
	    connect_proc_addr(local, v6, want_rem, sizeof(want_rem)) != 0 || (f = fopen(file, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned int u;

		/* "sl: local rem st tx:rx tr:when retrnsmt uid …"; the header line does not scan. */
		if (sscanf(line, " %*u: %63s %63s %*x %*s %*s %*s %u", a, b, &u) != 3)
			continue;
		if (strcasecmp(a, want_local) == 0 && strcasecmp(b, want_rem) == 0) {
			*uid = (uid_t)u;
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}

int
connect_peer_uid(const char *proc_dir, const struct sockaddr *peer, const struct sockaddr *local, uid_t *uid)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/tcp", proc_dir);
	if (peer->sa_family == AF_INET && connect_proc_lookup(path, peer, local, false, uid) == 0)
		return 0;
	/* An IPv6 socket may reach an IPv4 listener as ::ffff:127.0.0.1; the table is tcp6 then. */
	snprintf(path, sizeof(path), "%s/tcp6", proc_dir);
	return connect_proc_lookup(path, peer, local, true, uid);
}

/* ---- connections ---- */

static void connect_local_read(struct bufferevent *bev, void *arg);
static void connect_local_write(struct bufferevent *bev, void *arg);
static void connect_local_event(struct bufferevent *bev, short what, void *arg);
static void connect_relay_read(struct bufferevent *bev, void *arg);
static void connect_relay_write(struct bufferevent *bev, void *arg);
static void connect_relay_event(struct bufferevent *bev, short what, void *arg);
static void connect_dial(struct connect_conn *cn);

static void
connect_free_later(evutil_socket_t fd, short what, void *arg)
{
	free(arg);
}

/* Free CN's transports now and its memory one loop later: callers up the stack may still look
 * at cn->state (CLOSED) on their way out. */
static void
connect_close(struct connect_conn *cn)
{
	struct connect_run *run = cn->run;

	if (cn->state == CONNECT_STATE_CLOSED)
		return;
	cn->state = CONNECT_STATE_CLOSED;
	if (cn->local != NULL)
		bufferevent_free(cn->local);
	if (cn->relay != NULL)
		bufferevent_free(cn->relay);
	if (cn->relay_fd >= 0)
		close(cn->relay_fd);
	cn->local = cn->relay = NULL;
	cn->relay_fd = -1;
	SSL_free(cn->ssl);
	cn->ssl = NULL;
	if (cn->startup != NULL)
		OPENSSL_cleanse(cn->startup, cn->startup_len);
	free(cn->startup);
	cn->startup = NULL;
	if (cn->prev != NULL)
		cn->prev->next = cn->next;
	else
		run->conns = cn->next;
	if (cn->next != NULL)
		cn->next->prev = cn->prev;
	if (event_base_once(run->base, -1, EV_TIMEOUT, connect_free_later, cn, NULL) != 0)
		free(cn);
}

/*
 * End CN with MESSAGE: on stderr, and for a PostgreSQL tool that has not heard from the relay
 * yet, as a FATAL ErrorResponse with SQLSTATE, sent before the local side closes.
 */
__attribute__((format(printf, 3, 4)))
static void
connect_fail(struct connect_conn *cn, const char *sqlstate, const char *fmt, ...)
{
	uint8_t msg[CONNECT_ERR_MAX + 64];
	char text[CONNECT_ERR_MAX], full[CONNECT_ERR_MAX + 16];
	size_t n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	home_say("connection %lu from %s: %s", cn->id, cn->peer, text);
	if (cn->local == NULL || !cn->run->postgres || cn->first_seen || cn->cancel) {
		connect_close(cn);
		return;
	}
	snprintf(full, sizeof(full), "postern: %s", text);
	if ((n = pg_build_error(msg, sizeof(msg), "FATAL", sqlstate, full, NULL, NULL)) == 0 ||
	    bufferevent_write(cn->local, msg, n) != 0) {
		connect_close(cn);
		return;
	}
	/* Nothing more from either side: the error goes out, then the local side closes. */
	if (cn->relay != NULL)
		bufferevent_free(cn->relay);
	if (cn->relay_fd >= 0)
		close(cn->relay_fd);
	cn->relay = NULL;
	cn->relay_fd = -1;
	cn->state = CONNECT_STATE_DRAIN;
	bufferevent_disable(cn->local, EV_READ);
	bufferevent_setwatermark(cn->local, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(cn->local, NULL, &(struct timeval){ .tv_sec = CONNECT_DRAIN_SEC });
	bufferevent_enable(cn->local, EV_WRITE);
}

/* An SSL for the relay with the current credentials (read again now). 0, or the exit status of
 * the reason (4: not logged in) with ERR. */
static int
connect_ssl_new(struct connect_conn *cn, char *err, size_t errlen)
{
	struct connect_run *run = cn->run;
	SSL_CTX *ctx = NULL;
	BIO *cb = NULL, *kb = NULL, *ab = NULL;
	X509 *cert = NULL, *ca;
	EVP_PKEY *key = NULL;
	struct creds c;
	int r;

	if ((r = creds_load(&c, time(NULL), err, errlen)) != 0)
		goto out;
	r = POSTERN_EXIT_ERROR;
	if (strcmp(c.user, run->user) != 0 || strcmp(c.url.host, run->url_host) != 0) {
		snprintf(err, errlen, "you logged in as %s at %s since postern connect started; start it again", c.user,
		    c.url.text);
		goto out;
	}
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    (cb = BIO_new_mem_buf(c.cert_pem, -1)) == NULL || (kb = BIO_new_mem_buf(c.key_pem, -1)) == NULL ||
	    (ab = BIO_new_mem_buf(c.ca_pem, -1)) == NULL) {
		snprintf(err, errlen, "cannot set up TLS (out of memory)");
		goto out;
	}
	while ((ca = PEM_read_bio_X509(ab, NULL, NULL, NULL)) != NULL) {
		(void)X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca);
		X509_free(ca);
	}
	ERR_clear_error();
	if ((cert = PEM_read_bio_X509(cb, NULL, NULL, NULL)) == NULL ||
	    (key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL)) == NULL ||
	    SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "this session's certificate or key cannot be used; run postern login");
		goto out;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((cn->ssl = SSL_new(ctx)) == NULL ||
	    (!run->url_is_ip && SSL_set_tlsext_host_name(cn->ssl, run->url_host) != 1) ||
	    (run->url_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(cn->ssl), run->url_host)
	    : SSL_set1_host(cn->ssl, run->url_host)) != 1) {
		snprintf(err, errlen, "cannot set up TLS for %s", run->url_host);
		goto out;
	}
	r = 0;
out:
	if (r != 0) {
		SSL_free(cn->ssl);
		cn->ssl = NULL;
	}
	ERR_clear_error();
	EVP_PKEY_free(key);
	X509_free(cert);
	BIO_free(ab);
	BIO_free(kb);
	BIO_free(cb);
	SSL_CTX_free(ctx);	/* cn->ssl keeps its own reference */
	creds_free(&c);
	return r;
}

/* The tool's whole startup packet is in; go on to the relay, or end with the reason. */
static void
connect_pg_startup_done(struct connect_conn *cn, const uint8_t *buf, size_t len, const struct pg_startup *st)
{
	struct connect_run *run = cn->run;
	uint8_t packet[PG_STARTUP_MAX];
	char err[CONNECT_ERR_MAX];
	size_t n = len;
	int r;

	cn->cancel = st->kind == PG_STARTUP_CANCEL;
	if (cn->refuse[0] != '\0') {
		connect_fail(cn, PG_SQLSTATE_INVALID_AUTHORIZATION, "%s", cn->refuse);
		return;
	}
	if ((r = connect_ssl_new(cn, err, sizeof(err))) != 0) {
		connect_fail(cn, PG_SQLSTATE_INVALID_AUTHORIZATION, "%s%s", err,
		    r == POSTERN_EXIT_NOT_LOGGED_IN ? ", then connect again" : "");
		return;
	}
	if (!cn->cancel) {
		n = connect_pg_startup_rewrite(st, run->target.name, run->spec, run->user, packet, sizeof(packet));
		if (n == 0) {
			connect_fail(cn, PG_SQLSTATE_PROTOCOL_VIOLATION, "the startup packet is too large with the target "
			    "added; send fewer or shorter parameters");
			return;
		}
		buf = packet;
	}
	if ((cn->startup = malloc(n)) == NULL) {
		connect_fail(cn, PG_SQLSTATE_CONNECTION_FAILURE, "out of memory");
		return;
	}
	memcpy(cn->startup, buf, n);
	cn->startup_len = n;
	/* The tool waits for the relay now: anything it sends early stays queued until then. */
	bufferevent_disable(cn->local, EV_READ);
	bufferevent_set_timeouts(cn->local, NULL, NULL);
	connect_dial(cn);
}

/* Read the tool's startup packets; answer requests for encryption with 'N'. */
static void
connect_pg_startup(struct connect_conn *cn)
{
	struct evbuffer *in = bufferevent_get_input(cn->local);
	uint8_t buf[PG_STARTUP_MAX];
	struct pg_startup st;
	char err[256];
	uint32_t len;

	while (cn->state == CONNECT_STATE_STARTUP) {
		if (evbuffer_copyout(in, buf, 4) < 4)
			return;
		if (pg_startup_length(buf, 4, &len) != 0 || len < PG_STARTUP_MIN || len > PG_STARTUP_MAX) {
			connect_fail(cn, PG_SQLSTATE_PROTOCOL_VIOLATION, "invalid startup packet length; is this a "
			    "PostgreSQL client?");
			return;
		}
		if (evbuffer_get_length(in) < len)
			return;
		if (evbuffer_remove(in, buf, len) != (int)len) {
			connect_fail(cn, PG_SQLSTATE_PROTOCOL_VIOLATION, "cannot read the startup packet");
			return;
		}
		if (pg_startup_parse(buf, len, &st, err, sizeof(err)) != 0) {
			connect_fail(cn, PG_SQLSTATE_PROTOCOL_VIOLATION, "%s", err);
			return;
		}
		switch (st.kind) {
		case PG_STARTUP_SSL:
		case PG_STARTUP_GSSENC:
			/* Plaintext on loopback; the launcher does the TLS that matters. */
			if (bufferevent_write(cn->local, (char[]){ PG_ENCRYPTION_REJECT }, 1) != 0) {
				connect_close(cn);
				return;
			}
			break;
		case PG_STARTUP_CANCEL:
		case PG_STARTUP_NORMAL:
			connect_pg_startup_done(cn, buf, len, &st);
			return;
		}
	}
}

/* Say, once, what the relay answered a PostgreSQL startup when it was an error. */
static void
connect_pg_first_reply(struct connect_conn *cn)
{
	struct evbuffer *in = bufferevent_get_input(cn->relay);
	uint8_t hdr[PG_HEADER_LEN], *msg;
	char sqlstate[PG_SQLSTATE_LEN + 1] = "", severity[PG_SEVERITY_MAX] = "";
	struct slice text = { NULL, 0 };
	uint8_t type;
	uint32_t length;
	int h;

	if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
		return;
	h = pg_msg_header(hdr, sizeof(hdr), CONNECT_FIRST_MAX, &type, &length, NULL, 0);
	if (h != 0 || type != PG_MSG_ERROR) {
		cn->first_seen = true;
		return;
	}
	if (evbuffer_get_length(in) < (size_t)length + 1)
		return;
	cn->first_seen = true;
	if ((msg = evbuffer_pullup(in, (ev_ssize_t)length + 1)) == NULL ||
	    pg_parse_error_fields((struct slice){ msg + PG_HEADER_LEN, length - 4 }, sqlstate, &text, severity) != 0)
		return;
	if (strcmp(sqlstate, PG_SQLSTATE_CONNECTION_FAILURE) == 0)
		home_say("connection %lu from %s: target %s is down: %.*s", cn->id, cn->peer, cn->run->target.name,
		    (int)text.len, (const char *)text.ptr);
	else
		home_say("connection %lu from %s: the relay refused it: %.*s (SQLSTATE %s)", cn->id, cn->peer,
		    (int)text.len, (const char *)text.ptr, sqlstate);
}

/* Move what FROM has read to TO, and stop reading FROM while TO has too much waiting. */
static void
connect_forward(struct connect_conn *cn, struct bufferevent *from, struct bufferevent *to)
{
	struct evbuffer *out = bufferevent_get_output(to);

	if (evbuffer_add_buffer(out, bufferevent_get_input(from)) != 0) {
		connect_fail(cn, PG_SQLSTATE_CONNECTION_FAILURE, "out of memory");
		return;
	}
	if (evbuffer_get_length(out) >= CONNECT_BUFFER_MAX)
		bufferevent_disable(from, EV_READ);
}

/* FROM has gone (EOF or error): its last bytes are already with TO; close once TO has them. */
static void
connect_side_gone(struct connect_conn *cn, struct bufferevent *from)
{
	struct bufferevent *to = from == cn->local ? cn->relay : cn->local;

	if (to == NULL || evbuffer_get_length(bufferevent_get_output(to)) == 0) {
		connect_close(cn);
		return;
	}
	bufferevent_free(from);
	if (from == cn->local)
		cn->local = NULL;
	else
		cn->relay = NULL;
	cn->state = CONNECT_STATE_DRAIN;
	bufferevent_disable(to, EV_READ);
	bufferevent_setwatermark(to, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(to, NULL, &(struct timeval){ .tv_sec = CONNECT_DRAIN_SEC });
}

/* TO's waiting bytes fell to its low-water mark: read its peer again, or finish a drain. */
static void
connect_drained(struct connect_conn *cn, struct bufferevent *to)
{
	struct bufferevent *from = to == cn->local ? cn->relay : cn->local;

	if (cn->state == CONNECT_STATE_DRAIN) {
		if (evbuffer_get_length(bufferevent_get_output(to)) == 0)
			connect_close(cn);
		return;
	}
	if (cn->state == CONNECT_STATE_PIPE && from != NULL)
		bufferevent_enable(from, EV_READ);
}

static void
connect_local_read(struct bufferevent *bev, void *arg)
{
	struct connect_conn *cn = arg;

	if (cn->state == CONNECT_STATE_STARTUP)
		connect_pg_startup(cn);
	else if (cn->state == CONNECT_STATE_PIPE)
		connect_forward(cn, cn->local, cn->relay);
}

static void
connect_local_write(struct bufferevent *bev, void *arg)
{
	connect_drained(arg, bev);
}

static void
connect_local_event(struct bufferevent *bev, short what, void *arg)
{
	struct connect_conn *cn = arg;

	if (cn->state == CONNECT_STATE_PIPE && (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) {
		connect_side_gone(cn, cn->local);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && cn->state == CONNECT_STATE_STARTUP) {
		connect_fail(cn, PG_SQLSTATE_PROTOCOL_VIOLATION, "no startup packet within %d seconds",
		    CONNECT_TIMEOUT_SEC);
		return;
	}
	/* The tool left before the relay answered, or while its last bytes were on their way. */
	connect_close(cn);
}

/* Why the TLS handshake with the relay (or its first read) failed, for the user, into ERR, from
 * SSL's verify result and the OpenSSL error E; the exit status it stands for (4 when the relay
 * refused the certificate). */
static int
connect_tls_error(struct connect_conn *cn, SSL *ssl, unsigned long e, char *err, size_t errlen)
{
	struct connect_run *run = cn->run;
	long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
	const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;

	if (v != X509_V_OK) {
		snprintf(err, errlen, "the relay at %s has a certificate that does not verify against your relay CA (%s); "
		    "someone may be intercepting, or this is another relay: ask your admin", run->relay_text,
		    X509_verify_cert_error_string(v));
		return POSTERN_EXIT_UNREACHABLE;
	}
	if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL) {
		switch (ERR_GET_REASON(e)) {
		case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
		case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
		case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
			snprintf(err, errlen, "the relay refused this session's certificate (%s); run postern login, then "
			    "connect again", why ? why : "TLS alert");
			return POSTERN_EXIT_NOT_LOGGED_IN;
		default:
			break;
		}
	}
	snprintf(err, errlen, "the TLS connection to the relay at %s failed (%s); check that the relay is up",
	    run->relay_text, why ? why : EVUTIL_SOCKET_ERROR() ? evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR())
	    : "connection closed");
	return POSTERN_EXIT_UNREACHABLE;
}

/* TLS with the relay is up: send the startup packet (postgres) and start copying. */
static void
connect_pipe(struct connect_conn *cn)
{
	cn->state = CONNECT_STATE_PIPE;
	bufferevent_set_timeouts(cn->relay, NULL, NULL);
	bufferevent_setwatermark(cn->relay, EV_WRITE, CONNECT_BUFFER_MAX / 2, 0);
	bufferevent_setwatermark(cn->local, EV_WRITE, CONNECT_BUFFER_MAX / 2, 0);
	if (cn->startup != NULL) {
		if (bufferevent_write(cn->relay, cn->startup, cn->startup_len) != 0) {
			connect_fail(cn, PG_SQLSTATE_CONNECTION_FAILURE, "out of memory");
			return;
		}
		OPENSSL_cleanse(cn->startup, cn->startup_len);
		free(cn->startup);
		cn->startup = NULL;
	}
	cn->first_seen = !cn->run->postgres || cn->cancel;
	bufferevent_enable(cn->relay, EV_READ | EV_WRITE);
	bufferevent_enable(cn->local, EV_READ | EV_WRITE);
	/* Whatever the tool sent while we were connecting goes now. */
	if (evbuffer_get_length(bufferevent_get_input(cn->local)) > 0)
		connect_forward(cn, cn->local, cn->relay);
}

/* The plain relay socket becomes TLS, with the SSL made for this connection. */
static void
connect_start_tls(struct connect_conn *cn)
{
	struct connect_run *run = cn->run;
	struct bufferevent *bev;

	bufferevent_free(cn->relay);	/* the socket stays open: it was made without CLOSE_ON_FREE */
	cn->relay = NULL;
	bev = bufferevent_openssl_socket_new(run->base, cn->relay_fd, cn->ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		connect_fail(cn, PG_SQLSTATE_CONNECTION_FAILURE, "cannot start TLS with the relay (out of memory)");
		return;
	}
	cn->relay = bev;
	cn->relay_fd = -1;	/* transferred, with cn->ssl */
	cn->ssl = NULL;
	/* A relay that closes without close_notify has still said all it had to say. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	cn->state = CONNECT_STATE_TLS;
	bufferevent_setcb(bev, connect_relay_read, connect_relay_write, connect_relay_event, cn);
	bufferevent_set_timeouts(bev, &(struct timeval){ .tv_sec = CONNECT_TIMEOUT_SEC },
	    &(struct timeval){ .tv_sec = CONNECT_TIMEOUT_SEC });
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void
connect_relay_read(struct bufferevent *bev, void *arg)
{
	struct connect_conn *cn = arg;
	char answer;

	switch (cn->state) {
	case CONNECT_STATE_SSLREQ:
		if (bufferevent_read(bev, &answer, 1) != 1)
			return;
		if (answer != PG_SSL_ACCEPT || evbuffer_get_length(bufferevent_get_input(bev)) != 0) {
			connect_fail(cn, PG_SQLSTATE_CONNECTION_FAILURE, "the relay at %s does not offer TLS for PostgreSQL; "
			    "is that port its PostgreSQL front? ask your admin", cn->run->relay_text);
			return;
		}
		connect_start_tls(cn);
		return;
	case CONNECT_STATE_PIPE:
		/* Hold the relay's first reply until it can be read whole (it is bounded). */
		if (!cn->first_seen) {
			connect_pg_first_reply(cn);
			if (!cn->first_seen)
				return;
		}
		connect_forward(cn, cn->relay, cn->local);
		return;
	default:
		return;
	}
}

static void
connect_relay_write(struct bufferevent *bev, void *arg)
{
	connect_drained(arg, bev);
}

static void
connect_relay_event(struct bufferevent *bev, short what, void *arg)
{
	struct connect_conn *cn = arg;
	struct connect_run *run = cn->run;
	char err[CONNECT_ERR_MAX];
	unsigned long e;
	int r;

	switch (cn->state) {
	case CONNECT_STATE_DIALING:
		if (what & BEV_EVENT_CONNECTED) {
			if (!run->postgres) {
				connect_start_tls(cn);
				return;
			}
			cn->state = CONNECT_STATE_SSLREQ;
			if (bufferevent_write(bev, (uint8_t[]){ 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f }, 8) != 0)
				connect_fail(cn, PG_SQLSTATE_CONNECTION_FAILURE, "out of memory");
			return;
		}
		if (!(what & BEV_EVENT_TIMEOUT) && cn->ai->ai_next != NULL) {
			connect_dial(cn);	/* the next address of the relay */
			return;
		}
		connect_fail(cn, PG_SQLSTATE_CONNECTION_FAILURE, "cannot reach the relay at %s: %s; check that it is up and "
		    "your network", run->relay_text, (what & BEV_EVENT_TIMEOUT) ? "timed out" :
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		return;
	case CONNECT_STATE_SSLREQ:
		connect_fail(cn, PG_SQLSTATE_CONNECTION_FAILURE, "the relay at %s %s before answering the SSLRequest",
		    run->relay_text, (what & BEV_EVENT_TIMEOUT) ? "timed out" : "closed the connection");
		return;
	case CONNECT_STATE_TLS:
		if (what & BEV_EVENT_CONNECTED) {
			connect_pipe(cn);
			return;
		}
		if (what & BEV_EVENT_TIMEOUT) {
			connect_fail(cn, PG_SQLSTATE_CONNECTION_FAILURE, "the TLS handshake with the relay at %s timed out",
			    run->relay_text);
			return;
		}
		r = connect_tls_error(cn, bufferevent_openssl_get_ssl(bev), bufferevent_get_openssl_error(bev), err,
		    sizeof(err));
		connect_fail(cn, r == POSTERN_EXIT_NOT_LOGGED_IN ? PG_SQLSTATE_INVALID_AUTHORIZATION :
		    PG_SQLSTATE_CONNECTION_FAILURE, "%s", err);
		return;
	case CONNECT_STATE_PIPE:
		/* TLS 1.3 ends the client's handshake before the server has judged its certificate:
		 * a refusal comes as an alert on the first read. */
		if ((what & BEV_EVENT_ERROR) && (e = bufferevent_get_openssl_error(bev)) != 0 &&
		    (!cn->first_seen || !run->postgres)) {
			r = connect_tls_error(cn, NULL, e, err, sizeof(err));
			if (!cn->first_seen) {
				connect_fail(cn, r == POSTERN_EXIT_NOT_LOGGED_IN ? PG_SQLSTATE_INVALID_AUTHORIZATION :
				    PG_SQLSTATE_CONNECTION_FAILURE, "%s", err);
				return;
			}
			home_say("connection %lu from %s: %s", cn->id, cn->peer, err);
		}
		connect_side_gone(cn, cn->relay);
		return;
	default:
		connect_close(cn);
		return;
	}
}

/* Connect to the relay's next address (the first one the first time). */
static void
connect_dial(struct connect_conn *cn)
{
	struct connect_run *run = cn->run;
	struct timeval tv = { .tv_sec = CONNECT_TIMEOUT_SEC };

	if (cn->relay != NULL)
		bufferevent_free(cn->relay);
	if (cn->relay_fd >= 0)
		close(cn->relay_fd);
	cn->relay = NULL;
	cn->relay_fd = -1;
	cn->ai = cn->ai == NULL ? run->relay : cn->ai->ai_next;
	cn->state = CONNECT_STATE_DIALING;
	if ((cn->relay_fd = socket(cn->ai->ai_family, cn->ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    cn->ai->ai_protocol)) < 0 || (cn->relay = bufferevent_socket_new(run->base, cn->relay_fd, 0)) == NULL) {
		connect_fail(cn, PG_SQLSTATE_CONNECTION_FAILURE, "cannot make a socket: %s", strerror(errno));
		return;
	}
	bufferevent_setcb(cn->relay, connect_relay_read, connect_relay_write, connect_relay_event, cn);
	bufferevent_set_timeouts(cn->relay, &tv, &tv);
	bufferevent_enable(cn->relay, EV_READ | EV_WRITE);
	/* Failures, even immediate ones, are reported through connect_relay_event. */
	(void)bufferevent_socket_connect(cn->relay, cn->ai->ai_addr, (int)cn->ai->ai_addrlen);
}

static void
connect_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct connect_run *run = arg;
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	char host[INET6_ADDRSTRLEN] = "?", port[8] = "?", err[CONNECT_ERR_MAX], refuse[160] = "";
	struct connect_conn *cn;
	uid_t uid = (uid_t)-1;
	int r;

	(void)getnameinfo(sa, (socklen_t)salen, host, sizeof(host), port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
	if (getsockname(fd, (struct sockaddr *)&local, &llen) != 0 ||
	    connect_peer_uid(CONNECT_PROC_NET, sa, (struct sockaddr *)&local, &uid) != 0)
		snprintf(refuse, sizeof(refuse), "refused: cannot tell which local user made this connection");
	else if (uid != getuid() && uid != 0)
		snprintf(refuse, sizeof(refuse), "refused: this connection was made by user id %u, and postern connect "
		    "serves only the programs of user id %u", (unsigned)uid, (unsigned)getuid());
	/* A PostgreSQL tool hears why once its startup packet is in; anything else is just closed. */
	if (refuse[0] != '\0' && !run->postgres) {
		home_say("connection from %s:%s %s", host, port, refuse);
		evutil_closesocket(fd);
		return;
	}
	if ((cn = calloc(1, sizeof(*cn))) == NULL) {
		home_say("refused a connection from %s:%s: out of memory", host, port);
		evutil_closesocket(fd);
		return;
	}
	cn->run = run;
	cn->id = ++run->next_id;
	cn->relay_fd = -1;
	snprintf(cn->peer, sizeof(cn->peer), "%s:%s", host, port);
	snprintf(cn->refuse, sizeof(cn->refuse), "%s", refuse);
	if ((cn->local = bufferevent_socket_new(run->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		home_say("refused a connection from %s: out of memory", cn->peer);
		evutil_closesocket(fd);
		free(cn);
		return;
	}
	if ((cn->next = run->conns) != NULL)
		cn->next->prev = cn;
	run->conns = cn;
	run->served++;
	bufferevent_setcb(cn->local, connect_local_read, connect_local_write, connect_local_event, cn);
	if (run->postgres) {
		cn->state = CONNECT_STATE_STARTUP;
		bufferevent_set_timeouts(cn->local, &(struct timeval){ .tv_sec = CONNECT_TIMEOUT_SEC }, NULL);
		bufferevent_enable(cn->local, EV_READ | EV_WRITE);
		return;
	}
	cn->state = CONNECT_STATE_DIALING;
	if ((r = connect_ssl_new(cn, err, sizeof(err))) != 0) {
		connect_fail(cn, PG_SQLSTATE_INVALID_AUTHORIZATION, "%s%s", err,
		    r == POSTERN_EXIT_NOT_LOGGED_IN ? ", then connect again" : "");
		return;
	}
	connect_dial(cn);
}

static void
connect_signal(evutil_socket_t sig, short what, void *arg)
{
	struct connect_run *run = arg;

	event_base_loopexit(run->base, NULL);
}

/* ---- the command ---- */

static void
connect_usage(FILE *out)
{
	fprintf(out,
	    "usage: postern connect TARGET[/DATABASE] [--port N] [--bind ADDRESS]\n"
	    "\n"
	    "Listen on this machine's loopback for tools that cannot use a client certificate (GUIs,\n"
	    "drivers). They connect to it without credentials; postern carries each connection to the\n"
	    "relay over TLS with your session's certificate. It runs until Ctrl-C.\n"
	    "\n"
	    "  --port N         the local port (default: a free one, printed)\n"
	    "  --bind ADDRESS   the local address: 127.0.0.1 (default) or another loopback address\n"
	    "  -h, --help       this text\n"
	    "\n"
	    "PostgreSQL targets: connect with sslmode=disable (the loopback hop is plaintext, the relay\n"
	    "hop is TLS); the database becomes TARGET (or TARGET/DATABASE). tcp targets: bytes as they are.\n"
	    "Only your own programs may connect: connections made by other local users are refused.\n"
	    "A re-login takes effect for new connections; expired credentials get a clear error.\n"
	    "\n"
	    "Exit status: 0 stopped with Ctrl-C, 1 error, 2 usage, 3 relay unreachable, 4 not logged in,\n"
	    "5 not a target you may reach.\n");
}

static int
connect_parse(int argc, char **argv, struct connect_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->bind = CONNECT_BIND_DEFAULT;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return -1;
		if (strncmp(a, "--port", 6) == 0 && (a[6] == '\0' || a[6] == '=')) {
			char *end;

			if ((v = a[6] == '=' ? a + 7 : (i + 1 < argc ? argv[++i] : NULL)) == NULL) {
				home_say("--port needs a number; see postern connect --help");
				return POSTERN_EXIT_USAGE;
			}
			errno = 0;
			o->port = strtol(v, &end, 10);
			if (errno != 0 || end == v || *end != '\0' || o->port < 0 || o->port > 65535) {
				home_say("--port takes a port number from 1 to 65535 (0: any free port), not \"%s\"", v);
				return POSTERN_EXIT_USAGE;
			}
		} else if (strncmp(a, "--bind", 6) == 0 && (a[6] == '\0' || a[6] == '=')) {
			if ((v = a[6] == '=' ? a + 7 : (i + 1 < argc ? argv[++i] : NULL)) == NULL) {
				home_say("--bind needs an address; see postern connect --help");
				return POSTERN_EXIT_USAGE;
			}
			o->bind = strcmp(v, "localhost") == 0 ? CONNECT_BIND_DEFAULT : v;
		} else if (a[0] == '-') {
			home_say("unknown option %s; see postern connect --help", a);
			return POSTERN_EXIT_USAGE;
		} else if (o->spec == NULL) {
			o->spec = a;
		} else {
			home_say("connect takes one TARGET, got %s and %s; run one postern connect per target", o->spec, a);
			return POSTERN_EXIT_USAGE;
		}
	}
	if (o->spec == NULL) {
		home_say("connect needs a TARGET; see postern connect --help");
		return POSTERN_EXIT_USAGE;
	}
	if (!connect_is_loopback(o->bind)) {
		home_say("postern connect listens on loopback only (127.0.0.1 or ::1), not %s: whoever reaches the port "
		    "would act with your credentials", o->bind);
		return POSTERN_EXIT_USAGE;
	}
	return 0;
}

/* Listen on O's address; the listener, or NULL with the reason said. */
static struct evconnlistener *
connect_listen(struct connect_run *run, const struct connect_opts *o)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	struct evconnlistener *lev;
	bool v6 = strchr(o->bind, ':') != NULL;

	memset(&ss, 0, sizeof(ss));
	if (v6) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)o->port);
		(void)inet_pton(AF_INET6, o->bind, &in6->sin6_addr);
		len = sizeof(*in6);
	} else {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)o->port);
		(void)inet_pton(AF_INET, o->bind, &in->sin_addr);
		len = sizeof(*in);
	}
	lev = evconnlistener_new_bind(run->base, connect_accept, run,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 64, (struct sockaddr *)&ss, (int)len);
	if (lev == NULL) {
		home_say("cannot listen on %s%s%s:%ld: %s%s", v6 ? "[" : "", o->bind, v6 ? "]" : "", o->port,
		    strerror(errno), errno == EADDRINUSE ? "; pick another --port, or leave it out for a free one" : "");
		return NULL;
	}
	len = sizeof(ss);
	if (getsockname(evconnlistener_get_fd(lev), (struct sockaddr *)&ss, &len) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, len, run->listen_host, sizeof(run->listen_host), NULL, 0,
	    NI_NUMERICHOST) != 0) {
		home_say("cannot tell which port the listener got: %s", strerror(errno));
		evconnlistener_free(lev);
		return NULL;
	}
	run->listen_port = ntohs(v6 ? in6->sin6_port : in->sin_port);
	snprintf(run->listen_text, sizeof(run->listen_text), "%s%s%s:%u", v6 ? "[" : "", run->listen_host,
	    v6 ? "]" : "", run->listen_port);
	return lev;
}

/* Resolve where the relay serves run->target; 0, or -1 with the reason said. */
static int
connect_resolve(struct connect_run *run)
{
	struct addrinfo hints;
	int gai;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (run->url_is_ip ? AI_NUMERICHOST : 0);
	if ((gai = getaddrinfo(run->target.host, run->target.port, &hints, &run->relay)) != 0 || run->relay == NULL) {
		home_say("cannot reach the relay at %s: cannot resolve %s (%s); check your network", run->relay_text,
		    run->target.host, gai_strerror(gai));
		return -1;
	}
	return 0;
}

int
connect_main(int argc, char **argv)
{
	struct connect_opts o;
	struct connect_run run;
	struct creds c;
	bool v6;
	int r;

	memset(&run, 0, sizeof(run));
	if ((r = connect_parse(argc, argv, &o)) != 0) {
		if (r < 0) {
			connect_usage(stdout);
			return POSTERN_EXIT_OK;
		}
		return r;
	}
	if ((r = launch_target(o.spec, &c, &run.target)) != 0) {
		creds_free(&c);
		return r;
	}
	run.postgres = strcmp(run.target.protocol, CONNECT_PROTO_PG) == 0;
	snprintf(run.spec, sizeof(run.spec), "%s", o.spec);
	snprintf(run.user, sizeof(run.user), "%s", c.user);
	snprintf(run.url_host, sizeof(run.url_host), "%s", c.url.host);
	run.url_is_ip = c.url.is_ip;
	creds_free(&c);
	v6 = strchr(run.target.host, ':') != NULL;
	snprintf(run.relay_text, sizeof(run.relay_text), "%s%s%s:%s", v6 ? "[" : "", run.target.host, v6 ? "]" : "",
	    run.target.port);
	if (!run.postgres && strcmp(run.target.protocol, CONNECT_PROTO_TCP) != 0) {
		home_say("%s is a %s target; postern connect carries postgres and tcp targets in this version",
		    run.target.name, run.target.protocol);
		return POSTERN_EXIT_USAGE;
	}
	if (!run.postgres && strchr(o.spec, '/') != NULL) {
		home_say("%s is a tcp target: it has no databases to pick with /", run.target.name);
		return POSTERN_EXIT_USAGE;
	}
	r = POSTERN_EXIT_ERROR;
	if ((run.base = event_base_new()) == NULL) {
		home_say("cannot start the event loop (libevent failed)");
		goto out;
	}
	if (connect_resolve(&run) != 0) {
		r = POSTERN_EXIT_UNREACHABLE;
		goto out;
	}
	if ((run.listener = connect_listen(&run, &o)) == NULL)
		goto out;
	if ((run.sigint = evsignal_new(run.base, SIGINT, connect_signal, &run)) == NULL ||
	    (run.sigterm = evsignal_new(run.base, SIGTERM, connect_signal, &run)) == NULL ||
	    event_add(run.sigint, NULL) != 0 || event_add(run.sigterm, NULL) != 0) {
		home_say("cannot catch Ctrl-C (libevent failed)");
		goto out;
	}
	if (run.postgres)
		printf("listening on %s for %s (postgres); connect with: psql 'host=%s port=%u dbname=%s user=%s "
		    "sslmode=disable'\n", run.listen_text, run.target.name, run.listen_host, run.listen_port, run.spec,
		    run.user);
	else
		printf("listening on %s for %s (tcp); point your client at %s\n", run.listen_text, run.target.name,
		    run.listen_text);
	printf("press Ctrl-C to stop\n");
	fflush(stdout);
	if (event_base_dispatch(run.base) != 0) {
		home_say("the event loop failed");
		goto out;
	}
	fprintf(stderr, "postern: stopped listening on %s (%zu connection%s served)\n", run.listen_text, run.served,
	    run.served == 1 ? "" : "s");
	r = POSTERN_EXIT_OK;
out:
	while (run.conns != NULL)
		connect_close(run.conns);
	if (run.listener != NULL)
		evconnlistener_free(run.listener);
	if (run.sigint != NULL)
		event_free(run.sigint);
	if (run.sigterm != NULL)
		event_free(run.sigterm);
	/* Run the loop once more so the closed connections' memory (freed one loop later) goes too. */
	if (run.base != NULL) {
		event_base_loop(run.base, EVLOOP_NONBLOCK);
		event_base_free(run.base);
	}
	if (run.relay != NULL)
		freeaddrinfo(run.relay);
	return r;
}
