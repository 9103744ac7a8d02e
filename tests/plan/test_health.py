"""Answer checks (`reconciler.plan.health`): each `expect:` key judged on a stored answer, with
its reason in words, and hostile answers bounded."""

from __future__ import annotations

import pytest

from reconciler.api.live import CitedSource
from reconciler.desired.model import Expectations, Similarity
from reconciler.plan.health import (
    DEFAULT_NO_ANSWER,
    EVALUATED_CHARS,
    SHOWN_CHARS,
    SIMILAR_CHARS,
    SOURCES_NOT_READ,
    Answer,
    CheckResult,
    CitedSources,
    Flip,
    MessageCheck,
    ProjectHealth,
    Status,
    evaluate,
    flips,
    shown_answer,
    similarity,
    source_matches,
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


def test_cites_a_list_checks_each_id_and_leaves_names_unread_unchecked() -> None:
    """Ids are checked on the answer alone; a name needs the cited sources, which a plan
    does not read: not checked, saying so."""
    results = evaluate(Expectations(cites=(3, 9, "refunds.md")), Answer(REFUND, (3, 4)))
    assert [r.status for r in results] == [Status.PASSED, Status.FAILED, Status.NOT_CHECKED]
    assert results[1].reason == "does not cite source 9 (cites 3, 4)"
    assert results[2].reason == SOURCES_NOT_READ


REFUNDS = CitedSource(1324192482, "Refunds", "refunds.md")
PRICING = CitedSource(77, "Pricing and plans", "https://shop.example/docs/pricing/")


@pytest.mark.parametrize("name", [
    "refunds.md", "REFUNDS.MD", " refunds.md ", "Refunds", "re\u0301funds.md",
], ids=["url", "casefolded", "normal form", "title", "nfc"])
def test_a_name_matches_the_title_the_url_or_its_last_segment(name: str) -> None:
    source = REFUNDS if "\u0301" not in name else CitedSource(1, None, "r\u00e9funds.md")
    assert source_matches(name, source)


@pytest.mark.parametrize(("name", "matches"), [
    ("pricing", True),  # the last segment, a trailing slash ignored
    ("Pricing and plans", True),
    ("https://shop.example/docs/pricing/", True),
    ("https://shop.example/docs/pricing", True),  # a URL, but for its trailing slash
    ("HTTPS://SHOP.EXAMPLE/DOCS/PRICING", True),
    ("docs/pricing", False),  # a path is not a segment
    ("https://shop.example/docs", False),
    ("shop.example", False),
    ("pricing and", False),  # no part of a title
])
def test_what_a_name_matches_of_a_web_page(name: str, matches: bool) -> None:
    assert source_matches(name, PRICING) is matches


def test_a_percent_encoded_segment_matches_its_decoded_name() -> None:
    assert source_matches("my refunds.md", CitedSource(1, None, "my%20refunds.md"))
    assert source_matches("q&a.md", CitedSource(1, None, "https://x.example/a/q%26a.md?x=1"))


def test_a_source_without_title_or_url_matches_nothing() -> None:
    assert not source_matches("refunds.md", CitedSource(1, None, None))
    assert not source_matches("", CitedSource(1, "", ""))


def test_a_named_source_passes_when_a_cited_source_is_it() -> None:
    sources = CitedSources({77: PRICING, 1324192482: REFUNDS})
    result = only(Expectations(cites=("refunds.md",)),
                  Answer(REFUND, (77, 1324192482), sources=sources))
    assert (result.status, result.reason) == (
        Status.PASSED, "cites 'refunds.md' (source 1324192482)")


def test_a_named_source_fails_naming_what_is_cited() -> None:
    sources = CitedSources({1324192482: REFUNDS, 5: None})
    result = only(Expectations(cites=("pricing.md",)),
                  Answer(REFUND, (1324192482, 1324192482, 5), sources=sources))
    assert (result.status, result.reason) == (
        Status.FAILED, "does not cite 'pricing.md' (cites 'refunds.md', source 5, which the "
        "API does not show)")
    nothing = only(Expectations(cites=("pricing.md",)), Answer(REFUND, (), sources=sources))
    assert (nothing.status, nothing.reason) == (
        Status.FAILED, "does not cite 'pricing.md' (cites nothing)")


def test_a_named_source_is_not_checked_while_a_cited_one_is_unread() -> None:
    """An unread source might be the one named: not checked, with the read's reason; but a
    source read and matching passes whatever else could not be read."""
    sources = CitedSources({1324192482: REFUNDS}, {8: "HTTP 500", 9: "more than 50"})
    missing = only(Expectations(cites=("pricing.md",)),
                   Answer(REFUND, (8, 1324192482, 9), sources=sources))
    assert (missing.status, missing.reason) == (
        Status.NOT_CHECKED, "the cited source 8 (and 1 more) could not be read: HTTP 500")
    found = only(Expectations(cites=("refunds.md",)),
                 Answer(REFUND, (8, 1324192482), sources=sources))
    assert found.status is Status.PASSED


def test_hostile_sources_are_shown_escaped_and_briefly() -> None:
    title = "\x1b[2J\u202eevil\n" + "t" * 5000
    sources = CitedSources({i: CitedSource(i, title, None) for i in range(1, 8)})
    result = only(Expectations(cites=("pricing.md",)), Answer(REFUND, tuple(range(1, 8)),
                                                              sources=sources))
    assert result.status is Status.FAILED
    assert "\x1b" not in result.reason and "\u202e" not in result.reason
    assert "\n" not in result.reason
    assert "\\x1b[2J" in result.reason and "\\u202e" in result.reason
    assert len(result.reason) < 600  # five sources shown, each clipped, then "…"
    assert result.reason.endswith(", …)")


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
