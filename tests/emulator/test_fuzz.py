"""Whatever a client sends, the emulator answers with an envelope and never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.emulator import Emulator, Variants
from reconciler.emulator.routes import ROUTES
from reconciler.emulator.variants import NAME_FILTERS

PROJECT = 1001
KEY = "fuzz-key"
EXPECTED = {200, 201, 400, 401, 404, 405}
PARAMETERS = ["page", "order", "orderBy", "userFilter", "name", "stream", "external_id", "lang",
              "per_page"]


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with Emulator(api_key=KEY) as emu:
        emu.start()
        emu.ensure_project(PROJECT)
        sid = emu.add_conversation(PROJECT, "existing")["session_id"]
        prompt = emu.add_message(PROJECT, sid, "Hello?")["id"]
        doomed = emu.add_conversation(PROJECT, "doomed")["session_id"]
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=emu.base_url, headers=headers, timeout=10) as client:
            client.headers["X-Session"] = sid
            client.headers["X-Prompt"] = str(prompt)
            client.headers["X-Doomed"] = doomed
            yield client


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=3),
    max_leaves=8)
bodies = (st.binary(max_size=64)
          | json_values.map(lambda value: json.dumps(value).encode())
          | st.dictionaries(st.sampled_from(["name", "prompt", "custom_persona"]), json_values,
                            max_size=3).map(lambda value: json.dumps(value).encode()))
segments = st.text(st.characters(codec="utf-8", exclude_characters="/?#"), max_size=12)
queries = st.dictionaries(st.sampled_from(PARAMETERS), st.text(max_size=12), max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
       template=st.sampled_from(["/api/v1/projects/{p}/conversations",
                                 "/api/v1/projects/{p}/conversations/{s}",
                                 "/api/v1/projects/{p}/conversations/{s}/messages",
                                 "/api/v1/projects/{p}", "/api/v1/projects", "/api/v1/user"]),
       project=st.one_of(st.just(str(PROJECT)), segments),
       session=st.one_of(st.just("existing"), segments),
       query=queries, body=bodies)
def test_any_request_gets_an_envelope_not_a_server_error(
    http: httpx.Client, method: str, template: str, project: str, session: str,
    query: dict[str, str], body: bytes,
) -> None:
    sid = http.headers["X-Session"] if session == "existing" else session
    path = template.format(p=quote(project, safe=""), s=quote(sid, safe=""))
    response = http.request(method, path, params=query, content=body)
    assert response.status_code in EXPECTED, response.text
    if response.headers["content-type"].startswith("application/json"):
        assert response.json()["status"] in ("success", "error")


# A long value of one repeated piece (LIKE's wildcards and escape, letters whose case folds, and
# characters of two and three bytes), up to 50,000 bytes in the URL: with the other parameters,
# as long as a request line may be.
LONG_UNITS = ["a", "_", "%", "\\", "A_%b", "é", "€", "0", "9", " "]
LONG = 50_000
long_values = st.sampled_from(LONG_UNITS).flatmap(lambda unit: st.one_of(
    st.just(LONG // len(quote(unit))), st.integers(1, LONG // len(quote(unit))),
).map(lambda count: unit * count))
odd_values = st.sampled_from(["", " ", "\x00", "-1", "0", "1.5", "1e9", "9" * 5000, "NaN",
                              "\uff11", "true", "null", "[]", "%00", "\u202e", "ASC", " asc"])
ENDPOINTS = [("GET", "/api/v1/projects"), ("POST", "/api/v1/projects"),
             ("GET", "/api/v1/projects/{p}"),
             ("GET", "/api/v1/projects/{p}/settings"), ("POST", "/api/v1/projects/{p}/settings"),
             ("POST", "/api/v1/projects/{p}/chat/completions"),
             ("GET", "/api/v1/projects/{p}/citations/{c}"),
             ("GET", "/api/v1/projects/{p}/conversations"),
             ("POST", "/api/v1/projects/{p}/conversations"),
             ("PUT", "/api/v1/projects/{p}/conversations/{s}"),
             ("DELETE", "/api/v1/projects/{p}/conversations/{d}"),
             ("GET", "/api/v1/projects/{p}/conversations/{s}/messages"),
             ("POST", "/api/v1/projects/{p}/conversations/{s}/messages"),
             ("GET", "/api/v1/projects/{p}/conversations/{s}/messages/{m}"),
             ("PUT", "/api/v1/projects/{p}/conversations/{s}/messages/{m}/feedback"),
             ("GET", "/api/v1/user"), ("GET", "/api/v1/limits/usage")]


def test_every_endpoint_is_fuzzed() -> None:
    served = {(method, pattern.pattern) for pattern, methods in ROUTES for method in methods}
    fuzzed = {(method, pattern.pattern) for method, template in ENDPOINTS
              for pattern, _ in ROUTES
              if pattern.fullmatch(template.format(p=1, s="s", d="d", m=2, c=3))}
    assert served - fuzzed == set()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(endpoint=st.sampled_from(ENDPOINTS), long_key=st.sampled_from(PARAMETERS),
       long_value=long_values,
       others=st.dictionaries(st.sampled_from(PARAMETERS), odd_values | st.text(max_size=12),
                              max_size=3))
def test_long_and_odd_query_values_get_an_envelope_not_a_server_error(
    http: httpx.Client, endpoint: tuple[str, str], long_key: str, long_value: str,
    others: dict[str, str],
) -> None:
    method, template = endpoint
    path = template.format(p=PROJECT, s=http.headers["X-Session"], d=http.headers["X-Doomed"],
                           m=http.headers["X-Prompt"], c=1)
    body = {"name": "renamed", "prompt": "Hello?", "reaction": "liked", "project_name": "p",
            "messages": [{"role": "user", "content": "Hello?"}]}
    response = http.request(method, path, params={**others, long_key: long_value}, json=body)
    assert response.status_code in EXPECTED, response.text[:300]
    if response.headers["content-type"].startswith("application/json"):
        answer = response.json()
        assert answer.get("status") in ("success", "error") \
            or answer.get("object") == "chat.completion"  # OpenAI's shape, no envelope


@pytest.mark.parametrize("name_filter", NAME_FILTERS)
@pytest.mark.parametrize("name", ["a" * 50_000, "_" * 30_000, "%" * 20_000, "\\" * 20_000],
                         ids=["50000-letters", "30000-underscores", "20000-percents",
                              "20000-backslashes"])
def test_a_name_filter_of_any_length_gets_an_answer(name_filter: str, name: str) -> None:
    with Emulator(api_key=KEY, variants=Variants(name_filter=name_filter)) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        emulator.add_conversation(PROJECT, "short")
        response = httpx.get(f"{emulator.base_url}/api/v1/projects/{PROJECT}/conversations",
                             params={"name": name}, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200
    assert response.json()["data"]["total"] == 0


def test_a_long_name_filter_finds_the_conversation_it_names_ignoring_case() -> None:
    long_name = "Onboarding " + "x" * 60_000 + " FAQ"
    with Emulator(api_key=KEY) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        emulator.add_conversations(PROJECT, [long_name, "Onboarding FAQ"])
        response = httpx.get(f"{emulator.base_url}/api/v1/projects/{PROJECT}/conversations",
                             params={"name": "ONBOARDING " + "X" * 50_000},
                             headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200
    assert [c["name"] for c in response.json()["data"]["data"]] == [long_name]
