/*
 * Small helpers shared by posternd, posternctl and the tests: address parsing, monotonic
 * time, and a {ptr, len} slice for protocol fields.
 */
#ifndef POSTERN_UTIL_H
#define POSTERN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct slice {
	const uint8_t *ptr;	/* not NUL-terminated */
	size_t len;
};

struct net_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/*
 * Parse "host:port" or "[v6]:port" and resolve it (numeric or by name, first result).
 * Blocking: call it only off the worker loops (config load). On failure returns a negative
 * code and writes a message for the user into ERR.
 */
int util_addr_parse(const char *text, bool passive, struct net_addr *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* "127.0.0.1:5432" or "[::1]:5432" for ADDR, into BUF. */
const char *util_addr_format(const struct sockaddr *addr, char *buf, size_t size);

/* Seconds since an arbitrary point, never going backwards. */
double util_now_mono(void);
/* Seconds since the epoch. */
double util_now_wall(void);

/* Format SECONDS since the epoch as RFC 3339 UTC into BUF. */
const char *util_time_format(double seconds, char *buf, size_t size);

/* Parse a duration: whole seconds ("3600") or a number with a unit ("90s", "30m", "8h", "7d"). */
int util_duration_parse(const char *text, long *seconds) __attribute__((warn_unused_result));

/* Standard base64 of IN into OUT (NUL-terminated); OUTLEN must hold 4*ceil(len/3)+1. */
int util_b64_encode(const uint8_t *in, size_t len, char *out, size_t outlen) __attribute__((warn_unused_result));
/* Decode IN, which must hold exactly LEN bytes of data, into OUT. 0 or -1. */
int util_b64_decode_exact(const char *in, uint8_t *out, size_t len) __attribute__((warn_unused_result));

/* Raise RLIMIT_NOFILE's soft limit to its hard limit; returns the new soft limit. */
long util_raise_nofile(void);

#endif
