"""Networking helpers: the seed's server, client and P2P modes over the Lua
``net`` module (lua/net.lua) of VMs created with ``networked=True``.

NetVMMixin is the VM handle's part (the seed's manager-level modes, on top
of it, are net_modes.py's); every method is one ``call`` of a ``net.*``
function in the VM, so all waiting happens in the node (bounded by the VM's
timeout) and none in Python threads.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Callable, Optional

from .errors import BioxenError, LuaError
from .futures import chain

#: Python-side slack on top of a Lua-side wait, so the node's "timeout"
#: answer arrives before the request's own deadline.
_SLACK = 5.0


class NotNetworked(BioxenError):
    """The VM was created without ``networked=True``: it has no ``net``."""


def _not_networked(vm: Any, e: BaseException) -> BaseException:
    if isinstance(e, LuaError) and "'net." in str(e) and "not a function" in str(e):
        return NotNetworked("VM %r has no networking: create it with "
                            "create_vm(%r, networked=True)" % (vm.name, vm.name))
    return e


class NetVMMixin:
    """The networking methods of a VM handle (see VM).

    Declares the things of the VM it builds on; VM defines them.
    """

    name: str

    def _request(self, op: str, fields: dict, transform: Any = None) -> Future:
        raise NotImplementedError  # VM._request

    def call_async(self, func_name: str, *args: Any, timeout: Optional[float] = None,
                   instruction_limit: Optional[int] = None) -> Future:
        raise NotImplementedError  # VM.call_async

    def _blocking(self, send: Callable[[], Future]) -> Any:
        raise NotImplementedError  # VM._blocking

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
            enable: Optional[Future] = self._request("net_enable", {})
            self._net_on = True
        else:
            enable = None

        def failed(e: BaseException) -> Any:
            refused = enable.exception() if enable is not None and enable.done() else None
            if refused is not None:
                # a refused net_enable (e.g. full isolation) says why, not the call
                self._net_on = False
                raise refused
            raise _not_networked(self, e)
        return chain(self.call_async("net." + fn, *args, timeout=timeout), _same, failed)

    def _net(self, fn: str, *args: Any, timeout: Optional[float] = None) -> Any:
        return self._blocking(lambda: self._net_async(fn, *args, timeout=timeout))

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

    def connect_to(self, host: str, port: int, retry: Optional[float] = None) -> int:
        """Connect to host:port (a listening VM of this manager, or allowed
        by the VM's policy; else PolicyViolation); later send_message calls
        go to this peer. Returns the peer id.

        Args:
            retry: keep trying for this many seconds while the connect
                fails (e.g. the server does not listen yet).
        """
        if retry is None:
            self._net_peer = self._net("connect", host, port)
        else:
            self._net_peer = self._net("connect", host, port, retry, timeout=retry + _SLACK)
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
        port = other._net_port
        if port is None:
            port = other.start_server(0)
        peer = self.connect_to("127.0.0.1", port)
        other.accept_connections(timeout)
        return peer


def _same(value: Any) -> Any:
    return value
