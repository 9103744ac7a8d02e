"""Hostile input never gives a traceback: random YAML to the loader, random and malformed API
answers to the client, malformed listings to the planner, endless listings, bad requests to the
emulator. Each ends in a ReconcilerError with a message (or a valid result), nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.api.client import Client, ClientSettings, RetryPolicy, Secret
from reconciler.api.live import Conversation, Message, Project, Transcript, User
from reconciler.cli.main import main
from reconciler.desired.loader import load_desired
from reconciler.desired.model import DesiredState, Reaction
from reconciler.desired.yamlsource import parse_file
from reconciler.emulator import Emulator
from reconciler.errors import ApiError, InputError, ListingError
from reconciler.inputs import amount
from reconciler.plan.guards import GuardLimits
from reconciler.plan.make import make_plan

PROJECT = 4242
KEY = "hostile-key-0123456789"
FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# -- the loader --------------------------------------------------------------------------------

FRAGMENTS = [
    "version: 1\n", "version: 2\n", "projects:\n", "defaults:\n", "  - id: ", "4242", "-1",
    "${PROJECT}", "${MISSING}", "${X:-7}", "\n", "  ", "    ", "\t", "- ", ": ", ":", "name: ",
    "conversations:\n", "      - name: ", "renamed_from: [", "]", "{", "}", "[", ",",
    "messages:\n", "session_id: ", "scope: ", "mine", "team", "all", "nope", "prune: ", "yes",
    "true", "null", "~", "ignore: [", "protect: [", "owns: [", '"tmp-*"', "'[unclosed",
    "duplicates: ", "adopt-oldest", "&anchor ", "*anchor", "*nowhere",
    "!!python/object:os.system ", "!!binary ",
    "---\n", "...\n", "? ", '"', "'", "\\", "#", "%YAML 1.1\n", "<<: *anchor\n", "1e309",
    "0x1F", ".inf", "\x00", "\ufeff", "\u202e", "é", "🙂", "lang: ", "max_delete_fraction: ",
]
yamlish = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=6), max_size=40).map("".join)
scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats()
           | st.text(max_size=12) | st.sampled_from(["mine", "all", "tmp-*", "${PROJECT}"]))
KEYS = ["version", "projects", "defaults", "id", "label", "scope", "prune", "owns", "ignore",
        "protect", "duplicates", "conversations", "name", "renamed_from", "session_id",
        "messages", "lang", "max_delete_fraction", "persona", "unknown"]
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=5),
    max_leaves=25,
)
ENV = {"PROJECT": "4242", "X": "text"}


@pytest.fixture(scope="module")
def desired_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile") / "conversations.yaml"


def load_or_explain(path: Path) -> None:
    """The loader's whole contract on any file: a DesiredState, or InputError with messages."""
    try:
        state = load_desired([str(path)], env=ENV)
    except InputError as error:
        assert error.problems
        assert all(p.message.strip() for p in error.problems)
        assert "Traceback" not in str(error)
        return
    assert isinstance(state, DesiredState)


@FUZZ
@given(text=yamlish)
def test_any_yamlish_text_loads_or_is_explained(desired_file: Path, text: str) -> None:
    desired_file.write_text(text, encoding="utf-8", errors="surrogatepass")
    load_or_explain(desired_file)


@FUZZ
@given(data=st.binary(max_size=200))
def test_any_bytes_load_or_are_explained(desired_file: Path, data: bytes) -> None:
    desired_file.write_bytes(data)
    load_or_explain(desired_file)


@FUZZ
@given(document=documents)
def test_any_document_loads_or_is_explained(desired_file: Path, document: Any) -> None:
    desired_file.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    load_or_explain(desired_file)


@FUZZ
@given(version=st.sampled_from([1, 2, "1", None]), projects=st.lists(
    st.fixed_dictionaries({"id": st.integers(0, 3) | st.text(max_size=3)}, optional={
        "scope": scalars, "prune": scalars, "conversations": st.lists(
            st.fixed_dictionaries({"name": st.text(max_size=8) | scalars}, optional={
                "renamed_from": st.lists(st.text(max_size=4), max_size=2),
                "messages": st.lists(scalars, max_size=2), "session_id": scalars}),
            max_size=4)}),
    max_size=3))
def test_near_valid_documents_load_or_are_explained(
    desired_file: Path, version: Any, projects: list[Any]
) -> None:
    document = {"version": version, "projects": projects}
    desired_file.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    load_or_explain(desired_file)


# -- the client's response parsing ---------------------------------------------------------------


def conversation(number: int = 1) -> dict[str, Any]:
    return {"id": number, "session_id": f"session-{number}", "name": f"c{number}",
            "project_id": str(PROJECT), "created_by": "1", "created_at": "2024-01-01 00:00:00",
            "updated_at": "2024-01-01 00:00:00"}


def listing(items: list[Any], *, page: int = 1, total: int | None = None) -> dict[str, Any]:
    total = len(items) if total is None else total
    return {"current_page": page, "data": items, "per_page": 10, "total": total,
            "last_page": max(1, math.ceil(total / 10))}


MESSAGE = {"id": 1, "user_query": "hi", "openai_response": "hello",
           "created_at": "2024-01-01 00:00:00",
           "response_feedback": {"reaction": "liked", "user_id": 1, "created_at": ""}}
GOOD: dict[str, Any] = {
    "list": listing([conversation(1), conversation(2)]),
    "transcript": {"conversation": conversation(1), "messages": listing([MESSAGE])},
    "user": {"id": 1, "name": "me", "email": "me@example.com"},
    "project": {"id": PROJECT, "project_name": "bot"},
    "conversation": conversation(3),
    "message": MESSAGE,
}
CALLS: dict[str, Callable[[Client], Awaitable[Any]]] = {
    "list": lambda c: c.list_conversations(PROJECT),
    "transcript": lambda c: c.get_transcript(PROJECT, "session-1"),
    "user": lambda c: c.current_user(),
    "project": lambda c: c.get_project(PROJECT),
    "create": lambda c: c.create_conversation(PROJECT, "new"),
    "rename": lambda c: c.rename_conversation(PROJECT, "session-1", "renamed"),
    "delete": lambda c: c.delete_conversation(PROJECT, "session-1"),
    "send": lambda c: c.send_message(PROJECT, "session-1", "hi"),
    "react": lambda c: c.set_reaction(PROJECT, "session-1", 1, Reaction.LIKED),
}
VALID_RESULTS = (Conversation, Message, Project, Transcript, User, list, type(None))


def mutated(value: Any) -> st.SearchStrategy[Any]:
    """`value` with one field dropped or replaced by anything, recursively."""
    if isinstance(value, dict) and value:
        keys = sorted(value)
        return st.sampled_from(keys).flatmap(lambda key: st.one_of(
            st.just({k: v for k, v in value.items() if k != key}),
            documents.map(lambda new: {**value, key: new}),
            mutated(value[key]).map(lambda new: {**value, key: new}),
        ))
    if isinstance(value, list) and value:
        return st.one_of(st.just(value * 50), st.just([]),
                         mutated(value[0]).map(lambda new: [new, *value[1:]]))
    return documents


def envelope(data: Any) -> bytes:
    return json.dumps({"status": "success", "data": data}).encode()


bodies = st.one_of(
    st.sampled_from(sorted(GOOD)).flatmap(lambda kind: mutated(GOOD[kind])).map(envelope),
    documents.map(envelope),
    documents.map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=80),
    st.sampled_from([b"<html><body><h1>502 Bad Gateway</h1></body></html>", b"", b"null",
                     envelope(GOOD["list"])[:37], b'{"status": "success", "data": ']),
    st.just(envelope(listing([conversation(n) for n in range(1, 2001)], total=2000))),
)
statuses = st.sampled_from([200, 200, 200, 201, 204, 302, 400, 404, 409, 422, 429, 500, 503])


class Clock:
    """A fake clock that sleeps take no real time on."""

    def __init__(self) -> None:
        self.now = 0.0

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def run_client(
    handler: Callable[[httpx.Request], httpx.Response],
    action: Callable[[Client], Awaitable[Any]], *, policy: RetryPolicy | None = None,
) -> Any:
    clock = Clock()
    config = ClientSettings(api_key=Secret(KEY), base_url="http://127.0.0.1:9", parallelism=4,
                            retry=policy or RetryPolicy(max_attempts=2))

    async def main() -> Any:
        async with Client(config, transport=httpx.MockTransport(handler), sleep=clock.sleep,
                          clock=clock, uniform=lambda low, high: high) as client:
            return await action(client)

    return asyncio.run(main())


@FUZZ
@given(call=st.sampled_from(sorted(CALLS)), status=statuses, body=bodies,
       content_type=st.sampled_from(["application/json", "text/html", "text/plain"]))
def test_any_answer_is_a_valid_result_or_an_api_error(
    call: str, status: int, body: bytes, content_type: str
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"Content-Type": content_type})

    try:
        result = run_client(handle, CALLS[call])
    except ApiError as error:
        assert str(error).strip()
        assert KEY not in str(error)
        return
    assert isinstance(result, VALID_RESULTS)
    if isinstance(result, list):
        assert all(isinstance(item, Conversation) for item in result)


# -- the planner never plans on a malformed listing ----------------------------------------------


@pytest.fixture(scope="module")
def desired(tmp_path_factory: pytest.TempPathFactory) -> DesiredState:
    path = tmp_path_factory.mktemp("plan") / "c.yaml"
    path.write_text(f"version: 1\nprojects:\n  - id: {PROJECT}\n    prune: true\n"
                    '    owns: ["*"]\n    conversations: [{name: Kept}, {name: New}]\n',
                    encoding="utf-8")
    return load_desired([str(path)], env={})


@FUZZ
@given(body=st.one_of(mutated(GOOD["list"]).map(envelope), bodies))
def test_a_malformed_listing_gives_a_project_error_not_a_plan(
    desired: DesiredState, body: bytes
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/user":
            return httpx.Response(200, content=envelope(GOOD["user"]))
        if path.endswith("/messages"):
            return httpx.Response(200, content=envelope(GOOD["transcript"]))
        if path.endswith("/conversations"):
            return httpx.Response(200, content=body)
        return httpx.Response(200, content=envelope(GOOD["project"]))

    try:
        well_formed = run_client(handle, lambda c: c.list_conversations(PROJECT))
    except ApiError:
        well_formed = None
    plan = run_client(handle, lambda c: make_plan(c, desired, limits=GuardLimits(
        allow_mass_delete=True)))
    if well_formed is None:
        assert plan.all_errors
        assert plan.operations == ()
    else:
        assert not plan.all_errors or plan.operations == ()


# -- listings that never end ---------------------------------------------------------------------


def growing_server(*, grow: int, latency: float, clock: Clock) -> tuple[
        Callable[[httpx.Request], httpx.Response], list[int]]:
    """A server whose total grows by `grow` on every request, taking `latency` fake seconds."""
    served: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        clock.now += latency
        served.append(int(request.url.params["page"]))
        total = 25 + grow * len(served)
        number = served[-1]
        items = [conversation(n) for n in range((number - 1) * 10 + 1,
                                                  min(number * 10, total) + 1)]
        return httpx.Response(200, content=envelope(
            {**listing(items, page=number, total=total)}))

    return handle, served


def run_with(clock: Clock, handler: Callable[[httpx.Request], httpx.Response],
             policy: RetryPolicy) -> Any:
    config = ClientSettings(api_key=Secret(KEY), base_url="http://127.0.0.1:9", parallelism=4,
                            retry=policy)

    async def main() -> Any:
        async with Client(config, transport=httpx.MockTransport(handler), sleep=clock.sleep,
                          clock=clock) as client:
            return await client.list_conversations(PROJECT)

    return asyncio.run(main())


@pytest.mark.parametrize("grow", [1, 10, 1000], ids=["one-per-request", "a-page-per-request",
                                                     "a-hundred-pages-per-request"])
def test_a_listing_that_keeps_growing_ends_with_a_listing_error(grow: int) -> None:
    clock = Clock()
    handler, served = growing_server(grow=grow, latency=0.05, clock=clock)
    policy = RetryPolicy(listing_deadline=60.0)
    with pytest.raises(ListingError, match=r"^listing conversations of project 4242 ") as caught:
        run_with(clock, handler, policy)
    assert "kept changing" in str(caught.value) or "did not finish within 60 s" in str(
        caught.value)
    assert clock.now <= 60.0 + 0.05 * 4 * 2
    assert served.count(1) <= policy.max_relists + 1


def test_a_listing_claiming_a_billion_pages_gives_up_at_the_deadline() -> None:
    clock = Clock()

    def handle(request: httpx.Request) -> httpx.Response:
        clock.now += 0.05
        number = int(request.url.params["page"])
        items = [conversation(n) for n in range(number * 10 - 9, number * 10 + 1)]
        return httpx.Response(200, content=envelope(listing(items, page=number, total=10**10)))

    with pytest.raises(ListingError) as caught:
        run_with(clock, handle, RetryPolicy(listing_deadline=30.0))
    assert str(caught.value).startswith(
        "listing conversations of project 4242 did not finish within 30 s")
    assert clock.now <= 30.0 + 0.05 * 4


# -- the emulator answers malformed requests with documented error bodies ------------------------


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with Emulator(api_key=KEY) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        with httpx.Client(base_url=emulator.base_url, timeout=10) as client:
            yield client


@FUZZ
@given(path=st.sampled_from([f"/api/v1/projects/{PROJECT}/conversations", "/api/v1/user",
                             f"/api/v1/projects/{PROJECT}/conversations/nope/messages",
                             "/api/v1/projects/abc/conversations", "/api/v1/projects/-1"]),
       method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
       authorization=st.one_of(st.none(), st.just(f"Bearer {KEY}"), st.just(f"Bearer {KEY}x"),
                               st.text(st.characters(codec="ascii", min_codepoint=32),
                                       max_size=30)),
       body=st.binary(max_size=40) | documents.map(lambda d: json.dumps(d).encode()))
def test_the_emulator_answers_bad_requests_with_documented_error_bodies(
    http: httpx.Client, path: str, method: str, authorization: str | None, body: bytes
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = http.request(method, path, headers=headers, content=body)
    if authorization != f"Bearer {KEY}":
        assert response.status_code in (401, 405)  # a method no path has is refused first
    if response.status_code >= 400:
        assert response.status_code in (400, 401, 404, 405)
        document = response.json()
        assert document["status"] == "error"
        assert document["data"]["code"] == response.status_code
        assert isinstance(document["data"]["message"], str) and document["data"]["message"]
        assert KEY not in response.text


# -- input paths that are not files ---------------------------------------------------------------

DESIRED = f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations: [{{name: A}}]\n"
# Every file the tool reads, the command that reads it ({P}: the hostile path), and how its
# errors name it ({P}: located at the path; a key file only by its option, never its path).
READERS = {
    "show FILE": (["show", "{P}"], "error: {P}: cannot read the plan file: ", 256 << 20),
    "apply --plan": (["apply", "--plan", "{P}", "--auto-approve"],
                     "error: {P}: cannot read the plan file: ", 256 << 20),
    "restore BACKUP_FILE": (["restore", "{P}"], "error: {P}: cannot read the backup file: ",
                            256 << 20),
    "--api-key-file": (["plan", "-f", "{desired}", "--api-key-file", "{P}"],
                       "error: cannot read the file given with --api-key-file: ", 64 << 10),
    "--plan-key-file": (["plan", "-f", "{desired}", "--out", "{out}", "--plan-key-file", "{P}"],
                        "error: cannot read the file given with --plan-key-file: ", 64 << 10),
    "emulator --api-key-file": (["emulator", "--api-key-file", "{P}"],
                                "error: cannot read the file given with --api-key-file: ",
                                64 << 10),
}
HOSTILE = {
    "fifo": "a FIFO (named pipe), not a regular file",
    "dev-zero": "a character device, not a regular file",
    "directory": "a directory, not a regular file",
    "over-the-limit": "file is {size} bytes, over the {limit} limit",
}


def _hostile(tmp_path: Path, kind: str, limit: int) -> tuple[str, int]:
    """A path of `kind` under `tmp_path`, and the size of its file (over-the-limit)."""
    path = tmp_path / "hostile"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        return "/dev/zero", 0
    elif kind == "directory":
        path.mkdir()
    else:
        with path.open("wb") as stream:
            stream.truncate(limit + 1)  # sparse: nothing is written, nothing must be read
    return str(path), limit + 1


@pytest.mark.parametrize("kind", list(HOSTILE))
@pytest.mark.parametrize("reader", list(READERS))
def test_a_path_that_is_not_a_readable_file_is_a_clear_error_for_every_reader(
    tmp_path: Path, emulator: Emulator, reader: str, kind: str
) -> None:
    args, prefix, limit = READERS[reader]
    path, size = _hostile(tmp_path, kind, limit)
    desired = tmp_path / "c.yaml"
    desired.write_text(DESIRED)
    values = {"P": path, "desired": str(desired), "out": str(tmp_path / "plan.json")}
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(tmp_path):
        code = main([arg.format(**values) for arg in args], env={
            "CUSTOMGPT_BASE_URL": emulator.base_url, "CUSTOMGPT_API_KEY": KEY},
            stdout=out, stderr=err, stdin=io.StringIO())
    reason = HOSTILE[kind].format(size=size, limit=amount(limit))
    assert (code, out.getvalue()) == (1, "")
    assert err.getvalue() == prefix.format(P=path) + reason + "\n"
    assert sum(emulator.stats()["requests"].values()) == 0


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_desired_state_file_that_is_not_a_readable_file_is_a_located_error(
    tmp_path: Path, kind: str
) -> None:
    """What `-f` finds is checked when it is listed; the file opened is checked again (it may
    have been replaced since): the parser itself refuses what is not a regular file."""
    path, size = _hostile(tmp_path, kind, 10 << 20)
    with pytest.raises(InputError) as raised:
        parse_file(path)
    message = HOSTILE[kind].format(size=size, limit="10 MiB")
    if kind == "over-the-limit":
        assert str(raised.value) == f"{path}: {message}; split it into several files"
    else:
        assert str(raised.value) == f"{path}: cannot read file: {message}"


# -- huge values are never repeated whole -------------------------------------------------------

HUGE = 5 * 1024 * 1024
SESSION = "7f0c8a9e-1b2c-4d3e-8f40-5a6b7c8d9e0f"
VALID: dict[str, Any] = {
    "version": 1, "lang": "en",
    "defaults": {"scope": "mine", "prune": False, "duplicates": "error", "ignore": ["tmp-*"],
                 "protect": ["Legal *"], "max_delete_fraction": 0.3},
    "projects": [{
        "id": PROJECT, "label": "bot", "scope": "team", "prune": True, "ignore": ["tmp-*"],
        "protect": ["Legal *"], "duplicates": "error", "max_delete_fraction": 0.3,
        "lang": "de", "conversations": [{
            "name": "A", "renamed_from": ["B"], "session_id": SESSION, "messages": ["hi"],
            "persona": "p", "response_source": "default"}]}],
}
# A huge value as it is written in the file: quoted text, text that is a pattern or a
# variable reference, digits (plain), an octal number (plain).
HUGE_VALUES = {
    "text": json.dumps("x" * HUGE),
    "pattern": json.dumps("[" + "z-a" * (HUGE // 3)),
    "variable": json.dumps("${" + "A" * HUGE + "}"),
    "reference": json.dumps("${" + "-" * HUGE + "}"),
    "digits": "9" * HUGE,
    "octal": "0" + "7" * HUGE,
}


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every scalar in `value`, and of a new key in every mapping."""
    if isinstance(value, dict):
        yield (*path, "@key")
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path


def _with_huge(path: tuple[Any, ...], written: str) -> str:
    """The valid document as YAML (JSON flow style), with `written` at `path` (a new key of
    the mapping at `path[:-1]` when `path` ends with "@key")."""
    document = json.loads(json.dumps(VALID))
    *parents, last = path
    container = document
    for part in parents:
        container = container[part]
    if last == "@key":
        container["@HUGE@"] = 1
        return json.dumps(document).replace('"@HUGE@"', written if written.startswith('"')
                                            else json.dumps(written))
    container[last] = "@HUGE@"
    return json.dumps(document).replace('"@HUGE@"', written)


PATHS = list(_leaves(VALID))
# Every field with huge text; each other kind of huge value where it means something.
HUGE_CASES = [
    *(("text", path) for path in PATHS),
    *(("pattern", path) for path in PATHS if "ignore" in path or "protect" in path),
    *(("variable", path) for path in PATHS if path[-1] in ("label", "name", "id")),
    ("reference", ("projects", 0, "label")),
    *((kind, path) for kind in ("digits", "octal") for path in PATHS
      if path[-1] in ("id", "max_delete_fraction", "version", "prune", "persona")),
]


def test_a_huge_value_in_any_field_gives_a_short_error(tmp_path: Path) -> None:
    file = tmp_path / "huge.yaml"
    for kind, path in HUGE_CASES:
        file.write_text(_with_huge(path, HUGE_VALUES[kind]), encoding="utf-8")
        out, err = io.StringIO(), io.StringIO()
        code = main(["validate", "-f", str(file)], env={}, stdout=out, stderr=err)
        shown = out.getvalue() + err.getvalue()
        assert code in (0, 1), (kind, path)
        assert "Traceback" not in shown
        assert len(shown) < 10_000, (kind, path, shown[:300])


def test_a_huge_option_name_gives_a_short_usage_error() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["plan", "-f", "c.yaml", "--" + "x" * HUGE], env={}, stdout=out, stderr=err)
    assert code == 1
    assert "unrecognized arguments: --xxxx" in err.getvalue()
    assert len(err.getvalue()) < 10_000
