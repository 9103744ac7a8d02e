"""A rename: its words, what must still hold, and applying it."""

from __future__ import annotations

import pytest

from reconciler.emulator import Emulator
from reconciler.plan.operations import Applied, LiveView, Rename
from tests.plan.operations.live import PROJECT, apply, conv, names, painted, seed, view

RENAME = Rename(project_id=7, name="New", reason="renamed_from", session_id="s1", old_name="Old")


def test_it_is_shown_with_both_names_and_its_session() -> None:
    assert painted(RENAME) == "\x1b[33m~ rename 'Old' -> 'New'  (s1)\x1b[0m"
    assert RENAME.requirement == ("session s1 is still named 'Old', and no other conversation "
                                  "in scope is named 'New'")
    assert RENAME.key == "7/rename/s1"


@pytest.mark.parametrize(
    ("live", "why"),
    [
        (view(conv("s1", "Old")), ""),
        (view(), "session s1 no longer exists"),
        (view(conv("s1", "Other")), "changed since the plan was made: name: 'Old' -> 'Other'"),
        (view(conv("s1", "Old"), conv("s9", "New")),
         "the new name 'New' has been taken since the plan was made (s9)"),
        (view(conv("s1", "Old"), conv("s9", "New"), conv("s8", "New")),
         "the new name 'New' has been taken since the plan was made (s8, s9)"),
        (view(conv("s1", "Old"), conv("s9", "New"), vacating=("s1", "s9")), ""),
    ],
    ids=["holds", "gone", "source-renamed", "target-taken", "target-taken-twice",
         "target-renamed-away"],
)
def test_what_must_still_hold(live: LiveView, why: str) -> None:
    assert RENAME.why_stale(live) == why


def test_a_rename_to_the_name_the_conversation_already_has_is_not_blocked_by_itself() -> None:
    again = Rename(project_id=7, name="New", reason="renamed_from", session_id="s1",
                   old_name="New")
    assert again.why_stale(view(conv("s1", "New"))) == ""


def test_it_reads_a_transcript_only_for_a_conversation_the_listing_does_not_hold() -> None:
    assert RENAME.transcript_needed({"s1": conv("s1", "Old")}) is None
    assert RENAME.transcript_needed({}) == "s1"


def test_it_renames_the_conversation(emulator: Emulator) -> None:
    session = seed(emulator, "Old")
    rename = Rename(project_id=PROJECT, name="New", reason="r", session_id=session,
                    old_name="Old")
    (applied,), _ = apply(emulator, rename)
    assert applied == Applied("renamed from 'Old'", session_id=session)
    assert names(emulator) == ["New"]
