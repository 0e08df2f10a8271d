/*
 * logfmt logging shared by posternd's threads. A line is formatted into a stack buffer and
 * written with one write(2) on an O_APPEND descriptor, which keeps lines whole without a lock.
 */
#include "relay/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static atomic_int log_fd = 2;
static atomic_int log_min = LOG_LEVEL_INFO;

static const char *const log_names[] = { "debug", "info", "warn", "error" };

bool
log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcmp(name, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

const char *
log_level_name(enum log_level level)
{
	if ((unsigned)level >= sizeof(log_names) / sizeof(log_names[0]))
		return "unknown";
	return log_names[level];
}

int
log_open(const char *path)
{
	int fd, old;

	if (path == NULL) {
		fd = 2;
	} else {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
	}
	old = atomic_exchange(&log_fd, fd);
	/* A line being written on another thread may still use OLD: it fails harmlessly. */
	if (old > 2)
		close(old);
	return 0;
}

void
log_close(void)
{
	int old = atomic_exchange(&log_fd, 2);

	if (old > 2)
		close(old);
}

void
log_set_level(enum log_level level)
{
	atomic_store(&log_min, (int)level);
}

bool
log_enabled(enum log_level level)
{
	return (int)level >= atomic_load(&log_min);
}

const char *
log_quote(char *buf, size_t size, const char *value)
{
	size_t o = 0;
	bool needs = false;

	if (size < 8) {
		if (size > 0)
			buf[0] = '\0';
		return buf;
	}
	if (value == NULL)
		value = "";
	if (*value == '\0')
		needs = true;
	for (const char *p = value; *p && !needs; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p >= 0x7f)
			needs = true;
	if (!needs) {
		snprintf(buf, size, "%s", value);
		return buf;
	}
	buf[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		/* Leave room for an escape (up to 4), the closing quote and NUL. */
		if (o + 7 >= size) {
			buf[o++] = '.';
			buf[o++] = '.';
			buf[o++] = '.';
			break;
		}
		if (*p == '"' || *p == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)*p;
		} else if (*p == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else if (*p < ' ' || *p == 0x7f) {
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", *p);
		} else {
			buf[o++] = (char)*p;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

void
log_write(enum log_level level, const char *msg, const char *fmt, ...)
{
	char line[LOG_LINE_MAX], qmsg[256];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;
	va_list ap;

	if (!log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	r = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=%s",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    ts.tv_nsec / 1000000, log_level_name(level), log_quote(qmsg, sizeof(qmsg), msg));
	n = r < 0 ? 0 : (size_t)r;
	if (fmt != NULL && *fmt != '\0' && n + 2 < sizeof(line)) {
		line[n++] = ' ';
		va_start(ap, fmt);
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		va_end(ap);
		if (r > 0)
			n += (size_t)r;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(atomic_load(&log_fd), line, n) < 0) {
		/* Nowhere better to report a failed log write. */
	}
}
