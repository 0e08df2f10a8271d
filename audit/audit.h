/*
 * The audit tap: what protocol fronts report about each session for the recording (statements
 * with their decision, then their outcome). This first version writes debug log lines without
 * statement text (which may hold secrets); the encrypted recordings of docs/audit.md replace
 * it behind the same calls.
 */
#ifndef POSTERN_AUDIT_H
#define POSTERN_AUDIT_H

#include <stddef.h>
#include <stdint.h>

struct session;

enum audit_decision {
	AUDIT_ALLOWED = 0,
	AUDIT_DENIED,
	AUDIT_TERMINATED,
};

/* Statement SEQ of session S (KIND "query", "parse", "execute") was decided. */
void audit_statement(const struct session *s, uint64_t seq, const char *kind, const char *text, size_t len,
    enum audit_decision decision, const char *reason);
/* Statement SEQ finished: TAG (a CommandComplete tag, e.g. "SELECT 3") or SQLSTATE when it failed. */
void audit_outcome(const struct session *s, uint64_t seq, const char *tag, const char *sqlstate);

#endif
