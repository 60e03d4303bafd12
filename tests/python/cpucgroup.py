"""One cpu cgroup per manager, so that bench/cluster.py can hold each
manager's process tree to an equal CPU share and measure scaling on a
machine with fewer cores than managers.

cgroup v2 (a cgroup2 mount whose cgroup.controllers lists cpu): cpu.max
"QUOTA PERIOD". cgroup v1 (a "cpu" hierarchy, as on these machines):
cpu.cfs_quota_us / cpu.cfs_period_us. The groups are made under this
process's own cgroup in that hierarchy, so a delegated subtree works too.
A process joins before its manager execs (clusterenv writes its pid into
procs_file()), so every node the manager forks is inside.
"""

import os
import time

PERIOD_US = 100000


def _mounts():
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, path, fstype, opts = line.split()[:4]
            yield path, fstype, opts.split(",")


def _own_path(v1_controller=None):
    """This process's cgroup path in the v2 tree, or in the v1 hierarchy
    that has ``v1_controller``."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, ctrls, path = line.rstrip("\n").split(":", 2)
            if v1_controller is None and hid == "0":
                return path
            if v1_controller is not None and v1_controller in ctrls.split(","):
                return path
    return "/"


def find_cpu_root():
    """(version, directory under which to make groups) or (0, reason)."""
    for path, fstype, opts in _mounts():
        if fstype == "cgroup2":
            try:
                with open(os.path.join(path, "cgroup.controllers")) as f:
                    if "cpu" in f.read().split():
                        return 2, os.path.join(path, _own_path().lstrip("/"))
            except OSError:
                pass
    for path, fstype, opts in _mounts():
        if fstype == "cgroup" and "cpu" in opts:
            return 1, os.path.join(path, _own_path("cpu").lstrip("/"))
    return 0, "no cgroup hierarchy with the cpu controller"


class CpuCgroups:
    """Groups named ``<run>-<name>``; close() removes them."""

    def __init__(self, version, root, run):
        self.version, self.root, self.run = version, root, run
        self.dirs = {}

    @staticmethod
    def why_unavailable():
        v, root = find_cpu_root()
        if v == 0:
            return root
        if not os.access(root, os.W_OK):
            return "%s is not writable" % root
        return None

    @classmethod
    def make(cls, run):
        """A CpuCgroups, or None when the host has no usable cpu controller."""
        if cls.why_unavailable():
            return None
        v, root = find_cpu_root()
        if v == 2:
            try:   # the children need the controller enabled in the parent
                with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
                    f.write("+cpu")
            except OSError:
                return None
        return cls(v, root, run)

    def add(self, name):
        d = os.path.join(self.root, "%s-%s" % (self.run, name))
        os.mkdir(d)
        self.dirs[name] = d

    def has(self, name):
        return name in self.dirs

    def procs_file(self, name):
        return os.path.join(self.dirs[name], "cgroup.procs")

    def quota(self, name, cpus):
        """Limit group ``name`` to ``cpus`` CPUs (None: no limit)."""
        d = self.dirs[name]
        q = -1 if cpus is None else max(1000, int(cpus * PERIOD_US))
        if self.version == 2:
            with open(os.path.join(d, "cpu.max"), "w") as f:
                f.write("%s %d" % ("max" if q < 0 else q, PERIOD_US))
        else:
            with open(os.path.join(d, "cpu.cfs_period_us"), "w") as f:
                f.write(str(PERIOD_US))
            with open(os.path.join(d, "cpu.cfs_quota_us"), "w") as f:
                f.write(str(q))

    def close(self, timeout=10.0):
        """Remove the groups, once their processes are gone (the caller kills
        them first); stragglers are moved back to the parent."""
        for name, d in list(self.dirs.items()):
            deadline = time.monotonic() + timeout
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        self._evict(d)
                        try:
                            os.rmdir(d)
                        except OSError:
                            pass
                        break
                    # killed processes are being reaped: try again shortly
                    time.sleep(0.05)
            del self.dirs[name]

    def _evict(self, d):
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids = f.read().split()
            for p in pids:
                with open(os.path.join(self.root, "cgroup.procs"), "w") as f:
                    f.write(p)
        except OSError:
            pass

    def leftovers(self):
        try:
            return [os.path.join(self.root, e) for e in os.listdir(self.root)
                    if e.startswith(self.run + "-")]
        except OSError:
            return []
