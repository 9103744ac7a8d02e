"""The layering rules of ARCHITECTURE.md ("Invariants"), checked on the package's source.

A change that makes a lower layer import a higher one (shared < desired < api < plan < render <
apply < cli), a pure module import the client, the emulator share the tool's assumptions, a
second module import a wrapped library, a module other than the operation kinds and apply write
through the client, or a module other than apply run an operation fails here, naming the file
and the import.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"

# The layers, lowest first: a module may import its own layer and the ones below, never one
# above. The shared helpers at the top of the package are below every layer; the emulator is
# beside them all.
SHARED = ("reconciler.arguments", "reconciler.errors", "reconciler.gcpause", "reconciler.inputs",
          "reconciler.jsonio", "reconciler.keys", "reconciler.text")
LAYERS = ("desired", "api", "plan", "render", "apply", "cli")

# Modules that decide or describe, with no I/O: they may not reach the network, the files a
# command writes, or the command line.
PURE = ("desired/model", "api/live", "text", "plan/match", "plan/build", "plan/model",
        "plan/guards", "plan/budget", "plan/health", "plan/trials", "api/lookup",
        "render/formats", "api/retry", "api/pacer", "api/answer_times", "api/send_identity",
        *(f"plan/operations/{path.stem}"
          for path in sorted((PACKAGE / "plan" / "operations").glob("*.py"))))
IO_AND_CLI = ("reconciler.api.client", "reconciler.api.engine", "reconciler.apply",
              "reconciler.plan.make", "reconciler.plan.stale", "reconciler.cli",
              "reconciler.emulator", "httpx")

# Each third-party library is wrapped in one module.
WRAPPERS = {"httpx": "api/engine", "yaml": "desired/yamlsource", "jsonschema": "desired/schema",
            "deepdiff": "plan/field_changes", "orjson": "jsonio", "tqdm": "cli/progress",
            "shtab": "cli/completion", "regex": "plan/health",
            "rapidfuzz": "plan/health"}

# What the emulator may use of the tool: shared plain helpers, never its client or its logic.
EMULATOR_MAY_IMPORT = ("reconciler.emulator", "reconciler.api.settings", "reconciler.errors",
                       "reconciler.jsonio", "reconciler.arguments")

# The command line's grammar, and the one module that reads what it parsed; the commands take
# typed parameters. Completion walks the grammar; the emulator has a grammar of its own; the
# shared argument types serve both.
ARGPARSE_IN_CLI = ("cli/parser.py", "cli/main.py", "cli/completion.py")
ARGPARSE = (*ARGPARSE_IN_CLI, "arguments.py", "emulator/cli.py", "emulator/variants.py")

# The command line's own modules that touch the standard streams: the entry (argparse's
# --help and --version) and the console every command writes through.
STREAMS = ("cli/main.py", "cli/console.py")

WRITES = re.compile(r"\.(create_conversation|rename_conversation|delete_conversation|"
                    r"send_message)\(")
# An operation kind applies itself (`Operation.apply`); only apply/run.py calls it.
APPLIES = re.compile(r"\.apply\(")


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
    assert path.is_file(), path
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


def writing(pattern: re.Pattern[str]) -> list[str]:
    """The package's modules (the emulator aside) whose source matches `pattern`."""
    return sorted(
        path.relative_to(PACKAGE).as_posix() for path in module_files()
        if "emulator" not in path.parts and pattern.search(path.read_text(encoding="utf-8")))


def test_only_the_operation_kinds_restore_and_test_write_through_the_client() -> None:
    """The kinds' `apply` methods make the writes, and `restore` (apply/restore.py), and
    `test`'s throwaway conversations (apply/trials.py)."""
    kinds = {f"plan/operations/{path.name}"
             for path in (PACKAGE / "plan" / "operations").glob("*.py")}
    writers = set(writing(WRITES))
    assert writers - kinds == {"apply/restore.py", "apply/trials.py"}
    assert writers & kinds == {f"plan/operations/{kind}.py"
                               for kind in ("rename", "create", "send", "delete")}


def test_only_apply_runs_an_operation() -> None:
    assert writing(APPLIES) == ["apply/run.py"]


def test_only_the_command_line_touches_the_standard_streams() -> None:
    touching = sorted(
        str(path.relative_to(PACKAGE)) for path in module_files()
        if "emulator" not in path.parts
        and path.relative_to(PACKAGE).as_posix() not in STREAMS
        and re.search(r"\bprint\(|sys\.std(out|err)\b", path.read_text(encoding="utf-8")))
    assert touching == []



def layer_of(module: str) -> int | None:
    """The rank of the layer `module` (a dotted name) belongs to, or None outside the layers."""
    parts = module.split(".")
    if len(parts) > 1 and parts[0] == "reconciler" and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return None


def test_every_module_sits_in_a_layer_the_shared_helpers_or_the_emulator() -> None:
    strays = sorted(
        str(path.relative_to(PACKAGE)) for path in module_files()
        if path.parent == PACKAGE
        and path.stem not in ("__init__", "__main__")
        and f"reconciler.{path.stem}" not in SHARED)
    assert strays == []


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_no_layer_above_it(layer: str) -> None:
    rank = LAYERS.index(layer)
    upward = sorted(
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in (PACKAGE / layer).rglob("*.py") for name in imports_of(path)
        if (layer_of(name) or 0) > rank
        or (within(name, ("reconciler.emulator",)) and layer != "cli"))
    assert upward == []


def test_the_shared_helpers_import_no_layer() -> None:
    reached = sorted(
        f"{path.name}: {name}" for path in module_files()
        if path.parent == PACKAGE and path.stem not in ("__main__",)
        for name in imports_of(path) if name.startswith("reconciler.")
        and not within(name, SHARED))
    assert reached == []


def test_only_the_command_line_builds_a_client() -> None:
    """Planning, the stale-plan check, export and apply take a `ConversationApi`."""
    importers = sorted(
        str(path.relative_to(PACKAGE)) for path in module_files()
        if any(within(name, ("reconciler.api.client",)) for name in imports_of(path)))
    assert importers == ["cli/commands/apply.py", "cli/common.py", "cli/connect.py"]


def test_only_the_parser_and_the_dispatch_see_argparse() -> None:
    """Commands take typed parameters: a `Namespace` stops at `cli/main.py`."""
    importers = sorted(
        str(path.relative_to(PACKAGE)) for path in module_files()
        if any(within(name, ("argparse",)) for name in imports_of(path)))
    assert importers == sorted(ARGPARSE)


def test_no_command_reads_a_namespace() -> None:
    """A command module neither names argparse's `Namespace` nor reads a flag by `getattr`."""
    readers = sorted(
        str(path.relative_to(PACKAGE)) for path in (PACKAGE / "cli").rglob("*.py")
        if path.relative_to(PACKAGE).as_posix() not in ARGPARSE_IN_CLI
        and re.search(r"\bNamespace\b|getattr\(args\b", path.read_text(encoding="utf-8")))
    assert readers == []


def _layout_in_docs() -> str:
    """The package layout of the development page (docs/development.md): the lines of its
    code block that describe the package."""
    text = (PACKAGE.parent / "docs" / "development.md").read_text(encoding="utf-8")
    start = text.index("reconciler/           the package")
    return text[start:text.index("\nschemas/", start)]


def _holds_code(path: Path) -> bool:
    """Whether a module is more than a docstring (a package's `__init__.py` often is not)."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return any(not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
               for node in body)


@pytest.mark.parametrize(
    "module", [path.relative_to(PACKAGE).as_posix() for path in module_files()
               if path.parent != PACKAGE / "schemas" and path.name != "__main__.py"
               and (path.name != "__init__.py" or _holds_code(path))])
def test_the_code_map_and_the_layout_name_every_module(module: str) -> None:
    """A newcomer finds every module in ARCHITECTURE.md's code map (by its path, or in its
    folder's row by its name), and every module outside the emulator in the development
    page's layout."""
    architecture = (PACKAGE.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
    folder, _, name = module.rpartition("/")
    by_folder = f"`{folder}/`" in architecture and (
        f"`{name}`" in architecture or f"`{name.removesuffix('.py')}`" in architecture)
    assert f"`{module}`" in architecture or by_folder, f"ARCHITECTURE.md does not name {module}"
    if folder != "emulator" and name != "__init__.py":
        assert name in _layout_in_docs(), f"docs/development.md's layout does not name {module}"


def test_only_the_client_makes_calls_through_the_engine() -> None:
    """The endpoints are the client's: no other module builds a `Call` or holds an `Engine`."""
    importers = sorted(
        str(path.relative_to(PACKAGE)) for path in module_files()
        if any(within(name, ("reconciler.api.engine",)) for name in imports_of(path)))
    assert importers == ["api/client.py"]


# What makes a send's identity, and the comparisons that say whether a message is that send.
# (a throwaway conversation's name, "reconciler-test …", is a name, not an external id)
SEND_IDENTITY = re.compile(r'"reconciler-(?!test )|\.external_id\s*(==|!=)'
                           r'|(==|!=)\s*\w+\.external_id\b|sent_identity\(')


def test_only_the_send_identity_module_builds_or_compares_external_ids() -> None:
    """"Is this message that send?" is decided in one place: `api/send_identity.py`."""
    assert writing(SEND_IDENTITY) == ["api/send_identity.py"]


def test_one_module_reads_the_query_credits() -> None:
    """plan, apply -f, apply --plan and restore take the credits left from `plan/credits.py`."""
    assert writing(re.compile(r"\.query_credits\(")) == ["plan/credits.py"]


def test_one_read_of_a_projects_settings() -> None:
    assert writing(re.compile(r'/settings"')) == ["api/client.py"]
    assert len(re.findall(r"async def project_settings\(",
                          (PACKAGE / "api" / "client.py").read_text(encoding="utf-8"))) == 1


# ARCHITECTURE.md, "Where does X live": each behaviour's one place, and what decides it there
# (defined nowhere else in the package).
WHERE = {
    "api/engine.py": ("_wait_refused", "with_retries"),
    "api/send_identity.py": ("own_send", "is_send", "send_external_id"),
    "plan/match.py": ("in_scope", "MatchedBy", "match_project"),
    "plan/operations/delete.py": ("Delete",),
    "plan/model.py": ("Plan", "ProjectPlan"),
    "plan/guards.py": ("send_refusals", "mass_delete_refusal"),
    "plan/credits.py": ("credits_left",),
    "apply/restore.py": ("restore_conversation",),
    "plan/health.py": ("judge", "judge_message"),
}


def _where_table() -> str:
    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
    start = text.index("## Where does X live")
    return text[start:text.index("\n## ", start + 1)]


@pytest.mark.parametrize("module", sorted(WHERE))
def test_each_behaviour_is_decided_in_its_one_place(module: str) -> None:
    assert f"`{module}`" in _where_table()
    for name in WHERE[module]:
        pattern = re.compile(rf"^\s*(async def|def|class) {name}\b", re.M)
        definers = sorted(path.relative_to(PACKAGE).as_posix() for path in module_files()
                          if "emulator" not in path.parts
                          and pattern.search(path.read_text(encoding="utf-8")))
        assert definers == [module], name


def test_every_place_the_where_table_names_exists() -> None:
    named = re.findall(r"^\| [^|]+ \| `([a-z_/]+\.py)` \|", _where_table(), re.M)
    assert named and all((PACKAGE / module).is_file() for module in named)
