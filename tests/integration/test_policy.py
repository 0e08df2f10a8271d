"""Lua policy on every statement, on the real SQL classifier, through the PostgreSQL front:
what a policy author writes in $POSTERN_POLICY_FILE, put in force with posternctl reload."""

import contextlib
import os

import psycopg
import psycopg2
import pytest

from test_pg import dsn, policy


def run(sb, sql, prepare=False):
    """Run SQL through the relay; None on success, else (SQLSTATE, message)."""
    with psycopg.connect(dsn(sb), autocommit=True) as conn:
        try:
            conn.execute(sql, prepare=prepare)
            return None
        except psycopg.Error as e:
            return (e.sqlstate, str(e))


@contextlib.contextmanager
def extra_role(sb, text):
    path = os.path.join(sb.dir, "roles", "zz-test.lua")
    with open(path, "w") as f:
        f.write(text)
    assert sb.run(["posternctl", "reload"]).returncode == 0
    try:
        yield
    finally:
        os.unlink(path)
        sb.run(["posternctl", "reload"])


READ_ONLY = """
-- A read-only role: reads, plans and session settings only.
local ok = { select = true, explain = true, set = true, tcl = true }
function on_query(s, q)
  if q.unterminated or q.ambiguous then return deny("statement is malformed or ambiguous") end
  for _, st in ipairs(q.statements) do
    if not ok[st.kind] or st.explain_analyze then
      return deny("read-only access: " .. st.kind .. " is not allowed")
    end
  end
  return allow()
end
"""

NO_DDL_UNLESS_DBA = """
function on_query(s, q)
  if (q.kinds.ddl or q.kinds.dcl) and not s.roles.dba then
    return deny("DDL needs the dba role (" .. q.kind .. ")")
  end
  if q.kinds.update or q.kinds.delete then
    if q.where == false then return deny("UPDATE and DELETE need a WHERE clause") end
  end
  for _, t in ipairs(q.tables) do
    -- names come as written: bare or schema-qualified
    if t == "secrets" or t:match("%.secrets$") then return deny("table secrets is off limits") end
  end
  if q.kinds.delete then
    s.state.deletes = (s.state.deletes or 0) + 1
    if s.state.deletes > 3 then return deny("at most 3 deletes per session") end
  end
  return allow()
end
"""


@pytest.fixture(scope="module", autouse=True)
def tables(relay_module):
    r = relay_module.run('psql "$POSTERN_PG_DSN" -v ON_ERROR_STOP=1 -c "create table if not exists pt (id int, v text)" '
                         '-c "create table if not exists secrets (k text)" -c "insert into pt select g, g::text from generate_series(1, 10) g"')
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def relay_module(request):
    return request.getfixturevalue("sandbox")


def test_read_only_role_allows_reads(relay):
    with policy(relay, READ_ONLY):
        assert run(relay, "select count(*) from pt") is None
        assert run(relay, "explain select * from pt") is None
        assert run(relay, "begin; select 1; commit") is None
        assert run(relay, "select set_config('search_path', 'public', false)") is None


@pytest.mark.parametrize("sql", [
    "insert into pt values (99, 'x')",
    "update pt set v = 'y' where id = 1",
    "/**/DROP TABLE pt",
    "DrOp/* sneaky */TaBlE pt",
    "select 1; drop table pt",
    "with x as (delete from pt returning *) select * from x",
    "explain analyze delete from pt",
    "do $$ begin drop table pt; end $$",
    "select * into pt_copy from pt",
    "copy pt to stdout",
    "grant all on pt to public",
    "select 'unterminated",
    # functions that write, administer, read server files or become someone else
    "select set_config('role', 'postgres', false)",
    "select pg_terminate_backend(pg_backend_pid())",
    "select pg_catalog.pg_read_file('postgresql.conf')",
    "select setval('pt_id_seq', 1)",
    "select dblink_exec('dbname=appdb', 'drop table pt')",
])
def test_read_only_role_denies_everything_else(relay, sql):
    with policy(relay, READ_ONLY):
        got = run(relay, sql)
    assert got is not None and got[0] == "42501", (sql, got)
    assert run(relay, "select count(*) from pt") is None
    with psycopg2.connect(dsn(relay)) as conn:
        cur = conn.cursor()
        cur.execute("select count(*) from pt")
        assert cur.fetchone()[0] >= 10, "nothing was changed"


def test_ddl_is_denied_for_non_admins_with_the_reason(relay):
    with policy(relay, NO_DDL_UNLESS_DBA):
        got = run(relay, "create table forbidden_tbl (x int)")
    assert got[0] == "42501" and "DDL needs the dba role (ddl)" in got[1]


def test_ddl_is_allowed_for_the_dba_role(relay):
    with policy(relay, NO_DDL_UNLESS_DBA), extra_role(relay, 'role "dba" { members = { "demo" }, targets = { "pg" } }\n'):
        assert run(relay, "create table if not exists dba_made (x int)") is None
        assert run(relay, "drop table dba_made") is None


def test_multi_statement_with_a_denied_part_is_denied_whole(relay):
    with policy(relay, NO_DDL_UNLESS_DBA):
        got = run(relay, "insert into pt values (500, 'a'); drop table pt")
    assert got[0] == "42501"
    with psycopg2.connect(dsn(relay)) as conn:
        cur = conn.cursor()
        cur.execute("select count(*) from pt where id = 500")
        assert cur.fetchone() == (0,), "the allowed part did not run either"


def test_update_without_where_is_denied_and_with_where_allowed(relay):
    with policy(relay, NO_DDL_UNLESS_DBA):
        assert "need a WHERE clause" in run(relay, "update pt set v = 'z'")[1]
        assert run(relay, "update pt set v = 'z' where id = 2") is None
        assert "need a WHERE clause" in run(relay, "delete from pt where id in (select id from pt); delete from pt")[1]


def test_tables_named_anywhere_are_seen(relay):
    with policy(relay, NO_DDL_UNLESS_DBA):
        for sql in ("select * from secrets", 'select * from pt join "secrets" s on true', "select (select k from public.secrets limit 1)"):
            got = run(relay, sql)
            assert got is not None and "table secrets is off limits" in got[1], sql


def test_session_state_counts_deletes_per_session(relay):
    with policy(relay, NO_DDL_UNLESS_DBA):
        with psycopg.connect(dsn(relay), autocommit=True) as conn:
            for i in range(3):
                conn.execute("delete from pt where id = %s", (1000 + i,))
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
                conn.execute("delete from pt where id = 2000")
            assert "at most 3 deletes per session" in str(e.value)
        with psycopg.connect(dsn(relay), autocommit=True) as conn:
            conn.execute("delete from pt where id = 3000")   # a new session starts again


def test_classified_parse_denied_then_a_working_query(relay):
    with policy(relay, READ_ONLY):
        got = run(relay, "insert into pt values (%s::int, 'p')".replace("%s", "7"), prepare=True)
        assert got[0] == "42501" and "read-only access: insert" in got[1]
        with psycopg.connect(dsn(relay), autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("delete from pt where id = %s", (1,), prepare=True)
            assert conn.execute("select %s::int * 2", (21,), prepare=True).fetchone() == (42,)


def test_q_fields_reach_the_policy(relay, tmp_path):
    probe = """
function on_query(s, q)
  if q.text:find("probe", 1, true) then
    local st = q.statements[1]
    return deny(string.format("kind=%s count=%d where=%s tables=%s verb=%s prepared=%s user=%s target=%s",
      q.kind, q.count, tostring(q.where), table.concat(q.tables, ","), st.verb, tostring(q.prepared), s.user, s.target))
  end
  return allow()
end
"""
    with policy(relay, probe):
        got = run(relay, "delete from Pt using secrets where pt.id = 1 and 'probe' = 'probe'")
    assert "kind=delete count=1 where=true tables=pt,secrets verb=delete prepared=false user=demo target=pg" in got[1], got


# A policy that catches the error of reading q.text with no memory left, and allows anyway.
CATCHES_A_FAILED_READ = """
local hog
function on_query(s, q)
  hog = nil
  pcall(function()               -- fill the policy's memory, in small pieces
    while true do hog = { next = hog, s = string.rep("x", 512) } end
  end)
  local ok = pcall(function() return q.text end)   -- 60 KB: cannot be made now
  hog = nil
  collectgarbage()
  if ok then return deny("the text could be read: the test proves nothing") end
  return allow()
end
"""


def test_an_error_reading_q_denies_even_when_the_policy_catches_it(relay):
    """q's fields are made when read; if making one fails (out of memory, or the classifier),
    the statement is denied whatever the policy returns after catching the error."""
    with policy(relay, CATCHES_A_FAILED_READ):
        got = run(relay, "select '" + "y" * 60000 + "'")
        assert got is not None and got[0] == "42501", got
        assert "could not be classified" in got[1]
    assert run(relay, "select 1") is None


def test_q_metatable_cannot_be_replaced_by_a_policy(relay):
    with policy(relay, """
function on_query(s, q)
  pcall(setmetatable, q, nil)
  if getmetatable(q) ~= false then return deny("the metatable is visible") end
  if q.kind == nil then return deny("q lost its fields") end
  return allow()
end
"""):
        assert run(relay, "select 1") is None
        assert run(relay, "select 2") is None


@pytest.mark.parametrize("index", ['function() error("boom") end', "function() while true do end end"])
def test_a_verdict_with_a_hostile_metatable_is_denied_and_the_relay_goes_on(relay, index):
    """What a hook returns is read raw: no code of the policy runs outside its protected,
    budgeted call (before, an __index that errored took posternd down; one that looped hung
    the worker)."""
    with policy(relay, "function on_query(s, q) return setmetatable({}, { __index = %s }) end" % index):
        got = run(relay, "select 1")
        assert got is not None and got[0] == "42501" and "gave no verdict" in got[1], got
    assert run(relay, "select 1") is None
    assert relay.run(["posternctl", "status"]).returncode == 0
