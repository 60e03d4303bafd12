"""The one setup of the cluster feature tests (test_cluster_{names,forward,
mail,map,failover}.py): clusterenv.Cluster -- a real nats-server and N real
managers m1..mN, each in its own network namespace when this process is
root and ``ip netns`` works (the only path between managers is NATS), plain
processes on 127.0.0.1 otherwise. The test says which: a ``UserWarning``
in pytest's summary names the reason when it is not isolated, and
``Fix.isolated`` tells a test that needs to know. ``BIOXEN_CLUSTER_NETNS=0``
takes the plain-process path on purpose.

    with Fix(n=2, tcp=True) as c:
        c.m1.client()              # a VMManager on m1's Unix socket
        c.m1.client("tok-alice")   # ... on m1's TCP listener, as alice
        c.m1.raw.req(op="hosts")   # a bare NDJSON connection
        c.m2.kill()                # SIGKILL m2's manager and its nodes
        c.nats.kill()              # SIGKILL nats-server; c.nats.start()

Tests reach each manager through its Unix socket (the filesystem is shared
across network namespaces) and, with ``tcp``, its TCP listener on its
namespace's address (reachable from the root namespace over the bridge).
Every wait has a deadline.
"""

import os
import signal
import subprocess
import time
import warnings

from clusterenv import Cluster, kill_wait
from conftest import Raw, descendants, wait_gone
from pylua_bioxen_vm import VMManager

TOKENS = "alice:tok-alice\nbob:tok-bob\n"
UP = 30.0       # managers connected and hearing each other: a noisy machine's margin


class Nats:
    """The cluster's nats-server as the tests drive it."""

    def __init__(self, env):
        self.env = env

    @property
    def url(self):
        return self.env.url

    @property
    def host(self):
        return self.env.nats.host

    @property
    def port(self):
        return self.env.nats.port

    def stop(self):
        self.env.stop_nats()

    def start(self):
        self.env.start_nats()

    def kill(self):
        """SIGKILL, as a crash would; start() brings it back on its port."""
        p = self.env.nats.proc
        if p is not None and p.poll() is None:
            kill_wait([p.pid])
            p.wait(timeout=10)


class Host:
    """One manager of the cluster, with a bare connection (``raw``) and,
    made on first use, a client (``m``)."""

    def __init__(self, env, name, tcp):
        self.env, self.name = env, name
        self.sock = env.managers[name].socket
        self.log = env.managers[name].log
        self.raw = Raw(self.sock)
        self.tcp = None
        if tcp:
            self.tcp = "tcp://" + self.raw.req(op="hello")["result"]["tcp"]
        self._m = None
        self.killed = False

    @property
    def proc(self):
        return self.env.managers[self.name].proc

    @property
    def m(self):
        if self._m is None:
            self._m = VMManager(self.sock, start_timeout=20.0)
        return self._m

    def client(self, token=None):
        """A new VMManager of this host (the caller closes it)."""
        if token is None:
            return VMManager(self.sock, start_timeout=20.0)
        return VMManager(self.tcp, token=token, start_timeout=20.0)

    def cluster(self):
        return self.raw.req(op="hello")["result"]["cluster"]

    def connected(self):
        return self.cluster()["connected"]

    def wait_connected(self, want, within=UP):
        end = time.monotonic() + within
        while time.monotonic() < end:
            c = self.cluster()
            if c["connected"] == want:
                return time.monotonic() - (end - within)
            time.sleep(0.05)
        raise AssertionError("%s: connected never became %r within %.0f s: %r"
                             % (self.name, want, within, c))

    def hosts(self):
        """hosts() as this manager answers it, by name."""
        return {h["name"]: h for h in self.raw.req(op="hosts")["result"]}

    def kill(self):
        """SIGKILL the manager and its nodes (what a host crash does); its
        clients are dropped without a word."""
        self.killed = True
        self.env.kill(self.name)
        self._drop_clients()

    def _drop_clients(self):
        try:
            if self._m is not None:
                self._m.close()
        except Exception:   # noqa: BLE001 - its manager is gone
            pass
        self._m = None
        try:
            self.raw.sock.close()
        except OSError:
            pass

    def close(self):
        """A clean stop (stdin closed: it drains, then exits 0, as asserted),
        unless it was killed."""
        p = self.proc
        if self.killed or p is None or p.poll() is not None:
            self._drop_clients()
            return
        procs = [p.pid] + descendants(p.pid)
        self._drop_clients()
        p.stdin.close()
        try:    # a draining manager waits at most 30 s for owed replies
            p.wait(timeout=45)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
        assert not wait_gone(procs), "%s: processes left" % self.name
        assert p.returncode == 0, "%s exited %r:\n%s" % (
            self.name, p.returncode, self.env.managers[self.name].log_tail())

    def stop(self):
        """SIGSTOP (a hung host: NATS still holds its connection)."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def cont(self):
        os.kill(self.proc.pid, signal.SIGCONT)


class Fix:
    """n managers (m1..mN) on one nats-server, connected and hearing each
    other. ``tcp``: each also listens on TCP with the tokens in TOKENS."""

    def __init__(self, n=2, tcp=False, args=()):
        self.n, self.tcp, self.args = n, tcp, list(args)
        # BIOXEN_CLUSTER_NETNS=0: plain processes even as root (the path a
        # machine without namespaces takes, run on purpose)
        isolate = False if os.environ.get("BIOXEN_CLUSTER_NETNS") == "0" else None
        # no cpu cgroups: no test here sets a quota, and a cgroup cannot be
        # removed while a killed host's nodes wait, as zombies, for an init
        # that reaps late (seen here: close() then waits 10 s per group)
        self.env = Cluster(n=n, manager_args=self._args, isolate=isolate, cgroups=False,
                           verbose=False)
        self.hosts = []
        self.nats = None

    def _args(self, name):
        a = ["--spares", "0"] + self.args
        if self.tcp:
            a += ["--tcp", "%s:0" % self.env.managers[name].addr,
                  "--token-file", self._tokens]
        return a

    def __enter__(self):
        import tempfile
        fd, self._tokens = tempfile.mkstemp(prefix="bxcl-tokens-", dir="/tmp")
        with os.fdopen(fd, "w") as f:
            f.write(TOKENS)
        try:
            self.env.__enter__()
            if not self.env.isolated:
                why = str(self.env.why_not_isolated).strip()
                if os.environ.get("BIOXEN_CLUSTER_NETNS") == "0":
                    why = "BIOXEN_CLUSTER_NETNS=0"
                warnings.warn("cluster tests run as plain processes on 127.0.0.1, not in "
                              "network namespaces: %s" % why)
            self.nats = Nats(self.env)
            self.hosts = [Host(self.env, name, self.tcp) for name in self.env.names]
            for i, h in enumerate(self.hosts, 1):
                setattr(self, "m%d" % i, h)
            self.wait_all_alive()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def isolated(self):
        return self.env.isolated

    def all_alive(self, h):
        seen = {name: e["alive"] for name, e in h.hosts().items()}
        return all(seen.get(o.name) for o in self.hosts)

    def wait_all_alive(self, within=UP):
        """Every manager connected and alive in every manager's hosts()."""
        self.env.wait_cluster(timeout=within)
        end = time.monotonic() + within
        while not all(self.all_alive(h) for h in self.hosts if not h.killed):
            assert time.monotonic() < end, "hosts never all alive: %r" % (
                [h.hosts() for h in self.hosts if not h.killed],)
            time.sleep(0.1)

    def close(self):
        try:
            errors = []
            for h in self.hosts:
                try:
                    h.close()
                except AssertionError as e:
                    errors.append(e)
            if errors:
                raise errors[0]
        finally:
            self.env.close()
            try:
                os.unlink(self._tokens)
            except (OSError, AttributeError):
                pass
