/*
 * Identity: the checks every protocol front makes on a new connection (a certificate from our
 * CA, inside its window, for a user who is not locked and whom a role lets reach the target),
 * the sweep that ends live sessions whose user lost access, the login flows behind the login
 * API (enrol with an invite, challenge, login, the list of targets), and the admin's user
 * commands.
 */
#ifndef POSTERN_IDENTITY_H
#define POSTERN_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "relay/ca.h"
#include "relay/config.h"

struct identity {
	char user[64];
	uint64_t serial;
	time_t not_after;
	const struct role *role;	/* the role that grants the target (lives as long as the config) */
	char login[64];			/* the target login to use, "" for the target's own */
};

/* Open the CAs and the user store for CFG. Main thread, at start. 0 or -1 with ERR. */
int identity_open(const struct config *cfg, char *err, size_t errlen) __attribute__((warn_unused_result));
void identity_close(void);
const struct ca *identity_ca(void);
/* The SSL_CTX of TLS fronts that require a client certificate (shared, thread-safe). */
SSL_CTX *identity_tls_ctx(void);
/* The SSL_CTX of the login API (client certificate optional). */
SSL_CTX *identity_api_ctx(void);

/*
 * May the holder of CERT reach TARGET under CFG now? On success fills OUT. On failure REASON
 * says why, for the user ("certificate expired at …; run postern login"). Any thread.
 */
int identity_check_x509(const struct config *cfg, X509 *cert, const char *target, struct identity *out,
    char *reason, size_t rlen) __attribute__((warn_unused_result));
/* The same without the certificate: locked, role grant. */
int identity_check_access(const struct config *cfg, const char *user, const char *target, struct identity *out,
    char *reason, size_t rlen) __attribute__((warn_unused_result));

/* End every live session whose user CFG no longer lets reach its target, or who is locked.
 * Returns how many were asked to end. Main thread, after a reload or a lock. */
size_t identity_sweep(const struct config *cfg);

/* Login API handlers: REQ is the parsed JSON body, PEER the client address (for rate limits).
 * Each returns a reply object and sets *STATUS to the HTTP status. Main thread. */
json_t *identity_api_enrol(const struct config *cfg, json_t *req, const char *peer, int *status);
json_t *identity_api_challenge(const struct config *cfg, json_t *req, const char *peer, int *status);
json_t *identity_api_login(const struct config *cfg, json_t *req, const char *peer, int *status);
/* GET /v1/targets: what the holder of CERT (the TLS client certificate, or NULL) may reach now,
 * and where this relay's fronts listen. */
json_t *identity_api_targets(const struct config *cfg, X509 *cert, const char *peer, int *status);

/* Admin commands (users.invite, users.ls, users.lock, users.unlock, users.rm-device). */
json_t *identity_admin(const struct config *cfg, const char *cmd, json_t *req);

#endif
