"""Networking helpers: the seed's server, client and P2P modes over the Lua
``net`` module (lua/net.lua) of VMs created with ``networked=True``.

NetVMMixin is mixed into VM, NetManagerMixin into VMManager; every method is
one ``call`` of a ``net.*`` function in the VM, so all waiting happens in the
node (bounded by the VM's timeout) and none in Python threads.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Optional

from .errors import BioxenError, LuaError

#: Python-side slack on top of a Lua-side wait, so the node's "timeout"
#: answer arrives before the request's own deadline.
_SLACK = 5.0


class NotNetworked(BioxenError):
    """The VM was created without ``networked=True``: it has no ``net``."""


def _chain(fut: Future, fn: Any) -> Future:
    """A Future of fn(fut.result()); when that is itself a Future, of its
    result. fn runs on the reader thread, so it must never block."""
    out: Future = Future()

    def fail(e: BaseException) -> None:
        if not out.done():
            out.set_exception(e)

    def last(f: Future) -> None:
        e = f.exception()
        if e is not None:
            fail(e)
        else:
            out.set_result(f.result())

    def first(f: Future) -> None:
        try:
            r = fn(f.result())
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            fail(e)
            return
        if isinstance(r, Future):
            r.add_done_callback(last)
        else:
            out.set_result(r)
    fut.add_done_callback(first)
    return out


def _not_networked(vm: Any, e: BaseException) -> BaseException:
    if isinstance(e, LuaError) and "'net." in str(e) and "not a function" in str(e):
        return NotNetworked("VM %r has no networking: create it with "
                            "create_vm(%r, networked=True)" % (vm.name, vm.name))
    return e


class NetVMMixin:
    """The networking methods of a VM handle (see VM)."""

    _net_peer: Optional[int] = None     # peer of connect_to, for send_message
    _net_from: Optional[int] = None     # peer of the last received message
    _net_port: Optional[int] = None     # port of start_server

    _net_on = False                     # net_enable sent (or not needed)

    def _net_async(self, fn: str, *args: Any, timeout: Optional[float] = None) -> Future:
        if not self._net_on:
            # Calling a networking method is the host's choice to network this
            # VM, as the seed's quick start does without networked=True: turn
            # LuaSocket and `net` on in the live VM (the script never can).
            # The node runs requests in order, so the call below may follow
            # at once; a failure of this request surfaces through that call.
            enable: Optional[Future] = self._request("net_enable", {})  # type: ignore[attr-defined]
            self._net_on = True
        else:
            enable = None
        inner = self.call_async("net." + fn, *args, timeout=timeout)  # type: ignore[attr-defined]
        out: Future = Future()

        def done(f: Future) -> None:
            e = f.exception()
            # a refused net_enable (e.g. full isolation) says why, not the call
            if e is not None and enable is not None and enable.done() and enable.exception():
                self._net_on = False
                out.set_exception(enable.exception())
            elif e is not None:
                out.set_exception(_not_networked(self, e))
            else:
                out.set_result(f.result())
        inner.add_done_callback(done)
        return out

    def _net(self, fn: str, *args: Any, timeout: Optional[float] = None) -> Any:
        return self._net_async(fn, *args, timeout=timeout).result()

    def start_server(self, port: int = 0, host: str = "127.0.0.1") -> int:
        """Listen on host:port (0 = a free port); connections are accepted by
        the VM from then on, also between requests. Returns the bound port."""
        self._net_port = self._net("listen", port, host)
        return self._net_port

    def accept_connections(self, timeout: Optional[float] = 10.0) -> int:
        """Wait for the next inbound connection; return its peer id.

        Raises:
            TimeoutError: none arrived within timeout seconds.
        """
        r = self._net("accept", timeout, timeout=None if timeout is None else timeout + _SLACK)
        peer = r[0] if isinstance(r, tuple) else r
        if peer is None:
            raise TimeoutError("no connection to VM %r within %ss" % (self.name, timeout))
        return peer

    def connect_to(self, host: str, port: int) -> int:
        """Connect to host:port (a listening VM of this manager, or allowed
        by the VM's policy; else PolicyViolation); later send_message calls
        go to this peer. Returns the peer id."""
        self._net_peer = self._net("connect", host, port)
        return self._net_peer

    def send_message(self, msg: Any, peer: Optional[int] = None) -> None:
        """Send one message (any JSON-convertible value) to peer, or to the
        peer of connect_to, or to the sender of the last received message."""
        if peer is None:
            peer = self._net_peer if self._net_peer is not None else self._net_from
        if peer is None:
            raise BioxenError("VM %r has no peer to send to: call connect_to() "
                              "or pass peer=" % self.name)
        self._net("send", peer, msg)

    send_data = send_message

    def receive_message(self, timeout: Optional[float] = None, *,
                        with_peer: bool = False) -> Any:
        """The next message (in arrival order per connection).

        Raises:
            TimeoutError: nothing arrived within timeout seconds.
        """
        r = self._net("recv", timeout, timeout=None if timeout is None else timeout + _SLACK)
        value, peer = r if isinstance(r, tuple) else (r, None)
        if not isinstance(peer, int):   # net.recv gave nil, "timeout"
            raise TimeoutError("no message for VM %r within %ss" % (self.name, timeout))
        self._net_from = peer
        return (value, peer) if with_peer else value

    def broadcast(self, msg: Any) -> int:
        """Send msg to every connected peer; returns how many got it."""
        return self._net("broadcast", msg)

    def peers(self) -> list:
        """The VM's open connections as dicts (id, host, port, inbound)."""
        return list(self._net("peers") or [])

    def establish_p2p_with(self, other: "NetVMMixin", timeout: float = 10.0) -> int:
        """Connect this VM to other (which starts listening on a free port if
        it is not yet); returns this side's peer id."""
        if other._net_port is None:
            other.start_server(0)
        peer = self.connect_to("127.0.0.1", other._net_port)  # type: ignore[arg-type]
        other.accept_connections(timeout)
        return peer


class NetManagerMixin:
    """The seed's manager-level modes; each returns a Future."""

    def start_server_vm(self, name: str, port: int = 0) -> Future:
        """Future of the port VM ``name`` now listens on."""
        vm = self.get_vm(name)  # type: ignore[attr-defined]

        def keep(p: Any) -> Any:
            vm._net_port = p
            return p
        return _chain(vm._net_async("listen", port), keep)

    def start_client_vm(self, name: str, host: str, port: int, msg: Any) -> Future:
        """Future of the peer id, once VM ``name`` connected and sent msg."""
        vm = self.get_vm(name)  # type: ignore[attr-defined]

        def send(p: Any) -> Future:
            vm._net_peer = p
            return _chain(vm._net_async("send", p, msg), lambda _: p)
        return _chain(vm._net_async("connect", host, port), send)

    def start_p2p_vm(self, name: str, port: int, peer_host: str, peer_port: int) -> Future:
        """Future of {"port": listening port, "peer": peer id}: VM ``name``
        listens on port and connects to peer_host:peer_port."""
        vm = self.get_vm(name)  # type: ignore[attr-defined]

        def connect(p: Any) -> Future:
            vm._net_port = p

            def keep(peer: Any) -> dict:
                vm._net_peer = peer
                return {"port": p, "peer": peer}
            return _chain(vm._net_async("connect", peer_host, peer_port), keep)
        return _chain(vm._net_async("listen", port), connect)
