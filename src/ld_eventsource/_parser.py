"""
The sans-I/O Server-Sent Events parser: bytes in, events out.

It implements the "Parsing an event stream" and "Interpreting an event stream" sections of
the WHATWG HTML standard (section 9.2, Server-sent events); the quoted phrases below are from
there. It knows nothing of sockets: :meth:`SSEParser.feed` takes whatever bytes arrived and
returns what became complete, :meth:`SSEParser.end` marks the end of one stream.

Cost is linear in the input however it is chunked: an unterminated line is kept as a list of
fragments joined once when it ends, data lines are joined once per event, and the bytes of a
chunk are decoded and split in one pass each.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final, NamedTuple

from ld_eventsource.actions import Comment, Event
from ld_eventsource.errors import EventTooLargeError

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "NO_ITEMS",
    "IdChange",
    "Item",
    "ItemIterator",
    "RetryChange",
    "SSEParser",
]

DEFAULT_MAX_EVENT_SIZE: Final = 16 * 1024 * 1024
"""The default bound, in bytes, of one event (or one unterminated line): 16 MiB."""

_BOM: Final = b"\xef\xbb\xbf"
_new = tuple.__new__


class RetryChange(NamedTuple):
    """A ``retry:`` field with a valid value: the new reconnection time."""

    milliseconds: int


class IdChange(NamedTuple):
    """A block that set the last event id but had no data, so dispatched no event."""

    last_event_id: str


Item = Event | Comment | RetryChange | IdChange | EventTooLargeError
"""What :meth:`SSEParser.feed` returns. An :class:`EventTooLargeError` is always last."""

ItemIterator = Iterator[Any]
"""An iterator over parsed items (:data:`Item`), typed loosely for the hot loop."""

NO_ITEMS: ItemIterator = iter(())
"""An empty, exhausted iterator of items."""


class SSEParser:
    """
    Incremental parser of one event stream (one HTTP response body).

    :param max_event_size: the bound, in bytes, of the event being assembled, counted from
        the line after the last blank line, line terminators as one byte each, a pending
        unterminated line included. Past it, :meth:`feed` returns an
        :class:`EventTooLargeError` as its last item and the parser stops: the caller is
        expected to drop the stream. The items before it are complete and valid.
    :param last_event_id: the last event id the stream starts from (the one sent in
        ``Last-Event-ID``), reported in each :attr:`.Event.last_event_id` until an ``id:``
        field changes it.
    """

    __slots__ = (
        "_at_start",
        "_data",
        "_event_size",
        "_failed",
        "_id",
        "_last_id",
        "_max",
        "_pending",
        "_pending_size",
        "_skip_lf",
        "_type",
    )

    def __init__(
        self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE, last_event_id: str | None = None
    ):
        if isinstance(max_event_size, bool) or not isinstance(max_event_size, int):
            raise TypeError("max_event_size must be an int (bytes)")
        if max_event_size <= 0:
            raise ValueError(f"max_event_size must be positive, got {max_event_size}")
        self._max = max_event_size
        self._last_id = last_event_id
        self._at_start: bytes | None = b""  # bytes seen so far while a BOM is still possible, else None
        self._skip_lf = False  # the last chunk ended with CR: a leading LF ends no line
        self._pending: list[bytes] = []  # fragments of an unterminated line
        self._pending_size = 0
        self._event_size = 0  # bytes of complete lines since the last blank line
        self._failed: EventTooLargeError | None = None
        # The event being assembled ("data buffer", "event type buffer", and the value of
        # this block's own id: field, if any).
        self._data: list[str] = []
        self._type = ""
        self._id: str | None = None

    @property
    def last_event_id(self) -> str | None:
        """The last event id as of the last dispatched block."""
        return self._last_id

    def feed(self, data: bytes) -> list[Item]:
        """
        Parses the next bytes of the stream.

        :return: the events, comments, retry changes and id changes that became complete, in
            stream order
        """
        if self._failed is not None:
            return [self._failed]
        if self._at_start is not None:
            # "One leading U+FEFF BYTE ORDER MARK character must be ignored if any are
            # present", even when its three bytes come in separate chunks.
            data = self._at_start + data
            if len(data) < 3 and _BOM.startswith(data):
                self._at_start = data
                return []
            self._at_start = None
            if data.startswith(_BOM):
                data = data[3:]
        if not data:
            return []
        if self._skip_lf:
            # CR at the end of the last chunk, LF at the start of this one: one CRLF.
            self._skip_lf = False
            if data[0] == 10:
                data = data[1:]
                if not data:
                    return []
        if b"\r" in data:
            # "Lines must be separated by either a U+000D CARRIAGE RETURN U+000A LINE FEED
            # (CRLF) character pair, a single U+000A LINE FEED (LF) character, or a single
            # U+000D CARRIAGE RETURN (CR) character."
            self._skip_lf = data[-1] == 13
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")

        end = data.rfind(b"\n") + 1
        if not end:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._event_size + self._pending_size > self._max:
                return self._fail([])
            return []
        if self._pending:
            self._pending.append(data[:end])
            complete = b"".join(self._pending)
        else:
            complete = data[:end] if end < len(data) else data
        if end < len(data):
            self._pending = [data[end:]]
            self._pending_size = len(data) - end
        else:
            self._pending = []
            self._pending_size = 0

        # The size of the event in progress after this chunk: the bytes after the last blank
        # line, or everything since the last one if this chunk has none.
        size = len(complete)
        blank = complete.rfind(b"\n\n")
        if blank >= 0:
            tail = size - blank - 2
        elif complete[0] == 10:  # the chunk opens with a blank line
            tail = size - 1
        else:
            tail = self._event_size + size
        if self._event_size + size > self._max and self._oversized(complete):
            return self._fail(self._lines(complete[: self._allowed_prefix(complete)]))
        self._event_size = tail
        items = self._lines(complete)
        if tail + self._pending_size > self._max:
            return self._fail(items)
        return items

    def end(self) -> None:
        """
        Marks the end of the stream: an unterminated line and an event without its final
        blank line are discarded ("If the file ends in the middle of an event, before the
        final empty line, the incomplete event is not dispatched.").
        """
        self._pending = []
        self._pending_size = 0
        self._event_size = 0
        self._data = []
        self._type = ""
        self._id = None

    def _fail(self, items: list[Item]) -> list[Item]:
        self.end()
        self._failed = EventTooLargeError(self._max)
        items.append(self._failed)
        return items

    def _oversized(self, complete: bytes) -> bool:
        return self._allowed_prefix(complete) < len(complete)

    def _allowed_prefix(self, complete: bytes) -> int:
        """The length of the longest run of whole events in ``complete`` within the limit."""
        limit = self._max
        length = len(complete)
        start = -self._event_size  # the event in progress began in an earlier chunk
        pos = 0
        if complete[0] == 10:
            if self._event_size > limit:
                return 0
            pos = 1
            while pos < length and complete[pos] == 10:  # more blank lines: no event yet
                pos += 1
            start = pos
        while True:
            blank = complete.find(b"\n\n", pos)
            stop = length if blank < 0 else blank + 1
            if stop - start > limit:
                return max(start, 0)
            if blank < 0:
                return length
            pos = blank + 2
            while pos < length and complete[pos] == 10:
                pos += 1
            start = pos

    def _lines(self, complete: bytes) -> list[Item]:
        # Decoding the whole chunk at once gives the same text as decoding line by line:
        # LF never occurs inside a UTF-8 sequence, and invalid bytes become U+FFFD either way.
        lines = complete.decode("utf-8", "replace").split("\n")
        lines.pop()  # "complete" ends with LF: the last element is empty
        out: list[Item] = []
        data = self._data
        etype = self._type
        eid = self._id
        last_id = self._last_id
        for line in lines:
            if not line:
                # Dispatch. "Set the last event ID string of the event source to the value
                # of the last event ID buffer" comes first, data or not.
                if eid is not None:
                    last_id = eid
                    if not data:
                        out.append(IdChange(eid))
                if data:
                    # "If the data buffer is an empty string, ... return" (no dispatch).
                    out.append(_new(Event, (etype or "message", "\n".join(data), eid, last_id)))
                    data = []
                etype = ""
                eid = None
                continue
            colon = line.find(":")
            if colon == 0:
                # "If the line starts with a U+003A COLON character (:) Ignore the line."
                # Reported as a comment, without the colon.
                out.append(_new(Comment, (line[1:],)))
                continue
            if colon < 0:
                # "the whole line as the field name, and the empty string as the field value"
                field = line
                value = ""
            else:
                field = line[:colon]
                # "If value starts with a U+0020 SPACE character, remove it from value."
                value = line[colon + 2 :] if line.startswith(" ", colon + 1) else line[colon + 1 :]
            if field == "data":
                data.append(value)
            elif field == "event":
                etype = value
            elif field == "id":
                # "If the field value does not contain U+0000 NULL, then set the last event
                # ID buffer to the field value. Otherwise, ignore the field."
                if "\x00" not in value:
                    eid = value
            elif field == "retry":
                # "If the field value consists of only ASCII digits, then interpret the field
                # value as an integer in base ten ... Otherwise, ignore the field."
                if value.isdigit() and value.isascii():
                    out.append(RetryChange(int(value)))
            # "Otherwise: The field is ignored."
        self._data = data
        self._type = etype
        self._id = eid
        self._last_id = last_id
        return out
