"""Validation of the resource limits a VM or a single call may carry.

Checked where a limit is given (create_vm, default limits, per-call
overrides) so a bad limit fails at once with a message naming the field,
before anything is sent.  The manager checks again; this is for clarity.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import InvalidRequest

# field -> True if it must be a whole number (see docs/protocol.md "Limits").
LIMITS = {
    "memory_limit": True,
    "instruction_limit": True,
    "timeout": False,
    "cpu_limit": False,
    "max_output": True,
}


def check_limit(name: str, value: Any) -> Any:
    """Return ``value`` as it goes on the wire, or raise InvalidRequest.

    Args:
        name: one of LIMITS.
        value: a non-negative number (0 = unlimited).

    Raises:
        InvalidRequest: unknown name, not a number, negative, NaN/inf, or a
            fraction where a whole number is needed.
    """
    if name not in LIMITS:
        raise InvalidRequest("unknown limit %r (known: %s)"
                             % (name, ", ".join(sorted(LIMITS))))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequest("%s must be a number, not %s" % (name, type(value).__name__))
    if not math.isfinite(value) or value < 0:
        raise InvalidRequest("%s must be a finite number >= 0 (0 = unlimited), got %r"
                             % (name, value))
    if LIMITS[name]:
        if value != int(value):
            raise InvalidRequest("%s must be a whole number, got %r" % (name, value))
        return int(value)
    return value


# create_vm's cpu_share bounds (manager/validate.h): the kernel's smallest
# quota (1 ms per 100 ms) and more CPUs than any host has; the manager also
# refuses more than its host's CPU count.
CPU_SHARE_MIN, CPU_SHARE_MAX = 0.01, 4096.0


def check_cpu_share(value: Any) -> float:
    """``value`` as create_vm's ``cpu_share`` goes on the wire.

    Raises:
        InvalidRequest: not a finite number from CPU_SHARE_MIN to CPU_SHARE_MAX.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequest("cpu_share must be a number of CPUs (e.g. 0.5), not %s"
                             % type(value).__name__)
    if not (CPU_SHARE_MIN <= value <= CPU_SHARE_MAX):
        raise InvalidRequest("cpu_share must be from %g to %g CPUs, got %r"
                             % (CPU_SHARE_MIN, CPU_SHARE_MAX, value))
    return float(value)


def check_limits(limits: dict) -> dict:
    """Validate a dict of limits, dropping the ones that are None."""
    return {k: check_limit(k, v) for k, v in limits.items() if v is not None}
