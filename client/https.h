/*
 * The launcher's HTTPS client for the relay's login API: one request per connection
 * (HTTP/1.1, Connection: close), a JSON body out, a bounded reply in, a timeout on every step.
 * The server certificate is verified against the relay's CA (PEM held in memory) and the
 * URL's host name or IP address; only the very first request of an enrolment, which fetches
 * that CA to check it against the invite's pin, goes unverified and carries no secret.
 * Requests after login may present the session's X.509 certificate (GET /v1/targets).
 */
#ifndef POSTERN_CLIENT_HTTPS_H
#define POSTERN_CLIENT_HTTPS_H

#include <stdbool.h>
#include <stddef.h>

#define HTTPS_HOST_MAX		256	/* DNS names are at most 253 characters */
#define HTTPS_URL_MAX		(HTTPS_HOST_MAX + 32)
#define HTTPS_REPLY_MAX		(1u << 20)	/* bytes of headers and body we accept */
#define HTTPS_TIMEOUT_SEC	15	/* connect, and each read or write */

enum https_result {
	HTTPS_OK = 0,
	HTTPS_ERR_UNREACHABLE = -1,	/* name lookup, connect, TLS handshake or certificate check failed */
	HTTPS_ERR_PROTOCOL = -2,	/* the connection worked but the reply was not usable HTTP */
	HTTPS_ERR_INTERNAL = -3,	/* out of memory or an OpenSSL setup error */
	HTTPS_ERR_CLIENT_CERT = -4,	/* the relay refused our client certificate in the handshake */
};

struct https_url {
	char host[HTTPS_HOST_MAX];	/* a DNS name or an IP literal, without brackets */
	char port[8];			/* decimal, "443" when the URL names none */
	bool is_ip;			/* host is an IPv4 or IPv6 literal (no SNI, IP SAN check) */
	bool is_v6;			/* ... an IPv6 one, written in brackets */
	char text[HTTPS_URL_MAX];	/* the canonical "https://host:port", for messages and relay.json */
};

struct https_reply {
	int status;			/* the HTTP status code */
	char *body;			/* NUL-terminated, malloc'd; wiped by https_reply_free() */
	size_t len;			/* bytes in body, the NUL not counted */
};

/*
 * Parse "https://host[:port][/]" or "https://[v6][:port][/]" into OUT. http:// and any path,
 * query or user part are refused. 0, or -1 with a message for the user in ERR.
 */
int https_url_parse(const char *text, struct https_url *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Send METHOD PATH to URL with BODY (JSON text, or NULL for none) and read the whole reply
 * into *REPLY (any status: the caller reads the JSON error). CA_PEM is the relay's X.509 CA:
 * the server certificate must chain to it and name the URL's host; NULL skips verification
 * (only for fetching that CA). Returns an enum https_result; on failure ERR says what
 * happened and what to do, and *REPLY is left empty.
 */
int https_request(const struct https_url *url, const char *ca_pem, const char *method, const char *path,
    const char *body, struct https_reply *reply, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * The same, presenting the client certificate CERT_PEM with its private key KEY_PEM (PEM
 * text; both NULL for none). A relay that refuses the certificate during the handshake (it
 * expired, or another CA issued it) gives HTTPS_ERR_CLIENT_CERT.
 */
int https_request_cert(const struct https_url *url, const char *ca_pem, const char *cert_pem, const char *key_pem,
    const char *method, const char *path, const char *body, struct https_reply *reply, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Wipe and free REPLY's body (the enrolment reply carries the TOTP secret). */
void https_reply_free(struct https_reply *reply);

/*
 * Parse the HTTP reply in BUF[0..LEN): whether it is complete (*COMPLETE), and when it is,
 * its status and where its body is. EOF says the peer closed cleanly, so a reply without a
 * Content-Length ends there. 0, or -1 with ERR for a malformed, chunked or oversized reply.
 * Exposed for the unit tests.
 */
int https_reply_parse(const char *buf, size_t len, bool eof, bool *complete, int *status, size_t *body_off,
    size_t *body_len, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
