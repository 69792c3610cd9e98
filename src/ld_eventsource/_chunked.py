"""
A sans-I/O decoder of HTTP/1.1 chunked transfer coding (RFC 9112, section 7.1).

The sync transport reads the socket in large pieces and undoes the framing here, so that one
read of 64 KiB holding hundreds of small chunks (a server that flushes every event) costs one
call instead of three reads per chunk.
"""

from __future__ import annotations

from typing import Final

from ld_eventsource.errors import HTTPProtocolError

__all__ = ["ChunkedDecoder", "ChunkedEncodingError"]

_MAX_SIZE_LINE: Final = 4096  # chunk-size line, extensions included
_HEX: Final = b"0123456789abcdefABCDEF"


class ChunkedEncodingError(HTTPProtocolError):
    """The response body broke the chunked framing, or ended before its last chunk."""


class ChunkedDecoder:
    """Feed it the body bytes as they arrive; it returns the payload they carry."""

    __slots__ = ("_crlf", "_left", "_line", "done", "error")

    def __init__(self) -> None:
        self._left = 0  # payload bytes of the current chunk still to come
        self._crlf = 0  # bytes of the CRLF after the current chunk still to skip
        self._line = b""  # a chunk-size line cut by the end of a read
        self.done = False
        """Whether the last chunk (size 0) has been seen: the body is complete."""
        self.error: ChunkedEncodingError | None = None
        """The framing error met, once met: the payload before it was returned first."""

    def feed(self, data: bytes) -> bytes:
        """
        The payload in ``data``, joined; raises :class:`ChunkedEncodingError`. When the
        framing breaks after some payload, that payload is returned, :attr:`error` is set,
        and the next call raises it.
        """
        if self.error is not None:
            raise self.error
        if self.done:
            return b""
        out: list[bytes] = []
        try:
            self._feed(data, out)
        except ChunkedEncodingError as e:
            self.error = e
            if not out:
                raise
        return out[0] if len(out) == 1 else b"".join(out)

    def _feed(self, data: bytes, out: list[bytes]) -> None:
        if self._line:
            data = self._line + data
            self._line = b""
        pos = 0
        end = len(data)
        left = self._left
        crlf = self._crlf
        while pos < end:
            if left:
                stop = pos + left
                if stop >= end:
                    out.append(data[pos:] if pos else data)
                    left = stop - end
                    pos = end
                    if left:
                        break
                    crlf = 2
                    continue
                out.append(data[pos:stop])
                left = 0
                if data.startswith(b"\r\n", stop):  # the usual case, in one step
                    pos = stop + 2
                    crlf = 0
                else:
                    pos = stop
                    crlf = 2
                    continue
            if crlf:
                # The CRLF that closes a chunk's data: a bare LF is tolerated, but a CR must be
                # followed by LF ("\r\r\n" is broken framing).
                while crlf and pos < end:
                    byte = data[pos]
                    if byte == 10:
                        crlf = 0
                    elif byte == 13 and crlf == 2:
                        crlf = 1
                    else:
                        raise ChunkedEncodingError("missing CRLF after chunk data")
                    pos += 1
                continue
            eol = data.find(b"\n", pos)
            if eol < 0:
                self._line = data[pos:]
                if len(self._line) > _MAX_SIZE_LINE:
                    raise ChunkedEncodingError("chunk-size line too long")
                break
            if eol - pos > _MAX_SIZE_LINE:
                # The same bound whether or not the line ended within this read.
                raise ChunkedEncodingError("chunk-size line too long")
            head = data[pos : eol - 1] if eol > pos and data[eol - 1] == 13 else data[pos:eol]
            pos = eol + 1
            try:
                # chunk-size = 1*HEXDIG; int() alone would also take "0x10", "+5", "1_0"
                # or spaces, hence the check of what it parsed.
                size = int(head, 16)
                if size < 0 or len(head) > 16 or head.strip(_HEX):
                    raise ValueError
            except ValueError:
                # chunk-ext: ";name=value" after the size, with optional whitespace.
                head = head.split(b";", 1)[0].strip()
                if not head or len(head) > 16 or head.strip(_HEX):
                    raise ChunkedEncodingError(f"invalid chunk size {head[:20]!r}") from None
                size = int(head, 16)
            if size == 0:
                self.done = True  # trailers, if any, are of no use to an event stream
                break
            left = size
        self._left = left
        self._crlf = crlf
