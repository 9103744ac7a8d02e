"""`reconciler test`, planned (pure): which throwaway conversations a run asks in, what each
one sends, what they cost, how their names say when they may be swept, and the checks of
repeated runs combined.

A replay is one declared conversation with `expect:` asked again in a new conversation: its
messages in order, up to and including its last message with `expect:` (the ones before an
expected message are its context), with the conversation's send values and the project's
`lang`. With `--repeat N` each replay is made N times, each in its own conversation.

A throwaway conversation's name is `THROWAWAY_PREFIX`, the run's start and deadline (UTC, as
the machine that ran it counted them), the run's id, the repetition and the declared name:
`reconciler-test 20261202T090000Z until 20261202T100000Z 3f9a1c2b04d5 1/1 QA refunds`. A run
sweeps a throwaway conversation of the key's user only when it is expired (`expired`): past its
deadline by `SWEEP_MARGIN` on this machine's clock, AND, when the server's `created_at` can be
read, that long past its creation plus its run's planned length (start to deadline) on the
server's clock as this machine reads it, so that a machine whose clock runs behind or ahead
of the others' by less than the margin never sweeps a live run's conversations.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from reconciler.api.live import Conversation
from reconciler.desired.model import (
    THROWAWAY_PREFIX,
    ConversationSpec,
    DesiredState,
    MessageSpec,
    ProjectSpec,
)
from reconciler.plan.health import CheckResult, MessageCheck, Status

MAX_REPEAT = 100
SWEEP_MARGIN = timedelta(hours=1)  # past a deadline, on both clocks, before a sweep
MIN_LIFETIME = timedelta(minutes=30)
MAX_LIFETIME = timedelta(hours=24)
MAX_NAME = 255  # the API's bound on a conversation's name
_STAMP = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(r"reconciler-test (\d{8}T\d{6}Z) until (\d{8}T\d{6}Z) ([0-9a-f]{12}) "
                   r"\d+/\d+(?: |$)")
# The forms of `created_at` the API is known to write (UTC).
_CREATED_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ",
                    "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z")


@dataclass(frozen=True)
class RunStamp:
    """One run of `reconciler test`: its id (12 hex digits), its start and deadline (UTC)."""

    run_id: str
    start: datetime
    deadline: datetime

    @property
    def tag(self) -> str:
        """What every throwaway name of this run starts with."""
        return (f"{THROWAWAY_PREFIX}{self.start.strftime(_STAMP)} until "
                f"{self.deadline.strftime(_STAMP)} {self.run_id} ")

    def name(self, declared: str, repetition: int, repeat: int) -> str:
        """The throwaway name of repetition `repetition` (from 1) of `repeat` of the declared
        conversation `declared`, at most `MAX_NAME` characters."""
        return f"{self.tag}{repetition}/{repeat} {declared}"[:MAX_NAME].rstrip()


@dataclass(frozen=True)
class Replay:
    """One throwaway conversation to make: the declared conversation it asks again, the
    messages it sends (in order), and which repetition it is (from 1) of how many."""

    project: ProjectSpec
    conversation: ConversationSpec
    messages: tuple[MessageSpec, ...]
    repetition: int = 1
    repeat: int = 1


def replayed(conversation: ConversationSpec) -> tuple[MessageSpec, ...]:
    """The messages a replay of `conversation` sends: every one up to its last with
    `expect:` (none when it has none)."""
    last = max((i for i, m in enumerate(conversation.messages) if m.expect is not None),
               default=-1)
    return conversation.messages[:last + 1]


def replays(desired: DesiredState, *, repeat: int = 1) -> list[Replay]:
    """Every replay of `desired`: each declared conversation with `expect:`, `repeat` times,
    project by project in the declared order."""
    return [Replay(project, conversation, messages, repetition, repeat)
            for project in desired.projects for conversation in project.conversations
            if (messages := replayed(conversation))
            for repetition in range(1, repeat + 1)]


def sends_needed(planned: Sequence[Replay]) -> int:
    """The prompts the replays send (each costs a query credit)."""
    return sum(len(r.messages) for r in planned)


def lifetime(planned: Sequence[Replay], *, parallelism: int, send_timeout: float,
             rate: float | None) -> timedelta:
    """How long a run of `planned` may take before another run may sweep its conversations:
    the replays in waves of `parallelism`, each prompt allowed `send_timeout` seconds and a
    minute more, plus the requests (four a replay and two a prompt, doubled for retries) at
    `rate` requests a second (None: unpaced); within `MIN_LIFETIME` and `MAX_LIFETIME`."""
    longest = max((len(r.messages) for r in planned), default=0)
    waves = math.ceil(len(planned) / max(parallelism, 1))
    answering = waves * longest * (send_timeout + 60)
    requests = 2 * (4 * len(planned) + 2 * sends_needed(planned))
    pacing = 0.0 if not rate else requests / rate
    seconds = answering + pacing
    return min(MAX_LIFETIME, max(MIN_LIFETIME, timedelta(seconds=seconds)))


def stamps(name: str) -> tuple[datetime, datetime, str] | None:
    """The start, deadline and run id a throwaway name carries; None when `name` is not one
    a run of `reconciler test` made (a conversation merely named with the prefix is never
    swept)."""
    found = _NAME.match(name)
    if found is None:
        return None
    try:
        start, deadline = (datetime.strptime(found[i], _STAMP).replace(tzinfo=UTC)
                           for i in (1, 2))
    except ValueError:
        return None
    return (start, deadline, found[3]) if start <= deadline else None


def expired(conversation: Conversation, *, now: datetime, user_id: str,
            margin: timedelta = SWEEP_MARGIN) -> bool:
    """Whether a sweep may delete `conversation`: a throwaway of a run of the key's user
    (`user_id`) past its deadline by `margin` on this machine's clock (`now`, UTC) and, when
    its `created_at` can be read, by `margin` past its creation plus its run's planned length
    (see the module's docstring)."""
    if conversation.created_by != user_id:
        return False
    carried = stamps(conversation.name)
    if carried is None:
        return False
    start, deadline, _ = carried
    if now < deadline + margin:
        return False
    created = server_time(conversation.created_at)
    return created is None or now >= created + (deadline - start) + margin


def server_time(stamp: str) -> datetime | None:
    """A `created_at` as a UTC time; None in a form not known."""
    for form in _CREATED_FORMATS:
        try:
            parsed = datetime.strptime(stamp, form)
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return None


def combined(runs: Sequence[MessageCheck], *, min_pass_rate: float | None) -> MessageCheck:
    """The checks of one declared message over its repeated runs (one `MessageCheck` each,
    same conversation and prompt): each check passes when it passed in at least
    `min_pass_rate` of the runs (None: all of them), a run whose answer was not judged
    counting as not passed; its reason says "passed K of N" and, when one failed, the last
    failure's reason. A single run is returned as it is."""
    if len(runs) == 1:
        return runs[0]
    first = runs[0]
    width = max((len(r.results or ()) for r in runs), default=0)
    template = next((r.results for r in runs if r.results and len(r.results) == width), None)
    if template is None:
        return MessageCheck(first.conversation, first.prompt, None, None)
    results = []
    total = len(runs)
    floor = 1.0 if min_pass_rate is None else min_pass_rate
    for index, shape in enumerate(template):
        outcomes = [r.results[index] for r in runs if r.results and len(r.results) > index]
        passed = sum(o.status is Status.PASSED for o in outcomes)
        if outcomes and all(o.status is Status.NOT_CHECKED for o in outcomes):
            results.append(CheckResult(shape.key, shape.expected, Status.NOT_CHECKED,
                                       outcomes[-1].reason))
            continue
        ok = passed >= total * floor - 1e-9
        reason = f"passed {passed} of {total}"
        failures = [o.reason for o in outcomes if o.status is not Status.PASSED]
        if failures:
            reason += f"; last: {failures[-1]}"
        elif len(outcomes) < total:
            reason += f"; {total - len(outcomes)} not judged"
        results.append(CheckResult(shape.key, shape.expected,
                                   Status.PASSED if ok else Status.FAILED, reason))
    answer = next((r.answer for r in reversed(runs) if r.answer is not None), None)
    return MessageCheck(first.conversation, first.prompt, tuple(results), answer)
