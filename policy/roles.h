/*
 * Role scripts: who (members) may reach what (targets, by name or glob), as whom (the target
 * login per protocol), for how long (credential TTL), with or without MFA, under which policy
 * file. Loaded from every *.lua file of a directory, in name order, in the sandbox; a set of
 * roles is immutable and replaced whole on reload.
 */
#ifndef POSTERN_ROLES_H
#define POSTERN_ROLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define ROLES_PROTOCOLS	4	/* tcp, postgres, mysql, ssh: indexes of enum config_protocol */

struct role {
	char *name;
	char **members;			/* user names */
	size_t nmembers;
	char **targets;			/* target names or fnmatch(3) globs */
	size_t ntargets;
	char *logins[ROLES_PROTOCOLS];	/* target login per protocol; NULL: the target's own */
	long ttl;			/* longest credential lifetime, seconds */
	bool mfa;			/* TOTP required at login */
	char *policy;			/* policy file, absolute; NULL: allow-all */
	char *policy_source;		/* its text as read at load: what sessions run, whatever the disk says later */
	size_t policy_len;
	char *file;			/* where it is declared */
	int line;
};

struct roles {
	struct role *list;
	size_t n;
};

/* Is NAME a configured target? Used to catch typos in role scripts. */
typedef bool (*roles_target_known_fn)(void *arg, const char *name);

/*
 * Load every *.lua file in DIR into *OUT. Problems are written to ERRS as "FILE:LINE: …" lines;
 * returns how many there were (0 on success). MAX_TTL caps (and defaults) each role's TTL.
 */
int roles_load(const char *dir, long max_ttl, roles_target_known_fn known, void *arg,
    struct roles *out, FILE *errs) __attribute__((warn_unused_result));
void roles_free(struct roles *r);

bool roles_is_member(const struct role *role, const char *user);
/* Does any role name USER? */
bool roles_user_known(const struct roles *r, const char *user);
/* The first role (in load order) that lets USER reach TARGET, or NULL. */
const struct role *roles_grant(const struct roles *r, const char *user, const char *target);
/* Shortest TTL among USER's roles (0 when none), and whether any of them asks for MFA. */
long roles_ttl(const struct roles *r, const char *user, bool *mfa);

#endif
