/*
 * What a SQL text does, for the policy: a lexer for the PostgreSQL and MySQL dialects (comments,
 * every kind of quoting, dollar quotes, MySQL executable comments) and a light classifier over
 * its tokens that says, for each statement of a Query, Parse or COM_QUERY, its kind (read,
 * write, DDL, ...), the tables it names, and whether its WHERE clauses bound its UPDATEs and
 * DELETEs. It is not a parser: where the text could mean more than one thing it reports the
 * stronger kind, and where the servers themselves could read it differently it says so
 * (ambiguous) rather than guess.
 *
 * Pure and bounded: no allocation, no recursion, never a read past LEN. A result points into
 * the caller's text (statement texts) and into itself (table names), so it lives as long as
 * both do.
 */
#ifndef POSTERN_SQL_H
#define POSTERN_SQL_H

#include <stdbool.h>
#include <stddef.h>

#include "relay/util.h"

enum sql_dialect {
	SQL_DIALECT_POSTGRES,
	SQL_DIALECT_MYSQL,
};

/*
 * Session settings that change how a server splits text into tokens. 0 is both servers'
 * default; the relay passes what it knows of the session (PostgreSQL reports
 * standard_conforming_strings in ParameterStatus, MySQL NO_BACKSLASH_ESCAPES in the OK packet's
 * status flags). Text that would lex differently under the other setting is flagged ambiguous
 * whatever is passed, because a client can change these settings itself, even in the middle of
 * a MySQL multi-statement text.
 */
#define SQL_MODE_PG_NO_STANDARD_STRINGS		0x01u	/* standard_conforming_strings = off: '' strings take \ escapes */
#define SQL_MODE_MYSQL_NO_BACKSLASH_ESCAPES	0x02u	/* sql_mode NO_BACKSLASH_ESCAPES: \ is a plain character */
#define SQL_MODE_MYSQL_ANSI_QUOTES		0x04u	/* sql_mode ANSI_QUOTES: "x" is an identifier, not a string */

/*
 * What a statement does. The values are in order of strength, weakest first, so the kind of
 * several statements is the greatest of theirs, and an allow-list that is a prefix of this
 * order (select; select and explain; up to tcl; up to merge ...) is safe to apply to the whole.
 * A deny-list of one kind is not: check sql_result.kinds or every statement instead.
 */
enum sql_kind {
	SQL_KIND_EMPTY,		/* no statement at all (only whitespace and comments) */
	SQL_KIND_SELECT,	/* reads: SELECT, VALUES, TABLE, SHOW, DESCRIBE, FETCH */
	SQL_KIND_EXPLAIN,	/* a plan; EXPLAIN ANALYZE also runs its statement (see explain_analyze) */
	SQL_KIND_SET,		/* session settings: SET, RESET, DISCARD, DEALLOCATE, USE */
	SQL_KIND_TCL,		/* transaction control: BEGIN, COMMIT, SAVEPOINT, SET TRANSACTION, ... */
	SQL_KIND_INSERT,	/* INSERT, MySQL REPLACE */
	SQL_KIND_UPDATE,	/* UPDATE; also an upsert (ON CONFLICT DO UPDATE, ON DUPLICATE KEY UPDATE) */
	SQL_KIND_DELETE,
	SQL_KIND_MERGE,		/* inserts, updates and deletes at once */
	SQL_KIND_CALL,		/* CALL: runs a stored procedure, which may do anything its owner allowed */
	SQL_KIND_COPY,		/* bulk data in or out, server files and programs: COPY, LOAD DATA, SELECT INTO OUTFILE */
	SQL_KIND_OTHER,		/* anything not known to be weaker: VACUUM, LISTEN, LOCK, EXECUTE, unknown words */
	SQL_KIND_DCL,		/* privileges and identities: GRANT, REVOKE, CREATE/ALTER/DROP ROLE|USER, SET ROLE */
	SQL_KIND_DDL,		/* schema: CREATE, ALTER, DROP, TRUNCATE, ...; and code we cannot see (DO blocks) */
	SQL_KIND_COUNT
};

#define SQL_KIND_BIT(k)		(1u << (k))

/*
 * Why a text is ambiguous: its tokens (hence its statements) differ under another reading that
 * a server could take. Each is a way to smuggle a statement past the policy, so a policy
 * should refuse ambiguous text unless the relay rules the reason out: ESCAPES when it passed the
 * session's string mode as the server reported it, ENCODING when it forces a UTF-8 (or
 * single-byte) client encoding.
 */
#define SQL_AMBIGUOUS_ESCAPES	0x01u	/* backslash escapes switched (standard_conforming_strings, NO_BACKSLASH_ESCAPES) */
#define SQL_AMBIGUOUS_QUOTES	0x02u	/* MySQL: ANSI_QUOTES switched, which MySQL does not report */
#define SQL_AMBIGUOUS_VERSION	0x04u	/* MySQL: a versioned (/ *!50700) or MariaDB (/ *M!) comment that a server
					 * of another version skips ends elsewhere as a comment than as code */
#define SQL_AMBIGUOUS_ENCODING	0x08u	/* a backslash or backtick right after bytes that are not whole UTF-8:
					 * in GBK, Big5 or Shift-JIS it is the second byte of a character */

#define SQL_STATEMENTS_MAX	64	/* statements described one by one; the rest are only counted and folded in */
#define SQL_TABLES_MAX		16	/* table names recorded per statement */
#define SQL_NAMES_SIZE		8192	/* bytes for all recorded table names, each followed by a NUL */
#define SQL_DEPTH_MAX		256	/* parentheses followed; deeper text is flagged unterminated */

struct sql_statement {
	enum sql_kind kind;		/* the strongest of its verb and its sub-statements (CTEs, upserts, SELECT INTO) */
	enum sql_kind inner_kind;	/* EXPLAIN: the explained statement's kind; otherwise SQL_KIND_EMPTY */
	unsigned kinds;			/* SQL_KIND_BIT of every kind of work it does: kind, each CTE's, the actions of
					 * MERGE and of an upsert, and the explained statement's when it runs */
	struct slice text;		/* within the input, from its first token to its last: no surrounding
					 * whitespace, comments or ';' (comments between tokens stay) */
	const char *verb;		/* its first keyword in lower case ("select", "with", "create", ...), static;
					 * NULL when it does not begin with a statement keyword */
	bool has_where;			/* it has an UPDATE or DELETE (its own, a CTE's or an explained one) and every
					 * one of them has a WHERE of its own at its own level; an upsert's update
					 * counts as bounded */
	bool explain_analyze;		/* EXPLAIN ANALYZE: the explained statement really runs */
	bool opaque;			/* runs SQL that is not in this text (a DO block, MySQL PREPARE ... FROM,
					 * BINLOG): kind is ddl, the strongest (inner_kind, under EXPLAIN) */
	bool tables_incomplete;		/* a table name was seen and not recorded: more than SQL_TABLES_MAX, no room
					 * left in names, a U&"..." name with escapes, a name of too many parts */
	size_t ntables;
	struct slice tables[SQL_TABLES_MAX];	/* the tables it names, best effort, each once, into
						 * sql_result.names: parts joined by '.', quotes removed
						 * ("" and `` undoubled); PostgreSQL folds unquoted parts to
						 * lower case and cuts each part to 63 bytes as the server
						 * does, MySQL keeps them as written */
};

struct sql_result {
	size_t nstatements;		/* every non-empty statement, also those past SQL_STATEMENTS_MAX */
	enum sql_kind kind;		/* the strongest kind of all, counting what an EXPLAIN ANALYZE runs;
					 * SQL_KIND_EMPTY when there is no statement */
	unsigned kinds;			/* the union of every statement's kinds */
	bool unterminated;		/* an unclosed quote, comment, dollar quote or executable comment, or
					 * parentheses deeper than SQL_DEPTH_MAX: the text was not followed to its
					 * end, treat it as suspicious */
	unsigned ambiguous;		/* SQL_AMBIGUOUS_... bits: the text splits differently under another
					 * reading a server could take; 0 when it does not */
	bool truncated;			/* more statements than SQL_STATEMENTS_MAX: only the first are described */
	bool opaque;			/* a statement is opaque */
	struct sql_statement statements[SQL_STATEMENTS_MAX];	/* the first min(nstatements, MAX), in order */
	size_t names_used;		/* bytes of names in use */
	char names[SQL_NAMES_SIZE];	/* storage for the statements' table names */
};

/* "select", "insert", ..., "ddl", "empty"; "?" for a value out of range. */
const char *sql_kind_name(enum sql_kind kind);

/*
 * Classify the LEN bytes at TEXT (not NUL-terminated; NUL bytes are ordinary characters) as
 * dialect D under MODES (SQL_MODE_..., 0 for the defaults) into OUT, which it overwrites
 * whole. Returns 0, or -1 (OUT untouched) for a NULL OUT, a NULL TEXT with a LEN, an unknown
 * dialect. Never allocates; time is linear in LEN. OUT is large (about 30 KB): give it a home
 * that is not a small stack.
 */
int sql_classify(const char *text, size_t len, enum sql_dialect d, unsigned modes, struct sql_result *out)
	__attribute__((warn_unused_result));

#endif
