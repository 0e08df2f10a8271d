/*
 * The admin socket: a unix stream socket (mode 0600, peers checked by uid) that takes one
 * request, a JSON object on one line ({"cmd": "sessions"}, {"cmd": "kill", "id": "…"}), and
 * answers one JSON object ({"error": "…"} on failure), then closes. posternctl is its client;
 * docs/operations.md lists the commands.
 */
#ifndef POSTERN_ADMIN_H
#define POSTERN_ADMIN_H

#include <event2/event.h>
#include <jansson.h>

struct admin_command {
	const char *name;			/* the request's "cmd" */
	json_t *(*run)(json_t *request);	/* a new reply object; runs on the main loop */
};

/* Bind PATH on BASE, serving COMMANDS (ending with a NULL name) besides the built-in
 * "sessions" and "kill". 0, or -1 with a message for the user in ERR. */
int admin_start(struct event_base *base, const char *path, const struct admin_command *commands,
    char *err, size_t errlen) __attribute__((warn_unused_result));
/* A reply {"error": "…"}. */
json_t *admin_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void admin_stop(void);

#endif
