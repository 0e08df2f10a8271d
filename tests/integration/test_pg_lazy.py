"""connect = "lazy": a PostgreSQL target connected at the client's first message, not at its
login. The first client of a (target, login, database, options) key connects as usual and
fills posternd's parameter cache; later ones are answered from it at once (AuthenticationOk,
the target's parameters, posternd's BackendKeyData, ReadyForQuery) and hold no backend until
they send something. Real psql and psycopg2 through a real posternd to a real PostgreSQL."""

import contextlib
import socket
import threading
import time

import psycopg2
import psycopg2.extensions
import pytest

import relayutil
from test_pg import direct, dsn, extra_target, psql


def lazy_target(sb, name, port=None, **extra):
    e = sb.env
    fields = "".join(f', {k} = "{v}"' for k, v in extra.items())
    return (f'target "{name}" {{ protocol = "postgres", address = "127.0.0.1:{port or e["POSTERN_PG_PORT"]}", '
            f'database = "appdb", user = "app", password_file = "{e["POSTERN_PG_APP_PASSWORD_FILE"]}", '
            f'ca_file = "{e["POSTERN_TLS_CA"]}", connect = "lazy"{fields} }}')


def backends(sb, application_name):
    with contextlib.closing(direct(sb)) as d:
        d.autocommit = True
        cur = d.cursor()
        cur.execute("select count(*) from pg_stat_activity where application_name = %s", (application_name,))
        return cur.fetchone()[0]


def relay_log(sb):
    with open(sb.env["POSTERN_DIR"] + "/posternd.log", errors="replace") as f:
        return f.read()


def connected_lines(sb, target):
    return sum(1 for l in relay_log(sb).splitlines() if 'msg="target connected"' in l and f"target={target} " in l)


def test_a_second_client_is_answered_from_the_cache_and_holds_no_backend_until_it_queries(relay):
    with extra_target(relay, lazy_target(relay, "pg-lazy")):
        first = psycopg2.connect(dsn(relay, dbname="pg-lazy", application_name="lazy-one"))
        assert backends(relay, "lazy-one") == 1            # a cache miss connects at once
        first.close()
        before = connected_lines(relay, "pg-lazy")
        c = psycopg2.connect(dsn(relay, dbname="pg-lazy", application_name="lazy-two"))
        try:
            time.sleep(0.3)
            assert backends(relay, "lazy-two") == 0, "a parked client holds a backend"
            assert connected_lines(relay, "pg-lazy") == before
            with contextlib.closing(direct(relay)) as d:     # what the client was told is the target's
                assert c.server_version == d.server_version
                for name in ("server_encoding", "client_encoding", "DateStyle", "TimeZone", "integer_datetimes",
                             "standard_conforming_strings"):
                    assert c.get_parameter_status(name) == d.get_parameter_status(name), name
                # the injected login's own, not the direct connection's (a superuser)
                assert c.get_parameter_status("session_authorization") == "app"
                assert c.get_parameter_status("is_superuser") == "off"
                assert c.get_parameter_status("application_name") == "lazy-two"
            cur = c.cursor()
            cur.execute("select current_user, current_database(), current_setting('application_name')")
            assert cur.fetchone() == ("app", "appdb", "lazy-two")
            assert backends(relay, "lazy-two") == 1
            assert connected_lines(relay, "pg-lazy") == before + 1
            cur.execute("select 2")
            assert cur.fetchone() == (2,)
        finally:
            c.close()


def test_a_parked_client_that_leaves_never_reaches_the_target(relay):
    with extra_target(relay, lazy_target(relay, "pg-lazy")):
        # psql's startup carries its client_encoding, so it has a key of its own: warm both
        psycopg2.connect(dsn(relay, dbname="pg-lazy")).close()
        assert psql(relay, "-c", "\\q", dsn_extra={"dbname": "pg-lazy"}).returncode == 0
        before = connected_lines(relay, "pg-lazy")
        for _ in range(5):
            psycopg2.connect(dsn(relay, dbname="pg-lazy")).close()    # Terminate only
        r = psql(relay, "-c", "\\q", dsn_extra={"dbname": "pg-lazy"})
        assert r.returncode == 0, r.stderr
        time.sleep(0.3)
        assert connected_lines(relay, "pg-lazy") == before
        assert 'reason="client quit"' in relay_log(relay)


def test_startup_options_are_part_of_the_key(relay):
    """A client whose startup options differ is not answered with another key's parameters.
    (psql, not psycopg2: psycopg2 itself sets DateStyle to ISO right after connecting.)"""
    with extra_target(relay, lazy_target(relay, "pg-lazy")):
        psycopg2.connect(dsn(relay, dbname="pg-lazy")).close()
        for _ in range(2):                                  # a miss (connects), then a hit
            r = psql(relay, "-At", "-c", "select current_setting('DateStyle'), date '2026-12-08'::text",
                     dsn_extra={"dbname": "pg-lazy", "options": "'-c DateStyle=German'"})
            assert r.returncode == 0, r.stderr
            assert r.stdout.strip() == "German, DMY|08.12.2026"
        r = psql(relay, "-At", "-c", "select current_setting('DateStyle')", dsn_extra={"dbname": "pg-lazy"})
        assert r.returncode == 0 and r.stdout.strip() == "ISO, MDY", r.stderr


def test_psql_runs_queries_and_copy_through_a_lazy_target(relay, tmp_path):
    with extra_target(relay, lazy_target(relay, "pg-lazy")):
        for _ in range(2):
            r = psql(relay, "-At", "-c", "select count(*) from generate_series(1, 1000)",
                     dsn_extra={"dbname": "pg-lazy"})
            assert r.returncode == 0 and r.stdout.strip() == "1000", r.stderr
        out = tmp_path / "rows.csv"
        r = psql(relay, "-c", f"\\copy (select g from generate_series(1, 500) g) to '{out}' csv",
                 dsn_extra={"dbname": "pg-lazy"})
        assert r.returncode == 0, r.stderr
        assert out.read_text().split() == [str(i) for i in range(1, 501)]


def test_cancel_works_on_a_session_connected_lazily(relay):
    with extra_target(relay, lazy_target(relay, "pg-lazy")):
        psycopg2.connect(dsn(relay, dbname="pg-lazy")).close()
        c = psycopg2.connect(dsn(relay, dbname="pg-lazy"))
        try:
            threading.Timer(0.5, c.cancel).start()
            t0 = time.monotonic()
            with pytest.raises(psycopg2.extensions.QueryCanceledError):
                c.cursor().execute("select pg_sleep(20)")
            assert time.monotonic() - t0 < 10
        finally:
            c.close()


class Forwarder(relayutil._Server):
    """A TCP forwarder on loopback to PORT, DELAY seconds slow to connect; close() takes it
    down (the target "goes down")."""

    def __init__(self, port, delay=0.0):
        self.target_port, self.delay = port, delay
        super().__init__()

    def handle(self, conn):
        time.sleep(self.delay)                      # a slow way to the target
        with socket.create_connection(("127.0.0.1", self.target_port)) as up:
            back = threading.Thread(target=self.pipe, args=(up, conn), daemon=True)
            back.start()
            self.pipe(conn, up)
            back.join(timeout=10)

    @staticmethod
    def pipe(x, y):
        try:
            while (data := x.recv(65536)):
                y.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                y.shutdown(socket.SHUT_WR)


def test_a_target_that_went_down_gives_08006_at_the_first_query(relay):
    fwd = Forwarder(int(relay.env["POSTERN_PG_PORT"]))
    with extra_target(relay, lazy_target(relay, "pg-lazy-fwd", port=fwd.port)):
        psycopg2.connect(dsn(relay, dbname="pg-lazy-fwd")).close()     # the cache knows the target
        fwd.close()
        # psql logs in (answered from the cache), then its query meets the FATAL
        r = psql(relay, "-c", "select 1", dsn_extra={"dbname": "pg-lazy-fwd"})
        assert r.returncode != 0
        assert 'FATAL:  cannot connect to target "pg-lazy-fwd"' in r.stderr, r.stderr
        assert "sqlstate=08006" in relay_log(relay)
        r = psql(relay, "-At", "-c", "select 1")                          # the relay goes on
        assert r.returncode == 0 and r.stdout.strip() == "1", r.stderr


def test_a_cancel_sent_while_the_target_is_being_connected_cancels_the_query(relay):
    """The client has posternd's key from the cache before there is a backend: a cancel that
    comes while the target is being connected is kept and sent once the query is on its way."""
    fwd = Forwarder(int(relay.env["POSTERN_PG_PORT"]), delay=1.0)
    try:
        with extra_target(relay, lazy_target(relay, "pg-lazy-slow", port=fwd.port)):
            psycopg2.connect(dsn(relay, dbname="pg-lazy-slow")).close()
            c = psycopg2.connect(dsn(relay, dbname="pg-lazy-slow"))
            c.autocommit = True                      # the query is the first message
            try:
                threading.Timer(0.3, c.cancel).start()   # inside the 1 s the connect takes
                t0 = time.monotonic()
                with pytest.raises(psycopg2.extensions.QueryCanceledError):
                    c.cursor().execute("select pg_sleep(20)")
                assert time.monotonic() - t0 < 10
                assert "cancel request kept until the target is connected" in relay_log(relay)
                cur = c.cursor()
                cur.execute("select 1")                  # the session goes on
                assert cur.fetchone() == (1,)
            finally:
                c.close()
    finally:
        fwd.close()


def test_a_reload_forgets_the_cache(relay):
    """Parameters seen under an earlier configuration are not trusted: the target's settings
    may have changed, so the first client after a reload connects at once again."""
    with extra_target(relay, lazy_target(relay, "pg-lazy")):
        psycopg2.connect(dsn(relay, dbname="pg-lazy")).close()
        assert relay.run(["posternctl", "reload"]).returncode == 0
        c = psycopg2.connect(dsn(relay, dbname="pg-lazy", application_name="after-reload"))
        try:
            assert backends(relay, "after-reload") == 1
        finally:
            c.close()


def test_connect_must_be_eager_or_lazy(relay, tmp_path):
    cfg = tmp_path / "posternd.lua"
    with open(relay.env["POSTERN_CONFIG"]) as f:
        text = f.read()
    cfg.write_text(text + "\n" + lazy_target(relay, "pg-odd").replace('"lazy"', '"sometimes"') + "\n")
    r = relay.run(["posternd", "--check", "-c", str(cfg)])
    assert r.returncode == 1
    assert 'connect must be "eager"' in r.stderr
