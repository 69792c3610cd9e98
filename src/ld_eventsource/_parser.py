"""
The sans-I/O Server-Sent Events parser: bytes in, events out.

It implements the "Parsing an event stream" and "Interpreting an event stream" sections of
the WHATWG HTML standard (section 9.2, Server-sent events); the quoted phrases below are from
there. It knows nothing of sockets: :meth:`SSEParser.feed` takes whatever bytes arrived and
returns what became complete, :meth:`SSEParser.end` marks the end of one stream.

The work is in three steps, each in one place:

1. :meth:`SSEParser.feed` splits the bytes into complete lines (any line end, a BOM, a CR
   at the end of a chunk) and keeps the size of the event in progress (:func:`_kept_bytes`)
   within the limit, measuring line by line (:meth:`SSEParser._near_limit`) only near it;
2. :meth:`SSEParser._lines` splits each line into its field and value,
3. and processes the field in one dispatch, behind fast paths for the usual forms of the
   usual fields (``data: ``, ``id: ``, ``event: ``).

Cost is linear in the input however it is chunked: an unterminated line is kept as a list of
fragments joined once when it ends, data lines are joined once per event (in pieces first if
there are very many, to keep few objects), and the bytes of a chunk are decoded and split in
one pass each. The time goes into the loop over lines, where ``data:``, ``id:`` and
``event:`` with one space are recognised with one ``str.removeprefix`` each before the
general rule (measured with ``bench/parser.py``). A long line (more than
:attr:`SSEParser._LONG_LINE` bytes) is split from its bytes instead, its value decoded in
place, so that its bytes are copied once or twice (joined if they came in several chunks,
then decoded) rather than three or four times; it then goes through the same dispatch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Final, NamedTuple, cast

from ld_eventsource import _validate
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
_SPLIT: Final = "\n"
"""In the lines given to :meth:`SSEParser._lines`, a line split already (no line holds LF)."""
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


def _kept_bytes(buffer: bytes, start: int, stop: int) -> int:
    """
    The bytes that ``buffer[start:stop]`` adds to the size of the event in progress (it
    starts at the start of a line, ends at the end of one, and holds no blank line), line ends
    included: all but the comment lines, which are not kept, so that once complete they count
    for nothing (a flood of heartbeats is no event).
    """
    return stop - start - _comment_bytes(buffer, start, stop) if start < stop else 0


def _comment_bytes(buffer: bytes, start: int, stop: int) -> int:
    """
    The bytes, line ends included, of the comment lines in ``buffer[start:stop]`` (not
    empty), which starts at the start of a line and ends at the end of one. One search when
    there are none.
    """
    if buffer[start] == 58:  # ":"
        pos = start
    else:
        pos = buffer.find(b"\n:", start, stop) + 1
        if not pos:
            return 0
    total = 0
    while True:
        eol = buffer.find(b"\n", pos, stop)
        total += eol + 1 - pos
        pos = buffer.find(b"\n:", eol, stop) + 1
        if not pos:
            return total


MAX_RETRY_MS: Final = 2**31 - 1
"""The largest ``retry:`` value used (about 24.8 days); a larger one is clamped to it."""


def _retry_ms(digits: str) -> int:
    # Clamped, and never converted when it has too many digits to be meaningful (int() of
    # over 4,300 digits raises, and a delay of centuries overflows the timers).
    digits = digits.lstrip("0")
    return min(int(digits or "0"), MAX_RETRY_MS) if len(digits) <= 10 else MAX_RETRY_MS


class SSEParser:
    """
    Incremental parser of one event stream (one HTTP response body).

    :param max_event_size: the bound, in bytes, of the event being assembled, counted from
        the line after the last blank line, line terminators as one byte each, a pending
        unterminated line included. Comment lines are not kept, so once complete they count
        for nothing (a flood of heartbeats is no event); each of them must still fit on top
        of the event while it arrives. Past the bound, :meth:`feed` returns an
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
        "_joined",
        "_last_id",
        "_max",
        "_pending",
        "_pending_size",
        "_skip_lf",
        "_type",
        "comments",
        "events",
    )

    _LONG_LINE: ClassVar[int] = 4096
    """Bytes past which a line, or part of a chunk, is decoded in place rather than copied."""
    _DATA_PIECES: ClassVar[int] = 256
    """Data lines an event may hold as separate strings between chunks; past that, joined."""

    _at_start: bytes | None
    _pending: list[bytes]
    _pending_size: int
    _event_size: int
    _failed: EventTooLargeError | None
    # The data buffer is the shared empty tuple when empty (as it is between the events of a
    # live stream), a list of its own only while it holds something.
    _data: list[str] | tuple[()]
    _id: str | None

    def __init__(
        self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE, last_event_id: str | None = None
    ):
        self._max = _validate.count("max_event_size", max_event_size, positive=True, unit="bytes")
        self.events = 0
        """Events dispatched by :meth:`feed` since the parser was made (over every reset)."""
        self.comments = 0
        """Comments returned by :meth:`feed` since the parser was made (over every reset)."""
        self.reset(last_event_id)

    def reset(self, last_event_id: str | None) -> None:
        """
        Makes the parser new again, for the next stream (a client reuses one parser for all
        its connections), starting from ``last_event_id``.
        """
        self._last_id = last_event_id
        # The bytes seen so far while a BOM is still possible, else None.
        self._at_start = b""
        self._skip_lf = False  # the last chunk ended with CR: a leading LF ends no line
        self._failed = None
        self.end()

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

        # (find() rather than "in": on bytes, "in" first tries its operand as an int.)
        first = data.find(b"\n")
        if data.find(b"\r") >= 0:
            # "Lines must be separated by either a U+000D CARRIAGE RETURN U+000A LINE FEED
            # (CRLF) character pair, a single U+000A LINE FEED (LF) character, or a single
            # U+000D CARRIAGE RETURN (CR) character."
            self._skip_lf = data[-1] == 13
            data = data.replace(b"\r\n", b"\n")
            if data.find(b"\r") >= 0:
                data = data.replace(b"\r", b"\n")
            first = data.find(b"\n")
        elif first < 0:
            # No line ends in this chunk: the cheapest path, taken by the chunks of a long line.
            self._pending.append(data)
            size = self._pending_size + len(data)
            self._pending_size = size
            if self._event_size + size > self._max:
                return self._fail([])
            return []

        # The complete lines are data[:end]; the first of them ends the pending line, if any.
        end = data.rfind(b"\n") + 1
        pending = self._pending
        size = self._event_size + self._pending_size + end
        if size > self._max:
            return self._near_limit(data, end)
        # Decoding the lines at once gives the same text as decoding them one by one: LF
        # never occurs inside a UTF-8 sequence, and invalid bytes become U+FFFD either way.
        # The first line is split on its own if it is long or ends a pending line (unless
        # all is short): its value is decoded straight from the bytes, and neither the line
        # nor the rest of the chunk is copied for it.
        out: list[Item] = []
        start = 0
        long = self._LONG_LINE
        if pending:
            if size - self._event_size <= long:
                pending.append(data[: end - 1])
                self._lines(b"".join(pending).decode("utf-8", "replace").split("\n"), out)
                start = end
            else:
                pending.append(data[:first])
                line = b"".join(pending)
                self._long_line(line, len(line), out)
                start = first + 1
        elif first > long:
            self._long_line(data, first, out)
            start = first + 1
        if start < end:
            self._lines(self._decode(data, start, end - 1).split("\n"), out)

        # The size of the event in progress: what the lines after the last blank line keep,
        # or, if there is none, what all of the complete lines add to it.
        blank = data.rfind(b"\n\n", 0, end)
        if blank >= 0:
            tail = _kept_bytes(data, blank + 2, end)
        elif data[0] == 10 and not pending:  # the chunk opens with a blank line
            tail = _kept_bytes(data, 1, end)
        elif pending:
            tail = self._event_size + _kept_bytes(data, first + 1, end)
            if pending[0][:1] != b":":  # the line it ended was no comment: it is kept
                tail += self._pending_size + first + 1
        else:
            tail = self._event_size + _kept_bytes(data, 0, end)
        self._event_size = tail
        if end < len(data):
            self._pending = [data[end:]]
            self._pending_size = len(data) - end
            tail += len(data) - end
        elif pending:
            self._pending = []
            self._pending_size = 0
        if tail > self._max:
            return self._fail(out)
        return out

    def end(self) -> None:
        """
        Marks the end of the stream: an unterminated line and an event without its final
        blank line are discarded ("If the file ends in the middle of an event, before the
        final empty line, the incomplete event is not dispatched.").
        """
        self._pending = []  # fragments of an unterminated line
        self._pending_size = 0
        self._event_size = 0  # bytes of complete lines since the last blank line, no comments
        # The event being assembled ("data buffer", "event type buffer", and the value of
        # this block's own id: field, if any). The type is kept as it will be dispatched.
        self._data = ()
        self._joined = 0  # the leading items of _data that are already several lines joined
        self._type = "message"
        self._id = None

    def _fail(self, items: list[Item]) -> list[Item]:
        self.end()
        self._failed = EventTooLargeError(self._max)
        items.append(self._failed)
        return items

    def _near_limit(self, data: bytes, end: int) -> list[Item]:
        """
        :meth:`feed` for a chunk whose complete lines might take an event over the limit:
        the events are measured one by one, and only those within it are parsed.
        """
        pending = self._pending
        pending.append(data[:end])
        complete = b"".join(pending)
        self._pending = [data[end:]] if end < len(data) else []
        self._pending_size = len(data) - end
        out: list[Item] = []
        allowed, tail = self._allowed_prefix(complete)
        if allowed < len(complete):
            if allowed:
                self._lines(complete[: allowed - 1].decode("utf-8", "replace").split("\n"), out)
            return self._fail(out)
        self._event_size = tail
        self._lines(complete[:-1].decode("utf-8", "replace").split("\n"), out)
        if tail + self._pending_size > self._max:
            return self._fail(out)
        return out

    def _allowed_prefix(self, complete: bytes) -> tuple[int, int]:
        """
        The length of the longest run of whole events in ``complete`` (complete lines, from
        the start of a line) within the limit, and the size of the event in progress at its
        end when that run is all of ``complete``.
        """
        length = len(complete)
        kept = self._event_size  # the event in progress began in an earlier chunk
        start = pos = 0
        if complete[0] == 10:
            pos = 1
            while pos < length and complete[pos] == 10:  # more blank lines: no event yet
                pos += 1
            start = pos
            kept = 0
        while True:
            blank = complete.find(b"\n\n", pos)
            stop = length if blank < 0 else blank + 1
            if kept + stop - start <= self._max:  # the bytes, comments included: a bound
                size = kept + _kept_bytes(complete, start, stop)
            else:
                measured = self._measure(complete, start, stop, kept)
                if measured is None:
                    return start, 0
                size = measured
            if blank < 0:
                return length, size
            pos = blank + 2
            while pos < length and complete[pos] == 10:
                pos += 1
            start = pos
            kept = 0

    def _measure(self, buffer: bytes, start: int, stop: int, kept: int) -> int | None:
        """
        The size of an event whose lines are ``buffer[start:stop]`` (no blank line among
        them) added to ``kept``, line by line; ``None`` if it exceeds the limit. A comment
        line is not kept, but while it arrives it is held, so it must fit on top of the
        event as much as any other line.
        """
        limit = self._max
        pos = start
        while pos < stop:
            eol = buffer.find(b"\n", pos, stop)
            size = eol + 1 - pos
            if buffer[pos] == 58:  # ":"
                if kept + size > limit:
                    return None
            else:
                kept += size
                if kept > limit:
                    return None
            pos = eol + 1
        return kept

    def _decode(self, buffer: bytes, start: int, stop: int) -> str:
        """``buffer[start:stop]`` decoded; a long part is not copied first."""
        if stop - start <= self._LONG_LINE:
            return buffer[start:stop].decode("utf-8", "replace")
        return str(memoryview(buffer)[start:stop], "utf-8", "replace")

    def _long_line(self, line: bytes, stop: int, out: list[Item]) -> None:
        """
        Processes one long complete line that is not blank, ``line[:stop]``: split into its
        field and value as bytes, and only the value decoded, in place, then processed by
        :meth:`_lines` as any other. (A field name decodes to one of the known names exactly
        when its bytes are that name in ASCII, and a colon never occurs inside a UTF-8
        sequence, so this is the same as decoding the line first.)
        """
        colon = line.find(b":", 0, stop)
        if colon == 0:  # a comment: no field to split (long comments are rare)
            self._lines([self._decode(line, 0, stop)], out)
            return
        # The field name, but no more than six bytes: every known name is shorter.
        field = line[: min(stop if colon < 0 else colon, 6)].decode("utf-8", "replace")
        if colon < 0:
            value = ""
        else:
            # "If value starts with a U+0020 SPACE character, remove it from value."
            colon += 2 if line.startswith(b" ", colon + 1, stop) else 1
            value = self._decode(line, colon, stop)
        self._lines([_SPLIT], out, (field, value))

    def _lines(
        self, lines: list[str], out: list[Item], split: tuple[str, str] | None = None
    ) -> None:
        """
        Processes complete lines, in order, appending what they complete to ``out``.
        ``split`` is the field and value of a line split already (:meth:`_long_line`), which
        stands in ``lines`` as :data:`_SPLIT`.
        """
        append = out.append
        # The data buffer, as its first line (None: empty) and, once there are several,
        # the list of all of them. "Append the field value to the data buffer, then append
        # a single U+000A LINE FEED (LF) character" and, at dispatch, "If the data buffer's
        # last character is a U+000A LINE FEED (LF) character, then remove the last
        # character": the lines joined with LF, once per event.
        buffered = self._data
        data = buffered[0] if buffered else None
        more = buffered if len(buffered) > 1 else None
        joined = self._joined
        etype = self._type
        eid = self._id
        last_id = self._last_id
        events = comments = 0  # counted here, added to the totals once
        for line in lines:
            if not line:
                # "If the line is empty (a blank line) Dispatch the event". "Set the last
                # event ID string of the event source to the value of the last event ID
                # buffer" comes first, data or not.
                if data is not None:
                    if more is not None:
                        data = "\n".join(more)
                        more = None
                    if eid is not None:
                        last_id = eid
                    append(_new(Event, (etype, data, eid, last_id)))
                    events += 1
                    data = None
                    joined = 0
                elif eid is not None:
                    # "If the data buffer is an empty string, ... return" (no event).
                    last_id = eid
                    append(_new(IdChange, (eid,)))
                etype = "message"
                eid = None
                continue

            # The usual forms first, a known name and one space after the colon, with one
            # call each (removeprefix() returns the line itself when it lacks the prefix):
            # the fast paths, measured with bench/parser.py. A data line goes on to the data
            # buffer below.
            value = line.removeprefix("data: ")
            if value is line:
                value = line.removeprefix("id: ")
                if value is not line:
                    if "\x00" not in value:  # as in the dispatch below
                        eid = value
                    continue
                value = line.removeprefix("event: ")
                if value is not line:
                    etype = value or "message"  # as in the dispatch below
                    continue

                # Any other line: its field and value by the rule, for every form.
                colon = line.find(":")
                if colon > 0:
                    # "Collect the characters on the line before the first U+003A COLON
                    # character (:), and let field be that string. ... If value starts with a
                    # U+0020 SPACE character, remove it from value."
                    field = line[:colon]
                    colon += 2 if line.startswith(" ", colon + 1) else 1
                    value = line[colon:]
                elif colon == 0:
                    # "If the line starts with a U+003A COLON character (:) Ignore the line."
                    # Reported as a comment, without the colon.
                    append(_new(Comment, (line[1:],)))
                    comments += 1
                    continue
                elif line is _SPLIT:
                    field, value = cast(tuple[str, str], split)
                else:
                    # "the whole line as the field name, and the empty string as the field
                    # value"
                    field = line
                    value = ""

                # "Process the field": the one dispatch (data, the most common, below).
                if field != "data":
                    if field == "id":
                        # "If the field value does not contain U+0000 NULL, then set the last
                        # event ID buffer to the field value. Otherwise, ignore the field."
                        if "\x00" not in value:
                            eid = value
                    elif field == "event":
                        # "Set the event type buffer to field value." Kept as the type to
                        # dispatch: "If the event type buffer has a value other than the
                        # empty string, change the type of the newly created event to equal
                        # the value".
                        etype = value or "message"
                    elif field == "retry":
                        # "If the field value consists of only ASCII digits, then interpret
                        # the field value as an integer in base ten ... Otherwise, ignore the
                        # field."
                        if value.isdigit() and value.isascii():
                            append(_new(RetryChange, (_retry_ms(value),)))
                    # "Otherwise: The field is ignored."
                    continue

            # "data": "Append the field value to the data buffer".
            if data is None:
                data = value
            elif more is None:
                more = [data, value]
            else:
                more.append(value)
        if more is not None:
            if len(more) - joined > self._DATA_PIECES:
                # An event of very many lines keeps few objects: its lines joined in pieces
                # as they come ("\n".join over the pieces gives the same text at dispatch).
                more[joined:] = ["\n".join(more[joined:])]
                joined += 1
            self._data = more
        else:
            self._data = () if data is None else [data]
        self._joined = joined
        self._type = etype
        self._id = eid
        self._last_id = last_id
        if events:
            self.events += events
        if comments:
            self.comments += comments
