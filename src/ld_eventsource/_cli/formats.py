"""
The output formats of ``sse``, as pure functions of an event: each formatter turns one event
(or comment) into the text to write, and knows nothing of streams or terminals beyond the
two flags it is built with. Also :class:`FieldPath`, the ``--field`` lookup.

``--format json`` is a contract for scripts: its fields are documented in docs/cli.md; fields
may be added, never renamed or removed.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any, Final

from ld_eventsource.actions import Event

__all__ = [
    "FORMATS",
    "NO_VALUE",
    "FieldPath",
    "Formatter",
    "make_formatter",
    "render_value",
    "rfc3339",
    "use_color",
]

FORMATS: Final = ("pretty", "json", "data", "text", "raw")
"""The names accepted by ``--format``."""


class _NoValue:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Final[Any] = _NoValue()
"""What :meth:`FieldPath.lookup` returns when the path leads nowhere (or to ``null``)."""

_INDEX: Final = re.compile(r"-?[0-9]+")

# One encoder for the run: json.dumps with options builds a new one on every call.
_ENCODE: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class FieldPath:
    """
    A dotted path into a JSON value, such as ``choices.0.delta.content``: each segment is an
    object key, or, on an array, an index (negative counts from the end).
    """

    __slots__ = ("segments", "text")

    def __init__(self, segments: tuple[str, ...], text: str):
        self.segments = segments
        """The segments of the path."""
        self.text = text
        """The path as written."""

    @staticmethod
    def parse(text: str) -> FieldPath:
        """Parses a path; raises ``ValueError`` with the reason if it is not one."""
        if not text:
            raise ValueError("the path is empty (expected something like choices.0.delta.content)")
        segments = tuple(text.split("."))
        if "" in segments:
            raise ValueError(
                f"empty segment in {text!r} (expected something like choices.0.delta.content)"
            )
        return FieldPath(segments, text)

    def lookup(self, value: Any) -> Any:
        """The value at this path in ``value``, or :data:`NO_VALUE`."""
        for segment in self.segments:
            if isinstance(value, dict):
                if segment not in value:
                    return NO_VALUE
                value = value[segment]
            elif isinstance(value, list) and _INDEX.fullmatch(segment):
                index = int(segment)
                if not -len(value) <= index < len(value):
                    return NO_VALUE
                value = value[index]
            else:
                return NO_VALUE
        return NO_VALUE if value is None else value

    def __repr__(self) -> str:
        return f"FieldPath({self.text!r})"


def render_value(value: Any) -> str:
    """A ``--field`` value as text: a string as it is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return _ENCODE(value)


_SECOND: list[Any] = [None, ""]  # the last whole second formatted, and its text


def rfc3339(timestamp: float) -> str:
    """A POSIX timestamp as RFC 3339 UTC with microseconds: ``2025-01-31T12:00:00.123456Z``."""
    second = math.floor(timestamp)
    micro = round((timestamp - second) * 1_000_000)
    if micro == 1_000_000:
        second, micro = second + 1, 0
    if _SECOND[0] != second:
        # Events come many to a second: the date and time are formatted once per second.
        _SECOND[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
    return f"{_SECOND[1]}.{micro:06d}Z"


# C0 controls but tab, DEL and C1 controls: a stream must not drive the terminal.
_CONTROLS: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _visible(text: str) -> str:
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class Formatter:
    """Turns events and comments into output text. One instance per run."""

    def event(self, event: Event, received: float, value: Any = NO_VALUE) -> str:
        """
        The text for one event.

        :param received: when it arrived (POSIX time)
        :param value: the ``--field`` value, or :data:`NO_VALUE` without ``--field``
        """
        raise NotImplementedError

    def comment(self, comment: str, received: float) -> str:
        """The text for one comment (only asked for with ``--comments``)."""
        return ""

    def finish(self) -> str:
        """The text to write when the run ends."""
        return ""


class _Pretty(Formatter):
    """
    For people: a line with the event type (and ``id=`` when the event has one), then each
    line of data indented by two spaces; an empty line stays empty. Control characters are
    shown escaped (``\\x1b``). Colors only if asked for.
    """

    def __init__(self, color: bool):
        if color:
            self._type = "\x1b[1;36m{}\x1b[0m"
            self._id = " \x1b[33mid={}\x1b[0m"
            self._comment = "\x1b[2m:{}\x1b[0m\n"
        else:
            self._type = "{}"
            self._id = " id={}"
            self._comment = ":{}\n"

    def event(self, event: Event, received: float, value: Any = NO_VALUE) -> str:
        head = self._type.format(_visible(event.event))
        if event.id is not None:
            head += self._id.format(_visible(event.id))
        shown = event.data if value is NO_VALUE else render_value(value)
        if not shown:
            return head + "\n"
        lines = [f"  {line}" if line else "" for line in _visible(shown).split("\n")]
        return head + "\n" + "\n".join(lines) + "\n"

    def comment(self, comment: str, received: float) -> str:
        return self._comment.format(_visible(comment))


# The JSON string of a str, as JSONEncoder(ensure_ascii=False) writes it (the C function).
_STRING: Final = json.encoder.encode_basestring


def _string_or_null(value: str | None) -> str:
    return "null" if value is None else _STRING(value)


class _Json(Formatter):
    """
    One JSON object per line (see docs/cli.md for the fields). Written field by field: the
    line for each event of a fast stream costs a few string escapes, not a JSON encoder run.
    """

    def event(self, event: Event, received: float, value: Any = NO_VALUE) -> str:
        line = (
            f'{{"type":{_STRING(event.event)},"data":{_STRING(event.data)},'
            f'"id":{_string_or_null(event.id)},'
            f'"last_event_id":{_string_or_null(event.last_event_id)},'
            f'"time":"{rfc3339(received)}"'
        )
        if value is not NO_VALUE:
            line += f',"value":{_ENCODE(value)}'
        return line + "}\n"

    def comment(self, comment: str, received: float) -> str:
        return f'{{"comment":{_STRING(comment)},"time":"{rfc3339(received)}"}}\n'


class _Data(Formatter):
    """The data (or the ``--field`` value) of each event, then a newline."""

    def event(self, event: Event, received: float, value: Any = NO_VALUE) -> str:
        return (event.data if value is NO_VALUE else render_value(value)) + "\n"


class _Text(Formatter):
    """
    The data (or the ``--field`` value) of each event with nothing between them: pieces of
    text, such as the tokens of an LLM answer, assembled as they arrive. On a terminal, a
    final newline is added if the text does not end with one.
    """

    def __init__(self, terminal: bool):
        self._terminal = terminal
        self._last = ""

    def event(self, event: Event, received: float, value: Any = NO_VALUE) -> str:
        text = event.data if value is NO_VALUE else render_value(value)
        if text:
            self._last = text[-1]
        return text

    def finish(self) -> str:
        return "\n" if self._terminal and self._last not in ("", "\n") else ""


class _Raw(Formatter):
    """
    The SSE wire form, one block per event: ``event:`` unless the type is ``message``,
    ``id:`` if the event had one, one ``data:`` line per line of data, a blank line.
    Reading it back with an SSE parser gives the same events.
    """

    def event(self, event: Event, received: float, value: Any = NO_VALUE) -> str:
        lines = []
        if event.event != "message":
            lines.append(f"event: {event.event}")
        if event.id is not None:
            lines.append(f"id: {event.id}" if event.id else "id:")
        lines.extend(f"data: {line}" if line else "data:" for line in event.data.split("\n"))
        return "\n".join(lines) + "\n\n"

    def comment(self, comment: str, received: float) -> str:
        return f":{comment}\n"


def use_color(option: str, *, terminal: bool, no_color: bool) -> bool:
    """
    Whether ``--color option`` means colors: ``always``, ``never``, or ``auto``: on a
    terminal, unless ``NO_COLOR`` is set (https://no-color.org: an explicit ``--color
    always`` still wins).
    """
    if option == "auto":
        return terminal and not no_color
    return option == "always"


def make_formatter(name: str, *, color: bool = False, terminal: bool = False) -> Formatter:
    """
    The formatter called ``name`` (one of :data:`FORMATS`).

    :param color: colors in ``pretty`` output
    :param terminal: the output is a terminal (``text`` then ends with a newline)
    """
    if name == "pretty":
        return _Pretty(color)
    if name == "json":
        return _Json()
    if name == "data":
        return _Data()
    if name == "text":
        return _Text(terminal)
    if name == "raw":
        return _Raw()
    raise ValueError(f"unknown format {name!r}")
