/*
 * The PostgreSQL session, shared by the files of the front (private to protocols/pg):
 * front.c (startup, TLS, identity), upstream.c (libpq connect), relay.c (message loop and
 * the model of which response answers which request), cancel.c (cancel keys).
 */
#ifndef POSTERN_PG_SESSION_H
#define POSTERN_PG_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "policy/policy.h"
#include "protocols/pg/wire.h"
#include "relay/identity.h"
#include "relay/io.h"
#include "relay/session.h"

enum pg_state {
	PG_STATE_STARTUP = 0,	/* reading the startup packet (plaintext, or again after TLS) */
	PG_STATE_TLS,		/* TLS handshake with the client */
	PG_STATE_PARKED,	/* answered from the parameter cache; the target waits for the first message */
	PG_STATE_CONNECTING,	/* libpq is connecting to the target */
	PG_STATE_RELAY,		/* relaying messages */
	PG_STATE_CLOSING,	/* sending a last error, then gone */
	PG_STATE_CLOSED,	/* ios closed; the memory goes one loop later */
};

/* What one forwarded request expects back (see relay.c). */
struct pg_expect {
	uint8_t kind;		/* the frontend message type: Q, P, B, D, E, C, S, F */
	bool injected;		/* sent by posternd in place of a denied message */
	uint32_t seq;		/* audit statement number (Query, Parse, Execute), 0 otherwise */
};

#define PG_EXPECT_MAX	65536	/* requests in flight; reading the client pauses beyond */

struct pg_session {
	struct session *s;
	struct io *client;
	struct io *upstream;			/* NULL until libpq is connected */
	enum pg_state state;
	const struct config_target *target;	/* lives as long as s->cfg */
	struct identity id;
	bool tls;				/* the client speaks TLS */
	bool gss_refused;			/* a GSSENCRequest was answered 'N' already */
	bool answered;				/* the client had its startup answer from the parameter cache */
	char database[128];			/* database on the target */
	char application_name[64];
	char *options;				/* "-c name=value" for the other startup parameters */
	PGconn *conn;				/* while connecting; kept after only for a plaintext target */
	struct event *conn_ev;			/* libpq connect readiness */
	double deadline;			/* handshake / connect deadline (monotonic) */
	struct event *timer;			/* handshake deadline, idle-in-transaction timeout */
	uint32_t key_pid, key_secret;		/* the BackendKeyData posternd gave the client */
	struct policy_session pol;		/* what policy hooks see */
	const char *roles[16];

	/* Client to target. */
	uint32_t c_left;			/* bytes of the current client message still to forward */
	bool c_drop;				/* ... dropped instead of forwarded */
	uint32_t copy_starts;			/* CopyInResponses from the target */
	uint32_t copy_ends;			/* CopyDone/CopyFail from the client: copy-in lasts while starts > ends */
	/* Target to client. */
	uint32_t u_left;			/* bytes of the current target message still to pass */
	bool u_drop;				/* ... dropped instead of forwarded */
	char txn;				/* last ReadyForQuery status */
	unsigned sql_modes;			/* SQL_MODE_… from the target's ParameterStatus */
	/* Requests in flight, oldest first: a ring. */
	struct pg_expect *expect;
	uint32_t e_head, e_count, e_cap;
	bool skipping;				/* an error ended the extended batch: entries until Sync get no reply */
	char deny_reason[POLICY_REASON_MAX];	/* for the error that replaces an injected one */
	uint64_t statements, denied;		/* counters for the session-end log line */
	uint32_t seq;				/* last audit statement number */
	char outcome_tag[64];			/* last CommandComplete tag of the head request */
	char outcome_state[6];			/* SQLSTATE of its error, "" if none */
};

/* front.c. After pg_fatal or pg_close the session may be CLOSED: callers check p->state. */
void pg_fatal(struct pg_session *p, const char *sqlstate, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void pg_close(struct pg_session *p, const char *reason);

/* upstream.c */
void pg_upstream_start(struct pg_session *p);
void pg_upstream_free(struct pg_session *p);
/* Connect = "lazy": the cached ParameterStatus messages for P (into OUT), or 0 on a miss. */
size_t pg_param_cached(struct pg_session *p, uint8_t *out, size_t cap);

/* relay.c */
void pg_relay_start(struct pg_session *p);
void pg_relay_client_read(struct pg_session *p);
void pg_relay_upstream_read(struct pg_session *p);
extern const struct io_callbacks pg_upstream_cb;
void pg_note_parameter(struct pg_session *p, struct slice name, struct slice value);

/* cancel.c */
/* Give P its key (once) and, when P->conn is set, tie it to the target's backend; true if a
 * cancel came for it while the target was not connected yet (send it: pg_cancel_pending_send). */
bool pg_cancel_register(struct pg_session *p);
void pg_cancel_pending_send(struct pg_session *p);
void pg_cancel_unregister(struct pg_session *p);
/* A CancelRequest for (PID, SECRET) arrived from CLIENT_ADDR: forward it, off the loop. */
void pg_cancel_request(uint32_t pid, uint32_t secret, const char *client_addr);

#endif
