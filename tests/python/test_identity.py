"""VMs belong to their creator on a shared manager (issue 11 section 3).

A real manager with three TCP tokens (alice, bob, ops; ``--admin token:ops``).
Wire-level checks use a bare NDJSON connection so the exact error and
message are seen.  The Unix socket's uid:N identities: test_identity_unix.py.
"""

import json
import socket
import subprocess
import threading

import pytest

from conftest import wait_gone
from pylua_bioxen_vm import AccessDenied, VMManager, VMNotFound
from pylua_bioxen_vm.embedded import find_manager
from pylua_bioxen_vm.errors import error_from_wire

TOKENS = {"alice": "tok-alice-1", "bob": "tok-bob-2", "ops": "tok-ops-3"}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Wire:
    """One NDJSON connection: ``req(op, **fields)`` returns the reply to it
    (events, callbacks and stream items in between are skipped)."""

    def __init__(self, sock, token=None):
        self.sock = sock
        self.sock.settimeout(60.0)
        self.buf, self.n, self.seen = b"", 0, []
        if token is not None:
            assert self.req("auth", token=token).get("result") is True

    @classmethod
    def tcp(cls, port, token):
        return cls(socket.create_connection(("127.0.0.1", port), timeout=60.0), token)

    def req(self, op, **fields):
        self.n += 1
        self.sock.sendall((json.dumps(dict(fields, id=self.n, op=op)) + "\n").encode())
        while True:
            while b"\n" not in self.buf:
                chunk = self.sock.recv(1 << 16)
                assert chunk, "manager closed the connection"
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            r = json.loads(line)
            if r.get("id") == self.n:
                return r
            self.seen.append(r)

    def send(self, **frame):
        """A frame that gets no reply (cb_result, stream_ack)."""
        self.sock.sendall((json.dumps(frame) + "\n").encode())

    def close(self):
        self.sock.close()


def _start(argv):
    proc = subprocess.Popen([find_manager()] + argv + ["--exit-with-stdin"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = proc.stdout.readline()   # bounded by the autouse deadline
    assert line.startswith(b"READY"), line
    return proc


def _stop(proc):
    proc.stdin.close()
    proc.stdout.close()
    if wait_gone([proc.pid], 10):
        proc.kill()
    proc.wait()


@pytest.fixture
def shared(tmp_path):
    """A manager on TCP with tokens alice, bob, ops; ops is an admin."""
    tok = tmp_path / "tokens"
    tok.write_text("".join("%s:%s\n" % kv for kv in TOKENS.items()))
    port = _free_port()
    proc = _start(["--socket", str(tmp_path / "m.sock"), "--tcp", "127.0.0.1:%d" % port,
                   "--token-file", str(tok), "--admin", "token:ops"])
    try:
        yield port, proc
    finally:
        _stop(proc)


def _client(port, who):
    return VMManager("tcp://127.0.0.1:%d" % port, token=TOKENS[who])


def _not_found_like_missing(w, op, target, fields):
    """op on the VM target fails exactly as on a name nobody has."""
    got = w.req(op, vm=target, **fields)
    missing = w.req(op, vm="no-such-vm", **fields)
    assert got.get("error", {}).get("code") == "VM_NOT_FOUND", (op, got)
    assert missing.get("error", {}).get("code") == "VM_NOT_FOUND", (op, missing)
    assert (got["error"]["message"].replace(target, "<name>") ==
            missing["error"]["message"].replace("no-such-vm", "<name>")), op
    assert set(got["error"]) == set(missing["error"]), op


VM_OPS = [
    ("exec", {"code": "x = 1; return 1"}),
    ("exec", {"code": "print('hi'); return 1", "stream": True}),
    ("call", {"fn": "tostring", "args": [1]}),
    ("exists", {"fn": "tostring"}),
    ("get_global", {"name": "secret"}),
    ("set_globals", {"globals": {"secret": "bob was here"}}),
    ("stats", {}),
    ("get_state", {}),
    ("reset", {}),
    ("set_policy", {"policy": {"imports": []}}),
    ("net_enable", {}),
    ("outbox_recv", {"timeout": 0}),
    ("destroy", {}),
]


def test_another_identity_cannot_reach_a_private_vm(shared):
    port, _ = shared
    with _client(port, "alice") as alice:
        vm = alice.create_vm("alices")
        vm.set_globals({"secret": "s3"})
        assert vm.execute("return 1") == 1     # a run in the history
        bob = Wire.tcp(port, TOKENS["bob"])
        try:
            for op, fields in VM_OPS:
                _not_found_like_missing(bob, op, "alices", fields)
            names = [v["name"] for v in bob.req("list")["result"]]
            assert "alices" not in names
        finally:
            bob.close()
        with _client(port, "bob") as b:
            with pytest.raises(VMNotFound):
                b.get_vm("alices")
            assert "alices" not in [v["name"] for v in b.list_vms()]
        assert "alices" not in [h["vm"] for h in _history(port, "bob")]
        assert "alices" in [h["vm"] for h in _history(port, "alice")]
        # nothing bob sent reached it: alive, globals as alice left them
        assert vm.get_global("secret") == "s3"
        assert vm.execute("return x") is None
        listed = {v["name"]: v for v in alice.list_vms()}
        assert listed["alices"]["owner"] == "token:alice"
        assert listed["alices"]["shared"] is False


def _history(port, who):
    w = Wire.tcp(port, TOKENS[who])
    try:
        return w.req("history", n=1000)["result"]
    finally:
        w.close()


def test_events_of_a_private_vm_go_to_its_owner_and_admins(shared):
    port, _ = shared
    bob, ops = Wire.tcp(port, TOKENS["bob"]), Wire.tcp(port, TOKENS["ops"])
    try:
        assert bob.req("subscribe")["result"] is True
        assert ops.req("subscribe")["result"] is True
        with _client(port, "alice") as alice:
            vm = alice.create_vm("noisy")
            ok, _ = vm.execute("return pcall(require, 'no_such_module_here')")
            assert ok is False
            # alice's reply came after every event of her run went out, so
            # bob's ping is answered after any event meant for him
            bob.req("ping")
            ops.req("ping")
        assert [e for e in ops.seen if e.get("vm") == "noisy"
                and e.get("event") == "SECURITY_VIOLATION"]
        assert not [e for e in bob.seen if e.get("vm") == "noisy"]
    finally:
        bob.close()
        ops.close()


def test_shutdown_is_for_admins(shared):
    port, proc = shared
    bob = Wire.tcp(port, TOKENS["bob"])
    try:
        r = bob.req("shutdown")
        assert r["error"]["code"] == "FORBIDDEN", r
        assert isinstance(error_from_wire(r["error"]), AccessDenied)
        assert bob.req("ping")["result"] == "pong"   # still serving
    finally:
        bob.close()
    ops = Wire.tcp(port, TOKENS["ops"])
    try:
        assert ops.req("shutdown")["result"] is True
    finally:
        ops.close()
    assert proc.wait(timeout=30) == 0


def test_shared_vm_is_usable_by_all_but_destroyed_by_its_owner(shared):
    port, _ = shared
    with _client(port, "alice") as alice:
        vm = alice.create_vm("common", shared=True, callbacks={"cb": lambda n: n * 10})
        vm.execute("count = 0")
        with _client(port, "bob") as b:
            bvm = b.get_vm("common")
            assert bvm.execute("count = count + 1; return count") == 1
            # the callback is answered by its owner's connection (alice's)
            assert bvm.execute("return cb(4)") == 40
            # a stream's items go to whoever asked for it
            with bvm.stream("print('to bob'); return 2") as st:
                items = [(i.kind, i.value) for i in st]
            assert items == [("print", "to bob"), ("result", 2)]
            info = {v["name"]: v for v in b.list_vms()}["common"]
            assert info["owner"] == "token:alice" and info["shared"] is True
        bob = Wire.tcp(port, TOKENS["bob"])
        try:
            r = bob.req("destroy", vm="common")
            assert r["error"]["code"] == "FORBIDDEN", r
            assert isinstance(error_from_wire(r["error"]), AccessDenied)
        finally:
            bob.close()
        assert vm.execute("return count") == 1


def test_mail_to_another_identitys_vm_is_delivered(shared):
    port, _ = shared
    with _client(port, "alice") as alice:
        vm = alice.create_vm("inbox-owner")
        with _client(port, "bob") as b:
            assert b.send_to("inbox-owner", {"k": 7}, timeout=10)
        assert vm.execute("local v = mailbox.recv(10); return v.k") == 7


def test_an_admin_reaches_every_vm(shared):
    port, _ = shared
    with _client(port, "alice") as alice:
        assert alice.identity == "token:alice" and alice.is_admin is False
        vm = alice.create_vm("alices2")
        vm.set_globals({"g": 5})
        with _client(port, "ops") as ops:
            assert ops.identity == "token:ops" and ops.is_admin is True
            assert "alices2" in [v["name"] for v in ops.list_vms()]
            ovm = ops.get_vm("alices2")
            assert ovm.execute("return g + 1") == 6
            assert ovm.get_global("g") == 5
            w = Wire.tcp(port, TOKENS["ops"])
            try:
                assert w.req("stats", vm="alices2").get("result") is not None
                assert w.req("destroy", vm="alices2")["result"] is True
            finally:
                w.close()
        with pytest.raises(VMNotFound):
            alice.get_vm("alices2").execute("return 1")


def test_a_vm_belongs_to_the_identity_not_the_connection(shared):
    port, _ = shared
    with _client(port, "alice") as a1:
        a1.create_vm("kept", persistent=True).set_globals({"v": "mine"})
    with _client(port, "bob") as b:
        assert b.shutdown_all() == 0    # not bob's to stop
        with pytest.raises(VMNotFound):
            b.get_vm("kept")
    with _client(port, "alice") as a2:  # a new connection, the same identity
        kept = a2.get_vm("kept")
        assert kept.get_global("v") == "mine"
        assert a2.shutdown_all() == 1


def test_a_connection_keeps_its_identity(shared):
    port, _ = shared
    w = Wire.tcp(port, TOKENS["alice"])
    try:
        r = w.req("auth", token=TOKENS["ops"])
        assert r["error"]["code"] == "FORBIDDEN", r
        assert w.req("auth", token=TOKENS["alice"])["result"] is True
        assert w.req("auth", token="nope")["error"]["code"] == "AUTH_REQUIRED"
        hello = w.req("hello")["result"]
        assert hello["identity"] == "token:alice" and hello["admin"] is False
    finally:
        w.close()


def test_token_file_line_without_colon_is_default(tmp_path):
    tok = tmp_path / "tokens"
    tok.write_text("# a comment\nplain-old-token\n\ncarol : tok-carol\n")
    port = _free_port()
    proc = _start(["--socket", str(tmp_path / "m.sock"), "--tcp", "127.0.0.1:%d" % port,
                   "--token-file", str(tok)])
    try:
        with VMManager("tcp://127.0.0.1:%d" % port, token="plain-old-token") as m:
            assert m.identity == "token:default" and not m.is_admin
        with VMManager("tcp://127.0.0.1:%d" % port, token="tok-carol") as m:
            assert m.identity == "token:carol"
    finally:
        _stop(proc)


@pytest.mark.parametrize("content", ["a:x\na:y\n", "a:x\nb:x\n", "bad name:x\n", "\n"])
def test_bad_token_files_are_refused(tmp_path, content):
    tok = tmp_path / "tokens"
    tok.write_text(content)
    r = subprocess.run([find_manager(), "--socket", str(tmp_path / "m.sock"),
                        "--tcp", "127.0.0.1:%d" % _free_port(), "--token-file", str(tok)],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert r.returncode == 2, r


@pytest.mark.parametrize("ident", ["token:", "root", "uid:x", "uid:-1", "uid:007"])
def test_bad_admin_identities_are_refused(tmp_path, ident):
    r = subprocess.run([find_manager(), "--socket", str(tmp_path / "m.sock"), "--admin", ident],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert r.returncode == 2 and b"--admin" in r.stderr, r


def test_shared_must_be_a_boolean(shared):
    port, _ = shared
    w = Wire.tcp(port, TOKENS["alice"])
    try:
        r = w.req("create", name="typed", shared="yes")
        assert r["error"]["code"] == "BAD_REQUEST" and "shared" in r["error"]["message"], r
        assert w.req("list")["result"] == []
    finally:
        w.close()


def test_only_the_owning_connection_answers_a_callback(shared):
    """bob's exec on alice's shared VM calls alice's callback; a cb_result
    bob forges for it is dropped, alice's answer is the one taken."""
    port, _ = shared
    entered, release = threading.Event(), threading.Event()

    def wait():
        entered.set()
        release.wait(30)
        return "real"
    with _client(port, "alice") as alice:
        alice.create_vm("cbs", shared=True, callbacks={"wait": wait})
        with _client(port, "bob") as b:
            fut = b.get_vm("cbs").execute_async("return wait()")
            assert entered.wait(30)
            forger = Wire.tcp(port, TOKENS["bob"])
            try:
                for k in range(0, 8):
                    forger.send(op="cb_result", vm="cbs", callback=k, result=["forged"])
                assert forger.req("ping")["result"] == "pong"   # the frames were read
            finally:
                forger.close()
            release.set()
            assert fut.result(30) == "real"
