"""Loads desired-state YAML files into a `DesiredState`.

Five steps: find the files, parse each (`yamlsource`), expand `${VAR}` references, validate
against `schemas/conversations.schema.json`, build the model and check the semantic rules across
all files. Every problem of every file is collected and raised at once as one `InputError`.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.desired import expectations, schema
from reconciler.desired.model import (
    MAX_ID,
    ConversationSpec,
    DesiredState,
    DuplicatePolicy,
    MessageSpec,
    ProjectSpec,
    Reaction,
    Scope,
)
from reconciler.desired.rules import (
    LoadedFile,
    check_rules,
    normal_form_warnings,
    prune_warnings,
)
from reconciler.desired.yamlsource import Path, SourceDocument, parse_file
from reconciler.errors import InputError, Location, Problem, os_reason
from reconciler.keys import API_KEY_VARIABLE, MIN_MASKED_LENGTH
from reconciler.text import clipped, normal_form

SCHEMA_NAME = "conversations"
YAML_SUFFIXES = (".yaml", ".yml")

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VARIABLE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
_DIGITS = re.compile(r"[0-9]+")
_WRITTEN_ID = re.compile(r"-?(?:0|[1-9][0-9]*)")  # 0 and below: the schema's minimum says


def load_desired(
    paths: Sequence[str], *, env: Mapping[str, str], secrets: Sequence[str] = ()
) -> DesiredState:
    """Load, validate and merge the desired-state files or directories in `paths`.

    `env` supplies `${VAR}` values (not read from os.environ). `secrets` are the API key's
    known values, whatever their source: a string value that holds one is refused. Raises
    InputError carrying every problem found in every file, each located by file, line and
    column where possible.
    """
    files, problems = find_files(paths)
    loaded: list[LoadedFile] = []
    for file in files:
        try:
            loaded.append(load_file(file, env=env, secrets=secrets))
        except InputError as error:
            problems.extend(error.problems)
    problems.extend(check_rules(loaded))
    for item in loaded:
        problems.extend(item.problems)
    if problems:
        raise InputError(_in_file_order(problems, files))
    projects = tuple(spec for item in loaded for _, spec in item.projects)
    warnings = _in_file_order([*normal_form_warnings(loaded), *prune_warnings(loaded)], files)
    return DesiredState(projects=projects, files=tuple(files), warnings=tuple(warnings))


def find_files(paths: Sequence[str]) -> tuple[list[str], list[Problem]]:
    """The files `paths` name: files as given, directories as their *.yaml/*.yml files (not
    recursive, sorted, hidden files skipped). A file named twice is read once."""
    if not paths:
        return [], [Problem("no desired-state file given (use -f PATH)")]
    files: list[str] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for path in paths:
        found, found_problems = _files_of(path)
        problems.extend(found_problems)
        for file in found:
            real = os.path.realpath(file)
            if real not in seen:
                seen.add(real)
                files.append(file)
    return files, problems


def _files_of(path: str) -> tuple[list[str], list[Problem]]:
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError) as error:
        return [], [Problem(os_reason(error), Location(path))]
    if stat.S_ISREG(mode):
        return [path], []
    if not stat.S_ISDIR(mode):
        return [], [Problem("not a regular file or directory", Location(path))]
    try:
        names = sorted(os.listdir(path))
    except OSError as error:
        return [], [Problem(f"cannot list directory: {os_reason(error)}", Location(path))]
    found: list[str] = []
    problems: list[Problem] = []
    for name in names:
        if not name.endswith(YAML_SUFFIXES) or name.startswith("."):
            continue
        file = os.path.join(path, name)
        try:
            file_mode = os.stat(file).st_mode
        except OSError as error:
            dangling = os.path.islink(file) and isinstance(error, FileNotFoundError)
            reason = "a symbolic link to nothing" if dangling else os_reason(error)
            problems.append(Problem(f"cannot read {name}: {reason}", Location(file)))
            continue
        if stat.S_ISREG(file_mode):
            found.append(file)
        else:
            kind = "a directory" if stat.S_ISDIR(file_mode) else "not a regular file"
            problems.append(Problem(f"{name} is {kind}; only *.yaml and *.yml files are read "
                                    "from a directory (not recursively)", Location(file)))
    if not found and not problems:
        problems.append(Problem("directory has no *.yaml or *.yml file", Location(path)))
    return found, problems



def load_file(
    file: str, *, env: Mapping[str, str], secrets: Sequence[str] = ()
) -> LoadedFile:
    """Parse, expand and schema-check one file and build its sound projects.

    Raises InputError when the file cannot be parsed at all; other problems are collected in
    the returned `LoadedFile`.
    """
    document = parse_file(file)
    loaded = LoadedFile(document=document, problems=list(document.problems))
    data = document.data
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        loaded.problems.append(Problem(
            f"the file must be a mapping with 'version' and 'projects', not {kind}",
            document.locate(())))
        return loaded
    expansion_problems, unexpanded = expand_variables(document, env=env, secrets=secrets)
    loaded.problems.extend(expansion_problems)
    bad_ids = _coerce_project_ids(document, loaded.problems, skip=unexpanded)
    reported = {("projects", index, "id") for index in bad_ids} | document.refused
    bad = _Invalid(reported)
    for path, problem in schema.validate_paths(data, SCHEMA_NAME, locate=document.locate):
        if path not in reported:  # a value refused as written is reported once
            loaded.problems.append(problem)
            bad.add(path)
    loaded.problems.extend(expectations.check(document))
    if isinstance(data.get("projects"), list) and not bad.at(("projects",)):
        loaded.projects = [
            (index, _build_project(document, index, bad))
            for index in range(len(data["projects"]))
            if not bad.at(("projects", index)) and not bad.at(("projects", index, "id"))
        ]
    return loaded


class _Invalid:
    """The document paths with schema problems; `within(path)`: some problem is at or under
    `path`; `at(path)`: a problem is exactly at `path` or `path` is missing a required key."""

    def __init__(self, paths: set[Path]) -> None:
        self.exact: set[Path] = set()
        self.prefixes: set[Path] = set()
        for path in paths:
            self.add(path)

    def add(self, path: Path) -> None:
        self.exact.add(path)
        self.prefixes.update(path[:end] for end in range(len(path) + 1))

    def at(self, path: Path) -> bool:
        return path in self.exact

    def within(self, path: Path) -> bool:
        return path in self.prefixes


def expand_variables(
    document: SourceDocument, *, env: Mapping[str, str], secrets: Sequence[str] = ()
) -> tuple[list[Problem], set[Path]]:
    """Replace `${VAR}` / `${VAR:-default}` in every string value of `document` from `env`
    (`$${` is a literal `${`; a default is literal text, so a reference nested in it is
    refused). A value that holds the API key afterwards, by its name or by one of its values
    in `secrets`, is refused and left as written. Returns a located problem per unusable
    reference or value, and the paths of the values that could not be fully expanded."""
    problems: list[Problem] = []
    failed: set[Path] = set()
    keys = [*secrets, *([env[API_KEY_VARIABLE]] if env.get(API_KEY_VARIABLE) else [])]
    pending: list[tuple[Any, Path]] = [(document.data, ())]
    while pending:
        container, path = pending.pop()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in list(items):
            if isinstance(value, dict | list):
                pending.append((value, (*path, key)))
            elif isinstance(value, str):
                where = document.locate((*path, key))
                before = len(problems)
                expanded = _expand(value, env, keys, where, problems) if "$" in value else value
                if len(problems) == before and _holds_key(expanded, keys):
                    problems.append(Problem("this value holds the API key, which must not be "
                                            "written into desired state", where))
                    expanded = value
                container[key] = expanded
                if len(problems) > before:
                    failed.add((*path, key))
    return problems, failed


def _holds_key(value: str, keys: Sequence[str]) -> bool:
    """True when `value` is one of `keys`, or contains one of 8 characters or more."""
    return any(value == key or (len(key) >= MIN_MASKED_LENGTH and key in value)
               for key in keys if key)


def _expand(
    text: str, env: Mapping[str, str], keys: Sequence[str], where: Location,
    problems: list[Problem],
) -> str:
    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$${":
            return "${"
        if whole == "${":
            problems.append(Problem("unclosed '${' (write '$${' for a literal '${')", where))
            return whole
        reference = _VARIABLE.fullmatch(match.group(1))
        if reference is None:
            problems.append(Problem(
                f"invalid variable reference {clipped(whole, quote=repr)}", where))
            return whole
        name, default = reference.group(1), reference.group(2)
        value = env.get(name)
        shown = clipped(name)
        if default is not None and "${" in default:
            problems.append(Problem(f"the default of ${{{shown}:-...}} holds '${{': a default "
                                    "is literal text; nested references are not supported",
                                    where))
            return whole
        holds_key = Problem(f"${{{shown}}} holds the API key, which must not be written "
                            "into desired state", where)
        if name == API_KEY_VARIABLE:
            problems.append(holds_key)
            return whole
        if value is None or (value == "" and default is not None):
            if default is None:
                problems.append(Problem(f"environment variable {shown} is not set (use "
                                        f"${{{shown}:-default}} to give a default)", where))
                return whole
            value = default
        if _holds_key(value, keys):
            problems.append(holds_key)
            return whole
        return value

    return _REFERENCE.sub(replace, text)


def _coerce_project_ids(
    document: SourceDocument, problems: list[Problem], *, skip: set[Path]
) -> set[int]:
    """Turn digit-string project ids into integers; returns the indexes of unusable ones
    (those in `skip` were already reported). A number must be written as a whole number in
    decimal digits (`_written_id_problem`)."""
    bad: set[int] = set()
    projects = document.data.get("projects")
    if not isinstance(projects, list):
        return bad
    for index, project in enumerate(projects):
        value = project.get("id") if isinstance(project, dict) else None
        if not isinstance(value, str):
            problem = _written_id_problem(document, ("projects", index, "id"), value)
            if problem is not None:
                problems.append(problem)
                bad.add(index)
            continue
        if _DIGITS.fullmatch(value) and len(value.lstrip("0")) <= len(str(MAX_ID)):
            project["id"] = int(value)
            continue
        bad.add(index)
        project["id"] = 1  # reported here; keeps the schema from reporting it a second time
        if ("projects", index, "id") in skip:
            continue
        message = (f"project id must be at most {MAX_ID}" if _DIGITS.fullmatch(value) else
                   "project id must be an integer or a string of digits, got "
                   f"{clipped(value, limit=40, quote=repr)}")
        problems.append(Problem(message, document.locate(("projects", index, "id"))))
    return bad


def _written_id_problem(document: SourceDocument, path: Path, value: Any) -> Problem | None:
    """A project id that YAML read as a number but that is not written as a whole number in
    decimal digits: `1001.0`, `1.001e+3`, `+1001`, `1.5` (a YAML 1.1 form such as `0644` was
    refused by the parser already; 0 and negative ids are left to the schema)."""
    written = document.written.get(path)
    if (written is None or path in document.refused or isinstance(value, bool)
            or not isinstance(value, int | float) or _WRITTEN_ID.fullmatch(written)):
        return None
    shown = clipped(written)
    if isinstance(value, float) and not value.is_integer():
        message = f"id: {shown} is not a plain decimal number: a project id is a whole number"
    else:
        message = (f"id: {shown} is not a plain decimal number: a project id is written in "
                   f"digits only; write {clipped(str(int(value)))}")
    return Problem(message, document.locate(path))


def _build_project(document: SourceDocument, index: int, bad: _Invalid) -> ProjectSpec:
    data = document.data
    raw: dict[str, Any] = data["projects"][index]
    path: Path = ("projects", index)
    defaults = data.get("defaults") if not bad.at(("defaults",)) else None

    def setting(key: str, builtin: Any) -> Any:
        if key in raw and not bad.within((*path, key)):
            return raw[key]
        if isinstance(defaults, dict) and key in defaults and not bad.within(("defaults", key)):
            return defaults[key]
        return builtin

    fraction = setting("max_delete_fraction", None)
    return ProjectSpec(
        id=int(raw["id"]),
        label=setting("label", None) if "label" in raw else None,
        scope=Scope(setting("scope", Scope.MINE.value)),
        prune=bool(setting("prune", False)),
        owns=tuple(setting("owns", ())),
        ignore=tuple(setting("ignore", ())),
        protect=tuple(setting("protect", ())),
        duplicates=DuplicatePolicy(setting("duplicates", DuplicatePolicy.ERROR.value)),
        max_delete_fraction=None if fraction is None else float(fraction),
        lang=_language(document, raw, bad, path),
        conversations=_build_conversations(document, path, bad),
        location=document.locate(path),
    )


def _language(document: SourceDocument, raw: dict[str, Any], bad: _Invalid, path: Path) -> Any:
    if "lang" in raw and not bad.within((*path, "lang")):
        return raw["lang"]
    return document.data.get("lang") if not bad.within(("lang",)) else None


def _build_conversations(
    document: SourceDocument, path: Path, bad: _Invalid
) -> tuple[ConversationSpec, ...]:
    entries = document.data["projects"][path[1]].get("conversations", [])
    if bad.at((*path, "conversations")):
        return ()
    expect_defaults = [_expect_at(document, where, bad)
                       for where in ((*path, "expect"), ("defaults", "expect"))]
    return tuple(
        _build_conversation(document, (*path, "conversations", i), entry, expect_defaults)
        for i, entry in enumerate(entries)
        if not bad.within((*path, "conversations", i))
    )


def _expect_at(document: SourceDocument, path: Path, bad: _Invalid) -> dict[str, Any] | None:
    """The `expect:` mapping at `path` (a project's or the defaults'), None when there is none
    or it is not valid."""
    container: Any = document.data
    for part in path:
        if isinstance(container, dict):
            container = container.get(part)
        elif isinstance(container, list) and isinstance(part, int) and part < len(container):
            container = container[part]
        else:
            container = None
    return container if isinstance(container, dict) and not bad.within(path) else None


def _build_conversation(
    document: SourceDocument, path: Path, entry: dict[str, Any],
    expect_defaults: list[dict[str, Any] | None],
) -> ConversationSpec:
    session_id = entry.get("session_id")
    return ConversationSpec(
        name=normal_form(entry["name"]),
        renamed_from=tuple(normal_form(old) for old in entry.get("renamed_from", ())),
        session_id=session_id.lower() if isinstance(session_id, str) else None,
        messages=tuple(_build_message(document, (*path, "messages", k), message, expect_defaults)
                       for k, message in enumerate(entry.get("messages", ()))),
        persona=entry.get("persona"),
        response_source=entry.get("response_source"),
        custom_context=entry.get("custom_context"),
        agent_capability=entry.get("agent_capability"),
        chatbot_model=entry.get("chatbot_model"),
        location=document.locate(path),
    )


def _build_message(
    document: SourceDocument, path: Path, message: str | dict[str, Any],
    expect_defaults: list[dict[str, Any] | None],
) -> MessageSpec:
    """A declared message, a plain string or the mapping form; the project's and the defaults'
    `expect:` are merged into a message that has one."""
    if isinstance(message, str):
        return MessageSpec(normal_form(message), location=document.locate(path))
    reaction = message.get("reaction")
    return MessageSpec(
        prompt=normal_form(message["prompt"]),
        reaction=None if reaction is None else Reaction(reaction),
        expect=expectations.build(message.get("expect"), *expect_defaults),
        location=document.locate(path),
    )


def _in_file_order(problems: list[Problem], files: list[str]) -> list[Problem]:
    order = {file: index for index, file in enumerate(files)}

    def key(problem: Problem) -> tuple[int, int, int]:
        where = problem.location
        if where is None:
            return (-1, 0, 0)
        return (order.get(where.file, -1), where.line, where.column)

    return sorted(problems, key=key)
