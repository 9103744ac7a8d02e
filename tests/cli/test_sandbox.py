"""The sandbox: an emulator on a file under .reconciler/ that keeps its data between runs."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest

from reconciler.cli.main import main
from reconciler.cli.sandbox import start_sandbox
from reconciler.emulator import EmulatorError
from reconciler.errors import ReconcilerError


def _get(handle_url: str, key: str, path: str) -> httpx.Response:
    return httpx.get(handle_url + path, headers={"Authorization": f"Bearer {key}"})


def test_sandbox_creates_its_directory_and_projects(tmp_path: Path) -> None:
    root = tmp_path / "state" / ".reconciler"
    with start_sandbox([4242, 4343], root=root) as sandbox:
        assert (root / "sandbox.db").exists()
        assert sandbox.base_url.startswith("http://127.0.0.1:")
        listed = _get(sandbox.base_url, sandbox.api_key, "/api/v1/projects?order=asc")
        assert [p["id"] for p in listed.json()["data"]["data"]] == [4242, 4343]


def test_sandbox_keeps_data_between_runs(tmp_path: Path) -> None:
    with start_sandbox([4242], root=tmp_path) as sandbox:
        created = httpx.post(sandbox.base_url + "/api/v1/projects/4242/conversations",
                             headers={"Authorization": f"Bearer {sandbox.api_key}"},
                             json={"name": "Onboarding FAQ"})
        assert created.status_code == 201
    with start_sandbox([4242, 5000], root=tmp_path) as again:
        listed = _get(again.base_url, again.api_key, "/api/v1/projects/4242/conversations")
        assert [c["name"] for c in listed.json()["data"]["data"]] == ["Onboarding FAQ"]
        assert _get(again.base_url, again.api_key, "/api/v1/projects/5000").status_code == 200


def test_sandbox_stops_serving_when_closed(tmp_path: Path) -> None:
    sandbox = start_sandbox([1], root=tmp_path)
    sandbox.close()
    sandbox.close()
    with pytest.raises(httpx.TransportError):
        _get(sandbox.base_url, sandbox.api_key, "/api/v1/user")


@pytest.mark.parametrize("ids", [[0], [-5], ["12"], [True], [2**63], [10**5000]],
                         ids=["zero", "negative", "text", "bool", "2^63", "5001-digits"])
def test_sandbox_refuses_bad_project_ids(tmp_path: Path, ids: list[object]) -> None:
    with pytest.raises(EmulatorError, match="project ids must be from 1 to 9223372036854775807"):
        start_sandbox(ids, root=tmp_path)  # type: ignore[arg-type]
    assert not (tmp_path / "sandbox.db").exists()


def test_sandbox_reports_an_unusable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ReconcilerError, match="sandbox directory"):
        start_sandbox([1], root=blocker / "sub")


def test_plan_sandbox_with_a_project_id_beyond_64_bits_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(f"version: 1\nprojects:\n  - id: {2**63}\n")
    out, err = io.StringIO(), io.StringIO()
    code = main(["plan", "--sandbox", "-f", "c.yaml"], env={}, stdout=out, stderr=err)
    assert code == 1
    assert "c.yaml:3:9: projects[0].id: must be at most 9223372036854775807" in err.getvalue()
    assert not (tmp_path / ".reconciler").exists()
