"""The emulator's read-only HTML pages: projects, a project's conversations, a transcript.

Over HTTP first (status, headers, escaping in the bytes sent), then in a real headless Chromium:
what a person sees on each page, the links between pages, and that no script from the data runs.
Screenshots go to test-artifacts/browser/ (not committed).
"""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from reconciler.emulator import Emulator
from tests import ROOT
from tests.browser import Browser, find_browser

SCREENSHOTS = ROOT / "test-artifacts" / "browser"
PROJECT = 1001
KEY = "pages-key-0123456789"
BIN = Path(sys.executable).parent
DEMO = 1001  # the project of examples/quickstart.yaml

# Each would change what the page shows if it ran: an alert, the title, a marker attribute.
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>document.title='pwned'</script>"
ATTRIBUTE = "\"><svg onload=\"document.body.dataset.pwned='yes'\">"
PROMPT = "<img src=x onerror=\"document.body.dataset.pwned='prompt'\"> & what else?"
PROJECT_NAME = "</title><script>alert('project')</script>"


@pytest.fixture(scope="module")
def site() -> Iterator[dict[str, Any]]:
    """An emulator (3 per page) whose project holds 8 conversations, 3 of them hostile."""
    with Emulator(api_key=KEY, page_size=3) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT, PROJECT_NAME)
        emulator.ensure_project(2002, "sales-bot")
        hostile = {
            IMG: emulator.add_conversation(PROJECT, IMG, creator="visitor"),
            SCRIPT: emulator.add_conversation(PROJECT, SCRIPT, creator="teammate"),
        }
        for number in range(5):
            emulator.add_conversation(PROJECT, f"Plain {number}", creator="me")
        hostile[ATTRIBUTE] = emulator.add_conversation(PROJECT, ATTRIBUTE, creator="me")
        session = hostile[SCRIPT]["session_id"]
        emulator.add_message(PROJECT, session, PROMPT)
        emulator.add_message(PROJECT, session, "Second question")
        yield {"emulator": emulator, "url": emulator.base_url, "hostile": hostile}


def get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, timeout=10, **kwargs)


# Over HTTP -----------------------------------------------------------------------------------


def test_pages_are_html_with_a_policy_that_allows_no_script(site: dict[str, Any]) -> None:
    for path in ("/", f"/projects/{PROJECT}",
                 f"/projects/{PROJECT}/conversations/{site['hostile'][SCRIPT]['session_id']}"):
        response = get(site["url"] + path)  # no API key needed
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src" not in policy and "unsafe" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"


def test_values_are_escaped_in_the_html_sent(site: dict[str, Any]) -> None:
    body = get(f"{site['url']}/projects/{PROJECT}?page=3").text
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    assert "<img" not in body
    transcript = get(f"{site['url']}/projects/{PROJECT}/conversations/"
                     f"{site['hostile'][SCRIPT]['session_id']}").text
    assert "<script" not in transcript and "<img" not in transcript
    assert "&lt;/title&gt;&lt;script&gt;" in transcript  # the project, in the breadcrumbs


def test_a_page_past_the_last_says_so_and_links_back(site: dict[str, Any]) -> None:
    response = get(f"{site['url']}/projects/{PROJECT}?page=99")
    assert response.status_code == 200  # as the API answers an empty page
    assert "Nothing on this page: it is past the last one." in response.text
    assert "No conversations in this project" not in response.text
    assert f'href="/projects/{PROJECT}?page=3" rel="last"' in response.text
    assert "Page 99 of 3 (8 conversations)" in response.text


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_pages_are_read_only(site: dict[str, Any], method: str) -> None:
    before = len(site["emulator"].conversations(PROJECT))
    response = httpx.request(method, f"{site['url']}/projects/{PROJECT}", timeout=10,
                             json={"name": "x"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert len(site["emulator"].conversations(PROJECT)) == before


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/projects/9999", 404, "Project 9999 not found"),
    ("/projects/abc", 404, "Project abc not found"),
    (f"/projects/{PROJECT}/conversations/no-such-session", 404, "no-such-session not found"),
    (f"/projects/{PROJECT}?page=0", 400, "The page must be a positive integer"),
    (f"/projects/{PROJECT}?page=%3Cb%3E", 400, "The page must be a positive integer"),
    ("/projects/" + "9" * 5000, 404, "Project 9999999999"),
    (f"/projects/{PROJECT}?page=" + "9" * 5000, 400, "The page must be a positive integer"),
], ids=["unknown-project", "project-not-a-number", "unknown-session", "page-zero", "page-text",
        "5000-digit-project", "5000-digit-page"])
def test_bad_addresses_get_an_html_error_page(site: dict[str, Any], path: str, status: int,
                                              message: str) -> None:
    response = get(site["url"] + path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert message in response.text
    assert "content-security-policy" in response.headers


def test_pages_ignore_injected_faults_and_are_not_counted_as_api_requests() -> None:
    with Emulator(api_key=KEY, enable_admin=True) as emulator:
        emulator.start()
        emulator.faults.error_rate = 1.0
        assert get(emulator.base_url + "/").status_code == 200
        api = get(emulator.base_url + "/api/v1/user", headers={"Authorization": f"Bearer {KEY}"})
        assert api.status_code >= 500
        assert sum(emulator.stats()["requests"].values()) == 1


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8765", "", "[::1"],
                         ids=["other-name", "other-name-and-port", "empty", "malformed"])
def test_pages_answer_only_requests_addressed_to_loopback(site: dict[str, Any],
                                                         host: str) -> None:
    response = get(site["url"] + "/", headers={"Host": host})
    assert response.status_code == 403
    assert "Plain" not in response.text and PROJECT_NAME not in response.text
    assert get(site["url"] + "/", headers={"Host": "localhost"}).status_code == 200


def test_no_pages_when_serving_beyond_loopback() -> None:
    with Emulator(api_key=KEY) as emulator:
        base_url = emulator.start("0.0.0.0", 0, allow_remote=True)
        port = base_url.rsplit(":", 1)[1]
        emulator.ensure_project(PROJECT, "secret-project")
        response = get(f"http://127.0.0.1:{port}/projects/{PROJECT}")
        assert response.status_code == 404
        assert "secret-project" not in response.text


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
    """Load a page, keep a screenshot, and check that nothing from the data ran."""
    events = browser.load(url)
    browser.screenshot(SCREENSHOTS / f"{screenshot}.png")
    assert events.dialogs == [], f"a script ran on {url}: {events.dialogs}"
    assert events.console == []
    assert [line for line in events.log if "Content Security Policy" in line] == [], (
        "the policy had to stop something: a value was not escaped")
    assert browser.evaluate("document.querySelectorAll('script, img, svg, iframe').length") == 0
    assert browser.evaluate("document.body.dataset.pwned || ''") == ""
    assert browser.evaluate("document.title").endswith(" · reconciler emulator")  # not 'pwned'


def table(browser: Browser) -> list[list[str]]:
    """The table's rows as a person reads them: the text of each cell."""
    rows: list[list[str]] = browser.evaluate(
        "[...document.querySelectorAll('tbody tr')].map(r => [...r.cells].map(c => c.innerText))")
    return rows


def link(browser: Browser, selector: str) -> str:
    href: str = browser.evaluate(f"document.querySelector({selector!r}).href")
    return href


def test_the_browser_harness_notices_a_script_that_runs(browser: Browser) -> None:
    events = browser.load("data:text/html,<body><img src=x onerror=alert('ran')></body>")
    assert events.dialogs == ["ran"]


def test_projects_page_lists_projects_and_links_to_each(browser: Browser,
                                                        site: dict[str, Any]) -> None:
    visit(browser, site["url"] + "/", "1-projects")
    assert browser.evaluate("document.title") == "Projects · reconciler emulator"
    rows = table(browser)
    assert [row[:3] for row in rows] == [[PROJECT_NAME, str(PROJECT), "8"],
                                         ["sales-bot", "2002", "0"]]
    assert link(browser, "tbody tr a") == f"{site['url']}/projects/{PROJECT}"


def test_conversations_page_shows_name_creator_time_and_messages_in_pages(
        browser: Browser, site: dict[str, Any]) -> None:
    visit(browser, f"{site['url']}/projects/{PROJECT}", "2-conversations-page-1")
    assert browser.evaluate("document.querySelector('h1').innerText") == PROJECT_NAME
    first = table(browser)
    assert [row[0] for row in first] == [ATTRIBUTE, "Plain 4", "Plain 3"]  # newest first
    assert [row[1] for row in first] == ["you", "you", "you"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row[2]) for row in first)
    assert "Page 1 of 3 (8 conversations)" in browser.evaluate("document.body.innerText")

    visit(browser, link(browser, "a[rel=next]"), "2-conversations-page-2")
    assert [row[0] for row in table(browser)] == ["Plain 2", "Plain 1", "Plain 0"]
    visit(browser, link(browser, "a[rel=last]"), "2-conversations-page-3")
    last = table(browser)
    assert [(row[0], row[1], row[3]) for row in last] == [(SCRIPT, "team member", "2"),
                                                          (IMG, "visitor", "0")]
    assert browser.evaluate("document.querySelector('a[rel=next]')") is None
    assert link(browser, "a[rel=prev]") == f"{site['url']}/projects/{PROJECT}?page=2"


def test_transcript_shows_prompts_and_answers_in_order(browser: Browser,
                                                       site: dict[str, Any]) -> None:
    visit(browser, f"{site['url']}/projects/{PROJECT}?page=3", "3-before-transcript")
    visit(browser, link(browser, "tbody tr a"), "3-transcript")
    assert browser.evaluate("document.querySelector('h1').innerText") == SCRIPT
    assert browser.evaluate("document.title") == f"{SCRIPT} · reconciler emulator"
    prompts = browser.evaluate("[...document.querySelectorAll('.prompt')].map(p => p.innerText)")
    assert prompts == [PROMPT, "Second question"]
    answers = browser.evaluate("[...document.querySelectorAll('.answer')].map(p => p.innerText)")
    assert answers[0] == f'Emulated answer to "{PROMPT}" ({len(PROMPT.split())} words).'
    text = browser.evaluate("document.body.innerText")
    assert "Created by team member" in text and "2 message(s)" in text
    assert link(browser, "nav.crumbs a:nth-of-type(2)") == f"{site['url']}/projects/{PROJECT}"


# Where the commands say the pages are ------------------------------------------------------

ADDRESS = re.compile(r"open (http://127\.0\.0\.1:\d+/) ")


def read_address(stream: IO[str]) -> str:
    """The page address from a command's stderr (read line by line until it comes)."""
    seen = []
    for line in stream:
        seen.append(line)
        match = ADDRESS.search(line)
        if match:
            return match[1]
    raise AssertionError(f"no address to open in: {seen}")


def test_emulator_command_prints_the_address_of_the_pages(tmp_path: Path) -> None:
    process = subprocess.Popen([str(BIN / "reconciler"), "emulator"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None and process.stdout is not None
        url = read_address(process.stderr)
        assert get(url).status_code == 200
        assert "<h1>Projects</h1>" in get(url).text
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    assert process.stdout.read().startswith("CUSTOMGPT_BASE_URL=")  # stdout stays eval-able


def test_plan_sandbox_prints_the_address_on_stderr_and_keeps_stdout_json(tmp_path: Path) -> None:
    shutil.copy(ROOT / "examples" / "quickstart.yaml", tmp_path / "quickstart.yaml")
    done = subprocess.run([str(BIN / "reconciler"), "plan", "--sandbox", "-f", "quickstart.yaml",
                           "--format", "json"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["create"] == 3
    assert ADDRESS.search(done.stderr)
    assert "reconciler emulator --db .reconciler/sandbox.db" in done.stderr


def test_apply_sandbox_serves_the_pages_while_it_runs(tmp_path: Path) -> None:
    """apply waits for 'yes' on a terminal: meanwhile the printed address shows the project."""
    shutil.copy(ROOT / "examples" / "quickstart.yaml", tmp_path / "quickstart.yaml")
    terminal, answer = pty.openpty()
    process = subprocess.Popen([str(BIN / "reconciler"), "apply", "--sandbox", "-f",
                                "quickstart.yaml"], cwd=tmp_path, stdin=answer,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.close(answer)
    try:
        assert process.stderr is not None
        url = read_address(process.stderr)
        projects = get(url)
        assert projects.status_code == 200
        assert f'href="/projects/{DEMO}"' in projects.text
        os.write(terminal, b"no\n")
        assert process.wait(timeout=30) == 1
        assert "apply cancelled" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        os.close(terminal)
