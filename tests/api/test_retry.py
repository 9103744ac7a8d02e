"""The retry policy: which failed attempts are tried again, and how long the client waits."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.api.retry import RetryPolicy, parse_retry_after

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
NEGATIVE = "backoff, Retry-After cap and deadline cannot be negative"


def upper_bound(low: float, high: float) -> float:
    """A `uniform` that always draws the longest wait, after checking that jitter starts at 0."""
    assert low == 0.0
    return high


def test_the_defaults_are_the_documented_ones() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.backoff_base, policy.backoff_cap, policy.retry_after_cap,
            policy.deadline, policy.max_relists, policy.listing_deadline) == (
        6, 0.5, 20.0, 60.0, 120.0, 3, 900.0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"backoff_base": -0.1}, NEGATIVE),
        ({"backoff_cap": -1.0}, NEGATIVE),
        ({"retry_after_cap": -1.0}, NEGATIVE),
        ({"deadline": -1.0}, NEGATIVE),
        ({"listing_deadline": -1.0}, NEGATIVE),
        ({"max_relists": -1}, "max_relists cannot be negative"),
    ],
    ids=["no-attempt", "base", "cap", "retry-after-cap", "deadline", "listing-deadline",
         "relists"],
)
def test_impossible_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as refused:
        RetryPolicy(**settings)
    assert str(refused.value) == message


def test_the_smallest_settings_are_accepted() -> None:
    policy = RetryPolicy(max_attempts=1, backoff_base=0.0, backoff_cap=0.0, retry_after_cap=0.0,
                         deadline=0.0, max_relists=0, listing_deadline=0.0)
    assert policy.backoff(3, upper_bound) == 0.0
    assert policy.delay(1, retry_after=30.0, uniform=upper_bound) == 0.0
    assert not policy.may_retry(attempt=1, elapsed=0.0, delay=0.0)


@pytest.mark.parametrize(
    ("attempt", "longest"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 20.0), (10_000, 20.0)],
    ids=["first", "second", "third", "sixth", "capped", "huge-attempt"],
)
def test_backoff_doubles_from_the_base_up_to_the_cap(attempt: int, longest: float) -> None:
    assert RetryPolicy().backoff(attempt, upper_bound) == longest


def test_an_unbounded_backoff_stays_finite_for_any_attempt() -> None:
    assert RetryPolicy(backoff_cap=math.inf).backoff(10**9, upper_bound) < math.inf


def test_backoff_is_drawn_by_the_jitter() -> None:
    draws: list[tuple[float, float]] = []

    def shortest(low: float, high: float) -> float:
        draws.append((low, high))
        return low

    assert RetryPolicy(backoff_base=2.0).backoff(2, shortest) == 0.0
    assert draws == [(0.0, 4.0)]


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(7.0, 7.0), (0.0, 0.0), (-5.0, 0.0), (60.0, 60.0), (3600.0, 60.0), (None, 2.0)],
    ids=["asked", "zero", "negative", "at-cap", "over-cap", "absent-uses-backoff"],
)
def test_the_server_decides_the_wait_within_the_cap(retry_after: float | None,
                                                    expected: float) -> None:
    policy = RetryPolicy(backoff_base=1.0)
    assert policy.delay(2, retry_after=retry_after, uniform=upper_bound) == expected


@pytest.mark.parametrize(
    ("attempt", "elapsed", "delay", "allowed"),
    [
        (1, 0.0, 1.0, True),
        (5, 0.0, 1.0, True),
        (6, 0.0, 1.0, False),      # every attempt used
        (1, 100.0, 20.0, True),    # the wait ends exactly at the deadline
        (1, 100.0, 20.5, False),   # it would end after it
        (1, 120.5, 0.0, False),
    ],
    ids=["first", "last-retry", "attempts-used", "ends-at-deadline", "past-deadline",
         "deadline-passed"],
)
def test_a_retry_needs_an_attempt_left_and_time_before_the_deadline(
        attempt: int, elapsed: float, delay: float, allowed: bool) -> None:
    assert RetryPolicy().may_retry(attempt=attempt, elapsed=elapsed, delay=delay) is allowed


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("1.5", 1.5),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("-3", 0.0),
        ("1e3", 1000.0),
        ("inf", None),
        ("-inf", None),
        ("Infinity", None),
        ("nan", None),
        (None, None),
        ("", None),
        ("   ", None),
        ("soon", None),
        ("Sun, 01 Mar 2026 12:00:30 GMT", 30.0),
        ("Sun, 01 Mar 2026 14:00:30 +0200", 30.0),
        ("Sun, 01 Mar 2026 12:00:30", 30.0),  # no zone: read as UTC
        ("Sun, 01 Mar 2026 12:00:30 -0000", 30.0),
        ("Sun, 01 Mar 2026 11:59:00 GMT", 0.0),  # in the past
        ("Sun, 01 Mar 2026 12:00:00 GMT", 0.0),
        ("Sun, 01 Mar 2026 25:00:00 GMT", None),
        ("Sun, 31 Feb 2026 12:00:00 GMT", None),
        ("Sun, 01 Mar", None),
    ],
    ids=["seconds", "fraction", "spaces", "zero", "negative", "exponent", "inf", "minus-inf",
         "infinity", "nan", "absent", "empty", "blank", "words", "date", "date-offset",
         "date-without-zone", "date-minus-zero", "date-past", "date-now", "bad-hour",
         "bad-day", "truncated-date"],
)
def test_retry_after_is_read_as_seconds_or_a_date(header: str | None,
                                                  seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_a_retry_after_date_is_measured_from_the_current_time_by_default() -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    waited = parse_retry_after(soon.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert waited is not None and 3500.0 < waited <= 3600.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


@pytest.mark.parametrize(
    "header",
    ["Wed, 21 Oct 99999 07:28:00 GMT", "Wed, 99 Oct 2015 07:28:00 GMT",
     "Wed, 21 Oct 99999999999999999999 07:28:00 GMT",
     "Wed, 99999999999999999999 Oct 2015 07:28:00 GMT",
     "Wed, 21 Oct 2015 07:28:99999999999999999999 GMT",
     "Wed, 21 Oct 2015 07:28:00 +99999999999999999999", "1e400", "-1e400"],
    ids=["year-99999", "day-99", "year-20-digits", "day-20-digits", "second-20-digits",
         "zone-20-digits", "seconds-overflow", "negative-overflow"],
)
def test_a_retry_after_out_of_any_range_reads_as_absent(header: str) -> None:
    assert parse_retry_after(header, now=NOW) is None


def test_a_huge_delay_in_seconds_is_read_and_left_to_the_cap() -> None:
    assert parse_retry_after("99999999999999999999", now=NOW) == 1e20
    assert RetryPolicy().delay(1, retry_after=1e20, uniform=upper_bound) == 60.0


_NUMBER = st.one_of(st.integers(min_value=-(10**30), max_value=10**30).map(str),
                    st.text(alphabet="0123456789+-.eE", max_size=30))
_DATE = st.builds(
    "{}, {} {} {} {}:{}:{} {}".format,
    st.sampled_from(["Mon", "Wed", "Sun", "", "Xyz"]), _NUMBER,
    st.sampled_from(["Jan", "Oct", "Dec", "", "Foo"]), _NUMBER, _NUMBER, _NUMBER, _NUMBER,
    st.one_of(st.sampled_from(["GMT", "UTC", "-0000", "+2359", "-2359", "EST", ""]), _NUMBER),
)


@settings(max_examples=400, deadline=None)
@given(header=st.one_of(st.text(), _NUMBER, _DATE))
def test_any_retry_after_is_none_or_a_finite_wait(header: str) -> None:
    """Whatever a server sends, the header reads as absent or as finite seconds, never as
    an exception."""
    seconds = parse_retry_after(header, now=NOW)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)
