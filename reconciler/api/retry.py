"""When and how long to wait before trying an API call again.

Pure policy, no I/O: `reconciler.api.engine` asks it whether a failed attempt may be retried and
for how long to sleep first. Backoff is capped exponential with full jitter; a server's
`Retry-After` (seconds or an HTTP date) is honoured up to a cap; an overall deadline bounds
the time one call may take, waits included.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

# Statuses that mean "the server did not do it, or may not have: ask again".
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the client tries before it reports a failure.

    `max_attempts` counts every attempt of one call (the first included); `backoff_base` and
    `backoff_cap` shape the exponential backoff, in seconds; `retry_after_cap` bounds a
    server's `Retry-After`; `deadline` bounds one call's total time, waits included;
    `max_relists` is how many times a listing that shifted under concurrent writes is read again;
    `listing_deadline` bounds one whole listing (every page and re-read).
    """

    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 20.0
    retry_after_cap: float = 60.0
    deadline: float = 120.0
    max_relists: int = 3
    listing_deadline: float = 900.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.backoff_base, self.backoff_cap, self.retry_after_cap, self.deadline,
               self.listing_deadline) < 0:
            raise ValueError("backoff, Retry-After cap and deadline cannot be negative")
        if self.max_relists < 0:
            raise ValueError("max_relists cannot be negative")

    def backoff(self, attempt: int, uniform: Callable[[float, float], float]) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based), with full jitter.

        `uniform` is `random.uniform` or a replacement for tests. Raises nothing.
        """
        exponent = min(attempt - 1, 60)  # 2**60 already dwarfs any cap
        return uniform(0.0, min(self.backoff_cap, self.backoff_base * 2.0**exponent))

    def delay(
        self,
        attempt: int,
        *,
        retry_after: float | None,
        uniform: Callable[[float, float], float],
    ) -> float:
        """Seconds to wait before the next attempt: the server's `Retry-After` when it sent
        one (capped), else the jittered backoff. Raises nothing."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        return self.backoff(attempt, uniform)

    def may_retry(self, *, attempt: int, elapsed: float, delay: float) -> bool:
        """Whether another attempt fits: attempts left, and the wait ends before the deadline."""
        return attempt < self.max_attempts and elapsed + delay <= self.deadline


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for; None when absent or unreadable.

    Accepts delta-seconds ("7", "1.5") and HTTP dates ("Wed, 21 Oct 2015 07:28:00 GMT");
    a date in the past means 0. The value comes from a server and may be anything: a number
    or a date out of any range ("1e400", year 99999, day 99) reads as absent. The result is
    finite and not negative, but not capped (`RetryPolicy.retry_after_cap` is). Raises
    nothing.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until_http_date(text, now=now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(seconds, 0.0)


def _seconds_until_http_date(text: str, *, now: datetime | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        current = now if now is not None else datetime.now(UTC)
        seconds = (when - current).total_seconds()
    except (ArithmeticError, TypeError, ValueError, IndexError):  # numbers out of any range
        return None
    return max(seconds, 0.0)
