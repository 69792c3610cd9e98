"""
The model the parser is checked against, shared by the parser tests and the fuzz harness
(``fuzz/``): items in a normal form, a feeding helper that checks the error contract, and a
deliberately naive model of the WHATWG "Interpreting an event stream" steps, written from the
words of the standard and applied to a whole stream at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from ld_eventsource._parser import IdChange, RetryChange, SSEParser
from ld_eventsource.actions import Comment, Event
from ld_eventsource.errors import EventTooLargeError

__all__ = [
    "BOM",
    "Norm",
    "Reference",
    "assert_within_limit",
    "norm",
    "reference",
    "run",
    "split_lines",
]

BOM = b"\xef\xbb\xbf"

# Items are compared in a normal form: the class name first, then the fields. The item classes
# are tuples, and a NamedTuple compares equal to any tuple with the same fields (IdChange("x")
# == Comment("x") is True from the left), so comparing them directly could hide a wrong type.
Norm = tuple[object, ...]


def norm(item: object) -> Norm:
    if isinstance(item, EventTooLargeError):
        return ("EventTooLargeError", item.max_size)
    assert isinstance(item, Event | Comment | RetryChange | IdChange), repr(item)
    return (type(item).__name__, *tuple(item))


def run(parser: SSEParser, chunks: Iterable[bytes]) -> list[Norm]:
    """
    Feeds the chunks, then ends the stream; returns the items in normal form.

    Checks on the way that an error is only ever the last item of a feed, and that once it has
    been returned every later feed returns just that same error.
    """
    out: list[Norm] = []
    error: EventTooLargeError | None = None
    for chunk in chunks:
        items = parser.feed(chunk)
        if error is not None:
            assert len(items) == 1
            assert items[0] is error
            continue
        for position, item in enumerate(items):
            if isinstance(item, EventTooLargeError):
                assert position == len(items) - 1, "the error must be the last item"
                error = item
        out.extend(norm(item) for item in items)
    parser.end()
    if error is not None:
        assert parser.feed(b"data: more\n\n") == [error]
        assert parser.feed(b"data: more\n\n")[0] is error
    return out


def split_lines(text: str) -> tuple[list[str], str]:
    """
    The lines of ``text`` and the unterminated rest, one character at a time: "Lines must be
    separated by either a U+000D CARRIAGE RETURN U+000A LINE FEED (CRLF) character pair, a
    single U+000A LINE FEED (LF) character, or a single U+000D CARRIAGE RETURN (CR) character."
    """
    lines: list[str] = []
    line: list[str] = []
    after_cr = False
    for char in text:
        if char == "\n" and after_cr:
            after_cr = False
            continue
        after_cr = char == "\r"
        if char in "\r\n":
            lines.append("".join(line))
            line = []
        else:
            line.append(char)
    return lines, "".join(line)


class Reference(NamedTuple):
    items: list[Norm]
    last_event_id: str | None


def reference(
    stream: bytes, *, last_event_id: str | None = None, max_event_size: int | None = None
) -> Reference:
    """
    A naive model of WHATWG HTML 9.2.6 "Interpreting an event stream", applied to a whole
    stream at once. With ``max_event_size``, the error replaces everything from the start of
    the first event (the lines after a blank line) whose bytes exceed it.
    """
    # "Streams must be decoded using the UTF-8 decode algorithm." (which strips one BOM)
    text = stream.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    # "Once the end of the file is reached, any pending data must be discarded."
    lines, _ = split_lines(text)
    # The same split over the raw bytes (latin-1 maps each byte to one character) gives the
    # byte size of each line; CR and LF never occur inside a UTF-8 sequence.
    raw = stream[3:] if stream.startswith(BOM) else stream
    raw_lines, raw_rest = split_lines(raw.decode("latin-1"))
    assert len(raw_lines) == len(lines)

    out: list[Norm] = []
    data_buffer = ""
    event_type_buffer = ""
    last_event_id_buffer = last_event_id
    last_event_id_string = last_event_id
    block_id: str | None = None  # the value of this block's own id field (Event.id)
    event_size = 0
    kept = 0  # the items before the event being assembled

    def too_large() -> Reference:
        assert max_event_size is not None
        return Reference([*out[:kept], ("EventTooLargeError", max_event_size)], None)

    for line, raw_line in zip(lines, raw_lines, strict=True):
        if line and max_event_size is not None:
            # A comment line is not kept: it counts toward no event, but it must fit on top
            # of the event while it arrives.
            if line.startswith(":"):
                if event_size + len(raw_line) + 1 > max_event_size:
                    return too_large()
            else:
                event_size += len(raw_line) + 1
                if event_size > max_event_size:
                    return too_large()
        # "If the line is empty (a blank line) Dispatch the event, as defined below."
        if not line:
            # "1. Set the last event ID string of the event source to the value of the last
            # event ID buffer. The buffer does not get reset."
            last_event_id_string = last_event_id_buffer
            # "2. If the data buffer is an empty string, set the data buffer and the event
            # type buffer to the empty string and return."
            if data_buffer == "":
                if block_id is not None:
                    out.append(("IdChange", block_id))
            else:
                # "3. If the data buffer's last character is a U+000A LINE FEED (LF)
                # character, then remove the last character from the data buffer."
                if data_buffer.endswith("\n"):
                    data_buffer = data_buffer[:-1]
                # "Initialize event's type attribute to "message", ... If the event type
                # buffer has a value other than the empty string, change the type of the
                # newly created event to equal the value of the event type buffer."
                event_type = event_type_buffer if event_type_buffer != "" else "message"
                out.append(("Event", event_type, data_buffer, block_id, last_event_id_string))
            data_buffer = ""
            event_type_buffer = ""
            block_id = None
            event_size = 0
            kept = len(out)
            continue
        # "If the line starts with a U+003A COLON character (:) Ignore the line."
        if line.startswith(":"):
            out.append(("Comment", line[1:]))
            continue
        # "If the line contains a U+003A COLON character (:) Collect the characters on the
        # line before the first U+003A COLON character (:), and let field be that string.
        # Collect the characters on the line after the first U+003A COLON character (:), and
        # let value be that string. If value starts with a U+0020 SPACE character, remove it
        # from value."
        if ":" in line:
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
        # "Otherwise, the string is not empty but does not contain a U+003A COLON character
        # (:) Process the field using the steps described below, using the whole line as the
        # field name, and the empty string as the field value."
        else:
            field, value = line, ""
        if field == "event":
            # "Set the event type buffer to field value."
            event_type_buffer = value
        elif field == "data":
            # "Append the field value to the data buffer, then append a single U+000A LINE
            # FEED (LF) character to the data buffer."
            data_buffer += value + "\n"
        elif field == "id":
            # "If the field value does not contain U+0000 NULL, then set the last event ID
            # buffer to the field value. Otherwise, ignore the field."
            if "\x00" not in value:
                last_event_id_buffer = value
                block_id = value
        elif field == "retry":
            # "If the field value consists of only ASCII digits, then interpret the field
            # value as an integer in base ten, and set the event stream's reconnection time
            # to that integer. Otherwise, ignore the field."
            # This library clamps the value to 2**31 - 1 ms (about 24.8 days).
            if value and all(c in "0123456789" for c in value):
                out.append(("RetryChange", min(int(value.lstrip("0") or "0"), 2**31 - 1)))
        # "Otherwise The field is ignored."
    if max_event_size is not None and event_size + len(raw_rest) > max_event_size:
        return too_large()
    return Reference(out, last_event_id_string)


def assert_within_limit(got: list[Norm], expected: list[Norm], unlimited: list[Norm]) -> None:
    """
    ``got`` agrees with the reference ``expected`` (with the limit) and ``unlimited``: the same
    items; or, when the limit is exceeded, the items before the oversized event, then maybe
    comments and retry lines of the oversized event that were complete before it grew too
    large (they are valid items; whether they come out depends on the chunking), then the
    error. Never an event or an id change from the oversized event or after it.
    """
    if not expected or expected[-1][0] != "EventTooLargeError":
        assert got == expected
        return
    assert got[-1] == expected[-1]
    before = len(expected) - 1
    assert got[:before] == expected[:-1]
    extra = got[before:-1]
    assert extra == unlimited[before : len(got) - 1]
    assert all(item[0] in ("Comment", "RetryChange") for item in extra)
