/*
 * Lua sandbox: allocator with a cap, an instruction-count hook, an allow-listed environment,
 * and line-recording declarations. Kept small and shared so config, roles and policies are
 * held to exactly the same rules.
 */
#include "policy/sandbox.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#define SANDBOX_HOOK_EVERY	1000

static void *
sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct sandbox *sb = ud;

	if (ptr == NULL)
		osize = 0;
	if (nsize == 0) {
		free(ptr);
		sb->used -= osize;
		return NULL;
	}
	if (nsize > osize && sb->used + (nsize - osize) > sb->mem_limit)
		return NULL;
	ptr = realloc(ptr, nsize);
	if (ptr != NULL)
		sb->used = sb->used - osize + nsize;
	return ptr;
}

static void
sandbox_hook(lua_State *L, lua_Debug *ar)
{
	struct sandbox *sb;

	lua_getallocf(L, (void **)&sb);
	sb->steps += SANDBOX_HOOK_EVERY;
	if (sb->steps > sb->step_limit) {
		lua_Debug d;
		int line = lua_getstack(L, 0, &d) && lua_getinfo(L, "l", &d) ? d.currentline : 0;

		lua_pushfstring(L, "%s:%d: script takes too long (over %d instructions; an endless loop?)",
		    sb->chunk ? sb->chunk : "?", line, (int)sb->step_limit);
		lua_error(L);
	}
}

int
sandbox_open(struct sandbox *sb, size_t mem_limit, long step_limit)
{
	memset(sb, 0, sizeof(*sb));
	sb->mem_limit = mem_limit;
	sb->step_limit = step_limit;
	if ((sb->L = lua_newstate(sandbox_alloc, sb)) == NULL)
		return -1;
	luaL_openlibs(sb->L);
	return 0;
}

void
sandbox_close(struct sandbox *sb)
{
	if (sb->L != NULL)
		lua_close(sb->L);
	sb->L = NULL;
}

int
sandbox_caller_line(lua_State *L)
{
	lua_Debug ar;

	if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar))
		return ar.currentline;
	return 0;
}

/* __newindex of an environment: upvalues 1 settings, 2 lines. */
static int
sandbox_env_newindex(lua_State *L)
{
	if (lua_type(L, 2) != LUA_TSTRING)
		return luaL_error(L, "only named settings can be assigned at the top level");
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	lua_rawset(L, lua_upvalueindex(1));
	lua_pushvalue(L, 2);
	lua_pushinteger(L, sandbox_caller_line(L));
	lua_rawset(L, lua_upvalueindex(2));
	return 0;
}

static void
sandbox_copy_fields(lua_State *L, int from, int to, const char *const *names)
{
	for (int i = 0; names[i] != NULL; i++) {
		lua_getfield(L, from, names[i]);
		lua_setfield(L, to, names[i]);
	}
}

/* Push a table of what scripts may use. */
static void
sandbox_push_libs(lua_State *L, enum sandbox_os os)
{
	static const char *const base_ok[] = {
		"assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber",
		"tostring", "type", "xpcall", "rawequal", "rawget", "rawlen", "setmetatable",
		"getmetatable", "string", "table", "math", "utf8", NULL,
	};
	static const char *const os_getenv[] = { "getenv", NULL };
	static const char *const os_time[] = { "time", "date", "clock", NULL };
	int libs;

	lua_createtable(L, 0, 24);
	libs = lua_gettop(L);
	lua_pushglobaltable(L);
	sandbox_copy_fields(L, -1, libs, base_ok);
	if (os != SANDBOX_OS_NONE) {
		lua_createtable(L, 0, 3);
		lua_getfield(L, -2, "os");
		sandbox_copy_fields(L, -1, -2, os == SANDBOX_OS_GETENV ? os_getenv : os_time);
		lua_pop(L, 1);
		lua_setfield(L, libs, "os");
	}
	lua_pop(L, 1);
}

void
sandbox_push_env(lua_State *L, int settings, int lines, int extra, enum sandbox_os os)
{
	int libs;

	settings = lua_absindex(L, settings);
	lines = lua_absindex(L, lines);
	if (extra != 0)
		extra = lua_absindex(L, extra);
	sandbox_push_libs(L, os);
	libs = lua_gettop(L);
	if (extra != 0) {
		lua_pushnil(L);
		while (lua_next(L, extra) != 0) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, libs);
		}
	}
	lua_newtable(L);	/* the environment */
	lua_createtable(L, 0, 2);
	lua_pushvalue(L, settings);
	lua_pushvalue(L, lines);
	lua_pushcclosure(L, sandbox_env_newindex, 2);
	lua_setfield(L, -2, "__newindex");
	/* Reads look in the settings, then the libraries: tables as __index, so a global read is
	 * the VM's own lookup, not a C call (a policy reads `allow` on every statement). */
	lua_pushvalue(L, settings);
	lua_setfield(L, -2, "__index");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");	/* scripts cannot unlock their environment */
	lua_setmetatable(L, -2);
	lua_createtable(L, 0, 2);
	lua_pushvalue(L, libs);
	lua_setfield(L, -2, "__index");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, settings);
	lua_remove(L, libs);
}

/* Second call of a declaration: upvalue 1 is the entry made by the first. */
static int
sandbox_decl_body(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_pushvalue(L, 1);
	lua_setfield(L, lua_upvalueindex(1), "def");
	return 0;
}

/* First call: upvalue 1 the list, upvalue 2 the kind ("target", "role"). */
static int
sandbox_decl(lua_State *L)
{
	static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
	const char *kind = lua_tostring(L, lua_upvalueindex(2));
	const char *name = luaL_checkstring(L, 1);

	if (*name == '\0' || strspn(name, name_chars) != strlen(name) || strlen(name) > 63)
		return luaL_error(L, "%s name \"%s\" may use only letters, digits, '.', '_' and '-' (at most 63)", kind, name);
	lua_createtable(L, 0, 3);
	lua_pushvalue(L, 1);
	lua_setfield(L, -2, "name");
	lua_pushinteger(L, sandbox_caller_line(L));
	lua_setfield(L, -2, "line");
	lua_pushvalue(L, -1);
	lua_rawseti(L, lua_upvalueindex(1), (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)) + 1);
	lua_pushcclosure(L, sandbox_decl_body, 1);
	return 1;
}

void
sandbox_push_decl(lua_State *L, int list, const char *kind)
{
	lua_pushvalue(L, list);
	lua_pushstring(L, kind);
	lua_pushcclosure(L, sandbox_decl, 2);
}

int
sandbox_pcall(struct sandbox *sb, int nargs, int nresults)
{
	int r;

	lua_sethook(sb->L, sandbox_hook, LUA_MASKCOUNT, SANDBOX_HOOK_EVERY);
	r = lua_pcall(sb->L, nargs, nresults, 0);
	lua_sethook(sb->L, NULL, 0, 0);
	if (r == LUA_ERRMEM) {
		lua_pop(sb->L, 1);
		lua_pushfstring(sb->L, "%s: script uses too much memory (over %d KiB)", sb->chunk ? sb->chunk : "?",
		    (int)(sb->mem_limit >> 10));
	}
	return r == LUA_OK ? 0 : -1;
}

int
sandbox_read_decls(struct sandbox *sb, lua_CFunction fn, void *arg)
{
	lua_pushcfunction(sb->L, fn);
	lua_pushvalue(sb->L, 1);
	lua_pushvalue(sb->L, 2);
	lua_pushvalue(sb->L, 3);
	lua_pushlightuserdata(sb->L, arg);
	sb->steps = 0;
	return sandbox_pcall(sb, 4, 0);
}

static int
sandbox_run_loaded(struct sandbox *sb, int env)
{
	lua_pushvalue(sb->L, env);
	if (lua_setupvalue(sb->L, -2, 1) == NULL)
		lua_pop(sb->L, 1);
	sb->steps = 0;
	return sandbox_pcall(sb, 0, 0);
}

int
sandbox_run_buffer(struct sandbox *sb, const char *text, size_t len, const char *path, int env)
{
	char chunk[4200];

	env = lua_absindex(sb->L, env);
	sb->chunk = path;
	snprintf(chunk, sizeof(chunk), "@%s", path);
	if (luaL_loadbufferx(sb->L, text, len, chunk, "t") != LUA_OK)
		return -1;
	return sandbox_run_loaded(sb, env);
}

int
sandbox_run_file(struct sandbox *sb, const char *path, int env)
{

	env = lua_absindex(sb->L, env);
	sb->chunk = path;
	if (luaL_loadfilex(sb->L, path, "t") != LUA_OK)
		return -1;	/* "cannot open FILE" or "FILE:LINE: syntax error" */
	return sandbox_run_loaded(sb, env);
}
