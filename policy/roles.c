/*
 * Loading and querying role scripts. A role file looks like:
 *
 *   role "dba" {
 *     members = { "alice", "bob" },
 *     targets = { "pg", "orders-*" },
 *     logins  = { postgres = "app", ssh = "deploy" },
 *     ttl     = "8h",
 *     mfa     = true,
 *     policy  = "policies/dba.lua",
 *   }
 *
 * Lookups are linear: an organisation has tens of roles, and lookups happen once per
 * connection or login, never per message.
 */
#include "policy/roles.h"

#include <dirent.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "policy/sandbox.h"
#include "relay/util.h"

#define ROLES_MEM_MAX		(32u << 20)
#define ROLES_STEPS_MAX		(20L * 1000 * 1000)
#define ROLES_FILES_MAX		1024

static const char *const roles_protocols[ROLES_PROTOCOLS] = { "tcp", "postgres", "mysql", "ssh" };

struct roles_eval {
	const char *file;
	FILE *errs;
	int nerrs;
	long max_ttl;
	roles_target_known_fn known;
	void *arg;
};

__attribute__((format(printf, 3, 4)))
static void
roles_error(struct roles_eval *ev, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(ev->errs, "%s:%d: ", ev->file, line);
	va_start(ap, fmt);
	vfprintf(ev->errs, fmt, ap);
	va_end(ap);
	fputc('\n', ev->errs);
	ev->nerrs++;
}

static bool
roles_user_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < 64 && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@") == n;
}

/* Read the list of strings at field KEY of the table at DEF. */
static void
roles_strings(struct roles_eval *ev, lua_State *L, int def, struct role *r, const char *key,
    char ***out, size_t *n)
{
	size_t len;

	if (lua_getfield(L, def, key) != LUA_TTABLE) {
		roles_error(ev, r->line, "role \"%s\": %s must be a list of strings, e.g. %s = { \"…\" }", r->name, key, key);
		lua_pop(L, 1);
		return;
	}
	len = lua_rawlen(L, -1);
	*out = calloc(len ? len : 1, sizeof(char *));
	for (size_t i = 0; i < len && *out != NULL; i++) {
		if (lua_rawgeti(L, -1, (lua_Integer)i + 1) != LUA_TSTRING)
			roles_error(ev, r->line, "role \"%s\": %s[%zu] must be a string", r->name, key, i + 1);
		else
			(*out)[(*n)++] = strdup(lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

static void
roles_ttl_field(struct roles_eval *ev, lua_State *L, int def, struct role *r)
{
	int t = lua_getfield(L, def, "ttl");

	r->ttl = ev->max_ttl;
	if (t == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0) {
		r->ttl = (long)lua_tointeger(L, -1);
	} else if (t == LUA_TSTRING) {
		if (util_duration_parse(lua_tostring(L, -1), &r->ttl) != 0 || r->ttl <= 0)
			roles_error(ev, r->line, "role \"%s\": ttl \"%s\" is not a duration like \"8h\", \"30m\" or 3600",
			    r->name, lua_tostring(L, -1));
	} else if (t != LUA_TNIL) {
		roles_error(ev, r->line, "role \"%s\": ttl must be seconds or a duration like \"8h\"", r->name);
	}
	lua_pop(L, 1);
	if (r->ttl > ev->max_ttl)
		roles_error(ev, r->line, "role \"%s\": ttl %lds is over max_ttl (%lds); lower it or raise max_ttl",
		    r->name, r->ttl, ev->max_ttl);
}

static void
roles_logins_field(struct roles_eval *ev, lua_State *L, int def, struct role *r)
{
	int t = lua_getfield(L, def, "logins");

	if (t == LUA_TTABLE) {
		lua_pushnil(L);
		while (lua_next(L, -2) != 0) {
			int p = -1;

			for (int i = 0; i < ROLES_PROTOCOLS && lua_type(L, -2) == LUA_TSTRING; i++)
				if (strcmp(lua_tostring(L, -2), roles_protocols[i]) == 0)
					p = i;
			if (p < 0 || lua_type(L, -1) != LUA_TSTRING)
				roles_error(ev, r->line, "role \"%s\": logins maps a protocol (postgres, mysql, ssh) to a login name",
				    r->name);
			else
				r->logins[p] = strdup(lua_tostring(L, -1));
			lua_pop(L, 1);
		}
	} else if (t != LUA_TNIL) {
		roles_error(ev, r->line, "role \"%s\": logins must be a table like { ssh = \"deploy\" }", r->name);
	}
	lua_pop(L, 1);
}

static char *
roles_path(const char *file, const char *p)
{
	const char *slash = strrchr(file, '/');
	char *out;

	if (p[0] == '/' || slash == NULL)
		return strdup(p);
	if (asprintf(&out, "%.*s/%s", (int)(slash - file), file, p) < 0)
		return NULL;
	return out;
}

#define ROLES_POLICY_MAX	(1u << 20)

/*
 * Read the policy file and compile (not run) it, so a syntax error refuses the whole reload.
 * The text is kept: sessions run what was loaded, even if the file changes on disk before the
 * next reload.
 */
static void
roles_check_policy(struct roles_eval *ev, struct role *r)
{
	char chunk[4200];
	lua_State *T;
	FILE *f;
	size_t n;

	if ((f = fopen(r->policy, "r")) == NULL || (r->policy_source = malloc(ROLES_POLICY_MAX)) == NULL) {
		if (f != NULL)
			fclose(f);
		roles_error(ev, r->line, "role \"%s\": cannot read policy %s", r->name, r->policy);
		return;
	}
	n = fread(r->policy_source, 1, ROLES_POLICY_MAX, f);
	fclose(f);
	if (n == ROLES_POLICY_MAX) {
		roles_error(ev, r->line, "role \"%s\": policy %s is over 1 MiB", r->name, r->policy);
		return;
	}
	r->policy_len = n;
	snprintf(chunk, sizeof(chunk), "@%s", r->policy);
	if ((T = luaL_newstate()) == NULL)
		return;
	if (luaL_loadbufferx(T, r->policy_source, n, chunk, "t") != LUA_OK)
		roles_error(ev, r->line, "role \"%s\": policy %s", r->name, lua_tostring(T, -1));
	lua_close(T);
}

static void
roles_parse_one(struct roles_eval *ev, lua_State *L, struct role *r)
{
	static const char *const fields[] = { "members", "targets", "logins", "ttl", "mfa", "policy", "description", NULL };
	int def;

	if (lua_getfield(L, -1, "def") != LUA_TTABLE) {
		roles_error(ev, r->line, "role \"%s\" has no definition; expected role \"%s\" { members = …, targets = … }",
		    r->name, r->name);
		lua_pop(L, 1);
		return;
	}
	def = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, def) != 0) {
		bool ok = false;

		lua_pop(L, 1);
		for (int i = 0; fields[i] != NULL && lua_type(L, -1) == LUA_TSTRING; i++)
			ok = ok || strcmp(fields[i], lua_tostring(L, -1)) == 0;
		if (!ok)
			roles_error(ev, r->line, "role \"%s\": unknown field \"%s\"; expected members, targets, logins, ttl, mfa, policy, description",
			    r->name, lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
	}
	roles_strings(ev, L, def, r, "members", &r->members, &r->nmembers);
	roles_strings(ev, L, def, r, "targets", &r->targets, &r->ntargets);
	for (size_t i = 0; i < r->nmembers; i++)
		if (!roles_user_name_ok(r->members[i]))
			roles_error(ev, r->line, "role \"%s\": member \"%s\" is not a user name (letters, digits, . _ - @)",
			    r->name, r->members[i]);
	for (size_t i = 0; i < r->ntargets; i++)
		if (strpbrk(r->targets[i], "*?[") == NULL && !ev->known(ev->arg, r->targets[i]))
			roles_error(ev, r->line, "role \"%s\": target \"%s\" is not configured in posternd.lua", r->name, r->targets[i]);
	roles_logins_field(ev, L, def, r);
	roles_ttl_field(ev, L, def, r);
	lua_getfield(L, def, "mfa");
	if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
		roles_error(ev, r->line, "role \"%s\": mfa must be true or false", r->name);
	r->mfa = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (lua_getfield(L, def, "policy") == LUA_TSTRING) {
		r->policy = roles_path(ev->file, lua_tostring(L, -1));
		if (r->policy == NULL || access(r->policy, R_OK) != 0)
			roles_error(ev, r->line, "role \"%s\": policy file \"%s\" cannot be read", r->name, lua_tostring(L, -1));
		else
			roles_check_policy(ev, r);
	} else if (!lua_isnil(L, -1)) {
		roles_error(ev, r->line, "role \"%s\": policy must be a file name", r->name);
	}
	lua_pop(L, 2);
}

struct roles_parse_args {
	struct roles_eval *ev;
	const char *path;
	struct roles *out;
};

/* The roles a script declared (slot 3; the arguments at 4). Protected and budgeted: a table
 * the script built with a metatable may run code while it is read, and that code may fail,
 * loop or run out of memory like any other. */
static int
roles_parse_protected(lua_State *L)
{
	struct roles_parse_args *a = lua_touserdata(L, 4);
	struct roles_eval *ev = a->ev;
	struct roles *out = a->out;
	const char *path = a->path;
	size_t n = lua_rawlen(L, 3);
	struct role *grown;

	if ((grown = realloc(out->list, (out->n + n + 1) * sizeof(*grown))) == NULL)
		return luaL_error(L, "out of memory");
	out->list = grown;
	for (size_t i = 0; i < n; i++) {
		struct role *r = &out->list[out->n];

		memset(r, 0, sizeof(*r));
		lua_rawgeti(L, 3, (lua_Integer)i + 1);
		lua_getfield(L, -1, "name");
		r->name = strdup(lua_tostring(L, -1));
		lua_getfield(L, -2, "line");
		r->line = (int)lua_tointeger(L, -1);
		lua_pop(L, 2);
		r->file = strdup(path);
		out->n++;
		for (size_t j = 0; j + 1 < out->n; j++)
			if (strcmp(out->list[j].name, r->name) == 0)
				roles_error(ev, r->line, "role \"%s\" is declared twice (also %s:%d)", r->name,
				    out->list[j].file, out->list[j].line);
		roles_parse_one(ev, L, r);
		lua_pop(L, 1);
	}
	return 0;
}

static void
roles_load_file(struct roles_eval *ev, const char *path, struct roles *out)
{
	struct roles_parse_args args = { ev, path, out };
	struct sandbox sb;
	lua_State *L;

	if (sandbox_open(&sb, ROLES_MEM_MAX, ROLES_STEPS_MAX) != 0) {
		roles_error(ev, 0, "out of memory");
		return;
	}
	L = sb.L;
	lua_newtable(L);	/* 1: settings (locals and helpers a script may keep) */
	lua_newtable(L);	/* 2: lines */
	lua_newtable(L);	/* 3: roles */
	lua_newtable(L);	/* 4: globals */
	sandbox_push_decl(L, 3, "role");
	lua_setfield(L, 4, "role");
	sandbox_push_env(L, 1, 2, 4, SANDBOX_OS_NONE);
	if (sandbox_run_file(&sb, path, -1) != 0) {
		fprintf(ev->errs, "%s\n", lua_tostring(L, -1));
		ev->nerrs++;
		goto out;
	}
	if (sandbox_read_decls(&sb, roles_parse_protected, &args) != 0) {
		fprintf(ev->errs, "%s: the role script could not be read: %s\n", path,
		    lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "an error");
		ev->nerrs++;
	}
out:
	sandbox_close(&sb);
}

static int
roles_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
roles_load(const char *dir, long max_ttl, roles_target_known_fn known, void *arg,
    struct roles *out, FILE *errs)
{
	struct roles_eval ev = { .errs = errs, .max_ttl = max_ttl, .known = known, .arg = arg, .file = dir };
	char *names[ROLES_FILES_MAX];
	size_t nnames = 0;
	struct dirent *de;
	DIR *d;

	memset(out, 0, sizeof(*out));
	if ((d = opendir(dir)) == NULL) {
		fprintf(errs, "%s: cannot open the roles directory: %m\n", dir);
		return 1;
	}
	while ((de = readdir(d)) != NULL && nnames < ROLES_FILES_MAX) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] != '.' && len > 4 && strcmp(de->d_name + len - 4, ".lua") == 0)
			names[nnames++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, nnames, sizeof(names[0]), roles_name_cmp);
	for (size_t i = 0; i < nnames; i++) {
		char *path;

		if (asprintf(&path, "%s/%s", dir, names[i]) >= 0) {
			ev.file = path;
			roles_load_file(&ev, path, out);
			free(path);
		}
		free(names[i]);
	}
	return ev.nerrs;
}

static void
roles_free_strings(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
roles_free(struct roles *r)
{
	for (size_t i = 0; i < r->n; i++) {
		struct role *role = &r->list[i];

		free(role->name);
		roles_free_strings(role->members, role->nmembers);
		roles_free_strings(role->targets, role->ntargets);
		for (int p = 0; p < ROLES_PROTOCOLS; p++)
			free(role->logins[p]);
		free(role->policy);
		free(role->policy_source);
		free(role->file);
	}
	free(r->list);
	memset(r, 0, sizeof(*r));
}

bool
roles_is_member(const struct role *role, const char *user)
{
	for (size_t i = 0; i < role->nmembers; i++)
		if (strcmp(role->members[i], user) == 0)
			return true;
	return false;
}

bool
roles_user_known(const struct roles *r, const char *user)
{
	for (size_t i = 0; i < r->n; i++)
		if (roles_is_member(&r->list[i], user))
			return true;
	return false;
}

const struct role *
roles_grant(const struct roles *r, const char *user, const char *target)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct role *role = &r->list[i];

		if (!roles_is_member(role, user))
			continue;
		for (size_t j = 0; j < role->ntargets; j++)
			if (fnmatch(role->targets[j], target, 0) == 0)
				return role;
	}
	return NULL;
}

long
roles_ttl(const struct roles *r, const char *user, bool *mfa)
{
	long ttl = 0;

	*mfa = false;
	for (size_t i = 0; i < r->n; i++) {
		const struct role *role = &r->list[i];

		if (!roles_is_member(role, user))
			continue;
		if (ttl == 0 || role->ttl < ttl)
			ttl = role->ttl;
		*mfa = *mfa || role->mfa;
	}
	return ttl;
}
