"""Per-run options shared by ``VM.execute``, ``Session.run`` and the pool's
``run``: IsoBox's ``ExecutionOptions.filename`` and ``context``.

``filename`` names the chunk in Lua error messages and tracebacks
(``"calc.lua:3: boom"``); ``context`` is a dict of globals that exist for
that one run only (the node puts back what those names held afterwards,
also when the run fails or times out).  Checked here so a bad value fails
at once, before anything is sent; the manager checks the same rules.
"""

from __future__ import annotations

from typing import Any, Optional

from .errors import InvalidRequest
from .values import to_wire

FILENAME_MAX = 255
"""Longest ``filename`` in UTF-8 bytes (the manager's BX_FILENAME_MAX)."""


def check_filename(filename: Any) -> str:
    """``filename`` checked: a str of 1-255 UTF-8 bytes without control characters.

    Raises:
        InvalidRequest: it is not.
    """
    if not isinstance(filename, str) or not filename:
        raise InvalidRequest("filename must be a non-empty str, not %r" % (filename,))
    if len(filename.encode("utf-8", "surrogatepass")) > FILENAME_MAX:
        raise InvalidRequest("filename is longer than %d bytes" % FILENAME_MAX)
    if any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in filename):
        raise InvalidRequest("filename %r holds control characters" % (filename,))
    return filename


def add_run_options(fields: dict, filename: Optional[str], context: Optional[dict],
                    chunkname: Optional[str] = None) -> None:
    """Add ``filename`` and ``context`` (when given) to a request's fields.

    Raises:
        InvalidRequest: a bad filename, both filename and chunkname, or a
            context that is not a dict of str keys.
        ConversionError: a context value cannot be sent to Lua.
    """
    if filename is not None:
        if chunkname is not None:
            raise InvalidRequest("give filename or chunkname, not both")
        fields["filename"] = check_filename(filename)
    if context is not None:
        if not isinstance(context, dict) or not all(isinstance(k, str) for k in context):
            raise InvalidRequest("context must be a dict with str keys")
        fields["context"] = {k: to_wire(v) for k, v in context.items()}


__all__ = ["FILENAME_MAX", "add_run_options", "check_filename"]
