/*
 * libFuzzer harness for statement redaction (audit/redact.c). Each input is statement text,
 * redacted as PostgreSQL and as MySQL: audit_redact_spans with room for every span, with the
 * recorder's AUDIT_REDACT_SPANS_MAX and with a smaller limit taken from the first byte, and
 * audit_redact_string into an ample buffer and into one whose size is taken from the second.
 *
 * Besides the sanitizers' findings, a broken promise of redact.h aborts: a span outside the
 * text, empty, out of order or overlapping the one before; a literal's span that does not
 * start at a quote, a dollar quote or a literal prefix; a limit that is not honoured as
 * documented (the first spans as without a limit, the last one running to the end of the
 * text); a redacted string that is not the text with each span replaced, NUL-terminated, or
 * cut anywhere but at its size.
 *
 * With FUZZ_REDACT_ORACLE=1 in the environment it also plants a password statement
 * ("\n;ALTER ROLE … PASSWORD '<secret>'\n;", "… IDENTIFIED BY '<secret>'") after the input and
 * inside it, where the third byte says, and when the policy's lexer (policy/sql.c, default
 * session modes) follows the whole text and sees that statement begin where it was planted,
 * that is, when the server would run it, requires the secret to be redacted: a comment, quote
 * or dollar quote that the two lexers end in different places fails here.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/redact.h"
#include "policy/sql.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

#define FUZZ_SPANS_ALL		1024	/* room for every span of any input the fuzzer makes */
#define FUZZ_REDACT_LITERAL	"'***'"	/* redact.c's replacements, as the recordings show them */
#define FUZZ_REDACT_VALUE	"***"
#define FUZZ_SECRET		"Zq9pl4nted"
#define FUZZ_PLANT_SEP		"\n;"
#define FUZZ_PLANT_PG		"ALTER ROLE fuzz PASSWORD '" FUZZ_SECRET "'"
#define FUZZ_PLANT_MYSQL	"ALTER USER fuzz IDENTIFIED BY '" FUZZ_SECRET "'"

static struct audit_span all[FUZZ_SPANS_ALL], part[FUZZ_SPANS_ALL];
static struct sql_result res;	/* 30 KB: kept off the stack of every run */
static bool oracle;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *e = getenv("FUZZ_REDACT_ORACLE");

	(void)argc;
	(void)argv;
	oracle = e != NULL && strcmp(e, "1") == 0;
	return 0;
}

/* SPANS[0..N) keep the promises of audit_redact_spans for TEXT[0..LEN). */
static void
check_spans(const char *text, size_t len, const struct audit_span *spans, size_t n)
{
	size_t end = 0;

	for (size_t i = 0; i < n; i++) {
		const struct audit_span *s = &spans[i];

		REQUIRE(s->len > 0 && s->off >= end && s->off < len && s->len <= len - s->off);
		REQUIRE(s->with != NULL);
		if (strcmp(s->with, FUZZ_REDACT_LITERAL) == 0)	/* a whole literal, from its opening */
			REQUIRE(memchr("'\"$eEbBxXnNuU", text[s->off], 13) != NULL);
		else
			REQUIRE(strcmp(s->with, FUZZ_REDACT_VALUE) == 0);
		end = s->off + s->len;
	}
}

/* TEXT with SPANS replaced, as the recorder writes it, into OUT (malloc'd); its length. */
static size_t
apply_spans(const char *text, size_t len, const struct audit_span *spans, size_t n, char **out)
{
	size_t cap = len + 1, o = 0, pos = 0;
	char *buf;

	for (size_t i = 0; i < n; i++)
		cap += strlen(spans[i].with);
	REQUIRE((buf = malloc(cap)) != NULL);
	for (size_t i = 0; i <= n; i++) {
		size_t upto = i < n ? spans[i].off : len;

		memcpy(buf + o, text + pos, upto - pos);
		o += upto - pos;
		if (i < n) {
			memcpy(buf + o, spans[i].with, strlen(spans[i].with));
			o += strlen(spans[i].with);
			pos = spans[i].off + spans[i].len;
		}
	}
	buf[o] = '\0';
	*out = buf;
	return o;
}

/* With room for MAX spans: the first MAX - 1 as with room for all, then one to the end. */
static void
check_limit(const char *text, size_t len, enum audit_dialect d, size_t nall, size_t max)
{
	size_t n = audit_redact_spans(text, len, d, part, max);

	check_spans(text, len, part, n);
	if (nall < max) {
		REQUIRE(n == nall);
		REQUIRE(memcmp(part, all, n * sizeof(part[0])) == 0);
		return;
	}
	REQUIRE(n == max);
	REQUIRE(memcmp(part, all, (max - 1) * sizeof(part[0])) == 0);
	REQUIRE(part[max - 1].off == all[max - 1].off && part[max - 1].off + part[max - 1].len == len);
}

/* audit_redact_string on the text up to its first NUL, as a C caller passes it. */
static void
check_string(const char *text, size_t len, enum audit_dialect d, size_t small)
{
	struct audit_span spans[AUDIT_REDACT_SPANS_MAX];
	size_t clen = strnlen(text, len), n, want_len, got, size;
	char *want, *out;

	n = audit_redact_spans(text, clen, d, spans, AUDIT_REDACT_SPANS_MAX);
	want_len = apply_spans(text, clen, spans, n, &want);
	REQUIRE((out = malloc(want_len + 1)) != NULL);
	got = audit_redact_string(text, clen, d, out, want_len + 1);
	REQUIRE(got == want_len && memcmp(out, want, want_len + 1) == 0);
	/* A smaller buffer: the same string cut at its size, and said so. */
	size = small % (want_len + 2);
	memset(out, 0x5a, want_len + 1);
	got = audit_redact_string(text, clen, d, out, size);
	if (size == 0) {
		REQUIRE(got == 0 && (unsigned char)out[0] == 0x5a);
	} else {
		REQUIRE(got == (want_len < size - 1 ? want_len : size - 1));
		REQUIRE(memcmp(out, want, got) == 0 && out[got] == '\0');
	}
	free(out);
	free(want);
}

/*
 * TEXT with a password statement planted at AT: when the policy's lexer follows the whole text
 * and a statement begins where the plant does (the server would run it), its secret is redacted.
 */
static void
check_planted(const char *text, size_t len, size_t at, enum audit_dialect d)
{
	const char *plant = d == AUDIT_DIALECT_POSTGRES ? FUZZ_PLANT_PG : FUZZ_PLANT_MYSQL;
	size_t plen = strlen(plant), seplen = strlen(FUZZ_PLANT_SEP), tlen = len + 2 * seplen + plen, start, lit, n;
	struct audit_span spans[AUDIT_REDACT_SPANS_MAX];
	bool runs = false, covered = false;
	char *t;

	REQUIRE((t = malloc(tlen)) != NULL);
	memcpy(t, text, at);
	memcpy(t + at, FUZZ_PLANT_SEP, seplen);
	start = at + seplen;
	memcpy(t + start, plant, plen);
	memcpy(t + start + plen, FUZZ_PLANT_SEP, seplen);
	memcpy(t + start + plen + seplen, text + at, len - at);
	REQUIRE(sql_classify(t, tlen, d == AUDIT_DIALECT_POSTGRES ? SQL_DIALECT_POSTGRES : SQL_DIALECT_MYSQL, 0, &res) == 0);
	for (size_t i = 0; i < res.nstatements && i < SQL_STATEMENTS_MAX && !res.unterminated; i++)
		if (res.statements[i].text.ptr == (const unsigned char *)t + start)
			runs = true;
	if (runs) {
		lit = start + plen - strlen(FUZZ_SECRET) - 1;	/* the secret, inside its quotes */
		n = audit_redact_spans(t, tlen, d, spans, AUDIT_REDACT_SPANS_MAX);
		for (size_t i = 0; i < n; i++)
			if (spans[i].off <= lit && spans[i].off + spans[i].len >= lit + strlen(FUZZ_SECRET))
				covered = true;
		REQUIRE(covered);
	}
	free(t);
}

static void
fuzz_dialect(const char *text, size_t len, enum audit_dialect d, const uint8_t *data, size_t size)
{
	size_t nall = audit_redact_spans(text, len, d, all, FUZZ_SPANS_ALL);

	REQUIRE(audit_redact_spans(text, len, d, part, 0) == 0);
	REQUIRE(nall <= FUZZ_SPANS_ALL);
	check_spans(text, len, all, nall);
	if (nall < FUZZ_SPANS_ALL) {
		check_limit(text, len, d, nall, AUDIT_REDACT_SPANS_MAX);
		check_limit(text, len, d, nall, size > 0 ? (size_t)data[0] % AUDIT_REDACT_SPANS_MAX + 1 : 1);
	}
	check_string(text, len, d, size > 1 ? data[1] : 0);
	if (oracle) {
		check_planted(text, len, len, d);
		if (size > 2)	/* and inside, where the third byte says */
			check_planted(text, len, (size_t)data[2] * (len + 1) / 256, d);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of its own size, so ASan sees a read one byte past the text. */
	char *text = malloc(size ? size : 1);

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	fuzz_dialect(text, size, AUDIT_DIALECT_POSTGRES, data, size);
	fuzz_dialect(text, size, AUDIT_DIALECT_MYSQL, data, size);
	free(text);
	return 0;
}
