"""Tests of tests/sandbox itself: each server is reachable the way the
relay and the integration tests will reach it, and up/down behave.

Also a smoke test of posternd through the sandbox config, skipped until the
relay is built.
"""

import os
import shlex
import subprocess

import psycopg2
import pymysql
import pytest

import postern_sandbox
from conftest import REPO_ROOT, SANDBOX_CLI


def cli(*args):
    return subprocess.run(["/usr/bin/python3", SANDBOX_CLI, *args], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def is_running(pid):
    """True if `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


def pids_with_in_cmdline(text):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if os.fsencode(text) in f.read() and is_running(int(entry)):
                    found.append(int(entry))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return found


def test_psql_direct_dsn_connects_over_verified_tls(sandbox):
    r = sandbox.run(["psql", "-X", "-At", sandbox.env["POSTERN_PG_DIRECT_DSN"], "-c",
                     "select ssl from pg_stat_ssl where pid = pg_backend_pid()"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "t"
    assert "sslmode=verify-full" in sandbox.env["POSTERN_PG_DIRECT_DSN"]


def test_mariadb_cli_direct_args_connect_over_tls(sandbox):
    r = sandbox.run('mariadb $POSTERN_MYSQL_DIRECT_ARGS -N -B -e "SHOW STATUS LIKE \'Ssl_cipher\'"')
    assert r.returncode == 0, r.stderr
    name, cipher = r.stdout.strip().split("\t")
    assert name == "Ssl_cipher" and cipher


def test_pg_app_login_works_with_its_password(sandbox):
    conn = psycopg2.connect(host="127.0.0.1", port=int(sandbox.env["POSTERN_PG_PORT"]),
                            user="app", dbname="appdb",
                            password=sandbox.secret("POSTERN_PG_APP_PASSWORD_FILE"),
                            sslmode="verify-full", sslrootcert=sandbox.env["POSTERN_TLS_CA"])
    try:
        with conn.cursor() as cur:
            cur.execute("select current_user, current_database(), "
                        "(select ssl from pg_stat_ssl where pid = pg_backend_pid())")
            assert cur.fetchone() == ("app", "appdb", True)
    finally:
        conn.close()


def test_mysql_app_login_works_with_its_password_over_tls(sandbox):
    conn = pymysql.connect(host="127.0.0.1", port=int(sandbox.env["POSTERN_MYSQL_PORT"]),
                           user="app", database="appdb",
                           password=sandbox.secret("POSTERN_MYSQL_APP_PASSWORD_FILE"),
                           ssl={"ca": sandbox.env["POSTERN_TLS_CA"]}, ssl_verify_identity=True)
    try:
        with conn.cursor() as cur:
            cur.execute("select current_user(), database()")
            assert cur.fetchone() == ("app@127.0.0.1", "appdb")
            cur.execute("show status like 'Ssl_cipher'")
            assert cur.fetchone()[1]
            cur.execute("create table t (id int primary key)")
            cur.execute("drop table t")
    finally:
        conn.close()


def test_postgres_refuses_tcp_without_tls(sandbox):
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        psycopg2.connect(host="127.0.0.1", port=int(sandbox.env["POSTERN_PG_PORT"]),
                         user="app", dbname="appdb", sslmode="disable",
                         password=sandbox.secret("POSTERN_PG_APP_PASSWORD_FILE"))


def test_mariadb_refuses_tcp_without_tls(sandbox):
    # MariaDB 10.11 reports require_secure_transport as a plain 1045 "Access
    # denied", though the password is right (it works over TLS, above).
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        pymysql.connect(host="127.0.0.1", port=int(sandbox.env["POSTERN_MYSQL_PORT"]),
                        user="app", database="appdb",
                        password=sandbox.secret("POSTERN_MYSQL_APP_PASSWORD_FILE"))


def test_ssh_direct_args_run_a_command(sandbox):
    r = sandbox.run("ssh $POSTERN_SSH_DIRECT_ARGS true")
    assert r.returncode == 0, r.stderr


def test_env_file_matches_the_returned_env(sandbox):
    r = sandbox.run(["bash", "-c", f". {shlex.quote(sandbox.dir)}/env && env -0"], env={})
    exported = dict(line.split("=", 1) for line in r.stdout.split("\0") if "=" in line)
    for key, value in sandbox.env.items():
        assert exported.get(key) == value, key


def test_up_on_a_directory_in_use_fails_clearly(sandbox):
    r = cli("up", "--no-relay", sandbox.dir)
    assert r.returncode == 1
    assert "already holds a running sandbox" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert all(alive for _, alive in postern_sandbox.status(sandbox.dir).values())


def test_down_leaves_no_process_behind(sandbox_dir):
    dir = sandbox_dir
    args = [] if postern_sandbox.relay_built(REPO_ROOT) else ["--no-relay"]
    try:
        r = cli("up", *args, dir)
        assert r.returncode == 0, r.stderr
        pids = {name: pid for name, (pid, _) in postern_sandbox.status(dir).items()}
        assert {"postgres", "mariadbd", "sshd"} <= set(pids)
    finally:
        r = cli("down", dir)
    assert r.returncode == 0, r.stderr
    assert [name for name, pid in pids.items() if is_running(pid)] == []
    assert pids_with_in_cmdline(dir) == []
    assert not os.path.exists(os.path.join(dir, "pids"))
    assert os.path.exists(os.path.join(dir, "pg", "postgres.log"))


def test_down_with_nothing_running_is_a_no_op(tmp_path):
    r = cli("down", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


def test_up_without_posternd_built_says_to_run_make(sandbox_dir, tmp_path):
    dir = sandbox_dir
    r = subprocess.run(["/usr/bin/python3", SANDBOX_CLI, "up", dir], capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, POSTERN_BUILD_DIR=str(tmp_path)))
    assert r.returncode == 1
    assert "run `make`" in r.stderr
    assert pids_with_in_cmdline(dir) == []


def test_posternctl_status_answers_on_the_admin_socket(relay):
    r = relay.run(["posternctl", "-s", relay.env["POSTERN_ADMIN_SOCKET"], "status"])
    assert r.returncode == 0, r.stderr


def test_tcp_passthrough_reaches_postgres(relay):
    host, port = relay.env["POSTERN_PG_TCP_ADDR"].split(":")
    conn = psycopg2.connect(host=host, port=int(port), user="app", dbname="appdb",
                            password=relay.secret("POSTERN_PG_APP_PASSWORD_FILE"),
                            sslmode="verify-full", sslrootcert=relay.env["POSTERN_TLS_CA"])
    try:
        with conn.cursor() as cur:
            cur.execute("select 1")
            assert cur.fetchone() == (1,)
    finally:
        conn.close()


def test_tcp_passthrough_reaches_sshd(relay):
    port = relay.env["POSTERN_SSH_TCP_ADDR"].split(":")[1]
    args = relay.env["POSTERN_SSH_DIRECT_ARGS"].replace(
        f"-p {relay.env['POSTERN_SSH_PORT']} ", f"-p {port} ")
    r = relay.run(f"ssh {args} true")
    assert r.returncode == 0, r.stderr


def test_demo_user_is_logged_in_with_private_credential_files(relay):
    home = relay.env["POSTERN_HOME"]
    for name in ("cert.pem", "key.pem", "ca.crt", "device.key", "id_postern", "id_postern-cert.pub"):
        path = os.path.join(home, name)
        assert os.stat(path).st_mode & 0o077 == 0, name
    assert relay.env["POSTERN_API_URL"].startswith("https://127.0.0.1:")
    r = relay.run(["postern", "status"])
    assert r.returncode == 0 and "demo" in r.stdout


def test_pg_dsn_goes_through_the_relay_as_the_demo_user(relay):
    r = relay.run('psql "$POSTERN_PG_DSN" -At -c "select 1"')
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"
    assert 'user=demo' in open(os.path.join(relay.dir, "posternd.log")).read()


def test_demo_certificate_logs_in_to_sshd_that_trusts_the_relay_ca(relay):
    home = relay.env["POSTERN_HOME"]
    r = relay.run(f"ssh -F none -i {home}/id_postern -o IdentitiesOnly=yes "
                  f"-o UserKnownHostsFile=$POSTERN_DIR/ssh/known_hosts -o BatchMode=yes "
                  f"-p $POSTERN_SSH_PORT $POSTERN_SSH_LOGIN@127.0.0.1 echo cert-ok")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "cert-ok"


def test_policy_file_is_the_demo_roles_policy(relay):
    path = relay.env["POSTERN_POLICY_FILE"]
    assert os.path.exists(path)
    roles = open(os.path.join(relay.dir, "roles", "demo.lua")).read()
    assert path in roles
