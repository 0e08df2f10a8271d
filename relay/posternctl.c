/*
 * posternctl: the admin's and auditor's command line. Today it speaks to a running posternd
 * over its admin socket: status, live sessions, kill, reload.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "relay/util.h"

#define CTL_DEFAULT_SOCKET	"/var/lib/postern/admin.sock"
#define CTL_REPLY_MAX		(16u << 20)
#define CTL_TIMEOUT_SEC		10

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: posternctl [-s SOCKET] COMMAND [ARGS]\n"
	    "\n"
	    "Commands:\n"
	    "  status               version, uptime, workers and live sessions of posternd\n"
	    "  sessions [--json]    live sessions: id, protocol, user, target, client, start, bytes\n"
	    "  kill ID              end the live session ID now\n"
	    "  reload               reload posternd's configuration (like SIGHUP), printing any errors\n"
	    "\n"
	    "  -s, --socket SOCKET  posternd's admin socket (default $POSTERN_ADMIN_SOCKET, else\n"
	    "                       " CTL_DEFAULT_SOCKET ")\n"
	    "  -V, --version        print the version\n"
	    "  -h, --help           this text\n");
}

/* Send REQUEST, return the parsed one-line JSON reply, or NULL with a message on stderr. */
static json_t *
ctl_request(const char *path, const char *request)
{
	struct sockaddr_un sun;
	struct timeval tv = { CTL_TIMEOUT_SEC, 0 };
	char *buf = NULL;
	size_t len = 0, cap = 0;
	json_error_t jerr;
	json_t *reply = NULL;
	ssize_t n;
	int fd = -1;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "posternctl: socket path %s is too long\n", path);
		return NULL;
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "posternctl: cannot reach posternd at %s: %s (is it running? is -s right?)\n",
		    path, strerror(errno));
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (write(fd, request, strlen(request)) != (ssize_t)strlen(request) || write(fd, "\n", 1) != 1) {
		fprintf(stderr, "posternctl: cannot send to %s: %s\n", path, strerror(errno));
		goto out;
	}
	for (;;) {
		if (len + 4096 > cap) {
			char *nb;

			if (cap >= CTL_REPLY_MAX) {
				fprintf(stderr, "posternctl: reply from posternd is too large\n");
				goto out;
			}
			cap = cap ? cap * 2 : 8192;
			if ((nb = realloc(buf, cap)) == NULL)
				goto out;
			buf = nb;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			fprintf(stderr, "posternctl: no reply from posternd at %s: %s\n", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if ((reply = json_loads(buf, 0, &jerr)) == NULL)
		fprintf(stderr, "posternctl: posternd sent a reply that is not JSON: %s\n", jerr.text);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return reply;
}

static const char *
human_bytes(json_int_t n, char *buf, size_t size)
{
	const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
	return buf;
}

static int
ctl_print_sessions(json_t *reply)
{
	json_t *list = json_object_get(reply, "sessions"), *s;
	size_t i;

	printf("%-16s  %-8s  %-12s  %-12s  %-21s  %-20s  %-10s  %10s  %10s\n",
	    "ID", "PROTOCOL", "USER", "TARGET", "CLIENT", "STARTED", "STATE", "UP", "DOWN");
	json_array_foreach(list, i, s) {
		char started[32], up[32], down[32];
		const char *user = json_string_value(json_object_get(s, "user"));

		util_time_format(json_real_value(json_object_get(s, "started")), started, sizeof(started));
		printf("%-16s  %-8s  %-12s  %-12s  %-21s  %-20s  %-10s  %10s  %10s\n",
		    json_string_value(json_object_get(s, "id")),
		    json_string_value(json_object_get(s, "protocol")),
		    user && *user ? user : "-",
		    json_string_value(json_object_get(s, "target")),
		    json_string_value(json_object_get(s, "client")), started,
		    json_string_value(json_object_get(s, "state")),
		    human_bytes(json_integer_value(json_object_get(s, "bytes_up")), up, sizeof(up)),
		    human_bytes(json_integer_value(json_object_get(s, "bytes_down")), down, sizeof(down)));
	}
	return 0;
}

static int
ctl_print_status(json_t *r)
{
	double up = json_real_value(json_object_get(r, "uptime"));

	printf("posternd %s on %s (pid %lld)%s\n", json_string_value(json_object_get(r, "version")),
	    json_string_value(json_object_get(r, "node")), json_integer_value(json_object_get(r, "pid")),
	    json_is_true(json_object_get(r, "stopping")) ? " — shutting down" : "");
	printf("uptime:   %dd %02dh %02dm %02ds\n", (int)(up / 86400), (int)(up / 3600) % 24, (int)(up / 60) % 60, (int)up % 60);
	printf("workers:  %lld\n", json_integer_value(json_object_get(r, "workers")));
	printf("sessions: %lld live\n", json_integer_value(json_object_get(r, "sessions")));
	printf("config:   %s\n", json_string_value(json_object_get(r, "config")));
	return 0;
}

int
main(int argc, char **argv)
{
	const char *sock = getenv("POSTERN_ADMIN_SOCKET");
	const char *cmd;
	char request[256];
	bool json = false;
	json_t *reply;
	int i = 1, r = 1;

	if (sock == NULL || *sock == '\0')
		sock = CTL_DEFAULT_SOCKET;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if ((strcmp(argv[i], "-s") == 0 || strcmp(argv[i], "--socket") == 0) && i + 1 < argc) {
			sock = argv[++i];
		} else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
			printf("posternctl %s\n", POSTERN_VERSION);
			return 0;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "posternctl: unknown option %s\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[i++];
	if (i < argc && strcmp(argv[argc - 1], "--json") == 0) {
		json = true;
		argc--;
	}
	if ((strcmp(cmd, "status") == 0 || strcmp(cmd, "sessions") == 0 || strcmp(cmd, "reload") == 0) && i == argc) {
		snprintf(request, sizeof(request), "%s", cmd);
	} else if (strcmp(cmd, "kill") == 0 && i + 1 == argc && strlen(argv[i]) == 16 &&
	    strspn(argv[i], "0123456789abcdef") == 16) {
		snprintf(request, sizeof(request), "kill %s", argv[i]);
	} else if (strcmp(cmd, "kill") == 0) {
		fprintf(stderr, "posternctl: kill takes one session id (16 hex digits, see posternctl sessions)\n");
		return 2;
	} else {
		fprintf(stderr, "posternctl: unknown command or arguments: %s\n", cmd);
		usage(stderr);
		return 2;
	}
	if ((reply = ctl_request(sock, request)) == NULL)
		return 1;
	if (json_object_get(reply, "error") != NULL) {
		const char *msg = json_string_value(json_object_get(reply, "error"));

		fprintf(stderr, "posternctl: %s%s", msg, msg[0] && msg[strlen(msg) - 1] == '\n' ? "" : "\n");
		r = 1;
	} else if (json) {
		char *text = json_dumps(reply, JSON_INDENT(2));

		puts(text);
		free(text);
		r = 0;
	} else if (strcmp(cmd, "status") == 0) {
		r = ctl_print_status(reply);
	} else if (strcmp(cmd, "sessions") == 0) {
		r = ctl_print_sessions(reply);
	} else if (strcmp(cmd, "kill") == 0) {
		printf("session %s is ending\n", argv[i]);
		r = 0;
	} else {
		printf("configuration reloaded\n");
		r = 0;
	}
	json_decref(reply);
	return r;
}
