"""The packaged JSON Schemas and validation against them.

The one module that imports `jsonschema`. Schemas ship in the package `reconciler.schemas` (the
repository's top-level `schemas/` directory); a schema is named by its path there without the
`.schema.json` suffix: `"conversations"`, `"plan"`, `"api/conversation"`. Validation errors
become `Problem`s with short, user-worded messages; a `Locator` maps a document path back to
a place in a file.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, Protocol

import jsonschema
from jsonschema.exceptions import ValidationError

from reconciler.desired.yamlsource import Path
from reconciler.errors import Location, Problem
from reconciler.text import clipped

SCHEMA_PACKAGE = "reconciler.schemas"
_SUFFIX = ".schema.json"
_MAX_SHOWN = 60  # characters of a value a message repeats
_MAX_MESSAGE = 200  # characters of one of jsonschema's own messages


class Locator(Protocol):
    """Maps a path in a document to where it was written (a key's place with `key=True`)."""

    def __call__(self, path: Path, *, key: bool = False) -> Location | None: ...


def load_schema(name: str) -> dict[str, Any]:
    """The packaged schema `name` (e.g. `"conversations"`, `"api/conversation"`), as a new dict.

    Raises LookupError when no such schema is packaged, ValueError when it is not a valid
    JSON Schema (a packaging bug, not a user error).
    """
    return copy.deepcopy(_validator(name).schema)


def validate(
    document: object, schema_name: str, *, locate: Locator | None = None
) -> list[Problem]:
    """Every way `document` violates schema `schema_name`, as located problems.

    Problems are ordered by their place in the document. `locate` gives locations (None: the
    problems carry no location). Raises what `load_schema` raises for an unknown schema.
    """
    return [problem for _, problem in validate_paths(document, schema_name, locate=locate)]


def validate_paths(
    document: object, schema_name: str, *, locate: Locator | None = None
) -> list[tuple[Path, Problem]]:
    """Like `validate`, each problem paired with the document path it is about."""
    validator = _validator(schema_name)
    found: list[tuple[Path, Problem]] = []
    for error in validator.iter_errors(document):
        for item in _problems(_deepest(error), locate):
            if item not in found:
                found.append(item)
    found.sort(key=lambda item: _sort_key(item[0]))
    return found


def _sort_key(path: Path) -> tuple[tuple[int, str], ...]:
    return tuple((part, "") if isinstance(part, int) else (-1, part) for part in path)


@functools.cache
def _validator(name: str) -> Any:
    file_name = name if name.endswith(".json") else name + _SUFFIX
    resource = resources.files(SCHEMA_PACKAGE)
    for part in file_name.split("/"):
        resource = resource.joinpath(part)
    try:
        schema = json.loads(resource.read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise LookupError(f"no packaged schema named {name!r}") from None
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as error:
        raise ValueError(f"packaged schema {name!r} is invalid: {error.message}") from None
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _deepest(error: ValidationError) -> ValidationError:
    """For anyOf/oneOf failures, the error of the branch whose type matched, if any (a type
    error deeper inside that branch included)."""
    depth = len(error.absolute_path)
    relevant = [e for e in error.context or ()
                if e.validator != "type" or len(e.absolute_path) > depth]
    if not relevant:
        return error
    return _deepest(max(relevant, key=lambda e: len(e.absolute_path)))


def _problems(
    error: ValidationError, locate: Locator | None
) -> list[tuple[Path, Problem]]:
    path: Path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        return [
            ((*path, key), Problem(
                f"{_where(path, key)}: unknown key {clipped(key, quote=repr)}; "
                f"{_meant_key(key, allowed)}",
                _locate(locate, (*path, key), key=True),
            ))
            for key in error.instance
            if key not in allowed
        ]
    return [(path, Problem(f"{_where(path)}: {_message(error)}", _locate(locate, path)))]


def _meant_key(key: object, allowed: list[str]) -> str:
    """"did you mean 'messages'?" for a key close to an allowed one, else the allowed keys."""
    close = difflib.get_close_matches(key, allowed, n=1) if isinstance(key, str) else []
    return f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"


def _locate(locate: Locator | None, path: Path, *, key: bool = False) -> Location | None:
    return None if locate is None else locate(path, key=key)


def _where(path: Sequence[str | int], extra: str | None = None) -> str:
    text = ""
    for part in (*path, *((extra,) if extra is not None else ())):
        name = clipped(str(part))
        text += f"[{part}]" if isinstance(part, int) else (f".{name}" if text else name)
    return text or "document"


def _message(error: ValidationError) -> str:
    """A short message in the user's words for the common keywords; jsonschema's otherwise."""
    kind, expected, value = error.validator, error.validator_value, error.instance
    custom = error.schema.get("errorMessage") if isinstance(error.schema, dict) else None
    if kind == "pattern" and isinstance(error.schema, dict):
        custom = error.schema.get("patternErrorMessage", custom)
    if isinstance(custom, str):
        return f"{custom} (got {_show(value)})"
    simple: dict[str, Callable[[], str]] = {
        "required": lambda: f"missing required {_required_keys(error)}",
        "type": lambda: f"expected {_types(expected)}, got {_describe(value)}",
        "enum": lambda: f"expected one of {', '.join(map(str, expected))}; got {_show(value)}",
        "const": lambda: f"expected {_show(expected)}, got {_show(value)}",
        "minLength": lambda: f"must not be empty (got {_show(value)})" if expected == 1
        else f"must be at least {expected} characters long",
        "maxLength": lambda: f"is {len(value)} characters long; the limit is {expected}",
        "minItems": lambda: f"must have at least {expected} item(s)",
        "minimum": lambda: f"must be at least {expected} (got {_show(value)})",
        "maximum": lambda: f"must be at most {expected} (got {_show(value)})",
        "exclusiveMinimum": lambda: f"must be greater than {expected} (got {_show(value)})",
        "exclusiveMaximum": lambda: f"must be less than {expected} (got {_show(value)})",
        "uniqueItems": lambda: "must not list the same value twice",
        "anyOf": lambda: f"expected {_branch_types(error)}, got {_describe(value)}",
        "oneOf": lambda: f"expected {_branch_types(error)}, got {_describe(value)}",
    }
    render = simple.get(str(kind))
    # jsonschema's own message repeats the value it is about: kept short
    return render() if render is not None else clipped(str(error.message), limit=_MAX_MESSAGE)


def _required_keys(error: ValidationError) -> str:
    """`key 'a'` or `keys 'a', 'b'`: every key missing here (jsonschema reports each one
    separately; the identical messages are merged by `validate_paths`)."""
    missing = [key for key in error.validator_value if key not in (error.instance or {})]
    if len(missing) == 1:
        return f"key {missing[0]!r}"
    return "keys " + ", ".join(repr(key) for key in missing)


def _branch_types(error: ValidationError) -> str:
    types = [e.validator_value for e in error.context or () if e.validator == "type"]
    return _types(types) if types else "a value matching one of the allowed forms"


def _types(expected: object) -> str:
    names = expected if isinstance(expected, list) else [expected]
    words = {"object": "a mapping", "array": "a list", "string": "a string",
             "integer": "an integer", "number": "a number", "boolean": "true or false",
             "null": "nothing"}
    return " or ".join(words.get(str(name), str(name)) for name in names)


def _describe(value: object) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    kind = {bool: "boolean", str: "string", int: "integer", float: "number"}.get(
        type(value), type(value).__name__)
    return f"{kind} {_show(value)}"


def _show(value: object) -> str:
    if isinstance(value, dict | list):
        return "{...}" if isinstance(value, dict) else "[...]"
    if isinstance(value, str):
        return clipped(value, limit=_MAX_SHOWN, quote=_json_string)
    return clipped(repr(value) if isinstance(value, float) else json.dumps(value),
                   limit=_MAX_SHOWN)


def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
