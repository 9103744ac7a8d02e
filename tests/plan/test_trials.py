"""`reconciler test` planned: what a replay sends, the throwaway names and the sweep rule
(clock skew between machines and the server), a repeated check's runs combined, and the
reserved prefix no `owns` pattern can own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reconciler.api.live import Conversation
from reconciler.desired.model import (
    ConversationSpec,
    DesiredState,
    Expectations,
    MessageSpec,
    ProjectSpec,
    is_throwaway,
)
from reconciler.plan.health import CheckResult, MessageCheck, Status
from reconciler.plan.trials import (
    MAX_NAME,
    MIN_LIFETIME,
    RunStamp,
    combined,
    expired,
    lifetime,
    replays,
    sends_needed,
    stamps,
)

NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
EXPECT = Expectations(contains=("x",))


def run_at(start: datetime, minutes: int = 30) -> RunStamp:
    return RunStamp("0123456789ab", start, start + timedelta(minutes=minutes))


def conversation(name: str, *, created: datetime, by: str | None = "me") -> Conversation:
    return Conversation(1, "s-1", name, 1, by, created.strftime("%Y-%m-%d %H:%M:%S"),
                        created.strftime("%Y-%m-%d %H:%M:%S"))


def test_a_replay_sends_up_to_the_last_expected_message_repeat_times() -> None:
    spec = ConversationSpec("QA", messages=(
        MessageSpec("context"), MessageSpec("one", expect=EXPECT), MessageSpec("between"),
        MessageSpec("two", expect=EXPECT), MessageSpec("after")))
    plain = ConversationSpec("plain", messages=(MessageSpec("hi"),))
    desired = DesiredState(projects=(ProjectSpec(1, conversations=(spec, plain)),))
    planned = replays(desired, repeat=3)
    assert [(r.conversation.name, r.repetition, r.repeat) for r in planned] == [
        ("QA", 1, 3), ("QA", 2, 3), ("QA", 3, 3)]
    assert [m.prompt for m in planned[0].messages] == ["context", "one", "between", "two"]
    assert sends_needed(planned) == 12


def test_names_carry_the_run_and_are_reserved_and_bounded() -> None:
    run = run_at(NOW)
    name = run.name("QA refunds", 2, 5)
    assert name == ("reconciler-test 20261202T120000Z until 20261202T123000Z 0123456789ab "
                    "2/5 QA refunds")
    assert is_throwaway(name)
    assert stamps(name) == (NOW, NOW + timedelta(minutes=30), "0123456789ab")
    assert len(run.name("x" * 300, 1, 1)) == MAX_NAME
    assert stamps("reconciler-test of mine") is None
    assert stamps("reconciler-test 20261302T120000Z until 20261202T123000Z 0123456789ab 1/1")\
        is None  # month 13
    assert stamps(run_at(NOW, -5).name("x", 1, 1)) is None  # a deadline before its start


@pytest.mark.parametrize(("created", "started", "now", "swept"), [
    (NOW, NOW, NOW + timedelta(minutes=89), False),  # deadline + margin not reached
    (NOW, NOW, NOW + timedelta(minutes=91), True),
    # the running machine's clock was 2 h behind: its deadline is early, the server's
    # creation time keeps it
    (NOW, NOW - timedelta(hours=2), NOW + timedelta(minutes=10), False),
    # the sweeping machine's clock is 45 min ahead of everyone's: within the margin
    (NOW, NOW, NOW + timedelta(minutes=30 + 45), False),
])
def test_expired_needs_both_clocks_past_the_deadline_and_the_margin(
        created: datetime, started: datetime, now: datetime, swept: bool) -> None:
    name = run_at(started).name("QA", 1, 1)
    assert expired(conversation(name, created=created), now=now, user_id="me") is swept


def test_only_the_keys_users_named_throwaways_expire() -> None:
    late = NOW + timedelta(days=3)
    name = run_at(NOW).name("QA", 1, 1)
    assert not expired(conversation(name, created=NOW, by="teammate"), now=late, user_id="me")
    assert not expired(conversation("reconciler-test notes", created=NOW), now=late,
                       user_id="me")
    unreadable = Conversation(1, "s", name, 1, "me", "yesterday-ish", "")
    assert expired(unreadable, now=late, user_id="me")  # the name's deadline alone


def test_lifetime_covers_the_answers_and_the_pace() -> None:
    spec = ConversationSpec("QA", messages=(MessageSpec("q", expect=EXPECT),))
    planned = replays(DesiredState(projects=(ProjectSpec(1, conversations=(spec,)),)),
                      repeat=100)
    assert lifetime(planned[:1], parallelism=8, send_timeout=300, rate=None) == MIN_LIFETIME
    # 100 replays, 8 at a time: 13 waves of one 360 s prompt
    assert lifetime(planned, parallelism=8, send_timeout=300, rate=None) == timedelta(
        seconds=13 * 360)
    assert lifetime(planned, parallelism=8, send_timeout=300, rate=1.0) == timedelta(
        seconds=13 * 360 + 2 * (400 + 200))


def check(*statuses: Status, reason: str = "why") -> MessageCheck:
    return MessageCheck("QA", "q", tuple(CheckResult("contains", "'x'", s, reason)
                                         for s in statuses))


def test_repeated_runs_pass_at_the_min_pass_rate_and_say_how_many() -> None:
    runs = [check(Status.PASSED)] * 4 + [check(Status.FAILED, reason="no x")]
    strict = combined(runs, min_pass_rate=None)
    assert strict.results is not None
    assert strict.results[0].status is Status.FAILED
    assert strict.results[0].reason == "passed 4 of 5; last: no x"
    tolerant = combined(runs, min_pass_rate=0.8)
    assert tolerant.results is not None and tolerant.results[0].status is Status.PASSED
    assert combined(runs, min_pass_rate=0.81).results[0].status is Status.FAILED  # type: ignore[index]
    assert combined(runs[:1], min_pass_rate=None) == runs[0]
    never = combined([check(Status.NOT_CHECKED)] * 3, min_pass_rate=None)
    assert never.results is not None and never.results[0].status is Status.NOT_CHECKED


def test_no_owns_pattern_owns_a_throwaway() -> None:
    project = ProjectSpec(1, owns=("*", "reconciler-test*"))
    assert project.is_owned("anything")
    assert not project.is_owned("reconciler-test 20261202T120000Z until …")
    assert not project.is_owned("  RECONCILER-TEST x")
