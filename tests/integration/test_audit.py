"""Session recordings end to end: real psql sessions through a real posternd are recorded,
encrypted to the sandbox auditor's key, and read back with `posternctl audit`: show, verify,
replay, export, search, ls. Tampered files are caught; a posternd killed with SIGKILL leaves
a recording that verifies as incomplete; low disk space refuses sessions (fail closed).

Tests that need a posternd of their own (kill -9, refusal, retention) start a clone of the
sandbox's: the same state directory (CA, users, node key) copied, its own ports and audit
directory."""

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time
import uuid

import psycopg2
import pytest

from relayutil import Relay, free_port, wait_for
from test_pg import policy

REC_HDR = 13          # record header: u8 type, u32 len, u64 ts (big-endian)
EXIT_INTACT, EXIT_TAMPERED, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_UNREADABLE = 0, 1, 2, 3, 4


# --- helpers ---------------------------------------------------------------------------------

def dsn(sb, port=None, **extra):
    d = sb.env["POSTERN_PG_DSN"]
    if port is not None:
        d = re.sub(r"port=\d+", f"port={port}", d)
    return d + "".join(f" {k}={v}" for k, v in extra.items())


def ctl(sb, *args, env=None, timeout=60):
    """posternctl audit ARGS in the sandbox's environment, with ENV's variables in its place."""
    full = dict(os.environ, **sb.env)
    full.update(env or {})
    return subprocess.run(["posternctl", "audit", *args], env=full, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def marker():
    return "m" + uuid.uuid4().hex[:12]


def psql(sb, *statements, port=None, check=True):
    args = ["psql", "-X", "-q", dsn(sb, port)]
    for s in statements:
        args += ["-c", s]
    r = sb.run(args)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def find_session(sb, text, audit_dir=None, timeout=10):
    """The session id of the recording holding a statement with TEXT (once it is written)."""
    env = {"POSTERN_AUDIT_DIR": audit_dir} if audit_dir else None

    def look():
        r = ctl(sb, "search", "--query", text, "--json", env=env)
        lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        return lines[0]["session"] if lines else None
    return wait_for(look, timeout, f"a recording with {text!r}")


def wait_closed(sb, sid, audit_dir=None, timeout=10):
    env = {"POSTERN_AUDIT_DIR": audit_dir} if audit_dir else None
    wait_for(lambda: ctl(sb, "verify", sid, env=env).returncode == EXIT_INTACT, timeout, f"recording {sid} to close")


def recording_path(sb, sid, audit_dir=None):
    d = audit_dir or sb.env["POSTERN_AUDIT_DIR"]
    names = [n for n in os.listdir(d) if n.endswith(f"-{sid}.prec")]
    assert len(names) == 1, names
    return os.path.join(d, names[0])


def records(data):
    """(offset, type, total length) of every record after the header."""
    off = 12 + struct.unpack(">I", data[8:12])[0]
    out = []
    while off + REC_HDR <= len(data):
        length = struct.unpack(">I", data[off + 1:off + 5])[0]
        out.append((off, chr(data[off]), REC_HDR + length))
        off += REC_HDR + length
    return out


def start_clone(sb, tmp_path, **settings):
    """A second posternd on the sandbox's state (copied), with its own ports and audit dir."""
    d = str(tmp_path / "clone")
    os.makedirs(d)
    shutil.copytree(os.path.join(sb.dir, "state"), os.path.join(d, "state"),
                    ignore=shutil.ignore_patterns("*.sock"))
    port = free_port()
    base = {"state_dir": json.dumps(os.path.join(d, "state")), "admin_socket": "@ADMIN_SOCKET@",
            "log_file": "@LOG_FILE@", "listen": f'{{ postgres = "127.0.0.1:{port}" }}',
            "audit_dir": json.dumps(os.path.join(d, "audit"))}
    base.update(settings)
    replaced = re.compile(r"\s*(api_listen|" + "|".join(base) + r")\s*=")
    # The sandbox's own lines for these settings go (Lua keeps the last assignment), and so do
    # its tcp targets, whose ports the sandbox's posternd holds.
    lines = [line for line in open(sb.env["POSTERN_CONFIG"]).read().splitlines()
             if not replaced.match(line) and 'protocol = "tcp"' not in line]
    text = "\n".join(f"{k} = {v}" for k, v in base.items()) + "\n" + "\n".join(lines) + "\n"
    relay = Relay(text, dir=d)
    relay.start()
    relay.port = port
    relay.audit_dir = os.path.join(d, "audit")
    return relay


@contextlib.contextmanager
def clone(sb, tmp_path, **settings):
    relay = start_clone(sb, tmp_path, **settings)
    try:
        yield relay
    finally:
        relay.stop()


@pytest.fixture
def audited(relay):
    if not relay.env.get("POSTERN_AUDIT_KEY"):
        pytest.skip("the sandbox has no auditor key (posternctl was not built)")
    return relay


@pytest.fixture(scope="module")
def long_session(sandbox):
    """A closed recording of a session big enough for several chunks and signatures."""
    relay = sandbox
    if not relay.relay or not relay.env.get("POSTERN_AUDIT_KEY"):
        pytest.skip("posternd is not built, or the sandbox has no auditor key")
    m = marker()
    filler = "x" * 2000
    script = "".join(f"select '{m}', {i}, '{filler}';\n" for i in range(150))
    r = relay.run(["psql", "-X", "-q", "-o", "/dev/null", dsn(relay), "-f", "-"], input=script)
    assert r.returncode == 0, r.stderr
    sid = find_session(relay, m)
    wait_closed(relay, sid)
    return sid, m


# --- show, grep, redaction -------------------------------------------------------------------

def test_psql_statements_appear_in_show_in_order_with_their_outcomes(audited):
    m = marker()
    psql(audited, f"select '{m}' as a", "select 1/0", "select generate_series(1, 3)", check=False)
    sid = find_session(audited, m)
    wait_closed(audited, sid)
    r = ctl(audited, "show", sid)
    assert r.returncode == EXIT_INTACT, r.stderr
    lines = r.stdout.splitlines()
    kinds = [line.split()[1] for line in lines if not line.startswith("--")]
    assert kinds[0] == "start" and kinds[1] == "access" and kinds[-1] == "end"
    body = [line.split(None, 1)[1] for line in lines if re.search(r" (statement|outcome) ", line)]
    assert re.match(rf"statement\s+#1 query allow: select '{m}' as a", body[0])
    assert re.match(r"outcome\s+#1 SELECT 1, 1 row, [\d.]+ (µs|ms)", body[1])
    assert re.match(r"statement\s+#2 query allow: select 1/0", body[2])
    assert re.match(r"outcome\s+#2 ERROR 22012", body[3])
    assert re.match(r"statement\s+#3 query allow: select generate_series\(1, 3\)", body[4])
    assert re.match(r"outcome\s+#3 SELECT 3, 3 rows", body[5])
    assert "client quit (client_quit)" in lines[-2]
    assert lines[-1].startswith("-- intact")


def worker_wakeups(pid):
    """Voluntary context switches of PID's worker threads so far (each sleep and wakeup)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            if not f.read().startswith("pst-worker"):
                continue
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            total += next(int(l.split()[1]) for l in f if l.startswith("voluntary_ctxt_switches"))
    return total


def test_idle_recorded_sessions_cost_their_worker_no_wakeups_and_traffic_after_idling_is_recorded(audited):
    """A recording's flush timer rests once nothing moves, so idle sessions do not wake their
    worker every second; bytes that move later restart it and are recorded."""
    with open(os.path.join(audited.env["POSTERN_DIR"], "pids")) as f:
        pid = json.load(f)["posternd"]
    conns = [psycopg2.connect(dsn(audited)) for _ in range(40)]
    try:
        for c in conns:
            c.autocommit = True
            c.cursor().execute("select 1")
        time.sleep(2.5)                             # past one flush interval: the timers rest
        w0 = worker_wakeups(pid)
        time.sleep(3)
        woke = worker_wakeups(pid) - w0
        print(f"worker wakeups in 3 s with 40 idle recorded sessions: {woke}")
        assert woke < 40, f"idle sessions woke their worker {woke} times in 3 s"
        m = marker()
        cur = conns[0].cursor()
        cur.execute(f"select '{m}'")
        assert cur.fetchone() == (m,)
        sid = find_session(audited, m)
    finally:
        for c in conns:
            c.close()
    wait_closed(audited, sid)
    r = ctl(audited, "show", sid)
    assert r.returncode == EXIT_INTACT, r.stderr
    assert re.search(rf"statement\s+#\d+ query allow: select '{m}'", r.stdout), r.stdout


def test_show_json_gives_one_event_object_a_line(audited):
    m = marker()
    psql(audited, f"select '{m}'")
    sid = find_session(audited, m)
    wait_closed(audited, sid)
    r = ctl(audited, "show", sid, "--json")
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["type"] for e in events][:2] == ["start", "access"]
    start = events[0]
    assert start["user"] == "demo" and start["target"] == "pg" and start["login"] == "app" and start["tls"] is True
    stmt = next(e for e in events if e["type"] == "statement")
    assert stmt["text"] == f"select '{m}'" and stmt["decision"] == "allow" and stmt["seq"] == 1
    out = next(e for e in events if e["type"] == "outcome")
    assert out["tag"] == "SELECT 1" and out["rows"] == 1 and out["duration_us"] > 0
    assert events[-1]["type"] == "end" and events[-1]["cause"] == "client_quit"


def test_the_audit_directory_holds_no_statement_text(audited):
    m = marker()
    psql(audited, f"select '{m}'")
    sid = find_session(audited, m)
    r = subprocess.run(["grep", "-r", "-l", m, audited.env["POSTERN_AUDIT_DIR"]], capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == ""
    path = recording_path(audited, sid)
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_a_password_in_a_statement_is_redacted_before_it_is_recorded(audited):
    m = marker()
    psql(audited, f"select '{m}'", f"alter role no_such_role_{m} password 'pw-{m}'", check=False)
    sid = find_session(audited, m)
    wait_closed(audited, sid)
    r = ctl(audited, "show", sid)
    assert f"alter role no_such_role_{m} password '***'" in r.stdout
    assert f"pw-{m}" not in r.stdout
    assert "[secrets redacted]" in r.stdout


def test_a_denied_statement_is_recorded_with_the_policy_reason(audited):
    m = marker()
    deny = ('function on_query(s, q)\n  if q.text:find("forbidden", 1, true) then return deny("not here") end\n'
            '  return allow()\nend\n')
    with policy(audited, deny):
        psql(audited, f"select '{m}'", "select 'forbidden'", check=False)
    sid = find_session(audited, m)
    wait_closed(audited, sid)
    out = ctl(audited, "show", sid).stdout
    assert re.search(r"statement\s+#2 query deny \(not here\): select 'forbidden'", out)
    assert re.search(r"outcome\s+#2 ERROR 42501", out)
    assert "1 denied" in out


def test_a_session_killed_by_the_admin_ends_with_that_cause(audited):
    m = marker()
    conn = psycopg2.connect(dsn(audited))
    try:
        conn.autocommit = True
        conn.cursor().execute(f"select '{m}'")
        sessions = json.loads(audited.run(["posternctl", "sessions", "--json"]).stdout)["sessions"]
        sid = next(s["id"] for s in sessions if s["user"] == "demo" and s["state"] == "active")
        assert audited.run(["posternctl", "kill", sid]).returncode == 0
        wait_closed(audited, sid)
    finally:
        conn.close()
    events = [json.loads(line) for line in ctl(audited, "show", sid, "--json").stdout.splitlines()]
    assert events[-1]["type"] == "end" and events[-1]["cause"] == "killed_by_admin"


# --- verify ------------------------------------------------------------------------------------

def tamper_copy(sb, tmp_path, sid, mutate):
    """Copy the recording (and the node key) to a directory of its own, change it, verify it."""
    d = tmp_path / uuid.uuid4().hex[:8]
    d.mkdir()
    src = recording_path(sb, sid)
    data = bytearray(open(src, "rb").read())
    data = mutate(data, records(bytes(data)))
    (d / os.path.basename(src)).write_bytes(bytes(data))
    shutil.copy(os.path.join(sb.env["POSTERN_AUDIT_DIR"], "node-sandbox.pub"), d)
    return ctl(sb, "verify", sid, env={"POSTERN_AUDIT_DIR": str(d), "POSTERN_AUDIT_KEY": ""})


def test_an_untouched_recording_verifies_as_intact(audited, long_session, tmp_path):
    r = tamper_copy(audited, tmp_path, long_session[0], lambda d, recs: d)
    assert r.returncode == EXIT_INTACT, r.stdout
    assert re.search(r"intact\s+\d+ chunks", r.stdout)
    assert len([t for _, t, _ in records(open(recording_path(audited, long_session[0]), "rb").read()) if t == "C"]) >= 3


def flip(data, recs):
    off, _, _ = [r for r in recs if r[1] == "C"][1]
    data[off + REC_HDR + 50] ^= 0x01
    return data


def truncate(data, recs):
    off, _, length = [r for r in recs if r[1] == "C"][-1]
    return data[:off + length // 2]


def drop_chunk(data, recs):
    off, _, length = [r for r in recs if r[1] == "C"][1]
    return data[:off] + data[off + length:]


def swap_chunks(data, recs):
    (a, _, la), (b, _, lb) = [r for r in recs if r[1] == "C"][:2]
    return data[:a] + data[b:b + lb] + data[a + la:b] + data[a:a + la] + data[b + lb:]


def replace_user(data, recs):
    i = data.index(b'"user":"demo"')
    data[i + 8:i + 12] = b"mallory"[:4]
    return data


def remove_signature(data, recs):
    off, kind, _ = recs[-1]
    assert kind == "G"
    return data[:off]


@pytest.mark.parametrize("mutate", [flip, truncate, drop_chunk, swap_chunks, replace_user, remove_signature])
def test_a_changed_recording_is_reported_as_tampered(audited, long_session, tmp_path, mutate):
    r = tamper_copy(audited, tmp_path, long_session[0], mutate)
    assert r.returncode == EXIT_TAMPERED, r.stdout + r.stderr
    assert re.search(r"TAMPERED\s+\S", r.stdout)


def test_with_the_key_a_dropped_chunk_is_named_as_not_decrypting(audited, long_session, tmp_path):
    d = tmp_path / "k"
    d.mkdir()
    src = recording_path(audited, long_session[0])
    data = drop_chunk(bytearray(open(src, "rb").read()), records(open(src, "rb").read()))
    (d / os.path.basename(src)).write_bytes(bytes(data))
    r = ctl(audited, "verify", long_session[0], "--dir", str(d),
            "--node-key", os.path.join(audited.dir, "state", "audit_node.pub"))
    assert r.returncode == EXIT_TAMPERED
    assert "does not decrypt" in r.stdout


def test_verify_all_reports_every_recording_and_exit_codes_are_distinct(audited, long_session):
    r = ctl(audited, "verify", "--all", "--json")
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert any(line["session"] == long_session[0] and line["verdict"] == "intact" for line in lines)
    assert ctl(audited, "verify", "ffffffffffffffff").returncode == EXIT_UNREADABLE
    assert ctl(audited, "verify").returncode == EXIT_USAGE
    assert ctl(audited, "show", long_session[0], "--key", "/nonexistent").returncode == EXIT_UNREADABLE


def test_a_pinned_node_key_that_differs_is_tampered(audited, long_session, tmp_path):
    other = tmp_path / "node.pub"
    other.write_text(f"postern-node-ed25519 {base64.b64encode(os.urandom(32)).decode()} elsewhere\n")
    v = ctl(audited, "verify", long_session[0], "--node-key", str(other))
    assert v.returncode == EXIT_TAMPERED and "not the trusted one" in v.stdout


# --- crash: kill -9 --------------------------------------------------------------------------

def test_kill_9_mid_session_leaves_an_incomplete_recording_with_the_flushed_events(audited, tmp_path):
    m = marker()
    with clone(audited, tmp_path) as relay:
        conn = psycopg2.connect(dsn(audited, relay.port))
        conn.autocommit = True
        cur = conn.cursor()
        for i in range(3):
            cur.execute(f"select '{m}', {i}")
        time.sleep(2.5)       # past the 1 s flush interval: these are on disk
        os.kill(relay.pid, signal.SIGKILL)
        relay.proc.wait(10)
        conn.close()
    env = {"POSTERN_AUDIT_DIR": relay.audit_dir}
    names = [n for n in os.listdir(relay.audit_dir) if n.endswith(".prec")]
    assert len(names) == 1
    sid = names[0].split("-")[1].split(".")[0]
    v = ctl(audited, "verify", sid, env=env)
    assert v.returncode == EXIT_INCOMPLETE, v.stdout + v.stderr
    assert re.search(r"incomplete\s+last event at 20\d\d-", v.stdout)
    assert "stopped before closing" in v.stdout
    show = ctl(audited, "show", sid, env=env)
    assert show.returncode == EXIT_INCOMPLETE
    for i in range(3):
        assert f"select '{m}', {i}" in show.stdout
    assert show.stdout.splitlines()[-1].startswith("-- incomplete")


# --- fail closed ------------------------------------------------------------------------------

def test_low_disk_space_refuses_new_sessions_with_a_clear_message(audited, tmp_path):
    with clone(audited, tmp_path, audit_min_free='"1000T"') as relay:
        r = psql(audited, "select 1", port=relay.port, check=False)
        status = relay.ctl("status").stdout
    assert r.returncode != 0
    assert "recording is unavailable" in r.stderr and "sessions are refused until it is fixed" in r.stderr
    assert "audit_min_free" in r.stderr
    assert "recording: unavailable" in status


def test_audit_on_failure_allow_lets_sessions_go_on_unrecorded(audited, tmp_path):
    with clone(audited, tmp_path, audit_min_free='"1000T"', audit_on_failure='"allow"') as relay:
        r = psql(audited, "select 1", port=relay.port, check=False)
        log = relay.log()
    assert r.returncode == 0, r.stderr
    assert 'msg="session not recorded"' in log


def test_without_auditor_keys_recording_is_off_and_says_so(audited, tmp_path):
    with clone(audited, tmp_path, auditor_keys="{}") as relay:
        r = psql(audited, "select 1", port=relay.port, check=False)
        status = relay.ctl("status").stdout
        log = relay.log()
    assert r.returncode == 0, r.stderr
    assert "recording: off" in status
    assert 'msg="recording is off"' in log


def test_retention_deletes_recordings_older_than_the_limit(audited, long_session, tmp_path):
    with clone(audited, tmp_path, audit_retention_days="7") as relay:
        old = os.path.join(relay.audit_dir, "20000101-00000000000000aa.prec")
        shutil.copy(recording_path(audited, long_session[0]), old)
        past = time.time() - 30 * 86400
        os.utime(old, (past, past))
        wait_for(lambda: not os.path.exists(old), 15, "retention to delete the old recording")
        assert re.search(r'msg="recording deleted by retention" file=20000101-00000000000000aa.prec', relay.log())


# --- replay, export, ls, search ------------------------------------------------------------

def test_replay_prints_the_query_timeline_with_timing(audited):
    m = marker()
    psql(audited, f"select '{m}'", "select pg_sleep(0.3)")
    sid = find_session(audited, m)
    wait_closed(audited, sid)
    r = ctl(audited, "replay", sid, "--speed", "0")
    assert r.returncode == EXIT_INTACT
    lines = r.stdout.splitlines()
    assert re.match(r"\[\+\s+0\.000s\] -- demo@pg \(postgres, login app, database appdb\)", lines[0])
    assert any(re.match(rf"\[\+\s*[\d.]+s\] #1 query: select '{m}'", line) for line in lines)
    sleep = next(line for line in lines if "#2 SELECT 1" in line)
    assert re.search(r"· (2|3)\d\d\.\d ms", sleep)
    assert "session ended: client quit" in lines[-1]
    t0 = time.monotonic()
    ctl(audited, "replay", sid, "--speed", "1")
    assert time.monotonic() - t0 >= 0.25      # the pg_sleep gap is replayed


def test_export_jsonl_is_one_json_object_a_line_for_a_siem(audited):
    m = marker()
    psql(audited, f"select '{m}'")
    sid = find_session(audited, m)
    wait_closed(audited, sid)
    r = ctl(audited, "export", sid, "--format", "jsonl")
    assert r.returncode == EXIT_INTACT
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["session"] == sid and "auditors" not in lines[0]
    stmt = next(line for line in lines if line["type"] == "statement")
    assert stmt["text"] == f"select '{m}'" and stmt["user"] == "demo" and stmt["session"] == sid
    assert lines[-1] == {"type": "integrity", "session": sid, "verdict": "intact", "detail": "", "trusted_key": True}


def test_export_asciicast_is_v2_that_asciinema_reads(audited, tmp_path):
    m = marker()
    psql(audited, f"select '{m}'", "select 2")
    sid = find_session(audited, m)
    wait_closed(audited, sid)
    cast = tmp_path / "s.cast"
    r = ctl(audited, "export", sid, "--format", "asciicast", "-o", str(cast))
    assert r.returncode == EXIT_INTACT, r.stderr
    lines = cast.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2 and header["width"] > 0 and header["height"] > 0 and isinstance(header["timestamp"], int)
    last = 0.0
    for line in lines[1:]:
        t, kind, data = json.loads(line)
        assert isinstance(t, float) and t >= last and kind in ("o", "i", "r") and isinstance(data, str)
        last = t
    text = "".join(json.loads(line)[2] for line in lines[1:])
    assert f"#1 query: select '{m}'" in text and "-> #2 SELECT 1" in text
    if shutil.which("asciinema") and shutil.which("script"):
        # asciinema wants a terminal: script(1) gives it one.
        for cmd in (f"asciinema cat {cast}", f"asciinema play -s 50 {cast}"):
            out = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=30,
                                 stdin=subprocess.DEVNULL)
            assert out.returncode == 0, out.stdout + out.stderr
            assert f"select '{m}'" in out.stdout


def test_ls_lists_from_headers_with_filters_and_without_a_key(audited, long_session):
    env = {"POSTERN_AUDIT_KEY": ""}
    r = ctl(audited, "ls", "--user", "demo", "--target", "p*", "--protocol", "postgres", "--since", "1h", "--json", env=env)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    row = next(x for x in rows if x["session"] == long_session[0])
    assert row["user"] == "demo" and row["login"] == "app" and row["roles"] == ["demo"] and row["serial"] > 0
    assert "stream_header" not in row and row["size"] > 0
    assert json.loads(ctl(audited, "ls", "--user", "nobody", "--json", env=env).stdout) == []
    assert json.loads(ctl(audited, "ls", "--until", "2000-01-01", "--json", env=env).stdout) == []
    table = ctl(audited, "ls", env=env).stdout
    assert re.search(rf"^{long_session[0]}\s+20\d\d-\S+\s+demo\s+pg\s+postgres", table, re.M)


def test_search_finds_statements_across_recordings(audited, long_session):
    sid, m = long_session
    r = ctl(audited, "search", "--query", m.upper(), "--user", "demo")
    assert r.returncode == 0, r.stderr
    hits = [line for line in r.stdout.splitlines() if line.startswith(sid)]
    assert len(hits) == 150
    assert re.search(r"150 matches in \d+ recordings?", r.stderr)
    assert ctl(audited, "search", "--query", "no-such-text-" + m).stdout == ""


def test_keygen_writes_a_private_secret_and_a_public_key_and_never_overwrites(audited, tmp_path):
    key = tmp_path / "alice.key"
    r = ctl(audited, "keygen", str(key))
    assert r.returncode == 0, r.stderr
    assert os.stat(key).st_mode & 0o777 == 0o600
    assert (tmp_path / "alice.key.pub").read_text().startswith("postern-audit-x25519 ")
    assert ctl(audited, "keygen", str(key)).returncode != 0


def test_a_key_the_recording_is_not_sealed_to_cannot_show_it(audited, long_session, tmp_path):
    key = tmp_path / "bob.key"
    assert ctl(audited, "keygen", str(key)).returncode == 0
    r = ctl(audited, "show", long_session[0], "--key", str(key))
    assert r.returncode == EXIT_UNREADABLE
    assert "is not sealed to key" in r.stderr
