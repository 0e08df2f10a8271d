/*
 * Logging: one logfmt line per event (ts=… level=… msg="…" key=value …), written with a
 * single write(2) so lines from several threads never interleave. Callers pass key/value
 * pairs already formatted; log_kv_* helpers quote values. Secrets never go through here:
 * there is deliberately no helper that formats a password or a key.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

/* Parse "debug", "info", "warn", "error"; false for anything else. */
bool log_level_parse(const char *name, enum log_level *out) __attribute__((warn_unused_result));
const char *log_level_name(enum log_level level);

/* Send lines to PATH (appended, created 0600) or to stderr when PATH is NULL. Returns 0 or -errno. */
int log_open(const char *path) __attribute__((warn_unused_result));
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
void log_close(void);

/*
 * log_write(level, msg, fmt, ...): fmt is a printf format for the key=value tail, e.g.
 * log_write(LOG_LEVEL_INFO, "session start", "sid=%s target=%s", id, name). Use log_quote()
 * for values that may hold spaces, quotes or control characters.
 */
void log_write(enum log_level level, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Quote VALUE for logfmt into BUF (always NUL-terminated, truncated with "…" marker when
 * too long). Returns BUF, so it can be used inline as a %s argument.
 */
const char *log_quote(char *buf, size_t size, const char *value);

#define log_debug(msg, ...) do { if (log_enabled(LOG_LEVEL_DEBUG)) log_write(LOG_LEVEL_DEBUG, msg, __VA_ARGS__); } while (0)
#define log_info(msg, ...)  log_write(LOG_LEVEL_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  log_write(LOG_LEVEL_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_LEVEL_ERROR, msg, __VA_ARGS__)

#endif
