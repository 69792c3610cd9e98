"""
Every input on which a fuzz target (``fuzz/``, ``make fuzz``) failed, run again through the
same checks, and the seed corpus too, so that the harness's properties hold in ``make test``
without atheris.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.checks import check_chunked, check_parser, decode_input, encode_input
from fuzz.seeds import chunked_seeds, parser_seeds
from ld_eventsource._chunked import ChunkedDecoder, ChunkedEncodingError

# Every input a target failed on, as libFuzzer wrote it (named by target and kind: a crash is
# a property that failed, a timeout an input that took over 10 s). What each one found:
#   chunked-crash-0868dbd4...    CR CR LF after a chunk's data was taken for its CRLF
#   chunked-timeout-ba1b4ffa...  the harness re-fed every chunk after the last one, once per
#                                chunk (quadratic); not a decoder bug
ARTIFACTS = Path(__file__).parent / "fuzz_regressions"
CHECKS = {"parser": check_parser, "chunked": check_chunked}

# Found by reading, not by the fuzzer (its inputs stayed under 4 KiB in the first runs): a
# chunk-size line over the 4,096-byte bound passed when its LF came in the same read, and
# failed when it did not.
LONG_SIZE_LINE = b"1;" + b"e" * 5000 + b"\r\nz\r\n0\r\n\r\n"
MADE = {
    "long-size-line-in-one-read": encode_input(LONG_SIZE_LINE),
    "long-size-line-in-two-reads": encode_input(LONG_SIZE_LINE, cuts=[4500]),
}


@pytest.mark.parametrize("path", sorted(ARTIFACTS.iterdir()), ids=lambda p: p.name)
def test_artifact(path: Path) -> None:
    CHECKS[path.name.split("-", 1)[0]](path.read_bytes())


@pytest.mark.parametrize("data", list(MADE.values()), ids=list(MADE))
def test_made_chunked_input(data: bytes) -> None:
    check_chunked(data)


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
        # The payload before the broken framing comes out first; the error with the next feed.
        broken = ChunkedDecoder()
        assert broken.feed(body) == b"ab"
        with pytest.raises(ChunkedEncodingError, match="missing CRLF"):
            broken.feed(b"")
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
