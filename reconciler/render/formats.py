"""Renderers: pure functions from a Plan (or an apply report) to text.

`text` is Terraform-like (`+` create, `~` rename, `>` send, `*` react, `-` delete), coloured
only when the caller says so; `json` is the versioned machine form; `markdown` fits a
pull-request comment. A project's notes (what is declared that the plan does not change)
follow its warnings in each.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from reconciler.gcpause import collection_paused
from reconciler.jsonio import pretty
from reconciler.plan.budget import budget_line
from reconciler.plan.model import NOT_DECLARED, LiveRead, Plan, ProjectPlan
from reconciler.plan.operations import SUMMARY_ORDER
from reconciler.text import shown, terminal_safe

MARKDOWN_LIMIT = 60_000


def paint(text: str, code: str, *, color: bool) -> str:
    """`text` in ANSI colour `code` when `color` (made terminal-safe first), else unchanged."""
    return f"\x1b[{code}m{terminal_safe(text)}\x1b[0m" if color else text


def render_json(plan: Plan) -> str:
    """The plan's JSON form, indented, with a trailing newline."""
    with collection_paused():
        return pretty(plan.to_dict())


def summary_line(plan: Plan) -> str:
    """`Plan: 1 to create, 2 to rename, 0 to send, 0 to react, 1 to delete.` or `No
    changes.` and what that means: live conversations match the declared state, or some are
    not declared and left alone (prune off), or those not declared were not read (prune off,
    looked up by name)."""
    if not plan.has_changes:
        return "No changes. " + _unchanged(plan)
    counts = plan.summary()
    return "Plan: " + ", ".join(
        f"{counts[kind.action.value]} to {kind.action.value}" for kind in SUMMARY_ORDER
    ) + "."


def _unchanged(plan: Plan, limit: int = 3) -> str:
    undeclared = [u.name for p in plan.projects for u in p.unmanaged if u.why == NOT_DECLARED]
    if undeclared:
        count = len(undeclared)
        names = ", ".join(shown(name) for name in undeclared[:limit])
        if count > limit:
            names += f" and {count - limit} more"
        them = ("conversation is not declared and is" if count == 1 else
                "conversations are not declared and are")
        return f"{count} {them} left alone (prune is off): {names}"
    matching = "Live conversations match the declared state."
    if any(p.live_read is LiveRead.BY_NAME for p in plan.projects):
        return matching[:-1] + ("; those not declared were not read (prune is off: the "
                                "declared names were looked up).")
    return matching


def render_text(
    plan: Plan, *, color: bool = False, verbose: bool = False, rate: float | None = None,
    checks_line: str | None = None,
) -> str:
    """The Terraform-like plan for a terminal or a CI log; `rate` (requests per minute, the
    pace of the run) says how long applying takes; `checks_line`, the answer checks of what
    is stored, follows the summary."""
    with collection_paused():
        return _text(plan, color=color, verbose=verbose, rate=rate, checks_line=checks_line)


def _text(plan: Plan, *, color: bool, verbose: bool, rate: float | None,
          checks_line: str | None = None) -> str:
    """Every line terminal-safe: the only escape sequences are the colours painted here."""
    lines: list[str] = []
    for project in plan.projects:
        lines.extend(_text_project(project, color=color, verbose=verbose))
        lines.append("")
    for error in plan.errors:
        lines.append(paint(f"Error: {error}", "31", color=color))
    if plan.all_errors:
        lines.append(paint(
            f"Planning failed with {len(plan.all_errors)} error(s); nothing can be applied.",
            "1;31", color=color,
        ))
    else:
        lines.append(paint(summary_line(plan), "1", color=color))
    if checks_line:
        lines.append(checks_line)
    if plan.budget is not None:
        lines.append(budget_line(plan.budget, rate=rate))
    text = "\n".join(lines) + "\n"
    return text if color else terminal_safe(text)


def _live_count(project: ProjectPlan) -> str:
    if project.live_read is LiveRead.BY_NAME:
        return (f"{project.live_in_scope} live in scope with a declared name "
                "(prune is off: looked up by name)")
    return f"{project.live_in_scope} live in scope"


_PRUNES_OWNED = "prune deletes only what is declared or matches owns"


def _text_project(project: ProjectPlan, *, color: bool, verbose: bool) -> list[str]:
    head = f"Project {project.display_name}, scope {project.scope}: {_live_count(project)}"
    lines = [paint(head, "1", color=color)]
    for op in project.operations:
        lines.append("  " + paint(f"{op.symbol} {op.describe()}", op.color, color=color))
        if verbose:
            lines.append(terminal_safe(f"      because {op.reason}; requires {op.requirement}"))
    if project.unmanaged:
        lines.append(f"  {len(project.unmanaged)} conversation(s) in scope left alone"
                     + ("" if verbose else " (-v lists them)"))
        if verbose:
            lines.extend(terminal_safe(f"    = {shown(u.name)}  ({u.session_id}): {u.why}")
                         for u in project.unmanaged)
    if project.not_owned:
        lines.append(f"  {project.not_owned} of them not owned by this repository: "
                     f"{_PRUNES_OWNED}")
    if not project.operations and not project.errors:
        lines.append("  no changes")
    lines.extend("  " + paint(f"Warning: {w}", "33", color=color) for w in project.warnings)
    lines.extend(f"  Note: {note}" for note in project.notes)
    lines.extend("  " + paint(f"Error: {e}", "31", color=color) for e in project.errors)
    return lines


def render_markdown(plan: Plan, *, limit: int = MARKDOWN_LIMIT, full_plan_hint: str = "",
                    checks_line: str | None = None) -> str:
    """A pull-request comment: summary table, then a collapsible section per project;
    `checks_line` (the answer checks of what is stored: words the caller writes, not
    escaped) follows the summary.

    Past `limit` characters the per-project sections are cut; the summary stays, with how many
    operations were left out and `full_plan_hint` (where the full plan is: markdown the caller
    writes, not escaped). Every value from the user's files, a saved plan or the API is written
    through `markdown_safe`, and the operations in a fence no line of theirs can close.
    """
    head = _markdown_head(plan, checks_line)
    sections = [_markdown_project(p) for p in plan.projects]
    body, shown = head, 0
    for section in sections:
        if len(body) + len(section) > limit - 500:
            break
        body += section
        shown += 1
    if shown < len(sections):
        left_out = sum(len(p.operations) for p in plan.projects[shown:])
        body += (f"\n> **Truncated:** {len(sections) - shown} project(s) with {left_out} "
                 f"operation(s) are not shown here. {full_plan_hint}".rstrip() + "\n")
    return body


def _markdown_head(plan: Plan, checks_line: str | None = None) -> str:
    counts = plan.summary()
    lines = ["### reconciler plan", ""]
    if plan.all_errors:
        lines += ["**Planning failed: nothing can be applied.**", ""]
        lines += [f"- :x: {markdown_safe(e, limit=MESSAGE_LIMIT)}" for e in plan.all_errors]
        lines += [""]
    else:
        lines += [markdown_safe(summary_line(plan), limit=MESSAGE_LIMIT), ""]
    if checks_line:
        lines += [checks_line, ""]
    if plan.budget is not None:
        lines += [budget_line(plan.budget), ""]
    actions = [kind.action for kind in SUMMARY_ORDER]
    lines += ["| project | " + "".join(f"{a.value} | " for a in actions) + "unmanaged |",
              "|---|" + "---:|" * (len(actions) + 1)]
    for p in plan.projects:
        c = Counter(op.action for op in p.operations)
        lines.append(f"| {_markdown_name(p)} | "
                     + "".join(f"{c[a]} | " for a in actions) + f"{len(p.unmanaged)} |")
    lines.append("| **total** | " + "".join(f"{counts[a.value]} | " for a in actions)
                 + f"{counts['unmanaged']} |")
    lines.append(f"\n<sub>checksum `{plan.checksum}`</sub>\n")
    return "\n".join(lines) + "\n"


def _markdown_project(project: ProjectPlan) -> str:
    n = len(project.operations)
    lines = ["<details>",
             f"<summary><b>{_markdown_name(project)}</b>: {n} change(s), "
             f"scope {markdown_safe(project.scope)}, {_live_count(project)}</summary>", ""]
    lines.extend(f"- :warning: {markdown_safe(w, limit=MESSAGE_LIMIT)}"
                 for w in project.warnings)
    lines.extend(f"- :x: {markdown_safe(e, limit=MESSAGE_LIMIT)}" for e in project.errors)
    if project.not_owned:
        lines.append(f"- {project.not_owned} conversation(s) in scope not owned by this "
                     f"repository are left alone: {_PRUNES_OWNED}")
    lines.extend(f"- :information_source: {markdown_safe(note, limit=MESSAGE_LIMIT)}"
                 for note in project.notes)
    if project.operations:
        operations = [_one_line(f"{op.symbol} {op.describe()}", limit=MESSAGE_LIMIT)
                      for op in project.operations]
        fence = _code_fence(operations)
        lines += ["", fence + "diff", *operations, fence]
    elif not project.errors:  # after a list, a blank line: not a line of its last item
        lines += [*([""] if lines[-1] else []), "No changes."]
    lines += ["", "</details>", ""]
    return "\n".join(lines) + "\n"


def _markdown_name(project: ProjectPlan) -> str:
    """The project's `label (id)` (or id) as markdown: the label cut, the id always shown."""
    if not project.label:
        return str(project.project_id)
    return f"{markdown_safe(project.label)} ({project.project_id})"


# Markdown that GitHub and GitLab render: a value written through `markdown_safe` is text
# wherever it stands in a line (a table cell, a list item, inside <summary>), and nothing else.
NAME_LIMIT = 200  # characters of a value shown; the rest is cut, with an ellipsis
MESSAGE_LIMIT = 1000
_LINE_BREAKS = re.compile("\r\n|[\n\r\t\v\f\x1c-\x1e\x85\u2028\u2029]")
_ENTITIES = {ch: f"&#{ord(ch)};" for ch in "\\`*_[]|~$!"} | {
    "&": "&amp;", "<": "&lt;", ">": "&gt;"}
_ZWSP = "\u200b"
# After these, a zero-width space: no @mention, #123 reference, :emoji: or scheme:// link.
_BROKEN_AFTER = {"@": "@" + _ZWSP, "#": "#" + _ZWSP, ":": ":" + _ZWSP}
_WWW = re.compile("(w)(ww\\.)", re.IGNORECASE)  # www.host autolinks


def markdown_safe(text: str, *, limit: int = NAME_LIMIT) -> str:
    """`text` (a label, a name, an error, from the user's files or the API) as inline
    markdown that shows it and only it: one line, at most `limit` characters of it (then
    `…`), control and format characters written as `\\uXXXX`, the characters markdown or
    HTML read as syntax written as HTML character references (which markdown and HTML both
    show as text: no link, image, emphasis, table cell or tag), and a zero-width space after
    `@`, `#` and `:` and inside `www.`, so that GitHub makes no mention, reference, emoji or
    autolink of it. The same text is safe in a markdown line and inside an HTML element."""
    if len(text) > limit:
        text = text[:limit] + "…"
    text = _LINE_BREAKS.sub(" ", text)
    out = []
    for ch in text:
        if ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif ch in _BROKEN_AFTER:
            out.append(_BROKEN_AFTER[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(f"&#92;u{ord(ch):04x}" if ord(ch) < 0x10000 else f"&#92;U{ord(ch):08x}")
        else:
            out.append(ch)
    return _WWW.sub(lambda m: m[1] + _ZWSP + m[2], "".join(out))


def _code_fence(lines: list[str]) -> str:
    """A backtick fence longer than any run of backticks in `lines`: no line can close it."""
    longest = max((len(run) for line in lines for run in re.findall("`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _one_line(text: str, *, limit: int) -> str:
    """`text` cut to `limit` characters, its line breaks written as spaces."""
    return _LINE_BREAKS.sub(" ", text[:limit] + "…" if len(text) > limit else text)
