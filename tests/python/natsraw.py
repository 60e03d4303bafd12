"""A real nats-server process, and a tiny client of the NATS text protocol.

Used by the cluster harness (clusterenv.py) to start and probe the server,
and by bench/cluster.py to measure what a NATS hop costs on this machine,
so that "remote exec within local + 2 NATS hops" is measured, not assumed.
The client speaks only what that needs (INFO, CONNECT, PING/PONG, SUB, PUB,
MSG/HMSG, UNSUB): it is a probe, not a library, and has no reconnect logic.

    NatsServer(host, store)  --start()-->  nats-server -a host -p port -js -sd store
    RawNats(host, port)      --pub/sub-->  the same server, one TCP socket
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time


def free_port(host):
    """A TCP port that is free on ``host`` right now (the usual small race
    until the server binds it is accepted: the caller retries start())."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class NatsError(Exception):
    pass


class RawNats:
    """One connection to a NATS server over its text protocol.

    Not thread safe: one thread uses one RawNats (the bench's echo responder
    runs on a second connection of its own).
    """

    def __init__(self, host, port, timeout=5.0, name="bioxen-probe", token=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.sid = 0
        line = self._line(timeout)
        if not line.startswith(b"INFO "):
            raise NatsError("expected INFO from the server, got %r" % line[:80])
        self.info = json.loads(line[5:])
        connect = {"verbose": False, "pedantic": False, "name": name,
                   "headers": True, "no_responders": True, "protocol": 1}
        if token:
            connect["auth_token"] = token
        self.sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\n")
        self.ping(timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- wire ----------------------------------------------------------

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer from the NATS server in time")
        self.sock.settimeout(left)
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise NatsError("the NATS server closed the connection")
        self.buf += chunk

    def _line(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bytes(self, n, deadline):
        while len(self.buf) < n + 2:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    # -- operations ----------------------------------------------------

    def ping(self, timeout=5.0):
        """One PING/PONG round trip to the server; its duration in seconds."""
        t0 = time.perf_counter()
        self.sock.sendall(b"PING\r\n")
        while True:
            msg = self.next(timeout)
            if msg == "PONG":
                return time.perf_counter() - t0

    def sub(self, subject, queue=None):
        """Subscribe; returns the subscription id."""
        self.sid += 1
        q = (" " + queue) if queue else ""
        self.sock.sendall(("SUB %s%s %d\r\n" % (subject, q, self.sid)).encode())
        return self.sid

    def unsub(self, sid):
        self.sock.sendall(("UNSUB %d\r\n" % sid).encode())

    def pub(self, subject, payload=b"", reply=None):
        r = (" " + reply) if reply else ""
        self.sock.sendall(("PUB %s%s %d\r\n" % (subject, r, len(payload))).encode()
                          + payload + b"\r\n")

    def next(self, timeout=5.0):
        """The next protocol event: "PONG", or (subject, reply, payload,
        headers) for a MSG/HMSG. Server PINGs are answered here; -ERR raises."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._line(max(0.0, deadline - time.monotonic()))
            op = line.split(b" ", 1)[0].upper()
            if op == b"PONG":
                return "PONG"
            if op == b"PING":
                self.sock.sendall(b"PONG\r\n")
            elif op == b"MSG":
                f = line.decode().split()
                reply = f[3] if len(f) == 5 else None
                return f[1], reply, self._bytes(int(f[-1]), deadline), ""
            elif op == b"HMSG":
                f = line.decode().split()
                reply = f[3] if len(f) == 6 else None
                hlen, total = int(f[-2]), int(f[-1])
                data = self._bytes(total, deadline)
                return f[1], reply, data[hlen:], data[:hlen].decode("utf-8", "replace")
            elif op == b"-ERR":
                raise NatsError(line.decode("utf-8", "replace"))
            # +OK and INFO updates are ignored

    def request(self, subject, payload=b"", timeout=5.0, inbox=None):
        """Publish with a reply subject and wait for the reply's payload.
        Raises NatsError on a 503 "no responders" reply."""
        inbox = inbox or "_INBOX.probe.%d" % os.getpid()
        sid = self.sub(inbox)
        try:
            self.pub(subject, payload, reply=inbox)
            while True:
                msg = self.next(timeout)
                if msg != "PONG" and msg[0] == inbox:
                    if "503" in msg[3].split("\r\n", 1)[0]:
                        raise NatsError("no responders on %s" % subject)
                    return msg[2]
        finally:
            self.unsub(sid)


def echo_responder(host, port, subject, stop):
    """Serve ``subject`` by echoing each payload to its reply subject until
    the threading.Event ``stop`` is set; returns the thread (started). Used
    to time a request/reply that crosses the server twice, as a forwarded
    call does."""
    ready = threading.Event()

    def run():
        with RawNats(host, port, name="bioxen-echo") as nc:
            nc.sub(subject)
            nc.ping()
            ready.set()
            while not stop.is_set():
                try:
                    msg = nc.next(0.2)
                except TimeoutError:
                    continue
                if msg != "PONG" and msg[1]:
                    nc.pub(msg[1], msg[2])
    t = threading.Thread(target=run, daemon=True, name="nats-echo")
    t.start()
    if not ready.wait(10.0):
        raise NatsError("the echo responder did not subscribe within 10 s")
    return t


class NatsServer:
    """A nats-server child with JetStream, its store in ``store``.

    ``prefix`` is prepended to the command (e.g. ``["ip", "netns", "exec",
    NS]``); ``args`` are extra nats-server arguments. The port stays the same
    across stop()/start(), so managers reconnect to the same URL.
    """

    def __init__(self, host, store, log_path, args=(), name="bioxen-test",
                 binary="nats-server"):
        self.host, self.store, self.log_path = host, store, log_path
        self.args, self.name, self.binary = list(args), name, binary
        self.port = free_port(host)
        self.proc = None

    @property
    def url(self):
        return "nats://%s:%d" % (self.host, self.port)

    def start(self, timeout=15.0):
        """Start the server and wait until it answers PING with JetStream on.

        Raises:
            NatsError: it exited or did not answer within ``timeout``.
        """
        if self.proc is not None and self.proc.poll() is None:
            return
        cmd = [self.binary, "-a", self.host, "-p", str(self.port), "-js",
               "-sd", self.store, "-n", self.name] + self.args
        if shutil.which("setpriv"):
            # the server dies with us even if we are SIGKILLed (the managers
            # have --exit-with-stdin for that)
            cmd = ["setpriv", "--pdeathsig", "KILL", "--"] + cmd
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise NatsError("nats-server exited with %s (log: %s)"
                                % (self.proc.returncode, self.log_tail()))
            try:
                with RawNats(self.host, self.port, timeout=2.0) as nc:
                    if nc.info.get("jetstream"):
                        return
                    last = "INFO without jetstream"
            except (OSError, NatsError, TimeoutError) as e:
                last = e
            # a server starting up: wait a little before knocking again
            time.sleep(0.05)
        self.stop()
        raise NatsError("nats-server did not come up within %.0f s (%s; log: %s)"
                        % (timeout, last, self.log_tail()))

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after ``timeout``; idempotent."""
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def restart(self):
        self.stop()
        self.start()

    def log_tail(self, n=2000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""
