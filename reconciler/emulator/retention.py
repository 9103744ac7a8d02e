"""How long a project keeps its conversations, and forgetting the ones past it.

A project's settings say `conversation_retention_period`: `year` (the default: 12 months,
taken as 365 days), `custom` (`conversation_retention_days` days) or `never`. Conversations
created before the cut-off are deleted for good, with their messages, the next time anything
of the project is read or written through the API (the real service deletes them in the
background; a test sees the same result at its next request).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from reconciler.emulator.store import Store

PERIODS = ("custom", "year", "never")
DEFAULT_PERIOD = "year"
YEAR_DAYS = 365
MAX_DAYS = 100 * YEAR_DAYS


class RetentionError(ValueError):
    """A retention setting that cannot be: the message says which and why."""


@dataclass(frozen=True)
class Retention:
    """A project's retention: the period, and the days of a `custom` one (0 otherwise, as the
    API shows it)."""

    period: str = DEFAULT_PERIOD
    days: int = 0

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise RetentionError(f"The conversation_retention_period must be one of: "
                                 f"{', '.join(PERIODS)}")
        if isinstance(self.days, bool) or not isinstance(self.days, int) \
                or not 0 <= self.days <= MAX_DAYS:
            raise RetentionError(f"The conversation_retention_days must be a whole number "
                                 f"from 0 to {MAX_DAYS}")
        if self.period == "custom" and self.days < 1:
            raise RetentionError("The conversation_retention_days must be at least 1 for a "
                                 "custom conversation_retention_period")

    def cutoff(self, now: datetime) -> str | None:
        """The creation time (the API's format) before which conversations are gone, None
        when they are kept for ever."""
        if self.period == "never":
            return None
        days = YEAR_DAYS if self.period == "year" else self.days
        return (now - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")


def retention_of(store: Store, project_id: int) -> Retention:
    """The project's retention (the default when never set)."""
    stored = store.retention(project_id)
    return Retention() if stored is None else Retention(*stored)


def forget_expired(store: Store, project_id: int) -> int:
    """Delete the project's conversations older than its retention; return how many."""
    cutoff = retention_of(store, project_id).cutoff(datetime.now(UTC))
    return 0 if cutoff is None else store.expire(project_id, cutoff)
