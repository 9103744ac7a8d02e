"""Where the API is and how to talk to it: a base URL that would send the key in the clear,
or that cannot be read, is refused before any request, and the message never repeats it."""

from __future__ import annotations

import pytest

from reconciler.api.settings import ClientSettings, Secret
from reconciler.errors import InputError
from tests.workspace import PROJECT, Workspace


def test_http_to_a_remote_host_is_refused(ws: Workspace) -> None:
    ws.env["CUSTOMGPT_BASE_URL"] = "http://api.example.com"
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}}}]\n")
    result = ws.plan()
    assert result.code == 1
    assert "--insecure-http" in result.err


@pytest.mark.parametrize(
    ("url", "problem"),
    [("https://sk-SECRETISH-123@api.example.com", "must not contain '@'"),
     ("http://api.example.com", "refusing plain http://"),
     ("https://api.example.com/?key=sk-SECRETISH-123", "must not have a query or fragment"),
     ("ftp://sk-SECRETISH-123.example.com", "must look like https://host[:port]"),
     ("https://api.example.com:99999999", "is not a valid URL"),
     ("https://api.example.com/sk-SECRETISH 123", "holds spaces or control characters")],
    ids=["credentials", "plain-http", "query", "scheme", "port", "space"],
)
def test_a_base_url_that_cannot_be_used_is_refused_without_repeating_it(
    url: str, problem: str
) -> None:
    with pytest.raises(InputError) as raised:
        ClientSettings(api_key=Secret("key"), base_url=url)
    assert problem in str(raised.value)
    assert "SECRETISH" not in str(raised.value)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.3.2.1", "[::1]"])
def test_plain_http_is_allowed_to_loopback_and_a_trailing_slash_is_dropped(host: str) -> None:
    settings = ClientSettings(api_key=Secret("key"), base_url=f"http://{host}:8080/")
    assert settings.base_url == f"http://{host}:8080"


def test_plain_http_elsewhere_needs_insecure_http() -> None:
    settings = ClientSettings(api_key=Secret("key"), base_url="http://api.example.com",
                              insecure_http=True)
    assert settings.base_url == "http://api.example.com"
