/*
 * posternd: start-up, listeners, signals, reload and graceful shutdown. The main thread owns
 * the listeners, the admin socket and the current config; workers own the sessions.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <jansson.h>

#include "audit/audit.h"
#include "protocols/pg/pg.h"
#include "protocols/tcp/tcp.h"
#include "relay/admin.h"
#include "relay/config.h"
#include "relay/identity.h"
#include "relay/log.h"
#include "relay/loginapi.h"
#include "relay/session.h"
#include "relay/worker.h"

#define LISTEN_BACKLOG		1024
#define SHUTDOWN_POLL_SEC	0.1
#define SHUTDOWN_KILL_WAIT_SEC	5.0

struct listener {
	char *address;			/* as written in the config; the key across reloads */
	enum config_protocol protocol;
	char *target;			/* target name the connections are for; NULL for a protocol front */
	struct evconnlistener *lev;
	struct listener *next;
};

static struct event_base *main_base;
static struct config *current;		/* main thread only */
static struct listener *listeners;
static char listen_error[256];		/* the last listener that failed to open on a reload */
static double started_mono;
static struct event *shutdown_timer;
static double shutdown_deadline;
static bool shutdown_killed;
static bool stopping;

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;
	int one = 1;

	/* Relayed protocols are request/response: Nagle's delay would add 40 ms to each reply. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	worker_dispatch(fd, sa, (socklen_t)salen, current, l->protocol, l->target);
}

static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	/* EMFILE and friends: say so and go on; the listener retries on the next readiness. */
	log_error("accept failed", "listen=%s error=\"%s\"", l->address, strerror(err));
}

static struct listener *
listener_open(const char *address, const struct net_addr *addr, enum config_protocol protocol,
    const char *target, char *err, size_t errlen)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->address = strdup(address);
	l->protocol = protocol;
	l->target = target ? strdup(target) : NULL;
	l->lev = evconnlistener_new_bind(main_base, accept_cb, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, LISTEN_BACKLOG,
	    (const struct sockaddr *)&addr->ss, (int)addr->len);
	if (l->lev == NULL) {
		snprintf(err, errlen, "cannot listen on %s for %s %s: %s", address, target ? "target" : "the",
		    target ? target : config_protocol_name(protocol), strerror(errno));
		free(l->address);
		free(l->target);
		free(l);
		return NULL;
	}
	evconnlistener_set_error_cb(l->lev, accept_error_cb);
	return l;
}

static void
listener_close(struct listener *l)
{
	evconnlistener_free(l->lev);
	free(l->address);
	free(l->target);
	free(l);
}

/*
 * Make the listeners match CFG: keep those whose address stays (re-pointed at their target),
 * close the rest, open the new ones. At start-up any failure is fatal (STRICT); on reload a
 * port that cannot be bound is logged and the others go on.
 */
/*
 * Make one listener match (ADDRESS, PROTOCOL, TARGET): reuse the one on ADDRESS from OLD (moved
 * to *KEEP, re-pointed), or open it. On failure at start-up (STRICT) print and return -1; on a
 * reload log it and go on.
 */
static int
listener_want(struct listener **old, struct listener **keep, const char *address, const struct net_addr *addr,
    enum config_protocol protocol, const char *target, bool strict)
{
	struct listener **pp, *l;
	char err[256];

	for (pp = old; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->address, address) == 0)
			break;
	if (*pp != NULL) {
		l = *pp;
		*pp = l->next;
		free(l->target);
		l->target = target ? strdup(target) : NULL;
		l->protocol = protocol;
	} else if ((l = listener_open(address, addr, protocol, target, err, sizeof(err))) == NULL) {
		if (strict) {
			fprintf(stderr, "posternd: %s\n", err);
			return -1;
		}
		log_error("listener failed", "listen=%s error=\"%s\"", address, err);
		snprintf(listen_error, sizeof(listen_error), "%s", err);
		return -1;
	} else {
		log_info("listening", "protocol=%s target=%s listen=%s", config_protocol_name(protocol),
		    target ? target : "-", address);
	}
	l->next = *keep;
	*keep = l;
	return 0;
}

/*
 * Make the listeners match CFG: one per protocol front, one per tcp target. Those whose
 * address stays are kept; the rest close; new ones open. At start-up any failure is fatal
 * (STRICT); on reload a port that cannot be bound is logged and the others go on.
 */
static int
listeners_apply(const struct config *cfg, bool strict)
{
	struct listener *keep = NULL, *l, *next;
	int r = 0;

	for (int p = 0; p <= CONFIG_PROTOCOL_SSH; p++)
		if (cfg->listen[p] != NULL &&
		    listener_want(&listeners, &keep, cfg->listen[p], &cfg->listen_addr[p], (enum config_protocol)p, NULL, strict) != 0)
			r = -1;
	for (size_t i = 0; i < cfg->ntargets; i++) {
		const struct config_target *t = &cfg->targets[i];

		if (t->protocol == CONFIG_PROTOCOL_TCP &&
		    listener_want(&listeners, &keep, t->listen, &t->listen_addr, t->protocol, t->name, strict) != 0)
			r = -1;
	}
	for (l = listeners; l != NULL; l = next) {
		next = l->next;
		log_info("listener closed", "listen=%s", l->address);
		listener_close(l);
	}
	listeners = keep;
	return r;
}

static void
listeners_close_all(void)
{
	for (struct listener *l = listeners, *next; l != NULL; l = next) {
		next = l->next;
		listener_close(l);
	}
	listeners = NULL;
}

static int
reload(char **errors)
{
	struct config *cfg;

	*errors = NULL;
	if (stopping) {
		*errors = strdup("posternd is shutting down");
		return -1;
	}
	if (config_load(current->path, &cfg, errors) != 0) {
		char *copy = *errors ? strdup(*errors) : NULL, *save = NULL, q[512];

		/* One log line per error, so each keeps its FILE:LINE. */
		for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line != NULL; line = strtok_r(NULL, "\n", &save))
			log_error("reload refused; previous configuration stays in force", "error=%s", log_quote(q, sizeof(q), line));
		free(copy);
		return -1;
	}
	if (cfg->workers != current->workers)
		log_warn("workers changed; takes effect at the next restart", "workers=%d", worker_count());
	if (strcmp(cfg->admin_socket, current->admin_socket) != 0)
		log_warn("admin_socket changed; takes effect at the next restart", "admin_socket=%s", current->admin_socket);
	if ((cfg->log_file == NULL) != (current->log_file == NULL) ||
	    (cfg->log_file != NULL && strcmp(cfg->log_file, current->log_file) != 0)) {
		if (log_open(cfg->log_file) != 0)
			log_error("cannot open the new log file; logging stays where it was", "log_file=%s", cfg->log_file);
	}
	log_set_level(cfg->log_level);
	worker_set_busy_poll(cfg->busy_poll);
	worker_set_slice(cfg->worker_slice);
	if ((cfg->api_listen == NULL) != (current->api_listen == NULL) ||
	    (cfg->api_listen != NULL && strcmp(cfg->api_listen, current->api_listen) != 0))
		log_warn("api_listen changed; takes effect at the next restart", "api_listen=%s",
		    current->api_listen ? current->api_listen : "-");
	listen_error[0] = '\0';
	if (listeners_apply(cfg, false) != 0 && asprintf(errors, "configuration reloaded, but %s", listen_error) < 0)
		*errors = NULL;
	config_unref(current);
	current = cfg;
	audit_configure(current);
	log_info("configuration reloaded", "targets=%zu roles=%zu", cfg->ntargets, cfg->roles.n);
	/* Offboarding: whoever lost access in this reload loses their live sessions now. */
	identity_sweep(current);
	return *errors != NULL ? -1 : 0;
}

static json_t *
status_json(json_t *req)
{
	char audit[700];

	return json_pack("{s:s, s:s, s:i, s:f, s:i, s:I, s:s, s:b, s:s}",
	    "version", POSTERN_VERSION, "node", current->node, "pid", (int)getpid(),
	    "uptime", util_now_mono() - started_mono, "workers", worker_count(),
	    "sessions", (json_int_t)session_registry_count(), "config", current->path, "stopping", stopping,
	    "recording", audit_status(audit, sizeof(audit)));
}

static json_t *
reload_json(json_t *req)
{
	char *errors = NULL;
	json_t *reply;

	if (reload(&errors) == 0)
		return json_pack("{s:b, s:s}", "ok", 1, "message", "configuration reloaded");
	reply = json_pack("{s:s}", "error", errors ? errors : "reload failed");
	free(errors);
	return reply;
}

static json_t *
users_json(json_t *req)
{
	return identity_admin(current, json_string_value(json_object_get(req, "cmd")), req);
}

static const struct admin_command commands[] = {
	{ "status", status_json },
	{ "reload", reload_json },
	{ "users.ls", users_json },
	{ "users.invite", users_json },
	{ "users.lock", users_json },
	{ "users.unlock", users_json },
	{ "users.rm-device", users_json },
	{ NULL, NULL },
};

static void
shutdown_tick(evutil_socket_t fd, short what, void *arg)
{
	size_t n = session_registry_count();

	if (n == 0) {
		event_base_loopbreak(main_base);
		return;
	}
	if (util_now_mono() >= shutdown_deadline) {
		if (shutdown_killed) {
			log_warn("sessions did not end in time; exiting", "sessions=%zu", n);
			event_base_loopbreak(main_base);
			return;
		}
		log_info("shutdown grace over; ending sessions", "sessions=%zu", session_registry_kill_all("relay shutting down"));
		shutdown_killed = true;
		shutdown_deadline = util_now_mono() + SHUTDOWN_KILL_WAIT_SEC;
	}
}

static void
begin_shutdown(bool now)
{
	struct timeval tv = { 0, (suseconds_t)(SHUTDOWN_POLL_SEC * 1e6) };

	if (stopping) {
		if (!shutdown_killed) {
			shutdown_deadline = 0;	/* a second signal: end sessions now */
			shutdown_tick(-1, 0, NULL);
		}
		return;
	}
	stopping = true;
	listeners_close_all();
	shutdown_deadline = util_now_mono() + (now ? 0 : current->shutdown_grace);
	log_info("shutting down", "sessions=%zu grace=%.1f", session_registry_count(), now ? 0.0 : current->shutdown_grace);
	shutdown_timer = event_new(main_base, -1, EV_PERSIST, shutdown_tick, NULL);
	event_add(shutdown_timer, &tv);
	shutdown_tick(-1, 0, NULL);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	char *errors = NULL;

	switch (sig) {
	case SIGHUP:
		log_info("SIGHUP: reloading configuration", "config=%s", current->path);
		(void)reload(&errors);
		free(errors);
		break;
	case SIGTERM:
	case SIGINT:
		begin_shutdown(false);
		break;
	}
}

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: posternd -c FILE [--check]\n"
	    "\n"
	    "Postern's relay daemon: terminates engineers' connections, applies policy, records\n"
	    "sessions and opens the onward connection to the real server.\n"
	    "\n"
	    "  -c, --config FILE   the configuration (Lua), e.g. /etc/postern/posternd.lua\n"
	    "      --check         validate the configuration, print every error as FILE:LINE, exit\n"
	    "  -V, --version       print the version and exit\n"
	    "  -h, --help          this text\n"
	    "\n"
	    "Signals: SIGHUP reloads the configuration (a broken one is refused, the old one stays);\n"
	    "SIGTERM stops accepting, lets sessions end within shutdown_grace, then ends them.\n"
	    "See docs/configuration.md and docs/operations.md.\n");
}

static int
ensure_dir(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) == 0 || (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
		return 0;
	return -1;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'C' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	bool check = false;
	char *errors = NULL, err[512];
	struct event *sigs[4];
	const int signums[4] = { SIGHUP, SIGTERM, SIGINT, 0 };
	int c, nworkers;
	long nofile;

	while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'C': check = true; break;
		case 'V': printf("posternd %s\n", POSTERN_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (config_load(path, &current, &errors) != 0) {
		/* Syntax and validation errors already start with FILE:LINE; "cannot open" does not. */
		if (errors != NULL && strncmp(errors, "cannot open ", 12) == 0)
			fputs("posternd: ", stderr);
		fputs(errors ? errors : "posternd: cannot load the configuration\n", stderr);
		free(errors);
		return 1;
	}
	if (check) {
		printf("%s: ok (%zu targets)\n", path, current->ntargets);
		config_unref(current);
		return 0;
	}
	if (ensure_dir(current->state_dir) != 0) {
		fprintf(stderr, "posternd: cannot use state_dir %s: %s\n", current->state_dir, strerror(errno));
		return 1;
	}
	if (log_open(current->log_file) != 0) {
		fprintf(stderr, "posternd: cannot open log_file %s: %s\n", current->log_file, strerror(errno));
		return 1;
	}
	log_set_level(current->log_level);
	signal(SIGPIPE, SIG_IGN);
	nofile = util_raise_nofile();
	if (evthread_use_pthreads() != 0 || (main_base = event_base_new()) == NULL) {
		fprintf(stderr, "posternd: cannot start the event loop\n");
		return 1;
	}
	started_mono = util_now_mono();
	if (identity_open(current, err, sizeof(err)) != 0) {
		fprintf(stderr, "posternd: %s\n", err);
		return 1;
	}
	/* Fail closed: with auditor_keys set, no start without a usable audit directory. */
	if (audit_start(current, err, sizeof(err)) != 0) {
		fprintf(stderr, "posternd: %s\n", err);
		return 1;
	}
	if (listeners_apply(current, true) != 0)
		return 1;
	if (current->api_listen != NULL && loginapi_start(main_base, current, &current, err, sizeof(err)) != 0) {
		fprintf(stderr, "posternd: %s\n", err);
		return 1;
	}
	if (admin_start(main_base, current->admin_socket, commands, err, sizeof(err)) != 0) {
		fprintf(stderr, "posternd: %s\n", err);
		return 1;
	}
	worker_set_protocol(CONFIG_PROTOCOL_TCP, tcp_accept);
	worker_set_protocol(CONFIG_PROTOCOL_POSTGRES, pg_accept);
	nworkers = current->workers > 0 ? current->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (nworkers < 1)
		nworkers = 1;
	worker_set_busy_poll(current->busy_poll);
	worker_set_slice(current->worker_slice);
	if (worker_start_all(nworkers) != 0) {
		fprintf(stderr, "posternd: cannot start %d worker threads\n", nworkers);
		return 1;
	}
	for (int i = 0; signums[i] != 0; i++) {
		sigs[i] = evsignal_new(main_base, signums[i], signal_cb, NULL);
		event_add(sigs[i], NULL);
	}
	log_info("posternd started", "version=%s node=%s pid=%d workers=%d targets=%zu admin_socket=%s nofile=%ld",
	    POSTERN_VERSION, current->node, (int)getpid(), nworkers, current->ntargets, current->admin_socket, nofile);

	event_base_dispatch(main_base);

	worker_stop_all();
	audit_stop();
	loginapi_stop();
	admin_stop();
	for (int i = 0; signums[i] != 0; i++)
		event_free(sigs[i]);
	if (shutdown_timer != NULL)
		event_free(shutdown_timer);
	listeners_close_all();
	log_info("posternd stopped", "pid=%d", (int)getpid());
	config_unref(current);
	identity_close();
	event_base_free(main_base);
	log_close();
	return 0;
}
