"""Metrics helpers for VMManager: the embedded manager's Prometheus flags
and the "history" op's argument check.  Kept apart from manager.py so the
metrics feature is one file to read."""

from __future__ import annotations

from typing import Any, Optional

from .errors import InvalidRequest

HISTORY_MAX = 1024
"""The manager keeps the last 1024 runs; a larger ``n`` returns them all."""


def metrics_args(address: Optional[str], port: Optional[int],
                 host: Optional[str]) -> list[str]:
    """The bioxen-manager flags for ``metrics_port``/``metrics_host``.

    Raises:
        InvalidRequest: a bad port or host, or either given for a manager
            that this process does not start (``address`` set).
    """
    if port is None:
        if host is not None:
            raise InvalidRequest("metrics_host needs metrics_port")
        return []
    if address is not None:
        raise InvalidRequest("metrics_port applies to the embedded manager only; start a "
                             "shared manager with --metrics-port")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidRequest("metrics_port must be an integer in 0..65535 (0: any free "
                             "port), not %r" % (port,))
    args = ["--metrics-port", str(port)]
    if host is not None:
        if not isinstance(host, str) or not host or host.startswith("-"):
            raise InvalidRequest("metrics_host must be a host name or address, not %r"
                                 % (host,))
        args += ["--metrics-host", host]
    return args


def history_n(n: int) -> int:
    """``n`` checked for ``VMManager.history``.

    Raises:
        InvalidRequest: ``n`` is not a non-negative integer.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InvalidRequest("n must be a non-negative integer, not %r" % (n,))
    return n


def metrics_opt_in(manager: Any) -> None:
    """Send ``metrics_events`` once per manager handle: the first
    ``METRICS_RECORDED`` handler turns the manager's per-run event on for
    this connection (it is never built for a connection that did not ask).
    Sent without waiting, so ``on`` never blocks, not even on a loop."""
    with manager._core.lock:
        if manager.__dict__.get("_metrics_on"):
            return
        manager.__dict__["_metrics_on"] = True
    manager.metrics_events_async(True)
