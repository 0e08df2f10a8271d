/*
 * The current session's credentials as the launcher's commands use them: the relay and user
 * from relay.json, the end of the session from session.json and from the certificate itself,
 * and the certificate, key and CA. Loading them is the first thing every command that
 * connects does: missing or expired credentials end it with one line that says to run
 * postern login, and exit status 4, before anything touches the network.
 */
#ifndef POSTERN_CLIENT_CREDS_H
#define POSTERN_CLIENT_CREDS_H

#include <limits.h>
#include <stddef.h>
#include <time.h>

#include "client/home.h"
#include "client/https.h"

#define CREDS_USER_MAX		64	/* the relay's limit on user names, NUL included */

struct creds {
	struct home home;		/* its dir made absolute: paths go to psql and to scripts */
	struct https_url url;		/* the relay's login API, from relay.json */
	char user[CREDS_USER_MAX];
	long long serial;		/* of this session's certificate: what the targets cache is for */
	time_t expires;			/* the earlier of session.json's end and the certificate's */
	char *ca_pem;			/* ca.crt, cert.pem and key.pem as read: NUL-terminated, */
	char *cert_pem;			/* malloc'd, wiped by creds_free() */
	char *key_pem;
	size_t ca_len, cert_len, key_len;
	char ca_path[PATH_MAX];		/* absolute paths of the same files, for libpq */
	char cert_path[PATH_MAX];
	char key_path[PATH_MAX];
};

/*
 * Load the credentials into C and check that they are complete and valid at NOW. Returns
 * POSTERN_EXIT_OK; POSTERN_EXIT_NOT_LOGGED_IN when they are missing, incomplete or expired;
 * POSTERN_EXIT_ERROR when a file cannot be used (e.g. a key others may read). ERR says which
 * and what to do. C needs creds_free() whatever the result.
 */
int creds_load(struct creds *c, time_t now, char *err, size_t errlen) __attribute__((warn_unused_result));
void creds_free(struct creds *c);

/* "2025-06-01 18:00:00 CEST" for T in local time, into BUF. */
const char *creds_local_time(time_t t, char *buf, size_t size);

#endif
