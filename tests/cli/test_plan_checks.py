"""`reconciler plan` beside its changes: one line of answer checks when `expect:` is declared,
judged from what planning read (no request more), and a plan's JSON (shown or saved) the same
byte for byte whether or not anything is expected."""

from __future__ import annotations

import json

from tests.workspace import PROJECT, Workspace

PLAIN = f"""\
version: 1
projects:
  - id: {PROJECT}
    conversations:
      - name: QA refunds
        messages:
          - How long do refunds take?
          - Who pays the shipping?
      - name: QA later
        messages:
          - Not sent yet
"""

EXPECTING = f"""\
version: 1
projects:
  - id: {PROJECT}
    conversations:
      - name: QA refunds
        messages:
          - prompt: How long do refunds take?
            expect: {{contains: ["emulated answer"], max_chars: 200}}
          - prompt: Who pays the shipping?
            expect: {{not_contains: ["shipping"]}}
      - name: QA later
        messages:
          - prompt: Not sent yet
            expect: {{contains: [x]}}
"""

LINE = "Answer checks: 2 passed, 1 failed, 1 not sent yet (see `reconciler check`)."


def requests(ws: Workspace) -> int:
    return sum(ws.emulator.stats()["requests"].values())


def applied_but_the_last(ws: Workspace) -> None:
    """Apply the conversations, then declare one more prompt that is not sent."""
    ws.declare(PLAIN.replace(
        "      - name: QA later\n        messages:\n          - Not sent yet\n", ""))
    assert ws.apply().code == 0


def test_the_plan_shows_the_answer_checks_beside_its_changes(ws: Workspace) -> None:
    applied_but_the_last(ws)
    ws.declare(EXPECTING)
    run = ws.plan()
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    summary = lines.index("Plan: 1 to create, 0 to rename, 1 to send, 0 to react, 0 to delete.")
    assert lines[summary + 1] == LINE
    markdown = ws.plan("--format", "markdown").out
    assert f"\n{LINE}\n" in markdown
    assert markdown.index("1 to create") < markdown.index(LINE) < markdown.index("| project")


def test_no_line_without_expectations(ws: Workspace) -> None:
    applied_but_the_last(ws)
    ws.declare(PLAIN)
    assert "Answer checks" not in ws.plan().out
    assert "Answer checks" not in ws.plan("--format", "markdown").out


def test_the_line_costs_no_request(ws: Workspace) -> None:
    applied_but_the_last(ws)
    ws.declare(PLAIN)
    before = requests(ws)
    assert ws.plan().code == 0
    plain = requests(ws) - before
    ws.declare(EXPECTING)
    before = requests(ws)
    assert LINE in ws.plan().out
    assert requests(ws) - before == plain


def test_a_no_answer_check_reads_the_settings_once_after_the_plan(ws: Workspace) -> None:
    applied_but_the_last(ws)
    ws.declare(EXPECTING)
    before = requests(ws)
    ws.plan("--out", str(ws.path / "without.json"))
    expecting = requests(ws) - before
    ws.declare(EXPECTING.replace("max_chars: 200", "max_chars: 200, no_answer: false"))
    before = requests(ws)
    run = ws.plan("--out", str(ws.path / "with.json"))
    assert requests(ws) - before == expecting + 1
    assert "Answer checks: 3 passed, 1 failed, 1 not sent yet" in run.out
    # the saved plan counts the requests planning made, not the settings read
    assert (ws.path / "with.json").read_bytes() == (ws.path / "without.json").read_bytes()


def test_the_plan_json_is_the_same_byte_for_byte(ws: Workspace) -> None:
    applied_but_the_last(ws)
    ws.declare(PLAIN)
    plain = ws.plan("--format", "json", "--out", str(ws.path / "plain.json"))
    ws.declare(EXPECTING)
    expecting = ws.plan("--format", "json", "--out", str(ws.path / "expecting.json"))
    assert expecting.out == plain.out and "Answer checks" not in expecting.out
    assert json.loads(expecting.out)["summary"]["send"] == 1
    assert (ws.path / "expecting.json").read_bytes() == (ws.path / "plain.json").read_bytes()
    text = ws.plan("--out", str(ws.path / "from-text.json"))
    assert LINE in text.out
    assert (ws.path / "from-text.json").read_bytes() == (ws.path / "plain.json").read_bytes()


def test_a_project_that_cannot_be_read_is_counted_apart(ws: Workspace) -> None:
    ws.declare(EXPECTING.replace(f"id: {PROJECT}", "id: 999999"))
    run = ws.plan()
    assert run.code == 1
    assert ("Answer checks: 0 passed, 0 failed, 1 project(s) not read "
            "(see `reconciler check`).") in run.out
