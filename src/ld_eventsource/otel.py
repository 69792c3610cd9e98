"""
The counters of the clients (:attr:`.SSEClient.stats`, :attr:`.AsyncSSEClient.stats`) as
OpenTelemetry metrics. Needs the ``otel`` extra (``opentelemetry-api``).

.. code-block:: python

    from ld_eventsource import SSEClient, otel

    with SSEClient("https://example.com/stream") as client:
        otel.instrument(client, attributes={"stream": "prices"})
        for event in client.events:
            print(event.data)

Every instrument is observable: its callback reads the clients' snapshots when the SDK
collects, so instrumenting costs nothing per event, and nothing at all when no SDK is
configured (the API's meter does nothing then). The instruments, each with the caller's
attributes of each client:

* ``sse.client.connection_attempts`` (counter): :attr:`.ClientStats.connection_attempts`;
* ``sse.client.connections`` (counter): :attr:`.ClientStats.connections`;
* ``sse.client.failures`` (counter): :attr:`.ClientStats.failures`, a series for each
  ``sse.failure.kind``;
* ``sse.client.events`` and ``sse.client.comments`` (counters): :attr:`.ClientStats.events`,
  :attr:`.ClientStats.comments`;
* ``sse.client.received`` (counter, ``By``): :attr:`.ClientStats.bytes_received`;
* ``sse.client.streams`` (up-down counter): how many clients are in each
  ``sse.client.state``;
* ``sse.client.event_age`` (gauge, ``s``): seconds since the last event, the oldest of the
  series (no point before a first event);
* ``sse.client.retry_delay`` (gauge, ``s``): :attr:`.ClientStats.retry_delay`, the largest
  of the series.

Clients with the same attributes add up into one series. A client is observed for as long
as it exists (closed, its counts stay as they were); :meth:`SSEMetrics.remove` stops that.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from ld_eventsource.stats import FAILURE_KINDS, STATES, ClientStats
from ld_eventsource.version import VERSION

__all__ = ["SSEMetrics", "StatsSource", "instrument"]

Attributes = Mapping[str, Any]
_Key = tuple[tuple[str, Any], ...]


class StatsSource(Protocol):
    """What can be observed: :class:`.SSEClient`, :class:`.AsyncSSEClient`, or anything with
    a ``stats`` snapshot of the same kind."""

    @property
    def stats(self) -> ClientStats:
        """The snapshot (see :class:`.ClientStats`)."""
        ...


class SSEMetrics:
    """
    The instruments of one meter, and the clients they observe. Make one per meter (the
    instruments are created here, once), then :meth:`add` each client.

    :param meter: where the instruments go; the global meter provider's meter of this
        package if ``None``
    """

    def __init__(self, meter: Meter | None = None):
        if meter is None:
            meter = metrics.get_meter("ld_eventsource", VERSION)
        self.meter = meter
        """The meter of the instruments."""
        self._clients: weakref.WeakKeyDictionary[Any, _Key] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        counters: list[tuple[str, str, str, Callable[[ClientStats], int]]] = [
            ("connection_attempts", "{attempt}", "Connection attempts started",
             lambda s: s.connection_attempts),
            ("connections", "{connection}", "Connection attempts that connected",
             lambda s: s.connections),
            ("events", "{event}", "Events received", lambda s: s.events),
            ("comments", "{comment}", "Comment lines received", lambda s: s.comments),
            ("received", "By", "Bytes of the event streams received",
             lambda s: s.bytes_received),
        ]  # fmt: skip
        for name, unit, description, value in counters:
            meter.create_observable_counter(
                f"sse.client.{name}", [self._sum(value)], unit=unit, description=description
            )
        meter.create_observable_counter(
            "sse.client.failures",
            [self._failures],
            unit="{failure}",
            description="Failed connection attempts and ended streams, by sse.failure.kind",
        )
        meter.create_observable_up_down_counter(
            "sse.client.streams",
            [self._states],
            unit="{client}",
            description="Clients, by sse.client.state",
        )
        meter.create_observable_gauge(
            "sse.client.event_age",
            [self._event_age],
            unit="s",
            description="Seconds since the last event (the oldest of the series)",
        )
        meter.create_observable_gauge(
            "sse.client.retry_delay",
            [self._retry_delay],
            unit="s",
            description="The delay before the next reconnection (the largest of the series)",
        )

    def add(self, client: StatsSource, attributes: Attributes | None = None) -> None:
        """
        Observes ``client``, its series marked with ``attributes`` (such as the name of the
        stream); adding it again changes its attributes.
        """
        key = tuple(sorted((attributes or {}).items()))
        with self._lock:
            self._clients[client] = key

    def remove(self, client: StatsSource) -> None:
        """Stops observing ``client`` (nothing happens if it was not observed)."""
        with self._lock:
            self._clients.pop(client, None)

    def _snapshots(self) -> Iterator[tuple[_Key, ClientStats]]:
        with self._lock:
            clients = list(self._clients.items())
        for client, key in clients:
            yield key, client.stats

    def _sum(
        self, value: Callable[[ClientStats], int]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            totals: dict[_Key, int] = {}
            for key, stats in self._snapshots():
                totals[key] = totals.get(key, 0) + value(stats)
            return [Observation(total, dict(key)) for key, total in totals.items()]

        return callback

    def _failures(self, options: CallbackOptions) -> Iterable[Observation]:
        totals: dict[_Key, int] = {}
        for key, stats in self._snapshots():
            for kind in FAILURE_KINDS:
                series = (*key, ("sse.failure.kind", kind))
                totals[series] = totals.get(series, 0) + stats.failures.get(kind, 0)
        return [Observation(total, dict(key)) for key, total in totals.items()]

    def _states(self, options: CallbackOptions) -> Iterable[Observation]:
        totals: dict[_Key, int] = {}
        for key, stats in self._snapshots():
            for state in STATES:  # every state of every series, 0 included
                series = (*key, ("sse.client.state", state))
                totals[series] = totals.get(series, 0) + (stats.state == state)
        return [Observation(total, dict(key)) for key, total in totals.items()]

    def _event_age(self, options: CallbackOptions) -> Iterable[Observation]:
        now = time.monotonic()
        oldest: dict[_Key, float] = {}
        for key, stats in self._snapshots():
            if stats.last_event_at is not None:
                age = now - stats.last_event_at
                oldest[key] = max(oldest.get(key, age), age)
        return [Observation(age, dict(key)) for key, age in oldest.items()]

    def _retry_delay(self, options: CallbackOptions) -> Iterable[Observation]:
        largest: dict[_Key, float] = {}
        for key, stats in self._snapshots():
            largest[key] = max(largest.get(key, 0.0), stats.retry_delay)
        return [Observation(delay, dict(key)) for key, delay in largest.items()]


_DEFAULT: dict[int, SSEMetrics] = {}
_DEFAULT_LOCK = threading.Lock()


def instrument(
    client: StatsSource, *, attributes: Attributes | None = None, meter: Meter | None = None
) -> SSEMetrics:
    """
    Observes ``client`` with the :class:`SSEMetrics` of ``meter`` (made on first use, one
    per meter; the package's meter of the global provider if ``None``), and returns it.

    :param attributes: the attributes of the client's series, such as the stream's name
    """
    with _DEFAULT_LOCK:
        key = id(meter)
        found = _DEFAULT.get(key)
        if found is None or (meter is not None and found.meter is not meter):
            found = _DEFAULT[key] = SSEMetrics(meter)
    found.add(client, attributes)
    return found
