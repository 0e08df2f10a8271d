/*
 * The PostgreSQL front: engineers' psql, pgbench, psycopg2 and JDBC connect here with TLS and
 * the certificate from `postern login`, name the target as the database ("pg" or "pg/appdb"),
 * and are relayed to the real server over a libpq connection carrying the injected credential.
 */
#ifndef POSTERN_PG_H
#define POSTERN_PG_H

#include <sys/socket.h>

#include <event2/event.h>

#include "relay/config.h"

void pg_accept(struct event_base *base, int worker, int fd, const struct sockaddr *peer,
    struct config *cfg, const struct config_target *target);

#endif
