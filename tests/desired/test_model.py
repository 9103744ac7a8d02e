"""The desired-state model: the pattern that matches exactly one name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.desired.model import glob_matcher, literal_pattern
from reconciler.desired.rules import glob_problem


@pytest.mark.parametrize(
    ("name", "pattern", "not_matched"),
    [
        ("Plain name", "Plain name", "Plain names"),
        ("FAQ *", "FAQ [*]", "FAQ 1"),
        ("Why?", "Why[?]", "Whyx"),
        ("[draft] notes", "[[]draft] notes", "d notes"),
        ("a]b!c-d", "a]b!c-d", "a]b"),
        ("${X} [?*]", "${X} [[][?][*]]", "${X} ?"),
    ],
    ids=["plain", "star", "question-mark", "bracket", "other-punctuation", "all-at-once"],
)
def test_a_literal_pattern_matches_its_name_and_no_other(name: str, pattern: str,
                                                         not_matched: str) -> None:
    assert literal_pattern(name) == pattern
    assert glob_problem(pattern) is None  # validate accepts what export writes
    matches = glob_matcher([pattern])
    assert matches(name)
    assert not matches(not_matched)


@given(st.text(min_size=1, max_size=30), st.text(max_size=30))
def test_any_name_is_matched_exactly_by_its_literal_pattern(name: str, other: str) -> None:
    pattern = literal_pattern(name)
    assert glob_problem(pattern) is None
    matches = glob_matcher([pattern])
    assert matches(name, name)
    assert matches(other, other) is (other == name)
