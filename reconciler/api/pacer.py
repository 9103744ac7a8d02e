"""Pacing: when the next API request may start, so that a run lives within the key's budget.

The real service allows each API key a number of requests per minute (60, 90 or 120 by plan),
counted in fixed windows, shared by every client of the key (the customer's chatbot and widget
too), and says so on every answer: `X-RateLimit-Limit` and a falling `X-RateLimit-Remaining`.
One `Pacer` per run shapes every request:

- The first request goes alone; its answer tells the limit. From then on requests start at
  least `window / (share x limit)` seconds apart (`share` 0.5 by default), so that the run
  takes at most that share of any window and leaves the rest to the key's other clients.
- `Remaining` says what the other clients use. The pacer keeps a reserve for them: the share
  of the limit it leaves to them, for the part of the window still to come. When the estimated
  remaining budget reaches that reserve, it waits until the window has surely started anew,
  then sends one request alone to read the new window. A jump in `Remaining` marks a new window,
  which tells when the next one starts.
- With no rate headers at all, it starts unpaced (or at `max_rate`). When refusals (429) are
  most of the recent answers (10 of the last 20), it halves its pace, once for the requests
  sent at the pace that was too fast, stops every request for the refusal's `Retry-After`, and
  then speeds up gently (1 % per answer); never below 10 requests a minute. A refusal while
  most answers are fine (a gateway, a burst, chance) is waited out by its own request only:
  slowing everyone down would not make it rarer.
- Under a known limit, a refusal's `Retry-After` stops every request until it has passed.
- `max_rate` (requests per minute) caps the pace in every case.

What a server can impose is bounded, so that headers cannot stall a run for hours: a limit
is believed from 10 requests a minute (`MIN_LIMIT_RATE`) up to 1,000,000 per window, a window
up to 5 minutes (`MAX_WINDOW`); anything else is treated as not advertised. A `Retry-After`
arrives capped by the caller (`RetryPolicy.retry_after_cap`). The slowest pace the API can so
impose is 10 requests a minute times the share, and the longest pause a window. When the pace
it imposes is under 6 requests a minute (`SLOW_RATE`), or it holds every request for more than
30 s (`SLOW_WAIT`), `on_slow` is told once (the CLI warns at default verbosity).

Pure logic: the caller asks `turn()`, calls `started()` when it sends, and reports each
answer (`answered`) or a request that got none (`lost`); time comes from the injected clock.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DEFAULT_WINDOW = 60.0  # seconds: the real service counts per minute
DEFAULT_SHARE = 0.5
PROBE_POLL = 0.02  # seconds between looks while the first answer is awaited
MIN_ADAPTIVE_RATE = 10.0  # requests per minute: the slowest pace after refusals
ADAPTIVE_GAIN = 0.01  # share of the pace gained per answer after a slow-down
ADAPTIVE_SPAN = 10.0  # seconds of recent starts that measure the pace at a refusal
RECENT_ANSWERS = 20  # without headers: a slow-down needs REFUSED_TO_SLOW of the last 20
REFUSED_TO_SLOW = 10
MAX_LIMIT = 1_000_000  # a larger advertised limit is not believed
MIN_LIMIT_RATE = 10.0  # requests per minute: a smaller advertised limit is not believed
MAX_WINDOW = 300.0  # seconds: a longer advertised window is not believed
MIN_MAX_RATE = 1.0  # requests per minute: the smallest `max_rate`
MAX_MAX_RATE = 1_000_000.0
SLOW_RATE = 6.0  # requests per minute: a slower pace imposed by the API is warned about
SLOW_WAIT = 30.0  # seconds: a longer pause imposed by the API is warned about
_POLICY_WINDOW = re.compile(r"(?:^|[;,\s])w=(\d{1,5}(?:\.\d{1,3})?)(?:$|[;,\s])")


@dataclass(frozen=True)
class Turn:
    """How long to wait before the next request: `seconds`, or, when `for_answer`, until an
    answer arrives (the first request of a window goes alone)."""

    seconds: float
    for_answer: bool = False


@dataclass(frozen=True)
class PaceSettings:
    """How much of the budget a run may take.

    `share` (0 < share <= 1) of the advertised limit, and at most `max_rate` requests per
    minute (None: no cap; from 1 to 1,000,000: a slower cap would stall a run). Raises
    ValueError for values out of range.
    """

    share: float = DEFAULT_SHARE
    max_rate: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.share) and 0 < self.share <= 1):
            raise ValueError(f"the rate share must be more than 0 and at most 1, not {self.share}")
        if self.max_rate is not None and not (
            math.isfinite(self.max_rate) and MIN_MAX_RATE <= self.max_rate <= MAX_MAX_RATE
        ):
            raise ValueError(
                f"the maximum rate must be from {MIN_MAX_RATE:g} to {MAX_MAX_RATE:.0f} "
                f"requests per minute, not {self.max_rate}")


@dataclass(frozen=True)
class RateHeaders:
    """What an answer says about the budget; None where it says nothing (or nonsense)."""

    limit: int | None = None
    remaining: int | None = None
    window: float | None = None
    retry_after: float | None = None

    @classmethod
    def read(cls, headers: Mapping[str, str], retry_after: float | None) -> RateHeaders:
        """The budget headers of an answer; hostile values are ignored, never raised."""
        limit = _count(headers.get("X-RateLimit-Limit"))
        window = _policy_window(headers.get("RateLimit-Policy"))
        return cls(limit=limit if limit else None,
                   remaining=_count(headers.get("X-RateLimit-Remaining")),
                   window=window, retry_after=retry_after)


def per_minute(rate: float) -> str:
    """A pace in requests per minute, as plans and messages show it: "30", "1800", "0.5"."""
    return f"{rate:.0f}" if rate >= 10 else f"{rate:.2g}"


def _count(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 7):
        return None
    number = int(text)
    return number if number <= MAX_LIMIT else None


def _policy_window(value: str | None) -> float | None:
    if not value:
        return None
    found = _POLICY_WINDOW.search(value)
    if found is None:
        return None
    seconds = float(found.group(1))
    return seconds if 0.001 <= seconds <= MAX_WINDOW else None


class Pacer:
    """When the next request may start; see the module's description.

    `clock` returns monotonic seconds; `on_pace` is told, in words, each time the pace changes
    (the CLI logs it at -v); `on_slow` is told once when the pace the API imposes is slow, and
    once when it holds every request for long (the CLI warns).
    """

    def __init__(
        self,
        settings: PaceSettings | None = None,
        *,
        clock: Callable[[], float],
        on_pace: Callable[[str], None] | None = None,
        on_slow: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings or PaceSettings()
        self._clock = clock
        self._on_pace = on_pace
        self._on_slow = on_slow
        self._warned: set[str] = set()  # the slow-downs said: "pace", "wait"
        self.limit: int | None = None
        self._unbelieved: str = ""  # the last advertised limit not believed, in words
        self.window = DEFAULT_WINDOW
        self.reason = ""
        self.answers = 0
        self.in_flight = 0
        self.refusals = 0
        self._last_start = -math.inf
        self._blocked_until = -math.inf
        self._adaptive: float | None = None  # requests per minute after headerless refusals
        self._recent: deque[bool] = deque(maxlen=RECENT_ANSWERS)  # refused or not
        self._slowed_at = -math.inf
        self._starts: deque[float] = deque()
        # The current window: estimated budget left for us (None: unknown, probe first),
        # the lowest Remaining seen in it, the most requests in flight at once, and the time
        # by which it has surely ended.
        self._estimate: int | None = None
        self._lowest: int | None = None
        self._window_seen_by = -math.inf  # when the request that showed the window started
        self._peak_in_flight = 0
        self._window_ends: float | None = None
        self._describe(self._pace_text())

    # -- the caller's side -----------------------------------------------------------------

    def turn(self) -> Turn:
        """When the next request may start: now (`seconds` 0), after `seconds`, or after an
        answer to a request in flight."""
        now = self._clock()
        self._forget_ended_window(now)
        if self.answers == 0 and self.in_flight:
            return Turn(PROBE_POLL, for_answer=True)  # the first answer tells the limit
        at = max(now, self._last_start + self._current_interval(), self._blocked_until)
        if self._blocked_until - now > SLOW_WAIT:
            self._warn("wait", f"the API refused a request: every request waits "
                       f"{self._blocked_until - now:.0f} s (its Retry-After, or the rest of its "
                       "rate-limit window)")
        if self.limit is not None:
            if self._estimate is None and self.in_flight:
                return Turn(max(at - now, PROBE_POLL), for_answer=True)  # a window's first
            if self._estimate is not None and self._estimate - 1 < self._reserve(self.limit, now):
                at = max(at, self._window_ends if self._window_ends is not None else now)
                if at <= now:
                    at = now + PROBE_POLL
                if at - now > SLOW_WAIT:
                    self._warn("wait", f"waiting {at - now:.0f} s for the API's next rate-limit "
                               "window: what is left of this one (X-RateLimit-Remaining) is the "
                               "share of the key's other clients")
        return Turn(at - now)

    def started(self) -> None:
        """A request starts now (call it when `turn()` says 0)."""
        now = self._clock()
        self.in_flight += 1
        self._peak_in_flight = max(self._peak_in_flight, self.in_flight)
        self._last_start = now
        if self._estimate is not None:
            self._estimate -= 1
        self._starts.append(now)
        while self._starts and self._starts[0] < now - ADAPTIVE_SPAN:
            self._starts.popleft()

    def answered(self, headers: RateHeaders, *, refused: bool = False,
                 started_at: float | None = None) -> None:
        """An answer arrived to a request started at `started_at` (None: now). `refused`: a
        429 about the rate (not about query credits)."""
        now = self._clock()
        self.in_flight = max(0, self.in_flight - 1)
        self.answers += 1
        if headers.window is not None and headers.window != self.window:
            self.window = headers.window
            self._window_ends = None
        limit = self._believed(headers.limit)
        if limit is not None:
            self._learn_limit(limit)
        elif headers.limit is not None:
            self._disbelieve(headers.limit)
        elif self.answers == 1:
            self._describe(self._pace_text())
        if self.limit is None:
            self._recent.append(refused)
        if refused:
            self._refused(headers, limit, now, now if started_at is None else started_at)
        elif headers.remaining is not None and self.limit is not None:
            self._observe(headers.remaining, now, now if started_at is None else started_at)
        elif self._adaptive is not None and limit is None:
            self._speed_up(self._adaptive)

    def lost(self) -> None:
        """A request ended without an answer (connection error, timeout)."""
        self.in_flight = max(0, self.in_flight - 1)

    @property
    def rate(self) -> float | None:
        """The pace in requests per minute (None: unpaced)."""
        interval = self._current_interval()
        return None if interval <= 0 else 60.0 / interval

    def seconds_for(self, requests: int) -> float:
        """Roughly how long `requests` more requests take at the current pace."""
        return max(0, requests) * self._current_interval()

    # -- learning --------------------------------------------------------------------------

    def _believed(self, limit: int | None) -> int | None:
        """An advertised limit per window, or None when it is absent or not believed: less than
        MIN_LIMIT_RATE a minute would stall a run for hours (no plan of the real service is
        that small), so it is treated as not advertised."""
        if limit is None or limit * 60.0 / self.window < MIN_LIMIT_RATE:
            return None
        return limit

    def _disbelieve(self, limit: int) -> None:
        """An advertised limit too small to be believed: paced as if none was advertised."""
        self._unbelieved = (f"the API advertises a limit of {limit} per {self.window:g} s "
                           f"({per_minute(limit * 60.0 / self.window)}/min), less than the "
                           f"{MIN_LIMIT_RATE:g}/min it is believed from")
        self.limit, self._estimate, self._lowest, self._window_ends = None, None, None, None
        self._describe(self._pace_text())

    def _learn_limit(self, limit: int) -> None:
        if limit == self.limit:
            return
        self.limit = limit
        self._adaptive = None
        self._describe(self._pace_text())

    def _observe(self, remaining: int, now: float, started: float) -> None:
        """Read `Remaining` of a request started at `started`: detect a new window, update the
        estimate of what is left. A request started before the window was known to have ended,
        or before the one whose answer showed the current window (a long send across the
        window's turn), may have been counted in the window before: its `Remaining` says
        nothing of this one, and is not read."""
        if started < self._window_seen_by:
            return
        others = self.in_flight  # started, unanswered: assume the server has not counted them
        fresh = max(0, remaining - others)
        new_window = self._lowest is not None and remaining > self._lowest + self._peak_in_flight
        if self._estimate is None or new_window:
            self._estimate, self._lowest = fresh, remaining
            self._peak_in_flight = self.in_flight + 1
            self._window_seen_by = started
            # The window holding this request opened before `now`, so it ends by now + window.
            self._window_ends = now + self.window
            return
        self._estimate = min(self._estimate, fresh)
        self._lowest = min(self._lowest if self._lowest is not None else remaining, remaining)
        if self._window_ends is None:
            self._window_ends = now + self.window

    def _refused(self, headers: RateHeaders, limit: int | None, now: float,
                 started_at: float) -> None:
        """A refusal, under the believed `limit` it advertised (None: none)."""
        self.refusals += 1
        wait = headers.retry_after
        if self.limit is not None and limit is not None:
            if wait is None:
                wait = (self._window_ends - now) if self._window_ends is not None else self.window
            self._blocked_until = max(self._blocked_until, now + max(wait, 0.0))
            self._estimate, self._lowest, self._window_ends = None, None, None
            self._describe(f"the API refused a request although {self.limit} per window were "
                           f"advertised (other clients of the key?); waiting {wait:g} s")
            return
        # Without headers a refusal may be chance (a gateway, a burst): slow down when
        # refusals are most answers, once for the requests sent at the pace that was too fast.
        self.limit, self._estimate, self._lowest, self._window_ends = None, None, None, None
        if sum(self._recent) < REFUSED_TO_SLOW or started_at < self._slowed_at:
            return
        span = max(now - self._starts[0], 1.0) if self._starts else 1.0
        measured = len(self._starts) * 60.0 / span
        current = min(self._adaptive or math.inf, self.rate or math.inf, measured)
        self._adaptive = max(MIN_ADAPTIVE_RATE, current / 2)
        self._slowed_at = now
        self._recent.clear()
        if wait is not None:
            self._blocked_until = max(self._blocked_until, now + max(wait, 0.0))
        self._describe(self._pace_text())

    def _speed_up(self, adaptive: float) -> None:
        """Raise the pace a little from `adaptive` (requests per minute)."""
        cap = self.settings.max_rate
        faster = adaptive * (1 + ADAPTIVE_GAIN)
        self._adaptive = min(faster, cap) if cap is not None else faster

    def _forget_ended_window(self, now: float) -> None:
        """Once the window has surely ended, what is left in the new one is unknown."""
        if self._window_ends is not None and now >= self._window_ends:
            self._estimate, self._lowest, self._window_ends = None, None, None
            self._window_seen_by = now  # what was sent before says nothing of the next one

    def _reserve(self, limit: int, now: float) -> int:
        """Requests to leave to the key's other clients in the rest of this window, under
        `limit` per window."""
        left = 1.0
        if self._window_ends is not None:
            left = min(1.0, max(0.0, (self._window_ends - now) / self.window))
        return math.ceil((limit - self._own_per_window(limit)) * left)

    def _own_per_window(self, limit: int) -> int:
        """Whole requests this run may start in one window: its share of `limit`, rounded
        down (at least one), so that with the others' rounded up the window is never over."""
        return max(1, math.floor(self.settings.share * limit))

    def _current_interval(self) -> float:
        cap = self.settings.max_rate
        return max(self._api_interval(), 0.0 if cap is None else 60.0 / cap)

    def _api_interval(self) -> float:
        """Seconds between requests that the API imposes: its limit at our share, or the
        slow-down after refusals (0: none)."""
        if self.limit is not None:
            return self.window / self._own_per_window(self.limit)
        if self._adaptive is not None:
            return 60.0 / self._adaptive
        return 0.0

    # -- saying why ------------------------------------------------------------------------

    def _pace_text(self) -> str:
        share, cap = self.settings.share, self.settings.max_rate
        rate = self.rate
        shown = "unpaced" if rate is None else f"{per_minute(rate)} requests/min"
        if self.limit is not None:
            limit_per_minute = self.limit * 60.0 / self.window
            why = (f"{share:g} (--rate-share) of the advertised limit of {self.limit} per "
                   f"{self.window:g} s ({per_minute(limit_per_minute)}/min)")
            if cap is not None and 60.0 / cap >= self.window / self._own_per_window(self.limit):
                why = f"--max-rate {cap:g}, below {why}"
            return f"pace: {shown}: {why}"
        if self._adaptive is not None:
            return (f"pace: {shown}: the API refused requests without advertising a limit; "
                    "slowed down by half, speeding up gently while it answers")
        if cap is not None:
            return f"pace: {shown}: --max-rate {cap:g}, until the API advertises its limit"
        if self.answers:
            return (f"pace: unpaced: {self._unbelieved or 'the API advertises no limit'}; "
                    "slowing down if it refuses a request")
        return "pace: one request until the API advertises its limit"

    def _describe(self, text: str) -> None:
        if text != self.reason:
            self.reason = text
            if self._on_pace is not None:
                self._on_pace(text)
            self._warn_if_slow()

    def _warn_if_slow(self) -> None:
        """Say once when the API imposes a pace under SLOW_RATE (the user's own --max-rate
        is not the API's doing)."""
        interval, cap = self._api_interval(), self.settings.max_rate
        if interval <= 60.0 / SLOW_RATE or (cap is not None and 60.0 / cap >= interval):
            return
        minutes = 100 * interval / 60
        took = f"{minutes / 60:.1f} h" if minutes >= 60 else f"{minutes:.0f} min"
        self._warn("pace", f"the API's rate limit makes this run slow: {self.reason}; "
                   f"every 100 requests take about {took}")

    def _warn(self, kind: str, text: str) -> None:
        """Tell `on_slow` about a slow-down of `kind`, the first time only."""
        if kind not in self._warned:
            self._warned.add(kind)
            if self._on_slow is not None:
                self._on_slow(text)
