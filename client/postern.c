/*
 * postern: the engineer's launcher. It logs in (enrolling the device with an invite the first
 * time), shows and drops the session, lists the targets the relay lets this user reach, runs
 * psql on one, prints its libpq variables, or opens a local listener to it for tools without
 * client certificates. Each command lives in its own file; this one only dispatches.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "client/connect.h"
#include "client/launch.h"
#include "client/login.h"

struct postern_cmd {
	const char *name;
	int (*run)(int argc, char **argv);	/* ARGV[0] is the command's name */
};

static const struct postern_cmd postern_cmds[] = {
	{ "login", login_main },
	{ "status", login_status },
	{ "logout", login_logout },
	{ "ls", launch_ls },
	{ "psql", launch_psql },
	{ "env", launch_env },
	{ "connect", connect_main },
};

/* Named in the design, not built yet: say so rather than "unknown command". */
static const char *const postern_later[] = { "mysql", "ssh" };

static void
postern_usage(FILE *out)
{
	fprintf(out,
	    "usage: postern COMMAND [ARGS]\n"
	    "\n"
	    "Reach production through the Postern relay with your usual tools.\n"
	    "\n"
	    "Commands:\n"
	    "  login [URL] [--invite CODE.PIN] [--totp CODE] [--device-name NAME]\n"
	    "                  get short-lived credentials (the first time, enrol with an invite)\n"
	    "  status          who you are logged in as, at which relay, with which roles, until when\n"
	    "  logout          delete the session credentials (this device stays enrolled)\n"
	    "  ls              the targets you may reach now, with protocol, login and address\n"
	    "  psql TARGET[/DATABASE] [-- PSQL-ARGS]\n"
	    "                  run psql on a PostgreSQL target through the relay\n"
	    "  env TARGET[/DATABASE]\n"
	    "                  print the PG* variables for a PostgreSQL target, for scripts (eval)\n"
	    "  connect TARGET [--port N]\n"
	    "                  a local listener for tools without client certificates (GUIs, drivers)\n"
	    "\n"
	    "  -V, --version   print the version\n"
	    "  -h, --help      this text (postern COMMAND --help for a command's)\n"
	    "\n"
	    "Files live in $POSTERN_HOME (default ~/.config/postern).\n"
	    "Exit status: 0 ok, 1 refused or failed, 2 usage, 3 relay unreachable, 4 not logged in or\n"
	    "expired (run postern login), 5 target not yours, 6 target down.\n");
}

int
main(int argc, char **argv)
{
	/* A relay that hangs up mid-request must give an error message, not a silent death. */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		postern_usage(stderr);
		return POSTERN_EXIT_USAGE;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("postern %s\n", POSTERN_VERSION);
		return POSTERN_EXIT_OK;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		postern_usage(stdout);
		return POSTERN_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(postern_cmds) / sizeof(postern_cmds[0]); i++)
		if (strcmp(argv[1], postern_cmds[i].name) == 0)
			return postern_cmds[i].run(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(postern_later) / sizeof(postern_later[0]); i++) {
		if (strcmp(argv[1], postern_later[i]) == 0) {
			fprintf(stderr, "postern: %s is not available yet in this version: the relay has no %s front; use "
			    "the files that postern login writes with your usual client (see docs/launcher.md)\n", argv[1],
			    strcmp(argv[1], "ssh") == 0 ? "SSH" : "MySQL");
			return POSTERN_EXIT_USAGE;
		}
	}
	fprintf(stderr, "postern: unknown command \"%s\"; see postern --help\n", argv[1]);
	return POSTERN_EXIT_USAGE;
}
