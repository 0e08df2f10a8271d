/*
 * The targets this user may reach, from the relay's GET /v1/targets (authenticated by the
 * session's certificate, so it follows the role scripts), kept in POSTERN_HOME/targets.json
 * for speed, for offline use and for shell completion. docs/launcher.md describes the reply.
 */
#ifndef POSTERN_CLIENT_TARGETS_H
#define POSTERN_CLIENT_TARGETS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "client/creds.h"
#include "client/https.h"

#define TARGETS_PATH		"/v1/targets"
#define TARGETS_FRESH_SEC	60	/* a cached list younger than this is used without asking */
#define TARGETS_NAME_MAX	128	/* longer target names are refused */

enum targets_flags {
	TARGETS_REFRESH = 1 << 0,	/* ask the relay even when the cache is fresh */
	TARGETS_STALE_OK = 1 << 1,	/* an unreachable relay falls back to an older cached list */
	TARGETS_OFFLINE = 1 << 2,	/* the cache only, whatever its age, never the network */
};

struct target {				/* one entry of the list, with where to connect */
	char name[TARGETS_NAME_MAX];
	char protocol[16];		/* "postgres", "tcp", … */
	char login[64];			/* the login the target sees; "" when it has none */
	char role[64];			/* the role that grants it */
	char host[HTTPS_HOST_MAX];	/* the relay's host: the one in the relay URL */
	char port[8];			/* the port of the front (or the tcp target's listener); "" if unknown */
};

/*
 * The relay's list for C into *DOC (the reply object, to json_decref), as FLAGS allow; *AGE is
 * how many seconds ago the relay gave it (0: just now). Returns an enum postern_exit: 3 for an
 * unreachable relay, 4 when the relay refuses the certificate, 1 for other refusals; ERR says
 * what happened and what to do.
 */
int targets_load(const struct creds *c, int flags, json_t **doc, long *age, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/*
 * Entry I of DOC into OUT. The port comes from the relay's front for the protocol (or the tcp
 * target's own listener); the host is always the relay URL's: the name the user reaches the
 * relay under and its certificate names, even when the front listens on 0.0.0.0 or behind
 * a load balancer. 0, or -1 for an entry that is not usable.
 */
int targets_entry(const struct creds *c, const json_t *doc, size_t i, struct target *out)
	__attribute__((warn_unused_result));

/*
 * The target NAME (without any "/DATABASE") in DOC into OUT: POSTERN_EXIT_OK, or
 * POSTERN_EXIT_NOT_ALLOWED with ERR when the user may not reach it.
 */
int targets_find(const struct creds *c, const json_t *doc, const char *name, struct target *out, char *err,
    size_t errlen) __attribute__((warn_unused_result));

/* Split "host:port" or "[v6]:port" ADDR; the port into PORT (PORTLEN bytes). 0 or -1. */
int targets_addr_port(const char *addr, char *port, size_t portlen) __attribute__((warn_unused_result));

#endif
