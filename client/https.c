/*
 * A deliberately small HTTPS client: a blocking socket with a timeout on every step, OpenSSL
 * on top, one request and one reply per connection. The login API is the only server it
 * talks to, and that server always sends a Content-Length, so there is no chunked decoding,
 * no keep-alive and no redirect: anything unexpected is an error that says so.
 */
#include "client/https.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define HTTPS_SCHEME		"https://"
#define HTTPS_DEFAULT_PORT	"443"
#define HTTPS_HEADER_END	"\r\n\r\n"
#define HTTPS_READ_CHUNK	(16u << 10)
#define HTTPS_STATUS_PREFIX_LEN	9	/* "HTTP/1.1 " */
#define HTTPS_USER_AGENT	"postern/" POSTERN_VERSION

/* ---- URLs ---- */

static bool
https_host_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

static bool
https_port_ok(const char *s, size_t n)
{
	unsigned long port = 0;

	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		port = port * 10 + (unsigned long)(s[i] - '0');
	}
	return port >= 1 && port <= 65535;
}

int
https_url_parse(const char *text, struct https_url *out, char *err, size_t errlen)
{
	const char *auth, *end, *host, *port = NULL;
	size_t hostlen, portlen = 0;
	unsigned char addr[sizeof(struct in6_addr)];

	memset(out, 0, sizeof(*out));
	if (strncasecmp(text, "http://", 7) == 0) {
		snprintf(err, errlen, "the login API is HTTPS only: use https://%s", text + 7);
		return -1;
	}
	if (strncasecmp(text, HTTPS_SCHEME, strlen(HTTPS_SCHEME)) != 0) {
		snprintf(err, errlen, "\"%s\" is not a relay URL; it looks like https://relay.example.com:8443", text);
		return -1;
	}
	auth = text + strlen(HTTPS_SCHEME);
	end = auth + strcspn(auth, "/?#");
	if (end[0] != '\0' && strcmp(end, "/") != 0) {
		snprintf(err, errlen, "the relay URL takes no path or query: use https://%.*s", (int)(end - auth), auth);
		return -1;
	}
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL) {
		snprintf(err, errlen, "the relay URL takes no user name: use https://HOST:PORT");
		return -1;
	}
	if (auth[0] == '[') {
		const char *close = memchr(auth, ']', (size_t)(end - auth));

		if (close == NULL || (close + 1 != end && close[1] != ':')) {
			snprintf(err, errlen, "an IPv6 relay address is written https://[ADDRESS]:PORT");
			return -1;
		}
		host = auth + 1;
		hostlen = (size_t)(close - host);
		if (close + 1 != end) {
			port = close + 2;
			portlen = (size_t)(end - port);
		}
		out->is_ip = out->is_v6 = true;
	} else {
		const char *colon = memchr(auth, ':', (size_t)(end - auth));

		host = auth;
		hostlen = colon ? (size_t)(colon - auth) : (size_t)(end - auth);
		if (colon != NULL) {
			if (memchr(colon + 1, ':', (size_t)(end - colon - 1)) != NULL) {
				snprintf(err, errlen, "write an IPv6 relay address in brackets: https://[ADDRESS]:PORT");
				return -1;
			}
			port = colon + 1;
			portlen = (size_t)(end - port);
		}
	}
	if (hostlen == 0 || hostlen >= sizeof(out->host)) {
		snprintf(err, errlen, "the relay URL names no host: use https://HOST:PORT");
		return -1;
	}
	memcpy(out->host, host, hostlen);
	out->host[hostlen] = '\0';
	if (out->is_v6 ? inet_pton(AF_INET6, out->host, addr) != 1 : !https_host_name_ok(out->host, hostlen)) {
		snprintf(err, errlen, "\"%s\" is not a valid host name or address in the relay URL", out->host);
		return -1;
	}
	if (!out->is_v6 && inet_pton(AF_INET, out->host, addr) == 1)
		out->is_ip = true;
	for (char *p = out->host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (port != NULL && !https_port_ok(port, portlen)) {
		snprintf(err, errlen, "\"%.*s\" is not a port number (1 to 65535) in the relay URL", (int)portlen, port);
		return -1;
	}
	if (port != NULL)
		snprintf(out->port, sizeof(out->port), "%.*s", (int)portlen, port);
	else
		snprintf(out->port, sizeof(out->port), "%s", HTTPS_DEFAULT_PORT);
	snprintf(out->text, sizeof(out->text), "https://%s%s%s:%s", out->is_v6 ? "[" : "", out->host,
	    out->is_v6 ? "]" : "", out->port);
	return 0;
}

/* ---- replies ---- */

/* The value of header NAME in the header block [HDRS, END), or NULL; *LEN gets its length. */
static const char *
https_header_find(const char *hdrs, const char *end, const char *name, size_t *len, int *count)
{
	size_t namelen = strlen(name);
	const char *found = NULL;

	*count = 0;
	for (const char *line = hdrs; line < end;) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		const char *v, *ve;

		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - line) > namelen && strncasecmp(line, name, namelen) == 0 && line[namelen] == ':') {
			for (v = line + namelen + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
				;
			for (ve = eol; ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'); ve--)
				;
			found = v;
			*len = (size_t)(ve - v);
			(*count)++;
		}
		line = eol + 1;
	}
	return found;
}

int
https_reply_parse(const char *buf, size_t len, bool eof, bool *complete, int *status, size_t *body_off,
    size_t *body_len, char *err, size_t errlen)
{
	const char *hend, *first_eol, *v;
	size_t hdrlen, vlen = 0;
	int count;
	unsigned long long clen = 0;

	*complete = false;
	hend = memmem(buf, len, HTTPS_HEADER_END, strlen(HTTPS_HEADER_END));
	if (hend == NULL) {
		if (len > HTTPS_REPLY_MAX) {
			snprintf(err, errlen, "the relay's reply headers exceed %u bytes", HTTPS_REPLY_MAX);
			return -1;
		}
		if (eof) {
			snprintf(err, errlen, "the relay closed the connection before the end of its reply headers");
			return -1;
		}
		return 0;
	}
	hdrlen = (size_t)(hend - buf) + strlen(HTTPS_HEADER_END);
	first_eol = memchr(buf, '\n', hdrlen);
	if ((strncmp(buf, "HTTP/1.1 ", HTTPS_STATUS_PREFIX_LEN) != 0 &&
	    strncmp(buf, "HTTP/1.0 ", HTTPS_STATUS_PREFIX_LEN) != 0) || first_eol == NULL ||
	    first_eol - buf < HTTPS_STATUS_PREFIX_LEN + 4 || !isdigit((unsigned char)buf[9]) ||
	    !isdigit((unsigned char)buf[10]) || !isdigit((unsigned char)buf[11]) ||
	    (buf[12] != ' ' && buf[12] != '\r')) {
		snprintf(err, errlen, "the relay's reply is not HTTP/1.1; check that the URL is its login API");
		return -1;
	}
	*status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	if ((v = https_header_find(first_eol + 1, hend + 2, "Transfer-Encoding", &vlen, &count)) != NULL &&
	    !(vlen == 8 && strncasecmp(v, "identity", 8) == 0)) {
		snprintf(err, errlen, "the relay's reply uses Transfer-Encoding %.*s, which postern does not read; "
		    "check that the URL is the relay's login API, not a proxy", (int)(vlen > 32 ? 32 : vlen), v);
		return -1;
	}
	if ((v = https_header_find(first_eol + 1, hend + 2, "Content-Length", &vlen, &count)) != NULL) {
		if (count != 1 || vlen == 0 || vlen > 10) {
			snprintf(err, errlen, "the relay's reply has a malformed Content-Length");
			return -1;
		}
		for (size_t i = 0; i < vlen; i++) {
			if (!isdigit((unsigned char)v[i])) {
				snprintf(err, errlen, "the relay's reply has a malformed Content-Length");
				return -1;
			}
			clen = clen * 10 + (unsigned long long)(v[i] - '0');
		}
		if (clen > HTTPS_REPLY_MAX || hdrlen + clen > HTTPS_REPLY_MAX) {
			snprintf(err, errlen, "the relay's reply (%llu bytes) exceeds %u bytes", clen, HTTPS_REPLY_MAX);
			return -1;
		}
		if (len < hdrlen + clen) {
			if (eof) {
				snprintf(err, errlen, "the relay closed the connection after %zu of %llu reply bytes",
				    len - hdrlen, clen);
				return -1;
			}
			return 0;
		}
		*body_off = hdrlen;
		*body_len = (size_t)clen;
		*complete = true;
		return 0;
	}
	/* No length: the body runs to a clean close (a cut connection must not pass as a reply). */
	if (len > HTTPS_REPLY_MAX) {
		snprintf(err, errlen, "the relay's reply exceeds %u bytes", HTTPS_REPLY_MAX);
		return -1;
	}
	if (eof) {
		*body_off = hdrlen;
		*body_len = len - hdrlen;
		*complete = true;
	}
	return 0;
}

void
https_reply_free(struct https_reply *reply)
{
	if (reply->body != NULL) {
		OPENSSL_cleanse(reply->body, reply->len);
		free(reply->body);
	}
	memset(reply, 0, sizeof(*reply));
}

/* ---- the connection ---- */

/* The last OpenSSL error as text, or FALLBACK when the queue is empty. */
static const char *
https_ossl_reason(char *buf, size_t size, const char *fallback)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		return fallback;
	ERR_error_string_n(e, buf, size);
	return buf;
}

/* Connect to one of the URL's addresses within the timeout; the socket, or -1 with ERR. */
static int
https_connect(const struct https_url *url, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	struct timeval tv = { .tv_sec = HTTPS_TIMEOUT_SEC };
	int fd = -1, gai, last = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (url->is_ip ? AI_NUMERICHOST : 0);
	if ((gai = getaddrinfo(url->host, url->port, &hints, &res)) != 0) {
		snprintf(err, errlen, "cannot reach the relay at %s: cannot resolve %s (%s); check the URL and your network",
		    url->text, url->host, gai_strerror(gai));
		return -1;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t sl = sizeof(last);
		int pr;

		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol)) < 0) {
			last = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
			last = errno;
			goto next;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do
			pr = poll(&pfd, 1, HTTPS_TIMEOUT_SEC * 1000);
		while (pr < 0 && errno == EINTR);
		if (pr == 0) {
			last = ETIMEDOUT;
			goto next;
		}
		if (pr < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &last, &sl) != 0)
			last = errno;
		if (last != 0)
			goto next;
		/* Connected: blocking from here, with a bound on every read and write. */
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
			last = errno;
			goto next;
		}
		break;
next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "cannot reach the relay at %s: %s; check the URL and that the relay is up",
		    url->text, last == ETIMEDOUT ? "timed out connecting" : strerror(last));
	return fd;
}

/* Present CERT_PEM and KEY_PEM as CTX's client certificate. 0, or -1 with ERR. */
static int
https_ctx_use_cert(SSL_CTX *ctx, const char *cert_pem, const char *key_pem, char *err, size_t errlen)
{
	BIO *cb = BIO_new_mem_buf(cert_pem, -1), *kb = BIO_new_mem_buf(key_pem, -1);
	X509 *cert = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	int r = -1;

	if (cert == NULL || key == NULL) {
		snprintf(err, errlen, "this session's certificate or key cannot be read; run postern login");
		goto out;
	}
	if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "this session's certificate does not match its key; run postern login");
		goto out;
	}
	r = 0;
out:
	ERR_clear_error();
	X509_free(cert);
	EVP_PKEY_free(key);
	BIO_free(cb);
	BIO_free(kb);
	return r;
}

/*
 * Whether the OpenSSL error E is the relay's alert refusing our client certificate: what a
 * server sends for a certificate that expired, that another CA issued, or that is missing.
 */
static bool
https_client_cert_refused(unsigned long e)
{
	if (ERR_GET_LIB(e) != ERR_LIB_SSL)
		return false;
	switch (ERR_GET_REASON(e)) {
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		return true;
	default:
		return false;
	}
}

/* Say that the relay at URL refused the client certificate (reason in the error queue). */
static void
https_client_cert_error(const struct https_url *url, char *err, size_t errlen)
{
	const char *why = ERR_reason_error_string(ERR_peek_last_error());

	snprintf(err, errlen, "the relay at %s refused this session's certificate (%s); run postern login", url->text,
	    why ? why : "TLS alert");
}

/*
 * An SSL_CTX that trusts CA_PEM only (or, when NULL, verifies nothing), presenting CERT_PEM
 * and KEY_PEM when given.
 */
static SSL_CTX *
https_ctx_new(const char *ca_pem, const char *cert_pem, const char *key_pem, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	BIO *bio = NULL;
	X509 *cert = NULL;
	int n = 0;

	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "cannot set up TLS (OpenSSL failed to initialise)");
		goto fail;
	}
	if (ca_pem == NULL) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return ctx;
	}
	if ((bio = BIO_new_mem_buf(ca_pem, -1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), cert) != 1) {
			X509_free(cert);
			snprintf(err, errlen, "cannot use the saved relay CA");
			goto fail;
		}
		X509_free(cert);
		n++;
	}
	ERR_clear_error();	/* the loop ends on a "no start line" error */
	if (n == 0) {
		snprintf(err, errlen, "the saved relay CA holds no certificate; enrol again with an invite "
		    "(postern login URL --invite CODE.PIN)");
		goto fail;
	}
	BIO_free(bio);
	bio = NULL;
	if (cert_pem != NULL && https_ctx_use_cert(ctx, cert_pem, key_pem, err, errlen) != 0)
		goto fail;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
fail:
	BIO_free(bio);
	SSL_CTX_free(ctx);
	return NULL;
}

/* Say why the handshake with URL failed, for the user. */
static void
https_handshake_error(const struct https_url *url, SSL *ssl, bool verify, char *err, size_t errlen)
{
	long v = verify ? SSL_get_verify_result(ssl) : X509_V_OK;
	char why[256];

	switch (v) {
	case X509_V_OK:
		snprintf(err, errlen, "cannot reach the relay at %s: the TLS handshake failed (%s); check that the URL "
		    "is the relay's login API (api_listen)", url->text,
		    https_ossl_reason(why, sizeof(why), errno == EAGAIN ? "timed out" : "connection closed"));
		break;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		snprintf(err, errlen, "cannot reach the relay at %s: its TLS certificate does not name %s; use the "
		    "relay address your admin gave you, or ask them to add %s to tls_names", url->text, url->host,
		    url->host);
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		snprintf(err, errlen, "cannot reach the relay at %s: its TLS certificate is %s; check this machine's "
		    "clock, or ask your admin", url->text, X509_verify_cert_error_string(v));
		break;
	default:
		snprintf(err, errlen, "cannot reach the relay at %s: its TLS certificate was not issued by the relay's "
		    "CA that your invite pinned (%s): someone may be intercepting, or this is another relay; ask "
		    "your admin (a new invite re-enrols this device)", url->text, X509_verify_cert_error_string(v));
		break;
	}
}

/* Write all of BUF[0..LEN) to SSL. */
static int
https_write_all(SSL *ssl, const char *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		size_t n = 0;

		if (SSL_write_ex(ssl, buf + done, len - done, &n) != 1)
			return -1;
		done += n;
	}
	return 0;
}

/* Grow *BUF (holding USED bytes) to at least WANT bytes, wiping the old copy. */
static int
https_grow(char **buf, size_t *cap, size_t used, size_t want)
{
	size_t ncap = *cap ? *cap : HTTPS_READ_CHUNK;
	char *nbuf;

	while (ncap < want)
		ncap *= 2;
	if (ncap == *cap)
		return 0;
	if ((nbuf = malloc(ncap)) == NULL)
		return -1;
	if (*buf != NULL) {
		memcpy(nbuf, *buf, used);
		OPENSSL_cleanse(*buf, *cap);
		free(*buf);
	}
	*buf = nbuf;
	*cap = ncap;
	return 0;
}

/* Read the whole reply on SSL into *REPLY. */
static int
https_read_reply(const struct https_url *url, SSL *ssl, struct https_reply *reply, char *err, size_t errlen)
{
	char *buf = NULL, why[256];
	size_t cap = 0, used = 0, off = 0, blen = 0;
	bool complete = false, eof = false;
	int status = 0, r = HTTPS_ERR_PROTOCOL;

	while (!complete) {
		size_t n = 0;

		if (https_grow(&buf, &cap, used, used + HTTPS_READ_CHUNK + 1) != 0) {
			snprintf(err, errlen, "out of memory reading the relay's reply");
			r = HTTPS_ERR_INTERNAL;
			goto out;
		}
		if (SSL_read_ex(ssl, buf + used, cap - used - 1, &n) == 1) {
			used += n;
		} else {
			int e = SSL_get_error(ssl, 0);

			/* SO_RCVTIMEO ran out: OpenSSL sees EAGAIN and asks to retry. */
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ||
			    (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))) {
				snprintf(err, errlen, "the relay at %s did not answer within %d seconds; try again later",
				    url->text, HTTPS_TIMEOUT_SEC);
				r = HTTPS_ERR_UNREACHABLE;
				goto out;
			}
			if (e != SSL_ERROR_ZERO_RETURN && e != SSL_ERROR_SYSCALL && e != SSL_ERROR_SSL) {
				snprintf(err, errlen, "reading the reply of the relay at %s failed (TLS error %d); try again",
				    url->text, e);
				goto out;
			}
			/* TLS 1.3 finishes the client's handshake before the server has looked at its
			 * certificate: a refusal arrives as an alert on the first read. */
			if (e == SSL_ERROR_SSL && https_client_cert_refused(ERR_peek_last_error())) {
				https_client_cert_error(url, err, errlen);
				r = HTTPS_ERR_CLIENT_CERT;
				goto out;
			}
			if (e == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_last_error()) != SSL_R_UNEXPECTED_EOF_WHILE_READING) {
				snprintf(err, errlen, "reading the reply of the relay at %s failed: %s", url->text,
				    https_ossl_reason(why, sizeof(why), "TLS error"));
				goto out;
			}
			/* A clean close ends a length-less body; an abrupt one ends only a reply whose
			 * Content-Length was met (OpenSSL 3 reports a missing close_notify as an error). */
			eof = e == SSL_ERROR_ZERO_RETURN;
			if (https_reply_parse(buf, used, eof, &complete, &status, &off, &blen, err, errlen) != 0)
				goto out;
			if (!complete) {
				snprintf(err, errlen, "the relay at %s closed the connection before the end of its reply",
				    url->text);
				goto out;
			}
			break;
		}
		if (https_reply_parse(buf, used, false, &complete, &status, &off, &blen, err, errlen) != 0)
			goto out;
	}
	memmove(buf, buf + off, blen);
	OPENSSL_cleanse(buf + blen, cap - blen);
	buf[blen] = '\0';
	reply->status = status;
	reply->body = buf;
	reply->len = blen;
	buf = NULL;	/* transferred */
	r = HTTPS_OK;
out:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, cap);
		free(buf);
	}
	return r;
}

int
https_request(const struct https_url *url, const char *ca_pem, const char *method, const char *path,
    const char *body, struct https_reply *reply, char *err, size_t errlen)
{
	return https_request_cert(url, ca_pem, NULL, NULL, method, path, body, reply, err, errlen);
}

int
https_request_cert(const struct https_url *url, const char *ca_pem, const char *cert_pem, const char *key_pem,
    const char *method, const char *path, const char *body, struct https_reply *reply, char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	char *req = NULL;
	int fd = -1, reqlen = -1, r = HTTPS_ERR_INTERNAL;
	size_t bodylen = body ? strlen(body) : 0;

	memset(reply, 0, sizeof(*reply));
	ERR_clear_error();
	if ((ctx = https_ctx_new(ca_pem, ca_pem ? cert_pem : NULL, key_pem, err, errlen)) == NULL)
		goto out;
	reqlen = asprintf(&req, "%s %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: %s\r\nAccept: application/json\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s", method, path,
	    url->is_v6 ? "[" : "", url->host, url->is_v6 ? "]" : "", url->port, HTTPS_USER_AGENT, bodylen,
	    body ? body : "");
	if (reqlen < 0) {
		req = NULL;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	r = HTTPS_ERR_UNREACHABLE;
	if ((fd = https_connect(url, err, errlen)) < 0)
		goto out;
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1) {
		snprintf(err, errlen, "cannot set up TLS (OpenSSL failed to initialise)");
		r = HTTPS_ERR_INTERNAL;
		goto out;
	}
	/* SNI takes names only; IP literals are checked against the certificate's IP SANs. */
	if (!url->is_ip && SSL_set_tlsext_host_name(ssl, url->host) != 1) {
		snprintf(err, errlen, "cannot set up TLS for host %s", url->host);
		r = HTTPS_ERR_INTERNAL;
		goto out;
	}
	if (ca_pem != NULL && (url->is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url->host)
	    : SSL_set1_host(ssl, url->host)) != 1) {
		snprintf(err, errlen, "cannot set up certificate checks for host %s", url->host);
		r = HTTPS_ERR_INTERNAL;
		goto out;
	}
	errno = 0;
	if (SSL_connect(ssl) != 1) {
		if (cert_pem != NULL && https_client_cert_refused(ERR_peek_last_error())) {
			https_client_cert_error(url, err, errlen);
			r = HTTPS_ERR_CLIENT_CERT;
		} else {
			https_handshake_error(url, ssl, ca_pem != NULL, err, errlen);
		}
		goto out;
	}
	if (https_write_all(ssl, req, (size_t)reqlen) != 0) {
		if (cert_pem != NULL && https_client_cert_refused(ERR_peek_last_error())) {
			https_client_cert_error(url, err, errlen);
			r = HTTPS_ERR_CLIENT_CERT;
			goto out;
		}
		snprintf(err, errlen, "cannot reach the relay at %s: sending the request failed (%s); try again",
		    url->text, errno == EAGAIN ? "timed out" : errno ? strerror(errno) : "connection closed");
		goto out;
	}
	r = https_read_reply(url, ssl, reply, err, errlen);
out:
	if (req != NULL) {
		/* The request may carry an invite code, a signature or a TOTP code. */
		OPENSSL_cleanse(req, (size_t)reqlen);
		free(req);
	}
	SSL_free(ssl);
	if (fd >= 0)
		close(fd);
	SSL_CTX_free(ctx);
	return r;
}
