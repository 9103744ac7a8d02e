"""Answer checks rendered: text, JSON (schemas/health.schema.json) and JUnit XML (one
testsuite per project, one testcase per expectation), with the checks that flipped since a
baseline (`Flip`, from `reconciler.plan.health.flips`) where a reader looks for them; and a
report read back from its JSON (`from_dict`), for a baseline. Pure."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from reconciler.plan.health import CheckResult, Flip, MessageCheck, ProjectHealth, Status
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


def as_junit(projects: list[ProjectHealth], flips: tuple[Flip, ...] = ()) -> str:
    """The checks as JUnit XML: a testsuite per project, a testcase per expectation named by
    conversation and prompt (classname: the project), a failure with its reason; a prompt
    not sent yet is a skipped testcase. Characters XML 1.0 cannot hold are dropped. `flips`
    are not shown (a CI reporter reads the testcases' own status)."""
    root = ET.Element("testsuites", name="reconciler check")
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
