"""
The ``gzip`` and ``deflate`` content codings, undone by the client itself for both
transports, in pieces of bounded size.

urllib3 and aiohttp would decompress too, but some of their releases decompress a whole read
at once, and gzip shrinks a run of the same byte about a thousand times: a 64 KiB read of a
hostile stream would become 64 MiB in memory before the parser could say that the event is
too large. Here every piece handed to the parser is at most :data:`PIECE` bytes, and nothing
more is decompressed until the parser asked for it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Final

from ld_eventsource.errors import HTTPProtocolError

__all__ = ["ACCEPT_ENCODING", "CODINGS", "PIECE", "Decompressor"]

PIECE: Final = 65536
"""The most bytes one piece of decompressed body holds."""

CODINGS: Final = frozenset({"gzip", "x-gzip", "deflate"})
"""The content codings the clients undo (``identity`` aside)."""

ACCEPT_ENCODING: Final = "gzip, deflate"
"""What the async client asks for (aiohttp asks for more when optional packages exist)."""


class Decompressor:
    """Feed it the body as it arrives; it yields the decompressed body in bounded pieces."""

    __slots__ = ("_coding", "_zlib")

    def __init__(self, coding: str):
        self._coding = coding
        self._zlib: zlib._Decompress | None = None

    def _new(self, first: int) -> zlib._Decompress:
        if self._coding == "deflate":
            # RFC 9110 says zlib format; some servers send raw deflate: the first byte of a
            # zlib stream names the method (8, deflate) in its low bits.
            return zlib.decompressobj(zlib.MAX_WBITS if first & 0x0F == 8 else -zlib.MAX_WBITS)
        return zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decompressed bytes of ``data``, lazily, in pieces of at most :data:`PIECE`."""
        while data:
            obj = self._zlib
            if obj is None:
                obj = self._zlib = self._new(data[0])
            try:
                piece = obj.decompress(data, PIECE)
                while True:
                    if piece:
                        yield piece
                    tail = obj.unconsumed_tail
                    if not tail:
                        break
                    piece = obj.decompress(tail, PIECE)
            except zlib.error as e:
                raise HTTPProtocolError(f"invalid {self._coding} body: {e}") from None
            # A gzip body may hold several members one after the other.
            data = obj.unused_data if obj.eof else b""
            if obj.eof:
                self._zlib = None
