/*
 * Redaction of secrets in statement text before it is recorded: the literal after PASSWORD
 * (ALTER/CREATE ROLE … PASSWORD '…', SET PASSWORD [FOR u] = '…' / PASSWORD('…')), every
 * literal of an IDENTIFIED … clause (CREATE/ALTER USER … IDENTIFIED BY '…'), and password=
 * values inside connection strings ('host=h password=p'). A small lexer of its own (comments,
 * quotes, E'' escapes, dollar quotes) so a keyword inside a comment or a string is not taken
 * for one, and a literal is found whole. When in doubt it redacts more, never less.
 */
#ifndef POSTERN_AUDIT_REDACT_H
#define POSTERN_AUDIT_REDACT_H

#include <stddef.h>

enum audit_dialect {
	AUDIT_DIALECT_POSTGRES = 0,	/* '' quoting, backslash escapes only in E'', nested comments, $tag$ */
	AUDIT_DIALECT_MYSQL,		/* backslash escapes in every string, "…" strings, # comments */
};

/* Replace TEXT[off, off+len) with WITH. */
struct audit_span {
	size_t off, len;
	const char *with;
};

#define AUDIT_REDACT_SPANS_MAX	32

/*
 * Find what to redact in TEXT[0..LEN): up to MAX spans, in order and disjoint, into SPANS;
 * returns how many. When there would be more, the last one runs to the end of the text.
 */
size_t audit_redact_spans(const char *text, size_t len, enum audit_dialect dialect, struct audit_span *spans,
    size_t max);

/* TEXT with its spans replaced, into OUT (NUL-terminated, truncated to SIZE); for tests. */
size_t audit_redact_string(const char *text, size_t len, enum audit_dialect dialect, char *out, size_t size);

#endif
