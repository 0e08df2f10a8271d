/*
 * The relay's two certificate authorities and the certificates they issue: an Ed25519 OpenSSH
 * user CA (libsodium) and an ECDSA P-256 X.509 CA (OpenSSL), both kept in the state directory,
 * plus the TLS server certificate of posternd's own listeners. Login issues short-lived
 * certificates here; every new connection verifies them here.
 *
 * A struct ca is immutable once ca_open() returns, so every function below may be called from
 * any thread at the same time. Private keys never leave this module and are never printed.
 * Every function that fails returns -1 (or NULL) and writes a message for the user into ERR.
 */
#ifndef POSTERN_CA_H
#define POSTERN_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#define CA_USER_MAX	64	/* sizeof(ca_grant.user), NUL included */

struct ca;

struct ca_grant {			/* what a certificate says */
	char user[CA_USER_MAX];		/* X.509 CN / SSH principal: letters, digits, . _ - @ */
	uint64_t serial;		/* never 0 (RFC 5280 wants a positive serial) */
	time_t not_before, not_after;	/* valid from not_before until before not_after */
};

/*
 * Load the CAs from STATE_DIR, creating what is missing on first start:
 *   ssh_user_ca, ssh_user_ca.pub	the OpenSSH user CA (format in ca.c)
 *   ca.key, ca.crt			the X.509 CA, self-signed, 10 years, CN "Postern CA <NODE>"
 *   server.key, server.crt		posternd's TLS certificate, 1 year, for SERVER_NAMES (DNS
 *					names or IP literals), localhost, 127.0.0.1 and ::1;
 *					renewed when missing, within 30 days of its end, or
 *					not naming every name
 * TLS_CERT_FILE and TLS_KEY_FILE, when both are given, replace the server certificate (the
 * cert file may carry intermediates after the leaf). Private key files must be 0600 or
 * stricter; an unparseable file is an error, never silently replaced.
 */
int ca_open(const char *state_dir, const char *node, const char *const *server_names, size_t nnames,
    const char *tls_cert_file, const char *tls_key_file, struct ca **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void ca_free(struct ca *ca);

/* The X.509 CA certificate, PEM. */
const char *ca_x509_pem(const struct ca *ca);
/* The SSH user CA as an OpenSSH public key line, "ssh-ed25519 AAAA… postern-user-ca". */
const char *ca_ssh_public(const struct ca *ca);

/*
 * A new SSL_CTX for posternd's TLS listeners: the server certificate, TLS 1.2 or newer, client
 * certificates requested and verified against the X.509 CA; a handshake without one fails
 * when REQUIRE_CLIENT_CERT, else it goes on and the login API decides.
 */
SSL_CTX *ca_server_ctx(const struct ca *ca, bool require_client_cert, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Issue an X.509 client certificate for G (CN = user, clientAuth, signed with SHA-256) for
 * PUBKEY_PEM, a "BEGIN PUBLIC KEY" P-256 or Ed25519 key. *CERT_PEM is malloc'd.
 */
int ca_issue_x509(const struct ca *ca, const struct ca_grant *g, const char *pubkey_pem, char **cert_pem,
    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Issue an OpenSSH user certificate for G and PUBKEY_PEM (PROTOCOL.certkeys): key id
 * "user=<user> serial=<serial>", principal <user>, the usual permit-* extensions, signed by
 * the SSH CA. *CERT_LINE is a malloc'd "<type> <base64> <user>@postern".
 */
int ca_issue_ssh(const struct ca *ca, const struct ca_grant *g, const char *pubkey_pem, char **cert_line,
    char *err, size_t errlen) __attribute__((warn_unused_result));

/* The OpenSSH public key line for PUBKEY_PEM ("ecdsa-sha2-nistp256 AAAA…"); *LINE is malloc'd. */
int ca_ssh_pubkey_line(const char *pubkey_pem, char **line, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Verify a client certificate on its own (whatever the handshake already checked): issued
 * and signed by our X.509 CA, inside its validity window give or take SKEW seconds at NOW,
 * clientAuth, a single CN. Fills OUT. ERR says why not and what to do.
 */
int ca_verify_x509(const struct ca *ca, X509 *cert, time_t now, int skew, struct ca_grant *out,
    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Verify an OpenSSH certificate BLOB (the base64-decoded second field of a cert line): a user
 * certificate signed by our SSH CA, inside its window give or take SKEW seconds at NOW, no
 * critical options, its key id's user among its principals, nothing after the signature.
 * Fills OUT.
 */
int ca_verify_ssh(const struct ca *ca, const unsigned char *blob, size_t len, time_t now, int skew,
    struct ca_grant *out, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
