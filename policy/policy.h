/*
 * The policy hooks protocol fronts call: on_connect once a user is authorised for a target,
 * on_query for every statement (PostgreSQL Query and Parse; MySQL later), on_command for SSH.
 * Each returns a verdict and, for deny and terminate, a reason for the user. A policy that
 * fails (error, instruction budget, memory cap) denies: fail closed.
 *
 * Calls run on the session's worker thread; each worker has its own Lua states.
 */
#ifndef POSTERN_POLICY_H
#define POSTERN_POLICY_H

#include <stdbool.h>
#include <stddef.h>

enum policy_verdict {
	POLICY_ALLOW = 0,
	POLICY_DENY,		/* refuse this statement or command; the session goes on */
	POLICY_TERMINATE,	/* end the session */
};

#define POLICY_REASON_MAX	256

struct policy_session {
	const char *id;			/* session id, 16 hex digits */
	const char *user;
	const char *target;
	const char *protocol;		/* "postgres", "mysql", "ssh", "tcp" */
	const char *login;		/* target login */
	const char *client_addr;
	double started;			/* wall clock */
	const char *const *roles;	/* the user's roles */
	size_t nroles;
	const char *policy_file;	/* from the granting role; NULL: allow-all */
	const char *policy_source;	/* its text as loaded with the configuration */
	size_t policy_len;
	long config_generation;		/* policies reload when this changes */
	long step_limit;		/* Lua instructions per call (policy_instructions) */
	size_t mem_limit;		/* bytes per policy state (policy_memory) */
};

/* An SSH request (the SSH front calls on_command with it). */
struct policy_command {
	const char *line;		/* exec: the command line; NULL for a shell */
	const char *subsystem;		/* "sftp", …; NULL otherwise */
	const char *forward_host;	/* direct-tcpip: destination host; NULL otherwise */
	int forward_port;
};

struct policy_query {
	const char *text;		/* the statement text as sent (not NUL-terminated) */
	size_t len;			/* bytes of TEXT given to Lua as q.text (bounded by max_statement) */
	size_t full_len;		/* bytes of the whole statement at TEXT: what the classifier reads */
	bool truncated;			/* the statement was longer than LEN */
	bool prepared;			/* from a Parse (extended protocol), not a simple Query */
	bool mysql;			/* MySQL dialect (else PostgreSQL) */
	unsigned sql_modes;		/* SQL_MODE_… of the session, as the server reports them */
};

/* on_connect(s): may this session start? */
enum policy_verdict policy_on_connect(const struct policy_session *s, char *reason, size_t rlen);
/* on_query(s, q): may this statement run? */
enum policy_verdict policy_on_query(const struct policy_session *s, const struct policy_query *q,
    char *reason, size_t rlen);
/* on_command(s, c): may this SSH request run? */
enum policy_verdict policy_on_command(const struct policy_session *s, const struct policy_command *c,
    char *reason, size_t rlen);
/* Free this thread's policy states (a worker thread calls it as it ends). */
void policy_thread_end(void);
/* Forget a session's per-session state (s.state). */
void policy_session_end(const struct policy_session *s);

#endif
