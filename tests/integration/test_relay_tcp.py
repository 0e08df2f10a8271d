"""posternd's tcp passthrough, admin socket, reload and shutdown, end to end.

Each test starts its own posternd (binary from $POSTERN_BUILD_DIR, default
build/) in a short directory under /tmp, with loopback echo and source servers
in this process. Every socket has a timeout and every wait a bound, so a
broken relay fails a test instead of hanging it. Set POSTERN_BUILD_DIR to
build-asan to run the same tests against the sanitizer build: any ASan, LSan
or UBSan report in posternd's stderr fails the test that caused it.
"""

import concurrent.futures
import hashlib
import json
import os
import re
import resource
import signal
import socket
import stat
import struct
import subprocess
import threading
import time

import pytest

import relayutil
from relayutil import (EchoServer, Relay, SourceServer, StalledListener, connect, free_port,
                       recv_exactly, wait_for)

SANITIZED = os.path.exists(relayutil.POSTERND) and relayutil.sanitized()

pytestmark = pytest.mark.skipif(not os.path.exists(relayutil.POSTERND),
                                reason=f"{relayutil.POSTERND} is not built; run `ninja -C build`")


# --- fixtures -----------------------------------------------------------------------------

@pytest.fixture
def echo():
    with EchoServer() as server:
        yield server


@pytest.fixture
def relays():
    """Start posternd processes: relays(targets_text, **settings) -> a running Relay.
    Every one is stopped at teardown; its log tail is printed (pytest shows it on failure)
    and a sanitizer report in its stderr fails the test."""
    started = []

    def start(targets="", start=True, **settings):
        r = Relay(Relay.config(targets, **settings))
        started.append(r)
        return r.start() if start else r

    yield start
    reports = []
    for r in started:
        r.stop()
        print(f"--- {r.log_file} (last 40 lines)")
        print("\n".join(r.log().splitlines()[-40:]))
        reports += r.sanitizer_reports()
        if r.stderr():
            print(f"--- posternd stderr\n{r.stderr()[-4000:]}")
        r.cleanup()
    assert not reports, "sanitizer reported problems in posternd:\n" + "\n".join(reports)


@pytest.fixture
def echo_relay(relays, echo):
    """A posternd with one tcp target "echo" in front of the echo server; .port is its listener."""
    port = free_port()
    r = relays(Relay.tcp_target("echo", port, echo.port))
    r.port = port
    return r


def round_trip(sock, data):
    sock.sendall(data)
    return recv_exactly(sock, len(data))


def assert_echoes(port_or_sock, data=b"ping"):
    if isinstance(port_or_sock, int):
        with connect(port_or_sock, timeout=5) as s:
            assert round_trip(s, data) == data
    else:
        assert round_trip(port_or_sock, data) == data


def session_of(relay, sock):
    """The `posternctl sessions --json` entry whose client is SOCK's local address."""
    client = "%s:%d" % sock.getsockname()
    return wait_for(lambda: next((s for s in relay.sessions() if s["client"] == client), None),
                    5, f"a session for client {client}")


def refused(port):
    """True if nothing accepts on PORT. A reset counts: a connect that raced the closing
    listener into its backlog is reset when the listener goes."""
    try:
        with connect(port, timeout=2):
            return False
    except (ConnectionRefusedError, ConnectionResetError):
        return True


def reset_close(sock):
    """Close SOCK with an RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# --- data path ----------------------------------------------------------------------------

def test_tcp_passthrough_relays_bytes_both_ways_intact(echo_relay):
    payload = os.urandom(8 << 20)
    with connect(echo_relay.port, timeout=30) as s:
        sender = threading.Thread(target=s.sendall, args=(payload,), daemon=True)
        sender.start()
        received = recv_exactly(s, len(payload))
        sender.join(30)
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(payload).hexdigest()
    echo_relay.wait_log(r'msg="session end" .*target=echo .*bytes_up=8388608 bytes_down=8388608')


def test_half_close_passes_through(echo_relay):
    payload = os.urandom(1 << 20)
    with connect(echo_relay.port, timeout=20) as s:
        def send_then_shut():
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        sender = threading.Thread(target=send_then_shut, daemon=True)
        sender.start()
        received = relayutil.recv_all(s)   # ends only when the echo server's FIN comes through
        sender.join(20)
    assert len(received) == len(payload)
    assert received == payload
    echo_relay.wait_log(r'msg="session end" .*reason="both sides closed"')


def test_many_concurrent_sessions_are_all_intact(echo_relay):
    n, chunk, chunks = 50, 16 << 10, 16
    all_connected = threading.Barrier(n + 1, timeout=20)
    all_counted = threading.Barrier(n + 1, timeout=30)

    def session(i):
        data = os.urandom(chunk * chunks)
        got = bytearray()
        with connect(echo_relay.port, timeout=20) as s:
            all_connected.wait()
            for k in range(chunks):
                got += round_trip(s, data[k * chunk:(k + 1) * chunk])
            all_counted.wait()   # stay connected until the relay has been seen holding all
        return hashlib.sha256(data).digest() == hashlib.sha256(got).digest()

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        results = [pool.submit(session, i) for i in range(n)]
        all_connected.wait()
        wait_for(lambda: echo_relay.session_count() == n, 10, f"{n} live sessions")
        all_counted.wait()
        assert [r.result(timeout=60) for r in results] == [True] * n
    wait_for(lambda: echo_relay.session_count() == 0, 10, "every session to end")


def test_slow_reader_on_a_1gib_stream_keeps_relay_memory_bounded(relays):
    # The source writes far faster than this reader reads at first. With backpressure
    # posternd holds at most buffer_limit (256 KiB) per direction plus one read's worth;
    # without it, it would buffer what the source sends during the pause: hundreds of MiB
    # at loopback speed. 64 MiB over the baseline leaves room for malloc's arenas and
    # libevent's chain slack while still catching any unbounded buffering.
    total, bound_kib = 1 << 30, 64 << 10
    deadline = time.monotonic() + 50
    with SourceServer(total) as source:
        port = free_port()
        relay = relays(Relay.tcp_target("bulk", port, source.port), buffer_limit=262144)
        baseline = relay.rss_kib()
        peak = baseline
        buf = bytearray(1 << 20)
        got = 0
        with connect(port, timeout=20) as s:
            # 1. Do not read at all for 3 s: the kernel buffers fill, then posternd must stop.
            pause_end = time.monotonic() + 3
            while time.monotonic() < pause_end:
                peak = max(peak, relay.rss_kib())
                time.sleep(0.05)
            sessions = relay.sessions()
            assert len(sessions) == 1
            held = sessions[0]["bytes_down"]
            assert held < 64 << 20, f"posternd forwarded {held} bytes to a reader that read nothing"
            # 2. Read slowly (64 KiB every 10 ms, ~6 MB/s) for 2 s.
            slow_end = time.monotonic() + 2
            while time.monotonic() < slow_end:
                got += s.recv_into(buf, 64 << 10)
                peak = max(peak, relay.rss_kib())
                time.sleep(0.01)
            # 3. Read everything, as fast as possible.
            checks = 0
            while True:
                n = s.recv_into(buf)
                if n == 0:
                    break
                got += n
                checks += 1
                if checks % 256 == 0:
                    peak = max(peak, relay.rss_kib())
                    assert time.monotonic() < deadline, f"stream too slow: {got} bytes so far"
        growth = peak - baseline
        print(f"posternd RSS: baseline {baseline} KiB, peak {peak} KiB, growth {growth} KiB")
        assert got == total
        if SANITIZED:
            pytest.skip(f"RSS bound not checked under ASan (quarantine); growth was {growth} KiB")
        assert growth < bound_kib, f"posternd grew by {growth} KiB while relaying to a slow reader"


def test_thousand_idle_connections_are_accepted_and_listed(echo_relay, record_property):
    n = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 3 * n + 1024)   # our clients, the echo server's ends, and slack
    if want < 2 * n + 64:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low for {n} connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    clients = []
    try:
        for _ in range(2):                            # one session per worker (round robin):
            assert_echoes(echo_relay.port)            # what a worker keeps after its first is not per-connection
        wait_for(lambda: echo_relay.session_count() == 0, 5, "the warm-up sessions to end")
        before = echo_relay.rss_kib()
        for _ in range(n):
            clients.append(connect(echo_relay.port, timeout=10))
        wait_for(lambda: echo_relay.session_count() == n, 20, f"{n} live sessions")
        listed = echo_relay.sessions()
        assert len(listed) == n
        assert {s["client"] for s in listed} == {"%s:%d" % c.getsockname() for c in clients}
        wait_for(lambda: all(s["state"] == "active" for s in echo_relay.sessions()), 20,
                 "every session to reach the target")
        time.sleep(0.3)
        after = echo_relay.rss_kib()
        per_conn = (after - before) * 1024 / n
        record_property("rss_bytes_per_idle_connection", round(per_conn))
        print(f"posternd RSS per idle connection: {per_conn / 1024:.1f} KiB "
              f"({before} KiB -> {after} KiB for {n})")
        for c in clients[::100]:                      # idle, not dead
            assert_echoes(c)
        if not SANITIZED:
            assert per_conn < 64 << 10
    finally:
        for c in clients:
            c.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    wait_for(lambda: echo_relay.session_count() == 0, 20, "every session to end")


def paced_round_trips(port, seconds, gap):
    """Round trips of 64 bytes through PORT for SECONDS, a pause of GAP seconds between them."""
    with connect(port) as s:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            assert round_trip(s, b"p" * 64) == b"p" * 64
            time.sleep(gap)


@pytest.mark.parametrize("busy_poll", ["0", "5000"])
def test_busy_polling_spins_only_while_traffic_comes_and_sleeps_when_it_stops(relays, echo, busy_poll):
    """busy_poll = 5000: between round trips 1 ms apart the worker polls instead of sleeping,
    so it keeps a core busy; busy_poll = 0 sleeps. Either way, once the traffic stops the
    worker sleeps: an idle posternd uses next to no CPU."""
    port = free_port()
    relay = relays(Relay.tcp_target("echo", port, echo.port), busy_poll=busy_poll, workers="1")
    paced_round_trips(port, 0.3, 0.001)                    # warm-up: the session, the worker
    t0 = relay.cpu_seconds()
    paced_round_trips(port, 1.5, 0.001)
    busy = relay.cpu_seconds() - t0
    time.sleep(0.2)
    t1 = relay.cpu_seconds()
    time.sleep(2)
    idle = relay.cpu_seconds() - t1
    print(f"busy_poll = {busy_poll}: {busy:.2f} CPU-s over 1.5 s of paced round trips, {idle:.2f} over 2 s idle")
    assert idle < 0.1, "posternd kept polling after the traffic stopped"
    if busy_poll == "0":
        assert busy < 0.5, "posternd used CPU between round trips without busy polling"
    elif not SANITIZED:
        assert busy > 0.6, "the worker slept between round trips 1 ms apart despite busy_poll = 5000"


def test_busy_poll_is_changed_by_a_reload_and_a_polling_relay_stops_promptly(relays, echo):
    port = free_port()
    relay = relays(Relay.tcp_target("echo", port, echo.port), busy_poll="10000", workers="1")
    paced_round_trips(port, 0.2, 0.001)
    relay.write_config(Relay.config(Relay.tcp_target("echo", port, echo.port), busy_poll="0", workers="1"))
    relay.ctl("reload")
    t0 = relay.cpu_seconds()
    paced_round_trips(port, 1.0, 0.001)
    assert relay.cpu_seconds() - t0 < 0.4, "busy_poll = 0 after the reload, but the worker still polls"
    relay.write_config(Relay.config(Relay.tcp_target("echo", port, echo.port), busy_poll="10000", workers="1"))
    relay.ctl("reload")
    with connect(port) as s:
        assert round_trip(s, b"last") == b"last"
        t0 = time.monotonic()
        relay.proc.send_signal(signal.SIGTERM)           # mid-poll: the worker must still stop
        s.close()
        relay.proc.wait(timeout=10)
    assert relay.proc.returncode == 0
    assert time.monotonic() - t0 < 5


def thread_slices(pid):
    """{thread name: scheduler slice in ns} of PID's threads, from sched_getattr(2), which on
    Linux 6.12 and later reports a fair task's slice as sched_runtime."""
    import ctypes
    import os

    class SchedAttr(ctypes.Structure):
        _fields_ = [("size", ctypes.c_uint32), ("policy", ctypes.c_uint32), ("flags", ctypes.c_uint64),
                    ("nice", ctypes.c_int32), ("priority", ctypes.c_uint32), ("runtime", ctypes.c_uint64),
                    ("deadline", ctypes.c_uint64), ("period", ctypes.c_uint64),
                    ("util_min", ctypes.c_uint32), ("util_max", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            name = f.read().strip()
        a = SchedAttr()
        assert libc.syscall(315, int(tid), ctypes.byref(a), ctypes.sizeof(a), 0) == 0  # SYS_sched_getattr
        out[name] = a.runtime
    return out


def custom_slices_supported():
    """Whether this kernel keeps a custom slice for SCHED_OTHER (EEVDF, Linux 6.12+)."""
    import platform
    major, minor = (int(x) for x in platform.release().split(".")[:2])
    return (major, minor) >= (6, 12)


def test_workers_are_named_and_ask_for_a_short_slice_which_a_reload_changes(relays, echo):
    """Each worker thread is called pst-worker-N (the recording writer pst-audit, so `top -H`
    tells them apart) and asks the scheduler for worker_slice µs (default 100): a relaying
    thread that many sessions wait on should run soon after it is woken."""
    port = free_port()
    relay = relays(Relay.tcp_target("echo", port, echo.port), workers="2")
    assert_echoes(port)
    slices = wait_for(lambda: (lambda s: s if "pst-worker-1" in s else None)(thread_slices(relay.pid)),
                      5, "named worker threads")
    assert {"pst-worker-0", "pst-worker-1"} <= set(slices), slices
    if not custom_slices_supported():
        pytest.skip("this kernel has no custom scheduler slices (Linux 6.12+)")
    assert slices["pst-worker-0"] == slices["pst-worker-1"] == 100_000
    relay.write_config(Relay.config(Relay.tcp_target("echo", port, echo.port), workers="2", worker_slice="0"))
    relay.ctl("reload")
    assert_echoes(port)             # the workers wake, and take the new value on their next pass
    wait_for(lambda: thread_slices(relay.pid)["pst-worker-0"] != 100_000, 5, "the kernel's default slice")
    relay.write_config(Relay.config(Relay.tcp_target("echo", port, echo.port), workers="2", worker_slice="2000"))
    relay.ctl("reload")
    assert_echoes(port)
    wait_for(lambda: thread_slices(relay.pid)["pst-worker-0"] == 2_000_000, 5, "a 2 ms slice")


@pytest.mark.parametrize("value", ["50", "100001", "-1", "\"fast\""])
def test_worker_slice_out_of_range_is_refused_by_check(relays, value):
    relay = relays("", worker_slice=value, start=False)
    r = run_posternd("--check", "-c", relay.config_path)
    assert r.returncode == 1
    assert "worker_slice" in r.stderr, r.stderr


def test_unreachable_target_closes_the_client_promptly_and_is_logged(relays, echo):
    down_port, echo_port = free_port(), free_port()
    dead = free_port()   # nothing listens there
    relay = relays(Relay.tcp_target("down", down_port, dead) + Relay.tcp_target("echo", echo_port, echo.port))
    with connect(down_port) as s:
        t0 = time.monotonic()
        assert relayutil.is_closed(s, timeout=3), "client still open 3 s after the target refused"
        assert time.monotonic() - t0 < 2
    relay.wait_log(r'msg="target unreachable" .*target=down .*address=127\.0\.0\.1:%d' % dead)
    relay.wait_log(r'msg="session end" .*target=down .*reason="target unreachable"')
    assert_echoes(echo_port)


def test_target_that_never_answers_is_given_up_after_connect_timeout(relays):
    with StalledListener() as stalled:
        port = free_port()
        relay = relays(Relay.tcp_target("stalled", port, stalled.port), connect_timeout="1")
        with connect(port) as s:
            t0 = time.monotonic()
            assert relayutil.is_closed(s, timeout=5)
            waited = time.monotonic() - t0
        assert 0.8 < waited < 3, f"client closed {waited:.2f} s after connecting; connect_timeout = 1"
        relay.wait_log(r'msg="target unreachable" .*target=stalled .*error=".*timed out')


def test_client_half_close_before_the_target_answers_still_gets_the_answer(relays):
    # Like `echo hello | nc -N relay port` in front of a target ~1 s away: the request and
    # the FIN reach posternd before its onward connect completes.
    with StalledListener() as stalled:
        port = free_port()
        relays(Relay.tcp_target("slow", port, stalled.port))

        def serve_once():
            conn = stalled.accept(timeout=4)
            if conn is not None:
                with conn:
                    conn.sendall(relayutil.recv_all(conn))
        with connect(port) as s:
            s.sendall(b"hello")
            s.shutdown(socket.SHUT_WR)
            time.sleep(0.2)
            stalled.release()
            server = threading.Thread(target=serve_once, daemon=True)
            server.start()
            try:
                answer = relayutil.recv_all(s)
            except ConnectionResetError:
                answer = b"<reset>"
        server.join(5)
        assert answer == b"hello"


def test_garbage_and_abrupt_resets_do_not_disturb_other_sessions(relays, echo):
    echo_port, bulk_port = free_port(), free_port()
    with SourceServer(None) as source:
        relay = relays(Relay.tcp_target("echo", echo_port, echo.port) +
                       Relay.tcp_target("bulk", bulk_port, source.port))
        with connect(echo_port) as live:
            assert_echoes(live, b"before")
            for i in range(20):
                s = connect(echo_port)
                s.sendall(os.urandom(1000 * (i + 1)))    # garbage; echoed, never read
                if i % 2:
                    time.sleep(0.01)
                reset_close(s)
            for _ in range(5):                            # reset in the middle of a bulk stream
                s = connect(bulk_port)
                recv_exactly(s, 1 << 20)
                reset_close(s)
            s = connect(echo_port)                        # reset before the target answers
            reset_close(s)
            assert_echoes(live, os.urandom(100_000))
            wait_for(lambda: relay.session_count() == 1, 10, "the reset sessions to end")
            assert_echoes(live, b"after")
            assert [x["client"] for x in relay.sessions()] == ["%s:%d" % live.getsockname()]
        wait_for(lambda: relay.session_count() == 0, 10, "the live session to end")
        assert relay.proc.poll() is None


# --- admin socket -------------------------------------------------------------------------

def test_kill_ends_that_session_and_only_that_one(echo_relay):
    with connect(echo_relay.port) as a, connect(echo_relay.port) as b:
        assert_echoes(a)
        assert_echoes(b)
        victim = session_of(echo_relay, a)["id"]
        r = echo_relay.ctl("kill", victim)
        assert victim in r.stdout
        assert relayutil.is_closed(a, timeout=3)
        assert_echoes(b, b"still here")
        assert [s["client"] for s in echo_relay.sessions()] == ["%s:%d" % b.getsockname()]
    echo_relay.wait_log(r'msg="session end" sid=%s .*reason="session ended by an administrator"' % victim)


def test_kill_of_an_unknown_session_fails_with_a_clear_error(echo_relay):
    r = echo_relay.ctl("kill", "0123456789abcdef", check=False)
    assert r.returncode != 0
    assert "no live session has id" in r.stderr


def test_sessions_table_and_json_show_protocol_target_client_and_bytes(echo_relay):
    with connect(echo_relay.port) as s:
        assert_echoes(s, b"x" * 1000)
        client = "%s:%d" % s.getsockname()
        entry = session_of(echo_relay, s)
        assert entry["protocol"] == "tcp"
        assert entry["target"] == "echo"
        assert entry["client"] == client
        assert (entry["bytes_up"], entry["bytes_down"]) == (1000, 1000)
        assert entry["state"] == "active"
        assert re.fullmatch(r"[0-9a-f]{16}", entry["id"])
        table = echo_relay.ctl("sessions").stdout.splitlines()
        for column in ("ID", "PROTOCOL", "TARGET", "CLIENT", "UP", "DOWN"):
            assert column in table[0].split()
        row = next(line for line in table[1:] if line.startswith(entry["id"]))
        assert {"tcp", "echo", client} <= set(row.split())
        assert row.count("1000 B") == 2, row        # bytes up and down


def test_admin_socket_is_mode_0600(echo_relay):
    mode = os.stat(echo_relay.admin_socket).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


# --- reload -------------------------------------------------------------------------------

BROKEN_CONFIGS = {
    # name: (text appended to the good config, what the error must say)
    "syntax_error": ("workers = = 3\n", r"unexpected symbol"),
    "unknown_setting": ("bogus_setting = 1\n", r'unknown setting "bogus_setting"'),
}


@pytest.mark.parametrize("kind", sorted(BROKEN_CONFIGS))
def test_reload_of_a_broken_config_is_refused_and_the_old_one_stays(echo_relay, kind):
    good = open(echo_relay.config_path).read()
    bad_line = good.count("\n") + 1
    appended, message = BROKEN_CONFIGS[kind]
    with open(echo_relay.config_path, "a") as f:
        f.write(appended)
    where = re.escape(f"{echo_relay.config_path}:{bad_line}:")
    with connect(echo_relay.port) as live:
        r = echo_relay.ctl("reload", check=False)
        assert r.returncode != 0
        assert re.search(where + ".*" + message, r.stderr), r.stderr
        echo_relay.wait_log(r'level=error msg="reload refused; previous configuration stays in force" '
                            r'error=".*' + where)
        assert_echoes(live)
    assert_echoes(echo_relay.port)


def test_sighup_with_a_broken_config_is_refused_and_logged(echo_relay):
    with open(echo_relay.config_path, "a") as f:
        f.write("workers = = 3\n")
    echo_relay.signal(signal.SIGHUP)
    echo_relay.wait_log(r'msg="reload refused; previous configuration stays in force" error=".*posternd\.lua:\d+:')
    assert_echoes(echo_relay.port)
    assert echo_relay.proc.poll() is None


def test_reload_adds_a_new_tcp_listener_and_removes_a_dropped_one(echo_relay, echo):
    new_port = free_port()
    assert refused(new_port)
    echo_relay.write_config(Relay.config(Relay.tcp_target("echo2", new_port, echo.port)))
    r = echo_relay.ctl("reload")
    assert "configuration reloaded" in r.stdout
    assert_echoes(new_port)
    assert refused(echo_relay.port)
    echo_relay.wait_log(r'msg="listener closed" listen=127\.0\.0\.1:%d' % echo_relay.port)
    echo_relay.wait_log(r'msg="?listening"? .*target=echo2 .*listen=127\.0\.0\.1:%d' % new_port)


def test_reload_keeps_live_sessions_of_a_dropped_target(echo_relay, echo):
    with connect(echo_relay.port) as live:
        assert_echoes(live)
        echo_relay.write_config(Relay.config(Relay.tcp_target("other", free_port(), echo.port)))
        echo_relay.ctl("reload")
        assert refused(echo_relay.port)
        assert_echoes(live, b"still relayed")


# --- shutdown -----------------------------------------------------------------------------

def test_sigterm_stops_listening_at_once_and_lets_live_sessions_finish(echo_relay):
    with connect(echo_relay.port) as live:
        assert_echoes(live)
        echo_relay.signal(signal.SIGTERM)
        wait_for(lambda: refused(echo_relay.port), 1, "the listener to close")
        for i in range(5):
            assert_echoes(live, b"working %d" % i)
            time.sleep(0.1)
        assert echo_relay.proc.poll() is None, "posternd exited while a session was live"
    t0 = time.monotonic()
    assert echo_relay.wait(5) == 0
    assert time.monotonic() - t0 < 2
    assert 'msg="posternd stopped"' in echo_relay.log()


def test_sigterm_ends_sessions_that_outlast_shutdown_grace(relays, echo):
    port = free_port()
    relay = relays(Relay.tcp_target("echo", port, echo.port), shutdown_grace="1")
    with connect(port) as live:
        assert_echoes(live)
        t0 = time.monotonic()
        relay.signal(signal.SIGTERM)
        assert relayutil.is_closed(live, timeout=5)
        ended = time.monotonic() - t0
        assert relay.wait(5) == 0
    assert 0.8 < ended < 3, f"session ended {ended:.2f} s after SIGTERM with shutdown_grace = 1"
    relay.wait_log(r'msg="session end" .*reason="relay shutting down"')


# --- start-up errors ----------------------------------------------------------------------

def run_posternd(*args, timeout=10):
    return subprocess.run([relayutil.POSTERND, *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_check_prints_every_error_as_file_and_line_and_exits_1(relays):
    relay = relays('target "t" { protocol = "tcp", listen = "127.0.0.1:1", address = "127.0.0.1:2", nope = 1 }\n'
                   "bogus_setting = 1\n", start=False)
    lines = open(relay.config_path).read().splitlines()
    target_line = next(i for i, l in enumerate(lines, 1) if l.startswith("target"))
    r = run_posternd("--check", "-c", relay.config_path)
    assert r.returncode == 1
    assert f"{relay.config_path}:{target_line}: " in r.stderr and 'unknown field "nope"' in r.stderr
    assert f"{relay.config_path}:{target_line + 1}: " in r.stderr and 'unknown setting "bogus_setting"' in r.stderr


def test_check_accepts_a_good_config(relays, echo):
    relay = relays(Relay.tcp_target("echo", free_port(), echo.port), start=False)
    r = run_posternd("--check", "-c", relay.config_path)
    assert r.returncode == 0, r.stderr
    assert "ok (1 targets)" in r.stdout


def one_line(text):
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{text}"
    return lines[0]


def test_missing_config_file_is_one_clear_line_and_exit_1(tmp_path):
    path = str(tmp_path / "absent.lua")
    r = run_posternd("-c", path)
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert path in line and "No such file" in line


def test_listen_port_in_use_is_one_clear_line_and_exit_1(relays, echo):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        relay = relays(Relay.tcp_target("echo", port, echo.port), start=False)
        r = run_posternd("-c", relay.config_path)
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert f"127.0.0.1:{port}" in line and "in use" in line


def test_admin_socket_in_use_by_a_running_posternd_is_one_clear_line_and_exit_1(echo_relay, relays, echo):
    second = relays(Relay.tcp_target("echo", free_port(), echo.port),
                    admin_socket=json.dumps(echo_relay.admin_socket), start=False)
    r = run_posternd("-c", second.config_path)
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert echo_relay.admin_socket in line and "in use" in line
    echo_relay.ctl("status")          # the first one's socket is untouched
    assert_echoes(echo_relay.port)


@pytest.mark.parametrize("index", ['function() error("boom") end', "function() while true do end end"])
def test_reload_of_a_config_whose_tables_run_hostile_code_is_refused(echo_relay, echo, index):
    """Reading the settings and target tables runs inside the sandbox's protected, budgeted
    call: a metatable whose __index fails or loops makes the reload fail, not posternd."""
    good = open(echo_relay.config_path).read()
    with open(echo_relay.config_path, "a") as f:
        f.write('target "hostile" (setmetatable({ protocol = "tcp" }, { __index = %s }))\n' % index)
    try:
        r = echo_relay.ctl("reload", check=False)
        assert r.returncode != 0
        assert "could not be read" in r.stderr or "error" in r.stderr, r.stderr
        assert_echoes(echo_relay.port)
        assert echo_relay.ctl("status").returncode == 0
    finally:
        with open(echo_relay.config_path, "w") as f:
            f.write(good)
