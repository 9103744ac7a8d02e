"""A create: its words, what must still hold, and applying it."""

from __future__ import annotations

import pytest

from reconciler.emulator import Emulator
from reconciler.plan.operations import Create, LiveView
from tests.plan.operations.live import PROJECT, apply, conv, names, painted, seed, view

CREATE = Create(project_id=7, name="New", reason="declared")


def test_it_is_shown_by_its_name() -> None:
    assert painted(CREATE) == "\x1b[32m+ create 'New'\x1b[0m"
    assert CREATE.requirement == "no conversation named 'New' in scope"
    assert CREATE.key == "7/create/New"
    assert CREATE.transcript_needed({}) is None


@pytest.mark.parametrize(
    ("live", "why"),
    [
        (view(conv("s9", "Other")), ""),
        (view(conv("s9", "New")), "a conversation named 'New' now exists (s9)"),
        (view(conv("s9", "New"), conv("s8", "New")),
         "a conversation named 'New' now exists (s8, s9)"),
        (view(conv("s9", "New"), vacating=("s9",)), ""),
    ],
    ids=["free", "taken", "taken-twice", "taken-by-one-the-plan-renames"],
)
def test_what_must_still_hold(live: LiveView, why: str) -> None:
    assert CREATE.why_stale(live) == why


def test_it_creates_the_conversation_and_names_its_session(emulator: Emulator) -> None:
    seed(emulator, "Other")
    (applied,), _ = apply(emulator, Create(project_id=PROJECT, name="New", reason="r"))
    assert applied.detail == "created"
    assert names(emulator) == ["Other", "New"]
    assert applied.session_id == emulator.conversations(PROJECT)[1]["session_id"]
    assert (applied.backup, applied.failed) == (None, False)
