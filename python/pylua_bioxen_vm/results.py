"""ExecResult and the transforms that turn an exec/call reply into it.

One place decides what a reply's ``values``/``output`` become: the VM handle
(vm.py) picks a transform per call, a stream (stream.py) takes the
ExecResult of its last item.  The transforms run on the reader thread.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

from .values import from_wire


class ExecResult(NamedTuple):
    """Everything one execute/call returned.

    Attributes:
        values: the Lua return values, as a tuple.
        output: the captured ``print`` output.
        duration_ms: run time inside the VM.
        mem_bytes: Lua heap in use after the call.
        output_truncated: True if output hit ``max_output``.
        types: the Lua type of each value, as Lua's ``type()`` names it
            ("nil", "number", "string", "boolean", "table", ...), told by the
            VM (a ``{}`` is a "table" though it arrives as a dict or list).
    """
    values: tuple
    output: str
    duration_ms: float
    mem_bytes: int
    output_truncated: bool = False
    types: tuple = ()

    @property
    def value(self) -> Any:
        """None for no value, the value for one, a tuple for several."""
        return unpack(self.values)

    @property
    def type(self) -> str:
        """The Lua type of ``value`` (IsoBox's ``ExecutionResult.type``): the
        first value's, "nil" when there is none."""
        return self.types[0] if self.types else "nil"


ExecutionResult = ExecResult
"""IsoBox's name for it (``from pylua_bioxen_vm.results import ExecutionResult``)."""


def unpack(values: tuple) -> Any:
    if not values:
        return None
    return values[0] if len(values) == 1 else values


_SCALARS = frozenset((int, float, str, bool, type(None)))


def _values(r: Any) -> tuple:
    vals = r.get("values") or []
    # Fast path: one plain scalar needs no tag decoding (the common case).
    if type(vals) is list and len(vals) == 1 and type(vals[0]) in _SCALARS:
        return (vals[0],)
    return tuple(from_wire(vals))


def to_result(r: Any) -> ExecResult:
    values = _values(r)
    return ExecResult(values, r.get("output") or "",
                      float(r.get("duration_ms") or 0.0), int(r.get("mem_bytes") or 0),
                      bool(r.get("output_truncated", False)), tuple(r.get("types") or ()))


def _value_quiet(r: Any) -> Any:
    return unpack(_values(r))   # the value alone: no ExecResult to build


def _value_echo(r: Any) -> Any:
    res = to_result(r)
    if res.output:
        try:
            sys.stdout.write(res.output)
            sys.stdout.flush()
        except (OSError, ValueError):
            pass  # a closed stdout must not lose the result
    return res.value


# Result transforms by (echo, want_value): built once, not per call.
TRANSFORMS = {(True, True): _value_echo, (False, True): _value_quiet,
              (True, False): to_result, (False, False): to_result}


__all__ = ["ExecResult", "ExecutionResult", "TRANSFORMS", "to_result", "unpack"]
