"""The bioxen-manager flags that make an embedded manager join a cluster
(``VMManager(cluster=..., host_name=...)``; docs/cluster.md)."""

from typing import Optional

from .errors import InvalidRequest


def _text(what: str, v: object) -> str:
    if not isinstance(v, str) or not v or v.startswith("-"):
        raise InvalidRequest("%s must be a non-empty string, not %r" % (what, v))
    return v


def cluster_args(address: Optional[str], cluster: Optional[str],
                 host_name: Optional[str], cluster_name: Optional[str] = None) -> list[str]:
    """``--cluster URLS --host-name NAME [--cluster-name PREFIX]``.

    Raises:
        InvalidRequest: a bad value, host_name/cluster_name without cluster,
            or any of them for a manager this process does not start.
    """
    if cluster is None:
        if host_name is not None or cluster_name is not None:
            raise InvalidRequest("host_name and cluster_name need cluster=\"nats://...\"")
        return []
    if address is not None:
        raise InvalidRequest("cluster applies to the embedded manager only; start a shared "
                             "manager with --cluster (or bioxen serve --cluster)")
    args = ["--cluster", _text("cluster", cluster)]
    if host_name is not None:
        args += ["--host-name", _text("host_name", host_name)]
    if cluster_name is not None:
        args += ["--cluster-name", _text("cluster_name", cluster_name)]
    return args
