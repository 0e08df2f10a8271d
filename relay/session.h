/*
 * The protocol-neutral session and the registry of live sessions. A session belongs to one
 * worker and is only touched on that worker's loop, except for the fields the registry lock
 * protects (listing, kill requests from the admin socket or a signal).
 */
#ifndef POSTERN_SESSION_H
#define POSTERN_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "relay/config.h"

enum session_state {
	SESSION_STATE_HANDSHAKE = 0,	/* talking to the client: TLS, startup, authentication */
	SESSION_STATE_CONNECTING,	/* opening the onward connection */
	SESSION_STATE_ACTIVE,		/* relaying */
	SESSION_STATE_CLOSING,		/* flushing, then gone */
};

struct session;
struct audit_tap;

struct session_ops {
	/* End the session now with REASON (a short, user-facing sentence). Runs on the worker. */
	void (*kill)(struct session *s, const char *reason);
};

struct session {
	uint64_t id;			/* random, unique within this process */
	char idstr[17];			/* id as 16 hex digits */
	enum config_protocol protocol;
	char user[64];			/* "" until authenticated */
	uint64_t serial;		/* the client certificate's; 0 until authenticated */
	char target[64];		/* target name */
	char client_addr[64];		/* "ip:port" of the client */
	double started;			/* wall clock, seconds */
	_Atomic uint64_t bytes_up;	/* client to target */
	_Atomic uint64_t bytes_down;	/* target to client */
	_Atomic int state;		/* enum session_state */
	int worker;			/* index of the owning worker */
	struct event_base *base;	/* the owning worker's loop */
	struct config *cfg;		/* the config in force when the session began (one reference) */
	const struct session_ops *ops;
	void *proto;			/* the protocol's own state */
	struct audit_tap *audit;	/* the session's recording (audit/audit.h); NULL when not recorded */
	bool audit_quiet;		/* its flush timer stopped (nothing moved): bytes restart it */
	struct event *kill_ev;		/* activated by the registry to run ops->kill on the worker */
	const char *kill_reason;	/* static string, set under the registry lock */
	struct session *reg_prev, *reg_next;	/* registry list, under the registry lock */
	bool registered;
};

/*
 * Make a session on BASE (worker index WORKER) for TARGET_NAME with CFG (a reference is
 * taken), registered and in SESSION_STATE_HANDSHAKE. NULL when out of memory.
 */
struct session *session_new(struct event_base *base, int worker, struct config *cfg,
    enum config_protocol protocol, const char *target_name, const struct sockaddr *client,
    const struct session_ops *ops, void *proto);
void session_set_state(struct session *s, enum session_state state);
/* Record who the session belongs to, once authenticated, and the serial of the certificate
 * that said so (under the registry lock). */
void session_set_user(struct session *s, const char *user, uint64_t serial);
const char *session_state_name(enum session_state state);
/* Unregister S now and free it one loop later, when no event of this pass can still name it. */
void session_free(struct session *s);

/* audit/audit.c: restart a quiet recording's flush timer (the session's own worker only). */
void audit_wake(struct session *s);

static inline void
session_count_up(struct session *s, size_t n)
{
	atomic_fetch_add_explicit(&s->bytes_up, n, memory_order_relaxed);
	if (__builtin_expect(s->audit_quiet, 0))
		audit_wake(s);
}

static inline void
session_count_down(struct session *s, size_t n)
{
	atomic_fetch_add_explicit(&s->bytes_down, n, memory_order_relaxed);
	if (__builtin_expect(s->audit_quiet, 0))
		audit_wake(s);
}

/* A copy of a session's public fields, for listings. */
struct session_info {
	char id[17];
	enum config_protocol protocol;
	char user[64];
	uint64_t serial;		/* the client certificate's; 0 before authentication */
	char target[64];
	char client_addr[64];
	double started;
	uint64_t bytes_up, bytes_down;
	enum session_state state;
	int worker;
};

/* Call FN for a copy of every live session, under the registry lock (FN must not block). */
void session_registry_each(void (*fn)(const struct session_info *info, void *arg), void *arg);
size_t session_registry_count(void);
/* Ask the session with id ID (16 hex digits) to end with REASON (static). 0 or -ENOENT. */
int session_registry_kill(const char *id, const char *reason) __attribute__((warn_unused_result));
/* Ask every session for which PRED sets a reason (a static string) to end with it; returns
 * how many were asked. PRED runs under the registry lock and must not block. */
size_t session_registry_kill_if(const char *(*pred)(const struct session_info *info, void *arg), void *arg);
/* Ask every live session to end with REASON (static); returns how many were asked. */
size_t session_registry_kill_all(const char *reason);

#endif
