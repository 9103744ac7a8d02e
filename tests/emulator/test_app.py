"""What a web page in the user's browser can make the emulator do: nothing.

A page of any site can send requests to http://127.0.0.1:PORT (a form, or fetch in no-cors mode),
and a site whose name is made to point at 127.0.0.1 (DNS rebinding) can even read the answers.
The emulator refuses both: requests must be addressed to it by a loopback name and its port,
and come from no other origin than its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from reconciler.emulator import Emulator

KEY = "app-key-0123456789"
PROJECT = 1001


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """A loopback emulator with admin on and one conversation in project 1001."""
    with Emulator(api_key=KEY, enable_admin=True) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT, "demo")
        emulator.add_conversation(PROJECT, "keep me")
        yield emulator


def _port(emulator: Emulator) -> str:
    return emulator.base_url.rsplit(":", 1)[1]


@pytest.mark.parametrize(("host", "origin"), [
    ("rebound.example:{port}", None),
    ("rebound.example", None),
    ("127.0.0.1.nip.io:{port}", None),
    ("127.0.0.1:1", None),
    ("user@127.0.0.1:{port}", None),
    ("", None),
    ("127.0.0.1:{port}", "https://attacker.example"),
    ("127.0.0.1:{port}", "null"),
    ("127.0.0.1:{port}", "http://127.0.0.1:3000"),
    ("127.0.0.1:{port}", "http://localhost:{port}"),
    ("rebound.example:{port}", "http://rebound.example:{port}"),
], ids=["rebound-name", "rebound-name-no-port", "name-of-a-loopback-address", "other-port",
        "credentials", "empty", "other-site", "sandboxed-page", "other-local-port",
        "other-loopback-name", "rebound-same-origin"])
def test_a_web_page_cannot_reset_the_emulator(emu: Emulator, host: str,
                                              origin: str | None) -> None:
    port = _port(emu)
    headers = {"Host": host.format(port=port),
               "Content-Type": "application/x-www-form-urlencoded"}  # what a form sends
    if origin is not None:
        headers["Origin"] = origin.format(port=port)
    response = httpx.post(emu.base_url + "/_emulator/reset", headers=headers, content=b"x=1")
    assert response.status_code == 403
    assert response.json()["data"]["message"].startswith("Refused: the request")
    assert [c["name"] for c in emu.conversations(PROJECT)] == ["keep me"]


def test_the_refusal_names_what_was_refused_and_the_addresses_that_work(emu: Emulator) -> None:
    port = _port(emu)
    rebound = httpx.get(emu.base_url + "/_emulator/stats",
                        headers={"Host": f"rebound.example:{port}"}).json()["data"]["message"]
    assert rebound == (f"Refused: the request is addressed to 'rebound.example:{port}', not to "
                       f"this emulator (localhost:{port} or 127.0.0.1:{port}); a web page may "
                       "have been sent here under another name")
    foreign = httpx.get(emu.base_url + "/_emulator/stats",
                        headers={"Origin": "https://attacker.example"}).json()["data"]["message"]
    assert foreign == ("Refused: the request comes from the web page of "
                       "'https://attacker.example'; the emulator answers only programs and its "
                       "own pages")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_rebound_page_cannot_use_the_api_even_with_the_sandbox_key(
    emu: Emulator, method: str
) -> None:
    session = emu.conversations(PROJECT)[0]["session_id"]
    response = httpx.request(
        method, f"{emu.base_url}/api/v1/projects/{PROJECT}/conversations/{session}"
        + ("/messages" if method == "GET" else ""),
        headers={"Host": f"rebound.example:{_port(emu)}", "Authorization": f"Bearer {KEY}"})
    assert response.status_code == 403
    assert "keep me" not in response.text
    assert len(emu.conversations(PROJECT)) == 1
    assert emu.stats()["requests"] == {}  # refused before it counts, or spends a credit


def test_a_rebound_page_cannot_read_the_pages(emu: Emulator) -> None:
    response = httpx.get(f"{emu.base_url}/projects/{PROJECT}",
                         headers={"Host": f"rebound.example:{_port(emu)}"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "keep me" not in response.text


@pytest.mark.parametrize(("host", "origin"), [
    ("127.0.0.1:{port}", None),
    ("localhost:{port}", None),
    ("LOCALHOST:{port}", "http://localhost:{port}"),
    ("127.0.0.1:{port}", "http://127.0.0.1:{port}"),
    ("localhost", None),
], ids=["address", "localhost", "own-origin-any-case", "own-origin", "no-port"])
def test_programs_and_the_emulators_own_pages_are_served(emu: Emulator, host: str,
                                                         origin: str | None) -> None:
    port = _port(emu)
    headers = {"Host": host.format(port=port)}
    if origin is not None:
        headers["Origin"] = origin.format(port=port)
    response = httpx.post(emu.base_url + "/_emulator/reset", headers=headers)
    assert response.status_code == 200
    assert emu.conversations(PROJECT) == []


def test_serving_beyond_loopback_any_host_name_but_no_foreign_origin() -> None:
    with Emulator(api_key=KEY, enable_admin=True) as emulator:
        port = emulator.start("0.0.0.0", 0, allow_remote=True).rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}/_emulator/stats"
        named = httpx.get(url, headers={"Host": f"emulator:{port}"})  # a container's name
        assert named.status_code == 200
        foreign = httpx.get(url, headers={"Host": f"emulator:{port}",
                                          "Origin": "https://attacker.example"})
        assert foreign.status_code == 403
        own = httpx.get(url, headers={"Host": f"emulator:{port}",
                                      "Origin": f"http://emulator:{port}"})
        assert own.status_code == 200


@pytest.mark.parametrize("path", ["/", f"/projects/{PROJECT}",
                                  f"/projects/{PROJECT}/conversations/x"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_no_page_changes_anything(emu: Emulator, path: str, method: str) -> None:
    before = emu.conversations(PROJECT)
    response = httpx.request(method, emu.base_url + path,
                             json={"name": "changed", "project_id": PROJECT, "id": 77})
    assert response.status_code == 405
    assert emu.conversations(PROJECT) == before
    assert emu.stats()["requests"] == {}
