/*
 * Policy calls on Lua. Each worker thread keeps its own sandboxed state per policy file,
 * rebuilt when the configuration generation changes (a reload), so no lock is ever taken on
 * the query path. A policy file defines plain functions:
 *
 *   function on_connect(s) return allow() end
 *   function on_query(s, q) if q.text:find("DROP") then return deny("no DDL here") end return allow() end
 *
 * Every call runs under an instruction budget and the state under a memory cap; an error, a
 * runaway loop or a missing verdict denies (fail closed) and is logged with file:line.
 */
#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "policy/sandbox.h"
#include "policy/sql.h"
#include "relay/log.h"

#define POLICY_STEPS_LOAD	(10L * 1000 * 1000)
#define POLICY_FILES_MAX	64

struct policy_state {
	char *path;
	struct sandbox sb;	/* stack: 1 settings (the file's globals), 2 per-session state tables */
	bool broken;		/* failed to load: every call denies */
};

struct policy_cache {
	long generation;
	struct policy_state files[POLICY_FILES_MAX];
	size_t n;
};

static _Thread_local struct policy_cache *cache;
static _Thread_local struct sql_result *classified;	/* ~28 KiB: per worker, not on the stack */

/* allow() without a reason, the verdict of nearly every call: a token, not a table to make. */
static const char policy_allow_token;

static int
policy_verdict_fn(lua_State *L, const char *verdict)
{
	const char *reason = luaL_optstring(L, 1, "");

	if (verdict[0] == 'a' && reason[0] == '\0') {
		lua_pushlightuserdata(L, (void *)&policy_allow_token);	/* Lua code cannot forge one */
		return 1;
	}

	lua_createtable(L, 0, 2);
	lua_pushstring(L, verdict);
	lua_setfield(L, -2, "verdict");
	lua_pushstring(L, reason);
	lua_setfield(L, -2, "reason");
	return 1;
}

static int policy_allow(lua_State *L) { return policy_verdict_fn(L, "allow"); }
static int policy_deny(lua_State *L) { return policy_verdict_fn(L, "deny"); }
static int policy_terminate(lua_State *L) { return policy_verdict_fn(L, "terminate"); }

static void
policy_cache_clear(void)
{
	for (size_t i = 0; i < cache->n; i++) {
		sandbox_close(&cache->files[i].sb);
		free(cache->files[i].path);
	}
	cache->n = 0;
}

static void
policy_load(struct policy_state *ps, const struct policy_session *s)
{
	lua_State *L;

	if (sandbox_open(&ps->sb, s->mem_limit ? s->mem_limit : 32u << 20, POLICY_STEPS_LOAD) != 0) {
		ps->broken = true;
		return;
	}
	L = ps->sb.L;
	lua_newtable(L);	/* 1: settings: the file's globals, functions included */
	lua_newtable(L);	/* 2: per-session s tables (with s.state), by session id */
	lua_newtable(L);	/* 3: lines */
	lua_newtable(L);	/* 4: extra globals */
	lua_pushcfunction(L, policy_allow);
	lua_setfield(L, 4, "allow");
	lua_pushcfunction(L, policy_deny);
	lua_setfield(L, 4, "deny");
	lua_pushcfunction(L, policy_terminate);
	lua_setfield(L, 4, "terminate");
	sandbox_push_env(L, 1, 3, 4, SANDBOX_OS_TIME);
	if (sandbox_run_buffer(&ps->sb, s->policy_source, s->policy_len, ps->path, -1) != 0) {
		char q[512];

		log_error("policy failed to load; its sessions are denied", "file=%s error=%s", ps->path,
		    log_quote(q, sizeof(q), lua_tostring(L, -1)));
		ps->broken = true;
	}
	lua_settop(L, 2);
	ps->sb.step_limit = s->step_limit > 0 ? s->step_limit : 1000L * 1000;
}

static struct policy_state *
policy_get(const struct policy_session *s)
{
	struct policy_state *ps;

	if (cache == NULL && (cache = calloc(1, sizeof(*cache))) == NULL)
		return NULL;
	if (cache->generation != s->config_generation) {
		policy_cache_clear();
		cache->generation = s->config_generation;
	}
	for (size_t i = 0; i < cache->n; i++)
		if (strcmp(cache->files[i].path, s->policy_file) == 0)
			return &cache->files[i];
	if (cache->n == POLICY_FILES_MAX)
		return NULL;
	ps = &cache->files[cache->n++];
	memset(ps, 0, sizeof(*ps));
	ps->path = strdup(s->policy_file);
	policy_load(ps, s);
	return ps;
}

/*
 * Push the s table: the session's facts and its s.state table. It is built once per session
 * and kept (by session id) in the state's slot 2, so a call costs a table lookup, not a dozen
 * string pushes.
 */
static void
policy_push_session(lua_State *L, const struct policy_session *s)
{
	if (lua_getfield(L, 2, s->id) == LUA_TTABLE)
		return;
	lua_pop(L, 1);
	lua_createtable(L, 0, 10);
	lua_pushstring(L, s->id);
	lua_setfield(L, -2, "id");
	lua_pushstring(L, s->user);
	lua_setfield(L, -2, "user");
	lua_pushstring(L, s->target);
	lua_setfield(L, -2, "target");
	lua_pushstring(L, s->protocol);
	lua_setfield(L, -2, "protocol");
	lua_pushstring(L, s->login);
	lua_setfield(L, -2, "login");
	lua_pushstring(L, s->client_addr);
	lua_setfield(L, -2, "client_addr");
	lua_pushnumber(L, s->started);
	lua_setfield(L, -2, "started");
	lua_createtable(L, 0, (int)s->nroles);
	for (size_t i = 0; i < s->nroles; i++) {
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, s->roles[i]);
	}
	lua_setfield(L, -2, "roles");
	lua_newtable(L);
	lua_setfield(L, -2, "state");
	lua_pushvalue(L, -1);
	lua_setfield(L, 2, s->id);
}

static void
policy_push_slice(lua_State *L, struct slice sl)
{
	lua_pushlstring(L, (const char *)sl.ptr, sl.len);
}

/* q.kinds and statement.kinds: a set of kind names. */
static void
policy_push_kinds(lua_State *L, unsigned kinds)
{
	lua_createtable(L, 0, 4);
	for (int k = SQL_KIND_SELECT; k < SQL_KIND_COUNT; k++) {
		if (kinds & SQL_KIND_BIT(k)) {
			lua_pushboolean(L, 1);
			lua_setfield(L, -2, sql_kind_name((enum sql_kind)k));
		}
	}
}

static void
policy_push_statement(lua_State *L, const struct sql_statement *st)
{
	lua_createtable(L, 0, 10);
	policy_push_slice(L, st->text);
	lua_setfield(L, -2, "text");
	lua_pushstring(L, sql_kind_name(st->kind));
	lua_setfield(L, -2, "kind");
	policy_push_kinds(L, st->kinds);
	lua_setfield(L, -2, "kinds");
	lua_pushstring(L, st->verb ? st->verb : "");
	lua_setfield(L, -2, "verb");
	if (st->kinds & (SQL_KIND_BIT(SQL_KIND_UPDATE) | SQL_KIND_BIT(SQL_KIND_DELETE))) {
		lua_pushboolean(L, st->has_where);
		lua_setfield(L, -2, "where");
	}
	lua_pushboolean(L, st->explain_analyze);
	lua_setfield(L, -2, "explain_analyze");
	if (st->kind == SQL_KIND_EXPLAIN) {
		lua_pushstring(L, sql_kind_name(st->inner_kind));
		lua_setfield(L, -2, "inner_kind");
	}
	lua_pushboolean(L, st->opaque);
	lua_setfield(L, -2, "opaque");
	lua_createtable(L, (int)st->ntables, 0);
	for (size_t i = 0; i < st->ntables; i++) {
		policy_push_slice(L, st->tables[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "tables");
}

/* Serial number of the current on_query call (whether `classified` is this call's). */
static _Thread_local lua_Integer query_serial;
static _Thread_local const struct policy_query *query_now;	/* the call's statement; NULL between calls */
static _Thread_local lua_Integer query_classified;		/* the serial `classified` is of */
static _Thread_local bool query_fault;				/* an error left policy_query_index */

/* WHERE over every UPDATE and DELETE: 1 all have one, 0 one lacks it, -1 there is none. */
static int
policy_query_where(const struct sql_result *r, size_t nst, bool *analyze)
{
	int where = -1;

	*analyze = false;
	for (size_t i = 0; i < nst; i++) {
		const struct sql_statement *st = &r->statements[i];

		if (st->kinds & (SQL_KIND_BIT(SQL_KIND_UPDATE) | SQL_KIND_BIT(SQL_KIND_DELETE)))
			where = (where != 0 && st->has_where) ? 1 : 0;
		*analyze = *analyze || st->explain_analyze;
	}
	return where;
}

/*
 * Every q field is made when the policy first reads it, from the classification of this call,
 * and kept in q (rawset) for the rest of the call: a policy that reads only q.kind pays for
 * q.kind, and one that reads nothing (allow-all) pays for nothing but the call. The fields a
 * call cached are cleared at the start of the next one (policy_push_query).
 */
static int
policy_query_index_do(lua_State *L)
{
	const struct sql_result *r = classified;
	const struct policy_query *q = query_now;
	size_t klen, nst, ntables = 0;
	const char *key = lua_tolstring(L, 2, &klen);
	bool analyze;
	int where;

	/* One q per Lua state, so a q is the current statement's exactly while a call runs. */
	if (key == NULL || q == NULL)
		return 0;
	if (strcmp(key, "text") == 0) {
		lua_pushlstring(L, q->text, q->len);
		lua_pushvalue(L, 2);
		lua_pushvalue(L, -2);
		lua_rawset(L, 1);	/* cached: a long string is made once per call */
		return 1;
	}
	if (strcmp(key, "truncated") == 0 || strcmp(key, "prepared") == 0) {
		lua_pushboolean(L, key[0] == 't' ? q->truncated : q->prepared);
		return 1;
	}
	/* Everything else is the classifier's: it runs on the first such read of the call. */
	if (query_classified != query_serial) {
		if (classified == NULL && (classified = malloc(sizeof(*classified))) == NULL)
			return luaL_error(L, "the statement could not be classified");
		/* It reads the whole statement, so nothing hides past the part q.text shows. */
		if (sql_classify(q->text, q->full_len > q->len ? q->full_len : q->len, q->mysql ? SQL_DIALECT_MYSQL :
		    SQL_DIALECT_POSTGRES, q->sql_modes, classified) != 0)
			return luaL_error(L, "the statement could not be classified");
		query_classified = query_serial;
	}
	r = classified;
	nst = r->nstatements < SQL_STATEMENTS_MAX ? r->nstatements : SQL_STATEMENTS_MAX;
	switch (key[0]) {
	case 'a':
		if (strcmp(key, "ambiguous") != 0)
			return 0;
		lua_pushboolean(L, r->ambiguous != 0);
		return 1;	/* booleans and numbers cost nothing to make again: not cached */
	case 'c':
		if (strcmp(key, "count") != 0)
			return 0;
		lua_pushinteger(L, (lua_Integer)r->nstatements);
		return 1;
	case 'e':
		if (strcmp(key, "explain_analyze") != 0)
			return 0;
		(void)policy_query_where(r, nst, &analyze);
		lua_pushboolean(L, analyze);
		return 1;
	case 'o':
		if (strcmp(key, "opaque") != 0)
			return 0;
		lua_pushboolean(L, r->opaque);
		return 1;
	case 'u':
		if (strcmp(key, "unterminated") != 0)
			return 0;
		lua_pushboolean(L, r->unterminated);
		return 1;
	case 'w':
		if (strcmp(key, "where") != 0)
			return 0;
		if ((where = policy_query_where(r, nst, &analyze)) < 0)
			return 0;
		lua_pushboolean(L, where);
		return 1;
	case 'k':
		if (strcmp(key, "kind") == 0) {
			lua_pushstring(L, sql_kind_name(r->kind));	/* short strings are interned */
			return 1;
		}
		if (strcmp(key, "kinds") != 0)
			return 0;
		/* One kinds table per state, refilled: every kind true or false. */
		lua_getfield(L, LUA_REGISTRYINDEX, "postern.q.kinds");
		for (int k = SQL_KIND_SELECT; k < SQL_KIND_COUNT; k++) {	/* raw: no metamethod of the policy's runs */
			lua_pushstring(L, sql_kind_name((enum sql_kind)k));
			lua_pushboolean(L, (r->kinds & SQL_KIND_BIT(k)) != 0);
			lua_rawset(L, -3);
		}
		break;
	case 't':
		if (strcmp(key, "tables") != 0)
			return 0;
		/* Every table any statement names, each once. */
		lua_newtable(L);
		lua_newtable(L);	/* seen */
		for (size_t i = 0; i < nst; i++) {
			for (size_t j = 0; j < r->statements[i].ntables; j++) {
				policy_push_slice(L, r->statements[i].tables[j]);
				if (lua_rawget(L, -2) != LUA_TNIL) {
					lua_pop(L, 1);
					continue;
				}
				lua_pop(L, 1);
				policy_push_slice(L, r->statements[i].tables[j]);
				lua_pushboolean(L, 1);
				lua_rawset(L, -3);
				policy_push_slice(L, r->statements[i].tables[j]);
				lua_rawseti(L, -3, (lua_Integer)++ntables);
			}
		}
		lua_pop(L, 1);
		break;
	case 's':
		if (strcmp(key, "statements_truncated") == 0) {
			lua_pushboolean(L, r->truncated);
			return 1;
		}
		if (strcmp(key, "statements") != 0)
			return 0;
		lua_createtable(L, (int)nst, 0);
		for (size_t i = 0; i < nst; i++) {
			policy_push_statement(L, &r->statements[i]);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		break;
	default:
		return 0;
	}
	/* Tables and the text: cached in q itself, so a second use is a plain field. */
	lua_pushvalue(L, 2);
	lua_pushvalue(L, -2);
	lua_rawset(L, 1);
	return 1;
}

/*
 * __index of q. An error inside (the classifier failing, memory running out while a string or
 * table is made) must deny even if the policy catches it with pcall and goes on to allow:
 * query_fault stays set when the error jumps out, and policy_call denies.
 */
static int
policy_query_index(lua_State *L)
{
	int n;

	query_fault = true;
	n = policy_query_index_do(L);
	query_fault = false;
	return n;
}

/*
 * Push the q table: the text and what the SQL classifier (policy/sql.c) makes of it: the kind
 * of the whole, every statement with its kind, tables, WHERE and EXPLAIN ANALYZE, and the flags
 * a careful policy denies on (unterminated, ambiguous, opaque). Both the classification and
 * the Lua values are made on demand (policy_query_index).
 */
static int
policy_push_query(lua_State *L, const struct policy_query *q)
{
	query_serial++;
	query_now = q;
	query_fault = false;
	/* One q table (and one kinds table) per Lua state, reused: nothing is allocated per
	 * statement unless the policy reads a string or a table. */
	if (lua_getfield(L, LUA_REGISTRYINDEX, "postern.q") != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_createtable(L, 0, SQL_KIND_COUNT);
		lua_setfield(L, LUA_REGISTRYINDEX, "postern.q.kinds");
		lua_createtable(L, 0, 4);
		luaL_newmetatable(L, "postern.query");
		lua_pushboolean(L, 0);
		lua_setfield(L, -2, "__metatable");	/* the policy can neither see nor replace it */
		lua_pushcfunction(L, policy_query_index);
		lua_setfield(L, -2, "__index");
		lua_setmetatable(L, -2);
		lua_pushvalue(L, -1);
		lua_setfield(L, LUA_REGISTRYINDEX, "postern.q");
	}
	/* Whatever the last call cached or the policy stored in q goes. */
	lua_pushnil(L);
	while (lua_next(L, -2) != 0) {
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_pushnil(L);
		lua_rawset(L, -4);
	}
	return 0;
}

struct policy_args {
	const struct policy_session *s;
	const char *hook;
	const struct policy_query *q;
	const struct policy_command *c;
	bool missing;		/* the policy has no such hook */
	bool verdict_ok;	/* the hook returned allow(), deny() or terminate() */
	enum policy_verdict verdict;
	char *reason;		/* the verdict's reason, REASON_LEN bytes */
	size_t reason_len;
};

/*
 * Inside the protected call: build s and q (or c), and run the hook. Everything that may
 * allocate happens here, so running out of the state's memory is an error the call catches,
 * never a panic that would take the process down.
 */
static int
policy_protected(lua_State *L)
{
	struct policy_args *a = lua_touserdata(L, 1);
	int nargs = 1;

	lua_settop(L, 0);
	/* This frame's slot 1 is the hook and slot 2 the per-session tables, the layout
	 * policy_push_session expects (it is the state's own layout outside calls). */
	if (lua_getfield(L, lua_upvalueindex(1), a->hook) != LUA_TFUNCTION) {
		a->missing = true;
		return 0;
	}
	lua_pushvalue(L, lua_upvalueindex(2));
	policy_push_session(L, a->s);
	lua_remove(L, 2);
	if (a->q != NULL) {
		if (policy_push_query(L, a->q) != 0)
			return luaL_error(L, "the statement could not be classified");
		nargs++;
	} else if (a->c != NULL) {
		lua_createtable(L, 0, 4);
		lua_pushstring(L, a->c->line);
		lua_setfield(L, -2, "line");
		lua_pushstring(L, a->c->subsystem);
		lua_setfield(L, -2, "subsystem");
		lua_pushstring(L, a->c->forward_host);
		lua_setfield(L, -2, "forward_host");
		if (a->c->forward_host != NULL) {
			lua_pushinteger(L, a->c->forward_port);
			lua_setfield(L, -2, "forward_port");
		}
		nargs++;
	}
	lua_call(L, nargs, 1);
	/* The verdict is read here, still protected and only with raw reads: a table the policy
	 * returns with a metatable runs none of its code (an __index that errors or loops would
	 * otherwise run outside the protected call, with no instruction budget). */
	if (lua_touserdata(L, -1) == &policy_allow_token) {
		a->verdict = POLICY_ALLOW;
		a->verdict_ok = true;
		return 0;
	}
	if (!lua_istable(L, -1))
		return 0;
	lua_pushliteral(L, "verdict");
	if (lua_rawget(L, -2) != LUA_TSTRING)
		return 0;
	{
		const char *v = lua_tostring(L, -1);

		a->verdict = strcmp(v, "allow") == 0 ? POLICY_ALLOW : strcmp(v, "terminate") == 0 ? POLICY_TERMINATE :
		    POLICY_DENY;
		a->verdict_ok = true;
	}
	lua_pop(L, 1);
	lua_pushliteral(L, "reason");
	if (lua_rawget(L, -2) == LUA_TSTRING && a->reason_len > 0) {
		size_t n = 0;
		const char *r = lua_tolstring(L, -1, &n);

		if (n >= a->reason_len)
			n = a->reason_len - 1;
		memcpy(a->reason, r, n);
		a->reason[n] = '\0';
	}
	return 0;
}

/* Run HOOK with the session table and, when Q or C, the query or command table. */
static enum policy_verdict
policy_call(const struct policy_session *s, const char *hook, const struct policy_query *q,
    const struct policy_command *c, char *reason, size_t rlen)
{
	struct policy_args args = { .s = s, .hook = hook, .q = q, .c = c, .reason = reason, .reason_len = rlen };
	struct policy_state *ps;
	enum policy_verdict v = POLICY_DENY;
	lua_State *L;
	char qmsg[512];

	if (s->policy_file == NULL || s->policy_source == NULL)
		return POLICY_ALLOW;
	if ((ps = policy_get(s)) == NULL || ps->broken) {
		snprintf(reason, rlen, "the policy for this session cannot run; ask an administrator");
		return POLICY_DENY;
	}
	L = ps->sb.L;
	ps->sb.steps = 0;
	ps->sb.chunk = ps->path;
	/* lua_pushcclosure with upvalues allocates too; the closure is made once per state. */
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, (void *)policy_protected) != LUA_TFUNCTION) {
		lua_pop(L, 1);
		lua_pushvalue(L, 1);
		lua_pushvalue(L, 2);
		lua_pushcclosure(L, policy_protected, 2);
		lua_pushvalue(L, -1);
		lua_rawsetp(L, LUA_REGISTRYINDEX, (void *)policy_protected);
	}
	lua_pushlightuserdata(L, &args);
	if (rlen > 0)
		reason[0] = '\0';
	if (sandbox_pcall(&ps->sb, 1, 1) != 0) {
		log_error("policy error; denied", "file=%s hook=%s sid=%s error=%s", ps->path, hook, s->id,
		    log_quote(qmsg, sizeof(qmsg), lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) :
		    "(an error value that is not a string)"));
		snprintf(reason, rlen, "the policy failed (%s); denied", hook);
		goto out;
	}
	if (args.missing) {
		v = POLICY_ALLOW;	/* a missing hook allows, for that hook only */
		goto out;
	}
	if (!args.verdict_ok) {
		log_error("policy returned no verdict; denied", "file=%s hook=%s sid=%s", ps->path, hook, s->id);
		snprintf(reason, rlen, "the policy gave no verdict (%s must return allow(), deny() or terminate())", hook);
		goto out;
	}
	v = args.verdict;
	if (v == POLICY_ALLOW && rlen > 0)
		reason[0] = '\0';
	if (v != POLICY_ALLOW && reason[0] == '\0')
		snprintf(reason, rlen, "denied by policy");
out:
	if (query_fault) {
		log_error("the policy could not read the statement; denied", "file=%s hook=%s sid=%s", ps->path, hook, s->id);
		snprintf(reason, rlen, "the statement could not be classified; denied");
		v = POLICY_DENY;
		query_fault = false;
	}
	query_now = NULL;	/* between calls q describes nothing; a q kept in s.state describes the
				 * statement of whichever later call reads it (docs/policy.md) */
	lua_settop(L, 2);
	return v;
}

void
policy_thread_end(void)
{
	if (cache != NULL) {
		policy_cache_clear();
		free(cache);
		cache = NULL;
	}
	free(classified);
	classified = NULL;
}

enum policy_verdict
policy_on_connect(const struct policy_session *s, char *reason, size_t rlen)
{
	return policy_call(s, "on_connect", NULL, NULL, reason, rlen);
}

enum policy_verdict
policy_on_query(const struct policy_session *s, const struct policy_query *q, char *reason, size_t rlen)
{
	return policy_call(s, "on_query", q, NULL, reason, rlen);
}

enum policy_verdict
policy_on_command(const struct policy_session *s, const struct policy_command *c, char *reason, size_t rlen)
{
	return policy_call(s, "on_command", NULL, c, reason, rlen);
}

void
policy_session_end(const struct policy_session *s)
{
	if (cache == NULL || s->policy_file == NULL)
		return;
	for (size_t i = 0; i < cache->n; i++) {
		lua_State *L = cache->files[i].sb.L;

		if (L != NULL && strcmp(cache->files[i].path, s->policy_file) == 0) {
			lua_pushnil(L);
			lua_setfield(L, 2, s->id);
		}
	}
}
