"""Renderers: text, json, markdown."""

from __future__ import annotations

import json
import re

from reconciler.plan.build import NOT_OWNED
from reconciler.plan.model import Plan, ProjectPlan, Unmanaged
from reconciler.plan.operations import Create
from reconciler.render.formats import render_json, render_markdown, render_text
from tests.plan.test_model import sample_plan


def test_text_uses_terraform_symbols_and_a_summary() -> None:
    text = render_text(sample_plan())
    lines = [line.strip() for line in text.splitlines()]
    assert "~ rename 'Old' -> 'New'  (s-1)" in lines
    assert "+ create 'Fresh'" in lines
    assert any(line.startswith("> send   'Fresh' message 1: 'hello'") for line in lines)
    assert "- delete 'Stray'  (s-2, 3 messages)" in lines
    assert "Plan: 1 to create, 1 to rename, 1 to send, 1 to delete." in lines
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
    assert "| demo (7) | 1 | 1 | 1 | 1 | 1 |" in md
    assert "<details>" in md and "<summary><b>demo (7)</b>: 4 change(s)" in md
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
