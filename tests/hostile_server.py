"""
Hostile response scripts for :class:`tests.sse_server.SSEServer`, and a measure of the
process's peak memory.

Every endless script here is bounded all the same (by a byte budget and by the server's
``stopping``), so that a client that fails to stop makes its test fail, never the machine
run out of memory or the run hang.
"""

from __future__ import annotations

import contextlib
import re
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Final

from ld_eventsource.testing import Conn, Handler

__all__ = [
    "BUDGET",
    "PeakRSS",
    "endless",
    "compressed_pieces",
    "flushing_compressor",
    "peak_rss",
    "raw_handler",
]

BUDGET: Final = 256 * 1024 * 1024
"""What an endless script sends at most: far more than any limit under test."""


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        match = re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {field} in /proc/self/status")
    return int(match.group(1))


class PeakRSS:
    """The growth of the process's resident memory over a block, in bytes: :attr:`growth`."""

    def __init__(self) -> None:
        self.before = 0
        self.peak = 0
        self._stop = threading.Event()
        self._hwm = False
        self._sampler: threading.Thread | None = None

    @property
    def growth(self) -> int:
        """Peak resident memory during the block minus resident memory before it."""
        return max(0, self.peak - self.before)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _status_kib("VmRSS") * 1024)

    def start(self) -> None:
        """Starts measuring."""
        self.before = _status_kib("VmRSS") * 1024
        try:
            # Linux: writing 5 resets the peak (VmHWM) to the current RSS, so VmHWM at
            # the end is the exact peak of the block.
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")
            self._hwm = True
        except OSError:
            self._hwm = False
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        self.peak = self.before

    def stop(self) -> None:
        """Stops measuring."""
        if self._hwm:
            self.peak = max(self.peak, _status_kib("VmHWM") * 1024)
        else:
            self._stop.set()
            if self._sampler is not None:
                self._sampler.join(5)
            self.peak = max(self.peak, _status_kib("VmRSS") * 1024)


@contextlib.contextmanager
def peak_rss() -> Iterator[PeakRSS]:
    """Measures the peak resident memory of the block (``with peak_rss() as rss:``)."""
    measure = PeakRSS()
    measure.start()
    try:
        yield measure
    finally:
        measure.stop()


def endless(
    conn: Conn, piece: bytes | Callable[[], bytes], *, budget: int = BUDGET, raw: bool = False
) -> None:
    """
    Sends ``piece`` (or what it returns, each time) again and again, as chunks (or ``raw``),
    until the client goes away, the server stops, or ``budget`` bytes went out.
    """
    sent = 0
    while sent < budget and not conn.stopping.is_set():
        data = piece() if callable(piece) else piece
        if raw:
            conn.send_raw(data)
        else:
            conn.send(data)
        sent += len(data)


def flushing_compressor(coding: str) -> Callable[[bytes], bytes]:
    """
    One stream in the content coding ``coding`` (``gzip``, ``deflate``, ``br`` or
    ``zstd``): each call returns the compressed bytes of what it is given, flushed, so that
    the receiver can decode all of it at once.
    """
    if coding in ("gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if coding == "gzip" else zlib.MAX_WBITS
        z = zlib.compressobj(9, zlib.DEFLATED, wbits)
        return lambda data: z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    if coding == "br":
        import brotli

        b = brotli.Compressor(quality=5)
        return lambda data: b.process(data) + b.flush()
    if coding == "zstd":
        import zstandard

        zs = zstandard.ZstdCompressor().compressobj()
        return lambda data: zs.compress(data) + zs.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    raise ValueError(f"unknown coding {coding!r}")


def compressed_pieces(coding: str, block: bytes, first: bytes = b"") -> Callable[[], bytes]:
    """
    Pieces of one endless stream in ``coding`` of ``first`` and then ``block`` again and
    again: each call returns the compressed bytes of one more copy, flushed, so that a small
    wire carries a huge body.
    """
    compress = flushing_compressor(coding)
    head = [first]

    def piece() -> bytes:
        return compress(head.pop() + block if head else block)

    return piece


def raw_handler(script: Callable[[Conn], None]) -> Handler:
    """A handler that writes the whole response itself (head included) with ``send_raw``."""

    def handler(conn: Conn) -> None:
        script(conn)
        conn.close()

    return handler
