"""The pages with answer checks (`reconciler emulator --health FILE`, the sandbox's
`.reconciler/health.json`): a badge per conversation, the checks beside the message they
judged, the file read again when it changes, and a file that is not answer checks named with
why and nothing of it shown. Over HTTP, then in a real headless Chromium (hostile values in
the file stay text); screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.emulator import Emulator
from tests import ROOT
from tests.browser import Browser, find_browser
from tests.workspace import PROJECT, Workspace

SCREENSHOTS = ROOT / "test-artifacts" / "browser"
KEY = "health-key-0123456789"
SCRIPT = "<script>document.title='pwned'</script>"
IMG = "<img src=x onerror=\"document.body.dataset.pwned='yes'\">"


def check(key: str, status: str, reason: str, expected: str = "'x'") -> dict[str, str]:
    return {"key": key, "expected": expected, "status": status, "reason": reason}


def document(project_id: int, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A health document as `check --format json` writes it (the fields the pages read)."""
    return {"version": 1, "summary": {"passed": 0, "failed": 0, "not_checked": 0,
                                      "not_sent": 0, "pass_rate": 1.0},
            "projects": [{"project_id": project_id, "label": "demo", "error": None,
                          "messages": messages}]}


def judged(session_id: str, message_id: int | None, checks: list[dict[str, str]] | None,
           prompt: str = "Q") -> dict[str, Any]:
    return {"conversation": "c", "prompt": prompt, "sent": checks is not None,
            "session_id": session_id, "message_id": message_id, "answer": None,
            "checks": checks or []}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An emulator reading `health.json` in tmp_path: a conversation with two messages, the
    second judged failing; another with one message judged passing; a third with no checks."""
    health = tmp_path / "health.json"
    with Emulator(api_key=KEY, health=health) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT, "demo")
        failing = emulator.add_conversation(PROJECT, "QA failing")["session_id"]
        first = emulator.add_message(PROJECT, failing, "Hello?")
        second = emulator.add_message(PROJECT, failing, "Refunds?")
        passing = emulator.add_conversation(PROJECT, "QA passing")["session_id"]
        third = emulator.add_message(PROJECT, passing, "Open?")
        emulator.add_conversation(PROJECT, "Plain")
        messages = [
            judged(failing, second["id"], [
                check("contains", "failed", f"does not contain {SCRIPT}", expected=IMG),
                check("max_chars", "passed", "is 40 characters, at most 200")],
                prompt="Refunds?"),
            judged(failing, None, None, prompt=f"Later {SCRIPT}"),
            judged(passing, third["id"], [check("contains", "passed", "contains 'x'")]),
        ]
        health.write_text(json.dumps(document(PROJECT, messages)), encoding="utf-8")
        yield {"url": emulator.base_url, "health": health, "failing": failing,
               "passing": passing, "first": first["id"], "second": second["id"],
               "messages": messages}


def page(url: str) -> str:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    return response.text


def test_each_conversation_shows_its_health(site: dict[str, Any]) -> None:
    body = page(f"{site['url']}/projects/{PROJECT}")
    assert "<th>Answer checks</th>" in body
    assert '<span class="badge failed">✗ 1 of 2 failed</span>' in body
    assert '<span class="badge passed">✓ 1 passed</span>' in body
    assert "none declared" in body  # the conversation without checks
    assert "Answer checks as judged at" in body


def test_the_checks_stand_beside_the_message_they_judged(site: dict[str, Any]) -> None:
    body = page(f"{site['url']}/projects/{PROJECT}/conversations/{site['failing']}")
    sections = body.split('<section class="exchange')[1:]
    assert len(sections) == 2
    assert "checks" not in sections[0] and "Hello?" in sections[0]  # not judged
    assert "Refunds?" in sections[1] and '<table class="checks">' in sections[1]
    assert "does not contain &lt;script&gt;" in sections[1] and "<script" not in body
    assert "Declared with checks, not sent yet:" in body and "Later &lt;script&gt;" in body


def test_no_health_file_no_column(tmp_path: Path) -> None:
    with Emulator(api_key=KEY, health=tmp_path / "missing.json") as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT, "demo")
        emulator.add_conversation(PROJECT, "QA")
        body = page(f"{emulator.base_url}/projects/{PROJECT}")
    assert "Answer checks" not in body


def test_a_new_file_is_read_again(site: dict[str, Any]) -> None:
    assert "✗ 1 of 2 failed" in page(f"{site['url']}/projects/{PROJECT}")
    messages = site["messages"]
    messages[0]["checks"][0]["status"] = "passed"
    site["health"].write_text(json.dumps(document(PROJECT, messages)) + " " * 10,
                              encoding="utf-8")
    body = page(f"{site['url']}/projects/{PROJECT}")
    assert "✗" not in body and "1 not sent yet" in body and "✓ 1 passed" in body


@pytest.mark.parametrize(("content", "why"), [
    ("not json", "not valid JSON"),
    (json.dumps({"version": 2, "projects": []}), "not a document of version 1"),
    (json.dumps(document(PROJECT, [{"conversation": "c", "prompt": "q", "sent": True,
                                    "session_id": 7, "message_id": 1, "checks": []}])),
     "projects[0].messages[0].session_id is not a string or null"),
    (json.dumps(document(PROJECT, [judged("s", True, [])])),  # type: ignore[arg-type]
     "projects[0].messages[0].message_id is not a positive whole number or null"),
    (json.dumps(document(PROJECT, [judged("s", 1, [check("contains", "<b>ok</b>", "r")])])),
     "projects[0].messages[0].checks[0].status is not one of passed, failed, not checked"),
    (json.dumps([1] * 3), "not a document of version 1"),
], ids=["not-json", "version", "session-id-a-number", "message-id-a-boolean", "status",
        "a-list"])
def test_a_file_that_is_not_answer_checks_is_named_and_nothing_of_it_shown(
        site: dict[str, Any], content: str, why: str) -> None:
    site["health"].write_text(content, encoding="utf-8")
    for path in ("/", f"/projects/{PROJECT}", f"/projects/{PROJECT}/conversations/"
                 f"{site['failing']}"):
        body = page(site["url"] + path)
        assert "cannot be shown" in body and why.replace("'", "&#x27;") in body, path
        assert "badge" not in body.split("</style>")[1] and "<b>ok" not in body


def test_a_directory_or_a_fifo_is_refused_without_waiting(site: dict[str, Any]) -> None:
    site["health"].unlink()
    os.mkfifo(site["health"])
    body = page(f"{site['url']}/projects/{PROJECT}")  # returns: a FIFO is never opened to read
    assert "cannot be shown" in body and "not a regular file" in body


def test_the_sandbox_shows_what_check_judged(ws: Workspace) -> None:
    ws.declare(f"""\
version: 1
projects:
  - id: {PROJECT}
    conversations:
      - name: QA refunds
        messages:
          - prompt: How long do refunds take?
            expect: {{not_contains: ["refunds"]}}
""")
    assert ws.apply("--sandbox").code == 0
    assert ws.run("check", "--sandbox", "-f", str(ws.file)).code == 3
    state = ws.path / ".reconciler"
    with Emulator(db=str(state / "sandbox.db"), health=state / "health.json") as sandbox:
        sandbox.start()
        (conversation,) = sandbox.conversations(PROJECT)
        listing = page(f"{sandbox.base_url}/projects/{PROJECT}")
        transcript = page(f"{sandbox.base_url}/projects/{PROJECT}/conversations/"
                          f"{conversation['session_id']}")
    assert "✗ 1 of 1 failed" in listing
    assert "contains &#x27;refunds&#x27;" in transcript


# In a real browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = find_browser()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed: apt-get install chromium")
    opened = Browser(executable)
    yield opened
    opened.close()


def visit(browser: Browser, url: str, screenshot: str) -> None:
    events = browser.load(url)
    browser.screenshot(SCREENSHOTS / f"{screenshot}.png")
    assert events.dialogs == [] and events.console == []
    assert [line for line in events.log if "Content Security Policy" in line] == []
    assert [request for request in events.requests if request != url] == []
    assert browser.evaluate("document.querySelectorAll('script, img, svg, iframe').length") == 0
    assert browser.evaluate("document.body.dataset.pwned || ''") == ""
    assert browser.evaluate("document.title").endswith(" · reconciler emulator")


def test_a_person_sees_the_badges_and_the_checks(browser: Browser,
                                                 site: dict[str, Any]) -> None:
    visit(browser, f"{site['url']}/projects/{PROJECT}", "health-1-conversations")
    rows = browser.evaluate(
        "[...document.querySelectorAll('tbody tr')].map(r => [r.cells[0].innerText, "
        "r.cells[5].innerText])")
    assert rows == [["Plain", "none declared"], ["QA passing", "✓ 1 passed"],
                    ["QA failing", "✗ 1 of 2 failed"]]
    visit(browser, f"{site['url']}/projects/{PROJECT}/conversations/{site['failing']}",
          "health-2-transcript")
    checks = browser.evaluate(
        "[...document.querySelectorAll('table.checks tbody tr')]"
        ".map(r => [...r.cells].map(c => c.innerText))")
    assert checks == [["contains", IMG, "failed", f"does not contain {SCRIPT}"],
                      ["max_chars", "'x'", "passed", "is 40 characters, at most 200"]]
    beside = browser.evaluate(
        "(() => { const s = document.querySelector('.exchange.judged');"
        " const [said, checks] = s.querySelectorAll(':scope > div');"
        " return checks.getBoundingClientRect().left > said.getBoundingClientRect().left"
        " && Math.abs(checks.getBoundingClientRect().top - said.getBoundingClientRect().top)"
        " < 5; })()")
    assert beside  # the checks stand to the right of the prompt and answer, level with them
