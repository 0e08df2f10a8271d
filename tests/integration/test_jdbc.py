"""JDBC through posternd: pgjdbc (Debian's libpostgresql-jdbc-java, installed by scripts/deps)
on OpenJDK, with the demo user's certificate, against the sandbox's real PostgreSQL. pgjdbc
speaks only the extended protocol: named server-side statements past its prepareThreshold,
batches of Bind/Execute before one Sync, cursors with a row limit (PortalSuspended)."""

import os
import shutil
import subprocess
import urllib.parse

import pytest

from test_pg import DENY_FORBIDDEN, policy

HERE = os.path.dirname(os.path.abspath(__file__))
JAR = "/usr/share/java/postgresql.jar"


@pytest.fixture(scope="module")
def jdbc(tmp_path_factory):
    """The compiled client; a missing JDK or driver is a failure (scripts/deps installs both)."""
    if shutil.which("javac") is None or shutil.which("java") is None or not os.path.exists(JAR):
        pytest.fail("JDBC test needs javac, java and /usr/share/java/postgresql.jar: run `make deps`")
    out = str(tmp_path_factory.mktemp("jdbc"))
    r = subprocess.run(["javac", "-d", out, "-cp", JAR, os.path.join(HERE, "jdbc", "PgThrough.java")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return out


def jdbc_url(sb, tmp_path):
    dsn = dict(kv.split("=", 1) for kv in sb.env["POSTERN_PG_DSN"].split())
    # pgjdbc reads a client key as PKCS #8 DER.
    pk8 = str(tmp_path / "key.pk8")
    r = subprocess.run(["openssl", "pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in", dsn["sslkey"],
                        "-out", pk8], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    q = urllib.parse.urlencode({"user": dsn["user"], "sslmode": "verify-full", "sslrootcert": dsn["sslrootcert"],
                                "sslcert": dsn["sslcert"], "sslkey": pk8, "ApplicationName": "jdbc-test"})
    return f"jdbc:postgresql://{dsn['host']}:{dsn['port']}/{dsn['dbname']}?{q}"


def test_jdbc_session_through_posternd(relay, jdbc, tmp_path):
    with policy(relay, DENY_FORBIDDEN):
        r = subprocess.run(["java", "-cp", f"{JAR}:{jdbc}", "PgThrough", jdbc_url(relay, tmp_path)],
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    got = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert got["product"] == "PostgreSQL"
    assert got["who"] == "app|appdb"                 # the injected login, not the engineer's
    assert got["batch"] == "100"
    assert got["sum"] == "20|220.00"             # 1.50 + 2.50 + ... + 20.50
    assert got["cursor_rows"] == "120"
    assert got["duplicate"] == "23505"
    assert got["rolled_back"] == "true"
    state, message = got["denied"].split("|", 1)
    assert state == "42501" and "no forbidden things here" in message
    assert got["after_denial"] == "42"
    assert got["done"] == "ok"
