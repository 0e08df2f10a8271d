/*
 * Admin socket server, on the main thread's loop. Requests are tiny and rare, so each is
 * handled inline: read one JSON line (bounded), run the command, answer, close. Only the uid that runs posternd
 * (or root) may talk to it, on top of the socket's 0600 mode.
 */
#include "relay/admin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "relay/log.h"
#include "relay/session.h"

#define ADMIN_LINE_MAX		4096
#define ADMIN_TIMEOUT_SEC	5

static struct evconnlistener *admin_listener;
static const struct admin_command *admin_commands;
static char admin_path[108];

static void
admin_reply(struct bufferevent *bev, json_t *reply)
{
	char *text = json_dumps(reply, JSON_COMPACT);

	if (text != NULL) {
		bufferevent_write(bev, text, strlen(text));
		bufferevent_write(bev, "\n", 1);
		free(text);
	}
	json_decref(reply);
}

json_t *
admin_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:s}", "error", msg);
}

static void
admin_session_json(const struct session_info *info, void *arg)
{
	json_t *list = arg;

	json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:I, s:I, s:s, s:i}",
	    "id", info->id, "protocol", config_protocol_name(info->protocol), "user", info->user,
	    "target", info->target, "client", info->client_addr, "started", info->started,
	    "bytes_up", (json_int_t)info->bytes_up, "bytes_down", (json_int_t)info->bytes_down,
	    "state", session_state_name(info->state), "worker", info->worker));
}

static json_t *
admin_sessions(json_t *req)
{
	json_t *list = json_array();

	session_registry_each(admin_session_json, list);
	return json_pack("{s:o}", "sessions", list);
}

static json_t *
admin_kill(json_t *req)
{
	const char *id = json_string_value(json_object_get(req, "id"));

	if (id == NULL)
		return admin_error("kill needs \"id\", a session id from posternctl sessions");
	if (session_registry_kill(id, "session ended by an administrator") != 0)
		return admin_error("no live session has id \"%.32s\"; see posternctl sessions", id);
	log_info("session kill requested", "sid=%.32s by=admin", id);
	return json_pack("{s:b, s:s+}", "ok", 1, "message", "session ending: ", id);
}

static const struct admin_command admin_builtin[] = {
	{ "sessions", admin_sessions },
	{ "kill", admin_kill },
	{ NULL, NULL },
};

static json_t *
admin_handle(const char *line)
{
	json_error_t jerr;
	json_t *req = json_loads(line, JSON_REJECT_DUPLICATES, &jerr), *reply = NULL;
	const char *cmd = json_string_value(json_object_get(req, "cmd"));

	if (req == NULL || !json_is_object(req) || cmd == NULL) {
		json_decref(req);
		return admin_error("a request is one JSON object with \"cmd\", e.g. {\"cmd\": \"status\"}");
	}
	for (const struct admin_command *c = admin_builtin; c->name != NULL && reply == NULL; c++)
		if (strcmp(c->name, cmd) == 0)
			reply = c->run(req);
	for (const struct admin_command *c = admin_commands; c->name != NULL && reply == NULL; c++)
		if (strcmp(c->name, cmd) == 0)
			reply = c->run(req);
	if (reply == NULL)
		reply = admin_error("unknown command \"%.64s\"; see posternctl --help", cmd);
	json_decref(req);
	return reply;
}

static void
admin_conn_write(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void
admin_conn_event(struct bufferevent *bev, short what, void *arg)
{
	bufferevent_free(bev);
}

static void
admin_conn_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);

	if (line == NULL) {
		if (evbuffer_get_length(in) > ADMIN_LINE_MAX) {
			admin_reply(bev, admin_error("request longer than %d bytes", ADMIN_LINE_MAX));
			goto done;
		}
		return;
	}
	if (strlen(line) != len)
		admin_reply(bev, admin_error("request contains a NUL byte"));
	else
		admin_reply(bev, admin_handle(line));
	free(line);
done:
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, admin_conn_write, admin_conn_event, NULL);
}

static void
admin_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct event_base *base = evconnlistener_get_base(lev);
	struct bufferevent *bev;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct timeval tv = { ADMIN_TIMEOUT_SEC, 0 };

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		log_warn("admin connection refused", "uid=%d reason=\"not root or posternd's user\"", (int)cred.uid);
		close(fd);
		return;
	}
	if ((bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		return;
	}
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_setcb(bev, admin_conn_read, NULL, admin_conn_event, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* True when something already answers on PATH. */
static bool
admin_path_in_use(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool used;

	if (fd < 0)
		return false;
	used = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	return used;
}

int
admin_start(struct event_base *base, const char *path, const struct admin_command *commands,
    char *err, size_t errlen)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "admin socket path %s is too long", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	if (admin_path_in_use(&sun)) {
		snprintf(err, errlen, "admin socket %s is in use: is another posternd running with this config?", path);
		return -1;
	}
	unlink(path);	/* a stale socket from a crash */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
		snprintf(err, errlen, "admin socket: %s", strerror(errno));
		return -1;
	}
	old = umask(0177);	/* no window in which the socket is more open than 0600 */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		umask(old);
		snprintf(err, errlen, "cannot bind admin socket %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	if (listen(fd, 64) != 0 ||
	    (admin_listener = evconnlistener_new(base, admin_accept, NULL, LEV_OPT_CLOSE_ON_FREE, -1, fd)) == NULL) {
		snprintf(err, errlen, "cannot listen on admin socket %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	admin_commands = commands;
	snprintf(admin_path, sizeof(admin_path), "%s", path);
	return 0;
}

void
admin_stop(void)
{
	if (admin_listener == NULL)
		return;
	evconnlistener_free(admin_listener);
	admin_listener = NULL;
	unlink(admin_path);
}
