"""The SSE wire format as this server writes it: one function, :func:`sse`."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["EOLS", "encode", "sse"]

EOLS: Final = ("\n", "\r\n", "\r")
"""The line terminators the SSE format allows."""

_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")


def encode(value: str | bytes) -> bytes:
    """``bytes`` as they are, ``str`` UTF-8 encoded."""
    return value if isinstance(value, bytes) else value.encode("utf-8")


def sse(
    *,
    data: str | None = None,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
    comment: str | None = None,
    eol: str = "\n",
) -> bytes:
    """
    One event block, UTF-8 encoded: comment lines, then ``event``, ``id``, ``retry``, and
    one ``data`` line per line of ``data`` (split at CRLF, LF or CR, as a client will),
    then a blank line. Fields that are None are left out; ``id=""`` sends an empty ``id``
    (which resets the client's last event id); ``data=""`` sends one empty ``data`` line.

    >>> sse(data="hello", id="1")
    b'id: 1\\ndata: hello\\n\\n'

    :param eol: the line terminator to use: ``"\\n"``, ``"\\r\\n"`` or ``"\\r"``.
    :raises ValueError: ``event`` or ``id`` contains a line break, ``retry`` is negative, or
        ``eol`` is not a line terminator.
    """
    if eol not in EOLS:
        raise ValueError(f"eol must be LF, CRLF or CR, got {eol!r}")
    lines: list[str] = []

    def add(name: str, value: str) -> None:
        lines.append(f"{name}: {value}" if value else f"{name}:")

    if comment is not None:
        lines.extend(f":{line}" for line in _LINE_BREAK.split(comment))
    for name, value in (("event", event), ("id", id)):
        if value is not None:
            if _LINE_BREAK.search(value):
                raise ValueError(f"{name} cannot contain a line break: {value!r}")
            add(name, value)
    if retry is not None:
        if retry < 0:
            raise ValueError(f"retry must be a number of milliseconds >= 0, got {retry}")
        add("retry", str(retry))
    if data is not None:
        for line in _LINE_BREAK.split(data):
            add("data", line)
    return "".join(line + eol for line in lines).encode("utf-8") + eol.encode("ascii")
