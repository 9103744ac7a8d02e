"""Runs a GitHub Actions job's steps on this machine, in order, the way a runner would: the
`run:` scripts in bash, the steps of reconciler's own composite action (action.yml) one by one,
`${{ }}` expressions and `if:` conditions evaluated, step outputs and `$GITHUB_ENV` passed on.
GitHub itself is replaced by local files: a fake `gh` keeps comments, merged pull requests, runs
and artifacts in a JSON file and records every call; artifacts are directories.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.S)

FAKE_GH = r'''
import json, os, shutil, sys
from pathlib import Path

state_path = Path(os.environ["FAKE_GH_STATE"])
state = json.loads(state_path.read_text())
args = sys.argv[1:]
state["calls"].append(args)

def option(name):
    return args[args.index(name) + 1] if name in args else None

# The identity of the token, as GitHub knows it: the user a comment is posted as.
identity = state["identities"].get(os.environ.get("GH_TOKEN", ""))
if identity is None:
    sys.exit("gh: HTTP 401: Bad credentials")
author = {key: identity[key] for key in ("login", "id", "type")}

if args[:2] == ["api", "graphql"]:
    if not identity.get("graphql_viewer", True):
        sys.exit("gh: Resource not accessible by integration (HTTP 403)")
    print(json.dumps({"data": {"viewer": {"login": author["login"], "databaseId": author["id"]}}}))
elif args[0] == "api":
    method = option("--method") or "GET"
    path = next(a for a in args[1:] if a.startswith("repos/"))
    if method == "GET" and path.endswith("/comments"):
        comments = state["comments"]
        print(json.dumps(comments[:1]))   # two pages, the way --paginate prints them
        print(json.dumps(comments[1:]))
    elif method == "GET" and path.endswith("/pulls"):
        print(json.dumps(state["pulls"]))
    elif method == "POST" and path.endswith("/comments"):
        body = json.load(sys.stdin)["body"]
        state["comments"].append({"id": 100 + len(state["comments"]), "body": body,
                                  "user": author})
    elif method == "PATCH":  # as on GitHub: a token that may write may edit anyone's comment
        comment_id = int(path.rsplit("/", 1)[1])
        body = json.load(sys.stdin)["body"]
        for comment in state["comments"]:
            if comment["id"] == comment_id:
                comment["body"] = body
    else:
        sys.exit(f"fake gh: unexpected call {args}")
elif args[:2] == ["run", "list"]:
    print(json.dumps(state["runs"]))
elif args[:2] == ["run", "download"]:
    source = Path(state["artifacts"]) / args[2] / option("--name")
    shutil.copytree(source, option("--dir"), dirs_exist_ok=True)
else:
    sys.exit(f"fake gh: unexpected call {args}")
state_path.write_text(json.dumps(state))
'''
BOT = {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"}  # the GITHUB_TOKEN's


def load_yaml(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


# Expressions ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:(?P<string>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\)|,)
                        |(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][\w.\-]*))""", re.X)
_STATUS_FUNCTIONS = ("always", "success", "failure", "cancelled")
KNOWN_CONTEXTS = {"github", "secrets", "vars", "env", "inputs", "steps", "matrix", "runner"}


def evaluate(expression: str, lookup: Callable[[str], Any],
             functions: dict[str, Callable[..., Any]]) -> Any:
    """A GitHub expression's value: literals, context paths, ==, !=, !, &&, ||, (), and the
    given functions. `a || b` gives a value, as in GitHub; a missing value is ''."""
    python: list[str] = []
    position = 0
    text = expression.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        assert match and match.end() > position, f"expression the runner cannot read: {text!r}"
        position = match.end()
        if match["string"] is not None:
            python.append(repr(match["string"][1:-1].replace("''", "'")))
        elif match["number"] is not None:
            python.append(repr(match["number"]))
        elif match["op"] is not None:
            python.append({"&&": " and ", "||": " or ", "!": " not "}.get(match["op"],
                                                                          match["op"]))
        elif text[position:position + 1] == "(":
            assert match["name"] in functions, f"function the runner does not model: {match[0]}"
            python.append(f"_{match['name']}")
        elif match["name"] in ("true", "false", "null"):
            python.append({"true": "True", "false": "False", "null": "''"}[match["name"]])
        else:
            python.append(repr(lookup(match["name"])))
    namespace = {f"_{name}": function for name, function in functions.items()}
    return eval("".join(python), {"__builtins__": {}}, namespace)


def as_text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    return "" if value is None else str(value)


# The runner ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowCommand:
    """A `::name key=value,…::message` line of a step's output, its values unescaped."""

    name: str
    properties: dict[str, str]
    message: str


@dataclass
class StepResult:
    name: str
    code: int
    out: str
    commands: list[WorkflowCommand] = field(default_factory=list)


@dataclass
class GitHub:
    """One repository checkout, the fake `gh` and the artifact store, for running jobs."""

    workdir: Path
    home: Path
    env: dict[str, str]
    github: dict[str, Any]
    secrets: dict[str, str]
    variables: dict[str, str] = field(default_factory=dict)
    workflow_file: str = "reconciler.yml"
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)  # last job's, by step id

    @property
    def state_file(self) -> Path:
        return self.home / "gh-state.json"

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.state_file.read_text())
        return data

    def update_state(self, **changes: Any) -> None:
        self.state_file.write_text(json.dumps({**self.state(), **changes}))

    def run_job(self, job_id: str, *, event: str, run_id: int,
                matrix: dict[str, Any] | None = None) -> list[StepResult]:
        """Run a job's steps in order, the way GitHub would; later steps run only while all
        went well, unless their condition says otherwise."""
        workflow = load_yaml(self.workdir / ".github" / "workflows" / self.workflow_file)
        job = workflow["jobs"][job_id]
        github = {**self.github, "event_name": event, "run_id": str(run_id), "job": job_id}
        if event != "pull_request":
            github["event"] = {}
        scope = _Scope(self, github, matrix or {}, {})
        scope.env = {key: scope.resolve(str(value)) for key, value in
                     {**workflow.get("env", {}), **job.get("env", {})}.items()}
        results: list[StepResult] = []
        for index, step in enumerate(job["steps"]):
            if not scope.should_run(step.get("if"), failed=_failed(results)):
                continue
            if "uses" in step:
                results += self._uses(step, scope, index)
            else:
                results.append(scope.run_script(step, f"{job_id}-{index}", {}))
        self.outputs = scope.steps
        return results

    def _uses(self, step: dict[str, Any], scope: _Scope, index: int) -> list[StepResult]:
        name = str(step.get("name") or step["uses"])
        action = str(step["uses"]).split("@")[0]
        options = {key: scope.resolve(str(value)) for key, value in step.get("with", {}).items()}
        if action.endswith("/reconciler") or action == "./":
            results, outputs = self._composite(options, scope, f"{scope.github['job']}-{index}")
            if "id" in step:
                scope.steps[step["id"]] = outputs
            return results
        if action in ("actions/checkout", "actions/setup-python"):
            return [StepResult(name, 0, "")]  # the working directory is the checkout
        assert action == "actions/upload-artifact", f"unexpected action {action}"
        target = self.home / "artifacts" / str(scope.github["run_id"]) / options["name"]
        for entry in options["path"].split():
            source = self.workdir / entry
            if source.is_dir():
                shutil.copytree(source, target / source.name, dirs_exist_ok=True)
            elif source.exists():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / source.name)
            else:
                assert options.get("if-no-files-found") == "ignore", f"{entry} missing"
        return [StepResult(name, 0, "")]

    def _composite(self, given: dict[str, str], caller: _Scope,
                   prefix: str) -> tuple[list[StepResult], dict[str, str]]:
        """Run action.yml's steps with the inputs given; return the results and its outputs."""
        action = load_yaml(ACTION)
        unknown = set(given) - set(action["inputs"])
        assert not unknown, f"inputs the action does not have: {unknown}"
        scope = _Scope(self, caller.github, caller.matrix, {})
        scope.env = dict(caller.env)  # the job's environment reaches the action's steps
        inputs = {}
        for key, spec in action["inputs"].items():
            assert key in given or not spec.get("required"), f"required input {key} missing"
            inputs[key] = given[key] if key in given else scope.resolve(str(spec.get("default",
                                                                                      "")))
        scope.inputs = inputs
        results: list[StepResult] = []
        for index, step in enumerate(action["runs"]["steps"]):
            if not scope.should_run(step.get("if"), failed=_failed(results)):
                continue
            if "uses" in step:
                assert step["uses"].startswith("actions/setup-python@"), step["uses"]
                results.append(StepResult(step["name"], 0, ""))
                continue
            assert step["shell"] == "bash"
            results.append(scope.run_script(step, f"{prefix}-{index}",
                                            {"GITHUB_ACTION_PATH": str(ROOT)}))
        outputs = {key: scope.resolve(str(spec["value"]))
                   for key, spec in action["outputs"].items()}
        return results, outputs


def _failed(results: list[StepResult]) -> bool:
    return any(result.code != 0 for result in results)


class _Scope:
    """The contexts one job, or one run of the composite action, sees."""

    def __init__(self, hub: GitHub, github: dict[str, Any], matrix: dict[str, Any],
                 inputs: dict[str, str]) -> None:
        self.hub = hub
        self.github = github
        self.matrix = matrix
        self.inputs = inputs
        self.env: dict[str, str] = {}
        self.steps: dict[str, dict[str, str]] = {}
        self._failed = False

    def lookup(self, path: str) -> Any:
        head, *rest = path.split(".")
        assert head in KNOWN_CONTEXTS, f"context the runner does not model: {path}"
        if head == "steps":
            step_id, kind, *names = rest
            assert kind == "outputs", path
            return self.steps.get(step_id, {}).get(".".join(names), "")
        value: Any = {"github": self.github, "secrets": self.hub.secrets,
                      "vars": self.hub.variables, "env": self.env, "inputs": self.inputs,
                      "matrix": self.matrix, "runner": {"temp": str(self.hub.home / "tmp")}}[head]
        for name in rest:
            value = value.get(name, "") if isinstance(value, dict) else ""
        return value

    def functions(self) -> dict[str, Callable[..., Any]]:
        return {"always": lambda: True, "success": lambda: not self._failed,
                "failure": lambda: self._failed, "cancelled": lambda: False,
                "hashFiles": lambda pattern: "hash" if (self.hub.workdir / pattern).exists()
                else ""}

    def resolve(self, value: str) -> str:
        return EXPRESSION.sub(
            lambda match: as_text(evaluate(match[1], self.lookup, self.functions())), value)

    def should_run(self, condition: str | None, *, failed: bool) -> bool:
        self._failed = failed
        if condition is None:
            return not failed
        text = EXPRESSION.sub(lambda match: match[1], str(condition))
        if not any(f"{name}()" in text for name in _STATUS_FUNCTIONS):
            text = f"success() && ({text})"
        return bool(evaluate(text, self.lookup, self.functions()))

    def run_script(self, step: dict[str, Any], label: str, extra: dict[str, str]) -> StepResult:
        name = str(step.get("name") or label)
        script: str = step["run"]
        assert "${{" not in script, f"an expression inside the script of {name}"
        env = {**self.env, **{key: self.resolve(str(value))
                              for key, value in step.get("env", {}).items()}}
        if "pip install" in script:  # the tool under test is the one of this environment
            assert "$GITHUB_ACTION_PATH" in script or "RECONCILER_PIP_SPEC" in script
            return StepResult(name, 0, "")
        home = self.hub.home
        script_file = home / f"step-{label}.sh"
        script_file.write_text(script, encoding="utf-8")
        output = home / f"output-{label}"
        output.write_text("")
        exported = home / f"env-{label}"
        exported.write_text("")
        (home / "tmp").mkdir(exist_ok=True)
        full_env = {**self.hub.env, **env, **extra, "GITHUB_OUTPUT": str(output),
                    "GITHUB_ENV": str(exported),
                    "GITHUB_STEP_SUMMARY": str(home / "summary.md"),
                    "RUNNER_TEMP": str(home / "tmp"), "GITHUB_RUN_ID": self.github["run_id"],
                    "GITHUB_JOB": self.github["job"]}
        done = subprocess.run(  # one stream, in order, as the runner reads the two
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
            cwd=self.hub.workdir, env=full_env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=60)
        assert "Traceback" not in done.stdout, done.stdout
        if "id" in step:
            self.steps[step["id"]] = _outputs(output.read_text(encoding="utf-8"))
        self.env.update(_outputs(exported.read_text(encoding="utf-8")))  # for later steps
        return StepResult(name, done.returncode, done.stdout, workflow_commands(done.stdout))


def _outputs(text: str) -> dict[str, str]:
    """The outputs a GITHUB_OUTPUT file sets, read as the runner reads it: `name=value` lines
    and `name<<DELIMITER` … `DELIMITER` blocks; a later value wins."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        equals, heredoc = line.find("="), line.find("<<")
        if equals >= 0 and (heredoc < 0 or equals < heredoc):
            key, value = line[:equals], line[equals + 1:]
        else:
            assert heredoc > 0, f"invalid output line: {line!r}"
            key, delimiter = line[:heredoc], line[heredoc + 2:]
            end = lines.index(delimiter, index) if delimiter in lines[index:] else -1
            assert delimiter and end >= 0, f"output {key}: no line {delimiter!r} ends it"
            value, index = "\n".join(lines[index:end]), end + 1
        assert key, f"invalid output line: {line!r}"
        values[key] = value
    return values


_UNESCAPE_MESSAGE = (("%0D", "\r"), ("%0A", "\n"), ("%25", "%"))
_UNESCAPE_PROPERTY = (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%"))


def _unescape(value: str, mappings: tuple[tuple[str, str], ...]) -> str:
    for escaped, character in mappings:
        value = value.replace(escaped, character)
    return value


def workflow_commands(output: str) -> list[WorkflowCommand]:
    """The workflow commands a runner reads in a step's output: every line starting with
    `::name`, except between `::stop-commands::TOKEN` and `::TOKEN::`."""
    commands: list[WorkflowCommand] = []
    stopped_until = None
    for line in re.split("\r\n|\r|\n", output):  # the runner reads lines as .NET does
        text = line.lstrip()
        end = text.find("::", 2)
        if not text.startswith("::") or end < 0:
            continue
        head, message = text[2:end], text[end + 2:]
        if stopped_until is not None:
            if head == stopped_until:
                stopped_until = None
            continue
        name, _, properties = head.partition(" ")
        if name == "stop-commands":
            stopped_until = message
            continue
        pairs = (pair.partition("=") for pair in properties.split(",") if pair)
        commands.append(WorkflowCommand(
            name, {key: _unescape(value, _UNESCAPE_PROPERTY) for key, _, value in pairs},
            _unescape(message, _UNESCAPE_MESSAGE)))
    return commands
