"""
The content codings that the client undoes itself for both transports, in pieces of
bounded size: ``gzip`` and ``deflate`` always, ``br`` when ``brotli`` (or ``brotlicffi``) 1.2
or later is installed, ``zstd`` when ``zstandard`` is.

urllib3 and aiohttp would decompress too, but some of their releases decompress a whole read
at once, and gzip shrinks a run of the same byte about a thousand times (brotli and zstd far
more): a 64 KiB read of a hostile stream would become 64 MiB in memory before the parser
could say that the event is too large. Here every piece handed to the parser is at most
:data:`PIECE` bytes, and nothing more is decompressed until the parser asked for it.

Each piece comes out as soon as its compressed bytes have arrived: a server that flushes
its compressor after each event has each event delivered at once.
"""

from __future__ import annotations

import importlib.util
import zlib
from collections.abc import Iterator
from typing import Any, Final

from ld_eventsource.errors import HTTPProtocolError

__all__ = ["ACCEPT_ENCODING", "CODINGS", "PIECE", "Decompressor"]

PIECE: Final = 65536
"""The most bytes one piece of decompressed body holds."""


def _brotli() -> Any:
    """The brotli module, if one that can bound its output is installed (1.2 or later)."""
    for name in ("brotli", "brotlicffi"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        if hasattr(getattr(module, "Decompressor", None), "can_accept_more_data"):
            return module
    return None


def _zstandard() -> Any:
    """The zstandard module, imported on the first zstd stream (it takes some 15 ms)."""
    import zstandard

    return zstandard


_BROTLI: Final = _brotli()
_HAS_ZSTANDARD: Final = importlib.util.find_spec("zstandard") is not None

CODINGS: Final = frozenset(
    {"gzip", "x-gzip", "deflate"}
    | ({"br"} if _BROTLI is not None else set())
    | ({"zstd"} if _HAS_ZSTANDARD else set())
)
"""The content codings the clients undo (``identity`` aside)."""

ACCEPT_ENCODING: Final = ", ".join(
    ["gzip", "deflate"]
    + (["br"] if _BROTLI is not None else [])
    + (["zstd"] if _HAS_ZSTANDARD else [])
)
"""What both clients ask for (``Accept-Encoding``) unless the caller's headers say."""

# zstd: the largest window a stream may use (RFC 9659: 8 MiB for the "zstd" coding), and
# the compressed bytes given to the decoder at once. zstandard has no bound on what one call
# returns; one block of at most 128 KiB takes 4 bytes or more, so 128 bytes make at most
# 4 MiB, cut into pieces of PIECE.
_ZSTD_WINDOW: Final = 8 * 1024 * 1024
_ZSTD_INPUT: Final = 128


class Decompressor:
    """Feed it the body as it arrives; it yields the decompressed body in bounded pieces."""

    __slots__ = ("_coding", "_obj")

    def __init__(self, coding: str):
        self._coding = coding
        self._obj: Any = None

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decompressed bytes of ``data``, lazily, in pieces of at most :data:`PIECE`."""
        if self._coding == "br":
            pieces = self._brotli(data)
        elif self._coding == "zstd":
            pieces = self._zstd(data)
        else:
            pieces = self._zlib(data)
        try:
            yield from pieces
        except HTTPProtocolError:
            raise
        except Exception as e:  # zlib.error, brotli.error, zstandard.ZstdError
            raise HTTPProtocolError(f"invalid {self._coding} body: {e}") from None

    def _new_zlib(self, first: int) -> zlib._Decompress:
        if self._coding == "deflate":
            # RFC 9110 says zlib format; some servers send raw deflate: the first byte of a
            # zlib stream names the method (8, deflate) in its low bits.
            return zlib.decompressobj(zlib.MAX_WBITS if first & 0x0F == 8 else -zlib.MAX_WBITS)
        return zlib.decompressobj(16 + zlib.MAX_WBITS)

    def _zlib(self, data: bytes) -> Iterator[bytes]:
        while data:
            obj = self._obj
            if obj is None:
                obj = self._obj = self._new_zlib(data[0])
            piece = obj.decompress(data, PIECE)
            while True:
                if piece:
                    yield piece
                tail = obj.unconsumed_tail
                if not tail:
                    break
                piece = obj.decompress(tail, PIECE)
            # A gzip body may hold several members one after the other.
            data = obj.unused_data if obj.eof else b""
            if obj.eof:
                self._obj = None

    def _brotli(self, data: bytes) -> Iterator[bytes]:
        obj = self._obj
        if obj is None:
            obj = self._obj = _BROTLI.Decompressor()
        if obj.is_finished():
            if data:
                raise HTTPProtocolError("invalid br body: bytes after the end of the stream")
            return
        # brotli stops growing its output once past the limit: a little more than it.
        # It may hold output back after a full buffer even once it can take input again:
        # asked for more until it gives nothing.
        out = obj.process(data, output_buffer_limit=PIECE)
        while out or not obj.can_accept_more_data():
            yield from _cut(out)
            out = obj.process(b"", output_buffer_limit=PIECE)

    def _zstd(self, data: bytes) -> Iterator[bytes]:
        for start in range(0, len(data), _ZSTD_INPUT):
            obj = self._obj
            if obj is None:
                obj = self._obj = (
                    _zstandard().ZstdDecompressor(max_window_size=_ZSTD_WINDOW).decompressobj()
                )
            yield from _cut(obj.decompress(data[start : start + _ZSTD_INPUT]))
            if obj.eof:
                # Frames may follow one another, as gzip members do.
                rest = obj.unused_data
                self._obj = None
                if rest:
                    yield from self._zstd(rest + data[start + _ZSTD_INPUT :])
                    return


def _cut(out: bytes) -> Iterator[bytes]:
    """``out`` in pieces of at most :data:`PIECE` (none if it is empty)."""
    if len(out) <= PIECE:
        if out:
            yield out
        return
    view = memoryview(out)
    for offset in range(0, len(out), PIECE):
        yield bytes(view[offset : offset + PIECE])
