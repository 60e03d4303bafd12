"""A real bioxen cluster on one machine: one nats-server (JetStream, store in
a temp dir, a free port) and N bioxen managers (m1..mN), each in its own
network namespace so that the only path between managers is NATS
(clusternet.py draws the wiring). Clients reach each manager through its
Unix socket: the filesystem is shared across network namespaces.

    with Cluster(n=3) as c:
        c.url                        # nats://10.213.X.1:PORT (the bridge)
        c.managers["m1"].socket      # that manager's Unix socket
        vm = c.connect("m1")         # a VMManager, closed with the cluster
        c.kill("m2")                 # SIGKILL m2 and its nodes: a host dies
        c.start_manager("m2")        # ... and comes back, same flags
        c.restart_nats()             # or stop_nats() / start_nats()
        c.cgroup_quota("m1", cpus=0.5)

Where namespaces cannot be made (not root, no ``ip``, EPERM) the same
cluster runs as plain processes on 127.0.0.1, says so on stderr, and has
``isolated = False``; tests ``skipif`` on what they need. ``cluster_flags``
(default: whether ``bioxen-manager --help`` lists ``--cluster``) adds
``--cluster URL --host-name mN``, so the harness also runs managers that do
not know the cluster yet. Everything is undone by close() (the ``with``
exit), after a failed start or a SIGKILLed manager as well. Should the
harness itself be SIGKILLed, its managers exit with their stdin
(--exit-with-stdin), nats-server with its parent (pdeathsig), and the next
Cluster's sweep() removes its namespaces, cgroups and temp dir (each run is
recorded in /run/bioxen-clusterenv/<run>.json, or in /tmp for a non-root user).

Also used by examples/cluster.py and bench/cluster.py (a one-machine
cluster for a demo); a real deployment uses deploy/ and docs/cluster.md.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for p in (str(HERE), str(REPO / "python")):
    if p not in sys.path:
        sys.path.insert(0, p)

import clusternet                                   # noqa: E402
from clusterproc import (OWNERS, kill_wait, cluster_support, descendants,   # noqa: E402,F401
                         manager_knows_cluster, sweep)
from cpucgroup import CpuCgroups                    # noqa: E402
from natsraw import NatsServer                      # noqa: E402
from pylua_bioxen_vm import VMManager               # noqa: E402
from pylua_bioxen_vm.embedded import find_manager, first_line, wait_exit   # noqa: E402


class Manager:
    """One manager of the cluster. ``proc`` is None while it is down."""

    def __init__(self, name, socket, log, addr, ns):
        self.name, self.socket, self.log = name, socket, log
        self.addr = addr     # its namespace's address (127.0.0.1 when not isolated)
        self.ns = ns         # its namespace's name, None when not isolated
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=3000):
        try:
            with open(self.log, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""


class ClusterError(Exception):
    pass


class Cluster:
    """See the module docstring.

    Args:
        n: number of managers, named m1..mN.
        nats_args: extra nats-server arguments (e.g. ``["--max_payload", "65536"]``).
        manager_args: extra manager arguments, a list for all or a callable
            ``name -> list``.
        cluster_flags: add ``--cluster URL --host-name NAME``; None: when the
            manager binary has them.
        isolate: None: namespaces if possible; True: namespaces or
            ClusterError; False: plain processes.
        cgroups: make a cpu cgroup per manager (for cgroup_quota) when the
            host has a cpu controller.
        start_timeout: seconds for each process to come up.
    """

    def __init__(self, n=3, nats_args=(), manager_args=(), cluster_flags=None,
                 isolate=None, cgroups=True, start_timeout=20.0, verbose=True):
        self.names = ["m%d" % i for i in range(1, n + 1)]
        self.nats_args, self.manager_args = list(nats_args), manager_args
        self.binary = find_manager()
        self.cluster_flags = (manager_knows_cluster(self.binary) if cluster_flags is None
                              else bool(cluster_flags))
        self.isolate, self.want_cgroups = isolate, cgroups
        self.start_timeout, self.verbose = start_timeout, verbose
        self.managers, self.clients = {}, []
        self.net = self.nats = self.cgroups = None
        self.isolated, self.why_not_isolated = False, None
        self.tmp = self.run = None

    # -- lifecycle -------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        sweep()
        self.run = secrets.token_hex(3)
        # /tmp, not $TMPDIR: a socket path must fit in sun_path's 108 bytes
        self.tmp = tempfile.mkdtemp(prefix="bxcl-%s-" % self.run, dir="/tmp")
        self._own()
        self._make_net()
        if self.want_cgroups:
            self.cgroups = CpuCgroups.make("bxcl-" + self.run)
        host = self.net.hub_addr if self.isolated else "127.0.0.1"
        store = os.path.join(self.tmp, "js")
        os.mkdir(store)
        self.nats = NatsServer(host, store, os.path.join(self.tmp, "nats.log"),
                               self.nats_args, name="bx-" + os.path.basename(self.tmp))
        self.nats.start(self.start_timeout)
        for name in self.names:
            sock = os.path.join(self.tmp, name + ".sock")
            self.managers[name] = Manager(
                name, sock, os.path.join(self.tmp, name + ".log"),
                self.net.addr[name] if self.isolated else "127.0.0.1",
                self.net.ns[name] if self.isolated else None)
            if self.cgroups:
                self.cgroups.add(name)
            self._own()
            self.start_manager(name)

    def _own(self):
        """Record what this run made, for sweep() should we be SIGKILLed."""
        rec = {"pid": os.getpid(), "run": self.run, "tmp": self.tmp,
               "cgroups": list(self.cgroups.dirs.values()) if self.cgroups else []}
        try:
            os.makedirs(OWNERS, exist_ok=True)
            with open(os.path.join(OWNERS, self.run + ".json.new"), "w") as f:
                json.dump(rec, f)
            os.replace(os.path.join(OWNERS, self.run + ".json.new"),
                       os.path.join(OWNERS, self.run + ".json"))
        except OSError:
            pass    # nowhere to record it: a SIGKILL then leaves the temp dir

    def _make_net(self):
        why = None if self.isolate is False else clusternet.why_unavailable()
        if self.isolate is False:
            why = "isolate=False"
        if why is None:
            try:
                self.net = clusternet.Net(self.names, self.run)
                self.isolated = True
                return
            except (clusternet.NetUnavailable, subprocess.CalledProcessError, OSError) as e:
                why = getattr(e, "stderr", None) or str(e)
        if self.isolate:
            raise ClusterError("network namespaces are required and unavailable: %s" % why)
        self.why_not_isolated = why
        if self.verbose:
            print("clusterenv: no network namespaces (%s): managers run as plain "
                  "processes on 127.0.0.1, not isolated from each other"
                  % str(why).strip(), file=sys.stderr)

    @property
    def url(self):
        return self.nats.url

    def manager_command(self, name):
        extra = self.manager_args(name) if callable(self.manager_args) else self.manager_args
        cmd = [self.binary, "--socket", self.managers[name].socket, "--exit-with-stdin"]
        if self.cluster_flags:
            cmd += ["--cluster", self.url, "--host-name", name]
        return cmd + list(extra)

    def start_manager(self, name):
        """Start (or start again, after kill()) manager ``name``; waits for
        its READY line. Raises ClusterError with its log on failure."""
        m = self.managers[name]
        if m.alive():
            return
        cmd = self.manager_command(name)
        if self.isolated:
            cmd = self.net.prefix(name) + cmd
        if self.cgroups and self.cgroups.has(name):
            # join the cgroup before exec, so every node it forks is inside
            cmd = ["sh", "-c", 'echo $$ > "$0" && exec "$@"',
                   self.cgroups.procs_file(name)] + cmd
        with open(m.log, "ab") as log:
            m.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=log, start_new_session=True)
        try:
            line = first_line(m.proc, self.start_timeout)
        except EOFError:
            line = None
        if not line or not line.startswith("READY "):
            self._stop_manager(m, 0.0)
            raise ClusterError("manager %s did not start (%r); its log:\n%s"
                               % (name, line, m.log_tail()))
        m.proc.stdout.close()    # it must not log there; nothing more to read

    def connect(self, name, **kw):
        """A VMManager connected to ``name``'s socket; closed by close()."""
        vm = VMManager("unix:" + self.managers[name].socket,
                       start_timeout=kw.pop("start_timeout", 10.0), **kw)
        self.clients.append(vm)
        return vm

    def hello(self, name, timeout=5.0):
        """The manager's ``hello`` answer (a fresh connection each time)."""
        vm = VMManager("unix:" + self.managers[name].socket, start_timeout=timeout)
        try:
            return dict(vm.server_info)
        finally:
            vm.close()

    def wait_cluster(self, timeout=15.0, names=None, connected=True):
        """Wait until each manager's hello says ``cluster.connected`` (or,
        with ``connected=False``, that it is not).

        Raises:
            ClusterError: the managers have no cluster support, or one is not
                connected by the deadline.
        """
        if not self.cluster_flags:
            raise ClusterError("the managers were started without --cluster")
        deadline = time.monotonic() + timeout
        for name in names or self.names:
            while True:
                c = self.hello(name).get("cluster") or {}
                if bool(c.get("connected")) == connected:
                    break
                if time.monotonic() > deadline:
                    raise ClusterError("%s %s within %.0f s: %r\n%s" % (
                        name, "not connected to NATS" if connected else "still connected",
                        timeout, c, self.managers[name].log_tail()))
                # the link comes up on the manager's own schedule: knock again
                time.sleep(0.1)

    def kill(self, name, tree=True):
        """SIGKILL manager ``name`` (and, with ``tree``, every process it
        started): what a host crash does. start_manager() brings it back."""
        m = self.managers[name]
        if not m.alive():
            return
        kids = descendants(m.pid) if tree else []
        kill_wait([m.pid] + kids)
        m.proc.wait()

    def stop_nats(self):
        self.nats.stop()

    def start_nats(self):
        self.nats.start(self.start_timeout)

    def restart_nats(self):
        self.nats.restart()

    def cgroup_quota(self, name, cpus):
        """Hold ``name``'s processes to ``cpus`` CPUs (a cpu.max /
        cfs_quota_us quota on its cgroup). Raises ClusterError without a cpu
        controller (check ``c.cgroups``)."""
        if not self.cgroups:
            raise ClusterError("no cpu cgroup controller here: %s"
                               % CpuCgroups.why_unavailable())
        self.cgroups.quota(name, cpus)

    # -- teardown --------------------------------------------------------

    def _stop_manager(self, m, timeout):
        if m.proc is None:
            return
        kids = descendants(m.pid) if m.alive() else []
        for f in (m.proc.stdin, m.proc.stdout):
            try:
                if f:
                    f.close()     # --exit-with-stdin: it shuts down cleanly
            except OSError:
                pass
        if not wait_exit(m.proc, timeout):
            kids = descendants(m.pid) + kids
            m.proc.kill()
        m.proc.wait()
        kill_wait(kids)   # nodes exit with their manager; this is the backstop

    def close(self):
        """Stop and remove everything; idempotent, safe after a failed start."""
        for vm in self.clients:
            try:
                vm.close()
            except Exception:
                pass
        self.clients = []
        for m in self.managers.values():
            self._stop_manager(m, 5.0)
        if self.net:
            for name in self.names:
                if name in self.net.ns:
                    kill_wait(self.net.pids(name))
        if self.nats:
            self.nats.stop()
        if self.cgroups:
            self.cgroups.close()
        if self.net:
            self.net.close()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            left = self.cgroups.leftovers() if self.cgroups else []
            try:
                if left:    # not removable yet (unreaped processes): sweep() retries
                    with open(os.path.join(OWNERS, self.run + ".json"), "w") as f:
                        json.dump({"pid": -1, "run": self.run, "tmp": self.tmp,
                                   "cgroups": left}, f)
                else:
                    os.unlink(os.path.join(OWNERS, self.run + ".json"))
            except OSError:
                pass

    def leftovers(self):
        """What of this run still exists (for tests): namespaces, links,
        cgroups, processes, the temp dir."""
        left = self.net.leftovers() if self.net else []
        if self.cgroups:
            left += self.cgroups.leftovers()
        for m in self.managers.values():
            if m.alive():
                left.append("manager %s pid %d" % (m.name, m.pid))
        if self.nats and self.nats.proc and self.nats.proc.poll() is None:
            left.append("nats-server pid %d" % self.nats.proc.pid)
        if self.tmp and os.path.exists(self.tmp):
            left.append(self.tmp)
        if self.run and os.path.exists(os.path.join(OWNERS, self.run + ".json")):
            left.append(os.path.join(OWNERS, self.run + ".json"))
        return left
