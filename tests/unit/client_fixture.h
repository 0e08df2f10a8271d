/*
 * For the launcher's unit tests, included after client/home.c, check.h and capture.h: a test
 * root, buffers for captured output and errors, and a POSTERN_HOME per test.
 */
#ifndef POSTERN_TEST_CLIENT_FIXTURE_H
#define POSTERN_TEST_CLIENT_FIXTURE_H

#include <stdlib.h>
#include <string.h>

static char root[] = "/tmp/postern-test-XXXXXX";
static char out[8192];
static char err[1024];

/* Run FN(ARGC, ARGV) with stdout and stderr captured into OUT; its return value. */
static int
run_captured(int (*fn)(int, char **), int argc, char **argv)
{
	return capture_run(root, out, sizeof(out), fn, argc, argv);
}

/* POSTERN_HOME at ROOT/NAME/SUB (ROOT/NAME without SUB), opened: the struct home for it. */
static void
fresh_home_at(const char *name, const char *sub, struct home *h)
{
	char dir[256];

	snprintf(dir, sizeof(dir), "%s/%s%s%s", root, name, sub ? "/" : "", sub ? sub : "");
	setenv("POSTERN_HOME", dir, 1);
	CHECK(home_open(h, true, err, sizeof(err)) == 0);
}

static void
put(const struct home *h, const char *name, const char *text)
{
	CHECK(home_write(h, name, text, strlen(text), err, sizeof(err)) == 0);
}

#endif
