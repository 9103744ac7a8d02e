"""The pacer's decisions, on a fake clock: no test here waits for wall time.

The simulations drive a `Pacer` against a model of the real service's throttle (a fixed window
per key, opened by its first request) with other clients of the key sending at their own pace,
and count what was refused.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.pacer import PROBE_POLL, Pacer, PaceSettings, RateHeaders


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def limit_headers(limit: int, remaining: int, window: float | None = None) -> RateHeaders:
    return RateHeaders(limit=limit, remaining=remaining, window=window)


# -- learning the limit ------------------------------------------------------------------------


def test_the_first_request_goes_alone_until_its_answer_tells_the_limit() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    assert pacer.turn().seconds == 0
    pacer.started()
    second = pacer.turn()
    assert second.for_answer and second.seconds == PROBE_POLL
    clock.now = 0.2
    pacer.answered(limit_headers(60, 59))
    assert pacer.limit == 60
    assert pacer.turn().seconds == pytest.approx(1.8)  # 2 s apart: half of 60 per minute
    assert pacer.rate == pytest.approx(30)


@pytest.mark.parametrize(
    ("share", "max_rate", "interval"),
    [(0.5, None, 1.0), (1.0, None, 0.5), (0.25, None, 2.0), (0.5, 30.0, 2.0), (0.5, 600.0, 1.0)],
    ids=["default-half", "whole", "quarter", "max-rate-below", "max-rate-above"],
)
def test_requests_are_spaced_by_the_share_of_the_limit_or_the_cap(
    share: float, max_rate: float | None, interval: float
) -> None:
    clock = Clock()
    pacer = Pacer(PaceSettings(share=share, max_rate=max_rate), clock=clock)
    pacer.started()
    pacer.answered(limit_headers(120, 119))
    starts = []
    while len(starts) < 5:
        turn = pacer.turn()
        if turn.seconds <= 0:
            starts.append(clock.now)
            pacer.started()
            pacer.answered(limit_headers(120, 118 - len(starts)))
        else:
            clock.now += turn.seconds
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == pytest.approx([interval] * 4)


def test_max_rate_paces_before_any_limit_is_known() -> None:
    clock = Clock()
    pacer = Pacer(PaceSettings(max_rate=6), clock=clock)
    pacer.started()
    pacer.answered(RateHeaders())
    assert pacer.turn().seconds == pytest.approx(10)


def test_without_headers_and_without_refusals_it_does_not_slow_down() -> None:
    pacer = Pacer(clock=Clock())
    pacer.started()
    pacer.answered(RateHeaders())
    for _ in range(20):
        assert pacer.turn().seconds == 0
        pacer.started()
    assert pacer.rate is None


def test_a_scaled_window_is_read_from_the_policy_header() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    pacer.started()
    pacer.answered(RateHeaders.read({"X-RateLimit-Limit": "120", "X-RateLimit-Remaining": "119",
                                     "RateLimit-Policy": "120;w=6"}, None))
    assert pacer.window == 6
    assert pacer.turn().seconds == pytest.approx(0.1)


@pytest.mark.parametrize(
    "headers",
    [{"X-RateLimit-Limit": "0"}, {"X-RateLimit-Limit": "-5"}, {"X-RateLimit-Limit": "1e3"},
     {"X-RateLimit-Limit": "9" * 5000}, {"X-RateLimit-Limit": "²"}, {"X-RateLimit-Limit": ""},
     {"X-RateLimit-Limit": "nan"}, {"RateLimit-Policy": "5;w=0"},
     {"RateLimit-Policy": "5;w=" + "9" * 400}, {"RateLimit-Policy": "w=inf"}],
    ids=["zero", "negative", "exponent", "5000-digits", "superscript", "empty", "nan",
         "zero-window", "huge-window", "inf-window"],
)
def test_nonsense_in_the_headers_is_ignored(headers: dict[str, str]) -> None:
    read = RateHeaders.read(headers, None)
    assert read.limit is None and read.window is None


def test_the_pace_is_said_in_words_each_time_it_changes() -> None:
    said: list[str] = []
    pacer = Pacer(PaceSettings(share=0.5), clock=Clock(), on_pace=said.append)
    pacer.started()
    pacer.answered(limit_headers(120, 119))
    pacer.started()
    pacer.answered(limit_headers(120, 118))
    assert said == [
        "pace: one request until the API advertises its limit",
        "pace: 60 requests/min: 0.5 (--rate-share) of the advertised limit of 120 per 60 s "
        "(120/min)",
    ]


# -- other clients of the key --------------------------------------------------------------


def test_it_leaves_the_other_clients_their_share_then_waits_for_the_next_window() -> None:
    clock = Clock()
    pacer = Pacer(PaceSettings(share=0.5), clock=clock)
    pacer.started()
    pacer.answered(limit_headers(60, 59))  # the window opened with our request: ends by 60
    clock.now = 10
    pacer.started()
    pacer.answered(limit_headers(60, 20))  # the others spent 38 in 10 s
    turn = pacer.turn()
    # 20 left, 50 s of the window to come: the others' half of that (25) is theirs.
    assert turn.seconds == pytest.approx(50)
    clock.now += turn.seconds
    assert pacer.turn().seconds == 0  # the window has surely ended: probe the new one
    pacer.started()
    assert pacer.turn().for_answer  # the new window's first answer comes first


def test_a_jump_in_remaining_marks_a_new_window() -> None:
    clock = Clock()
    pacer = Pacer(PaceSettings(share=1.0), clock=clock)
    pacer.started()
    pacer.answered(limit_headers(10, 5))  # the window opened earlier: it ends by 60
    for remaining in (4, 3):
        clock.now += 1
        pacer.started()
        pacer.answered(limit_headers(10, remaining))
    clock.now = 30
    pacer.started()
    pacer.answered(limit_headers(10, 9))  # a new window opened since the last answer
    assert pacer.turn().seconds == pytest.approx(6)  # just the spacing: budget is back
    clock.now = 70  # the earlier bound (60) has passed, the new one (90) has not
    assert not pacer.turn().for_answer


# -- refusals ----------------------------------------------------------------------------------


def test_a_refusal_under_a_known_limit_stops_everything_for_its_retry_after() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    pacer.started()
    pacer.answered(limit_headers(60, 59))
    clock.now = 5
    pacer.started()
    pacer.answered(RateHeaders(limit=60, remaining=0, retry_after=17), refused=True)
    assert pacer.turn().seconds == pytest.approx(17)
    assert pacer.refusals == 1


def refuse(pacer: Pacer, clock: Clock, count: int, *, retry_after: float | None = None,
           sent_at: float | None = None) -> None:
    for _ in range(count):
        pacer.started()
        pacer.answered(RateHeaders(retry_after=retry_after), refused=True,
                       started_at=clock.now if sent_at is None else sent_at)


def test_a_lone_refusal_without_headers_does_not_slow_everything_down() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    pacer.started()
    pacer.answered(RateHeaders())
    refuse(pacer, clock, 1, retry_after=30)
    assert pacer.rate is None and pacer.turn().seconds == 0  # the refused call waits alone


def test_frequent_refusals_without_headers_halve_the_pace_and_answers_speed_it_up_gently(
) -> None:
    clock = Clock()
    said: list[str] = []
    pacer = Pacer(clock=clock, on_pace=said.append)
    for _ in range(54):
        pacer.started()
        clock.now += 10 / 54
    refuse(pacer, clock, 5, retry_after=2)
    assert pacer.rate is None
    refuse(pacer, clock, 1, retry_after=2)  # 60 requests in 10 s: 360 per minute, halved
    assert pacer.rate == pytest.approx(180, rel=0.05)
    assert pacer.turn().seconds == pytest.approx(2.0)  # Retry-After, for every request
    assert "the API refused requests without advertising a limit" in said[-1]
    refuse(pacer, clock, 6, sent_at=clock.now - 1)  # sent before the slow-down: no effect
    assert pacer.rate == pytest.approx(180, rel=0.05)
    clock.now += 5
    refuse(pacer, clock, 6)  # sent after it, at the new pace: still too fast
    assert pacer.rate == pytest.approx(90, rel=0.05)
    before = pacer.rate or 0
    for _ in range(10):
        pacer.answered(RateHeaders())
    assert pacer.rate == pytest.approx(before * 1.01**10)  # 1 % faster for each answer


def test_adaptive_speed_up_stops_at_the_cap() -> None:
    clock = Clock()
    pacer = Pacer(PaceSettings(max_rate=10), clock=clock)
    refuse(pacer, clock, 6)
    assert pacer.rate == pytest.approx(5)  # half the cap
    for _ in range(500):
        pacer.answered(RateHeaders())
    assert pacer.rate == pytest.approx(10)


@pytest.mark.parametrize(
    ("share", "max_rate"),
    [(0.0, None), (1.5, None), (float("nan"), None), (0.5, 0.0), (0.5, -3.0),
     (0.5, float("inf")), (0.5, float("nan"))],
    ids=["zero-share", "share-above-one", "nan-share", "zero-rate", "negative-rate", "inf-rate",
         "nan-rate"],
)
def test_impossible_settings_are_refused(share: float, max_rate: float | None) -> None:
    with pytest.raises(ValueError):
        PaceSettings(share=share, max_rate=max_rate)


# -- simulations against a model of the service ------------------------------------------------


@dataclass
class Throttle:
    """The service's fixed window per key, opened by its first request."""

    limit: int
    window: float
    opened: float = -math.inf
    count: int = 0
    refused: dict[str, int] = field(default_factory=lambda: {"us": 0, "others": 0})

    def hit(self, now: float, who: str) -> tuple[bool, int]:
        if now >= self.opened + self.window:
            self.opened, self.count = now, 0
        if self.count >= self.limit:
            self.refused[who] += 1
            return False, math.ceil(self.opened + self.window - now)
        self.count += 1
        return True, self.limit - self.count


def simulate(
    *, limit: int, share: float, others_per_minute: float, requests: int,
    latency: float = 0.02, parallelism: int = 8, others_start: float = 0.0,
) -> tuple[Throttle, float]:
    """Send `requests` through a pacer (at most `parallelism` in flight), while other clients
    send evenly at `others_per_minute`; return the throttle and when our last answer came."""
    clock = Clock()
    pacer = Pacer(PaceSettings(share=share), clock=clock)
    throttle = Throttle(limit=limit, window=60.0)
    events: list[tuple[float, int, str, object]] = []
    order = 0

    def schedule(at: float, kind: str, data: object = None) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (at, order, kind, data))

    if others_per_minute:
        schedule(others_start, "others")
    schedule(0.0, "ours")
    sent = answered = 0
    last = 0.0
    while answered < requests:
        clock.now, _, kind, data = heapq.heappop(events)
        if kind == "others":
            throttle.hit(clock.now, "others")
            schedule(clock.now + 60.0 / others_per_minute, "others")
        elif kind == "arrive":
            allowed, remaining = throttle.hit(clock.now, "us")
            headers = RateHeaders(limit=limit, remaining=0 if not allowed else remaining,
                                  retry_after=None if allowed else float(remaining))
            schedule(clock.now + latency / 2, "answer", (headers, not allowed))
        elif kind == "answer":
            headers, refused = data  # type: ignore[misc]
            pacer.answered(headers, refused=refused)
            if refused:
                sent -= 1  # sent again
            else:
                answered += 1
                last = clock.now
            schedule(clock.now, "ours")
        elif kind == "ours":
            turn = pacer.turn()
            if sent >= requests or pacer.in_flight >= parallelism:
                continue
            if turn.seconds <= 0:
                pacer.started()
                sent += 1
                schedule(clock.now + latency / 2, "arrive")
                schedule(clock.now, "ours")
            elif not turn.for_answer:
                schedule(clock.now + turn.seconds, "ours")
    return throttle, last


@pytest.mark.parametrize("limit", [60, 90, 120], ids=["60", "90", "120"])
def test_alone_on_the_key_it_is_never_refused_and_keeps_its_share(limit: int) -> None:
    throttle, last = simulate(limit=limit, share=0.5, others_per_minute=0, requests=300)
    assert throttle.refused == {"us": 0, "others": 0}
    ideal = 300 / (0.5 * limit) * 60
    assert ideal * 0.95 <= last <= ideal * 1.1


@pytest.mark.parametrize("limit", [60, 90, 120], ids=["60", "90", "120"])
def test_production_at_a_quarter_of_the_limit_is_never_refused(limit: int) -> None:
    throttle, _ = simulate(limit=limit, share=0.5, others_per_minute=limit / 4, requests=300,
                           others_start=-17.0)
    assert throttle.refused == {"us": 0, "others": 0}


@settings(max_examples=25, deadline=None)
@given(
    limit=st.integers(min_value=4, max_value=150),
    share=st.floats(min_value=0.1, max_value=0.9),
    others=st.floats(min_value=0.0, max_value=0.95),
    offset=st.floats(min_value=0.0, max_value=60.0),
    latency=st.floats(min_value=0.001, max_value=2.0),
)
def test_under_a_known_limit_it_is_never_refused_while_the_others_keep_to_their_share(
    limit: int, share: float, others: float, offset: float, latency: float
) -> None:
    others_rate = others * (1 - share) * limit  # per minute: within what is left to them
    throttle, _ = simulate(limit=limit, share=share, others_per_minute=others_rate,
                           requests=2 * limit + 10, others_start=-offset, latency=latency)
    assert throttle.refused["us"] == 0
    assert throttle.refused["others"] == 0
