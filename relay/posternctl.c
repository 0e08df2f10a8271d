/*
 * posternctl: the admin's and auditor's command line. It speaks to a running posternd over
 * its admin socket (status, live sessions, kill, reload, users); `posternctl audit …` reads
 * recordings directly (relay/ctl_audit.c).
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

#include "relay/ctl_audit.h"
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
	    "  users ls [--json]    users: roles, devices, locked, last login\n"
	    "  users invite USER [--ttl 24h]   a one-time enrolment invite for USER\n"
	    "  users lock USER [--reason R]    lock USER now and end their live sessions\n"
	    "  users unlock USER\n"
	    "  users rm-device USER DEVICE     forget one of USER's enrolled devices and revoke its certificates\n");
	ctl_audit_usage(out);
	fprintf(out,
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
	if (json_object_get(r, "recording") != NULL)
		printf("recording: %s\n", json_string_value(json_object_get(r, "recording")));
	return 0;
}

static int
ctl_print_users(json_t *reply)
{
	json_t *list = json_object_get(reply, "users"), *u, *x;
	size_t i, j;

	printf("%-20s  %-24s  %-7s  %-6s  %-20s  %s\n", "USER", "ROLES", "DEVICES", "LOCKED", "LAST LOGIN", "MFA");
	json_array_foreach(list, i, u) {
		char roles[128] = "", last[32] = "-";
		size_t o = 0;

		json_array_foreach(json_object_get(u, "roles"), j, x)
			o += (size_t)snprintf(roles + o, o < sizeof(roles) ? sizeof(roles) - o : 0, "%s%s", j ? "," : "",
			    json_string_value(x));
		if (json_is_integer(json_object_get(u, "last_login")))
			util_time_format((double)json_integer_value(json_object_get(u, "last_login")), last, sizeof(last));
		printf("%-20s  %-24s  %-7zu  %-6s  %-20s  %s\n", json_string_value(json_object_get(u, "user")),
		    roles[0] ? roles : "-", json_array_size(json_object_get(u, "devices")),
		    json_is_true(json_object_get(u, "locked")) ? "yes" : "no", last,
		    json_is_true(json_object_get(u, "mfa")) ? "totp" : "-");
	}
	return 0;
}

static int
ctl_print_invite(json_t *r)
{
	char when[32];

	util_time_format((double)json_integer_value(json_object_get(r, "expires")), when, sizeof(when));
	printf("Invite for %s (single use, expires %s):\n\n", json_string_value(json_object_get(r, "user")), when);
	printf("  postern login %s --invite %s\n\n", json_string_value(json_object_get(r, "url")),
	    json_string_value(json_object_get(r, "invite")));
	printf("Send it to the user over a channel you trust; it pins this relay's CA.\n");
	return 0;
}

/* "--name VALUE" among ARGV[FROM..ARGC): VALUE, removed from the list, or NULL. */
static const char *
ctl_option(int *argc, char **argv, int from, const char *name)
{
	for (int i = from; i + 1 < *argc; i++) {
		if (strcmp(argv[i], name) == 0) {
			const char *v = argv[i + 1];

			memmove(&argv[i], &argv[i + 2], (size_t)(*argc - i - 2) * sizeof(char *));
			*argc -= 2;
			return v;
		}
	}
	return NULL;
}

/* Build the request for the command line at ARGV[I..ARGC), or NULL after printing why. */
static json_t *
ctl_build(int argc, char **argv, int i)
{
	const char *cmd = argv[i++];
	int nargs = argc - i;

	if ((strcmp(cmd, "status") == 0 || strcmp(cmd, "sessions") == 0 || strcmp(cmd, "reload") == 0) && nargs == 0)
		return json_pack("{s:s}", "cmd", cmd);
	if (strcmp(cmd, "kill") == 0) {
		if (nargs == 1 && strlen(argv[i]) == 16 && strspn(argv[i], "0123456789abcdef") == 16)
			return json_pack("{s:s, s:s}", "cmd", "kill", "id", argv[i]);
		fprintf(stderr, "posternctl: kill takes one session id (16 hex digits, see posternctl sessions)\n");
		return NULL;
	}
	if (strcmp(cmd, "users") == 0 && nargs >= 1) {
		const char *sub = argv[i++];
		const char *ttl = ctl_option(&argc, argv, i, "--ttl");
		const char *reason = ctl_option(&argc, argv, i, "--reason");
		long secs = 0;

		nargs = argc - i;
		if (ttl != NULL && (util_duration_parse(ttl, &secs) != 0 || secs <= 0)) {
			fprintf(stderr, "posternctl: --ttl takes a duration like 24h, 30m or 3600\n");
			return NULL;
		}
		if (strcmp(sub, "ls") == 0 && nargs == 0)
			return json_pack("{s:s}", "cmd", "users.ls");
		if (strcmp(sub, "invite") == 0 && nargs == 1)
			return json_pack("{s:s, s:s, s:I}", "cmd", "users.invite", "user", argv[i], "ttl", (json_int_t)secs);
		if (strcmp(sub, "lock") == 0 && nargs == 1)
			return json_pack("{s:s, s:s, s:s}", "cmd", "users.lock", "user", argv[i], "reason",
			    reason ? reason : "locked by an administrator");
		if (strcmp(sub, "unlock") == 0 && nargs == 1)
			return json_pack("{s:s, s:s}", "cmd", "users.unlock", "user", argv[i]);
		if (strcmp(sub, "rm-device") == 0 && nargs == 2)
			return json_pack("{s:s, s:s, s:s}", "cmd", "users.rm-device", "user", argv[i], "device", argv[i + 1]);
	}
	fprintf(stderr, "posternctl: unknown command or wrong arguments: %s\n", cmd);
	usage(stderr);
	return NULL;
}

int
main(int argc, char **argv)
{
	const char *sock = getenv("POSTERN_ADMIN_SOCKET");
	const char *cmd, *sub;
	bool json = false;
	json_t *request, *reply;
	char *text;
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
	if (strcmp(argv[i], "audit") == 0)
		return ctl_audit_main(argc - i, argv + i);
	if (strcmp(argv[argc - 1], "--json") == 0) {
		json = true;
		argc--;
	}
	if (i >= argc || (request = ctl_build(argc, argv, i)) == NULL)
		return 2;
	cmd = argv[i];
	sub = i + 1 < argc ? argv[i + 1] : "";
	text = json_dumps(request, JSON_COMPACT);
	json_decref(request);
	reply = text ? ctl_request(sock, text) : NULL;
	free(text);
	if (reply == NULL)
		return 1;
	if (json_object_get(reply, "error") != NULL) {
		const char *msg = json_string_value(json_object_get(reply, "error"));

		fprintf(stderr, "posternctl: %s%s", msg, msg[0] && msg[strlen(msg) - 1] == '\n' ? "" : "\n");
		r = 1;
	} else if (json) {
		char *out = json_dumps(reply, JSON_INDENT(2));

		puts(out);
		free(out);
		r = 0;
	} else if (strcmp(cmd, "status") == 0) {
		r = ctl_print_status(reply);
	} else if (strcmp(cmd, "sessions") == 0) {
		r = ctl_print_sessions(reply);
	} else if (strcmp(cmd, "users") == 0 && strcmp(sub, "ls") == 0) {
		r = ctl_print_users(reply);
	} else if (strcmp(cmd, "users") == 0 && strcmp(sub, "invite") == 0) {
		r = ctl_print_invite(reply);
	} else {
		const char *msg = json_string_value(json_object_get(reply, "message"));

		printf("%s\n", msg ? msg : "done");
		r = 0;
	}
	json_decref(reply);
	return r;
}
