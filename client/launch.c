/*
 * postern ls, psql and env. They only look things up: which targets the relay lets this user
 * reach (client/targets.h), where the relay's front for each listens, and which files hold
 * the session's certificate; the connection itself is the native client's (psql, or any libpq
 * tool given the variables of postern env), verify-full against the relay's CA.
 */
#include "client/launch.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/login.h"

#define LAUNCH_PSQL		"psql"
#define LAUNCH_PROTO_PG		"postgres"
#define LAUNCH_PROTO_TCP	"tcp"
#define LAUNCH_CONNINFO_MAX	(4 * PATH_MAX + 1024)
#define LAUNCH_WARN_SEC		(15 * 60)	/* as postern status: warn when less is left */

static bool
launch_is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

bool
launch_spec_ok(const char *spec)
{
	size_t n = strcspn(spec, "/");

	/* A leading "-" would read as an option to us, to psql and to the shell's completion. */
	if (n == 0 || n >= TARGETS_NAME_MAX || spec[0] == '-' || (spec[n] == '/' && spec[n + 1] == '\0'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)spec[i]) && strchr("._-@+", spec[i]) == NULL)
			return false;
	return true;
}

int
launch_pq_quote(const char *value, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen < 3)
		return -1;
	out[o++] = '\'';
	for (const char *p = value; *p; p++) {
		if (o + 4 >= outlen)
			return -1;
		if (*p == '\'' || *p == '\\')
			out[o++] = '\\';
		out[o++] = *p;
	}
	out[o++] = '\'';
	out[o] = '\0';
	return 0;
}

int
launch_sh_quote(const char *value, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen < 3)
		return -1;
	out[o++] = '\'';
	for (const char *p = value; *p; p++) {
		if (o + 6 >= outlen)
			return -1;
		if (*p == '\'') {
			memcpy(out + o, "'\\''", 4);
			o += 4;
		} else {
			out[o++] = *p;
		}
	}
	out[o++] = '\'';
	out[o] = '\0';
	return 0;
}

/* Warn on stderr when C runs out within LAUNCH_WARN_SEC, as postern status does. */
static void
launch_warn_expiry(const struct creds *c)
{
	long left = (long)(c->expires - time(NULL));

	if (left < LAUNCH_WARN_SEC)
		fprintf(stderr, "warning: your credentials expire in %ld minutes; run postern login to renew\n",
		    (left + 59) / 60);
}

int
launch_target(const char *spec, struct creds *c, struct target *t)
{
	char err[LAUNCH_ERR_MAX], name[TARGETS_NAME_MAX];
	json_t *doc = NULL;
	long age = 0;
	int r;

	memset(t, 0, sizeof(*t));
	memset(c, 0, sizeof(*c));
	if (!launch_spec_ok(spec)) {
		home_say("\"%s\" is not a target name; write TARGET or TARGET/DATABASE (postern ls lists yours)", spec);
		return POSTERN_EXIT_USAGE;
	}
	snprintf(name, sizeof(name), "%.*s", (int)strcspn(spec, "/"), spec);
	if ((r = creds_load(c, time(NULL), err, sizeof(err))) != 0) {
		home_say("%s", err);
		return r;
	}
	if ((r = targets_load(c, 0, &doc, &age, err, sizeof(err))) != 0) {
		home_say("%s", err);
		return r;
	}
	/* A cached list may predate a grant: ask the relay before saying no. */
	if ((r = targets_find(c, doc, name, t, err, sizeof(err))) != 0 && age > 0) {
		json_decref(doc);
		if ((r = targets_load(c, TARGETS_REFRESH, &doc, &age, err, sizeof(err))) != 0) {
			home_say("%s", err);
			return r;
		}
		r = targets_find(c, doc, name, t, err, sizeof(err));
	}
	json_decref(doc);
	if (r != 0) {
		home_say("%s", err);
		return r;
	}
	if (t->port[0] == '\0') {
		home_say("the relay did not say where its %s front listens for target %s; ask your admin", t->protocol,
		    t->name);
		return POSTERN_EXIT_ERROR;
	}
	launch_warn_expiry(c);
	return POSTERN_EXIT_OK;
}

/* The libpq connection string for target T as SPEC says (dbname TARGET[/DATABASE]) into OUT. */
static int
launch_conninfo(const struct creds *c, const struct target *t, const char *spec, char *out, size_t outlen)
{
	const char *keys[] = { "host", "port", "dbname", "user", "sslmode", "sslrootcert", "sslcert", "sslkey" };
	const char *values[] = { t->host, t->port, spec, c->user, "verify-full", c->ca_path, c->cert_path, c->key_path };
	char q[PATH_MAX + 64];
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		int n;

		if (launch_pq_quote(values[i], q, sizeof(q)) != 0)
			return -1;
		n = snprintf(out + o, outlen - o, "%s%s=%s", o ? " " : "", keys[i], q);
		if (n < 0 || (size_t)n >= outlen - o)
			return -1;
		o += (size_t)n;
	}
	return 0;
}

/* ---- postern ls ---- */

static void
launch_ls_usage(FILE *out)
{
	fprintf(out,
	    "usage: postern ls [--json | --names] [--cached]\n"
	    "\n"
	    "The targets you may reach now, as the relay's role scripts say, with their protocol, the\n"
	    "login the target sees, the role that grants them and the relay address to connect to.\n"
	    "\n"
	    "  --json      the list as JSON\n"
	    "  --names     target names only, one a line\n"
	    "  --cached    the last list this session saved; do not ask the relay (for shell completion)\n"
	    "  -h, --help  this text\n"
	    "\n"
	    "If the relay cannot be reached, the last saved list is shown with a warning.\n"
	    "Exit status: 0 listed, 1 refused, 2 usage, 3 relay unreachable (nothing saved), 4 not logged in.\n");
}

int
launch_ls(int argc, char **argv)
{
	char err[LAUNCH_ERR_MAX];
	bool json = false, names = false, cached = false;
	struct creds c;
	struct target t;
	json_t *doc = NULL, *list = NULL;
	size_t n, wname = 6, wproto = 8, wlogin = 5, wrole = 4;
	long age = 0;
	int r;

	for (int i = 1; i < argc; i++) {
		if (launch_is_help(argv[i])) {
			launch_ls_usage(stdout);
			return POSTERN_EXIT_OK;
		} else if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--names") == 0) {
			names = true;
		} else if (strcmp(argv[i], "--cached") == 0) {
			cached = true;
		} else {
			home_say("ls takes no argument %s; see postern ls --help", argv[i]);
			return POSTERN_EXIT_USAGE;
		}
	}
	if (json && names) {
		home_say("ls takes --json or --names, not both");
		return POSTERN_EXIT_USAGE;
	}
	/* Completion wants names even from a session that just expired: the cache is enough. */
	if ((r = creds_load(&c, cached ? 0 : time(NULL), err, sizeof(err))) != 0) {
		if (!cached || r != POSTERN_EXIT_NOT_LOGGED_IN || c.user[0] == '\0') {
			home_say("%s", err);
			goto out;
		}
	}
	if ((r = targets_load(&c, cached ? TARGETS_OFFLINE : TARGETS_REFRESH | TARGETS_STALE_OK, &doc, &age, err,
	    sizeof(err))) != 0) {
		home_say("%s", err);
		goto out;
	}
	if (age > 0 && !cached)
		fprintf(stderr, "warning: the relay cannot be reached; this list is the one it gave %ld minutes ago\n",
		    (age + 59) / 60);
	n = json_array_size(json_object_get(doc, "targets"));
	if ((list = json_array()) == NULL) {
		home_say("out of memory");
		r = POSTERN_EXIT_ERROR;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (targets_entry(&c, doc, i, &t) != 0)
			continue;
		json_array_append_new(list, json_pack("{s:s, s:s, s:s*, s:s*, s:s, s:s*}", "name", t.name, "protocol",
		    t.protocol, "login", t.login[0] ? t.login : NULL, "role", t.role[0] ? t.role : NULL, "host", t.host,
		    "port", t.port[0] ? t.port : NULL));
		wname = strlen(t.name) > wname ? strlen(t.name) : wname;
		wproto = strlen(t.protocol) > wproto ? strlen(t.protocol) : wproto;
		wlogin = strlen(t.login) > wlogin ? strlen(t.login) : wlogin;
		wrole = strlen(t.role) > wrole ? strlen(t.role) : wrole;
	}
	if (json) {
		json_t *out = json_pack("{s:s, s:s, s:O}", "user", c.user, "relay", c.url.text, "targets", list);
		char *text = out ? json_dumps(out, JSON_INDENT(2)) : NULL;

		if (text != NULL)
			printf("%s\n", text);
		free(text);
		json_decref(out);
	} else if (names) {
		for (size_t i = 0; i < json_array_size(list); i++)
			printf("%s\n", json_string_value(json_object_get(json_array_get(list, i), "name")));
	} else if (json_array_size(list) == 0) {
		printf("no targets: none of your roles grants %s a target this relay serves; ask your admin\n", c.user);
	} else {
		printf("%-*s  %-*s  %-*s  %-*s  %s\n", (int)wname, "TARGET", (int)wproto, "PROTOCOL", (int)wlogin, "LOGIN",
		    (int)wrole, "ROLE", "ADDRESS");
		for (size_t i = 0; i < json_array_size(list); i++) {
			json_t *e = json_array_get(list, i);
			const char *login = json_string_value(json_object_get(e, "login"));
			const char *role = json_string_value(json_object_get(e, "role"));
			const char *host = json_string_value(json_object_get(e, "host"));
			const char *port = json_string_value(json_object_get(e, "port"));
			bool v6 = strchr(host, ':') != NULL;

			printf("%-*s  %-*s  %-*s  %-*s  ", (int)wname, json_string_value(json_object_get(e, "name")),
			    (int)wproto, json_string_value(json_object_get(e, "protocol")), (int)wlogin, login ? login : "-",
			    (int)wrole, role ? role : "-");
			if (port != NULL)
				printf("%s%s%s:%s\n", v6 ? "[" : "", host, v6 ? "]" : "", port);
			else
				printf("-\n");
		}
	}
	r = POSTERN_EXIT_OK;
out:
	json_decref(list);
	json_decref(doc);
	creds_free(&c);
	return r;
}

/* ---- postern psql ---- */

static void
launch_psql_usage(FILE *out)
{
	fprintf(out,
	    "usage: postern psql TARGET[/DATABASE] [--] [PSQL-ARGS...]\n"
	    "\n"
	    "Run psql on a PostgreSQL target through the relay, with this session's certificate,\n"
	    "verify-full against the relay's CA. TARGET connects to the target's own database;\n"
	    "TARGET/DATABASE to another one on the same server. Everything after TARGET goes to psql:\n"
	    "  postern psql orders -- -c 'select count(*) from orders'\n"
	    "\n"
	    "  -h, --help  this text (postern psql TARGET --help is psql's)\n"
	    "\n"
	    "Exit status: psql's once it runs; before that 1 error, 2 usage, 3 relay unreachable,\n"
	    "4 not logged in or expired, 5 not a target you may reach.\n");
}

int
launch_psql(int argc, char **argv)
{
	char conninfo[LAUNCH_CONNINFO_MAX];
	const char *spec;
	struct creds c;
	struct target t;
	char **args = NULL;
	int r, first, nargs = 0;

	if (argc < 2 || launch_is_help(argv[1])) {
		launch_psql_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? POSTERN_EXIT_USAGE : POSTERN_EXIT_OK;
	}
	first = strcmp(argv[1], "--") == 0 ? 2 : 1;
	if (first >= argc || argv[first][0] == '-') {
		home_say(first >= argc ? "psql needs a TARGET; see postern psql --help" :
		    "postern psql takes the TARGET first, then psql's own options; see postern psql --help");
		return POSTERN_EXIT_USAGE;
	}
	spec = argv[first];
	if ((r = launch_target(spec, &c, &t)) != 0)
		goto out;
	if (strcmp(t.protocol, LAUNCH_PROTO_PG) != 0) {
		home_say("%s is a %s target, not PostgreSQL; %s", t.name, t.protocol, strcmp(t.protocol,
		    LAUNCH_PROTO_TCP) == 0 ? "use postern connect to reach it" : "postern psql is for postgres targets");
		r = POSTERN_EXIT_USAGE;
		goto out;
	}
	if (launch_conninfo(&c, &t, spec, conninfo, sizeof(conninfo)) != 0) {
		home_say("the paths under %s are too long for a connection string; set POSTERN_HOME to a shorter one",
		    c.home.dir);
		r = POSTERN_EXIT_ERROR;
		goto out;
	}
	first++;
	if (first < argc && strcmp(argv[first], "--") == 0)
		first++;
	if ((args = calloc((size_t)(argc - first) + 3, sizeof(*args))) == NULL) {
		home_say("out of memory");
		r = POSTERN_EXIT_ERROR;
		goto out;
	}
	args[nargs++] = LAUNCH_PSQL;
	args[nargs++] = conninfo;
	for (int i = first; i < argc; i++)
		args[nargs++] = argv[i];
	args[nargs] = NULL;
	creds_free(&c);		/* wipe the key before handing over */
	fflush(stdout);
	fflush(stderr);
	execvp(LAUNCH_PSQL, args);
	if (errno == ENOENT)
		home_say("psql is not installed or not on your PATH; install the PostgreSQL client (e.g. apt install "
		    "postgresql-client), or use postern env %s with another client", spec);
	else
		home_say("cannot run psql: %s", strerror(errno));
	r = POSTERN_EXIT_ERROR;
out:
	free(args);
	creds_free(&c);
	return r;
}

/* ---- postern env ---- */

static void
launch_env_usage(FILE *out)
{
	fprintf(out,
	    "usage: postern env TARGET[/DATABASE]\n"
	    "\n"
	    "Print the libpq variables (PGHOST, PGPORT, PGDATABASE, PGUSER, PGSSLMODE, PGSSLROOTCERT,\n"
	    "PGSSLCERT, PGSSLKEY) that reach a PostgreSQL target through the relay, as shell exports:\n"
	    "  eval \"$(postern env orders)\" && psql -c 'select 1' && pg_dump -s > schema.sql\n"
	    "\n"
	    "  -h, --help  this text\n"
	    "\n"
	    "The certificate they name expires with your session; run postern login to renew it.\n"
	    "Exit status: 0 printed, 1 error, 2 usage, 3 relay unreachable, 4 not logged in, 5 not yours.\n");
}

int
launch_env(int argc, char **argv)
{
	char q[PATH_MAX + 64], when[64];
	struct creds c;
	struct target t;
	int r;

	if (argc < 2 || launch_is_help(argv[1])) {
		launch_env_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? POSTERN_EXIT_USAGE : POSTERN_EXIT_OK;
	}
	if (argc > 2 || argv[1][0] == '-') {
		home_say("env takes one TARGET and no options; see postern env --help");
		return POSTERN_EXIT_USAGE;
	}
	if ((r = launch_target(argv[1], &c, &t)) != 0)
		goto out;
	if (strcmp(t.protocol, LAUNCH_PROTO_PG) != 0) {
		home_say("%s is a %s target; postern env prints PostgreSQL variables%s", t.name, t.protocol,
		    strcmp(t.protocol, LAUNCH_PROTO_TCP) == 0 ? " (use postern connect for it)" : "");
		r = POSTERN_EXIT_USAGE;
		goto out;
	}
	{
		const char *names[] = { "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGSSLMODE", "PGSSLROOTCERT",
		    "PGSSLCERT", "PGSSLKEY" };
		const char *values[] = { t.host, t.port, argv[1], c.user, "verify-full", c.ca_path, c.cert_path,
		    c.key_path };

		printf("# postern env %s: %s through %s; the certificate is valid until %s\n", argv[1], t.name,
		    c.url.text, creds_local_time(c.expires, when, sizeof(when)));
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			if (launch_sh_quote(values[i], q, sizeof(q)) != 0) {
				home_say("the value of %s is too long to print", names[i]);
				r = POSTERN_EXIT_ERROR;
				goto out;
			}
			printf("export %s=%s\n", names[i], q);
		}
	}
	r = POSTERN_EXIT_OK;
out:
	creds_free(&c);
	return r;
}
