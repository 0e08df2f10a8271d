/*
 * postern login, status and logout: enrol this device with an invite, prove its key to the
 * relay's login API for short-lived X.509 and OpenSSH credentials, show them, drop them.
 * docs/launcher.md is the user's guide; docs/login-api.md the protocol.
 */
#ifndef POSTERN_CLIENT_LOGIN_H
#define POSTERN_CLIENT_LOGIN_H

enum postern_exit {			/* the launcher's exit statuses */
	POSTERN_EXIT_OK = 0,
	POSTERN_EXIT_ERROR = 1,		/* refused by the relay, or a local failure */
	POSTERN_EXIT_USAGE = 2,		/* bad arguments */
	POSTERN_EXIT_UNREACHABLE = 3,	/* no connection or no trusted TLS to the relay */
	POSTERN_EXIT_NOT_LOGGED_IN = 4,	/* no credentials, or expired ones: run postern login */
	POSTERN_EXIT_NOT_ALLOWED = 5,	/* the target is not among those the user may reach */
	POSTERN_EXIT_TARGET_DOWN = 6,	/* the relay could not reach the target */
};

/* Each takes the arguments after the command's name (ARGV[0] is the command) and returns an
 * enum postern_exit; messages go to stdout, errors to stderr prefixed "postern: ". */
int login_main(int argc, char **argv) __attribute__((warn_unused_result));
int login_status(int argc, char **argv) __attribute__((warn_unused_result));
int login_logout(int argc, char **argv) __attribute__((warn_unused_result));

#endif
