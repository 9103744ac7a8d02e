"""The layering rules of ARCHITECTURE.md ("Invariants"), checked on the package's source.

A change that makes a pure module import the client, the emulator share the tool's
assumptions, a second module import a wrapped library, or a module other than apply write
through the client fails here, naming the file and the import.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"

# Modules that decide or describe, with no I/O: they may not reach the network, the files a
# command writes, or the command line.
PURE = ("desired", "live", "text", "match", "planning", "plan", "guards", "budget", "lookup",
        "render", "retry", "pacer")
IO_AND_CLI = ("reconciler.client", "reconciler.apply", "reconciler.planner",
              "reconciler.preconditions", "reconciler.commands", "reconciler.cli",
              "reconciler.session", "reconciler.sandbox", "reconciler.emulator", "httpx")

# Each third-party library is wrapped in one module.
WRAPPERS = {"httpx": "client", "yaml": "yamlsource", "jsonschema": "schema",
            "deepdiff": "diff", "orjson": "jsonio", "tqdm": "progress", "shtab": "completion"}

# What the emulator may use of the tool: shared plain helpers, never its client or its logic.
EMULATOR_MAY_IMPORT = ("reconciler.emulator", "reconciler.settings", "reconciler.errors",
                       "reconciler.jsonio")

WRITES = re.compile(r"\.(create_conversation|rename_conversation|delete_conversation|"
                    r"send_message)\(")


def imports_of(path: Path) -> Iterator[str]:
    """Every module `path` imports, as a dotted name (relative imports are not used)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def module_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_no_io_and_no_command_line(module: str) -> None:
    path = PACKAGE / f"{module}.py"
    reached = sorted({name for name in imports_of(path) if within(name, IO_AND_CLI)})
    assert reached == [], f"{path.name} imports {reached}"


@pytest.mark.parametrize("library", sorted(WRAPPERS))
def test_each_library_is_imported_by_its_one_wrapper(library: str) -> None:
    importers = sorted(
        str(path.relative_to(PACKAGE)) for path in module_files()
        if any(within(name, (library,)) for name in imports_of(path)))
    assert importers == [f"{WRAPPERS[library]}.py"]


def test_the_emulator_shares_none_of_the_tools_logic() -> None:
    leaks = sorted(
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in (PACKAGE / "emulator").glob("*.py") for name in imports_of(path)
        if name.startswith("reconciler") and not within(name, EMULATOR_MAY_IMPORT))
    assert leaks == []


def test_only_apply_writes_through_the_client() -> None:
    writers = sorted(
        str(path.relative_to(PACKAGE)) for path in module_files()
        if path.parent == PACKAGE and path.name not in ("client.py", "apply.py")
        and WRITES.search(path.read_text(encoding="utf-8")))
    assert writers == []


def test_only_the_command_line_touches_the_standard_streams() -> None:
    touching = sorted(
        str(path.relative_to(PACKAGE)) for path in module_files()
        if path.parent == PACKAGE and path.name not in ("cli.py", "console.py")
        and re.search(r"\bprint\(|sys\.std(out|err)\b", path.read_text(encoding="utf-8")))
    assert touching == []

