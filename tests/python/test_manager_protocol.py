"""Raw-socket tests of bioxen-manager's wire protocol (docs/protocol.md).

Self-contained: starts the manager binary (env BIOXEN_MANAGER, else the
newest build*/manager/bioxen-manager) with the node from BIOXEN_VMNODE (else
the one beside the manager) and talks NDJSON to it. Every wait has a deadline.
"""

import glob
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import children_of

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 10.0
BOMB = "return string.find(string.rep('a', 40), string.rep('a*', 30) .. 'b')"


def _newest(pattern):
    found = [p for p in glob.glob(str(REPO / pattern)) if os.access(p, os.X_OK)]
    return max(found, key=os.path.getmtime) if found else None


def manager_binary():
    return os.environ.get("BIOXEN_MANAGER") or _newest("build*/manager/bioxen-manager")


def node_env():
    env = dict(os.environ)
    node = env.get("BIOXEN_VMNODE") or _newest("build*/vmnode/bioxen-vmnode")
    if node:
        env["BIOXEN_VMNODE"] = node
    return env


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(pred, timeout=DEADLINE):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


class Conn:
    """One NDJSON connection; replies are matched by id, events kept aside."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(DEADLINE)
        self.sock.connect(path)
        self.buf = b""
        self.replies = {}
        self.events = []
        self.callbacks = []
        self.null_errors = []
        self.next_id = 1000

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, msg):
        self.sock.sendall((json.dumps(msg) + "\n").encode())

    def _read_one(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the manager in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("manager closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        msg = json.loads(line)
        if "event" in msg:
            self.events.append(msg)
        elif "callback" in msg:
            self.callbacks.append(msg)
        elif msg.get("id") is None:
            self.null_errors.append(msg)
        else:
            self.replies[json.dumps(msg["id"])] = msg

    def wait(self, rid, timeout=DEADLINE):
        key = json.dumps(rid)
        deadline = time.monotonic() + timeout
        while key not in self.replies:
            self._read_one(deadline)
        return self.replies.pop(key)

    def wait_null_error(self, timeout=DEADLINE):
        deadline = time.monotonic() + timeout
        while not self.null_errors:
            self._read_one(deadline)
        return self.null_errors.pop(0)

    def wait_event(self, kind, timeout=DEADLINE):
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events:
                if e["event"] == kind:
                    self.events.remove(e)
                    return e
            self._read_one(deadline)

    def req(self, op, _wait=DEADLINE, **kw):
        self.next_id += 1
        rid = self.next_id
        self.send(dict(id=rid, op=op, **kw))
        return self.wait(rid, _wait)

    def ok(self, op, **kw):
        r = self.req(op, **kw)
        assert "result" in r, r
        return r["result"]

    def err(self, op, **kw):
        r = self.req(op, **kw)
        assert "error" in r, r
        return r["error"]

    def close(self):
        self.sock.close()


class Manager:
    def __init__(self, tmp_path, extra=()):
        binary = manager_binary()
        if not binary:
            pytest.fail("bioxen-manager not built: build it, or set BIOXEN_MANAGER")
        self.path = str(tmp_path / "m.sock")
        self.proc = subprocess.Popen(
            [binary, "--socket", self.path, *extra], env=node_env(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self._readline(DEADLINE)
        assert line == f"READY {self.path}\n", line
        self.conns = []

    def _readline(self, timeout):
        import select
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, "manager did not print READY in time"
        return self.proc.stdout.readline().decode()

    def connect(self):
        c = Conn(self.path)
        self.conns.append(c)
        return c

    def stop(self):
        for c in self.conns:
            c.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(DEADLINE)
                raise
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture
def mgr(tmp_path):
    m = Manager(tmp_path)
    yield m
    kids = children_of(m.proc.pid)
    m.stop()
    assert m.proc.returncode == 0
    assert wait_until(lambda: not any(alive(p) for p in kids), 5)


@pytest.fixture
def conn(mgr):
    return mgr.connect()


# ---- manager ops ------------------------------------------------------------

def test_hello_and_ping(conn, mgr):
    h = conn.ok("hello")
    assert h["server"] == "bioxen-manager" and h["version"] == 1
    assert h["pid"] == mgr.proc.pid and h["frame_max"] == 16 << 20
    assert conn.ok("ping") == "pong"


def test_id_echo_int_and_string(conn):
    conn.send({"id": "abc-1", "op": "ping"})
    assert conn.wait("abc-1")["id"] == "abc-1"
    conn.send({"id": 2 ** 62, "op": "ping"})
    assert conn.wait(2 ** 62)["result"] == "pong"


def test_bad_ids_get_null_id_errors(conn):
    for bad in ({"op": "ping"}, {"id": 1.5, "op": "ping"}, {"id": [1], "op": "ping"}):
        conn.send(bad)
        e = conn.wait_null_error()
        assert e["error"]["code"] == "BAD_REQUEST"
    assert conn.ok("ping") == "pong"


def test_malformed_json_keeps_connection(conn):
    for raw in (b"nope\n", b"{\"id\": 1,\n", b"[1,2]\n", b"42\n", b"\"str\"\n"):
        conn.send_raw(raw)
        e = conn.wait_null_error()
        assert e["id"] is None and e["error"]["code"] == "BAD_REQUEST"
    assert conn.ok("ping") == "pong"


def test_oversized_frame_closes_only_that_connection(tmp_path):
    m = Manager(tmp_path, ["--max-frame", "1024"])
    try:
        c = m.connect()
        c.send_raw(b"{\"id\":1,\"op\":\"ping\",\"pad\":\"" + b"x" * 5000)
        e = c.wait_null_error()
        assert e["error"]["code"] == "FRAME_TOO_LARGE"
        with pytest.raises((EOFError, ConnectionError)):
            c.wait(99, timeout=5)
        assert m.connect().ok("ping") == "pong"
    finally:
        m.stop()


def test_unknown_op(conn):
    assert conn.err("frobnicate")["code"] == "UNKNOWN_OP"
    r = conn.req("exec")  # no vm
    assert r["error"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("name", ["", "a/b", "x" * 65, "sp ace", "ü", 7, None])
def test_bad_names(conn, name):
    e = conn.err("create", name=name)
    assert e["code"] == "BAD_REQUEST" and "name" in e["message"]


@pytest.mark.parametrize("limits,field", [
    ({"memory_limit": -1}, "memory_limit"),
    ({"timeout": -0.5}, "timeout"),
    ({"timeout": "1"}, "timeout"),
    ({"instruction_limit": 1.5}, "instruction_limit"),
    ({"cpu_limit": True}, "cpu_limit"),
    ({"max_output": -3}, "max_output"),
    ({"bogus": 1}, "bogus"),
])
def test_bad_limits(conn, limits, field):
    e = conn.err("create", name="v", limits=limits)
    assert e["code"] == "BAD_REQUEST" and field in e["message"]
    assert conn.ok("list") == []


def test_bad_per_request_limits(conn):
    conn.ok("create", name="v")
    e = conn.err("exec", vm="v", code="return 1", timeout=-1)
    assert e["code"] == "BAD_REQUEST" and "timeout" in e["message"]
    e = conn.err("exec", vm="v", code=5)
    assert e["code"] == "BAD_REQUEST" and "code" in e["message"]


def test_create_exec_list_destroy(conn):
    r = conn.ok("create", name="vm1", limits={"memory_limit": 1 << 24, "timeout": 2.0})
    assert r["name"] == "vm1" and alive(r["pid"])
    res = conn.ok("exec", vm="vm1", code="return 1+1")
    assert "values" in res
    ls = conn.ok("list")
    assert [v["name"] for v in ls] == ["vm1"] and ls[0]["pid"] == r["pid"]
    assert conn.ok("destroy", vm="vm1") is True
    assert wait_until(lambda: not alive(r["pid"]), 5)
    assert conn.err("exec", vm="vm1", code="return 1")["code"] == "VM_NOT_FOUND"
    assert conn.err("destroy", vm="vm1")["code"] == "VM_NOT_FOUND"


def test_duplicate_name(conn):
    conn.send({"id": 1, "op": "create", "name": "dup"})
    conn.send({"id": 2, "op": "create", "name": "dup"})   # while still starting
    assert "result" in conn.wait(1)
    assert conn.wait(2)["error"]["code"] == "VM_EXISTS"
    assert conn.err("create", name="dup")["code"] == "VM_EXISTS"


def test_pipelined_requests_in_order(conn):
    conn.ok("create", name="p")
    n = 2000
    data = "".join(json.dumps({"id": i, "op": "exec", "vm": "p", "code": f"return {i}"}) + "\n"
                   for i in range(n))
    conn.send_raw(data.encode())
    order = []
    deadline = time.monotonic() + 60
    while len(order) < n:
        conn._read_one(deadline)
        for k in list(conn.replies):
            order.append(conn.replies.pop(k)["id"])
    assert order == list(range(n))
    assert conn.ok("metrics")["executions"] >= n


def test_destroy_fails_pending(conn):
    conn.ok("create", name="d", limits={"timeout": 30})
    conn.send({"id": "slow", "op": "exec", "vm": "d", "code": BOMB})
    conn.send({"id": "queued", "op": "exec", "vm": "d", "code": "return 1"})
    assert conn.ok("destroy", vm="d") is True
    for rid in ("slow", "queued"):
        e = conn.wait(rid)["error"]
        assert e["code"] == "VM_CRASHED" and "destroyed" in e["message"]


def test_disconnect_destroys_vms(mgr):
    c = mgr.connect()
    pids = [c.ok("create", name=f"gone{i}")["pid"] for i in range(3)]
    keep = c.ok("create", name="kept", persistent=True)["pid"]
    c.close()
    assert wait_until(lambda: not any(alive(p) for p in pids), 5)
    c2 = mgr.connect()
    assert [v["name"] for v in c2.ok("list")] == ["kept"] and alive(keep)
    assert c2.ok("shutdown_all") == 1
    assert wait_until(lambda: not alive(keep), 5)


def test_node_sigkill_mid_call(conn):
    victim = conn.ok("create", name="victim", limits={"timeout": 30})["pid"]
    conn.ok("create", name="other")
    conn.ok("subscribe")
    conn.send({"id": "mid", "op": "exec", "vm": "victim", "code": BOMB})
    time.sleep(0.2)
    os.kill(victim, signal.SIGKILL)
    e = conn.wait("mid")["error"]
    assert e["code"] == "VM_CRASHED" and "signal 9" in e["message"]
    ev = conn.wait_event("VM_CRASH")
    assert ev["vm"] == "victim" and ev["detail"]["signal"] == 9
    assert "result" in conn.req("exec", vm="other", code="return 1")
    assert conn.err("exec", vm="victim", code="return 1")["code"] == "VM_NOT_FOUND"


def test_timeout_kills_node_stuck_in_c(conn):
    old = conn.ok("create", name="t", limits={"timeout": 1.0})["pid"]
    conn.ok("create", name="n")
    t0 = time.monotonic()
    conn.send({"id": "bomb", "op": "exec", "vm": "t", "code": BOMB})
    conn.send({"id": "behind", "op": "exec", "vm": "t", "code": "return 1"})
    assert "result" in conn.req("exec", vm="n", code="return 2")   # neighbour answers
    e = conn.wait("bomb", timeout=5)["error"]
    assert time.monotonic() - t0 < 2.5
    assert e["code"] == "TIMEOUT" and e["restarted"] is True
    e2 = conn.wait("behind")["error"]
    assert e2["code"] == "VM_CRASHED" and e2["restarted"] is True
    assert conn.wait_event("TIMEOUT")["detail"]["killed"] is True
    restart = conn.wait_event("VM_RESTART")
    assert restart["detail"]["reason"] == "TIMEOUT" and restart["detail"]["pid"] != old
    assert wait_until(lambda: not alive(old), 5)
    assert "result" in conn.req("exec", vm="t", code="return 3")


def test_callback_round_trip(conn):
    conn.ok("create", name="cb", callbacks=["log"])
    conn.send({"id": "c", "op": "exec", "vm": "cb", "code": "return log('hi')"})
    deadline = time.monotonic() + DEADLINE
    while not conn.callbacks:
        conn._read_one(deadline)
    cb = conn.callbacks.pop()
    assert cb["vm"] == "cb" and cb["fn"] == "log" and cb["args"] == ["hi"]
    conn.send({"op": "cb_result", "vm": "cb", "callback": cb["callback"], "result": ["ok"]})
    assert conn.wait("c")["result"]["values"] == ["ok"]
    assert conn.err("create", name="cb2", callbacks=[1])["code"] == "BAD_REQUEST"


def test_metrics_shape(conn):
    conn.ok("create", name="m")
    conn.ok("exec", vm="m", code="return 1")
    m = conn.ok("metrics")
    for k in ("vms", "executions", "errors", "error_rate", "avg_ms", "min_ms",
              "max_ms", "p50_ms", "p99_ms", "peak_mem_bytes", "uptime_s"):
        assert k in m
    assert m["vms"] == 1 and m["executions"] == 1


def test_sigterm_leaves_no_nodes(tmp_path):
    m = Manager(tmp_path)
    c = m.connect()
    pids = [c.ok("create", name=f"s{i}")["pid"] for i in range(4)]
    c.send({"id": "pending", "op": "exec", "vm": "s0", "code": BOMB})
    m.proc.send_signal(signal.SIGTERM)
    assert m.proc.wait(DEADLINE) == 0
    r = c.wait("pending")
    assert r["error"]["code"] == "SHUTTING_DOWN"
    assert wait_until(lambda: not any(alive(p) for p in pids), 5)
    assert not os.path.exists(m.path)
    m.stop()


def test_exit_with_stdin(tmp_path):
    binary = manager_binary()
    if not binary:
        pytest.fail("bioxen-manager not built: build it, or set BIOXEN_MANAGER")
    path = str(tmp_path / "s.sock")
    p = subprocess.Popen([binary, "--socket", path, "--exit-with-stdin"], env=node_env(),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert p.stdout.readline().decode() == f"READY {path}\n"
    c = Conn(path)
    pid = c.ok("create", name="x")["pid"]
    p.stdin.close()
    assert p.wait(DEADLINE) == 0
    assert wait_until(lambda: not alive(pid), 5)
    c.close()
    p.stdout.close()


def test_tcp_requires_auth(tmp_path):
    tok = tmp_path / "token"
    tok.write_text("s3cret\n")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    m = Manager(tmp_path, ["--tcp", f"127.0.0.1:{port}", "--token-file", str(tok)])
    try:
        c = Conn.__new__(Conn)
        Conn.__init__.__globals__  # noqa: B018 (keep linters quiet)
        c.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        c.buf, c.replies, c.events, c.callbacks, c.null_errors, c.next_id = b"", {}, [], [], [], 0
        assert c.err("ping")["code"] == "AUTH_REQUIRED"
        assert c.err("auth", token="wrong")["code"] == "AUTH_REQUIRED"
        assert c.ok("auth", token="s3cret") is True
        assert c.ok("ping") == "pong"
        c.close()
    finally:
        m.stop()


def real_node():
    node = node_env().get("BIOXEN_VMNODE", "")
    return node and not node.endswith(".py")


@pytest.mark.skipif(not real_node(), reason="needs the real bioxen-vmnode")
def test_cpu_limit_restarts_vm(conn):
    old = conn.ok("create", name="cpu", limits={"cpu_limit": 1})["pid"]
    conn.send({"id": "spin", "op": "exec", "vm": "cpu", "code": "while true do end"})
    e = conn.wait("spin", timeout=15)["error"]
    assert e["code"] == "CPU_LIMIT" and e["restarted"] is True
    assert conn.wait_event("CPU_KILL")["detail"]["limit"] == 1
    assert conn.wait_event("VM_RESTART")["detail"]["pid"] != old
    assert conn.ok("exec", vm="cpu", code="return 1 + 1")["values"] == [2]


@pytest.mark.skipif(not real_node(), reason="needs the real bioxen-vmnode")
def test_real_values_and_call(conn):
    conn.ok("create", name="r")
    assert conn.ok("exec", vm="r", code="return 1 + 1")["values"] == [2]
    conn.ok("exec", vm="r", code="function greet(n) return 'Hello, ' .. n end")
    assert conn.ok("call", vm="r", fn="greet", args=["Py"])["values"] == ["Hello, Py"]
    assert conn.ok("exists", vm="r", fn="greet") is True
