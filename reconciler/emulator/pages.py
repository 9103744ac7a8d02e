"""Read-only HTML pages of the emulator's data, for people: projects, a project's conversations,
a conversation's transcript; with a health file (`reconciler.emulator.health`), each
conversation's answer checks as a badge and the checks beside each message they judged.

Server-rendered and usable without JavaScript. Every value from the database is escaped, and the
Content-Security-Policy allows no script at all and only the page's own stylesheet, so a
conversation named `<script>…` shows as text and could not run even if escaping failed. The
pages need no API key: they are served only on a loopback address and only to requests
addressed to one. They are never subject to injected faults and not counted as API requests.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlsplit

from reconciler.api.settings import is_loopback
from reconciler.emulator import wire
from reconciler.emulator.health import Health, HealthSource, MessageHealth
from reconciler.emulator.store import ME, ConversationQuery, Listing, Store
from reconciler.emulator.wire import ApiProblem, Request, Response

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem;
       color: #1d1d1f; background: #fff; }
header { border-bottom: 1px solid #ddd; margin-bottom: 1rem; padding-bottom: .5rem; }
nav.crumbs a, nav.pages a { margin-right: .5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #eee;
         vertical-align: top; overflow-wrap: anywhere; }
th { background: #f6f6f7; overflow-wrap: normal; }
td.number, th.number { text-align: right; }
.muted { color: #666; }
.exchange { border: 1px solid #e3e3e6; border-radius: 6px; margin: .75rem 0;
            padding: .5rem .75rem; }
.prompt, .answer { white-space: pre-wrap; overflow-wrap: anywhere; margin: .25rem 0; }
.prompt { font-weight: 600; }
nav.pages { margin: 1rem 0; }
.badge { display: inline-block; border-radius: 9px; padding: 0 .5rem; font-size: .85rem;
         font-weight: 600; white-space: nowrap; }
.badge.failed, tr.failed td.status { background: #fde7e9; color: #a4161a; }
.badge.passed, tr.passed td.status { background: #e6f4ea; color: #1e6b34; }
.badge.pending, tr.not-checked td.status { background: #f1f1f3; color: #555; }
.exchange.judged { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr);
                   gap: .75rem; }
.exchange.judged > .muted { grid-column: 1 / -1; margin: 0; }
table.checks { font-size: .9rem; table-layout: fixed; }
table.checks th:nth-child(1) { width: 22%; }
table.checks th:nth-child(2) { width: 24%; }
table.checks th:nth-child(3) { width: 14%; }
.problem { color: #a4161a; }
""".strip()

_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode("utf-8")).digest()).decode("ascii")

# No script, no image, no frame, no form, no plugin: only the inline stylesheet above.
CONTENT_SECURITY_POLICY = (f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; "
                           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_ROOT = re.compile(r"/?")
_PROJECT = re.compile(r"/projects/(?P<project>[^/]+)/?")
_TRANSCRIPT = re.compile(r"/projects/(?P<project>[^/]+)/conversations/(?P<session>[^/]+)/?")

CREATOR_KINDS = {ME: "you", None: "visitor"}  # any other user is a team member


def is_page(path: str) -> bool:
    """True for the paths these pages answer (everything else is the API's)."""
    return any(pattern.fullmatch(path) for pattern in (_ROOT, _PROJECT, _TRANSCRIPT))


def handle(store: Store, page_size: int, request: Request,
           health: HealthSource | None = None) -> Response:
    """The page for a GET (or HEAD) of one of the `is_page` paths, with the answer checks of
    `health` (None: none); errors as HTML pages too."""
    try:
        if not _addressed_to_loopback(request):
            raise ApiProblem(403, "These pages answer only requests addressed to localhost or a "
                                  "loopback address")
        if request.method not in ("GET", "HEAD"):
            raise ApiProblem(405, f"This page is read-only: {request.method} is not allowed",
                             headers={"Allow": "GET, HEAD"})
        view = _Views(store, page_size, request, None if health is None else health.read())
        if _ROOT.fullmatch(request.path):
            return _page(200, *view.projects())
        match = _PROJECT.fullmatch(request.path)
        if match is not None:
            return _page(200, *view.conversations(match["project"]))
        match = _TRANSCRIPT.fullmatch(request.path)
        if match is not None:
            return _page(200, *view.transcript(match["project"], match["session"]))
        raise ApiProblem(404, "No such page")
    except ApiProblem as problem:
        return error_page(problem)


def error_page(problem: ApiProblem) -> Response:
    """A refused request as an HTML page: its status, its message and a link to the start."""
    body = f"<p>{_e(problem.message)}</p>\n<p><a href=\"/\">All projects</a></p>"
    return _page(problem.status, f"Error {problem.status}", [], body, problem.headers)


Crumbs = list[tuple[str, str]]


class _Views:
    """The three pages, each as (title, breadcrumbs, body HTML)."""

    def __init__(self, store: Store, page_size: int, request: Request,
                 health: Health | None) -> None:
        self.store = store
        self.health = health
        self.page_size = page_size
        self.page = wire.page_number(request.query)
        self.path = request.path

    def projects(self) -> tuple[str, Crumbs, str]:
        listing = self.store.list_projects(order="asc", limit=self.page_size,
                                           offset=self._offset())
        rows = []
        for project in listing.rows:
            count = self.store.list_conversations(
                ConversationQuery(project_id=project["id"]), limit=0, offset=0).total
            rows.append([_link(f"/projects/{project['id']}", project["name"]),
                         _e(project["id"]), _number(count), _e(project["created_at"])])
        table = _table(["Project", "Id", ("Conversations", "number"), "Created (UTC)"], rows,
                       empty=_empty(listing, "No projects yet: apply a desired-state file to "
                                             "create some."))
        intro = ("<p class=\"muted\">A read-only view of the emulator's data. Reload the page "
                 "to see changes.</p>" + self._health_note())
        return "Projects", [], intro + table + self._pager(listing, "projects")

    def conversations(self, raw_project: str) -> tuple[str, Crumbs, str]:
        project = self._project(raw_project)
        listing = self.store.list_conversations(ConversationQuery(project_id=project["id"]),
                                                limit=self.page_size, offset=self._offset())
        rows = []
        judged = self._judged()
        for conversation in listing.rows:
            messages = self.store.list_messages(conversation["id"], order="asc", limit=0,
                                                offset=0).total
            href = f"/projects/{project['id']}/conversations/{quote(conversation['session_id'])}"
            row = [_link(href, conversation["name"]),
                   _e(creator_kind(conversation["created_by"])),
                   _e(conversation["created_at"]), _number(messages),
                   f"<code>{_e(conversation['session_id'])}</code>"]
            if judged is not None:
                row.append(badge(judged.of(project["id"], conversation["session_id"])))
            rows.append(row)
        headings: list[str | tuple[str, str]] = [
            "Conversation", "Created by", "Created (UTC)", ("Messages", "number"), "Session id"]
        if judged is not None:
            headings.append("Answer checks")
        table = _table(headings, rows,
                       empty=_empty(listing, "No conversations in this project."))
        heading = (f"<p class=\"muted\">Project {_e(project['id'])}, newest first.</p>"
                   + self._health_note())
        return (project["name"], [("/", "Projects")],
                heading + table + self._pager(listing, "conversations"))

    def transcript(self, raw_project: str, session: str) -> tuple[str, Crumbs, str]:
        project = self._project(raw_project)
        conversation = self.store.get_conversation(project["id"], session)
        if conversation is None:
            raise ApiProblem(404, f"Conversation with session id {session} not found")
        listing = self.store.list_messages(conversation["id"], order="asc",
                                           limit=self.page_size, offset=self._offset())
        facts = (f"<p class=\"muted\">Created by {_e(creator_kind(conversation['created_by']))}"
                 f" at {_e(conversation['created_at'])} UTC · session "
                 f"<code>{_e(conversation['session_id'])}</code> · "
                 f"{_number(listing.total)} message(s), oldest first</p>")
        judged = self._judged()
        declared = () if judged is None else judged.of(project["id"], session)
        checks = {m.message_id: m for m in declared if m.message_id is not None}
        exchanges = "".join(_exchange(message, checks.get(message["id"]))
                            for message in listing.rows)
        if not listing.rows:
            exchanges = f"<p>{_e(_empty(listing, 'No messages yet.'))}</p>\n"
        if judged is not None:
            facts += f"<p>Answer checks: {badge(declared)}</p>" + _not_sent(declared)
        facts += self._health_note()
        crumbs = [("/", "Projects"), (f"/projects/{project['id']}", project["name"])]
        return (conversation["name"], crumbs,
                facts + exchanges + self._pager(listing, "messages"))

    def _judged(self) -> Health | None:
        """The answer checks to show (None: no health file, or one that cannot be shown)."""
        return None if self.health is None or self.health.problem else self.health

    def _health_note(self) -> str:
        """Where the answer checks come from and when they were judged, or why they are not
        shown."""
        health = self.health
        if health is None:
            return ""
        if health.problem:
            return (f"<p class=\"problem\">The answer checks in {_e(health.source)} cannot be "
                    f"shown: {_e(health.problem)}</p>")
        return (f"<p class=\"muted\">Answer checks as judged at {_e(health.written)} UTC "
                f"(from {_e(health.source)}; <code>reconciler check --sandbox</code> judges "
                "them again).</p>")

    def _project(self, raw: str) -> dict[str, Any]:
        project_id = wire.bounded_number(raw, wire.MAX_ID)
        project = self.store.get_project(project_id) if project_id is not None else None
        if project is None:
            raise ApiProblem(404, f"Project {raw[:40]} not found")
        return project

    def _offset(self) -> int:
        return (self.page - 1) * self.page_size

    def _pager(self, listing: Listing, noun: str) -> str:
        """First, previous, next and last links, as the API's page URLs are made."""
        last = max(1, math.ceil(listing.total / self.page_size))
        if last == 1 and self.page == 1:
            return ""

        def link(number: int, text: str, rel: str) -> str:
            return f"<a href=\"{_e(self.path)}?page={number}\" rel=\"{rel}\">{text}</a>"

        parts = [link(1, "&laquo; First", "first")]
        if self.page > 1:
            parts.append(link(min(self.page - 1, last), "&lsaquo; Previous", "prev"))
        parts.append(f"<span>Page {self.page} of {last} ({_number(listing.total)} {noun})"
                     "</span>")
        if self.page < last:
            parts.append(link(self.page + 1, "Next &rsaquo;", "next"))
        parts.append(link(last, "Last &raquo;", "last"))
        return "<nav class=\"pages\">" + " ".join(parts) + "</nav>\n"


def badge(messages: tuple[MessageHealth, ...]) -> str:
    """A conversation's answer checks in one badge: how many failed, passed, or not sent."""
    if not messages:
        return "<span class=\"muted\">none declared</span>"
    statuses = [c.status for m in messages for c in m.checks or ()]
    failed = statuses.count("failed")
    unsent = sum(m.checks is None for m in messages)
    if failed:
        return f"<span class=\"badge failed\">✗ {failed} of {len(statuses)} failed</span>"
    if unsent:
        return f"<span class=\"badge pending\">{unsent} not sent yet</span>"
    return f"<span class=\"badge passed\">✓ {statuses.count('passed')} passed</span>"


_STATUS_CLASS = {"passed": "passed", "failed": "failed", "not checked": "not-checked"}


def _exchange(message: dict[str, Any], judged: MessageHealth | None) -> str:
    """One prompt and its answer; beside it, the checks that judged that answer."""
    said = (f"<p class=\"prompt\">{_e(message['user_query'])}</p>"
            f"<p class=\"answer\">{_e(message['openai_response'])}</p>")
    when = f"<p class=\"muted\">{_e(message['created_at'])} UTC</p>"
    if judged is None or judged.checks is None:
        return f"<section class=\"exchange\">{when}{said}</section>\n"
    rows = "".join(f"<tr class=\"{_STATUS_CLASS[c.status]}\"><td>{_e(c.key)}</td>"
                   f"<td>{_e(c.expected)}</td><td class=\"status\">{_e(c.status)}</td>"
                   f"<td>{_e(c.reason)}</td></tr>" for c in judged.checks)
    table = ("<table class=\"checks\"><thead><tr><th>Check</th><th>Expected</th>"
             f"<th>Status</th><th>Why</th></tr></thead><tbody>{rows}</tbody></table>")
    return (f"<section class=\"exchange judged\">{when}<div>{said}</div>"
            f"<div>{table}</div></section>\n")


def _not_sent(declared: tuple[MessageHealth, ...]) -> str:
    """The declared prompts with checks that this conversation has not been sent yet."""
    waiting = [m.prompt for m in declared if m.checks is None]
    if not waiting:
        return ""
    return ("<p class=\"muted\">Declared with checks, not sent yet:</p><ul class=\"unsent\">"
            + "".join(f"<li>{_e(prompt)}</li>" for prompt in waiting) + "</ul>")


def _addressed_to_loopback(request: Request) -> bool:
    """True when the Host header names a loopback address, so that a web site whose name was
    made to point at 127.0.0.1 (DNS rebinding) cannot read the pages."""
    try:
        host = urlsplit("//" + request.headers.get("host", "")).hostname
    except ValueError:
        return False
    return host is not None and is_loopback(host)


def _empty(listing: Listing, none_at_all: str) -> str:
    """What an empty page says: nothing there at all, or a page past the last one."""
    return "Nothing on this page: it is past the last one." if listing.total else none_at_all


def creator_kind(created_by: str | None) -> str:
    """Who made a conversation, as a person reads it: you, a team member, or a visitor."""
    return CREATOR_KINDS.get(created_by, "team member")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(value: int) -> str:
    return f"{value:,}"


def _link(href: str, text: object) -> str:
    return f"<a href=\"{_e(href)}\">{_e(text)}</a>"


def _table(headings: Iterable[str | tuple[str, str]], rows: list[list[str]], *,
           empty: str) -> str:
    """A table of ready-made (escaped) cells; a heading may be (title, CSS class)."""
    if not rows:
        return f"<p>{_e(empty)}</p>\n"
    columns = [(heading, "") if isinstance(heading, str) else heading for heading in headings]

    def css(name: str) -> str:
        return f" class=\"{name}\"" if name else ""

    head = "".join(f"<th{css(kind)}>{_e(title)}</th>" for title, kind in columns)
    body = "".join("<tr>" + "".join(f"<td{css(kind)}>{value}</td>" for (_, kind), value
                                    in zip(columns, row, strict=True)) + "</tr>\n"
                   for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"


def _page(status: int, title: str, crumbs: Crumbs, body: str,
          headers: dict[str, str] | None = None) -> Response:
    trail = "".join(f"{_link(href, text)} &rsaquo; " for href, text in crumbs)
    document = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} · reconciler emulator</title>
<style>{_STYLE}</style>
</head>
<body>
<header><nav class="crumbs">{trail}<strong>{_e(title)}</strong></nav></header>
<main>
<h1>{_e(title)}</h1>
{body}</main>
</body>
</html>
"""
    return Response(status, document.encode("utf-8"), content_type="text/html",
                    headers={**_HEADERS, **(headers or {})})
