/*
 * The Lua sandbox every operator-written file runs in: posternd.lua, role scripts and (later)
 * policies. A state gets a memory cap through its own allocator and an instruction budget
 * through a count hook; scripts see only an allow-list of pure libraries, never io, os.execute,
 * load, dofile, require or debug. Declarations such as `target "pg" { … }` and `role "dba" { … }`
 * record the line they come from, so every later error can name FILE:LINE.
 */
#ifndef POSTERN_SANDBOX_H
#define POSTERN_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

#include <lua.h>

struct sandbox {
	lua_State *L;
	size_t used;		/* bytes the state holds */
	size_t mem_limit;	/* allocations beyond this fail (LUA_ERRMEM) */
	long steps;		/* instructions counted in the current run */
	long step_limit;	/* a run that exceeds this is stopped with an error */
	const char *chunk;	/* file being run, for messages */
};

enum sandbox_os {
	SANDBOX_OS_NONE = 0,
	SANDBOX_OS_GETENV,	/* configuration: os.getenv */
	SANDBOX_OS_TIME,	/* policy: os.time, os.date, os.clock */
};

/* Open a state with the standard libraries loaded (scripts reach them only through
 * sandbox_push_env). 0, or -1 when out of memory. */
int sandbox_open(struct sandbox *sb, size_t mem_limit, long step_limit) __attribute__((warn_unused_result));
void sandbox_close(struct sandbox *sb);

/*
 * Push a fresh environment table for a script: reads fall through to SETTINGS (a table index)
 * and then to the allowed libraries plus the globals in EXTRA (a table index, or 0); top-level
 * assignments go to SETTINGS, with their line stored under the same key in LINES.
 */
void sandbox_push_env(lua_State *L, int settings, int lines, int extra, enum sandbox_os os);

/*
 * Push a declaration function for EXTRA tables: `KIND "name" { … }` appends
 * { name = "name", line = N, def = { … } } to the list at index LIST (def stays nil when the
 * body is missing, so the caller can say so).
 */
void sandbox_push_decl(lua_State *L, int list, const char *kind);

/*
 * Load PATH as text (bytecode refused), make the table at ENV its _ENV and run it within the
 * budget. 0, or -1 with an error message ("FILE:LINE: …") pushed on the stack.
 */
int sandbox_run_file(struct sandbox *sb, const char *path, int env) __attribute__((warn_unused_result));

/* The same for a file's text already in memory (CHUNK names it in messages, as "@path"). */
int sandbox_run_buffer(struct sandbox *sb, const char *text, size_t len, const char *path, int env)
	__attribute__((warn_unused_result));

/* lua_pcall of the function under NARGS arguments within the budget (steps start from
 * sb->steps); 0, or -1 with the error message on the stack. */
int sandbox_pcall(struct sandbox *sb, int nargs, int nresults) __attribute__((warn_unused_result));
/*
 * After a script ran with declarations (settings at 1, lines at 2, the declared list at 3):
 * call FN protected and with a fresh instruction budget, with those three at 1..3 and ARG as
 * a light userdata at 4, so that reading the tables the script built (whose metatables may run
 * its code) can fail, loop or run out of memory only like the script itself. 0, or -1 with the
 * error on the stack.
 */
int sandbox_read_decls(struct sandbox *sb, lua_CFunction fn, void *arg) __attribute__((warn_unused_result));

/* The line of the Lua code that called the running C function (0 when unknown). */
int sandbox_caller_line(lua_State *L);

#endif
