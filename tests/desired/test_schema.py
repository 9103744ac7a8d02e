"""The packaged schemas and validation problems in the user's words."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.desired import schema
from reconciler.errors import Location, Problem

VALID = {"version": 1, "projects": [{"id": 1, "conversations": [{"name": "A"}]}]}


def walk_objects(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if item.get("type") == "object":
                found.append(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def test_conversations_schema_is_2020_12() -> None:
    loaded = schema.load_schema("conversations")

    assert loaded["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_load_schema_returns_a_copy() -> None:
    schema.load_schema("conversations")["required"].append("colour")

    assert "colour" not in schema.load_schema("conversations")["required"]


def test_every_object_is_closed_and_every_property_described() -> None:
    objects = walk_objects(schema.load_schema("conversations"))

    assert len(objects) >= 4
    for item in objects:
        assert item["additionalProperties"] is False
        for name, definition in item["properties"].items():
            assert definition.get("description"), name


def test_unknown_schema_name_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="no packaged schema named 'nonexistent'"):
        schema.load_schema("nonexistent")


def test_valid_document_has_no_problems() -> None:
    assert schema.validate(VALID, "conversations") == []


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"version": 1}, "document: missing required key 'projects'"),
        ({}, "document: missing required keys 'version', 'projects'"),
        ({**VALID, "colour": 1}, "colour: unknown key 'colour'; allowed: defaults, lang, "
                                 "projects, version"),
        ({**VALID, "version": 3}, "version: expected 1, got 3"),
        ({"version": 1, "projects": [{"id": "x1"}]},
         'projects[0].id: must be digits or a ${VAR} reference (got "x1")'),
        ({"version": 1, "projects": [{"id": 1.5}]},
         "projects[0].id: expected an integer or a string, got number 1.5"),
        ({"version": 1, "projects": [{"id": 1, "scope": "us"}]},
         'projects[0].scope: expected one of mine, team, all; got "us"'),
        ({"version": 1, "projects": [{"id": 1, "conversations": [{"name": "n" * 300}]}]},
         "projects[0].conversations[0].name: is 300 characters long; the limit is 255"),
        ({"version": 1, "projects": [{"id": 1, "max_delete_fraction": 0}]},
         "projects[0].max_delete_fraction: must be greater than 0 (got 0)"),
        ({"version": 1, "projects": [{"id": 1, "prune": None}]},
         "projects[0].prune: expected true or false, got an empty value"),
    ],
    ids=["required", "required-several", "unknown-key", "const", "pattern", "any-of-type", "enum",
         "max-length",
         "exclusive-minimum", "null"],
)
def test_problem_messages(document: dict[str, Any], message: str) -> None:
    assert [p.message for p in schema.validate(document, "conversations")] == [message]


def test_problems_are_located_through_the_locator_and_unknown_keys_at_the_key() -> None:
    calls: list[tuple[tuple[str | int, ...], bool]] = []

    def locate(path: tuple[str | int, ...], *, key: bool = False) -> Location:
        calls.append((path, key))
        return Location("f.yaml", len(path), 1 if key else 2)

    document = {"version": 1, "projects": [{"id": 0, "extra": True}]}
    problems = schema.validate(document, "conversations", locate=locate)

    assert problems == [
        Problem("projects[0].extra: unknown key 'extra'; allowed: conversations, duplicates, "
                "expect, id, ignore, label, lang, max_delete_fraction, owns, protect, prune, "
                "scope",
                Location("f.yaml", 3, 1)),
        Problem("projects[0].id: must be at least 1 (got 0)", Location("f.yaml", 3, 2)),
    ]
    assert sorted(calls) == [(("projects", 0, "extra"), True), (("projects", 0, "id"), False)]


def test_validate_paths_pairs_problems_with_document_paths() -> None:
    document = {"version": 1, "projects": [{"id": 1, "conversations": [{"name": " "}]}]}

    (found,) = schema.validate_paths(document, "conversations")

    assert found[0] == ("projects", 0, "conversations", 0, "name")


def test_every_wrong_key_of_one_message_is_a_problem_of_its_own() -> None:
    """A message is a prompt or a mapping (anyOf): each mistake inside the mapping is named,
    not only the deepest one."""
    document = {"version": 1, "projects": [{"id": 7, "conversations": [{
        "name": "QA", "messages": [{"prompt": "hi", "expect": {
            "similar_to": {"text": "x", "min": 1.5}, "max_chars": -1, "contians": ["x"]}}]}]}]}
    messages = [p.message for p in schema.validate(document, "conversations")]
    where = "projects[0].conversations[0].messages[0].expect"
    assert sorted(messages) == [
        f"{where}.contians: unknown key 'contians'; did you mean 'contains'?",
        f"{where}.max_chars: must be at least 1 (got -1)",
        f"{where}.similar_to.min: must be at most 1 (got 1.5)",
    ]


def test_a_phrase_is_at_most_ten_thousand_characters() -> None:
    """A `similar_to` text (or a phrase) of megabytes would make every check of it slow."""
    def expecting(text: str) -> dict[str, object]:
        return {"version": 1, "projects": [{"id": 7, "conversations": [{
            "name": "QA", "messages": [{"prompt": "hi", "expect": {
                "similar_to": {"text": text, "min": 0.5}, "contains": [text]}}]}]}]}
    assert schema.validate(expecting("x" * 10_000), "conversations") == []
    problems = [p.message for p in schema.validate(expecting("x" * 10_001), "conversations")]
    assert len(problems) == 2 and all("the limit is 10000" in p for p in problems)
