"""Answer checks (`reconciler.plan.health`): each `expect:` key judged on a stored answer, with
its reason in words, and hostile answers bounded."""

from __future__ import annotations

import pytest

from reconciler.desired.model import Expectations, Similarity
from reconciler.plan.health import (
    DEFAULT_NO_ANSWER,
    EVALUATED_CHARS,
    SHOWN_CHARS,
    SIMILAR_CHARS,
    Answer,
    CheckResult,
    Flip,
    MessageCheck,
    ProjectHealth,
    Status,
    evaluate,
    flips,
    shown_answer,
    similarity,
)

REFUND = "Refunds are accepted within 30 days of purchase, with the receipt."


def only(expect: Expectations, answer: Answer | str) -> CheckResult:
    results = evaluate(expect, answer if isinstance(answer, Answer) else Answer(answer))
    assert len(results) == 1, results
    return results[0]


def test_contains_compares_case_insensitively_in_the_normal_form() -> None:
    assert only(Expectations(contains=("30 DAYS",)), REFUND).passed
    # the answer's 'é' is decomposed (e + combining acute); the phrase is NFC
    assert only(Expectations(contains=("café",)), "Visit the cafe\u0301 today").passed
    failed = only(Expectations(contains=("60 days",)), REFUND)
    assert failed.status is Status.FAILED
    assert failed.reason == "does not contain '60 days'"


def test_not_contains_fails_when_the_phrase_is_there() -> None:
    failed = only(Expectations(not_contains=("RECEIPT",)), REFUND)
    assert failed.status is Status.FAILED and failed.reason == "contains 'RECEIPT'"
    assert only(Expectations(not_contains=("store credit",)), REFUND).passed


def test_matches_searches_the_answer() -> None:
    assert only(Expectations(matches=r"\b30\s+days\b"), REFUND).passed
    failed = only(Expectations(matches=r"\b14\s+days\b"), REFUND)
    assert failed.status is Status.FAILED
    assert failed.reason == r"matches no '\\b14\\s+days\\b'"


def test_a_slow_match_is_bounded_and_fails_saying_so() -> None:
    # polynomial backtracking passes validation, and on this answer never ends
    results = evaluate(Expectations(matches=r".*a.*a.*a.*b"), Answer("a" * 200_000),
                       match_seconds=0.01)
    assert results[0].status is Status.FAILED
    assert "took longer than 0.01 s" in results[0].reason


@pytest.mark.parametrize(("cites", "citations", "status", "reason"), [
    (True, (), Status.FAILED, "cites nothing"),
    (True, (7,), Status.PASSED, "cites 1 source"),
    (False, (7, 8), Status.FAILED, "cites 2 sources, none expected"),
    (False, (), Status.PASSED, "cites nothing"),
])
def test_cites_true_and_false(cites: bool, citations: tuple[int, ...], status: Status,
                              reason: str) -> None:
    result = only(Expectations(cites=cites), Answer(REFUND, citations))
    assert (result.status, result.reason) == (status, reason)


def test_cites_a_list_checks_each_id_and_leaves_names_unchecked() -> None:
    results = evaluate(Expectations(cites=(3, 9, "refunds.md")), Answer(REFUND, (3, 4)))
    assert [r.status for r in results] == [Status.PASSED, Status.FAILED, Status.NOT_CHECKED]
    assert results[1].reason == "does not cite source 9 (cites 3, 4)"
    assert "only ids are checked" in results[2].reason


def test_no_answer_compares_with_the_projects_message_or_the_default() -> None:
    own = "We could not find that, sorry."
    failed = only(Expectations(no_answer=False), Answer("  we could not find THAT, sorry. ",
                                                        no_answer_message=own))
    assert failed.status is Status.FAILED
    assert failed.reason == "is the agent's 'I don't know' answer"
    assert only(Expectations(no_answer=False), Answer(REFUND, no_answer_message=own)).passed
    assert only(Expectations(no_answer=True), Answer(DEFAULT_NO_ANSWER)).passed
    # the project's own message replaces the default
    assert not only(Expectations(no_answer=True),
                    Answer(DEFAULT_NO_ANSWER, no_answer_message=own)).passed


def test_max_chars_counts_the_whole_answer() -> None:
    failed = only(Expectations(max_chars=800), "x" * 1204)
    assert failed.reason == "is 1,204 characters, over 800"
    assert only(Expectations(max_chars=800), "x" * 800).passed
    huge = only(Expectations(max_chars=10), "y" * (EVALUATED_CHARS + 5))
    assert huge.reason == f"is {EVALUATED_CHARS + 5:,} characters, over 10"


def test_similar_to_uses_the_indel_ratio_of_plain_texts() -> None:
    assert similarity("Hello   WORLD", "hello world") == 1.0
    reference = "Refunds are accepted within 30 days of purchase."
    assert only(Expectations(similar_to=Similarity(reference, 0.8)), REFUND).passed
    failed = only(Expectations(similar_to=Similarity(reference, 0.8)), "Ask the shop.")
    assert failed.status is Status.FAILED
    score = similarity("Ask the shop.", reference)
    assert failed.reason == f"similarity {score:.2f} < 0.8"


def test_every_key_gives_a_result_in_order() -> None:
    expect = Expectations(contains=("30 days",), not_contains=("never",), matches="days",
                          cites=True, no_answer=False, max_chars=500,
                          similar_to=Similarity(REFUND, 0.9))
    results = evaluate(expect, Answer(REFUND, (1,)))
    assert [r.key for r in results] == ["contains", "not_contains", "matches", "cites",
                                        "no_answer", "max_chars", "similar_to"]
    assert all(r.passed for r in results)


def test_hostile_answers_are_judged_without_error() -> None:
    hostile = "\x00\x1b[31m30 days\u202e\udcff" + "z" * (5 << 20) + "the end"
    expect = Expectations(contains=("30 days", "the end"), matches=r"the\s+end",
                          similar_to=Similarity("30 days", 0.5), max_chars=100)
    results = evaluate(expect, Answer(hostile))
    # what lies past the first MiB is neither searched nor compared; its length counts
    assert [(r.key, r.status) for r in results] == [
        ("contains", Status.PASSED), ("contains", Status.FAILED), ("matches", Status.FAILED),
        ("max_chars", Status.FAILED), ("similar_to", Status.FAILED)]
    assert results[3].reason == f"is {len(hostile):,} characters, over 100"


def _health(statuses: dict[str, Status], *, prompt: str = "What is the refund window?",
            sent: bool = True) -> list[ProjectHealth]:
    results = tuple(CheckResult(key, "x", status, "why") for key, status in statuses.items())
    return [ProjectHealth(7, "Support", (MessageCheck("FAQ", prompt, results if sent else None),))]


def test_flips_name_each_check_whose_status_changed_both_ways() -> None:
    before = _health({"contains": Status.PASSED, "matches": Status.FAILED,
                      "cites": Status.PASSED})
    after = _health({"contains": Status.FAILED, "matches": Status.PASSED,
                     "cites": Status.PASSED})
    assert flips(before, after) == (
        Flip(7, "FAQ", "What is the refund window?", "contains", "x",
             Status.PASSED, Status.FAILED),
        Flip(7, "FAQ", "What is the refund window?", "matches", "x",
             Status.FAILED, Status.PASSED))


def test_a_check_in_one_run_only_or_not_judged_is_no_flip() -> None:
    before = _health({"contains": Status.PASSED})
    assert flips(before, _health({"matches": Status.FAILED})) == ()
    assert flips(before, _health({"contains": Status.FAILED}, sent=False)) == ()
    assert flips(before, _health({"contains": Status.FAILED},
                                 prompt="Another prompt")) == ()


def test_flips_compare_prompts_in_their_normal_form() -> None:
    before = _health({"contains": Status.PASSED}, prompt="Cafe\u0301?")
    after = _health({"contains": Status.FAILED}, prompt="Caf\u00e9?")
    assert [f.now for f in flips(before, after)] == [Status.FAILED]


def test_a_long_answer_is_shown_clipped() -> None:
    assert shown_answer("a" * 10) == "a" * 10
    assert shown_answer("a" * (SHOWN_CHARS + 5)) == "a" * SHOWN_CHARS + "…"


def test_similar_to_compares_a_huge_answers_beginning_only() -> None:
    """The Indel distance takes time in the product of both lengths: a megabyte answer is
    compared by its first SIMILAR_CHARS characters, the rest cannot make the check slow."""
    reference = "Refunds are possible within 30 days. " * 250
    huge = reference + "z" * (EVALUATED_CHARS - len(reference))
    assert similarity(huge, reference) == similarity(huge[:SIMILAR_CHARS], reference)
    assert similarity(huge, reference) < similarity(reference, reference) == 1.0
