"""MkDocs hook: the reference pages, written from the package when the site is built.

The command reference walks the command-line parser (as `reconciler completion` does), the
exit codes come from the table the CLI prints, and each file format from its JSON schema under
schemas/. Nothing here is written by hand, so the reference cannot drift from the code: a new
command, option, exit code or field shows up at the next build.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"

Schema = dict[str, Any]


# --- commands ------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    from reconciler.cli.parser import build_parser

    return build_parser()


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The commands of `parser`, in the order they are declared."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _global_dests(parser: argparse.ArgumentParser) -> set[str]:
    return {action.dest for group in parser._action_groups if group.title == "global options"
            for action in group._group_actions}


def _cell(text: str) -> str:
    """`text` as the content of one markdown table cell: on one line, its pipes escaped
    (but inside code, where the table does not look for them)."""
    parts = " ".join(text.split()).split("`")
    return "`".join(part if inside % 2 else part.replace("|", "\\|")
                    for inside, part in enumerate(parts))


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    formatter = argparse.HelpFormatter(parser.prog)
    return formatter._expand_help(action)


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.choices is not None and not isinstance(action.choices, dict):
        return " \\| ".join(_code(str(choice)) for choice in action.choices)
    metavar = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
    return _code(metavar)


def _default(action: argparse.Action) -> str:
    default = action.default
    if action.nargs == 0 or default in (None, argparse.SUPPRESS) or default == []:
        return ""
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return _code(str(default))


def option_rows(parser: argparse.ArgumentParser, actions: list[argparse.Action]) -> list[str]:
    """The rows of an options table: name(s), value, default, what it does."""
    rows = ["| option | value | default | what it does |", "|---|---|---|---|"]
    for action in actions:
        if action.option_strings:
            names = ", ".join(_code(name) for name in action.option_strings)
        else:
            names = _code(action.metavar if isinstance(action.metavar, str) else action.dest)
            names += " (positional)"
        notes = _help(parser, action)
        if action.required and action.option_strings:
            notes = f"required. {notes}"
        if action.nargs in ("*", "+") or isinstance(action, argparse._AppendAction):
            notes = f"{notes} (repeatable)" if "repeatable" not in notes else notes
        rows.append(f"| {names} | {_value(action)} | {_default(action)} | {_cell(notes)} |")
    return rows


def _usage(parser: argparse.ArgumentParser, actions: list[argparse.Action]) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=96)
    shown = [action for action in actions if not isinstance(action, argparse._HelpAction)]
    formatter.add_usage(None, shown, parser._mutually_exclusive_groups, prefix="")
    return formatter.format_help().strip() + " [global options]"


def _own_actions(parser: argparse.ArgumentParser, global_dests: set[str]) -> list[argparse.Action]:
    return [action for action in parser._actions
            if action.dest not in global_dests and not isinstance(action, argparse._HelpAction)]


def commands_page() -> str:
    """The reference of every command and option, from the parser."""
    parser = _parser()
    global_dests = _global_dests(parser)
    commands = _subcommands(parser)
    lines = [
        "# Commands and options",
        "",
        "Generated from the command-line parser when this site is built: every command and",
        "option of this version, as `reconciler COMMAND --help` shows them. What each command",
        "does, at length: [Commands](../commands.md).",
        "",
        "| command | what it does |",
        "|---|---|",
        *(f"| [`{name}`](#{name}) | {_cell(sub.description or '')} |"
          for name, sub in commands.items()),
        "",
        "## Global options",
        "",
        "Accepted before or after the command (`reconciler -v plan …` or `reconciler plan … -v`).",
        "",
        *option_rows(parser, [action for action in parser._actions
                              if action.dest in global_dests or action.dest == "version"]),
        "",
    ]
    for name, sub in commands.items():
        actions = _own_actions(sub, global_dests)
        lines += [f"## {name}", "", _cell(sub.description or ""), "", "```", _usage(sub, actions),
                  "```", ""]
        if sub.epilog:
            lines += ["```sh", *[line.strip() for line in sub.epilog.splitlines()[1:]
                                 if line.strip()], "```", ""]
        plain = ("positional arguments", "options", "optional arguments")
        titled = [group for group in sub._action_groups if group.title not in plain
                  and any(action in actions for action in group._group_actions)]
        in_groups = {action for group in titled for action in group._group_actions}
        untitled = [action for action in actions if action not in in_groups]
        if untitled:
            lines += [*option_rows(sub, untitled), ""]
        for group in titled:
            own = [action for action in group._group_actions if action in actions]
            lines += [f"### {(group.title or '')[:1].upper()}{(group.title or '')[1:]}", ""]
            if group.description:
                lines += [_cell(group.description), ""]
            lines += [*option_rows(sub, own), ""]
    return "\n".join(lines)


# --- exit codes ----------------------------------------------------------------------------

def exit_codes_page() -> str:
    """The exit codes, from the table the CLI's --help prints."""
    from reconciler.cli.common import EXIT_CODES

    return "\n".join([
        "# Exit codes",
        "",
        "Generated from the table in `reconciler/cli/common.py` (the one `reconciler --help`",
        "prints) when this site is built.",
        "",
        "| code | meaning |",
        "|---|---|",
        *(f"| {code} | {_cell(meaning)} |" for code, meaning in EXIT_CODES.items()),
        "",
    ])


# --- file formats --------------------------------------------------------------------------

def _resolve(root: Schema, node: Schema) -> tuple[str | None, Schema]:
    """The definition `node` refers to (its name and body), or `node` itself."""
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        return name, root["$defs"][name]
    return None, node


def _is_object(node: Schema) -> bool:
    return "properties" in node


def _anchor(title: str) -> str:
    return "".join(ch for ch in title.lower().replace(" ", "-") if ch.isalnum() or ch in "-_")


class _Format:
    """The sections of one schema's reference page: one per object, with a table of fields."""

    def __init__(self, root: Schema) -> None:
        self.root = root
        self.sections: list[tuple[str, Schema]] = []
        self.titles: dict[int, str] = {}

    def section_of(self, title: str, node: Schema) -> str:
        if id(node) not in self.titles:
            self.titles[id(node)] = title
            self.sections.append((title, node))
        return self.titles[id(node)]

    def kind(self, node: Schema, path: str) -> str:
        """What a value may be, in words, with a link to the section of an object."""
        name, body = _resolve(self.root, node)
        if _is_object(body):
            title = self.section_of(name or path, body)
            return f"object ([{title}](#{_anchor(title)}))"
        if "const" in body:
            return f"always {_code(json.dumps(body['const']))}"
        if "enum" in body:
            return "one of " + ", ".join(_code(json.dumps(value)) for value in body["enum"])
        for combinator in ("anyOf", "oneOf"):
            if combinator in body:
                return " or ".join(self.kind(option, path) for option in body[combinator])
        kind = body.get("type", "any value")
        if isinstance(kind, list):
            kind = " or ".join(kind)
        if kind == "array" and isinstance(body.get("items"), dict):
            item = self.kind(body["items"], path + "[]")
            kind = f"list of ({item})" if " or " in item else f"list of {item}"
        bounds = [f"{word} {body[key]:,}" if isinstance(body[key], int) else f"{word} {body[key]}"
                  for key, word in (("minimum", "≥"), ("exclusiveMinimum", ">"),
                                    ("maximum", "≤"), ("minLength", "length ≥"),
                                    ("maxLength", "length ≤"), ("minItems", "items ≥"))
                  if key in body]
        if body.get("pattern"):
            bounds.append(f"matching {_code(body['pattern'])}")
        return f"{kind} ({', '.join(bounds)})" if bounds else kind

    def table(self, node: Schema) -> list[str]:
        required = set(node.get("required", []))
        rows = ["| field | value | required | what it is |", "|---|---|---|---|"]
        for field, spec in node["properties"].items():
            _, body = _resolve(self.root, spec)
            description = spec.get("description") or body.get("description") or ""
            rows.append(f"| `{field}` | {_cell(self.kind(spec, field))} | "
                        f"{'yes' if field in required else ''} | {_cell(description)} |")
        for rule in node.get("allOf", []):
            condition = rule.get("if", {}).get("properties", {})
            needed = rule.get("then", {}).get("required", [])
            if len(condition) == 1 and needed:
                (field, test), = condition.items()
                values = [test["const"]] if "const" in test else test.get("enum", [])
                rows.append("")
                rows.append(f"When `{field}` is {' or '.join(_code(str(v)) for v in values)}, "
                            f"also required: {', '.join(_code(n) for n in needed)}.")
        return rows

    def page(self, title: str, intro: str) -> str:
        lines = [f"# {title}", "", intro, "", _cell(self.root.get("description", "")), "",
                 "## The document", "", *self.table(self.root), ""]
        done = 0
        while done < len(self.sections):  # tables add the sections of the objects they name
            section, node = self.sections[done]
            done += 1
            body = self.table(node)
            lines += [f"## {section}", "", _cell(node.get("description", "")), "", *body, ""]
        return "\n".join(lines)


def schema_fields(schema: Schema) -> set[str]:
    """Every field name the schema declares, in any object."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "properties" and isinstance(value, dict) and "if" not in node:
                    found.update(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({key: value for key, value in schema.items()})
    return found


def _schema(name: str) -> Schema:
    loaded: Schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    return loaded


def format_page(name: str, title: str, intro: str) -> Callable[[], str]:
    def make() -> str:
        schema_path = f"schemas/{name}.schema.json"
        return _Format(_schema(name)).page(
            title, f"Generated from `{schema_path}` when this site is built. {intro}")
    return make


FORMATS = {
    "conversations": ("reference/desired-state.md", "Desired-state file format",
                      "The guide to writing it: "
                      "[The desired state](../concepts/desired-state.md)."),
    "plan": ("reference/plan-format.md", "Saved plan format",
             "Written by `plan --out` and `plan --format json`; "
             "read by `apply --plan` and `show`."),
    "report": ("reference/report-format.md", "Apply report format",
               "Written by `apply --report FILE`."),
    "health": ("reference/health-format.md", "Answer check format",
               "Written by `check --format json`."),
    "backup": ("reference/backup-format.md", "Backup format",
               "Written before every delete; read by `restore`."),
}


def pages() -> dict[str, str]:
    """Every generated page: its path under docs/ and its markdown."""
    generated = {"reference/commands.md": commands_page(),
                 "reference/exit-codes.md": exit_codes_page()}
    for name, (path, title, intro) in FORMATS.items():
        generated[path] = format_page(name, title, intro)()
    return generated


def _generated_files(config: Any) -> Iterator[Any]:
    from mkdocs.structure.files import File

    for path, content in pages().items():
        yield File.generated(config, path, content=content)


def on_files(files: Any, config: Any) -> Any:
    """MkDocs event: add the generated pages to the site's files."""
    for file in _generated_files(config):
        files.append(file)
    return files
