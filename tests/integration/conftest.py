"""pytest scaffolding for the integration tests: one sandbox per session.

The `sandbox` fixture starts real PostgreSQL, MariaDB, sshd and (when it is
built) posternd on loopback with tests/postern_sandbox.py, and stops them at
the end of the session even when tests fail. Tests that need the relay use
the `relay` fixture, which skips them when posternd is not built yet.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS_DIR)

import postern_sandbox  # noqa: E402

REPO_ROOT = os.path.dirname(TESTS_DIR)
SANDBOX_CLI = os.path.join(TESTS_DIR, "sandbox")


class Sandbox:
    """A running sandbox: its directory, its environment and a way to run
    commands in that environment."""

    def __init__(self, dir, env, relay):
        self.dir = dir          # the sandbox directory (logs, config, keys)
        self.env = env          # the variables of DIR/env
        self.relay = relay      # True if posternd runs

    def run(self, cmd, **kw):
        """Run `cmd` with the sandbox environment merged into os.environ.

        A string runs through bash (so `$POSTERN_SSH_DIRECT_ARGS` expands), a
        list runs directly. Output is captured as text and a 60 s timeout
        applies unless the caller says otherwise; returns CompletedProcess.
        """
        env = dict(os.environ, **self.env, **kw.pop("env", {}))
        if isinstance(cmd, str):
            cmd = ["bash", "-c", cmd]
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        if "input" not in kw:
            kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(cmd, env=env, **kw)

    def secret(self, key):
        """The contents of the password file named by env[key]."""
        with open(self.env[key]) as f:
            return f.read().strip()


def new_sandbox_dir():
    """A fresh sandbox directory under /tmp (short: unix socket paths live in it)."""
    return tempfile.mkdtemp(prefix="postern-sbx-", dir="/tmp")


SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:")


def sanitizer_reports(dir):
    """Sanitizer reports in the sandbox's posternd log (its stderr goes there): a sanitized
    build (POSTERN_BUILD_DIR=build-asan) reports leaks only when posternd exits."""
    try:
        with open(os.path.join(dir, "posternd.log"), errors="replace") as f:
            return [line for line in f if SANITIZER_RE.search(line)]
    except FileNotFoundError:
        return []


def stop_and_clean(dir, keep):
    """Stop what runs in `dir`; remove it (a sandbox is ~70 MB) unless `keep`
    or $POSTERN_KEEP_SANDBOX asks to keep it for its logs. Sanitizer reports in
    posternd's log fail the run (and keep the sandbox)."""
    postern_sandbox.down(dir)
    reports = sanitizer_reports(dir)
    if reports:
        print(f"\nsanitizer reports in {dir}/posternd.log:\n" + "".join(reports[:20]))
        keep = True
    if keep or os.environ.get("POSTERN_KEEP_SANDBOX"):
        print(f"\nsandbox kept in {dir}")
    else:
        shutil.rmtree(dir, ignore_errors=True)
    assert not reports, f"posternd's sanitizers reported {len(reports)} problems; see {dir}/posternd.log"


@pytest.fixture(scope="session")
def sandbox(request):
    dir = new_sandbox_dir()
    relay = postern_sandbox.relay_built(REPO_ROOT)
    try:
        env = postern_sandbox.up(dir, repo_root=REPO_ROOT, relay=relay)
        yield Sandbox(dir, env, relay)
    finally:
        stop_and_clean(dir, keep=request.session.testsfailed > 0)


@pytest.fixture
def sandbox_dir():
    """An empty directory for a test's own sandbox; stopped and removed after."""
    dir = new_sandbox_dir()
    yield dir
    stop_and_clean(dir, keep=False)


@pytest.fixture
def relay(sandbox):
    """The sandbox, for tests that go through posternd; skips if it is not built."""
    if not sandbox.relay:
        pytest.skip(f"posternd is not built ({postern_sandbox.build_dir(REPO_ROOT)}/relay/"
                    f"posternd is missing); run `make` first")
    return sandbox
