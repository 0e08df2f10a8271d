/*
 * postern: the engineer's launcher (login, ls, psql, mysql, ssh, connect). This first cut
 * knows its version and its commands; each command lands with the relay feature behind it.
 */
#include <stdio.h>
#include <string.h>

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: postern COMMAND [ARGS]\n"
	    "\n"
	    "Reach production through the Postern relay with your usual tools.\n"
	    "Commands (as the relay grows): login, logout, status, ls, psql, mysql, ssh, connect, env.\n"
	    "\n"
	    "  -V, --version   print the version\n"
	    "  -h, --help      this text\n");
}

int
main(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)) {
		printf("postern %s\n", POSTERN_VERSION);
		return 0;
	}
	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc >= 2)
		fprintf(stderr, "postern: %s is not available yet in this version\n", argv[1]);
	usage(stderr);
	return 2;
}
