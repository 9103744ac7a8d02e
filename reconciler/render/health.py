"""Answer checks rendered: text, JSON (schemas/health.schema.json), JUnit XML (one
testsuite per project, one testcase per expectation), markdown, a self-contained HTML page,
and the one line a plan shows; each with the checks that flipped since a baseline (`Flip`, from
`reconciler.plan.health.flips`) where a reader looks for them; and a report read back from its
JSON (`from_dict`), for a baseline. Pure."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from reconciler.jsonio import pretty
from reconciler.plan.health import (
    SOURCES_NOT_READ,
    CheckResult,
    Flip,
    MessageCheck,
    ProjectHealth,
    Status,
)
from reconciler.render.formats import markdown_safe
from reconciler.text import shown_briefly

# XML 1.0 allows tab, newline, carriage return and characters from U+0020 on, but for the
# surrogates and U+FFFE/U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Tally:
    """How many checks passed, failed, and how many declared prompts were not sent yet."""

    passed: int
    failed: int
    not_checked: int
    not_sent: int

    @property
    def pass_rate(self) -> float:
        """Passed over passed and failed (1.0 when nothing was judged)."""
        judged = self.passed + self.failed
        return 1.0 if judged == 0 else self.passed / judged


def tally(projects: list[ProjectHealth]) -> Tally:
    """The counts of every project's checks."""
    counts = {status: 0 for status in Status}
    not_sent = 0
    for project in projects:
        for message in project.messages:
            if message.results is None:
                not_sent += 1
                continue
            for result in message.results:
                counts[result.status] += 1
    return Tally(counts[Status.PASSED], counts[Status.FAILED], counts[Status.NOT_CHECKED],
                 not_sent)


def as_text(projects: list[ProjectHealth], flips: tuple[Flip, ...] = ()) -> str:
    """The checks in lines a reader scans: failures first-class, passes briefly; then the
    checks that flipped since the baseline, if any; the summary line last."""
    lines = []
    for project in projects:
        lines.append(f"Project {project.label}:")
        if project.error:
            lines.append(f"  error: {project.error}")
        for message in project.messages:
            where = f"{shown_briefly(message.conversation)} / {shown_briefly(message.prompt)}"
            if message.results is None:
                lines.append(f"  - {where}: not checked: not sent yet")
                continue
            for result in message.results:
                mark = {Status.PASSED: "ok", Status.FAILED: "FAILED",
                        Status.NOT_CHECKED: "not checked"}[result.status]
                lines.append(f"  {mark}: {where}: {result.key}: {result.reason}")
        if not project.messages and not project.error:
            lines.append("  no answer checks declared")
    if flips:
        lines.append(f"Flipped since the baseline ({len(flips)}):")
        lines += [f"  {_turn(flip)}: project {flip.project_id}: "
                  f"{shown_briefly(flip.conversation)} / {shown_briefly(flip.prompt)}: "
                  f"{flip.key} {flip.expected}" for flip in flips]
    counts = tally(projects)
    lines.append(f"{counts.passed} passed, {counts.failed} failed, {counts.not_checked} not "
                 f"checked, {counts.not_sent} not sent yet (pass rate {counts.pass_rate:.0%}).")
    return "\n".join(lines) + "\n"


def as_markdown(projects: list[ProjectHealth], flips: tuple[Flip, ...] = ()) -> str:
    """The checks as a pull-request comment: the summary, the checks that flipped since the
    baseline (if any), then a table per project of every check that failed or was not judged
    (passes are counted, not listed). Every value is made inert markdown (`markdown_safe`)."""
    counts = tally(projects)
    lines = ["### Answer checks", "",
             f"**{counts.passed} passed, {counts.failed} failed**, {counts.not_checked} not "
             f"checked, {counts.not_sent} not sent yet (pass rate {counts.pass_rate:.0%}).", ""]
    if flips:
        lines += [f"**Flipped since the baseline: {len(flips)}**", "",
                  "| | project | conversation | prompt | check |", "|---|---|---|---|---|",
                  *(f"| {'❌' if flip.now is Status.FAILED else '✅'} {_turn(flip)} | "
                    f"{flip.project_id} | {markdown_safe(flip.conversation)} | "
                    f"{markdown_safe(flip.prompt)} | "
                    f"{markdown_safe(f'{flip.key} {flip.expected}')} |" for flip in flips), ""]
    for project in projects:
        rows = []
        for message in project.messages:
            where = (f"{markdown_safe(message.conversation)} | "
                     f"{markdown_safe(message.prompt)}")
            if message.results is None:
                rows.append(f"| ⏳ | {where} | | not sent yet |")
                continue
            for result in message.results:
                if result.status is Status.PASSED:
                    continue
                mark = "❌" if result.status is Status.FAILED else "⚪"
                rows.append(f"| {mark} | {where} | {markdown_safe(result.key)} | "
                            f"{markdown_safe(result.reason)} |")
        if project.error:
            lines += [f"**{markdown_safe(project.label)}**: error: "
                      f"{markdown_safe(project.error)}", ""]
        elif rows:
            lines += [f"**{markdown_safe(project.label)}**", "",
                      "| | conversation | prompt | check | why |", "|---|---|---|---|---|",
                      *rows, ""]
    return "\n".join(lines)


def as_dict(projects: list[ProjectHealth], flips: tuple[Flip, ...] = (), *,
            compared: bool = False) -> dict[str, Any]:
    """The checks as JSON data (schemas/health.schema.json), with the list of `flips` when
    there are some or the run was `compared` with a baseline (an empty list: nothing
    flipped)."""
    counts = tally(projects)
    document: dict[str, Any] = {
        "version": 1,
        "summary": {"passed": counts.passed, "failed": counts.failed,
                    "not_checked": counts.not_checked, "not_sent": counts.not_sent,
                    "pass_rate": counts.pass_rate},
        "projects": [{
            "project_id": project.project_id,
            "label": project.label,
            "error": project.error,
            "messages": [{
                "conversation": message.conversation,
                "prompt": message.prompt,
                "sent": message.results is not None,
                "session_id": message.session_id,
                "message_id": message.message_id,
                "answer": message.answer,
                "checks": [{"key": r.key, "expected": r.expected, "status": r.status.value,
                            "reason": r.reason} for r in message.results or ()],
            } for message in project.messages],
        } for project in projects],
    }
    if flips or compared:
        document["flips"] = [{
            "project_id": flip.project_id, "conversation": flip.conversation,
            "prompt": flip.prompt, "key": flip.key, "expected": flip.expected,
            "was": flip.was.value, "now": flip.now.value} for flip in flips]
    return document


def rendered(fmt: str, projects: list[ProjectHealth], flips: tuple[Flip, ...] = (), *,
             compared: bool = False, command: str = "check") -> str:
    """The checks in the format `fmt` (text, json, junit, markdown or html; the names of
    `check`'s and `test`'s `--format`), with the checks that flipped since a baseline (JSON
    lists them, an empty list too, when the run was `compared` with one); JUnit's report is
    named for the `command` that judged them."""
    if fmt == "json":
        return pretty(as_dict(projects, flips, compared=compared))
    if fmt == "html":
        return as_html(projects, flips=flips)
    if fmt == "junit":
        return as_junit(projects, flips, command=command)
    return {"text": as_text, "markdown": as_markdown}[fmt](projects, flips)


def from_dict(document: dict[str, Any]) -> list[ProjectHealth]:
    """The checks of a JSON report (`as_dict`'s form, already validated against
    schemas/health.schema.json), as a baseline to compare with."""
    return [ProjectHealth(
        project["project_id"], project["label"], tuple(
            MessageCheck(message["conversation"], message["prompt"],
                         tuple(CheckResult(c["key"], c["expected"], Status(c["status"]),
                                           c["reason"]) for c in message["checks"])
                         if message["sent"] else None, message["answer"])
            for message in project["messages"]), project["error"])
        for project in document["projects"]]


def _turn(flip: Flip) -> str:
    names = {Status.PASSED: "pass", Status.FAILED: "fail", Status.NOT_CHECKED: "not checked"}
    return f"{names[flip.was]}→{names[flip.now]}"


def as_junit(projects: list[ProjectHealth], flips: tuple[Flip, ...] = (), *,
             command: str = "check") -> str:
    """The checks as JUnit XML: a testsuite per project, a testcase per expectation named by
    conversation and prompt (classname: the project), a failure with its reason; a prompt
    not sent yet is a skipped testcase. Characters XML 1.0 cannot hold are dropped. `flips`
    are not shown (a CI reporter reads the testcases' own status)."""
    root = ET.Element("testsuites", name=f"reconciler {command}")
    for project in projects:
        suite = ET.SubElement(root, "testsuite", name=_xml(f"project {project.label}"))
        cases = failures = skipped = errors = 0
        if project.error:
            case = ET.SubElement(suite, "testcase", classname=_xml(project.label),
                                 name="read answers")
            ET.SubElement(case, "error", message=_xml(project.error))
            cases, errors = cases + 1, errors + 1
        for message in project.messages:
            name = f"{message.conversation} / {message.prompt}"
            if message.results is None:
                case = ET.SubElement(suite, "testcase", classname=_xml(project.label),
                                     name=_xml(name))
                ET.SubElement(case, "skipped", message="not sent yet")
                cases, skipped = cases + 1, skipped + 1
                continue
            for result in message.results:
                case = ET.SubElement(suite, "testcase", classname=_xml(project.label),
                                     name=_xml(f"{name} / {result.key} {result.expected}"))
                cases += 1
                if result.status is Status.FAILED:
                    failure = ET.SubElement(case, "failure", message=_xml(result.reason))
                    failure.text = _xml(result.reason)
                    failures += 1
                elif result.status is Status.NOT_CHECKED:
                    ET.SubElement(case, "skipped", message=_xml(result.reason))
                    skipped += 1
        suite.set("tests", str(cases))
        suite.set("failures", str(failures))
        suite.set("errors", str(errors))
        suite.set("skipped", str(skipped))
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)


def plan_line(projects: list[ProjectHealth]) -> str:
    """The line a plan shows beside its changes: "Answer checks: 5 passed, 1 failed (see
    `reconciler check`)", with what was not judged and the projects that could not be read
    when there are any; then, when a `cites` names a source by text, that a plan left it
    unchecked (it reads no cited source)."""
    counts = tally(projects)
    parts = [f"{counts.passed} passed", f"{counts.failed} failed"]
    named = sum(1 for p in projects for m in p.messages for r in m.results or ()
                if r.status is Status.NOT_CHECKED and r.reason == SOURCES_NOT_READ)
    if counts.not_checked:
        parts.append(f"{counts.not_checked} not checked")
    if counts.not_sent:
        parts.append(f"{counts.not_sent} not sent yet")
    errors = sum(1 for p in projects if p.error)
    if errors:
        parts.append(f"{errors} project(s) not read")
    line = f"Answer checks: {', '.join(parts)} (see `reconciler check`)."
    if named:
        line += (f" A plan reads no cited source: the {named} `cites` naming one by text are "
                 "left to `reconciler check`.")
    return line


# The HTML report ------------------------------------------------------------------------------
#
# One file that opens anywhere and loads nothing: no script, no link, no image, no font, its
# stylesheet inline and allowed by its hash only. Every value is text: escaped, its control
# characters and bidirectional controls shown as their code points (an answer cannot reorder
# what is around it), each value isolated for bidirectional text, long words broken.

_HTML_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 72rem;
       padding: 1rem; color: #1d1d1f; background: #fff; }
h1, h2, h3 { line-height: 1.2; }
h3 { margin: 0 0 .5rem; font-size: 1.05rem; }
.muted { color: #666; font-weight: normal; }
.summary { font-size: 1.1rem; }
.badge { display: inline-block; border-radius: 9px; padding: 0 .5rem; font-size: .85rem;
         font-weight: 600; }
.badge.failed, tr.failed td.status { background: #fde7e9; color: #a4161a; }
.badge.passed, tr.passed td.status { background: #e6f4ea; color: #1e6b34; }
.badge.pending, tr.not-checked td.status { background: #f1f1f3; color: #555; }
.conversation { border: 1px solid #e3e3e6; border-radius: 6px; margin: .75rem 0;
                padding: .5rem .75rem; }
.conversation.failed { border-color: #e8a0a6; }
details.conversation > summary { cursor: pointer; }
.exchange { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr);
            gap: .75rem; border-top: 1px solid #eee; padding: .5rem 0; }
@media (max-width: 48rem) { .exchange { grid-template-columns: minmax(0, 1fr); } }
.prompt, .answer { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0 0 .25rem; }
.prompt { font-weight: 600; }
.answer { background: #f8f8fa; padding: .35rem .5rem; border-radius: 4px; max-height: 30rem;
          overflow: auto; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
th, td { text-align: left; padding: .3rem .4rem; border-bottom: 1px solid #eee;
         vertical-align: top; overflow-wrap: anywhere; }
th { background: #f6f6f7; }
table.checks th:nth-child(1) { width: 22%; }
table.checks th:nth-child(2) { width: 24%; }
table.checks th:nth-child(3) { width: 14%; }
bdi, .v { unicode-bidi: isolate; }
.code { font: .8em ui-monospace, monospace; background: #fff3bf; color: #5c4400;
        border-radius: 3px; padding: 0 .15em; }
ul.errors { color: #a4161a; }
""".strip()

_HTML_STYLE_HASH = base64.b64encode(hashlib.sha256(_HTML_STYLE.encode("utf-8")).digest()
                                    ).decode("ascii")
HTML_POLICY = (f"default-src 'none'; style-src 'sha256-{_HTML_STYLE_HASH}'; "
               "base-uri 'none'; form-action 'none'")

# Shown as their code point: C0 and C1 controls but tab and newline, the bidirectional
# embeddings, overrides, isolates and marks, lone surrogates and the byte-order mark.
_SHOWN_AS_CODE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff\ufeff]")
_STATUS_CLASS = {Status.PASSED: "passed", Status.FAILED: "failed",
                 Status.NOT_CHECKED: "not-checked"}


def as_html(projects: list[ProjectHealth], *, flips: tuple[Flip, ...] = ()) -> str:
    """The checks as one self-contained HTML page: the summary (pass rate), the checks that
    flipped since a baseline (`flips`, when there are any), then the conversations with a
    failing check, those with prompts not sent yet, and the passing ones collapsed; each
    answer beside its expectations (key, expected, status, why). Loads nothing and runs
    nothing (`HTML_POLICY`); every value is escaped text."""
    counts = tally(projects)
    title = f"Answer checks: {counts.passed} passed, {counts.failed} failed"
    groups = _conversations(projects)
    failing = [g for g in groups if g.state == "failed"]
    pending = [g for g in groups if g.state == "pending"]
    passing = [g for g in groups if g.state == "passed"]
    body = [f"<header><h1>Answer checks</h1>\n{_html_summary(projects)}</header>"]
    if flips:
        body.append(_html_flips(flips, projects))
    if failing:
        body.append(f"<section id=\"failing\"><h2>Failing ({len(failing)} conversation(s))"
                    "</h2>\n" + "".join(g.html(open_=True) for g in failing) + "</section>")
    if pending:
        body.append(f"<section id=\"pending\"><h2>Not sent yet ({len(pending)} "
                    "conversation(s))</h2>\n" + "".join(g.html(open_=True) for g in pending)
                    + "</section>")
    if passing:
        body.append(f"<section id=\"passing\"><h2>Passing ({len(passing)} conversation(s))"
                    "</h2>\n" + "".join(g.html(open_=False) for g in passing) + "</section>")
    if not groups and not any(p.error for p in projects):
        body.append("<p>No answer checks are declared.</p>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{HTML_POLICY}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{_HTML_STYLE}</style>
</head>
<body>
{chr(10).join(body)}
</body>
</html>
"""


def _html_summary(projects: list[ProjectHealth]) -> str:
    counts = tally(projects)
    line = (f"<p class=\"summary\"><strong>{counts.pass_rate:.0%}</strong> pass rate: "
            f"{counts.passed} passed, {counts.failed} failed, {counts.not_checked} not "
            f"checked, {counts.not_sent} not sent yet.</p>")
    errors = [f"<li>Project <bdi>{_h(p.label)}</bdi>: <span class=\"v\">{_h(p.error)}</span>"
              "</li>" for p in projects if p.error]
    return line + (f"\n<ul class=\"errors\">{''.join(errors)}</ul>" if errors else "")


def _html_flips(flips: tuple[Flip, ...], projects: list[ProjectHealth]) -> str:
    labels = {p.project_id: p.label for p in projects}
    rows = "".join(
        f"<tr class=\"{_STATUS_CLASS[f.now]}\">"
        f"<td><bdi>{_h(labels.get(f.project_id, str(f.project_id)))}</bdi></td>"
        f"<td><bdi>{_h(f.conversation)}</bdi></td><td><bdi>{_h(f.prompt)}</bdi></td>"
        f"<td>{_h(f.key)} <bdi>{_h(f.expected)}</bdi></td><td>{_h(f.was.value)}</td>"
        f"<td class=\"status\">{_h(f.now.value)}</td></tr>\n" for f in flips)
    return ("<section id=\"flips\"><h2>Changed since the baseline "
            f"({len(flips)} check(s))</h2>\n<table>\n<thead><tr><th>Project</th>"
            "<th>Conversation</th><th>Prompt</th><th>Check</th><th>Was</th><th>Now</th></tr>"
            f"</thead>\n<tbody>\n{rows}</tbody>\n</table></section>")


@dataclass(frozen=True)
class _Conversation:
    """One conversation's checks, for the page."""

    label: str
    name: str
    messages: tuple[MessageCheck, ...]

    @property
    def state(self) -> str:
        """failed (a check failed), pending (a prompt not sent yet) or passed."""
        results = [r for m in self.messages for r in m.results or ()]
        if any(r.status is Status.FAILED for r in results):
            return "failed"
        return "pending" if any(m.results is None for m in self.messages) else "passed"

    def html(self, *, open_: bool) -> str:
        results = [r for m in self.messages for r in m.results or ()]
        failed = sum(r.status is Status.FAILED for r in results)
        badge = {"failed": f"{failed} of {len(results)} failed",
                 "pending": "not sent yet",
                 "passed": f"{len(results)} passed"}[self.state]
        head = (f"<bdi>{_h(self.name)}</bdi> <span class=\"muted\">in <bdi>{_h(self.label)}"
                f"</bdi></span> <span class=\"badge {self.state}\">{badge}</span>")
        exchanges = "".join(_html_exchange(m) for m in self.messages)
        if open_:
            return (f"<article class=\"conversation {self.state}\"><h3>{head}</h3>\n"
                    f"{exchanges}</article>\n")
        return (f"<details class=\"conversation {self.state}\"><summary>{head}</summary>\n"
                f"{exchanges}</details>\n")


def _conversations(projects: list[ProjectHealth]) -> list[_Conversation]:
    """Each project's messages grouped by conversation, in the order they come."""
    groups: dict[tuple[int, str], list[MessageCheck]] = {}
    labels: dict[int, str] = {}
    for index, project in enumerate(projects):
        labels[index] = project.label
        for message in project.messages:
            groups.setdefault((index, message.conversation), []).append(message)
    return [_Conversation(labels[index], name, tuple(messages))
            for (index, name), messages in groups.items()]


def _html_exchange(message: MessageCheck) -> str:
    if message.results is None:
        answer = "<p class=\"muted\">Not sent yet: nothing to judge.</p>"
        checks = ""
    else:
        answer = (f"<div class=\"answer\" dir=\"auto\">{_h(message.answer or '')}</div>"
                  if message.answer is not None else "<p class=\"muted\">No answer kept.</p>")
        rows = "".join(
            f"<tr class=\"{_STATUS_CLASS[r.status]}\"><td>{_h(r.key)}</td>"
            f"<td><bdi>{_h(r.expected)}</bdi></td><td class=\"status\">{_h(r.status.value)}</td>"
            f"<td><bdi>{_h(r.reason)}</bdi></td></tr>" for r in message.results)
        checks = ("<table class=\"checks\"><thead><tr><th>Check</th><th>Expected</th>"
                  f"<th>Status</th><th>Why</th></tr></thead><tbody>{rows}</tbody></table>")
    return (f"<div class=\"exchange\"><div><p class=\"prompt\" dir=\"auto\">"
            f"{_h(message.prompt)}</p>{answer}</div><div>{checks}</div></div>\n")


def _h(text: str | None) -> str:
    """`text` as HTML text: escaped, line ends made newlines, and each character of
    `_SHOWN_AS_CODE` written as its code point, marked."""
    text = (text or "").replace("\r\n", "\n")
    out, last = [], 0
    for match in _SHOWN_AS_CODE.finditer(text):
        out.append(html.escape(text[last:match.start()], quote=True))
        out.append(f"<span class=\"code\">U+{ord(match[0]):04X}</span>")
        last = match.end()
    out.append(html.escape(text[last:], quote=True))
    return "".join(out)
