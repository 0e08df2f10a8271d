/*
 * The login API: HTTPS (evhttp over libevent's OpenSSL filter) on the main loop. JSON in and
 * out: POST /v1/enrol, POST /v1/challenge, POST /v1/login, GET /v1/health. docs/login-api.md
 * describes the exchange.
 */
#ifndef POSTERN_LOGINAPI_H
#define POSTERN_LOGINAPI_H

#include <event2/event.h>

#include "relay/config.h"

/* Listen on CFG->api_addr. CURRENT points at the main thread's current-config pointer, read
 * on every request so reloads apply at once. 0 or -1 with ERR. */
int loginapi_start(struct event_base *base, const struct config *cfg, struct config **current,
    char *err, size_t errlen) __attribute__((warn_unused_result));
void loginapi_stop(void);

#endif
