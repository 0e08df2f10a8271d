"""Postern test sandbox: real PostgreSQL, MariaDB, sshd and posternd on loopback.

`up(dir)` builds a throwaway world in one directory: a test CA and server
certificate, a PostgreSQL 15 cluster, a MariaDB server and an sshd, each with
TLS (or host keys) and the logins the integration tests and the demo need,
then a posternd configured with one target per server. It writes DIR/env (a
shell file) and returns the same variables as a dict. `down(dir)` stops every
process it started and keeps the files, so logs can be read afterwards.

Every process pid is recorded in DIR/pids as soon as it starts, so `down`
can clean up even after a failed or interrupted `up`. Python 3 standard
library only; run by Debian's /usr/bin/python3.
"""

import contextlib
import fcntl
import json
import os
import shlex
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time

START_TIMEOUT = 30.0      # seconds each server gets to accept connections
RELAY_TIMEOUT = 15.0      # seconds posternd gets to answer on its admin socket
STOP_TIMEOUT = 10.0       # seconds each process gets to exit before SIGKILL
POLL_INTERVAL = 0.05
LOG_TAIL_LINES = 40
SOCKET_PATH_MAX = 107     # sun_path is 108 bytes including the NUL

PG_BINDIR = os.environ.get("POSTERN_PG_BINDIR", "/usr/lib/postgresql/15/bin")
SSHD = "/usr/sbin/sshd"
MARIADBD = "/usr/sbin/mariadbd"
ADMIN_LOGIN = "postern_admin"
APP_LOGIN = "app"
APP_DATABASE = "appdb"

# down() stops processes in this order; the relay goes first so that it does
# not see its targets vanish under live sessions.
STOP_ORDER = ["posternd", "sshd", "mariadbd", "postgres"]

# Directory entries that up() owns inside DIR; a stale sandbox's copies are
# removed before a new one is built. Anything else in DIR is left alone.
OWNED_ENTRIES = ["tls", "secrets", "pg", "mysql", "ssh", "state", "env", "home", "roles", "policies",
                 "posternd.lua", "posternd.log", "admin.sock", "pids", "audit"]

# Popen objects of children started by this process, kept so that they are
# not garbage collected while running and so that down() can reap them.
_children = {}


class SandboxError(Exception):
    """A sandbox step failed; the message says what and where to look."""


# ---------------------------------------------------------------- public API

def up(dir, repo_root=None, relay=True, workers=2, record=True, policy=True):
    """Start the sandbox in `dir` and return its environment variables.

    relay=False skips posternd (servers only); workers is posternd's worker thread count;
    record=False leaves session recording off and policy=False gives the demo role no policy
    file (benchmarks use both to measure what those features cost). Raises SandboxError if `dir`
    already holds a running sandbox, if posternd is wanted but not built, or
    if a server does not come up (everything started so far is stopped again).
    """
    dir = os.path.abspath(dir)
    repo_root = os.path.abspath(repo_root or _default_repo_root())
    _check_dir_name(dir)
    os.makedirs(dir, mode=0o755, exist_ok=True)
    os.chmod(dir, 0o755)
    with _locked(dir):
        running = _alive_pids(dir)
        if running:
            names = ", ".join(f"{n} (pid {p})" for n, p in running.items())
            raise SandboxError(f"{dir} already holds a running sandbox: {names}; "
                               f"run `tests/sandbox down {dir}` first")
        _remove_stale(dir)
        try:
            return _build(dir, repo_root, relay, workers, record, policy)
        except BaseException:
            _stop_all(dir)
            raise


def down(dir):
    """Stop every process recorded in `dir`; a no-op if nothing runs there."""
    dir = os.path.abspath(dir)
    if not os.path.isdir(dir):
        return
    with _locked(dir):
        _stop_all(dir)


def howto(dir):
    """A short text for a person: what runs in DIR and how to connect through posternd."""
    env = _read_env(dir)
    d = env["POSTERN_DIR"]
    pg_host, pg_port = env["POSTERN_PG_TCP_ADDR"].rsplit(":", 1)
    my_host, my_port = env["POSTERN_MYSQL_TCP_ADDR"].rsplit(":", 1)
    ssh_host, ssh_port = env["POSTERN_SSH_TCP_ADDR"].rsplit(":", 1)
    return f"""
Postern demo is running in {d}
  posternd   config {env['POSTERN_CONFIG']}, log {d}/posternd.log
  targets    PostgreSQL 127.0.0.1:{env['POSTERN_PG_PORT']}, MariaDB 127.0.0.1:{env['POSTERN_MYSQL_PORT']}, sshd 127.0.0.1:{env['POSTERN_SSH_PORT']}

Set up your shell:
  . {d}/env

The demo user "demo" is enrolled and logged in (certificates in $POSTERN_HOME):
  postern status

PostgreSQL through the relay (posternd injects the target login; your policy sees every statement):
  psql "$POSTERN_PG_DSN"
  psql "$POSTERN_PG_DSN" -c 'select current_user, version()'
  pgbench -i "$POSTERN_PG_DSN" && pgbench -S -T 5 "$POSTERN_PG_DSN"

Edit the demo policy, then put it in force:
  $EDITOR $POSTERN_POLICY_FILE && posternctl reload
  (e.g. in on_query: if q.text:lower():find("drop") then return deny("no DROP here") end)

Every session is recorded, encrypted for the sandbox auditor:
  posternctl audit ls --dir $POSTERN_AUDIT_DIR
  posternctl audit show --dir $POSTERN_AUDIT_DIR --key $POSTERN_AUDIT_KEY SESSION_ID
  posternctl audit verify --dir $POSTERN_AUDIT_DIR --all

Admin:
  posternctl users ls
  posternctl users lock demo --reason test     # ends demo's live sessions at once
  posternctl users unlock demo

SSH with the demo user's short-lived certificate (sshd here trusts posternd's user CA):
  ssh -F none -i $POSTERN_HOME/id_postern -o UserKnownHostsFile={d}/ssh/known_hosts -p {env['POSTERN_SSH_PORT']} {env['POSTERN_SSH_LOGIN']}@127.0.0.1 uptime

Plain TCP passthrough (benchmark-only targets, no identity):
  PGPASSWORD=$(cat $POSTERN_PG_APP_PASSWORD_FILE) psql "host={pg_host} port={pg_port} user=app dbname=appdb sslmode=verify-full sslrootcert=$POSTERN_TLS_CA" -c 'select 1'
  mariadb --host={my_host} --port={my_port} --user=app --password=$(cat $POSTERN_MYSQL_APP_PASSWORD_FILE) --ssl --ssl-ca=$POSTERN_TLS_CA appdb -e 'select version()'
  ssh -F none -i {d}/ssh/target_key -o UserKnownHostsFile={d}/ssh/known_hosts -p {ssh_port} {env['POSTERN_SSH_LOGIN']}@{ssh_host} uptime

Watch and manage the relay:
  posternctl status
  posternctl sessions
  tail -f {d}/posternd.log

Stop everything: make demo-down
"""


def _read_env(dir):
    path = os.path.join(os.path.abspath(dir), "env")
    if not os.path.exists(path):
        raise SandboxError(f"no sandbox in {dir} (no env file); run `tests/sandbox up {dir}` first")
    env = {}
    for line in _read(path).splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


def status(dir):
    """Return {name: (pid, alive)} for every process recorded in `dir`."""
    dir = os.path.abspath(dir)
    return {name: (pid, _is_alive(pid, dir))
            for name, pid in _read_pids(dir).items()}


def build_dir(repo_root=None):
    """Where the binaries are: $POSTERN_BUILD_DIR, else REPO/build."""
    repo_root = os.path.abspath(repo_root or _default_repo_root())
    return os.environ.get("POSTERN_BUILD_DIR") or os.path.join(repo_root, "build")


def relay_built(repo_root=None):
    """True if the posternd binary exists, so up() can start the relay."""
    return os.access(os.path.join(build_dir(repo_root), "relay", "posternd"), os.X_OK)


# ---------------------------------------------------------------- build steps

def _build(dir, repo_root, relay, workers=2, record=True, policy=True):
    build = build_dir(repo_root)
    posternd = os.path.join(build, "relay", "posternd")
    posternctl = os.path.join(build, "relay", "posternctl")
    if relay and not os.access(posternd, os.X_OK):
        raise SandboxError(f"{posternd} does not exist; run `make` in {repo_root} first "
                           f"(or start the sandbox without the relay: --no-relay)")

    ports = _free_ports(8)
    ctx = {
        "dir": dir,
        "login": pwd.getpwuid(os.getuid()).pw_name,
        "pg_port": ports[0], "mysql_port": ports[1], "ssh_port": ports[2],
        "pg_tcp_port": ports[3], "mysql_tcp_port": ports[4], "ssh_tcp_port": ports[5],
        "api_port": ports[6], "pg_front_port": ports[7], "workers": int(workers),
        "record": bool(record), "policy": bool(policy),
    }
    for sub in ("secrets", "state", "home"):
        os.makedirs(os.path.join(dir, sub), mode=0o700, exist_ok=True)
    _make_tls(dir)
    _make_passwords(dir)

    # The two data directory initialisations are the slow part: run them side by side.
    pg_init = _init_postgres(ctx)
    try:
        my_init = _init_mariadb(ctx)
    except BaseException:
        _abort(pg_init)
        raise
    _finish(pg_init, my_init)
    _start_postgres(ctx)
    _start_mariadb(ctx)
    _start_sshd(ctx)
    _write_roles(ctx)
    _make_auditor_key(ctx, posternctl)
    _write_relay_config(ctx)
    if relay:
        _start_posternd(ctx, posternd, posternctl)
        _login_demo(ctx, build, posternctl)

    env = _make_env(ctx, build)
    _write_env_file(os.path.join(dir, "env"), env)
    return env


def _make_tls(dir):
    """A test CA and one server certificate for localhost / 127.0.0.1."""
    tls = os.path.join(dir, "tls")
    os.makedirs(tls, mode=0o755, exist_ok=True)
    cnf = os.path.join(tls, "openssl.cnf")
    _write(cnf, OPENSSL_CNF)
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run(["openssl", "req", "-x509", "-config", cnf, "-extensions", "ca_ext", *newkey,
          "-subj", "/CN=Postern sandbox CA", "-days", "30",
          "-keyout", f"{tls}/ca.key", "-out", f"{tls}/ca.crt"], "openssl (CA)")
    _run(["openssl", "req", "-new", "-config", cnf, *newkey, "-subj", "/CN=localhost",
          "-keyout", f"{tls}/server.key", "-out", f"{tls}/server.csr"], "openssl (CSR)")
    _run(["openssl", "x509", "-req", "-in", f"{tls}/server.csr",
          "-CA", f"{tls}/ca.crt", "-CAkey", f"{tls}/ca.key",
          "-set_serial", str(secrets.randbits(63)), "-days", "30",
          "-extfile", cnf, "-extensions", "server_ext", "-out", f"{tls}/server.crt"],
         "openssl (sign)")
    for name in ("ca.key", "server.key"):
        os.chmod(os.path.join(tls, name), 0o600)
    for name in ("ca.crt", "server.crt"):
        os.chmod(os.path.join(tls, name), 0o644)
    # PostgreSQL refuses a key it does not own unless it is root-owned 0640
    # with a group it is in; the simplest correct thing is its own copy.
    pg_key = os.path.join(tls, "postgres-server.key")
    shutil.copyfile(os.path.join(tls, "server.key"), pg_key)
    os.chmod(pg_key, 0o600)
    if _postgres_user():
        os.chown(pg_key, _postgres_user().pw_uid, _postgres_user().pw_gid)


OPENSSL_CNF = """\
# generated by tests/sandbox
[req]
distinguished_name = dn
prompt = no
[dn]
CN = localhost
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def _make_passwords(dir):
    # Hex passwords need no quoting in SQL, conninfo, Lua or a shell.
    for name in ("pg-admin", "pg-app", "pg-md5", "pg-plain", "mysql-admin", "mysql-app"):
        path = _secret_path(dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(16))


def _init_postgres(ctx):
    """Start initdb (as `postgres` when we are root); returns the running job."""
    pg = os.path.join(ctx["dir"], "pg")
    os.makedirs(pg, mode=0o755, exist_ok=True)
    as_pg = _as_postgres_kwargs()
    if as_pg:
        os.chown(pg, _postgres_user().pw_uid, _postgres_user().pw_gid)
        _check_postgres_can_reach(pg)
    return _begin([f"{PG_BINDIR}/initdb", "-D", f"{pg}/data", "-U", ADMIN_LOGIN, "-A", "trust",
                   "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
                   "--wal-segsize=1"],
                  "initdb", log=os.path.join(pg, "initdb.log"), cwd=pg, **as_pg)


def _start_postgres(ctx):
    dir, port = ctx["dir"], ctx["pg_port"]
    pg = os.path.join(dir, "pg")
    data = os.path.join(pg, "data")
    as_pg = _as_postgres_kwargs()
    hba = os.path.join(pg, "pg_hba.conf")
    _write(hba, PG_HBA.format(admin=ADMIN_LOGIN))
    os.chmod(hba, 0o644)
    tls = os.path.join(dir, "tls")
    log = os.path.join(pg, "postgres.log")
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": pg,
        "hba_file": hba,
        "ssl": "on",
        "ssl_cert_file": f"{tls}/server.crt",
        "ssl_key_file": f"{tls}/postgres-server.key",
        "ssl_ca_file": f"{tls}/ca.crt",
        "password_encryption": "scram-sha-256",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    cmd = [f"{PG_BINDIR}/postgres", "-D", data]
    for key, value in settings.items():
        cmd += ["-c", f"{key}={value}"]
    proc = _spawn("postgres", cmd, dir, log, cwd=pg, **as_pg)
    _wait_for("postgres", proc, log, lambda: _run_ok(
        [f"{PG_BINDIR}/pg_isready", "-q", "-h", pg, "-p", str(port),
         "-U", ADMIN_LOGIN, "-d", "postgres"]))
    _run([f"{PG_BINDIR}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg, "-p", str(port),
          "-U", ADMIN_LOGIN, "-d", "postgres"], "postgres setup (psql)",
         input=PG_SETUP.format(admin=ADMIN_LOGIN, app=APP_LOGIN, db=APP_DATABASE,
                               admin_pw=_secret(dir, "pg-admin"), app_pw=_secret(dir, "pg-app"),
                               md5_pw=_secret(dir, "pg-md5"), plain_pw=_secret(dir, "pg-plain")))


# The superuser may use the unix socket without a password (setup does, and a test's
# streaming replica); everything over TCP must be TLS with a SCRAM password, except for
# app_plain, a login that exists to test a target posternd reaches without TLS
# (sslmode = "disable"), and only without it.
PG_HBA = """\
# generated by tests/sandbox
local     all  {admin}  trust
local     replication  {admin}  trust
hostssl   all  app_md5  127.0.0.1/32  md5
hostnossl all  app_plain  127.0.0.1/32  scram-sha-256
hostssl   all  app_plain  127.0.0.1/32  reject
hostssl   all  all      127.0.0.1/32  scram-sha-256
"""

PG_SETUP = """\
ALTER ROLE {admin} PASSWORD '{admin_pw}';
CREATE ROLE {app} LOGIN PASSWORD '{app_pw}';
CREATE DATABASE {db} OWNER {app};
-- A second login that authenticates with md5, as older servers do.
SET password_encryption = 'md5';
CREATE ROLE app_md5 LOGIN PASSWORD '{md5_pw}';
GRANT ALL ON DATABASE {db} TO app_md5;
-- A login for a target without TLS (pg_hba lets it in only without).
RESET password_encryption;
CREATE ROLE app_plain LOGIN PASSWORD '{plain_pw}';
GRANT ALL ON DATABASE {db} TO app_plain;
"""


def _init_mariadb(ctx):
    """Start mariadb-install-db (root@localhost without a password, socket
    only, for our setup); returns the running job."""
    my = os.path.join(ctx["dir"], "mysql")
    os.makedirs(my, mode=0o755, exist_ok=True)
    return _begin(["mariadb-install-db", "--no-defaults", f"--datadir={my}/data",
                   *_mariadb_user(), "--auth-root-authentication-method=normal",
                   "--skip-test-db", "--skip-name-resolve", *MARIADB_SMALL],
                  "mariadb-install-db", log=os.path.join(my, "install.log"), cwd=my)


def _mariadb_user():
    # As root, mariadbd must be told whom to run as; run it as ourselves.
    return ["--user=" + pwd.getpwuid(0).pw_name] if os.getuid() == 0 else []


def _start_mariadb(ctx):
    dir, port = ctx["dir"], ctx["mysql_port"]
    my = os.path.join(dir, "mysql")
    data = os.path.join(my, "data")
    sock = os.path.join(my, "mysqld.sock")
    tls = os.path.join(dir, "tls")
    log = os.path.join(my, "mariadb.log")
    cmd = [MARIADBD, "--no-defaults", *_mariadb_user(), f"--datadir={data}", f"--socket={sock}",
           f"--port={port}", "--bind-address=127.0.0.1", f"--pid-file={my}/mariadbd.pid",
           f"--log-error={log}", "--skip-name-resolve", "--skip-log-bin", *MARIADB_SMALL,
           "--require-secure-transport=ON",  # TCP needs TLS, as PostgreSQL's hostssl
           f"--ssl-ca={tls}/ca.crt", f"--ssl-cert={tls}/server.crt",
           f"--ssl-key={tls}/server.key"]
    proc = _spawn("mariadbd", cmd, dir, log, cwd=my)
    _wait_for("mariadbd", proc, log, lambda: _run_ok(
        ["mariadb-admin", "--no-defaults", f"--socket={sock}", "--user=root", "ping"]))
    _run(["mariadb", "--no-defaults", f"--socket={sock}", "--user=root"],
         "mariadb setup (mariadb CLI)",
         input=MYSQL_SETUP.format(admin=ADMIN_LOGIN, app=APP_LOGIN, db=APP_DATABASE,
                                  admin_pw=_secret(dir, "mysql-admin"),
                                  app_pw=_secret(dir, "mysql-app")))


# Fast and small: a sandbox's data is thrown away (the default redo log alone
# is 96 MB).
MARIADB_SMALL = ["--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=32M",
                 "--innodb-log-file-size=8M"]

# With --skip-name-resolve a TCP client on loopback is '127.0.0.1', never
# 'localhost', so the logins are for that host only.
MYSQL_SETUP = """\
CREATE USER '{admin}'@'127.0.0.1' IDENTIFIED BY '{admin_pw}';
GRANT ALL PRIVILEGES ON *.* TO '{admin}'@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE {db};
CREATE USER '{app}'@'127.0.0.1' IDENTIFIED BY '{app_pw}';
GRANT ALL PRIVILEGES ON {db}.* TO '{app}'@'127.0.0.1';
"""


def _start_sshd(ctx):
    dir, port = ctx["dir"], ctx["ssh_port"]
    ssh = os.path.join(dir, "ssh")
    os.makedirs(ssh, mode=0o755, exist_ok=True)
    if os.getuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
    host_key = os.path.join(ssh, "host_ed25519_key")
    target_key = os.path.join(ssh, "target_key")
    for key, comment in ((host_key, "postern-sandbox-host"), (target_key, "postern-sandbox")):
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", key],
             "ssh-keygen")
    shutil.copyfile(target_key + ".pub", os.path.join(ssh, "authorized_keys"))
    # Known under its own port and under posternd's TCP passthrough port,
    # which forwards to the same sshd.
    key_type, key_blob = _read(host_key + ".pub").split()[:2]
    _write(os.path.join(ssh, "known_hosts"),
           "".join(f"[127.0.0.1]:{p} {key_type} {key_blob}\n"
                   for p in (port, ctx["ssh_tcp_port"])))
    config = os.path.join(ssh, "sshd_config")
    _write(config, SSHD_CONFIG.format(port=port, ssh=ssh, dir=dir))
    log = os.path.join(ssh, "sshd.log")
    proc = _spawn("sshd", [SSHD, "-D", "-e", "-f", config], dir, log, cwd=ssh)
    _wait_for("sshd", proc, log, lambda: _ssh_banner(port))


SSHD_CONFIG = """\
# generated by tests/sandbox
ListenAddress 127.0.0.1
Port {port}
HostKey {ssh}/host_ed25519_key
PidFile {ssh}/sshd.pid
AuthorizedKeysFile {ssh}/authorized_keys
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
# Certificates from posternd's SSH user CA: the demo user's (principal "demo") may log in.
TrustedUserCAKeys {dir}/state/ssh_user_ca.pub
AuthorizedPrincipalsFile {ssh}/principals
UsePAM no
Subsystem sftp internal-sftp
LogLevel VERBOSE
"""


AUDITOR_KEY = "auditor.key"   # in DIR/secrets; the .pub beside it goes in auditor_keys


def _make_auditor_key(ctx, posternctl):
    """The sandbox auditor's key pair (posternctl audit keygen), so sessions are recorded and
    tests can read the recordings with POSTERN_AUDIT_KEY. Without posternctl: no recording."""
    if not os.access(posternctl, os.X_OK):
        return
    key = os.path.join(ctx["dir"], "secrets", AUDITOR_KEY)
    _run([posternctl, "audit", "keygen", key, "--comment", "sandbox-auditor"], "posternctl audit keygen")
    ctx["auditor_key"] = key


def _write_relay_config(ctx):
    d, q = ctx["dir"], _lua_quote
    lines = [
        "-- generated by tests/sandbox",
        'node = "sandbox"',
        f"workers = {ctx['workers']}",
        f"state_dir = {q(d + '/state')}",
        f"admin_socket = {q(d + '/admin.sock')}",
        f"log_file = {q(d + '/posternd.log')}",
        'log_level = "info"',
        f"roles_dir = {q(d + '/roles')}",
        f"api_listen = {q('127.0.0.1:' + str(ctx['api_port']))}",
        f"listen = {{ postgres = {q('127.0.0.1:' + str(ctx['pg_front_port']))} }}",
        "",
    ]
    if ctx.get("auditor_key") and ctx.get("record", True):
        lines[-1:-1] = [
            "-- every session is recorded, encrypted to the sandbox auditor's key (POSTERN_AUDIT_KEY)",
            f"audit_dir = {q(d + '/audit')}",
            f"auditor_keys = {{ {q(ctx['auditor_key'] + '.pub')} }}",
        ]
    for name, proto, port, secret in (("pg", "postgres", ctx["pg_port"], "pg-app"),
                                      ("mysql", "mysql", ctx["mysql_port"], "mysql-app")):
        lines += [
            f"target {q(name)} {{",
            f"  protocol = {q(proto)},",
            f"  address = {q(f'127.0.0.1:{port}')},",
            f"  database = {q(APP_DATABASE)},",
            f"  user = {q(APP_LOGIN)},",
            f"  password_file = {q(_secret_path(d, secret))},",
            f"  ca_file = {q(d + '/tls/ca.crt')},",
            "}",
        ]
    lines += [
        'target "ssh" {',
        '  protocol = "ssh",',
        f"  address = {q('127.0.0.1:' + str(ctx['ssh_port']))},",
        f"  login = {q(ctx['login'])},",
        f"  key_file = {q(d + '/ssh/target_key')},",
        f"  known_hosts_file = {q(d + '/ssh/known_hosts')},",
        "}",
        '-- plain TCP passthrough to each server (protocol "tcp": posternd listens on `listen`)',
    ]
    for name, listen, port in (("pg-tcp", "pg_tcp_port", "pg_port"),
                               ("mysql-tcp", "mysql_tcp_port", "mysql_port"),
                               ("ssh-tcp", "ssh_tcp_port", "ssh_port")):
        lines.append(f'target {q(name):<11} {{ protocol = "tcp", '
                     f"listen = {q('127.0.0.1:' + str(ctx[listen]))}, "
                     f"address = {q('127.0.0.1:' + str(ctx[port]))}, benchmark_plaintext = true }}")
    _write(os.path.join(d, "posternd.lua"), "\n".join(lines) + "\n")


DEMO_USER = "demo"

DEMO_ROLE = """\
-- generated by tests/sandbox: the demo user may reach every target.
role "demo" {{
  members = {{ "{user}" }},
  targets = {{ "*" }},
  ttl = "8h",
  policy = {policy},
}}
"""

DEMO_POLICY = """\
-- The sandbox's policy for the demo role (POSTERN_POLICY_FILE). Edit it, then run
-- `posternctl reload` to put it in force. See docs/policy.md.

function on_connect(s)
  return allow()
end

function on_query(s, q)
  return allow()
end
"""


def _write_roles(ctx):
    d = ctx["dir"]
    for sub in ("roles", "policies"):
        os.makedirs(os.path.join(d, sub), mode=0o755, exist_ok=True)
    policy = os.path.join(d, "policies", "demo.lua")
    _write(policy, DEMO_POLICY)
    role = DEMO_ROLE.format(user=DEMO_USER, policy=_lua_quote(policy))
    if not ctx.get("policy", True):
        role = "".join(line for line in role.splitlines(keepends=True) if not line.lstrip().startswith("policy ="))
    _write(os.path.join(d, "roles", "demo.lua"), role)
    _write(os.path.join(d, "ssh", "principals"), DEMO_USER + "\n")


def _login_demo(ctx, build, posternctl):
    """Invite the demo user and log in with the real launcher into DIR/home."""
    d = ctx["dir"]
    r = subprocess.run([posternctl, "-s", os.path.join(d, "admin.sock"), "users", "invite", DEMO_USER],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=15)
    out = r.stdout
    if r.returncode != 0:
        raise SandboxError(f"posternctl users invite failed: {r.stderr.strip()}")
    invite = next((w for w in out.split() if w.count(".") == 1 and len(w) > 40), None)
    if invite is None:
        raise SandboxError(f"posternctl users invite printed no invite: {out!r}")
    url = f"https://127.0.0.1:{ctx['api_port']}"
    _run([os.path.join(build, "client", "postern"), "login", url, "--invite", invite,
          "--device-name", "sandbox"], "postern login", env={**os.environ, "POSTERN_HOME": os.path.join(d, "home")})


def _start_posternd(ctx, posternd, posternctl):
    dir = ctx["dir"]
    log = os.path.join(dir, "posternd.log")
    sock = os.path.join(dir, "admin.sock")
    proc = _spawn("posternd", [posternd, "-c", os.path.join(dir, "posternd.lua")], dir, log,
                  cwd=dir)
    _wait_for("posternd", proc, log, lambda: _run_ok([posternctl, "-s", sock, "status"]),
              timeout=RELAY_TIMEOUT, interval=0.1, what="answer `posternctl status`")


def _make_env(ctx, build):
    d = ctx["dir"]
    ca = f"{d}/tls/ca.crt"
    path = os.pathsep.join([os.path.join(build, "relay"), os.path.join(build, "client"),
                            os.environ.get("PATH", "/usr/bin:/bin")])
    pg_dsn = " ".join(f"{k}={_pq_quote(v)}" for k, v in (
        ("host", "127.0.0.1"), ("port", str(ctx["pg_port"])), ("user", ADMIN_LOGIN),
        ("password", _secret(d, "pg-admin")), ("dbname", APP_DATABASE),
        ("sslmode", "verify-full"), ("sslrootcert", ca)))
    mysql_args = [
        "--host=127.0.0.1", f"--port={ctx['mysql_port']}", f"--user={ADMIN_LOGIN}",
        f"--password={_secret(d, 'mysql-admin')}", "--ssl", f"--ssl-ca={ca}",
        "--ssl-verify-server-cert", APP_DATABASE]
    ssh_args = [
        "-F", "none", "-i", f"{d}/ssh/target_key", "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={d}/ssh/known_hosts", "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-p", str(ctx["ssh_port"]), f"{ctx['login']}@127.0.0.1"]
    return {
        "PATH": path,
        "POSTERN_DIR": d,
        "POSTERN_CONFIG": f"{d}/posternd.lua",
        "POSTERN_ADMIN_SOCKET": f"{d}/admin.sock",
        "POSTERN_API_URL": f"https://127.0.0.1:{ctx['api_port']}",
        "POSTERN_HOME": f"{d}/home",
        "POSTERN_PG_DSN": " ".join(f"{k}={_pq_quote(v)}" for k, v in (
            ("host", "127.0.0.1"), ("port", str(ctx["pg_front_port"])), ("user", DEMO_USER),
            ("dbname", "pg"), ("sslmode", "verify-full"), ("sslrootcert", f"{d}/home/ca.crt"),
            ("sslcert", f"{d}/home/cert.pem"), ("sslkey", f"{d}/home/key.pem"))),
        "POSTERN_POLICY_FILE": f"{d}/policies/demo.lua",
        "POSTERN_PG_FRONT_ADDR": f"127.0.0.1:{ctx['pg_front_port']}",
        "POSTERN_TLS_CA": ca,
        "POSTERN_PG_DIRECT_DSN": pg_dsn,
        "POSTERN_MYSQL_DIRECT_ARGS": " ".join(mysql_args),
        "POSTERN_SSH_DIRECT_ARGS": " ".join(ssh_args),
        "POSTERN_SSH_LOGIN": ctx["login"],
        "POSTERN_PG_TCP_ADDR": f"127.0.0.1:{ctx['pg_tcp_port']}",
        "POSTERN_MYSQL_TCP_ADDR": f"127.0.0.1:{ctx['mysql_tcp_port']}",
        "POSTERN_SSH_TCP_ADDR": f"127.0.0.1:{ctx['ssh_tcp_port']}",
        "POSTERN_PG_PORT": str(ctx["pg_port"]),
        "POSTERN_MYSQL_PORT": str(ctx["mysql_port"]),
        "POSTERN_SSH_PORT": str(ctx["ssh_port"]),
        "POSTERN_PG_APP_PASSWORD_FILE": _secret_path(d, "pg-app"),
        "POSTERN_PG_MD5_PASSWORD_FILE": _secret_path(d, "pg-md5"),
        "POSTERN_PG_PLAIN_PASSWORD_FILE": _secret_path(d, "pg-plain"),
        "POSTERN_MYSQL_APP_PASSWORD_FILE": _secret_path(d, "mysql-app"),
        "POSTERN_PG_ADMIN_PASSWORD_FILE": _secret_path(d, "pg-admin"),
        "POSTERN_MYSQL_ADMIN_PASSWORD_FILE": _secret_path(d, "mysql-admin"),
        "POSTERN_AUDIT_DIR": f"{d}/audit",
        "POSTERN_AUDIT_KEY": ctx.get("auditor_key", ""),
    }


def _write_env_file(path, env):
    lines = ["# generated by tests/sandbox; use with `. " + path + "`"]
    lines += [f"export {key}={_sh_quote(value)}" for key, value in env.items()]
    _write(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------- processes

def _spawn(name, cmd, dir, log, cwd=None, **kwargs):
    """Start a server in its own session, stdin from /dev/null, output to
    `log`, and record its pid at once."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                cwd=cwd, start_new_session=True, **kwargs)
    _children[proc.pid] = proc
    _record_pid(dir, name, proc.pid)
    return proc


def _wait_for(name, proc, log, ready, timeout=None, interval=POLL_INTERVAL,
              what="accept connections"):
    timeout = timeout or START_TIMEOUT
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise SandboxError(f"{name} exited with status {proc.returncode} while starting; "
                               f"last lines of {log}:\n{_tail(log)}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise SandboxError(f"{name} did not {what} within {timeout:g} s; "
                               f"last lines of {log}:\n{_tail(log)}")
        time.sleep(interval)


def _stop_all(dir):
    pids = _read_pids(dir)
    names = [n for n in STOP_ORDER if n in pids] + [n for n in pids if n not in STOP_ORDER]
    for name in names:
        _stop(name, pids[name], dir)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(dir, "pids"))


def _stop(name, pid, dir):
    if not _is_alive(pid, dir):
        return
    # SIGINT is PostgreSQL's "fast" shutdown; its SIGTERM ("smart") waits for
    # every client to disconnect, which could be forever.
    sig = signal.SIGINT if name == "postgres" else signal.SIGTERM
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    if _wait_gone(pid, dir, STOP_TIMEOUT):
        return
    # Each server leads its own process group (start_new_session), so killing
    # the group also takes its helpers (postgres backends and workers).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not _wait_gone(pid, dir, STOP_TIMEOUT):
        raise SandboxError(f"{name} (pid {pid}) is still running after SIGKILL")


def _wait_gone(pid, dir, timeout):
    deadline = time.monotonic() + timeout
    while _is_alive(pid, dir):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


def _is_alive(pid, dir):
    """True if `pid` runs and is one of ours: its command line names `dir`
    (so a pid reused by an unrelated process after a reboot is never killed)."""
    _reap(pid)
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != b"Z" and os.fsencode(dir) in cmdline


def _reap(pid):
    """Collect the exit status of a child of this process, so it does not
    linger as a zombie that looks alive."""
    proc = _children.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del _children[pid]
        return
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _alive_pids(dir):
    return {n: p for n, p in _read_pids(dir).items() if _is_alive(p, dir)}


def _read_pids(dir):
    try:
        with open(os.path.join(dir, "pids")) as f:
            return {str(k): int(v) for k, v in json.load(f).items()}
    except FileNotFoundError:
        return {}
    except (ValueError, AttributeError) as e:
        raise SandboxError(f"{dir}/pids is not a JSON object of name -> pid ({e}); "
                           f"stop the processes by hand and remove it")


def _record_pid(dir, name, pid):
    pids = _read_pids(dir)
    pids[name] = pid
    tmp = os.path.join(dir, "pids.tmp")
    _write(tmp, json.dumps(pids, indent=2) + "\n")
    os.replace(tmp, os.path.join(dir, "pids"))


@contextlib.contextmanager
def _locked(dir):
    """Serialise up/down on one directory (two `up`s racing would both see
    no running sandbox)."""
    with open(os.path.join(dir, ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _run(cmd, what, log=None, input=None, cwd=None, **kwargs):
    """Run a setup command to completion; on failure raise with its output
    (or the tail of `log`, where its output goes when given)."""
    _finish(_begin(cmd, what, log=log, input=input, cwd=cwd, **kwargs))


def _begin(cmd, what, log=None, input=None, cwd=None, **kwargs):
    """Start a setup command; `_finish` waits for it. It runs in its own
    process group so that, if we are interrupted, its helpers go too
    (initdb's bootstrap postgres would otherwise keep writing into the data
    directory)."""
    out = open(log, "wb") if log else subprocess.PIPE
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if input else subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                start_new_session=True, **kwargs)
    except FileNotFoundError as e:
        raise SandboxError(f"{what}: {e.filename} not found; is it installed?") from None
    finally:
        if log:
            out.close()
    proc.what, proc.log, proc.input = what, log, input.encode() if input else None
    return proc


def _finish(*procs):
    """Wait for setup commands from `_begin`; raise on the first that fails,
    after killing all of them."""
    deadline = time.monotonic() + START_TIMEOUT
    try:
        for proc in procs:
            timeout = max(deadline - time.monotonic(), 0.1)
            try:
                captured, _ = proc.communicate(proc.input, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise SandboxError(f"{proc.what} did not finish within "
                                   f"{START_TIMEOUT:g} s") from None
            if proc.returncode != 0:
                where = f"; last lines of {proc.log}" if proc.log else ""
                output = (_tail(proc.log) if proc.log
                          else captured.decode("utf-8", "replace").strip())
                raise SandboxError(f"{proc.what} failed with status {proc.returncode}"
                                   f"{where}:\n{output}")
    except BaseException:
        _abort(*procs)
        raise


def _abort(*procs):
    """Kill setup commands from `_begin` that still run, with their helpers."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _run_ok(cmd, timeout=5.0):
    """True if a readiness probe exits 0 in time (a hung probe is a "not yet")."""
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=timeout).returncode == 0
    except subprocess.TimeoutExpired:
        return False


# ---------------------------------------------------------------- helpers

def _default_repo_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _check_dir_name(dir):
    # The *_DIRECT_ARGS variables are meant to be word-split by a shell.
    if any(c.isspace() for c in dir):
        raise SandboxError(f"sandbox directory {dir!r} contains whitespace; pick another")
    longest = os.path.join(dir, "mysql", "mysqld.sock")
    if len(os.fsencode(longest)) > SOCKET_PATH_MAX:
        raise SandboxError(f"sandbox directory {dir} is too long for unix socket paths "
                           f"(sockets live inside it); pick a shorter one, e.g. under /tmp")


def _remove_stale(dir):
    """Remove what a previous, stopped sandbox left in `dir`."""
    for name in OWNED_ENTRIES:
        path = os.path.join(dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, onerror=_ignore_vanished)
        elif os.path.lexists(path):
            os.unlink(path)


def _ignore_vanished(func, path, exc_info):
    if not issubclass(exc_info[0], FileNotFoundError):
        raise exc_info[1]


def _postgres_user():
    """The `postgres` account when we are root (servers run as it), else None."""
    if os.getuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise SandboxError("running as root but there is no `postgres` user to run "
                           "PostgreSQL as; install postgresql") from None


def _as_postgres_kwargs():
    """Popen arguments that run a command as `postgres` (like `runuser -u
    postgres --`, but without an extra process, so the pid is the server's)."""
    user = _postgres_user()
    if user is None:
        return {}
    env = dict(os.environ, HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "env": env}


def _check_postgres_can_reach(path):
    kwargs = _as_postgres_kwargs()
    kwargs.pop("env")
    if subprocess.run(["test", "-w", path, "-a", "-x", path], **kwargs).returncode != 0:
        raise SandboxError(f"the postgres user cannot reach {path}: a parent directory is not "
                           f"searchable by others (chmod o+x it, or use a directory under /tmp)")


def _free_ports(count):
    """Distinct free loopback ports: bind them all to port 0 at once, then close."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _ssh_banner(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.recv(64).startswith(b"SSH-2.0-")
    except OSError:
        return False


def _secret_path(dir, name):
    return os.path.join(dir, "secrets", f"{name}.password")


def _secret(dir, name):
    return _read(_secret_path(dir, name)).strip()


def _lua_quote(s):
    """A Lua double-quoted string literal for any text."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append(f"\\{ord(ch):03d}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _sh_quote(value):
    """Single-quoted for a POSIX shell: 'it'\\''s'."""
    return "'" + value.replace("'", "'\\''") + "'"


def _pq_quote(value):
    """A libpq conninfo value, quoted when it needs to be."""
    if value and not any(c.isspace() or c in "'\\" for c in value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _tail(path, lines=LOG_TAIL_LINES):
    try:
        with open(path, "rb") as f:
            text = f.read()[-16384:].decode("utf-8", "replace")
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def _read(path):
    with open(path) as f:
        return f.read()


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
