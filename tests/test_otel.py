"""
ld_eventsource.otel: the clients' counters read by the OpenTelemetry SDK's in-memory metric
reader, with both clients against a real server on 127.0.0.1.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from ld_eventsource import ClientStats, otel, testing
from ld_eventsource.config import ErrorStrategy, RetryDelayStrategy
from tests.drivers import Driver

FAST: dict[str, Any] = {
    "initial_retry_delay": 0.01,
    "retry_delay_strategy": RetryDelayStrategy.default(jitter_multiplier=None),
    "error_strategy": ErrorStrategy.always_continue(),
}


def points(reader: InMemoryMetricReader) -> dict[str, dict[tuple[tuple[str, Any], ...], Any]]:
    """Every data point collected now: by metric name, then by sorted attributes."""
    out: dict[str, dict[tuple[tuple[str, Any], ...], Any]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                series = out.setdefault(metric.name, {})
                for point in metric.data.data_points:
                    assert isinstance(point, NumberDataPoint)  # counters and gauges only
                    series[tuple(sorted((point.attributes or {}).items()))] = point.value
    return out


def key(*attributes: tuple[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The key of a data point in :func:`collect`'s series: its attributes, sorted."""
    return tuple(sorted(attributes))


def test_the_counters_as_metrics(driver: Driver) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        metrics = otel.SSEMetrics(provider.get_meter("test"))
        with testing.SSEServer() as server:
            server.send("a", id="1")
            server.send(comment="ping")
            server.drop("end")
            server.respond(500)
            server.send("b", id="2")
            client = driver.client(server.url, **FAST)
            other = driver.client(server.url + "/other", **FAST)
            metrics.add(client, {"stream": "one"})
            metrics.add(other, {"stream": "two"})
            driver.take(client, 7)  # Start, a, ping, Fault(None), Fault(500), Start, b
            collected = points(reader)
            driver.close(client)
            driver.close(other)
            closed = points(reader)
    finally:
        provider.shutdown()
    one, two = (("stream", "one"),), (("stream", "two"),)
    assert collected["sse.client.events"] == {one: 2, two: 0}
    assert collected["sse.client.comments"][one] == 1
    assert collected["sse.client.connections"][one] == 2
    assert collected["sse.client.connection_attempts"][one] == 3
    assert collected["sse.client.received"][one] > 0
    failures = collected["sse.client.failures"]
    assert failures[key(("sse.failure.kind", "ended"), *one)] == 1
    assert failures[key(("sse.failure.kind", "http_status"), *one)] == 1
    assert failures[key(("sse.failure.kind", "network"), *one)] == 0
    states = collected["sse.client.streams"]
    assert states[key(("sse.client.state", "open"), *one)] == 1
    assert states[key(("sse.client.state", "idle"), *two)] == 1
    assert states[key(("sse.client.state", "open"), *two)] == 0
    assert collected["sse.client.event_age"][one] >= 0
    assert one in collected["sse.client.retry_delay"]
    assert two not in collected["sse.client.event_age"]  # no event yet
    assert closed["sse.client.streams"][key(("sse.client.state", "closed"), *one)] == 1
    assert closed["sse.client.events"][one] == 2  # the counts stay


class Counted:
    """A stats source that counts how often it is read."""

    def __init__(self, stats: ClientStats):
        self._stats = stats
        self.reads = 0

    @property
    def stats(self) -> ClientStats:
        self.reads += 1
        return self._stats


def test_clients_with_the_same_attributes_add_up(driver: Driver) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        metrics = otel.SSEMetrics(provider.get_meter("test"))
        with testing.SSEServer() as server:
            server.send("a")
            client = driver.client(server.url, **FAST)
            driver.take(client, 2)
            stats = client.stats
            driver.close(client)
        sources = [Counted(stats), Counted(stats)]
        for source in sources:
            metrics.add(source, {"pool": "p"})
        collected = points(reader)
        metrics.remove(sources[1])
        after_remove = points(reader)
    finally:
        provider.shutdown()
    assert collected["sse.client.events"] == {(("pool", "p"),): 2}
    assert after_remove["sse.client.events"] == {(("pool", "p"),): 1}
    assert sources[1].reads >= 1


def test_nothing_happens_without_an_sdk() -> None:
    # No meter provider is configured in this process: the API's meter takes the
    # instruments and never calls back.
    source = Counted(ClientStats.__new__(ClientStats))
    metrics = otel.instrument(source, attributes={"stream": "x"})
    assert otel.instrument(source) is metrics  # one per meter
    assert source.reads == 0
