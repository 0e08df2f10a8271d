/*
 * Worker threads. Each runs one libevent loop; the listener thread hands it accepted
 * connections through a locked queue and event_active(), and every session then lives on
 * that worker until it ends.
 */
#ifndef POSTERN_WORKER_H
#define POSTERN_WORKER_H

#include <stdbool.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "relay/config.h"

struct worker;

/* A protocol's entry point: start a session for accepted FD on worker W's loop. TARGET is
 * the target of a per-target listener (tcp), or NULL when the protocol names it itself. */
typedef void (*worker_accept_fn)(struct event_base *base, int worker, int fd,
    const struct sockaddr *peer, struct config *cfg, const struct config_target *target);

/* Start N workers. 0 or a negative error. */
int worker_start_all(int n) __attribute__((warn_unused_result));
/* Hand FD (accepted from PEER on a PROTOCOL listener, for TARGET_NAME or NULL, under CFG)
 * to the next worker, round robin. */
void worker_dispatch(int fd, const struct sockaddr *peer, socklen_t peerlen, struct config *cfg,
    enum config_protocol protocol, const char *target_name);
/* Stop every loop and join the threads. */
void worker_stop_all(void);
int worker_count(void);
/* How long a worker polls after work before it sleeps, in µs (config busy_poll); 0: never. */
void worker_set_busy_poll(int us);
/* The scheduler slice each worker thread asks for, in µs (config worker_slice); 0: the kernel's
 * default. Takes effect at each worker's next loop pass. */
void worker_set_slice(int us);
/* Set the entry point for PROTOCOL (before worker_start_all). */
void worker_set_protocol(enum config_protocol protocol, worker_accept_fn fn);

#endif
