"""A Python client for posternd's login API, for tests that need to bend the protocol
(replay an invite, send a wrong TOTP code, brute-force) in ways the real launcher never
would. The happy path is also tested with the real launcher (`postern login`).
Uses Debian's python3-nacl (Ed25519 device keys) and python3-cryptography (session keys).
"""

import base64
import hashlib
import hmac
import http.client
import json
import ssl
import struct
import time

import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIG_CONTEXT = b"postern-login-v1\n"


def totp(secret_b32, at=None, step=30, digits=6):
    """RFC 6238 TOTP (SHA-1) of the base32 SECRET_B32 at time AT."""
    pad = "=" * (-len(secret_b32) % 8)
    key = base64.b32decode(secret_b32 + pad)
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % (10 ** digits)
    return f"{code:0{digits}d}"


def totp_secret(uri):
    """The secret= parameter of an otpauth:// URI."""
    query = uri.split("?", 1)[1]
    return dict(p.split("=", 1) for p in query.split("&"))["secret"]


class Api:
    """Calls to the login API at 127.0.0.1:PORT, trusting CA_FILE when given."""

    def __init__(self, port, ca_file=None):
        self.port = port
        if ca_file:
            self.ctx = ssl.create_default_context(cafile=ca_file)
        else:
            self.ctx = ssl.create_default_context()
            self.ctx.check_hostname = False
            self.ctx.verify_mode = ssl.CERT_NONE

    def call(self, method, path, body=None, raw=None):
        """(status, parsed JSON reply)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=10)
        try:
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            text = resp.read()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, {"raw": text.decode(errors="replace")}
        finally:
            conn.close()


class Device:
    """An enrolled device: its Ed25519 key and what the relay called it."""

    def __init__(self):
        self.key = nacl.signing.SigningKey.generate()
        self.user = None
        self.device_id = None
        self.totp_secret = None

    def enrol(self, api, invite, name="test-device"):
        status, reply = api.call("POST", "/v1/enrol", {
            "invite": invite, "device_name": name,
            "device_key": base64.b64encode(bytes(self.key.verify_key)).decode()})
        if status == 200:
            self.user = reply["user"]
            self.device_id = reply["device_id"]
            if reply.get("totp_uri"):
                self.totp_secret = totp_secret(reply["totp_uri"])
        return status, reply

    def login(self, api, totp_code=None, session_key=None, sign_with=None, user=None):
        """Challenge, sign, login. (status, reply, session private key)."""
        user = user or self.user
        status, reply = api.call("POST", "/v1/challenge", {"user": user, "device_id": self.device_id})
        if status != 200:
            return status, reply, None
        challenge = reply["challenge"]
        key = session_key or ec.generate_private_key(ec.SECP256R1())
        pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        signer = sign_with or self.key
        sig = signer.sign(SIG_CONTEXT + challenge.encode() + b"\n" + pub.encode()).signature
        body = {"user": user, "device_id": self.device_id, "challenge": challenge,
                "signature": base64.b64encode(sig).decode(), "public_key": pub}
        if totp_code is not None:
            body["totp"] = totp_code
        status, reply = api.call("POST", "/v1/login", body)
        return status, reply, key


def write_credentials(dir, reply, key):
    """Write cert.pem, key.pem, ca.crt from a login REPLY into DIR; their paths."""
    import os
    paths = {name: os.path.join(dir, name) for name in ("cert.pem", "key.pem", "ca.crt")}
    with open(paths["cert.pem"], "w") as f:
        f.write(reply["x509_cert"])
    with open(paths["ca.crt"], "w") as f:
        f.write(reply["ca_x509"])
    with open(paths["key.pem"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(paths["key.pem"], 0o600)
    return paths
