"""How long to watch a conversation's transcript after a send whose answer was lost. Pure: no
I/O, no clock of its own.

When a send's answer is lost (no answer came, the connection broke, or a gateway gave up with
502 or 504), the service may still be answering it, and it stores the message only when it has
(if it commits late): sending the prompt again too soon sends it twice. So the client watches
the transcript for the message before it sends again, for as long as the service could still be
at it. How long that is, this run has seen: the time each successful send took, from its
request's start to its answer. The watch lasts `MULTIPLE` times the longest of them, at least
`FLOOR` seconds, at most `--send-timeout` (the upper bound):

- The longest, not a mean: one slow answer is enough to lengthen every watch after it, so a
  model that was fast at first and is slow now is watched for as long as its slowest answer
  says. A send still waiting for its answer counts as an answer at least that long, and so does
  the lost send itself (the time it had run when its answer was lost: a gateway that gave up
  after 60 s says the model takes more than 60 s). A lost send whose message appeared during
  its watch is an answer too, as long as it took to appear.
- `MULTIPLE` (4): how long one model takes varies with the length of its answer and the load
  of the service; four times the slowest answer seen leaves room for an answer several times
  longer than any seen so far.
- `FLOOR` (15 s): a service that answers within a fraction of a second (a cache, a quiet
  service, a handful of short answers) says little about how long it can take under load; a
  watch of 15 s costs little beside the minutes a real model's answers take, and a service
  whose answers are seen to take more than 3.75 s is watched for longer anyway.
- Until a send has been answered in this run, nothing is known: the watch lasts the whole
  `--send-timeout`, the time the client itself would have waited for the answer. A watch that
  began then is asked again at every look at the transcript, so it shortens as soon as a send
  to another conversation is answered (and lengthens when a slower answer is seen).

The watch counts from when the loss was noticed, after the time the lost request had already
run, so the service has had that time, the backoff and the watch to store the message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from itertools import count

MULTIPLE = 4.0
FLOOR = 15.0


class Basis(StrEnum):
    """What a watch's length rests on."""

    NONE_SEEN = "no answer seen"  # nothing observed yet: the upper bound
    ANSWERED = "the longest answer seen"
    WAITING = "a send still waiting for its answer"
    LOST = "the lost send itself"
    FIXED = "a fixed watch"


@dataclass(frozen=True)
class Watch:
    """How long to watch a transcript after a lost answer, and why."""

    seconds: float
    basis: Basis
    reference: float = 0.0  # the answer time the watch is a multiple of (seconds)
    multiple: float = MULTIPLE
    floor: float = FLOOR
    upper: float = 0.0  # --send-timeout

    def describe(self) -> str:
        """The watch in words, e.g. `for 15 s (4 x 0.8 s, the longest answer seen in this
        run; at least 15 s, at most 300 s, the send timeout)`."""
        if self.basis is Basis.NONE_SEEN:
            return (f"for up to {self.seconds:g} s (--send-timeout): no answer has been seen "
                    "yet in this run")
        if self.basis is Basis.FIXED:
            return f"for {self.seconds:g} s (a fixed watch, as set)"
        what = {
            Basis.ANSWERED: "the longest answer seen in this run",
            Basis.WAITING: "the longest a send is still waiting for its answer",
            Basis.LOST: "the time this send had run when its answer was lost",
        }[self.basis]
        return (f"for {round(self.seconds, 1):g} s ({self.multiple:g} x {_seconds(self.reference)}"
                f" s, {what}; at least {self.floor:g} s, at most {self.upper:g} s, the send "
                "timeout)")


class AnswerTimes:
    """The answer times of the sends of one run, and the watch they call for.

    The caller tells it when a send's request started (`started`, which returns a ticket) and
    how it ended (`answered`, or `ended` without an answer), with times from its own clock,
    and asks `watch` how long to watch a transcript now. `upper` is the send timeout; `fixed`,
    when given, is a watch of that many seconds whatever was seen. Raises ValueError for an
    upper bound, multiple or floor out of range.
    """

    def __init__(self, *, upper: float, multiple: float = MULTIPLE, floor: float = FLOOR,
                 fixed: float | None = None) -> None:
        if not (math.isfinite(upper) and upper > 0):
            raise ValueError(f"the upper bound must be a positive number of seconds, not {upper}")
        if not (math.isfinite(multiple) and multiple >= 1):
            raise ValueError(f"the multiple must be at least 1, not {multiple}")
        if not (math.isfinite(floor) and floor >= 0):
            raise ValueError(f"the floor must be a number of seconds, not {floor}")
        if fixed is not None and not (math.isfinite(fixed) and fixed >= 0):
            raise ValueError(f"a fixed watch must be a number of seconds, not {fixed}")
        self.upper, self.multiple, self.floor, self.fixed = upper, multiple, floor, fixed
        self.longest: float | None = None  # the longest answer seen; None: none yet
        self.answers = 0
        self._tickets = count(1)
        self._waiting: dict[int, float] = {}  # ticket -> when its request started

    def started(self, now: float) -> int:
        """A send's request started at `now`: the ticket to end it with."""
        ticket = next(self._tickets)
        self._waiting[ticket] = now
        return ticket

    def answered(self, ticket: int, now: float) -> None:
        """The send of `ticket` was answered at `now`: its time is an answer time."""
        began = self._waiting.pop(ticket, None)
        if began is not None:
            self.record(now - began)

    def ended(self, ticket: int) -> None:
        """The send of `ticket` ended without an answer (lost, refused, failed)."""
        self._waiting.pop(ticket, None)

    def record(self, seconds: float) -> None:
        """An answer that took `seconds` (a negative time counts as 0; a time that is not a
        number, as nothing)."""
        if math.isnan(seconds):
            return
        seconds = max(seconds, 0.0)
        self.longest = seconds if self.longest is None else max(self.longest, seconds)
        self.answers += 1

    def watch(self, now: float, *, lost_after: float = 0.0) -> Watch:
        """How long to watch the transcript of a send whose answer was lost after it had run
        `lost_after` seconds, as of `now`. Never NaN, never negative, never above the upper
        bound unless fixed."""
        if self.fixed is not None:
            return Watch(self.fixed, Basis.FIXED, upper=self.upper)
        if self.longest is None:
            return Watch(self.upper, Basis.NONE_SEEN, upper=self.upper)
        reference, basis = self.longest, Basis.ANSWERED
        waiting = max((now - began for began in self._waiting.values()), default=0.0)
        for seconds, why in ((waiting, Basis.WAITING), (lost_after, Basis.LOST)):
            # Only what lengthens the watch beyond the floor (False for NaN).
            if seconds > reference and self.multiple * seconds > self.floor:
                reference, basis = seconds, why
        seconds = min(self.upper, max(self.floor, self.multiple * reference))
        return Watch(seconds, basis, reference=reference, multiple=self.multiple,
                     floor=self.floor, upper=self.upper)


def _seconds(value: float) -> str:
    """Seconds for people: one decimal below 100, whole above."""
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"
