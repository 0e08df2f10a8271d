/*
 * The SQL lexer and statement classifier behind policy's q.kind and q.tables. Two layers:
 *
 * The lexer turns the text into tokens the way the server's own lexer would: PostgreSQL's
 * nested block comments, E'' strings, dollar quotes and string continuation across newlines;
 * MySQL's "-- " and # comments, backslash escapes, double-quoted strings, backticks and
 * executable comments, whose content is code. Comments never reach the classifier, and a ';'
 * splits statements only where the server's lexer would see one. Where servers can lex the same
 * bytes two ways, the text is flagged ambiguous (SQL_AMBIGUOUS_...) instead of one way picked:
 *   - when a string held a backslash (or, in MySQL, a double quote appeared), the text is lexed
 *     again under the other string modes a client can switch to, in lockstep with the first
 *     reading: any token that starts or ends elsewhere makes it ambiguous. A backslash that
 *     changes nothing ('C:\\' read with escapes or without) does not;
 *   - a MySQL versioned comment (/ *!50700 ... * /, MariaDB's / *M! ... * /) whose end as code
 *     differs from its end as a comment: a server of another version skips it as a comment;
 *   - a backslash or backtick right after bytes that are not whole UTF-8: in GBK, Big5 or
 *     Shift-JIS client encodings that byte is the second half of a character, not a quote or
 *     an escape. The relay should insist on a UTF-8 (or single-byte) client encoding.
 *
 * The classifier walks the tokens of each statement once, keeping a small state per level of
 * parentheses (no recursion, SQL_DEPTH_MAX levels), to find each statement's verb, the verbs
 * of its sub-statements (CTE bodies, the statement after WITH, EXPLAIN's statement, PREPARE
 * ... AS), whether each UPDATE and DELETE has a WHERE at its own level, and the table names
 * after FROM, JOIN, INTO, UPDATE, TABLE, TRUNCATE, COPY, USING and REFERENCES. A verb that
 * needs a word or two after it to be told apart (CREATE ROLE, SET ROLE, START TRANSACTION)
 * looks ahead with a copy of the lexer, at most SQL_PEEK_MAX tokens, so the walk stays linear.
 *
 * The choices where the servers give none (see also sql.h):
 *   - SHOW is select in both dialects: it only reads (a setting in PostgreSQL, metadata in
 *     MySQL). DESCRIBE/DESC/EXPLAIN of a table is select; of a statement, explain.
 *   - TRUNCATE is ddl (it takes an exclusive lock and bypasses DELETE triggers and rules).
 *   - SET ROLE, SET SESSION AUTHORIZATION, RESET ROLE, MySQL SET PASSWORD/SET DEFAULT ROLE are
 *     dcl; SET TRANSACTION, SET CONSTRAINTS and SET SESSION CHARACTERISTICS are tcl.
 *   - DO (PostgreSQL), MySQL PREPARE ... FROM, MariaDB EXECUTE IMMEDIATE and BINLOG run SQL that
 *     is not in the text: ddl, the strongest kind, and opaque. MySQL's DO only evaluates
 *     expressions: select. PostgreSQL PREPARE name AS statement is its statement's kind.
 *   - SELECT ... INTO table (PostgreSQL) creates a table: ddl. SELECT ... INTO OUTFILE or
 *     DUMPFILE (MySQL) writes a server file: copy.
 *   - An upsert is update (and insert in kinds), bounded for has_where.
 *   - Unknown statements are other, stronger than any data change, so an allow-list of weaker
 *     kinds refuses them.
 *   - Every ';' outside quotes and comments splits, even inside parentheses, a PostgreSQL
 *     CREATE FUNCTION ... BEGIN ATOMIC body or a MySQL CREATE PROCEDURE ... BEGIN ... END
 *     sent whole: each piece is then classified on its own, so a body's statements are seen.
 *   - Tables are what the text names after those keywords: a CTE's name used in FROM is
 *     recorded like a table, and a function call in FROM is not.
 */
#include "policy/sql.h"

#include <stdint.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#define SQL_PEEK_MAX		4	/* tokens a verb looks ahead: CREATE OR REPLACE TEMP ROLE */
#define SQL_NAME_PARTS_MAX	3	/* catalog.schema.table */
#define SQL_PG_NAME_MAX		63	/* NAMEDATALEN - 1: PostgreSQL cuts longer identifiers to this */
#define SQL_KEYWORD_LEN_MAX	24	/* longer words are never keywords */
#define SQL_MYSQL_VERSION_MIN	5	/* digits of a MySQL versioned comment: / *!50700 */
#define SQL_MYSQL_VERSION_MAX	6	/* MariaDB's have six: / *M!100500 */

/* What a keyword can do where the classifier looks at it. */
#define SQL_KF_VERB	0x01u	/* begins a statement */
#define SQL_KF_SUBQUERY	0x02u	/* begins a subquery in parentheses: SELECT, VALUES, TABLE, WITH */
#define SQL_KF_MAIN	0x04u	/* may be the statement after a WITH clause's SEARCH or CYCLE */
#define SQL_KF_ENDLIST	0x08u	/* ends a list of tables at its level (FROM a, b WHERE ...) */
#define SQL_KF_NOTNAME	0x10u	/* never a table name where one is expected */
#define SQL_KF_PREFIX	0x20u	/* may stand between a keyword and its table (IF NOT EXISTS, ONLY) */

#define V	SQL_KF_VERB
#define S	SQL_KF_SUBQUERY
#define M	SQL_KF_MAIN
#define E	SQL_KF_ENDLIST
#define N	SQL_KF_NOTNAME
#define P	SQL_KF_PREFIX

/* Every word the classifier knows, sorted by name: the lookup is a binary search. */
#define SQL_KEYWORDS(X) \
	X(ABORT, "abort", V) \
	X(ALTER, "alter", V) \
	X(ANALYSE, "analyse", V) \
	X(ANALYZE, "analyze", V) \
	X(AS, "as", N) \
	X(AUTHORIZATION, "authorization", 0) \
	X(BEGIN, "begin", V) \
	X(BINLOG, "binlog", V) \
	X(CALL, "call", V) \
	X(CHANGE, "change", V) \
	X(CHARACTERISTICS, "characteristics", 0) \
	X(CHECK, "check", V) \
	X(CHECKPOINT, "checkpoint", V) \
	X(CLOSE, "close", V) \
	X(CLUSTER, "cluster", V) \
	X(COMMENT, "comment", V) \
	X(COMMIT, "commit", V) \
	X(CONSTRAINTS, "constraints", 0) \
	X(COPY, "copy", V) \
	X(CREATE, "create", V) \
	X(CROSS, "cross", N) \
	X(CYCLE, "cycle", 0) \
	X(DATA, "data", 0) \
	X(DEALLOCATE, "deallocate", V) \
	X(DECLARE, "declare", V) \
	X(DEFAULT, "default", N) \
	X(DELAYED, "delayed", P) \
	X(DELETE, "delete", V | M) \
	X(DESC, "desc", V) \
	X(DESCRIBE, "describe", V) \
	X(DISCARD, "discard", V) \
	X(DISTINCT, "distinct", 0) \
	X(DO, "do", V) \
	X(DROP, "drop", V) \
	X(DUAL, "dual", 0) \
	X(DUMPFILE, "dumpfile", 0) \
	X(END, "end", V) \
	X(EXCEPT, "except", E | N) \
	X(EXECUTE, "execute", V) \
	X(EXISTS, "exists", P) \
	X(EXPLAIN, "explain", V) \
	X(EXTENDED, "extended", 0) \
	X(FETCH, "fetch", V | E | N) \
	X(FLUSH, "flush", V) \
	X(FOR, "for", E | N) \
	X(FORMAT, "format", 0) \
	X(FROM, "from", N) \
	X(FULL, "full", N) \
	X(GLOBAL, "global", 0) \
	X(GRANT, "grant", V) \
	X(GROUP, "group", E | N) \
	X(HANDLER, "handler", V) \
	X(HAVING, "having", E | N) \
	X(HELP, "help", V) \
	X(HIGH_PRIORITY, "high_priority", P) \
	X(IF, "if", P) \
	X(IGNORE, "ignore", P) \
	X(IMMEDIATE, "immediate", 0) \
	X(IMPORT, "import", V) \
	X(INNER, "inner", N) \
	X(INSERT, "insert", V | M) \
	X(INSTALL, "install", V) \
	X(INTERSECT, "intersect", E | N) \
	X(INTO, "into", P) \
	X(JOIN, "join", N) \
	X(KEY, "key", 0) \
	X(KILL, "kill", V) \
	X(LATERAL, "lateral", N) \
	X(LEFT, "left", N) \
	X(LIMIT, "limit", E | N) \
	X(LISTEN, "listen", V) \
	X(LOAD, "load", V) \
	X(LOCAL, "local", 0) \
	X(LOCK, "lock", V) \
	X(LOW_PRIORITY, "low_priority", P) \
	X(MATERIALIZED, "materialized", 0) \
	X(MERGE, "merge", V | M) \
	X(MOVE, "move", V) \
	X(NATURAL, "natural", N) \
	X(NOT, "not", P) \
	X(NOTIFY, "notify", V) \
	X(OFFSET, "offset", E | N) \
	X(ON, "on", N) \
	X(ONLY, "only", P) \
	X(OPTIMIZE, "optimize", V) \
	X(OR, "or", 0) \
	X(ORDER, "order", E | N) \
	X(OUTFILE, "outfile", 0) \
	X(OWNED, "owned", 0) \
	X(PARTITIONS, "partitions", 0) \
	X(PASSWORD, "password", 0) \
	X(PERSIST, "persist", 0) \
	X(PERSIST_ONLY, "persist_only", 0) \
	X(PREPARE, "prepare", V) \
	X(PURGE, "purge", V) \
	X(QUICK, "quick", P) \
	X(REASSIGN, "reassign", V) \
	X(RECURSIVE, "recursive", 0) \
	X(REFERENCES, "references", 0) \
	X(REFRESH, "refresh", V) \
	X(REINDEX, "reindex", V) \
	X(RELEASE, "release", V) \
	X(RENAME, "rename", V) \
	X(REPAIR, "repair", V) \
	X(REPLACE, "replace", V) \
	X(RESET, "reset", V) \
	X(RETURNING, "returning", E | N) \
	X(REVOKE, "revoke", V) \
	X(RIGHT, "right", N) \
	X(ROLE, "role", 0) \
	X(ROLLBACK, "rollback", V) \
	X(SAVEPOINT, "savepoint", V) \
	X(SEARCH, "search", 0) \
	X(SECURITY, "security", V) \
	X(SELECT, "select", V | S | M | E | N) \
	X(SESSION, "session", 0) \
	X(SESSION_AUTHORIZATION, "session_authorization", 0) \
	X(SET, "set", V | E | N) \
	X(SHOW, "show", V) \
	X(SHUTDOWN, "shutdown", V) \
	X(START, "start", V) \
	X(TABLE, "table", V | S | M | P) \
	X(TEMP, "temp", P) \
	X(TEMPORARY, "temporary", P) \
	X(THEN, "then", 0) \
	X(TRANSACTION, "transaction", 0) \
	X(TRUNCATE, "truncate", V) \
	X(UNINSTALL, "uninstall", V) \
	X(UNION, "union", E | N) \
	X(UNLISTEN, "unlisten", V) \
	X(UNLOCK, "unlock", V) \
	X(UNLOGGED, "unlogged", P) \
	X(UPDATE, "update", V | M) \
	X(USE, "use", V) \
	X(USER, "user", 0) \
	X(USING, "using", N) \
	X(VACUUM, "vacuum", V) \
	X(VALUES, "values", V | S | M | E | N) \
	X(VERBOSE, "verbose", 0) \
	X(WHERE, "where", E | N) \
	X(WINDOW, "window", E | N) \
	X(WITH, "with", V | S | N) \
	X(XA, "xa", V) \
	X(XML, "xml", 0)

enum sql_kw {
	SQL_KW_NONE = 0,	/* not a keyword, or not a word */
#define SQL_KW_ENUM(id, name, flags) SQL_KW_##id,
	SQL_KEYWORDS(SQL_KW_ENUM)
#undef SQL_KW_ENUM
	SQL_KW_COUNT
};

struct sql_keyword {
	const char *name;	/* lower case */
	unsigned flags;		/* SQL_KF_... */
};

static const struct sql_keyword sql_keywords[SQL_KW_COUNT] = {
	{ "", 0 },
#define SQL_KW_ENTRY(id, name, flags) { name, flags },
	SQL_KEYWORDS(SQL_KW_ENTRY)
#undef SQL_KW_ENTRY
};

#undef V
#undef S
#undef M
#undef E
#undef N
#undef P

enum sql_tok_type {
	SQL_TOK_END,		/* the end of the input */
	SQL_TOK_SEMI,		/* ';' */
	SQL_TOK_WORD,		/* a keyword or a bare identifier */
	SQL_TOK_QIDENT,		/* "quoted" or `backticked` identifier */
	SQL_TOK_STRING,		/* any string literal, dollar quotes included */
	SQL_TOK_NUMBER,
	SQL_TOK_LPAREN,
	SQL_TOK_RPAREN,
	SQL_TOK_COMMA,
	SQL_TOK_DOT,
	SQL_TOK_OTHER,		/* an operator byte, a parameter, anything else */
};

struct sql_token {
	enum sql_tok_type type;
	const uint8_t *ptr;	/* the token as written, in the input */
	size_t len;
	const uint8_t *body;	/* QIDENT, STRING: between the quotes, doubled quotes still doubled */
	size_t body_len;
	uint8_t quote;		/* QIDENT: its quote character */
	bool uescape;		/* QIDENT: U&"...", whose escapes are not decoded here */
	int kw;			/* WORD: its keyword, SQL_KW_NONE */
};

/* How a server that does not run a MySQL executable comment would end it. */
enum sql_exec {
	SQL_EXEC_ALWAYS,	/* / *! ... : every server runs it */
	SQL_EXEC_VERSIONED,	/* / *!50700 ... : an older server skips it, one nested comment allowed */
	SQL_EXEC_MARIADB,	/* / *M! ... : MySQL skips it as a plain comment */
};

struct sql_lexer {
	const uint8_t *base;		/* the input */
	const uint8_t *p;		/* the next byte to read */
	const uint8_t *end;
	enum sql_dialect dialect;
	unsigned modes;			/* SQL_MODE_... */
	const uint8_t *exec_body;	/* MySQL: where the open executable comment's code starts; NULL: none */
	enum sql_exec exec_alt;		/* ... and how a server may skip it instead */
	bool unterminated;
	unsigned ambiguous;		/* SQL_AMBIGUOUS_... */
	unsigned sensitive;		/* SQL_AMBIGUOUS_ESCAPES, _QUOTES: seen what another string mode may read otherwise */
};

/* What a level of parentheses is waiting for. */
enum sql_walk_mode {
	SQL_W_BODY,		/* nothing in particular: keywords have their effects */
	SQL_W_START,		/* a statement: the next word is its verb, whatever it is */
	SQL_W_PAREN,		/* the first token in parentheses: SELECT, VALUES, TABLE or WITH start a subquery */
	SQL_W_WITH,		/* after WITH [RECURSIVE] or a CTE's comma: a CTE's name */
	SQL_W_WITH_NAME,	/* after a CTE's name: its column list or AS */
	SQL_W_WITH_COLS,	/* waiting for the column list's ')' */
	SQL_W_WITH_COLS_DONE,	/* after the column list: AS */
	SQL_W_WITH_AS,		/* after AS [NOT] [MATERIALIZED]: the body's '(' */
	SQL_W_CTE_BODY,		/* waiting for the CTE body's ')' */
	SQL_W_WITH_AFTER,	/* after a CTE: a comma, SEARCH or CYCLE, or the main statement */
	SQL_W_WITH_TAIL,	/* in SEARCH or CYCLE: a comma or the main statement */
	SQL_W_EXPLAIN,		/* after EXPLAIN: options, then the statement (or, in MySQL, a table) */
	SQL_W_EXPLAIN_FORMAT,	/* after MySQL's EXPLAIN FORMAT: '=' and a name */
	SQL_W_EXPLAIN_WAIT,	/* waiting for EXPLAIN's option list's ')' */
	SQL_W_EXPLAIN_OPTS,	/* the first token in EXPLAIN (: an option, or a statement in parentheses */
	SQL_W_EXPLAIN_OPT,	/* an option's name */
	SQL_W_EXPLAIN_VALUE,	/* an option's value */
	SQL_W_PREPARE,		/* after PostgreSQL's PREPARE: a name */
	SQL_W_PREPARE_NAME,	/* after the name: parameter types, then AS and the statement */
	SQL_W_DECLARE,		/* after DECLARE: FOR and the cursor's statement */
};

struct sql_level {
	enum sql_walk_mode mode;
	enum sql_kind verb;	/* the statement begun at this level; SQL_KIND_EMPTY: none */
	bool where;		/* a WHERE at this level */
	bool from_ok;		/* a FROM here names tables: a SELECT, UPDATE or DELETE is at this level */
	bool tables;		/* a list of tables is open at this level: a comma brings the next */
	bool tables_call;	/* ... in which a name followed by '(' is a function, not a table */
	bool chain;		/* opened where a statement was expected: its SELECT is the level's above */
};

/* Where the table name being read is. */
enum sql_tab_state {
	SQL_TAB_IDLE,
	SQL_TAB_EXPECT,		/* a name may come next */
	SQL_TAB_NAME,		/* a name is being read: a '.' continues it */
	SQL_TAB_DOT,		/* after a '.': its next part */
};

/* One statement's walk; zeroed at its start. */
struct sql_stmt_walk {
	struct sql_statement *st;	/* where it goes (a scratch statement past SQL_STATEMENTS_MAX) */
	bool record;			/* st is in the result: record its tables */
	size_t depth;			/* parentheses open */
	struct sql_level lv[SQL_DEPTH_MAX + 1];
	int prev_kw;			/* the previous token's keyword */
	int top_kw;			/* the keyword of the statement's verb */
	bool have_verb;			/* its verb has been seen */
	enum sql_kind top;		/* what its verb says; SQL_KIND_EMPTY when it says nothing (WITH) */
	enum sql_kind sub;		/* the strongest of its sub-statements */
	unsigned sub_kinds;
	bool explain;			/* its verb is EXPLAIN: later verbs are the explained statement's */
	enum sql_kind inner;
	unsigned inner_kinds;
	bool analyze;			/* EXPLAIN ANALYZE */
	bool opt_analyze;		/* in EXPLAIN ( ... ): the option being read is ANALYZE */
	bool opaque;
	bool ud_seen;			/* an UPDATE or DELETE, or an upsert, was seen */
	bool ud_unbounded;		/* ... and an UPDATE or DELETE had no WHERE of its own */
	enum sql_tab_state tab;
	bool tab_call;			/* a name followed by '(' is a function */
	bool prev_name;			/* the previous token is a word or a quoted identifier, prev_tok */
	struct sql_token prev_tok;
	size_t nparts;
	bool parts_overflow;
	struct sql_token parts[SQL_NAME_PARTS_MAX];
	const uint8_t *first;		/* its first token */
	const uint8_t *last;		/* the end of its last token */
};

struct sql_walk {
	struct sql_lexer lx;
	struct sql_result *out;
	bool too_deep;			/* parentheses went past SQL_DEPTH_MAX */
	struct sql_stmt_walk s;
};

/* ---- Lexer ---- */

static bool
sql_is_space(uint8_t c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');	/* \t \n \v \f \r, the same set in both servers */
}

static bool
sql_is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* Bytes >= 0x80 are identifier characters in both servers: any non-ASCII letter is. */
static bool
sql_is_ident_start(uint8_t c)
{
	return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '_' || c >= 0x80;
}

static bool
sql_is_ident_char(uint8_t c)
{
	return sql_is_ident_start(c) || sql_is_digit(c) || c == '$';
}

/*
 * Whether the bytes before P end with a whole UTF-8 character (or plain ASCII). When they do
 * not, P's byte may be the second byte of a GBK, Big5 or Shift-JIS character, which a server
 * using that client encoding would not read as a quote or a backslash.
 */
static bool
sql_utf8_whole_before(const uint8_t *base, const uint8_t *p)
{
	const uint8_t *q = p;
	size_t cont = 0, need;

	if (q == base || q[-1] < 0x80)
		return true;
	while (q > base && (q[-1] & 0xC0) == 0x80 && cont < 4) {
		q--;
		cont++;
	}
	if (q == base)
		return false;
	q--;
	if (*q >= 0xC2 && *q <= 0xDF)
		need = 1;
	else if (*q >= 0xE0 && *q <= 0xEF)
		need = 2;
	else if (*q >= 0xF0 && *q <= 0xF4)
		need = 3;
	else
		return false;
	return cont == need;
}

static int
sql_keyword_cmp(const uint8_t *w, size_t len, const char *name)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t a = w[i], b = (uint8_t)name[i];

		if (a >= 'A' && a <= 'Z')
			a |= 0x20;
		if (b == '\0')
			return 1;
		if (a != b)
			return a < b ? -1 : 1;
	}
	return name[len] == '\0' ? 0 : -1;
}

/*
 * Keyword lookup: an open-addressing table keyed by a case-insensitive hash, built once. Every
 * word of every statement goes through here, so it is a hash and usually one comparison, not a
 * binary search of case-folded string compares.
 */
#define SQL_KW_TABLE_SIZE	1024	/* a power of two, well over twice the keywords */

static uint16_t sql_kw_table[SQL_KW_TABLE_SIZE];	/* keyword index, 0 = empty */
static pthread_once_t sql_kw_once = PTHREAD_ONCE_INIT;

static uint32_t
sql_keyword_hash(const uint8_t *w, size_t len)
{
	uint32_t h = 2166136261u;	/* FNV-1a over the lower-cased bytes */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint32_t)(w[i] | 0x20)) * 16777619u;
	return h;
}

static void
sql_keyword_table_build(void)
{
	for (size_t k = 1; k < SQL_KW_COUNT; k++) {
		const char *name = sql_keywords[k].name;
		uint32_t i = sql_keyword_hash((const uint8_t *)name, strlen(name)) & (SQL_KW_TABLE_SIZE - 1);

		while (sql_kw_table[i] != 0)
			i = (i + 1) & (SQL_KW_TABLE_SIZE - 1);
		sql_kw_table[i] = (uint16_t)k;
	}
}

/* The keyword W is, case-insensitively; SQL_KW_NONE. */
static int
sql_keyword_find(const uint8_t *w, size_t len)
{
	uint32_t i;

	if (len == 0 || len > SQL_KEYWORD_LEN_MAX)
		return SQL_KW_NONE;
	pthread_once(&sql_kw_once, sql_keyword_table_build);
	for (i = sql_keyword_hash(w, len) & (SQL_KW_TABLE_SIZE - 1); sql_kw_table[i] != 0;
	    i = (i + 1) & (SQL_KW_TABLE_SIZE - 1)) {
		const char *name = sql_keywords[sql_kw_table[i]].name;

		if (sql_keyword_cmp(w, len, name) == 0)
			return sql_kw_table[i];
	}
	return SQL_KW_NONE;
}

/* To the end of a line comment: a newline; PostgreSQL also stops at \r, MySQL at a NUL byte. */
static void
sql_lex_line_comment(struct sql_lexer *lx)
{
	uint8_t stop = lx->dialect == SQL_DIALECT_POSTGRES ? '\r' : '\0';

	while (lx->p < lx->end && *lx->p != '\n' && *lx->p != stop)
		lx->p++;
}

/*
 * Where a MySQL server that skips a comment ends it, reading from P: just past the first
 * "*" "/" that closes it, allowing NEST comments inside, as its consume_comment() does. NULL
 * when that is not by LIMIT.
 */
static const uint8_t *
sql_mysql_comment_end(const uint8_t *p, const uint8_t *limit, int nest)
{
	int open = 0;

	while (limit - p >= 2) {
		if (open < nest && p[0] == '/' && p[1] == '*') {
			open++;
			p += 2;
		} else if (p[0] == '*' && p[1] == '/') {
			p += 2;
			if (open == 0)
				return p;
			open--;
		} else {
			p++;
		}
	}
	return NULL;
}

/* The executable comment's code ends at CLOSE ("*" "/"): would a server skipping it agree? */
static void
sql_lex_exec_close(struct sql_lexer *lx, const uint8_t *close)
{
	const uint8_t *after = close + 2;

	if (lx->exec_alt != SQL_EXEC_ALWAYS && sql_mysql_comment_end(lx->exec_body, after, 1) != after)
		lx->ambiguous |= SQL_AMBIGUOUS_VERSION;
	if (lx->exec_alt == SQL_EXEC_MARIADB && sql_mysql_comment_end(lx->exec_body, after, 0) != after)
		lx->ambiguous |= SQL_AMBIGUOUS_VERSION;
	lx->exec_body = NULL;
}

/* MySQL "/ *!", "/ *!NNNNN", "/ *M!NNNNNN" at lx->p: the content is code, read on as such. */
static void
sql_lex_exec_open(struct sql_lexer *lx)
{
	const uint8_t *p = lx->p + 2;
	enum sql_exec alt = SQL_EXEC_ALWAYS;
	size_t digits = 0;

	if (*p == 'M') {
		alt = SQL_EXEC_MARIADB;
		p++;
	}
	p++;	/* '!' */
	while (digits < SQL_MYSQL_VERSION_MAX && p + digits < lx->end && sql_is_digit(p[digits]))
		digits++;
	if (digits >= SQL_MYSQL_VERSION_MIN) {
		p += digits;
		if (alt == SQL_EXEC_ALWAYS)
			alt = SQL_EXEC_VERSIONED;
	}
	/* One executable comment inside another: a server skipping the outer one skips both. */
	if (lx->exec_body != NULL && (lx->exec_alt != SQL_EXEC_ALWAYS || alt != SQL_EXEC_ALWAYS))
		lx->ambiguous |= SQL_AMBIGUOUS_VERSION;
	lx->exec_body = p;
	lx->exec_alt = alt;
	lx->p = p;
}

/* A block comment at lx->p: nested in PostgreSQL, to the first end in MySQL. */
static void
sql_lex_block_comment(struct sql_lexer *lx)
{
	const uint8_t *p = lx->p + 2, *end = lx->end;
	size_t depth = 1;

	if (lx->dialect == SQL_DIALECT_MYSQL) {
		if (p < end && (*p == '!' || (*p == 'M' && end - p >= 2 && p[1] == '!'))) {
			sql_lex_exec_open(lx);
			return;
		}
		p = sql_mysql_comment_end(p, end, 0);	/* optimizer hints too: never code */
		if (p == NULL) {
			lx->unterminated = true;
			p = end;
		}
		lx->p = p;
		return;
	}
	while (p < end) {
		if (end - p >= 2 && p[0] == '/' && p[1] == '*') {
			depth++;
			p += 2;
		} else if (end - p >= 2 && p[0] == '*' && p[1] == '/') {
			p += 2;
			if (--depth == 0) {
				lx->p = p;
				return;
			}
		} else {
			p++;
		}
	}
	lx->unterminated = true;
	lx->p = end;
}

/* Past whitespace and comments, and the end of an executable comment. */
static void
sql_lex_skip(struct sql_lexer *lx)
{
	bool my = lx->dialect == SQL_DIALECT_MYSQL;

	while (lx->p < lx->end) {
		const uint8_t *p = lx->p;
		size_t left = (size_t)(lx->end - p);

		if (sql_is_space(*p)) {
			lx->p++;
		} else if (my && lx->exec_body != NULL && left >= 2 && p[0] == '*' && p[1] == '/') {
			sql_lex_exec_close(lx, p);
			lx->p = p + 2;
		} else if (left >= 2 && p[0] == '-' && p[1] == '-' && (!my || left == 2 || p[2] <= ' ' || p[2] == 0x7f)) {
			/* MySQL wants a space or a control character after the dashes: 1--1 is 1 - -1 */
			lx->p = p + 2;
			sql_lex_line_comment(lx);
		} else if (my && *p == '#') {
			lx->p = p + 1;
			sql_lex_line_comment(lx);
		} else if (left >= 2 && p[0] == '/' && p[1] == '*') {
			sql_lex_block_comment(lx);
		} else {
			break;
		}
	}
}

/*
 * A quoted token whose opening QUOTE is at lx->p, into T's body. A doubled quote stands for one;
 * with ESCAPES a backslash takes the next byte with it. ALT: a setting the client may change
 * would flip ESCAPES, so a backslash in it calls for a second reading. Returns whether it closed.
 */
static bool
sql_lex_quoted(struct sql_lexer *lx, struct sql_token *t, uint8_t quote, bool escapes, bool alt)
{
	const uint8_t *p = lx->p + 1, *end = lx->end;
	bool closed = false;

	t->body = p;
	for (;;) {
		if (p == end) {
			lx->unterminated = true;
			break;
		}
		if (*p == '\\' && alt)
			lx->sensitive |= SQL_AMBIGUOUS_ESCAPES;
		if (escapes && *p == '\\') {
			if (!sql_utf8_whole_before(lx->base, p))
				lx->ambiguous |= SQL_AMBIGUOUS_ENCODING;
			if (end - p < 2) {
				p = end;
				lx->unterminated = true;
				break;
			}
			p += 2;
			continue;
		}
		if (*p == quote) {
			if (quote == '`' && !sql_utf8_whole_before(lx->base, p))
				lx->ambiguous |= SQL_AMBIGUOUS_ENCODING;
			if (end - p >= 2 && p[1] == quote) {
				p += 2;
				continue;
			}
			closed = true;
			break;
		}
		p++;
	}
	t->body_len = (size_t)(p - t->body);
	lx->p = closed ? p + 1 : p;
	return closed;
}

/*
 * After a PostgreSQL string literal: whitespace holding a newline (and -- comments), then a
 * quote, continue the same literal, with the first part's escapes ('a'\n'b' is 'ab').
 */
static bool
sql_lex_pg_continues(struct sql_lexer *lx)
{
	const uint8_t *p = lx->p, *end = lx->end;
	bool newline = false;

	while (p < end) {
		if (*p == ' ' || *p == '\t' || *p == '\f') {
			p++;
		} else if (*p == '\n' || *p == '\r') {
			newline = true;
			p++;
		} else if (*p == '\v' && newline) {
			p++;
		} else if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
			while (p < end && *p != '\n' && *p != '\r')
				p++;
		} else {
			break;
		}
	}
	if (!newline || p == end || *p != '\'')
		return false;
	lx->p = p;
	return true;
}

/* PostgreSQL string kinds by prefix: how backslashes behave in them. */
enum sql_pg_string {
	SQL_PG_STRING_PLAIN,	/* '' and N'': escapes only with standard_conforming_strings off */
	SQL_PG_STRING_ESCAPE,	/* E'': always */
	SQL_PG_STRING_RAW,	/* B'', X'', U&'': never */
};

static void
sql_lex_pg_string(struct sql_lexer *lx, struct sql_token *t, enum sql_pg_string kind)
{
	bool escapes = kind == SQL_PG_STRING_ESCAPE ||
	    (kind == SQL_PG_STRING_PLAIN && (lx->modes & SQL_MODE_PG_NO_STANDARD_STRINGS));
	bool alt = kind == SQL_PG_STRING_PLAIN;
	const uint8_t *body = NULL;

	t->type = SQL_TOK_STRING;
	while (sql_lex_quoted(lx, t, '\'', escapes, alt)) {
		if (body == NULL)
			body = t->body;
		if (!sql_lex_pg_continues(lx))
			break;
	}
	if (body != NULL) {
		t->body_len = (size_t)(t->body + t->body_len - body);
		t->body = body;
	}
}

/* PostgreSQL '$': a parameter ($1), a dollar quote ($$...$$, $tag$...$tag$) or a lone byte. */
static void
sql_lex_dollar(struct sql_lexer *lx, struct sql_token *t)
{
	const uint8_t *p = lx->p + 1, *end = lx->end, *tag = p;
	size_t taglen;

	t->type = SQL_TOK_OTHER;
	if (p < end && sql_is_digit(*p)) {
		while (p < end && sql_is_digit(*p))
			p++;
		lx->p = p;
		return;
	}
	if (p < end && sql_is_ident_start(*p))
		while (p < end && (sql_is_ident_start(*p) || sql_is_digit(*p)))
			p++;
	if (p == end || *p != '$') {
		lx->p = tag;	/* "$abc" without a closing '$': the server also reads just the '$' */
		return;
	}
	taglen = (size_t)(p - tag);
	t->type = SQL_TOK_STRING;
	t->body = ++p;
	for (;;) {
		const uint8_t *d = memchr(p, '$', (size_t)(end - p));

		if (d == NULL || (size_t)(end - d) < taglen + 2) {
			lx->unterminated = true;
			t->body_len = (size_t)(end - t->body);
			lx->p = end;
			return;
		}
		if (memcmp(d + 1, tag, taglen) == 0 && d[taglen + 1] == '$') {
			t->body_len = (size_t)(d - t->body);
			lx->p = d + taglen + 2;
			return;
		}
		p = d + 1;
	}
}

static void
sql_lex_number(struct sql_lexer *lx, struct sql_token *t)
{
	const uint8_t *p = lx->p, *end = lx->end;

	t->type = SQL_TOK_NUMBER;
	if (lx->dialect == SQL_DIALECT_MYSQL) {
		/* MySQL identifiers may begin with a digit: 1e5, 0x1f and 2024_sales are one token. */
		while (p < end && sql_is_ident_char(*p)) {
			if (!sql_is_digit(*p))
				t->type = SQL_TOK_WORD;
			p++;
		}
		lx->p = p;
		return;
	}
	while (p < end && (sql_is_digit(*p) || *p == '_'))
		p++;
	if (end - p >= 2 && *p == '.' && sql_is_digit(p[1]))
		for (p++; p < end && (sql_is_digit(*p) || *p == '_'); p++)
			;
	if (p < end && (*p | 0x20) == 'e') {
		const uint8_t *q = p + 1;

		if (q < end && (*q == '+' || *q == '-'))
			q++;
		if (q < end && sql_is_digit(*q))
			for (p = q; p < end && sql_is_digit(*p); p++)
				;
	}
	lx->p = p;
}

/* A word; in PostgreSQL, also the string and identifier prefixes E'', B'', X'', N'', U&'', U&"". */
static void
sql_lex_word(struct sql_lexer *lx, struct sql_token *t)
{
	const uint8_t *p = lx->p, *end = lx->end;

	while (p < end && sql_is_ident_char(*p))
		p++;
	if (lx->dialect == SQL_DIALECT_POSTGRES && p - lx->p == 1 && p < end) {
		uint8_t c = *lx->p | 0x20;

		if (*p == '\'' && (c == 'e' || c == 'b' || c == 'x' || c == 'n')) {
			lx->p = p;
			sql_lex_pg_string(lx, t, c == 'e' ? SQL_PG_STRING_ESCAPE :
			    c == 'n' ? SQL_PG_STRING_PLAIN : SQL_PG_STRING_RAW);
			return;
		}
		if (c == 'u' && end - p >= 2 && p[0] == '&' && (p[1] == '\'' || p[1] == '"')) {
			lx->p = p + 1;
			if (p[1] == '\'') {
				sql_lex_pg_string(lx, t, SQL_PG_STRING_RAW);
				return;
			}
			t->type = SQL_TOK_QIDENT;
			t->quote = '"';
			t->uescape = true;
			(void)sql_lex_quoted(lx, t, '"', false, false);
			return;
		}
	}
	lx->p = p;
	t->type = SQL_TOK_WORD;
	t->kw = sql_keyword_find(t->ptr, (size_t)(p - t->ptr));
}

/* The next token into T; SQL_TOK_END at the end. */
static void
sql_lex_next(struct sql_lexer *lx, struct sql_token *t)
{
	bool pg = lx->dialect == SQL_DIALECT_POSTGRES;
	uint8_t c;

	sql_lex_skip(lx);
	memset(t, 0, sizeof(*t));
	t->ptr = lx->p;
	if (lx->p == lx->end) {
		if (lx->exec_body != NULL) {
			lx->unterminated = true;	/* MySQL refuses an executable comment left open */
			lx->exec_body = NULL;
		}
		t->type = SQL_TOK_END;
		return;
	}
	c = *lx->p;
	switch (c) {
	case ';':
		/* MySQL starts each statement of a multi-statement text afresh, outside any comment. */
		if (lx->exec_body != NULL && lx->exec_alt != SQL_EXEC_ALWAYS)
			lx->ambiguous |= SQL_AMBIGUOUS_VERSION;
		lx->exec_body = NULL;
		t->type = SQL_TOK_SEMI;
		lx->p++;
		break;
	case '(':
		t->type = SQL_TOK_LPAREN;
		lx->p++;
		break;
	case ')':
		t->type = SQL_TOK_RPAREN;
		lx->p++;
		break;
	case ',':
		t->type = SQL_TOK_COMMA;
		lx->p++;
		break;
	case '.':
		t->type = SQL_TOK_DOT;
		lx->p++;
		break;
	case '\'':
		if (pg) {
			sql_lex_pg_string(lx, t, SQL_PG_STRING_PLAIN);
		} else {
			t->type = SQL_TOK_STRING;
			(void)sql_lex_quoted(lx, t, '\'', !(lx->modes & SQL_MODE_MYSQL_NO_BACKSLASH_ESCAPES), true);
		}
		break;
	case '"':
		if (!pg)
			lx->sensitive |= SQL_AMBIGUOUS_QUOTES;
		if (pg || (lx->modes & SQL_MODE_MYSQL_ANSI_QUOTES)) {
			t->type = SQL_TOK_QIDENT;
			t->quote = '"';
			(void)sql_lex_quoted(lx, t, '"', false, !pg);
		} else {
			t->type = SQL_TOK_STRING;
			(void)sql_lex_quoted(lx, t, '"', !(lx->modes & SQL_MODE_MYSQL_NO_BACKSLASH_ESCAPES), true);
		}
		break;
	case '`':
		if (pg) {
			t->type = SQL_TOK_OTHER;
			lx->p++;
		} else {
			t->type = SQL_TOK_QIDENT;
			t->quote = '`';
			(void)sql_lex_quoted(lx, t, '`', false, false);
		}
		break;
	case '$':
		if (pg)
			sql_lex_dollar(lx, t);
		else
			sql_lex_word(lx, t);
		break;
	default:
		if (sql_is_digit(c)) {
			sql_lex_number(lx, t);
		} else if (sql_is_ident_start(c)) {
			sql_lex_word(lx, t);
		} else {
			t->type = SQL_TOK_OTHER;
			lx->p++;
		}
		break;
	}
	t->len = (size_t)(lx->p - t->ptr);
}

/*
 * Whether the text splits into tokens at the same places under modes A and B, read in lockstep
 * from the start (PROTO, a fresh lexer): then the statements and their verbs are the same. A
 * token may still change type ("x" is a string or a name by ANSI_QUOTES), which only changes
 * what is recorded as a table, so that alone is not ambiguous.
 */
static bool
sql_lex_same(const struct sql_lexer *proto, unsigned a, unsigned b)
{
	struct sql_lexer la = *proto, lb = *proto;
	struct sql_token ta, tb;

	la.modes = a;
	lb.modes = b;
	do {
		sql_lex_next(&la, &ta);
		sql_lex_next(&lb, &tb);
		if (ta.ptr != tb.ptr || ta.len != tb.len)
			return false;
	} while (ta.type != SQL_TOK_END);
	return true;
}

/* The second readings: the string modes a client could switch to, one at a time and together. */
static unsigned
sql_lex_ambiguous_modes(const struct sql_lexer *proto, unsigned sensitive)
{
	unsigned m = proto->modes, r = 0;

	if (sensitive == 0)
		return 0;
	if (proto->dialect == SQL_DIALECT_POSTGRES)
		return sql_lex_same(proto, m, m ^ SQL_MODE_PG_NO_STANDARD_STRINGS) ? 0 : SQL_AMBIGUOUS_ESCAPES;
	if (!sql_lex_same(proto, m, m ^ SQL_MODE_MYSQL_NO_BACKSLASH_ESCAPES))
		r |= SQL_AMBIGUOUS_ESCAPES;
	if (!sql_lex_same(proto, m, m ^ SQL_MODE_MYSQL_ANSI_QUOTES))
		r |= SQL_AMBIGUOUS_QUOTES;
	if (r == 0 && !sql_lex_same(proto, m, m ^ SQL_MODE_MYSQL_NO_BACKSLASH_ESCAPES ^ SQL_MODE_MYSQL_ANSI_QUOTES))
		r |= SQL_AMBIGUOUS_ESCAPES | SQL_AMBIGUOUS_QUOTES;
	return r;
}

/* ---- Classifier ---- */

static struct sql_level *
sql_walk_level(struct sql_walk *w)
{
	return w->s.depth <= SQL_DEPTH_MAX ? &w->s.lv[w->s.depth] : NULL;
}

/* The keywords of the next N tokens, SQL_KW_NONE for other tokens and past the statement. */
static void
sql_walk_peek(const struct sql_walk *w, int *kw, size_t n)
{
	struct sql_lexer lx = w->lx;
	struct sql_token t;
	size_t i;

	for (i = 0; i < n; i++) {
		sql_lex_next(&lx, &t);
		if (t.type == SQL_TOK_END || t.type == SQL_TOK_SEMI)
			break;
		kw[i] = t.type == SQL_TOK_WORD ? t.kw : SQL_KW_NONE;
	}
	for (; i < n; i++)
		kw[i] = SQL_KW_NONE;
}

/* Whether the next token could be a table name. */
static bool
sql_walk_peek_name(const struct sql_walk *w)
{
	struct sql_lexer lx = w->lx;
	struct sql_token t;

	sql_lex_next(&lx, &t);
	if (t.type == SQL_TOK_QIDENT)
		return true;
	return t.type == SQL_TOK_WORD && !(sql_keywords[t.kw].flags & SQL_KF_NOTNAME);
}

/* Sub-statement work of kind K: to the explained statement after EXPLAIN, else the statement's. */
static void
sql_walk_fold(struct sql_walk *w, enum sql_kind k)
{
	if (w->s.explain) {
		if (k > w->s.inner)
			w->s.inner = k;
		w->s.inner_kinds |= SQL_KIND_BIT(k);
	} else {
		if (k > w->s.sub)
			w->s.sub = k;
		w->s.sub_kinds |= SQL_KIND_BIT(k);
	}
}

/* Work of kind K that shows only in kinds (MERGE's actions). */
static void
sql_walk_mark(struct sql_walk *w, enum sql_kind k)
{
	if (w->s.explain)
		w->s.inner_kinds |= SQL_KIND_BIT(k);
	else
		w->s.sub_kinds |= SQL_KIND_BIT(k);
}

static bool
sql_names_put(struct sql_result *out, size_t *pos, uint8_t c)
{
	if (*pos >= SQL_NAMES_SIZE)
		return false;
	out->names[(*pos)++] = (char)c;
	return true;
}

/* One part of a name into the result's names at *POS, unquoted and folded as the server does. */
static bool
sql_names_part(struct sql_walk *w, const struct sql_token *t, size_t *pos)
{
	bool pg = w->lx.dialect == SQL_DIALECT_POSTGRES, quoted = t->type == SQL_TOK_QIDENT;
	const uint8_t *p = quoted ? t->body : t->ptr;
	size_t len = quoted ? t->body_len : t->len, start = *pos;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = p[i];

		if (quoted && c == t->quote && i + 1 < len && p[i + 1] == t->quote)
			i++;	/* a doubled quote stands for one */
		else if (!quoted && pg && c >= 'A' && c <= 'Z')
			c |= 0x20;
		if (!sql_names_put(w->out, pos, c))
			return false;
		if (pg && *pos - start > SQL_PG_NAME_MAX)
			break;
	}
	if (pg && *pos - start > SQL_PG_NAME_MAX) {
		/* Cut to 63 bytes, and back to the start of a character cut in two. */
		size_t cut = start + SQL_PG_NAME_MAX;

		while (cut > start && ((uint8_t)w->out->names[cut] & 0xC0) == 0x80)
			cut--;
		*pos = cut;
	}
	return true;
}

/* The name read so far is a table's: record it, once. */
static void
sql_tab_commit(struct sql_walk *w)
{
	struct sql_stmt_walk *s = &w->s;
	struct sql_statement *st = s->st;
	struct sql_result *out = w->out;
	size_t start = out->names_used, pos = start, n, i;
	bool ok = true;

	s->tab = SQL_TAB_IDLE;
	if (!s->record || s->nparts == 0)
		return;
	if (s->parts_overflow) {
		st->tables_incomplete = true;
		return;
	}
	for (i = 0; i < s->nparts; i++) {
		if (s->parts[i].uescape) {
			st->tables_incomplete = true;
			return;
		}
	}
	for (i = 0; i < s->nparts && ok; i++) {
		if (i > 0)
			ok = sql_names_put(out, &pos, '.');
		ok = ok && sql_names_part(w, &s->parts[i], &pos);
	}
	ok = ok && sql_names_put(out, &pos, '\0');
	if (!ok) {
		st->tables_incomplete = true;
		return;
	}
	n = pos - start - 1;
	for (i = 0; i < st->ntables; i++)
		if (st->tables[i].len == n && memcmp(st->tables[i].ptr, out->names + start, n) == 0)
			return;
	if (st->ntables == SQL_TABLES_MAX) {
		st->tables_incomplete = true;
		return;
	}
	st->tables[st->ntables++] = (struct slice){ (const uint8_t *)out->names + start, n };
	out->names_used = pos;
}

/* A table name may come next; CALL: one followed by '(' is a function. */
static void
sql_tab_expect(struct sql_walk *w, bool call)
{
	if (w->s.tab == SQL_TAB_NAME || w->s.tab == SQL_TAB_DOT)
		sql_tab_commit(w);
	w->s.tab = SQL_TAB_EXPECT;
	w->s.tab_call = call;
	w->s.nparts = 0;
	w->s.parts_overflow = false;
}

/* T to the table name being read; true when it was part of it. */
static bool
sql_tab_feed(struct sql_walk *w, const struct sql_token *t)
{
	struct sql_stmt_walk *s = &w->s;
	unsigned f = sql_keywords[t->kw].flags;

	switch (s->tab) {
	case SQL_TAB_EXPECT:
		if ((f & SQL_KF_PREFIX) && sql_walk_peek_name(w))
			return true;
		if (f & SQL_KF_NOTNAME)
			break;
		if (t->kw == SQL_KW_DUAL && w->lx.dialect == SQL_DIALECT_MYSQL)
			break;
		if (t->type == SQL_TOK_WORD || t->type == SQL_TOK_QIDENT) {
			s->parts[0] = *t;
			s->nparts = 1;
			s->tab = SQL_TAB_NAME;
			return true;
		}
		break;
	case SQL_TAB_NAME:
		if (t->type == SQL_TOK_DOT) {
			s->tab = SQL_TAB_DOT;
			return true;
		}
		if (!(s->tab_call && t->type == SQL_TOK_LPAREN))
			sql_tab_commit(w);
		break;
	case SQL_TAB_DOT:
		if (t->type == SQL_TOK_WORD || t->type == SQL_TOK_QIDENT) {
			if (s->nparts < SQL_NAME_PARTS_MAX)
				s->parts[s->nparts++] = *t;
			else
				s->parts_overflow = true;
			s->tab = SQL_TAB_NAME;
			return true;
		}
		sql_tab_commit(w);
		break;
	case SQL_TAB_IDLE:
		return false;
	}
	s->tab = SQL_TAB_IDLE;
	return false;
}

static bool
sql_kw_is_object_prefix(int kw)
{
	switch (kw) {
	case SQL_KW_OR: case SQL_KW_REPLACE: case SQL_KW_TEMP: case SQL_KW_TEMPORARY: case SQL_KW_UNLOGGED:
	case SQL_KW_GLOBAL: case SQL_KW_LOCAL:
		return true;
	default:
		return false;
	}
}

static bool
sql_kw_is_scope(int kw)
{
	switch (kw) {
	case SQL_KW_SESSION: case SQL_KW_LOCAL: case SQL_KW_GLOBAL: case SQL_KW_PERSIST: case SQL_KW_PERSIST_ONLY:
		return true;
	default:
		return false;
	}
}

/* CREATE, ALTER, DROP: of a role or user is dcl, of anything else ddl. */
static enum sql_kind
sql_verb_object(struct sql_walk *w, int verb)
{
	int nx[SQL_PEEK_MAX];
	size_t i;

	sql_walk_peek(w, nx, SQL_PEEK_MAX);
	for (i = 0; i + 1 < SQL_PEEK_MAX && sql_kw_is_object_prefix(nx[i]); i++)
		;
	switch (nx[i]) {
	case SQL_KW_ROLE: case SQL_KW_USER: case SQL_KW_GROUP:
		return SQL_KIND_DCL;
	case SQL_KW_OWNED:	/* DROP OWNED BY */
		return verb == SQL_KW_DROP ? SQL_KIND_DCL : SQL_KIND_DDL;
	case SQL_KW_DEFAULT:	/* ALTER DEFAULT PRIVILEGES */
		return verb == SQL_KW_ALTER ? SQL_KIND_DCL : SQL_KIND_DDL;
	case SQL_KW_PREPARE:	/* MySQL DROP PREPARE: DEALLOCATE */
		return verb == SQL_KW_DROP && w->lx.dialect == SQL_DIALECT_MYSQL ? SQL_KIND_SET : SQL_KIND_DDL;
	default:
		return SQL_KIND_DDL;
	}
}

/* SET: of a role, an identity or a password is dcl, of a transaction tcl, of a setting set. */
static enum sql_kind
sql_verb_set(struct sql_walk *w)
{
	int nx[SQL_PEEK_MAX];
	size_t i;

	sql_walk_peek(w, nx, SQL_PEEK_MAX);
	for (i = 0; i < 2 && sql_kw_is_scope(nx[i]); i++)	/* SET SESSION SESSION AUTHORIZATION */
		;
	switch (nx[i]) {
	case SQL_KW_ROLE: case SQL_KW_AUTHORIZATION: case SQL_KW_SESSION_AUTHORIZATION: case SQL_KW_PASSWORD:
		return SQL_KIND_DCL;
	case SQL_KW_DEFAULT:	/* MySQL SET DEFAULT ROLE */
		return nx[i + 1] == SQL_KW_ROLE ? SQL_KIND_DCL : SQL_KIND_SET;
	case SQL_KW_TRANSACTION: case SQL_KW_CHARACTERISTICS: case SQL_KW_CONSTRAINTS:
		return SQL_KIND_TCL;
	default:
		return SQL_KIND_SET;
	}
}

/*
 * The kind verb T says, at a level L that expected a statement. Sets what the verb implies for
 * the rest of the walk: the level's mode and statement, a table to expect, opaque.
 * SQL_KIND_EMPTY: the verb itself says nothing; what follows will (WITH, PREPARE ... AS).
 */
static enum sql_kind
sql_verb_kind(struct sql_walk *w, struct sql_level *L, const struct sql_token *t)
{
	bool pg = w->lx.dialect == SQL_DIALECT_POSTGRES;
	int nx[2];

	L->mode = SQL_W_BODY;
	if (t->type != SQL_TOK_WORD)
		return SQL_KIND_OTHER;
	switch (t->kw) {
	case SQL_KW_SELECT:
		L->verb = SQL_KIND_SELECT;
		L->from_ok = true;
		return SQL_KIND_SELECT;
	case SQL_KW_VALUES:
		L->verb = SQL_KIND_SELECT;
		return SQL_KIND_SELECT;
	case SQL_KW_TABLE:
		L->verb = SQL_KIND_SELECT;
		sql_tab_expect(w, false);
		return SQL_KIND_SELECT;
	case SQL_KW_WITH:
		L->mode = SQL_W_WITH;
		return SQL_KIND_EMPTY;
	case SQL_KW_REPLACE:
		if (pg)
			return SQL_KIND_OTHER;
		/* MySQL REPLACE is an INSERT that deletes the rows it collides with */
		__attribute__((fallthrough));
	case SQL_KW_INSERT:
		L->verb = SQL_KIND_INSERT;
		sql_tab_expect(w, false);
		return SQL_KIND_INSERT;
	case SQL_KW_UPDATE:
		L->verb = SQL_KIND_UPDATE;
		L->from_ok = true;
		L->tables = true;	/* MySQL: UPDATE a, b SET ... */
		L->tables_call = false;
		sql_tab_expect(w, false);
		return SQL_KIND_UPDATE;
	case SQL_KW_DELETE:
		L->verb = SQL_KIND_DELETE;
		L->from_ok = true;
		return SQL_KIND_DELETE;
	case SQL_KW_MERGE:
		L->verb = SQL_KIND_MERGE;
		return SQL_KIND_MERGE;
	case SQL_KW_CREATE: case SQL_KW_ALTER: case SQL_KW_DROP:
		return sql_verb_object(w, t->kw);
	case SQL_KW_TRUNCATE:
		L->tables = true;
		L->tables_call = false;
		sql_tab_expect(w, false);
		return SQL_KIND_DDL;
	case SQL_KW_RENAME:
		sql_walk_peek(w, nx, 1);
		return nx[0] == SQL_KW_USER ? SQL_KIND_DCL : SQL_KIND_DDL;
	case SQL_KW_COMMENT: case SQL_KW_REINDEX: case SQL_KW_CLUSTER: case SQL_KW_REFRESH: case SQL_KW_SECURITY:
	case SQL_KW_IMPORT:
		return SQL_KIND_DDL;
	case SQL_KW_GRANT: case SQL_KW_REVOKE: case SQL_KW_REASSIGN:
		return SQL_KIND_DCL;
	case SQL_KW_SET:
		return sql_verb_set(w);
	case SQL_KW_RESET:
		if (!pg)
			return SQL_KIND_OTHER;	/* MySQL RESET MASTER, REPLICA, PERSIST: administration */
		sql_walk_peek(w, nx, 2);
		if (nx[0] == SQL_KW_ROLE || nx[0] == SQL_KW_SESSION_AUTHORIZATION ||
		    (nx[0] == SQL_KW_SESSION && nx[1] == SQL_KW_AUTHORIZATION))
			return SQL_KIND_DCL;
		return SQL_KIND_SET;
	case SQL_KW_DISCARD: case SQL_KW_DEALLOCATE: case SQL_KW_USE:
		return SQL_KIND_SET;
	case SQL_KW_BEGIN:
		sql_walk_peek(w, nx, 2);
		if (nx[0] == SQL_KW_NOT)	/* MariaDB BEGIN NOT ATOMIC: a compound statement */
			return SQL_KIND_OTHER;
		return SQL_KIND_TCL;
	case SQL_KW_COMMIT: case SQL_KW_ROLLBACK: case SQL_KW_SAVEPOINT: case SQL_KW_RELEASE: case SQL_KW_END:
	case SQL_KW_ABORT: case SQL_KW_XA:
		return SQL_KIND_TCL;
	case SQL_KW_START:	/* MySQL START REPLICA, GROUP_REPLICATION: administration */
		sql_walk_peek(w, nx, 1);
		return nx[0] == SQL_KW_TRANSACTION ? SQL_KIND_TCL : SQL_KIND_OTHER;
	case SQL_KW_PREPARE:
		if (!pg) {	/* PREPARE name FROM 'text' or @variable: SQL made at run time */
			w->s.opaque = true;
			return SQL_KIND_DDL;
		}
		sql_walk_peek(w, nx, 1);
		if (nx[0] == SQL_KW_TRANSACTION)
			return SQL_KIND_TCL;
		L->mode = SQL_W_PREPARE;
		return SQL_KIND_EMPTY;
	case SQL_KW_EXECUTE:
		sql_walk_peek(w, nx, 1);
		if (nx[0] == SQL_KW_IMMEDIATE) {	/* MariaDB: runs a string made at run time */
			w->s.opaque = true;
			return SQL_KIND_DDL;
		}
		return SQL_KIND_OTHER;
	case SQL_KW_COPY:
		sql_tab_expect(w, false);
		return SQL_KIND_COPY;
	case SQL_KW_LOAD:
		sql_walk_peek(w, nx, 1);
		return nx[0] == SQL_KW_DATA || nx[0] == SQL_KW_XML ? SQL_KIND_COPY : SQL_KIND_OTHER;
	case SQL_KW_SHOW: case SQL_KW_FETCH: case SQL_KW_MOVE: case SQL_KW_CLOSE: case SQL_KW_HANDLER:
	case SQL_KW_HELP:
		return SQL_KIND_SELECT;
	case SQL_KW_EXPLAIN: case SQL_KW_DESCRIBE: case SQL_KW_DESC:
		L->mode = SQL_W_EXPLAIN;
		return SQL_KIND_EXPLAIN;
	case SQL_KW_CALL:
		return SQL_KIND_CALL;
	case SQL_KW_DO:
		if (!pg)
			return SQL_KIND_SELECT;	/* MySQL DO expr: evaluates, returns nothing */
		w->s.opaque = true;
		return SQL_KIND_DDL;
	case SQL_KW_DECLARE:
		if (!pg)
			return SQL_KIND_OTHER;
		L->mode = SQL_W_DECLARE;
		return SQL_KIND_EMPTY;
	case SQL_KW_BINLOG:	/* replays binary log events: any change at all */
		w->s.opaque = true;
		return SQL_KIND_DDL;
	default:
		return SQL_KIND_OTHER;
	}
}

/*
 * Functions whose call does what a weak kind does not say: `SELECT setval('s', 1)` writes,
 * `SELECT pg_terminate_backend(42)` administers, `SELECT pg_read_file('/etc/passwd')` reads
 * the server's files, `SELECT dblink_exec('…', 'DROP TABLE t')` runs SQL that is not in the
 * text. A call of one (by its last name part, so pg_catalog.setval too) folds its kind into
 * the statement's, as a sub-statement would. Functions of the database's own can do anything
 * their owner allowed and are not known here: a policy that cares lists what it allows.
 */
#define SQL_CALL_PG	0x1u
#define SQL_CALL_MY	0x2u

static const struct sql_call {
	const char *name;
	unsigned dialects;
	enum sql_kind kind;
	bool opaque;		/* runs SQL given as a value */
} sql_calls[] = {
	{ "nextval", SQL_CALL_PG | SQL_CALL_MY, SQL_KIND_INSERT, false },	/* a new value, as an insert makes */
	{ "setval", SQL_CALL_PG | SQL_CALL_MY, SQL_KIND_UPDATE, false },
	{ "lo_create", SQL_CALL_PG, SQL_KIND_UPDATE, false },
	{ "lo_creat", SQL_CALL_PG, SQL_KIND_UPDATE, false },
	{ "lo_unlink", SQL_CALL_PG, SQL_KIND_UPDATE, false },
	{ "lo_put", SQL_CALL_PG, SQL_KIND_UPDATE, false },
	{ "lo_from_bytea", SQL_CALL_PG, SQL_KIND_UPDATE, false },
	{ "lowrite", SQL_CALL_PG, SQL_KIND_UPDATE, false },
	{ "lo_truncate", SQL_CALL_PG, SQL_KIND_UPDATE, false },
	{ "lo_truncate64", SQL_CALL_PG, SQL_KIND_UPDATE, false },
	{ "lo_import", SQL_CALL_PG, SQL_KIND_COPY, false },
	{ "lo_export", SQL_CALL_PG, SQL_KIND_COPY, false },
	{ "pg_read_file", SQL_CALL_PG, SQL_KIND_COPY, false },
	{ "pg_read_binary_file", SQL_CALL_PG, SQL_KIND_COPY, false },
	{ "pg_stat_file", SQL_CALL_PG, SQL_KIND_COPY, false },
	{ "pg_ls_dir", SQL_CALL_PG, SQL_KIND_COPY, false },
	{ "pg_ls_logdir", SQL_CALL_PG, SQL_KIND_COPY, false },
	{ "pg_ls_waldir", SQL_CALL_PG, SQL_KIND_COPY, false },
	{ "pg_ls_tmpdir", SQL_CALL_PG, SQL_KIND_COPY, false },
	{ "pg_ls_archive_statusdir", SQL_CALL_PG, SQL_KIND_COPY, false },
	{ "pg_ls_logicalsnapdir", SQL_CALL_PG, SQL_KIND_COPY, false },
	{ "pg_ls_logicalmapdir", SQL_CALL_PG, SQL_KIND_COPY, false },
	{ "pg_ls_replslotdir", SQL_CALL_PG, SQL_KIND_COPY, false },
	{ "pg_file_write", SQL_CALL_PG, SQL_KIND_COPY, false },
	{ "pg_file_rename", SQL_CALL_PG, SQL_KIND_COPY, false },
	{ "pg_file_unlink", SQL_CALL_PG, SQL_KIND_COPY, false },
	{ "pg_file_sync", SQL_CALL_PG, SQL_KIND_COPY, false },
	{ "load_file", SQL_CALL_MY, SQL_KIND_COPY, false },
	{ "pg_terminate_backend", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_cancel_backend", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_reload_conf", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_rotate_logfile", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_promote", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_switch_wal", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_create_restore_point", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_backup_start", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_backup_stop", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_start_backup", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_stop_backup", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_wal_replay_pause", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_wal_replay_resume", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_create_physical_replication_slot", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_create_logical_replication_slot", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_copy_physical_replication_slot", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_copy_logical_replication_slot", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_drop_replication_slot", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_replication_slot_advance", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_logical_slot_get_changes", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_logical_slot_get_binary_changes", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_logical_emit_message", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_replication_origin_create", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_replication_origin_drop", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_replication_origin_advance", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_replication_origin_session_setup", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_log_backend_memory_contexts", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_import_system_collations", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_stat_reset", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_stat_reset_shared", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_stat_reset_single_table_counters", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_stat_reset_single_function_counters", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_stat_reset_slru", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_stat_reset_replication_slot", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_stat_reset_subscription_stats", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_notify", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_advisory_lock", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_advisory_lock_shared", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_advisory_xact_lock", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_advisory_xact_lock_shared", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_try_advisory_lock", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_try_advisory_lock_shared", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_try_advisory_xact_lock", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_try_advisory_xact_lock_shared", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_advisory_unlock", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_advisory_unlock_shared", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "pg_advisory_unlock_all", SQL_CALL_PG, SQL_KIND_OTHER, false },
	{ "get_lock", SQL_CALL_MY, SQL_KIND_OTHER, false },
	{ "release_lock", SQL_CALL_MY, SQL_KIND_OTHER, false },
	{ "release_all_locks", SQL_CALL_MY, SQL_KIND_OTHER, false },
	{ "master_pos_wait", SQL_CALL_MY, SQL_KIND_OTHER, false },
	{ "source_pos_wait", SQL_CALL_MY, SQL_KIND_OTHER, false },
	{ "master_gtid_wait", SQL_CALL_MY, SQL_KIND_OTHER, false },
	{ "dblink", SQL_CALL_PG, SQL_KIND_DDL, true },
	{ "dblink_exec", SQL_CALL_PG, SQL_KIND_DDL, true },
	{ "dblink_open", SQL_CALL_PG, SQL_KIND_DDL, true },
	{ "dblink_send_query", SQL_CALL_PG, SQL_KIND_DDL, true },
	{ "query_to_xml", SQL_CALL_PG, SQL_KIND_DDL, true },
	{ "query_to_xmlschema", SQL_CALL_PG, SQL_KIND_DDL, true },
	{ "query_to_xml_and_xmlschema", SQL_CALL_PG, SQL_KIND_DDL, true },
	{ "sys_exec", SQL_CALL_MY, SQL_KIND_DDL, true },
	{ "sys_eval", SQL_CALL_MY, SQL_KIND_DDL, true },
};

/* NAME (a word, or a quoted identifier: exact in PostgreSQL) equals the lower-case LIT. */
static bool
sql_name_is(const struct sql_token *name, bool pg, const char *lit)
{
	if (name->type == SQL_TOK_QIDENT) {
		size_t n = strlen(lit);

		if (name->body_len != n)
			return false;
		return pg ? memcmp(name->body, lit, n) == 0 : sql_keyword_cmp(name->body, n, lit) == 0;
	}
	return sql_keyword_cmp(name->ptr, name->len, lit) == 0;
}

/*
 * set_config(name, ...) sets a setting, as SET does, unless the setting is role or
 * session_authorization, which change who the session is (dcl, as SET ROLE). A name that is
 * not a plain literal of setting-name characters could be either: dcl.
 */
static enum sql_kind
sql_set_config_kind(const struct sql_walk *w)
{
	struct sql_lexer lx = w->lx;
	struct sql_token a;

	sql_lex_next(&lx, &a);
	if (a.type != SQL_TOK_STRING || a.body_len == 0)
		return SQL_KIND_DCL;
	for (size_t i = 0; i < a.body_len; i++) {
		uint8_t c = a.body[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
			return SQL_KIND_DCL;
	}
	if (sql_keyword_cmp(a.body, a.body_len, "role") == 0 || sql_keyword_cmp(a.body, a.body_len, "session_authorization") == 0)
		return SQL_KIND_DCL;
	return SQL_KIND_SET;
}

/* NAME is followed by '(': a call, of a function that may do more than its statement says. */
static void
sql_walk_call(struct sql_walk *w, const struct sql_token *name)
{
	bool pg = w->lx.dialect == SQL_DIALECT_POSTGRES;
	unsigned d = pg ? SQL_CALL_PG : SQL_CALL_MY;

	if (name->type == SQL_TOK_WORD && name->kw != SQL_KW_NONE)
		return;	/* IN (, VALUES (, EXISTS (, ...: no function of ours is a keyword */
	if (pg && sql_name_is(name, pg, "set_config")) {
		sql_walk_fold(w, sql_set_config_kind(w));
		return;
	}
	for (size_t i = 0; i < sizeof(sql_calls) / sizeof(sql_calls[0]); i++) {
		if (!(sql_calls[i].dialects & d) || !sql_name_is(name, pg, sql_calls[i].name))
			continue;
		sql_walk_fold(w, sql_calls[i].kind);
		if (sql_calls[i].opaque && (!w->s.explain || w->s.analyze))
			w->s.opaque = true;
		return;
	}
}

/* A statement's verb T at level L: the statement's own, or a sub-statement's. */
static void
sql_walk_verb(struct sql_walk *w, struct sql_level *L, const struct sql_token *t)
{
	struct sql_stmt_walk *s = &w->s;
	bool first = !s->have_verb;
	enum sql_kind k;

	if (first) {
		s->have_verb = true;
		s->top_kw = t->kw;
		if (sql_keywords[t->kw].flags & SQL_KF_VERB)
			s->st->verb = sql_keywords[t->kw].name;
	}
	k = sql_verb_kind(w, L, t);
	if (first) {
		s->top = k;
		s->explain = k == SQL_KIND_EXPLAIN;
	} else if (k != SQL_KIND_EMPTY && k != SQL_KIND_EXPLAIN) {
		sql_walk_fold(w, k);	/* an EXPLAIN inside: its statement folds in as it comes */
	}
}

/* PostgreSQL's parse_bool(), leaning to true: only a clear "false" is false. */
static bool
sql_token_is_false(const struct sql_token *t)
{
	static const char *const falses[] = { "false", "no", "off", "0" };
	const uint8_t *p = t->type == SQL_TOK_STRING ? t->body : t->ptr;
	size_t len = t->type == SQL_TOK_STRING ? t->body_len : t->len;

	if (t->type != SQL_TOK_WORD && t->type != SQL_TOK_STRING && t->type != SQL_TOK_NUMBER)
		return false;
	for (size_t i = 0; i < sizeof(falses) / sizeof(falses[0]); i++) {
		size_t n = strlen(falses[i]), j;

		if (len == 0 || len > n || (falses[i][0] == 'o' && len < 2))	/* "o" could be on */
			continue;
		for (j = 0; j < len && (p[j] | 0x20) == falses[i][j]; j++)
			;
		if (j == len)
			return true;
	}
	return false;
}

static void
sql_walk_option_done(struct sql_walk *w)
{
	if (w->s.opt_analyze)
		w->s.analyze = true;	/* ANALYZE without a value */
	w->s.opt_analyze = false;
}

/* A level ends: its UPDATE or DELETE, if any, had or had not a WHERE. */
static void
sql_walk_level_done(struct sql_walk *w, struct sql_level *L)
{
	if (L->mode == SQL_W_EXPLAIN_VALUE)
		sql_walk_option_done(w);
	if (L->verb == SQL_KIND_UPDATE || L->verb == SQL_KIND_DELETE) {
		w->s.ud_seen = true;
		if (!L->where)
			w->s.ud_unbounded = true;
	}
}

static void
sql_walk_open(struct sql_walk *w)
{
	struct sql_level *L = sql_walk_level(w), *C;
	enum sql_walk_mode child = SQL_W_PAREN;
	bool chain = false;

	if (L != NULL) {
		switch (L->mode) {
		case SQL_W_START:	/* (SELECT ...) UNION ... */
		case SQL_W_WITH_AFTER:	/* WITH x AS (...) (SELECT ...) */
			child = SQL_W_START;
			chain = true;
			L->mode = SQL_W_BODY;
			break;
		case SQL_W_EXPLAIN_OPTS:	/* EXPLAIN ((SELECT 1)): a statement after all */
			child = SQL_W_START;
			chain = true;
			L->mode = SQL_W_BODY;
			L->chain = true;
			w->s.lv[w->s.depth - 1].mode = SQL_W_BODY;
			break;
		case SQL_W_WITH_NAME:
			child = SQL_W_BODY;
			L->mode = SQL_W_WITH_COLS;
			break;
		case SQL_W_WITH_AS:
			child = SQL_W_START;
			L->mode = SQL_W_CTE_BODY;
			break;
		case SQL_W_EXPLAIN:
			child = SQL_W_EXPLAIN_OPTS;
			L->mode = SQL_W_EXPLAIN_WAIT;
			break;
		case SQL_W_PREPARE_NAME: case SQL_W_DECLARE: case SQL_W_WITH_TAIL: case SQL_W_EXPLAIN_OPT:
		case SQL_W_EXPLAIN_VALUE:
			child = SQL_W_BODY;
			break;
		default:
			L->mode = SQL_W_BODY;	/* WITH (options), not a CTE */
			break;
		}
	}
	w->s.depth++;
	C = sql_walk_level(w);
	if (C == NULL) {
		w->too_deep = true;
		return;
	}
	memset(C, 0, sizeof(*C));
	C->mode = child;
	C->chain = chain;
}

static void
sql_walk_close(struct sql_walk *w)
{
	struct sql_level *C, *L;

	if (w->s.depth == 0)
		return;	/* a stray ')': the server refuses the statement */
	C = sql_walk_level(w);
	if (C != NULL)
		sql_walk_level_done(w, C);
	w->s.depth--;
	L = sql_walk_level(w);
	if (L == NULL)
		return;
	if (C != NULL && C->chain && L->verb == SQL_KIND_EMPTY && C->verb == SQL_KIND_SELECT)
		L->verb = SQL_KIND_SELECT;	/* (SELECT ...) INTO OUTFILE */
	if (L->mode == SQL_W_WITH_COLS)
		L->mode = SQL_W_WITH_COLS_DONE;
	else if (L->mode == SQL_W_CTE_BODY)
		L->mode = SQL_W_WITH_AFTER;
	else if (L->mode == SQL_W_EXPLAIN_WAIT)
		L->mode = SQL_W_EXPLAIN;
}

/* A keyword's effect in the body of a statement at level L. */
static void
sql_walk_body(struct sql_walk *w, struct sql_level *L, const struct sql_token *t)
{
	struct sql_stmt_walk *s = &w->s;
	bool pg = w->lx.dialect == SQL_DIALECT_POSTGRES;
	int kw = t->kw, nx[1];

	if (t->type == SQL_TOK_COMMA) {
		if (L->tables)
			sql_tab_expect(w, L->tables_call);
		return;
	}
	if (t->type != SQL_TOK_WORD || kw == SQL_KW_NONE)
		return;
	if (sql_keywords[kw].flags & SQL_KF_ENDLIST)
		L->tables = false;
	switch (kw) {
	case SQL_KW_WITH:
		L->mode = SQL_W_WITH;
		break;
	case SQL_KW_WHERE:
		L->where = true;
		break;
	case SQL_KW_SELECT:
		if (s->top_kw != SQL_KW_GRANT && s->top_kw != SQL_KW_REVOKE)	/* REVOKE SELECT ON t FROM role */
			L->from_ok = true;
		break;
	case SQL_KW_FROM:
		if (L->from_ok && s->prev_kw != SQL_KW_DISTINCT) {	/* not IS DISTINCT FROM */
			sql_tab_expect(w, true);
			L->tables = true;
			L->tables_call = true;
		}
		break;
	case SQL_KW_JOIN:
		sql_tab_expect(w, true);
		break;
	case SQL_KW_USING:
		if (L->verb == SQL_KIND_DELETE) {
			sql_tab_expect(w, true);
			L->tables = true;
			L->tables_call = true;
		} else if (L->verb == SQL_KIND_MERGE) {
			sql_tab_expect(w, true);
		}
		break;
	case SQL_KW_INTO:
		if (L->verb == SQL_KIND_SELECT && pg) {
			sql_walk_fold(w, SQL_KIND_DDL);	/* SELECT ... INTO creates the table */
			sql_tab_expect(w, false);
		} else if (L->verb == SQL_KIND_SELECT) {
			sql_walk_peek(w, nx, 1);
			if (nx[0] == SQL_KW_OUTFILE || nx[0] == SQL_KW_DUMPFILE)
				sql_walk_fold(w, SQL_KIND_COPY);
		} else if (L->verb == SQL_KIND_INSERT || L->verb == SQL_KIND_MERGE) {
			sql_tab_expect(w, false);
		}
		break;
	case SQL_KW_TABLE:
		sql_tab_expect(w, false);
		if (s->top_kw == SQL_KW_DROP || s->top_kw == SQL_KW_TRUNCATE || s->top_kw == SQL_KW_LOCK) {
			L->tables = true;
			L->tables_call = false;
		}
		break;
	case SQL_KW_REFERENCES:
		sql_tab_expect(w, false);
		break;
	case SQL_KW_UPDATE:
		if (L->verb == SQL_KIND_INSERT && s->prev_kw == (pg ? SQL_KW_DO : SQL_KW_KEY)) {
			sql_walk_fold(w, SQL_KIND_UPDATE);	/* ON CONFLICT DO UPDATE, ON DUPLICATE KEY UPDATE */
			s->ud_seen = true;
		} else if (L->verb == SQL_KIND_MERGE && s->prev_kw == SQL_KW_THEN) {
			sql_walk_mark(w, SQL_KIND_UPDATE);
		}
		break;
	case SQL_KW_DELETE:
		if (L->verb == SQL_KIND_MERGE && s->prev_kw == SQL_KW_THEN)
			sql_walk_mark(w, SQL_KIND_DELETE);
		break;
	case SQL_KW_INSERT:
		if (L->verb == SQL_KIND_MERGE && s->prev_kw == SQL_KW_THEN)
			sql_walk_mark(w, SQL_KIND_INSERT);
		break;
	default:
		break;
	}
}

/* EXPLAIN's options, then its statement; in MySQL, DESCRIBE t describes a table. */
static bool
sql_walk_explain(struct sql_walk *w, struct sql_level *L, const struct sql_token *t)
{
	struct sql_stmt_walk *s = &w->s;
	int kw = t->kw;

	if (kw == SQL_KW_ANALYZE || kw == SQL_KW_ANALYSE) {
		s->analyze = true;
	} else if (kw == SQL_KW_VERBOSE || kw == SQL_KW_EXTENDED || kw == SQL_KW_PARTITIONS) {
		/* options that change nothing that runs */
	} else if (kw == SQL_KW_FORMAT) {
		L->mode = SQL_W_EXPLAIN_FORMAT;
	} else if (kw == SQL_KW_FOR) {
		sql_walk_fold(w, SQL_KIND_OTHER);	/* MySQL EXPLAIN FOR CONNECTION n */
		L->mode = SQL_W_BODY;
	} else if (sql_keywords[kw].flags & SQL_KF_VERB) {
		sql_walk_verb(w, L, t);
	} else if ((t->type == SQL_TOK_WORD || t->type == SQL_TOK_QIDENT) && s->explain &&
	    s->inner == SQL_KIND_EMPTY) {
		s->top = SQL_KIND_SELECT;	/* DESCRIBE t: the table's columns */
		s->explain = false;
		L->mode = SQL_W_BODY;
		sql_tab_expect(w, false);
		(void)sql_tab_feed(w, t);
	} else {
		L->mode = SQL_W_BODY;
		return false;
	}
	return true;
}

/* T at level L, by what the level is waiting for. */
static void
sql_walk_mode(struct sql_walk *w, struct sql_level *L, const struct sql_token *t)
{
	struct sql_stmt_walk *s = &w->s;
	int kw = t->kw;
	unsigned f = sql_keywords[kw].flags;

	for (;;) {
		switch (L->mode) {
		case SQL_W_START:
			sql_walk_verb(w, L, t);
			return;
		case SQL_W_PAREN:
			if (f & SQL_KF_SUBQUERY) {
				sql_walk_verb(w, L, t);
				return;
			}
			L->mode = SQL_W_BODY;
			continue;
		case SQL_W_WITH:
			if (kw == SQL_KW_RECURSIVE)
				return;
			if (t->type == SQL_TOK_QIDENT || (t->type == SQL_TOK_WORD && !(f & SQL_KF_NOTNAME))) {
				L->mode = SQL_W_WITH_NAME;
				return;
			}
			L->mode = SQL_W_BODY;
			continue;
		case SQL_W_WITH_NAME:
		case SQL_W_WITH_COLS_DONE:
			if (kw == SQL_KW_AS) {
				L->mode = SQL_W_WITH_AS;
				return;
			}
			L->mode = SQL_W_BODY;
			continue;
		case SQL_W_WITH_AS:
			if (kw == SQL_KW_NOT || kw == SQL_KW_MATERIALIZED)
				return;
			L->mode = SQL_W_BODY;
			continue;
		case SQL_W_WITH_AFTER:
			if (t->type == SQL_TOK_COMMA) {
				L->mode = SQL_W_WITH;
				return;
			}
			if (kw == SQL_KW_SEARCH || kw == SQL_KW_CYCLE) {
				L->mode = SQL_W_WITH_TAIL;
				return;
			}
			if (f & SQL_KF_VERB) {
				sql_walk_verb(w, L, t);
				return;
			}
			L->mode = SQL_W_BODY;
			continue;
		case SQL_W_WITH_TAIL:
			if (t->type == SQL_TOK_COMMA)
				L->mode = SQL_W_WITH;
			else if (f & SQL_KF_MAIN)
				sql_walk_verb(w, L, t);
			return;
		case SQL_W_EXPLAIN:
			if (sql_walk_explain(w, L, t))
				return;
			continue;
		case SQL_W_EXPLAIN_FORMAT:
			L->mode = SQL_W_EXPLAIN;
			if (t->type == SQL_TOK_OTHER) {	/* FORMAT = JSON */
				L->mode = SQL_W_EXPLAIN_FORMAT;
				return;
			}
			if (t->type == SQL_TOK_WORD || t->type == SQL_TOK_STRING)
				return;
			continue;
		case SQL_W_EXPLAIN_OPTS:
			if (f & SQL_KF_SUBQUERY) {	/* EXPLAIN (SELECT 1): a statement, not options */
				s->lv[s->depth - 1].mode = SQL_W_BODY;
				L->mode = SQL_W_START;
				L->chain = true;
				continue;
			}
			L->mode = SQL_W_EXPLAIN_OPT;
			continue;
		case SQL_W_EXPLAIN_OPT:
			if (t->type == SQL_TOK_WORD) {
				s->opt_analyze = kw == SQL_KW_ANALYZE || kw == SQL_KW_ANALYSE;
				L->mode = SQL_W_EXPLAIN_VALUE;
			}
			return;
		case SQL_W_EXPLAIN_VALUE:
			if (t->type == SQL_TOK_COMMA) {
				sql_walk_option_done(w);
				L->mode = SQL_W_EXPLAIN_OPT;
			} else if (s->opt_analyze) {
				if (!sql_token_is_false(t))
					s->analyze = true;
				s->opt_analyze = false;
			}
			return;
		case SQL_W_PREPARE:
			if (t->type == SQL_TOK_WORD || t->type == SQL_TOK_QIDENT) {
				L->mode = SQL_W_PREPARE_NAME;
				return;
			}
			L->mode = SQL_W_BODY;
			continue;
		case SQL_W_PREPARE_NAME:
			if (kw == SQL_KW_AS)
				L->mode = SQL_W_START;
			return;
		case SQL_W_DECLARE:
			if (kw == SQL_KW_FOR)
				L->mode = SQL_W_START;
			return;
		case SQL_W_BODY:
		case SQL_W_WITH_COLS:
		case SQL_W_CTE_BODY:
		case SQL_W_EXPLAIN_WAIT:
			sql_walk_body(w, L, t);
			return;
		}
		return;
	}
}

static void
sql_walk_token(struct sql_walk *w, const struct sql_token *t)
{
	struct sql_level *L;

	if (t->type == SQL_TOK_LPAREN && w->s.prev_name)
		sql_walk_call(w, &w->s.prev_tok);
	w->s.prev_name = t->type == SQL_TOK_WORD || t->type == SQL_TOK_QIDENT;
	if (w->s.prev_name)
		w->s.prev_tok = *t;
	if (!sql_tab_feed(w, t)) {
		if (t->type == SQL_TOK_LPAREN) {
			sql_walk_open(w);
		} else if (t->type == SQL_TOK_RPAREN) {
			sql_walk_close(w);
		} else {
			L = sql_walk_level(w);
			if (L != NULL)	/* deeper than SQL_DEPTH_MAX: counted, not followed */
				sql_walk_mode(w, L, t);
		}
	}
	w->s.prev_kw = t->type == SQL_TOK_WORD ? t->kw : SQL_KW_NONE;
}

static void
sql_walk_begin(struct sql_walk *w, struct sql_statement *st, bool record, const uint8_t *first)
{
	memset(&w->s, 0, sizeof(w->s));
	memset(st, 0, sizeof(*st));
	w->s.st = st;
	w->s.record = record;
	w->s.first = first;
	w->s.last = first;
	w->s.lv[0].mode = SQL_W_START;
}

/* The statement's end: its kind, and its share of the whole. */
static void
sql_walk_finish(struct sql_walk *w)
{
	struct sql_stmt_walk *s = &w->s;
	struct sql_statement *st = s->st;
	struct sql_result *out = w->out;
	enum sql_kind k;
	size_t d;

	if (s->tab == SQL_TAB_NAME || s->tab == SQL_TAB_DOT)
		sql_tab_commit(w);
	for (d = s->depth < SQL_DEPTH_MAX ? s->depth : SQL_DEPTH_MAX;; d--) {
		sql_walk_level_done(w, &s->lv[d]);
		if (d == 0)
			break;
	}
	st->text = (struct slice){ s->first, (size_t)(s->last - s->first) };
	st->opaque = s->opaque;
	st->has_where = s->ud_seen && !s->ud_unbounded;
	st->inner_kind = SQL_KIND_EMPTY;
	if (s->explain) {
		st->kind = SQL_KIND_EXPLAIN;
		st->inner_kind = s->inner != SQL_KIND_EMPTY ? s->inner : SQL_KIND_OTHER;
		st->explain_analyze = s->analyze;
		st->kinds = SQL_KIND_BIT(SQL_KIND_EXPLAIN) | (s->analyze ? s->inner_kinds : 0);
	} else {
		st->kind = s->top > s->sub ? s->top : s->sub;
		if (st->kind == SQL_KIND_EMPTY)
			st->kind = SQL_KIND_OTHER;	/* WITH, PREPARE or DECLARE that never got to a statement */
		st->kinds = SQL_KIND_BIT(st->kind) | s->sub_kinds;
		if (s->top != SQL_KIND_EMPTY)
			st->kinds |= SQL_KIND_BIT(s->top);
	}
	k = st->explain_analyze && st->inner_kind > st->kind ? st->inner_kind : st->kind;
	if (k > out->kind)
		out->kind = k;
	out->kinds |= st->kinds;
	out->opaque |= st->opaque;
}

const char *
sql_kind_name(enum sql_kind kind)
{
	static const char *const names[SQL_KIND_COUNT] = {
		[SQL_KIND_EMPTY] = "empty",
		[SQL_KIND_SELECT] = "select",
		[SQL_KIND_EXPLAIN] = "explain",
		[SQL_KIND_SET] = "set",
		[SQL_KIND_TCL] = "tcl",
		[SQL_KIND_INSERT] = "insert",
		[SQL_KIND_UPDATE] = "update",
		[SQL_KIND_DELETE] = "delete",
		[SQL_KIND_MERGE] = "merge",
		[SQL_KIND_CALL] = "call",
		[SQL_KIND_COPY] = "copy",
		[SQL_KIND_OTHER] = "other",
		[SQL_KIND_DCL] = "dcl",
		[SQL_KIND_DDL] = "ddl",
	};

	if ((unsigned)kind >= SQL_KIND_COUNT)
		return "?";
	return names[kind];
}

int
sql_classify(const char *text, size_t len, enum sql_dialect d, unsigned modes, struct sql_result *out)
{
	struct sql_walk w;	/* about 5 KB */
	struct sql_lexer proto;
	struct sql_statement scratch;
	struct sql_token t;

	if (out == NULL || (text == NULL && len > 0) || (d != SQL_DIALECT_POSTGRES && d != SQL_DIALECT_MYSQL))
		return -1;
	if (text == NULL)
		text = "";	/* no arithmetic on a NULL pointer, not even + 0 */
	/* Only the summary: each statement slot is cleared when a statement starts, and the name
	 * store is used from the front, so clearing all of its ~28 KiB would cost more than lexing. */
	memset(out, 0, offsetof(struct sql_result, statements));
	out->names_used = 0;
	memset(&w.lx, 0, sizeof(w.lx));
	w.too_deep = false;
	w.out = out;
	w.lx.base = (const uint8_t *)text;
	w.lx.p = w.lx.base;
	w.lx.end = w.lx.base + len;
	w.lx.dialect = d;
	w.lx.modes = modes;
	proto = w.lx;

	sql_lex_next(&w.lx, &t);
	while (t.type != SQL_TOK_END) {
		bool record = out->nstatements < SQL_STATEMENTS_MAX;

		if (t.type == SQL_TOK_SEMI) {	/* an empty statement is no statement */
			sql_lex_next(&w.lx, &t);
			continue;
		}
		sql_walk_begin(&w, record ? &out->statements[out->nstatements] : &scratch, record, t.ptr);
		do {
			w.s.last = t.ptr + t.len;
			sql_walk_token(&w, &t);
			sql_lex_next(&w.lx, &t);
		} while (t.type != SQL_TOK_END && t.type != SQL_TOK_SEMI);
		sql_walk_finish(&w);
		out->nstatements++;
	}
	out->unterminated = w.lx.unterminated || w.too_deep;
	out->ambiguous = w.lx.ambiguous | sql_lex_ambiguous_modes(&proto, w.lx.sensitive);
	out->truncated = out->nstatements > SQL_STATEMENTS_MAX;
	return 0;
}
