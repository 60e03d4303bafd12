"""pyisolate's ``Policy`` builder (its API §3) on bioxen's Policy.

    from pylua_bioxen_vm.pyisolate.policy import Policy
    cust = (Policy(mem="256MiB")
            .allow_fs("/srv/data/*.parquet")
            .allow_tcp("127.0.0.1:9200")
            .allow_import("math"))
    cust.fs    # ["/srv/data/*.parquet"]
    cust.tcp   # ["127.0.0.1:9200"]

``Policy`` here *is* ``pylua_bioxen_vm.Policy`` (a subclass adding nothing
but pyisolate's error class): the same fields, checks and wire form, so it
goes to ``VMManager.create_vm(policy=...)`` and ``vm.set_policy`` as it is.
A mistake raises ``PolicyError`` (``InvalidPolicy``, also the
``InvalidRequest`` bioxen's own Policy raises).  ``as_policy`` turns what
``spawn`` accepts (a Policy, a dict of the same fields, ``"defaults"``)
into one.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, TypeVar, Union

from ..errors import InvalidPolicy, InvalidRequest
from ..policy import Policy as BioxenPolicy

_F = TypeVar("_F", bound=Callable[..., Any])

#: The fields of a policy dict: Policy's attributes.
FIELDS = ("mem", "fs", "tcp", "imports")
#: Named policies ``spawn(policy=...)`` knows.  "defaults" grants nothing
#: beyond the VM's own state (bioxen's deny-by-default) and leaves the heap
#: limit to the manager's defaults.
NAMED = ("defaults",)


def _policy_errors(fn: _F) -> _F:
    """Re-raise bioxen's InvalidRequest of a bad grant as InvalidPolicy
    (a PolicyError), the class pyisolate code catches."""
    @functools.wraps(fn)
    def wrapped(*args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except InvalidPolicy:
            raise
        except InvalidRequest as e:
            raise InvalidPolicy(str(e), vm=e.vm, code=e.code) from None
    return wrapped  # type: ignore[return-value]


class Policy(BioxenPolicy):
    """What a sandbox may reach: memory, files to read, TCP peers, modules.

    Exactly ``pylua_bioxen_vm.Policy`` (see its docstring for what each
    grant means in the Lua guest: ``fs.read``/``fs.lines``, LuaSocket,
    ``require``); only its errors are ``PolicyError``s.

    Args:
        mem: the Lua heap limit, bytes or a size text ("256MiB", "1.5GiB").

    Raises:
        PolicyError: (InvalidPolicy) a bad size or grant.
    """

    @_policy_errors
    def __init__(self, mem: Optional[Union[int, str]] = None) -> None:
        super().__init__(mem)

    @_policy_errors
    def allow_fs(self, glob: str) -> "Policy":
        """Let the guest read files matching the absolute glob (read-only)."""
        super().allow_fs(glob)
        return self

    @_policy_errors
    def allow_tcp(self, addr: str) -> "Policy":
        """Let the guest (then networked) connect/send/bind to ``"host:port"``."""
        super().allow_tcp(addr)
        return self

    @_policy_errors
    def allow_import(self, name: str) -> "Policy":
        """Let ``require(name)`` load it from the manager's module_dir."""
        super().allow_import(name)
        return self

    @classmethod
    @_policy_errors
    def from_dict(cls, obj: Any) -> "Policy":
        """A Policy from ``{"mem": ..., "fs": [...], "tcp": [...], "imports": [...]}``.

        Every field is optional; any other key is refused (a misspelled
        grant must never pass as "nothing granted").

        Raises:
            PolicyError: an unknown key, a list field that is not a list of
                strings, or a bad grant.
        """
        if not isinstance(obj, dict):
            raise InvalidPolicy("a policy dict maps %s to values, not %s"
                                % ("/".join(FIELDS), type(obj).__name__))
        unknown = sorted(str(k) for k in obj if k not in FIELDS)
        if unknown:
            raise InvalidPolicy("policy field(s) %s unknown: a policy dict has %s"
                                % (", ".join(map(repr, unknown)), ", ".join(FIELDS)))
        p = cls(obj.get("mem"))
        for key, grant in (("fs", p.allow_fs), ("tcp", p.allow_tcp),
                           ("imports", p.allow_import)):
            for item in _str_list(obj.get(key), "policy field %r" % key):
                grant(item)
        return p

    def copy(self) -> "Policy":
        """An independent Policy with the same grants."""
        return type(self).from_dict(self.to_wire())


def _str_list(value: Any, what: str) -> list:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise InvalidPolicy("%s must be a list of strings, not %r" % (what, value))
    return list(value)


def as_policy(policy: Any = None, allowed_imports: Any = None) -> Policy:
    """The Policy ``spawn(name, policy, allowed_imports)`` means: a fresh one
    (the caller's object is never changed) with ``allowed_imports`` granted
    as ``allow_import`` too.

    Args:
        policy: None or ``"defaults"`` (nothing granted), a Policy (this
            one's or bioxen's), or a dict with the fields of one.
        allowed_imports: module names the guest may ``require``.

    Raises:
        PolicyError: an unknown policy name, a value of another type, or a
            bad field or grant.
    """
    if policy is None:
        p = Policy()
    elif isinstance(policy, str):
        if policy not in NAMED:
            raise InvalidPolicy("unknown policy %r: pass %s, a Policy or a dict of %s"
                                % (policy, " or ".join(map(repr, NAMED)), ", ".join(FIELDS)))
        p = Policy()
    elif isinstance(policy, BioxenPolicy):
        p = Policy.from_dict(policy.to_wire())
    elif isinstance(policy, dict):
        p = Policy.from_dict(policy)
    else:
        raise InvalidPolicy("policy must be %s, a Policy or a dict, not %s"
                            % (" or ".join(map(repr, NAMED)), type(policy).__name__))
    for name in _str_list(allowed_imports, "allowed_imports"):
        p.allow_import(name)
    return p


__all__ = ["Policy", "as_policy", "FIELDS", "NAMED"]
