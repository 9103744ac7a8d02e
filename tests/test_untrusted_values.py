"""Values from the API and from saved files are untrusted: odd numbers, hostile session ids,
absurd nesting and control characters end in a located error (exit 1) or are escaped, never
in a traceback, a file outside --backup-dir or raw escape sequences on the terminal.

Answers the emulator cannot give come from an injected httpx.MockTransport; everything else
runs against the emulator."""

from __future__ import annotations

import asyncio
import http
import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.api.client import Client, ClientSettings, RetryPolicy, Secret
from reconciler.api.decoding import parse_message
from reconciler.api.live import CitedSource, Conversation, Transcript
from reconciler.apply.backup import write_backup
from reconciler.apply.run import ApplyOptions, ApplyReport, apply_plan
from reconciler.desired.loader import load_desired
from reconciler.desired.model import Reaction
from reconciler.errors import ApiError
from reconciler.plan.guards import GuardLimits
from reconciler.plan.make import make_plan
from reconciler.plan.model import Plan
from tests.workspace import PROJECT, Workspace

KEY = "untrusted-key-0123456789"
DEEP = "[" * 100_000 + "]" * 100_000


def _conversation(**fields: Any) -> dict[str, Any]:
    base = {"id": 1, "session_id": "0b6f4a2e-1b2c-4d3e-8f40-5a6b7c8d9e0f", "name": "c",
            "project_id": "4242", "created_by": "1", "created_at": "2024-01-01 00:00:00",
            "updated_at": "2024-01-01 00:00:00"}
    return {**base, **fields}


def _page(**fields: Any) -> dict[str, Any]:
    base = {"current_page": 1, "data": [_conversation()], "per_page": 10, "total": 1,
            "last_page": 1}
    return {**base, **fields}


def _listing_answer(body: bytes, requests: list[httpx.Request] | None = None) -> ApiError:
    """The error `list_conversations` raises when every page answers `body` (the requests it
    made are added to `requests`)."""

    def handle(request: httpx.Request) -> httpx.Response:
        if requests is not None:
            requests.append(request)
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    async def main() -> None:
        settings = ClientSettings(api_key=Secret(KEY), base_url="http://127.0.0.1:9",
                                  retry=RetryPolicy(max_attempts=1))
        async with Client(settings, transport=httpx.MockTransport(handle)) as client:
            await client.list_conversations(4242)

    with pytest.raises(ApiError) as caught:
        asyncio.run(main())
    return caught.value


def _envelope(data: Any) -> bytes:
    return json.dumps({"status": "success", "data": data}).encode()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_envelope(_page(total="²")), "'total' of the conversation list is a string"),
        (_envelope(_page(total="٣")), "'total' of the conversation list is a string"),
        (b'{"status": "success", "data": {"current_page": 1, "data": [], "per_page": 10, '
         b'"last_page": 1, "total": 1' + b"0" * 5000 + b"}}", "not valid JSON"),
        (_envelope(_page(total=10**30)), "'total' of the conversation list is a number"),
        (_envelope(_page(total=1.0)), "'total' of the conversation list is a number"),
        (_envelope(_page(total=True)), "'total' of the conversation list is a boolean"),
        (_envelope(_page(current_page=-1)), "'current_page' of the conversation list is out of"),
        (_envelope(_page(per_page="-10")), "'per_page' of the conversation list is a string"),
        (_envelope(_page(data=[_conversation(id=-5)])), "'id' of a conversation is out of range"),
        (DEEP.encode(), "not valid JSON"),
        (_envelope({"a": json.loads("[" * 500 + "]" * 500)}), "nested deeper than 64"),
        (b'{"status": "success", "data": "\\ud800"}', "not valid JSON"),
        (b'{"status": "success", "data": NaN}', "not valid JSON"),
    ],
    ids=["superscript-digit", "arabic-digit", "5000-digits", "huge-int", "float", "boolean",
         "negative-page", "negative-string", "negative-id", "nested-100000", "nested-500",
         "lone-surrogate", "nan"],
)
def test_odd_numbers_and_nesting_in_an_answer_are_reported(body: bytes, expected: str) -> None:
    error = _listing_answer(body)
    assert "listing conversations of project 4242 failed" in str(error)
    assert expected in str(error)


@pytest.mark.parametrize(
    "session_id",
    ["../../../../x", "/etc/passwd", "a/b", ".", "..", "x\x00y", "x" * 129, "\x1b[2J", "",
     " 0b6f4a2e", "ünïcode"],
    ids=["traversal", "absolute", "slash", "dot", "dotdot", "nul", "too-long", "escape",
         "empty", "space", "non-ascii"],
)
def test_a_session_id_that_is_not_one_fails_the_listing(session_id: str) -> None:
    error = _listing_answer(_envelope(_page(data=[_conversation(session_id=session_id)])))
    assert "'session_id' of a conversation is not a valid session id" in str(error)
    if session_id:
        assert session_id not in str(error)


@pytest.mark.parametrize(
    "session_id", ["../../x", "/tmp/absolute", "x\x00y", "s" * 5000, ".."],
    ids=["traversal", "absolute", "nul", "very-long", "dotdot"])
def test_backups_never_leave_the_backup_directory(tmp_path: Path, session_id: str) -> None:
    backups = tmp_path / "deep" / "backups"
    conversation = Conversation(id=1, session_id=session_id, name="x", project_id=4242,
                                created_by="1", created_at="", updated_at="")
    with pytest.raises(OSError, match="cannot be used in a file name"):
        write_backup(backups, 4242, Transcript(conversation=conversation, messages=()))
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


def _saved_plan(ws: Workspace) -> dict[str, Any]:
    ws.seed("Stray")
    ws.seed("Kept")
    ws.declare_pruned("[{name: Kept}]")
    out = ws.path / "plan.json"
    assert ws.plan("--out", str(out)).code == 0
    document: dict[str, Any] = json.loads(out.read_text())
    return document


def test_a_saved_plan_with_a_hostile_session_id_is_refused(ws: Workspace) -> None:
    document = _saved_plan(ws)
    for op in document["projects"][0]["operations"]:
        op["session_id"] = op["precondition"]["session_id"] = "../../../../escaped"
    hostile = ws.path / "hostile.json"
    hostile.write_text(json.dumps(document))
    result = ws.run("apply", "--plan", str(hostile), "--auto-approve",
                    "--backup-dir", str(ws.path / "backups"))
    assert result.code == 1
    assert "holds a session id that is not one" in result.err
    assert ws.names() == ["Kept", "Stray"]
    assert not (ws.path.parent / "escaped.json").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (DEEP, "not valid JSON: depth limit exceeded"),
        ("[" * 200 + "]" * 200, "nested deeper than 64 levels"),
        ('{"format_version": 1' + "0" * 5000 + "}", "not valid JSON"),
        ("\udcff", "not valid JSON"),
    ],
    ids=["nested-100000", "nested-200", "5000-digits", "not-utf8"],
)
@pytest.mark.parametrize("command", ["show", "apply", "restore"])
def test_hostile_plan_and_backup_files_are_located_errors(
    ws: Workspace, command: str, content: str, expected: str
) -> None:
    path = ws.path / "hostile.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    args = {"show": ["show", str(path)], "restore": ["restore", str(path)],
            "apply": ["apply", "--plan", str(path), "--auto-approve"]}[command]
    result = ws.run(*args)
    assert result.code == 1
    what = "backup" if command == "restore" else "plan"
    assert result.err.startswith(f"error: {path}: not a {what} file: "), result.err
    assert expected in result.err
    assert len(result.err) < 400


def test_a_plan_with_a_project_id_beyond_64_bits_is_refused(ws: Workspace) -> None:
    document = _saved_plan(ws)
    document["projects"][0]["project_id"] = 2**63
    path = ws.path / "big.json"
    path.write_text(json.dumps(document))
    result = ws.run("show", str(path))
    assert result.code == 1
    assert "must be at most 9223372036854775807" in result.err


HOSTILE_NAME = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\rover\x9b1m"


def test_names_from_the_api_never_reach_the_terminal_raw(ws: Workspace) -> None:
    ws.seed(HOSTILE_NAME)
    ws.seed("Doomed " + HOSTILE_NAME)
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            label: "label \\e[5m blinking"
            conversations:
              - name: "kept"
                renamed_from: ["{HOSTILE_NAME.encode('unicode_escape').decode()}"]
    """)
    runs = [ws.plan("-v"), ws.plan("--format", "markdown"), ws.plan("--format", "json"),
            ws.run("export", "--project", str(PROJECT)), ws.apply("-v")]
    for run in runs:
        for text in (run.out, run.err):
            assert not any(c in text for c in "\x1b\x07\r\x9b"), text
    plan_json = json.loads(runs[2].out)
    assert plan_json["projects"][0]["operations"][0]["old_name"] == HOSTILE_NAME
    assert runs[0].code == 0 and runs[-1].code == 0
    assert ws.names() == sorted(["kept", "Doomed " + HOSTILE_NAME])


def test_a_server_message_is_one_short_line() -> None:
    forged = "bad name\nerror: everything was deleted\r\x1b[2J" + "x" * 500

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"status": "error", "data": {"code": 422,
                                                                     "message": forged}})

    async def main() -> None:
        settings = ClientSettings(api_key=Secret(KEY), base_url="http://127.0.0.1:9")
        async with Client(settings, transport=httpx.MockTransport(handle)) as client:
            await client.rename_conversation(4242, "0b6f4a2e-1b2c-4d3e-8f40-5a6b7c8d9e0f", "x")

    with pytest.raises(ApiError) as caught:
        asyncio.run(main())
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message
    phrase = http.HTTPStatus(422).phrase  # "Unprocessable Entity" before Python 3.13
    assert f"HTTP 422 ({phrase}): bad name error: everything was deleted" in message
    assert len(message) < 400


def test_a_host_is_named_as_sent_never_as_a_look_alike() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async def main() -> None:
        look_alike = "https://\u0430\u0440\u0440\u04cf\u0435.com"  # Cyrillic letters
        settings = ClientSettings(api_key=Secret(KEY), base_url=look_alike,
                                  retry=RetryPolicy(max_attempts=1))
        async with Client(settings, transport=httpx.MockTransport(refuse)) as client:
            await client.current_user()

    with pytest.raises(ApiError) as caught:
        asyncio.run(main())
    assert "could not connect to xn--80ak6aa92e.com:443" in str(caught.value)


@pytest.mark.parametrize(("last_page", "total", "per_page"),
                         [(1_000_000, 30, 10), (4, 30, 10), (2, 30, 10), (2, 0, 10)],
                         ids=["a-million-pages", "one-page-too-many", "one-page-short",
                              "pages-of-nothing"])
def test_a_page_count_its_own_total_does_not_give_is_refused_at_once(
        last_page: int, total: int, per_page: int) -> None:
    requests: list[httpx.Request] = []
    error = _listing_answer(_envelope(_page(last_page=last_page, total=total, per_page=per_page)),
                            requests)
    pages = max(1, -(-total // per_page))
    assert str(error) == (
        "listing conversations of project 4242 failed: the API answered with an unexpected body "
        f"(the conversation list claims {last_page} pages for {total} items of {per_page} per "
        f"page ({pages} pages))")
    assert len(requests) == 1  # not the other pages it claims, nor the listing again


# -- answers through a gateway that cannot be trusted ------------------------------------------


class FakeTime:
    """A clock and a sleep that advances it: waits are recorded, never waited."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class Gateway(httpx.AsyncBaseTransport):
    """The emulator behind a gateway that adds `headers` to every answer, and answers a
    `refused` share of the requests itself with a bare 429 (no rate headers)."""

    def __init__(self, headers: list[tuple[bytes, bytes]], refused: float) -> None:
        self.headers, self.refused = headers, refused
        self.draw = random.Random(11)
        self.refusals = 0
        self.network = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.draw.random() < self.refused:
            self.refusals += 1
            return httpx.Response(429, headers=self.headers, json={
                "status": "error", "data": {"code": 429, "message": "Too Many Attempts."}})
        answer = await self.network.handle_async_request(request)
        return httpx.Response(answer.status_code, headers=[*answer.headers.raw, *self.headers],
                              stream=answer.stream, extensions=answer.extensions)

    async def aclose(self) -> None:
        await self.network.aclose()


HOSTILE_HEADERS = [(b"Retry-After", b"Wed, 21 Oct 99999999999999999999 07:28:00 GMT"),
                   (b"X-RateLimit-Limit", b"1"), (b"X-RateLimit-Remaining", b"9" * 40),
                   (b"RateLimit-Policy", b"1;w=3600"), (b"Content-Length", b"-1")]


@pytest.mark.parametrize(("headers", "refused"), [(HOSTILE_HEADERS, 0.0), ([], 0.1)],
                         ids=["hostile-headers", "one-in-ten-refused"])
def test_plan_and_apply_complete_through_a_hostile_gateway(
        ws: Workspace, headers: list[tuple[bytes, bytes]], refused: float) -> None:
    ws.seed("Old")
    ws.seed("Stray")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            owns: [Stray]
            max_delete_fraction: 1
            conversations:
              - name: Kept
                renamed_from: [Old]
              - name: New
                messages: [hello]
    """)
    gateway = Gateway(headers, refused)

    async def plan_apply_plan() -> tuple[Plan, ApplyReport, Plan]:
        desired = load_desired([str(ws.file)], env=ws.env)
        limits = GuardLimits(allow_mass_delete=True)
        fake = FakeTime()
        async with Client(ClientSettings.from_environment(ws.env), transport=gateway,
                          sleep=fake.sleep, clock=fake) as client:
            plan = await make_plan(client, desired, limits=limits)
            report = await apply_plan(
                client, plan, options=ApplyOptions(backup_dir=ws.path / "backups"),
                report=ApplyReport(plan_checksum=plan.checksum))
            return plan, report, await make_plan(client, desired, limits=limits)

    plan, report, again = asyncio.run(plan_apply_plan())
    assert plan.all_errors == () and plan.summary() == {
        "create": 1, "rename": 1, "send": 1, "react": 0, "delete": 1, "unmanaged": 0}
    assert report.failed == [] and len(report.results) == 4
    assert again.operations == () and again.all_errors == ()
    assert ws.names() == ["Kept", "New"]
    assert gateway.refusals >= refused * 10


@pytest.mark.parametrize(
    ("feedback", "expected"),
    [
        ({"reaction": "liked", "user_id": None}, (Reaction.LIKED, True)),
        ({"reaction": None}, (None, True)),
        (None, (None, True)),
        ({"reaction": "Liked"}, (None, False)),
        ({"reaction": "love\x1b[31m"}, (None, False)),
        ({"reaction": 1}, (None, False)),
        ({"reaction": ["liked"]}, (None, False)),
        ("liked", (None, False)),
        ([{"reaction": "liked"}], (None, False)),
        (DEEP, (None, False)),
    ],
    ids=["liked", "cleared", "none", "other-case", "unknown-word", "number", "list", "text",
         "list-of-objects", "deep-text"],
)
def test_a_message_feedback_that_does_not_fit_says_nothing_of_its_reaction(
        feedback: object, expected: tuple[object, bool]) -> None:
    """What the client does not understand of `response_feedback` leaves the message's
    reaction unknown (plans then leave it alone): it never fails a read, a backup or a
    delete, and no odd value reaches a plan."""
    message = parse_message({"id": 3, "user_query": "hi", "openai_response": "a",
                             "created_at": "", "response_feedback": feedback})
    assert (message.reaction, message.reaction_shown) == expected


@pytest.mark.parametrize(("citations", "expected"), [
    ([12061, "12055.0"], (12061, 12055)),
    (["x", True, None, 1.5, "1e400", "-3", [4], {"id": 5}, "9" * 40, 7], (7,)),
    ("12", ()),
    (None, ()),
    (list(range(5000)), tuple(range(1000))),
])
def test_odd_citations_of_a_message_are_skipped(citations: object,
                                                expected: tuple[int, ...]) -> None:
    """A message's citations read as integer ids: the strings of whole numbers some listings
    give are read, anything else is skipped, and a long list is cut, never failing a read."""
    message = parse_message({"id": 3, "user_query": "hi", "openai_response": "a",
                             "created_at": "", "citations": citations})
    assert message.citations == expected


@pytest.mark.parametrize(("settings", "expected"), [
    ({"no_answer_message": "We do not know."}, "We do not know."),
    ({"no_answer_message": None}, None),
    ({"no_answer_message": 12}, None),
    ({"no_answer_message": "   "}, None),
    ({"no_answer_message": "x" * 10_001}, None),
    ({}, None),
])
def test_an_odd_no_answer_message_reads_as_none(settings: dict[str, Any],
                                                expected: str | None) -> None:
    """A project's "I don't know" message that is missing, not text, blank or implausibly long
    reads as none (answer checks then compare with the vendor's default)."""
    from reconciler.api.decoding import parse_no_answer_message

    assert parse_no_answer_message(settings) == expected


@pytest.mark.parametrize(("data", "title", "url"), [
    ({"id": 5, "url": "refunds.md", "title": "Refunds"}, "Refunds", "refunds.md"),
    ({"id": "5", "url": None, "title": 12}, None, None),
    ({"url": ["refunds.md"], "title": {"x": 1}}, None, None),
    ({"id": 5, "url": "   ", "title": "x" * 2_049}, None, None),
    ({"id": 5, "title": "\x1b[2J\u202eRefunds\x00"}, "\x1b[2J\u202eRefunds\x00", None),
], ids=["plain", "null-and-number", "list-and-object", "blank-and-huge", "controls-kept"])
def test_a_cited_source_keeps_only_plausible_text(data: object, title: str | None,
                                                  url: str | None) -> None:
    """A cited source's title and URL are kept where they are plausible text (control
    characters too: what shows them escapes them); anything else reads as missing."""
    from reconciler.api.decoding import parse_cited_source

    assert parse_cited_source(data, 5) == CitedSource(5, title, url)


def _citation_answer(status: int, body: bytes) -> object:
    """What `Client.citation` makes of an API that answers `status` and `body`: the source,
    None, or the error it raised."""

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"Content-Type": "application/json"})

    async def main() -> object:
        settings = ClientSettings(api_key=Secret(KEY), base_url="http://127.0.0.1:9",
                                  retry=RetryPolicy(max_attempts=1))
        async with Client(settings, transport=httpx.MockTransport(handle)) as client:
            try:
                return await client.citation(4242, 5)
            except ApiError as error:
                return error

    return asyncio.run(main())


def test_a_cited_source_that_does_not_fit_is_an_api_error_naming_it() -> None:
    """An answer that is not an object, or that describes another source, is an ApiError
    naming the citation (a check then says it could not be read); a 404 is no source."""
    assert _citation_answer(404, json.dumps(
        {"status": "error", "data": {"code": 404, "message": "Page not found"}}).encode()) is None
    for data, seen in [([1, 2], "is a list, not an object"),
                       ({"id": 6, "title": "Pricing"}, "got an integer (6)"),
                       ("x" * 100, "is a string")]:
        error = _citation_answer(200, _envelope(data))
        assert isinstance(error, ApiError), error
        assert "reading the source of citation 5 in project 4242" in str(error)
        assert seen in str(error)
