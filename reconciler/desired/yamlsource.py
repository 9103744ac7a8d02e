"""YAML files as plain data that remembers where every value came from.

The one module that imports `yaml`. A file is parsed safely into events (libyaml when available)
and built into dicts, lists and scalars without recursion, so that:
- every value and every mapping key keeps its file, line and column;
- a number or a boolean keeps how it was written, and the forms YAML 1.1 reads otherwise
  than YAML 1.2 and than a reader would are refused (located, not fatal): `0644` (octal 420),
  `16:41` (base 60: 1001), `0x3E9`, `0b1`, `1_000`, and `yes`/`no`/`on`/`off` as booleans,
  so that a project id or a setting is never a number or a truth its writer did not write;
- duplicate mapping keys, aliases (and so alias bombs), explicit tags, several documents,
  nesting deeper than `MAX_DEPTH`, files over `MAX_FILE_BYTES`, invalid UTF-8 and tab
  indentation are refused with located, readable problems instead of tracebacks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from reconciler.errors import InputError, Location, Problem
from reconciler.inputs import YAML_FILE_LIMIT, UnreadableFile, read_input
from reconciler.text import clipped

MAX_FILE_BYTES = YAML_FILE_LIMIT
MAX_DEPTH = 64
_DETAIL = 200  # characters of the parser's own words kept in a message (they may quote input)

Path = tuple[str | int, ...]

_Parser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_CONTAINER_TAGS = {None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_resolve: Callable[[type[ScalarNode], str, tuple[bool, bool]], str] = Resolver().resolve
_constructor = SafeConstructor()


@dataclass
class SourceDocument:
    """One parsed YAML file: its data plus where each value and key was written.

    `problems` holds the non-fatal problems found while building (duplicate keys, numbers and
    booleans in a YAML 1.1 form); the data keeps the first of duplicated keys. `written` holds
    the source text of every scalar read as a number or a boolean; `refused` the paths of the
    values refused in `problems` (a check of their values would only repeat it).
    """

    file: str
    data: Any = None
    values: dict[Path, Location] = field(default_factory=dict)
    keys: dict[Path, Location] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    written: dict[Path, str] = field(default_factory=dict)
    refused: set[Path] = field(default_factory=set)

    def locate(self, path: Path, *, key: bool = False) -> Location:
        """Where the value at `path` (or, with `key`, its mapping key) was written.

        Falls back to the nearest enclosing value, and to the file itself.
        """
        if key and path in self.keys:
            return self.keys[path]
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return found
        return Location(self.file)


class _Refused(Exception):
    """A fatal problem in the current file; parsing stops there."""

    def __init__(self, message: str, location: Location) -> None:
        super().__init__(message)
        self.problem = Problem(message, location)


def parse_file(path: str) -> SourceDocument:
    """Read and parse the YAML file at `path`.

    Raises InputError (one located problem) when the file cannot be read, is too large, is not
    UTF-8, is not valid YAML or uses a YAML feature we refuse.
    """
    text = _read_text(path)
    return parse_text(text, file=path)


def parse_text(text: str, *, file: str) -> SourceDocument:
    """Parse YAML `text` as if read from `file`; see `parse_file` for what is refused."""
    document = SourceDocument(file=file)
    try:
        _Builder(document).run(yaml.parse(text, Loader=_Parser))
    except _Refused as refused:
        raise InputError([refused.problem]) from None
    except yaml.MarkedYAMLError as error:
        raise InputError([_syntax_problem(error, text, file)]) from None
    except yaml.reader.ReaderError as error:
        where = _location_of_offset(text, error.position, file)
        message = f"character not allowed in YAML: {clipped(error.reason, limit=_DETAIL)}"
        raise InputError([Problem(message, where)]) from None
    except yaml.YAMLError as error:  # any other libyaml failure, still bad input
        raise InputError([Problem(f"invalid YAML: {clipped(str(error), limit=_DETAIL)}",
                                  Location(file))]) from None
    return document


def _read_text(path: str) -> str:
    try:
        raw = read_input(path, limit=MAX_FILE_BYTES)
    except UnreadableFile as error:
        message = (f"{error.reason}; split it into several files" if error.too_large
                   else f"cannot read file: {error.reason}")
        raise InputError([Problem(message, Location(path))]) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        byte = raw[error.start]
        message = f"file is not valid UTF-8: byte 0x{byte:02x} at offset {error.start}"
        raise InputError([Problem(message, Location(path, line, column))]) from None


def _location_of_offset(text: str, offset: int, file: str) -> Location:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Location(file, line, column)


def _syntax_problem(error: yaml.MarkedYAMLError, text: str, file: str) -> Problem:
    mark = error.problem_mark or error.context_mark
    if mark is None:
        return Problem(f"invalid YAML: {error.problem or error}", Location(file))
    where = Location(file, mark.line + 1, mark.column + 1)
    if "nesting depth" in str(error.problem):  # libyaml's own limit, above ours for blocks
        return Problem(f"nesting is deeper than {MAX_DEPTH} levels", where)
    lines = text.splitlines()
    if mark.line < len(lines) and lines[mark.line][mark.column : mark.column + 1] == "\t":
        return Problem("tab character in indentation; YAML is indented with spaces", where)
    detail = error.problem or "syntax error"
    if error.context:
        detail = f"{error.context}: {detail}"
    return Problem(f"invalid YAML: {clipped(detail, limit=_DETAIL)}", where)


@dataclass
class _Frame:
    """A mapping or sequence under construction."""

    value: dict[str, Any] | list[Any]
    path: Path
    pending_key: str | None = None


class _Builder:
    """Turns a stream of parser events into data, recording locations; never recurses."""

    def __init__(self, document: SourceDocument) -> None:
        self.document = document
        self.stack: list[_Frame] = []
        self.documents = 0

    def where(self, event: Any) -> Location:
        mark = event.start_mark
        return Location(self.document.file, mark.line + 1, mark.column + 1)

    def run(self, events: Iterator[Any]) -> None:
        for event in events:
            self.handle(event)
        if self.documents == 0:
            message = "file is empty; expected a mapping with 'version' and 'projects'"
            raise _Refused(message, Location(self.document.file, 1, 1))

    def handle(self, event: Any) -> None:
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise _Refused("several YAML documents in one file ('---'); "
                               "put each document in its own file", self.where(event))
        elif isinstance(event, yaml.AliasEvent):
            raise _Refused(f"aliases are not supported (*{clipped(str(event.anchor))}); "
                           "write the value out", self.where(event))
        elif isinstance(event, yaml.ScalarEvent):
            self.add_scalar(event)
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            self.open(event)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            self.close()

    def child_path(self, event: Any) -> Path | None:
        """The path of a new value, or None when the event is a mapping key."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.value, list):
            return (*top.path, len(top.value))
        if top.pending_key is None:
            return None
        return (*top.path, top.pending_key)

    def add_scalar(self, event: Any) -> None:
        path = self.child_path(event)
        if path is None:
            top = self.stack[-1]
            if isinstance(top.value, dict):  # always, when the path is None: a key is due
                self.add_key(event, top, top.value)
            return
        where = self.where(event)
        self.document.values[path] = where
        value = _scalar_value(event, where)
        if isinstance(value, bool | int | float) and not self.written_well(
                path, str(event.value), value, where):
            value = None  # refused: nothing downstream sees it (a 0x... number can be huge)
        self.attach(value)

    def written_well(self, path: Path, text: str, value: bool | float, where: Location) -> bool:
        """Keep how a number or a boolean was written; False, with a problem, for a YAML 1.1
        form (`yaml11`)."""
        self.document.written[path] = text
        problem = yaml11(text, value)
        if problem is None:
            return True
        key = f"{clipped(path[-1])}: " if path and isinstance(path[-1], str) else ""
        self.document.problems.append(Problem(key + problem, where))
        self.document.refused.add(path)
        return False

    def add_key(self, event: Any, top: _Frame, mapping: dict[str, Any]) -> None:
        """`event` as the next key of `mapping`, the value of the innermost frame `top`."""
        key = str(event.value)
        if event.tag not in (None, "!", "tag:yaml.org,2002:str") or key == "<<":
            raise _Refused(f"unsupported mapping key {clipped(key, quote=repr)} (merge keys "
                           "and tags are not supported)", self.where(event))
        path = (*top.path, key)
        if key in mapping:
            first = self.document.keys[path]
            self.document.problems.append(Problem(
                f"duplicate key {clipped(key, quote=repr)} (first at line {first.line}, "
                f"column {first.column})",
                self.where(event)))
            top.pending_key = "\0duplicate"
            return
        self.document.keys[path] = self.where(event)
        top.pending_key = key

    def open(self, event: Any) -> None:
        path = self.child_path(event)
        where = self.where(event)
        if path is None:
            raise _Refused("mapping keys must be plain strings, not collections", where)
        if event.tag not in _CONTAINER_TAGS:
            raise _Refused(f"YAML tag {clipped(str(event.tag))} is not supported", where)
        if len(self.stack) >= MAX_DEPTH:
            raise _Refused(f"nesting is deeper than {MAX_DEPTH} levels", where)
        self.document.values[path] = where
        value: dict[str, Any] | list[Any] = (
            {} if isinstance(event, yaml.MappingStartEvent) else []
        )
        self.stack.append(_Frame(value=value, path=path))

    def close(self) -> None:
        frame = self.stack.pop()
        self.attach(frame.value)

    def attach(self, value: Any) -> None:
        if not self.stack:
            self.document.data = value
            return
        top = self.stack[-1]
        if isinstance(top.value, list):
            top.value.append(value)
            return
        key, top.pending_key = top.pending_key, None
        if key is not None and key != "\0duplicate":
            top.value[key] = value


def _scalar_value(event: Any, where: Location) -> Any:
    """The Python value of a scalar: str, int, float, bool or None (timestamps stay text)."""
    tag = event.tag
    if tag is None and event.implicit[0]:
        tag = _resolve(ScalarNode, event.value, (True, False))
        if tag not in _PLAIN_TAGS:  # timestamps and the like stay as written
            return str(event.value)
    elif tag in (None, "!"):
        return str(event.value)
    elif tag not in _PLAIN_TAGS:
        raise _Refused(f"YAML tag {clipped(str(tag))} is not supported", where)
    node = ScalarNode(tag, event.value, event.start_mark, event.end_mark)
    try:
        return _constructor.construct_object(node)
    except (yaml.YAMLError, ValueError):
        shown = clipped(event.value, limit=40, quote=repr)
        raise _Refused(f"{shown} is not a valid {tag.rsplit(':', 1)[-1]}", where) from None


_DECIMAL_INTEGER = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_LEADING_ZERO = re.compile(r"([-+]?)0+([0-9]+)")
_DECIMAL_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
                            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
_BOOLEANS = {"true": True, "True": True, "TRUE": True,
             "false": False, "False": False, "FALSE": False}


def yaml11(text: str, value: bool | float) -> str | None:
    """Why a scalar written `text`, which PyYAML (YAML 1.1) read as `value`, is refused, or
    None when YAML 1.2 reads it the same and a reader would too: decimal numbers
    (`-12`, `0.3`, `.5`, `1e3` with a dot, `.inf`) and `true`/`false` in any one case."""
    shown = clipped(text)
    if isinstance(value, bool):
        if text in _BOOLEANS:
            return None
        word = "true" if value else "false"
        return (f"{shown} is YAML 1.1 for {word}, which this format does not read: write "
                f"{word}, or \"{shown}\" for the text")
    if isinstance(value, int):
        if _DECIMAL_INTEGER.fullmatch(text):
            return None
        zeros = _LEADING_ZERO.fullmatch(text)
        if zeros is not None:
            return (f"{shown} is not a plain decimal number: YAML 1.1 reads a leading 0 as "
                    f"octal ({_number(value)}); write {clipped(zeros[1] + zeros[2])} or "
                    f"\"{shown}\"")
    elif _DECIMAL_FLOAT.fullmatch(text):
        return None
    number = _number(value)
    return (f"{shown} is not a plain decimal number: YAML 1.1 reads it as {number}; write "
            f"{number} if that is meant, or \"{shown}\" for the text")


def _number(value: float) -> str:
    try:
        return clipped(repr(value))
    except ValueError:  # an integer of more than 4,300 digits (a long hexadecimal one)
        return "a number too long to show"


_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(document: Any) -> str:
    """`document` (plain dicts, lists, strings, numbers) as block-style YAML, keys in the
    order given, Unicode kept, and every string that needs quoting quoted."""
    text: str = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                          default_flow_style=False, width=100)
    return text
