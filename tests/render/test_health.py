"""The HTML report of answer checks (`as_html`) and the line a plan shows (`plan_line`).

First the page as bytes (its policy, what it links to, escaping), then opened from a file in a
real headless Chromium: what a reader sees first, that hostile answers stay text, and that the
page runs nothing and asks the network for nothing. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.plan.health import (
    SOURCES_NOT_READ,
    CheckResult,
    Flip,
    MessageCheck,
    ProjectHealth,
    Status,
)
from reconciler.render.health import HTML_POLICY, as_html, plan_line
from tests import ROOT
from tests.browser import Browser, find_browser

SCREENSHOTS = ROOT / "test-artifacts" / "browser"

SCRIPT = "<script>alert('answer')</script>"
IMG = "<img src=\"http://127.0.0.1:9/pixel.png\" onerror=\"alert('img')\">"
BREAKOUT = "</div></details></article><style>body { display: none }</style><a href=//x.test>x</a>"
BIDI = "\u202eevil\u202c and \u2066isolated\u2069"
CONTROLS = "bell\x07 escape\x1b[31m nul\x00 cr\r done"
LONG_WORD = "a" * 4_000
ARABIC = "مرحبا، كيف يمكنني مساعدتك اليوم؟"
HOSTILE_ANSWER = f"{SCRIPT} {IMG} {BREAKOUT} {BIDI} {CONTROLS}"


def passed(key: str = "contains", expected: str = "'x'") -> CheckResult:
    return CheckResult(key, expected, Status.PASSED, f"{key} ok")


def failed(key: str = "contains", expected: str = "'30 days'") -> CheckResult:
    return CheckResult(key, expected, Status.FAILED, f"does not contain {expected}")


def projects() -> list[ProjectHealth]:
    """Two projects: a passing conversation first, then a failing one with a hostile answer,
    one with a prompt not sent, one answering in Arabic, one that is a single long word."""
    support = ProjectHealth(7, "<b>support</b>", (
        MessageCheck("QA passing", "Is it open?", (passed(),), "Yes, it is open."),
        MessageCheck(SCRIPT, IMG, (passed("max_chars", "200"), failed()), HOSTILE_ANSWER),
        MessageCheck("QA later", "Not sent yet", None),
    ))
    other = ProjectHealth(8, "sales", (
        MessageCheck("QA arabic", "مرحبا؟", (passed(),), ARABIC),
        MessageCheck("QA long", "Say one long word", (failed("max_chars", "100"),), LONG_WORD),
    ))
    broken = ProjectHealth(9, "broken", error="project 9 not found or not visible: " + SCRIPT)
    return [support, other, broken]


FLIP = Flip(7, SCRIPT, IMG, "contains", "'30 days'", Status.PASSED, Status.FAILED)


# As bytes ------------------------------------------------------------------------------------


def test_the_page_loads_nothing_and_its_policy_allows_only_its_own_style() -> None:
    page = as_html(projects(), flips=(FLIP,))
    assert f'<meta http-equiv="Content-Security-Policy" content="{HTML_POLICY}">' in page
    assert "default-src 'none'" in HTML_POLICY and "script-src" not in HTML_POLICY
    assert "unsafe" not in HTML_POLICY
    style = re.search(r"<style>(.*?)</style>", page, re.DOTALL)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style[1].encode("utf-8")).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in HTML_POLICY  # the one stylesheet it may apply
    assert page.count("<style>") == 1
    tags = set(re.findall(r"<(/?[a-zA-Z!]\w*)", page))  # hostile values included: no tag
    assert {tag.lstrip("/") for tag in tags} <= {
        "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "header", "h1", "h2",
        "h3", "p", "strong", "ul", "li", "bdi", "span", "section", "table", "thead", "tbody",
        "tr", "th", "td", "article", "details", "summary", "div", "em"}
    benign = as_html([ProjectHealth(1, "p", (MessageCheck("c", "q", (failed(),), "a"),))],
                     flips=(Flip(1, "c", "q", "contains", "x", Status.PASSED, Status.FAILED),))
    for loads in ("src=", "href=", "url(", "@import", "http:", "https:", "//"):
        assert loads not in benign.split("</head>")[1], loads


def test_every_value_is_text() -> None:
    page = as_html(projects(), flips=(FLIP,))
    assert "&lt;script&gt;alert(&#x27;answer&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;support&lt;/b&gt;" in page
    assert "\u202e" not in page and "\x1b" not in page and "\x00" not in page
    assert '<span class="code">U+202E</span>evil' in page
    assert '<span class="code">U+001B</span>[31m' in page
    assert "cr<span class=\"code\">U+000D</span> done" in page
    page.encode("utf-8")  # no lone surrogate would survive this


def test_a_lone_surrogate_is_shown_as_its_code_point() -> None:
    health = [ProjectHealth(1, "p", (MessageCheck("c", "p", (failed(),), "half \ud800 a pair"),))]
    assert "half <span class=\"code\">U+D800</span> a pair" in as_html(health)


def test_failing_conversations_come_first_then_unsent_then_passing_collapsed() -> None:
    page = as_html(projects(), flips=(FLIP,))
    sections = re.findall(r'<section id="(\w+)"', page)
    assert sections == ["flips", "failing", "pending", "passing"]
    failing = page[page.index('id="failing"'):page.index('id="pending"')]
    assert failing.count("<article") == 2  # the hostile one and the long word, not collapsed
    passing = page[page.index('id="passing"'):]
    assert passing.count("<details") == 2 and "<details open" not in passing
    assert "Answer checks: 3 passed, 2 failed" in page  # the title counts, nothing hostile


def test_no_flips_section_without_a_baseline() -> None:
    assert 'id="flips"' not in as_html(projects())


def test_a_project_that_could_not_be_read_is_said_at_the_top() -> None:
    page = as_html(projects())
    header = page[page.index("<header>"):page.index("</header>")]
    assert "Project <bdi>broken</bdi>" in header and "not found or not visible" in header


def test_nothing_declared_says_so() -> None:
    assert "No answer checks are declared." in as_html([ProjectHealth(1, "p")])
    unread = as_html([ProjectHealth(1, "p", error="project 1 not found")])
    assert "No answer checks are declared." not in unread and "project 1 not found" in unread


@pytest.mark.parametrize(("health", "line"), [
    ([ProjectHealth(1, "p", (MessageCheck("c", "q", (passed(), failed())),))],
     "Answer checks: 1 passed, 1 failed (see `reconciler check`)."),
    ([ProjectHealth(1, "p", (MessageCheck("c", "q", None),)), ProjectHealth(2, "q", error="x")],
     "Answer checks: 0 passed, 0 failed, 1 not sent yet, 1 project(s) not read "
     "(see `reconciler check`)."),
    ([ProjectHealth(1, "p", (MessageCheck("c", "q", (
        passed(), CheckResult("cites", "'refunds.md'", Status.NOT_CHECKED, SOURCES_NOT_READ),
        CheckResult("cites", "'x.md'", Status.NOT_CHECKED, SOURCES_NOT_READ),
        CheckResult("matches", "x", Status.NOT_CHECKED, "not judged: deadline"))),))],
     "Answer checks: 1 passed, 0 failed, 3 not checked (see `reconciler check`). A plan "
     "reads no cited source: the 2 `cites` naming one by text are left to `reconciler "
     "check`."),
], ids=["counts", "unsent-and-unread", "named-sources"])
def test_the_plan_line(health: list[ProjectHealth], line: str) -> None:
    assert plan_line(health) == line


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


def open_report(browser: Browser, path: Path, screenshot: str) -> None:
    """Open the report file; check that it ran nothing and asked for nothing but itself."""
    url = path.as_uri()
    events = browser.load(url)
    browser.screenshot(SCREENSHOTS / f"{screenshot}.png")
    assert events.dialogs == [] and events.console == []
    assert [line for line in events.log if "Content Security Policy" in line] == [], (
        "the policy had to stop something: a value was not escaped")
    assert [request for request in events.requests if request != url] == []
    assert browser.evaluate(
        "document.querySelectorAll('script, img, svg, iframe, link, a, object').length") == 0
    assert browser.evaluate("document.querySelectorAll('style').length") == 1


def test_the_harness_sees_a_request_a_page_makes(browser: Browser, tmp_path: Path) -> None:
    page = tmp_path / "leaky.html"
    page.write_text('<body><img src="http://127.0.0.1:9/pixel.png"></body>', encoding="utf-8")
    events = browser.load(page.as_uri())
    assert "http://127.0.0.1:9/pixel.png" in events.requests


def test_the_report_shows_failures_first_and_runs_nothing(browser: Browser,
                                                          tmp_path: Path) -> None:
    report = tmp_path / "checks.html"
    report.write_text(as_html(projects(), flips=(FLIP,)), encoding="utf-8")
    open_report(browser, report, "report-1-failing-first")
    assert browser.evaluate("document.title") == "Answer checks: 3 passed, 2 failed"
    text = browser.evaluate("document.body.innerText")
    assert "60% pass rate: 3 passed, 2 failed, 0 not checked, 1 not sent yet." in text
    headings = browser.evaluate("[...document.querySelectorAll('h2')].map(h => h.innerText)")
    assert headings == ["Changed since the baseline (1 check(s))", "Failing (2 conversation(s))",
                        "Not sent yet (1 conversation(s))", "Passing (2 conversation(s))"]
    first = browser.evaluate("document.querySelector('#failing article h3 bdi').innerText")
    assert first == SCRIPT  # shown as text, the first failing conversation
    answer = browser.evaluate("document.querySelector('#failing .answer').innerText")
    assert answer.startswith(f"{SCRIPT} {IMG} {BREAKOUT} U+202Eevil")
    checks = browser.evaluate(
        "[...document.querySelectorAll('#failing article:first-of-type tbody tr')]"
        ".map(r => [...r.cells].map(c => c.innerText))")
    assert checks == [["max_chars", "200", "passed", "max_chars ok"],
                      ["contains", "'30 days'", "failed", "does not contain '30 days'"]]
    assert browser.evaluate("document.body.offsetHeight > 0")  # not hidden by the answer
    closed = browser.evaluate(
        "[...document.querySelectorAll('#passing details')].map(d => d.open)")
    assert closed == [False, False]


def test_long_words_wrap_and_right_to_left_answers_read_right_to_left(
        browser: Browser, tmp_path: Path) -> None:
    report = tmp_path / "checks.html"
    report.write_text(as_html(projects()), encoding="utf-8")
    open_report(browser, report, "report-2-long-and-rtl")
    assert browser.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    browser.evaluate("document.querySelectorAll('#passing details').forEach(d => d.open = true)")
    directions = browser.evaluate(
        "[...document.querySelectorAll('.answer')].map(a => [a.innerText.slice(0, 5), "
        "getComputedStyle(a).direction])")
    assert [ARABIC[:5], "rtl"] in directions
    assert ["Yes, ", "ltr"] in directions
    assert browser.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth")
