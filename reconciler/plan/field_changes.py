"""Field-level differences between what a plan expected and what is live (wraps deepdiff).

The one module that imports deepdiff. Used to explain, in words, why a saved plan's
precondition no longer holds. deepdiff is imported when a difference is first asked for:
the operation kinds use this module, and making or showing a plan never needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def describe_changes(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """`["name: 'Old' -> 'New'", …]` for every field that differs; [] when equal."""
    from deepdiff import DeepDiff

    diff = DeepDiff(dict(expected), dict(actual), verbose_level=2)
    changes: list[str] = []
    for path, change in sorted(diff.get("values_changed", {}).items()):
        changes.append(f"{_field(path)}: {change['old_value']!r} -> {change['new_value']!r}")
    for path, change in sorted(diff.get("type_changes", {}).items()):
        changes.append(f"{_field(path)}: {change['old_value']!r} -> {change['new_value']!r}")
    for path, value in sorted(diff.get("dictionary_item_added", {}).items()):
        changes.append(f"{_field(path)}: added {value!r}")
    for path, value in sorted(diff.get("dictionary_item_removed", {}).items()):
        changes.append(f"{_field(path)}: removed (was {value!r})")
    return changes


def _field(path: str) -> str:
    """deepdiff's `root['name']` as `name`."""
    return path.removeprefix("root").replace("['", ".").replace("']", "").lstrip(".") or "value"
