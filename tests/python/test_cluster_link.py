"""The manager's link to NATS (manager/cluster.c), against a real
nats-server (natsfix.py): it connects, connects late when NATS comes up
after it, notices an outage and reconnects by itself, and local work goes
on meanwhile. Timings are printed; only sanity bounds are asserted."""

import os
import statistics
import subprocess
import time

import pytest

from conftest import Raw, descendants, wait_gone
from natsfix import NatsServer, free_port, have_nats, nats_server  # noqa: F401 (a fixture)
from pylua_bioxen_vm import VMManager
from pylua_bioxen_vm.errors import ManagerError
from pylua_bioxen_vm.embedded import find_manager

pytestmark = pytest.mark.skipif(not have_nats(), reason="nats-server is not installed")

WITHIN = 10.0   # the link's own promises are a few seconds; this only catches "never"


def built_with_cluster():
    r = subprocess.run([find_manager(), "--socket", "/nonexistent/x", "--cluster", "nats://127.0.0.1:1"],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    return "built without cluster support" not in r.stderr


needs_cluster = pytest.mark.skipif(not built_with_cluster(), reason="built without libnats")


class Mgr:
    """A bioxen-manager process with --cluster, stopped at close()."""

    def __init__(self, tmp_path, url, host="m1", *more):
        self.sock = str(tmp_path / ("%s.sock" % host))
        self.proc = subprocess.Popen(
            [find_manager(), "--socket", self.sock, "--exit-with-stdin", "--spares", "0",
             "--cluster", url, "--host-name", host] + list(more),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline()     # bounded by the autouse deadline
        assert line == ("READY %s\n" % self.sock).encode(), (line, self.proc.stderr.read())
        self.raw = Raw(self.sock)

    def cluster(self):
        return self.raw.req(op="hello")["result"]["cluster"]

    def wait_connected(self, want, within=WITHIN):
        end = time.monotonic() + within
        while time.monotonic() < end:
            c = self.cluster()
            if c["connected"] == want:
                return time.monotonic() - (end - within)
            time.sleep(0.05)
        raise AssertionError("connected never became %r within %.0f s: %r" % (want, within, c))

    def close(self):
        procs = [self.proc.pid] + descendants(self.proc.pid)
        self.raw.sock.close()
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.stdout.close()
            err = self.proc.stderr.read().decode(errors="replace")
            self.proc.stderr.close()
        assert not wait_gone(procs), "processes left"
        assert self.proc.returncode == 0, err
        return err


def exec_p50(vm, n=200):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        assert vm.execute("return 1 + 1") == 2
        times.append(time.perf_counter() - t)
    return statistics.median(times)


@needs_cluster
def test_connects_and_hello_says_so(tmp_path, nats_server):
    m = Mgr(tmp_path, nats_server.url, "alpha")
    try:
        t = m.wait_connected(True)
        c = m.cluster()
        assert c == {"host": "alpha", "connected": True, "dropped": 0}
        print("connected %.3f s after READY" % t)
    finally:
        m.close()


@needs_cluster
def test_manager_started_before_nats_connects_when_it_comes(tmp_path):
    srv = NatsServer(tmp_path / "nats", port=free_port())
    m = Mgr(tmp_path, srv.url)
    try:
        assert m.cluster()["connected"] is False
        with VMManager(m.sock) as local:     # local work needs no NATS
            assert local.run("return 6 * 7") == 42
            # a create claims its name across the cluster (names.c): not local
            with pytest.raises(ManagerError, match="cluster unavailable"):
                local.create_vm("early")
        srv.start()
        print("connected %.3f s after nats-server came up" % m.wait_connected(True))
    finally:
        err = m.close()
        srv.close()
    assert "cluster: connected" in err


@needs_cluster
def test_outage_reconnects_by_itself_and_local_work_goes_on(tmp_path, nats_server):
    m = Mgr(tmp_path, nats_server.url)
    try:
        m.wait_connected(True)
        with VMManager(m.sock) as local:
            vm = local.create_vm("worker")
            before = exec_p50(vm)
            nats_server.kill()          # as a crash: no goodbye to the clients
            down_after = m.wait_connected(False)
            during = exec_p50(vm)
            assert local.run("return 'still here'") == "still here"
            with pytest.raises(ManagerError, match="cluster unavailable"):
                local.create_vm("made-during-outage")     # a name claim: a cluster op
            nats_server.start()         # same port, same store
            up_after = m.wait_connected(True)
            after = exec_p50(vm)
            vm.close()
        print("exec p50: %.0f us before, %.0f us while NATS is down, %.0f us after; "
              "down seen in %.2f s, back in %.2f s" %
              (before * 1e6, during * 1e6, after * 1e6, down_after, up_after))
        assert during < 0.1 and after < 0.1     # sanity only: a stalled loop takes seconds
        assert m.cluster()["dropped"] == 0
    finally:
        err = m.close()
    assert "disconnected" in err and "reconnected" in err


@needs_cluster
def test_a_hung_nats_server_is_noticed_and_survived(tmp_path, nats_server):
    """SIGSTOP: the TCP connection stays open and silent, so only the
    manager's pings (2 s, 2 out) can tell; SIGCONT brings it back."""
    import signal
    m = Mgr(tmp_path, nats_server.url, "hung")
    try:
        m.wait_connected(True)
        with VMManager(m.sock) as local:
            vm = local.create_vm("w")
            nats_server.proc.send_signal(signal.SIGSTOP)
            try:
                t = time.monotonic()
                worst = 0.0
                while m.cluster()["connected"]:
                    assert time.monotonic() - t < 15, "a hung server never noticed"
                    s = time.perf_counter()
                    assert vm.execute("return 2") == 2
                    worst = max(worst, time.perf_counter() - s)
                    time.sleep(0.02)
                noticed = time.monotonic() - t
            finally:
                nats_server.proc.send_signal(signal.SIGCONT)
            back = m.wait_connected(True)
            vm.close()
        print("hung server noticed in %.1f s (worst exec meanwhile %.1f ms), back in %.1f s"
              % (noticed, worst * 1e3, back))
        assert worst < 0.5
    finally:
        m.close()


@needs_cluster
def test_token_auth(tmp_path):
    """A server started with --auth: --cluster-token-file gets in; without
    it the manager keeps trying, says why, and stays 'not connected'."""
    srv = NatsServer(tmp_path / "nats", extra=["--auth", "s3cret"]).start()
    tok = tmp_path / "nats.token"
    tok.write_text("s3cret\n")
    good = Mgr(tmp_path, srv.url, "good", "--cluster-token-file", str(tok))
    bad = Mgr(tmp_path, srv.url, "bad")
    try:
        good.wait_connected(True)
        time.sleep(1.0)
        assert bad.cluster()["connected"] is False
    finally:
        good.close()
        err = bad.close()
        srv.close()
    assert "cannot connect to NATS yet (Authentication Violation)" in err, err


@needs_cluster
def test_kv_bucket_is_made_on_connect(tmp_path, nats_server):
    m = Mgr(tmp_path, nats_server.url, "kvhost", "--cluster-name", "bxtest")
    try:
        m.wait_connected(True)
        streams = nats_server.store
        end = time.monotonic() + WITHIN
        while time.monotonic() < end and not any(
                "KV_bxtest_names" in dirs for _, dirs, _ in os.walk(streams)):
            time.sleep(0.1)
        assert any("KV_bxtest_names" in dirs for _, dirs, _ in os.walk(streams))
    finally:
        m.close()


@needs_cluster
def test_a_nats_that_never_answers_does_not_stall_the_loop(tmp_path):
    """A listener that accepts TCP and says nothing is what a hung server or
    a half-open path looks like: nats.c's reconnect thread then holds the
    connection's lock through each 1 s connect attempt. The loop must not
    wait on that lock (hello and local runs go on; a create is a cluster
    operation now, since it claims its name, and fails fast instead)."""
    import socket
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(64)                  # never accepted, never answered
    m = Mgr(tmp_path, "nats://127.0.0.1:%d" % mute.getsockname()[1], "mute")
    try:
        worst = 0.0
        with VMManager(m.sock) as local:
            end = time.monotonic() + 3.0     # several connect attempts
            while time.monotonic() < end:
                t = time.perf_counter()
                assert local.run("return 1") == 1    # pool VMs are local
                assert m.cluster()["connected"] is False
                worst = max(worst, time.perf_counter() - t)
            with pytest.raises(ManagerError, match="cluster unavailable"):
                local.create_vm("busy")
        print("worst exec + hello while NATS is mute: %.1f ms" % (worst * 1e3))
        assert worst < 0.5      # a loop stalled on the lock would take ~1 s
        # the server wakes up (a real one now, on that port): the manager,
        # which had only timeouts so far, still connects by itself
        port = mute.getsockname()[1]
        mute.close()
        srv = NatsServer(tmp_path / "nats", port=port).start()
        try:
            m.wait_connected(True)
        finally:
            srv.close()
    finally:
        m.close()
        mute.close()


def run_manager(tmp_path, *args):
    return subprocess.run([find_manager(), "--socket", str(tmp_path / "bad.sock")] + list(args),
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


@needs_cluster
@pytest.mark.parametrize("args, says", [
    (["--cluster", "http://127.0.0.1:4222"], "not a nats://HOST[:PORT]"),
    (["--cluster", "nats://127.0.0.1:99999"], "not a nats://HOST[:PORT]"),
    (["--cluster", ","], "no URL given"),
    (["--cluster", "nats://127.0.0.1:4222", "--host-name", "a.b"], "--host-name"),
    (["--cluster", "nats://127.0.0.1:4222", "--cluster-name", "x y"], "--cluster-name"),
    (["--cluster", "nats://127.0.0.1:4222", "--cluster-token-file", "/nonexistent"], "token"),
    (["--cluster", "nats://127.0.0.1:4222", "--cluster-cert", "/etc/hostname"], "go together"),
    (["--cluster", "nats://127.0.0.1:4222", "--cluster-creds", "/nonexistent"], "--cluster-creds"),
    (["--cluster", "nats://127.0.0.1:4222", "--cluster-ca", "/nonexistent"], "--cluster-ca"),
])
def test_bad_cluster_options_are_clear_errors(tmp_path, args, says):
    r = run_manager(tmp_path, *args)
    assert r.returncode == 2, r
    assert says in r.stderr, r.stderr
    assert not (tmp_path / "bad.sock").exists()


def thread_count(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def test_without_cluster_nothing_changes(tmp_path):
    sock = str(tmp_path / "plain.sock")
    proc = subprocess.Popen([find_manager(), "--socket", sock, "--exit-with-stdin", "--spares", "0"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == ("READY %s\n" % sock).encode()
        hello = Raw(sock).req(op="hello")["result"]
        assert "cluster" not in hello
        assert thread_count(proc.pid) == 1      # no worker, no nats.c threads
    finally:
        proc.stdin.close()
        proc.wait(timeout=20)
        proc.stdout.close()


@pytest.mark.skipif(built_with_cluster(), reason="this build has the cluster link")
def test_a_build_without_libnats_refuses_cluster(tmp_path):
    r = run_manager(tmp_path, "--cluster", "nats://127.0.0.1:4222")
    assert r.returncode == 2 and "built without cluster support" in r.stderr, r


def test_a_create_pipelined_with_its_first_requests_on_a_clustered_manager(tmp_path, nats_server):
    """A create claims its name in the cluster before the node starts; the
    requests a client pipelines right behind it (the README's socat pair)
    wait for that claim and run in order, as on a lone manager."""
    import json as _json
    import socket as _socket
    m = Mgr(tmp_path, nats_server.url, "pipe")
    try:
        m.wait_connected(True)
        s = _socket.socket(_socket.AF_UNIX)
        s.settimeout(30)
        s.connect(m.sock)
        lines = ['{"id":1,"op":"create","name":"piped"}',
                 '{"id":2,"op":"exec","vm":"piped","code":"x = 41 return 1+1"}',
                 '{"id":3,"op":"exec","vm":"piped","code":"return x + 1"}']
        s.sendall(("\n".join(lines) + "\n").encode())
        s.shutdown(_socket.SHUT_WR)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()
        by_id = {r["id"]: r for r in map(_json.loads, buf.splitlines())}
        assert set(by_id) == {1, 2, 3}, by_id
        assert "result" in by_id[2], by_id
        assert by_id[2]["result"]["values"] == [2], by_id[2]
        assert by_id[3]["result"]["values"] == [42], by_id[3]
    finally:
        m.close()
