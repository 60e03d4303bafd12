"""Processes and leftovers of cluster-harness runs (clusterenv.py): the
process tree of a manager, killing it and waiting until it is gone, whether
a manager binary knows --cluster, and sweep(), which undoes the runs whose
owner was SIGKILLed before its close().
"""

import json
import os
import select
import shutil
import signal
import subprocess
import time

import clusternet
from pylua_bioxen_vm.embedded import find_manager


def descendants(pid):
    """Every live descendant of ``pid`` (from /proc), children first."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, stack = [], [pid]
    while stack:
        for c in kids.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


def kill_wait(pids, timeout=10.0):
    """SIGKILL ``pids`` and wait (on pidfds) until they have exited: a
    signal is delivered asynchronously, and "gone" must mean gone."""
    fds = []
    for p in pids:
        try:
            fds.append(os.pidfd_open(p))
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + timeout
    for fd in fds:
        try:
            select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            os.close(fd)


# <run>.json: the owner's pid and what it made (per user: a run of another
# user is not ours to sweep)
OWNERS = ("/run/bioxen-clusterenv" if os.geteuid() == 0
          else "/tmp/bioxen-clusterenv-%d" % os.geteuid())


def sweep():
    """Undo the runs whose owner died without close() (SIGKILLed): their
    namespaces, links, cgroups and temp dir. Live runs are left alone;
    returns the runs swept. Every Cluster calls it before it starts."""
    try:
        files = [f for f in os.listdir(OWNERS) if f.endswith(".json")]
    except OSError:
        return []
    swept = []
    for f in files:
        path = os.path.join(OWNERS, f)
        try:
            with open(path) as fh:
                rec = json.load(fh)
            if int(rec["pid"]) > 0:       # -1: closed, its cgroups left to sweep
                os.kill(int(rec["pid"]), 0)
                continue                  # its owner lives
        except ProcessLookupError:
            pass
        except (OSError, ValueError, KeyError, TypeError):
            continue
        clusternet.remove_run(rec.get("run", f[:-5]))
        left = [d for d in rec.get("cgroups", []) if not remove_cgroup(d)]
        if str(rec.get("tmp", "")).startswith("/tmp/bxcl-"):
            shutil.rmtree(rec["tmp"], ignore_errors=True)
        # other runs (other test sessions) may sweep at the same moment:
        # a record another one rewrote or removed is theirs now
        try:
            if left:    # kept for the next sweep: its processes are not all reaped yet
                rec["cgroups"] = left
                tmp = "%s.%d.new" % (path, os.getpid())
                with open(tmp, "w") as fh:
                    json.dump(rec, fh)
                os.replace(tmp, path)
                continue
            os.unlink(path)
        except OSError:
            continue
        swept.append(rec.get("run"))
    return swept


def remove_cgroup(d, timeout=0.5):
    """rmdir a dead run's cgroup, SIGKILLing what is still in it; True once
    it is gone. A killed process stays in its group until it is reaped, and
    an orphan is reaped by init, which may take its time: then False."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(d)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            pass
        try:
            with open(os.path.join(d, "cgroup.procs")) as fh:
                kill_wait([int(p) for p in fh.read().split()], timeout=1.0)
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def manager_knows_cluster(binary):
    """True if this bioxen-manager build has the --cluster flag."""
    try:
        r = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--cluster" in (r.stdout + r.stderr)


def cluster_support():
    """None if this build's bioxen-manager can join a cluster, else why not
    (for ``pytest.mark.skipif(cluster_support() is not None, ...)``)."""
    try:
        binary = find_manager()
    except Exception as e:     # noqa: BLE001 - the reason is the answer
        return str(e)
    if not manager_knows_cluster(binary):
        return "%s has no --cluster flag yet" % binary
    if shutil.which("nats-server") is None:
        return "no nats-server (Debian package nats-server)"
    return None
