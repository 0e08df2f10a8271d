/*
 * postern: the engineer's launcher. This cut logs in (enrolling the device with an invite the
 * first time), shows and drops the session; ls, psql, mysql, ssh and connect land with the
 * relay features behind them. Each command lives in its own file; this one only dispatches.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "client/login.h"

struct postern_cmd {
	const char *name;
	int (*run)(int argc, char **argv);	/* ARGV[0] is the command's name */
};

static const struct postern_cmd postern_cmds[] = {
	{ "login", login_main },
	{ "status", login_status },
	{ "logout", login_logout },
};

/* Named in the design, not built yet: say so rather than "unknown command". */
static const char *const postern_later[] = { "ls", "psql", "mysql", "ssh", "connect", "env" };

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
	    "\n"
	    "  -V, --version   print the version\n"
	    "  -h, --help      this text (postern COMMAND --help for a command's)\n"
	    "\n"
	    "Files live in $POSTERN_HOME (default ~/.config/postern).\n");
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
			fprintf(stderr, "postern: %s is not available yet in this version; use the files that postern "
			    "login writes with your usual client (see postern status)\n", argv[1]);
			return POSTERN_EXIT_USAGE;
		}
	}
	fprintf(stderr, "postern: unknown command \"%s\"; see postern --help\n", argv[1]);
	return POSTERN_EXIT_USAGE;
}
