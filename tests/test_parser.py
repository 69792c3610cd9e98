"""
Tests of the sans-I/O event-stream parser (``ld_eventsource._parser``), in layers:

1. the examples of the WHATWG HTML standard, section 9.2 "Server-sent events";
2. a table of edge cases, one row per wire-format rule;
3. every row of both tables fed whole, split in two and in three at every position, byte by
   byte, and with empty chunks in between (h11's ``test_io.py``, eventsource-parser's
   fixtures): the items must not depend on the chunking;
4. property tests: any chunking gives the same items as one chunk, and the parser agrees with
   a deliberately naive reference model written below from the words of the standard;
5. the maximum event size, memory included;
6. arbitrary bytes never raise.
"""

from __future__ import annotations

import itertools
import tracemalloc
from typing import NamedTuple

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ld_eventsource._parser import (
    DEFAULT_MAX_EVENT_SIZE,
    IdChange,
    Item,
    RetryChange,
    SSEParser,
)
from ld_eventsource.actions import Comment, Event
from ld_eventsource.errors import EventTooLargeError
from tests.parser_model import BOM, Norm, assert_within_limit, norm, reference, run


def E(data: str, event: str = "message", id: str | None = None, last: str | None = None) -> Event:
    return Event(event, data, id, last)


def C(comment: str) -> Comment:
    return Comment(comment)


def R(milliseconds: int) -> RetryChange:
    return RetryChange(milliseconds)


def I(last_event_id: str) -> IdChange:  # noqa: E743
    return IdChange(last_event_id)


def TOO_LARGE(max_size: int) -> EventTooLargeError:
    return EventTooLargeError(max_size)


class Case(NamedTuple):
    id: str
    stream: bytes
    expected: list[Item]
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    last_event_id: str | None = None


class TinyThresholds(SSEParser):
    """
    The parser with tiny thresholds: a line of 3 bytes is long, an event of 2 data lines
    is joined in pieces, so that the short inputs of the tables and of the property tests
    take those paths too.
    """

    __slots__ = ()
    _LONG_LINE = 2
    _DATA_PIECES = 1


# The tables and the property tests run with both.
PARSERS = pytest.mark.parametrize(
    "parser_class", [SSEParser, TinyThresholds], ids=["thresholds-default", "thresholds-tiny"]
)


def make_parser(
    case_or_max: Case | int = DEFAULT_MAX_EVENT_SIZE, parser_class: type[SSEParser] = SSEParser
) -> SSEParser:
    if isinstance(case_or_max, Case):
        return parser_class(
            max_event_size=case_or_max.max_event_size, last_event_id=case_or_max.last_event_id
        )
    return parser_class(max_event_size=case_or_max)


def whole(case: Case, parser_class: type[SSEParser] = SSEParser) -> list[Norm]:
    return run(make_parser(case, parser_class), [case.stream])


# --- 1. The examples of the standard ---------------------------------------------------------

WHATWG_EXAMPLES = [
    # 9.2.6: "The following event stream, once followed by a blank line: ... would cause an
    # event message with the interface MessageEvent to be dispatched on the EventSource
    # object. The event's data attribute would contain the string "YHOO\n+2\n10"".
    Case(
        "stock-ticker",
        b"data: YHOO\ndata: +2\ndata: 10\n\n",
        [E("YHOO\n+2\n10")],
    ),
    # 9.2.6: "The following stream contains four blocks. The first block has just a comment,
    # and will fire nothing. The second block has two fields with names "data" and "id"
    # respectively; an event will be fired for this block, with the data "first event", and
    # will then set the last event ID to "1" ... The third block fires an event with data
    # "second event", and also has an "id" field, this time with no value, which resets the
    # last event ID to the empty string ... The fourth block has only a data field ... with
    # the data " third event" (with a single leading space character)."
    Case(
        "first-second-third-event",
        b": test stream\n\n"
        b"data: first event\nid: 1\n\n"
        b"data:second event\nid\n\n"
        b"data:  third event\n\n",
        [
            C(" test stream"),
            E("first event", id="1", last="1"),
            E("second event", id="", last=""),
            E(" third event", id=None, last=""),
        ],
    ),
    # 9.2.6: "The following stream fires two events: ... The first block fires events with the
    # data set to the empty string, as would the last block if it was followed by a blank
    # line. The middle block fires an event with the data set to a single newline character.
    # The last block is discarded because it is not followed by a blank line."
    Case(
        "empty-data-blocks",
        b"data\n\ndata\ndata\n\ndata:",
        [E(""), E("\n")],
    ),
    # 9.2.6: "The following stream fires two identical events: ... This is because the space
    # after the colon is ignored if present."
    Case(
        "test-space-after-colon",
        b"data:test\n\ndata: test\n\n",
        [E("test"), E("test")],
    ),
    # 9.2.1 (introduction): messages separated by blank lines, a message of two lines.
    Case(
        "introduction-messages",
        b"data: This is the first message.\n\n"
        b"data: This is the second message, it\n"
        b"data: has two lines.\n\n"
        b"data: This is the third message.\n\n",
        [
            E("This is the first message."),
            E("This is the second message, it\nhas two lines."),
            E("This is the third message."),
        ],
    ),
    # 9.2.1: "event: add / data: 73857293 ..." events of several types.
    Case(
        "introduction-event-types",
        b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
        [E("73857293", event="add"), E("2153", event="remove"), E("113411", event="add")],
    ),
    # 9.2.7 (authoring notes): a comment line every 15 seconds or so keeps proxies happy.
    Case("keep-alive-comment", b":\n:\n", [C(""), C("")]),
]


@PARSERS
@pytest.mark.parametrize("case", WHATWG_EXAMPLES, ids=lambda c: c.id)
def test_whatwg_example(case: Case, parser_class: type[SSEParser]) -> None:
    assert whole(case, parser_class) == [norm(i) for i in case.expected]


# --- 2. Edge cases, one row per rule -----------------------------------------------------------

EDGE_CASES = [
    # Line endings: CRLF, LF or CR, never anything else.
    Case("lf", b"data: a\n\n", [E("a")]),
    Case("cr", b"data: a\r\r", [E("a")]),
    Case("crlf", b"data: a\r\n\r\n", [E("a")]),
    Case("mixed-terminators", b"data: a\rdata: b\ndata: c\r\n\n", [E("a\nb\nc")]),
    Case("crlf-is-one-line-ending", b"data: a\r\ndata: b\r\n\r\n", [E("a\nb")]),
    Case("crlf-then-cr-is-blank", b"data: a\r\n\rdata: b\n\n", [E("a"), E("b")]),
    Case("lf-then-cr-is-blank", b"data: a\n\rdata: b\n\n", [E("a"), E("b")]),
    Case("lf-cr-lf", b"data: a\n\r\ndata: b\n\n", [E("a"), E("b")]),
    Case("cr-cr-lf", b"data: a\r\r\ndata: b\n\n", [E("a"), E("b")]),
    Case("u2028-is-not-a-line-break", "data: a\u2028b\u2029c\n\n".encode(), [E("a\u2028b\u2029c")]),
    Case("nel-is-not-a-line-break", "data: a\x85b\n\n".encode(), [E("a\x85b")]),
    Case(
        "vt-ff-fs-are-not-line-breaks",
        b"data: a\x0bb\x0cc\x1cd\x1de\x1ef\n\n",
        [E("a\x0bb\x0cc\x1cd\x1de\x1ef")],
    ),
    Case("leading-blank-lines", b"\n\r\n\rdata: a\n\n", [E("a")]),
    Case("many-blank-lines-between", b"data: a\n\n\n\n\ndata: b\n\n", [E("a"), E("b")]),
    # Decoding: UTF-8 with replacement; one leading BOM stripped.
    Case("utf8-multibyte", "data: é€😀\n\n".encode(), [E("é€😀")]),
    Case("invalid-utf8-replaced", b"data: a\xffb\xfe\n\n", [E("a\ufffdb\ufffd")]),
    Case("truncated-sequence-replaced", b"data: \xe2\x82\n\n", [E("\ufffd")]),
    Case("lone-continuation-byte", b"data: \x85\n\n", [E("\ufffd")]),
    Case("encoded-surrogate-replaced", b"data: \xed\xa0\x80\n\n", [E("\ufffd\ufffd\ufffd")]),
    Case("invalid-utf8-in-field-name", b"d\xffata: x\n\n", []),
    Case("bom-stripped", BOM + b"data: a\n\n", [E("a")]),
    Case("bom-before-comment", BOM + b":c\n", [C("c")]),
    Case("second-bom-is-data", BOM + BOM + b"data: a\n\n", []),
    Case("second-bom-in-comment", BOM + BOM + b":c\n", []),
    Case("bom-not-at-start", b"data: a\n\n" + BOM + b"data: b\n\n", [E("a")]),
    Case("bom-in-value", b"data: " + BOM + b"a\n\n", [E("\ufeffa")]),
    Case("partial-bom-is-replaced", b"\xef\xbbdata: a\n\n", []),
    Case("bom-then-blank-line", BOM + b"\ndata: a\n\n", [E("a")]),
    Case("bom-only", BOM, []),
    # Fields: one leading space stripped, no colon means empty value, unknown ignored.
    Case("no-space-after-colon", b"data:a\n\n", [E("a")]),
    Case("one-space-stripped", b"data: a\n\n", [E("a")]),
    Case("only-one-space-stripped", b"data:  a\n\n", [E(" a")]),
    Case("tab-not-stripped", b"data:\ta\n\n", [E("\ta")]),
    Case("trailing-space-kept", b"data: a \n\n", [E("a ")]),
    Case("data-alone", b"data\n\n", [E("")]),
    Case("data-colon-nothing", b"data:\n\n", [E("")]),
    Case("data-colon-space", b"data: \n\n", [E("")]),
    Case("two-empty-data-lines", b"data\ndata\n\n", [E("\n")]),
    Case("empty-then-text", b"data:\ndata: a\n\n", [E("\na")]),
    Case("trailing-empty-data-line", b"data: a\ndata:\n\n", [E("a\n")]),
    Case("colons-in-value", b"data: a:b: c\n\n", [E("a:b: c")]),
    Case("space-before-colon", b"data : a\n\n", []),
    Case("field-names-case-sensitive", b"Data: a\nDATA: b\n\n", []),
    Case("unknown-field-ignored", b"foo: bar\ndata: a\nbaz\n\n", [E("a")]),
    Case("unknown-field-only", b"foo: bar\n\n", []),
    Case("nul-in-data", b"data: a\x00b\n\n", [E("a\x00b")]),
    Case("data-after-dispatch-starts-over", b"data: a\n\ndata: b\n\n", [E("a"), E("b")]),
    # Comments: the text after the colon, spaces kept.
    Case("comment", b": hello\n", [C(" hello")]),
    Case("comment-no-space", b":hello\n", [C("hello")]),
    Case("comment-empty", b":\n", [C("")]),
    Case("comment-with-colons", b"::x: y\n", [C(":x: y")]),
    Case("comment-inside-event", b"data: a\n:c\ndata: b\n\n", [C("c"), E("a\nb")]),
    Case("comment-block-dispatches-nothing", b":c\n\n", [C("c")]),
    Case(
        "comment-in-stream-order",
        b":1\nretry: 5\n:2\ndata: a\n\n:3\n",
        [C("1"), R(5), C("2"), E("a"), C("3")],
    ),
    Case("comment-unterminated-dropped", b":c", []),
    # Event type.
    Case("event-type", b"event: add\ndata: 1\n\n", [E("1", event="add")]),
    Case("event-type-after-data", b"data: 1\nevent: add\n\n", [E("1", event="add")]),
    Case("event-empty-is-message", b"event:\ndata: 1\n\n", [E("1")]),
    Case("event-alone-is-message", b"event\ndata: 1\n\n", [E("1")]),
    Case("event-last-wins", b"event: a\nevent: b\ndata: 1\n\n", [E("1", event="b")]),
    Case("event-space-kept", b"event:  a \ndata: 1\n\n", [E("1", event=" a ")]),
    Case(
        "event-reset-after-dispatch",
        b"event: a\ndata: 1\n\ndata: 2\n\n",
        [E("1", event="a"), E("2")],
    ),
    Case("event-reset-by-empty-block", b"event: a\n\ndata: 2\n\n", [E("2")]),
    Case("block-without-data-dispatches-nothing", b"event: a\n\n", []),
    # Event id and last event id.
    Case("id", b"id: 1\ndata: a\n\n", [E("a", id="1", last="1")]),
    Case("id-after-data", b"data: a\nid: 1\n\n", [E("a", id="1", last="1")]),
    Case(
        "id-carried-over",
        b"id: 1\ndata: a\n\ndata: b\n\n",
        [E("a", id="1", last="1"), E("b", id=None, last="1")],
    ),
    Case("id-last-wins", b"id: 1\nid: 2\ndata: a\n\n", [E("a", id="2", last="2")]),
    Case("id-only-block", b"id: 5\n\ndata: b\n\n", [I("5"), E("b", id=None, last="5")]),
    Case("id-only-block-with-event-type", b"event: x\nid: 5\n\n", [I("5")]),
    Case(
        "id-only-block-same-id", b"id: 5\ndata: a\n\nid: 5\n\n", [E("a", id="5", last="5"), I("5")]
    ),
    Case(
        "id-empty-alone-resets",
        b"id: 1\ndata: a\n\nid\ndata: b\n\n",
        [E("a", id="1", last="1"), E("b", id="", last="")],
    ),
    Case(
        "id-empty-colon-resets",
        b"id: 1\ndata: a\n\nid:\ndata: b\n\n",
        [E("a", id="1", last="1"), E("b", id="", last="")],
    ),
    Case("id-empty-only-block", b"id: 1\n\nid:\n\n", [I("1"), I("")]),
    Case(
        "id-with-nul-ignored",
        b"id: 1\ndata: a\n\nid: x\x00y\ndata: b\n\n",
        [E("a", id="1", last="1"), E("b", id=None, last="1")],
    ),
    Case("id-with-nul-keeps-block-id", b"id: 1\nid: \x00\ndata: a\n\n", [E("a", id="1", last="1")]),
    Case("id-with-nul-only-block", b"id: \x00\n\n", []),
    Case("id-spaces-kept", b"id:  x \ndata: a\n\n", [E("a", id=" x ", last=" x ")]),
    Case("id-unicode", "id: é€\ndata: a\n\n".encode(), [E("a", id="é€", last="é€")]),
    Case("id-of-undispatched-block-dropped", b"id: 1\ndata: a\n", []),
    Case(
        "initial-last-event-id",
        b"data: a\n\nid: 2\ndata: b\n\n",
        [E("a", id=None, last="abc"), E("b", id="2", last="2")],
        last_event_id="abc",
    ),
    Case(
        "initial-last-event-id-reset",
        b"id\ndata: a\n\n",
        [E("a", id="", last="")],
        last_event_id="abc",
    ),
    # Retry: ASCII digits only.
    Case("retry", b"retry: 1000\n", [R(1000)]),
    Case("retry-no-space", b"retry:0\n", [R(0)]),
    Case("retry-leading-zeros", b"retry: 007\n", [R(7)]),
    Case(
        "retry-huge-clamped",
        b"retry: 123456789012345678901234567890\n",
        [R(2**31 - 1)],
    ),
    Case("retry-in-block-dispatches-nothing", b"retry: 5\n\n", [R(5)]),
    Case("retry-inside-event", b"data: a\nretry: 5\n\n", [R(5), E("a")]),
    Case("retry-letter", b"retry: 10a\n", []),
    Case("retry-empty", b"retry:\n", []),
    Case("retry-alone", b"retry\n", []),
    Case("retry-two-spaces", b"retry:  5\n", []),
    Case("retry-trailing-space", b"retry: 5 \n", []),
    Case("retry-negative", b"retry: -1\n", []),
    Case("retry-plus", b"retry: +1\n", []),
    Case("retry-float", b"retry: 1.5\n", []),
    Case("retry-underscore", b"retry: 1_000\n", []),
    Case("retry-arabic-digits", "retry: ١٢\n".encode(), []),
    Case("retry-superscript", "retry: ²\n".encode(), []),
    Case("retry-fullwidth", "retry: \uff11\n".encode(), []),
    Case("retry-then-valid", b"retry: x\nretry: 3\n", [R(3)]),
    # End of stream: an unterminated event or line is discarded.
    Case("unterminated-event-discarded", b"data: a\n", []),
    Case("unterminated-line-discarded", b"data: a\n\ndata: b", [E("a")]),
    Case("unterminated-after-cr", b"data: a\r", []),
    Case("unterminated-retry-discarded", b"retry: 5", []),
    Case("empty-stream", b"", []),
    # The maximum event size: the lines since the last blank line, terminators one byte each.
    Case("size-exact-passes", b"data:bbbb\n\n", [E("bbbb")], max_event_size=10),
    Case("size-one-over-fails", b"data:bbbb\n\n", [TOO_LARGE(9)], max_event_size=9),
    Case("size-crlf-counts-one", b"data:bbbb\r\n\r\n", [E("bbbb")], max_event_size=10),
    Case("size-cr-counts-one", b"data:bbbb\r\r", [E("bbbb")], max_event_size=10),
    Case("size-bom-not-counted", BOM + b"data:bbbb\n\n", [E("bbbb")], max_event_size=10),
    Case("size-two-lines-exact", b"data:a\ndata:b\n\n", [E("a\nb")], max_event_size=14),
    Case("size-two-lines-over", b"data:a\ndata:b\n\n", [TOO_LARGE(13)], max_event_size=13),
    Case("size-resets-per-event", b"data:bbbb\n\n" * 5, [E("bbbb")] * 5, max_event_size=10),
    Case(
        "size-events-before-kept",
        b"data:a\n\ndata:bbbbb\n\ndata:c\n\n",
        [E("a"), TOO_LARGE(10)],
        max_event_size=10,
    ),
    Case(
        "size-pending-line-counts",
        b"data:a\n\nxxxxxxxxx",
        [E("a"), TOO_LARGE(8)],
        max_event_size=8,
    ),
    Case("size-pending-line-exact", b"data:a\n\nxxxxxxxx", [E("a")], max_event_size=8),
    Case(
        "size-pending-after-lines",
        b"data:a\n\ndata:b\nxx",
        [E("a"), TOO_LARGE(8)],
        max_event_size=8,
    ),
    Case(
        "size-extra-blank-line-before-exact-event",
        b"\n\ndata:bbbb\n\n",
        [E("bbbb")],
        max_event_size=10,
    ),
    Case(
        "size-extra-blank-line-between-events",
        b"data:a\n\n\ndata:bbbb\n\n",
        [E("a"), E("bbbb")],
        max_event_size=10,
    ),
]

ALL_CASES = WHATWG_EXAMPLES + EDGE_CASES


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in ALL_CASES]
    assert len(ids) == len(set(ids))


@PARSERS
@pytest.mark.parametrize("case", EDGE_CASES, ids=lambda c: c.id)
def test_edge_case(case: Case, parser_class: type[SSEParser]) -> None:
    assert whole(case, parser_class) == [norm(i) for i in case.expected]


# --- 3. Every split point ----------------------------------------------------------------------


@PARSERS
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_every_split_in_two(case: Case, parser_class: type[SSEParser]) -> None:
    expected = [norm(i) for i in case.expected]
    data = case.stream
    for i in range(len(data) + 1):
        assert run(make_parser(case, parser_class), [data[:i], data[i:]]) == expected, (
            f"split at {i}"
        )


@PARSERS
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_every_split_in_three(case: Case, parser_class: type[SSEParser]) -> None:
    expected = [norm(i) for i in case.expected]
    data = case.stream
    for i in range(len(data) + 1):
        for j in range(i, len(data) + 1):
            chunks = [data[:i], data[i:j], data[j:]]
            assert run(make_parser(case, parser_class), chunks) == expected, f"split at {i}, {j}"


@PARSERS
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_byte_by_byte(case: Case, parser_class: type[SSEParser]) -> None:
    data = case.stream
    chunks = [data[i : i + 1] for i in range(len(data))]
    assert run(make_parser(case, parser_class), chunks) == [norm(i) for i in case.expected]


@PARSERS
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_byte_by_byte_with_empty_chunks(case: Case, parser_class: type[SSEParser]) -> None:
    data = case.stream
    chunks = [b""]
    for i in range(len(data)):
        chunks += [data[i : i + 1], b""]
    assert run(make_parser(case, parser_class), chunks) == [norm(i) for i in case.expected]


# --- Items come out as soon as their bytes are in ----------------------------------------------


def test_event_dispatched_by_the_feed_with_its_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n") == []
    assert parser.feed(b"data: b\n") == []
    assert parser.feed(b"\n") == [E("a\nb")]


def test_cr_dispatches_without_waiting_for_a_possible_lf() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r\r") == [E("a")]
    assert parser.feed(b"\ndata: b\r") == []  # this LF completes the CRLF: no blank line
    assert parser.feed(b"\r") == [E("b")]


def test_crlf_split_across_chunks_is_one_line_ending() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n") == []
    assert parser.feed(b"data: b\r") == []
    assert parser.feed(b"\n\r") == [E("a\nb")]
    assert parser.feed(b"\n") == []


def test_cr_then_empty_chunk_then_lf() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"") == []
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\n") == [E("a")]


def test_comment_and_retry_returned_when_their_line_ends() -> None:
    parser = SSEParser()
    assert parser.feed(b": ping") == []
    assert parser.feed(b"\nretry: 1") == [C(" ping")]
    assert parser.feed(b"5") == []
    assert parser.feed(b"00\r") == [R(1500)]


def test_multibyte_character_split_across_chunks() -> None:
    text = "data: é€😀\n\n".encode()
    for i in range(len(text) + 1):
        parser = SSEParser()
        assert parser.feed(text[:i]) + parser.feed(text[i:]) == [E("é€😀")]


def test_bom_split_across_chunks() -> None:
    parser = SSEParser()
    assert parser.feed(b"\xef") == []
    assert parser.feed(b"\xbb") == []
    assert parser.feed(b"\xbf") == []
    assert parser.feed(b"data: a\n\n") == [E("a")]


def test_bom_split_then_second_bom_is_data() -> None:
    parser = SSEParser()
    assert parser.feed(b"\xef\xbb") == []
    assert parser.feed(b"\xbf\xef") == []
    assert parser.feed(b"\xbb\xbf:c\n") == []  # "\ufeff:c" is a field, not a comment
    assert parser.feed(b"data: \xef") == []
    assert parser.feed(b"\xbb\xbfa\n\n") == [E("\ufeffa")]


def test_items_have_the_documented_types() -> None:
    items = SSEParser().feed(b":c\nretry: 1\nid: 1\n\ndata: a\n\n")
    assert [type(i) for i in items] == [Comment, RetryChange, IdChange, Event]
    event = items[3]
    assert isinstance(event, Event)
    assert (event.event, event.data, event.id, event.last_event_id) == ("message", "a", None, "1")
    comment = items[0]
    assert isinstance(comment, Comment)
    assert comment.comment == "c"


# --- last_event_id and end() -------------------------------------------------------------------


def test_last_event_id_property() -> None:
    parser = SSEParser()
    assert parser.last_event_id is None
    parser.feed(b"id: 1\ndata: a\n\n")
    assert parser.last_event_id == "1"
    parser.feed(b"id: 2\n\n")
    assert parser.last_event_id == "2"
    parser.feed(b"id\n\n")
    assert parser.last_event_id == ""
    parser.feed(b"id: \x00\n\n")
    assert parser.last_event_id == ""


def test_last_event_id_from_constructor() -> None:
    parser = SSEParser(last_event_id="42")
    assert parser.last_event_id == "42"
    assert parser.feed(b"data: a\n\n") == [E("a", last="42")]
    assert parser.last_event_id == "42"


def test_last_event_id_set_only_on_dispatch() -> None:
    parser = SSEParser(last_event_id="0")
    assert parser.feed(b"id: 1\ndata: a\n") == []
    assert parser.last_event_id == "0"
    parser.end()
    assert parser.last_event_id == "0"


def test_end_discards_the_unterminated_event() -> None:
    parser = SSEParser()
    assert parser.feed(b"event: x\nid: 1\ndata: a\ndata: b") == []
    parser.end()
    assert parser.feed(b"\n") == []
    assert parser.feed(b"data: c\n\n") == [E("c")]
    assert parser.last_event_id is None


def test_end_on_fresh_parser() -> None:
    parser = SSEParser()
    parser.end()
    assert parser.feed(b"data: a\n\n") == [E("a")]


def test_constructor_validates_max_event_size() -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError):
            SSEParser(max_event_size=bad)
    for wrong in (True, 1.5, "10", None):
        with pytest.raises(TypeError):
            SSEParser(max_event_size=wrong)  # type: ignore[arg-type]


# --- 4. Property tests -------------------------------------------------------------------------


def test_reference_model_on_the_tables() -> None:
    """The model itself agrees with every hand-written row (checks the checker)."""
    for case in ALL_CASES:
        size = None if case.max_event_size == DEFAULT_MAX_EVENT_SIZE else case.max_event_size
        got = reference(case.stream, last_event_id=case.last_event_id, max_event_size=size)
        assert got.items == [norm(i) for i in case.expected], case.id


FIELD_NAMES = ["data", "data", "data", "event", "id", "id", "retry", "", "foo", "Data", "data "]
SPECIAL = "\x00\u2028\u2029\x85\x0b\x0c\x1c\ufeff\ufffd :é€😀"

values = st.text(
    st.one_of(st.characters(codec="utf-8", exclude_characters="\r\n"), st.sampled_from(SPECIAL)),
    max_size=8,
)
retry_values = st.one_of(
    st.from_regex(r"\A[0-9]{1,6}\Z"),
    st.sampled_from(["", " 5", "5 ", "-1", "1a", "١٢", "²", "\uff11"]),
    values,
)


@st.composite
def lines(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["field", "field", "field", "bare", "comment", "blank", "blank"]))
    if kind == "blank":
        return ""
    if kind == "comment":
        return ":" + draw(values)
    name = draw(st.sampled_from(FIELD_NAMES))
    if kind == "bare":
        return name
    separator = draw(st.sampled_from([":", ": ", ":  "]))
    return name + separator + draw(retry_values if name == "retry" else values)


@st.composite
def line_streams(draw: st.DrawFn) -> bytes:
    parts = [draw(st.sampled_from([b"", b"", BOM, BOM + BOM, b"\xef\xbb"]))]
    for line in draw(st.lists(lines(), max_size=16)):
        parts.append(line.encode())
        parts.append(draw(st.sampled_from([b"\n", b"\n", b"\r", b"\r\n"])))
        if draw(st.integers(0, 9)) == 0:  # now and then a stray invalid byte
            parts.append(draw(st.sampled_from([b"\xff", b"\xe2\x82", b"\x80", b"\xc3"])))
    if draw(st.booleans()):
        parts.append(draw(lines()).encode())  # an unterminated last line
    return b"".join(parts)


# Token soup: fragments that matter to the parser, in any order.
TOKENS = [
    b"\r", b"\n", b"\r\n", b"\n\n", BOM, b"\xef", b"\xbb", b"\xbf", b"\xe2\x82", b"\xac",
    b"\xff", b"\x00", b"data", b"data:", b"data: ", b"event:", b"id", b"id:", b"retry:",
    b"retry: ", b"1", b"23", b":", b" ", b"x", b"\xc2\x85", b"\xe2\x80\xa8",
]  # fmt: skip
soup_streams = st.lists(st.sampled_from(TOKENS), max_size=40).map(b"".join)
streams = st.one_of(line_streams(), soup_streams)


def chunkings(stream: bytes) -> st.SearchStrategy[list[bytes]]:
    def cut(points: list[int]) -> list[bytes]:
        bounds = [0, *sorted(points), len(stream)]
        return [stream[a:b] for a, b in itertools.pairwise(bounds)]

    return st.lists(st.integers(0, len(stream)), max_size=12).map(cut)


PROPERTY_SETTINGS = settings(max_examples=250, deadline=None)


@PARSERS
@PROPERTY_SETTINGS
@given(st.data(), streams)
def test_any_chunking_gives_the_same_items(
    parser_class: type[SSEParser], data: st.DataObject, stream: bytes
) -> None:
    chunks = data.draw(chunkings(stream), label="chunks")
    assert b"".join(chunks) == stream
    one = make_parser(parser_class=parser_class)
    many = make_parser(parser_class=parser_class)
    assert run(many, chunks) == run(one, [stream])
    assert many.last_event_id == one.last_event_id


@PARSERS
@PROPERTY_SETTINGS
@given(st.data(), streams, st.sampled_from([None, "", "7"]))
def test_agrees_with_the_reference_model(
    parser_class: type[SSEParser], data: st.DataObject, stream: bytes, last_event_id: str | None
) -> None:
    expected = reference(stream, last_event_id=last_event_id)
    parser = parser_class(last_event_id=last_event_id)
    assert run(parser, [stream]) == expected.items
    assert parser.last_event_id == expected.last_event_id
    chunks = data.draw(chunkings(stream), label="chunks")
    assert run(parser_class(last_event_id=last_event_id), chunks) == expected.items


# --- 5. The maximum event size -----------------------------------------------------------------


def test_error_carries_the_limit() -> None:
    items = SSEParser(max_event_size=4).feed(b"data: abc\n\n")
    assert len(items) == 1
    error = items[0]
    assert isinstance(error, EventTooLargeError)
    assert error.max_size == 4


def test_every_feed_after_the_error_returns_the_same_error() -> None:
    parser = SSEParser(max_event_size=8)
    items = parser.feed(b"data: a\n\ndata: too long\n\ndata: b\n\n")
    assert items[:-1] == [E("a")]
    error = items[-1]
    assert isinstance(error, EventTooLargeError)
    for chunk in (b"", b"data: c\n\n", b"\n", BOM):
        again = parser.feed(chunk)
        assert len(again) == 1
        assert again[0] is error
    parser.end()
    assert parser.feed(b"data: c\n\n") == [error]


@pytest.mark.parametrize("line", [b"data:", b":comment", b"foo:", b"x"])
def test_unterminated_line_fails_at_the_first_byte_over(line: bytes) -> None:
    limit = 100
    stream = (line + b"z" * limit)[: limit + 1]
    parser = SSEParser(max_event_size=limit)
    for i in range(limit):
        assert parser.feed(stream[i : i + 1]) == [], f"byte {i + 1}"
    items = parser.feed(stream[limit:])
    assert [norm(i) for i in items] == [norm(TOO_LARGE(limit))]


def test_event_grows_line_by_line_until_one_byte_over() -> None:
    limit = 100
    parser = SSEParser(max_event_size=limit)
    for _ in range(10):
        assert parser.feed(b"data:1234") == []
        assert parser.feed(b"\n") == []  # 10 bytes a line: exactly the limit after 10 lines
    assert parser._event_size == limit
    assert parser.feed(b"\n") == [E("\n".join(["1234"] * 10))]
    for _ in range(10):
        assert parser.feed(b"data:1234\n") == []
    assert [norm(i) for i in parser.feed(b"x")] == [norm(TOO_LARGE(limit))]


def test_comment_lines_count_toward_no_event() -> None:
    stream = b":cccccc\ndata:b\n:cccccc\n\n"  # 8 + 7 + 8 bytes, 7 of them kept
    for chunks in ([stream], [stream[i : i + 1] for i in range(len(stream))]):
        got = run(SSEParser(max_event_size=15), chunks)
        assert got == [norm(C("cccccc")), norm(C("cccccc")), norm(E("b"))]
        # The second comment must fit on top of the 7 bytes of the event while it arrives.
        got = run(SSEParser(max_event_size=14), chunks)
        assert got[-1] == norm(TOO_LARGE(14))
        assert not any(item[0] == "Event" for item in got)


@pytest.mark.parametrize("chunk_size", [1, 7, 100, 4096, 65536])
def test_a_flood_of_heartbeats_is_no_event(chunk_size: int) -> None:
    limit = 1024
    stream = b"data: before\n" + b": heartbeat\n" * 20_000 + b"data: after\n\n"
    chunks = [stream[i : i + chunk_size] for i in range(0, len(stream), chunk_size)]
    got = run(SSEParser(max_event_size=limit), chunks)
    assert got[-1] == norm(E("before\nafter"))
    assert len(got) == 20_001


def test_a_comment_line_longer_than_the_limit_is_too_large() -> None:
    for chunks in ([b":" + b"c" * 20 + b"\n"], [b":" + b"c" * 20, b"\n"]):
        got = run(SSEParser(max_event_size=16), chunks)
        assert got == [norm(TOO_LARGE(16))]


def test_many_events_over_the_limit_in_total_are_fine() -> None:
    parser = SSEParser(max_event_size=64)
    chunk = b"id: 1\ndata: 0123456789\n\n:ping\n\nretry: 10\n\n" * 100
    items = parser.feed(chunk)
    assert len(items) == 300
    assert not any(isinstance(i, EventTooLargeError) for i in items)


def test_events_completed_before_the_oversized_one_in_the_same_feed() -> None:
    parser = SSEParser(max_event_size=20)
    items = parser.feed(b"data: 1\n\nid: 2\n\ndata: 3\n\ndata: " + b"x" * 30 + b"\n\ndata: 4\n\n")
    assert [norm(i) for i in items] == [
        norm(E("1")),
        norm(I("2")),
        norm(E("3", last="2")),
        norm(TOO_LARGE(20)),
    ]
    assert parser.last_event_id == "2"


def test_huge_unterminated_line_keeps_memory_bounded() -> None:
    limit = 1024 * 1024
    chunk_size = 64 * 1024
    total = 50 * 1024 * 1024
    parser = SSEParser(max_event_size=limit)
    failed_at = None
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        for n in range(1, total // chunk_size + 1):
            chunk = b"x" * chunk_size  # a new object each time, as from a socket
            items = parser.feed(chunk)
            del chunk
            if failed_at is None:
                if items:
                    assert len(items) == 1
                    assert isinstance(items[0], EventTooLargeError)
                    failed_at = n
                else:
                    assert parser._pending_size + parser._event_size <= limit + chunk_size
            else:
                assert len(items) == 1
                assert isinstance(items[0], EventTooLargeError)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 16 chunks are exactly the limit; the 17th is over it.
    assert failed_at == limit // chunk_size + 1
    assert parser._pending == []
    assert peak < limit + 4 * chunk_size


def test_one_event_of_many_lines_keeps_memory_bounded() -> None:
    limit = 64 * 1024
    parser = SSEParser(max_event_size=limit)
    chunk = b"data: 0123456789abcdef0123456789abcdef0123456789abcdef012345678\n" * 16  # 1 KiB
    failed_at = None
    for n in range(1, 1000):
        items = parser.feed(chunk)
        if items:
            assert [type(i) for i in items] == [EventTooLargeError]
            failed_at = n
            break
        assert parser._event_size + parser._pending_size <= limit
        assert len(parser._data) <= limit // 64
    # 64 chunks are exactly the limit; the 65th is over it.
    assert failed_at == limit // len(chunk) + 1


@PARSERS
@settings(max_examples=300, deadline=None)
@given(st.data(), streams, st.integers(3, 40))
@example(data=None, stream=b"\n\ndata:bbbb\n\n", limit=10)
@example(data=None, stream=b"data:a\n\n\ndata:bbbb\n\n", limit=10)
# Comments that take a chunk past the limit without taking the event there, then an
# unterminated line that does: the lines are measured one by one.
@example(data=None, stream=b":ccc\n:ccc\n:ccc\n" + b"x" * 11, limit=10)
def test_size_limit_agrees_with_the_reference_model(
    parser_class: type[SSEParser], data: st.DataObject | None, stream: bytes, limit: int
) -> None:
    # (limit >= 3: a whole stream shorter than a BOM is held back uncounted until more comes.)
    expected = reference(stream, max_event_size=limit).items
    unlimited = reference(stream).items
    assert_within_limit(run(parser_class(max_event_size=limit), [stream]), expected, unlimited)
    if data is not None:
        chunks = data.draw(chunkings(stream), label="chunks")
        assert_within_limit(run(parser_class(max_event_size=limit), chunks), expected, unlimited)


# --- 6. Bad input never raises -----------------------------------------------------------------

ITEM_TYPES = (Event, Comment, RetryChange, IdChange, EventTooLargeError)


@PARSERS
@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.binary(max_size=64), st.sampled_from(TOKENS)), max_size=20),
    st.one_of(st.just(DEFAULT_MAX_EVENT_SIZE), st.integers(1, 64)),
    st.one_of(st.none(), st.text(max_size=4)),
)
def test_arbitrary_bytes_never_raise(
    parser_class: type[SSEParser], chunks: list[bytes], limit: int, last_event_id: str | None
) -> None:
    parser = parser_class(max_event_size=limit, last_event_id=last_event_id)
    error: EventTooLargeError | None = None
    for chunk in chunks:
        items = parser.feed(chunk)
        assert isinstance(items, list)
        for position, item in enumerate(items):
            assert type(item) in ITEM_TYPES
            if isinstance(item, EventTooLargeError):
                assert position == len(items) - 1
                assert error is None or item is error
                error = item
            else:
                assert error is None
            if isinstance(item, Event):
                assert isinstance(item.data, str)
                assert item.event != ""
        if error is None:
            assert parser._event_size + parser._pending_size <= limit
    parser.end()
    # Whatever came before (a partial BOM, a CR), the parser still works after end().
    if limit >= 8:
        expected = [E("x", last=parser.last_event_id)] if error is None else [error]
        assert parser.feed(b"\n\ndata:x\n\n") == expected


def test_huge_retry_values_are_clamped_not_raised() -> None:
    from ld_eventsource._parser import MAX_RETRY_MS

    parser = SSEParser()
    items = parser.feed(b"retry: " + b"9" * 5000 + b"\nretry: 2147483648\nretry: 2147483647\n\n")
    assert items == [RetryChange(MAX_RETRY_MS)] * 3
    assert parser.feed(b"retry: " + b"0" * 5000 + b"7\n") == [RetryChange(7)]
