"""Network namespaces for the cluster harness: one per manager, all joined by
veth pairs to one bridge in the root namespace, so that the only path
between managers is the NATS server listening on the bridge's address.

    root namespace: bridge bxb<run> 10.213.X.1/24  <- nats-server listens here
        |-- bxh<run>1 (isolated port) == bxn<run>1 in netns bx-<run>-m1: 10.213.X.11
        |-- bxh<run>2 (isolated port) == bxn<run>2 in netns bx-<run>-m2: 10.213.X.12
        ...

Bridge ports are "isolated": they forward only to the bridge itself, never
to each other, so m1 cannot reach m2's address; the namespaces get no default
route, so nothing but the /24 is reachable. A namespace's 127.0.0.1 is its
own loopback. <run> is a random per-run suffix, so parallel runs do not
clash; everything made is recorded and undone by Net.close(), which also
runs after a partial setup fails; remove_run() undoes a run whose owner
was SIGKILLed (clusterenv.sweep() finds those).
"""

import ipaddress
import os
import re
import secrets
import shutil
import subprocess


class NetUnavailable(Exception):
    """Namespaces cannot be made here (not root, no ``ip``, EPERM, ...)."""


def _ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise subprocess.CalledProcessError(r.returncode, ["ip"] + list(args),
                                            r.stdout, r.stderr)
    return r.stdout


def why_unavailable():
    """None if this process can make namespaces, else the reason."""
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("ip") is None:
        return "no `ip` command (Debian package iproute2)"
    probe = "bx-probe-" + secrets.token_hex(3)
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError as e:
        return "ip netns add failed: %s" % e.stderr.strip()
    _ip("netns", "del", probe, check=False)
    return None


def addresses():
    """(device, network) of every IPv4 address in the root namespace."""
    out = []
    for line in _ip("-4", "-o", "addr", "show").splitlines():
        m = re.search(r"^\d+:\s+(\S+)\s+inet (\S+)", line)
        if m:
            out.append((m.group(1), ipaddress.ip_interface(m.group(2)).network))
    return out


def used_networks():
    """Every IPv4 network with an address or route in the root namespace."""
    nets = [net for _, net in addresses()]
    for line in _ip("-4", "route", "show", "table", "all").splitlines():
        word = line.split()[0] if line.split() else ""
        if word in ("broadcast", "local", "unicast", "multicast"):
            word = line.split()[1]
        try:
            nets.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            pass   # "default" and the like
    return nets


def pick_subnet(base="10.213"):
    """A free 10.213.X.0/24, X chosen at random among those overlapping
    nothing the root namespace has."""
    used = used_networks()
    xs = list(range(1, 255))
    secrets.SystemRandom().shuffle(xs)
    for x in xs:
        net = ipaddress.ip_network("%s.%d.0/24" % (base, x))
        if not any(net.overlaps(u) for u in used):
            return net
    raise NetUnavailable("no free %s.X.0/24 subnet" % base)


def remove_run(run):
    """Remove whatever namespaces and links of run ``run`` still exist (for
    a run whose owner died without close(): clusterenv.sweep())."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return      # then no run could have made any
    for ns in _ip("netns", "list", check=False).split():
        if ns.startswith("bx-%s-" % run):
            _ip("netns", "del", ns, check=False)
    for line in _ip("-o", "link", "show", check=False).splitlines():
        dev = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if dev == "bxb" + run or dev.startswith("bxh" + run):
            _ip("link", "del", dev, check=False)


class Net:
    """The bridge and one namespace per name; see the module docstring."""

    def __init__(self, names, run=None):
        self.run = run or secrets.token_hex(3)
        self.bridge = "bxb" + self.run
        self.ns, self.addr, self._veths = {}, {}, []
        self._made_bridge = False
        try:
            self._make_bridge()
            hosts = list(self.subnet.hosts())
            for i, name in enumerate(names, 1):
                self._make_ns(i, name, str(hosts[9 + i]))   # .11, .12, ...
        except BaseException:
            self.close()
            raise

    def _make_bridge(self):
        _ip("link", "add", self.bridge, "type", "bridge")
        self._made_bridge = True
        for _ in range(8):
            self.subnet = pick_subnet()
            self.hub_addr = str(next(self.subnet.hosts()))        # .1
            _ip("addr", "add", "%s/%d" % (self.hub_addr, self.subnet.prefixlen),
                "dev", self.bridge)
            # a parallel run may have picked the same subnet between our
            # check and our add: then exactly one address of it is not ours
            if not [dev for dev, net in addresses()
                    if dev != self.bridge and net.overlaps(self.subnet)]:
                break
            _ip("addr", "flush", "dev", self.bridge)
        else:
            raise NetUnavailable("no subnet of our own after 8 tries")
        _ip("link", "set", self.bridge, "up")

    def _make_ns(self, i, name, addr):
        ns = "bx-%s-%s" % (self.run, name)
        _ip("netns", "add", ns)
        self.ns[name] = ns
        host_end, ns_end = "bxh%s%d" % (self.run, i), "bxn%s%d" % (self.run, i)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        self._veths.append(host_end)
        _ip("link", "set", ns_end, "netns", ns)
        _ip("link", "set", host_end, "master", self.bridge, "up")
        subprocess.run(["bridge", "link", "set", "dev", host_end, "isolated", "on"],
                       check=True, capture_output=True, timeout=30)
        _ip("-n", ns, "addr", "add", "%s/%d" % (addr, self.subnet.prefixlen), "dev", ns_end)
        _ip("-n", ns, "link", "set", ns_end, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        self.addr[name] = addr

    def prefix(self, name):
        """The command prefix that runs a program in ``name``'s namespace.

        nsenter switches the network namespace only; ``ip netns exec`` would
        also mount a fresh /sys, hiding /sys/fs/cgroup from the manager (and
        with it the cgroup it makes per VM)."""
        if shutil.which("nsenter"):
            return ["nsenter", "--net=/run/netns/" + self.ns[name], "--"]
        return ["ip", "netns", "exec", self.ns[name]]

    def pids(self, name):
        """Pids of every process in ``name``'s namespace."""
        out = _ip("netns", "pids", self.ns[name], check=False)
        return [int(p) for p in out.split()]

    def close(self):
        """Remove every namespace, veth and the bridge made; idempotent.
        Processes still inside a namespace are the caller's to kill first
        (a namespace with processes lives on after ``ip netns del``)."""
        for ns in self.ns.values():
            _ip("netns", "del", ns, check=False)
        for v in self._veths:     # usually gone with its peer's namespace
            _ip("link", "del", v, check=False)
        if self._made_bridge:
            _ip("link", "del", self.bridge, check=False)
        self.ns, self._veths, self._made_bridge = {}, [], False

    def leftovers(self):
        """Names of this run's namespaces and links that still exist."""
        left = [n for n in _ip("netns", "list", check=False).split()
                if n.startswith("bx-%s-" % self.run)]
        for line in _ip("-o", "link", "show", check=False).splitlines():
            f = line.split(":")
            if len(f) > 1 and self.run in f[1]:
                left.append(f[1].strip().split("@")[0])
        return left
