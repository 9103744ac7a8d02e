"""The CI examples (examples/ci) and the pre-commit hooks: their structure, and the GitHub
workflow's shell run step by step against the emulator, with GitHub replaced by local files."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from reconciler.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "examples" / "ci" / "github-actions" / "reconciler.yml"
GITLAB = ROOT / "examples" / "ci" / "gitlab" / ".gitlab-ci.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent
PROJECT = 1001
REPO = "acme/conversations"
PR_NUMBER = 7
HEAD_SHA = "a" * 40
MERGE_SHA = "b" * 40
PR_RUN_ID = 501
MARKER = "<!-- reconciler-plan -->"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")

# Stands in for the GitHub CLI: keeps comments, merged pull requests, runs and artifacts in a
# JSON file, and records every call.
FAKE_GH = r'''
import json, os, shutil, sys
from pathlib import Path

state_path = Path(os.environ["FAKE_GH_STATE"])
state = json.loads(state_path.read_text())
args = sys.argv[1:]
state["calls"].append(args)

def option(name):
    return args[args.index(name) + 1] if name in args else None

if args[0] == "api":
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
        state["comments"].append({"id": 100 + len(state["comments"]), "body": body})
    elif method == "PATCH":
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


def load_yaml(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert isinstance(on, dict)
    return on


@dataclass
class StepResult:
    name: str
    code: int
    out: str


@dataclass
class GitHub:
    """One repository checkout, the fake `gh` and the artifact store, for running jobs."""

    workdir: Path
    home: Path
    env: dict[str, str]
    expressions: dict[str, str] = field(default_factory=dict)

    @property
    def state_file(self) -> Path:
        return self.home / "gh-state.json"

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.state_file.read_text())
        return data

    def update_state(self, **changes: Any) -> None:
        self.state_file.write_text(json.dumps({**self.state(), **changes}))

    def run_job(self, job_id: str, *, event: str, run_id: int) -> list[StepResult]:
        """Run a job's steps in order, the way GitHub would; stop counting after a failure."""
        workflow = load_yaml(self.workdir / ".github" / "workflows" / "reconciler.yml")
        job = workflow["jobs"][job_id]
        context = {"github.event_name": event, "github.run_id": str(run_id), **self.expressions}
        env = {**workflow.get("env", {}), **job.get("env", {})}
        results: list[StepResult] = []
        for index, step in enumerate(job["steps"]):
            failed = any(r.code != 0 for r in results)
            if not self._should_run(step.get("if"), failed=failed):
                continue
            step_env = {k: self._resolve(str(v), context, env) for k, v in
                        {**env, **step.get("env", {})}.items()}
            results.append(self._run_step(step, index, step_env, context, run_id))
        return results

    def _should_run(self, condition: str | None, *, failed: bool) -> bool:
        if condition is None:
            return not failed
        terms = [t.strip() for t in condition.split("&&")]
        for term in terms:
            if term == "always()":
                continue
            match = re.fullmatch(r"hashFiles\('([^']+)'\) != ''", term)
            assert match, f"step condition the test does not model: {term}"
            if not (self.workdir / match[1]).exists():
                return False
        return "always()" in terms or not failed

    def _resolve(self, value: str, context: dict[str, str], env: dict[str, Any]) -> str:
        def lookup(match: re.Match[str]) -> str:
            expression = match[1]
            if expression.startswith("env."):
                return str(env[expression.removeprefix("env.")])
            assert expression in context, f"expression the test does not model: {expression}"
            return context[expression]

        return EXPRESSION.sub(lookup, value)

    def _run_step(self, step: dict[str, Any], index: int, env: dict[str, str],
                  context: dict[str, str], run_id: int) -> StepResult:
        name = str(step.get("name") or step.get("uses"))
        if "uses" in step:
            self._local_action(step, context, env, run_id)
            return StepResult(name, 0, "")
        script: str = step["run"]
        if "pip install" in script:  # the tool under test is the one of this environment
            assert '"$RECONCILER_PIP_SPEC"' in script
            return StepResult(name, 0, "")
        script_file = self.home / f"step-{index}.sh"
        script_file.write_text(script, encoding="utf-8")
        output = self.home / f"output-{index}"
        full_env = {**self.env, **env, "GITHUB_OUTPUT": str(output),
                    "GITHUB_STEP_SUMMARY": str(self.home / "summary.md")}
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
            cwd=self.workdir, env=full_env, capture_output=True, text=True, timeout=60)
        assert "Traceback" not in done.stderr
        return StepResult(name, done.returncode, done.stdout + done.stderr)

    def _local_action(self, step: dict[str, Any], context: dict[str, str],
                      env: dict[str, str], run_id: int) -> None:
        action = str(step["uses"]).split("@")[0]
        if action in ("actions/checkout", "actions/setup-python"):
            return  # the working directory is the checkout; python is this one
        assert action == "actions/upload-artifact", f"unexpected action {action}"
        options = step["with"]
        name = self._resolve(str(options["name"]), context, env)
        target = self.home / "artifacts" / str(run_id) / name
        for entry in str(options["path"]).split():
            source = self.workdir / entry
            if source.is_dir():
                shutil.copytree(source, target / entry, dirs_exist_ok=True)
            elif source.exists():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / entry)
            else:
                assert options.get("if-no-files-found") == "ignore", f"{entry} missing"


@pytest.fixture
def github(tmp_path: Path, emulator: Emulator, api_env: dict[str, str]) -> Iterator[GitHub]:
    emulator.ensure_project(PROJECT, "demo")
    workdir, home = tmp_path / "repo", tmp_path / "runner"
    (workdir / ".github" / "workflows").mkdir(parents=True)
    (workdir / "conversations").mkdir()
    home.mkdir()
    shutil.copy(WORKFLOW, workdir / ".github" / "workflows" / "reconciler.yml")
    shutil.copy(ROOT / "examples" / "quickstart.yaml", workdir / "conversations" / "demo.yaml")
    fakebin = home / "bin"
    fakebin.mkdir()
    gh = fakebin / "gh"
    gh.write_text(f"#!{sys.executable}\n{FAKE_GH}", encoding="utf-8")
    gh.chmod(0o755)
    env = {"PATH": os.pathsep.join([str(fakebin), str(BIN), os.environ["PATH"]]),
           "HOME": str(home), "LANG": "C.UTF-8", "FAKE_GH_STATE": str(home / "gh-state.json")}
    hub = GitHub(workdir, home, env, {
        "secrets.CUSTOMGPT_API_KEY": api_env["CUSTOMGPT_API_KEY"],
        "vars.CUSTOMGPT_BASE_URL || 'https://app.customgpt.ai'": api_env["CUSTOMGPT_BASE_URL"],
        "github.token": "gh-token-for-tests",
        "github.repository": REPO,
        "github.sha": MERGE_SHA,
        "github.event.pull_request.number": str(PR_NUMBER),
        "github.event.pull_request.head.sha": HEAD_SHA,
    })
    hub.state_file.write_text(json.dumps({
        "calls": [], "artifacts": str(home / "artifacts"),
        "comments": [{"id": 1, "body": "Looks good to me"}],
        "pulls": [{"number": PR_NUMBER, "merged_at": "2024-05-01T10:00:00Z",
                   "head": {"sha": HEAD_SHA}}],
        "runs": [{"databaseId": PR_RUN_ID}],
    }))
    yield hub


def codes(results: list[StepResult]) -> dict[str, int]:
    return {r.name: r.code for r in results}


def names(emulator: Emulator) -> list[str]:
    return sorted(c["name"] for c in emulator.conversations(PROJECT))


def delete_behind_the_tools_back(emulator: Emulator, name: str) -> None:
    session = next(c["session_id"] for c in emulator.conversations(PROJECT) if c["name"] == name)
    response = httpx.delete(
        f"{emulator.base_url}/api/v1/projects/{PROJECT}/conversations/{session}",
        headers={"Authorization": f"Bearer {emulator.api_key}"})
    assert response.status_code == 200


# Structure -----------------------------------------------------------------------------------


def test_workflow_triggers_on_pull_request_push_to_main_and_schedule() -> None:
    on = triggers(load_yaml(WORKFLOW))
    assert "pull_request" in on
    assert on["push"]["branches"] == ["main"]
    assert on["schedule"][0]["cron"].split()[0].isdigit()


@pytest.mark.parametrize(("job", "permissions"), [
    ("plan", {"contents": "read", "pull-requests": "write"}),
    ("apply", {"contents": "read", "actions": "read", "pull-requests": "read"}),
    ("drift", {"contents": "read"}),
], ids=["plan", "apply", "drift"])
def test_workflow_jobs_ask_for_least_privilege(job: str, permissions: dict[str, str]) -> None:
    workflow = load_yaml(WORKFLOW)
    assert workflow["permissions"] == {}
    assert workflow["jobs"][job]["permissions"] == permissions


def test_workflow_applies_never_overlap_nor_get_cancelled() -> None:
    concurrency = load_yaml(WORKFLOW)["jobs"]["apply"]["concurrency"]
    assert concurrency["cancel-in-progress"] is False
    assert "${{" not in concurrency["group"]  # one group for every apply, whatever the ref


def environment_maps(node: Any) -> Iterator[dict[str, Any]]:
    """Every `env:` (GitHub) and `variables:` (GitLab) mapping in a parsed pipeline file."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("env", "variables") and isinstance(value, dict):
                yield value
            yield from environment_maps(value)
    elif isinstance(node, list):
        for item in node:
            yield from environment_maps(item)


@pytest.mark.parametrize(("path", "allowed"), [
    (WORKFLOW, {"${{ secrets.CUSTOMGPT_API_KEY }}"}),
    (GITLAB, set()),  # GitLab puts masked CI/CD variables in the environment itself
], ids=["github", "gitlab"])
def test_api_key_comes_only_from_the_secret_store(path: Path, allowed: set[str]) -> None:
    text = path.read_text(encoding="utf-8")
    values = {str(env[key]) for env in environment_maps(yaml.safe_load(text))
              for key in env if "TOKEN" in key or "API_KEY" in key}
    assert values <= allowed | {"${{ github.token }}"}
    assert {e for e in EXPRESSION.findall(text) if "secrets." in e} <= {
        "secrets.CUSTOMGPT_API_KEY"}
    assert "set -x" not in text
    assert not re.search(r"(echo|printf)[^\n]*\$\{?(CUSTOMGPT_API_KEY|RECONCILER_GITLAB_TOKEN)\b",
                         text)


def test_workflow_scripts_use_no_expressions() -> None:
    for job in load_yaml(WORKFLOW)["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step.get("name")


@pytest.mark.parametrize(("job", "condition"), [
    ("validate", '$CI_PIPELINE_SOURCE == "merge_request_event"'),
    ("plan", '$CI_PIPELINE_SOURCE == "merge_request_event"'),
    ("apply", '$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH'),
    ("drift", '$CI_PIPELINE_SOURCE == "schedule"'),
], ids=["validate", "plan", "apply", "drift"])
def test_gitlab_jobs_run_on_their_events(job: str, condition: str) -> None:
    pipeline = load_yaml(GITLAB)
    rules = pipeline[job].get("rules") or pipeline[".on-merge-request"]["rules"]
    assert [rule["if"] for rule in rules] == [condition]


def test_gitlab_applies_one_at_a_time_and_keep_plan_and_report() -> None:
    pipeline = load_yaml(GITLAB)
    assert pipeline["apply"]["resource_group"]
    assert "plan.json" in pipeline["plan"]["artifacts"]["paths"]
    assert {"report.json", "backups/"} <= set(pipeline["apply"]["artifacts"]["paths"])
    assert pipeline["plan"]["artifacts"]["when"] == "always"


# The GitHub workflow's shell, run against the emulator ------------------------------------------


def test_pull_request_is_planned_and_commented_once_then_applied_then_checked(
        github: GitHub, emulator: Emulator) -> None:
    first = github.run_job("plan", event="pull_request", run_id=PR_RUN_ID)
    assert set(codes(first).values()) == {0}, first
    plan = json.loads((github.workdir / "plan.json").read_text())
    assert plan["summary"]["create"] == 3
    assert "| demo-bot (1001) | 3 |" in (github.workdir / "plan.md").read_text()
    again = github.run_job("plan", event="pull_request", run_id=PR_RUN_ID)
    assert set(codes(again).values()) == {0}, again
    comments = github.state()["comments"]
    assert [c["id"] for c in comments] == [1, 101]  # updated, not duplicated
    assert comments[1]["body"].startswith(MARKER)
    assert plan["checksum"] in comments[1]["body"]
    assert "+ create 'Onboarding FAQ'" in comments[1]["body"]
    assert (github.home / "artifacts" / str(PR_RUN_ID) / "reconciler-plan" / "plan.json").exists()
    assert names(emulator) == []

    applied = github.run_job("apply", event="push", run_id=502)
    assert set(codes(applied).values()) == {0}, applied
    assert names(emulator) == ["Onboarding FAQ", "Pricing questions", "Product demo"]
    run_list = next(c for c in github.state()["calls"] if c[:2] == ["run", "list"])
    assert run_list[run_list.index("--commit") + 1] == HEAD_SHA  # the merged PR's head
    report = json.loads((github.workdir / "report.json").read_text())
    assert report["plan_checksum"] == plan["checksum"]
    assert report["summary"]["done"] == 5
    assert (github.home / "artifacts" / "502" / "reconciler-apply-502" / "report.json").exists()

    clean = github.run_job("drift", event="schedule", run_id=503)
    assert codes(clean)["Check for drift"] == 0
    delete_behind_the_tools_back(emulator, "Product demo")
    drifted = github.run_job("drift", event="schedule", run_id=504)
    assert codes(drifted)["Check for drift"] == 2
    assert "Drift detected" in drifted[-1].out
    assert "+ create 'Product demo'" in drifted[-1].out


def test_apply_refuses_a_reviewed_plan_that_no_longer_holds(
        github: GitHub, emulator: Emulator) -> None:
    planned = github.run_job("plan", event="pull_request", run_id=PR_RUN_ID)
    assert set(codes(planned).values()) == {0}, planned
    desired = github.workdir / "conversations" / "demo.yaml"
    desired.write_text(desired.read_text() + "      - name: Added after the review\n")
    applied = github.run_job("apply", event="push", run_id=502)
    assert codes(applied)["Check that the reviewed plan still holds"] == 1
    assert "Apply" not in codes(applied)
    assert "not reviewed" in applied[-1].out
    assert "Added after the review" in (github.home / "summary.md").read_text()
    assert names(emulator) == []


@pytest.mark.parametrize(("change", "expected"), [
    ("project", "project 9999 not found or not visible to this API key"),
    ("key", "check CUSTOMGPT_API_KEY"),
], ids=["unknown-project", "wrong-api-key"])
def test_failed_plan_is_commented_and_fails_the_job(
        github: GitHub, emulator: Emulator, change: str, expected: str) -> None:
    desired = github.workdir / "conversations" / "demo.yaml"
    if change == "project":
        desired.write_text(desired.read_text().replace(f"id: {PROJECT}", "id: 9999"))
    else:
        github.expressions["secrets.CUSTOMGPT_API_KEY"] = "wrong-key-0123456789"
    results = github.run_job("plan", event="pull_request", run_id=PR_RUN_ID)
    assert codes(results)["Plan"] == 1
    assert codes(results)["Post or update the plan comment"] == 0
    assert "Upload the plan" not in codes(results)
    body = github.state()["comments"][-1]["body"]
    assert body.startswith(MARKER)
    assert "nothing can be applied" in body
    assert expected in body
    assert emulator.api_key not in body
    assert "wrong-key-0123456789" not in body


def test_push_without_a_reviewed_plan_applies_nothing(github: GitHub, emulator: Emulator) -> None:
    github.update_state(pulls=[])  # pushed to main directly, not merged from a pull request
    results = github.run_job("apply", event="push", run_id=502)
    assert codes(results)["Find the plan reviewed on the pull request"] == 0
    assert codes(results)["Check that the reviewed plan still holds"] == 1
    assert "Apply" not in codes(results)
    assert names(emulator) == []


# pre-commit hooks ------------------------------------------------------------------------------


def run_hook(hook_id: str, filenames: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a hook the way pre-commit does: entry, then args, then the file names."""
    hooks = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    hook = next(h for h in hooks if h["id"] == hook_id)
    assert hook["language"] == "python"
    command = shlex.split(hook["entry"]) + hook.get("args", [])
    if hook.get("pass_filenames", True):
        command += filenames
    env = {**os.environ, "PATH": os.pathsep.join([str(BIN), os.environ["PATH"]])}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def hook_repo(tmp_path: Path) -> Path:
    conversations = tmp_path / "conversations"
    conversations.mkdir()
    shutil.copy(ROOT / "examples" / "quickstart.yaml", conversations / "demo.yaml")
    (conversations / "sales team.yaml").write_text(
        "version: 1\nprojects:\n  - id: 2002\n    conversations:\n      - name: Preise\n")
    return tmp_path


@pytest.mark.parametrize("hook_id", ["reconciler-validate", "reconciler-validate-all"])
def test_hook_accepts_valid_files(hook_id: str, hook_repo: Path) -> None:
    done = run_hook(hook_id, ["conversations/demo.yaml", "conversations/sales team.yaml"],
                    hook_repo)
    assert done.returncode == 0, done.stderr
    assert "2 projects" in done.stdout


@pytest.mark.parametrize(("hook_id", "changed"), [
    ("reconciler-validate", ["conversations/demo.yaml", "conversations/again.yaml"]),
    ("reconciler-validate-all", ["conversations/again.yaml"]),
], ids=["changed-files-together", "whole-directory"])
def test_hook_reports_a_project_declared_twice(hook_id: str, changed: list[str],
                                               hook_repo: Path) -> None:
    shutil.copy(hook_repo / "conversations" / "demo.yaml", hook_repo / "conversations/again.yaml")
    done = run_hook(hook_id, changed, hook_repo)
    assert done.returncode == 1
    assert "again.yaml" in done.stderr
    assert "Traceback" not in done.stderr


def test_hook_files_pattern_matches_yaml_under_conversations() -> None:
    for hook in yaml.safe_load(HOOKS.read_text(encoding="utf-8")):
        pattern = re.compile(hook["files"])
        assert pattern.search("conversations/team/support.yaml")
        assert pattern.search("conversations/demo.yml")
        assert not pattern.search("docs/conversations.md")
