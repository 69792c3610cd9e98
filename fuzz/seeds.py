"""
The seed corpus of both fuzz targets, made from the inputs of the tests: every row of the
parser's tables (tests/test_parser.py) and every body of the chunked decoder's tests
(tests/test_chunked.py), whole, byte by byte and with a few cut points, plus a few inputs
that reach the parser's paths for long lines, many data lines and the size limit.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fuzz.checks import encode_input

__all__ = ["chunked_seeds", "parser_seeds", "write_seeds"]

_BYTE_BY_BYTE = 0x10
_LAST_IDS = {None: 0, "": 1, "7": 2}


def _parser_streams() -> list[tuple[bytes, int, int]]:
    """(stream, options, param) of every table row, plus the long-input paths."""
    from ld_eventsource._parser import DEFAULT_MAX_EVENT_SIZE
    from tests.test_parser import ALL_CASES, TOKENS

    rows: list[tuple[bytes, int, int]] = []
    for case in ALL_CASES:
        options = _LAST_IDS.get(case.last_event_id, 0)
        param = 0
        if case.max_event_size != DEFAULT_MAX_EVENT_SIZE:
            options |= 1 << 2  # limit 3 + param % 61
            param = case.max_event_size - 3
        rows.append((case.stream, options, param))
    rows.append((b"".join(TOKENS), 0, 0))
    long_line = b"data: " + b"x" * 5000 + b"\n\n"
    rows.append((long_line + b"id: 1\ndata: " + "é".encode() * 3000 + b"\r\n\r\n", 0, 0))
    rows.append((b"data: a\n" * 300 + b"\n", 0, 0))
    rows.append((b"data: a\n\n" + b"data: " + b"y" * 200 + b"\n\n", 3 << 2, 10))  # limit 163
    return rows


def parser_seeds() -> list[bytes]:
    """The parser target's seeds."""
    seeds: list[bytes] = []
    for stream, options, param in _parser_streams():
        seeds.append(encode_input(stream, options=options, param=param))
        if len(stream) < 2000:
            seeds.append(encode_input(stream, options=options | _BYTE_BY_BYTE, param=param))
        if len(stream) > 2:
            cuts = [len(stream) // 3, len(stream) // 2, len(stream) - 1]
            seeds.append(encode_input(stream, options=options, param=param, cuts=cuts))
    return seeds


def chunked_seeds() -> list[bytes]:
    """The chunked decoder target's seeds."""
    from tests.test_chunked import BODY, BROKEN, frame

    bodies = [
        BODY,
        frame([b"data: a\n\n"] * 3, upper=True),
        frame([b"x" * 300, b"y"], ext=True),
        b"3\nabc\n0\n\n",
        b"1\r\na\r\n0\r\n\r\nGARBAGE",
        b"3\r\nabc\r\n\nx\r",
        b"1;" + b"e" * 3000 + b"\r\nz\r\n0\r\n\r\n",
        *BROKEN,
    ]
    # The parser's streams framed, one chunk per line.
    for stream, _, _ in _parser_streams()[:40]:
        bodies.append(frame([line + b"\n" for line in stream.split(b"\n") if line]))
    seeds: list[bytes] = []
    for body in bodies:
        seeds.append(encode_input(body))
        if len(body) < 2000:
            seeds.append(encode_input(body, options=_BYTE_BY_BYTE))
        if len(body) > 2:
            seeds.append(encode_input(body, cuts=[1, len(body) // 2, len(body) - 2]))
    return seeds


def write_seeds(directory: Path, seeds: list[bytes]) -> int:
    """Writes each seed to ``directory`` under its SHA-1, as libFuzzer names inputs."""
    directory.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    return len(seeds)
