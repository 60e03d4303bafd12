"""Python <-> tagged JSON values, as docs/protocol.md "Values" defines them.

``to_wire`` turns Python arguments into JSON-ready objects before a request is
sent; ``from_wire`` turns the values of a reply back into Python (results,
callback arguments, mail).
"""

from __future__ import annotations

import base64
import math
from typing import Any

from .errors import ConversionError

MAX_DEPTH = 100
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1


class LuaOpaque:
    """Placeholder for a Lua value that cannot cross: function, userdata, thread.

    Attributes:
        type: the Lua type name, e.g. ``"function"``.
    """

    __slots__ = ("type",)

    def __init__(self, type: str) -> None:
        self.type = type

    def __repr__(self) -> str:
        return "LuaOpaque(%r)" % self.type

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LuaOpaque) and other.type == self.type

    def __hash__(self) -> int:
        return hash(("LuaOpaque", self.type))


def _float_to_wire(x: float) -> Any:
    if math.isnan(x):
        return {"$f": "nan"}
    if math.isinf(x):
        return {"$f": "inf" if x > 0 else "-inf"}
    return x


def to_wire(obj: Any) -> Any:
    """Encode a Python value for the wire.

    Args:
        obj: None, bool, int, float, str, bytes/bytearray, list/tuple, dict,
            nested to at most MAX_DEPTH levels.

    Returns:
        A JSON-serialisable object using the protocol's ``$`` tags.

    Raises:
        ConversionError: for an int outside 64 bits, a cycle, nesting deeper
            than MAX_DEPTH, a str that is not valid Unicode, or a type Lua
            cannot hold.
    """
    return _encode(obj, 0, set())


def _encode(obj: Any, depth: int, active: set[int]) -> Any:
    t = type(obj)
    if obj is None or t is bool or t is str and _utf8_ok(obj):
        return obj
    if t is int or isinstance(obj, int) and not isinstance(obj, bool):
        if not _INT_MIN <= obj <= _INT_MAX:
            raise ConversionError("integer %d does not fit in a Lua 64-bit integer"
                                  % obj)
        return int(obj)
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, float):
        return _float_to_wire(float(obj))
    if isinstance(obj, str):
        if not _utf8_ok(obj):
            raise ConversionError("string contains lone surrogates; send bytes instead")
        return str(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"$b": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, (list, tuple, dict)):
        return _encode_container(obj, depth, active)
    if isinstance(obj, LuaOpaque):
        raise ConversionError("a Lua %s placeholder cannot be sent back to Lua"
                              % obj.type)
    raise ConversionError("cannot convert %s to a Lua value" % t.__name__)


def _utf8_ok(s: str) -> bool:
    # Lone surrogates are legal in Python str but not in UTF-8 JSON.
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _encode_container(obj: Any, depth: int, active: set[int]) -> Any:
    if depth >= MAX_DEPTH:
        raise ConversionError("value nested deeper than %d levels" % MAX_DEPTH)
    key = id(obj)
    if key in active:
        raise ConversionError("value contains a cycle (a container holds itself)")
    active.add(key)
    try:
        d = depth + 1
        if not isinstance(obj, dict):
            return [_encode(v, d, active) for v in obj]
        plain = all(type(k) is str for k in obj)
        # One key beginning with '$' would read as a tag: send as $map.
        if plain and not (len(obj) == 1 and next(iter(obj)).startswith("$")):
            return {k: _encode(v, d, active) for k, v in obj.items()}
        return {"$map": [[_encode(k, d, active), _encode(v, d, active)]
                         for k, v in obj.items()]}
    finally:
        active.discard(key)


def from_wire(obj: Any) -> Any:
    """Decode a wire value into Python.

    Args:
        obj: a value parsed from a reply's JSON.

    Returns:
        The Python value: tags become float/bytes/dict/LuaOpaque.

    Raises:
        ConversionError: for an unknown or malformed tag, or nesting deeper
            than the protocol allows.
    """
    return _decode(obj, 0)


def _decode(obj: Any, depth: int) -> Any:
    t = type(obj)
    if t is list:
        _check_depth(depth)
        return [_decode(v, depth + 1) for v in obj]
    if t is not dict:
        return obj
    _check_depth(depth)
    if len(obj) == 1:
        (k, v), = obj.items()
        if k.startswith("$"):
            return _decode_tag(k, v, depth)
    return {k: _decode(v, depth + 1) for k, v in obj.items()}


def _check_depth(depth: int) -> None:
    if depth > MAX_DEPTH + 1:
        raise ConversionError("value nested deeper than %d levels" % MAX_DEPTH)


def _decode_tag(tag: str, v: Any, depth: int) -> Any:
    try:
        if tag == "$f":
            return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[v]
        if tag == "$b":
            return base64.b64decode(v, validate=True)
        if tag == "$t":
            return LuaOpaque(str(v))
        if tag == "$map":
            return {_hashable(_decode(k, depth + 1)): _decode(val, depth + 1)
                    for k, val in v}
    except (KeyError, ValueError, TypeError) as e:
        raise ConversionError("malformed %s tag from Lua: %r" % (tag, e)) from None
    raise ConversionError("unknown value tag %r from Lua" % tag)


def _hashable(k: Any) -> Any:
    # A Lua table used as a key arrives as list/dict: freeze it so the
    # result can still be a Python dict.
    if isinstance(k, list):
        return tuple(_hashable(x) for x in k)
    if isinstance(k, dict):
        return LuaOpaque("table")
    return k
