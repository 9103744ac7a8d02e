"""The README is a landing page: its set-up commands are the ones the project runs, its
example validates, and its links into the documentation reach existing pages and headings."""

from __future__ import annotations

import re
from pathlib import Path

from reconciler.emulator import Emulator
from tests import ROOT
from tests.workspace import Workspace

README = ROOT / "README.md"


def _text() -> str:
    return README.read_text(encoding="utf-8")


def test_the_readme_is_a_landing_page() -> None:
    assert len(_text().splitlines()) <= 200


def test_the_set_up_commands_are_the_sandbox_quickstart_and_the_test_command() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", _text(), re.DOTALL)
    assert ("python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/reconciler "
            "apply --sandbox --auto-approve -f examples/quickstart.yaml\n") in blocks
    assert ("python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && "
            ".venv/bin/python -m pytest -q\n") in blocks


def _slug(heading: str) -> str:
    """The anchor MkDocs (and GitHub) gives a heading."""
    text = re.sub(r"[`*]", "", heading).strip().lower()
    return re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", text))


def test_every_link_into_the_documentation_reaches_a_page_and_heading() -> None:
    links = re.findall(r"\]\((docs/[^)\s]+)\)", _text())
    assert len(links) >= 15
    for link in links:
        path, _, anchor = link.partition("#")
        page = ROOT / path
        assert page.is_file(), f"README links to {path}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.MULTILINE)
            assert anchor in {_slug(h) for h in headings}, f"{link}: no such heading"


def test_the_example_validates(tmp_path: Path, emulator: Emulator,
                               api_env: dict[str, str]) -> None:
    (example,) = re.findall(r"```yaml\n(.*?)```", _text(), re.DOTALL)
    (tmp_path / "example.yaml").write_text(example, encoding="utf-8")
    result = Workspace(tmp_path, api_env, emulator).run("validate", "-f", "example.yaml")
    assert result.code == 0, result.err
    assert "OK: 1 projects, 2 conversations" in result.out
