"""
Tests of :class:`ErrorStrategy` and :class:`RetryDelayStrategy`: every factory, immutability
(``apply`` returns the successor and never changes ``self``), argument checking, and the user
subclasses written as in the documented API.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ld_eventsource.config import ErrorStrategy, RetryDelayStrategy
from ld_eventsource.errors import HTTPStatusError

FAIL = ErrorStrategy.FAIL
CONTINUE = ErrorStrategy.CONTINUE


class FakeClock:
    """A monotonic clock that only moves when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.now


def constant(value: float) -> Callable[[], float]:
    return lambda: value


def run_delays(
    strategy: RetryDelayStrategy, base_delay: float, count: int
) -> tuple[list[float], RetryDelayStrategy]:
    """Applies a strategy ``count`` times in a row, following the successors."""
    delays = []
    for _ in range(count):
        delay, strategy = strategy.apply(base_delay)
        delays.append(delay)
    return delays, strategy


def run_decisions(
    strategy: ErrorStrategy, errors: list[Exception | None]
) -> tuple[list[bool], ErrorStrategy]:
    decisions = []
    for error in errors:
        decision, strategy = strategy.apply(error)
        decisions.append(decision)
    return decisions, strategy


# ---------------------------------------------------------------------------------------------
# ErrorStrategy
# ---------------------------------------------------------------------------------------------


def test_decision_constants_match_the_reference_values() -> None:
    # The reference implementation uses FAIL = True and CONTINUE = False; user strategies
    # written against it may return the bare booleans.
    assert ErrorStrategy.FAIL is True
    assert ErrorStrategy.CONTINUE is False


def test_error_strategy_base_class_apply_is_abstract() -> None:
    with pytest.raises(NotImplementedError):
        ErrorStrategy().apply(None)


ERRORS: list[Exception | None] = [
    None,
    ValueError("boom"),
    HTTPStatusError(503),
    HTTPStatusError(401, {"X": "y"}),
    OSError("connection reset"),
]


@pytest.mark.parametrize("error", ERRORS)
def test_always_fail(error: Exception | None) -> None:
    strategy = ErrorStrategy.always_fail()
    assert isinstance(strategy, ErrorStrategy)
    decision, successor = strategy.apply(error)
    assert decision is FAIL
    assert successor is strategy
    # Applying the same instance again gives the same answer.
    assert strategy.apply(error) == (FAIL, strategy)


@pytest.mark.parametrize("error", ERRORS)
def test_always_continue(error: Exception | None) -> None:
    strategy = ErrorStrategy.always_continue()
    assert isinstance(strategy, ErrorStrategy)
    decisions, last = run_decisions(strategy, [error] * 50)
    assert decisions == [CONTINUE] * 50
    assert last is strategy


def test_continue_with_max_attempts_counts_consecutive_failures() -> None:
    strategy = ErrorStrategy.continue_with_max_attempts(3)
    decisions, last = run_decisions(strategy, [ValueError(), None, HTTPStatusError(500)] * 2)
    assert decisions == [CONTINUE, CONTINUE, CONTINUE, FAIL, FAIL, FAIL]
    # Once exhausted, the strategy keeps failing and returns itself.
    decision, successor = last.apply(ValueError())
    assert decision is FAIL
    assert successor is last


def test_continue_with_max_attempts_is_immutable() -> None:
    strategy = ErrorStrategy.continue_with_max_attempts(max_attempts=2)
    first_decision, first_successor = strategy.apply(ValueError())
    assert first_decision is CONTINUE
    assert first_successor is not strategy
    # The original still has all its attempts: applying it again gives the same decision.
    again_decision, again_successor = strategy.apply(ValueError())
    assert again_decision is CONTINUE
    assert again_successor is not strategy
    # Each successor carries its own count.
    assert run_decisions(first_successor, [None, None])[0] == [CONTINUE, FAIL]
    assert run_decisions(again_successor, [None, None])[0] == [CONTINUE, FAIL]
    assert run_decisions(strategy, [None, None, None])[0] == [CONTINUE, CONTINUE, FAIL]


def test_continue_with_zero_max_attempts_fails_at_once() -> None:
    strategy = ErrorStrategy.continue_with_max_attempts(0)
    assert strategy.apply(ValueError()) == (FAIL, strategy)


def test_continue_with_max_attempts_large_count() -> None:
    decisions, _ = run_decisions(ErrorStrategy.continue_with_max_attempts(100), [None] * 101)
    assert decisions == [CONTINUE] * 100 + [FAIL]


def test_continue_with_time_limit_uses_the_injected_clock() -> None:
    clock = FakeClock(1000.0)
    strategy = ErrorStrategy.continue_with_time_limit(300, clock=clock)
    assert isinstance(strategy, ErrorStrategy)

    # The first failure starts the series, whatever the clock says.
    decision, started = strategy.apply(ValueError())
    assert decision is CONTINUE
    assert started is not strategy
    assert clock.calls >= 1

    clock.now = 1299.5
    decision, successor = started.apply(ValueError())
    assert decision is CONTINUE
    assert successor is started

    clock.now = 1300.0  # exactly max_time after the first failure: the limit is reached
    decision, successor = started.apply(None)
    assert decision is FAIL
    assert successor is started

    clock.now = 5000.0
    assert started.apply(ValueError())[0] is FAIL


def test_continue_with_time_limit_is_immutable() -> None:
    clock = FakeClock(0.0)
    strategy = ErrorStrategy.continue_with_time_limit(max_time=10.0, clock=clock)
    _, series_a = strategy.apply(ValueError())
    clock.now = 20.0
    # The original instance has not started a series: applying it starts a new one at 20.
    decision, series_b = strategy.apply(ValueError())
    assert decision is CONTINUE
    assert series_b is not strategy
    assert series_b is not series_a
    clock.now = 25.0
    assert series_a.apply(ValueError())[0] is FAIL  # 25 s after its start at 0
    assert series_b.apply(ValueError())[0] is CONTINUE  # 5 s after its start at 20
    clock.now = 30.0
    assert series_b.apply(ValueError())[0] is FAIL


def test_continue_with_zero_time_limit_continues_only_the_first_failure() -> None:
    clock = FakeClock(50.0)
    decisions, _ = run_decisions(
        ErrorStrategy.continue_with_time_limit(0, clock=clock), [ValueError(), ValueError()]
    )
    assert decisions == [CONTINUE, FAIL]


def test_continue_with_infinite_time_limit_never_fails() -> None:
    clock = FakeClock(0.0)
    strategy = ErrorStrategy.continue_with_time_limit(math.inf, clock=clock)
    for now in (0.0, 1e6, 1e12):
        clock.now = now
        decision, strategy = strategy.apply(ValueError())
        assert decision is CONTINUE


def test_continue_with_time_limit_default_clock_is_monotonic() -> None:
    strategy = ErrorStrategy.continue_with_time_limit(max_time=3600)
    decisions, _ = run_decisions(strategy, [ValueError()] * 3)
    assert decisions == [CONTINUE] * 3


def test_error_strategy_from_lambda_gets_the_exception_and_none_means_no_change() -> None:
    seen: list[Exception | None] = []

    def decide(error: Exception | None) -> tuple[bool, ErrorStrategy | None]:
        seen.append(error)
        return (FAIL if isinstance(error, HTTPStatusError) else CONTINUE, None)

    strategy = ErrorStrategy.from_lambda(decide)
    assert isinstance(strategy, ErrorStrategy)
    error = ValueError("x")
    assert strategy.apply(error) == (CONTINUE, strategy)
    assert strategy.apply(None) == (CONTINUE, strategy)
    http_error = HTTPStatusError(500)
    decision, successor = strategy.apply(http_error)
    assert decision is FAIL
    assert successor is strategy
    assert seen == [error, None, http_error]


def test_error_strategy_from_lambda_returns_the_given_successor() -> None:
    successor = ErrorStrategy.always_fail()
    strategy = ErrorStrategy.from_lambda(lambda error: (CONTINUE, successor))
    decision, got = strategy.apply(ValueError())
    assert decision is CONTINUE
    assert got is successor
    assert got.apply(ValueError()) == (FAIL, successor)


def test_error_strategy_from_lambda_keeps_a_falsy_successor() -> None:
    # Only ``None`` means "no change": a successor that happens to be falsy (a user strategy
    # that defines __len__ or __bool__) is still the successor.
    class Remaining(ErrorStrategy):
        def __init__(self, left: int) -> None:
            self.left = left

        def __len__(self) -> int:
            return self.left

        def apply(self, exception: Exception | None) -> tuple[bool, ErrorStrategy]:
            return (FAIL if self.left == 0 else CONTINUE, Remaining(max(self.left - 1, 0)))

    exhausted = Remaining(0)
    strategy = ErrorStrategy.from_lambda(lambda error: (CONTINUE, exhausted))
    assert strategy.apply(ValueError())[1] is exhausted


@pytest.mark.parametrize("bad", [-1, -100])
def test_continue_with_max_attempts_rejects_negative(bad: int) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        ErrorStrategy.continue_with_max_attempts(bad)


@pytest.mark.parametrize("bad", [True, False, "5", None, 2.5, math.nan])
def test_continue_with_max_attempts_rejects_non_int(bad: Any) -> None:
    with pytest.raises(TypeError, match="max_attempts"):
        ErrorStrategy.continue_with_max_attempts(bad)


@pytest.mark.parametrize("bad", [-1, -0.001, -math.inf, math.nan])
def test_continue_with_time_limit_rejects_negative_or_nan(bad: float) -> None:
    with pytest.raises(ValueError, match="max_time"):
        ErrorStrategy.continue_with_time_limit(bad)


@pytest.mark.parametrize("bad", [True, False, "300", None, [300]])
def test_continue_with_time_limit_rejects_non_number(bad: Any) -> None:
    with pytest.raises(TypeError, match="max_time"):
        ErrorStrategy.continue_with_time_limit(bad)


@pytest.mark.parametrize("bad", [None, 5, "time.monotonic"])
def test_continue_with_time_limit_rejects_non_callable_clock(bad: Any) -> None:
    with pytest.raises(TypeError, match="clock"):
        ErrorStrategy.continue_with_time_limit(10, clock=bad)


@pytest.mark.parametrize("bad", [None, 5, "lambda", (CONTINUE, None)])
def test_error_strategy_from_lambda_rejects_non_callable(bad: Any) -> None:
    with pytest.raises(TypeError, match="callable"):
        ErrorStrategy.from_lambda(bad)


# ---------------------------------------------------------------------------------------------
# RetryDelayStrategy
# ---------------------------------------------------------------------------------------------


def test_retry_delay_base_class_returns_base_delay_and_self() -> None:
    strategy = RetryDelayStrategy()
    for base in (0.0, 1.0, 2.5, 1000.0):
        delay, successor = strategy.apply(base)
        assert delay == base
        assert successor is strategy


def test_default_doubles_from_the_base_delay_and_caps_at_30_seconds() -> None:
    strategy = RetryDelayStrategy.default(random=constant(0.0))
    delays, _ = run_delays(strategy, 1.0, 8)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_default_starts_from_the_base_delay_given_to_apply() -> None:
    delays, _ = run_delays(RetryDelayStrategy.default(random=constant(0.0)), 3.0, 5)
    assert delays == [3.0, 6.0, 12.0, 24.0, 30.0]


def test_default_caps_a_base_delay_above_the_maximum() -> None:
    delays, _ = run_delays(RetryDelayStrategy.default(random=constant(0.0)), 100.0, 3)
    assert delays == [30.0, 30.0, 30.0]


def test_default_subtracts_up_to_half_as_jitter() -> None:
    # random() == 0.5 subtracts a quarter of each (capped) delay.
    delays, _ = run_delays(RetryDelayStrategy.default(random=constant(0.5)), 1.0, 7)
    assert delays == [0.75, 1.5, 3.0, 6.0, 12.0, 22.5, 22.5]


def test_default_jitter_close_to_one_subtracts_almost_half() -> None:
    delays, _ = run_delays(RetryDelayStrategy.default(random=constant(0.999999)), 1.0, 7)
    expected = [b * (1 - 0.999999 * 0.5) for b in (1, 2, 4, 8, 16, 30, 30)]
    assert delays == pytest.approx(expected, rel=1e-12)
    # Never less than half of the undelayed value.
    for delay, base in zip(delays, (1, 2, 4, 8, 16, 30, 30), strict=True):
        assert base / 2 < delay < base


def test_default_jitter_does_not_compound() -> None:
    # The next delay doubles the previous *unjittered* delay, not the jittered one.
    random_values = iter([0.9, 0.0, 0.9, 0.0])
    strategy = RetryDelayStrategy.default(random=lambda: next(random_values))
    delays, _ = run_delays(strategy, 2.0, 4)
    assert delays == pytest.approx([2.0 * 0.55, 4.0, 8.0 * 0.55, 16.0])


def test_default_with_real_random_stays_in_range() -> None:
    strategy = RetryDelayStrategy.default()
    delays, _ = run_delays(strategy, 1.0, 10)
    for delay, base in zip(delays, (1, 2, 4, 8, 16, 30, 30, 30, 30, 30), strict=True):
        assert base / 2 <= delay <= base


def test_default_explicit_none_means_no_cap_and_no_jitter() -> None:
    # The reference behaviour of RetryDelayStrategy.default(max_delay=None, ...,
    # jitter_multiplier=None): unbounded doubling, exact delays.
    def no_random() -> float:
        raise AssertionError("random must not be used without jitter")

    strategy = RetryDelayStrategy.default(max_delay=None, jitter_multiplier=None, random=no_random)
    delays, _ = run_delays(strategy, 1.0, 12)
    assert delays == [float(2**n) for n in range(12)]


def test_default_explicit_none_max_delay_keeps_default_jitter() -> None:
    delays, _ = run_delays(RetryDelayStrategy.default(None, random=constant(0.5)), 1.0, 8)
    assert delays == [0.75 * 2**n for n in range(8)]


def test_default_explicit_none_jitter_keeps_default_cap() -> None:
    strategy = RetryDelayStrategy.default(jitter_multiplier=None, random=constant(0.5))
    delays, _ = run_delays(strategy, 4.0, 5)
    assert delays == [4.0, 8.0, 16.0, 30.0, 30.0]


def test_default_zero_max_delay_and_zero_jitter_mean_none() -> None:
    def no_random() -> float:
        raise AssertionError("random must not be used without jitter")

    strategy = RetryDelayStrategy.default(max_delay=0, jitter_multiplier=0, random=no_random)
    delays, _ = run_delays(strategy, 1.0, 10)
    assert delays == [float(2**n) for n in range(10)]


def test_default_custom_multipliers() -> None:
    # As in the documented configuration example (with a deterministic random).
    strategy = RetryDelayStrategy.default(
        max_delay=120, backoff_multiplier=1.5, jitter_multiplier=0.5, random=constant(0.0)
    )
    delays, _ = run_delays(strategy, 10.0, 7)
    assert delays == pytest.approx([10.0, 15.0, 22.5, 33.75, 50.625, 75.9375, 113.90625])
    assert run_delays(strategy, 10.0, 9)[0][7:] == [120.0, 120.0]

    jittered = RetryDelayStrategy.default(
        max_delay=60, backoff_multiplier=3, jitter_multiplier=0.2, random=constant(0.5)
    )
    delays, _ = run_delays(jittered, 1.0, 5)
    assert delays == pytest.approx([0.9, 2.7, 8.1, 24.3, 54.0])


def test_default_backoff_multiplier_one_keeps_the_delay() -> None:
    strategy = RetryDelayStrategy.default(backoff_multiplier=1, jitter_multiplier=None)
    assert run_delays(strategy, 7.0, 5)[0] == [7.0] * 5


def test_default_full_jitter() -> None:
    strategy = RetryDelayStrategy.default(jitter_multiplier=1, random=constant(0.25))
    delays, _ = run_delays(strategy, 4.0, 3)
    assert delays == [3.0, 6.0, 12.0]


def test_default_documented_examples_with_real_random() -> None:
    # The calls of the documented configuration examples, as written there.
    strategy = RetryDelayStrategy.default(
        max_delay=120, backoff_multiplier=1.5, jitter_multiplier=0.5
    )
    delays, _ = run_delays(strategy, 1.0, 20)
    bases = [min(1.5**n, 120.0) for n in range(20)]
    for delay, base in zip(delays, bases, strict=True):
        assert base * 0.5 - 1e-9 <= delay <= base + 1e-9

    strategy = RetryDelayStrategy.default(max_delay=60, backoff_multiplier=2, jitter_multiplier=0.5)
    delays, _ = run_delays(strategy, 1.0, 10)
    for delay, base in zip(delays, [min(2.0**n, 60.0) for n in range(10)], strict=True):
        assert base * 0.5 <= delay <= base


def test_default_is_immutable() -> None:
    strategy = RetryDelayStrategy.default(random=constant(0.5))
    delay_1, successor_1 = strategy.apply(2.0)
    delay_2, successor_2 = strategy.apply(2.0)
    assert delay_1 == delay_2 == 1.5
    assert successor_1 is not strategy
    assert successor_2 is not strategy
    # The successors continue the backoff; the original starts over.
    assert successor_1.apply(2.0)[0] == 3.0
    assert successor_2.apply(2.0)[0] == 3.0
    assert successor_1.apply(2.0)[0] == 3.0
    assert strategy.apply(2.0)[0] == 1.5
    # Going on from a successor does not affect the others.
    assert run_delays(successor_1, 2.0, 3)[0] == [3.0, 6.0, 12.0]
    assert run_delays(strategy, 2.0, 3)[0] == [1.5, 3.0, 6.0]


@given(
    base=st.floats(min_value=0.0, max_value=1000.0),
    backoff=st.floats(min_value=1.0, max_value=10.0),
    cap=st.floats(min_value=0.001, max_value=10_000.0),
    jitter=st.floats(min_value=0.0, max_value=1.0),
    rand=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    count=st.integers(min_value=1, max_value=30),
)
def test_default_delay_formula(
    base: float, backoff: float, cap: float, jitter: float, rand: float, count: int
) -> None:
    strategy = RetryDelayStrategy.default(
        max_delay=cap, backoff_multiplier=backoff, jitter_multiplier=jitter, random=constant(rand)
    )
    delays, _ = run_delays(strategy, base, count)
    expected_base = min(base, cap)
    for delay in delays:
        assert delay == pytest.approx(expected_base * (1 - rand * jitter), rel=1e-9, abs=1e-12)
        assert expected_base * (1 - jitter) - 1e-9 <= delay <= expected_base
        assert delay <= cap
        expected_base = min(expected_base * backoff, cap)


def test_retry_delay_from_lambda_none_means_no_change() -> None:
    seen: list[float] = []

    def compute(base: float) -> tuple[float, RetryDelayStrategy | None]:
        seen.append(base)
        return (base * 3, None)

    strategy = RetryDelayStrategy.from_lambda(compute)
    assert isinstance(strategy, RetryDelayStrategy)
    assert strategy.apply(2.0) == (6.0, strategy)
    assert strategy.apply(5.0) == (15.0, strategy)
    assert seen == [2.0, 5.0]


def test_retry_delay_from_lambda_returns_the_given_successor() -> None:
    successor = RetryDelayStrategy()
    strategy = RetryDelayStrategy.from_lambda(lambda base: (0.25, successor))
    delay, got = strategy.apply(9.0)
    assert delay == 0.25
    assert got is successor
    assert got.apply(9.0) == (9.0, successor)


def test_retry_delay_from_lambda_can_chain_lambdas() -> None:
    def stepping(step: int) -> RetryDelayStrategy:
        return RetryDelayStrategy.from_lambda(lambda base: (base + step, stepping(step + 1)))

    strategy = stepping(0)
    assert run_delays(strategy, 10.0, 4)[0] == [10.0, 11.0, 12.0, 13.0]
    assert strategy.apply(10.0)[0] == 10.0


def test_retry_delay_from_lambda_keeps_a_falsy_successor() -> None:
    # As for ErrorStrategy.from_lambda: only ``None`` means "no change".
    class Falsy(RetryDelayStrategy):
        def __bool__(self) -> bool:
            return False

    falsy = Falsy()
    strategy = RetryDelayStrategy.from_lambda(lambda base: (base, falsy))
    assert strategy.apply(1.0)[1] is falsy


@pytest.mark.parametrize("bad", [-1, -0.5, -math.inf, math.nan])
def test_default_rejects_negative_or_nan_max_delay(bad: float) -> None:
    with pytest.raises(ValueError, match="max_delay"):
        RetryDelayStrategy.default(max_delay=bad)


@pytest.mark.parametrize("bad", [True, False, "30", [30]])
def test_default_rejects_non_number_max_delay(bad: Any) -> None:
    with pytest.raises(TypeError, match="max_delay"):
        RetryDelayStrategy.default(max_delay=bad)


@pytest.mark.parametrize("bad", [-0.1, 1.0001, 2, -math.inf, math.inf, math.nan])
def test_default_rejects_jitter_outside_0_1(bad: float) -> None:
    with pytest.raises(ValueError, match="jitter_multiplier"):
        RetryDelayStrategy.default(jitter_multiplier=bad)


@pytest.mark.parametrize("bad", [True, False, "0.5", [0.5]])
def test_default_rejects_non_number_jitter(bad: Any) -> None:
    with pytest.raises(TypeError, match="jitter_multiplier"):
        RetryDelayStrategy.default(jitter_multiplier=bad)


@pytest.mark.parametrize("bad", [0, 0.5, 0.999, -2, math.nan, math.inf])
def test_default_rejects_backoff_below_one(bad: float) -> None:
    with pytest.raises(ValueError, match="backoff_multiplier"):
        RetryDelayStrategy.default(backoff_multiplier=bad)


@pytest.mark.parametrize("bad", [True, False, None, "2", [2]])
def test_default_rejects_non_number_backoff(bad: Any) -> None:
    with pytest.raises(TypeError, match="backoff_multiplier"):
        RetryDelayStrategy.default(backoff_multiplier=bad)


@pytest.mark.parametrize("bad", [0.5, "random", [0.5]])
def test_default_rejects_non_callable_random(bad: Any) -> None:
    with pytest.raises(TypeError, match="random"):
        RetryDelayStrategy.default(random=bad)


@pytest.mark.parametrize("bad", [None, 1.0, "lambda", (1.0, None)])
def test_retry_delay_from_lambda_rejects_non_callable(bad: Any) -> None:
    with pytest.raises(TypeError, match="callable"):
        RetryDelayStrategy.from_lambda(bad)


def test_default_accepts_boundary_values() -> None:
    # Boundaries that are valid: no error, and the behaviour they stand for.
    strategy = RetryDelayStrategy.default(max_delay=math.inf, random=constant(0.0))
    assert run_delays(strategy, 1.0, 40)[0] == [float(2**n) for n in range(40)]
    strategy = RetryDelayStrategy.default(
        max_delay=5, backoff_multiplier=1.0, jitter_multiplier=0.0
    )
    assert run_delays(strategy, 5.0, 3)[0] == [5.0, 5.0, 5.0]
    strategy = RetryDelayStrategy.default(jitter_multiplier=1.0, random=constant(0.0))
    assert run_delays(strategy, 5.0, 2)[0] == [5.0, 10.0]


# ---------------------------------------------------------------------------------------------
# The user subclasses of the documented API, written as there (annotated for mypy --strict)
# ---------------------------------------------------------------------------------------------


class FibonacciBackoffStrategy(RetryDelayStrategy):
    """Fibonacci sequence backoff: 1, 1, 2, 3, 5, 8, 13..."""

    def __init__(self, fib_prev: int = 0, fib_curr: int = 1, max_delay: int = 60) -> None:
        self.fib_prev = fib_prev
        self.fib_curr = fib_curr
        self.max_delay = max_delay

    def apply(self, base_delay: float) -> tuple[float, RetryDelayStrategy]:
        # Compute next Fibonacci number
        next_fib = min(self.fib_prev + self.fib_curr, self.max_delay)
        # Create strategy for next retry
        next_strategy = FibonacciBackoffStrategy(
            fib_prev=self.fib_curr, fib_curr=next_fib, max_delay=self.max_delay
        )
        return (float(next_fib), next_strategy)


class RetryableHTTPErrorStrategy(ErrorStrategy):
    def __init__(self, retryable_statuses: set[int] | None = None, max_retries: int = 3) -> None:
        self.retryable_statuses = retryable_statuses or {429, 503}
        self.max_retries = max_retries
        self.retry_count = 0

    def apply(self, exception: Exception | None) -> tuple[bool, ErrorStrategy]:
        if exception is None:
            # Stream ended normally
            return (ErrorStrategy.FAIL, self)
        if not isinstance(exception, HTTPStatusError):
            # Non-HTTP errors always fail
            return (ErrorStrategy.FAIL, self)
        if exception.status in self.retryable_statuses:
            if self.retry_count < self.max_retries:
                # Retry with incremented counter
                next_strategy = RetryableHTTPErrorStrategy(
                    self.retryable_statuses, self.max_retries
                )
                next_strategy.retry_count = self.retry_count + 1
                return (ErrorStrategy.CONTINUE, next_strategy)
            else:
                return (ErrorStrategy.FAIL, self)
        # Non-retryable status
        return (ErrorStrategy.FAIL, self)


def test_documented_fibonacci_backoff_strategy() -> None:
    strategy = FibonacciBackoffStrategy()
    assert isinstance(strategy, RetryDelayStrategy)
    delays, _ = run_delays(strategy, 1.0, 12)
    assert delays == [1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0, 60.0, 60.0, 60.0]
    # It is immutable, as the documentation asks.
    assert strategy.apply(1.0)[0] == 1.0
    assert (strategy.fib_prev, strategy.fib_curr) == (0, 1)


def test_documented_retryable_http_error_strategy() -> None:
    strategy = RetryableHTTPErrorStrategy()
    assert isinstance(strategy, ErrorStrategy)
    decisions, last = run_decisions(
        strategy,
        [HTTPStatusError(503), HTTPStatusError(429), HTTPStatusError(503), HTTPStatusError(503)],
    )
    assert decisions == [CONTINUE, CONTINUE, CONTINUE, FAIL]
    assert isinstance(last, RetryableHTTPErrorStrategy)
    assert last.retry_count == 3
    assert strategy.retry_count == 0

    assert strategy.apply(None) == (FAIL, strategy)
    assert strategy.apply(ValueError("network")) == (FAIL, strategy)
    assert strategy.apply(HTTPStatusError(500)) == (FAIL, strategy)
    assert strategy.apply(HTTPStatusError(401, {"WWW-Authenticate": "Bearer"})) == (
        FAIL,
        strategy,
    )

    custom = RetryableHTTPErrorStrategy(retryable_statuses={500}, max_retries=1)
    assert run_decisions(custom, [HTTPStatusError(500)] * 2)[0] == [CONTINUE, FAIL]
    assert custom.apply(HTTPStatusError(503))[0] is FAIL


def test_documented_immutable_strategy_example() -> None:
    # Good: Create new instance
    class MyStrategy(ErrorStrategy):
        def __init__(self, count: int = 0) -> None:
            self.count = count

        def apply(self, exception: Exception | None) -> tuple[bool, ErrorStrategy]:
            # Return NEW strategy with updated state
            next_strategy = MyStrategy(count=self.count + 1)
            return (ErrorStrategy.CONTINUE, next_strategy)

    strategy = MyStrategy()
    decisions, last = run_decisions(strategy, [ValueError(), None, ValueError()])
    assert decisions == [CONTINUE] * 3
    assert isinstance(last, MyStrategy)
    assert last.count == 3
    assert strategy.count == 0


def test_documented_logging_strategy_example(caplog: pytest.LogCaptureFixture) -> None:
    class MyStrategy(ErrorStrategy):
        def __init__(self, logger: logging.Logger | None = None) -> None:
            self.logger = logger or logging.getLogger(__name__)

        def apply(self, exception: Exception | None) -> tuple[bool, ErrorStrategy]:
            if exception is None:
                self.logger.debug("Stream ended normally")
            else:
                self.logger.warning(f"Stream error: {exception}")
            return (ErrorStrategy.CONTINUE, self)

    strategy = MyStrategy()
    with caplog.at_level(logging.DEBUG, logger=__name__):
        assert strategy.apply(None) == (CONTINUE, strategy)
        assert strategy.apply(HTTPStatusError(503)) == (CONTINUE, strategy)
    messages = [(record.levelno, record.getMessage()) for record in caplog.records]
    assert messages == [
        (logging.DEBUG, "Stream ended normally"),
        (logging.WARNING, "Stream error: HTTP error 503"),
    ]


def test_user_subclasses_work_through_from_lambda_successors() -> None:
    # A lambda strategy may hand over to a user subclass.
    fib = FibonacciBackoffStrategy()
    strategy = RetryDelayStrategy.from_lambda(lambda base: (base, fib))
    delays, last = run_delays(strategy, 1.0, 4)
    assert delays == [1.0, 1.0, 2.0, 3.0]
    assert isinstance(last, FibonacciBackoffStrategy)
