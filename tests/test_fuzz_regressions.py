"""
Every input on which a fuzz target (``fuzz/``, ``make fuzz``) failed, run again through the
same checks, and the seed corpus too, so that the harness's properties hold in ``make test``
without atheris.
"""

from __future__ import annotations

import base64

import pytest

from fuzz.checks import check_chunked, check_parser, decode_input, encode_input
from fuzz.seeds import chunked_seeds, parser_seeds
from ld_eventsource._chunked import ChunkedDecoder, ChunkedEncodingError

# (what failed, the input as libFuzzer printed it in base64 or as made by encode_input)
CHUNKED_FAILURES = [
    # CR CR LF after a chunk's data was taken for its CRLF.
    ("cr-cr-lf-after-data", base64.b64decode("//8DAQANABgAOQ0KZGF0YTogYQ0KDQoyDQoNCg0NCg==")),
    # A chunk-size line over the 4,096-byte bound passed when its LF came in the same read,
    # and failed when it did not.
    (
        "long-size-line-in-one-read",
        encode_input(b"1;" + b"e" * 5000 + b"\r\nz\r\n0\r\n\r\n"),
    ),
    (
        "long-size-line-in-two-reads",
        encode_input(b"1;" + b"e" * 5000 + b"\r\nz\r\n0\r\n\r\n", cuts=[4500]),
    ),
]
PARSER_FAILURES: list[tuple[str, bytes]] = []


@pytest.mark.parametrize(
    "data", [d for _, d in CHUNKED_FAILURES], ids=[n for n, _ in CHUNKED_FAILURES]
)
def test_chunked_failure(data: bytes) -> None:
    check_chunked(data)


@pytest.mark.parametrize(
    "data",
    [d for _, d in PARSER_FAILURES] or [b""],
    ids=[n for n, _ in PARSER_FAILURES] or ["none"],
)
def test_parser_failure(data: bytes) -> None:
    check_parser(data)


def test_parser_seeds() -> None:
    seeds = parser_seeds()
    assert len(seeds) > 300
    for seed in seeds:
        check_parser(seed)


def test_chunked_seeds() -> None:
    seeds = chunked_seeds()
    assert len(seeds) > 100
    for seed in seeds:
        check_chunked(seed)


def test_input_format_round_trip() -> None:
    stream = b"data: abc\n\n"
    case = decode_input(encode_input(stream, options=0b0111_0110, param=7, cuts=[3, 5]))
    assert case.stream == stream
    assert case.last_event_id == "7"
    assert case.max_event_size == 3 + 7
    assert case.chunks == [b"", b"dat", b"", b"a:", b"", b" abc\n\n", b""]
    assert decode_input(b"").chunks == [b""]


def test_cr_must_be_followed_by_lf_after_chunk_data() -> None:
    for body in (b"2\r\nab\r\r\n0\r\n\r\n", b"2\r\nab\r\r"):
        with pytest.raises(ChunkedEncodingError, match="missing CRLF"):
            ChunkedDecoder().feed(body)
    decoder = ChunkedDecoder()
    assert decoder.feed(b"2\r\nab\r") == b"ab"
    with pytest.raises(ChunkedEncodingError, match="missing CRLF"):
        decoder.feed(b"\r\n0\r\n\r\n")


def test_size_line_bound_does_not_depend_on_reads() -> None:
    longest = b"1;" + b"e" * 4093 + b"\r"  # 4,096 bytes before the LF, CR included
    for line, ok in ((longest, True), (longest[:-1] + b"e\r", False)):
        body = line + b"\nz\r\n0\r\n\r\n"
        for cut in (0, 100, 4095, 4096, 4097, len(body)):
            decoder = ChunkedDecoder()
            if ok:
                assert decoder.feed(body[:cut]) + decoder.feed(body[cut:]) == b"z"
                assert decoder.done
            else:
                with pytest.raises(ChunkedEncodingError, match="too long"):
                    decoder.feed(body[:cut])
                    decoder.feed(body[cut:])
