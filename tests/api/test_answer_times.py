"""How long a lost send's transcript is watched: the whole send timeout until a send has been
answered, then a multiple of the longest answer seen, within a floor and the send timeout."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.api.answer_times import FLOOR, MULTIPLE, AnswerTimes, Basis

UPPER = 300.0


def times(*answers: float, upper: float = UPPER) -> AnswerTimes:
    observed = AnswerTimes(upper=upper)
    for seconds in answers:
        observed.record(seconds)
    return observed


def test_the_policy_is_four_times_the_longest_answer_at_least_15_s() -> None:
    assert (MULTIPLE, FLOOR) == (4.0, 15.0)


def test_before_any_answer_the_whole_send_timeout_is_watched() -> None:
    watch = times().watch(0.0)
    assert (watch.seconds, watch.basis) == (UPPER, Basis.NONE_SEEN)
    assert watch.describe() == ("for up to 300 s (--send-timeout): no answer has been seen yet "
                                "in this run")


def test_a_send_still_waiting_or_lost_tells_nothing_before_an_answer() -> None:
    observed = AnswerTimes(upper=UPPER)
    observed.started(0.0)
    assert observed.watch(100.0, lost_after=2.0).seconds == UPPER


@pytest.mark.parametrize(("answers", "seconds"), [
    ((0.0,), FLOOR),  # an instant answer: the floor
    ((1.0, 3.0), FLOOR),  # 12 s is below the floor
    ((3.0, 10.0, 2.0), 40.0),  # the longest, not the mean (5 s -> 20 s)
    ((74.9,), 299.6),
    ((75.0,), UPPER),
    ((1e300,), UPPER),  # huge: the send timeout
    ((math.inf,), UPPER),
], ids=["zero", "below-floor", "longest-not-mean", "just-below-cap", "cap", "huge", "inf"])
def test_after_answers_a_multiple_of_the_longest_within_floor_and_cap(
    answers: tuple[float, ...], seconds: float
) -> None:
    watch = times(*answers).watch(0.0)
    assert watch.seconds == pytest.approx(seconds)
    assert watch.basis is Basis.ANSWERED


def test_one_slow_answer_after_fast_ones_lengthens_every_later_watch() -> None:
    observed = times(*[0.5] * 50)
    assert observed.watch(0.0).seconds == FLOOR
    observed.record(20.0)
    observed.record(1.0)
    assert observed.watch(0.0).seconds == 80.0


def test_the_send_timeout_caps_even_the_floor() -> None:
    assert times(0.1, upper=5.0).watch(0.0).seconds == 5.0


def test_a_send_still_waiting_counts_as_an_answer_at_least_that_long() -> None:
    observed = times(2.0)
    first = observed.started(100.0)
    observed.started(110.0)
    watch = observed.watch(130.0)
    assert (watch.seconds, watch.basis, watch.reference) == (120.0, Basis.WAITING, 30.0)
    observed.ended(first)  # no answer: it no longer says anything
    assert observed.watch(130.0).seconds == 80.0
    assert observed.answers == 1


def test_a_send_answered_is_timed_from_its_start() -> None:
    observed = AnswerTimes(upper=UPPER)
    ticket = observed.started(10.0)
    observed.answered(ticket, 17.5)
    observed.answered(ticket, 99.0)  # once only
    assert (observed.longest, observed.answers) == (7.5, 1)
    assert observed.watch(50.0).seconds == 30.0


def test_the_lost_send_itself_counts_as_long_as_it_had_run() -> None:
    watch = times(3.0).watch(0.0, lost_after=60.0)  # a gateway gave up after 60 s
    assert (watch.seconds, watch.basis) == (240.0, Basis.LOST)
    assert "4 x 60.0 s, the time this send had run when its answer was lost" in watch.describe()


def test_the_watch_says_why() -> None:
    assert times(3.0).watch(0.0).describe() == (
        "for 15 s (4 x 3.0 s, the longest answer seen in this run; at least 15 s, at most "
        "300 s, the send timeout)")
    assert times(12.5).watch(0.0).describe().startswith("for 50 s (4 x 12.5 s, the longest")
    assert AnswerTimes(upper=UPPER, fixed=2.0).watch(0.0).describe() == (
        "for 2 s (a fixed watch, as set)")


def test_a_fixed_watch_ignores_what_was_seen() -> None:
    observed = AnswerTimes(upper=UPPER, fixed=2.0)
    assert observed.watch(0.0).seconds == 2.0
    observed.record(100.0)
    assert (observed.watch(0.0).seconds, observed.watch(0.0).basis) == (2.0, Basis.FIXED)


def test_odd_times_never_make_an_odd_watch() -> None:
    observed = times(math.nan, -5.0)  # not a number: nothing; negative: an instant answer
    assert (observed.longest, observed.answers) == (0.0, 1)
    assert observed.watch(math.nan, lost_after=math.nan).seconds == FLOOR
    assert observed.watch(-1e9, lost_after=-3.0).seconds == FLOOR
    observed.started(0.0)
    assert observed.watch(math.inf).seconds == UPPER


@pytest.mark.parametrize("bad", [
    {"upper": 0.0}, {"upper": math.nan}, {"upper": math.inf}, {"upper": 1.0, "multiple": 0.5},
    {"upper": 1.0, "floor": -1.0}, {"upper": 1.0, "floor": math.nan},
    {"upper": 1.0, "fixed": math.nan}, {"upper": 1.0, "fixed": -1.0},
], ids=str)
def test_settings_out_of_range_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AnswerTimes(**bad)


finite_or_not = st.floats(allow_nan=True, allow_infinity=True)


@given(answers=st.lists(finite_or_not, max_size=5), now=finite_or_not, lost=finite_or_not,
       starts=st.lists(finite_or_not, max_size=3),
       upper=st.floats(min_value=0.001, max_value=3600.0))
def test_a_watch_is_always_a_number_within_the_send_timeout(
    answers: list[float], now: float, lost: float, starts: list[float], upper: float
) -> None:
    observed = times(*answers, upper=upper)
    for began in starts:
        observed.started(began)
    watch = observed.watch(now, lost_after=lost)
    assert 0 < watch.seconds <= upper
    assert not math.isnan(watch.reference)
    if observed.longest is not None:
        assert watch.seconds >= min(FLOOR, upper)
        assert watch.seconds >= min(MULTIPLE * observed.longest, upper)
