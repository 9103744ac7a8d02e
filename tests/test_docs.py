"""The documentation site: it builds with no broken link, every page is in its navigation, the
generated reference lists exactly what the code has, and the examples run as written."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from reconciler.emulator import Emulator
from tests import ROOT
from tests.conftest import TEST_API_KEY

DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent


def _hook() -> ModuleType:
    """docs/hooks/reference.py, the MkDocs hook that writes the reference pages."""
    spec = importlib.util.spec_from_file_location("reference_hook",
                                                  DOCS / "hooks" / "reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    pages: dict[str, str] = _hook().pages()
    return pages


def test_the_site_builds_strictly_with_no_broken_link(tmp_path: Path) -> None:
    """`mkdocs build --strict` fails on any warning: a link to a page or an anchor that does
    not exist, a page left out of the navigation, a navigation entry without its page."""
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(tmp_path / "site")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode == 0, run.stderr
    assert "WARNING" not in run.stderr, run.stderr
    site = tmp_path / "site"
    for page in ("reference/commands", "reference/exit-codes", "reference/desired-state",
                 "getting-started"):
        assert (site / page / "index.html").is_file(), page
    assert not (site / "hooks").exists()


def _nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


def test_every_page_is_in_the_nav_once(generated: dict[str, str]) -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = _nav_pages(config["nav"])
    written = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")
               if "hooks" not in path.parts}
    assert sorted(nav) == sorted(written | set(generated))


def _help_options(text: str) -> set[str]:
    """The option names a --help output lists, one line per option."""
    found: set[str] = set()
    for line in text.splitlines():
        if line.startswith("  -"):
            invocation = re.split(r"\s{2,}", line.strip())[0]
            found |= set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", invocation))
    return found - {"-h", "--help"}


def _help(*args: str) -> str:
    run = subprocess.run([sys.executable, "-m", "reconciler", *args, "--help"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "COLUMNS": "200"})
    assert run.returncode == 0, run.stderr
    return run.stdout


def _page_sections(page: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", page, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _page_options(section: str) -> set[str]:
    """The options in the first column of a section's tables."""
    found: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `-"):
            found |= set(re.findall(r"`(--?[A-Za-z][\w-]*)`", line.split(" | ")[0]))
    return found


def test_the_command_reference_lists_exactly_the_commands_and_options_of_help(
        generated: dict[str, str]) -> None:
    top = _help()
    listing = top.split("positional arguments:")[1].split("\n\n")[0]
    commands = re.findall(r"^    ([a-z]+)\s", listing, flags=re.MULTILINE)
    assert "plan" in commands and "completion" in commands
    page = generated["reference/commands.md"]
    sections = _page_sections(page)
    assert [name for name in sections if name != "Global options"] == commands
    global_options = _help_options(top)
    assert _page_options(sections["Global options"]) == global_options
    for command in commands:
        own = _help_options(_help(command)) - global_options
        assert _page_options(sections[command]) == own, command


def test_the_exit_code_reference_has_every_code_the_cli_prints(
        generated: dict[str, str]) -> None:
    printed = re.findall(r"^  (\d+) ", _help().split("exit codes:")[1], flags=re.MULTILINE)
    listed = re.findall(r"^\| (\d+) \|", generated["reference/exit-codes.md"], re.MULTILINE)
    assert listed == printed
    assert {"0", "1", "2", "3", "130", "143"} <= set(listed)


def _schema_fields(node: object) -> set[str]:
    """Every field name declared in any object of a schema (conditions aside)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict) and "if" not in node:
                found |= set(value)
            if key != "if":
                found |= _schema_fields(value)
    elif isinstance(node, list):
        for value in node:
            found |= _schema_fields(value)
    return found


@pytest.mark.parametrize("schema, page", [
    ("conversations", "desired-state"), ("plan", "plan-format"), ("report", "report-format"),
    ("health", "health-format"), ("backup", "backup-format")])
def test_each_format_reference_lists_exactly_the_schemas_fields(
        generated: dict[str, str], schema: str, page: str) -> None:
    declared = _schema_fields(json.loads((ROOT / "schemas" / f"{schema}.schema.json").read_text()))
    text = generated[f"reference/{page}.md"]
    rows = set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE))
    assert rows == declared


def _tour() -> list[str]:
    """The shell blocks of the getting-started page's guided tour, in order."""
    text = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    tour = text[text.index("## A guided tour"):text.index("\n## ", text.index("## A guided tour"))]
    return re.findall(r"```sh\n(.*?)```", tour, re.DOTALL)


def test_the_guided_tour_runs_as_written_on_the_sandbox(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("CUSTOMGPT_", "RECONCILER_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    outputs = []
    for block in _tour():
        run = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"{block}\n{run.stdout}\n{run.stderr}"
        outputs.append(run.stdout)
    assert len(outputs) == 8
    validate, first_plan, _, _, second_plan, again, check = (
        outputs[1], outputs[2], outputs[3], outputs[4], outputs[5], outputs[6], outputs[7])
    assert "OK: 1 projects, 2 conversations" in validate
    assert "Plan: 2 to create, 0 to rename, 1 to send" in first_plan
    assert "~ rename 'Pricing' -> 'Pricing questions'" in second_plan
    assert "Plan: 0 to create, 1 to rename, 1 to send" in second_plan
    assert "No changes." in again
    assert "contains '30 days'" in check and "1 passed, 0 failed" in check


def test_the_client_example_runs_against_the_emulator(emulator: Emulator) -> None:
    """The Python example of the page about talking to the API."""
    text = (DOCS / "concepts" / "api.md").read_text(encoding="utf-8")
    (example,) = [code for code in re.findall(r"```python\n(.*?)```", text, re.DOTALL)
                  if "Client(settings)" in code]
    emulator.ensure_project(4242)
    emulator.add_conversation(4242, "Welcome")
    env = {**os.environ, "CUSTOMGPT_API_KEY": TEST_API_KEY,
           "CUSTOMGPT_BASE_URL": emulator.base_url}
    run = subprocess.run([sys.executable, "-c", example], env=env, capture_output=True,
                         text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "Welcome" in run.stdout
    assert "requests=" in run.stdout
    (created,) = [c for c in emulator.conversations(4242) if c["name"] == "Onboarding FAQ"]
    assert [m["user_query"] for m in emulator.messages(4242, created["session_id"])] == [
        "What is the refund policy?"]
