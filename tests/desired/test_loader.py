"""Loading desired state: defaults, variables, files and directories, semantic rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.desired.loader import load_desired
from reconciler.desired.model import DuplicatePolicy, Scope
from reconciler.errors import InputError, Location
from tests import ROOT

EXAMPLES = ROOT / "examples"


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def problems_of(paths: list[str], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(InputError) as raised:
        load_desired(paths, env=env or {})
    return [str(problem) for problem in raised.value.problems]


def test_project_settings_come_from_project_then_defaults_then_built_in(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """\
version: 1
lang: en
defaults: {scope: team, prune: true, duplicates: adopt-oldest, ignore: ["tmp-*"],
           protect: ["Legal *"], max_delete_fraction: 0.5, owns: ["QA *", "Demo *"]}
projects:
  - id: 1
  - id: 2
    scope: all
    prune: false
    duplicates: error
    owns: ["*"]
    ignore: []
    protect: ["Keep *"]
    max_delete_fraction: 1
    lang: de
""")
    first, second = load_desired([path], env={}).projects

    assert (first.scope, first.prune, first.duplicates) == (Scope.TEAM, True,
                                                           DuplicatePolicy.ADOPT_OLDEST)
    assert (first.ignore, first.protect, first.max_delete_fraction, first.lang) == (
        ("tmp-*",), ("Legal *",), 0.5, "en")
    assert (second.scope, second.prune, second.duplicates) == (Scope.ALL, False,
                                                              DuplicatePolicy.ERROR)
    assert (second.ignore, second.protect, second.max_delete_fraction, second.lang) == (
        (), ("Keep *",), 1.0, "de")
    assert (first.owns, second.owns) == (("QA *", "Demo *"), ("*",))  # replaced, not merged


def test_built_in_defaults_apply_without_a_defaults_section(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yml", "version: 1\nprojects:\n  - id: 7\n")

    (project,) = load_desired([path], env={}).projects

    assert (project.scope, project.prune, project.duplicates) == (Scope.MINE, False,
                                                                 DuplicatePolicy.ERROR)
    assert (project.ignore, project.protect, project.max_delete_fraction, project.lang) == (
        (), (), None, None)
    assert project.owns == ()  # owns nothing: prune deletes no undeclared conversation
    assert project.conversations == ()


def test_conversation_fields_and_locations_are_loaded(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """\
version: 1
projects:
  - id: 42
    label: support
    conversations:
      - name: Escalations
        renamed_from: [Escalation, Escalation policy]
        session_id: 7F0C8A9E-1B2C-4D3E-8F40-5A6B7C8D9E0F
        messages: [What is the policy?, Who decides?]
        persona: Calm lead
        response_source: own_content
      - name: 2024-01-01
""")
    state = load_desired([path], env={})
    (project,) = state.projects
    first, second = project.conversations

    assert state.files == (path,)
    assert project.location == Location(path, 3, 5)
    assert project.display_name == "support (42)"
    assert first.renamed_from == ("Escalation", "Escalation policy")
    assert first.session_id == "7f0c8a9e-1b2c-4d3e-8f40-5a6b7c8d9e0f"
    assert first.prompts == ("What is the policy?", "Who decides?")
    assert (first.persona, first.response_source) == ("Calm lead", "own_content")
    assert first.location == Location(path, 6, 9)
    assert second.name == "2024-01-01"


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${NAME}", {"NAME": "Demo"}, "Demo"),
        ("Hello ${NAME}!", {"NAME": "team"}, "Hello team!"),
        ("${NAME:-Fallback}", {}, "Fallback"),
        ("${NAME:-Fallback}", {"NAME": ""}, "Fallback"),
        ("${NAME:-Fallback}", {"NAME": "Set"}, "Set"),
        ("${NAME}", {"NAME": ""}, ""),
        ("Cost $${PRICE}", {}, "Cost ${PRICE}"),
        ("$5 and $NAME", {"NAME": "x"}, "$5 and $NAME"),
        ("${A}-${B:-b}", {"A": "a"}, "a-b"),
    ],
    ids=["plain", "inside-text", "default-unset", "default-empty", "default-unused", "empty",
         "escape", "no-braces", "two"],
)
def test_variables_expand_in_string_values(
    tmp_path: Path, value: str, env: dict[str, str], expected: str
) -> None:
    path = write(tmp_path, "a.yaml", f"""\
version: 1
projects:
  - id: 1
    label: "{value}x"
""")
    (project,) = load_desired([path], env=env).projects

    assert project.label == expected + "x"


def test_project_id_from_a_variable_becomes_an_integer(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", 'version: 1\nprojects:\n  - id: "${PID}"\n')

    (project,) = load_desired([path], env={"PID": "4242"}).projects

    assert project.id == 4242


def test_variables_come_from_the_given_env_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PID", "4242")
    path = write(tmp_path, "a.yaml", 'version: 1\nprojects:\n  - id: "${PID}"\n')

    assert problems_of([path]) == [
        f"{path}:3:9: environment variable PID is not set (use ${{PID:-default}} to give a "
        "default)"
    ]


def test_api_key_is_never_expanded_into_messages(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", 'version: 1\nprojects:\n  - id: "${K}"\n')

    problems = problems_of([path], env={"K": "123456", "CUSTOMGPT_API_KEY": "123456"})

    assert problems == [f"{path}:3:9: ${{K}} holds the API key, which must not be written "
                        "into desired state"]


def test_directory_expands_to_its_yaml_files_in_sorted_order(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    (folder / "nested").mkdir(parents=True)
    write(folder, "b.yml", "version: 1\nprojects: [{id: 2}]\n")
    write(folder, "a.yaml", "version: 1\nprojects: [{id: 1}]\n")
    write(folder, "c.txt", "not yaml at all: [")
    write(folder, ".hidden.yaml", "not yaml at all: [")
    write(folder / "nested", "d.yaml", "version: 1\nprojects: [{id: 4}]\n")

    state = load_desired([str(folder)], env={})

    assert [p.id for p in state.projects] == [1, 2]
    assert state.files == (str(folder / "a.yaml"), str(folder / "b.yml"))


def test_several_paths_keep_their_order_and_a_file_named_twice_is_read_once(
    tmp_path: Path,
) -> None:
    second = write(tmp_path, "z.yaml", "version: 1\nprojects: [{id: 9}]\n")
    first = write(tmp_path, "a.yaml", "version: 1\nprojects: [{id: 3}]\n")

    state = load_desired([second, first, str(tmp_path)], env={})

    assert [p.id for p in state.projects] == [9, 3]
    assert state.files == (second, first)


def test_project_declared_in_two_files_points_at_the_second_and_names_the_first(
    tmp_path: Path,
) -> None:
    first = write(tmp_path, "a.yaml", "version: 1\nprojects:\n  - id: 5\n")
    second = write(tmp_path, "b.yaml", "version: 1\nprojects:\n  - id: \"5\"\n")

    assert problems_of([first, second]) == [
        f"{second}:3:9: project 5 is declared twice (first at {first}:3:9)"
    ]


def test_session_id_declared_in_two_files_is_an_error(tmp_path: Path) -> None:
    uuid = "7f0c8a9e-1b2c-4d3e-8f40-5a6b7c8d9e0f"
    text = "version: 1\nprojects:\n  - id: {}\n    conversations: [{{name: A, session_id: {}}}]\n"
    first = write(tmp_path, "a.yaml", text.format(1, uuid))
    second = write(tmp_path, "b.yaml", text.format(2, uuid.upper()))

    assert problems_of([first, second]) == [
        f"{second}:4:43: session_id {uuid} is declared twice (first at {first}:4:43)"
    ]


def test_problems_of_every_file_come_in_file_then_line_order(tmp_path: Path) -> None:
    first = write(tmp_path, "b.yaml", "version: 1\nprojects:\n  - id: 0\n    scope: x\n")
    second = write(tmp_path, "a.yaml", "version: 2\nprojects: []\n")

    problems = problems_of([first, second])

    assert [p.split(": ")[0] for p in problems] == [f"{first}:3:9", f"{first}:4:12",
                                                    f"{second}:1:10"]


def test_empty_projects_list_is_valid(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "version: 1\nprojects: []\n")

    state = load_desired([path], env={})

    assert (state.projects, state.conversation_count) == ((), 0)


def test_byte_order_mark_and_anchors_without_aliases_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_bytes("\ufeffversion: 1\nprojects:\n  - &p {id: 1}\n".encode())

    assert [p.id for p in load_desired([str(path)], env={}).projects] == [1]


def test_valid_renames_and_patterns_pass_the_rules(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", """\
version: 1
projects:
  - id: 1
    ignore: ["tmp-*", "[[]draft]*"]
    protect: ["Legal [A-Z]*", "[!x]*", "[]]*"]
    owns: ["QA *", "Demo [0-9]"]
    conversations:
      - name: Billing questions
        renamed_from: [Billing, Invoices]
      - name: Onboarding
        renamed_from: [Welcome]
""")
    (project,) = load_desired([path], env={}).projects

    assert project.is_ignored("[draft] notes")
    assert project.is_protected("Legal B")
    assert project.is_owned("QA smoke") and project.is_owned("Demo 7")
    assert not project.is_owned("Demo 10") and not project.is_owned("Billing")


def test_no_path_is_an_error() -> None:
    assert problems_of([]) == ["no desired-state file given (use -f PATH)"]


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.rglob("*.yaml")))
def test_every_example_points_editors_at_the_schema(name: str) -> None:
    (path,) = EXAMPLES.rglob(name)
    first_line = path.read_text().splitlines()[0]

    assert first_line.startswith("# yaml-language-server: $schema=")
    schema = (path.parent / first_line.split("$schema=")[1]).resolve()
    assert schema == (EXAMPLES.parent / "schemas" / "conversations.schema.json").resolve()


@pytest.mark.parametrize(("written", "value"), [
    ("1001", 1001), ('"1001"', 1001), ("'0644'", 644), ('"${ID}"', 1001),
    ("9223372036854775807", 9223372036854775807)],
    ids=["decimal", "quoted", "quoted-leading-zero", "variable", "largest"])
def test_a_project_id_is_the_number_its_digits_say(
    tmp_path: Path, written: str, value: int
) -> None:
    path = write(tmp_path, "a.yaml", f"version: 1\nprojects:\n  - id: {written}\n")
    assert [p.id for p in load_desired([path], env={"ID": "1001"}).projects] == [value]


@pytest.mark.parametrize("expanded", ["0x3E9", "1001.0", "1e3", "+1001", " 1001", "1001\n",
                                      "\u0661\u0660\u0660\u0661", "16:41", "1_001", ""])
def test_a_project_id_variable_must_expand_to_plain_decimal_digits(
    tmp_path: Path, expanded: str
) -> None:
    path = write(tmp_path, "a.yaml", 'version: 1\nprojects:\n  - id: "${ID}"\n')
    problems = problems_of([path], env={"ID": expanded})
    assert problems == [f"{path}:3:9: project id must be an integer or a string of digits, got "
                        f"{expanded!r}"]


@pytest.mark.parametrize(("written", "value"), [
    ("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False)])
def test_booleans_are_true_and_false_in_any_one_case(
    tmp_path: Path, written: str, value: bool
) -> None:
    path = write(tmp_path, "a.yaml", f"version: 1\nprojects:\n  - id: 1\n    prune: {written}\n")
    assert load_desired([path], env={}).projects[0].prune is value


@pytest.mark.parametrize(("written", "value"), [
    ("0.3", 0.3), (".5", 0.5), ("1", 1.0), ("1.0", 1.0), ("3.0e-1", 0.3), ("0.30", 0.3)])
def test_a_decimal_fraction_is_read_as_written(
    tmp_path: Path, written: str, value: float
) -> None:
    path = write(tmp_path, "a.yaml",
                 f"version: 1\nprojects:\n  - id: 1\n    max_delete_fraction: {written}\n")
    assert load_desired([path], env={}).projects[0].max_delete_fraction == value


@pytest.mark.parametrize("written", ["0644", "0x3E9", "16:41", "1_001", "0b1", "yes", "Off"])
def test_a_yaml_1_1_form_is_refused_in_a_list_too_and_said_once(
    tmp_path: Path, written: str
) -> None:
    path = write(tmp_path, "a.yaml", f"version: 1\nprojects:\n  - id: 1\n    ignore: [{written}]\n")
    problems = problems_of([path])
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:4:14: {written} is ")
    assert "YAML 1.1" in problems[0]


@pytest.mark.parametrize(("line", "problem"), [
    ("        messsages: [Hi]\n",
     "6:9: projects[0].conversations[0].messsages: unknown key 'messsages'; did you mean "
     "'messages'?"),
    ("        renamed_form: [Old]\n",
     "6:9: projects[0].conversations[0].renamed_form: unknown key 'renamed_form'; did you "
     "mean 'renamed_from'?"),
    ("        colour: blue\n",
     "6:9: projects[0].conversations[0].colour: unknown key 'colour'; allowed: "
     "agent_capability, chatbot_model, custom_context, messages, name, persona, renamed_from, "
     "response_source, session_id"),
], ids=["messages", "renamed_from", "nothing-close"])
def test_a_mistyped_key_is_named_with_the_key_it_was_probably_meant_to_be(
        tmp_path: Path, line: str, problem: str) -> None:
    path = write(tmp_path, "a.yaml", "version: 1\nprojects:\n  - id: 1\n    conversations:\n"
                 "      - name: A\n" + line)
    assert problems_of([path]) == [f"{path}:{problem}"]
