"""The semantic rules of the desired state, checked after the schema.

Over every file at once: project ids, names and session ids declared twice, `renamed_from`
conflicts, invalid or self-defeating `owns`/`ignore`/`protect` patterns, and the other settings
the schema cannot judge. Each broken rule is a located problem. Also the warnings: what is valid
but may surprise (a name not in normal form, a project that prunes but owns nothing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from reconciler.desired.model import THROWAWAY_PREFIX, ProjectSpec, is_throwaway
from reconciler.desired.yamlsource import Path, SourceDocument
from reconciler.errors import Location, Problem
from reconciler.text import (
    clipped,
    has_hidden_characters,
    normal_form,
    shown,
    shown_briefly,
    why_not_normal,
)


@dataclass
class LoadedFile:
    """One parsed file, the problems found in it, and its projects: what the rules check
    (made by `reconciler.desired.loader`).

    `projects` pairs each project's index in `data["projects"]` with its model. A project with
    schema problems is still built from its valid parts (invalid settings fall back to their
    defaults, invalid conversations are left out) so that the semantic rules can check it too;
    the model is only returned to callers when no problem was found anywhere.
    """

    document: SourceDocument
    problems: list[Problem] = field(default_factory=list)
    projects: list[tuple[int, ProjectSpec]] = field(default_factory=list)


def _quoted(text: str) -> str:
    """`text` quoted as a message repeats it, cut when long (`text.clipped`)."""
    return clipped(text, quote=repr)


def check_rules(loaded: Sequence[LoadedFile]) -> list[Problem]:
    """The semantic rules of the desired state over the sound projects of all files, each
    broken rule a located problem: ids, names and session ids declared twice, `renamed_from`
    conflicts, invalid or self-defeating patterns, a non-finite `max_delete_fraction`."""
    problems: list[Problem] = []
    project_ids: dict[int, Location] = {}
    session_ids: dict[str, Location] = {}
    for item in loaded:
        problems.extend(_check_file_settings(item.document))
        for index, spec in item.projects:
            at = _ProjectSource(item.document, index, spec)
            problems.extend(at.check_id(project_ids))
            problems.extend(at.check_settings())
            problems.extend(at.check_names())
            problems.extend(at.check_session_ids(session_ids))
    return problems


def _check_file_settings(document: SourceDocument) -> list[Problem]:
    data = document.data
    defaults = data.get("defaults") if isinstance(data, dict) else None
    if not isinstance(defaults, dict):
        return []
    return _check_settings(document, ("defaults",), defaults)


def _check_settings(document: SourceDocument, path: Path, raw: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    fraction = raw.get("max_delete_fraction")
    if isinstance(fraction, float) and not math.isfinite(fraction):
        problems.append(Problem("max_delete_fraction must be a number greater than 0 and at "
                                "most 1", document.locate((*path, "max_delete_fraction"))))
    for kind in ("owns", "ignore", "protect"):
        patterns = raw.get(kind)
        for index, pattern in enumerate(patterns if isinstance(patterns, list) else ()):
            if not isinstance(pattern, str) or not pattern:
                continue  # not a pattern at all: the schema reports it
            message = glob_problem(pattern)
            if message is not None:
                where = document.locate((*path, kind, index))
                problems.append(Problem(
                    f"{kind} pattern {_quoted(pattern)}: {message}", where))
    return problems


def glob_problem(pattern: str) -> str | None:
    """Why `pattern` is not a usable fnmatch pattern, or None when it is.

    Refused: an empty pattern, a `[` with no closing `]` (fnmatch would silently match it
    literally; write `[[]` for a literal `[`), and a reversed range such as `[z-a]` (matches
    nothing).
    """
    if not pattern:
        return "a pattern must not be empty"
    index = 0
    while index < len(pattern):
        if pattern[index] != "[":
            index += 1
            continue
        end = index + 1
        if end < len(pattern) and pattern[end] == "!":
            end += 1
        if end < len(pattern) and pattern[end] == "]":
            end += 1
        end = pattern.find("]", end)
        if end < 0:
            return "unclosed '[' (write '[[]' to match a literal '[')"
        if _has_reversed_range(pattern[index + 1 : end].lstrip("!")):
            return (f"reversed range in {_quoted(pattern[index : end + 1])} "
                    "matches nothing")
        index = end + 1
    return None


def _has_reversed_range(members: str) -> bool:
    return any(
        members[i + 1] == "-" and members[i] > members[i + 2] for i in range(len(members) - 2)
    )


@dataclass
class _ProjectSource:
    """A sound project entry with the document it came from, for located rule checks."""

    document: SourceDocument
    index: int
    spec: ProjectSpec

    def locate(self, *path: str | int) -> Location:
        return self.document.locate(("projects", self.index, *path))

    def check_id(self, seen: dict[int, Location]) -> list[Problem]:
        first = seen.setdefault(self.spec.id, self.locate("id"))
        if first == self.locate("id"):
            return []
        return [Problem(f"project {self.spec.id} is declared twice (first at {first})",
                        self.locate("id"))]

    def check_settings(self) -> list[Problem]:
        raw = self.document.data["projects"][self.index]
        return _check_settings(self.document, ("projects", self.index), raw)

    def check_names(self) -> list[Problem]:
        problems: list[Problem] = []
        names: dict[str, Location] = {}
        for i, entry in enumerate(self.spec.conversations):
            where = self.locate("conversations", i, "name")
            first = names.setdefault(entry.name, where)
            if first != where:
                problems.append(Problem(f"conversation {shown(entry.name)} is declared twice in "
                                        f"project {self.spec.id} (first at {first})"
                                        f"{self._differs_invisibly(first, where)}", where))
            problems.extend(self._check_ignored(entry.name, where))
            problems.extend(_check_reserved(entry.name, where))
        problems.extend(self._check_renames(names))
        return problems

    def _differs_invisibly(self, first: Location, second: Location) -> str:
        """", written differently: ..." when two declared names are equal only in normal form."""
        raw = [self._raw_name(where) for where in (first, second)]
        if raw[0] is None or raw[1] is None or raw[0] == raw[1]:
            return ""
        return (f"; written {shown(raw[0])} and {shown(raw[1])}, they differ only in "
                f"{why_not_normal(raw[0]) or why_not_normal(raw[1])}, and reconciler compares "
                "names without that difference")

    def _raw_name(self, where: Location) -> str | None:
        for i, entry in enumerate(self.document.data["projects"][self.index]["conversations"]):
            if self.locate("conversations", i, "name") == where:
                name = entry.get("name") if isinstance(entry, dict) else None
                return name if isinstance(name, str) else None
        return None

    def _check_renames(self, names: dict[str, Location]) -> list[Problem]:
        problems: list[Problem] = []
        listed: dict[str, Location] = {}
        for i, entry in enumerate(self.spec.conversations):
            for k, old in enumerate(entry.renamed_from):
                where = self.locate("conversations", i, "renamed_from", k)
                problems.extend(self._check_rename(entry.name, old, where, names, listed))
                problems.extend(self._check_ignored(old, where))
                problems.extend(_check_reserved(old, where, what="renamed_from "))
        return problems

    def _check_rename(self, name: str, old: str, where: Location,
                      names: dict[str, Location], listed: dict[str, Location]) -> list[Problem]:
        if old == name:
            return [Problem(f"renamed_from lists the conversation's own name {_quoted(old)}",
                            where)]
        if old in names:
            return [Problem(f"renamed_from {_quoted(old)} is the name of another declared "
                            f"conversation (at {names[old]})", where)]
        first = listed.setdefault(old, where)
        if first != where:
            return [Problem(f"renamed_from {_quoted(old)} is already listed at {first}; a live "
                            "conversation can be renamed into one entry only", where)]
        return []

    def _check_ignored(self, name: str, where: Location) -> list[Problem]:
        for pattern in self.spec.ignore:
            if glob_problem(pattern) is None and fnmatchcase(name, pattern):
                return [Problem(f"{_quoted(name)} matches ignore pattern {_quoted(pattern)}, so "
                                "it could never be managed", where)]
        return []

    def check_session_ids(self, seen: dict[str, Location]) -> list[Problem]:
        problems: list[Problem] = []
        for i, entry in enumerate(self.spec.conversations):
            if entry.session_id is None:
                continue
            where = self.locate("conversations", i, "session_id")
            first = seen.setdefault(entry.session_id, where)
            if first != where:
                problems.append(Problem(f"session_id {entry.session_id} is declared twice "
                                        f"(first at {first})", where))
        return problems


def _check_reserved(name: str, where: Location, *, what: str = "") -> list[Problem]:
    """A name reserved for `reconciler test`'s throwaway conversations cannot be declared."""
    if not is_throwaway(name):
        return []
    return [Problem(f"{what}{_quoted(name)} starts with {THROWAWAY_PREFIX.strip()!r}, which "
                    "only `reconciler test`'s throwaway conversations are named with; choose "
                    "another name", where)]


def prune_warnings(loaded: Sequence[LoadedFile]) -> list[Problem]:
    """A located warning for each project that prunes but owns nothing (no `owns` pattern):
    its prune deletes no undeclared conversation, which is safe but rarely what was meant.
    Located at the `prune` that turns it on (the project's, or the file's `defaults`)."""
    warnings: list[Problem] = []
    for item in loaded:
        for index, spec in item.projects:
            if not spec.prune or spec.owns:
                continue
            raw = item.document.data["projects"][index]
            where = ("projects", index, "prune") if "prune" in raw else ("defaults", "prune")
            warnings.append(Problem(
                f"warning: project {spec.id} prunes but owns nothing: prune deletes no "
                "undeclared conversation (only extra copies of a declared name); list the names "
                "this repository owns in `owns`, such as [\"QA *\"], or [\"*\"] when nothing "
                "else uses this API key", item.document.locate(where)))
    return warnings


def normal_form_warnings(loaded: Sequence[LoadedFile]) -> list[Problem]:
    """A located warning for each declared name or prompt that is not in normal form: the
    service may not store it unchanged, so reconciler sends and compares its normal form."""
    warnings: list[Problem] = []
    for item in loaded:
        for index, _ in item.projects:
            entries = item.document.data["projects"][index].get("conversations")
            for i, entry in enumerate(entries if isinstance(entries, list) else ()):
                path = ("projects", index, "conversations", i)
                warnings.extend(_entry_warnings(item.document, path, entry))
    return warnings


def _text_of(where: Path, what: str, value: object) -> tuple[Path, str, object]:
    """A declared text and where it is: a message in the mapping form is its `prompt`."""
    if isinstance(value, dict):
        return (*where, "prompt"), what, value.get("prompt")
    return where, what, value


def _entry_warnings(document: SourceDocument, path: Path, entry: Any) -> list[Problem]:
    if not isinstance(entry, dict):
        return []
    found: list[tuple[Path, str, object]] = [((*path, "name"), "name", entry.get("name"))]
    for key, what in (("renamed_from", "renamed_from name"), ("messages", "message")):
        values = entry.get(key)
        found += [_text_of((*path, key, k), what, value)
                  for k, value in enumerate(values if isinstance(values, list) else ())]
    warnings = []
    for where, what, value in found:
        if not isinstance(value, str):
            continue
        if has_hidden_characters(normal_form(value)):
            warnings.append(Problem(
                f"warning: {what} {shown_briefly(value)} holds characters a reader cannot see "
                "(written as escapes here and in plans); a text that looks the same without "
                "them is a different one", document.locate(where)))
        if not why_not_normal(value):
            continue
        warnings.append(Problem(
            f"warning: {what} {shown_briefly(value)} has {why_not_normal(value)}; the service "
            f"may not store it unchanged, so reconciler sends and compares it as "
            f"{shown_briefly(normal_form(value))}", document.locate(where)))
    return warnings
