"""The CI examples (examples/ci), the GitHub Action (action.yml) and the pre-commit hooks: their
structure, the linters of the ecosystem (zizmor, check-jsonschema) on every pipeline, and the
GitHub workflows' jobs run step by step, the action's steps included, against the emulator."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
import yaml

from reconciler.cli.main import main
from reconciler.emulator import Emulator
from tests.github_runner import (
    ACTION,
    BOT,
    EXPRESSION,
    FAKE_GH,
    GitHub,
    StepResult,
    WorkflowCommand,
    load_yaml,
)

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "examples" / "ci" / "github-actions" / "reconciler.yml"
SHARDED = ROOT / "examples" / "ci" / "github-actions" / "reconciler-sharded.yml"
GITLAB = ROOT / "examples" / "ci" / "gitlab" / ".gitlab-ci.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
ANSWERS = ROOT / "examples" / "ci" / "github-actions" / "reconciler-answers.yml"
ENVIRONMENTS = ROOT / "examples" / "ci" / "github-actions" / "reconciler-environments.yml"
GITHUB_FILES = [WORKFLOW, SHARDED]  # the plan / apply / drift flow
EVERY_WORKFLOW = [*GITHUB_FILES, ANSWERS, ENVIRONMENTS]
WORKFLOW_IDS = ["workflow", "sharded", "answers", "environments"]
BIN = Path(sys.executable).parent
PROJECT = 1001
REPO = "acme/conversations"
PR_NUMBER = 7
HEAD_SHA = "a" * 40
MERGE_SHA = "b" * 40
PR_RUN_ID = 501
MARKER = "<!-- reconciler-plan -->"
WORKFLOW_TOKEN = "gh-token-for-tests"
REVIEWER = {"login": "reviewer", "id": 501, "type": "User"}
FIRST_COMMENT = {"id": 1, "body": "Looks good to me", "user": REVIEWER}


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert isinstance(on, dict)
    return on


def make_hub(tmp_path: Path, emulator: Emulator, api_env: dict[str, str],
             workflow: Path) -> GitHub:
    """A checkout holding `workflow` and conversations/demo.yaml, and a fake GitHub."""
    emulator.ensure_project(PROJECT, "demo")
    workdir, home = tmp_path / "repo", tmp_path / "runner"
    (workdir / ".github" / "workflows").mkdir(parents=True)
    (workdir / "conversations").mkdir()
    home.mkdir()
    shutil.copy(workflow, workdir / ".github" / "workflows" / workflow.name)
    shutil.copy(ROOT / "examples" / "quickstart.yaml", workdir / "conversations" / "demo.yaml")
    fakebin = home / "bin"
    fakebin.mkdir()
    gh = fakebin / "gh"
    gh.write_text(f"#!{sys.executable}\n{FAKE_GH}", encoding="utf-8")
    gh.chmod(0o755)
    env = {"PATH": os.pathsep.join([str(fakebin), str(BIN), os.environ["PATH"]]),
           "HOME": str(home), "LANG": "C.UTF-8", "FAKE_GH_STATE": str(home / "gh-state.json")}
    hub = GitHub(
        workdir, home, env, workflow_file=workflow.name,
        github={"token": WORKFLOW_TOKEN, "repository": REPO, "sha": MERGE_SHA,
                "event": {"pull_request": {"number": str(PR_NUMBER),
                                           "head": {"sha": HEAD_SHA}}}},
        secrets={"CUSTOMGPT_API_KEY": api_env["CUSTOMGPT_API_KEY"]},
        variables={"CUSTOMGPT_BASE_URL": api_env["CUSTOMGPT_BASE_URL"]})
    hub.state_file.write_text(json.dumps({
        "calls": [], "artifacts": str(home / "artifacts"),
        "identities": {WORKFLOW_TOKEN: BOT},
        "comments": [FIRST_COMMENT],
        "pulls": [{"number": PR_NUMBER, "merged_at": "2024-05-01T10:00:00Z",
                   "head": {"sha": HEAD_SHA}}],
        "runs": [{"databaseId": PR_RUN_ID}],
    }))
    return hub


@pytest.fixture
def github(tmp_path: Path, emulator: Emulator, api_env: dict[str, str]) -> Iterator[GitHub]:
    yield make_hub(tmp_path, emulator, api_env, WORKFLOW)


def codes(results: list[StepResult]) -> dict[str, int]:
    return {r.name: r.code for r in results}


def output_of(results: list[StepResult], name: str) -> str:
    return next(r.out for r in results if r.name == name)


def names(emulator: Emulator, project: int = PROJECT) -> list[str]:
    return sorted(c["name"] for c in emulator.conversations(project))


def delete_behind_the_tools_back(emulator: Emulator, name: str) -> None:
    session = next(c["session_id"] for c in emulator.conversations(PROJECT) if c["name"] == name)
    response = httpx.delete(
        f"{emulator.base_url}/api/v1/projects/{PROJECT}/conversations/{session}",
        headers={"Authorization": f"Bearer {emulator.api_key}"})
    assert response.status_code == 200


# Structure -----------------------------------------------------------------------------------


def test_workflow_triggers_on_pull_request_push_to_main_and_schedule() -> None:
    for path in GITHUB_FILES:
        on = triggers(load_yaml(path))
        assert "pull_request" in on
        assert on["push"]["branches"] == ["main"]
        assert on["schedule"][0]["cron"].split()[0].isdigit()


@pytest.mark.parametrize("path", GITHUB_FILES, ids=["workflow", "sharded"])
@pytest.mark.parametrize(("job", "permissions"), [
    ("plan", {"contents": "read", "pull-requests": "write"}),
    ("apply", {"contents": "read", "actions": "read", "pull-requests": "read"}),
    ("drift", {"contents": "read"}),
], ids=["plan", "apply", "drift"])
def test_workflow_jobs_ask_for_least_privilege(path: Path, job: str,
                                               permissions: dict[str, str]) -> None:
    workflow = load_yaml(path)
    assert workflow["permissions"] == {}
    assert workflow["jobs"][job]["permissions"] == permissions


def test_workflow_applies_never_overlap_nor_get_cancelled() -> None:
    concurrency = load_yaml(WORKFLOW)["jobs"]["apply"]["concurrency"]
    assert concurrency["cancel-in-progress"] is False
    assert "${{" not in concurrency["group"]  # one group for every apply, whatever the ref
    sharded = load_yaml(SHARDED)["jobs"]["apply"]["concurrency"]
    assert sharded["cancel-in-progress"] is False
    assert sharded["group"] == "reconciler-apply-${{ matrix.shard.name }}"  # one per shard


def uses_lines(text: str) -> list[tuple[str, str]]:
    """Every `uses:` reference with the comment after it."""
    return re.findall(r"^\s*(?:-\s+)?uses:\s*(\S+)[ \t]*(#[^\n]*)?", text, re.M)


@pytest.mark.parametrize("path", [ACTION, *EVERY_WORKFLOW], ids=["action", *WORKFLOW_IDS])
def test_actions_are_pinned_to_a_commit_with_the_version_in_a_comment(path: Path) -> None:
    references = uses_lines(path.read_text(encoding="utf-8"))
    assert references
    for reference, comment in references:
        if reference.startswith("customgpt-reconciler/reconciler@"):  # the user's release
            assert "zizmor: ignore[unpinned-uses]" in comment
            continue
        assert re.fullmatch(r"actions/[\w-]+@[0-9a-f]{40}", reference), reference
        assert re.fullmatch(r"# v\d+\.\d+\.\d+", comment.strip()), (reference, comment)


@pytest.mark.parametrize("path", EVERY_WORKFLOW, ids=WORKFLOW_IDS)
def test_checkouts_do_not_persist_credentials(path: Path) -> None:
    for job in load_yaml(path)["jobs"].values():
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


OWNER = "customgpt-reconciler"
REPOSITORY = f"https://github.com/{OWNER}/reconciler"
WHERE_FROM = [ACTION, HOOKS, ROOT / "pyproject.toml", ROOT / "examples" / "ci" / "README.md",
              *EVERY_WORKFLOW, GITLAB]


def test_the_package_the_action_and_the_hooks_name_one_owner() -> None:
    """The repository and the action are customgpt-reconciler/reconciler, the PyPI package
    customgpt-reconciler, wherever a user copies them from; no placeholder is left."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == OWNER
    urls = project["urls"]
    assert set(urls) == {"Homepage", "Documentation", "Repository", "Changelog", "Issues"}
    assert urls["Repository"] == urls["Homepage"] == REPOSITORY
    assert urls["Changelog"] == f"{REPOSITORY}/blob/main/CHANGELOG.md"
    assert urls["Issues"] == f"{REPOSITORY}/issues"
    assert urls["Documentation"].startswith(f"https://{OWNER}.github.io/reconciler")
    texts = {path.name: path.read_text(encoding="utf-8") for path in WHERE_FROM}
    assert [name for name, text in texts.items() if "<owner>" in text] == []
    actions = {reference.split("@")[0] for text in texts.values()
               for reference in re.findall(r"uses:\s*(\S+/reconciler@\S+)", text)}
    assert actions == {f"{OWNER}/reconciler"}
    repos = {url for text in texts.values()
             for url in re.findall(r"https://github\.com/[\w.-]+/reconciler\b", text)}
    assert repos == {REPOSITORY}
    pip = {spec for text in texts.values()
           for spec in re.findall(r"([\w-]+)(?:==| @ git\+)", text)}
    assert pip == {OWNER}


def linter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


@pytest.mark.parametrize("persona", ["regular", "auditor"])
def test_zizmor_finds_nothing_in_the_action_and_the_workflows(persona: str) -> None:
    """The auditor persona too: every job holding a secret runs in an environment."""
    done = linter("zizmor", "--offline", "--no-progress", "--persona", persona,
                  "--format", "json",
                  *(str(p.relative_to(ROOT)) for p in [ACTION, *EVERY_WORKFLOW]))
    findings = [(f["ident"], f["locations"][0]["symbolic"]["key"]["Local"]["verbatim_path"])
                for f in json.loads(done.stdout)]
    assert findings == []


# Which environment each job that reads the API key runs in: reading ones in customgpt-read
# (no reviewers), applying ones where required reviewers approve them.
ENVIRONMENT_OF = {
    WORKFLOW: {"plan": "customgpt-read", "drift": "customgpt-read",
               "apply": "customgpt-production"},
    SHARDED: {"plan": "customgpt-read", "drift": "customgpt-read",
              "apply": "customgpt-production"},
    ANSWERS: {"check": "customgpt-read", "test": "customgpt-read"},
    ENVIRONMENTS: {"plan": "customgpt-plan", "apply-staging": "customgpt-staging",
                   "apply-production": "customgpt-production"},
}


@pytest.mark.parametrize("path", EVERY_WORKFLOW, ids=WORKFLOW_IDS)
def test_jobs_that_read_the_key_run_in_their_environment(path: Path) -> None:
    jobs = load_yaml(path)["jobs"]
    assert {job: spec.get("environment") for job, spec in jobs.items()} == ENVIRONMENT_OF[path]
    if "customgpt-production" in ENVIRONMENT_OF[path].values():  # said where it is used
        assert "required reviewers" in path.read_text(encoding="utf-8").casefold()


@pytest.mark.parametrize(("schema", "paths"), [
    ("vendor.github-workflows", EVERY_WORKFLOW),
    ("vendor.github-actions", [ACTION]),
    ("vendor.gitlab-ci", [GITLAB]),
], ids=["github-workflows", "github-action", "gitlab-ci"])
def test_pipelines_match_their_published_schemas(schema: str, paths: list[Path]) -> None:
    done = linter("check-jsonschema", "--builtin-schema", schema,
                  *(str(p.relative_to(ROOT)) for p in paths))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok -- validation done" in done.stdout


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
    (WORKFLOW, set()),  # the key goes to the action as an input, from the secret store
    (SHARDED, set()),
    (ANSWERS, set()),
    (ENVIRONMENTS, set()),
    (ACTION, {"${{ inputs.api-key }}", "${{ inputs.github-token }}"}),
    (GITLAB, set()),  # GitLab puts masked CI/CD variables in the environment itself
], ids=["github", "sharded", "answers", "environments", "action", "gitlab"])
def test_api_key_comes_only_from_the_secret_store(path: Path, allowed: set[str]) -> None:
    text = path.read_text(encoding="utf-8")
    values = {str(env[key]) for env in environment_maps(yaml.safe_load(text))
              for key in env if "TOKEN" in key or "API_KEY" in key}
    assert values <= allowed | {"${{ github.token }}"}
    assert {e for e in EXPRESSION.findall(text) if "secrets." in e} <= {
        "secrets.CUSTOMGPT_API_KEY", "secrets.RECONCILER_PLAN_KEY"}
    assert "set -x" not in text
    assert not re.search(r"(echo|printf)[^\n]*\$\{?(CUSTOMGPT_API_KEY|RECONCILER_GITLAB_TOKEN)\b",
                         text)


def test_scripts_use_no_expressions() -> None:
    steps = [step for path in EVERY_WORKFLOW for job in load_yaml(path)["jobs"].values()
             for step in job["steps"]]
    steps += load_yaml(ACTION)["runs"]["steps"]
    for step in steps:
        assert "${{" not in step.get("run", ""), step.get("name")


def test_sharded_jobs_share_one_key_within_its_budget() -> None:
    workflow = load_yaml(SHARDED)
    share = float(workflow["env"]["RATE_SHARE"])
    for job_id in ("plan", "apply", "drift"):
        job = workflow["jobs"][job_id]
        shards = job["strategy"]["matrix"]["shard"]
        assert "max-parallel" not in job["strategy"]  # all shards may run at once...
        assert share * len(shards) <= 1  # ...and together take at most the key's budget
        projects = [re.findall(r"--project (\d+)", shard["projects"]) for shard in shards]
        flat = [p for group in projects for p in group]
        assert len(flat) == len(set(flat)), "a project in two shards"
        assert shards == workflow["jobs"]["plan"]["strategy"]["matrix"]["shard"]
        action_step = next(s for s in job["steps"] if "reconciler@" in str(s.get("uses")))
        assert action_step["with"]["rate-share"] == "${{ env.RATE_SHARE }}"
        assert action_step["with"]["extra-args"] == "${{ matrix.shard.projects }}"


@pytest.mark.parametrize(("job", "condition"), [
    ("validate", '$CI_PIPELINE_SOURCE == "merge_request_event"'),
    ("plan", '$CI_PIPELINE_SOURCE == "merge_request_event"'),
    ("answers", '$CI_PIPELINE_SOURCE == "merge_request_event"'),
    ("apply", '$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH'),
    ("drift", '$CI_PIPELINE_SOURCE == "schedule"'),
], ids=["validate", "plan", "answers", "apply", "drift"])
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


# The GitHub workflows and the action, run against the emulator -------------------------------


def test_pull_request_is_planned_and_commented_once_then_applied_then_checked(
        github: GitHub, emulator: Emulator) -> None:
    first = github.run_job("plan", event="pull_request", run_id=PR_RUN_ID)
    assert set(codes(first).values()) == {0}, first
    assert "Fail on a failed plan or apply" not in codes(first)
    outputs = github.outputs["reconciler"]
    assert (outputs["has-changes"], outputs["exit-code"]) == ("true", "2")
    assert json.loads(outputs["summary"]) == {"create": 3, "rename": 0, "send": 2, "react": 0,
                                              "delete": 0, "unmanaged": 0}
    assert (outputs["create"], outputs["send"], outputs["delete"]) == ("3", "2", "0")
    plan = json.loads((github.workdir / outputs["plan-file"]).read_text())
    assert plan["summary"]["create"] == 3
    again = github.run_job("plan", event="pull_request", run_id=PR_RUN_ID)
    assert set(codes(again).values()) == {0}, again
    comments = github.state()["comments"]
    assert [c["id"] for c in comments] == [1, 101]  # updated, not duplicated
    assert comments[1]["body"].startswith(MARKER)
    assert "| demo-bot (1001) | 3 |" in comments[1]["body"]
    assert plan["checksum"] in comments[1]["body"]
    assert "+ create 'Onboarding FAQ'" in comments[1]["body"]
    assert (github.home / "artifacts" / str(PR_RUN_ID) / "reconciler-plan" / "plan.json").exists()
    assert names(emulator) == []

    applied = github.run_job("apply", event="push", run_id=502)
    assert set(codes(applied).values()) == {0}, applied
    assert names(emulator) == ["Onboarding FAQ", "Pricing questions", "Product demo"]
    assert github.outputs["reconciler"]["applied"] == "true"
    run_list = next(c for c in github.state()["calls"] if c[:2] == ["run", "list"])
    assert run_list[run_list.index("--commit") + 1] == HEAD_SHA  # the merged PR's head
    report = json.loads(Path(github.outputs["reconciler"]["report-file"]).read_text())
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
    assert len(github.state()["comments"]) == 2  # the drift check comments nowhere


def test_apply_refuses_a_reviewed_plan_that_no_longer_holds(
        github: GitHub, emulator: Emulator) -> None:
    planned = github.run_job("plan", event="pull_request", run_id=PR_RUN_ID)
    assert set(codes(planned).values()) == {0}, planned
    desired = github.workdir / "conversations" / "demo.yaml"
    desired.write_text(desired.read_text() + "      - name: Added after the review\n")
    applied = github.run_job("apply", event="push", run_id=502)
    assert codes(applied)["Fail on a failed plan or apply"] == 1
    assert "Upload the report and the backups" not in codes(applied)
    assert "not reviewed" in output_of(applied, "Run reconciler")
    assert "Added after the review" in (github.home / "summary.md").read_text()
    assert github.outputs["reconciler"]["applied"] == "false"
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
        github.secrets["CUSTOMGPT_API_KEY"] = "wrong-key-0123456789"
    results = github.run_job("plan", event="pull_request", run_id=PR_RUN_ID)
    assert codes(results)["Post or update the plan comment"] == 0
    assert codes(results)["Fail on a failed plan or apply"] == 1
    assert "Upload the plan" not in codes(results)
    assert github.outputs["reconciler"]["exit-code"] == "1"
    body = github.state()["comments"][-1]["body"]
    assert body.startswith(MARKER)
    assert "nothing can be applied" in body
    assert expected in body
    assert emulator.api_key not in body
    assert "wrong-key-0123456789" not in body


def test_plan_without_a_key_fails_with_a_clear_message(github: GitHub) -> None:
    github.secrets.pop("CUSTOMGPT_API_KEY")  # as for a pull request from a fork
    results = github.run_job("plan", event="pull_request", run_id=PR_RUN_ID)
    assert "No API key" in output_of(results, "Run reconciler")
    assert codes(results)["Fail on a failed plan or apply"] == 1
    assert github.state()["comments"] == [FIRST_COMMENT]


def give_the_action(github: GitHub, job: str, **inputs: str) -> None:
    """Change the inputs the workflow's job gives the action."""
    path = github.workdir / ".github" / "workflows" / github.workflow_file
    workflow = load_yaml(path)
    step = next(s for s in workflow["jobs"][job]["steps"] if s.get("id") == "reconciler")
    step["with"].update(inputs)
    path.write_text(yaml.safe_dump(workflow), encoding="utf-8")


def test_a_usage_error_fails_the_plan_instead_of_passing_for_changes(github: GitHub) -> None:
    """A usage error (exit 1, and no plan file) is a failed plan, never a plan with changes."""
    give_the_action(github, "plan", **{"extra-args": "--no-such-flag"})
    results = github.run_job("plan", event="pull_request", run_id=PR_RUN_ID)
    assert codes(results)["Fail on a failed plan or apply"] == 1
    assert "Upload the plan" not in codes(results)
    assert github.outputs["reconciler"]["has-changes"] == "false"
    assert "unrecognized arguments: --no-such-flag" in github.state()["comments"][-1]["body"]


@pytest.mark.parametrize(("inputs", "message"), [
    ({"command": "destroy"}, "command must be plan, apply, check or test, not 'destroy'"),
    ({"comment-key": "x\nexit-code=0"}, "comment-key may hold only"),
    ({"plan": "a.json\nhas-changes=false"}, "plan must be one file path"),
    ({"extra-args": "$(touch injected) `touch injected`"},  # words, read as PATHs
     "error: $(touch: no such file or directory"),
], ids=["unknown-command", "comment-key-with-a-new-line", "plan-with-a-new-line",
        "shell-in-extra-args"])
def test_bad_inputs_fail_the_action_with_a_clear_message(
        github: GitHub, emulator: Emulator, inputs: dict[str, str], message: str) -> None:
    give_the_action(github, "plan", **inputs)
    results = github.run_job("plan", event="pull_request", run_id=PR_RUN_ID)
    out = output_of(results, "Run reconciler") + "".join(
        c["body"] for c in github.state()["comments"])
    assert message in out
    assert codes(results)["Fail on a failed plan or apply"] == 1
    assert github.outputs["reconciler"]["exit-code"] == "1"
    assert not (github.workdir / "injected").exists()
    assert names(emulator) == []


STRANGER = {"login": "drive-by", "id": 666, "type": "User"}
LOOK_ALIKE = {"login": "github-actions", "id": 667, "type": "User"}  # no [bot]: a person
APP = {"login": "conversations-app[bot]", "id": 900, "type": "Bot"}
PERSON = {"login": "Release-Manager", "id": 77, "type": "User"}


@pytest.mark.parametrize(("identity", "inputs"), [
    (BOT, {}),
    ({**BOT, "graphql_viewer": False}, {}),
    (APP, {"github-token": "app-token"}),
    ({**APP, "graphql_viewer": False},
     {"github-token": "app-token", "comment-author": "conversations-app[bot]"}),
    (PERSON, {"github-token": "personal-token"}),
    ({**PERSON, "graphql_viewer": False},
     {"github-token": "personal-token", "comment-author": "release-manager"}),
], ids=["workflow-token", "workflow-token-without-viewer", "app-token",
        "app-token-named-by-input", "personal-token", "personal-token-named-by-input"])
def test_only_a_plan_comment_the_job_wrote_is_ever_updated(
        github: GitHub, identity: dict[str, Any], inputs: dict[str, str]) -> None:
    """Anyone may post a comment starting with the marker first: it is left alone, and the
    job keeps one comment of its own (the token's identity, from the API or an input)."""
    forged = [{"id": 2, "body": f"{MARKER}\nApproved, merge it", "user": STRANGER},
              {"id": 3, "body": f"{MARKER}\nThe bot says: fine", "user": LOOK_ALIKE}]
    token = inputs.get("github-token", WORKFLOW_TOKEN)
    github.update_state(identities={token: identity}, comments=[FIRST_COMMENT, *forged])
    if inputs:
        give_the_action(github, "plan", **inputs)
    for _ in range(2):
        results = github.run_job("plan", event="pull_request", run_id=PR_RUN_ID)
        assert set(codes(results).values()) == {0}, results
    comments = github.state()["comments"]
    assert comments[:3] == [FIRST_COMMENT, *forged]
    ours = comments[3:]
    assert len(ours) == 1, ours  # posted once, then updated
    assert ours[0]["user"]["login"] == identity["login"]
    assert ours[0]["body"].startswith(MARKER) and "| demo-bot (1001) | 3 |" in ours[0]["body"]


def test_a_token_of_unknown_identity_posts_and_never_updates(github: GitHub) -> None:
    """A token whose identity cannot be asked of the API, with no comment-author: each run
    posts a comment of its own, with a warning saying what to set."""
    forged = {"id": 2, "body": f"{MARKER}\nApproved", "user": STRANGER}
    github.update_state(identities={"app-token": {**APP, "graphql_viewer": False}},
                        comments=[FIRST_COMMENT, forged])
    give_the_action(github, "plan", **{"github-token": "app-token"})
    for _ in range(2):
        results = github.run_job("plan", event="pull_request", run_id=PR_RUN_ID)
        assert set(codes(results).values()) == {0}, results
    warnings = [c for r in results for c in r.commands if c.name == "warning"]
    assert [w.properties for w in warnings] == [{"title": "Plan comment"}]
    assert "set the comment-author input" in warnings[0].message
    comments = github.state()["comments"]
    assert comments[:2] == [FIRST_COMMENT, forged]
    assert [c["user"] for c in comments[2:]] == [
        {k: APP[k] for k in ("login", "id", "type")}] * 2


def test_extra_args_reach_the_apply_of_the_reviewed_plan(
        github: GitHub, emulator: Emulator) -> None:
    """A signed plan is applied with the key extra-args name; the options that choose what
    is planned (--project) reach plan only, since a reviewed plan is applied whole."""
    (github.workdir / "plan.key").write_text("k" * 32, encoding="utf-8")
    for job in ("plan", "apply"):
        give_the_action(github, job, **{
            "extra-args": f"--plan-key-file plan.key --proj={PROJECT}\n--project {PROJECT} -v"})
    planned = github.run_job("plan", event="pull_request", run_id=PR_RUN_ID)
    assert set(codes(planned).values()) == {0}, planned
    plan = json.loads((github.workdir / "plan.json").read_text())
    assert plan["signature"].startswith("hmac-sha256:")
    applied = github.run_job("apply", event="push", run_id=502)
    assert set(codes(applied).values()) == {0}, applied
    assert names(emulator) == ["Onboarding FAQ", "Pricing questions", "Product demo"]
    assert "because declared" in output_of(applied, "Run reconciler")  # -v reached apply


def test_the_messages_of_a_failed_plan_stay_in_their_fence(github: GitHub) -> None:
    """A failed plan's messages (which quote the files) cannot close the code block they
    are shown in: no heading, link or mention of theirs reaches the comment."""
    (github.workdir / "conversations" / "demo.yaml").write_text(
        f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n"
        '      - name: a\n        "x\\n```\\n# Owned @octocat [a](https://evil)": 1\n')
    results = github.run_job("plan", event="pull_request", run_id=PR_RUN_ID)
    assert codes(results)["Fail on a failed plan or apply"] == 1
    body = github.state()["comments"][-1]["body"]
    assert "unknown key" in body
    assert_one_fenced_block(body, heading="### reconciler plan failed")


def assert_one_fenced_block(body: str, *, heading: str) -> None:
    """`body` has one heading, `heading`, and its one fenced block holds every line that
    quotes the file."""
    tokens = pytest.importorskip("markdown_it").MarkdownIt("commonmark").parse(body)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == [heading.lstrip("# ")]
    fences = [t.content for t in tokens if t.type == "fence"]
    assert len(fences) == 1 and "# Owned @octocat" in fences[0]
    assert not [t for t in tokens if t.type == "inline" and "octocat" in t.content]


@pytest.mark.parametrize("command", [
    "destroy\n::warning title=Forged::all is well",
    "destroy\r::add-mask::all",
    "destroy %0A::notice::%25",
], ids=["new-line", "carriage-return", "percent-escapes"])
def test_an_input_never_becomes_a_workflow_command(github: GitHub, command: str) -> None:
    give_the_action(github, "plan", command=command)
    results = github.run_job("plan", event="pull_request", run_id=PR_RUN_ID)
    assert [c for r in results for c in r.commands] == [WorkflowCommand(
        "error", {"title": "Bad input"},
        f"command must be plan, apply, check or test, not '{command}'")]


def test_values_in_reconciler_output_never_become_workflow_commands(
        github: GitHub, emulator: Emulator) -> None:
    """A label with line breaks, printed by plan and apply in the job log, stays text."""
    desired = github.workdir / "conversations" / "demo.yaml"
    desired.write_text(desired.read_text().replace(
        "label: demo-bot", 'label: "demo-bot\\n::error title=Forged::x\\r::add-mask::y"'))
    planned = github.run_job("plan", event="pull_request", run_id=PR_RUN_ID)
    assert set(codes(planned).values()) == {0}, planned
    applied = github.run_job("apply", event="push", run_id=502)
    assert set(codes(applied).values()) == {0}, applied
    assert "\n::error title=Forged::x" in output_of(applied, "Run reconciler")
    assert [c for r in planned + applied for c in r.commands] == []
    assert names(emulator) == ["Onboarding FAQ", "Pricing questions", "Product demo"]
    body = github.state()["comments"][-1]["body"]
    assert "| demo-bot :\u200b:\u200berror title=Forged" in body and "\n::" not in body


def test_push_without_a_reviewed_plan_applies_nothing(github: GitHub, emulator: Emulator) -> None:
    github.update_state(pulls=[])  # pushed to main directly, not merged from a pull request
    results = github.run_job("apply", event="push", run_id=502)
    assert codes(results)["Find the plan reviewed on the pull request"] == 0
    assert "Unreviewed changes" in output_of(results, "Run reconciler")
    assert codes(results)["Fail on a failed plan or apply"] == 1
    assert names(emulator) == []


def test_push_with_nothing_to_change_applies_nothing_and_succeeds(
        github: GitHub, emulator: Emulator) -> None:
    github.update_state(pulls=[])
    (github.workdir / "conversations" / "demo.yaml").write_text(
        "version: 1\nprojects:\n  - id: 1001\n    conversations: []\n")
    results = github.run_job("apply", event="push", run_id=502)
    assert set(codes(results).values()) == {0}, results
    assert github.outputs["reconciler"]["has-changes"] == "false"
    assert "nothing to apply" in output_of(results, "Run reconciler")


@pytest.fixture
def sharded(tmp_path: Path, emulator: Emulator, api_env: dict[str, str]) -> Iterator[GitHub]:
    """The sharded workflow, with one desired-state file per project its shards name."""
    hub = make_hub(tmp_path, emulator, api_env, SHARDED)
    (hub.workdir / "conversations" / "demo.yaml").unlink()
    for shard in load_yaml(SHARDED)["jobs"]["plan"]["strategy"]["matrix"]["shard"]:
        for project in re.findall(r"--project (\d+)", shard["projects"]):
            emulator.ensure_project(int(project), f"bot-{project}")
            (hub.workdir / "conversations" / f"{project}.yaml").write_text(
                f"version: 1\nprojects:\n  - id: {project}\n    conversations:\n"
                f"      - name: Welcome to {project}\n")
    yield hub


def test_sharded_workflow_plans_and_applies_each_shard_on_its_own(
        sharded: GitHub, emulator: Emulator) -> None:
    shards = load_yaml(SHARDED)["jobs"]["plan"]["strategy"]["matrix"]["shard"]
    for shard in shards:
        results = sharded.run_job("plan", event="pull_request", run_id=PR_RUN_ID,
                                  matrix={"shard": shard})
        assert set(codes(results).values()) == {0}, results
        plan = json.loads((sharded.workdir / "plan.json").read_text())
        ours = re.findall(r"--project (\d+)", shard["projects"])
        assert sorted(str(p["project_id"]) for p in plan["projects"]) == sorted(ours)
        artifact = (sharded.home / "artifacts" / str(PR_RUN_ID) /
                    f"reconciler-plan-{shard['name']}" / "plan.json")
        assert artifact.exists()
    bodies = [c["body"] for c in sharded.state()["comments"][1:]]
    assert [body.splitlines()[0] for body in bodies] == [
        f"<!-- reconciler-plan: {shard['name']} -->" for shard in shards]  # one per shard

    applied = shards[0]  # one shard's apply changes its projects and no other's
    results = sharded.run_job("apply", event="push", run_id=502, matrix={"shard": applied})
    assert set(codes(results).values()) == {0}, results
    for shard in shards:
        for project in re.findall(r"--project (\d+)", shard["projects"]):
            expected = [f"Welcome to {project}"] if shard is applied else []
            assert names(emulator, int(project)) == expected


# Answer checks: the action's check and test, in reconciler-answers.yml -----------------------

ANSWER_FILE = f"""\
version: 1
projects:
  - id: {PROJECT}
    label: demo-bot
    conversations:
      - name: QA refunds
        messages:
          - prompt: How long do refunds take?
            expect: {{contains: ["emulated answer"]}}
          - prompt: Who pays the shipping?
            expect: {{not_contains: ["shipping"]}}
"""
CHECK_MARKER = "<!-- reconciler-check -->"


def apply_here(hub: GitHub, api_env: dict[str, str]) -> None:
    """Apply the checkout's conversations, so that their answers are stored."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(hub.workdir):
        code = main(["apply", "conversations", "--auto-approve", "--no-backup"], env=api_env,
                    stdout=out, stderr=err)
    assert code == 0, out.getvalue() + err.getvalue()


@pytest.fixture
def answers(tmp_path: Path, emulator: Emulator, api_env: dict[str, str]) -> Iterator[GitHub]:
    """reconciler-answers.yml in a checkout whose conversations are applied."""
    hub = make_hub(tmp_path, emulator, api_env, ANSWERS)
    (hub.workdir / "conversations" / "demo.yaml").write_text(ANSWER_FILE)
    apply_here(hub, api_env)
    yield hub


def test_check_comments_the_summary_and_fails_the_job_when_checks_fail(
        answers: GitHub) -> None:
    for _ in range(2):
        results = answers.run_job("check", event="pull_request", run_id=PR_RUN_ID)
        assert codes(results)["Run reconciler"] == 0
        assert codes(results)["Fail on a failed plan or apply"] == 1
        assert codes(results)["Upload the reports"] == 0
    outputs = answers.outputs["reconciler"]
    assert outputs["exit-code"] == "3"
    suite = ET.parse(outputs["junit"]).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("2", "1")
    comments = answers.state()["comments"]
    assert [c["id"] for c in comments] == [1, 101]  # one comment, updated
    body = comments[1]["body"]
    assert body.startswith(CHECK_MARKER + "\n### Answer checks")
    assert "**1 passed, 1 failed**" in body
    assert "### Answer checks" in (answers.home / "summary.md").read_text()
    artifact = answers.home / "artifacts" / str(PR_RUN_ID) / "reconciler-answer-checks"
    assert (artifact / "check.xml").read_text() == Path(outputs["junit"]).read_text()
    page = (artifact / outputs["html"]).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "1 failed" in page
    errors = [c for r in results for c in r.commands]
    assert [(c.name, c.properties) for c in errors] == [
        ("error", {"title": "Answer checks failed"})]


def test_check_that_passes_passes_the_job(answers: GitHub, api_env: dict[str, str]) -> None:
    desired = answers.workdir / "conversations" / "demo.yaml"
    desired.write_text(ANSWER_FILE.replace("not_contains", "contains"))
    results = answers.run_job("check", event="pull_request", run_id=PR_RUN_ID)
    assert set(codes(results).values()) == {0}, results
    assert "Fail on a failed plan or apply" not in codes(results)
    assert answers.outputs["reconciler"]["exit-code"] == "0"


def test_a_checks_comment_shows_the_files_values_as_inert_text(
        answers: GitHub, api_env: dict[str, str]) -> None:
    desired = answers.workdir / "conversations" / "demo.yaml"
    hostile = json.dumps("QA refunds\n# Owned @octocat [a](https://evil) <img src=x>")
    desired.write_text(ANSWER_FILE.replace("QA refunds", hostile))
    apply_here(answers, api_env)
    answers.run_job("check", event="pull_request", run_id=PR_RUN_ID)
    body = answers.state()["comments"][-1]["body"]
    tokens = pytest.importorskip("markdown_it").MarkdownIt("commonmark").parse(body)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == ["Answer checks"]
    inline = [c for t in tokens if t.type == "inline" for c in t.children or ()]
    assert [c for c in inline if c.type in ("link_open", "image", "html_inline")
            and c.content not in ("<sub>", "</sub>")] == []  # the action's own footer
    assert "octocat" in body and "@octocat" not in body


def test_a_check_that_cannot_run_shows_its_messages_in_a_fence(answers: GitHub) -> None:
    (answers.workdir / "conversations" / "demo.yaml").write_text(
        f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n"
        '      - name: a\n        "x\\n```\\n# Owned @octocat [a](https://evil)": 1\n')
    results = answers.run_job("check", event="pull_request", run_id=PR_RUN_ID)
    assert codes(results)["Fail on a failed plan or apply"] == 1
    assert answers.outputs["reconciler"]["exit-code"] == "1"
    body = answers.state()["comments"][-1]["body"]
    assert body.startswith(CHECK_MARKER)
    assert "unknown key" in body
    assert_one_fenced_block(body, heading="### reconciler check failed")


FAKE_RECONCILER = r"""
import json, os, sys
args = sys.argv[1:]
if args[0] != "test":  # only `reconciler test` is stood in for
    os.execv(os.environ["REAL_RECONCILER"], [os.environ["REAL_RECONCILER"], *args])
with open(os.environ["FAKE_RECONCILER_LOG"], "w") as log:
    json.dump(args, log)
for index, arg in enumerate(args):
    if arg == "--write":
        with open(args[index + 2], "w") as report:
            report.write(f"<{args[index + 1]}/>")
print("### Answer checks\n\n**5 passed, 1 failed**, 0 not checked")
sys.exit(3)
"""


def test_the_nightly_test_job_runs_reconciler_test_as_the_action_builds_it(
        answers: GitHub) -> None:
    """`reconciler test` itself is not run here: the command line the action builds is."""
    fake = answers.home / "fake-bin"
    fake.mkdir()
    (fake / "reconciler").write_text(f"#!{sys.executable}\n{FAKE_RECONCILER}")
    (fake / "reconciler").chmod(0o755)
    log = answers.home / "reconciler-test.json"
    answers.env.update(PATH=f"{fake}{os.pathsep}{answers.env['PATH']}",
                       REAL_RECONCILER=str(BIN / "reconciler"), FAKE_RECONCILER_LOG=str(log))
    results = answers.run_job("test", event="schedule", run_id=601)
    assert codes(results)["Run reconciler"] == 0
    assert codes(results)["Fail on a failed plan or apply"] == 1
    outputs = answers.outputs["reconciler"]
    assert (outputs["exit-code"], outputs["html"]) == ("3", "answer-tests.html")
    assert json.loads(log.read_text()) == [
        "test", "--repeat", "3", "--min-pass-rate", "0.9", "--max-sends", "300",
        "-f", "conversations", "--format", "markdown",
        "--write", "junit", outputs["junit"], "--write", "html", "answer-tests.html"]
    artifact = answers.home / "artifacts" / "601" / "reconciler-answer-tests-601"
    assert sorted(p.name for p in artifact.iterdir()) == ["answer-tests.html", "test.xml"]
    summary = (answers.home / "summary.md").read_text()
    assert summary.startswith("<!-- reconciler-test -->\n### Answer checks")
    assert answers.state()["comments"] == [FIRST_COMMENT]  # no pull request: no comment


# Staging, then production: reconciler-environments.yml -------------------------------------

STAGING, PRODUCTION = 3001, 4001


@pytest.fixture
def environments(tmp_path: Path, emulator: Emulator,
                 api_env: dict[str, str]) -> Iterator[GitHub]:
    """reconciler-environments.yml, the per-environment example as its files."""
    hub = make_hub(tmp_path, emulator, api_env, ENVIRONMENTS)
    (hub.workdir / "conversations" / "demo.yaml").unlink()
    example = ROOT / "examples" / "per-environment"
    shutil.copy(example / "support.yaml", hub.workdir / "conversations" / "support.yaml")
    (hub.workdir / "environments").mkdir()
    for name in ("staging", "production"):
        shutil.copy(example / f"{name}.env", hub.workdir / "environments" / f"{name}.env")
    for project in (STAGING, PRODUCTION):
        emulator.ensure_project(project, f"support-{project}")
    hub.secrets["RECONCILER_PLAN_KEY"] = "plan-key-for-tests-0123456789abcdef"
    yield hub


def test_each_environment_is_planned_signed_then_staging_then_production_applied(
        environments: GitHub, emulator: Emulator) -> None:
    artifacts = environments.home / "artifacts" / "601"
    for target, project in (("staging", STAGING), ("production", PRODUCTION)):
        results = environments.run_job("plan", event="push", run_id=601,
                                       matrix={"target": target})
        assert set(codes(results).values()) == {0}, results
        plan = json.loads((artifacts / f"reconciler-plan-{target}" / "plan.json").read_text())
        assert plan["signature"].startswith("hmac-sha256:")
        assert [p["project_id"] for p in plan["projects"]] == [project]
    assert names(emulator, STAGING) == names(emulator, PRODUCTION) == []

    staged = environments.run_job("apply-staging", event="push", run_id=601)
    assert set(codes(staged).values()) == {0}, staged
    assert names(emulator, STAGING) == ["Onboarding FAQ", "Template help"]
    assert names(emulator, PRODUCTION) == []

    produced = environments.run_job("apply-production", event="push", run_id=601)
    assert set(codes(produced).values()) == {0}, produced
    assert names(emulator, PRODUCTION) == ["Onboarding FAQ", "Template help"]


def test_an_unsigned_plan_is_not_applied(environments: GitHub, emulator: Emulator) -> None:
    results = environments.run_job("plan", event="push", run_id=601,
                                   matrix={"target": "staging"})
    assert set(codes(results).values()) == {0}, results
    saved = environments.home / "artifacts" / "601" / "reconciler-plan-staging" / "plan.json"
    plan = json.loads(saved.read_text())
    del plan["signature"]
    saved.write_text(json.dumps(plan))
    applied = environments.run_job("apply-staging", event="push", run_id=601)
    assert codes(applied)["Fail on a failed plan or apply"] == 1
    assert "planned/plan.json is not signed, but a plan key was given" in output_of(
        applied, "Run reconciler")
    assert names(emulator, STAGING) == []


@pytest.mark.parametrize("line", ["SUPPORT_PROJECT_ID=$(touch injected)",
                                  "SUPPORT_PROJECT_ID=3001\nGITHUB_PATH=/tmp",
                                  "OTHER=1"], ids=["shell", "extra-variable", "missing"])
def test_an_environment_file_gives_only_its_named_ids(environments: GitHub, line: str) -> None:
    (environments.workdir / "environments" / "staging.env").write_text(
        f"{line}\nDEPLOY_ENV=staging\n")
    results = environments.run_job("plan", event="push", run_id=601,
                                   matrix={"target": "staging"})
    if line.startswith("SUPPORT_PROJECT_ID=3001"):
        assert set(codes(results).values()) == {0}, results
        exported = "".join(p.read_text() for p in environments.home.glob("env-plan-*"))
        assert sorted(exported.splitlines()) == ["DEPLOY_ENV=staging",
                                                 "SUPPORT_PROJECT_ID=3001"]
        return
    assert codes(results)["Read the environment's ids"] == 1
    assert [c.properties for r in results for c in r.commands] == [
        {"title": "Bad environment file"}]
    assert not (environments.workdir / "injected").exists()


# The GitLab pipeline's plan job, its scripts run against the emulator ---------------------------

FAKE_CURL = r"""
import json, os, sys
from pathlib import Path

state_path = Path(os.environ["FAKE_GITLAB_STATE"])
state = json.loads(state_path.read_text())
args = sys.argv[1:]

def option(name):
    return args[args.index(name) + 1] if name in args else None

def refuse(status):
    sys.exit(print(f"curl: (22) The requested URL returned error: {status}", file=sys.stderr)
             or 22)

headers = [args[i + 1] for i, arg in enumerate(args) if arg == "--header"]
token = next((h.split(": ", 1)[1] for h in headers if h.startswith("PRIVATE-TOKEN: ")), "")
user = state["users"].get(token) or refuse(401)
method = option("--request") or "GET"
path = args[-1].removeprefix(os.environ["CI_API_V4_URL"]).split("?")[0]
notes = (f"/projects/{os.environ['CI_PROJECT_ID']}/merge_requests/"
         f"{os.environ['CI_MERGE_REQUEST_IID']}/notes")
state["calls"].append([method, path])
if (method, path) == ("GET", "/user"):
    print(json.dumps(user))
elif (method, path) == ("GET", notes):
    print(json.dumps(state["notes"]))
elif (method, path) == ("POST", notes):
    body = json.loads(Path(option("--data")[1:]).read_text())["body"]
    state["notes"].append({"id": 100 + len(state["notes"]), "body": body, "author": user})
elif method == "PUT" and path.startswith(notes + "/"):  # only its author edits a note
    note = next(n for n in state["notes"] if n["id"] == int(path.rsplit("/", 1)[1]))
    if note["author"]["id"] != user["id"]:
        refuse(403)
    note["body"] = json.loads(Path(option("--data")[1:]).read_text())["body"]
else:
    refuse(404)
state_path.write_text(json.dumps(state))
"""
GITLAB_BOT = {"id": 3001, "username": "project_42_bot_0123", "name": "reconciler"}
GITLAB_STRANGER = {"id": 66, "username": "drive-by", "name": "reconciler"}


@pytest.fixture
def gitlab(tmp_path: Path, emulator: Emulator, api_env: dict[str, str]) -> dict[str, str]:
    """A checkout with conversations/demo.yaml and the environment of a merge request
    pipeline, with a fake GitLab API (curl) keeping its notes in a JSON file."""
    emulator.ensure_project(PROJECT, "demo")
    workdir, home = tmp_path / "repo", tmp_path / "runner"
    (workdir / "conversations").mkdir(parents=True)
    (home / "bin").mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "quickstart.yaml", workdir / "conversations" / "demo.yaml")
    curl = home / "bin" / "curl"
    curl.write_text(f"#!{sys.executable}\n{FAKE_CURL}", encoding="utf-8")
    curl.chmod(0o755)
    state = home / "gitlab-state.json"
    state.write_text(json.dumps({"calls": [], "users": {"glpat-for-tests": GITLAB_BOT},
                                 "notes": []}))
    variables = {key: str(value) for key, value in load_yaml(GITLAB)["variables"].items()}
    return {**variables, **api_env, "WORKDIR": str(workdir), "FAKE_GITLAB_STATE": str(state),
            "PATH": os.pathsep.join([str(home / "bin"), str(BIN), os.environ["PATH"]]),
            "HOME": str(home), "LANG": "C.UTF-8", "CI_API_V4_URL": "https://gitlab.test/api/v4",
            "CI_PROJECT_ID": "42", "CI_MERGE_REQUEST_IID": "7", "CI_COMMIT_SHORT_SHA": "aaaaaaaa",
            "CI_PIPELINE_URL": "https://gitlab.test/acme/conversations/-/pipelines/9",
            "RECONCILER_GITLAB_TOKEN": "glpat-for-tests"}


def run_gitlab_job(job: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The job's before_script (but the installs) and script, in one shell as GitLab runs
    them, stopping at the first command that fails."""
    pipeline = load_yaml(GITLAB)
    before = [line for line in pipeline[".reconciler"]["before_script"] if "install" not in line]
    script = "\n".join([*before, *pipeline[job]["script"]])
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                          cwd=env["WORKDIR"], env=env, capture_output=True, text=True,
                          timeout=120)


def test_gitlab_answers_job_fails_on_a_failed_check_and_keeps_its_reports(
        gitlab: dict[str, str], api_env: dict[str, str]) -> None:
    workdir = Path(gitlab["WORKDIR"])
    (workdir / "conversations" / "demo.yaml").write_text(ANSWER_FILE)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(workdir):
        assert main(["apply", "conversations", "--auto-approve", "--no-backup"], env=api_env,
                    stdout=out, stderr=err) == 0, err.getvalue()
    done = run_gitlab_job("answers", gitlab)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "ANSWER CHECKS FAILED" in done.stdout
    job = load_yaml(GITLAB)["answers"]
    report = workdir / job["artifacts"]["reports"]["junit"]
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("2", "1")
    assert (workdir / job["artifacts"]["paths"][0]).read_text().startswith("<!DOCTYPE html>")
    assert job["artifacts"]["when"] == "always"


def gitlab_notes(env: dict[str, str]) -> list[dict[str, Any]]:
    notes: list[dict[str, Any]] = json.loads(Path(env["FAKE_GITLAB_STATE"]).read_text())["notes"]
    return notes


def test_gitlab_plan_note_is_only_ever_one_of_the_tokens_user(gitlab: dict[str, str]) -> None:
    """A note starting with the marker by someone else is left alone; the job keeps one
    note of its own, updated on every push."""
    forged = {"id": 1, "body": f"{MARKER}\nApproved, merge it", "author": GITLAB_STRANGER}
    state = Path(gitlab["FAKE_GITLAB_STATE"])
    state.write_text(json.dumps({**json.loads(state.read_text()), "notes": [forged]}))
    for _ in range(2):
        done = run_gitlab_job("plan", gitlab)
        assert done.returncode == 0, done.stdout + done.stderr
    notes = gitlab_notes(gitlab)
    assert notes[0] == forged
    assert [note["author"] for note in notes[1:]] == [GITLAB_BOT]
    assert notes[1]["body"].startswith(MARKER)
    assert "| demo-bot (1001) | 3 |" in notes[1]["body"]


def test_gitlab_failed_plan_messages_stay_in_their_fence(gitlab: dict[str, str]) -> None:
    (Path(gitlab["WORKDIR"]) / "conversations" / "demo.yaml").write_text(
        f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n"
        '      - name: a\n        "x\\n```\\n# Owned @octocat [a](https://evil)": 1\n')
    done = run_gitlab_job("plan", gitlab)
    assert done.returncode == 1
    body = gitlab_notes(gitlab)[-1]["body"]
    assert "unknown key" in body
    assert_one_fenced_block(body, heading="### reconciler plan failed")


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
