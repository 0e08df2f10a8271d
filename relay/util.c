/*
 * Address parsing, clocks and resource limits: the few things every part of posternd needs.
 */
#include "relay/util.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <time.h>

int
util_addr_parse(const char *text, bool passive, struct net_addr *out, char *err, size_t errlen)
{
	char host[256];
	const char *colon, *port;
	struct addrinfo hints, *res = NULL;
	size_t hlen;
	long pnum;
	char *end;
	int r;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (close == NULL || close[1] != ':') {
			snprintf(err, errlen, "address \"%s\" is not [ipv6]:port", text);
			return -1;
		}
		hlen = (size_t)(close - text - 1);
		if (hlen >= sizeof(host))
			goto toolong;
		memcpy(host, text + 1, hlen);
		port = close + 2;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL || colon == text) {
			snprintf(err, errlen, "address \"%s\" is not host:port", text);
			return -1;
		}
		hlen = (size_t)(colon - text);
		if (hlen >= sizeof(host))
			goto toolong;
		memcpy(host, text, hlen);
		port = colon + 1;
	}
	host[hlen] = '\0';
	pnum = strtol(port, &end, 10);
	if (*port == '\0' || *end != '\0' || pnum < 1 || pnum > 65535) {
		snprintf(err, errlen, "address \"%s\" has no valid port (1-65535)", text);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0 || res == NULL) {
		snprintf(err, errlen, "cannot resolve \"%s\": %s", host, gai_strerror(r));
		return -1;
	}
	memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
	out->len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
toolong:
	snprintf(err, errlen, "address \"%.40s…\" is too long", text);
	return -1;
}

const char *
util_addr_format(const struct sockaddr *addr, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN];

	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)addr;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
	} else if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else if (addr->sa_family == AF_UNIX) {
		snprintf(buf, size, "unix");
	} else {
		snprintf(buf, size, "unknown");
	}
	return buf;
}

double
util_now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double
util_now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *
util_time_format(double seconds, char *buf, size_t size)
{
	time_t t = (time_t)seconds;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

long
util_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			return -1;
	}
	return (long)rl.rlim_cur;
}

int
util_duration_parse(const char *text, long *seconds)
{
	char *end;
	long n, unit = 1;

	n = strtol(text, &end, 10);
	if (end == text || n < 0)
		return -1;
	switch (*end) {
	case '\0': case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	default: return -1;
	}
	if (*end != '\0' && end[1] != '\0')
		return -1;
	if (n > LONG_MAX / unit)
		return -1;
	*seconds = n * unit;
	return 0;
}

int
util_b64_encode(const uint8_t *in, size_t len, char *out, size_t outlen)
{
	if (outlen < 4 * ((len + 2) / 3) + 1 || len > INT_MAX / 2)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return 0;
}

int
util_b64_decode_exact(const char *in, uint8_t *out, size_t len)
{
	unsigned char buf[1024];
	size_t inlen = in ? strlen(in) : 0, pad = 0;
	int n;

	if (inlen == 0 || inlen % 4 != 0 || inlen / 4 * 3 > sizeof(buf))
		return -1;
	n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)inlen);
	/* DecodeBlock counts padding as output bytes; take them off. */
	while (pad < 2 && in[inlen - 1 - pad] == '=')
		pad++;
	if (n < 0 || (size_t)n - pad != len) {
		OPENSSL_cleanse(buf, sizeof(buf));
		return -1;
	}
	memcpy(out, buf, len);
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}
