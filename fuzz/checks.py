"""
The properties the fuzz targets check, without atheris: the regression tests run them too.

One fuzz input is decoded as (see :func:`decode_input`)::

    byte 0     options: bits 0-1 the initial last event id, bits 2-3 the size limit,
               bits 4-5 how the stream is split (cut points, byte by byte, byte by byte
               with empty chunks in between, cut points with empty chunks in between)
    byte 1     the size limit's parameter
    byte 2     n, the number of cut points (n % 33)
    2n bytes   the cut points, little-endian 16-bit, each taken modulo len(stream) + 1
    the rest   the stream (the parser's body bytes, or the chunked decoder's wire bytes)

so that the fuzzer chooses the split points as well as the bytes, and a seed is the stream
behind three zero bytes (one chunk, no options).

Properties:

* :func:`check_parser`: ``SSEParser`` never raises; an :class:`EventTooLargeError` is only
  ever the last item of a feed and then the only item of every later feed; without a size
  limit the items of any chunking equal those of one chunk and those of the naive model of
  the standard (``tests/parser_model.py``), last event id included; with a limit, every
  chunking agrees with the model as ``assert_within_limit`` documents.
* :func:`check_chunked`: ``ChunkedDecoder`` raises nothing but ``ChunkedEncodingError``; any
  chunking gives the one-chunk result; and both agree with :func:`reference_chunked`, a
  straightforward decoder of the whole body at once.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Final, NamedTuple

from ld_eventsource._chunked import ChunkedDecoder, ChunkedEncodingError
from ld_eventsource._parser import SSEParser
from ld_eventsource.actions import Event
from tests.parser_model import assert_within_limit, reference, run

__all__ = [
    "ChunkedResult",
    "FuzzInput",
    "check_chunked",
    "check_parser",
    "decode_input",
    "encode_input",
    "reference_chunked",
]

_LAST_IDS: Final = (None, "", "7", "é")
_MAX_CUTS: Final = 32


class FuzzInput(NamedTuple):
    """One decoded fuzz input."""

    last_event_id: str | None
    max_event_size: int | None
    """None: the parser's default limit (never reached by fuzz inputs)."""
    chunks: list[bytes]
    stream: bytes


def decode_input(data: bytes) -> FuzzInput:
    """Decodes ``data`` as the module docstring describes."""
    head = data[:3].ljust(3, b"\0")
    options, param, count = head[0], head[1], head[2] % (_MAX_CUTS + 1)
    raw_cuts = data[3 : 3 + 2 * count]
    stream = data[3 + 2 * count :]
    last_event_id = _LAST_IDS[options & 3]
    limit_kind = (options >> 2) & 3
    # Limits from 3 bytes up (a stream shorter than a BOM is held back uncounted), small ones
    # most of the time so that the fuzzer reaches them.
    max_event_size = (None, 3 + param % 61, 3 + param, 3 + param * 16)[limit_kind]
    split = (options >> 4) & 3
    if split in (1, 2):
        chunks = [stream[i : i + 1] for i in range(len(stream))]
    else:
        cuts = sorted(
            int.from_bytes(raw_cuts[i : i + 2], "little") % (len(stream) + 1)
            for i in range(0, len(raw_cuts) - 1, 2)
        )
        bounds = [0, *cuts, len(stream)]
        chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    if split in (2, 3):
        chunks = [piece for chunk in chunks for piece in (b"", chunk)] + [b""]
    return FuzzInput(last_event_id, max_event_size, chunks, stream)


def encode_input(
    stream: bytes,
    *,
    options: int = 0,
    param: int = 0,
    cuts: list[int] | tuple[int, ...] = (),
) -> bytes:
    """The fuzz input that :func:`decode_input` turns back into these settings."""
    if len(cuts) > _MAX_CUTS:
        raise ValueError(f"at most {_MAX_CUTS} cuts")
    encoded = b"".join((cut % 65536).to_bytes(2, "little") for cut in cuts)
    return bytes([options, param, len(cuts)]) + encoded + stream


# -- the parser -------------------------------------------------------------------------------


def check_parser(data: bytes) -> None:
    """Raises AssertionError (or whatever the parser raised) if a property fails."""
    case = decode_input(data)

    def parser() -> SSEParser:
        if case.max_event_size is None:
            return SSEParser(last_event_id=case.last_event_id)
        return SSEParser(max_event_size=case.max_event_size, last_event_id=case.last_event_id)

    one_parser = parser()
    one = run(one_parser, [case.stream])
    many_parser = parser()
    many = run(many_parser, case.chunks)
    unlimited = reference(case.stream, last_event_id=case.last_event_id)
    if case.max_event_size is None:
        assert one == unlimited.items, (one, unlimited.items)
        assert one_parser.last_event_id == unlimited.last_event_id
        assert many == one, (many, one)
        assert many_parser.last_event_id == one_parser.last_event_id
    else:
        limited = reference(
            case.stream, last_event_id=case.last_event_id, max_event_size=case.max_event_size
        ).items
        assert_within_limit(one, limited, unlimited.items)
        assert_within_limit(many, limited, unlimited.items)
    # After end(), whatever state the stream left (a partial BOM, a CR, an error), the parser
    # still parses, or still reports its error.
    for used in (one_parser, many_parser):
        items = used.feed(b"\n\ndata:x\n\n")
        if one and one[-1][0] == "EventTooLargeError":
            assert len(items) == 1 and items[0].__class__.__name__ == "EventTooLargeError"
        elif case.max_event_size is None or case.max_event_size >= 8:
            assert items == [Event("message", "x", None, used.last_event_id)], items


# -- the chunked decoder ----------------------------------------------------------------------

_HEX_DIGITS: Final = b"0123456789abcdefABCDEF"
MAX_SIZE_LINE: Final = 4096
"""The decoder's bound on a chunk-size line (extensions and CR included, LF excluded)."""


class ChunkedResult(NamedTuple):
    """What decoding a body gave: the payload, whether the last chunk came, and any error."""

    payload: bytes
    done: bool
    error: bool


def reference_chunked(body: bytes) -> ChunkedResult:
    """
    A straightforward decoder of a whole chunked body (RFC 9112, section 7.1), with the
    tolerances the client documents:

    * a chunk-size line ends with CRLF or a bare LF, is at most 4,096 bytes (CR included),
      and is ``chunk-size [ ; chunk-ext ]`` with ASCII whitespace allowed around the size;
      the size is 1 to 16 hexadecimal digits;
    * the data of a chunk is followed by CRLF or a bare LF;
    * after the last chunk (size 0) nothing more is read (trailers are of no use).

    A body that stops before its last chunk is not an error here (more may come): the
    payload is what arrived, the data of an unfinished chunk included. An error means the
    bytes so far break the framing; ``payload`` is then what came before the error.
    """
    out: list[bytes] = []
    pos = 0
    while True:
        eol = body.find(b"\n", pos)
        line = body[pos:] if eol < 0 else body[pos:eol]
        if len(line) > MAX_SIZE_LINE:
            return ChunkedResult(b"".join(out), False, True)
        if eol < 0:
            return ChunkedResult(b"".join(out), False, False)
        if line.endswith(b"\r"):
            line = line[:-1]
        size_text = line.split(b";", 1)[0].strip()
        if not (1 <= len(size_text) <= 16) or any(
            c not in b"0123456789abcdefABCDEF" for c in size_text
        ):
            return ChunkedResult(b"".join(out), False, True)
        size = int(size_text, 16)
        pos = eol + 1
        if size == 0:
            return ChunkedResult(b"".join(out), True, False)
        data = body[pos : pos + size]
        out.append(data)
        pos += len(data)
        if len(data) < size:
            return ChunkedResult(b"".join(out), False, False)
        after = body[pos : pos + 2]
        if after.startswith(b"\n"):
            pos += 1
        elif after == b"\r\n":
            pos += 2
        elif after in (b"", b"\r"):
            return ChunkedResult(b"".join(out), False, False)  # the rest has yet to come
        else:
            return ChunkedResult(b"".join(out), False, True)


def decode_chunks(chunks: list[bytes]) -> ChunkedResult:
    """``ChunkedDecoder`` fed ``chunks`` one by one; the payload of every feed before an error
    (a feed that meets broken framing after some payload returns that payload and sets
    ``error``; one that meets it before any raises)."""
    decoder = ChunkedDecoder()
    out: list[bytes] = []
    for index, chunk in enumerate(chunks):
        try:
            payload = decoder.feed(chunk)
        except ChunkedEncodingError:
            return ChunkedResult(b"".join(out), decoder.done, True)
        assert isinstance(payload, bytes)
        out.append(payload)
        if decoder.error is not None:
            # The framing broke after this payload: the next feed raises the error.
            with contextlib.suppress(ChunkedEncodingError):
                decoder.feed(b"")
                raise AssertionError("a decoder with an error fed on without raising it")
            return ChunkedResult(b"".join(out), decoder.done, True)
        if decoder.done:
            # Nothing more comes out, whatever follows.
            assert all(decoder.feed(rest) == b"" for rest in chunks[index + 1 :])
            break
    return ChunkedResult(b"".join(out), decoder.done, False)


def check_chunked(data: bytes) -> None:
    """Raises AssertionError (or what the decoder raised) if a property fails."""
    case = decode_input(data)
    expected = reference_chunked(case.stream)
    one = decode_chunks([case.stream])
    many = decode_chunks(case.chunks)
    if expected.error:
        # A feed that fails returns nothing, so what came out is a prefix of the payload
        # before the error.
        assert one.error, (one, expected)
        assert many.error, (many, expected)
        assert expected.payload.startswith(one.payload), (one, expected)
        assert expected.payload.startswith(many.payload), (many, expected)
    else:
        assert one == expected, (one, expected)
        assert many == expected, (many, expected)
