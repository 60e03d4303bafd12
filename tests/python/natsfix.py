"""A real nats-server for tests (Debian's ``nats-server``), JetStream on,
store in a temp dir, on a free loopback port.

    srv = NatsServer(tmpdir); srv.start()    # waits for its INFO line
    srv.url                                   # "nats://127.0.0.1:PORT"
    srv.stop(); srv.start()                  # same port, same store
    srv.kill()                               # SIGKILL, as a crash would
    srv.close()
    NatsServer(tmpdir, conf='tls { ... }')   # plus a configuration file

``conf`` is the text of a nats-server configuration file (TLS, token,
nkey or operator authorization: natsauth.py makes them), written to the
work dir and given with ``-c``; the command line's address, port and
JetStream store still apply.

``nats_server`` is a pytest fixture yielding a started one; tests skip when
the binary is missing (a build without cluster support has no use for it).
Every wait here has a deadline.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

NATS_BIN = shutil.which("nats-server") or "/usr/sbin/nats-server"
START_DEADLINE = 15.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_info(port, deadline):
    """True once a client connecting to port gets the server's INFO line."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
                s.settimeout(1.0)
                if s.recv(4096).startswith(b"INFO "):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


class NatsServer:
    def __init__(self, workdir=None, port=None, extra=(), conf=None):
        self._own_dir = workdir is None
        self.workdir = str(workdir or tempfile.mkdtemp(prefix="bioxen-nats-"))
        os.makedirs(self.workdir, exist_ok=True)
        self.store = os.path.join(self.workdir, "js")
        self.log = os.path.join(self.workdir, "nats.log")
        self.port = port
        self.extra = list(extra)
        self.proc = None
        if conf is not None:
            path = os.path.join(self.workdir, "nats.conf")
            with open(path, "w") as f:
                f.write(conf)
            self.extra += ["-c", path]

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def _spawn(self):
        args = [NATS_BIN, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", self.store]
        logf = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen(args + self.extra, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf)
        finally:
            logf.close()

    def start(self, deadline=START_DEADLINE):
        """Starts it (again) and waits until it accepts. A first start
        picks a free port, and picks another if that one was taken in
        between; a restart keeps its port (the managers' --cluster URL)."""
        assert self.proc is None, "already running"
        fixed = self.port is not None
        for _ in range(1 if fixed else 5):
            if not fixed:
                self.port = free_port()
            self._spawn()
            if read_info(self.port, deadline) and self.proc.poll() is None:
                return self
            self._reap()
            if fixed:   # the old one's port may linger a moment: one more try
                time.sleep(0.5)
                self._spawn()
                if read_info(self.port, deadline) and self.proc.poll() is None:
                    return self
                self._reap()
        raise RuntimeError("nats-server did not start; log:\n" + self.tail())

    def _reap(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self, deadline=10.0):
        """SIGTERM, then SIGKILL past the deadline."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            pass
        self._reap()

    def kill(self):
        self._reap()

    def close(self):
        self._reap()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def tail(self, n=4000):
        try:
            with open(self.log, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return "(no log)"


def have_nats():
    return os.access(NATS_BIN, os.X_OK)


@pytest.fixture
def nats_server(tmp_path):
    if not have_nats():
        pytest.skip("nats-server is not installed (dev.sh installs it)")
    srv = NatsServer(tmp_path / "nats").start()
    try:
        yield srv
    finally:
        srv.close()
