"""Helpers for driving a real posternd from tests and benchmarks.

`Relay` starts posternd on a config text in its own short directory under /tmp
(unix socket paths must stay under 108 bytes), waits until `posternctl status`
answers, and stops it: SIGTERM, then SIGKILL after a bound. `EchoServer` and
`SourceServer` are loopback servers in a background thread, one thread per
connection; `StalledListener` is a target that never answers a connect until
told to. Every wait here has a timeout; nothing blocks for ever.

Run as a script, `python3 relayutil.py source PORT` serves an endless byte
stream on 127.0.0.1:PORT in its own process (the benchmark uses it so that the
sender and the receiver never share a GIL).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.path.abspath(os.environ.get("POSTERN_BUILD_DIR") or os.path.join(REPO_ROOT, "build"))
POSTERND = os.path.join(BUILD_DIR, "relay", "posternd")
POSTERNCTL = os.path.join(BUILD_DIR, "relay", "posternctl")

CHUNK = 1 << 20
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|Sanitizer has encountered a fatal error|runtime error:")


def sanitized(binary=POSTERND):
    """True if BINARY is built with AddressSanitizer (its memory figures mean little then)."""
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def free_port():
    """A loopback TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.05):
    """Poll PREDICATE until it returns something true; its value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def rss_kib(pid):
    """Resident set size of PID in KiB (VmRSS from /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def connect(port, timeout=10.0):
    """A client socket to 127.0.0.1:PORT with TIMEOUT on every operation."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def recv_exactly(sock, n):
    """Read exactly N bytes; AssertionError if the peer closes first."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise AssertionError(f"peer closed after {got} of {n} bytes")
        got += k
    return bytes(buf)


def recv_all(sock):
    """Read until EOF; the bytes."""
    parts = []
    while True:
        data = sock.recv(CHUNK)
        if not data:
            return b"".join(parts)
        parts.append(data)


def is_closed(sock, timeout):
    """True if the peer closes SOCK (EOF or reset) within TIMEOUT, discarding data."""
    sock.settimeout(timeout)
    try:
        while sock.recv(CHUNK):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class Relay:
    """A posternd process on the config text CONFIG, in DIR (default: a new one under /tmp).
    @ADMIN_SOCKET@ and @LOG_FILE@ in CONFIG become the admin socket and log file paths in
    DIR (as Lua strings); Relay.config() writes the usual settings that way."""

    def __init__(self, config, dir=None, binary=None):
        self.dir = dir or tempfile.mkdtemp(prefix="pst-", dir="/tmp")
        self.owns_dir = dir is None
        self.binary = binary or POSTERND
        self.config_path = os.path.join(self.dir, "posternd.lua")
        self.admin_socket = os.path.join(self.dir, "admin.sock")
        self.log_file = os.path.join(self.dir, "posternd.log")
        self.stderr_file = os.path.join(self.dir, "stderr.txt")
        self.proc = None
        self.write_config(config)

    @staticmethod
    def config(targets="", **settings):
        """Config text with the test defaults, then TARGETS. SETTINGS override or add
        top-level settings (values as Lua text, e.g. shutdown_grace="1")."""
        base = {"node": '"test"', "workers": "2", "state_dir": '"state"',
                "admin_socket": "@ADMIN_SOCKET@", "log_file": "@LOG_FILE@", "log_level": '"info"',
                "shutdown_grace": "10", "connect_timeout": "5"}
        base.update(settings)
        lines = [f"{k} = {v}" for k, v in base.items()]
        return "\n".join(lines) + "\n" + targets

    @staticmethod
    def tcp_target(name, listen_port, address_port, plaintext=True):
        """A tcp target line. PLAINTEXT sets benchmark_plaintext: no TLS, no identity, so
        plain sockets can drive the data path (tests and benchmarks only)."""
        extra = ", benchmark_plaintext = true" if plaintext else ""
        return (f'target "{name}" {{ protocol = "tcp", listen = "127.0.0.1:{listen_port}", '
                f'address = "127.0.0.1:{address_port}"{extra} }}\n')

    def write_config(self, text):
        text = (text.replace("@ADMIN_SOCKET@", json.dumps(self.admin_socket))
                .replace("@LOG_FILE@", json.dumps(self.log_file)))
        with open(self.config_path, "w") as f:
            f.write(text)

    def start(self, timeout=10.0):
        # stderr goes to a file, not a pipe: a chatty sanitizer must never block posternd.
        with open(self.stderr_file, "w") as err:
            self.proc = subprocess.Popen([self.binary, "-c", self.config_path], cwd=self.dir,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"posternd exited with {self.proc.returncode}: {self.stderr()}")
            return self.ctl("status", check=False).returncode == 0

        wait_for(ready, timeout, "posternd to answer on its admin socket")
        return self

    @property
    def pid(self):
        return self.proc.pid

    def rss_kib(self):
        return rss_kib(self.proc.pid)

    def cpu_seconds(self):
        """User + system CPU time posternd has used so far, all threads."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def ctl(self, *args, check=True, timeout=15):
        """Run posternctl against this relay; CompletedProcess (text)."""
        r = subprocess.run([POSTERNCTL, "-s", self.admin_socket, *args], capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"posternctl {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def sessions(self):
        return json.loads(self.ctl("sessions", "--json").stdout)["sessions"]

    def session_count(self):
        return json.loads(self.ctl("status", "--json").stdout)["sessions"]

    def log(self):
        return _read(self.log_file)

    def stderr(self):
        return _read(self.stderr_file)

    def sanitizer_reports(self):
        """Lines of stderr in which ASan, LSan or UBSan reported a problem."""
        return [line for line in self.stderr().splitlines() if SANITIZER_RE.search(line)]

    def wait_log(self, pattern, timeout=5.0):
        """Wait until the log matches the regular expression PATTERN; the match."""
        return wait_for(lambda: re.search(pattern, self.log()), timeout, f"log line /{pattern}/")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        """Wait for exit; the exit status (AssertionError on timeout)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"posternd did not exit within {timeout} s") from None

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after TIMEOUT; the exit status. Safe to call twice."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        if self.owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class _Server:
    """A loopback listener with a thread per connection; HANDLE(conn) serves one."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.port = self.sock.getsockname()[1]
        self.conns = set()
        self.lock = threading.Lock()
        self.closing = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                if self.closing:
                    conn.close()
                    return
                self.conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            self.handle(conn)
        except OSError:
            pass  # the peer reset or the server is closing
        finally:
            with self.lock:
                self.conns.discard(conn)
            conn.close()

    @property
    def connections(self):
        with self.lock:
            return len(self.conns)

    def close(self):
        with self.lock:
            self.closing = True
            conns = list(self.conns)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes the blocked accept(); close() alone does not
        except OSError:
            pass
        self.sock.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class EchoServer(_Server):
    """Sends back every byte it gets; on EOF from the peer, half-closes after the echo."""

    def handle(self, conn):
        while True:
            data = conn.recv(CHUNK)
            if not data:
                break
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)


class SourceServer(_Server):
    """Sends NBYTES (None: until the peer goes away) as fast as it can, then closes."""

    def __init__(self, nbytes=None):
        self.nbytes = nbytes
        self.block = memoryview(os.urandom(CHUNK))
        super().__init__()

    def handle(self, conn):
        serve_source(conn, self.nbytes, self.block)


def serve_source(conn, nbytes, block):
    left = nbytes
    while left is None or left > 0:
        n = CHUNK if left is None else min(CHUNK, left)
        conn.sendall(block[:n])
        if left is not None:
            left -= n
    conn.shutdown(socket.SHUT_WR)


class StalledListener:
    """A listener whose accept queue is full, so the kernel drops new SYNs: a connect to it
    gets no answer (like a distant or overloaded target) until release() makes room; the
    connector's next SYN retransmit (about 1 s after the first) then gets in."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)          # room for one queued connection on Linux
        self.port = self.sock.getsockname()[1]
        self.filler = socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def release(self):
        self.sock.settimeout(5)
        self.sock.accept()[0].close()
        self.filler.close()

    def accept(self, timeout):
        """The next connection, or None after TIMEOUT."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.accept()[0]
        except (socket.timeout, OSError):
            return None

    def close(self):
        self.filler.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _main(argv):
    """`relayutil.py source PORT`: endless source on PORT, one process per connection."""
    if len(argv) != 3 or argv[1] != "source":
        sys.exit("usage: relayutil.py source PORT")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(argv[2])))
    srv.listen(4096)
    block = memoryview(os.urandom(CHUNK))
    while True:
        conn, _ = srv.accept()
        if os.fork() == 0:
            srv.close()
            try:
                serve_source(conn, None, block)
            except OSError:
                pass
            os._exit(0)
        conn.close()


if __name__ == "__main__":
    _main(sys.argv)
