"""The seed's networking jobs (net_modes.py over lua/net.lua): a server job
resolves with the first message it gets and keeps answering, a client job
retries its connect until its server listens and resolves with the reply,
a p2p job resolves with the peer's greeting.  The seed's example runs as
written, in both orders of submission.  Real manager and nodes, loopback
sockets; every wait has a deadline."""

import errno
import socket
from concurrent.futures import wait

import pytest

from pylua_bioxen_vm import LuaError, NetJob, PolicyViolation, VMManager, VMNotFound

T = 15


def free_port():
    """A port nothing listens on now (the OS's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need_free(*ports):
    """Skip when another program on this machine listens on a port the
    seed's example names (8080, 8081): the example cannot choose others."""
    for p in ports:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", p))
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
                pytest.skip("port %d is in use on this machine" % p)


def test_seed_futures_example_as_written():
    need_free(8080, 8081)
    # The seed's lines verbatim (bar the import, which spells the package
    # with dashes), then what the three Futures hold.
    with VMManager() as manager:
        # Server VM
        server_vm = manager.create_vm("server", networked=True)
        server_future = manager.start_server_vm("server", port=8080)

        # Client VM
        client_vm = manager.create_vm("client", networked=True)
        client_future = manager.start_client_vm("client", "localhost", 8080, "Hello!")

        # P2P VM
        p2p_vm = manager.create_vm("p2p", networked=True)
        p2p_future = manager.start_p2p_vm("p2p", 8081, "localhost", 8080)

        assert all(isinstance(f, NetJob) for f in (server_future, client_future, p2p_future))
        # the client's message or the p2p greeting, whichever came first
        assert server_future.result(T) in ("Hello!", {"hello": "p2p"})
        assert client_future.result(T) == {"from": "server", "re": "Hello!"}
        assert p2p_future.result(T) == {"hello": "server"}
        assert server_future.listening.result(T) == 8080
        assert p2p_future.listening.result(T) == 8081
        assert client_future.listening is None
        for vm in (server_vm, client_vm, p2p_vm):
            assert vm.execute("return #net.peers()") >= 1


def test_seed_futures_example_client_first():
    need_free(8080, 8081)
    # The same lines the other way round: nothing listens on 8080 while the
    # client and p2p jobs start, and the server VM is held busy until we
    # have seen the client job still waiting (it retries; without retry
    # it fails at once with "connection refused").
    with VMManager() as manager:
        server_vm = manager.create_vm("server", networked=True)
        hold = server_vm.execute_async("return mailbox.recv(30)")
        server_future = manager.start_server_vm("server", port=8080)
        client_vm = manager.create_vm("client", networked=True)
        client_future = manager.start_client_vm("client", "localhost", 8080, "Hello!")
        p2p_vm = manager.create_vm("p2p", networked=True)
        p2p_future = manager.start_p2p_vm("p2p", 8081, "localhost", 8080)
        done, _ = wait([client_future, p2p_future, server_future], timeout=1.0)
        assert not done, [f.exception() for f in done]
        manager.send_to("server", "go")
        assert hold.result(T) == ("go", "@client")
        assert client_future.result(T) == {"from": "server", "re": "Hello!"}
        assert p2p_future.result(T) == {"hello": "server"}
        assert server_future.result(T) in ("Hello!", {"hello": "p2p"})


def test_server_keeps_serving(manager):
    server = manager.create_vm("s", networked=True)
    job = manager.start_server_vm("s", port=0)
    port = job.listening.result(T)
    assert port > 0
    names = ["c%d" % i for i in range(3)]
    for n in names:
        manager.create_vm(n, networked=True)
    first = manager.start_client_vm("c0", "127.0.0.1", port, {"n": 0}).result(T)
    assert first == {"from": "s", "re": {"n": 0}}
    assert job.result(T) == {"n": 0}
    # after its job resolved, between requests: later clients get answers,
    # and the server VM answers requests of its own meanwhile
    later = [manager.start_client_vm(n, "localhost", port, [i, "x"])
             for i, n in enumerate(names[1:], 1)]
    assert [f.result(T) for f in later] == [{"from": "s", "re": [1, "x"]},
                                            {"from": "s", "re": [2, "x"]}]
    assert server.execute("return 6 * 7") == 42
    # the client's connection stays open: send_message goes on using it
    c0 = manager.get_vm("c0")
    c0.send_message("again")
    assert c0.receive_message(timeout=T) == {"from": "s", "re": "again"}


def test_server_job_times_out_and_serves_on(manager):
    manager.create_vm("s", networked=True)
    job = manager.start_server_vm("s", port=0, timeout=0.3)
    port = job.listening.result(T)
    with pytest.raises(TimeoutError, match="server job"):
        job.result(T)
    manager.create_vm("c", networked=True)
    assert manager.start_client_vm("c", "127.0.0.1", port, "late").result(T) == \
        {"from": "s", "re": "late"}


def test_client_of_a_silent_server_resolves_true(manager):
    silent = manager.create_vm("quiet", networked=True)
    port = silent.start_server(0)          # listens, never answers
    manager.create_vm("c", networked=True)
    job = manager.start_client_vm("c", "127.0.0.1", port, "anyone?", reply_wait=0.2)
    assert job.result(T) is True
    assert silent.receive_message(timeout=T) == "anyone?"


def test_client_gives_up_after_its_timeout(manager):
    manager.create_vm("c", networked=True)
    port = free_port()
    job = manager.start_client_vm("c", "127.0.0.1", port, "hi", timeout=0.5)
    # refused by the kernel, or by the reach policy (nobody listens there)
    with pytest.raises((LuaError, PolicyViolation)) as e:
        job.result(T)
    assert isinstance(e.value, PolicyViolation) or "retried for 0.5 s" in str(e.value)
    # the VM is fine and can try again
    assert manager.get_vm("c").execute("return 1") == 1


def test_p2p_pair_exchanges_greetings(manager):
    a_port, b_port = free_port(), free_port()
    manager.create_vm("a", networked=True)
    manager.create_vm("b", networked=True)
    # a starts before b listens: its connect retries
    ja = manager.start_p2p_vm("a", a_port, "127.0.0.1", b_port)
    jb = manager.start_p2p_vm("b", b_port, "localhost", a_port)
    assert ja.result(T) == {"hello": "b"}
    assert jb.result(T) == {"hello": "a"}
    assert (ja.listening.result(T), jb.listening.result(T)) == (a_port, b_port)


def test_p2p_without_an_answer_times_out(manager):
    quiet = manager.create_vm("quiet", networked=True)
    port = quiet.start_server(0)
    manager.create_vm("p", networked=True)
    job = manager.start_p2p_vm("p", 0, "127.0.0.1", port, timeout=0.3)
    with pytest.raises(TimeoutError, match="greeting"):
        job.result(T)
    assert job.listening.result(T) > 0
    assert quiet.receive_message(timeout=T) == {"hello": "p"}


def test_job_on_a_vm_that_is_not_there(manager):
    job = manager.start_server_vm("nobody", port=0)
    with pytest.raises(VMNotFound, match="nobody"):
        job.result(T)
    with pytest.raises(VMNotFound):
        job.listening.result(T)
    with pytest.raises(VMNotFound):
        manager.start_client_vm("nobody", "127.0.0.1", 1, "x").result(T)


def test_connect_retry_in_lua(manager):
    # net.connect's retry (the client job's piece) for scripts too; the
    # peer filter of net.recv leaves other peers' messages queued
    a, b, c = (manager.create_vm(n, networked=True) for n in "abc")
    port = a.start_server(0)
    b.connect_to("127.0.0.1", port, retry=2.0)
    c.connect_to("127.0.0.1", port)
    c.send_message("from c")
    b.send_message("from b")
    got = a.execute("""
      local pb, pc = assert(net.accept(5)), assert(net.accept(5))
      local v1 = net.recv(5, pc)        -- c's, even when b's is queued first
      local v2, from2 = net.recv(5)
      local v3, why = net.recv(0.1, 999)
      return v1, v2, from2 == pb, v3, why""")
    assert got == ("from c", "from b", True, None, "closed")


def test_port_is_free_again_once_its_server_is_gone(manager):
    # The seed's jobs name fixed ports, so a program run twice binds the
    # same one again: the listener sets SO_REUSEADDR (a tcp() socket had
    # no fd yet when it tried), or its closed connections' TIME_WAIT
    # would hold the port for a minute.
    a = manager.create_vm("a", networked=True)
    port = a.start_server(0)
    b = manager.create_vm("b", networked=True)
    b.connect_to("127.0.0.1", port)
    b.send_message("x")
    assert a.receive_message(timeout=T) == "x"
    a.close()     # the server's end closes first: it is the one left waiting
    c = manager.create_vm("c", networked=True)
    assert c.start_server(port) == port
    assert manager.create_vm("d", networked=True).start_server(0, "::1") > 0
