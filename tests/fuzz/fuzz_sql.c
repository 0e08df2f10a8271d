/*
 * libFuzzer harness for the SQL lexer and classifier (policy/sql.c). Each input is classified
 * as PostgreSQL and as MySQL, under session modes taken from its first byte, whole and then cut
 * at a point taken from its second (so every input is also seen ending in the middle of a
 * quote or comment). Besides the sanitizers' findings, a broken invariant aborts: a statement
 * text outside the input, empty, out of order or starting with whitespace; a table name outside
 * the result's name space or without its NUL; a kind, mask or count that does not add up.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/sql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

#define FUZZ_KINDS_ALL		((1u << SQL_KIND_COUNT) - 1)
#define FUZZ_AMBIGUOUS_ALL	(SQL_AMBIGUOUS_ESCAPES | SQL_AMBIGUOUS_QUOTES | SQL_AMBIGUOUS_VERSION | SQL_AMBIGUOUS_ENCODING)
#define FUZZ_MODES_ALL		(SQL_MODE_PG_NO_STANDARD_STRINGS | SQL_MODE_MYSQL_NO_BACKSLASH_ESCAPES | SQL_MODE_MYSQL_ANSI_QUOTES)

static struct sql_result res;	/* 30 KB: kept off the stack of every run */

static bool
is_space(uint8_t c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* S lies inside [BASE, BASE + LEN). */
static void
require_inside(struct slice s, const uint8_t *base, size_t len)
{
	REQUIRE(s.ptr != NULL);
	REQUIRE(s.ptr >= base && s.len <= len && (size_t)(s.ptr - base) <= len - s.len);
}

static void
check_statement(const struct sql_statement *st, const uint8_t *text, size_t len)
{
	const uint8_t *names = (const uint8_t *)res.names;

	REQUIRE(st->text.len > 0);
	require_inside(st->text, text, len);
	/* Tokens never start with whitespace; only an unclosed one ends with it. */
	REQUIRE(!is_space(st->text.ptr[0]));
	REQUIRE(!is_space(st->text.ptr[st->text.len - 1]) || res.unterminated);
	REQUIRE(st->kind > SQL_KIND_EMPTY && st->kind < SQL_KIND_COUNT);
	REQUIRE(st->inner_kind < SQL_KIND_COUNT);
	REQUIRE((st->kinds & ~FUZZ_KINDS_ALL) == 0 && (st->kinds & SQL_KIND_BIT(st->kind)) != 0);
	REQUIRE(st->kind == SQL_KIND_EXPLAIN ? st->inner_kind != SQL_KIND_EMPTY : st->inner_kind == SQL_KIND_EMPTY);
	REQUIRE(st->kind == SQL_KIND_EXPLAIN || !st->explain_analyze);
	REQUIRE(!st->opaque || st->kind == SQL_KIND_DDL || (st->kind == SQL_KIND_EXPLAIN && st->inner_kind == SQL_KIND_DDL));
	REQUIRE(st->verb == NULL || (st->verb[0] >= 'a' && st->verb[0] <= 'z'));
	REQUIRE(st->ntables <= SQL_TABLES_MAX);
	for (size_t j = 0; j < st->ntables; j++) {
		require_inside(st->tables[j], names, res.names_used);
		REQUIRE((size_t)(st->tables[j].ptr - names) + st->tables[j].len < res.names_used);
		REQUIRE(st->tables[j].ptr[st->tables[j].len] == '\0');
		for (size_t k = 0; k < j; k++)	/* each once */
			REQUIRE(st->tables[k].len != st->tables[j].len ||
			    memcmp(st->tables[k].ptr, st->tables[j].ptr, st->tables[j].len) != 0);
	}
}

static void
fuzz_one(const uint8_t *text, size_t len, enum sql_dialect d, unsigned modes)
{
	const uint8_t *after = text;	/* the end of the previous statement */
	unsigned kinds = 0;
	enum sql_kind strongest = SQL_KIND_EMPTY;
	size_t n;

	REQUIRE(sql_classify((const char *)text, len, d, modes, &res) == 0);
	n = res.nstatements < SQL_STATEMENTS_MAX ? res.nstatements : SQL_STATEMENTS_MAX;
	REQUIRE(res.truncated == (res.nstatements > SQL_STATEMENTS_MAX));
	REQUIRE(res.names_used <= SQL_NAMES_SIZE);
	REQUIRE((res.ambiguous & ~FUZZ_AMBIGUOUS_ALL) == 0);
	REQUIRE((res.kinds & ~FUZZ_KINDS_ALL) == 0);
	REQUIRE(res.kind < SQL_KIND_COUNT);
	REQUIRE((res.nstatements == 0) == (res.kind == SQL_KIND_EMPTY));
	for (size_t i = 0; i < n; i++) {
		const struct sql_statement *st = &res.statements[i];
		enum sql_kind k = st->explain_analyze && st->inner_kind > st->kind ? st->inner_kind : st->kind;

		check_statement(st, text, len);
		REQUIRE(st->text.ptr >= after);	/* in order, apart */
		after = st->text.ptr + st->text.len;
		kinds |= st->kinds;
		if (k > strongest)
			strongest = k;
		REQUIRE(st->kind <= res.kind);
		REQUIRE(res.opaque || !st->opaque);
	}
	/* Past SQL_STATEMENTS_MAX the rest only fold in, so these hold exactly only below it. */
	REQUIRE((kinds & ~res.kinds) == 0 && strongest <= res.kind);
	if (!res.truncated)
		REQUIRE(kinds == res.kinds && strongest == res.kind);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned modes = size > 0 ? data[0] & FUZZ_MODES_ALL : 0;
	size_t cut = size > 1 ? (size_t)data[1] * size / 256 : 0;
	uint8_t *copy;

	fuzz_one(data, size, SQL_DIALECT_POSTGRES, modes);
	fuzz_one(data, size, SQL_DIALECT_MYSQL, modes);
	/* A prefix in a buffer of its own size, so ASan sees a read one byte past it. */
	if ((copy = malloc(cut ? cut : 1)) == NULL)
		return 0;
	memcpy(copy, data, cut);
	fuzz_one(copy, cut, SQL_DIALECT_POSTGRES, 0);
	fuzz_one(copy, cut, SQL_DIALECT_MYSQL, 0);
	free(copy);
	return 0;
}
