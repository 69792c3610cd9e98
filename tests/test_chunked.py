"""The chunked transfer decoder of the sync transport."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ld_eventsource._chunked import ChunkedDecoder, ChunkedEncodingError


def frame(pieces: list[bytes], *, ext: bool = False, upper: bool = False) -> bytes:
    out = b""
    for piece in pieces:
        size = f"{len(piece):X}" if upper else f"{len(piece):x}"
        out += size.encode() + (b";name=value" if ext else b"") + b"\r\n" + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def decode_in(splits: list[int], body: bytes) -> tuple[bytes, bool]:
    decoder = ChunkedDecoder()
    out = b""
    last = 0
    for cut in [*splits, len(body)]:
        out += decoder.feed(body[last:cut])
        last = cut
    return out, decoder.done


BODY = frame([b"data: a\n\n", b"x" * 300, b"\r\n\r\n", b"id: 1\n"], ext=True)
PAYLOAD = b"data: a\n\n" + b"x" * 300 + b"\r\n\r\n" + b"id: 1\n"


@pytest.mark.parametrize("cut", range(len(BODY) + 1))
def test_every_split_point(cut: int) -> None:
    assert decode_in([cut], BODY) == (PAYLOAD, True)


def test_byte_by_byte() -> None:
    assert decode_in(list(range(1, len(BODY))), BODY) == (PAYLOAD, True)


@given(
    st.lists(st.binary(min_size=1, max_size=200), max_size=20),
    st.lists(st.integers(min_value=0, max_value=5000), max_size=10),
    st.booleans(),
)
def test_any_chunking_of_any_body(pieces: list[bytes], cuts: list[int], upper: bool) -> None:
    body = frame(pieces, upper=upper)
    splits = sorted({c for c in cuts if c < len(body)})
    assert decode_in(splits, body) == (b"".join(pieces), True)


def test_bare_lf_line_endings_are_tolerated() -> None:
    assert decode_in([], b"3\nabc\n0\n\n") == (b"abc", True)


def test_nothing_after_the_last_chunk() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"1\r\na\r\n0\r\n\r\nGARBAGE") == b"a"
    assert decoder.done
    assert decoder.feed(b"more") == b""


BROKEN = [
    b"zz\r\n",
    b"\r\n",
    b"-1\r\n",
    b"1_0\r\nx",
    b"0x10\r\n",
    b"3\r\nabcXY",
    b"f" * 20 + b"\r\n",
]


@pytest.mark.parametrize("body", BROKEN)
def test_broken_framing(body: bytes) -> None:
    decoder = ChunkedDecoder()
    with pytest.raises(ChunkedEncodingError):
        decoder.feed(body)
        decoder.feed(b"")


def test_the_payload_before_broken_framing_comes_first() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"3\r\nabc\r\nzz\r\n") == b"abc"
    assert isinstance(decoder.error, ChunkedEncodingError)
    with pytest.raises(ChunkedEncodingError, match="invalid chunk size"):
        decoder.feed(b"1\r\nx\r\n")


def test_endless_size_line_is_bounded() -> None:
    decoder = ChunkedDecoder()
    with pytest.raises(ChunkedEncodingError, match="too long"):
        for _ in range(10):
            decoder.feed(b"1" * 1000)


def test_size_line_at_the_start_of_a_read_after_a_cr() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"3\r\nabc\r") == b"abc"
    with pytest.raises(ChunkedEncodingError):
        decoder.feed(b"\n\nx\r")
