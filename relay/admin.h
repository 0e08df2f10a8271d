/*
 * The admin socket: a unix stream socket (mode 0600, peers checked by uid) that takes one
 * request line and answers one JSON object, then closes. Requests: "status", "sessions",
 * "kill ID", "reload". posternctl is its client; docs/operations.md lists the requests.
 */
#ifndef POSTERN_ADMIN_H
#define POSTERN_ADMIN_H

#include <event2/event.h>
#include <jansson.h>

struct admin_hooks {
	json_t *(*status)(void);		/* a new object for "status" */
	int (*reload)(char **errors);		/* 0, or -1 with malloc'd error lines */
};

/* Bind PATH on BASE. 0, or -1 with a message for the user in ERR. */
int admin_start(struct event_base *base, const char *path, const struct admin_hooks *hooks,
    char *err, size_t errlen) __attribute__((warn_unused_result));
void admin_stop(void);

#endif
