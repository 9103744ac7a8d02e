"""The emulator's API behaviour as a client sees it over HTTP: listing, filters, writes, errors."""

from __future__ import annotations

import socket
import threading
from typing import Any

import httpx
import pytest

from reconciler.emulator import Emulator, EmulatorError

PROJECT = 1001
CONV = f"/api/v1/projects/{PROJECT}/conversations"



def page(http: httpx.Client, **params: Any) -> dict[str, Any]:
    response = http.get(CONV, params=params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_pagination_fields_at_both_ends_and_past_the_end(
    emulator: Emulator, http: httpx.Client
) -> None:
    emulator.add_conversations(PROJECT, [f"c{i}" for i in range(25)])
    first, last, beyond = page(http, page=1), page(http, page=3), page(http, page=4)
    assert (first["from"], first["to"], first["total"], first["last_page"]) == (1, 10, 25, 3)
    assert first["prev_page_url"] is None
    assert first["next_page_url"].endswith(f"{CONV}?page=2")
    assert (last["from"], last["to"], len(last["data"])) == (21, 25, 5)
    assert last["next_page_url"] is None
    assert last["prev_page_url"].endswith("?page=2")
    assert beyond["data"] == [] and beyond["from"] is None and beyond["to"] is None
    assert first["path"] == emulator.base_url + CONV
    assert first["per_page"] == 10


def test_an_empty_project_has_one_empty_page(http: httpx.Client) -> None:
    data = page(http)
    assert (data["total"], data["last_page"], data["from"], data["to"]) == (0, 1, None, None)
    assert data["next_page_url"] is None


@pytest.mark.parametrize(("params", "expected"), [
    ({}, ["c", "b", "a"]),
    ({"order": "asc"}, ["a", "b", "c"]),
    ({"order": "asc", "orderBy": "created_at"}, ["a", "b", "c"]),
    ({"order": "desc", "orderBy": "created_at"}, ["c", "b", "a"]),
], ids=["default-desc-by-id", "asc-by-id", "asc-by-created", "desc-by-created"])
def test_ordering(
    emulator: Emulator, http: httpx.Client, params: dict[str, str], expected: list[str]
) -> None:
    emulator.add_conversations(PROJECT, ["a", "b", "c"])
    assert [c["name"] for c in page(http, **params)["data"]] == expected


@pytest.mark.parametrize(("user_filter", "expected"), [
    ("all", {"mine", "teammate's", "visitor's"}),
    ("team_member", {"mine", "teammate's"}),
    ("anonymous", {"visitor's"}),
    ("me", {"mine"}),
], ids=["all", "team_member", "anonymous", "me"])
def test_user_filter(
    emulator: Emulator, http: httpx.Client, user_filter: str, expected: set[str]
) -> None:
    emulator.add_conversation(PROJECT, "mine", creator="me")
    emulator.add_conversation(PROJECT, "teammate's", creator="teammate")
    emulator.add_conversation(PROJECT, "visitor's", creator="visitor")
    data = page(http, userFilter=user_filter)
    assert {c["name"] for c in data["data"]} == expected
    assert data["total"] == len(expected)


def test_creators_are_recorded_as_user_ids(emulator: Emulator, http: httpx.Client) -> None:
    created = http.post(CONV, json={"name": "via API"}).json()["data"]
    me = http.get("/api/v1/user").json()["data"]["id"]
    assert created["created_by"] == str(me)
    assert emulator.add_conversation(PROJECT, "t", creator="teammate")["created_by"] not in (
        None, str(me))
    assert emulator.add_conversation(PROJECT, "v", creator="visitor")["created_by"] is None


def test_name_filter_finds_matching_names_only(emulator: Emulator, http: httpx.Client) -> None:
    emulator.add_conversations(PROJECT, ["Billing", "Billing questions", "Onboarding", "100%_x"])
    assert {c["name"] for c in page(http, name="Billing")["data"]} == {
        "Billing", "Billing questions"}
    assert [c["name"] for c in page(http, name="100%_")["data"]] == ["100%_x"]
    assert page(http, name="nothing")["total"] == 0


def test_created_conversation_has_the_documented_types(http: httpx.Client) -> None:
    response = http.post(CONV, json={"name": "Onboarding FAQ"})
    data = response.json()["data"]
    assert response.status_code == 201
    assert isinstance(data["id"], int) and data["project_id"] == str(PROJECT)
    assert len(data["session_id"]) == 36 and data["session_id"][14] == "4"
    assert data["created_at"][10] == " " and len(data["created_at"]) == 19


def test_ids_grow_and_are_never_reused(http: httpx.Client) -> None:
    first = http.post(CONV, json={"name": "a"}).json()["data"]
    http.delete(f"{CONV}/{first['session_id']}")
    second = http.post(CONV, json={"name": "b"}).json()["data"]
    assert second["id"] > first["id"]


def test_rename_changes_only_the_name(http: httpx.Client) -> None:
    created = http.post(CONV, json={"name": "Billing"}).json()["data"]
    renamed = http.put(f"{CONV}/{created['session_id']}", json={"name": "Billing questions"})
    assert renamed.status_code == 200
    assert renamed.json()["data"]["name"] == "Billing questions"
    assert renamed.json()["data"]["session_id"] == created["session_id"]
    assert [c["name"] for c in page(http)["data"]] == ["Billing questions"]


def test_delete_removes_the_conversation_and_its_messages(
    emulator: Emulator, http: httpx.Client
) -> None:
    sid = http.post(CONV, json={"name": "x"}).json()["data"]["session_id"]
    http.post(f"{CONV}/{sid}/messages", json={"prompt": "hello"})
    assert http.delete(f"{CONV}/{sid}").json() == {"status": "success",
                                                     "data": {"deleted": True}}
    assert http.get(f"{CONV}/{sid}/messages").status_code == 404
    assert http.delete(f"{CONV}/{sid}").status_code == 404
    assert emulator.messages(PROJECT, sid) == []
    assert page(http)["total"] == 0


def test_messages_are_recorded_with_a_deterministic_answer(http: httpx.Client) -> None:
    sid = http.post(CONV, json={"name": "x"}).json()["data"]["session_id"]
    sent = [http.post(f"{CONV}/{sid}/messages", params={"external_id": "e-1"},
                        json={"prompt": prompt}).json()["data"] for prompt in ("one", "two", "one")]
    assert sent[0]["openai_response"] == sent[2]["openai_response"] != sent[1]["openai_response"]
    assert sent[0]["metadata"]["external_id"] == "e-1"
    listing = http.get(f"{CONV}/{sid}/messages", params={"order": "asc"}).json()["data"]
    assert listing["conversation"]["session_id"] == sid
    assert [m["user_query"] for m in listing["messages"]["data"]] == ["one", "two", "one"]


def test_streamed_answer_is_server_sent_events_ending_with_finish(http: httpx.Client) -> None:
    sid = http.post(CONV, json={"name": "x"}).json()["data"]["session_id"]
    plain = http.post(f"{CONV}/{sid}/messages", json={"prompt": "Hi"}).json()["data"]
    response = http.post(f"{CONV}/{sid}/messages", params={"stream": 1}, json={"prompt": "Hi"})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [httpx.Response(200, content=line[6:]).json()
              for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1]["status"] == "finish"
    streamed = "".join(e["message"] for e in events if e["status"] == "progress")
    assert streamed == plain["openai_response"]


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), [
    ("GET", "/api/v1/projects/12x/conversations", None, 400, "Project id must be integer"),
    ("GET", "/api/v1/projects/4040/conversations", None, 404, "Project with id 4040 not found"),
    ("POST", CONV, {"name": ""}, 400, "name"),
    ("POST", CONV, {"name": 5}, 400, "name"),
    ("POST", CONV, {"name": "x" * 256}, 400, "255"),
    ("POST", CONV, ["name"], 400, "object"),
    ("PUT", f"{CONV}/no-such-session", {"name": "x"}, 404, "no-such-session"),
    ("GET", CONV + "?page=0", None, 400, "page"),
    ("GET", CONV + "?page=two", None, 400, "page"),
    ("GET", CONV + "?userFilter=robots", None, 400, "userFilter"),
    ("GET", CONV + "?orderBy=name", None, 400, "orderBy"),
    ("PATCH", CONV, None, 405, "PATCH"),
    ("GET", "/api/v1/projects/99999999999999999999999/conversations", None, 404, "not found"),
    ("GET", "/api/v1/projects/%C2%B2/conversations", None, 400, "Project id must be integer"),
    ("GET", CONV + "?page=99999999999999999999", None, 400, "page"),
    ("GET", "/api/v1/projects/" + "9" * 5000 + "/conversations", None, 404, "not found"),
    ("GET", CONV + "?page=" + "9" * 5000, None, 400, "page"),
    ("GET", f"{CONV}/x/messages?page=" + "1" * 5000, None, 404, "not found"),
    ("POST", CONV, "deep", 400, "not valid JSON"),
    ("POST", CONV, {"name": "[" * 100}, 201, ""),
    ("POST", CONV, "5000-digits", 400, "not valid JSON"),
], ids=["non-integer-project", "unknown-project", "empty-name", "name-not-string", "long-name",
        "body-not-object", "unknown-session", "page-zero", "page-text", "bad-user-filter",
        "bad-order-by", "wrong-method", "huge-project-id", "unicode-digit", "huge-page",
        "5000-digit-project", "5000-digit-page", "5000-digit-message-page", "nested-100000",
        "brackets-in-a-name", "5000-digit-number"])
def test_bad_requests_get_error_envelopes(
    http: httpx.Client, method: str, path: str, body: Any, status: int, message: str
) -> None:
    raw = {"deep": b"[" * 100_000 + b"]" * 100_000,
           "5000-digits": b'{"name": 1' + b"0" * 5000 + b"}"}.get(body) if isinstance(body, str) \
        else None
    if raw is not None:
        response = http.request(method, path, content=raw)
    else:
        response = http.request(method, path, json=body)
    assert response.status_code == status
    payload = response.json()
    if status == 201:
        return
    assert payload["status"] == "error"
    assert payload["data"]["code"] == status
    assert message in payload["data"]["message"]
    assert payload["url"].startswith(http.base_url.join(path.split("?")[0]).__str__())


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-key", "test-key-0123456789", "Basic dGVzdA=="],
    ids=["missing", "wrong", "no-scheme", "basic"])
def test_unauthenticated_requests_get_401(emulator: Emulator, header: str | None) -> None:
    emulator.ensure_project(PROJECT)
    headers = {"Authorization": header} if header else {}
    response = httpx.get(emulator.base_url + CONV, headers=headers)
    assert response.status_code == 401
    assert response.json()["data"]["message"] == "API Token is either missing or invalid"
    assert emulator.api_key not in response.text


def test_malformed_http_does_not_crash_the_server(emulator: Emulator, http: httpx.Client) -> None:
    host, port = emulator.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"POST /api/v1/projects/1001/conversations HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: abc\r\n\r\n")
        assert b" 400 " in raw.recv(4096).split(b"\r\n")[0]
    binary = http.post(CONV, content=b"\xff\xfe\x00", headers={"Content-Type": "text/plain"})
    assert binary.status_code == 400
    assert http.get("/api/v1/user").status_code == 200


def test_stop_hangs_up_on_open_keep_alive_connections() -> None:
    emu = Emulator(api_key="k")
    emu.start()
    emu.ensure_project(PROJECT)
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer k"}) as http:
        assert http.get(CONV).status_code == 200
        emu.stop()
        with pytest.raises(httpx.TransportError):
            http.get(CONV)


def test_admin_is_off_unless_enabled() -> None:
    with Emulator(api_key="k") as emu:
        emu.start()
        assert httpx.post(emu.base_url + "/_emulator/reset").status_code == 404
        assert httpx.get(emu.base_url + "/_emulator/stats").status_code == 404


def test_admin_seeds_projects_and_visitor_conversations(
    emulator: Emulator, http: httpx.Client
) -> None:
    admin = emulator.base_url + "/_emulator"
    assert httpx.post(admin + "/projects", json={"id": 77, "name": "seeded"}).status_code == 201
    created = httpx.post(admin + "/conversations",
                         json={"project_id": 77, "name": "anon", "as": "visitor"})
    assert created.status_code == 201 and created.json()["data"]["created_by"] is None
    listed = http.get("/api/v1/projects/77/conversations",
                        params={"userFilter": "anonymous"}).json()["data"]
    assert [c["name"] for c in listed["data"]] == ["anon"]
    bad = httpx.post(admin + "/conversations", json={"project_id": 77, "name": "x", "as": "bot"})
    assert bad.status_code == 400


def test_admin_reset_and_stats(emulator: Emulator, http: httpx.Client) -> None:
    http.post(CONV, json={"name": "a"})
    http.get(CONV)
    stats = httpx.get(emulator.base_url + "/_emulator/stats").json()["data"]
    assert stats["requests"] == {"POST": 1, "GET": 1}
    httpx.post(emulator.base_url + "/_emulator/reset")
    assert http.get(CONV).status_code == 404  # the project is gone too
    assert emulator.stats()["requests"] == {"GET": 1}


def test_concurrent_creates_get_unique_ids(emulator: Emulator) -> None:
    emulator.ensure_project(PROJECT)
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def create(worker: int) -> None:
        headers = {"Authorization": f"Bearer {emulator.api_key}"}
        with httpx.Client(base_url=emulator.base_url, headers=headers) as http:
            for index in range(10):
                data = http.post(CONV, json={"name": f"w{worker}-{index}"}).json()["data"]
                with lock:
                    results.append(data)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r["id"] for r in results}) == len({r["session_id"] for r in results}) == 160
    assert len(emulator.conversations(PROJECT)) == 160


def test_projects_and_user_endpoints(emulator: Emulator, http: httpx.Client) -> None:
    created = http.post("/api/v1/projects", data={"project_name": "Support"},
                          files={"file": ("faq.txt", b"...")})
    assert created.status_code == 201
    new_id = created.json()["data"]["id"]
    assert http.get(f"/api/v1/projects/{new_id}").json()["data"]["project_name"] == "Support"
    listed = http.get("/api/v1/projects", params={"order": "asc"}).json()["data"]
    assert [p["id"] for p in listed["data"]] == [PROJECT, new_id]
    missing = http.post("/api/v1/projects", data={"other": "x"}, files={"f": ("a", b"b")})
    assert missing.status_code == 400


def test_seeding_many_conversations_and_listing_the_last_page(
    emulator: Emulator, http: httpx.Client
) -> None:
    emulator.add_conversations(PROJECT, (f"conv {i}" for i in range(100_000)), creator="visitor")
    data = page(http, page=10_000, order="asc")
    assert data["total"] == 100_000 and data["last_page"] == 10_000
    assert [c["name"] for c in data["data"]][-1] == "conv 99999"


def test_seeding_checks_its_arguments(emulator: Emulator) -> None:
    with pytest.raises(EmulatorError, match="does not exist"):
        emulator.add_conversation(5, "x")
    emulator.ensure_project(5)
    with pytest.raises(EmulatorError, match="creator"):
        emulator.add_conversation(5, "x", creator="robot")


def test_start_refuses_a_non_loopback_host() -> None:
    with Emulator() as emu, pytest.raises(EmulatorError, match="loopback"):
        emu.start(host="0.0.0.0")


def test_a_file_database_survives_a_restart(tmp_path: Any) -> None:
    db = str(tmp_path / "emu.db")
    with Emulator(db=db) as emu:
        emu.ensure_project(PROJECT)
        sid = emu.add_conversation(PROJECT, "kept")["session_id"]
    with Emulator(db=db) as emu:
        assert [c["session_id"] for c in emu.conversations(PROJECT)] == [sid]


def test_two_emulators_on_one_file_see_each_others_writes(tmp_path: Any) -> None:
    db = str(tmp_path / "shared.db")
    with Emulator(db=db, api_key="k") as reader, Emulator(db=db, api_key="k") as writer:
        url = reader.start()
        reader.ensure_project(PROJECT)
        headers = {"Authorization": "Bearer k"}
        assert httpx.get(url + CONV, headers=headers).json()["data"]["total"] == 0
        writer.add_conversation(PROJECT, "from elsewhere")
        assert httpx.get(url + CONV, headers=headers).json()["data"]["total"] == 1


@pytest.mark.parametrize("project_id", [0, 2**63, 10**5000, True],
                         ids=["zero", "2^63", "5001-digits", "bool"])
def test_seeding_refuses_ids_no_project_can_have(emulator: Emulator, project_id: int) -> None:
    with pytest.raises(EmulatorError, match="project ids must be from 1 to 9223372036854775807"):
        emulator.ensure_project(project_id)


def _raw_request(emulator: Emulator, data: bytes, *, timeout: float = 5) -> bytes:
    """Send `data` on a fresh connection; return all that comes back until it closes."""
    host, port = emulator.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as raw:
        raw.sendall(data)
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize(
    ("length", "status"),
    [("9" * 5000, b" 413 "), ("1" + "0" * 30, b" 413 "), ("-1", b" 400 "), ("١٢", b" 400 ")],
    ids=["5000-digits", "31-digits", "negative", "arabic-digits"])
def test_an_absurd_content_length_is_answered_not_dropped(
    emulator: Emulator, http: httpx.Client, capfd: pytest.CaptureFixture[str],
    length: str, status: bytes
) -> None:
    answer = _raw_request(emulator, b"POST " + CONV.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: " + length.encode() + b"\r\n\r\n")
    assert status in answer.split(b"\r\n")[0]
    assert b'"status":"error"' in answer
    assert http.get("/api/v1/user").status_code == 200
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    "partial",
    [b"", b"GET /api/v1/user HTTP/1.1\r\nHost: x\r\n",
     b"POST " + CONV.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"],
    ids=["silent", "half-sent-headers", "half-sent-body"])
def test_an_idle_or_half_sent_request_is_closed_after_the_read_timeout(
    partial: bytes, capfd: pytest.CaptureFixture[str]
) -> None:
    with Emulator(api_key="k", read_timeout=0.3) as emu:
        emu.start()
        emu.ensure_project(PROJECT)
        host, port = emu.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            raw.sendall(partial)
            assert raw.recv(65536) == b""  # closed by the server (a client timeout raises)
        with httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer k"}) as http:
            assert http.get(CONV).status_code == 200
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf")],
                         ids=["zero", "negative", "nan", "inf"])
def test_the_read_timeout_must_be_a_positive_number(value: float) -> None:
    with pytest.raises(EmulatorError, match="read timeout must be a positive number"):
        Emulator(read_timeout=value)


def test_usage_reports_the_six_documented_counts(emulator: Emulator, http: httpx.Client) -> None:
    # The six fields of `Limits` in the vendor's OpenAPI document of October 2025
    # (Poll-The-People/customgpt-integrations, commit 230483cb, docs/openapi.json).
    emulator.ensure_project(2002)
    emulator.query_credits = 5
    sid = http.post(CONV, json={"name": "x"}).json()["data"]["session_id"]
    http.post(f"{CONV}/{sid}/messages", json={"prompt": "hello"})
    usage = http.get("/api/v1/limits/usage").json()["data"]
    assert usage == {"max_projects_num": 100, "current_projects_num": 2,
                     "max_total_storage_credits": 5_000_000,
                     "current_total_storage_credits": 0, "max_queries": 5,
                     "current_queries": 1}
    emulator.query_credits = None
    assert http.get("/api/v1/limits/usage").json()["data"]["max_queries"] is None
