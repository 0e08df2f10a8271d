/*
 * The launcher's home: the directory ($POSTERN_HOME, else ~/.config/postern) that holds this
 * device's enrolment and the current session's credentials. The directory is 0700 and every
 * file 0600, and each file is replaced whole (a temporary file renamed over it), so a crash
 * or a full disk never leaves a half-written key or certificate behind.
 */
#ifndef POSTERN_CLIENT_HOME_H
#define POSTERN_CLIENT_HOME_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/* The enrolment: kept by postern logout. */
#define HOME_RELAY		"relay.json"	/* {"url", "user", "device_id", "mfa"} */
#define HOME_DEVICE_KEY		"device.key"	/* the Ed25519 device secret (client/device.h) */
#define HOME_CA			"ca.crt"	/* the relay's X.509 CA: TLS to the relay, sslrootcert */
#define HOME_SSH_CA		"ssh_ca.pub"	/* the relay's OpenSSH user CA line */
/* The session: written by postern login, removed by postern logout. */
#define HOME_KEY		"key.pem"	/* the session private key, PKCS#8 PEM (sslkey) */
#define HOME_CERT		"cert.pem"	/* the X.509 client certificate (sslcert) */
#define HOME_SSH_KEY		"id_postern"	/* the same private key, for ssh -i */
#define HOME_SSH_CERT		"id_postern-cert.pub"	/* the OpenSSH user certificate */
#define HOME_SSH_PUB		"id_postern.pub"	/* the OpenSSH public key line */
#define HOME_SESSION		"session.json"	/* {"user", "roles", "serial", "expires", "relay"} */
/* A cache, rebuilt at will. */
#define HOME_TARGETS		"targets.json"	/* the last GET /v1/targets reply (client/targets.h) */

#define HOME_LOCK		".lock"		/* held while a run changes files */

#define HOME_FILE_MAX		(256u << 10)	/* no file of ours is anywhere near this */

enum home_result {
	HOME_OK = 0,
	HOME_ERR = -1,		/* ERR says what */
	HOME_MISSING = -2,	/* the file does not exist */
};

struct home {
	char dir[PATH_MAX];	/* absolute or as given in $POSTERN_HOME, no trailing slash */
};

/*
 * Find the home directory and, when CREATE, make it (0700, parents as needed). 0, or
 * HOME_ERR with ERR; without CREATE a missing directory is not an error.
 */
int home_open(struct home *h, bool create, char *err, size_t errlen) __attribute__((warn_unused_result));

/* DIR/NAME into BUF. */
const char *home_path(const struct home *h, const char *name, char *buf, size_t size);

/* Replace NAME with DATA[0..LEN), mode 0600, atomically. 0 or HOME_ERR with ERR. */
int home_write(const struct home *h, const char *name, const void *data, size_t len, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Read NAME (at most HOME_FILE_MAX bytes) into a malloc'd, NUL-terminated *DATA of *LEN bytes.
 * PRIVATE refuses a file that others may read, as ssh does for keys. 0, HOME_MISSING, or
 * HOME_ERR with ERR. Free *DATA with home_free().
 */
int home_read(const struct home *h, const char *name, bool private, char **data, size_t *len, char *err,
    size_t errlen) __attribute__((warn_unused_result));

/* Wipe and free DATA of LEN bytes from home_read(). */
void home_free(char *data, size_t len);

/*
 * Take the home's lock (an flock on DIR/.lock) so that two postern runs cannot interleave
 * their files, e.g. one run's key with the other's certificate. *FD is to be given to
 * home_unlock(). 0, or HOME_ERR with ERR when another run holds it.
 */
int home_lock(const struct home *h, int *fd, char *err, size_t errlen) __attribute__((warn_unused_result));
void home_unlock(int fd);

/* Remove NAME; true if it existed. 0, or HOME_ERR with ERR. */
int home_remove(const struct home *h, const char *name, bool *existed, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* One line "postern: …" on stderr: how every launcher command tells the user what happened. */
void home_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
