/*
 * Plain TCP passthrough: every byte from the client goes to the target and back, unseen.
 * It is the benchmark baseline and the simplest user of the data path.
 */
#ifndef POSTERN_TCP_H
#define POSTERN_TCP_H

#include <sys/socket.h>

#include <event2/event.h>

#include "relay/config.h"

void tcp_accept(struct event_base *base, int worker, int fd, const struct sockaddr *peer,
    struct config *cfg, const struct config_target *target);

#endif
