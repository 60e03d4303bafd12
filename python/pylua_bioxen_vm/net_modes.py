"""The seed's manager-level networking modes: start_server_vm,
start_client_vm and start_p2p_vm, each a Future of a VM's networking job
(over the VM side in net.py).  A part of VMManager (a ManagerBase).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from .futures import chain
from .manager_base import ManagerBase


class NetManagerMixin(ManagerBase):
    """The seed's manager-level modes; each returns a Future."""

    def start_server_vm(self, name: str, port: int = 0) -> Future:
        """Future of the port VM ``name`` now listens on."""
        vm = self.get_vm(name)

        def keep(p: Any) -> Any:
            vm._net_port = p
            return p
        return chain(vm._net_async("listen", port), keep)

    def start_client_vm(self, name: str, host: str, port: int, msg: Any) -> Future:
        """Future of the peer id, once VM ``name`` connected and sent msg."""
        vm = self.get_vm(name)

        def send(p: Any) -> Future:
            vm._net_peer = p
            return chain(vm._net_async("send", p, msg), lambda _: p)
        return chain(vm._net_async("connect", host, port), send)

    def start_p2p_vm(self, name: str, port: int, peer_host: str, peer_port: int) -> Future:
        """Future of {"port": listening port, "peer": peer id}: VM ``name``
        listens on port and connects to peer_host:peer_port."""
        vm = self.get_vm(name)

        def connect(p: Any) -> Future:
            vm._net_port = p

            def keep(peer: Any) -> dict:
                vm._net_peer = peer
                return {"port": p, "peer": peer}
            return chain(vm._net_async("connect", peer_host, peer_port), keep)
        return chain(vm._net_async("listen", port), connect)


__all__ = ["NetManagerMixin"]
