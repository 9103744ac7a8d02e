"""`reconciler apply -f` checks the answer of each prompt it sends whose message declares
`expect:`, at once: a line per failed check, the counts in its summary and its report. A failed
check is not an apply error (exit 0); `apply --plan` carries no `expect:` and checks nothing."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from reconciler.emulator import FaultRule
from reconciler.emulator.content import document_id
from tests import ROOT
from tests.conftest import TEST_API_KEY
from tests.workspace import PROJECT, Workspace, content_workspace

FILE = f"""\
version: 1
projects:
  - id: {PROJECT}
    conversations:
      - name: QA refunds
        messages:
          - prompt: How long do refunds take?
            expect: {{contains: ["emulated answer"], max_chars: 200, no_answer: false}}
          - prompt: Who pays the shipping?
            expect: {{not_contains: ["shipping"]}}
          - plain prompt, no expectations
      - name: Plain
        messages: [hello]
"""

FAILED = ("  [check FAILED] 'QA refunds' / 'Who pays the shipping?' (project 1001): "
          "not_contains: contains 'shipping'")


def report_of(ws: Workspace, name: str) -> dict[str, object]:
    document: dict[str, object] = json.loads((ws.path / name).read_text(encoding="utf-8"))
    schema = json.loads((ROOT / "schemas" / "report.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)
    return document


def test_apply_checks_each_answer_it_gets_and_still_exits_0(ws: Workspace) -> None:
    ws.declare(FILE)
    run = ws.apply("--report", str(ws.path / "report.json"))
    assert run.code == 0, run.err  # live state matches: a failed check is no apply error
    assert run.err.count("[check FAILED]") == 1 and FAILED in run.err.splitlines()
    assert ("Answer checks of the 2 answer(s) sent: 3 passed, 1 failed (a failed check does "
            "not fail the apply; `reconciler check` exits 3 on one).") in run.out
    checks = report_of(ws, "report.json")["answer_checks"]
    assert checks["summary"] == {"passed": 3, "failed": 1, "not_checked": 0}  # type: ignore[index]
    (conversation,) = [c for c in ws.emulator.conversations(PROJECT) if c["name"] == "QA refunds"]
    stored = ws.emulator.messages(PROJECT, conversation["session_id"])
    judged = {m["key"]: m for m in checks["messages"]}  # type: ignore[index]
    second = judged[f"{PROJECT}/send/QA refunds#2"]
    assert (second["session_id"], second["message_id"]) == (conversation["session_id"],
                                                            stored[1]["id"])
    assert second["answer"] == stored[1]["openai_response"]
    assert [c["status"] for c in second["checks"]] == ["failed"]
    assert set(judged) == {f"{PROJECT}/send/QA refunds#1", f"{PROJECT}/send/QA refunds#2"}


def test_a_no_answer_check_whose_message_cannot_be_read_is_not_judged(ws: Workspace) -> None:
    """The project's settings fail: its "I don't know" message is unknown, so `no_answer` is
    not judged against the vendor's default (which could pass a custom "I don't know")."""
    ws.emulator.faults.rules.append(FaultRule(method="GET", path="/settings", status=400,
                                              times=None))
    ws.declare(FILE)
    run = ws.apply("--report", str(ws.path / "report.json"))
    assert run.code == 0, run.err
    checks = report_of(ws, "report.json")["answer_checks"]
    assert checks["summary"] == {"passed": 2, "failed": 1, "not_checked": 1}  # type: ignore[index]
    judged = {m["key"]: m for m in checks["messages"]}  # type: ignore[index]
    (no_answer,) = [c for c in judged[f"{PROJECT}/send/QA refunds#1"]["checks"]
                    if c["key"] == "no_answer"]
    assert no_answer["status"] == "not checked"
    assert no_answer["reason"].startswith("the project's 'I don't know' message could not be "
                                          "read: ")


def test_nothing_sent_nothing_checked(ws: Workspace) -> None:
    ws.declare(FILE)
    assert ws.apply().code == 0
    run = ws.apply("--report", str(ws.path / "again.json"))
    assert run.code == 0 and "No changes." in run.out
    assert "Answer checks" not in run.out and "[check" not in run.err
    dry = ws.run("apply", "-f", str(ws.file), "--dry-run")
    assert "Answer checks" not in dry.out


def test_a_report_without_expectations_has_no_checks(ws: Workspace) -> None:
    ws.declare(f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n"
               "      - name: Plain\n        messages: [hello, again]\n")
    run = ws.apply("--report", str(ws.path / "report.json"))
    assert run.code == 0, run.err
    assert "answer_checks" not in report_of(ws, "report.json")
    assert "Answer checks" not in run.out


def test_a_saved_plan_checks_nothing(ws: Workspace) -> None:
    ws.declare(FILE)
    saved = ws.path / "plan.json"
    assert ws.plan("--out", str(saved)).code == 0
    run = ws.run("apply", "--plan", str(saved), "--auto-approve",
                 "--report", str(ws.path / "report.json"))
    assert run.code == 0, run.err
    assert "[check" not in run.err and "answer_checks" not in report_of(ws, "report.json")


def test_apply_on_the_sandbox_keeps_every_check_for_its_pages(ws: Workspace) -> None:
    ws.declare(FILE)
    assert ws.apply("--sandbox").code == 0
    health = ws.path / ".reconciler" / "health.json"
    document = json.loads(health.read_text(encoding="utf-8"))
    assert document["summary"]["failed"] == 1 and document["summary"]["passed"] == 3
    health.unlink()
    assert "No changes." in ws.apply("--sandbox").out
    assert json.loads(health.read_text(encoding="utf-8"))["summary"]["failed"] == 1


def test_named_sources_of_what_was_sent_are_read_once_the_writes_are_done(
        tmp_path: Path) -> None:
    """Two sends' answers cite the refund policy: it is read once, after the writes, and
    each `cites` naming a source by text is judged on it, in the line, the summary and the
    report."""
    files = {"refunds.md": "# Refunds\n\nRefunds are possible within 30 days of purchase.\n"}
    question = "Within how many days are refunds possible?"
    with content_workspace(tmp_path, files, api_key=TEST_API_KEY) as ws:
        ws.declare(f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n"
                   + "".join(f"      - name: {name}\n        messages:\n"
                             f"          - prompt: {question}\n"
                             f"            expect: {{cites: [{cites}]}}\n"
                             for name, cites in (("QA refunds", "refunds.md"),
                                                 ("QA pricing", "pricing.md"))))
        run = ws.apply("-vv", "--report", str(ws.path / "report.json"))
        assert run.code == 0, run.err
        assert (f"[check FAILED] 'QA pricing' / '{question}' (project {PROJECT}): cites: does "
                "not cite 'pricing.md' (cites 'refunds.md')") in run.err
        assert "Answer checks of the 2 answer(s) sent: 1 passed, 1 failed" in run.out
        lines = run.err.splitlines()
        reads = [i for i, line in enumerate(lines) if "GET" in line and "/citations/" in line]
        sends = [i for i, line in enumerate(lines) if "POST" in line and "/messages" in line]
        assert len(reads) == 1 and reads[0] > max(sends), lines
        assert f"/citations/{document_id(PROJECT, 'refunds.md')} -> 200" in lines[reads[0]]
        report = json.loads((ws.path / "report.json").read_text(encoding="utf-8"))
        assert report["answer_checks"]["summary"] == {"passed": 1, "failed": 1,
                                                      "not_checked": 0}
