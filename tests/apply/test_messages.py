"""Seeded messages end to end: sends in order, never twice, within the credits."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from reconciler.emulator import FaultRule
from tests.workspace import PROJECT, Run, Workspace

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
    assert "Plan: 2 to create, 0 to rename, 5 to send, 0 to react, 0 to delete." in plan.out
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


def _backup_of_a_deleted_conversation(ws: Workspace, *prompts: str) -> str:
    """The backup file apply wrote when it deleted a conversation 'Gone' holding `prompts`."""
    session = ws.seed("Gone")
    for prompt in prompts:
        ws.emulator.add_message(PROJECT, session, prompt)
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}, prune: true, owns: ['*'], "
               "conversations: []}]\n")
    assert ws.apply("--allow-mass-delete").code == 0
    (backup,) = (ws.path / "backups").rglob(f"{session}.json")
    return str(backup)


def _sending(ws: Workspace, path: str) -> Callable[..., Run]:
    """The command of `path` that sends DEMO's five prompts (restore: a backup's five), made
    ready while the query credits can still be read; call it with more flags."""
    if path == "restore":
        backup = _backup_of_a_deleted_conversation(ws, "one", "two", "three", "four", "five")
        return lambda *flags: ws.run("restore", backup, "--resend-prompts", *flags)
    ws.declare(DEMO)
    if path == "apply --plan":
        saved = str(ws.path / "plan.json")
        assert ws.plan("--out", saved).code == 0
        return lambda *flags: ws.run("apply", "--plan", saved, "--auto-approve", *flags)
    return {"plan": ws.plan, "apply -f": ws.apply}[path]


PATHS = ["plan", "apply -f", "apply --plan", "restore"]


@pytest.mark.parametrize("path", PATHS)
def test_credits_that_cannot_be_read_skip_the_credit_check_on_every_path(
    ws: Workspace, path: str
) -> None:
    """One policy: warn that the credit check is skipped, and go on (a 5xx ends the same way,
    after the client's retries)."""
    command = _sending(ws, path)
    ws.emulator.query_credits = 100
    ws.emulator.faults.rules.append(FaultRule(path="limits/usage", status=400, times=None))
    result = command()
    assert result.code == 0, result.out + result.err
    assert "warning: could not read the account's query credits" in result.err
    assert "the credit check is skipped" in result.err
    assert "--max-sends still bounds them" in result.err
    sent = 100 - ws.emulator.query_credits
    assert sent == (0 if path == "plan" else 5)


@pytest.mark.parametrize("path", PATHS[1:])
def test_max_sends_still_bounds_what_is_sent_when_credits_cannot_be_read(
    ws: Workspace, path: str
) -> None:
    command = _sending(ws, path)
    ws.emulator.query_credits = 100
    ws.emulator.faults.rules.append(FaultRule(path="limits/usage", status=400, times=None))
    refused = command("--max-sends", "4")
    assert refused.code == 1
    assert "5 prompt" in refused.out + refused.err and "--max-sends 4" in refused.out + refused.err
    assert ws.emulator.query_credits == 100


@pytest.mark.parametrize("path", PATHS)
def test_an_api_that_does_not_report_credits_is_no_warning(ws: Workspace, path: str) -> None:
    command = _sending(ws, path)
    ws.emulator.faults.rules.append(FaultRule(path="limits/usage", status=404, times=None))
    result = command()
    assert result.code == 0, result.out + result.err
    assert "query credits" not in result.err


REACTIONS = f"""
    version: 1
    projects:
      - id: {PROJECT}
        conversations:
          - name: Demo
            messages:
              - one
              - {{prompt: two, reaction: liked}}
              - {{prompt: one, reaction: disliked, expect: {{contains: [answer]}}}}
"""


def reactions(ws: Workspace, name: str) -> list[str | None]:
    """The reaction of each message of the conversation `name`, oldest first."""
    (conv,) = [c for c in ws.emulator.conversations(PROJECT) if c["name"] == name]
    return [(m["response_feedback"] or {}).get("reaction")
            for m in ws.emulator.messages(PROJECT, conv["session_id"])]


def test_reactions_follow_their_sends_and_a_second_plan_has_no_changes(ws: Workspace) -> None:
    ws.declare(REACTIONS)
    planned = ws.plan()
    assert "* react  'Demo' message 2: liked once sent  (new)" in planned.out
    assert "Plan: 1 to create, 0 to rename, 3 to send, 2 to react, 0 to delete." in planned.out
    assert ws.apply().code == 0
    assert prompts(ws, "Demo") == ["one", "two", "one"]
    assert reactions(ws, "Demo") == [None, "liked", "disliked"]
    again = ws.plan("--detailed-exitcode")
    assert again.code == 0 and "No changes." in again.out, again.out


def test_a_reaction_a_person_changed_is_set_back_and_an_undeclared_one_is_left(
        ws: Workspace, http: httpx.Client) -> None:
    ws.declare(REACTIONS)
    assert ws.apply().code == 0
    (conv,) = ws.emulator.conversations(PROJECT)
    first, second, _third = ws.emulator.messages(PROJECT, conv["session_id"])
    for message, reaction in ((first, "liked"), (second, "neutral")):
        http.put(f"/api/v1/projects/{PROJECT}/conversations/{conv['session_id']}/messages/"
                 f"{message['id']}/feedback", json={"reaction": reaction})
    planned = ws.plan("--format", "json")
    (react,) = json.loads(planned.out)["projects"][0]["operations"]
    assert (react["action"], react["position"], react["reaction"]) == ("react", 2, "liked")
    assert react["precondition"]["reaction"] == "neutral"
    assert ws.apply().code == 0
    assert reactions(ws, "Demo") == ["liked", "liked", "disliked"]
    assert "No changes." in ws.plan().out


def test_a_saved_plan_whose_reaction_was_changed_since_is_stale(
        ws: Workspace, http: httpx.Client) -> None:
    ws.declare(REACTIONS)
    assert ws.apply().code == 0
    (conv,) = ws.emulator.conversations(PROJECT)
    second = ws.emulator.messages(PROJECT, conv["session_id"])[1]
    feedback = (f"/api/v1/projects/{PROJECT}/conversations/{conv['session_id']}/messages/"
                f"{second['id']}/feedback")
    http.put(feedback, json={"reaction": "disliked"})
    saved = ws.path / "plan.json"
    assert ws.plan("--out", str(saved)).code == 0
    http.put(feedback, json={"reaction": "neutral"})
    refused = ws.run("apply", "--plan", str(saved), "--auto-approve", "--no-backup")
    assert refused.code == 1
    assert "reaction: 'disliked' -> 'neutral'" in refused.out + refused.err
    assert reactions(ws, "Demo")[1] == "neutral"


SEND_OPTIONS = f"""
    version: 1
    projects:
      - id: {PROJECT}
        conversations:
          - name: Demo
            messages: [one, two]
            persona: {{persona}}
            custom_context: A premium customer.
            agent_capability: fastest-responses
            chatbot_model: gpt-4-1-mini
"""


def test_send_options_reach_the_api_with_every_send(ws: Workspace) -> None:
    ws.declare(SEND_OPTIONS.replace("{persona}", "Be brief."))
    assert ws.apply().code == 0
    (conv,) = ws.emulator.conversations(PROJECT)
    assert [sent["options"] for sent in ws.emulator.sends(PROJECT, conv["session_id"])] == [
        {"custom_persona": "Be brief.", "custom_context": "A premium customer.",
         "agent_capability": "fastest-responses", "chatbot_model": "gpt-4-1-mini"}] * 2


def test_a_changed_persona_is_noted_as_applying_only_to_future_sends(ws: Workspace) -> None:
    ws.declare(SEND_OPTIONS.replace("{persona}", "Be brief."))
    assert ws.apply().code == 0
    unchanged = ws.plan()
    assert "No changes." in unchanged.out and "Note:" not in unchanged.out
    ws.declare(SEND_OPTIONS.replace("{persona}", "Be thorough.")
               .replace("gpt-4-1-mini", "gpt-4-1"))
    note = ("'Demo': persona and chatbot_model apply only to prompts sent from now on; the 2 "
            "sent already keep theirs")
    changed = ws.plan("--detailed-exitcode")
    assert changed.code == 0, "a note is no change"
    assert f"  Note: {note}" in changed.out
    assert json.loads(ws.plan("--format", "json").out)["projects"][0]["notes"] == [note]
    markdown = ws.plan("--format", "markdown").out
    assert ("- :information_source: 'Demo':\u200b persona and chatbot&#95;model apply only to "
            "prompts sent from now on; the 2 sent already keep theirs\n\nNo changes.") in markdown
