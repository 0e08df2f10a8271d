"""Identity end to end: enrolment with invites, challenge/response login with TOTP,
short-lived certificates, the checks on every connection, and offboarding, against a real
posternd. Connections go to a `tcp` target over TLS with the issued certificate."""

import contextlib
import os
import socket
import ssl
import subprocess
import time

import nacl.signing
import pytest

from apiclient import Api, Device, totp, write_credentials
from relayutil import EchoServer, Relay, free_port, wait_for

ROLES = """
role "dev" { members = { "alice", "carol", "dave" }, targets = { "echo" }, ttl = "1h" }
role "ops" { members = { "bob" }, targets = { "echo", "other" }, ttl = "1h", mfa = true }
role "short" { members = { "eve" }, targets = { "echo" }, ttl = 3 }
"""


class Env:
    def __init__(self, tmp):
        self.tmp = tmp
        self.echo = EchoServer()
        self.api_port = free_port()
        self.echo_port = free_port()
        self.other_port = free_port()
        targets = (Relay.tcp_target("echo", self.echo_port, self.echo.port, plaintext=False) +
                   Relay.tcp_target("other", self.other_port, self.echo.port, plaintext=False))
        self.relay = Relay(Relay.config(targets, roles_dir='"roles"',
                                        api_listen=f'"127.0.0.1:{self.api_port}"'))
        self.write_roles(ROLES)
        self.relay.start()
        self.api = Api(self.api_port, ca_file=os.path.join(self.relay.dir, "state", "ca.crt"))

    def write_roles(self, text):
        os.makedirs(os.path.join(self.relay.dir, "roles"), exist_ok=True)
        with open(os.path.join(self.relay.dir, "roles", "roles.lua"), "w") as f:
            f.write(text)

    def invite(self, user, *extra):
        out = self.relay.ctl("users", "invite", user, *extra).stdout
        return next(w for w in out.split() if "." in w and len(w) > 40)

    def enrolled(self, user):
        dev = Device()
        status, reply = dev.enrol(self.api, self.invite(user))
        assert status == 200, reply
        return dev

    def logged_in(self, user, name=None):
        dev = self.enrolled(user)
        code = totp(dev.totp_secret) if dev.totp_secret else None
        status, reply, key = dev.login(self.api, totp_code=code)
        assert status == 200, reply
        d = os.path.join(self.tmp, name or user)
        os.makedirs(d, exist_ok=True)
        return dev, reply, write_credentials(d, reply, key)

    def tls(self, port, creds, timeout=5):
        """A TLS connection to a tcp target with CREDS (cert, key, CA)."""
        ctx = ssl.create_default_context(cafile=creds["ca.crt"])
        ctx.load_cert_chain(creds["cert.pem"], creds["key.pem"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        return ctx.wrap_socket(raw, server_hostname="localhost")

    def close(self):
        self.relay.cleanup()
        self.echo.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = Env(str(tmp_path_factory.mktemp("identity")))
    yield e
    e.close()


def assert_refused(env, creds):
    """A connection with CREDS to the echo target ends without relaying a byte."""
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        with env.tls(env.echo_port, creds) as s:
            s.settimeout(3)
            s.sendall(b"x")
            if s.recv(10) == b"":
                raise ConnectionResetError("closed")


def echoes(sock, data=b"hello through postern"):
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    return got == data


def test_enrol_and_login_issue_certificates_that_verify(env):
    dev, reply, creds = env.logged_in("alice")
    assert reply["user"] == "alice" and reply["roles"] == ["dev"]
    assert 3590 <= reply["expires"] - time.time() <= 3600
    r = subprocess.run(["openssl", "verify", "-CAfile", creds["ca.crt"], "-purpose", "sslclient", creds["cert.pem"]],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cert = os.path.join(env.tmp, "alice", "id-cert.pub")
    with open(cert, "w") as f:
        f.write(reply["ssh_cert"] + "\n")
    out = subprocess.run(["ssh-keygen", "-L", "-f", cert], capture_output=True, text=True, check=True).stdout
    assert "user certificate" in out and f'Key ID: "user=alice serial={reply["serial"]}"' in out
    assert "Principals: \n                alice" in out


def test_certificate_reaches_a_granted_tcp_target(env):
    _, _, creds = env.logged_in("alice", "alice2")
    with env.tls(env.echo_port, creds) as s:
        assert echoes(s)
        sessions = env.relay.sessions()
        assert any(x["user"] == "alice" and x["target"] == "echo" for x in sessions)


def test_target_not_granted_is_refused_and_logged(env):
    _, _, creds = env.logged_in("alice", "alice3")
    with env.tls(env.other_port, creds) as s:
        s.settimeout(5)
        assert s.recv(10) == b""
    env.relay.wait_log(r'msg="access denied".*target=other.*no role grants user alice access to target')


def test_connection_without_certificate_is_refused(env):
    ctx = ssl.create_default_context(cafile=os.path.join(env.relay.dir, "state", "ca.crt"))
    raw = socket.create_connection(("127.0.0.1", env.echo_port), timeout=5)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(b"x")
        if s.recv(10) == b"":
            raise ConnectionResetError("closed")


def test_replayed_invite_is_refused(env):
    invite = env.invite("carol")
    assert Device().enrol(env.api, invite)[0] == 200
    status, reply = Device().enrol(env.api, invite)
    assert status == 403 and reply["code"] == "invalid_invite"


def test_expired_invite_is_refused(env):
    invite = env.invite("carol", "--ttl", "1")
    time.sleep(2.1)
    status, reply = Device().enrol(env.api, invite)
    assert status == 403 and "expired" in reply["error"]


def test_invite_for_a_user_in_no_role_is_refused(env):
    r = env.relay.ctl("users", "invite", "mallory", check=False)
    assert r.returncode != 0 and "not a member of any role" in r.stderr


def test_invite_pin_matches_the_ca(env):
    import base64
    import hashlib
    pin = env.invite("carol").split(".")[1]
    with open(os.path.join(env.relay.dir, "state", "ca.crt"), "rb") as f:
        digest = hashlib.sha256(f.read()).digest()[:20]
    assert pin == base64.b32encode(digest).decode().rstrip("=")


def test_mfa_role_requires_a_correct_totp_code_once(env):
    dev = env.enrolled("bob")
    assert dev.totp_secret, "an mfa role returns a TOTP URI at enrolment"
    status, reply, _ = dev.login(env.api)
    assert status == 401 and reply["code"] == "totp_required"
    wrong = f"{(int(totp(dev.totp_secret)) + 1) % 1000000:06d}"
    status, reply, _ = dev.login(env.api, totp_code=wrong)
    assert status == 401 and reply["code"] == "bad_totp"
    code = totp(dev.totp_secret)
    status, reply, _ = dev.login(env.api, totp_code=code)
    assert status == 200, reply
    status, reply, _ = dev.login(env.api, totp_code=code)
    assert status == 401 and reply["code"] == "bad_totp", "a TOTP code works once"


def test_signature_by_another_key_is_refused(env):
    dev = env.enrolled("dave")
    status, reply, _ = dev.login(env.api, sign_with=nacl.signing.SigningKey.generate())
    assert status == 403 and reply["code"] == "bad_proof"


def test_certificate_from_another_ca_is_refused(env, tmp_path):
    other = Relay(Relay.config(api_listen=f'"127.0.0.1:{free_port()}"'))
    try:
        for f in ("ca.key", "ca.crt"):
            pass
        other.start()
        d = str(tmp_path)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", f"{d}/key.pem", "-out", f"{d}/cert.pem", "-days", "1",
                        "-subj", "/CN=alice", "-addext", "extendedKeyUsage=clientAuth"],
                       check=True, capture_output=True)
        creds = {"cert.pem": f"{d}/cert.pem", "key.pem": f"{d}/key.pem",
                 "ca.crt": os.path.join(env.relay.dir, "state", "ca.crt")}
        assert_refused(env, creds)
    finally:
        other.cleanup()


def test_tampered_certificate_is_refused(env):
    _, _, creds = env.logged_in("alice", "alice4")
    with open(creds["cert.pem"]) as f:
        pem = f.read()
    lines = pem.splitlines()
    body = lines[5]
    lines[5] = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    with open(creds["cert.pem"], "w") as f:
        f.write("\n".join(lines) + "\n")
    assert_refused(env, creds)


def test_expired_certificate_is_refused(env):
    _, reply, creds = env.logged_in("eve")
    assert reply["expires"] - time.time() <= 3
    with env.tls(env.echo_port, creds) as s:
        assert echoes(s), "valid at first"
    time.sleep(max(0, reply["expires"] - time.time()) + 1.5)
    assert_refused(env, creds)


def test_lock_ends_live_sessions_within_a_second_and_refuses_login(env):
    dev, _, creds = env.logged_in("dave", "dave2")
    with env.tls(env.echo_port, creds) as s:
        assert echoes(s)
        t0 = time.monotonic()
        out = env.relay.ctl("users", "lock", "dave", "--reason", "left the company").stdout
        assert "1 live session" in out
        s.settimeout(2)
        assert s.recv(10) == b""
        assert time.monotonic() - t0 < 1.0
    env.relay.wait_log(r'reason="access revoked: the user is locked"')
    status, reply, _ = dev.login(env.api)
    assert status == 403 and reply["code"] == "locked" and "left the company" in reply["error"]
    assert_refused(env, creds)
    env.relay.ctl("users", "unlock", "dave")
    assert dev.login(env.api)[0] == 200


def test_removal_from_role_and_reload_ends_sessions(env):
    _, _, creds = env.logged_in("carol", "carol2")
    with env.tls(env.echo_port, creds) as s:
        assert echoes(s)
        env.write_roles(ROLES.replace('"alice", "carol", "dave"', '"alice", "dave"'))
        env.relay.ctl("reload")
        s.settimeout(2)
        assert s.recv(10) == b""
    env.relay.wait_log(r'reason="access revoked: no role grants this target any more"')
    env.write_roles(ROLES)
    env.relay.ctl("reload")


def test_broken_role_script_is_refused_and_old_roles_stay(env):
    _, _, creds = env.logged_in("alice", "alice5")
    env.write_roles(ROLES + '\nrole "x" { members = { "zed" }, targets = { "no-such-target" } }\n')
    r = env.relay.ctl("reload", check=False)
    assert r.returncode != 0 and 'roles.lua:6: role "x": target "no-such-target" is not configured' in r.stderr
    with env.tls(env.echo_port, creds) as s:
        assert echoes(s)
    env.write_roles(ROLES)


def test_role_script_whose_tables_run_hostile_code_is_refused(env):
    """Role tables are read inside the protected, budgeted call: an __index that loops makes
    the reload fail, and posternd goes on with the old roles."""
    _, _, creds = env.logged_in("alice", "alice6")
    env.write_roles(ROLES + '\nrole "x" (setmetatable({ members = { "zed" } }, '
                    '{ __index = function() while true do end end }))\n')
    try:
        r = env.relay.ctl("reload", check=False)
        assert r.returncode != 0 and "role script could not be read" in r.stderr, r.stderr
        with env.tls(env.echo_port, creds) as s:
            assert echoes(s)
    finally:
        env.write_roles(ROLES)


def test_users_ls_shows_roles_devices_and_locks(env):
    env.enrolled("alice")
    rows = {u["user"]: u for u in __import__("json").loads(env.relay.ctl("users", "ls", "--json").stdout)["users"]}
    assert rows["alice"]["roles"] == ["dev"] and len(rows["alice"]["devices"]) >= 1
    assert rows["bob"]["mfa"] is True
    table = env.relay.ctl("users", "ls").stdout
    assert table.splitlines()[0].split()[:3] == ["USER", "ROLES", "DEVICES"]


def test_removed_device_cannot_log_in(env):
    dev = env.enrolled("alice")
    env.relay.ctl("users", "rm-device", "alice", dev.device_id)
    status, reply, _ = dev.login(env.api)
    assert status == 403 and reply["code"] == "unknown_device"


def test_removed_device_loses_its_certificates_and_its_live_sessions(env):
    """A lost laptop: removing the device revokes the certificates issued to it (live
    sessions end at once, new connections are refused, also after a restart), while the
    user's other device goes on."""
    lost, _, creds = env.logged_in("alice", "alice-lost")
    _, _, desk = env.logged_in("alice", "alice-desk")
    with env.tls(env.echo_port, creds) as s, env.tls(env.echo_port, desk) as keep:
        assert echoes(s) and echoes(keep)
        t0 = time.monotonic()
        out = env.relay.ctl("users", "rm-device", "alice", lost.device_id).stdout
        assert "certificates are revoked; 1 live session ending" in out, out
        s.settimeout(2)
        assert s.recv(10) == b""
        assert time.monotonic() - t0 < 1.0
        assert echoes(keep)
    env.relay.wait_log(r'reason="access revoked: the certificate\'s device was removed"')
    assert_refused(env, creds)
    env.relay.wait_log(r"certificate \d+ was revoked: the device it was issued to was removed")
    env.relay.stop()
    env.relay.start()
    assert_refused(env, creds)
    with env.tls(env.echo_port, desk) as keep:
        assert echoes(keep)


def test_brute_force_hits_the_rate_limit(env):
    # A fresh relay: rate limits are per process and this test uses them up.
    e = Env(env.tmp + "/rl")
    try:
        dev = e.enrolled("bob")
        codes = []
        for _ in range(5):
            status, reply, _ = dev.login(e.api, totp_code="000000")
            codes.append(status)
        status, reply, _ = dev.login(e.api, totp_code=totp(dev.totp_secret))
        assert codes == [401] * 5
        assert status == 429 and reply["code"] == "rate_limited" and "try again in" in reply["error"]
        e.relay.wait_log(r'msg="login rate limited" user=bob')
    finally:
        e.close()


def test_bad_requests_get_clear_json_errors(env):
    assert env.api.call("GET", "/v1/login")[0] == 405
    status, reply = env.api.call("POST", "/v1/login", raw=b"{not json")
    assert status == 400 and reply["code"] == "bad_request"
    status, reply = env.api.call("POST", "/v1/enrol", {"invite": "x"})
    assert status == 400
    assert env.api.call("GET", "/nope")[0] == 404
    try:
        status = env.api.call("POST", "/v1/login", raw=b"x" * (200 << 10))[0]
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        status = "closed"   # refused before the client finished sending: also fine
    assert status in (400, 413, "closed")
    assert env.api.call("GET", "/v1/health")[1]["status"] == "ok", "the API goes on serving"


def test_state_files_are_private(env):
    state = os.path.join(env.relay.dir, "state")
    for name in ("ca.key", "server.key", "ssh_user_ca", "users.json"):
        assert os.stat(os.path.join(state, name)).st_mode & 0o077 == 0, name
    log = env.relay.log()
    with open(os.path.join(state, "ca.key")) as f:
        key_line = f.read().splitlines()[1]
    assert key_line not in log


def test_policy_on_connect_applies_to_tcp_targets(env):
    pol = os.path.join(env.relay.dir, "gate.lua")
    with open(pol, "w") as f:
        f.write('function on_connect(s)\n  if s.protocol == "tcp" then return deny("no raw tcp today") end\n  return allow()\nend\n')
    env.write_roles(ROLES + f'role "gated" {{ members = {{ "gus" }}, targets = {{ "echo" }}, ttl = "1h", policy = "{pol}" }}\n')
    env.relay.ctl("reload")
    try:
        _, _, creds = env.logged_in("gus")
        with env.tls(env.echo_port, creds) as s:
            s.settimeout(5)
            try:
                s.sendall(b"x")
                assert s.recv(10) == b""
            except (ConnectionResetError, ssl.SSLError):
                pass
        env.relay.wait_log(r'msg="session refused" sid=\w+ protocol=tcp target=echo user=gus reason="no raw tcp today"')
    finally:
        env.write_roles(ROLES)
        env.relay.ctl("reload")


# --- the login API's own limits ---------------------------------------------------------------

@contextlib.contextmanager
def api_relay(**settings):
    """A relay with only a login API, with SETTINGS (Lua text) added."""
    port = free_port()
    relay = Relay(Relay.config("", roles_dir='"roles"', api_listen=f'"127.0.0.1:{port}"', **settings))
    os.makedirs(os.path.join(relay.dir, "roles"), exist_ok=True)
    with open(os.path.join(relay.dir, "roles", "roles.lua"), "w") as f:
        f.write('role "dev" { members = { "alice" }, targets = { "*" }, ttl = "1h" }\n')
    relay.start()
    ctx = ssl.create_default_context(cafile=os.path.join(relay.dir, "state", "ca.crt"))
    ctx.check_hostname = False
    try:
        yield relay, port, ctx, Api(port, ca_file=os.path.join(relay.dir, "state", "ca.crt"))
    finally:
        relay.cleanup()


def _api_tls(port, ctx, timeout=5):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def test_login_api_closes_a_connection_that_trickles_past_its_lifetime():
    with api_relay(api_connection_lifetime="2") as (relay, port, ctx, api):
        s = _api_tls(port, ctx)
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        start, closed = time.monotonic(), False
        while time.monotonic() - start < 8:
            try:
                s.sendall(b"X")              # a header that never ends, a byte at a time
                s.settimeout(0.5)
                if s.recv(1) == b"":
                    closed = True
                    break
            except socket.timeout:
                continue
            except (ConnectionError, ssl.SSLError, OSError):
                closed = True
                break
        s.close()
        assert closed, "a trickling connection outlived api_connection_lifetime"
        assert 1.5 <= time.monotonic() - start < 6
        assert api.call("GET", "/v1/health")[0] == 200
        assert "outlived its lifetime" in relay.log()


def test_login_api_holds_new_connections_at_its_limit_and_serves_them_after():
    with api_relay(api_max_connections="3") as (relay, port, ctx, api):
        held = [_api_tls(port, ctx) for _ in range(3)]   # three idle connections: the limit
        time.sleep(0.3)
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)   # the kernel's backlog takes it
        raw.settimeout(1.0)
        with pytest.raises((socket.timeout, ssl.SSLError, TimeoutError)):
            ctx.wrap_socket(raw, server_hostname="localhost")  # no one accepts it: no handshake
        raw.close()
        assert "at its connection limit" in relay.log()
        held.pop().close()                                      # one ends: accepting resumes
        wait_for(lambda: api.call("GET", "/v1/health")[0] == 200, 5, "the login API to accept again")
        for s in held:
            s.close()
