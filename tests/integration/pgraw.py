"""A raw PostgreSQL wire client for the tests that must send what no driver sends: pipelined
COPY tricks, FunctionCall, startup packets of any shape. TLS with the demo user's certificate."""

import socket
import ssl
import struct


def msg(tp, body):
    return tp + struct.pack("!I", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def Q(sql):
    return msg(b"Q", cstr(sql))


def P(sql, name=""):
    return msg(b"P", cstr(name) + cstr(sql) + b"\0\0")


def B(portal="", stmt=""):
    return msg(b"B", cstr(portal) + cstr(stmt) + b"\0\0" + b"\0\0" + b"\0\0")


def E(portal=""):
    return msg(b"E", cstr(portal) + b"\0\0\0\0")


S = msg(b"S", b"")


def F(oid, args):
    body = struct.pack("!IHH", oid, 0, len(args))
    for a in args:
        body += struct.pack("!i", -1) if a is None else struct.pack("!i", len(a)) + a
    return msg(b"F", body + struct.pack("!H", 0))


class Conn:
    """A TLS connection to the relay's PostgreSQL front, past startup."""

    def __init__(self, env, dbname="pg"):
        host, port = env["POSTERN_PG_FRONT_ADDR"].rsplit(":", 1)
        home = env["POSTERN_HOME"]
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(struct.pack("!II", 8, 80877103))
        assert s.recv(1) == b"S"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(f"{home}/cert.pem", f"{home}/key.pem")
        self.t = ctx.wrap_socket(s)
        self.buf = b""
        params = b"user\0demo\0database\0" + dbname.encode() + b"\0\0"
        self.t.sendall(struct.pack("!II", 8 + len(params), 196608) + params)
        self.until_ready()

    def send(self, data):
        self.t.sendall(data)

    def until_ready(self, timeout=10.0):
        """Messages up to and including the next ReadyForQuery: [(type, body)]."""
        out = []
        self.t.settimeout(timeout)
        while True:
            while len(self.buf) >= 5:
                tp, ln = self.buf[0:1], struct.unpack("!I", self.buf[1:5])[0]
                if len(self.buf) < 1 + ln:
                    break
                out.append((tp, self.buf[5:1 + ln]))
                self.buf = self.buf[1 + ln:]
                if tp == b"Z":
                    return out
            data = self.t.recv(65536)
            if not data:
                out.append((b"EOF", b""))
                return out
            self.buf += data

    def close(self):
        self.t.close()


def error_of(msgs):
    """(SQLSTATE, message) of the first ErrorResponse, or None."""
    for tp, body in msgs:
        if tp == b"E":
            fields = dict((f[:1].decode(), f[1:].decode(errors="replace")) for f in body.split(b"\0") if f)
            return fields.get("C"), fields.get("M")
    return None
