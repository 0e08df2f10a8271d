/*
 * The audit tap, first version: decisions and outcomes as debug log lines, never the statement
 * text. Recordings (docs/audit.md) take over behind the same functions.
 */
#include "audit/audit.h"

#include "relay/log.h"
#include "relay/session.h"

static const char *const audit_decisions[] = { "allow", "deny", "terminate" };

void
audit_statement(const struct session *s, uint64_t seq, const char *kind, const char *text, size_t len,
    enum audit_decision decision, const char *reason)
{
	char q[300];

	(void)text;
	log_debug("statement", "sid=%s seq=%llu kind=%s bytes=%zu decision=%s reason=%s", s->idstr,
	    (unsigned long long)seq, kind, len, audit_decisions[decision], log_quote(q, sizeof(q), reason ? reason : ""));
}

void
audit_outcome(const struct session *s, uint64_t seq, const char *tag, const char *sqlstate)
{
	char q[128];

	log_debug("statement done", "sid=%s seq=%llu outcome=%s", s->idstr, (unsigned long long)seq,
	    sqlstate != NULL ? sqlstate : log_quote(q, sizeof(q), tag ? tag : ""));
}
