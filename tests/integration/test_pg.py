"""The PostgreSQL front end to end: real clients (psql, pgbench, psycopg2, psycopg 3)
through a real posternd to a real PostgreSQL 15, as the sandbox's demo user with the
certificate `postern login` wrote. The target login and password are injected by posternd."""

import contextlib
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

import psycopg
import psycopg2
import psycopg2.extensions
import pytest


def dsn(sb, **extra):
    d = sb.env["POSTERN_PG_DSN"]
    return d + "".join(f" {k}={v}" for k, v in extra.items())


def psql(sb, *args, dsn_extra=None, **kw):
    return sb.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", dsn(sb, **(dsn_extra or {})), *args], **kw)


@contextlib.contextmanager
def policy(sb, text):
    """Put TEXT in force as the demo role's policy for the block, then restore it."""
    path = sb.env["POSTERN_POLICY_FILE"]
    with open(path) as f:
        saved = f.read()
    with open(path, "w") as f:
        f.write(text)
    r = sb.run(["posternctl", "reload"])
    assert r.returncode == 0, r.stderr
    try:
        yield
    finally:
        with open(path, "w") as f:
            f.write(saved)
        sb.run(["posternctl", "reload"])


@contextlib.contextmanager
def extra_target(sb, text):
    """Append TEXT (target declarations) to the relay's config for the block."""
    path = sb.env["POSTERN_CONFIG"]
    with open(path) as f:
        saved = f.read()
    with open(path, "a") as f:
        f.write("\n" + text + "\n")
    r = sb.run(["posternctl", "reload"])
    assert r.returncode == 0, r.stderr
    try:
        yield
    finally:
        with open(path, "w") as f:
            f.write(saved)
        sb.run(["posternctl", "reload"])


DENY_FORBIDDEN = """
function on_query(s, q)
  if q.text:find("forbidden", 1, true) then return deny("no forbidden things here") end
  if q.text:find("goodbye", 1, true) then return terminate("policy says goodbye") end
  return allow()
end
"""


def direct(sb):
    return psycopg2.connect(sb.env["POSTERN_PG_DIRECT_DSN"])


# --- basics ------------------------------------------------------------------------------

def test_psql_select_goes_through_as_the_injected_login(relay):
    r = psql(relay, "-At", "-c", "select current_user, current_database()")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "app|appdb"


def test_target_database_can_be_named_after_a_slash(relay):
    r = psql(relay, "-At", "-c", "select current_database()", dsn_extra={"dbname": "pg/postgres"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "postgres"


def test_startup_parameters_pass_through(relay):
    r = psql(relay, "-At", "-c", "show application_name", "-c", "show search_path", "-c", "show DateStyle",
             dsn_extra={"application_name": "ledger-fix", "options": "'-c search_path=pg_catalog,public'"},
             env={"PGDATESTYLE": "SQL, DMY"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["ledger-fix", "pg_catalog,public", "SQL,", "DMY"]


def test_session_is_listed_with_user_and_target(relay):
    conn = psycopg2.connect(dsn(relay))
    try:
        out = relay.run(["posternctl", "sessions", "--json"]).stdout
        assert re.search(r'"protocol": "postgres".*?"user": "demo".*?"target": "pg"', out, re.S)
    finally:
        conn.close()


def test_copy_both_ways_with_psql(relay, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("".join(f"{i},row {i}\n" for i in range(20000)))
    out = tmp_path / "out.csv"
    r = psql(relay, "-c", "create temp table t (id int, name text)",
             "-c", f"\\copy t from '{src}' csv", "-c", f"\\copy t to '{out}' csv")
    assert r.returncode == 0, r.stderr
    assert out.read_text() == src.read_text()


def test_psql_ctrl_c_cancels_the_running_query(relay):
    p = subprocess.Popen(["psql", "-X", dsn(relay), "-c", "select pg_sleep(30)"], env=dict(os.environ, **relay.env),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=10)
    assert "canceling statement due to user request" in err
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_select_only_has_no_failures(relay, mode):
    init = relay.run(["pgbench", "-i", "-s", "1", "-q", dsn(relay)], timeout=120)
    assert init.returncode == 0, init.stderr
    r = relay.run(["pgbench", "-n", "-S", "-M", mode, "-c", "4", "-j", "2", "-T", "2", dsn(relay)], timeout=60)
    assert r.returncode == 0, r.stderr
    assert "number of failed transactions: 0 (0.000%)" in r.stdout
    assert int(re.search(r"number of transactions actually processed: (\d+)", r.stdout).group(1)) > 100


def test_pgbench_tpcb_in_extended_mode_has_no_failures(relay):
    assert relay.run(["pgbench", "-i", "-s", "1", "-q", dsn(relay)], timeout=120).returncode == 0
    r = relay.run(["pgbench", "-n", "-M", "extended", "-c", "2", "-T", "2", dsn(relay)], timeout=60)
    assert r.returncode == 0, r.stderr
    assert "number of failed transactions: 0 (0.000%)" in r.stdout


def test_md5_password_is_injected_too(relay):
    e = relay.env
    with extra_target(relay, f'target "pg-md5" {{ protocol = "postgres", address = "127.0.0.1:{e["POSTERN_PG_PORT"]}", '
                             f'user = "app_md5", password_file = "{e["POSTERN_PG_MD5_PASSWORD_FILE"]}", database = "appdb", '
                             f'ca_file = "{e["POSTERN_TLS_CA"]}" }}'):
        r = psql(relay, "-At", "-c", "select current_user", dsn_extra={"dbname": "pg-md5"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "app_md5"


def test_failover_skips_a_host_that_is_down_and_finds_the_primary(relay):
    e = relay.env
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    with extra_target(relay, f'target "pg-ha" {{ protocol = "postgres", address = "127.0.0.1:{dead}, localhost:{e["POSTERN_PG_PORT"]}", '
                             f'user = "app", password_file = "{e["POSTERN_PG_APP_PASSWORD_FILE"]}", database = "appdb", '
                             f'ca_file = "{e["POSTERN_TLS_CA"]}", target_session_attrs = "read-write" }}'):
        r = psql(relay, "-At", "-c", "select current_user, pg_is_in_recovery()", dsn_extra={"dbname": "pg-ha"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "app|f"
    assert re.search(r'msg="target connected" sid=\w+ target=pg-ha host=localhost', open(relay.dir + "/posternd.log").read())


def test_wrong_injected_password_gives_08006_with_the_reason(relay, tmp_path):
    e = relay.env
    bad = tmp_path / "bad.password"
    bad.write_text("not-the-password\n")
    bad.chmod(0o600)
    with extra_target(relay, f'target "pg-bad" {{ protocol = "postgres", address = "127.0.0.1:{e["POSTERN_PG_PORT"]}", '
                             f'user = "app", password_file = "{bad}", ca_file = "{e["POSTERN_TLS_CA"]}" }}'):
        r = psql(relay, "-c", "select 1", dsn_extra={"dbname": "pg-bad"})
    assert r.returncode != 0
    assert 'cannot connect to target "pg-bad"' in r.stderr and "password authentication failed" in r.stderr
    assert "not-the-password" not in open(relay.dir + "/posternd.log").read()


# --- psycopg2 ------------------------------------------------------------------------------

def test_psycopg2_server_side_cursor(relay):
    with psycopg2.connect(dsn(relay)) as conn:
        cur = conn.cursor(name="big")
        cur.itersize = 1000
        cur.execute("select g from generate_series(1, 25000) g")
        assert sum(1 for _ in cur) == 25000


def test_psycopg2_copy_expert_both_ways(relay):
    import io
    with psycopg2.connect(dsn(relay)) as conn:
        cur = conn.cursor()
        cur.execute("create temp table c (a int, b text)")
        cur.copy_expert("copy c from stdin", io.StringIO("".join(f"{i}\tx{i}\n" for i in range(5000))))
        out = io.StringIO()
        cur.copy_expert("copy c to stdout", out)
        assert out.getvalue().count("\n") == 5000


def test_psycopg2_notices_arrive(relay):
    conn = psycopg2.connect(dsn(relay))
    try:
        cur = conn.cursor()
        cur.execute("do $$ begin raise notice 'hello from the server'; end $$")
        assert any("hello from the server" in n for n in conn.notices)
    finally:
        conn.close()


def test_psycopg2_listen_notify(relay):
    a, b = psycopg2.connect(dsn(relay)), psycopg2.connect(dsn(relay))
    try:
        a.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        b.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        a.cursor().execute("listen postern_chan")
        b.cursor().execute("notify postern_chan, 'ping'")
        deadline = time.monotonic() + 5
        while not a.notifies and time.monotonic() < deadline:
            import select
            select.select([a], [], [], 0.5)
            a.poll()
        assert a.notifies and a.notifies[0].payload == "ping"
    finally:
        a.close()
        b.close()


def test_psycopg2_cancel(relay):
    conn = psycopg2.connect(dsn(relay))
    try:
        threading.Timer(1.0, conn.cancel).start()
        with pytest.raises(psycopg2.errors.QueryCanceled):
            conn.cursor().execute("select pg_sleep(20)")
    finally:
        conn.close()


def test_psycopg2_error_inside_a_transaction_then_rollback(relay):
    conn = psycopg2.connect(dsn(relay))
    try:
        cur = conn.cursor()
        cur.execute("select 1")
        with pytest.raises(psycopg2.errors.DivisionByZero):
            cur.execute("select 1/0")
        with pytest.raises(psycopg2.errors.InFailedSqlTransaction):
            cur.execute("select 2")
        conn.rollback()
        cur.execute("select 3")
        assert cur.fetchone() == (3,)
    finally:
        conn.close()


def test_psycopg2_large_rows_of_50_mb(relay):
    size = 50 * 1024 * 1024
    with psycopg2.connect(dsn(relay)) as conn:
        cur = conn.cursor()
        cur.execute("select repeat('x', %s)", (size,))
        assert len(cur.fetchone()[0]) == size
        cur.execute("create temp table big (v text)")
        cur.execute("insert into big values (%s)", ("y" * size,))
        cur.execute("select length(v) from big")
        assert cur.fetchone() == (size,)


# --- policy denial ---------------------------------------------------------------------------

def test_denied_simple_query_gets_42501_and_the_session_goes_on(relay):
    with policy(relay, DENY_FORBIDDEN):
        conn = psycopg2.connect(dsn(relay))
        conn.autocommit = True
        try:
            cur = conn.cursor()
            with pytest.raises(psycopg2.errors.InsufficientPrivilege) as e:
                cur.execute("select 'forbidden'")
            assert "no forbidden things here" in str(e.value)
            cur.execute("select 42")
            assert cur.fetchone() == (42,)
        finally:
            conn.close()
    assert re.search(r'msg="statement denied".*reason="no forbidden things here"', open(relay.dir + "/posternd.log").read())


def test_denied_statement_aborts_the_transaction_like_any_error(relay):
    with policy(relay, DENY_FORBIDDEN):
        conn = psycopg2.connect(dsn(relay))
        try:
            cur = conn.cursor()
            cur.execute("create temp table t (v int)")
            conn.commit()
            cur.execute("insert into t values (1)")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("select 'forbidden'")
            with pytest.raises(psycopg2.errors.InFailedSqlTransaction):
                cur.execute("select 1")
            conn.rollback()
            cur.execute("select count(*) from t")
            assert cur.fetchone() == (0,)
        finally:
            conn.close()


def test_denied_parse_in_extended_protocol_then_a_working_query(relay):
    with policy(relay, DENY_FORBIDDEN):
        with psycopg.connect(dsn(relay), autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
                conn.execute("select %s::text || 'forbidden'", ("x",), prepare=True)
            assert "no forbidden things here" in str(e.value)
            assert conn.execute("select %s::int + 1", (41,), prepare=True).fetchone() == (42,)
            assert conn.execute("select 'fine'").fetchone() == ("fine",)


def test_denied_statement_in_a_pipeline_keeps_reply_order(relay):
    with policy(relay, DENY_FORBIDDEN):
        with psycopg.connect(dsn(relay), autocommit=True) as conn:
            c1 = None
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                with conn.pipeline():
                    c1 = conn.execute("select 1")
                    conn.execute("select 'forbidden'")
                    conn.execute("select 3")
            assert c1.fetchone() == (1,)
            assert conn.execute("select 4").fetchone() == (4,)


def test_pgbench_extended_with_a_denied_statement_reports_the_policy_error(relay, tmp_path):
    script = tmp_path / "deny.sql"
    script.write_text("select 'forbidden';\n")
    with policy(relay, DENY_FORBIDDEN):
        r = relay.run(["pgbench", "-n", "-M", "extended", "-t", "1", "-f", str(script), dsn(relay)])
    assert "postern: denied by policy: no forbidden things here" in r.stderr


def test_terminate_ends_the_session_with_a_clear_message(relay):
    with policy(relay, DENY_FORBIDDEN):
        r = psql(relay, "-c", "select 'goodbye'")
    assert r.returncode != 0
    assert "postern: session terminated by policy: policy says goodbye" in r.stderr


def test_policy_that_loops_is_denied_and_the_session_goes_on(relay):
    with policy(relay, "function on_query(s, q) while true do end end\n"):
        conn = psycopg2.connect(dsn(relay))
        conn.autocommit = True
        try:
            t0 = time.monotonic()
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                conn.cursor().execute("select 1")
            assert time.monotonic() - t0 < 5
        finally:
            conn.close()


def test_policy_memory_bomb_is_denied_and_other_sessions_go_on(relay):
    bomb = "function on_query(s, q)\n  local t = {}\n  for i = 1, 1e9 do t[i] = string.rep('x', 4096) .. i end\nend\n"
    bystander = psycopg2.connect(dsn(relay))
    bystander.autocommit = True
    try:
        with policy(relay, bomb):
            conn = psycopg2.connect(dsn(relay))
            conn.autocommit = True
            try:
                t0 = time.monotonic()
                with pytest.raises(psycopg2.errors.InsufficientPrivilege) as e:
                    conn.cursor().execute("select 1")
                assert "the policy failed" in str(e.value)
                assert time.monotonic() - t0 < 10
            finally:
                conn.close()
        cur = bystander.cursor()
        cur.execute("select 5")
        assert cur.fetchone() == (5,)
    finally:
        bystander.close()
    assert "too much memory" in open(relay.dir + "/posternd.log").read()


def test_policy_with_a_syntax_error_is_refused_at_reload(relay):
    path = relay.env["POSTERN_POLICY_FILE"]
    with open(path) as f:
        saved = f.read()
    try:
        with open(path, "w") as f:
            f.write("function on_query(s, q)\n  return allow(\nend\n")
        r = relay.run(["posternctl", "reload"])
        assert r.returncode == 1 and "demo.lua:3:" in r.stderr
        assert relay_alive(relay), "the previous policy stays in force"
    finally:
        with open(path, "w") as f:
            f.write(saved)
        relay.run(["posternctl", "reload"])


# --- bad input ------------------------------------------------------------------------------

def front(relay):
    host, port = relay.env["POSTERN_PG_FRONT_ADDR"].rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=5)


def read_all(sock):
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except (ConnectionResetError, socket.timeout):
        return data


def tls_front(relay, cert=True):
    s = front(relay)
    s.sendall(struct.pack("!ii", 8, 80877103))
    assert s.recv(1) == b"S"
    home = relay.env["POSTERN_HOME"]
    ctx = ssl.create_default_context(cafile=f"{home}/ca.crt")
    ctx.check_hostname = False
    if cert:
        ctx.load_cert_chain(f"{home}/cert.pem", f"{home}/key.pem")
    return ctx.wrap_socket(s)


def startup(version, **params):
    body = struct.pack("!i", version) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    return struct.pack("!i", len(body) + 4) + body


def fatal_of(data):
    """The (SQLSTATE, message) of the first ErrorResponse in DATA."""
    i = data.find(b"E")
    assert i >= 0, data
    fields = dict((f[:1].decode(), f[1:].decode()) for f in data[i + 5:].split(b"\0") if f)
    return fields.get("C"), fields.get("M")


def relay_alive(relay):
    return psql(relay, "-At", "-c", "select 1").stdout.strip() == "1"


@pytest.mark.parametrize("garbage", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00\x00", b"\x80\x00\x00\x00" + b"x" * 8,
                                     b"Q\x00\x00\x00\x0dselect 1\x00"])
def test_garbage_before_startup_is_refused_and_the_relay_goes_on(relay, garbage):
    s = front(relay)
    s.sendall(garbage)
    if len(garbage) < 4:
        s.shutdown(socket.SHUT_WR)
    data = read_all(s)
    s.close()
    if data:
        assert fatal_of(data)[0] == "08P01"
    assert relay_alive(relay)


def test_truncated_startup_times_out_or_closes(relay):
    s = front(relay)
    s.sendall(struct.pack("!i", 100) + b"\x00\x03")
    s.shutdown(socket.SHUT_WR)
    assert read_all(s) == b""
    assert relay_alive(relay)


def test_plaintext_startup_is_refused_with_a_clear_fatal(relay):
    r = psql(relay, "-c", "select 1", dsn_extra={"sslmode": "disable"})
    assert r.returncode != 0
    assert "postern requires TLS with your client certificate" in r.stderr


def test_tls_without_a_client_certificate_is_refused(relay):
    s = tls_front(relay, cert=False)
    s.sendall(startup(196608, user="demo", database="pg"))
    state, msg = fatal_of(read_all(s))
    assert state == "28000" and "no client certificate" in msg


def test_certificate_from_another_ca_is_refused(relay, tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", f"{tmp_path}/k.pem", "-out", f"{tmp_path}/c.pem", "-days", "1", "-subj", "/CN=demo",
                    "-addext", "extendedKeyUsage=clientAuth"], check=True, capture_output=True)
    r = psql(relay, "-c", "select 1", dsn_extra={"sslcert": f"{tmp_path}/c.pem", "sslkey": f"{tmp_path}/k.pem"})
    assert r.returncode != 0
    assert relay_alive(relay)


def test_unknown_target_gets_3d000(relay):
    r = psql(relay, "-c", "select 1", dsn_extra={"dbname": "nope"})
    assert r.returncode != 0 and 'no PostgreSQL target is named "nope"' in r.stderr


def test_unsupported_protocol_version_is_refused(relay):
    s = tls_front(relay)
    s.sendall(startup(2 << 16, user="demo", database="pg"))
    state, msg = fatal_of(read_all(s))
    assert state == "0A000" and "unsupported frontend protocol 2.0" in msg


def test_newer_minor_version_gets_negotiate_protocol_version(relay):
    s = tls_front(relay)
    s.sendall(startup((3 << 16) | 2, user="demo", database="pg", **{"_pq_.future": "1"}))
    data = b""
    while b"Z\x00\x00\x00\x05" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    assert data.startswith(b"v")
    assert struct.unpack("!ii", data[5:13]) == (196608, 1) and b"_pq_.future\0" in data
    s.close()


def test_huge_message_length_is_a_protocol_violation(relay):
    s = tls_front(relay)
    s.sendall(startup(196608, user="demo", database="pg"))
    data = b""
    while b"Z\x00\x00\x00\x05I" not in data:
        data += s.recv(65536)
    s.sendall(b"Q" + struct.pack("!I", 0x80000000) + b"x" * 16)
    state, msg = fatal_of(read_all(s))
    assert state == "08P01"
    assert relay_alive(relay)


def test_target_that_is_down_gets_08006(relay):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with extra_target(relay, f'target "pg-down" {{ protocol = "postgres", address = "127.0.0.1:{port}", user = "app", sslmode = "require" }}'):
        r = psql(relay, "-c", "select 1", dsn_extra={"dbname": "pg-down"})
    assert r.returncode != 0
    assert 'cannot connect to target "pg-down"' in r.stderr
    assert relay_alive(relay)


def vanish_inside_a_transaction(relay, **dsn_extra):
    """A client that leaves inside a transaction (socket closed, no Terminate of its own): the
    backend must end cleanly, without "unexpected EOF ... with an open transaction", which
    it logs unless posternd says the goodbye (a Terminate at a message boundary)."""
    log = os.path.join(relay.env["POSTERN_DIR"], "pg", "postgres.log")
    c = psycopg2.connect(dsn(relay, application_name="goodbye-check", **dsn_extra))
    cur = c.cursor()
    cur.execute("select pg_backend_pid()")          # psycopg2 opened a transaction
    pid = cur.fetchone()[0]
    size = os.path.getsize(log)
    sock = socket.socket(fileno=os.dup(c.fileno()))
    sock.shutdown(socket.SHUT_RDWR)                  # the client vanishes without a word
    sock.close()
    c.close()
    with contextlib.closing(direct(relay)) as d:
        d.autocommit = True
        dc = d.cursor()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            dc.execute("select count(*) from pg_stat_activity where pid = %s", (pid,))
            if dc.fetchone()[0] == 0:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the backend outlived its client")
    with open(log, errors="replace") as f:
        f.seek(size)
        tail = f.read()
    assert f"[{pid}]" not in tail or "unexpected EOF" not in tail, tail


def test_target_gets_a_terminate_when_the_client_goes(relay):
    """posternd frees libpq's connection once it is up and says the goodbye itself."""
    vanish_inside_a_transaction(relay)


def test_a_target_without_tls_works_and_gets_a_terminate_when_the_client_goes(relay):
    """sslmode = "disable": libpq keeps the connection (there is no SSL to take over), and
    its socket is shut before PQfinish, so libpq's own Terminate can never land inside a
    message; the goodbye is posternd's, as over TLS."""
    e = relay.env
    with extra_target(relay, f'target "pg-plain" {{ protocol = "postgres", address = "127.0.0.1:{e["POSTERN_PG_PORT"]}", '
                             f'user = "app_plain", password_file = "{e["POSTERN_PG_PLAIN_PASSWORD_FILE"]}", '
                             f'database = "appdb", sslmode = "disable" }}'):
        r = psql(relay, "-At", "-c", "select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()",
                 dsn_extra={"dbname": "pg-plain"})
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "app_plain|f"           # the onward hop really is plaintext
        r = psql(relay, "-At", "-c", "select count(*) from generate_series(1, 100000)", dsn_extra={"dbname": "pg-plain"})
        assert r.returncode == 0 and r.stdout.strip() == "100000", r.stderr
        vanish_inside_a_transaction(relay, dbname="pg-plain")
    with extra_target(relay, f'target "pg-plain-tls" {{ protocol = "postgres", address = "127.0.0.1:{e["POSTERN_PG_PORT"]}", '
                             f'user = "app_plain", password_file = "{e["POSTERN_PG_PLAIN_PASSWORD_FILE"]}", '
                             f'database = "appdb", ca_file = "{e["POSTERN_TLS_CA"]}" }}'):
        r = psql(relay, "-c", "select 1", dsn_extra={"dbname": "pg-plain-tls"})
    assert r.returncode != 0                               # the sandbox lets app_plain in only without TLS
    assert relay_alive(relay)


def test_upstream_dying_mid_query_ends_that_session_only(relay):
    other = psycopg2.connect(dsn(relay))
    victim = psycopg2.connect(dsn(relay))
    try:
        vcur = victim.cursor()
        vcur.execute("select pg_backend_pid()")
        pid = vcur.fetchone()[0]
        killer = threading.Timer(1.0, lambda: direct(relay).cursor().execute("select pg_terminate_backend(%s)", (pid,)))
        killer.start()
        with pytest.raises(psycopg2.OperationalError):
            vcur.execute("select pg_sleep(20)")
        killer.join()
        ocur = other.cursor()
        ocur.execute("select 7")
        assert ocur.fetchone() == (7,)
    finally:
        other.close()
        victim.close()


def test_cancel_with_an_unknown_key_does_nothing_and_is_logged(relay):
    s = front(relay)
    s.sendall(struct.pack("!iiii", 16, 80877102, 12345, 67890))
    assert read_all(s) == b""
    time.sleep(0.2)
    assert "cancel request with an unknown key ignored" in open(relay.dir + "/posternd.log").read()
    assert relay_alive(relay)


def test_reload_that_cannot_open_a_new_listener_says_so(relay):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = relay.env["POSTERN_CONFIG"]
        with open(path) as f:
            saved = f.read()
        try:
            with open(path, "a") as f:
                f.write(f'\ntarget "busy" {{ protocol = "tcp", listen = "127.0.0.1:{port}", address = "127.0.0.1:1" }}\n')
            r = relay.run(["posternctl", "reload"])
            assert r.returncode == 1
            assert f"configuration reloaded, but cannot listen on 127.0.0.1:{port}" in r.stderr
        finally:
            with open(path, "w") as f:
                f.write(saved)
            relay.run(["posternctl", "reload"])
    assert relay_alive(relay)


# --- protocol corners a driver never uses, but an attacker may ---------------------------------

def test_function_call_is_refused_and_the_session_goes_on(relay):
    from pgraw import F, Q, Conn, error_of
    c = Conn(relay.env)
    try:
        c.send(F(2924, [b"select 1", b"f", b"f", b""]))   # query_to_xml(text, …): SQL by the back door
        state, text = error_of(c.until_ready())
        assert state == "42501" and "FunctionCall messages are not allowed" in text
        c.send(Q("select 41 + 1"))
        msgs = c.until_ready()
        assert error_of(msgs) is None and any(tp == b"D" and b"42" in body for tp, body in msgs)
    finally:
        c.close()


def test_pipelined_copy_trick_cannot_get_a_parse_past_policy(relay):
    from pgraw import B, E, P, Q, S, Conn
    no_ddl = 'function on_query(s, q) if q.kinds.ddl then return deny("no DDL") end return allow() end\n'
    with policy(relay, no_ddl):
        c = Conn(relay.env)
        try:
            c.send(Q("create temp table if not exists ct (i int)"))   # denied, fine
            c.until_ready()
            c.send(Q("copy ct from stdin") + b"c\x00\x00\x00\x04")     # CopyDone before the server asks
            c.until_ready()
            c.send(P("select * from no_such_table") + S)
            c.until_ready()
            c.send(P("create table bypass_attempt (i int)") + B() + E() + S)
            c.until_ready(timeout=5)
        finally:
            c.close()
    with psycopg2.connect(relay.env["POSTERN_PG_DIRECT_DSN"]) as conn:
        cur = conn.cursor()
        cur.execute("select count(*) from pg_class where relname = 'bypass_attempt'")
        assert cur.fetchone() == (0,)


def test_startup_settings_outside_the_allow_list_are_refused(relay):
    r = psql(relay, "-c", "select 1", dsn_extra={"options": "'-c session_replication_role=replica'"})
    assert r.returncode != 0
    assert 'the startup setting "session_replication_role" is not allowed' in r.stderr
    r = psql(relay, "-At", "-c", "show statement_timeout", dsn_extra={"options": "'-c statement_timeout=5s'"})
    assert r.returncode == 0 and r.stdout.strip() == "5s"


def test_a_statement_past_max_statement_is_classified_whole(relay):
    no_ddl = 'function on_query(s, q) if q.kinds.ddl then return deny("no DDL") end return allow() end\n'
    with policy(relay, no_ddl):
        conn = psycopg2.connect(dsn(relay))
        conn.autocommit = True
        try:
            padding = "x" * (100 * 1024)
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                conn.cursor().execute(f"select '{padding}'; create table hidden_past_the_cut (i int)")
            cur = conn.cursor()
            cur.execute(f"select length('{padding}')")
            assert cur.fetchone() == (100 * 1024,)
        finally:
            conn.close()


def test_policy_running_out_of_memory_denies_without_taking_the_relay_down(relay):
    hoarder = ("function on_query(s, q)\n  s.state.h = s.state.h or {}\n"
               "  table.insert(s.state.h, q.text .. q.text)\n  return allow()\nend\n")
    with extra_target(relay, "policy_memory = 2 * 1024 * 1024"), policy(relay, hoarder):
        conn = psycopg2.connect(dsn(relay))
        conn.autocommit = True
        denied = 0
        try:
            cur = conn.cursor()
            for i in range(80):
                try:
                    cur.execute("select %s", ("y" * 60000,))
                except psycopg2.errors.InsufficientPrivilege:
                    denied += 1
        finally:
            conn.close()
        assert denied > 0, "the memory cap was reached and denied"
    assert relay_alive(relay)


# --- a real hot standby: target_session_attrs picks the right server ----------------------------

@contextlib.contextmanager
def streaming_standby(sb):
    """A hot standby of the sandbox's PostgreSQL (pg_basebackup -R, streaming), on its own port."""
    import tempfile
    import postern_sandbox as ps

    e = sb.env
    primary_sock = os.path.join(sb.dir, "pg")
    top = tempfile.mkdtemp(prefix="postern-standby-", dir="/tmp")
    os.chmod(top, 0o755)
    data = os.path.join(top, "data")
    as_pg = ps._as_postgres_kwargs()
    if as_pg:
        os.chown(top, as_pg["user"], as_pg["group"])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = None
    try:
        r = subprocess.run([f"{ps.PG_BINDIR}/pg_basebackup", "-D", data, "-R", "-X", "stream", "--checkpoint=fast",
                            "-h", primary_sock, "-p", e["POSTERN_PG_PORT"], "-U", ps.ADMIN_LOGIN],
                           capture_output=True, text=True, timeout=120, **as_pg)
        assert r.returncode == 0, r.stderr
        tls = os.path.join(sb.dir, "tls")
        cmd = [f"{ps.PG_BINDIR}/postgres", "-D", data, "-c", f"port={port}", "-c", "listen_addresses=127.0.0.1",
               "-c", f"unix_socket_directories={top}", "-c", f"hba_file={primary_sock}/pg_hba.conf",
               "-c", "ssl=on", "-c", f"ssl_cert_file={tls}/server.crt", "-c", f"ssl_key_file={tls}/postgres-server.key",
               "-c", f"ssl_ca_file={tls}/ca.crt", "-c", "fsync=off", "-c", "hot_standby=on"]
        with open(os.path.join(top, "postgres.log"), "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=top,
                                    start_new_session=True, **as_pg)

        def in_recovery():
            r = subprocess.run([f"{ps.PG_BINDIR}/psql", "-X", "-At", "-h", top, "-p", str(port), "-U", ps.ADMIN_LOGIN,
                                "-d", "postgres", "-c", "select pg_is_in_recovery()"], capture_output=True, text=True,
                               timeout=10)
            return r.returncode == 0 and r.stdout.strip() == "t"

        deadline = time.monotonic() + 30
        while not in_recovery():
            assert proc.poll() is None, open(os.path.join(top, "postgres.log")).read()[-2000:]
            assert time.monotonic() < deadline, "the standby did not come up"
            time.sleep(0.2)
        yield port
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)     # immediate shutdown
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        subprocess.run(["rm", "-rf", top])


def test_target_session_attrs_choose_between_a_real_primary_and_hot_standby(relay):
    e = relay.env
    primary = e["POSTERN_PG_PORT"]
    common = (f'user = "app", password_file = "{e["POSTERN_PG_APP_PASSWORD_FILE"]}", database = "appdb", '
              f'ca_file = "{e["POSTERN_TLS_CA"]}"')
    with streaming_standby(relay) as standby:
        targets = (f'target "pg-rw" {{ protocol = "postgres", address = "127.0.0.1:{standby}, 127.0.0.1:{primary}", '
                   f'{common}, target_session_attrs = "read-write" }}\n'
                   f'target "pg-ro" {{ protocol = "postgres", address = "127.0.0.1:{primary}, 127.0.0.1:{standby}", '
                   f'{common}, target_session_attrs = "standby" }}')
        with extra_target(relay, targets):
            rw = psql(relay, "-At", "-c", "select pg_is_in_recovery(), inet_server_port()", dsn_extra={"dbname": "pg-rw"})
            ro = psql(relay, "-At", "-c", "select pg_is_in_recovery(), inet_server_port()", dsn_extra={"dbname": "pg-ro"})
            # A write through the standby-bound target is refused by PostgreSQL itself.
            wr = psql(relay, "-At", "-c", "create temp table t (x int)", dsn_extra={"dbname": "pg-ro"})
    assert rw.returncode == 0, rw.stderr
    assert rw.stdout.strip() == f"f|{primary}"          # the standby listed first is skipped
    assert ro.returncode == 0, ro.stderr
    assert ro.stdout.strip() == f"t|{standby}"          # the primary listed first is skipped
    assert wr.returncode != 0 and "read-only transaction" in wr.stderr
