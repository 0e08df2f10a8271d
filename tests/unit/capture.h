/*
 * For the launcher's unit tests: run a command's entry point with its stdout and stderr
 * captured, the way a user would see them.
 */
#ifndef POSTERN_TEST_CAPTURE_H
#define POSTERN_TEST_CAPTURE_H

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

/* Run FN(ARGC, ARGV) with stdout and stderr captured into OUT (OUTLEN bytes, NUL-terminated),
 * using a scratch file in DIR; FN's return value. */
static int
capture_run(const char *dir, char *out, size_t outlen, int (*fn)(int, char **), int argc, char **argv)
{
	char path[256];
	int fd, saved_out, saved_err, r;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/captured.txt", dir);
	fflush(stdout);
	fflush(stderr);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	saved_out = dup(1);
	saved_err = dup(2);
	dup2(fd, 1);
	dup2(fd, 2);
	r = fn(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(saved_out);
	close(saved_err);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, out, outlen - 1);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	return r;
}

#endif
