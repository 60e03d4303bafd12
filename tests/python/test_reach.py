"""A networked VM reaches only what it was granted (issue 11, section 1):
the loopback addresses VMs of the same manager listen on, and the
host:port grants of its policy; everything else is refused with
PolicyViolation and a SECURITY_VIOLATION event before any packet leaves.

The test owns a TCP and a UDP socket on 127.0.0.1 (free ports). A refused
attempt must never arrive there, which is proved without timing: after the
attempt the test sends a connection (a datagram) of its own, and the first
one the socket sees must be that one, since a backlog (a socket's receive
queue) is first in, first out."""

import socket
import time

import pytest

from conftest import tcp_manager_process, wait_gone
from pylua_bioxen_vm import CPULimitExceeded, Policy, PolicyViolation, VMManager


class Listener:
    """A TCP listener and a UDP socket of the test's own on 127.0.0.1."""

    def __init__(self, port=0):
        self.tcp = socket.socket()
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 5
        while True:     # a port a VM just let go of may linger a moment
            try:
                self.tcp.bind(("127.0.0.1", port))
                break
            except OSError:
                if port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.tcp.listen(16)
        self.tcp.settimeout(5)
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(5)
        self.uport = self.udp.getsockname()[1]

    def accept_line(self):
        """The first line a connection to the TCP listener sends."""
        conn, _ = self.tcp.accept()
        with conn:
            conn.settimeout(5)
            return conn.makefile("rb").readline()

    def assert_nothing_arrived(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as ctl:
            conn, peer = self.tcp.accept()
            conn.close()
            assert peer == ctl.getsockname(), "a connection from %r got through" % (peer,)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ctl:
            ctl.bind(("127.0.0.1", 0))
            ctl.sendto(b"control", ("127.0.0.1", self.uport))
            data, peer = self.udp.recvfrom(100)
            assert (data, peer) == (b"control", ctl.getsockname()), \
                "a datagram %r from %r got through" % (data, peer)

    def close(self):
        self.tcp.close()
        self.udp.close()


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


def violation(manager, port, deadline=5.0):
    """The next SECURITY_VIOLATION event whose target names port, or None."""
    end = time.monotonic() + deadline
    for ev in manager.events(timeout=deadline):
        if ev.type == "SECURITY_VIOLATION" and ":%d" % port in ev.detail.get("target", ""):
            return ev
        if time.monotonic() > end:
            break
    return None


# Every way a script reaches the network; {h} host, {p} TCP port, {u} UDP port.
PATHS = {
    "net.connect": "return net.connect('{h}', {p})",
    "tcp:connect": "local s = socket.tcp() return s:connect('{h}', {p})",
    "socket.connect": "return socket.connect('{h}', {p})",
    "udp:sendto": "local u = socket.udp() return u:sendto('x', '{h}', {u})",
    "udp:setpeername": "local u = socket.udp() assert(u:setpeername('{h}', {u})) return u:send('x')",
}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize("path", sorted(PATHS))
def test_ungranted_loopback_is_refused_on_every_path(manager, listener, path, host):
    vm = manager.create_vm("a", networked=True)
    port = listener.uport if path.startswith("udp") else listener.port
    with pytest.raises(PolicyViolation, match="refused"):
        vm.execute(PATHS[path].format(h=host, p=listener.port, u=listener.uport))
    ev = violation(manager, port)
    assert ev is not None and ev.vm == "a"
    if host == "localhost":     # checked, and reported, as what it resolved to
        assert "(127.0.0.1)" in ev.detail["target"]
    listener.assert_nothing_arrived()
    assert vm.execute("return 1") == 1


def test_connect_to_from_python_is_refused(manager, listener):
    vm = manager.create_vm("a", networked=True)
    with pytest.raises(PolicyViolation):
        vm.connect_to("127.0.0.1", listener.port)
    plain = manager.create_vm("plain")   # the quick start's VM, networked on first use
    with pytest.raises(PolicyViolation):
        plain.connect_to("localhost", listener.port)
    assert violation(manager, listener.port) is not None
    listener.assert_nothing_arrived()


@pytest.mark.parametrize("grant,host", [("127.0.0.1", "127.0.0.1"), ("127.0.0.1", "localhost"),
                                        ("localhost", "127.0.0.1"), ("localhost", "localhost")])
def test_a_grant_opens_exactly_its_address(manager, listener, grant, host):
    other = Listener()
    try:
        pol = Policy().allow_tcp("%s:%d" % (grant, listener.port))
        vm = manager.create_vm("g", policy=pol)
        vm.execute("P = net.connect('%s', %d) net.send(P, 'hi')" % (host, listener.port))
        assert b'"hi"' in listener.accept_line()
        # the port next door (the test's other listener) stays shut
        with pytest.raises(PolicyViolation):
            vm.execute("return net.connect('%s', %d)" % (host, other.port))
        other.assert_nothing_arrived()
    finally:
        other.close()


def test_a_grant_covers_datagrams_to_it(manager, listener):
    vm = manager.create_vm("g", policy=Policy().allow_tcp("localhost:%d" % listener.uport))
    assert vm.execute("local u = socket.udp() return u:sendto('dgram', '127.0.0.1', %d)"
                      % listener.uport) == 5
    assert listener.udp.recvfrom(100)[0] == b"dgram"


def test_vm_to_vm_until_the_server_stops_listening(manager):
    srv, cli = manager.create_vm("srv", networked=True), manager.create_vm("cli", networked=True)
    port = srv.start_server(0)
    cli.connect_to("localhost", port)
    cli.send_message("before")
    assert srv.receive_message(timeout=5) == "before"
    assert srv.execute("return net.unlisten(%d)" % port) is True
    with pytest.raises(PolicyViolation):
        cli.execute("return net.connect('127.0.0.1', %d)" % port)
    cli.send_message("after")   # a connection made while it listened stays
    assert srv.receive_message(timeout=5) == "after"


def test_raw_luasocket_listeners_tcp_and_udp(manager):
    srv, cli = manager.create_vm("srv", networked=True), manager.create_vm("cli", networked=True)
    p = srv.execute("S = assert(socket.bind('127.0.0.1', 0)) return tonumber((select(2, S:getsockname())))")
    assert cli.execute("local s = socket.tcp() local ok = s:connect('localhost', %d) s:close() return ok" % p) == 1
    u = srv.execute("U = socket.udp() assert(U:setsockname('127.0.0.1', 0)) U:settimeout(5) "
                    "return tonumber((select(2, U:getsockname())))")
    assert cli.execute("return socket.udp():sendto('ping', '127.0.0.1', %d)" % u) == 4
    assert srv.execute("return U:receive()") == "ping"
    assert cli.execute("C = socket.udp() assert(C:setpeername('127.0.0.1', %d)) return C:send('pong')" % u) == 4
    assert srv.execute("return U:receive()") == "pong"
    srv.execute("S:close() U:close()")
    with pytest.raises(PolicyViolation):
        cli.execute("return socket.tcp():connect('127.0.0.1', %d)" % p)
    with pytest.raises(PolicyViolation):
        cli.execute("return socket.udp():sendto('ping', '127.0.0.1', %d)" % u)
    # the connected socket is checked again on each send: its peer is now
    # the test's own socket, which must see nothing from the VM
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mine:
        mine.bind(("127.0.0.1", u))
        mine.settimeout(5)
        with pytest.raises(PolicyViolation):
            cli.execute("return C:send('stale')")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ctl:
            ctl.sendto(b"control", ("127.0.0.1", u))
            assert mine.recvfrom(100)[0] == b"control"


def test_a_collected_listener_is_forgotten(manager):
    srv, cli = manager.create_vm("srv", networked=True), manager.create_vm("cli", networked=True)
    p = srv.execute("do local s = socket.bind('127.0.0.1', 0) P = tonumber((select(2, s:getsockname()))) end "
                    "return P")
    srv.execute("collectgarbage() collectgarbage()")
    # the finalizer only marks it; the node reports it before reading its
    # next request, so after this reply the manager knows
    srv.execute("return 1")
    with pytest.raises(PolicyViolation):
        cli.execute("return net.connect('127.0.0.1', %d)" % p)


@pytest.mark.parametrize("end", ["destroy", "restart"])
def test_an_ended_server_is_unreachable(manager, end):
    srv = manager.create_vm("srv", networked=True, cpu_limit=1)
    cli = manager.create_vm("cli", networked=True)
    port = srv.start_server(0)
    peer = cli.connect_to("127.0.0.1", port)
    cli.execute("net.close(%d)" % peer)     # so no connection holds the port
    if end == "destroy":
        srv.close()
    else:   # a limit kill: a fresh node under the same name, listening on nothing
        with pytest.raises(CPULimitExceeded):
            srv.execute("while true do end", timeout=30)
        assert srv.execute("return 1") == 1
    # the port now belongs to the test: the VM must not reach it
    lst = Listener(port)
    try:
        with pytest.raises(PolicyViolation):
            cli.execute("return net.connect('127.0.0.1', %d)" % port)
        lst.assert_nothing_arrived()
    finally:
        lst.close()


def test_binding_beyond_loopback_needs_a_grant(manager):
    vm = manager.create_vm("b", networked=True)
    for code in ("return socket.tcp():bind('0.0.0.0', 0)",
                 "return socket.tcp():bind('*', 0)",
                 "return net.listen(0, '0.0.0.0')",
                 "return socket.udp():setsockname('*', 0)",
                 "return socket.bind('*', 0)",
                 # listen alone would bind every address on a free port
                 "return socket.tcp():listen(5)",
                 # a shared port could be registered as the VM's own
                 "return socket.tcp():setoption('reuseport', true)",
                 "return socket.udp():setoption('reuseaddr', true)"):
        with pytest.raises(PolicyViolation):
            vm.execute(code)
    actions = []
    deadline = time.monotonic() + 5
    for ev in manager.events(timeout=5):
        if ev.type == "SECURITY_VIOLATION":
            actions.append(ev.detail["action"])
        if len(actions) == 8 or time.monotonic() > deadline:
            break
    assert actions == ["bind", "bind", "bind", "setsockname", "bind", "listen", "setoption",
                       "setoption"]
    assert vm.execute("return net.listen(0)") > 0               # loopback is free
    assert vm.execute("return net.listen(0, '127.0.0.1')") > 0


def test_a_granted_wildcard_bind_serves_other_vms_on_loopback(manager, listener):
    port = listener.port
    listener.close()            # a free port the grant can name
    srv = manager.create_vm("srv", policy=Policy().allow_tcp("0.0.0.0:%d" % port))
    assert srv.execute("return net.listen(%d, '0.0.0.0')" % port) == port
    cli = manager.create_vm("cli", networked=True)
    assert isinstance(cli.connect_to("127.0.0.1", port), int)


@pytest.fixture
def tcp_manager(tmp_path):
    with tcp_manager_process(tmp_path) as port:
        yield port


def test_the_managers_own_listener_is_refused(tcp_manager):
    with VMManager("tcp://127.0.0.1:%d" % tcp_manager, token="s3cret") as m:
        vm = m.create_vm("a", networked=True)
        for host in ("127.0.0.1", "localhost"):
            with pytest.raises(PolicyViolation):
                vm.execute("return net.connect('%s', %d)" % (host, tcp_manager))
        assert violation(m, tcp_manager) is not None


def test_names_no_grant_names_are_not_looked_up(manager):
    # a DNS query carries its name to the resolver: a way out of its own
    vm = manager.create_vm("d", networked=True)
    for code in ("return net.connect('exfil.example.invalid', 80)",
                 "return socket.tcp():connect('exfil.example.invalid', 80)",
                 "return socket.dns.toip('exfil.example.invalid')",
                 "return socket.dns.getaddrinfo('exfil.example.invalid')",
                 "return socket.dns.tohostname('192.0.2.1')",
                 "return socket.dns.getnameinfo('192.0.2.1')"):
        with pytest.raises(PolicyViolation, match="looked up only if a grant names it"):
            vm.execute(code)
    assert vm.execute("return (socket.dns.toip('localhost'))") == "127.0.0.1"
    # a name a grant names is looked up (here it does not resolve)
    g = manager.create_vm("g", policy=Policy().allow_tcp("nowhere.example.invalid:80"))
    with pytest.raises(Exception, match="nowhere.example.invalid") as ei:
        g.execute("return net.connect('nowhere.example.invalid', 80)")
    assert not isinstance(ei.value, PolicyViolation)


def test_fully_isolated_networked_vm_reaches_vms_by_number(manager, listener):
    from pylua_bioxen_vm import IsolationUnavailable
    try:
        iso = manager.create_vm("iso", networked=True, full_isolation=True)
    except IsolationUnavailable as e:
        pytest.skip("no full isolation here: %s" % e)
    srv = manager.create_vm("srv", networked=True)
    assert isinstance(iso.connect_to("localhost", srv.start_server(0)), int)
    p = iso.execute("S = assert(socket.bind('127.0.0.1', 0)) return tonumber((select(2, S:getsockname())))")
    assert srv.execute("return socket.tcp():connect('127.0.0.1', %d)" % p) == 1
    with pytest.raises(PolicyViolation):
        iso.execute("return net.connect('127.0.0.1', %d)" % listener.port)
    listener.assert_nothing_arrived()
    with pytest.raises(Exception, match="cannot look names up"):
        iso.execute("return socket.dns.toip('localhost')")
    assert iso.execute("return 1") == 1     # seccomp never saw a lookup's open
