"""Seeded messages end to end: sends in order, never twice, within the credits."""

from __future__ import annotations

import json

from reconciler.emulator import FaultRule
from tests.workspace import PROJECT, Workspace

DEMO = f"""
    version: 1
    projects:
      - id: {PROJECT}
        conversations:
          - name: Demo
            messages: [one, two, three]
            persona: You are terse.
            response_source: own_content
          - name: Tour
            messages: [alpha, beta]
"""


def prompts(ws: Workspace, name: str) -> list[str]:
    """The prompts sent to the conversation `name`, oldest first."""
    (conv,) = [c for c in ws.emulator.conversations(PROJECT) if c["name"] == name]
    return [m["user_query"] for m in ws.emulator.messages(PROJECT, conv["session_id"])]


def test_prompts_are_sent_in_order_and_never_again(ws: Workspace) -> None:
    ws.declare(DEMO)
    plan = ws.plan()
    assert "Plan: 2 to create, 0 to rename, 5 to send, 0 to delete." in plan.out
    assert ws.apply().code == 0
    assert prompts(ws, "Demo") == ["one", "two", "three"]
    assert prompts(ws, "Tour") == ["alpha", "beta"]
    assert ws.apply().code == 0
    assert prompts(ws, "Demo") == ["one", "two", "three"]
    assert "No changes." in ws.plan().out


def test_a_prompt_a_person_already_typed_is_not_sent_again(ws: Workspace) -> None:
    session = ws.seed("Demo")
    ws.emulator.add_message(PROJECT, session, "two")
    ws.declare(DEMO)
    result = ws.plan("--format", "json")
    sends = [op for op in json.loads(result.out)["projects"][0]["operations"]
             if op["action"] == "send" and op["name"] == "Demo"]
    assert [(op["position"], op["prompt"]) for op in sends] == [(1, "one"), (3, "three")]


def test_max_sends_caps_the_credits_a_plan_may_spend(ws: Workspace) -> None:
    ws.declare(DEMO)
    refused = ws.apply("--max-sends", "4")
    assert refused.code == 1
    assert "sends 5 prompts, more than --max-sends 4" in refused.out
    assert ws.names() == []
    assert ws.apply("--max-sends", "5").code == 0


def test_a_plan_whose_sends_do_not_fit_in_the_credits_left_is_refused(ws: Workspace) -> None:
    ws.declare(DEMO)
    ws.emulator.query_credits = 4
    planned = ws.plan("--format", "json")
    assert planned.code == 1
    document = json.loads(planned.out)
    assert document["budget"]["credits_needed"] == 5
    assert document["budget"]["credits_left"] == 4
    assert any("sends 5 prompts but the account has 4 query credit(s) left" in error
               for error in document["errors"])
    refused = ws.apply()
    assert refused.code == 1 and "4 query credit(s) left" in refused.out
    assert ws.names() == [], "nothing applied, not even the creates"
    ws.emulator.query_credits = 5
    assert "Its sends use 5 query credit(s); 5 left." in ws.plan().out
    assert ws.apply().code == 0


def test_a_saved_plan_is_refused_when_the_credits_left_no_longer_fit(ws: Workspace) -> None:
    ws.declare(DEMO)
    saved = ws.path / "plan.json"
    assert ws.plan("--out", str(saved)).code == 0
    ws.emulator.query_credits = 3  # spent by the key's other clients since the plan
    refused = ws.run("apply", "--plan", str(saved), "--auto-approve", "--no-backup")
    assert refused.code == 1 and "3 query credit(s) left" in refused.out
    assert ws.names() == []


def test_exhausted_credits_stop_the_sends_and_the_next_run_resumes(ws: Workspace) -> None:
    ws.declare(DEMO)
    ws.emulator.query_credits = 2
    # The API does not report the credits: the plan cannot see that its sends do not fit.
    ws.emulator.faults.rules.append(FaultRule(path="limits/usage", status=404, times=None))
    report_file = ws.path / "report.json"
    first = ws.apply("--report", str(report_file))
    assert first.code == 1
    assert "query credits are exhausted" in first.err
    report = json.loads(report_file.read_text())
    sends = [op for op in report["operations"] if op["action"] == "send"]
    assert sum(op["outcome"] == "done" for op in sends) == 2
    assert sum(op["outcome"] == "failed" for op in sends) <= 2  # in flight when credits ran out
    assert all("credits" in op["detail"] for op in sends if op["outcome"] != "done")
    requests_after = ws.emulator.stats()["requests"]
    assert requests_after.get("POST", 0) < 20, "no retry storm on exhausted credits"

    ws.emulator.query_credits = None
    assert ws.apply().code == 0
    assert prompts(ws, "Demo") == ["one", "two", "three"]
    assert prompts(ws, "Tour") == ["alpha", "beta"]


def test_seeding_new_conversations_reads_no_transcript(ws: Workspace) -> None:
    ws.declare(DEMO)
    before = dict(ws.emulator.stats()["requests"])
    assert ws.apply().code == 0
    after = ws.emulator.stats()["requests"]
    posts = after.get("POST", 0) - before.get("POST", 0)
    gets = after.get("GET", 0) - before.get("GET", 0)
    assert posts == 2 + 5, "two creates and five sends, each once"
    assert gets == 5, ("the key's user, one listing page, the project's settings (creates that "
                       "send), the query credits, and one after the creates (did another run "
                       "create them too?); no transcript read per send")
