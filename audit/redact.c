/*
 * The redaction lexer. It walks tokens only as far as redaction needs: words, string
 * literals (with their quoting rules), and the punctuation that ends a clause. A statement
 * without "passw" or "identified" anywhere is returned untouched after one scan.
 */
#include "audit/redact.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define REDACT_LITERAL	"'***'"
#define REDACT_VALUE	"***"

enum redact_token {
	TOK_END = 0,
	TOK_WORD,		/* identifier or keyword */
	TOK_LITERAL,		/* a string literal, quoted identifier or dollar-quoted body */
	TOK_PUNCT,		/* one character of anything else */
};

struct redact_lexer {
	const char *s;
	size_t len, pos;
	enum audit_dialect dialect;
	/* the token just read */
	enum redact_token tok;
	size_t start, end;
	char punct;
	bool in_exec;			/* MySQL: inside an executable comment, whose text runs */
	bool newline_before;		/* a newline in the space before the token just read */
};

static bool
redact_is_word_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool
redact_is_word(unsigned char c)
{
	return redact_is_word_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static bool
redact_word_is(const struct redact_lexer *lx, const char *kw)
{
	size_t n = strlen(kw);

	return lx->tok == TOK_WORD && lx->end - lx->start == n && strncasecmp(lx->s + lx->start, kw, n) == 0;
}

/* Skip a quoted run starting at the quote Q at lx->pos; BACKSLASH: \ escapes the next byte. */
static void
redact_skip_quoted(struct redact_lexer *lx, char q, bool backslash)
{
	size_t i = lx->pos + 1;

	while (i < lx->len) {
		if (backslash && lx->s[i] == '\\') {
			i += 2;
			continue;
		}
		if (lx->s[i] == q) {
			if (i + 1 < lx->len && lx->s[i + 1] == q) {
				i += 2;
				continue;
			}
			lx->pos = i + 1;
			return;
		}
		i++;
	}
	lx->pos = lx->len;	/* unterminated: the literal runs to the end */
}

/* At '$': a dollar-quote opener ($$ or $tag$)? Its length, else 0. */
static size_t
redact_dollar_tag(const struct redact_lexer *lx)
{
	size_t i = lx->pos + 1;

	if (i < lx->len && lx->s[i] == '$')
		return 2;
	if (i >= lx->len || !redact_is_word_start((unsigned char)lx->s[i]))
		return 0;
	while (i < lx->len && redact_is_word((unsigned char)lx->s[i]) && lx->s[i] != '$')
		i++;
	return i < lx->len && lx->s[i] == '$' ? i - lx->pos + 1 : 0;
}

/* MySQL runs the text of an executable comment (slash-star-bang, maybe with a version, or MariaDB slash-star-M-bang). */
static size_t
redact_exec_comment_open(const struct redact_lexer *lx)
{
	const char *s = lx->s;
	size_t p = lx->pos + 2;

	if (lx->dialect != AUDIT_DIALECT_MYSQL || lx->in_exec)
		return 0;
	if (p < lx->len && s[p] == 'M')
		p++;
	if (p >= lx->len || s[p] != '!')
		return 0;
	p++;
	while (p < lx->len && s[p] >= '0' && s[p] <= '9')
		p++;
	return p - lx->pos;
}

static void
redact_skip_comments_and_space(struct redact_lexer *lx)
{
	lx->newline_before = false;
	while (lx->pos < lx->len) {
		const char *s = lx->s;
		size_t p = lx->pos, open;
		bool mysql = lx->dialect == AUDIT_DIALECT_MYSQL;

		if (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r' || s[p] == '\f' || s[p] == '\v') {
			lx->newline_before = lx->newline_before || s[p] == '\n';
			lx->pos++;
		} else if (s[p] == '-' && p + 1 < lx->len && s[p + 1] == '-' &&
		    (!mysql || p + 2 >= lx->len || (unsigned char)s[p + 2] <= ' ')) {
			/* MySQL: "--" starts a comment only before a space or control character. */
			while (lx->pos < lx->len && s[lx->pos] != '\n' && !(mysql && s[lx->pos] == '\0'))
				lx->pos++;
		} else if (s[p] == '#' && mysql) {
			while (lx->pos < lx->len && s[lx->pos] != '\n' && s[lx->pos] != '\0')
				lx->pos++;
		} else if (s[p] == '*' && lx->in_exec && p + 1 < lx->len && s[p + 1] == '/') {
			lx->in_exec = false;	/* the end of an executable comment */
			lx->pos += 2;
		} else if (s[p] == '/' && p + 1 < lx->len && s[p + 1] == '*' && (open = redact_exec_comment_open(lx)) > 0) {
			lx->in_exec = true;
			lx->pos += open;
		} else if (s[p] == '/' && p + 1 < lx->len && s[p + 1] == '*') {
			int depth = 1;

			lx->pos += 2;
			while (lx->pos < lx->len && depth > 0) {
				if (s[lx->pos] == '*' && lx->pos + 1 < lx->len && s[lx->pos + 1] == '/') {
					depth--;
					lx->pos += 2;
				} else if (lx->dialect == AUDIT_DIALECT_POSTGRES && s[lx->pos] == '/' &&
				    lx->pos + 1 < lx->len && s[lx->pos + 1] == '*') {
					depth++;
					lx->pos += 2;
				} else {
					lx->pos++;
				}
			}
		} else {
			return;
		}
	}
}

static enum redact_token
redact_next(struct redact_lexer *lx)
{
	const char *s = lx->s;
	size_t tag;

	redact_skip_comments_and_space(lx);
	lx->start = lx->pos;
	if (lx->pos >= lx->len)
		return lx->tok = TOK_END;
	if (s[lx->pos] == '\'') {
		redact_skip_quoted(lx, '\'', lx->dialect == AUDIT_DIALECT_MYSQL);
		lx->tok = TOK_LITERAL;
	} else if (s[lx->pos] == '"') {
		redact_skip_quoted(lx, '"', lx->dialect == AUDIT_DIALECT_MYSQL);
		lx->tok = TOK_LITERAL;
	} else if (s[lx->pos] == '`' && lx->dialect == AUDIT_DIALECT_MYSQL) {
		redact_skip_quoted(lx, '`', false);
		lx->tok = TOK_WORD;
	} else if (s[lx->pos] == '$' && lx->dialect == AUDIT_DIALECT_POSTGRES && (tag = redact_dollar_tag(lx)) > 0) {
		const char *close = NULL;

		for (size_t i = lx->pos + tag; i + tag <= lx->len; i++)
			if (memcmp(s + i, s + lx->start, tag) == 0) {
				close = s + i;
				break;
			}
		lx->pos = close != NULL ? (size_t)(close - s) + tag : lx->len;
		lx->tok = TOK_LITERAL;
	} else if (redact_is_word_start((unsigned char)s[lx->pos])) {
		while (lx->pos < lx->len && redact_is_word((unsigned char)s[lx->pos]))
			lx->pos++;
		/* E'…', B'…', X'…', N'…', U&'…': one token with its prefix; E'' takes backslash escapes. */
		if (lx->pos < lx->len && lx->pos - lx->start <= 2) {
			char c0 = (char)(s[lx->start] | 0x20);
			bool one = lx->pos - lx->start == 1;

			if (one && s[lx->pos] == '\'' && strchr("ebxn", c0) != NULL) {
				redact_skip_quoted(lx, '\'', c0 == 'e' || lx->dialect == AUDIT_DIALECT_MYSQL);
				lx->end = lx->pos;
				return lx->tok = TOK_LITERAL;
			}
			if (one && c0 == 'u' && s[lx->pos] == '&' && lx->pos + 1 < lx->len &&
			    (s[lx->pos + 1] == '\'' || s[lx->pos + 1] == '"')) {
				lx->pos++;
				redact_skip_quoted(lx, s[lx->pos], false);
				lx->end = lx->pos;
				return lx->tok = TOK_LITERAL;
			}
		}
		lx->tok = TOK_WORD;
	} else {
		lx->punct = s[lx->pos++];
		lx->tok = TOK_PUNCT;
	}
	lx->end = lx->pos;
	return lx->tok;
}

static bool
redact_add(struct audit_span *spans, size_t max, size_t *n, size_t off, size_t len, const char *with, size_t total)
{
	if (*n + 1 >= max) {
		/* Out of room: the last span takes the rest of the text. */
		spans[*n] = (struct audit_span){ off, total - off, REDACT_VALUE };
		(*n)++;
		return false;
	}
	spans[(*n)++] = (struct audit_span){ off, len, with };
	return true;
}

/* password=VALUE inside a literal (a libpq or ODBC connection string): the values. */
static bool
redact_conninfo(const struct redact_lexer *lx, struct audit_span *spans, size_t max, size_t *n)
{
	static const char key[] = "password";
	const char *s = lx->s;

	for (size_t i = lx->start; i + sizeof(key) < lx->end; i++) {
		size_t j, v;

		if (strncasecmp(s + i, key, sizeof(key) - 1) != 0)
			continue;
		j = i + sizeof(key) - 1;
		while (j < lx->end && s[j] == ' ')
			j++;
		if (j >= lx->end || s[j] != '=')
			continue;
		j++;
		while (j < lx->end && s[j] == ' ')
			j++;
		v = j;
		if (j + 1 < lx->end && s[j] == '\'' && s[j + 1] == '\'') {
			/* A quoted value inside the SQL literal: ''like this'' up to the closing pair. */
			for (j += 2; j + 1 < lx->end && !(s[j] == '\'' && s[j + 1] == '\''); j++)
				;
			j = j + 1 < lx->end ? j + 2 : lx->end;
		} else {
			while (j < lx->end && s[j] != ' ' && s[j] != ';' && s[j] != '\'' && s[j] != '"')
				j++;
		}
		if (j > v && !redact_add(spans, max, n, v, j - v, REDACT_VALUE, lx->len))
			return false;
		i = j;
	}
	return true;
}

static bool
redact_has_trigger(const char *text, size_t len)
{
	for (size_t i = 0; i + 5 <= len; i++) {
		char c = (char)(text[i] | 0x20);

		if (c == 'p' && strncasecmp(text + i, "passw", 5) == 0)
			return true;
		if (c == 'i' && i + 10 <= len && strncasecmp(text + i, "identified", 10) == 0)
			return true;
	}
	return false;
}

enum redact_state {
	REDACT_NONE = 0,
	REDACT_AFTER_PASSWORD,		/* the next literal is the password */
	REDACT_PASSWORD_FOR,		/* SET PASSWORD FOR user = …: wait for '=' */
	REDACT_IDENTIFIED,		/* every literal until ',' or ';' */
	REDACT_CONTINUED,		/* after the password literal: PostgreSQL may continue it on the next line */
};

size_t
audit_redact_spans(const char *text, size_t len, enum audit_dialect dialect, struct audit_span *spans, size_t max)
{
	struct redact_lexer lx = { .s = text, .len = len, .dialect = dialect };
	enum redact_state st = REDACT_NONE;
	size_t n = 0;
	int depth = 0;

	if (max == 0 || !redact_has_trigger(text, len))
		return 0;
	while (redact_next(&lx) != TOK_END) {
		if (lx.tok == TOK_LITERAL) {
			if (st == REDACT_AFTER_PASSWORD || st == REDACT_IDENTIFIED) {
				if (!redact_add(spans, max, &n, lx.start, lx.end - lx.start, REDACT_LITERAL, len))
					return n;
				if (st == REDACT_AFTER_PASSWORD)
					st = REDACT_CONTINUED;
				continue;
			}
			if (st == REDACT_CONTINUED && lx.newline_before && dialect == AUDIT_DIALECT_POSTGRES) {
				/* 'abc'<newline>'def' is one constant in PostgreSQL: its parts are the password too. */
				if (!redact_add(spans, max, &n, lx.start, lx.end - lx.start, REDACT_LITERAL, len))
					return n;
				continue;
			}
			if (st == REDACT_CONTINUED)
				st = REDACT_NONE;
			if (st == REDACT_PASSWORD_FOR)
				continue;	/* the user name */
			if (!redact_conninfo(&lx, spans, max, &n))
				return n;
			continue;
		}
		if (st == REDACT_CONTINUED)
			st = REDACT_NONE;
		if (lx.tok == TOK_PUNCT) {
			if (lx.punct == ';') {
				st = REDACT_NONE;
				depth = 0;
			} else if (lx.punct == '(') {
				depth++;
			} else if (lx.punct == ')') {
				depth--;
			} else if (lx.punct == '=' && st == REDACT_PASSWORD_FOR) {
				st = REDACT_AFTER_PASSWORD;
			} else if (lx.punct == ',' && st == REDACT_IDENTIFIED && depth <= 0) {
				st = REDACT_NONE;
			} else if (st == REDACT_AFTER_PASSWORD && lx.punct != '=' && lx.punct != '(') {
				st = REDACT_NONE;
			}
			continue;
		}
		/* A word. */
		if (redact_word_is(&lx, "password") || redact_word_is(&lx, "old_password")) {
			if (st != REDACT_IDENTIFIED)
				st = REDACT_AFTER_PASSWORD;
		} else if (redact_word_is(&lx, "identified")) {
			st = REDACT_IDENTIFIED;
			depth = 0;
		} else if (redact_word_is(&lx, "for") && st == REDACT_AFTER_PASSWORD) {
			st = REDACT_PASSWORD_FOR;
		} else if (st == REDACT_AFTER_PASSWORD) {
			st = REDACT_NONE;	/* PASSWORD NULL, a column named password, … */
		}
	}
	return n;
}

/* Append LEN bytes of SRC at OUT[*O] (capacity SIZE, one byte kept for the NUL); false when cut. */
static bool
redact_append(char *out, size_t size, size_t *o, const char *src, size_t len)
{
	size_t room = size - 1 - *o;
	bool whole = len <= room;

	if (!whole)
		len = room;
	memcpy(out + *o, src, len);
	*o += len;
	return whole;
}

size_t
audit_redact_string(const char *text, size_t len, enum audit_dialect dialect, char *out, size_t size)
{
	struct audit_span spans[AUDIT_REDACT_SPANS_MAX];
	size_t n = audit_redact_spans(text, len, dialect, spans, AUDIT_REDACT_SPANS_MAX), pos = 0, o = 0;

	if (size == 0)
		return 0;
	/* memcpy, not printf: a MySQL statement may hold NUL bytes, and all of it is recorded. */
	for (size_t i = 0; i <= n; i++) {
		size_t upto = i < n ? spans[i].off : len;

		if (!redact_append(out, size, &o, text + pos, upto - pos))
			break;
		if (i < n) {
			if (!redact_append(out, size, &o, spans[i].with, strlen(spans[i].with)))
				break;
			pos = spans[i].off + spans[i].len;
		}
	}
	out[o] = '\0';
	return o;
}
