"""The cluster's link to NATS with TLS, tokens, nkeys and .creds, against
real servers (issue 13): a real nats-server configured for each, real
managers joining through it with the flags a user gives, and a forwarded
exec across two of them to show the link carries the cluster. Wrong
credentials: the manager says why in its log, never joins, and keeps
serving local work (a ``run`` on its own pool) without hanging.

The certificates, nkeys and JWTs are made here with Debian's ``openssl``
(natsauth.py); the managers run as plain processes on 127.0.0.1.
"""

import os
import subprocess
import time

import pytest

from conftest import Raw
from natsauth import have_openssl, make_pki, nkey_user, operator_setup, tls_conf
from natsfix import NatsServer, have_nats
from pylua_bioxen_vm import ManagerError, VMManager
from pylua_bioxen_vm.embedded import find_manager

from test_cluster_link import needs_cluster

pytestmark = [needs_cluster, pytest.mark.skipif(not have_nats(), reason="no nats-server"),
              pytest.mark.skipif(not have_openssl(), reason="no openssl (dev.sh installs it)")]

JOIN_S = 20.0       # a manager's first connect, on a loaded machine
REFUSED_S = 10.0    # until a refused manager has said why in its log


class Host:
    """One bioxen-manager with --cluster URL --host-name NAME + flags."""

    def __init__(self, tmp_path, url, name, flags=()):
        self.name, self.log = name, str(tmp_path / ("%s.log" % name))
        self.sock = str(tmp_path / ("%s.sock" % name))
        self.proc = subprocess.Popen(
            [find_manager(), "--socket", self.sock, "--exit-with-stdin", "--spares", "0",
             "--cluster", url, "--host-name", name, *flags],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(self.log, "wb"))
        line = self.proc.stdout.readline()      # bounded by the autouse deadline
        assert line == ("READY %s\n" % self.sock).encode(), (line, self.log_text())
        self.raw = Raw(self.sock, deadline=10.0)
        self.clients = []

    def cluster(self):
        return self.raw.req(op="hello")["result"]["cluster"]

    def client(self):
        c = VMManager(self.sock, start_timeout=20.0)
        self.clients.append(c)
        return c

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_connected(self, timeout=JOIN_S):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.cluster()["connected"]:
                return
            time.sleep(0.1)
        raise AssertionError("%s did not join; its log:\n%s" % (self.name, self.log_text()))

    def wait_log(self, text, timeout=REFUSED_S):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.log_text():
                return
            time.sleep(0.1)
        raise AssertionError("%r not in %s's log:\n%s" % (text, self.name, self.log_text()))

    def close(self):
        for c in self.clients:
            c.close()
        self.raw.sock.close()
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def hosts():
    """Starts managers (Host(...) args) and closes them all at the end."""
    made = []

    def start(*args, **kw):
        h = Host(*args, **kw)
        made.append(h)
        return h
    yield start
    for h in made:
        h.close()


@pytest.fixture
def server(tmp_path):
    """start(conf) -> a started NatsServer with that configuration text."""
    made = []

    def start(conf):
        srv = NatsServer(tmp_path / ("nats%d" % len(made)), conf=conf)
        made.append(srv)
        return srv.start()
    yield start
    for s in made:
        s.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


def forwarded_exec_works(a, b):
    """A VM on b, made and used through a: the cluster works over this link."""
    a.wait_connected()
    b.wait_connected()
    m = a.client()
    end = time.monotonic() + JOIN_S     # a's heartbeat table hears b
    while not any(h["name"] == b.name and h["alive"] for h in m.hosts()):
        assert time.monotonic() < end, "%s never heard %s" % (a.name, b.name)
        time.sleep(0.1)
    vm = m.create_vm("over-" + b.name, host=b.name)
    assert vm.execute("return 6 * 7") == 42
    where = {v["name"]: v.get("host") for v in m.list_vms(cluster=True)}
    assert where["over-" + b.name] == b.name


def refused_but_serving(h, why):
    """h says why it cannot join, stays out, answers at once, runs local
    work, and fails a cluster op fast instead of hanging."""
    h.wait_log(why)
    t0 = time.monotonic()
    assert h.cluster()["connected"] is False
    m = h.client()
    assert m.run("return 2 + 3") == 5      # its own pool, no NATS needed
    with pytest.raises(ManagerError, match="cluster unavailable"):
        m.create_vm("needs-the-cluster")   # a name claim needs the cluster
    assert time.monotonic() - t0 < 10.0, "the refused manager was slow to answer"


# -- TLS ---------------------------------------------------------------------

def test_mutual_tls_cluster_forwards_exec(tmp_path, pki, server, hosts):
    """Server verifies client certificates; managers give CA, cert, key."""
    srv = server(tls_conf(pki, verify=True))
    url = "tls://127.0.0.1:%d" % srv.port
    flags = ["--cluster-ca", pki["ca"], "--cluster-cert", pki["client_cert"],
             "--cluster-key", pki["client_key"]]
    a, b = hosts(tmp_path, url, "m1", flags), hosts(tmp_path, url, "m2", flags)
    forwarded_exec_works(a, b)


def test_tls_server_only_cluster_forwards_exec(tmp_path, pki, server, hosts):
    """Server does not ask for client certificates; managers give the CA."""
    srv = server(tls_conf(pki, verify=False))
    url = "tls://127.0.0.1:%d" % srv.port
    a = hosts(tmp_path, url, "m1", ["--cluster-ca", pki["ca"]])
    b = hosts(tmp_path, url, "m2", ["--cluster-ca", pki["ca"]])
    forwarded_exec_works(a, b)


def test_tls_wrong_ca_is_refused_clearly(tmp_path, pki, server, hosts):
    srv = server(tls_conf(pki, verify=True))
    url = "tls://127.0.0.1:%d" % srv.port
    good = hosts(tmp_path, url, "m1", ["--cluster-ca", pki["ca"], "--cluster-cert",
                                       pki["client_cert"], "--cluster-key", pki["client_key"]])
    bad = hosts(tmp_path, url, "m2", ["--cluster-ca", pki["other_ca"], "--cluster-cert",
                                      pki["client_cert"], "--cluster-key", pki["client_key"]])
    refused_but_serving(bad, "unable to get local issuer certificate")
    good.wait_connected()
    assert not any(h["name"] == "m2" for h in good.client().hosts())


def test_tls_without_client_certificate_is_refused_clearly(tmp_path, pki, server, hosts):
    srv = server(tls_conf(pki, verify=True))
    bad = hosts(tmp_path, "tls://127.0.0.1:%d" % srv.port, "m1", ["--cluster-ca", pki["ca"]])
    refused_but_serving(bad, "--cluster-cert")


def test_plain_manager_cannot_join_a_tls_server(tmp_path, pki, server, hosts):
    srv = server(tls_conf(pki, verify=True))
    bad = hosts(tmp_path, "nats://127.0.0.1:%d" % srv.port, "m1")
    refused_but_serving(bad, "cannot connect to NATS yet")


# -- token -------------------------------------------------------------------

def test_token_right_joins_wrong_is_refused(tmp_path, server, hosts):
    srv = server('authorization { token: "bx-s3cret-token" }\n')
    (tmp_path / "ok.token").write_text("bx-s3cret-token\n")
    (tmp_path / "bad.token").write_text("not-the-token\n")
    ok = ["--cluster-token-file", str(tmp_path / "ok.token")]
    a, b = hosts(tmp_path, srv.url, "m1", ok), hosts(tmp_path, srv.url, "m2", ok)
    forwarded_exec_works(a, b)
    wrong = hosts(tmp_path, srv.url, "m3", ["--cluster-token-file", str(tmp_path / "bad.token")])
    refused_but_serving(wrong, "Authorization Violation")
    none = hosts(tmp_path, srv.url, "m4")
    refused_but_serving(none, "Authorization Violation")


# -- nkey --------------------------------------------------------------------

def test_nkey_right_joins_wrong_is_refused(tmp_path, server, hosts):
    keys = str(tmp_path / "keys")
    f1, p1 = nkey_user(keys, "m1")
    f2, p2 = nkey_user(keys, "m2")
    stranger, _ = nkey_user(keys, "stranger")
    srv = server('authorization { users = [ {nkey: "%s"}, {nkey: "%s"} ] }\n' % (p1, p2))
    a = hosts(tmp_path, srv.url, "m1", ["--cluster-nkey", f1])
    b = hosts(tmp_path, srv.url, "m2", ["--cluster-nkey", f2])
    forwarded_exec_works(a, b)
    bad = hosts(tmp_path, srv.url, "m3", ["--cluster-nkey", stranger])
    refused_but_serving(bad, "Authorization Violation")


def test_nkey_file_without_public_key_is_a_startup_error(tmp_path):
    keys = str(tmp_path / "keys")
    f, _ = nkey_user(keys, "m1")
    seed_only = tmp_path / "seed-only.nk"
    seed_only.write_text(open(f).read().splitlines()[0] + "\n")
    r = subprocess.run([find_manager(), "--socket", str(tmp_path / "x.sock"), "--cluster",
                        "nats://127.0.0.1:4222", "--host-name", "m1", "--cluster-nkey",
                        str(seed_only)], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30)
    assert r.returncode != 0
    assert b"no public key" in r.stderr, r.stderr


# -- .creds (operator, account and user JWTs) --------------------------------

def test_creds_right_joins_stranger_is_refused(tmp_path, server, hosts):
    """Operator mode: the server trusts an operator; the account it signed
    has JetStream (the names bucket); users come with .creds files."""
    op = operator_setup(str(tmp_path / "op"))
    srv = server(op["conf"])
    flags = ["--cluster-creds", op["creds"]]
    a, b = hosts(tmp_path, srv.url, "m1", flags), hosts(tmp_path, srv.url, "m2", flags)
    forwarded_exec_works(a, b)
    bad = hosts(tmp_path, srv.url, "m3", ["--cluster-creds", op["stranger"]])
    refused_but_serving(bad, "Authorization Violation")


def test_missing_creds_file_is_a_startup_error(tmp_path):
    r = subprocess.run([find_manager(), "--socket", str(tmp_path / "x.sock"), "--cluster",
                        "nats://127.0.0.1:4222", "--host-name", "m1", "--cluster-creds",
                        str(tmp_path / "nope.creds")], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=30)
    assert r.returncode != 0
    assert b"nope.creds" in r.stderr and b"No such file" in r.stderr, r.stderr


def test_tls_flags_are_checked_at_startup(tmp_path, pki):
    base = [find_manager(), "--socket", str(tmp_path / "x.sock"), "--cluster",
            "tls://127.0.0.1:4222", "--host-name", "m1"]
    for extra, want in ((["--cluster-cert", pki["client_cert"]], b"go together"),
                        (["--cluster-ca", str(tmp_path / "none.pem")], b"--cluster-ca")):
        r = subprocess.run(base + extra, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=30)
        assert r.returncode != 0 and want in r.stderr, r.stderr
    assert os.path.exists(pki["ca"])
