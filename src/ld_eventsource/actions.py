"""
The items that the clients yield: :class:`Event`, :class:`Comment`, :class:`Start` and
:class:`Fault`, all subclasses of :class:`Action`.

Every action is immutable, compares equal by value (and only to an action of the same class),
is hashable and has a readable ``repr``.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Mapping
from typing import Any

from ld_eventsource.errors import ExceptionWithHeaders, Headers, _as_headers

__all__ = ["Action", "Comment", "Event", "Fault", "Start"]

_new = tuple.__new__

# The read-only field of a tuple at an index, as namedtuple makes them: a C descriptor that
# reads faster than ``self[i]`` (the clients read Event.last_event_id for every event), with
# namedtuple's own fallback, a property, on interpreters without it.
_field = collections._tuplegetter  # type: ignore[attr-defined]


class Action:
    """
    Base class of everything that :attr:`.SSEClient.all` and :attr:`.AsyncSSEClient.all` yield.
    """

    __slots__ = ()


# The actions are tuple subclasses: creating one is the bulk of the per-event cost of the
# client, and a tuple is the cheapest immutable object CPython builds. They still compare
# only with actions of the same class (see _ActionTuple.__eq__).
class _ActionTuple(Action, tuple[Any, ...]):
    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple.__hash__(self)))

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)


class Event(_ActionTuple):
    """
    An event received from the stream.

    Both :attr:`.SSEClient.events` and :attr:`.SSEClient.all` yield events.

    :param event: the event type; ``"message"`` when the stream did not give one
    :param data: the event data; several ``data:`` lines are joined with ``"\\n"``
    :param id: the value of this event's ``id:`` field, or ``None`` if it had none
    :param last_event_id: the last event id of the stream once this event was dispatched
    """

    __slots__ = ()

    def __new__(
        cls,
        event: str = "message",
        data: str = "",
        id: str | None = None,
        last_event_id: str | None = None,
    ) -> Event:
        return _new(cls, (event, data, id, last_event_id))

    event: str = _field(0, 'The event type, or "message" if not specified.')
    data: str = _field(1, "The event data.")
    id: str | None = _field(
        2, "The value of the ``id:`` field of this event, or ``None`` if omitted."
    )
    last_event_id: str | None = _field(
        3, "The value of the most recent ``id:`` field seen in this stream so far."
    )

    def __repr__(self) -> str:
        return "Event(event={}, data={}, id={}, last_event_id={})".format(
            json.dumps(self[0], ensure_ascii=False),
            json.dumps(self[1], ensure_ascii=False),
            "None" if self[2] is None else json.dumps(self[2], ensure_ascii=False),
            "None" if self[3] is None else json.dumps(self[3], ensure_ascii=False),
        )


class Comment(_ActionTuple):
    """
    A comment line from the stream (a line that begins with a colon).

    Comments carry no meaning in the SSE format (servers send them as keep-alives), so
    :attr:`.SSEClient.events` skips them; :attr:`.SSEClient.all` yields them.

    :param comment: the text after the colon
    """

    __slots__ = ()

    def __new__(cls, comment: str) -> Comment:
        return _new(cls, (comment,))

    comment: str = _field(0, "The comment text, not including the leading colon.")

    def __repr__(self) -> str:
        return f"Comment({json.dumps(self[0], ensure_ascii=False)})"


class Start(_ActionTuple):
    """
    The client has connected to the stream.

    :attr:`.SSEClient.all` yields a ``Start`` after the first successful connection and after
    every reconnection, each with the response headers of that connection.

    :param headers: the HTTP response headers, or ``None`` for a non-HTTP stream
    """

    __slots__ = ()

    def __new__(cls, headers: Headers | None = None) -> Start:
        return _new(cls, (_as_headers(headers),))

    @property
    def headers(self) -> Headers | None:
        """
        The HTTP response headers of this connection, if available.

        Header name lookups are case-insensitive. ``None`` for non-HTTP connections.
        """
        headers: Headers | None = self[0]
        return headers

    def __repr__(self) -> str:
        headers = self[0]
        return f"Start(headers={dict(headers) if isinstance(headers, Mapping) else None!r})"


class Fault(_ActionTuple):
    """
    The stream failed, or the server ended it.

    :attr:`.SSEClient.all` yields a ``Fault`` each time a connection attempt fails or an open
    stream ends. The client is then inactive; reading on (or calling ``start()``) reconnects
    after the retry delay, unless the error strategy said to stop.

    :param error: the exception, or ``None`` when the server ended the stream in an orderly way
    """

    __slots__ = ()

    def __new__(cls, error: Exception | None) -> Fault:
        return _new(cls, (error,))

    @property
    def error(self) -> Exception | None:
        """
        The exception that ended the stream, or ``None`` if the server simply closed it.
        """
        error: Exception | None = self[0]
        return error

    @property
    def headers(self) -> Headers | None:
        """
        The HTTP response headers carried by the error, if any.

        Errors such as :class:`.HTTPStatusError` and :class:`.HTTPContentTypeError` carry
        them; for other errors, and for an orderly end of stream, this is ``None``.
        """
        error = self[0]
        if isinstance(error, ExceptionWithHeaders):
            headers = error.headers
            # Whatever the exception holds, lookups are case-insensitive.
            return _as_headers(headers) if isinstance(headers, Mapping) else headers
        return None

    def __repr__(self) -> str:
        return f"Fault({self[0]!r})"
