/*
 * A tiny TAP producer for the C unit tests: CHECK() records a failure with file and line and
 * goes on; each TEST() prints "ok N - name" or "not ok N - name". meson runs the binaries with
 * protocol: 'tap', so each test shows up on its own.
 */
#ifndef POSTERN_CHECK_H
#define POSTERN_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failed;	/* failures in the current test */
static int check_total;		/* tests run */
static int check_bad;		/* tests failed */

#define CHECK(cond) do { \
	if (!(cond)) { \
		printf("# %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
		check_failed++; \
	} \
} while (0)

#define CHECK_STR(a, b) do { \
	const char *check_a_ = (a), *check_b_ = (b); \
	if (check_a_ == NULL || check_b_ == NULL || strcmp(check_a_, check_b_) != 0) { \
		printf("# %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, check_a_ ? check_a_ : "(null)", \
		    check_b_ ? check_b_ : "(null)"); \
		check_failed++; \
	} \
} while (0)

#define CHECK_CONTAINS(hay, needle) do { \
	const char *check_h_ = (hay), *check_n_ = (needle); \
	if (check_h_ == NULL || strstr(check_h_, check_n_) == NULL) { \
		printf("# %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, \
		    check_h_ ? check_h_ : "(null)", check_n_); \
		check_failed++; \
	} \
} while (0)

#define TEST(fn) do { \
	check_failed = 0; \
	fn(); \
	check_total++; \
	if (check_failed) \
		check_bad++; \
	printf("%sok %d - %s\n", check_failed ? "not " : "", check_total, #fn); \
} while (0)

#define CHECK_DONE() (printf("1..%d\n", check_total), check_bad ? 1 : 0)

#endif
