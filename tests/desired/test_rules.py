"""The semantic rules of the desired state: what `validate` refuses beyond the schema, and where."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from reconciler.desired.loader import load_desired
from reconciler.desired.rules import glob_problem
from reconciler.errors import InputError

UUID_A = "7f0c8a9e-1b2c-4d3e-8f40-5a6b7c8d9e0f"
UUID_B = "0b6f4a2e-1b2c-4d3e-8f40-5a6b7c8d9e0f"


def located(tmp_path: Path, items: Iterable[object]) -> list[str]:
    """Problems or warnings as `validate` prints them, with paths relative to `tmp_path`."""
    return [str(item).replace(str(tmp_path) + "/", "") for item in items]


def problems(tmp_path: Path, *texts: str) -> list[str]:
    """The problems `validate` reports for files with these texts ([] when they are valid)."""
    paths = []
    for number, text in enumerate(texts):
        path = tmp_path / f"{number}.yaml"
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    try:
        load_desired(paths, env={})
    except InputError as error:
        return located(tmp_path, error.problems)
    return []


def project(body: str, *, project_id: int = 1) -> str:
    """A file with one project whose settings and conversations are `body` (indented YAML)."""
    return f"version: 1\nprojects:\n  - id: {project_id}\n{body}"


def test_a_project_declared_twice_in_one_file_names_the_first(tmp_path: Path) -> None:
    text = "version: 1\nprojects:\n  - id: 5\n  - id: 6\n  - id: 5\n"
    assert problems(tmp_path, text) == ["0.yaml:5:9: project 5 is declared twice (first at "
                                        "0.yaml:3:9)"]


def test_distinct_projects_and_conversations_pass(tmp_path: Path) -> None:
    first = project(f"""\
    conversations:
      - {{name: A, session_id: {UUID_A}}}
      - {{name: B, session_id: {UUID_B}}}
      - name: C
""")
    second = project("""\
    conversations:
      - {name: A, renamed_from: [Old A, Older A]}
      - {name: C, renamed_from: [Old C]}
""", project_id=2)
    assert problems(tmp_path, first, second) == []


def test_a_name_declared_twice_in_a_project_names_the_first(tmp_path: Path) -> None:
    text = project("    conversations:\n      - name: A\n      - name: B\n      - name: A\n")
    assert problems(tmp_path, text) == [
        "0.yaml:7:15: conversation 'A' is declared twice in project 1 (first at 0.yaml:5:15)"]


def test_a_session_id_declared_twice_in_one_file_names_the_first(tmp_path: Path) -> None:
    text = project(f"""\
    conversations:
      - {{name: A, session_id: {UUID_A}}}
      - {{name: B}}
      - {{name: C, session_id: {UUID_A}}}
""")
    assert problems(tmp_path, text) == [
        f"0.yaml:7:31: session_id {UUID_A} is declared twice (first at 0.yaml:5:31)"]


@pytest.mark.parametrize(
    ("first", "second", "detail"),
    [
        ("Caf\\u00e9", "Cafe\\u0301",
         "; written 'Café' and 'Cafe\\u0301', they differ only in Unicode normalisation (not "
         "NFC), and reconciler compares names without that difference"),
        ("A", "A ", "; written 'A' and 'A ', they differ only in surrounding whitespace, and "
                    "reconciler compares names without that difference"),
        ("A ", "A", "; written 'A ' and 'A', they differ only in surrounding whitespace, and "
                    "reconciler compares names without that difference"),
        ("A", "A", ""),
    ],
    ids=["unicode-forms", "space-on-the-second", "space-on-the-first", "written-the-same"],
)
def test_a_name_declared_twice_says_when_only_invisible_characters_differ(
        tmp_path: Path, first: str, second: str, detail: str) -> None:
    text = project(f'    conversations:\n      - name: "{first}"\n      - name: "{second}"\n')
    (problem,) = problems(tmp_path, text)
    assert problem.endswith(" is declared twice in project 1 (first at 0.yaml:5:15)" + detail)


def test_names_and_prompts_not_in_normal_form_are_warned_about_where_they_are(
        tmp_path: Path) -> None:
    path = tmp_path / "0.yaml"
    path.write_text(project("""\
    conversations:
      - name: "A "
        renamed_from: ["Cafe\\u0301"]
        messages: ["fine", "hi\\u200b"]
      - {name: B, messages: [" x"]}
""") + "  - id: 2\n", encoding="utf-8")
    assert located(tmp_path, load_desired([str(path)], env={}).warnings) == [
        "0.yaml:5:15: warning: name 'A ' has surrounding whitespace; the service may not store "
        "it unchanged, so reconciler sends and compares it as 'A'",
        "0.yaml:6:24: warning: renamed_from name 'Cafe\\u0301' has Unicode normalisation (not "
        "NFC); the service may not store it unchanged, so reconciler sends and compares it as "
        "'Café'",
        "0.yaml:7:28: warning: message 'hi\\u200b' holds characters a reader cannot see (written "
        "as escapes here and in plans); a text that looks the same without them is a different "
        "one",
        "0.yaml:8:30: warning: message ' x' has surrounding whitespace; the service may not store "
        "it unchanged, so reconciler sends and compares it as 'x'",
    ]


def test_a_project_that_prunes_but_owns_nothing_is_warned_about_at_its_prune(
        tmp_path: Path) -> None:
    """Valid (prune then deletes no undeclared conversation), but rarely what was meant."""
    path = tmp_path / "0.yaml"
    path.write_text("version: 1\ndefaults: {prune: true}\nprojects:\n"
                    "  - id: 1\n"                                  # prune from the defaults
                    '  - id: 3\n    owns: ["QA *"]\n'             # owns: no warning
                    "  - id: 2\n    prune: true\n    owns: []\n"  # an empty list owns nothing
                    "  - id: 4\n    prune: false\n", encoding="utf-8")  # no prune: no warning
    warning = ("warning: project {} prunes but owns nothing: prune deletes no undeclared "
               "conversation (only extra copies of a declared name); list the names this "
               'repository owns in `owns`, such as ["QA *"], or ["*"] when nothing else uses '
               "this API key")
    assert located(tmp_path, load_desired([str(path)], env={}).warnings) == [
        "0.yaml:2:19: " + warning.format(1), "0.yaml:8:12: " + warning.format(2)]


def test_names_and_prompts_in_normal_form_are_not_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "0.yaml"
    path.write_text(project("    conversations: [{name: A, renamed_from: [B], messages: [hi]}]\n"),
                    encoding="utf-8")
    assert load_desired([str(path)], env={}).warnings == ()


@pytest.mark.parametrize(
    ("conversations", "expected"),
    [
        ("[{name: A, renamed_from: [A]}]",
         "0.yaml:4:46: renamed_from lists the conversation's own name 'A'"),
        ("[{name: A}, {name: B, renamed_from: [A]}]",
         "0.yaml:4:57: renamed_from 'A' is the name of another declared conversation "
         "(at 0.yaml:4:28)"),
        ("[{name: A, renamed_from: [Old]}, {name: B, renamed_from: [Old]}]",
         "0.yaml:4:78: renamed_from 'Old' is already listed at 0.yaml:4:46; a live "
         "conversation can be renamed into one entry only"),
    ],
    ids=["own-name", "another-entry", "listed-twice"],
)
def test_a_renamed_from_that_cannot_work_is_refused(tmp_path: Path, conversations: str,
                                                    expected: str) -> None:
    assert problems(tmp_path, project(f"    conversations: {conversations}\n")) == [expected]


def test_every_broken_renamed_from_is_reported(tmp_path: Path) -> None:
    text = project("""\
    conversations:
      - name: A
        renamed_from: [A, B, Old, Old]
      - name: B
""")
    assert [p.split(": ", 1)[1] for p in problems(tmp_path, text)] == [
        "renamed_from lists the conversation's own name 'A'",
        "renamed_from 'B' is the name of another declared conversation (at 0.yaml:7:15)",
        "renamed_from 'Old' is already listed at 0.yaml:6:30; a live conversation can be "
        "renamed into one entry only",
    ]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ('    ignore: ["tmp-*"]\n    conversations: [{name: tmp-notes}]\n',
         "0.yaml:5:28: 'tmp-notes' matches ignore pattern 'tmp-*', so it could never be managed"),
        ('    ignore: ["x", "Old*"]\n    conversations: [{name: A, renamed_from: [Older]}]\n',
         "0.yaml:5:46: 'Older' matches ignore pattern 'Old*', so it could never be managed"),
    ],
    ids=["name", "renamed-from"],
)
def test_a_name_that_an_ignore_pattern_matches_is_refused(tmp_path: Path, settings: str,
                                                          expected: str) -> None:
    assert problems(tmp_path, project(settings)) == [expected]


def test_a_project_ignore_list_replaces_the_defaults_for_the_rules_too(tmp_path: Path) -> None:
    text = ('version: 1\ndefaults: {ignore: ["tmp-*"]}\nprojects:\n  - id: 1\n    ignore: []\n'
            "    conversations: [{name: tmp-notes}]\n")
    assert problems(tmp_path, text) == []


def test_an_invalid_ignore_pattern_is_reported_once_not_matched(tmp_path: Path) -> None:
    text = project('    ignore: ["A["]\n    conversations: [{name: "A["}]\n')
    assert problems(tmp_path, text) == [
        "0.yaml:4:14: ignore pattern 'A[': unclosed '[' (write '[[]' to match a literal '[')"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (project('    ignore: ["ok", "tmp-["]\n'),
         "0.yaml:4:20: ignore pattern 'tmp-[': unclosed '[' (write '[[]' to match a literal '[')"),
        (project('    protect: ["[z-a]*"]\n'),
         "0.yaml:4:15: protect pattern '[z-a]*': reversed range in '[z-a]' matches nothing"),
        ('version: 1\ndefaults:\n  protect: ["Legal *", "[b-a]"]\nprojects: []\n',
         "0.yaml:3:24: protect pattern '[b-a]': reversed range in '[b-a]' matches nothing"),
        ('version: 1\ndefaults:\n  ignore: ["[a"]\nprojects: []\n',
         "0.yaml:3:12: ignore pattern '[a': unclosed '[' (write '[[]' to match a literal '[')"),
        (project('    owns: ["QA *", "Demo [9-0]"]\n'),
         "0.yaml:4:20: owns pattern 'Demo [9-0]': reversed range in '[9-0]' matches nothing"),
        ('version: 1\ndefaults:\n  owns: ["QA ["]\nprojects: []\n',
         "0.yaml:3:10: owns pattern 'QA [': unclosed '[' (write '[[]' to match a literal '[')"),
    ],
    ids=["project-ignore", "project-protect", "defaults-protect", "defaults-ignore",
         "project-owns", "defaults-owns"],
)
def test_an_unusable_pattern_is_refused_where_it_is_written(tmp_path: Path, text: str,
                                                           expected: str) -> None:
    assert problems(tmp_path, text) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        project("    max_delete_fraction: .nan\n"),
        "version: 1\ndefaults: {max_delete_fraction: .nan}\nprojects: []\n",
    ],
    ids=["project", "defaults"],
)
def test_a_max_delete_fraction_that_is_not_a_number_is_refused(tmp_path: Path,
                                                               text: str) -> None:
    found = problems(tmp_path, text)
    assert [p.split(": ", 1)[1] for p in found] == [
        "max_delete_fraction must be a number greater than 0 and at most 1"]
    assert found[0].startswith(("0.yaml:4:26:", "0.yaml:2:33:"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\ndefaults: [1]\nprojects: []\n",
         ["0.yaml:2:11: defaults: expected a mapping, got a list"]),
        ("version: 1\ndefaults: {ignore: [7, '']}\nprojects: []\n",
         ["0.yaml:2:21: defaults.ignore[0]: expected a string, got integer 7",
          '0.yaml:2:24: defaults.ignore[1]: must not be empty (got "")']),
        ("version: 1\ndefaults: {ignore: tmp}\nprojects: []\n",
         ['0.yaml:2:20: defaults.ignore: expected a list, got string "tmp"']),
        (project("    ignore: [7]\n"),
         ["0.yaml:4:14: projects[0].ignore[0]: expected a string, got integer 7"]),
        (project("    ignore: [7, 'tmp-[']\n"),
         ["0.yaml:4:14: projects[0].ignore[0]: expected a string, got integer 7",
          "0.yaml:4:17: ignore pattern 'tmp-[': unclosed '[' (write '[[]' to match a literal "
          "'[')"]),
        ("- version: 1\n",
         ["0.yaml:1:1: the file must be a mapping with 'version' and 'projects', not a list"]),
    ],
    ids=["defaults-not-a-mapping", "patterns-not-strings", "patterns-not-a-list",
         "project-pattern-not-a-string", "bad-pattern-after-a-non-string", "file-is-a-list"],
)
def test_settings_the_schema_refuses_are_reported_once(tmp_path: Path, text: str,
                                                       expected: list[str]) -> None:
    assert problems(tmp_path, text) == expected


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("tmp-*", None),
        ("[a-z]?", None),
        ("[!a]*", None),
        ("[]]", None),
        ("[!]]", None),
        ("[[]", None),
        ("[a-a]", None),
        ("a]b", None),
        ("[!z-a]", "reversed range in '[!z-a]' matches nothing"),
        ("", "a pattern must not be empty"),
        ("tmp-[", "unclosed '[' (write '[[]' to match a literal '[')"),
        ("[", "unclosed '[' (write '[[]' to match a literal '[')"),
        ("[!", "unclosed '[' (write '[[]' to match a literal '[')"),
        ("[!]", "unclosed '[' (write '[[]' to match a literal '[')"),
        ("[]", "unclosed '[' (write '[[]' to match a literal '[')"),
        ("[a-z][0-9", "unclosed '[' (write '[[]' to match a literal '[')"),
        ("[z-a]", "reversed range in '[z-a]' matches nothing"),
        ("x[ab][c-a]", "reversed range in '[c-a]' matches nothing"),
        ("[az-a]", "reversed range in '[az-a]' matches nothing"),
        ("[a-cz-a]", "reversed range in '[a-cz-a]' matches nothing"),
        ("[-]", None),
        ("[!- ]*", None),
        ("[X-A]", "reversed range in '[X-A]' matches nothing"),
        ("[a-]", None),
    ],
    ids=["star", "class", "negated", "bracket-member", "negated-bracket-member",
         "literal-bracket", "one-letter-range", "lone-closing", "negated-reversed", "empty",
         "unclosed", "lone-open", "lone-negation", "negated-bracket-unclosed",
         "bracket-member-unclosed", "second-unclosed", "reversed", "second-class-reversed",
         "reversed-after-a-member", "reversed-after-a-range", "dash-alone", "no-dash-or-space",
         "reversed-capitals", "trailing-dash"],
)
def test_glob_problem(pattern: str, problem: str | None) -> None:
    assert glob_problem(pattern) == problem
