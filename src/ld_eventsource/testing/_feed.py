"""
Feeds: events read from SSE or JSON-lines text, served with ids and replayed from the event
after the ``Last-Event-ID`` of a reconnecting client (what ``sse serve`` serves).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

from ld_eventsource.testing._handlers import Pacer
from ld_eventsource.testing._server import (
    Conn,
    DropMode,
    Handler,
    HeadersArg,
    finish_as,
    header_pairs,
)
from ld_eventsource.testing._wire import sse

__all__ = [
    "Feed",
    "FeedError",
    "FeedEvent",
    "FeedFormat",
    "feed_handler",
    "load_feed",
    "parse_feed",
]

FeedFormat: TypeAlias = Literal["sse", "jsonl"]
"""The text formats of a feed: ``"sse"`` (the event-stream format itself) or ``"jsonl"``
(one JSON object per line)."""

_LINE_BREAK: Final = re.compile(rb"\r\n|\r|\n")
_DIGITS: Final = re.compile(r"[0-9]+")
_JSONL_KEYS: Final = ("data", "event", "id", "retry", "comment")
_JSONL_SUFFIXES: Final = (".jsonl", ".ndjson")
_BOM: Final = b"\xef\xbb\xbf"
_IDLE_CAP: Final = 1.0
"""Longest single wait of an idle stream, so it sees the server stop or the client go."""


@dataclass(frozen=True)
class FeedEvent:
    """
    One block of a feed, with the fields of :func:`sse`: usually an event (``data`` set),
    or a block of comments, a ``retry`` alone, or an ``id`` alone.

    :raises ValueError: nothing is set; ``event`` without ``data`` (no client would
        dispatch it); a line break in ``event`` or ``id``; U+0000 in ``id`` (clients ignore
        such ids); ``retry`` negative.
    """

    data: str | None = None
    """The data (lines joined with LF), or None for a block that is not an event."""
    event: str | None = None
    """The event type; None: the default, ``message``."""
    id: str | None = None
    """The id; None: none given (a :class:`Feed` gives one)."""
    retry: int | None = None
    """A ``retry:`` value (milliseconds) sent with the block."""
    comment: str | None = None
    """Comment text sent before the fields (lines joined with LF)."""
    line: int | None = field(default=None, compare=False, repr=False)
    """The line of its source where the block starts (None when not read from text)."""

    def __post_init__(self) -> None:
        if all(v is None for v in (self.data, self.event, self.id, self.retry, self.comment)):
            raise ValueError("an empty block: set data, id, retry or comment")
        if self.event is not None and self.data is None:
            raise ValueError(f"event {self.event!r} has no data: no client would dispatch it")
        for name, value in (("event", self.event), ("id", self.id)):
            if value is not None and ("\n" in value or "\r" in value):
                raise ValueError(f"{name} cannot contain a line break: {value!r}")
        if self.id is not None and "\0" in self.id:
            raise ValueError(f"id cannot contain U+0000 (clients ignore such ids): {self.id!r}")
        if self.retry is not None and (isinstance(self.retry, bool) or self.retry < 0):
            raise ValueError(f"retry must be a number of milliseconds >= 0, got {self.retry!r}")

    @property
    def is_event(self) -> bool:
        """Whether the block is an event (has data): what ids number and intervals space."""
        return self.data is not None

    def encode(self, eol: str = "\n") -> bytes:
        """The block on the wire, as :func:`sse` writes it."""
        return sse(
            data=self.data,
            event=self.event,
            id=self.id,
            retry=self.retry,
            comment=self.comment,
            eol=eol,
        )


class FeedError(ValueError):
    """A feed's text is malformed: ``str(error)`` is ``SOURCE:LINE: REASON``."""

    def __init__(self, source: str, line: int, reason: str) -> None:
        super().__init__(f"{source}:{line}: {reason}")
        self.source = source
        """Where the text came from: a file name, ``<stdin>``, ..."""
        self.line = line
        """The line number (from 1) of the mistake."""
        self.reason = reason
        """What is wrong, without the place."""


def _lines(chunks: Iterable[bytes | str], source: str) -> Iterator[tuple[int, str]]:
    """Numbered lines of text, split at CRLF, LF or CR, UTF-8 decoded, one leading BOM off."""
    number = 0
    first = True
    for chunk in chunks:
        raw = chunk if isinstance(chunk, bytes) else chunk.encode("utf-8")
        if first and raw:
            raw = raw.removeprefix(_BOM)
            first = False
        pieces = _LINE_BREAK.split(raw)
        if len(pieces) > 1 and not pieces[-1]:
            pieces.pop()  # the terminator of the last line, not an empty line after it
        for piece in pieces:
            number += 1
            try:
                yield number, piece.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise FeedError(source, number, f"not valid UTF-8 ({exc.reason})") from None


def parse_feed(
    lines: Iterable[bytes | str], format: FeedFormat = "sse", *, source: str = "<feed>"
) -> Iterator[FeedEvent]:
    """
    The blocks of a feed's text, each as soon as it is complete (so a live source, such as
    a pipe, is served as it is written).

    ``lines`` is the text in pieces that end at line ends, as iterating a file gives them;
    ``bytes`` must be UTF-8. An SSE feed is the event-stream format, read strictly: a blank
    line ends a block (and so does the end of the text); ``data``, ``event``, ``id`` and
    ``retry`` fields, and ``:`` comments, which are sent too. A JSON-lines feed has one
    object per line with the keys ``data``, ``event``, ``id``, ``retry``, ``comment`` (a
    ``data`` that is not a string is sent as compact JSON; null is the same as absent);
    blank lines are skipped.

    :raises FeedError: at the first malformed line: an unknown field or key, a field given
        twice in one block, a ``retry`` that is not a number, invalid UTF-8 or JSON, or a
        block :class:`FeedEvent` rejects.
    """
    if format == "sse":
        return _parse_sse(lines, source)
    if format == "jsonl":
        return _parse_jsonl(lines, source)
    raise ValueError(f"format must be 'sse' or 'jsonl', got {format!r}")


def _parse_sse(lines: Iterable[bytes | str], source: str) -> Iterator[FeedEvent]:
    start = 0
    data: list[str] = []
    comments: list[str] = []
    single: dict[str, tuple[int, str]] = {}

    def block() -> FeedEvent:
        retry = single.get("retry")
        try:
            return FeedEvent(
                data="\n".join(data) if data else None,
                event=single["event"][1] if "event" in single else None,
                id=single["id"][1] if "id" in single else None,
                retry=int(retry[1]) if retry else None,
                comment="\n".join(comments) if comments else None,
                line=start,
            )
        except ValueError as exc:
            raise FeedError(source, start, str(exc)) from None

    for number, line in _lines(lines, source):
        if not line:
            if start:
                yield block()
                start = 0
                data.clear()
                comments.clear()
                single.clear()
            continue
        start = start or number
        if line.startswith(":"):
            comments.append(line[1:])
            continue
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")  # WHATWG: one leading space, no more
        if name == "data":
            data.append(value)
        elif name in ("event", "id", "retry"):
            if name in single:
                first = single[name][0]
                raise FeedError(
                    source,
                    number,
                    f"a second {name!r} field in one block (the first is on line {first}): "
                    "is a blank line missing?",
                )
            if name == "retry" and not _DIGITS.fullmatch(value):
                raise FeedError(
                    source, number, f"retry must be a number of milliseconds, got {value!r}"
                )
            single[name] = (number, value)
        elif line.startswith("{"):
            raise FeedError(
                source, number, "this looks like JSON: a JSON-lines feed needs the jsonl format"
            )
        else:
            raise FeedError(
                source,
                number,
                f"unknown field {name!r}: an SSE feed has data, event, id and retry fields "
                "and : comments",
            )
    if start:
        yield block()  # the end of the text ends the last block


def _parse_jsonl(lines: Iterable[bytes | str], source: str) -> Iterator[FeedEvent]:
    for number, line in _lines(lines, source):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FeedError(source, number, f"not JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise FeedError(source, number, f"a line must be a JSON object, got {line.strip()!r}")
        unknown = [key for key in obj if key not in _JSONL_KEYS]
        if unknown:
            raise FeedError(
                source,
                number,
                f"unknown key {unknown[0]!r}: the keys are {', '.join(_JSONL_KEYS)}",
            )
        values = {key: value for key, value in obj.items() if value is not None}
        data = values.get("data")
        if data is not None and not isinstance(data, str):
            data = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        event_id = values.get("id")
        if isinstance(event_id, int) and not isinstance(event_id, bool):
            event_id = str(event_id)
        retry = values.get("retry")
        if retry is not None and (not isinstance(retry, int) or isinstance(retry, bool)):
            raise FeedError(
                source, number, f"retry must be a whole number of milliseconds, got {retry!r}"
            )
        texts: dict[str, str | None] = {}
        for key, value in (
            ("event", values.get("event")),
            ("id", event_id),
            ("comment", values.get("comment")),
        ):
            if value is not None and not isinstance(value, str):
                wanted = "a string or a whole number" if key == "id" else "a string"
                raise FeedError(source, number, f"{key} must be {wanted}, got {value!r}")
            texts[key] = value
        try:
            yield FeedEvent(
                data=data,
                event=texts["event"],
                id=texts["id"],
                retry=retry,
                comment=texts["comment"],
                line=number,
            )
        except ValueError as exc:
            raise FeedError(source, number, str(exc)) from None


def feed_format_of(path: str | os.PathLike[str]) -> FeedFormat:
    """``"jsonl"`` for a ``.jsonl`` or ``.ndjson`` file name, else ``"sse"``."""
    return "jsonl" if os.fspath(path).lower().endswith(_JSONL_SUFFIXES) else "sse"


def load_feed(path: str | os.PathLike[str], format: FeedFormat | None = None) -> list[FeedEvent]:
    """
    The blocks of a feed file (see :func:`parse_feed`).

    :param format: None: ``"jsonl"`` for a name ending in ``.jsonl`` or ``.ndjson``, else
        ``"sse"``.
    :raises FeedError: the text is malformed (the message names the file and the line).
    :raises OSError: the file cannot be read.
    """
    with open(path, "rb") as file:
        return list(parse_feed(file, format or feed_format_of(path), source=os.fspath(path)))


class _Pending(enum.Enum):
    PENDING = "a block a live feed does not have yet"


class Feed:
    """
    Events to serve with ids, and to replay from where a reconnecting client left off.

    Every event (a block with data) has an id on the wire: its own, or, when it has none,
    its position among the feed's events (``"1"``, ``"2"``, ...). A client that reconnects
    with ``Last-Event-ID`` gets the feed from the block after that id; with no
    ``Last-Event-ID``, or an id the feed does not have, from the start.

    :param events: the blocks, in order (see :func:`parse_feed`, :func:`load_feed`).
    :param loop: when the blocks run out, start over, endlessly. The events are then
        numbered ``1``, ``2``, ``3``, ... across every pass (ids given in the blocks are not
        sent), so that ids stay unique and increasing and a resume finds its place.
    :param live: more blocks will come through :meth:`append`, until :meth:`finish`;
        a stream that has sent every block so far waits for the next one.
    :raises ValueError: two blocks would have the same id; a looped feed without events,
        or with an ``id``-only block.
    """

    def __init__(
        self, events: Iterable[FeedEvent] = (), *, loop: bool = False, live: bool = False
    ) -> None:
        self.loop = loop
        """Whether the feed starts over when its blocks run out."""
        self._cond = threading.Condition()
        self._items: list[FeedEvent] = []  # with the ids they have on the wire
        self._event_items: list[int] = []  # the index in _items of each event
        self._numbers: list[int | None] = []  # of each item: its number among the events
        self._by_id: dict[str, int] = {}  # first pass: wire id -> index in _items
        self._finished = False
        self._make: Callable[[int], FeedEvent] | None = None
        for event in events:
            self.append(event)
        if not live:
            self.finish()

    @classmethod
    def counter(cls) -> Feed:
        """An endless feed: event *n* (from 1) has id *n* and data *n*."""
        feed = cls(live=True)
        feed._finished = True
        feed._make = lambda n: FeedEvent(data=str(n), id=str(n))
        return feed

    @property
    def finished(self) -> bool:
        """Whether every block is known: a feed that is not ``live``, or :meth:`finish` ran."""
        with self._cond:
            return self._finished

    @property
    def events(self) -> list[FeedEvent]:
        """The blocks so far (one pass), with the ids they are sent with."""
        with self._cond:
            if self._make is not None:
                raise TypeError("an endless feed has no list of events")
            return list(self._items)

    def append(self, event: FeedEvent) -> None:
        """
        Add a block at the end of a ``live`` feed; waiting streams send it at once.

        :raises ValueError: its id is taken, or the feed would not be loopable.
        :raises RuntimeError: the feed is finished.
        """
        with self._cond:
            if self._finished:
                raise RuntimeError("the feed is finished: no more blocks")
            where = f" (line {event.line})" if event.line is not None else ""
            if event.is_event:
                number = len(self._event_items) + 1
                if self.loop or event.id is None:
                    event = dataclasses.replace(event, id=str(number))
                    given = f"event {number}{where} has no id of its own, so its id is {number}"
                else:
                    given = f"event {number}{where} has the id {event.id!r}"
            elif self.loop and event.id is not None:
                raise ValueError(
                    f"an id-only block{where} in a looped feed: a looped feed numbers its "
                    "events itself"
                )
            else:
                given = f"the block{where} has the id {event.id!r}"
            if event.id:  # an empty id resets the client's: nothing to resume from
                if event.id in self._by_id:
                    first = self._items[self._by_id[event.id]]
                    there = f" at line {first.line}" if first.line is not None else ""
                    raise ValueError(f"{given}, which the block{there} has already")
                self._by_id[event.id] = len(self._items)
            if event.is_event:
                self._event_items.append(len(self._items))
                self._numbers.append(len(self._event_items))
            else:
                self._numbers.append(None)
            self._items.append(event)
            self._cond.notify_all()

    def finish(self) -> None:
        """
        Mark a ``live`` feed complete (idempotent): streams that have sent everything end.

        :raises ValueError: a looped feed with no events.
        """
        with self._cond:
            if self._finished:
                return
            if self.loop and not self._event_items:
                raise ValueError("a looped feed needs at least one event")
            self._finished = True
            self._cond.notify_all()

    # -- what the feed handler reads -----------------------------------------------------

    def _start_index(self, last_event_id: str | None) -> int | None:
        """The index of the block after ``last_event_id``; None if it is not known."""
        if not last_event_id:
            return None
        with self._cond:
            if self._make is None and not self.loop:
                index = self._by_id.get(last_event_id)
                return None if index is None else index + 1
            if not _DIGITS.fullmatch(last_event_id) or int(last_event_id) < 1:
                return None
            number = int(last_event_id)
            if self._make is not None:
                return number
            if not self._event_items:
                return None
            passes, rank = divmod(number - 1, len(self._event_items))
            return passes * len(self._items) + self._event_items[rank] + 1

    def _get(self, index: int, timeout: float = 0.0) -> FeedEvent | _Pending | None:
        """
        The block at ``index`` (of the endless sequence when looped), None past the end of
        a finished feed, PENDING if a live feed does not have it within ``timeout``.
        """
        with self._cond:
            if self._make is not None:
                return self._make(index + 1)

            def known() -> bool:
                return index < len(self._items) or self._finished

            if not known() and (timeout <= 0 or not self._cond.wait_for(known, timeout)):
                return _Pending.PENDING
            if index < len(self._items):
                return self._items[index]
            if not self.loop:
                return None
            passes, at = divmod(index, len(self._items))
            item = self._items[at]
            number = self._numbers[at]
            if number is not None:
                item = dataclasses.replace(item, id=str(passes * len(self._event_items) + number))
            return item


def feed_handler(
    feed: Feed,
    *,
    interval: float = 0.0,
    heartbeat: float | None = None,
    retry: int | None = None,
    drop_after: int | None = None,
    drop: DropMode = "close",
    keep_open: bool = False,
    chunked: bool = True,
    chunk_size: int | None = None,
    drip: float | None = None,
    crlf: bool = False,
    bom: bool = False,
    headers: HeadersArg = None,
    log: Callable[[str], None] | None = None,
) -> Handler:
    """
    A handler that streams ``feed``, from the block after the request's ``Last-Event-ID``.

    Any method and path get the stream (a request body is read and ignored). Each stream
    starts with a BOM if ``bom``, then ``retry:`` if ``retry`` is given, then the blocks.

    :param interval: seconds between two events of a stream (the first goes at once).
    :param heartbeat: after this many seconds with nothing written, write a comment
        (``:heartbeat``), and again every ``heartbeat`` seconds of silence.
    :param retry: milliseconds, sent as ``retry:`` at the start of every stream.
    :param drop_after: end every stream after this many events, as ``drop`` says
        (``"close"``: the connection closes mid-body; ``"end"``; ``"abort"``: a reset).
    :param keep_open: when a finished feed runs out, keep the stream open (heartbeats go
        on) until the client leaves, instead of ending it in order.
    :param chunked: chunked framing, else close-delimited.
    :param chunk_size: write in pieces of this many bytes, each its own chunk (or write),
        cut whatever the event boundaries; blocks that are ready together are cut as one
        run of bytes, and the tail goes out before the stream waits.
    :param drip: write at most this many bytes per second (in pieces of ``chunk_size``
        bytes, one byte by default).
    :param crlf: end lines with CRLF instead of LF.
    :param bom: start each stream with a UTF-8 byte order mark.
    :param headers: extra response headers.
    :param log: called with a line of text when a stream starts and when it ends.
    """
    if interval < 0:
        raise ValueError(f"interval must be >= 0, got {interval}")
    if heartbeat is not None and heartbeat <= 0:
        raise ValueError(f"heartbeat must be > 0, got {heartbeat}")
    if drop_after is not None and drop_after < 1:
        raise ValueError(f"drop_after must be >= 1, got {drop_after}")
    if drop not in ("end", "close", "abort"):
        raise ValueError(f"drop must be 'end', 'close' or 'abort', got {drop!r}")
    eol = "\r\n" if crlf else "\n"
    options = _StreamOptions(
        interval=interval,
        heartbeat=heartbeat,
        drop_after=drop_after,
        drop=drop,
        keep_open=keep_open,
        chunked=chunked,
        chunk_size=chunk_size,
        drip=drip,
        eol=eol,
        opening=(_BOM if bom else b"") + (sse(retry=retry, eol=eol) if retry is not None else b""),
        beat=sse(comment="heartbeat", eol=eol),
        headers=header_pairs(headers),
        log=log,
    )

    def handler(conn: Conn) -> None:
        _FeedStream(conn, feed, options).run()

    return handler


@dataclass(frozen=True)
class _StreamOptions:
    interval: float
    heartbeat: float | None
    drop_after: int | None
    drop: DropMode
    keep_open: bool
    chunked: bool
    chunk_size: int | None
    drip: float | None
    eol: str
    opening: bytes
    beat: bytes
    headers: list[tuple[str, str | bytes]]
    log: Callable[[str], None] | None


class _FeedStream:
    """One connection of :func:`feed_handler`."""

    def __init__(self, conn: Conn, feed: Feed, options: _StreamOptions) -> None:
        self.conn = conn
        self.feed = feed
        self.options = options
        self.pacer = Pacer(conn, chunk_size=options.chunk_size, rate=options.drip)
        self.last_write = time.monotonic()
        self.sent_events = 0
        self.outcome = "the server stopped"

    def log(self, message: str) -> None:
        if self.options.log is not None:
            request = self.conn.request
            host, port = request.client_address
            self.options.log(f"{host}:{port} {request.method} {request.path} {message}")

    def run(self) -> None:
        last_event_id = self.conn.request.headers.get("last-event-id")
        start = self.feed._start_index(last_event_id)
        if not last_event_id:
            where = "from the start"
        elif start is None:
            where = f"from the start (Last-Event-ID {last_event_id!r} is not in the feed)"
        else:
            where = f"after Last-Event-ID {last_event_id!r}"
        self.log(f"-> 200 stream {where}")
        try:
            self.conn.send_head(200, self.options.headers, chunked=self.options.chunked)
            self.stream(start or 0)
        except OSError:
            self.outcome = "the client left"
            raise
        finally:
            self.log(f"closed after {self.sent_events} event(s): {self.outcome}")

    def stream(self, index: int) -> None:
        options = self.options
        if options.opening and not self.write(options.opening):
            return
        while True:
            item = self.feed._get(index)
            if item is _Pending.PENDING:
                if not self.idle(None, index):
                    return
                continue
            if item is None:  # the end of a finished feed
                self.pacer.flush()
                if options.keep_open:
                    self.outcome = "the feed ran out; kept open"
                    self.idle(None, None)
                else:
                    self.outcome = "ended: the feed ran out"
                    self.conn.end()
                return
            if item.is_event and self.sent_events and options.interval:
                if not self.idle(time.monotonic() + options.interval, None):
                    return
            if not self.write(item.encode(options.eol)):
                return
            index += 1
            if item.is_event:
                self.sent_events += 1
                if options.drop_after is not None and self.sent_events >= options.drop_after:
                    self.pacer.flush()
                    self.outcome = f"dropped ({options.drop})"
                    finish_as(self.conn, options.drop)
                    return

    def write(self, data: bytes) -> bool:
        written = self.pacer.write(data)
        self.last_write = time.monotonic()
        return written

    def idle(self, until: float | None, want: int | None) -> bool:
        """
        Wait until ``until`` (monotonic), or until the feed has block ``want``, or forever
        if neither is given, writing heartbeats; False if the stream is to stop.
        """
        if not self.pacer.flush():
            return False
        heartbeat = self.options.heartbeat
        while True:
            if want is not None and self.feed._get(want) is not _Pending.PENDING:
                return True
            now = time.monotonic()
            if until is not None and now >= until:
                return True
            if heartbeat is not None and now - self.last_write >= heartbeat:
                if not (self.write(self.options.beat) and self.pacer.flush()):
                    return False
                continue
            wait = _IDLE_CAP if until is None else min(_IDLE_CAP, until - now)
            if heartbeat is not None:
                wait = min(wait, self.last_write + heartbeat - now)
            if want is not None:
                self.feed._get(want, timeout=wait)  # wakes as soon as the block comes
                gone = self.conn.client_gone()
            else:
                gone = self.conn.wait_client_gone(wait)
            if self.conn.stopping.is_set():
                return False
            if gone:
                self.outcome = "the client left"
                return False
