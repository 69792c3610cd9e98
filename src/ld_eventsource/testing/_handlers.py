"""Ready-made handlers, and the paced writer they share with the feed handler."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable
from typing import Literal

from ld_eventsource.testing._server import (
    Conn,
    Handler,
    HeadersArg,
    finish_as,
    header_pairs,
    status_handler,
)
from ld_eventsource.testing._wire import encode

__all__ = [
    "Pacer",
    "events_handler",
    "redirect_handler",
    "sequence_handler",
    "status_handler",
]


class Pacer:
    """
    Writes a body to a :class:`Conn` in pieces of ``chunk_size`` bytes, each its own chunk
    (or write), whatever the event boundaries: the bytes of successive writes are cut at
    every ``chunk_size`` bytes, the short tail held back until :meth:`flush` (which the
    writer calls before it waits). At most ``rate`` bytes per second, ``limit`` in all.
    """

    def __init__(
        self,
        conn: Conn,
        *,
        chunk_size: int | None = None,
        rate: float | None = None,
        limit: int | None = None,
    ) -> None:
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be > 0 bytes per second, got {rate}")
        if limit is not None and limit < 0:
            raise ValueError(f"the byte limit must be >= 0, got {limit}")
        self._conn = conn
        # Paced without a piece size: byte by byte, so that the rate shows on the wire.
        self._size = chunk_size if chunk_size is not None else (1 if rate else None)
        self._rate = rate
        self._left = limit
        self._held = b""
        self._start = time.monotonic()
        self.sent = 0
        """How many body bytes were written."""

    def write(self, data: bytes | str) -> bool:
        """
        Write ``data`` (all but a short tail when pieces are sized); False if the byte limit
        cut it short (what it kept is flushed), or the server stopped while a paced write
        waited: the caller stops writing.
        """
        payload = encode(data)
        cut = False
        if self._left is not None:
            payload, cut = payload[: self._left], len(payload) > self._left
            self._left -= len(payload)
        if self._size is None:
            written = self._send(payload)
        else:
            payload = self._held + payload
            whole = len(payload) - len(payload) % self._size
            self._held = payload[whole:]
            written = all(
                self._send(payload[i : i + self._size]) for i in range(0, whole, self._size)
            )
        if cut:
            self.flush()
        return written and not cut

    def flush(self) -> bool:
        """Write the tail held back; False if the server stopped while it waited."""
        held, self._held = self._held, b""
        return self._send(held)

    def _send(self, piece: bytes) -> bool:
        if not piece:
            return True
        self._conn.send(piece)
        self.sent += len(piece)
        if self._rate is not None:
            # An absolute schedule: short sleeps the timer rounds up do not add up.
            due = self._start + self.sent / self._rate - time.monotonic()
            if due > 0:
                return self._conn.sleep(due)
        return True


def events_handler(
    blocks: Iterable[bytes | str],
    *,
    chunked: bool = True,
    then: Literal["end", "close", "hang", "abort"] = "end",
    headers: HeadersArg = None,
    status: int = 200,
    content_type: str | None = "text/event-stream",
    delay: float = 0.0,
    chunk_size: int | None = None,
    drop_at: int | None = None,
) -> Handler:
    """
    A handler that sends a head (``status``, ``content_type``, ``headers``), then the
    ``blocks`` (see :func:`sse`), each as its own chunk (or write, when not ``chunked``)
    after ``delay`` seconds, and then: ``"end"`` ends the response in order, ``"close"``
    closes the connection mid-body (no terminating chunk), ``"abort"`` resets it,
    ``"hang"`` keeps it open, silent, until the client goes away or the server stops.

    :param chunk_size: write the body in pieces of this many bytes, each its own chunk (or
        write), cut whatever the block boundaries (the tail of a block is written before a
        ``delay``): the splits a client must reassemble.
    :param drop_at: stop after this many body bytes (counted before chunk framing), even in
        the middle of an event, and finish as ``then`` says (``"close"``: a drop there).
    """
    if then not in ("end", "close", "hang", "abort"):
        raise ValueError(f"then must be 'end', 'close', 'hang' or 'abort', got {then!r}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if drop_at is not None and drop_at < 0:
        raise ValueError(f"drop_at must be >= 0, got {drop_at}")
    block_list = [encode(block) for block in blocks]
    header_list = header_pairs(headers)

    def handler(conn: Conn) -> None:
        conn.send_head(status, header_list, content_type=content_type, chunked=chunked)
        pacer = Pacer(conn, chunk_size=chunk_size, limit=drop_at)
        for block in block_list:
            if delay and not (pacer.flush() and conn.sleep(delay)):
                return
            if not pacer.write(block):
                break
        pacer.flush()
        if then == "hang":
            while not conn.stopping.is_set():
                if conn.wait_client_gone(60):
                    return
        else:
            finish_as(conn, then)

    return handler


def redirect_handler(location: str | None, status: int = 307) -> Handler:
    """
    A handler that redirects to ``location`` (a path on this server or a URL; None: a
    redirect with no ``Location``, which a client must reject).
    """
    headers: list[tuple[str, str | bytes]] = [("Content-Length", "0")]
    if location is not None:
        headers.append(("Location", location))

    def handler(conn: Conn) -> None:
        conn.send_head(status, headers, content_type=None, chunked=False)
        conn.end()

    return handler


def sequence_handler(*handlers: Handler) -> Handler:
    """
    A handler that serves the n-th request with the n-th handler, then repeats the last:
    ``sequence_handler(status_handler(503), events_handler([...]))`` fails the first
    request and streams on every later one.
    """
    if not handlers:
        raise ValueError("sequence_handler needs at least one handler")
    lock = threading.Lock()
    served = itertools.count()

    def handler(conn: Conn) -> None:
        with lock:
            index = next(served)
        handlers[min(index, len(handlers) - 1)](conn)

    return handler
