/*
 * postern ls, psql and env: list the targets this user may reach, run psql on one through the
 * relay with the session's certificate, or print the PG* variables for other tools. postern
 * connect (client/connect.h) shares the lookup. docs/launcher.md is the user's guide.
 */
#ifndef POSTERN_CLIENT_LAUNCH_H
#define POSTERN_CLIENT_LAUNCH_H

#include <stddef.h>

#include "client/creds.h"
#include "client/targets.h"

#define LAUNCH_ERR_MAX		1024

/* Each takes the arguments after "postern" (ARGV[0] is the command) and returns an enum postern_exit. */
int launch_ls(int argc, char **argv) __attribute__((warn_unused_result));
int launch_psql(int argc, char **argv) __attribute__((warn_unused_result));
int launch_env(int argc, char **argv) __attribute__((warn_unused_result));

/*
 * What every command that connects does first: check the credentials (into C), then find the
 * target of SPEC ("TARGET" or "TARGET/DATABASE") among those the user may reach (into T).
 * Says what went wrong on stderr and returns the exit status: 4 without valid credentials, 3
 * when the relay cannot be reached, 5 when the target is not the user's, 2 for a malformed
 * SPEC. C needs creds_free() whatever the result.
 */
int launch_target(const char *spec, struct creds *c, struct target *t) __attribute__((warn_unused_result));

/* Whether SPEC is "TARGET" or "TARGET/DATABASE" with a well-formed target name. */
bool launch_spec_ok(const char *spec);

/* VALUE quoted for a libpq conninfo string ('…' with \ and ' escaped) into OUT; -1 if it does not fit. */
int launch_pq_quote(const char *value, char *out, size_t outlen) __attribute__((warn_unused_result));

/* VALUE quoted for a POSIX shell ('…' with ' as '\'') into OUT; -1 if it does not fit. */
int launch_sh_quote(const char *value, char *out, size_t outlen) __attribute__((warn_unused_result));

#endif
