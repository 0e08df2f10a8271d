/*
 * Unit tests of the SQL lexer and classifier (policy/sql.c): first the corpus, a few hundred
 * statements with their expected classification (tests/unit/sql_corpus.txt, given as the first
 * argument; each line is its own TAP test), then the API's details one behaviour at a time:
 * arguments, statement texts and their bounds, the limits (statements, tables, name space,
 * depth), name normalization, and that pathological texts still take linear time.
 */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "policy/sql.h"
#include "tests/unit/check.h"

#define CORPUS_DEFAULT	"tests/unit/sql_corpus.txt"
#define CORPUS_LINE_MAX	4096
#define CORPUS_TABLES_MAX 1024

static struct sql_result res;	/* 30 KB: not on the stack */

static int
classify(enum sql_dialect d, const char *text)
{
	return sql_classify(text, strlen(text), d, 0, &res);
}

static int
slice_is(struct slice s, const char *text)
{
	return s.ptr != NULL && s.len == strlen(text) && memcmp(s.ptr, text, s.len) == 0;
}

/* ---- the corpus ---- */

static int
kind_parse(const char *name, enum sql_kind *k)
{
	for (int i = 0; i < SQL_KIND_COUNT; i++) {
		if (strcmp(sql_kind_name((enum sql_kind)i), name) == 0) {
			*k = (enum sql_kind)i;
			return 0;
		}
	}
	return -1;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* \n \r \t \v \f \\ \xHH in S, in place (any other backslash stays); returns the length. */
static size_t
unescape(char *s)
{
	char *o = s;

	for (char *p = s; *p != '\0'; p++) {
		if (*p != '\\' || p[1] == '\0') {
			*o++ = *p;
			continue;
		}
		switch (*++p) {
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'v': *o++ = '\v'; break;
		case 'f': *o++ = '\f'; break;
		case 'x': {
			char hex[3] = { p[1], p[1] ? p[2] : '\0', '\0' };

			*o++ = (char)strtol(hex, NULL, 16);
			p += 2;
			break;
		}
		case '\\': *o++ = '\\'; break;
		default: *o++ = '\\'; *o++ = *p; break;
		}
	}
	return (size_t)(o - s);
}

/* The SQL_KIND_BIT set named by "a,b,c". */
static int
kinds_parse(char *list, unsigned *mask)
{
	*mask = 0;
	for (char *k = strtok(list, ","); k != NULL; k = strtok(NULL, ",")) {
		enum sql_kind kind;

		if (kind_parse(k, &kind) != 0)
			return -1;
		*mask |= SQL_KIND_BIT(kind);
	}
	return 0;
}

static unsigned
ambiguous_parse(char *list)
{
	unsigned m = 0;

	for (char *k = strtok(list, ","); k != NULL; k = strtok(NULL, ",")) {
		if (strcmp(k, "escapes") == 0)
			m |= SQL_AMBIGUOUS_ESCAPES;
		else if (strcmp(k, "quotes") == 0)
			m |= SQL_AMBIGUOUS_QUOTES;
		else if (strcmp(k, "version") == 0)
			m |= SQL_AMBIGUOUS_VERSION;
		else if (strcmp(k, "encoding") == 0)
			m |= SQL_AMBIGUOUS_ENCODING;
		else
			m |= 0x80000000u;	/* an unknown word fails the check */
	}
	return m;
}

/* Every statement's tables in order, joined by ','. */
static void
tables_join(char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < res.nstatements && i < SQL_STATEMENTS_MAX; i++) {
		for (size_t j = 0; j < res.statements[i].ntables; j++) {
			struct slice t = res.statements[i].tables[j];

			n += (size_t)snprintf(buf + n, size - n, "%s%.*s", n ? "," : "", (int)t.len, (const char *)t.ptr);
			if (n >= size)
				return;
		}
	}
}

/*
 * One corpus line: "dialect | kind | flags | SQL" (see the corpus file's header). Returns the
 * failures, after printing what differed.
 */
static void
corpus_check(char *line, int lineno)
{
	char *f[4], *p = line, *flags, *tok, *save = NULL, buf[CORPUS_TABLES_MAX], sql[CORPUS_LINE_MAX];
	const struct sql_statement *s0 = &res.statements[0];
	enum sql_kind want;
	enum sql_dialect d;
	unsigned modes = 0, amb = 0;
	bool unterminated = false, opaque = false, incomplete = false, esc = false;
	size_t len;

	for (int i = 0; i < 3; i++) {
		char *bar = strchr(p, '|');

		if (bar == NULL) {
			printf("# line %d: want \"dialect | kind | flags | SQL\"\n", lineno);
			check_failed++;
			return;
		}
		*bar = '\0';
		f[i] = trim(p);
		p = bar + 1;
	}
	f[3] = p[0] == ' ' ? p + 1 : p;	/* the SQL as written, but for the one space after '|' */
	f[3][strcspn(f[3], "\r\n")] = '\0';
	d = strcmp(f[0], "my") == 0 ? SQL_DIALECT_MYSQL : SQL_DIALECT_POSTGRES;
	if ((strcmp(f[0], "pg") != 0 && strcmp(f[0], "my") != 0) || kind_parse(f[1], &want) != 0) {
		printf("# line %d: unknown dialect \"%s\" or kind \"%s\"\n", lineno, f[0], f[1]);
		check_failed++;
		return;
	}
	flags = f[2];
	/* Settings first: they change how the SQL is read. */
	snprintf(buf, sizeof(buf), "%s", flags);
	for (tok = strtok_r(buf, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		if (strcmp(tok, "esc") == 0)
			esc = true;
		else if (strcmp(tok, "mode=scs_off") == 0)
			modes |= SQL_MODE_PG_NO_STANDARD_STRINGS;
		else if (strcmp(tok, "mode=nobs") == 0)
			modes |= SQL_MODE_MYSQL_NO_BACKSLASH_ESCAPES;
		else if (strcmp(tok, "mode=ansi") == 0)
			modes |= SQL_MODE_MYSQL_ANSI_QUOTES;
	}
	snprintf(sql, sizeof(sql), "%s", f[3]);
	len = esc ? unescape(sql) : strlen(sql);
	if (sql_classify(sql, len, d, modes, &res) != 0) {
		printf("# line %d: sql_classify failed\n", lineno);
		check_failed++;
		return;
	}
	if (res.kind != want) {
		printf("# line %d: kind %s, want %s\n", lineno, sql_kind_name(res.kind), f[1]);
		check_failed++;
	}
	save = NULL;
	for (tok = strtok_r(flags, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		char *val = strchr(tok, '=');
		enum sql_kind k;
		unsigned mask;
		bool ok = true;

		if (val != NULL)
			*val++ = '\0';
		if (strcmp(tok, "-") == 0 || strcmp(tok, "esc") == 0 || strcmp(tok, "mode") == 0) {
			continue;
		} else if (strcmp(tok, "n") == 0) {
			ok = res.nstatements == strtoul(val, NULL, 10);
		} else if (tok[0] == 's' && tok[1] >= '0' && tok[1] <= '9' && val != NULL) {
			size_t i = strtoul(tok + 1, NULL, 10);

			ok = kind_parse(val, &k) == 0 && i < res.nstatements && res.statements[i].kind == k;
		} else if (strcmp(tok, "inner") == 0) {
			ok = kind_parse(val, &k) == 0 && res.nstatements > 0 && s0->inner_kind == k;
		} else if (strcmp(tok, "analyze") == 0 || strcmp(tok, "noanalyze") == 0) {
			ok = res.nstatements > 0 && s0->explain_analyze == (tok[0] == 'a');
		} else if (strcmp(tok, "where") == 0 || strcmp(tok, "nowhere") == 0) {
			ok = res.nstatements > 0 && s0->has_where == (tok[0] == 'w');
		} else if (strcmp(tok, "verb") == 0) {
			ok = res.nstatements > 0 && (strcmp(val, "-") == 0 ? s0->verb == NULL :
			    s0->verb != NULL && strcmp(s0->verb, val) == 0);
		} else if (strcmp(tok, "tables") == 0) {
			char got[CORPUS_TABLES_MAX];

			tables_join(got, sizeof(got));
			ok = strcmp(got, val) == 0;
			if (!ok)
				printf("# line %d: tables \"%s\", want \"%s\"\n", lineno, got, val);
		} else if (strcmp(tok, "kinds") == 0) {
			ok = kinds_parse(val, &mask) == 0 && res.kinds == mask;
		} else if (strcmp(tok, "unterminated") == 0) {
			unterminated = true;
		} else if (strcmp(tok, "opaque") == 0) {
			opaque = true;
		} else if (strcmp(tok, "incomplete") == 0) {
			incomplete = true;
		} else if (strcmp(tok, "amb") == 0) {
			amb = ambiguous_parse(val);
		} else {
			printf("# line %d: unknown flag \"%s\"\n", lineno, tok);
			ok = false;
		}
		if (!ok) {
			printf("# line %d: flag %s%s%s does not hold\n", lineno, tok, val ? "=" : "", val ? val : "");
			check_failed++;
		}
	}
	/* These hold both ways: not asked for means not there. */
	if (res.unterminated != unterminated || res.opaque != opaque || res.ambiguous != amb ||
	    (res.nstatements > 0 && s0->tables_incomplete != incomplete)) {
		printf("# line %d: unterminated %d opaque %d ambiguous %#x incomplete %d, want %d %d %#x %d\n", lineno,
		    res.unterminated, res.opaque, res.ambiguous, res.nstatements > 0 && s0->tables_incomplete,
		    unterminated, opaque, amb, incomplete);
		check_failed++;
	}
}

/* The SQL field of a corpus line, for the test's name. */
static const char *
corpus_sql(const char *line)
{
	for (int i = 0; i < 3 && line != NULL; i++)
		if ((line = strchr(line, '|')) != NULL)
			line++;
	return line != NULL ? line : "";
}

static void
corpus_run(const char *path)
{
	char line[CORPUS_LINE_MAX], name[80];
	FILE *fp = fopen(path, "r");
	int lineno = 0, cases = 0;

	if (fp == NULL) {
		check_failed = 1;
		check_total++;
		check_bad++;
		printf("not ok %d - corpus %s cannot be read (give its path as the first argument)\n", check_total, path);
		return;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *t = trim(line);

		lineno++;
		if (*t == '\0' || *t == '#')
			continue;
		snprintf(name, sizeof(name), "corpus line %d:%s", lineno, corpus_sql(t));
		for (char *c = name; *c != '\0'; c++)	/* TAP names are one line, and '#' starts a directive */
			if (*c == '#' || *c == '\n' || *c == '\r')
				*c = ' ';
		check_failed = 0;
		corpus_check(line, lineno);
		check_total++;
		cases++;
		if (check_failed)
			check_bad++;
		printf("%sok %d - %s\n", check_failed ? "not " : "", check_total, name);
	}
	fclose(fp);
	if (cases == 0) {
		check_total++;
		check_bad++;
		printf("not ok %d - corpus %s has no cases\n", check_total, path);
	}
}

/* ---- the API ---- */

static void
every_kind_has_a_name_and_the_order_is_by_strength(void)
{
	static const char *const names[] = { "empty", "select", "explain", "set", "tcl", "insert", "update", "delete",
		"merge", "call", "copy", "other", "dcl", "ddl" };

	CHECK(sizeof(names) / sizeof(names[0]) == SQL_KIND_COUNT);
	for (int i = 0; i < SQL_KIND_COUNT; i++)
		CHECK_STR(sql_kind_name((enum sql_kind)i), names[i]);
	CHECK_STR(sql_kind_name(SQL_KIND_COUNT), "?");
	CHECK_STR(sql_kind_name((enum sql_kind)-1), "?");
	CHECK(SQL_KIND_SELECT < SQL_KIND_INSERT && SQL_KIND_INSERT < SQL_KIND_DELETE && SQL_KIND_DELETE < SQL_KIND_OTHER &&
	    SQL_KIND_OTHER < SQL_KIND_DCL && SQL_KIND_DCL < SQL_KIND_DDL);
}

static void
bad_arguments_are_refused_and_leave_the_result_alone(void)
{
	res.nstatements = 77;
	CHECK(sql_classify("select 1", 8, SQL_DIALECT_POSTGRES, 0, NULL) == -1);
	CHECK(sql_classify(NULL, 1, SQL_DIALECT_POSTGRES, 0, &res) == -1);
	CHECK(sql_classify("select 1", 8, (enum sql_dialect)7, 0, &res) == -1);
	CHECK(res.nstatements == 77);
	CHECK(sql_classify(NULL, 0, SQL_DIALECT_MYSQL, 0, &res) == 0);
	CHECK(res.nstatements == 0 && res.kind == SQL_KIND_EMPTY && res.kinds == 0);
}

static void
whitespace_comments_and_semicolons_alone_are_empty(void)
{
	CHECK(classify(SQL_DIALECT_POSTGRES, "  \t\n;; /* c */ -- d\n ;") == 0);
	CHECK(res.nstatements == 0 && res.kind == SQL_KIND_EMPTY && !res.unterminated);
	CHECK(classify(SQL_DIALECT_MYSQL, "# c\n;/*x*/;") == 0);
	CHECK(res.nstatements == 0 && res.kind == SQL_KIND_EMPTY);
}

static void
statement_text_is_trimmed_and_points_into_the_input(void)
{
	const char *text = "  /* lead */ select /* mid */ 1 ;  -- x\n\tDROP TABLE t  ;; ";

	CHECK(classify(SQL_DIALECT_POSTGRES, text) == 0);
	CHECK(res.nstatements == 2);
	CHECK(slice_is(res.statements[0].text, "select /* mid */ 1"));
	CHECK(slice_is(res.statements[1].text, "DROP TABLE t"));
	CHECK(res.statements[0].text.ptr == (const uint8_t *)text + 13);
	CHECK(res.statements[1].text.ptr > res.statements[0].text.ptr + res.statements[0].text.len);
}

static void
only_len_bytes_are_read(void)
{
	const char text[] = "select 1; drop table t";
	char *exact = malloc(8);	/* no NUL after it: ASan sees any read past */

	CHECK(sql_classify(text, 8, SQL_DIALECT_POSTGRES, 0, &res) == 0);
	CHECK(res.nstatements == 1 && res.kind == SQL_KIND_SELECT);
	memcpy(exact, "select '", 8);
	CHECK(sql_classify(exact, 8, SQL_DIALECT_POSTGRES, 0, &res) == 0);
	CHECK(res.unterminated && res.kind == SQL_KIND_SELECT);
	memcpy(exact, "select $", 8);
	CHECK(sql_classify(exact, 8, SQL_DIALECT_POSTGRES, 0, &res) == 0);
	memcpy(exact, "/*!5000", 7);
	CHECK(sql_classify(exact, 7, SQL_DIALECT_MYSQL, 0, &res) == 0);
	CHECK(res.unterminated);
	memcpy(exact, "x E'\\", 5);
	CHECK(sql_classify(exact, 5, SQL_DIALECT_POSTGRES, 0, &res) == 0);
	CHECK(res.unterminated);
	memcpy(exact, "x -", 3);
	CHECK(sql_classify(exact, 3, SQL_DIALECT_MYSQL, 0, &res) == 0);
	free(exact);
}

static void
nul_bytes_are_ordinary_characters_but_end_a_mysql_line_comment(void)
{
	const char text[] = "select 1 # c\0; drop table t";

	CHECK(sql_classify(text, sizeof(text) - 1, SQL_DIALECT_MYSQL, 0, &res) == 0);
	CHECK(res.nstatements == 2 && res.kind == SQL_KIND_DDL);
	CHECK(sql_classify("select 1 -- c\0; drop table t", 28, SQL_DIALECT_POSTGRES, 0, &res) == 0);
	CHECK(res.nstatements == 1 && res.kind == SQL_KIND_SELECT);
}

static void
statements_past_the_maximum_are_counted_and_folded(void)
{
	static char text[SQL_STATEMENTS_MAX * 16 + 64];
	size_t n = 0;

	for (int i = 0; i < SQL_STATEMENTS_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "select %d;", i);
	snprintf(text + n, sizeof(text) - n, " delete from t; drop table u");
	CHECK(classify(SQL_DIALECT_POSTGRES, text) == 0);
	CHECK(res.nstatements == SQL_STATEMENTS_MAX + 2);
	CHECK(res.truncated);
	CHECK(res.kind == SQL_KIND_DDL);
	CHECK(res.kinds == (SQL_KIND_BIT(SQL_KIND_SELECT) | SQL_KIND_BIT(SQL_KIND_DELETE) | SQL_KIND_BIT(SQL_KIND_DDL)));
	CHECK(slice_is(res.statements[SQL_STATEMENTS_MAX - 1].text, "select 63"));
	CHECK(res.statements[SQL_STATEMENTS_MAX - 1].ntables == 0);
	CHECK(classify(SQL_DIALECT_POSTGRES, "select 1") == 0);
	CHECK(!res.truncated);
}

static void
tables_past_the_maximum_mark_the_statement_incomplete(void)
{
	char text[1024];
	size_t n = (size_t)snprintf(text, sizeof(text), "select * from t0");

	for (int i = 1; i <= SQL_TABLES_MAX + 2; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, ", t%d", i);
	CHECK(classify(SQL_DIALECT_POSTGRES, text) == 0);
	CHECK(res.statements[0].ntables == SQL_TABLES_MAX);
	CHECK(res.statements[0].tables_incomplete);
	CHECK(slice_is(res.statements[0].tables[SQL_TABLES_MAX - 1], "t15"));
}

static void
a_table_named_twice_is_recorded_once(void)
{
	CHECK(classify(SQL_DIALECT_POSTGRES, "select * from t a join T b on true join \"t\" c on true") == 0);
	CHECK(res.statements[0].ntables == 1 && slice_is(res.statements[0].tables[0], "t"));
	CHECK(!res.statements[0].tables_incomplete);
}

static void
postgres_names_fold_to_lower_case_and_are_cut_at_63_bytes(void)
{
	char text[512], want[128];
	const struct sql_statement *s = &res.statements[0];

	CHECK(classify(SQL_DIALECT_POSTGRES, "select * from Sch.\"MiXed\", \"a\"\"b\", ÉTÉ") == 0);
	CHECK(s->ntables == 3);
	CHECK(slice_is(s->tables[0], "sch.MiXed"));
	CHECK(slice_is(s->tables[1], "a\"b"));
	CHECK(slice_is(s->tables[2], "ÉtÉ"));	/* only ASCII letters fold, as the server does */
	/* 70 ASCII letters: the server keeps 63. */
	snprintf(text, sizeof(text), "select * from %s", "AAAAAAAAAABBBBBBBBBBCCCCCCCCCCDDDDDDDDDDEEEEEEEEEEFFFFFFFFFFGGGGGGGGGG");
	CHECK(classify(SQL_DIALECT_POSTGRES, text) == 0);
	snprintf(want, sizeof(want), "%s", "aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeeeffffffffffggg");
	CHECK(s->ntables == 1 && slice_is(s->tables[0], want));
	/* 62 letters and a two-byte character: the character would straddle byte 63, so it goes. */
	snprintf(text, sizeof(text), "select * from %.62s\xc3\xa9x", want);
	CHECK(classify(SQL_DIALECT_POSTGRES, text) == 0);
	want[62] = '\0';
	CHECK(s->ntables == 1 && slice_is(s->tables[0], want));
	/* The same for each part of a qualified name. */
	snprintf(text, sizeof(text), "select * from %s.%s", want, "AAAAAAAAAABBBBBBBBBBCCCCCCCCCCDDDDDDDDDDEEEEEEEEEEFFFFFFFFFFGGGGGGGGGG");
	CHECK(classify(SQL_DIALECT_POSTGRES, text) == 0);
	CHECK(s->ntables == 1 && s->tables[0].len == 62 + 1 + 63);
}

static void
mysql_names_keep_their_case_and_lose_their_backticks(void)
{
	const struct sql_statement *s = &res.statements[0];

	CHECK(classify(SQL_DIALECT_MYSQL, "select * from Db.`My``Table`, `a.b`") == 0);
	CHECK(s->ntables == 2);
	CHECK(slice_is(s->tables[0], "Db.My`Table"));
	CHECK(slice_is(s->tables[1], "a.b"));
	CHECK(sql_classify("select * from \"Q\"", 17, SQL_DIALECT_MYSQL, SQL_MODE_MYSQL_ANSI_QUOTES, &res) == 0);
	CHECK(s->ntables == 1 && slice_is(s->tables[0], "Q"));
}

static void
names_are_nul_terminated_in_the_result(void)
{
	CHECK(classify(SQL_DIALECT_POSTGRES, "select * from a, bb; delete from ccc") == 0);
	CHECK(res.statements[0].ntables == 2 && res.statements[1].ntables == 1);
	CHECK_STR((const char *)res.statements[0].tables[0].ptr, "a");
	CHECK_STR((const char *)res.statements[0].tables[1].ptr, "bb");
	CHECK_STR((const char *)res.statements[1].tables[0].ptr, "ccc");
	CHECK(res.statements[0].tables[0].ptr >= (const uint8_t *)res.names &&
	    res.statements[1].tables[0].ptr + 4 <= (const uint8_t *)res.names + res.names_used);
}

static void
names_space_running_out_marks_statements_incomplete(void)
{
	static char text[64 * 1024];
	size_t n = 0;
	int incomplete = 0;

	/* 40 statements of 15 names of 60 bytes: 36 KB of names, more than SQL_NAMES_SIZE. */
	for (int i = 0; i < 40; i++) {
		n += (size_t)snprintf(text + n, sizeof(text) - n, "select * from ");
		for (int j = 0; j < 15; j++)
			n += (size_t)snprintf(text + n, sizeof(text) - n, "%sn%02d_%02d_%050d", j ? ", " : "", i, j, 0);
		n += (size_t)snprintf(text + n, sizeof(text) - n, ";");
	}
	CHECK(classify(SQL_DIALECT_POSTGRES, text) == 0);
	CHECK(res.nstatements == 40);
	CHECK(res.names_used <= SQL_NAMES_SIZE);
	for (int i = 0; i < 40; i++)
		incomplete += res.statements[i].tables_incomplete;
	CHECK(incomplete > 0);
	CHECK(!res.statements[0].tables_incomplete && res.statements[0].ntables == 15);
	CHECK(res.statements[39].tables_incomplete);
}

static void
a_unicode_escaped_name_is_not_recorded(void)
{
	CHECK(classify(SQL_DIALECT_POSTGRES, "select * from U&\"d\\0061t\" , t") == 0);
	CHECK(res.statements[0].tables_incomplete);
	CHECK(res.statements[0].ntables == 1 && slice_is(res.statements[0].tables[0], "t"));
}

static void
parentheses_deeper_than_the_limit_are_unterminated(void)
{
	static char text[4 * SQL_DEPTH_MAX + 64];
	size_t n;

	n = (size_t)snprintf(text, sizeof(text), "select ");
	for (int i = 0; i < SQL_DEPTH_MAX; i++)
		text[n++] = '(';
	text[n++] = '1';
	for (int i = 0; i < SQL_DEPTH_MAX; i++)
		text[n++] = ')';
	text[n] = '\0';
	CHECK(classify(SQL_DIALECT_POSTGRES, text) == 0);
	CHECK(!res.unterminated && res.kind == SQL_KIND_SELECT);
	n = (size_t)snprintf(text, sizeof(text), "select ");
	for (int i = 0; i < SQL_DEPTH_MAX + 3; i++)
		text[n++] = '(';
	text[n++] = '1';
	for (int i = 0; i < SQL_DEPTH_MAX + 3; i++)
		text[n++] = ')';
	snprintf(text + n, sizeof(text) - n, " from t; drop table u");
	CHECK(classify(SQL_DIALECT_POSTGRES, text) == 0);
	CHECK(res.unterminated);
	CHECK(res.nstatements == 2 && res.kind == SQL_KIND_DDL);	/* the next statement starts afresh */
	CHECK(res.statements[0].ntables == 1 && slice_is(res.statements[0].tables[0], "t"));
	CHECK(res.statements[1].ntables == 1 && slice_is(res.statements[1].tables[0], "u"));
}

static void
modes_change_how_strings_are_read(void)
{
	const char *pg = "select 'a\\'; drop table t; -- '";
	const char *my = "select \"a\"; drop table t; -- \"";

	CHECK(sql_classify(pg, strlen(pg), SQL_DIALECT_POSTGRES, 0, &res) == 0);
	CHECK(res.nstatements == 2 && res.kind == SQL_KIND_DDL);
	CHECK(sql_classify(pg, strlen(pg), SQL_DIALECT_POSTGRES, SQL_MODE_PG_NO_STANDARD_STRINGS, &res) == 0);
	CHECK(res.nstatements == 1 && res.kind == SQL_KIND_SELECT);
	CHECK(res.ambiguous == SQL_AMBIGUOUS_ESCAPES);
	CHECK(sql_classify(pg, strlen(pg), SQL_DIALECT_MYSQL, SQL_MODE_MYSQL_NO_BACKSLASH_ESCAPES, &res) == 0);
	CHECK(res.nstatements == 2 && res.kind == SQL_KIND_DDL);
	CHECK(sql_classify(my, strlen(my), SQL_DIALECT_MYSQL, 0, &res) == 0);
	CHECK(res.nstatements == 2 && res.ambiguous == 0);
	CHECK(sql_classify(my, strlen(my), SQL_DIALECT_MYSQL, SQL_MODE_MYSQL_ANSI_QUOTES, &res) == 0);
	CHECK(res.nstatements == 2 && res.ambiguous == 0);
}

static void
explain_analyze_counts_its_statement_in_the_whole(void)
{
	CHECK(classify(SQL_DIALECT_POSTGRES, "explain analyze delete from t") == 0);
	CHECK(res.statements[0].kind == SQL_KIND_EXPLAIN && res.statements[0].inner_kind == SQL_KIND_DELETE);
	CHECK(res.kind == SQL_KIND_DELETE);
	CHECK(res.kinds == (SQL_KIND_BIT(SQL_KIND_EXPLAIN) | SQL_KIND_BIT(SQL_KIND_DELETE)));
	CHECK(classify(SQL_DIALECT_POSTGRES, "explain delete from t") == 0);
	CHECK(res.kind == SQL_KIND_EXPLAIN && res.kinds == SQL_KIND_BIT(SQL_KIND_EXPLAIN));
	CHECK(classify(SQL_DIALECT_POSTGRES, "select 1") == 0);
	CHECK(res.statements[0].inner_kind == SQL_KIND_EMPTY);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Patterns that would be quadratic in a careless lexer: each must take well under a second. */
static void
pathological_texts_take_linear_time(void)
{
	enum { SIZE = 1 << 20 };
	static const char *const units[][2] = {
		{ "my", "/*!50000 " }, { "my", "/*!50000 '/*' " }, { "pg", "(" }, { "pg", "$a$ $" }, { "pg", "WITH " },
		{ "pg", "create " }, { "pg", "select '\\" }, { "my", "'\\'\"" }, { "pg", "/*" }, { "my", "x.y." },
		{ "pg", "explain (" }, { "pg", "from a, " }, { "my", "set " },
	};
	char *text = malloc(SIZE);

	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		size_t ulen = strlen(units[u][1]), n = 0;
		double t0;

		while (n + ulen <= SIZE) {
			memcpy(text + n, units[u][1], ulen);
			n += ulen;
		}
		t0 = now();
		CHECK(sql_classify(text, n, units[u][0][0] == 'm' ? SQL_DIALECT_MYSQL : SQL_DIALECT_POSTGRES, 0, &res) == 0);
		if (now() - t0 > 1.0) {
			printf("# \"%s\" x %zu took %.2f s\n", units[u][1], n / ulen, now() - t0);
			check_failed++;
		}
	}
	free(text);
}

int
main(int argc, char **argv)
{
	corpus_run(argc > 1 ? argv[1] : CORPUS_DEFAULT);
	TEST(every_kind_has_a_name_and_the_order_is_by_strength);
	TEST(bad_arguments_are_refused_and_leave_the_result_alone);
	TEST(whitespace_comments_and_semicolons_alone_are_empty);
	TEST(statement_text_is_trimmed_and_points_into_the_input);
	TEST(only_len_bytes_are_read);
	TEST(nul_bytes_are_ordinary_characters_but_end_a_mysql_line_comment);
	TEST(statements_past_the_maximum_are_counted_and_folded);
	TEST(tables_past_the_maximum_mark_the_statement_incomplete);
	TEST(a_table_named_twice_is_recorded_once);
	TEST(postgres_names_fold_to_lower_case_and_are_cut_at_63_bytes);
	TEST(mysql_names_keep_their_case_and_lose_their_backticks);
	TEST(names_are_nul_terminated_in_the_result);
	TEST(names_space_running_out_marks_statements_incomplete);
	TEST(a_unicode_escaped_name_is_not_recorded);
	TEST(parentheses_deeper_than_the_limit_are_unterminated);
	TEST(modes_change_how_strings_are_read);
	TEST(explain_analyze_counts_its_statement_in_the_whole);
	TEST(pathological_texts_take_linear_time);
	return CHECK_DONE();
}
