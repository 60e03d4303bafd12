"""The seed's manager-level networking modes: start_server_vm,
start_client_vm and start_p2p_vm, each the Future of a job one VM runs
(over the VM side in net.py).  A part of VMManager (a ManagerBase).

Each job is a short chain of ``net.*`` calls in its VM (lua/net.lua), so
all waiting happens in the node and no Python thread waits for a job:

  server  net.listen(port) -> net.serve(name): answers every message from
          then on, resolves with the first one
  client  net.connect(host, port, retry) -> net.send(msg) ->
          net.recv(reply_wait, peer): the reply, or True
  p2p     net.listen(port) -> net.connect(peer, retry) ->
          net.send({"hello": name}) -> net.recv(timeout): the peer's greeting

Jobs may be submitted in any order: a client or p2p job retries its connect
until its ``timeout`` while nobody listens there yet.  A job holds its VM
for as long as it waits (requests to that VM queue behind it).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Callable, Optional

from .futures import chain
from .manager_base import ManagerBase
from .net import _SLACK

#: Seconds a client job waits for the server's reply before it resolves
#: with True (a server that does not answer is not an error).
REPLY_WAIT = 1.0


class NetJob(Future):
    """The Future of a networking job (``start_server_vm`` and friends).

    Attributes:
        listening: the Future of the port the job's VM listens on (server
            and p2p jobs, useful with ``port=0``); None for a client job.
    """

    listening: Optional[Future] = None


def _job(steps: Future, listening: Optional[Future] = None) -> NetJob:
    job = NetJob()
    job.set_running_or_notify_cancel()   # as every Future of the client
    job.listening = listening

    def settle(f: Future) -> None:
        e = f.exception()
        if e is not None:
            job.set_exception(e)
        else:
            job.set_result(f.result())
    steps.add_done_callback(settle)
    return job


def _value(r: Any) -> tuple[Any, Optional[int]]:
    # net.recv/net.serve give (value, peer), or (None, "timeout"/"closed")
    value, peer = r if isinstance(r, tuple) else (r, None)
    return value, peer if isinstance(peer, int) and not isinstance(peer, bool) else None


def _wait_fields(timeout: Optional[float]) -> Optional[float]:
    # the request's own deadline: past the Lua-side wait, so the node's
    # "timeout" answer comes first (None: the VM's timeout bounds the job)
    return None if timeout is None else timeout + _SLACK


class NetManagerMixin(ManagerBase):
    """The seed's manager-level modes; each returns a NetJob (a Future)."""

    def _listen(self, name: str, port: int) -> tuple[Future, Future]:
        """Future of VM ``name``'s handle once it listens on ``port``, and
        the Future of the bound port."""
        vm_f = self.get_vm_async(name)
        box: dict = {}

        def listen(vm: Any) -> Future:
            box["vm"] = vm
            return vm._net_async("listen", port)

        def keep(p: Any) -> Any:
            box["vm"]._net_port = p
            return p
        port_f = chain(chain(vm_f, listen), keep)
        return chain(port_f, lambda _: box["vm"]), port_f

    def start_server_vm(self, name: str, port: int = 0, *,
                        timeout: Optional[float] = None) -> NetJob:
        """Start a server job in VM ``name``: listen on 127.0.0.1:``port``
        (0: any free port, see ``job.listening``) and answer every message
        from then on, also after the job resolved: a greeting
        ``{"hello": x}`` with ``{"hello": name}``, any other message ``m``
        with ``{"from": name, "re": m}`` (``net.serve`` in lua/net.lua).

        Args:
            timeout: seconds to wait for the first message (None: as long
                as the VM's own timeout lets the call run).

        Returns:
            A NetJob resolving with the first message the server received.

        Raises (from the Future):
            TimeoutError: no message within ``timeout``.
            LuaError: the port cannot be bound (e.g. in use).
            PolicyViolation, NotNetworked, VMNotFound.
        """
        vm_f, port_f = self._listen(name, port)

        def serve(vm: Any) -> Future:
            return chain(vm._net_async("serve", name, timeout, timeout=_wait_fields(timeout)),
                         _first(vm, "message for server job", timeout))
        return _job(chain(vm_f, serve), port_f)

    def start_client_vm(self, name: str, host: str, port: int, message: Any, *,
                        timeout: float = 10.0, reply_wait: float = REPLY_WAIT) -> NetJob:
        """Start a client job in VM ``name``: connect to ``host:port``,
        retrying for up to ``timeout`` s while nobody listens there yet (so
        it may be submitted before its server), and send ``message``; the
        connection stays open (``vm.send_message`` goes on using it).

        Args:
            timeout: seconds to keep retrying the connect.
            reply_wait: seconds to wait for the server's reply.

        Returns:
            A NetJob resolving with the server's reply, or True when none
            came within ``reply_wait`` s.

        Raises (from the Future):
            LuaError: still no listener after ``timeout`` s.
            PolicyViolation: the address is not one the VM may reach.
        """
        def connect(vm: Any) -> Future:
            def send(peer: Any) -> Future:
                vm._net_peer = peer
                sent = vm._net_async("send", peer, message)
                return chain(sent, lambda _: chain(
                    vm._net_async("recv", reply_wait, peer, timeout=_wait_fields(reply_wait)),
                    _reply))
            return chain(vm._net_async("connect", host, port, timeout,
                                       timeout=_wait_fields(timeout)), send)
        return _job(chain(self.get_vm_async(name), connect))

    def start_p2p_vm(self, name: str, port: int, peer_host: str, peer_port: int, *,
                     timeout: float = 10.0) -> NetJob:
        """Start a p2p job in VM ``name``: listen on ``port`` (0: any free
        port, see ``job.listening``), connect to ``peer_host:peer_port``
        (retrying for up to ``timeout`` s while it does not listen yet),
        send the greeting ``{"hello": name}`` and wait for the peer's.  The
        peer may be a server job (which answers a greeting with its own) or
        another p2p job (whose greeting arrives on our listener).

        Returns:
            A NetJob resolving with the first message that came back (the
            peer's greeting).

        Raises (from the Future):
            TimeoutError: no greeting within ``timeout`` s.
            LuaError, PolicyViolation: as start_server_vm/start_client_vm.
        """
        vm_f, port_f = self._listen(name, port)

        def connect(vm: Any) -> Future:
            def greet(peer: Any) -> Future:
                vm._net_peer = peer
                return chain(vm._net_async("send", peer, {"hello": name}), lambda _: chain(
                    vm._net_async("recv", timeout, timeout=_wait_fields(timeout)),
                    _first(vm, "greeting from %s:%s" % (peer_host, peer_port), timeout)))
            return chain(vm._net_async("connect", peer_host, peer_port, timeout,
                                       timeout=_wait_fields(timeout)), greet)
        return _job(chain(vm_f, connect), port_f)


def _first(vm: Any, what: str, timeout: Optional[float]) -> Callable[[Any], Any]:
    def take(r: Any) -> Any:
        value, peer = _value(r)
        if peer is None:
            raise TimeoutError("no %s in VM %r within %ss" % (what, vm.name, timeout))
        vm._net_from = peer
        return value
    return take


def _reply(r: Any) -> Any:
    value, peer = _value(r)
    return True if peer is None else value


__all__ = ["NetManagerMixin", "NetJob", "REPLY_WAIT"]
