"""Whatever a client sends, the emulator answers with an envelope and never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.emulator import Emulator

PROJECT = 1001
KEY = "fuzz-key"
EXPECTED = {200, 201, 400, 401, 404, 405}


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with Emulator(api_key=KEY) as emu:
        emu.start()
        emu.ensure_project(PROJECT)
        sid = emu.add_conversation(PROJECT, "existing")["session_id"]
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=emu.base_url, headers=headers, timeout=10) as client:
            client.headers["X-Session"] = sid
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
queries = st.dictionaries(st.sampled_from(["page", "order", "orderBy", "userFilter", "name",
                                           "stream", "external_id", "lang"]),
                          st.text(max_size=12), max_size=4)


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
