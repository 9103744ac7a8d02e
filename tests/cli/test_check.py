"""`reconciler check` end to end against the emulator: stored answers judged, exit codes,
--min-pass-rate, the formats (JSON against its schema, JUnit XML as CI reporters read it)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema

from reconciler.emulator import Emulator, Faults
from reconciler.emulator.content import document_id
from reconciler.emulator.faults import FaultRule
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
            expect:
              contains: ["emulated answer"]
              matches: '\\(\\d+ words\\)'
              max_chars: 200
          - prompt: Who pays the shipping?
            expect:
              not_contains: ["shipping"]
          - plain prompt, no expectations
"""

UNSENT = """\
      - name: QA later
        messages:
          - prompt: Not sent yet
            expect: {contains: [x]}
"""


def check(ws: Workspace, *extra: str) -> tuple[int, str, str]:
    run = ws.run("check", "-f", str(ws.file), *extra)
    return run.code, run.out, run.err


def test_check_judges_stored_answers_and_exits_3_on_a_failure(ws: Workspace) -> None:
    ws.declare(FILE)
    assert ws.apply().code == 0
    sends_before = sum(len(ws.emulator.sends(PROJECT, c["session_id"]))
                       for c in ws.emulator.conversations(PROJECT))
    code, out, _ = check(ws)
    assert code == 3, out
    assert "ok: 'QA refunds' / 'How long do refunds take?': contains: contains" in out
    assert ("FAILED: 'QA refunds' / 'Who pays the shipping?': not_contains: contains "
            "'shipping'") in out
    assert "3 passed, 1 failed, 0 not checked, 0 not sent yet (pass rate 75%)." in out
    # nothing was sent
    assert sum(len(ws.emulator.sends(PROJECT, c["session_id"]))
               for c in ws.emulator.conversations(PROJECT)) == sends_before
    assert check(ws, "--min-pass-rate", "0.75")[0] == 0
    assert check(ws, "--min-pass-rate", "0.8")[0] == 3


def test_every_check_passing_exits_0_and_unsent_prompts_are_counted_apart(
        ws: Workspace) -> None:
    ws.declare(FILE.replace('not_contains: ["shipping"]', 'contains: ["shipping"]'))
    assert ws.apply().code == 0
    ws.declare(FILE.replace('not_contains: ["shipping"]', 'contains: ["shipping"]') + UNSENT)
    code, out, _ = check(ws)
    assert code == 0, out
    assert "- 'QA later' / 'Not sent yet': not checked: not sent yet" in out
    assert "4 passed, 0 failed, 0 not checked, 1 not sent yet" in out


def test_min_pass_rate_is_validated(ws: Workspace) -> None:
    ws.declare(FILE)
    code, _, err = check(ws, "--min-pass-rate", "1.5")
    assert code == 1 and "from 0 to 1" in err


def test_json_follows_its_schema(ws: Workspace) -> None:
    ws.declare(FILE)
    assert ws.apply().code == 0
    ws.declare(FILE + UNSENT)
    out_file = ws.path / "health.json"
    code, _, _ = check(ws, "--format", "json", "--out", str(out_file))
    assert code == 3
    document = json.loads(out_file.read_text(encoding="utf-8"))
    schema = json.loads((ROOT / "schemas" / "health.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(document, schema)
    assert document["summary"] == {"passed": 3, "failed": 1, "not_checked": 0,
                                   "not_sent": 1, "pass_rate": 0.75}
    statuses = {c["status"] for p in document["projects"] for m in p["messages"]
                for c in m["checks"]}
    assert statuses == {"passed", "failed"}
    answers = [m["answer"] for p in document["projects"] for m in p["messages"]]
    assert None in answers  # the prompt not sent yet has no answer
    assert any(a and "emulated answer" in a.casefold() for a in answers)


def test_junit_has_a_suite_per_project_and_a_case_per_expectation(ws: Workspace) -> None:
    prompt = "Bell\x07 and\x1b[31m escape & <tags>"
    ws.declare(FILE.replace("Who pays the shipping?", json.dumps(prompt))
               .replace('not_contains: ["shipping"]', 'not_contains: ["escape"]'))
    assert ws.apply().code == 0
    code, out, _ = check(ws, "--format", "junit")
    assert code == 3
    root = ET.fromstring(out.encode("utf-8"))  # well-formed XML 1.0, or this raises
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1 and suites[0].get("tests") == "4"
    assert suites[0].get("failures") == "1"
    failed = [case for case in suites[0] if case.find("failure") is not None]
    assert len(failed) == 1
    name = failed[0].get("name") or ""
    assert "\x07" not in name and "\x1b" not in name
    assert name.startswith("QA refunds / Bell and[31m escape & <tags> / not_contains")
    assert failed[0].find("failure").get("message") == "contains 'escape'"  # type: ignore[union-attr]


def test_no_answer_compares_with_the_default_when_the_project_says_none(
        ws: Workspace) -> None:
    ws.declare(f"""\
version: 1
projects:
  - id: {PROJECT}
    conversations:
      - name: QA unknown
        messages:
          - prompt: What is the moon made of?
            expect: {{no_answer: true}}
          - prompt: And the sun?
            expect: {{no_answer: false}}
""")
    assert ws.apply().code == 0
    code, out, _ = check(ws)
    assert code == 3, out
    assert ("FAILED: 'QA unknown' / 'What is the moon made of?': no_answer: is not the "
            "agent's 'I don't know' answer \"I'm sorry, I don't know the answer\"") in out
    assert "ok: 'QA unknown' / 'And the sun?': no_answer: is an answer" in out


def test_markdown_lists_what_failed_as_inert_text(ws: Workspace) -> None:
    prompt = "Ask @team about [this](https://x.test) | <b>now</b>"
    ws.declare(FILE.replace("Who pays the shipping?", json.dumps(prompt))
               .replace('not_contains: ["shipping"]', 'not_contains: ["team"]'))
    assert ws.apply().code == 0
    code, out, _ = check(ws, "--format", "markdown")
    assert code == 3
    assert "**3 passed, 1 failed**, 0 not checked, 0 not sent yet (pass rate 75%)." in out
    failed = [line for line in out.splitlines() if line.startswith("| ❌")]
    assert len(failed) == 1
    # one table row: the prompt's pipe, link and tag are shown, not read as markdown
    assert failed[0].count("|") == 6
    assert "](" not in failed[0] and "<b>" not in failed[0] and "@team" not in failed[0]
    assert failed[0].endswith("| not&#95;contains | contains 'team' |")


def test_a_project_that_cannot_be_read_is_an_error(ws: Workspace) -> None:
    ws.declare(FILE.replace(f"id: {PROJECT}", "id: 999999"))
    code, out, _ = check(ws)
    assert code == 1
    assert "error:" in out and "999999" in out


def test_a_content_change_turns_a_passing_check_into_a_failing_one(tmp_path: Path) -> None:
    """The emulator answers from the project's documents: a QA conversation whose answer cites
    the refund policy and says 30 days passes; the policy is rewritten, the same question is
    asked in a second conversation, and its check fails for that real reason."""
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
        ws.declare(_qa_file("QA refunds"))
        assert ws.apply().code == 0
        code, out, _ = check(ws)
        assert code == 0, out
        assert "3 passed, 0 failed" in out

        policy.write_text("# Refunds\n\nRefunds are possible within 14 days of purchase.\n",
                          encoding="utf-8")
        ws.declare(_qa_file("QA refunds", "QA refunds again"))
        assert ws.apply().code == 0
        code, out, _ = check(ws)
        assert code == 3, out
        assert ("FAILED: 'QA refunds again' / 'Within how many days are refunds possible?': "
                "contains: does not contain '30 days'") in out
        assert "5 passed, 1 failed" in out


def _qa_file(*names: str) -> str:
    """Conversations `names`, each asking the refund question with its expectations."""
    entries = "".join(
        f"      - name: {name}\n"
        "        messages:\n"
        "          - prompt: Within how many days are refunds possible?\n"
        "            expect: {contains: ['30 days'], cites: true, no_answer: false}\n"
        for name in names)
    return f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n{entries}"


def test_junit_is_also_written_from_the_same_run_as_the_markdown(ws: Workspace) -> None:
    """CI shows the markdown and publishes the JUnit XML of one run (a `test` run sends
    prompts: it is not run twice for two formats)."""
    ws.declare(FILE)
    assert ws.apply().code == 0
    junit = ws.path / "reports" / "checks.xml"
    code, out, err = check(ws, "--format", "markdown", "--write", "junit", str(junit),
                           "--write", "json", str(ws.path / "checks.json"))
    assert code == 3, err
    assert out.startswith("### Answer checks")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("4", "1")
    assert f"Wrote the answer checks (junit) to {junit}." in err
    assert json.loads((ws.path / "checks.json").read_text())["summary"]["failed"] == 1


def test_write_never_replaces_an_input_nor_takes_an_unknown_format(ws: Workspace) -> None:
    ws.declare(FILE)
    before = ws.file.read_text()
    code, _, err = check(ws, "--write", "junit", str(ws.file))
    assert code == 1
    assert "--write" in err
    assert ws.file.read_text() == before
    code, _, err = check(ws, "--write", "jnuit", str(ws.path / "c.xml"))
    assert code == 1
    assert ("the format must be one of text, json, junit, markdown, html; "
            "did you mean 'junit'?") in err
    assert not (ws.path / "c.xml").exists()


def test_html_is_one_page_with_the_failing_conversation_first(ws: Workspace) -> None:
    ws.declare(FILE.replace("QA refunds", "QA <script>alert(1)</script>") + """\
      - name: QA passing
        messages:
          - prompt: Anything?
            expect: {contains: ["emulated answer"]}
""")
    assert ws.apply().code == 0
    page = ws.path / "checks.html"
    code, _, err = check(ws, "--format", "html", "--out", str(page))
    assert code == 3
    assert "4 passed, 1 failed" in err  # written, and counted
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<script" not in text
    assert text.index("QA &lt;script&gt;") < text.index('id="passing"') < text.index(
        "QA passing")
    assert "Emulated answer to" in text  # the answer, beside its checks


def test_check_on_the_sandbox_keeps_its_health_for_the_pages(ws: Workspace) -> None:
    ws.declare(FILE)
    assert ws.apply("--sandbox").code == 0
    code, _, err = check(ws, "--sandbox")
    assert code == 3
    assert "answer checks kept in .reconciler/health.json" in err
    document = json.loads((ws.path / ".reconciler" / "health.json").read_text(encoding="utf-8"))
    schema = json.loads((ROOT / "schemas" / "health.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)
    messages = document["projects"][0]["messages"]
    with Emulator(db=str(ws.path / ".reconciler" / "sandbox.db")) as sandbox:
        (conversation,) = sandbox.conversations(PROJECT)
        stored = sandbox.messages(PROJECT, conversation["session_id"])
    # each judged answer is tied to the conversation and message that hold it
    session = conversation["session_id"]
    assert [(m["session_id"], m["message_id"]) for m in messages] == [
        (session, stored[0]["id"]), (session, stored[1]["id"])]
    assert not (ws.path / ".reconciler" / "health.json").is_symlink()


def test_check_against_the_api_writes_no_sandbox_health(ws: Workspace) -> None:
    ws.declare(FILE)
    assert ws.apply().code == 0
    assert check(ws)[0] == 3
    assert not (ws.path / ".reconciler" / "health.json").exists()


def test_the_sandbox_health_is_never_written_through_a_link(ws: Workspace,
                                                            tmp_path: Path) -> None:
    ws.declare(FILE)
    assert ws.apply("--sandbox").code == 0
    target = tmp_path / "elsewhere.json"
    target.write_text("keep", encoding="utf-8")
    (ws.path / ".reconciler" / "health.json").unlink(missing_ok=True)  # apply may have written it
    (ws.path / ".reconciler" / "health.json").symlink_to(target)
    code, out, err = check(ws, "--sandbox")
    assert code == 3 and "FAILED" in out  # the checks are still judged and shown
    assert "warning: cannot write .reconciler/health.json" in err
    assert target.read_text(encoding="utf-8") == "keep"


DOCUMENTS = {"refunds.md": "# Refunds\n\nRefunds are possible within 30 days of purchase.\n",
             "pricing.md": "# Pricing\n\nPlans cost 10 euros a month, billed yearly.\n"}
REFUND_QUESTION = "Within how many days are refunds possible?"


def _named(*conversations: tuple[str, str]) -> str:
    """Conversations (name, its `cites` in flow YAML), each asking the refund question."""
    entries = "".join(f"      - name: {name}\n        messages:\n"
                      f"          - prompt: {REFUND_QUESTION}\n"
                      f"            expect: {{cites: {cites}}}\n" for name, cites in conversations)
    return f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n{entries}"


def _source_reads(err: str) -> list[str]:
    """The requests for cited sources a -vv run logged."""
    return [line for line in err.splitlines() if "/citations/" in line and "GET" in line]


def test_a_named_source_passes_a_missing_one_fails_each_source_read_once(
        tmp_path: Path) -> None:
    """Two answers cite the refund policy: one check names it by file name and by title and
    passes, one names the pricing page and fails, saying what is cited; the one source both
    cite is read once. A plan reads none, and says so."""
    with content_workspace(tmp_path, DOCUMENTS, api_key=TEST_API_KEY) as ws:
        ws.declare(_named(("QA refunds", "[refunds.md, Refunds]"),
                          ("QA refunds again", "[pricing.md]")))
        assert ws.apply().code == 0
        run = ws.run("-vv", "check", "-f", str(ws.file))
        assert run.code == 3, run.out + run.err
        source = document_id(PROJECT, "refunds.md")
        where = f"'QA refunds' / '{REFUND_QUESTION}'"
        assert f"ok: {where}: cites: cites 'refunds.md' (source {source})" in run.out
        assert f"ok: {where}: cites: cites 'Refunds' (source {source})" in run.out
        assert (f"FAILED: 'QA refunds again' / '{REFUND_QUESTION}': cites: does not cite "
                "'pricing.md' (cites 'refunds.md')") in run.out
        assert "2 passed, 1 failed, 0 not checked" in run.out
        assert len(_source_reads(run.err)) == 1, _source_reads(run.err)

        plan = ws.plan("-vv")
        assert plan.code == 0
        assert _source_reads(plan.err) == []
        assert ("Answer checks: 0 passed, 0 failed, 3 not checked (see `reconciler check`). "
                "A plan reads no cited source: the 3 `cites` naming one by text are left to "
                "`reconciler check`.") in plan.out


def test_a_hostile_source_name_cannot_break_the_reports(tmp_path: Path) -> None:
    """A cited file named with terminal escapes and a bidirectional override, titled with
    5,000 characters of them: every format is written, the name shows escaped, nothing raw
    reaches a report."""
    evil = "\x1b[31mevil\u202e.md"
    files = {**DOCUMENTS, evil: "# \x1b]0;owned\x07" + "\u202e" * 5000 + "\n\n"
             "Refunds are possible within 30 days of purchase.\n"}
    with content_workspace(tmp_path, files, api_key=TEST_API_KEY) as ws:
        ws.declare(_named(("QA refunds", "[pricing.md]")))
        assert ws.apply().code == 0
        written = {fmt: ws.path / f"checks.{fmt}" for fmt in ("json", "junit", "markdown",
                                                               "html")}
        run = ws.run("check", "-f", str(ws.file),
                     *(arg for fmt, path in written.items()
                       for arg in ("--write", fmt, str(path))))
        assert run.code == 3, run.out + run.err
        assert "cites: does not cite 'pricing.md' (cites '\\x1b[31mevil\\u202e.md'" in run.out
        texts = [run.out, run.err, *(p.read_text(encoding="utf-8") for p in written.values())]
        assert not any("\x1b" in text or "\u202e" in text or "\x07" in text for text in texts)
        document = json.loads(written["json"].read_text(encoding="utf-8"))
        schema = json.loads((ROOT / "schemas" / "health.schema.json").read_text(encoding="utf-8"))
        jsonschema.validate(document, schema)
        ET.fromstring(written["junit"].read_text(encoding="utf-8"))


def test_a_source_that_cannot_be_read_is_not_checked_and_a_rejected_key_stops(
        tmp_path: Path) -> None:
    """A read the API refuses leaves the check not checked with the reason (never a
    failure, never a crash); a key rejected while reading a source stops the run."""
    with content_workspace(tmp_path, DOCUMENTS, api_key=TEST_API_KEY) as ws:
        ws.declare(_named(("QA refunds", "[refunds.md]")))
        assert ws.apply().code == 0
        ws.emulator.faults = Faults(rules=[FaultRule(path=".*/citations/.*", status=400,
                                                     times=None)])
        run = check(ws)
        assert run[0] == 0, run
        source = document_id(PROJECT, "refunds.md")
        assert (f"not checked: 'QA refunds' / '{REFUND_QUESTION}': cites: the cited source "
                f"{source} could not be read: reading the source of citation {source} in "
                f"project {PROJECT} failed") in run[1]
        assert "0 passed, 0 failed, 1 not checked" in run[1]

        ws.emulator.faults = Faults(rules=[FaultRule(path=".*/citations/.*", status=401,
                                                     times=None)])
        code, out, err = check(ws)
        assert code == 1
        assert "error:" in err and "not checked" not in out


def test_a_sandbox_apply_without_expectations_clears_old_health_quietly(ws: Workspace) -> None:
    """Expectations removed: the pages must not keep showing the old checks, and the apply
    does not talk about answer checks it has none of."""
    ws.declare(FILE)
    assert ws.apply("--sandbox").code == 0
    health = ws.path / ".reconciler" / "health.json"
    assert json.loads(health.read_text(encoding="utf-8"))["projects"][0]["messages"]
    ws.declare(f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n"
               "      - name: QA refunds\n")
    applied = ws.apply("--sandbox")
    assert applied.code == 0
    assert "answer checks kept" not in applied.err
    assert json.loads(health.read_text(encoding="utf-8"))["projects"][0]["messages"] == []
