"""Declared messages in the mapping form: prompt, reaction and `expect:`, the defaults merged
in, and every way an `expect:` can be wrong, located."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.desired.expectations import regex_problem
from reconciler.desired.loader import load_desired
from reconciler.desired.model import (
    ConversationSpec,
    Expectations,
    MessageSpec,
    Reaction,
    Similarity,
)
from reconciler.errors import InputError


def load(tmp_path: Path, text: str) -> list[ConversationSpec]:
    path = tmp_path / "a.yaml"
    path.write_text(text, encoding="utf-8")
    (project,) = load_desired([str(path)], env={}).projects
    return list(project.conversations)


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "a.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as raised:
        load_desired([str(path)], env={})
    return [str(p).replace(str(tmp_path) + "/", "") for p in raised.value.problems]


def one_message(expect: str, *, project: str = "", defaults: str = "") -> str:
    """A file with one message whose `expect:` is `expect` (flow YAML)."""
    return (f"version: 1\n{defaults}projects:\n  - id: 1\n{project}"
            f"    conversations:\n      - name: Demo\n        messages:\n"
            f"          - prompt: Who is on call?\n            expect: {expect}\n")


def test_a_message_may_be_a_mapping_beside_plain_strings(tmp_path: Path) -> None:
    (conv,) = load(tmp_path, """\
version: 1
projects:
  - id: 1
    conversations:
      - name: Demo
        messages:
          - What is the escalation policy?
          - prompt: " Who do I call at night? "
            reaction: liked
            expect: {contains: ["on-call"], cites: true}
          - {prompt: Thanks, reaction: neutral}
""")
    assert conv.messages == (
        MessageSpec("What is the escalation policy?"),
        MessageSpec("Who do I call at night?", reaction=Reaction.LIKED,
                    expect=Expectations(contains=("on-call",), cites=True)),
        MessageSpec("Thanks", reaction=Reaction.NEUTRAL),
    )
    assert conv.prompts == ("What is the escalation policy?", "Who do I call at night?",
                            "Thanks")
    assert [m.location.line for m in conv.messages if m.location] == [7, 8, 11]


def test_every_kind_of_expectation_is_loaded_phrases_in_normal_form(tmp_path: Path) -> None:
    (conv,) = load(tmp_path, one_message(
        '{contains: [" on-call ", "Cafe\\u0301"], not_contains: [sorry], matches: "\\\\d+ min", '
        'cites: [Handbook, 12061], no_answer: false, max_chars: 400, '
        'similar_to: {text: " Call the pager. ", min: 0.8}}'))
    assert conv.messages[0].expect == Expectations(
        contains=("on-call", "Café"), not_contains=("sorry",), matches=r"\d+ min",
        cites=("Handbook", 12061), no_answer=False, max_chars=400,
        similar_to=Similarity(text="Call the pager.", min=0.8))


def test_defaults_and_the_project_apply_to_messages_with_expectations_own_keys_win(
        tmp_path: Path) -> None:
    (conv,) = load(tmp_path, """\
version: 1
defaults:
  expect: {max_chars: 500, cites: true, not_contains: [As an AI]}
projects:
  - id: 1
    expect: {max_chars: 300, no_answer: false}
    conversations:
      - name: Demo
        messages:
          - Hello
          - {prompt: No checks here, reaction: liked}
          - prompt: Only the defaults
            expect: {}
          - prompt: Its own
            expect: {max_chars: 80, cites: false, contains: [pager]}
""")
    hello, no_checks, defaults_only, own = conv.messages
    assert (hello.expect, no_checks.expect) == (None, None)
    assert defaults_only.expect == Expectations(not_contains=("As an AI",), cites=True,
                                                no_answer=False, max_chars=300)
    assert own.expect == Expectations(contains=("pager",), not_contains=("As an AI",),
                                      cites=False, no_answer=False, max_chars=80)


def test_the_defaults_expect_applies_to_every_project_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("""\
version: 1
defaults: {expect: {max_chars: 500}}
projects:
  - id: 1
    conversations: [{name: A, messages: [{prompt: a, expect: {}}]}]
  - id: 2
    expect: {max_chars: 100}
    conversations: [{name: B, messages: [{prompt: b, expect: {}}]}]
""", encoding="utf-8")
    one, two = load_desired([str(path)], env={}).projects
    assert one.conversations[0].messages[0].expect == Expectations(max_chars=500)
    assert two.conversations[0].messages[0].expect == Expectations(max_chars=100)


def test_a_plain_string_in_a_conversation_spec_is_a_message_with_only_a_prompt() -> None:
    conv = ConversationSpec("Demo", messages=("hi", MessageSpec("yo", Reaction.LIKED)))  # type: ignore[arg-type]
    assert conv.messages == (MessageSpec("hi"), MessageSpec("yo", Reaction.LIKED))


@pytest.mark.parametrize(
    ("expect", "problem"),
    [
        ('{matches: "(on-call"}',
         "a.yaml:8:31: matches '(on-call': not a regular expression: missing ), "
         "unterminated subpattern at position 0"),
        ('{matches: "[z-a]"}',
         "a.yaml:8:31: matches '[z-a]': not a regular expression: bad character range z-a at "
         "position 1"),
        ("{similar_to: {text: call us, min: 1.5}}",
         "a.yaml:8:55: projects[0].conversations[0].messages[0].expect.similar_to.min: must be "
         "at most 1 (got 1.5)"),
        ("{similar_to: {text: call us, min: -0.1}}",
         "a.yaml:8:55: projects[0].conversations[0].messages[0].expect.similar_to.min: must be "
         "at least 0 (got -0.1)"),
        ("{similar_to: {text: call us}}",
         "a.yaml:8:34: projects[0].conversations[0].messages[0].expect.similar_to: missing "
         "required key 'min'"),
        ("{contain: [x]}",
         "a.yaml:8:22: projects[0].conversations[0].messages[0].expect.contain: unknown key "
         "'contain'; did you mean 'contains'?"),
        ("{contains: on-call}",
         "a.yaml:8:32: projects[0].conversations[0].messages[0].expect.contains: expected a "
         "list, got string \"on-call\""),
        ('{contains: ["  "]}',
         "a.yaml:8:33: projects[0].conversations[0].messages[0].expect.contains[0]: a phrase "
         "must not be empty or blank (got \"  \")"),
        ("{max_chars: 0}",
         "a.yaml:8:33: projects[0].conversations[0].messages[0].expect.max_chars: must be at "
         "least 1 (got 0)"),
        ("{max_chars: 12.5}",
         "a.yaml:8:33: projects[0].conversations[0].messages[0].expect.max_chars: expected an "
         "integer, got number 12.5"),
        ("{no_answer: maybe}",
         "a.yaml:8:33: projects[0].conversations[0].messages[0].expect.no_answer: expected "
         "true or false, got string \"maybe\""),
        ("{cites: []}",
         "a.yaml:8:29: projects[0].conversations[0].messages[0].expect.cites: must have at "
         "least 1 item(s)"),
        ("{cites: yes please}",
         "a.yaml:8:29: projects[0].conversations[0].messages[0].expect.cites: expected true or "
         "false or a list, got string \"yes please\""),
        ("{matches: " + "a" * 1001 + "}",
         "a.yaml:8:31: projects[0].conversations[0].messages[0].expect.matches: is 1001 "
         "characters long; the limit is 1000"),
        ("[on-call]",
         "a.yaml:8:21: projects[0].conversations[0].messages[0].expect: expected a mapping, "
         "got a list"),
    ],
    ids=["regex-unclosed", "regex-range", "min-above-1", "min-below-0", "min-missing",
         "unknown-key", "phrases-not-a-list", "blank-phrase", "max-chars-zero",
         "max-chars-float", "no-answer-not-bool", "cites-empty", "cites-text", "regex-too-long",
         "not-a-mapping"],
)
def test_a_wrong_expectation_is_refused_where_it_is_written(
        tmp_path: Path, expect: str, problem: str) -> None:
    assert problems(tmp_path, one_message(expect)) == [problem]


@pytest.mark.parametrize(
    "pattern",
    [r"(a+)+", r"(a|a)*", r"(.*)*", r"(a*)*", r"(a?)*b", r"(x|)+", r"(on|on-call)+",
     r"^(\w+\s?)*$", r"(.*,)*", r"(\d+\d+,)*", r"(a{1,5})+", r"((ab)*)+",
     r"(?=(a+)+b)", r"(?:(?:a+)b?)+x", r"(?i)(A|ab)+", r"([a-z]+)*x"],
)
def test_a_pattern_that_can_backtrack_exponentially_is_refused(pattern: str) -> None:
    problem = regex_problem(pattern)
    assert problem is not None and "it can take exponential time" in problem


@pytest.mark.parametrize(
    "pattern",
    [r"on-call", r"\d+(,\d+)*", r"(ab+)+", r"(\s+\w+)*", r"(\d{1,3}\.){3}\d{1,3}", r"(a|b)*",
     r".*pager.*night", r"(?>a+)+", r"(a++)+", r"(?i)escalat(e|ion)",
     r"[A-Z][a-z]+( [A-Z][a-z]+)*", r"(\d+[.,])*\d+", r"(?:[^,]*,)*", r"(\s|\S)*x",
     r"\bcall\b.*\b(on-call|pager)\b"],
)
def test_a_pattern_that_cannot_backtrack_exponentially_passes(pattern: str) -> None:
    assert regex_problem(pattern) is None


def test_a_refused_pattern_is_located_at_its_matches_in_defaults_and_projects(
        tmp_path: Path) -> None:
    found = problems(tmp_path, one_message(
        '{matches: "(a|a)*"}', defaults="defaults: {expect: {matches: '(.*)*'}}\n",
        project="    expect: {matches: '(a+)+x'}\n"))
    assert [p.split(": matches ")[0] for p in found] == ["a.yaml:2:30", "a.yaml:5:23",
                                                          "a.yaml:10:31"]
    assert all("it can take exponential time; write it so that each part of a text can be "
               "matched in one way only" in p for p in found)


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ("{prompt: hi, reaction: love}",
         "a.yaml:7:36: projects[0].conversations[0].messages[0].reaction: expected one of "
         "liked, disliked, neutral; got \"love\""),
        ("{reaction: liked}",
         "a.yaml:7:13: projects[0].conversations[0].messages[0]: missing required key "
         "'prompt'"),
        ("{prompt: hi, expect: {}, extra: 1}",
         "a.yaml:7:38: projects[0].conversations[0].messages[0].extra: unknown key 'extra'; "
         "allowed: expect, prompt, reaction"),
        ('{prompt: " "}',
         "a.yaml:7:22: projects[0].conversations[0].messages[0].prompt: a message must not be "
         "empty or blank (got \" \")"),
        ("42",
         "a.yaml:7:13: projects[0].conversations[0].messages[0]: expected a string or a "
         "mapping, got integer 42"),
    ],
    ids=["reaction-unknown", "no-prompt", "unknown-key", "blank-prompt", "a-number"],
)
def test_a_wrong_message_is_refused_where_it_is_written(
        tmp_path: Path, message: str, problem: str) -> None:
    text = ("version: 1\nprojects:\n  - id: 1\n    conversations:\n      - name: Demo\n"
            f"        messages:\n          - {message}\n")
    assert problems(tmp_path, text) == [problem]


def test_send_options_are_loaded_and_checked_as_the_api_takes_them(tmp_path: Path) -> None:
    text = """\
version: 1
projects:
  - id: 1
    conversations:
      - name: Demo
        custom_context: The caller is a premium customer.
        agent_capability: fastest-responses
        chatbot_model: gpt-4-1-mini
"""
    (conv,) = load(tmp_path, text)
    assert conv.send_values() == {"custom_context": "The caller is a premium customer.",
                                  "agent_capability": "fastest-responses",
                                  "chatbot_model": "gpt-4-1-mini"}
    wrong = (text.replace("fastest-responses", "fast").replace("gpt-4-1-mini", "gpt-5")
             .replace("The caller is a premium customer.", "x" * 501))
    assert [p.split(": ", 2)[1] for p in problems(tmp_path, wrong)] == [
        "projects[0].conversations[0].custom_context",
        "projects[0].conversations[0].agent_capability",
        "projects[0].conversations[0].chatbot_model"]


def test_a_prompt_in_the_mapping_form_not_in_normal_form_is_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(one_message("{}").replace("Who is on call?", '" Who is on call?"'),
                    encoding="utf-8")
    (warning,) = load_desired([str(path)], env={}).warnings
    assert str(warning).startswith(f"{path}:7:21: warning: message ' Who is on call?' has "
                                   "surrounding whitespace")
