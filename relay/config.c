/*
 * Evaluation of posternd.lua. The file runs in the policy sandbox (policy/sandbox.h) with
 * os.getenv as its only extra, a memory cap and an instruction budget, so a broken or hostile
 * file cannot hang or exhaust the daemon. Top-level assignments are recorded with their line,
 * and `target "name" { … }` records its line, so every validation error can point at the line
 * that caused it.
 */
#include "relay/config.h"

#include "audit/format.h"
#include "policy/sandbox.h"

#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MEM_MAX		(64u << 20)
#define CONFIG_STEPS_MAX	(50L * 1000 * 1000)
#define CONFIG_WORKERS_MAX	256
#define CONFIG_BUSY_POLL_MAX	10000	/* µs */
#define CONFIG_BUSY_POLL_DEFAULT 100
#define CONFIG_WORKER_SLICE_MIN	100	/* µs: the kernel's bounds for a custom slice */
#define CONFIG_WORKER_SLICE_MAX	100000
#define CONFIG_WORKER_SLICE_DEFAULT 100
#define CONFIG_BUFFER_MIN	(16u << 10)
#define CONFIG_BUFFER_MAX	(1u << 30)
#define CONFIG_AUDITORS_MAX	64
#define CONFIG_AUDIT_CHUNK_MIN	(4u << 10)
#define CONFIG_AUDIT_CHUNK_MAX	(16u << 20)

struct config_eval {
	const char *path;
	char *dir;			/* directory relative paths are resolved against */
	FILE *errs;			/* error lines accumulate here */
	int nerrs;
};

__attribute__((format(printf, 3, 4)))
static void
config_error(struct config_eval *ev, int line, const char *fmt, ...)
{
	va_list ap;

	if (line > 0)
		fprintf(ev->errs, "%s:%d: ", ev->path, line);
	else
		fprintf(ev->errs, "%s: ", ev->path);
	va_start(ap, fmt);
	vfprintf(ev->errs, fmt, ap);
	va_end(ap);
	fputc('\n', ev->errs);
	ev->nerrs++;
}

static char *
config_path(struct config_eval *ev, const char *p)
{
	char *out;

	if (p[0] == '/' || ev->dir == NULL)
		return strdup(p);
	if (asprintf(&out, "%s/%s", ev->dir, p) < 0)
		return NULL;
	return out;
}

/* Read the string field KEY of the table at IDX into *OUT (resolved as a path if PATH). */
static void
config_get_string(struct config_eval *ev, lua_State *L, int idx, const char *what, int line,
    const char *key, bool path, char **out)
{
	int t = lua_getfield(L, idx, key);

	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	if (t != LUA_TSTRING || lua_rawlen(L, -1) == 0 || strlen(lua_tostring(L, -1)) != lua_rawlen(L, -1)) {
		config_error(ev, line, "%s%s must be a non-empty string", what, key);
	} else {
		free(*out);
		*out = path ? config_path(ev, lua_tostring(L, -1)) : strdup(lua_tostring(L, -1));
	}
	lua_pop(L, 1);
}

static void
config_check_readable(struct config_eval *ev, int line, const char *what, const char *key, const char *file)
{
	if (file != NULL && access(file, R_OK) != 0)
		config_error(ev, line, "%s%s: cannot read \"%s\": %s", what, key, file, strerror(errno));
}

static const char *const config_protocol_names[] = { "tcp", "postgres", "mysql", "ssh" };

const char *
config_protocol_name(enum config_protocol protocol)
{
	if ((unsigned)protocol >= sizeof(config_protocol_names) / sizeof(config_protocol_names[0]))
		return "unknown";
	return config_protocol_names[protocol];
}

/* Fields each protocol accepts, besides protocol, address and description. */
static const char *const config_fields_tcp[] = { "listen", "benchmark_plaintext", NULL };
static const char *const config_fields_postgres[] = {
	"database", "user", "password_file", "ca_file", "sslmode", "target_session_attrs", "connect", NULL };
static const char *const config_fields_mysql[] = {
	"database", "user", "password_file", "ca_file", NULL };
static const char *const config_fields_ssh[] = { "login", "key_file", "known_hosts_file", NULL };
static const char *const *const config_fields[] = {
	config_fields_tcp, config_fields_postgres, config_fields_mysql, config_fields_ssh };

static bool
config_field_known(enum config_protocol p, const char *key)
{
	if (strcmp(key, "protocol") == 0 || strcmp(key, "address") == 0 || strcmp(key, "description") == 0)
		return true;
	for (const char *const *f = config_fields[p]; *f != NULL; f++)
		if (strcmp(*f, key) == 0)
			return true;
	return false;
}

static void
config_fields_list(enum config_protocol p, char *buf, size_t size)
{
	size_t o = (size_t)snprintf(buf, size, "protocol, address, description");

	for (const char *const *f = config_fields[p]; *f != NULL && o < size; f++)
		o += (size_t)snprintf(buf + o, size - o, ", %s", *f);
}

/* Resolve the target's address, or for postgres its comma-separated list (failover). */
static void
config_addresses(struct config_eval *ev, struct config_target *t, const char *what)
{
	char err[256], *list = strdup(t->address), *save = NULL;
	size_t n = 1;

	for (const char *p = t->address; *p; p++)
		n += *p == ',';
	if (n > 1 && t->protocol != CONFIG_PROTOCOL_POSTGRES) {
		config_error(ev, t->line, "%saddress: only postgres targets take a list of addresses", what);
		n = 1;
	}
	t->addrs = calloc(n, sizeof(*t->addrs));
	if (list == NULL || t->addrs == NULL) {
		free(list);
		return;
	}
	for (char *a = strtok_r(list, ",", &save); a != NULL && t->naddrs < n; a = strtok_r(NULL, ",", &save)) {
		while (*a == ' ')
			a++;
		if (util_addr_parse(a, false, &t->addrs[t->naddrs], err, sizeof(err)) != 0)
			config_error(ev, t->line, "%saddress: %s", what, err);
		else
			t->naddrs++;
	}
	if (t->naddrs > 0)
		t->addr = t->addrs[0];
	free(list);
}

/* Read the target's password file now, so sessions never touch the disk for it. */
static void
config_read_secret(struct config_eval *ev, struct config_target *t, const char *what)
{
	char buf[1024];
	struct stat st;
	size_t n;
	FILE *f;

	if (stat(t->password_file, &st) == 0 && (st.st_mode & 077) != 0) {
		config_error(ev, t->line, "%spassword_file \"%s\" is readable by others (mode %o); chmod 600 it",
		    what, t->password_file, st.st_mode & 0777);
		return;
	}
	if ((f = fopen(t->password_file, "r")) == NULL)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	if (n == 0 || n == sizeof(buf) - 1 || strlen(buf) != n)
		config_error(ev, t->line, "%spassword_file \"%s\" must hold one password (1 to 1022 bytes, no NUL)",
		    what, t->password_file);
	else
		t->password = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
}

static void
config_target_parse(struct config_eval *ev, lua_State *L, struct config_target *t)
{
	char what[160], err[256], list[256], proto_buf[64];
	char *got = NULL;
	const char *proto = NULL;
	int def;

	snprintf(what, sizeof(what), "target \"%s\": ", t->name);
	if (lua_getfield(L, -1, "def") != LUA_TTABLE) {
		config_error(ev, t->line, "target \"%s\" has no definition; expected target \"%s\" { protocol = …, address = … }",
		    t->name, t->name);
		lua_pop(L, 1);
		return;
	}
	def = lua_gettop(L);
	config_get_string(ev, L, def, what, t->line, "protocol", false, &got);
	/* Kept on the stack, not the heap: reading the rest of the table may raise an error (a
	 * metatable's code) that unwinds past this function. */
	if (got != NULL) {
		snprintf(proto_buf, sizeof(proto_buf), "%s", got);
		free(got);
		proto = proto_buf;
	}
	if (proto == NULL) {
		config_error(ev, t->line, "%sprotocol is missing; expected one of tcp, postgres, mysql, ssh", what);
		goto out;
	}
	for (size_t i = 0; i < sizeof(config_protocol_names) / sizeof(config_protocol_names[0]); i++)
		if (strcmp(proto, config_protocol_names[i]) == 0)
			t->protocol = (enum config_protocol)i;
	if (strcmp(proto, config_protocol_name(t->protocol)) != 0) {
		config_error(ev, t->line, "%sunknown protocol \"%s\"; expected one of tcp, postgres, mysql, ssh", what, proto);
		goto out;
	}
	lua_pushnil(L);
	while (lua_next(L, def) != 0) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING) {
			config_error(ev, t->line, "%sfields must be named (key = value)", what);
		} else if (!config_field_known(t->protocol, lua_tostring(L, -1))) {
			config_fields_list(t->protocol, list, sizeof(list));
			config_error(ev, t->line, "%sunknown field \"%s\" for protocol %s; expected one of: %s",
			    what, lua_tostring(L, -1), proto, list);
		}
	}
	if (lua_getfield(L, def, "benchmark_plaintext") != LUA_TNIL && !lua_isboolean(L, -1))
		config_error(ev, t->line, "%sbenchmark_plaintext must be true or false", what);
	t->benchmark_plaintext = lua_toboolean(L, -1);
	lua_pop(L, 1);
	config_get_string(ev, L, def, what, t->line, "address", false, &t->address);
	config_get_string(ev, L, def, what, t->line, "listen", false, &t->listen);
	config_get_string(ev, L, def, what, t->line, "database", false, &t->database);
	config_get_string(ev, L, def, what, t->line, "user", false, &t->user);
	config_get_string(ev, L, def, what, t->line, "password_file", true, &t->password_file);
	config_get_string(ev, L, def, what, t->line, "ca_file", true, &t->ca_file);
	config_get_string(ev, L, def, what, t->line, "sslmode", false, &t->sslmode);
	config_get_string(ev, L, def, what, t->line, "target_session_attrs", false, &t->target_session_attrs);
	config_get_string(ev, L, def, what, t->line, "login", false, &t->login);
	{
		char *connect = NULL;

		config_get_string(ev, L, def, what, t->line, "connect", false, &connect);
		if (connect != NULL && strcmp(connect, "lazy") != 0 && strcmp(connect, "eager") != 0)
			config_error(ev, t->line, "%sconnect must be \"eager\" (the target at login, the default) or "
			    "\"lazy\" (the target at the first query, once its parameters are known)", what);
		t->lazy_connect = connect != NULL && strcmp(connect, "lazy") == 0;
		free(connect);
	}
	config_get_string(ev, L, def, what, t->line, "key_file", true, &t->key_file);
	config_get_string(ev, L, def, what, t->line, "known_hosts_file", true, &t->known_hosts_file);
	if (t->address == NULL)
		config_error(ev, t->line, "%saddress is missing; expected \"host:port\" of the real server", what);
	else
		config_addresses(ev, t, what);
	if (t->protocol == CONFIG_PROTOCOL_TCP) {
		if (t->listen == NULL)
			config_error(ev, t->line, "%slisten is missing; a tcp target needs its own \"host:port\" to listen on", what);
		else if (util_addr_parse(t->listen, true, &t->listen_addr, err, sizeof(err)) != 0)
			config_error(ev, t->line, "%slisten: %s", what, err);
	}
	if (t->protocol == CONFIG_PROTOCOL_POSTGRES || t->protocol == CONFIG_PROTOCOL_MYSQL) {
		if (t->user == NULL)
			config_error(ev, t->line, "%suser is missing; expected the login posternd uses on the target", what);
		/* An unauthenticated target could ask for the injected password in clear: fail closed. */
		if (t->protocol == CONFIG_PROTOCOL_POSTGRES && t->ca_file == NULL && t->sslmode == NULL)
			config_error(ev, t->line, "%sca_file is missing; set the CA that signs the target's certificate "
			    "(or sslmode = \"require\" to accept any certificate, which exposes the password to a man in the middle)", what);
		if (t->sslmode != NULL && strcmp(t->sslmode, "disable") != 0 && strcmp(t->sslmode, "require") != 0 &&
		    strcmp(t->sslmode, "verify-ca") != 0 && strcmp(t->sslmode, "verify-full") != 0)
			config_error(ev, t->line, "%ssslmode \"%s\" is not one of disable, require, verify-ca, verify-full",
			    what, t->sslmode);
	}
	if (t->protocol == CONFIG_PROTOCOL_SSH && t->login == NULL)
		config_error(ev, t->line, "%slogin is missing; expected the account posternd logs in as on the target", what);
	config_check_readable(ev, t->line, what, "password_file", t->password_file);
	if (t->password_file != NULL && access(t->password_file, R_OK) == 0)
		config_read_secret(ev, t, what);
	config_check_readable(ev, t->line, what, "ca_file", t->ca_file);
	config_check_readable(ev, t->line, what, "key_file", t->key_file);
	config_check_readable(ev, t->line, what, "known_hosts_file", t->known_hosts_file);
out:
	lua_pop(L, 1);
}

static void
config_targets_parse(struct config_eval *ev, lua_State *L, int list, struct config *cfg)
{
	size_t n = lua_rawlen(L, list);

	cfg->targets = calloc(n ? n : 1, sizeof(*cfg->targets));
	if (cfg->targets == NULL) {
		config_error(ev, 0, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct config_target *t = &cfg->targets[i];

		lua_rawgeti(L, list, (lua_Integer)i + 1);
		lua_getfield(L, -1, "name");
		t->name = strdup(lua_tostring(L, -1));
		lua_pop(L, 1);
		lua_getfield(L, -1, "line");
		t->line = (int)lua_tointeger(L, -1);
		lua_pop(L, 1);
		cfg->ntargets = i + 1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->targets[j].name, t->name) == 0)
				config_error(ev, t->line, "target \"%s\" is declared twice (first on line %d); names must be unique",
				    t->name, cfg->targets[j].line);
		config_target_parse(ev, L, t);
		for (size_t j = 0; j < i && t->listen != NULL; j++)
			if (cfg->targets[j].listen != NULL && strcmp(cfg->targets[j].listen, t->listen) == 0)
				config_error(ev, t->line, "target \"%s\" listens on %s like target \"%s\"; each tcp target needs its own address",
				    t->name, t->listen, cfg->targets[j].name);
		lua_pop(L, 1);
	}
}

static const char *const config_settings[] = {
	"node", "workers", "busy_poll", "worker_slice", "state_dir", "admin_socket", "log_file", "log_level", "shutdown_grace",
	"connect_timeout", "handshake_timeout", "buffer_limit", "roles_dir", "max_ttl", "clock_skew",
	"invite_ttl", "api_listen", "api_url", "api_max_connections", "api_connection_lifetime", "tls_names", "tls_cert_file", "tls_key_file", "listen",
	"max_message", "max_statement", "idle_in_transaction_timeout", "policy_instructions", "policy_memory", "allow_truncated_statements",
	"audit_dir", "auditor_keys", "audit_flush_interval", "audit_chunk_size", "audit_retention_days",
	"audit_retention_bytes", "audit_min_free", "audit_queue_limit", "audit_on_failure", NULL };

static bool
config_number(struct config_eval *ev, lua_State *L, int line, const char *key, double min, double max, double *out)
{
	if (lua_type(L, -1) != LUA_TNUMBER || lua_tonumber(L, -1) < min || lua_tonumber(L, -1) > max) {
		config_error(ev, line, "%s must be a number from %g to %g", key, min, max);
		return false;
	}
	*out = lua_tonumber(L, -1);
	return true;
}

static bool
config_integer(struct config_eval *ev, lua_State *L, int line, const char *key, long min, long max, long *out)
{
	if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < min || lua_tointeger(L, -1) > max) {
		config_error(ev, line, "%s must be a whole number from %ld to %ld", key, min, max);
		return false;
	}
	*out = (long)lua_tointeger(L, -1);
	return true;
}

/* A size in bytes: a whole number, or a string with a unit like "64K", "512M", "10G", "1T". */
static bool
config_size(struct config_eval *ev, lua_State *L, int line, const char *key, unsigned long long min,
    unsigned long long max, unsigned long long *out)
{
	unsigned long long n = 0, unit = 1;
	char *end = NULL;

	if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0) {
		n = (unsigned long long)lua_tointeger(L, -1);
	} else if (lua_type(L, -1) == LUA_TSTRING) {
		const char *t = lua_tostring(L, -1);

		errno = 0;
		n = strtoull(t, &end, 10);
		if (end == t || errno != 0)
			goto bad;
		switch (*end) {
		case 'k': case 'K': unit = 1ull << 10; end++; break;
		case 'm': case 'M': unit = 1ull << 20; end++; break;
		case 'g': case 'G': unit = 1ull << 30; end++; break;
		case 't': case 'T': unit = 1ull << 40; end++; break;
		default: break;
		}
		if (unit > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
			end += strlen(end);
		if (*end != '\0' || n > ULLONG_MAX / unit)
			goto bad;
		n *= unit;
	} else {
		goto bad;
	}
	if (n < min || n > max)
		goto bad;
	*out = n;
	return true;
bad:
	config_error(ev, line, "%s must be a size from %llu to %llu bytes: a number, or a string like \"64K\", "
	    "\"512M\", \"10G\"", key, min, max);
	return false;
}

/* auditor_keys = { "alice.pub", … }: the public keys recordings are sealed to, read now. */
static void
config_auditor_keys(struct config_eval *ev, lua_State *L, int line, struct config *cfg)
{
	size_t n = lua_type(L, -1) == LUA_TTABLE ? lua_rawlen(L, -1) : 0, nfiles = 0;
	char err[512];

	if (lua_type(L, -1) != LUA_TTABLE || n > CONFIG_AUDITORS_MAX) {
		config_error(ev, line, "auditor_keys must be a list of at most %d public key files like "
		    "{ \"/etc/postern/auditors/alice.pub\" } (posternctl audit keygen makes them)", CONFIG_AUDITORS_MAX);
		return;
	}
	cfg->auditor_keys = calloc(n ? n : 1, sizeof(*cfg->auditor_keys));
	cfg->auditor_key_files = calloc(n + 1, sizeof(char *));
	if (cfg->auditor_keys == NULL || cfg->auditor_key_files == NULL) {
		config_error(ev, line, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct audit_auditor_key *k = &cfg->auditor_keys[cfg->nauditor_keys];
		char *path;

		if (lua_rawgeti(L, -1, (lua_Integer)i + 1) != LUA_TSTRING || (path = config_path(ev, lua_tostring(L, -1))) == NULL) {
			config_error(ev, line, "auditor_keys[%zu] must be a file name", i + 1);
			lua_pop(L, 1);
			continue;
		}
		lua_pop(L, 1);
		cfg->auditor_key_files[nfiles++] = path;
		if (audit_key_read(path, k, err, sizeof(err)) != 0) {
			config_error(ev, line, "auditor_keys[%zu]: %s", i + 1, err);
		} else if (k->has_secret) {
			sodium_memzero(k, sizeof(*k));
			config_error(ev, line, "auditor_keys[%zu]: %s is an auditor's secret key; posternd must only have "
			    "the public one (%s.pub), and the secret one belongs with the auditor", i + 1, path, path);
		} else {
			for (size_t j = 0; j < cfg->nauditor_keys; j++)
				if (strcmp(cfg->auditor_keys[j].id, k->id) == 0)
					config_error(ev, line, "auditor_keys[%zu]: %s is the same key as auditor_keys[%zu]", i + 1,
					    path, j + 1);
			cfg->nauditor_keys++;
		}
	}
}

/* listen = { postgres = "host:port", … }: where each protocol front listens. */
static void
config_listen(struct config_eval *ev, lua_State *L, int line, struct config *cfg)
{
	char err[256];

	if (lua_type(L, -1) != LUA_TTABLE) {
		config_error(ev, line, "listen must be a table like { postgres = \"0.0.0.0:5432\" }");
		return;
	}
	lua_pushnil(L);
	while (lua_next(L, -2) != 0) {
		const char *proto = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
		int p = -1;

		if (strcmp(proto, "postgres") == 0)
			p = CONFIG_PROTOCOL_POSTGRES;
		if (p < 0) {
			config_error(ev, line, "listen: no front for protocol \"%s\" in this version; expected postgres", proto);
		} else if (lua_type(L, -1) != LUA_TSTRING) {
			config_error(ev, line, "listen.%s must be \"host:port\"", proto);
		} else {
			cfg->listen[p] = strdup(lua_tostring(L, -1));
			if (util_addr_parse(cfg->listen[p], true, &cfg->listen_addr[p], err, sizeof(err)) != 0)
				config_error(ev, line, "listen.%s: %s", proto, err);
		}
		lua_pop(L, 1);
	}
}

static void
config_setting(struct config_eval *ev, lua_State *L, const char *key, int line, struct config *cfg)
{
	long n;
	const char *s;

	if (strcmp(key, "workers") == 0) {
		if (config_integer(ev, L, line, key, 0, CONFIG_WORKERS_MAX, &n))
			cfg->workers = (int)n;
		return;
	}
	if (strcmp(key, "busy_poll") == 0) {
		if (config_integer(ev, L, line, key, 0, CONFIG_BUSY_POLL_MAX, &n))
			cfg->busy_poll = (int)n;
		return;
	}
	if (strcmp(key, "worker_slice") == 0) {
		if (config_integer(ev, L, line, key, 0, CONFIG_WORKER_SLICE_MAX, &n)) {
			if (n != 0 && n < CONFIG_WORKER_SLICE_MIN)
				config_error(ev, line, "worker_slice must be 0 (the kernel's default) or %d to %d µs",
				    CONFIG_WORKER_SLICE_MIN, CONFIG_WORKER_SLICE_MAX);
			else
				cfg->worker_slice = (int)n;
		}
		return;
	}
	if (strcmp(key, "buffer_limit") == 0) {
		if (config_integer(ev, L, line, key, CONFIG_BUFFER_MIN, CONFIG_BUFFER_MAX, &n))
			cfg->buffer_limit = (size_t)n;
		return;
	}
	if (strcmp(key, "max_ttl") == 0 || strcmp(key, "clock_skew") == 0 || strcmp(key, "invite_ttl") == 0) {
		long *dst = key[0] == 'm' ? &cfg->max_ttl : key[0] == 'c' ? &cfg->clock_skew : &cfg->invite_ttl;

		if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0)
			*dst = (long)lua_tointeger(L, -1);
		else if (lua_type(L, -1) != LUA_TSTRING || util_duration_parse(lua_tostring(L, -1), dst) != 0)
			config_error(ev, line, "%s must be seconds or a duration like \"8h\", \"5m\"", key);
		return;
	}
	if (strcmp(key, "listen") == 0) {
		config_listen(ev, L, line, cfg);
		return;
	}
	if (strcmp(key, "max_message") == 0) {
		if (config_integer(ev, L, line, key, 64 << 10, 1L << 30, &n))
			cfg->max_message = (size_t)n;
		return;
	}
	if (strcmp(key, "max_statement") == 0) {
		if (config_integer(ev, L, line, key, 1 << 10, 64L << 20, &n))
			cfg->max_statement = (size_t)n;
		return;
	}
	if (strcmp(key, "allow_truncated_statements") == 0) {
		if (!lua_isboolean(L, -1))
			config_error(ev, line, "allow_truncated_statements must be true or false");
		cfg->allow_truncated_statements = lua_toboolean(L, -1);
		return;
	}
	if (strcmp(key, "policy_instructions") == 0) {
		if (config_integer(ev, L, line, key, 10000, 1000L * 1000 * 1000, &n))
			cfg->policy_instructions = n;
		return;
	}
	if (strcmp(key, "policy_memory") == 0) {
		if (config_integer(ev, L, line, key, 1L << 20, 1L << 30, &n))
			cfg->policy_memory = (size_t)n;
		return;
	}
	if (strcmp(key, "auditor_keys") == 0) {
		config_auditor_keys(ev, L, line, cfg);
		return;
	}
	if (strcmp(key, "api_max_connections") == 0) {
		if (config_integer(ev, L, line, key, 1, 100000, &n))
			cfg->api_max_connections = n;
		return;
	}
	if (strcmp(key, "api_connection_lifetime") == 0) {
		(void)config_number(ev, L, line, key, 1, 3600, &cfg->api_connection_lifetime);
		return;
	}
	if (strcmp(key, "audit_flush_interval") == 0) {
		(void)config_number(ev, L, line, key, 0.01, 60, &cfg->audit_flush_interval);
		return;
	}
	if (strcmp(key, "audit_retention_days") == 0) {
		if (config_integer(ev, L, line, key, 0, 36500, &n))
			cfg->audit_retention_days = n;
		return;
	}
	if (strcmp(key, "audit_chunk_size") == 0 || strcmp(key, "audit_queue_limit") == 0) {
		bool chunk = key[6] == 'c';
		unsigned long long v;

		if (config_size(ev, L, line, key, chunk ? CONFIG_AUDIT_CHUNK_MIN : 1u << 20,
		    chunk ? CONFIG_AUDIT_CHUNK_MAX : 1ull << 40, &v))
			*(chunk ? &cfg->audit_chunk_size : &cfg->audit_queue_limit) = (size_t)v;
		return;
	}
	if (strcmp(key, "audit_retention_bytes") == 0) {
		(void)config_size(ev, L, line, key, 0, ULLONG_MAX, &cfg->audit_retention_bytes);
		return;
	}
	if (strcmp(key, "audit_min_free") == 0) {
		(void)config_size(ev, L, line, key, 0, ULLONG_MAX, &cfg->audit_min_free);
		return;
	}
	if (strcmp(key, "idle_in_transaction_timeout") == 0) {
		(void)config_number(ev, L, line, key, 0, 86400 * 7, &cfg->idle_in_transaction_timeout);
		return;
	}
	if (strcmp(key, "tls_names") == 0) {
		size_t nn = lua_type(L, -1) == LUA_TTABLE ? lua_rawlen(L, -1) : 0;

		if (lua_type(L, -1) != LUA_TTABLE) {
			config_error(ev, line, "tls_names must be a list like { \"relay.example.com\", \"10.0.0.2\" }");
			return;
		}
		cfg->tls_names = calloc(nn + 1, sizeof(char *));
		for (size_t i = 0; i < nn && cfg->tls_names != NULL; i++) {
			if (lua_rawgeti(L, -1, (lua_Integer)i + 1) == LUA_TSTRING)
				cfg->tls_names[cfg->ntls_names++] = strdup(lua_tostring(L, -1));
			else
				config_error(ev, line, "tls_names[%zu] must be a string", i + 1);
			lua_pop(L, 1);
		}
		return;
	}
	if (strcmp(key, "shutdown_grace") == 0) {
		(void)config_number(ev, L, line, key, 0, 86400, &cfg->shutdown_grace);
		return;
	}
	if (strcmp(key, "connect_timeout") == 0) {
		(void)config_number(ev, L, line, key, 0.1, 600, &cfg->connect_timeout);
		return;
	}
	if (strcmp(key, "handshake_timeout") == 0) {
		(void)config_number(ev, L, line, key, 0.1, 600, &cfg->handshake_timeout);
		return;
	}
	if (lua_type(L, -1) != LUA_TSTRING || (s = lua_tostring(L, -1))[0] == '\0') {
		config_error(ev, line, "%s must be a non-empty string", key);
		return;
	}
	if (strcmp(key, "log_level") == 0) {
		if (!log_level_parse(s, &cfg->log_level))
			config_error(ev, line, "log_level \"%s\" is not one of debug, info, warn, error", s);
	} else if (strcmp(key, "node") == 0) {
		free(cfg->node);
		cfg->node = strdup(s);
	} else if (strcmp(key, "state_dir") == 0) {
		cfg->state_dir = config_path(ev, s);
	} else if (strcmp(key, "admin_socket") == 0) {
		cfg->admin_socket = config_path(ev, s);
	} else if (strcmp(key, "log_file") == 0) {
		cfg->log_file = config_path(ev, s);
	} else if (strcmp(key, "roles_dir") == 0) {
		cfg->roles_dir = config_path(ev, s);
	} else if (strcmp(key, "audit_dir") == 0) {
		cfg->audit_dir = config_path(ev, s);
	} else if (strcmp(key, "audit_on_failure") == 0) {
		if (strcmp(s, "refuse") != 0 && strcmp(s, "allow") != 0)
			config_error(ev, line, "audit_on_failure \"%s\" is not one of refuse (no recording, no session) or "
			    "allow (sessions go on unrecorded)", s);
		cfg->audit_refuse = strcmp(s, "allow") != 0;
	} else if (strcmp(key, "tls_cert_file") == 0) {
		cfg->tls_cert_file = config_path(ev, s);
	} else if (strcmp(key, "tls_key_file") == 0) {
		cfg->tls_key_file = config_path(ev, s);
	} else if (strcmp(key, "api_url") == 0) {
		cfg->api_url = strdup(s);
	} else if (strcmp(key, "api_listen") == 0) {
		char err[256];

		cfg->api_listen = strdup(s);
		if (util_addr_parse(s, true, &cfg->api_addr, err, sizeof(err)) != 0)
			config_error(ev, line, "api_listen: %s", err);
	}
}

static void
config_settings_parse(struct config_eval *ev, lua_State *L, int settings, int lines, struct config *cfg)
{
	lua_pushnil(L);
	while (lua_next(L, settings) != 0) {
		const char *key = lua_tostring(L, -2);
		bool known = false;
		int line;

		lua_pushvalue(L, -2);
		lua_rawget(L, lines);
		line = (int)lua_tointeger(L, -1);
		lua_pop(L, 1);
		for (int i = 0; config_settings[i] != NULL; i++)
			if (strcmp(key, config_settings[i]) == 0)
				known = true;
		if (!known)
			config_error(ev, line, "unknown setting \"%s\"; expected one of node, workers, busy_poll, worker_slice, state_dir, admin_socket, "
			    "log_file, log_level, shutdown_grace, connect_timeout, handshake_timeout, buffer_limit, "
			    "roles_dir, max_ttl, clock_skew, invite_ttl, api_listen, api_url, api_max_connections, "
			    "api_connection_lifetime, tls_names, tls_cert_file, "
			    "tls_key_file, listen, max_message, max_statement, idle_in_transaction_timeout, "
			    "policy_instructions, policy_memory, audit_dir, auditor_keys, audit_flush_interval, "
			    "audit_chunk_size, audit_retention_days, audit_retention_bytes, audit_min_free, audit_queue_limit, "
			    "audit_on_failure, "
			    "or target \"name\" { … }", key);
		else
			config_setting(ev, L, key, line, cfg);
		lua_pop(L, 1);
	}
}

static atomic_long config_generations;

static bool
config_target_known(void *arg, const char *name)
{
	return config_target_find(arg, name) != NULL;
}

static void
config_defaults(struct config *cfg)
{
	char host[256];

	atomic_init(&cfg->refs, 1);
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->shutdown_grace = 30;
	cfg->busy_poll = CONFIG_BUSY_POLL_DEFAULT;
	cfg->worker_slice = CONFIG_WORKER_SLICE_DEFAULT;
	cfg->connect_timeout = 10;
	cfg->handshake_timeout = 15;
	cfg->buffer_limit = 256u << 10;
	cfg->max_ttl = 8 * 3600;
	cfg->clock_skew = 60;
	cfg->invite_ttl = 24 * 3600;
	cfg->api_max_connections = 256;
	cfg->api_connection_lifetime = 60;
	cfg->max_message = 64u << 20;
	cfg->max_statement = 64u << 10;
	cfg->audit_flush_interval = 1.0;
	cfg->audit_chunk_size = 64u << 10;
	cfg->audit_min_free = 64ull << 20;
	cfg->audit_queue_limit = 256u << 20;
	cfg->audit_refuse = true;
	cfg->policy_instructions = 1000L * 1000;
	cfg->allow_truncated_statements = true;
	cfg->policy_memory = 32u << 20;
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "posternd");
	host[sizeof(host) - 1] = '\0';
	cfg->node = strdup(host);
}

/* Run the file; leave settings, lines and the target list at stack slots 1, 2, 3. */
static int
config_run(struct config_eval *ev, struct sandbox *sb)
{
	lua_State *L = sb->L;

	lua_newtable(L);	/* 1: settings */
	lua_newtable(L);	/* 2: lines */
	lua_newtable(L);	/* 3: targets */
	lua_newtable(L);	/* 4: globals besides the libraries */
	sandbox_push_decl(L, 3, "target");
	lua_setfield(L, 4, "target");
	sandbox_push_env(L, 1, 2, 4, SANDBOX_OS_GETENV);
	if (sandbox_run_file(sb, ev->path, -1) != 0) {
		fprintf(ev->errs, "%s\n", lua_tostring(L, -1));
		ev->nerrs++;
		return -1;
	}
	return 0;
}

struct config_parse_args {
	struct config_eval *ev;
	struct config *cfg;
};

/* Settings at 1, lines at 2, targets at 3, the arguments at 4. Protected and budgeted: a table
 * the file built with a metatable may run code while it is read, and that code may fail, loop
 * or run out of memory like any other. */
static int
config_parse_protected(lua_State *L)
{
	struct config_parse_args *a = lua_touserdata(L, 4);

	config_settings_parse(a->ev, L, 1, 2, a->cfg);
	config_targets_parse(a->ev, L, 3, a->cfg);
	return 0;
}

int
config_load(const char *path, struct config **out, char **errors)
{
	struct config_eval ev = { .path = path };
	struct config *cfg = NULL;
	struct sandbox sb = { 0 };
	lua_State *L;
	char *errbuf = NULL, *real = NULL;
	size_t errlen = 0;
	int r = -1;

	*out = NULL;
	*errors = NULL;
	ev.errs = open_memstream(&errbuf, &errlen);
	if (ev.errs == NULL)
		return -1;
	if ((real = realpath(path, NULL)) != NULL) {
		char *slash = strrchr(real, '/');

		ev.dir = strndup(real, (size_t)(slash - real));
	}
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL || sandbox_open(&sb, CONFIG_MEM_MAX, CONFIG_STEPS_MAX) != 0) {
		config_error(&ev, 0, "out of memory");
		goto out;
	}
	L = sb.L;
	config_defaults(cfg);
	cfg->generation = atomic_fetch_add(&config_generations, 1) + 1;
	cfg->path = strdup(path);
	if (config_run(&ev, &sb) != 0)
		goto out;
	{
		struct config_parse_args args = { &ev, cfg };

		if (sandbox_read_decls(&sb, config_parse_protected, &args) != 0) {
			config_error(&ev, 0, "the configuration could not be read: %s",
			    lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "an error");
			goto out;
		}
	}
	if (cfg->state_dir == NULL)
		config_error(&ev, 0, "state_dir is missing; expected state_dir = \"/var/lib/postern\" (a directory posternd owns)");
	if (cfg->audit_dir == NULL && cfg->state_dir != NULL && asprintf(&cfg->audit_dir, "%s/audit", cfg->state_dir) < 0)
		cfg->audit_dir = NULL;
	if (cfg->admin_socket == NULL && cfg->state_dir != NULL &&
	    asprintf(&cfg->admin_socket, "%s/admin.sock", cfg->state_dir) < 0)
		cfg->admin_socket = NULL;
	if (cfg->admin_socket != NULL && strlen(cfg->admin_socket) >= 100)
		config_error(&ev, 0, "admin_socket path \"%s\" is too long for a unix socket (at most 99 bytes)", cfg->admin_socket);
	if ((cfg->tls_cert_file == NULL) != (cfg->tls_key_file == NULL))
		config_error(&ev, 0, "tls_cert_file and tls_key_file go together; set both or neither");
	config_check_readable(&ev, 0, "", "tls_cert_file", cfg->tls_cert_file);
	config_check_readable(&ev, 0, "", "tls_key_file", cfg->tls_key_file);
	if (cfg->api_listen != NULL && cfg->api_url == NULL &&
	    asprintf(&cfg->api_url, "https://%s", cfg->api_listen) < 0)
		cfg->api_url = NULL;
	if (cfg->roles_dir != NULL)
		ev.nerrs += roles_load(cfg->roles_dir, cfg->max_ttl, config_target_known, cfg, &cfg->roles, ev.errs);
	if (ev.nerrs == 0) {
		*out = cfg;
		cfg = NULL;	/* transferred */
		r = 0;
	}
out:
	sandbox_close(&sb);
	if (cfg != NULL)
		config_unref(cfg);
	fclose(ev.errs);
	if (r != 0)
		*errors = errbuf;
	else
		free(errbuf);
	free(ev.dir);
	free(real);
	return r;
}

struct config *
config_ref(struct config *cfg)
{
	atomic_fetch_add(&cfg->refs, 1);
	return cfg;
}

static void
config_target_free(struct config_target *t)
{
	free(t->name);
	free(t->address);
	free(t->listen);
	free(t->database);
	free(t->user);
	free(t->password_file);
	free(t->ca_file);
	free(t->sslmode);
	free(t->target_session_attrs);
	free(t->addrs);
	if (t->password != NULL) {
		explicit_bzero(t->password, strlen(t->password));
		free(t->password);
	}
	free(t->login);
	free(t->key_file);
	free(t->known_hosts_file);
}

void
config_unref(struct config *cfg)
{
	if (cfg == NULL || atomic_fetch_sub(&cfg->refs, 1) != 1)
		return;
	for (size_t i = 0; i < cfg->ntargets; i++)
		config_target_free(&cfg->targets[i]);
	free(cfg->targets);
	free(cfg->path);
	free(cfg->node);
	free(cfg->state_dir);
	free(cfg->admin_socket);
	free(cfg->log_file);
	free(cfg->roles_dir);
	roles_free(&cfg->roles);
	free(cfg->api_listen);
	free(cfg->api_url);
	for (size_t i = 0; i < cfg->ntls_names; i++)
		free(cfg->tls_names[i]);
	free(cfg->tls_names);
	free(cfg->tls_cert_file);
	free(cfg->tls_key_file);
	for (int p = 0; p <= CONFIG_PROTOCOL_SSH; p++)
		free(cfg->listen[p]);
	free(cfg->audit_dir);
	for (size_t i = 0; cfg->auditor_key_files != NULL && cfg->auditor_key_files[i] != NULL; i++)
		free(cfg->auditor_key_files[i]);
	free(cfg->auditor_key_files);
	free(cfg->auditor_keys);
	free(cfg);
}

const struct config_target *
config_target_find(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->ntargets; i++)
		if (strcmp(cfg->targets[i].name, name) == 0)
			return &cfg->targets[i];
	return NULL;
}
