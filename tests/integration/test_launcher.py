"""postern, the engineer's launcher, end to end: login with an invite, status, ls, psql, env
and connect against the sandbox's real posternd and PostgreSQL, and the one-line failures
(expired or missing credentials, a target that is not yours, an unreachable relay, a target
that is down), each with its own exit status.

Most tests use the sandbox's logged-in demo home; a test that must break it works on a copy.
A second, small posternd of this module's own (`mini`) serves what the sandbox has not: roles
that grant some targets and not others, a tcp target with TLS and a PostgreSQL target that is
down. It reaches the sandbox's PostgreSQL server and is stopped at the end of the module.
"""

import contextlib
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import threading
import time

import psycopg2
import pytest

from apiclient import Api
from relayutil import SANITIZER_RE, EchoServer, Relay, free_port, recv_exactly

EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_LOGGED_IN, EXIT_NOT_ALLOWED = 1, 2, 3, 4, 5
COMMANDS = ["login", "status", "logout", "ls", "psql", "env", "connect"]
EXPIRED_LINE = re.compile(r"^postern: not logged in \(credentials expired at [^)]+\); run postern login\n$")


def run(sb, cmd, home=None, **kw):
    """Run CMD as Sandbox.run does, with POSTERN_HOME set to HOME when given."""
    env = dict(os.environ, **sb.env)
    if home is not None:
        env["POSTERN_HOME"] = str(home)
    if isinstance(cmd, str):
        cmd = ["bash", "-c", cmd]
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, **kw)


def postern(sb, *args, home=None, **kw):
    """Run the launcher in the sandbox's environment (HOME: another POSTERN_HOME)."""
    return run(sb, ["postern", *args], home=home, **kw)


def psql_at(sb, conninfo, sql, **kw):
    """psql -XAt with CONNINFO only: no certificate options, nothing from ~/.psqlrc."""
    return run(sb, ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", conninfo, "-c", sql], **kw)


def copy_home(sb, tmp_path, name="home"):
    """A private copy of the demo user's logged-in home, for a test that must break it."""
    dst = os.path.join(str(tmp_path), name)
    shutil.copytree(sb.env["POSTERN_HOME"], dst)
    os.chmod(dst, 0o700)
    return dst


def edit_json(path, **changes):
    with open(path) as f:
        doc = json.load(f)
    doc.update(changes)
    with open(path, "w") as f:
        json.dump(doc, f)


def expire(home):
    """Make the session in HOME one that ended a minute ago."""
    edit_json(os.path.join(home, "session.json"), expires=int(time.time()) - 60)


def invite(sb, user, socket_path=None):
    args = ["posternctl"] + (["-s", socket_path] if socket_path else []) + ["users", "invite", user]
    r = sb.run(args)
    assert r.returncode == 0, r.stderr
    return next(w for w in r.stdout.split() if w.count(".") == 1 and len(w) > 40)


class Connect:
    """`postern connect ARGS` running in the background until the block ends (then Ctrl-C)."""

    def __init__(self, sb, *args, home=None):
        env = dict(os.environ, **sb.env)
        if home is not None:
            env["POSTERN_HOME"] = str(home)
        self.proc = subprocess.Popen(["postern", "connect", *args], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr = ""
        self.first = self._line(10)
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.first)
        if m is None:
            self.close()
            raise AssertionError(f"postern connect did not start: {self.first!r} {self.stderr!r}")
        self.port = int(m.group(1))

    def _line(self, timeout):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
        sel.close()
        return self.proc.stdout.readline() if ready else ""

    def conninfo(self, dbname="pg", **extra):
        return " ".join([f"host=127.0.0.1 port={self.port} dbname={dbname} user=demo sslmode=disable"] +
                        [f"{k}={v}" for k, v in extra.items()])

    def close(self):
        """Ctrl-C; the exit status. stderr is kept in self.stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, self.stderr = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, self.stderr = self.proc.communicate()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        rc = self.close()
        if exc_type is None:
            assert rc == 0 and not SANITIZER_RE.search(self.stderr), (rc, self.stderr)


# ---------------------------------------------------------------- help and usage

@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(relay, cmd):
    r = postern(relay, cmd, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: postern {cmd}"), r.stdout


def test_postern_help_names_every_command_and_exit_status(relay):
    r = postern(relay, "--help")
    assert r.returncode == 0
    for cmd in COMMANDS:
        assert f"\n  {cmd}" in r.stdout, cmd
    assert "4 not logged in" in r.stdout and "5 target not yours" in r.stdout


def test_bash_completion_offers_commands_and_saved_target_names(relay):
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "client", "postern.bash")
    assert postern(relay, "ls").returncode == 0   # saves the list
    r = relay.run(f"""
        source {script}
        COMP_WORDS=(postern ps); COMP_CWORD=1; _postern; echo "1:${{COMPREPLY[*]}}"
        COMP_WORDS=(postern psql ""); COMP_CWORD=2; _postern; echo "2:${{COMPREPLY[*]}}"
        COMP_WORDS=(postern connect pg --); COMP_CWORD=3; _postern; echo "3:${{COMPREPLY[*]}}"
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["1:psql", "2:pg", "3:--port --bind --help"]


# ---------------------------------------------------------------- login, status, ls

def test_login_with_an_invite_enrols_a_fresh_home(relay, tmp_path):
    home = str(tmp_path / "fresh")
    r = postern(relay, "login", relay.env["POSTERN_API_URL"], "--invite", invite(relay, "demo"),
                "--device-name", "launcher-test", home=home)
    assert r.returncode == 0, r.stderr
    assert "enrolled this device" in r.stdout and "logged in to" in r.stdout and "as demo" in r.stdout
    r = postern(relay, "status", home=home)
    assert r.returncode == 0, r.stderr
    assert "user:     demo" in r.stdout and r.stderr == ""
    r = postern(relay, "psql", "pg", "--", "-At", "-c", "select current_user", home=home)
    assert (r.returncode, r.stdout) == (0, "app\n"), r.stderr


def test_status_warns_when_under_15_minutes_are_left(relay, tmp_path):
    home = copy_home(relay, tmp_path)
    edit_json(os.path.join(home, "session.json"), expires=int(time.time()) + 600)
    r = postern(relay, "status", home=home)
    assert r.returncode == 0
    assert re.search(r"warning: expires in (10|11) minutes; run postern login to renew", r.stderr), r.stderr


def test_ls_lists_the_granted_targets_with_protocol_login_and_address(relay):
    r = postern(relay, "ls")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["TARGET", "PROTOCOL", "LOGIN", "ROLE", "ADDRESS"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["pg"] == ["postgres", "app", "demo", relay.env["POSTERN_PG_FRONT_ADDR"]]
    # The tcp targets are benchmark_plaintext (no identity), mysql and ssh have no front yet.
    assert set(rows) == {"pg"}


def test_ls_json_and_names_for_scripts(relay):
    doc = json.loads(postern(relay, "ls", "--json").stdout)
    host, port = relay.env["POSTERN_PG_FRONT_ADDR"].rsplit(":", 1)
    assert doc["user"] == "demo" and doc["relay"] == relay.env["POSTERN_API_URL"]
    assert doc["targets"] == [{"name": "pg", "protocol": "postgres", "login": "app", "role": "demo",
                               "host": host, "port": port}]
    assert postern(relay, "ls", "--names").stdout == "pg\n"


# ---------------------------------------------------------------- psql and env

def test_psql_runs_through_the_relay_with_the_session_certificate(relay):
    r = postern(relay, "psql", "pg", "--", "-c", "select 1")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^\s+1\s*$", r.stdout, re.M), r.stdout
    r = postern(relay, "psql", "pg", "--", "-XAt", "-c", "select current_user, current_database()")
    assert (r.returncode, r.stdout) == (0, "app|appdb\n"), r.stderr


def test_psql_target_slash_database_picks_another_database(relay):
    r = postern(relay, "psql", "pg/postgres", "--", "-XAt", "-c", "select current_database()")
    assert (r.returncode, r.stdout) == (0, "postgres\n"), r.stderr


def test_psql_exit_status_is_psqls_once_it_runs(relay):
    r = postern(relay, "psql", "pg", "--", "-X", "-v", "ON_ERROR_STOP=1", "-c", "select * from no_such_table")
    assert r.returncode == 1 and 'relation "no_such_table" does not exist' in r.stderr


def test_env_prints_exports_that_eval_into_a_working_psql(relay):
    r = postern(relay, "env", "pg")
    assert r.returncode == 0, r.stderr
    names = [m.group(1) for m in re.finditer(r"^export (PG[A-Z]+)=", r.stdout, re.M)]
    assert names == ["PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT",
                     "PGSSLKEY"]
    assert "export PGSSLMODE='verify-full'" in r.stdout
    r = relay.run('eval "$(postern env pg)" && psql -XAt -c "select current_user"')
    assert (r.returncode, r.stdout) == (0, "app\n"), r.stderr


# ---------------------------------------------------------------- connect

def test_connect_serves_psql_without_certificate_options(relay):
    port = free_port()
    with Connect(relay, "pg", "--port", str(port)) as c:
        assert c.port == port
        assert c.first == (f"listening on 127.0.0.1:{port} for pg (postgres); connect with: psql "
                           f"'host=127.0.0.1 port={port} dbname=pg user=demo sslmode=disable'\n")
        r = psql_at(relay, f"host=127.0.0.1 port={port} dbname=pg user=demo sslmode=disable",
                    "select current_user")
        assert (r.returncode, r.stdout) == (0, "app\n"), r.stderr
        # libpq's default sslmode=prefer asks for TLS first and goes on in plaintext on 'N'.
        r = psql_at(relay, f"host=127.0.0.1 port={port} dbname=whatever user=demo", "select current_database()")
        assert (r.returncode, r.stdout) == (0, "appdb\n"), r.stderr
    assert c.proc.returncode == 0
    assert f"stopped listening on 127.0.0.1:{port} (2 connections served)" in c.stderr


def test_connect_picks_a_free_port_and_carries_many_sessions(relay):
    with Connect(relay, "pg") as c:
        results, errors = [], []

        def session(i):
            try:
                with psycopg2.connect(c.conninfo()) as conn, conn.cursor() as cur:
                    # 4 MB each way through the tunnel, eight at a time: the buffers stay bounded.
                    cur.execute("select count(*), sum(length(x)) from (select repeat(%s, 4000) as x "
                                "from generate_series(1, 1000)) s", (str(i % 10),))
                    results.append(cur.fetchone())
                    cur.execute("select length(%s)", ("y" * (4 << 20),))
                    results.append(cur.fetchone())
                conn.close()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=session, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert sorted(results) == sorted([(1000, 4_000_000)] * 8 + [(4 << 20,)] * 8)


def test_connect_passes_a_cancel_to_the_server(relay):
    with Connect(relay, "pg") as c:
        conn = psycopg2.connect(c.conninfo())
        try:
            timer = threading.Timer(0.5, conn.cancel)
            timer.start()
            start = time.monotonic()
            with pytest.raises(psycopg2.extensions.QueryCanceledError):
                conn.cursor().execute("select pg_sleep(20)")
            assert time.monotonic() - start < 10
        finally:
            conn.close()


def test_connect_reads_the_credentials_again_for_each_connection(relay, tmp_path):
    home = copy_home(relay, tmp_path)
    session = os.path.join(home, "session.json")
    with open(session) as f:
        saved = f.read()
    with Connect(relay, "pg", home=home) as c:
        assert psql_at(relay, c.conninfo(), "select 1").stdout == "1\n"
        expire(home)
        r = psql_at(relay, c.conninfo(), "select 1")
        assert r.returncode != 0
        assert re.search(r"FATAL:  postern: not logged in \(credentials expired at [^)]+\); run postern login, "
                         r"then connect again", r.stderr), r.stderr
        with open(session, "w") as f:   # as a new postern login would
            f.write(saved)
        r = psql_at(relay, c.conninfo(), "select 2")
        assert (r.returncode, r.stdout) == (0, "2\n"), r.stderr
        assert c.proc.poll() is None
    assert re.search(r"connection 2 from 127\.0\.0\.1:\d+: not logged in \(credentials expired at", c.stderr)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another local user")
def test_connect_refuses_connections_of_other_local_users(relay):
    with Connect(relay, "pg") as c:
        r = relay.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "psql", "-X", "-At",
                       c.conninfo(), "-c", "select 1"])
        assert r.returncode != 0
        assert "postern: refused: this connection was made by user id 65534" in r.stderr, r.stderr
        assert psql_at(relay, c.conninfo(), "select 1").stdout == "1\n"


def test_connect_listens_on_loopback_only(relay):
    r = postern(relay, "connect", "pg", "--bind", "0.0.0.0")
    assert r.returncode == EXIT_USAGE
    assert r.stderr == ("postern: postern connect listens on loopback only (127.0.0.1 or ::1), not 0.0.0.0: "
                        "whoever reaches the port would act with your credentials\n")


def test_connect_to_a_port_in_use_says_so(relay):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = postern(relay, "connect", "pg", "--port", str(s.getsockname()[1]))
    assert r.returncode == EXIT_ERROR
    assert "Address already in use; pick another --port" in r.stderr


# ---------------------------------------------------------------- failures, one line each

@pytest.mark.parametrize("args", [["ls"], ["psql", "pg", "--", "-c", "select 1"], ["env", "pg"], ["connect", "pg"]])
def test_expired_credentials_are_one_line_and_exit_4(relay, tmp_path, args):
    home = copy_home(relay, tmp_path)
    expire(home)
    r = postern(relay, *args, home=home)
    assert r.returncode == EXIT_NOT_LOGGED_IN
    assert EXPIRED_LINE.match(r.stderr), r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("args", [["ls"], ["psql", "pg"], ["env", "pg"], ["connect", "pg"]])
def test_missing_credentials_exit_4(relay, tmp_path, args):
    r = postern(relay, *args, home=tmp_path / "empty")
    assert r.returncode == EXIT_NOT_LOGGED_IN
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("postern: not logged in (")
    assert "run postern login" in r.stderr


def test_logged_out_session_exits_4(relay, tmp_path):
    home = copy_home(relay, tmp_path)
    assert postern(relay, "logout", home=home).returncode == 0
    r = postern(relay, "psql", "pg", home=home)
    assert (r.returncode, r.stderr) == (EXIT_NOT_LOGGED_IN, "postern: not logged in; run postern login\n")


@pytest.mark.parametrize("args", [["psql", "nosuch"], ["env", "nosuch"], ["connect", "nosuch"],
                                  ["psql", "pg-tcp"]])
def test_target_not_granted_exits_5(relay, args):
    r = postern(relay, *args)
    assert r.returncode == EXIT_NOT_ALLOWED
    assert r.stderr == (f'postern: "{args[1]}" is not among the targets you may reach (postern ls lists '
                        f"them); check the name, or ask your admin for access\n")


@pytest.mark.parametrize("args", [["ls"], ["psql", "pg", "--", "-c", "select 1"], ["env", "pg"], ["connect", "pg"]])
def test_unreachable_relay_exits_3(relay, tmp_path, args):
    home = copy_home(relay, tmp_path)
    closed = free_port()
    edit_json(os.path.join(home, "relay.json"), url=f"https://127.0.0.1:{closed}")
    r = postern(relay, *args, home=home)
    assert r.returncode == EXIT_UNREACHABLE
    assert r.stderr == (f"postern: cannot reach the relay at https://127.0.0.1:{closed}: Connection refused; "
                        f"check the URL and that the relay is up\n")


def test_unreachable_relay_ls_shows_the_saved_list_with_a_warning(relay, tmp_path):
    home = copy_home(relay, tmp_path)
    assert postern(relay, "ls", home=home).returncode == 0
    closed = f"https://127.0.0.1:{free_port()}"
    edit_json(os.path.join(home, "relay.json"), url=closed)
    edit_json(os.path.join(home, "targets.json"), url=closed, fetched=int(time.time()) - 300)
    r = postern(relay, "ls", home=home)
    assert r.returncode == 0
    assert "warning: the relay cannot be reached; this list is the one it gave 5 minutes ago" in r.stderr
    assert r.stdout.splitlines()[1].split()[:2] == ["pg", "postgres"]


# ---------------------------------------------------------------- the targets API

def test_targets_api_without_a_certificate_is_401(relay):
    api = Api(int(relay.env["POSTERN_API_URL"].rsplit(":", 1)[1]),
              ca_file=os.path.join(relay.env["POSTERN_HOME"], "ca.crt"))
    status, reply = api.call("GET", "/v1/targets")
    assert status == 401 and reply["code"] == "no_certificate" and "run postern login" in reply["error"]
    status, reply = api.call("POST", "/v1/targets", {})
    assert status == 405


def test_targets_api_with_the_session_certificate(relay):
    home = relay.env["POSTERN_HOME"]
    api = Api(int(relay.env["POSTERN_API_URL"].rsplit(":", 1)[1]), ca_file=os.path.join(home, "ca.crt"))
    api.ctx.load_cert_chain(os.path.join(home, "cert.pem"), os.path.join(home, "key.pem"))
    status, reply = api.call("GET", "/v1/targets")
    assert status == 200, reply
    assert reply["user"] == "demo" and reply["expires"] > time.time()
    assert reply["targets"] == [{"name": "pg", "protocol": "postgres", "login": "app", "role": "demo"}]
    assert reply["relay"] == {"postgres": relay.env["POSTERN_PG_FRONT_ADDR"]}
    assert reply["api_url"] == relay.env["POSTERN_API_URL"]


# ---------------------------------------------------------------- a relay of our own

MINI_ROLES = """
role "dev" { members = { "lina" }, targets = { "pg", "pg-down", "echo" }, ttl = "1h" }
role "dba" { members = { "omar" }, targets = { "*" }, ttl = "1h", logins = { postgres = "postern_admin" } }
"""


class Mini:
    """A posternd with targets and roles of this module's own, and lina logged in to it."""

    def __init__(self, sb, tmp):
        self.sb = sb
        self.echo = EchoServer()
        self.api_port, self.front_port, self.echo_port = free_port(), free_port(), free_port()
        pg = f'127.0.0.1:{sb.env["POSTERN_PG_PORT"]}'
        pg_fields = (f'database = "appdb", user = "app", password_file = "{sb.env["POSTERN_PG_APP_PASSWORD_FILE"]}", '
                     f'ca_file = "{sb.env["POSTERN_TLS_CA"]}"')
        targets = "".join([
            f'target "pg" {{ protocol = "postgres", address = "{pg}", {pg_fields} }}\n',
            f'target "pg-secret" {{ protocol = "postgres", address = "{pg}", {pg_fields} }}\n',
            f'target "pg-down" {{ protocol = "postgres", address = "127.0.0.1:{free_port()}", {pg_fields} }}\n',
            Relay.tcp_target("echo", self.echo_port, self.echo.port, plaintext=False),
            Relay.tcp_target("bench", free_port(), self.echo.port, plaintext=True),
        ])
        self.relay = Relay(Relay.config(targets, roles_dir='"roles"', api_listen=f'"127.0.0.1:{self.api_port}"',
                                        listen=f'{{ postgres = "127.0.0.1:{self.front_port}" }}'))
        self.write_roles(MINI_ROLES)
        self.relay.start()
        self.url = f"https://127.0.0.1:{self.api_port}"
        self.home = os.path.join(tmp, "lina")
        r = self.postern("login", self.url, "--invite", self.invite("lina"))
        assert r.returncode == 0, r.stderr

    def write_roles(self, text):
        os.makedirs(os.path.join(self.relay.dir, "roles"), exist_ok=True)
        with open(os.path.join(self.relay.dir, "roles", "roles.lua"), "w") as f:
            f.write(text)

    def invite(self, user):
        return invite(self.sb, user, self.relay.admin_socket)

    def postern(self, *args, **kw):
        return postern(self.sb, *args, home=self.home, **kw)

    def close(self):
        self.relay.cleanup()
        self.echo.close()


@pytest.fixture(scope="module")
def mini(sandbox, tmp_path_factory):
    if not sandbox.relay:
        pytest.skip("posternd is not built; run `make` first")
    m = Mini(sandbox, str(tmp_path_factory.mktemp("launcher")))
    yield m
    m.close()


@contextlib.contextmanager
def roles(mini, text):
    """Put role scripts TEXT in force on the mini relay for the block."""
    mini.write_roles(text)
    mini.relay.ctl("reload")
    try:
        yield
    finally:
        mini.write_roles(MINI_ROLES)
        mini.relay.ctl("reload")


def test_ls_lists_what_the_role_scripts_grant_and_nothing_else(mini):
    r = mini.postern("ls")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines()[1:]}
    assert rows == {
        "pg": ["postgres", "app", "dev", f"127.0.0.1:{mini.front_port}"],
        "pg-down": ["postgres", "app", "dev", f"127.0.0.1:{mini.front_port}"],
        "echo": ["tcp", "-", "dev", f"127.0.0.1:{mini.echo_port}"],
    }


def test_ls_follows_a_role_change_at_once(mini):
    with roles(mini, MINI_ROLES.replace('"pg", "pg-down", "echo"', '"pg"')):
        r = mini.postern("ls", "--names")
        assert (r.returncode, r.stdout) == (0, "pg\n"), r.stderr
        # The saved list is fresh, but a target missing from it is asked about again.
        r = mini.postern("connect", "echo")
        assert r.returncode == EXIT_NOT_ALLOWED
    with roles(mini, MINI_ROLES.replace('"pg", "pg-down", "echo"', '"echo"')):
        assert mini.postern("ls", "--names").stdout == "echo\n"
        r = mini.postern("psql", "pg", "--", "-c", "select 1")
        assert r.returncode == EXIT_NOT_ALLOWED and r.stderr.startswith('postern: "pg" is not among the targets')
    assert mini.postern("ls", "--names").stdout == "pg\npg-down\necho\n"


def test_target_that_another_role_grants_exits_5(mini):
    for args in (["psql", "pg-secret"], ["env", "pg-secret"], ["connect", "pg-secret"], ["connect", "bench"]):
        r = mini.postern(*args)
        assert r.returncode == EXIT_NOT_ALLOWED, (args, r.stderr)
        assert r.stderr.count("\n") == 1


def test_psql_through_the_minis_front(mini):
    r = mini.postern("psql", "pg", "--", "-XAt", "-c", "select current_user")
    assert (r.returncode, r.stdout) == (0, "app\n"), r.stderr


def test_target_down_psql_says_so_and_fails(mini):
    r = mini.postern("psql", "pg-down", "--", "-X", "-c", "select 1")
    assert r.returncode == 2
    assert 'cannot connect to target "pg-down"' in r.stderr, r.stderr


def test_target_down_connect_says_so_on_its_own_line(mini):
    with Connect(mini.sb, "pg-down", home=mini.home) as c:
        r = psql_at(mini.sb, c.conninfo("pg-down"), "select 1")
        assert r.returncode != 0 and 'cannot connect to target "pg-down"' in r.stderr
    assert re.search(r"postern: connection 1 from 127\.0\.0\.1:\d+: target pg-down is down: cannot connect to "
                     r'target "pg-down"', c.stderr), c.stderr


def test_connect_carries_a_tcp_target_over_tls(mini):
    with Connect(mini.sb, "echo", home=mini.home) as c:
        assert c.first == f"listening on 127.0.0.1:{c.port} for echo (tcp); point your client at 127.0.0.1:{c.port}\n"
        data = os.urandom(1 << 20)
        with socket.create_connection(("127.0.0.1", c.port), timeout=10) as s:
            sender = threading.Thread(target=s.sendall, args=(data,))
            sender.start()
            assert recv_exactly(s, len(data)) == data
            sender.join()


def test_locked_user_gets_the_relays_reason(mini):
    mini.relay.ctl("users", "lock", "lina", "--reason", "laptop lost")
    try:
        r = mini.postern("ls")
        assert r.returncode == EXIT_ERROR
        assert r.stderr == ("postern: the relay refused to list your targets: user lina is locked (laptop lost); "
                            "ask an administrator\n")
    finally:
        mini.relay.ctl("users", "unlock", "lina")
    assert mini.postern("ls").returncode == 0
