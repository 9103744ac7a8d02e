"""`reconciler test` end to end against the emulator: declared conversations asked again in
throwaway conversations, judged, and deleted; a baseline's flips; the sweep of what a stopped
run left (and not of a live run's); throwaway conversations invisible to plan, export and
check; the credit and --max-sends refusals; --repeat; hostile baseline files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from reconciler.emulator import Emulator, Faults, Variants
from reconciler.emulator.content import document_id
from reconciler.emulator.faults import FaultRule
from tests import ROOT
from tests.conftest import TEST_API_KEY
from tests.workspace import PROJECT, Workspace, content_workspace

QA = f"""\
version: 1
projects:
  - id: {PROJECT}
    conversations:
      - name: QA refunds
        messages:
          - Hello there, some context first
          - prompt: How long do refunds take?
            expect:
              contains: ["emulated answer"]
              max_chars: 200
          - prompt: Who pays the shipping?
            expect:
              contains: ["shipping"]
          - a prompt after the last expect is never sent
      - name: No checks here
        messages: [just a prompt]
"""

STAMP = "%Y%m%dT%H%M%SZ"


def throwaway(start: datetime, deadline: datetime, rest: str = "1/1 QA refunds") -> str:
    return (f"reconciler-test {start.strftime(STAMP)} until {deadline.strftime(STAMP)} "
            f"0123456789ab {rest}")


def live_throwaways(emulator: Emulator, project: int = PROJECT) -> list[str]:
    return [c["name"] for c in emulator.conversations(project)
            if c["name"].casefold().startswith("reconciler-test ")]


def test_the_declared_messages_are_asked_in_a_throwaway_that_is_deleted(ws: Workspace) -> None:
    ws.declare(QA)
    run = ws.run("test", "-f", str(ws.file), "-v")
    assert run.code == 0, run.out + run.err
    assert "ok: 'QA refunds' / 'How long do refunds take?': contains: contains" in run.out
    assert "3 passed, 0 failed" in run.out
    assert "sending 3 prompt(s) in 1 throwaway conversation(s)" in run.err
    assert "Throwaway conversations: 1 made, 1 deleted." in run.err
    assert ws.emulator.conversations(PROJECT) == []  # nothing declared was created either


def test_what_is_sent_is_the_context_up_to_the_last_expected_message(ws: Workspace) -> None:
    """Seen from the server, with deletes refused: one throwaway conversation holding the
    prompts up to the last expected one, in order; the run says it could not delete it."""
    ws.declare(QA)
    ws.emulator.faults = Faults(rules=[FaultRule(path=".*/conversations/.*", method="DELETE",
                                                 status=400, times=None)])
    run = ws.run("test", "-f", str(ws.file))
    assert run.code == 1, run.err
    assert "3 passed, 0 failed" in run.out
    assert "Not deleted: project 1001," in run.err
    [left] = ws.emulator.conversations(PROJECT)
    assert left["name"].startswith("reconciler-test ")
    assert left["name"].endswith(" 1/1 QA refunds")
    assert [m["user_query"] for m in ws.emulator.messages(PROJECT, left["session_id"])] == [
        "Hello there, some context first", "How long do refunds take?",
        "Who pays the shipping?"]


def test_a_prompt_without_an_answer_is_not_judged_and_an_error(ws: Workspace) -> None:
    ws.declare(QA)
    ws.emulator.faults = Faults(rules=[FaultRule(path=".*/messages$", method="POST",
                                                 status=400, times=None)])
    run = ws.run("test", "-f", str(ws.file))
    assert run.code == 1
    assert ("not checked: 'QA refunds' / 'How long do refunds take?': contains: not judged: "
            "prompt 1 got no answer") in run.out
    assert live_throwaways(ws.emulator) == []


def test_a_content_change_flips_a_check_against_the_baseline(tmp_path: Path) -> None:
    content = tmp_path / "content"
    (content / str(PROJECT)).mkdir(parents=True)
    policy = content / str(PROJECT) / "refunds.md"
    policy.write_text("# Refunds\n\nRefunds are possible within 30 days of purchase.\n",
                      encoding="utf-8")
    with Emulator(api_key=TEST_API_KEY, enable_admin=True, content=content) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT, "demo")
        env = {"CUSTOMGPT_API_KEY": emulator.api_key, "CUSTOMGPT_BASE_URL": emulator.base_url}
        ws = Workspace(tmp_path / "work", env, emulator)
        ws.path.mkdir()
        ws.declare(f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n"
                   "      - name: QA refunds\n        messages:\n"
                   "          - prompt: Within how many days are refunds possible?\n"
                   "            expect: {contains: ['30 days'], cites: true}\n")
        first = ws.path / "first.json"
        run = ws.run("test", "-f", str(ws.file), "--format", "json", "--out", str(first))
        assert run.code == 0, run.err

        policy.write_text("# Refunds\n\nRefunds are possible within 14 days of purchase.\n",
                          encoding="utf-8")
        run = ws.run("test", "-f", str(ws.file), "--baseline", str(first))
        assert run.code == 3, run.out
        assert "Flipped since the baseline (1):" in run.out
        assert (f"  pass→fail: project {PROJECT}: 'QA refunds' / 'Within how many days are "
                "refunds possible?': contains '30 days'") in run.out
        page, junit = ws.path / "tests.html", ws.path / "tests.xml"
        markdown = ws.run("test", "-f", str(ws.file), "--baseline", str(first),
                          "--format", "markdown", "--write", "html", str(page),
                          "--write", "junit", str(junit))
        assert markdown.code == 3
        assert "**Flipped since the baseline: 1**" in markdown.out
        assert "| ❌ pass→fail | 1001 | QA refunds |" in markdown.out
        # the same run, written as a page whose first section is what flipped, and as JUnit
        html = page.read_text(encoding="utf-8")
        assert html.index('id="flips"') < html.index("Refunds are possible within 14 days")
        report = junit.read_text(encoding="utf-8")
        assert 'failures="1"' in report and '<testsuites name="reconciler test">' in report
        after = ws.path / "after.json"
        assert ws.run("test", "-f", str(ws.file), "--baseline", str(first), "--format",
                      "json", "--out", str(after)).code == 3
        document = json.loads(after.read_text(encoding="utf-8"))
        schema = json.loads((ROOT / "schemas" / "health.schema.json").read_text("utf-8"))
        jsonschema.validate(document, schema)
        assert document["flips"] == [{
            "project_id": PROJECT, "conversation": "QA refunds",
            "prompt": "Within how many days are refunds possible?", "key": "contains",
            "expected": "'30 days'", "was": "passed", "now": "failed"}]
        # a check report is a baseline too, and the same run compared with itself: no flip
        again = ws.run("test", "-f", str(ws.file), "--baseline", str(after), "--format",
                       "json")
        assert json.loads(again.out)["flips"] == []
        assert live_throwaways(emulator) == []


def test_plan_export_and_check_never_see_a_throwaway(ws: Workspace) -> None:
    now = datetime.now(UTC)
    ws.seed(throwaway(now, now + timedelta(hours=1)))
    ws.seed(throwaway(now - timedelta(days=2), now - timedelta(days=2)))
    ws.seed("Reconciler-Test made by hand")
    ws.declare_pruned('[{name: "QA", messages: [{prompt: "Hi?", expect: {contains: [x]}}]}]')
    plan = ws.plan("-v")
    assert plan.code == 0, plan.err
    assert "reconciler-test" not in (plan.out + plan.err).casefold()
    assert "0 live in scope" in plan.out and "0 to delete" in plan.out
    assert ws.apply().code == 0
    assert len(live_throwaways(ws.emulator)) == 3  # apply deleted none of them
    exported = ws.run("export", "--project", str(PROJECT), "--scope", "all")
    assert exported.code == 0
    assert "reconciler-test" not in exported.out.casefold() and "QA" in exported.out
    check = ws.run("check", "-f", str(ws.file))
    assert "reconciler-test" not in check.out.casefold()


def test_names_reserved_for_throwaways_cannot_be_declared(ws: Workspace) -> None:
    ws.declare(f"""\
version: 1
projects:
  - id: {PROJECT}
    conversations:
      - name: "  Reconciler-TEST mine"
      - name: fine
        renamed_from: ["reconciler-test old"]
""")
    run = ws.run("validate", "-f", str(ws.file))
    assert run.code == 1
    assert f"{ws.file}:5:15: 'Reconciler-TEST mine' starts with 'reconciler-test'" in run.err
    assert f"{ws.file}:7:24: renamed_from 'reconciler-test old' starts with" in run.err


def test_the_sweep_deletes_only_expired_throwaways_of_the_keys_user(ws: Workspace) -> None:
    now = datetime.now(UTC)
    expired = ws.seed(throwaway(now - timedelta(hours=3), now - timedelta(hours=2)))
    ws.emulator.age_conversation(PROJECT, expired, 1)  # created a day ago on the server
    live_run = throwaway(now - timedelta(minutes=5), now + timedelta(minutes=30))
    ws.seed(live_run)
    just_past = throwaway(now - timedelta(minutes=40), now - timedelta(minutes=10))
    ws.seed(just_past)  # past its deadline, within the margin: a slow clock's live run
    teammates = throwaway(now - timedelta(hours=3), now - timedelta(hours=2), "1/1 theirs")
    ws.emulator.age_conversation(PROJECT, ws.seed(teammates, creator="teammate"), 1)
    by_hand = "reconciler-test notes from a person"
    ws.seed(by_hand)
    ws.declare(QA)
    run = ws.run("test", "-f", str(ws.file), "-v")
    assert run.code == 0, run.err
    assert "1 of earlier runs swept" in run.err
    remaining = {c["session_id"] for c in ws.emulator.conversations(PROJECT)}
    assert expired not in remaining
    assert sorted(live_throwaways(ws.emulator)) == sorted(
        [live_run, just_past, teammates, by_hand])


def test_a_recent_server_creation_protects_a_throwaway_whose_machine_clock_lagged(
        ws: Workspace) -> None:
    """A run on a machine two hours behind writes a deadline two hours early; the server
    created its conversation just now, so it is not swept."""
    lagging = datetime.now(UTC) - timedelta(hours=2)
    name = throwaway(lagging, lagging + timedelta(minutes=30))
    ws.seed(name)
    ws.declare(QA)
    assert ws.run("test", "-f", str(ws.file)).code == 0
    assert live_throwaways(ws.emulator) == [name]
    # the same conversation, created three hours ago on the server's clock, is swept
    session = ws.emulator.conversations(PROJECT)[0]["session_id"]
    ws.emulator.age_conversation(PROJECT, session, 1)
    assert ws.run("test", "-f", str(ws.file)).code == 0
    assert live_throwaways(ws.emulator) == []


def test_a_sigterm_run_deletes_its_throwaways_and_none_outlives_the_next_run(
        tmp_path: Path) -> None:
    with Emulator(api_key=TEST_API_KEY, enable_admin=True,
                  variants=Variants(send_delay_ms=300)) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT, "demo")
        desired = tmp_path / "c.yaml"
        desired.write_text(f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n"
                           + "".join(f"      - name: QA {i}\n        messages:\n"
                                     "          - {prompt: Hi?, expect: {contains: [x]}}\n"
                                     for i in range(40)), encoding="utf-8")
        env = {**os.environ, "CUSTOMGPT_API_KEY": TEST_API_KEY,
               "CUSTOMGPT_BASE_URL": emulator.base_url}
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "test", "-f", str(desired),
             "--parallelism", "4"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while len(live_throwaways(emulator)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert live_throwaways(emulator)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 143, err
        assert "Traceback" not in err
        assert "interrupted:" in err and "nothing was judged" in err
        assert live_throwaways(emulator) == []
        # the next run leaves none either
        assert subprocess.run(
            [sys.executable, "-m", "reconciler", "test", "-f", str(desired), "--project",
             str(PROJECT), "--max-sends", "100"], env=env, cwd=tmp_path,
            capture_output=True, timeout=120).returncode == 3
        assert live_throwaways(emulator) == []


def test_sends_beyond_max_sends_or_the_credits_left_are_refused(ws: Workspace) -> None:
    ws.declare(QA)
    run = ws.run("test", "-f", str(ws.file), "--max-sends", "2")
    assert run.code == 1
    assert ("the test sends 3 prompts, more than --max-sends 2 (each costs a query credit); "
            "nothing was sent") in run.err
    assert ws.run("test", "-f", str(ws.file), "--max-sends", "3").code == 0
    assert ws.run("test", "-f", str(ws.file), "--repeat", "2",
                  "--max-sends", "5").code == 1  # repeated: 6 sends
    ws.emulator.query_credits = 5
    run = ws.run("test", "-f", str(ws.file), "--repeat", "2")
    assert run.code == 1
    assert "the test sends 6 prompts but the account has 5 query credit(s) left" in run.err
    assert ws.emulator.query_credits == 5
    assert live_throwaways(ws.emulator) == []
    assert ws.run("test", "-f", str(ws.file)).code == 0
    assert ws.emulator.query_credits == 2


def test_repeat_asks_each_conversation_n_times_and_counts_the_passes(ws: Workspace) -> None:
    ws.declare(QA)
    run = ws.run("test", "-f", str(ws.file), "--repeat", "3")
    assert run.code == 0, run.err
    assert "ok: 'QA refunds' / 'How long do refunds take?': contains: passed 3 of 3" in run.out
    assert "3 passed, 0 failed" in run.out  # one result per check, its runs combined
    assert "Throwaway conversations: 3 made, 3 deleted." in run.err
    # a run whose prompt got no answer counts as not passed, and is an error
    ws.emulator.faults = Faults(rules=[FaultRule(path=".*/messages$", method="POST",
                                                 status=400, times=1)])
    run = ws.run("test", "-f", str(ws.file), "--repeat", "3", "--min-pass-rate", "0.6",
                 "--parallelism", "1")
    assert "contains: passed 2 of 3; last: not judged: prompt 1 got no answer" in run.out
    assert "2 passed, 1 failed" not in run.out and "3 passed, 0 failed" in run.out
    assert run.code == 1  # not every answer was judged
    assert live_throwaways(ws.emulator) == []
    ws.emulator.faults = Faults()
    assert ws.run("test", "-f", str(ws.file), "--repeat", "101").code == 1


@pytest.mark.parametrize(("content", "reason"), [
    (b"{not json", "not a baseline report file"),
    (b'{"version": 2, "summary": {}, "projects": []}', "not a report of reconciler check or"),
    (b"[]", "not a report of reconciler check or test"),
    (json.dumps({"version": 1, "summary": {"passed": 0, "failed": 0, "not_checked": 0,
                 "not_sent": 0, "pass_rate": 1}, "projects": [{
                     "project_id": 1, "label": "x", "error": None, "messages": [{
                         "conversation": "c", "prompt": "p", "sent": True, "answer": None,
                         "checks": [{"key": "rm -rf", "expected": "", "status": "passed",
                                     "reason": ""}]}]}]}).encode(),
     "not a report of reconciler check or test"),
])
def test_a_hostile_baseline_is_a_located_error_and_nothing_is_sent(
        ws: Workspace, content: bytes, reason: str) -> None:
    ws.declare(QA)
    baseline = ws.path / "baseline.json"
    baseline.write_bytes(content)
    run = ws.run("test", "-f", str(ws.file), "--baseline", str(baseline))
    assert run.code == 1
    assert f"error: {baseline}: {reason}" in run.err
    assert sum(ws.emulator.stats()["requests"].values()) == 0


def test_a_huge_or_special_baseline_is_refused_without_reading_it(ws: Workspace) -> None:
    ws.declare(QA)
    huge = ws.path / "huge.json"
    with huge.open("wb") as file:
        file.truncate(65 * 1024 * 1024)  # sparse: over the limit, never read
    run = ws.run("test", "-f", str(ws.file), "--baseline", str(huge))
    assert run.code == 1 and "over the 64 MiB limit" in run.err
    fifo = ws.path / "fifo.json"
    os.mkfifo(fifo)
    run = ws.run("test", "-f", str(ws.file), "--baseline", str(fifo))
    assert run.code == 1 and "not a regular file" in run.err
    run = ws.run("test", "-f", str(ws.file), "--baseline", str(ws.path))
    assert run.code == 1 and "not a regular file" in run.err
    # the baseline is an input: --out may not replace it
    run = ws.run("test", "-f", str(ws.file), "--baseline", str(huge), "--out", str(huge))
    assert run.code == 1
    assert huge.stat().st_size == 65 * 1024 * 1024


def test_a_rejected_key_mid_run_stops_it_and_leaves_no_throwaway(ws: Workspace) -> None:
    ws.declare(f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n" + "".join(
        f"      - name: QA {i}\n        messages:\n"
        "          - {prompt: Hi?, expect: {contains: [x]}}\n" for i in range(12)))
    ws.emulator.variants = Variants(send_delay_ms=300)
    ws.emulator.faults = Faults(rules=[FaultRule(path=".*/messages$", method="POST",
                                                 status=401, times=1)])
    run = ws.run("test", "-f", str(ws.file), "--parallelism", "3")
    assert run.code == 1
    assert "error:" in run.err
    assert live_throwaways(ws.emulator) == []


def test_named_sources_are_judged_reading_each_cited_source_once_per_run(
        tmp_path: Path) -> None:
    """Asked again three times in two conversations, the refund policy is cited six times
    and read once: the check naming it passes, the one naming the pricing page fails."""
    files = {"refunds.md": "# Refunds\n\nRefunds are possible within 30 days of purchase.\n",
             "pricing.md": "# Pricing\n\nPlans cost 10 euros a month, billed yearly.\n"}
    question = "Within how many days are refunds possible?"
    with content_workspace(tmp_path, files, api_key=TEST_API_KEY) as ws:
        ws.declare(f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n"
                   + "".join(f"      - name: {name}\n        messages:\n"
                             f"          - prompt: {question}\n"
                             f"            expect: {{cites: [{cites}]}}\n"
                             for name, cites in (("QA refunds", "refunds.md"),
                                                 ("QA pricing", "pricing.md"))))
        run = ws.run("-vv", "test", "-f", str(ws.file), "--repeat", "3")
        assert run.code == 3, run.out + run.err
        assert f"ok: 'QA refunds' / '{question}': cites: passed 3 of 3\n" in run.out
        assert (f"FAILED: 'QA pricing' / '{question}': cites: passed 0 of 3; last: does not "
                "cite 'pricing.md' (cites 'refunds.md')") in run.out
        reads = [line for line in run.err.splitlines() if "GET" in line and "/citations/" in line]
        assert len(reads) == 1, reads
        assert f"/citations/{document_id(PROJECT, 'refunds.md')} -> 200" in reads[0]
