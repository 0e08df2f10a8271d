/*
 * postern connect: a listener on loopback for tools that cannot present a client certificate
 * (GUIs, drivers). They connect to it with no credentials; for each connection the launcher
 * opens its own TLS connection to the relay with the session's certificate and carries the
 * bytes across. docs/launcher.md is the user's guide.
 */
#ifndef POSTERN_CLIENT_CONNECT_H
#define POSTERN_CLIENT_CONNECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "protocols/pg/wire.h"

/* Takes the arguments after "postern" (ARGV[0] is "connect"); returns an enum postern_exit. */
int connect_main(int argc, char **argv) __attribute__((warn_unused_result));

/*
 * The startup packet to send the relay for the local client's ST: every parameter as the
 * client sent it, but "database" becomes DBNAME (the target, or TARGET/DATABASE as given on
 * the command line) unless the client itself named a database of TARGET ("TARGET/…"), and
 * "user" becomes USER when the client sent none. Into OUT (CAP bytes); its length, or 0 when
 * it does not fit.
 */
size_t connect_pg_startup_rewrite(const struct pg_startup *st, const char *target, const char *dbname,
    const char *user, uint8_t *out, size_t cap) __attribute__((warn_unused_result));

/* Whether the numeric address TEXT is a loopback address (127.0.0.0/8 or ::1). */
bool connect_is_loopback(const char *text);

/*
 * The owner of the TCP socket at PEER connected to our LOCAL address, from the kernel's socket
 * tables in PROC_DIR ("/proc/net" but for tests): the user who runs the program that just
 * connected. 0 with *UID, or -1 when no such socket is listed.
 */
int connect_peer_uid(const char *proc_dir, const struct sockaddr *peer, const struct sockaddr *local, uid_t *uid)
	__attribute__((warn_unused_result));

#endif
