"""Renderers: text, json, markdown."""

from __future__ import annotations

import functools
import html
import json
import re
import unicodedata
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.plan.model import (
    NOT_DECLARED,
    NOT_OWNED,
    LiveRead,
    Plan,
    ProjectPlan,
    Unmanaged,
)
from reconciler.plan.operations import Create, Delete
from reconciler.render.formats import (
    MESSAGE_LIMIT,
    markdown_safe,
    render_json,
    render_markdown,
    render_text,
)
from tests.plan.test_model import sample_plan

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token


def test_text_uses_terraform_symbols_and_a_summary() -> None:
    text = render_text(sample_plan())
    lines = [line.strip() for line in text.splitlines()]
    assert "~ rename 'Old' -> 'New'  (s-1)" in lines
    assert "+ create 'Fresh'" in lines
    assert any(line.startswith("> send   'Fresh' message 1: 'hello'") for line in lines)
    assert "- delete 'Stray'  (s-2, 3 messages)" in lines
    assert "* react  'Fresh' message 1: liked once sent  (new)" in lines
    assert "Plan: 1 to create, 1 to rename, 1 to send, 1 to react, 1 to delete." in lines
    assert "Note: 'Demo': persona applies only to prompts sent from now on" in lines
    assert "\x1b[" not in text


def test_text_colours_only_when_asked() -> None:
    assert "\x1b[32m+ create" in render_text(sample_plan(), color=True)


def test_unmanaged_are_one_count_line_unless_verbose() -> None:
    quiet = render_text(sample_plan())
    assert "1 conversation(s) in scope left alone (-v lists them)" in quiet
    assert "'Kept'" not in quiet
    verbose = render_text(sample_plan(), verbose=True)
    assert "= 'Kept'  (s-3): protected" in verbose
    assert "because not declared and prune is on" in verbose


def _pruning_among_others() -> Plan:
    """A project pruning under a shared key: 3 of the 4 conversations it leaves alone are
    not its own."""
    project = ProjectPlan(project_id=7, label="demo", scope="mine", live_in_scope=6,
                          managed_in_scope=6, not_owned=3, unmanaged=(
                              *(Unmanaged(f"s-{n}", f"Chat {n}", NOT_OWNED) for n in range(3)),
                              Unmanaged("s-9", "Legal", "protected")))
    return Plan(projects=(project,))


def test_conversations_not_owned_are_counted_in_text() -> None:
    quiet = render_text(_pruning_among_others())
    assert ("  4 conversation(s) in scope left alone (-v lists them)\n"
            "  3 of them not owned by this repository: prune deletes only what is declared or "
            "matches owns\n") in quiet
    verbose = render_text(_pruning_among_others(), verbose=True)
    assert ("= 'Chat 0'  (s-0): not owned by this repository: not declared, and no owns "
            "pattern matches it") in verbose
    assert "not owned" not in render_text(sample_plan(), verbose=True)


def test_conversations_not_owned_are_counted_in_markdown() -> None:
    md = render_markdown(_pruning_among_others())
    assert ("- 3 conversation(s) in scope not owned by this repository are left alone: prune "
            "deletes only what is declared or matches owns\n") in md
    assert "not owned" not in render_markdown(sample_plan())


def test_no_changes_says_so() -> None:
    plan = Plan(projects=(ProjectPlan(project_id=1, label=None, scope="mine"),))
    assert "No changes." in render_text(plan)


def test_errors_say_nothing_can_be_applied() -> None:
    plan = Plan(projects=(ProjectPlan(project_id=1, label=None, scope="mine",
                                      errors=("boom",)),))
    text = render_text(plan)
    assert "Error: boom" in text
    assert "nothing can be applied" in text


def test_json_is_the_plan_dict() -> None:
    plan = sample_plan()
    assert json.loads(render_json(plan)) == plan.to_dict()


def test_markdown_has_summary_table_and_collapsible_projects() -> None:
    md = render_markdown(sample_plan())
    assert "| project | create | rename | send | react | delete | unmanaged |" in md
    assert "| demo (7) | 1 | 1 | 1 | 1 | 1 | 1 |" in md
    assert "<details>" in md and "<summary><b>demo (7)</b>: 5 change(s)" in md
    assert ("- :information_source: 'Demo':\u200b persona applies only to prompts sent from "
            "now on") in md
    assert "```diff" in md


def test_markdown_truncates_past_the_limit_but_keeps_the_summary() -> None:
    projects = tuple(
        ProjectPlan(project_id=i, label=None, scope="mine", operations=tuple(
            Create(project_id=i, name=f"conversation {j}", reason="declared")
            for j in range(200)))
        for i in range(1, 30)
    )
    md = render_markdown(Plan(projects=projects), full_plan_hint="See the plan artifact.")
    assert len(md) <= 60_000
    assert "| **total** | 5800 |" in md
    assert "**Truncated:**" in md and "See the plan artifact." in md


def test_text_escapes_control_characters_and_paints_only_its_own_colours() -> None:
    hostile = "\x1b]0;title\x07\x1b[2J\r\x9b31m"
    plan = Plan(projects=(ProjectPlan(project_id=1, label=hostile, scope="mine",
                                      warnings=(hostile,), errors=(hostile,)),),
                errors=(hostile,))
    for color in (False, True):
        text = render_text(plan, color=color, verbose=True)
        escapes = re.findall("\x1b[^m]*m", text)
        assert text.count("\x1b") == len(escapes)
        assert all(re.fullmatch(r"\x1b\[[0-9;]*m", e) for e in escapes)
        assert not any(c in text for c in "\x07\r\x9b")
        assert ("\x1b" in text) is color
        assert "\\u001b]0;title\\u0007\\u001b[2J\\u000d\\u009b31m" in text


# Markdown: values from the user's files, a saved plan or the API stay text -------------------

# What GitHub turns into a mention, a reference, an emoji or a link in plain text (GFM's
# extended autolinks: a scheme, `www.`, an e-mail address).
_LIVE_TEXT = re.compile(r"@[A-Za-z0-9]|#[0-9]|:[a-z0-9_+-]+:|www\.|[A-Za-z][\w+.-]*:/"
                        r"|[\w.+-]+@[\w-]+\.", re.IGNORECASE)
_HOSTILE_PIECES = ["\n", "\r", "\r\n", "\u2028", "\x1b", "\u202e", "\u200b", "|", "\\|", "[", "]",
                   "(", ")", "!", "<", ">", "&", "&amp;", "@", "#", ":", "`", "```", "*", "_",
                   "~", "$", "\\", " ", "www.", "https://", "@octocat", "#12", ":tada:",
                   "<img src=x>", "</summary>", "</b>", "[a](https://evil)", "![i](x)",
                   "\n\n## Owned\n", "\n| a | b |\n", "a@b.co", "    ", "-", "=", "1."]
hostile_text = st.lists(st.one_of(st.sampled_from(_HOSTILE_PIECES), st.characters(codec="utf-8")),
                        max_size=25).map("".join)


def _visible(text: str, limit: int) -> str:
    """What a reader must see of a value: its first `limit` characters (then an ellipsis),
    each line break a space, each control or format character as a \\u escape."""
    if len(text) > limit:
        text = text[:limit] + "…"
    text = re.sub("\r\n|[\n\r\t\v\f\x1c-\x1e\x85\u2028\u2029]", " ", text)
    return "".join(c if unicodedata.category(c) not in ("Cc", "Cf", "Cn", "Co", "Cs")
                   else f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}"
                   for c in text)


@functools.cache
def _parser() -> MarkdownIt:
    markdown_it = pytest.importorskip("markdown_it")
    parser: MarkdownIt = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"])
    return parser


def _parsed(markdown: str) -> list[Token]:
    """The blocks of `markdown` as CommonMark with GFM tables reads them, inline tokens
    included (the parser's linkify is off: autolinks are checked on the text itself)."""
    tokens: list[Token] = _parser().parse(markdown)
    return tokens


def _inline(token: Token, *, read: bool = True) -> str:
    """The text an inline token shows (its entities decoded); `read`: as a reader sees it,
    without zero-width spaces."""
    text = "".join(child.content for child in token.children or [])
    return text.replace("\u200b", "") if read else text


@settings(max_examples=150, deadline=None, derandomize=True)
@given(label=hostile_text, warning=hostile_text, error=hostile_text)
def test_markdown_shows_hostile_values_as_text_and_nothing_else(
        label: str, warning: str, error: str) -> None:
    """A label, a warning or an error (from the files, a saved plan, the API) never starts a
    line, a heading, a list item or a table row, never closes a table cell or the <summary>,
    and never makes a link, an image, an HTML tag, a mention or an emoji. (A scope is one of
    three words: a plan holding another is refused, see `test_a_plan_holds_a_scope_it_names`.)"""
    plan = Plan(projects=(ProjectPlan(
        project_id=1, label=label or None, scope="all", warnings=(warning,), errors=(error,),
        operations=(Create(project_id=1, name=label, reason="declared"),)),))
    tokens = _parsed(render_markdown(plan))
    types = [t.type for t in tokens]
    assert types.count("heading_open") == 1
    assert types.count("list_item_open") == 3  # the plan's error, the project's warning, error
    assert types.count("tr_open") == 3  # head, the project, the total
    assert types.count("fence") == 1
    for token in tokens:
        if token.type != "inline" or token.content.startswith("<sub>checksum"):
            continue
        children = {child.type for child in token.children or []}
        assert not children & {"link_open", "image", "html_inline", "code_inline"}, token
        text = re.sub("^:(x|warning):", "", _inline(token, read=False))  # our emoji
        assert not _LIVE_TEXT.search(text), text
    rows = [i for i, t in enumerate(tokens) if t.type == "tr_open"]
    cells = [[_inline(tokens[j + 1]) for j in range(start, len(tokens))
              if tokens[j].type in ("th_open", "td_open")][:6] for start in rows]
    assert all(len(row) == 6 for row in cells)
    shown = _visible(label, 200) + " (1)" if label else "1"
    assert cells[1][0].strip() == shown.strip()
    assert all(cell.isdigit() for cell in cells[1][1:])
    items = [_inline(tokens[i + 2]) for i, t in enumerate(tokens) if t.type == "list_item_open"]
    assert items[1].strip() == f":warning: {_visible(warning, 1000)}".strip()
    assert items[2].strip() == f":x: {_visible(error, 1000)}".strip()
    html_blocks = [t.content for t in tokens if t.type == "html_block"]
    assert len(html_blocks) == 2 and html_blocks[1] == "</details>\n"
    summary = re.fullmatch(r"<details>\n<summary><b>([^<>\n]*)</b>: 1 change\(s\), "
                           r"scope ([^<>\n]*), 0 live in scope</summary>\n", html_blocks[0])
    assert summary, html_blocks[0]
    assert html.unescape(summary[1]).replace("\u200b", "") == shown
    assert html.unescape(summary[2]).replace("\u200b", "") == "all"
    assert not any(_LIVE_TEXT.search(html.unescape(part)) for part in summary.groups())


def test_markdown_operations_stay_in_their_fence() -> None:
    """A session id or a name of a saved plan with line breaks and backticks cannot close
    the code block its operations are listed in."""
    forged = "s-1\n```\n# Owned @octocat\n````` [x](https://evil)"
    plan = Plan(projects=(ProjectPlan(project_id=1, label=None, scope="mine", operations=(
        Delete(project_id=1, name="a\n```b", reason="r", session_id=forged, message_count=1),
        Create(project_id=1, name="c", reason="declared"))),))
    tokens = _parsed(render_markdown(plan))
    fences = [t for t in tokens if t.type == "fence"]
    assert len(fences) == 1 and fences[0].info == "diff"
    assert fences[0].content.splitlines() == [
        "- delete 'a\\n```b'  (s-1 ``` # Owned @octocat ````` [x](https://evil), 1 messages)",
        "+ create 'c'"]
    assert [t.type for t in tokens].count("heading_open") == 1


def test_markdown_cuts_long_values_but_always_shows_the_project_id() -> None:
    labelled = Plan(projects=(ProjectPlan(project_id=1, label="L" * 5000, scope="mine"),))
    md = render_markdown(labelled)
    assert f"| {'L' * 200}… (1) | 0 |" in md and f"<b>{'L' * 200}… (1)</b>" in md
    assert "L" * 201 not in md
    failed = Plan(projects=(ProjectPlan(project_id=1, label=None, scope="mine",
                                        warnings=("W" * 50_000,), errors=("E" * 50_000,)),))
    md = render_markdown(failed)
    assert len(md) < 5000
    assert "- :x: project 1:\u200b " + "E" * 989 + "…\n" in md
    assert "- :warning: " + "W" * 1000 + "…\n" in md


def _left_alone(*names: str) -> ProjectPlan:
    return ProjectPlan(project_id=1, label=None, scope="mine", live_in_scope=len(names),
                       unmanaged=tuple(Unmanaged(f"s-{i}", name, NOT_DECLARED)
                                       for i, name in enumerate(names)))


@pytest.mark.parametrize(
    ("projects", "line"),
    [
        ((_left_alone("Billing"),),
         "No changes. 1 conversation is not declared and is left alone (prune is off): "
         "'Billing'"),
        ((_left_alone("A", "B"), _left_alone("C\u200b", "D", "E")),
         "No changes. 5 conversations are not declared and are left alone (prune is off): "
         "'A', 'B', 'C\\u200b' and 2 more"),
        ((replace(_left_alone(), live_read=LiveRead.BY_NAME),),
         "No changes. Live conversations match the declared state; those not declared were "
         "not read (prune is off: the declared names were looked up)."),
        ((ProjectPlan(project_id=1, label=None, scope="mine",
                      unmanaged=(Unmanaged("s-1", "tmp-1", "ignored"),
                                 Unmanaged("s-2", "Legal", "protected"))),),
         "No changes. Live conversations match the declared state."),
    ],
    ids=["one", "several", "looked-up-by-name", "only-ignored-or-protected"],
)
def test_no_changes_says_what_is_left_alone_and_why(
    projects: tuple[ProjectPlan, ...], line: str
) -> None:
    plan = Plan(projects=projects)
    assert render_text(plan).splitlines()[-1] == line
    assert f"\n{markdown_safe(line, limit=MESSAGE_LIMIT)}\n" in render_markdown(plan)
