"""One API key for the customer's live integration and for reconciler: production creates a
conversation per call as the key's own user (in scope `mine` and `team`), between applies and
while one runs. A series of applies with prune deletes none of them, and still prunes what the
repository dropped from its YAML (only what it declares or `owns`)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest

from tests.workspace import PROJECT, Run, Workspace

REPOSITORY = ["Demo tour", "QA billing", "QA refunds", "QA smoke"]  # declared, all of them


def production_call(http: httpx.Client, project: int, question: str) -> str:
    """What the customer's live integration does on every call with the shared key: one
    `chat/completions` request, which starts a new conversation as the key's own user (the
    emulator names it after the question); the session id of that conversation, looked up for
    the test's own bookkeeping (the answer does not say it)."""
    answer = http.post(f"/api/v1/projects/{project}/chat/completions",
                       json={"messages": [{"role": "user", "content": question}]})
    answer.raise_for_status()
    assert answer.json()["object"] == "chat.completion"
    newest = http.get(f"/api/v1/projects/{project}/conversations",
                      params={"order": "desc", "userFilter": "all"})
    newest.raise_for_status()
    return next(str(c["session_id"]) for c in newest.json()["data"]["data"]
                if c["name"] == question)


def declare(ws: Workspace, scope: str, names: list[str]) -> None:
    conversations = "".join(f"      - name: {name}\n" for name in names)
    ws.declare(f"""\
version: 1
projects:
  - id: {PROJECT}
    scope: {scope}
    prune: true
    owns: ["QA *"]
    conversations:
{conversations}""")


def seed_repository(ws: Workspace) -> str:
    """What earlier applies made, and a QA run the repository no longer declares: its
    session."""
    for name in REPOSITORY:
        ws.seed(name)
    return ws.seed("QA old run")


def alive(ws: Workspace, sessions: list[str]) -> list[str]:
    """The `sessions` still live."""
    live = {c["session_id"] for c in ws.emulator.conversations(PROJECT)}
    return [session for session in sessions if session in live]


@pytest.mark.parametrize("scope", ["mine", "team"])
def test_applies_between_production_calls_prune_only_what_the_repository_dropped(
    ws: Workspace, http: httpx.Client, scope: str
) -> None:
    dropped = seed_repository(ws)
    teammate = ws.seed("Notes of a teammate", creator="teammate")  # in scope under team
    production = [production_call(http, PROJECT, q) for q in (
        "How do I reset my password?", "QA", "qa smoke test", "Demo tour please")]
    declare(ws, scope, REPOSITORY)

    first = ws.apply()
    assert first.code == 0, first.out + first.err
    assert deleted(first) == ["QA old run"]
    not_owned = len(production) + (scope == "team")
    assert f"{not_owned} of them not owned by this repository" in first.out

    production += [production_call(http, PROJECT, q) for q in ("Refunds?", "Smoke QA")]
    declare(ws, scope, [name for name in REPOSITORY if name != "QA refunds"])
    second = ws.apply()
    assert second.code == 0, second.out + second.err
    assert deleted(second) == ["QA refunds"]

    production.append(production_call(http, PROJECT, "Anything new?"))
    third = ws.apply()
    assert third.code == 0, third.out + third.err
    assert "No changes." in third.out
    assert alive(ws, [*production, teammate]) == [*production, teammate]
    assert alive(ws, [dropped]) == []
    assert sorted(c["name"] for c in ws.emulator.conversations(PROJECT)
                  if c["name"] in REPOSITORY) == ["Demo tour", "QA billing", "QA smoke"]


def deleted(run: Run) -> list[str]:
    """The names an apply's plan deletes."""
    return [line.split("'")[1] for line in run.out.splitlines()
            if line.strip().startswith("- delete ")]


@pytest.mark.parametrize("scope", ["mine", "team"])
def test_production_calls_during_applies_are_never_pruned(
    ws: Workspace, http: httpx.Client, scope: str
) -> None:
    """Production calls while apply plans (its listing) and applies (the transcript read for a
    backup, right before each DELETE)."""
    dropped = seed_repository(ws)
    declare(ws, scope, REPOSITORY)
    with ProductionDuringApply(ws, http) as production:
        first = ws.apply()
        assert first.code == 0, first.out + first.err
        assert deleted(first) == ["QA old run"]
        assert "1 of them not owned by this repository" in first.out  # made at its listing
        assert {"listing", "transcript", "delete"} <= set(production.moments)
        before_second = len(production.made)
        declare(ws, scope, [name for name in REPOSITORY if name != "QA refunds"])
        production.next_run()
        second = ws.apply()
        assert second.code == 0, second.out + second.err
        assert deleted(second) == ["QA refunds"]
        assert f"{before_second + 1} of them not owned by this repository" in second.out
    assert len(production.made) >= 6, production.moments
    assert alive(ws, production.made) == production.made
    assert alive(ws, [dropped]) == []
    again = ws.plan("--detailed-exitcode")
    assert again.code == 0, again.out + again.err
    assert f"{len(production.made)} of them not owned by this repository" in again.out


class ProductionDuringApply:
    """A proxy between apply and the emulator that has production call (directly) at the
    moments that matter: when apply reads its first listing page, each transcript, and right
    before each DELETE, every time before passing the request on."""

    def __init__(self, ws: Workspace, http: httpx.Client) -> None:
        self.ws, self.http, self.upstream = ws, http, ws.emulator.base_url
        self.made: list[str] = []
        self.moments: list[str] = []
        self._lock = threading.Lock()
        self._listed = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Forward)
        self._server.daemon_threads = True
        self._server.production = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ProductionDuringApply:
        self._thread.start()
        self.ws.env["CUSTOMGPT_BASE_URL"] = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def __exit__(self, *_: object) -> None:
        self.ws.env["CUSTOMGPT_BASE_URL"] = self.upstream
        self._server.shutdown()
        self._server.server_close()

    def before(self, method: str, path: str) -> None:
        """Production's call, when apply's request is one of the moments."""
        moment = ("delete" if method == "DELETE" else "transcript" if path.endswith("/messages")
                  else "listing" if path.endswith("/conversations") and method == "GET" else "")
        with self._lock:
            if not moment or (moment == "listing" and self._listed):
                return
            self._listed = self._listed or moment == "listing"
            self.moments.append(moment)
            question = f"Question {len(self.made)} at the {moment}"
            self.made.append(production_call(self.http, PROJECT, question))

    def next_run(self) -> None:
        """The next listing is another run's: production calls at it too."""
        with self._lock:
            self._listed = False


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        production: ProductionDuringApply = self.server.production  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        production.before(self.command, urlsplit(self.path).path)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        with httpx.Client() as upstream:
            answer = upstream.request(self.command, production.upstream + self.path,
                                      headers=headers, content=body)
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PUT = do_DELETE = _forward

    def log_message(self, format: str, *args: object) -> None:
        pass


HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive",
              "content-encoding"}


def test_prune_without_owns_deletes_nothing_production_made_nor_what_was_dropped(
    ws: Workspace, http: httpx.Client
) -> None:
    """The default: a project owns only what it declares."""
    dropped = ws.seed("QA smoke")
    production = production_call(http, PROJECT, "Hello")
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}, prune: true, conversations: []}}]\n")
    validated = ws.run("validate", "-f", str(ws.file))
    assert validated.code == 0
    assert f"warning: project {PROJECT} prunes but owns nothing" in validated.err
    planned = ws.plan("--detailed-exitcode")
    assert planned.code == 0, planned.out + planned.err
    assert "2 of them not owned by this repository" in planned.out
    assert ws.apply().code == 0
    assert alive(ws, [dropped, production]) == [dropped, production]


def test_owning_everything_prunes_what_production_made(ws: Workspace, http: httpx.Client) -> None:
    """`owns: ["*"]` is for a key nothing else uses: with a shared key it deletes production's
    conversations (here, past the guard on purpose)."""
    kept = ws.seed("QA smoke")
    production = production_call(http, PROJECT, "Hello")
    ws.declare(f'version: 1\nprojects: [{{id: {PROJECT}, prune: true, owns: ["*"], '
               "conversations: [{name: QA smoke}]}]\n")
    refused = ws.apply()
    assert refused.code == 1  # 1 of the 2 it owns: more than 30 %
    assert "deletes 1 of the 2 conversations this repository owns" in refused.out
    assert ws.apply("--allow-mass-delete").code == 0
    assert alive(ws, [kept, production]) == [kept]
