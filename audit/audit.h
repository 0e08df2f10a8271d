/*
 * The audit tap: what protocol fronts report about each session, written into the session's
 * encrypted recording (docs/audit.md). A front opens the recording once access is granted
 * (audit_session_open: a refusal means the session must not go on), reports statements and
 * their outcomes, and closes it with the reason the session ended. Every call is cheap: events
 * are appended to an in-memory chunk that a writer thread encrypts and writes off the loop.
 * Without auditor_keys in the configuration recording is off and the calls do nothing.
 */
#ifndef POSTERN_AUDIT_H
#define POSTERN_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct config;
struct session;

enum audit_decision {
	AUDIT_ALLOWED = 0,
	AUDIT_DENIED,
	AUDIT_TERMINATED,
};

/* ---- posternd (main thread) ---- */

/* Load or create the node's signing key in state_dir, start the writer, apply CFG. 0 or -1 with ERR. */
int audit_start(const struct config *cfg, char *err, size_t errlen) __attribute__((warn_unused_result));
/* A reload: new sessions use CFG's settings; the writer's directory, retention and limits follow. */
void audit_configure(const struct config *cfg);
/* Write out what is queued and stop the writer (after the workers are gone). */
void audit_stop(void);
/* One line for `posternctl status`: "on", "off: …" or "unavailable: …". */
const char *audit_status(char *buf, size_t size);

/* ---- protocol fronts (the session's worker) ---- */

/* What a front knows about a session when access is granted, for the recording's header. */
struct audit_session_facts {
	const char *login;		/* the login on the target */
	const char *database;		/* postgres, mysql: database on the target; NULL otherwise */
	const char *role;		/* the role that grants the target */
	const char *const *roles;	/* every role the user holds */
	size_t nroles;
	uint64_t serial;		/* the client certificate's serial */
	time_t not_after;		/* ... and the end of its validity */
	const char *application_name;	/* as the client said, or NULL */
	bool tls;			/* the client spoke TLS */
};

/*
 * Start recording session S (user, target and client are set in S). 0 when recording (or
 * recording is off); -1 when the session must be refused: REASON then says why, ready for
 * the client ("recording is unavailable: …; sessions are refused until it is fixed").
 */
int audit_session_open(struct session *s, const struct audit_session_facts *facts, char *reason, size_t rlen)
	__attribute__((warn_unused_result));
/* The session ended with REASON (the sentence its log line has). Writes the end event, closes. */
void audit_session_close(struct session *s, const char *reason);

/* Statement SEQ of session S (KIND "query", "parse", "execute") was decided. */
void audit_statement(const struct session *s, uint64_t seq, const char *kind, const char *text, size_t len,
    enum audit_decision decision, const char *reason);
/* Statement SEQ finished: TAG (a CommandComplete tag, e.g. "SELECT 3") or SQLSTATE when it failed. */
void audit_outcome(const struct session *s, uint64_t seq, const char *tag, const char *sqlstate);

/* Raw bytes of the session (enum audit_event_type: AUDIT_EV_UP / _DOWN, _OUTPUT / _INPUT for a terminal). */
void audit_data(const struct session *s, uint8_t type, const void *buf, size_t len);
/* A terminal's size changed (SSH). */
void audit_window(const struct session *s, unsigned cols, unsigned rows);
/* Something went wrong in the session that the client saw (not a statement's error). */
void audit_error(const struct session *s, const char *what);

#endif
