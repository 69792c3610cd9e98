"""The reconnection policy, driven through each rule with a fake clock."""

from __future__ import annotations

import logging

import pytest

from ld_eventsource import SSEClient
from ld_eventsource._reconnect import ReconnectPolicy
from ld_eventsource.config import ErrorStrategy, RetryDelayStrategy

LOGGER = logging.getLogger("test")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def policy(clock: Clock, **kwargs: object) -> ReconnectPolicy:
    args: dict[str, object] = {
        "initial_retry_delay": 1.0,
        "retry_delay_strategy": RetryDelayStrategy.default(jitter_multiplier=None),
        "retry_delay_reset_threshold": 60.0,
        "error_strategy": ErrorStrategy.always_continue(),
        "last_event_id": None,
        "logger": LOGGER,
        "clock": clock,
    }
    args.update(kwargs)
    return ReconnectPolicy(**args)  # type: ignore[arg-type]


def test_no_delay_before_the_first_connection() -> None:
    clock = Clock()
    p = policy(clock)
    assert p.delay() == 0
    assert p.next_retry_delay == 0


def test_backoff_grows_during_an_outage_up_to_the_cap() -> None:
    clock = Clock()
    p = policy(
        clock, retry_delay_strategy=RetryDelayStrategy.default(max_delay=5, jitter_multiplier=None)
    )
    delays = []
    for _ in range(6):
        assert p.should_retry(OSError("refused"))
        delays.append(p.next_retry_delay)
        clock.now += 100  # a long outage: still no reset, nothing connected
    assert delays == [1, 2, 4, 5, 5, 5]


def test_backoff_restarts_only_after_a_stable_connection() -> None:
    clock = Clock()
    p = policy(clock)
    p.connected()
    clock.now += 10
    p.should_retry(None)
    assert p.next_retry_delay == 1
    p.connected()
    clock.now += 10  # short-lived: the backoff goes on
    p.should_retry(None)
    assert p.next_retry_delay == 2
    p.connected()
    clock.now += 60  # stayed up for the threshold: start over
    p.should_retry(None)
    assert p.next_retry_delay == 1


def test_error_strategy_restarts_after_a_stable_connection() -> None:
    clock = Clock()
    p = policy(clock, error_strategy=ErrorStrategy.continue_with_max_attempts(2))
    assert p.should_retry(OSError())
    assert p.should_retry(OSError())
    p.connected()
    clock.now += 5
    assert not p.should_retry(OSError())  # third consecutive failure: the connection was short
    p = policy(clock, error_strategy=ErrorStrategy.continue_with_max_attempts(2))
    assert p.should_retry(OSError())
    assert p.should_retry(OSError())
    p.connected()
    clock.now += 61
    assert p.should_retry(OSError())  # counted again from zero


def test_delay_is_counted_from_the_loss() -> None:
    clock = Clock()
    p = policy(clock, initial_retry_delay=4.0)
    p.connected()
    clock.now += 1
    p.should_retry(None)
    assert p.delay() == 4
    clock.now += 1.5
    assert p.delay() == pytest.approx(2.5)
    clock.now += 10
    assert p.delay() == 0


def test_delay_is_not_reused_from_an_old_loss() -> None:
    clock = Clock()
    p = policy(clock, initial_retry_delay=4.0)
    p.connected()
    p.should_retry(None)
    clock.now += 3600  # long after the first loss, a new connection and a new loss
    p.connected()
    clock.now += 1
    p.should_retry(None)
    assert p.delay() == pytest.approx(p.next_retry_delay)
    assert p.delay() > 0


def test_retry_field_sets_the_base_delay() -> None:
    clock = Clock()
    p = policy(clock)
    p.set_retry(250)
    p.should_retry(None)
    assert p.next_retry_delay == 0.25
    p.should_retry(None)
    assert p.next_retry_delay == 0.5


def test_zero_threshold_resets_after_every_connection() -> None:
    clock = Clock()
    p = policy(clock, retry_delay_reset_threshold=0)
    for _ in range(3):
        p.connected()
        p.should_retry(None)
        assert p.next_retry_delay == 1


def test_fail_decision() -> None:
    clock = Clock()
    p = policy(clock, error_strategy=ErrorStrategy.always_fail())
    assert not p.should_retry(OSError())
    assert not p.should_retry(None)


def test_last_event_id_is_kept() -> None:
    p = policy(Clock(), last_event_id="abc")
    assert p.last_event_id == "abc"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"initial_retry_delay": -0.1}, ValueError),
        ({"initial_retry_delay": float("nan")}, ValueError),
        ({"initial_retry_delay": None}, TypeError),
        ({"initial_retry_delay": True}, TypeError),
        ({"retry_delay_reset_threshold": -1}, ValueError),
        ({"error_strategy": object()}, TypeError),
        ({"retry_delay_strategy": "x"}, TypeError),
        ({"last_event_id": 1}, TypeError),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], error: type[Exception]) -> None:
    # The client checks the arguments the policy is made of (and fills in the defaults), so
    # that the policy itself needs nothing of the public config package.
    with pytest.raises(error):
        SSEClient("http://127.0.0.1:9/", **kwargs)  # type: ignore[arg-type]


def test_logs_errors_lazily(caplog: pytest.LogCaptureFixture) -> None:
    p = policy(Clock())
    with caplog.at_level(logging.WARNING, logger="test"):
        p.should_retry(OSError("boom"))
    assert "boom" in caplog.text
