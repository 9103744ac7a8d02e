"""Safety rules fail closed: backups, restore, the mass-delete guard, stale
plans, and the API token that never shows."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.api.client import Client, ClientSettings
from reconciler.apply.locks import lock_path
from reconciler.apply.run import ApplyOptions, ApplyReport, apply_plan
from reconciler.desired.loader import load_desired
from reconciler.emulator import Emulator, FaultRule
from reconciler.errors import PlanRefusedError
from reconciler.jsonio import canonical
from reconciler.plan.guards import GuardLimits
from reconciler.plan.make import make_plan
from tests.workspace import PROJECT, Workspace, held_by_another


def prune_all(ws: Workspace, *, extra: str = "") -> None:
    """Declare no conversation in PROJECT, pruning every one in scope (it owns them all):
    deleting every owned conversation needs --allow-mass-delete."""
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            owns: ["*"]
            conversations: []
            {extra}
    """)


def test_unwritable_backup_dir_means_no_delete(ws: Workspace) -> None:
    ws.seed("Precious")
    prune_all(ws)
    blocker = ws.path / "not-a-directory"
    blocker.write_text("a file where the backup directory should be")
    result = ws.run("apply", "-f", str(ws.file), "--auto-approve", "--allow-mass-delete",
                    "--backup-dir", str(blocker / "backups"))
    assert result.code == 1
    assert f"--backup-dir: cannot be created: {blocker} is not a directory" in result.err
    written = {m: n for m, n in ws.emulator.stats()["requests"].items() if m != "GET"}
    assert written == {}
    assert ws.names() == ["Precious"]


def test_an_apply_that_deletes_nothing_needs_no_backup_dir(ws: Workspace) -> None:
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            conversations:
              - name: New
    """)
    blocker = ws.path / "not-a-directory"
    blocker.write_text("a file where the backup directory would be")
    result = ws.run("apply", "-f", str(ws.file), "--auto-approve",
                    "--backup-dir", str(blocker / "backups"))
    assert result.code == 0, result.err
    assert ws.names() == ["New"]


def test_no_backup_opts_out_explicitly(ws: Workspace) -> None:
    ws.seed("Scratch")
    prune_all(ws)
    result = ws.run("apply", "-f", str(ws.file), "--auto-approve", "--no-backup",
                    "--allow-mass-delete")
    assert result.code == 0
    assert ws.names() == []
    assert not (ws.path / "backups").exists()


def test_apply_says_where_each_backup_went(ws: Workspace) -> None:
    sessions = [ws.seed(f"Scratch {i}") for i in range(2)]
    prune_all(ws)
    report = ws.path / "report.json"
    result = ws.apply("--report", str(report), "--allow-mass-delete")
    assert result.code == 0, result.err
    backups = ws.path / "backups" / str(PROJECT)
    written = [backups / f"{session}.json" for session in sessions]
    for name, session, path in zip(("Scratch 0", "Scratch 1"), sessions, written, strict=True):
        assert path.is_file()
        assert f"[ok] delete '{name}' (project {PROJECT}, {session}): deleted; backup: " \
               f"{path}\n" in result.err
    assert (f"The transcripts of the 2 deleted conversation(s) are backed up under {backups} "
            "(`reconciler restore FILE` brings one back).") in result.out
    operations = json.loads(report.read_text())["operations"]
    assert sorted(op["backup"] for op in operations) == sorted(map(str, written))
    ws.seed("Unsaved")
    unsaved = ws.run("apply", "-f", str(ws.file), "--auto-approve", "--no-backup")
    assert "backup" not in unsaved.out + unsaved.err


def _deleted_with_backup(ws: Workspace, *prompts: str) -> tuple[str, Path]:
    """A conversation 'Demo thread' with `prompts`, deleted by apply: its session and backup."""
    session = ws.seed("Demo thread")
    for prompt in prompts:
        ws.emulator.add_message(PROJECT, session, prompt)
    prune_all(ws)
    assert ws.apply("--allow-mass-delete").code == 0 and ws.names() == []
    (backup,) = (ws.path / "backups").rglob(f"{session}.json")
    return session, backup


def _restored(ws: Workspace) -> list[list[str]]:
    """The prompts of every conversation named 'Demo thread'."""
    return [[m["user_query"] for m in ws.emulator.messages(PROJECT, c["session_id"])]
            for c in ws.emulator.conversations(PROJECT) if c["name"] == "Demo thread"]


def test_restore_recreates_a_deleted_conversation_once(ws: Workspace) -> None:
    _, backup = _deleted_with_backup(ws, "first question", "second question")
    plain = ws.run("restore", str(backup))
    assert plain.code == 0, plain.err
    assert "Restored 'Demo thread' in project" in plain.out
    assert "2 message(s) were not re-sent" in plain.err
    again = ws.run("restore", str(backup))
    assert again.code == 0, again.err
    assert "Already restored: 'Demo thread'" in again.out
    assert _restored(ws) == [[]]

    resent = ws.run("restore", str(backup), "--resend-prompts")
    assert resent.code == 0, resent.err
    assert "Resumed the restore" in resent.out
    assert "answers were generated anew" in resent.out
    assert _restored(ws) == [["first question", "second question"]]
    last = ws.run("restore", str(backup), "--resend-prompts")
    assert last.code == 0, last.err
    assert "with the backup's prompts; nothing was done" in last.out
    assert _restored(ws) == [["first question", "second question"]]


def test_restore_with_prompts_twice_makes_one_conversation(ws: Workspace) -> None:
    _, backup = _deleted_with_backup(ws, "a", "b")
    assert [ws.run("restore", str(backup), "--resend-prompts").code for _ in range(2)] == [0, 0]
    assert _restored(ws) == [["a", "b"]]


@pytest.mark.parametrize(
    ("creator", "prompts", "flags"),
    [("me", ["something else"], ("--resend-prompts",)), ("visitor", [], ()),
     ("me", ["a", "b", "c"], ("--resend-prompts",))],
    ids=["other-prompts", "someone-elses", "more-prompts"],
)
def test_restore_refuses_a_name_taken_by_another_conversation(
    ws: Workspace, creator: str, prompts: list[str], flags: tuple[str, ...]
) -> None:
    _, backup = _deleted_with_backup(ws, "a", "b")
    taken = ws.seed("Demo thread", creator=creator)
    for prompt in prompts:
        ws.emulator.add_message(PROJECT, taken, prompt)
    result = ws.run("restore", str(backup), *flags)
    assert result.code == 1
    assert f"the name 'Demo thread' is taken in project {PROJECT} by session(s) {taken}" \
        in result.err
    assert "nothing was restored" in result.err
    assert _restored(ws) == [prompts]


def test_restore_sends_no_more_prompts_than_max_sends_allows(ws: Workspace) -> None:
    _, backup = _deleted_with_backup(ws, "a", "b", "c")
    refused = ws.run("restore", str(backup), "--resend-prompts", "--max-sends", "2")
    assert refused.code == 1
    assert "restoring this backup sends 3 prompt(s), more than --max-sends 2" in refused.err
    assert "nothing was restored" in refused.err
    assert _restored(ws) == []
    allowed = ws.run("restore", str(backup), "--resend-prompts", "--max-sends", "3")
    assert allowed.code == 0, allowed.err
    assert _restored(ws) == [["a", "b", "c"]]


def test_restore_counts_only_the_prompts_it_still_has_to_send(ws: Workspace) -> None:
    _, backup = _deleted_with_backup(ws, "a", "b", "c")
    assert ws.run("restore", str(backup)).code == 0  # the conversation, no prompts yet
    (session,) = [c["session_id"] for c in ws.emulator.conversations(PROJECT)]
    ws.emulator.add_message(PROJECT, session, "a")  # a restore that stopped after one
    ws.emulator.query_credits = 2
    resumed = ws.run("restore", str(backup), "--resend-prompts", "--max-sends", "2")
    assert resumed.code == 0, resumed.err
    assert _restored(ws) == [["a", "b", "c"]]


def test_restore_sends_no_more_prompts_than_the_credits_left(ws: Workspace) -> None:
    _, backup = _deleted_with_backup(ws, "a", "b")
    ws.emulator.query_credits = 1
    refused = ws.run("restore", str(backup), "--resend-prompts")
    assert refused.code == 1
    assert "sends 2 prompt(s) but the account has 1 query credit(s) left" in refused.err
    assert _restored(ws) == []
    assert ws.run("restore", str(backup)).code == 0  # without its prompts: no credit needed
    assert _restored(ws) == [[]]


def test_restore_of_a_conversation_that_still_exists_does_nothing(ws: Workspace) -> None:
    session = ws.seed("Demo thread")
    ws.emulator.faults.rules = [FaultRule(method="DELETE", path="/conversations/", status=400,
                                          mode="fail", times=None)]
    prune_all(ws)
    assert ws.apply("--allow-mass-delete").code == 1
    ws.emulator.faults.rules = []
    (backup,) = (ws.path / "backups").rglob(f"{session}.json")
    result = ws.run("restore", str(backup), "--resend-prompts")
    assert result.code == 0, result.err
    assert f"Nothing to restore: 'Demo thread' in project {PROJECT} (session {session}) " \
        "still exists." in result.out
    assert ws.names() == ["Demo thread"]


@pytest.mark.parametrize("content", ["{not json", '{"format_version": 1}', "[]"],
                         ids=["not-json", "missing-fields", "not-an-object"])
def test_restore_refuses_what_is_not_a_backup(ws: Workspace, content: str) -> None:
    bad = ws.path / "bad.json"
    bad.write_text(content)
    result = ws.run("restore", str(bad))
    assert result.code == 1
    assert str(bad) in result.err


@pytest.mark.parametrize("session_id", ["../../outside", "a\x1b[31mred", ""],
                         ids=["path", "escape", "empty"])
def test_restore_refuses_a_backup_whose_session_id_is_not_one(
    ws: Workspace, session_id: str
) -> None:
    _, backup = _deleted_with_backup(ws, "a")
    document = json.loads(backup.read_text())
    document["conversation"]["session_id"] = session_id
    backup.write_text(json.dumps(document))
    result = ws.run("restore", str(backup), "--resend-prompts")
    assert result.code == 1
    assert "not a reconciler backup file: conversation.session_id is not a session id" \
        in result.err
    assert "\x1b" not in result.err + result.out
    assert _restored(ws) == []


@pytest.mark.parametrize(
    ("live", "deletes", "flags", "refused"),
    [
        (10, 3, (), False),
        (10, 4, (), True),
        (10, 4, ("--allow-mass-delete",), False),
        (5, 1, (), False),
        (5, 2, (), True),
        (5, 5, (), True),
        (1, 1, (), True),
        (1, 1, ("--allow-mass-delete",), False),
        (10, 3, ("--max-deletes", "3"), False),
        (10, 3, ("--max-deletes", "2"), True),
    ],
    ids=["at-30pc", "over-30pc", "allowed", "small-project-at-30pc", "small-project-over-30pc",
         "small-project-all", "the-only-one", "the-only-one-allowed", "at-max-deletes",
         "over-max-deletes"],
)
def test_mass_delete_guard_trips_above_the_threshold_only(
    ws: Workspace, live: int, deletes: int, flags: tuple[str, ...], refused: bool
) -> None:
    keep = [f"keep {i}" for i in range(live - deletes)]
    _seed_prune(ws, keep=len(keep), strays=deletes)
    result = ws.apply(*flags)
    assert result.code == (1 if refused else 0), result.out + result.err
    if refused:
        assert "mass-delete guard" in result.out
        assert "--allow-mass-delete" in result.out
        assert len(ws.names()) == live
    else:
        assert ws.names() == sorted(keep)


def test_max_delete_fraction_in_yaml_sets_the_threshold(ws: Workspace) -> None:
    _seed_prune(ws, keep=1, strays=9)
    assert ws.apply().code == 1  # 9 of the 10 it owns
    ws.file.write_text(ws.file.read_text().replace("owns:", "max_delete_fraction: 0.9\n    owns:"))
    assert ws.apply().code == 0
    assert ws.names() == ["keep 0"]


def test_protect_holds_after_the_entry_is_removed(ws: Workspace) -> None:
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            protect: ["Legal *"]
            conversations: [{{name: Legal hold}}]
    """)
    assert ws.apply().code == 0
    prune_all(ws, extra='protect: ["Legal *"]')
    assert ws.apply().code == 0
    assert ws.names() == ["Legal hold"]


def _declare(ws: Workspace, conversations: str) -> None:
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}, conversations: {conversations}}}]\n")


def _saved_plan(ws: Workspace, *flags: str) -> Path:
    saved = ws.path / "plan.json"
    result = ws.plan("--out", str(saved), *flags)
    assert result.code == 0, result.out + result.err
    return saved


def _apply_saved(ws: Workspace, saved: Path, *flags: str) -> str:
    result = ws.run("apply", "--plan", str(saved), "--auto-approve", *flags)
    assert result.code == 1
    assert "the saved plan is stale; nothing was applied" in result.err
    return result.err


def test_stale_when_a_delete_target_was_renamed(ws: Workspace) -> None:
    doomed = ws.seed("Doomed")
    ws.seed("Other")
    ws.declare(f"""
        version: 1
        projects: [{{id: {PROJECT}, prune: true, owns: ["*"], conversations: [{{name: Kept}}]}}]
    """)
    saved = _saved_plan(ws, "--allow-mass-delete")  # deletes both it owns
    _rename_behind_the_back(ws, doomed, "Renamed by a colleague")
    err = _apply_saved(ws, saved, "--allow-mass-delete")
    assert "name: 'Doomed' -> 'Renamed by a colleague'" in err
    assert ws.names() == ["Other", "Renamed by a colleague"]


def _behind_the_back(ws: Workspace, method: str, session: str, **body: str) -> None:
    """What a colleague does in the dashboard: a direct API call, outside reconciler."""
    httpx.request(
        method, f"{ws.emulator.base_url}/api/v1/projects/{PROJECT}/conversations/{session}",
        json=body or None, headers={"Authorization": f"Bearer {ws.emulator.api_key}"},
    ).raise_for_status()


def _rename_behind_the_back(ws: Workspace, session: str, name: str) -> None:
    _behind_the_back(ws, "PUT", session, name=name)


@pytest.mark.parametrize(
    "declared",
    ["conversations: []", "conversations: [{name: New, renamed_from: [Doomed]}]"],
    ids=["delete", "rename"],
)
def test_stale_when_the_target_is_gone(ws: Workspace, declared: str) -> None:
    doomed = ws.seed("Doomed")
    ws.declare(f'version: 1\nprojects: [{{id: {PROJECT}, prune: true, owns: ["*"], '
               f"{declared}}}]\n")
    saved = _saved_plan(ws, "--allow-mass-delete")  # the delete is of the only one owned
    _behind_the_back(ws, "DELETE", doomed)
    assert f"session {doomed} no longer exists" in _apply_saved(ws, saved, "--allow-mass-delete")


@pytest.mark.parametrize(
    ("declared", "old"),
    [("[{name: New, renamed_from: [Old]}]", "Old"), ("[{name: Demo, messages: [hello]}]", "Demo")],
    ids=["rename-source", "send-target"],
)
def test_stale_when_the_conversation_was_renamed(ws: Workspace, declared: str, old: str) -> None:
    session = ws.seed(old)
    _declare(ws, declared)
    saved = _saved_plan(ws)
    _rename_behind_the_back(ws, session, "Something else")
    assert f"name: '{old}' -> 'Something else'" in _apply_saved(ws, saved)
    assert ws.names() == ["Something else"]
    assert ws.emulator.messages(PROJECT, session) == []


@pytest.mark.parametrize(("sent_before", "declared"), [([], "[hi]"), (["hi"], "[hi, hi]")],
                         ids=["once", "repeated"])
def test_stale_when_a_planned_prompt_was_sent(
    ws: Workspace, sent_before: list[str], declared: str
) -> None:
    session = ws.seed("Demo")
    for prompt in sent_before:
        ws.emulator.add_message(PROJECT, session, prompt)
    _declare(ws, f"[{{name: Demo, messages: {declared}}}]")
    saved = _saved_plan(ws)
    ws.emulator.add_message(PROJECT, session, "hi")
    times = len(sent_before)
    assert (f"the prompt has been sent since the plan was made: it is in the transcript "
            f"{times + 1} time(s), {times} when planned") in _apply_saved(ws, saved)
    assert len(ws.emulator.messages(PROJECT, session)) == times + 1


def test_a_delete_target_that_gained_messages_during_apply_is_kept(ws: Workspace) -> None:
    doomed = ws.seed("Doomed")
    prune_all(ws)
    saved = _saved_plan(ws, "--allow-mass-delete")
    ws.emulator.add_message(PROJECT, doomed, "typed after review")
    _apply_saved(ws, saved, "--allow-mass-delete")
    assert ws.names() == ["Doomed"]


def test_http_to_a_remote_host_is_refused(ws: Workspace) -> None:
    ws.env["CUSTOMGPT_BASE_URL"] = "http://api.example.com"
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}}}]\n")
    result = ws.plan()
    assert result.code == 1
    assert "--insecure-http" in result.err


SECRET = "sk-RECOGNISABLE-0123456789abcdef"


def test_the_token_never_appears_anywhere(tmp_path: Path) -> None:
    """Every command at the highest verbosity, with failures forced; grep every byte written."""
    with Emulator(api_key=SECRET, enable_admin=True) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        work = tmp_path / "work"
        work.mkdir()
        ws = Workspace(work, {"CUSTOMGPT_API_KEY": SECRET,
                              "CUSTOMGPT_BASE_URL": emulator.base_url}, emulator)
        outputs = _run_everything(ws, key_file=tmp_path / "key")
    written = [p.read_bytes() for p in work.rglob("*") if p.is_file()]
    assert len(written) >= 4  # the desired state, a plan, a report, a backup
    assert all(SECRET not in text for text in outputs)
    assert all(SECRET.encode() not in data for data in written)
    assert any("GET /api/v1/" in text for text in outputs), "-vv logs every request"


def _run_everything(ws: Workspace, *, key_file: Path) -> list[str]:
    key_file.write_text(SECRET + "\n")
    doomed = ws.seed("Doomed")
    ws.emulator.add_message(PROJECT, doomed, "hello")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            owns: [Doomed]
            conversations: [{{name: A, messages: [hi]}}, {{name: B}}]
    """)
    saved = ws.path / "plan.json"
    ws.emulator.faults.rules = [
        FaultRule(method="POST", path="/conversations$", status=503, mode="fail", times=2),
        FaultRule(method="GET", path="/messages", status=500, mode="fail", times=1),
    ]
    allow = "--allow-mass-delete"  # the delete is of the only conversation it owns
    runs = [
        ws.run("plan", "-vv", "-f", str(ws.file), "--out", str(saved), "--format", "json", allow),
        ws.run("plan", "-vv", "-f", str(ws.file), "--format", "markdown", allow),
        ws.run("show", "-vv", str(saved)),
        ws.run("apply", "-vv", "-f", str(ws.file), "--auto-approve", "--report",
               str(ws.path / "report.json"), "--backup-dir", str(ws.path / "backups"), allow),
        ws.run("plan", "-vv", "-f", str(ws.file), "--api-key-file", str(key_file)),
    ]
    ws.declare("version: 1\nprojects: [{id: 999999}]\n")
    runs.append(ws.run("plan", "-vv", "-f", str(ws.file)))
    ws.env["CUSTOMGPT_API_KEY"] = SECRET + "-wrong"
    runs.append(ws.run("plan", "-vv", "-f", str(ws.file)))
    assert [r.code for r in runs] == [0, 0, 0, 0, 0, 1, 1]
    return [text for r in runs for text in (r.out, r.err)]


def test_a_plan_is_applied_only_where_it_was_made(ws: Workspace) -> None:
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}, conversations: [{{name: A}}]}}]\n")
    saved = _saved_plan(ws)
    assert json.loads(saved.read_text())["api"] == ws.emulator.base_url
    with Emulator(api_key=ws.emulator.api_key) as production:
        production.start()
        production.ensure_project(PROJECT)
        elsewhere = {**ws.env, "CUSTOMGPT_BASE_URL": production.base_url}
        result = Workspace(ws.path, elsewhere, production).run(
            "apply", "--plan", str(saved), "--auto-approve")
        assert result.code == 1
        assert f"this plan was made against {ws.emulator.base_url}, not " \
               f"{production.base_url}: nothing was applied" in result.err
        assert production.conversations(PROJECT) == []
    assert ws.names() == []


def _seed_prune(ws: Workspace, *, keep: int, strays: int, extra: str = "") -> None:
    kept = [f"keep {i}" for i in range(keep)]
    for name in kept:
        ws.seed(name)
    for i in range(strays):
        ws.seed(f"stray {i}")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            owns: ["*"]
            {extra}
            conversations: {json.dumps([{"name": n} for n in kept])}
    """)


@pytest.mark.parametrize(
    ("plan_flags", "apply_flags"),
    [
        ((), ("--max-deletes", "1")),
        (("--allow-mass-delete",), ()),
        (("--allow-mass-delete",), ("--max-deletes", "1")),
    ],
    ids=["max-deletes", "mass-delete-allowed-only-when-planned", "max-deletes-after-allowed"],
)
def test_a_saved_plan_is_held_to_the_guards_of_the_apply(
    ws: Workspace, plan_flags: tuple[str, ...], apply_flags: tuple[str, ...]
) -> None:
    strays = 4 if plan_flags else 2
    _seed_prune(ws, keep=6, strays=strays)
    saved = ws.path / "plan.json"
    assert ws.plan("--out", str(saved), *plan_flags).code == 0
    result = ws.run("apply", "--plan", str(saved), "--auto-approve", *apply_flags)
    assert result.code == 1, result.out + result.err
    assert "mass-delete guard" in result.out
    assert len(ws.names()) == 6 + strays


def test_a_saved_plan_is_held_to_max_sends(ws: Workspace) -> None:
    _declare(ws, "[{name: Demo, messages: [one, two]}]")
    saved = _saved_plan(ws)
    result = ws.run("apply", "--plan", str(saved), "--auto-approve", "--max-sends", "1")
    assert result.code == 1
    assert "the plan sends 2 prompts, more than --max-sends 1" in result.out
    assert ws.names() == []
    at_limit = ws.run("apply", "--plan", str(saved), "--auto-approve", "--max-sends", "2")
    assert at_limit.code == 0, at_limit.err
    assert ws.names() == ["Demo"]


def test_a_mass_delete_reviewed_and_applied_with_the_flag_goes_through(ws: Workspace) -> None:
    _seed_prune(ws, keep=6, strays=4)
    saved = ws.path / "plan.json"
    assert ws.plan("--out", str(saved), "--allow-mass-delete").code == 0
    result = ws.run("apply", "--plan", str(saved), "--auto-approve", "--allow-mass-delete",
                    "--backup-dir", str(ws.path / "backups"))
    assert result.code == 0, result.out + result.err
    assert ws.names() == [f"keep {i}" for i in range(6)]


def test_a_plan_refused_by_a_guard_when_made_stays_refused(ws: Workspace) -> None:
    _seed_prune(ws, keep=6, strays=4)
    saved = ws.path / "plan.json"
    assert ws.plan("--out", str(saved)).code == 1
    result = ws.run("apply", "--plan", str(saved), "--auto-approve", "--allow-mass-delete")
    assert result.code == 1
    assert "mass-delete guard" in result.out
    assert len(ws.names()) == 10


@pytest.mark.parametrize(("strays", "refused"), [(29, False), (30, True)], ids=["29", "30"])
def test_max_delete_fraction_is_exact(ws: Workspace, strays: int, refused: bool) -> None:
    ws.emulator.add_conversations(PROJECT, (f"stray {i}" for i in range(strays)))
    _seed_prune(ws, keep=100 - strays, strays=0, extra="max_delete_fraction: 0.29")
    for path in ("-f", "--plan"):
        if path == "-f":
            result = ws.apply("--dry-run")
        else:
            saved = ws.path / "plan.json"
            ws.plan("--out", str(saved))
            result = ws.run("apply", "--plan", str(saved), "--auto-approve", "--dry-run")
        assert result.code == (1 if refused else 0), (path, result.out + result.err)
        assert ("mass-delete guard" in result.out) is refused


def _rewrite(saved: Path, edit: Callable[[dict[str, Any]], object]) -> None:
    """A deliberate edit of a saved plan: `edit` changes its document, the checksum is
    computed again (an unsigned plan has nothing else to stop it)."""
    document = json.loads(saved.read_text())
    edit(document)
    body = {k: v for k, v in document.items() if k not in ("checksum", "signature")}
    document["checksum"] = "sha256:" + hashlib.sha256(canonical(body)).hexdigest()
    saved.write_text(json.dumps(document))


def _claim(**numbers: object) -> Callable[[dict[str, Any]], object]:
    return lambda document: document["projects"][0].update(numbers)


@pytest.mark.parametrize(
    "edit",
    [_claim(live_in_scope=100, managed_in_scope=100),
     _claim(max_delete_fraction=1.0),
     _claim(live_in_scope=100, managed_in_scope=100, max_delete_fraction=1.0),
     _claim(live_in_scope=9, managed_in_scope=9)],
    ids=["counts", "threshold", "counts-and-threshold", "too-few-to-guard"],
)
def test_an_edited_plan_cannot_talk_the_guard_into_a_mass_delete(
    ws: Workspace, edit: Callable[[dict[str, Any]], object]
) -> None:
    """A plan that deletes 8 of 10, reviewed with --allow-mass-delete, edited to claim numbers
    the guard would let through: `apply --plan` counts live state and keeps the default."""
    _seed_prune(ws, keep=2, strays=8)
    saved = ws.path / "plan.json"
    assert ws.plan("--out", str(saved), "--allow-mass-delete").code == 0
    _rewrite(saved, edit)
    result = ws.run("apply", "--plan", str(saved), "--auto-approve",
                    "--backup-dir", str(ws.path / "backups"))
    assert result.code == 1, result.out + result.err
    assert "mass-delete guard: the plan deletes 8 of the " in result.out
    assert " conversations this repository owns in scope, more than max_delete_fraction 0.3" \
        in result.out
    assert len(ws.names()) == 10
    assert "DELETE" not in ws.emulator.stats()["requests"]
    allowed = ws.run("apply", "--plan", str(saved), "--auto-approve", "--allow-mass-delete",
                     "--backup-dir", str(ws.path / "backups"))
    assert allowed.code == 0, allowed.out + allowed.err
    assert ws.names() == ["keep 0", "keep 1"]


def test_an_edited_plan_cannot_delete_what_it_does_not_manage(ws: Workspace) -> None:
    """A delete of a visitor's conversation (out of scope) added to a saved plan whose own
    deletes are few: refused whole, whatever the flags."""
    _seed_prune(ws, keep=9, strays=1)
    theirs = ws.seed("Visitor's thread", creator="visitor")
    saved = ws.path / "plan.json"
    assert ws.plan("--out", str(saved)).code == 0

    def add_theirs(document: dict[str, Any]) -> None:
        operations = document["projects"][0]["operations"]
        stolen = json.loads(json.dumps(operations[-1]))
        stolen.update(session_id=theirs, name="Visitor's thread",
                      key=f"{PROJECT}/delete/{theirs}")
        stolen["precondition"].update(session_id=theirs, name="Visitor's thread")
        operations.append(stolen)

    _rewrite(saved, add_theirs)
    result = ws.run("apply", "--plan", str(saved), "--auto-approve", "--allow-mass-delete",
                    "--backup-dir", str(ws.path / "backups"))
    assert result.code == 1, result.out + result.err
    assert f"the guard cannot judge this plan: it deletes 1 conversation(s) that are not among " \
           f"the 10 it manages in scope now ({theirs})" in result.out
    assert len(ws.names()) == 11


def test_a_saved_plan_keeps_its_own_threshold_only_when_signed(ws: Workspace) -> None:
    """max_delete_fraction 0.5 in the declared state: a signed plan deleting 4 of 10 applies;
    the same plan unsigned is held to the default 0.3, and says so."""
    _seed_prune(ws, keep=6, strays=4, extra="max_delete_fraction: 0.5")
    saved = ws.path / "plan.json"
    assert ws.plan("--out", str(saved)).code == 0
    unsigned = ws.run("apply", "--plan", str(saved), "--auto-approve",
                      "--backup-dir", str(ws.path / "backups"))
    assert unsigned.code == 1
    assert ("more than max_delete_fraction 0.3 (the default: the saved plan's own 0.5 counts "
            "only in a signed plan) allows (3)") in unsigned.out
    assert len(ws.names()) == 10
    ws.env["RECONCILER_PLAN_KEY"] = PLAN_KEY
    assert ws.plan("--out", str(saved)).code == 0
    signed = ws.run("apply", "--plan", str(saved), "--auto-approve",
                    "--backup-dir", str(ws.path / "backups"))
    assert signed.code == 0, signed.out + signed.err
    assert len(ws.names()) == 6


def test_ignored_conversations_do_not_let_prune_delete_everything_managed(ws: Workspace) -> None:
    ws.emulator.add_conversations(PROJECT, (f"tmp-{i}" for i in range(100)))
    for i in range(10):
        ws.seed(f"managed {i}")
    prune_all(ws, extra='ignore: ["tmp-*"]')
    result = ws.apply()
    assert result.code == 1
    assert "deletes every conversation this repository owns in scope (10 of 10)" in result.out
    assert len(ws.names()) == 110


def _applies(ws: Workspace, saved: Path) -> None:
    result = ws.run("apply", "--plan", str(saved), "--auto-approve")
    assert result.code == 0, result.out + result.err


def test_a_saved_plan_partly_applied_says_to_plan_afresh_to_retry(ws: Workspace) -> None:
    _declare(ws, "[{name: A}, {name: B}]")
    saved = _saved_plan(ws)
    ws.emulator.faults.rules = [FaultRule(method="POST", path="/conversations$", status=400,
                                          times=1)]
    failed = ws.run("apply", "--plan", str(saved), "--auto-approve")
    assert failed.code == 1
    assert "Apply: 1 done, 1 failed, 0 skipped. To retry what failed, run `reconciler apply " \
           "-f` with the plan's desired-state files: the saved plan is stale once part of it " \
           "is applied." in failed.out
    assert "stale" in ws.run("apply", "--plan", str(saved), "--auto-approve").err
    assert ws.apply().code == 0
    assert ws.names() == ["A", "B"]


def test_stale_when_a_rename_target_was_taken(ws: Workspace) -> None:
    ws.seed("Old")
    _declare(ws, "[{name: New, renamed_from: [Old]}]")
    saved = _saved_plan(ws)
    taken = ws.seed("New")
    err = _apply_saved(ws, saved)
    assert f"the new name 'New' has been taken since the plan was made ({taken})" in err
    assert ws.names() == ["New", "Old"]


def test_a_repeated_prompt_is_applied_from_a_saved_plan(ws: Workspace) -> None:
    session = ws.seed("Demo")
    ws.emulator.add_message(PROJECT, session, "hi")
    _declare(ws, "[{name: Demo, messages: [hi, hi]}]")
    saved = _saved_plan(ws)
    _applies(ws, saved)
    assert [m["user_query"] for m in ws.emulator.messages(PROJECT, session)] == ["hi", "hi"]
    assert "No changes." in ws.plan().out


def test_a_name_freed_by_a_rename_in_the_same_plan_is_not_taken(ws: Workspace) -> None:
    pinned = ws.seed("FAQ")
    _declare(ws, f"[{{name: FAQ archive, session_id: {pinned}}}, {{name: FAQ}}]")
    saved = _saved_plan(ws)
    _applies(ws, saved)
    assert ws.names() == ["FAQ", "FAQ archive"]


class _Terminal(io.StringIO):
    """A person at a terminal who answers the confirmation prompt after `meanwhile` ran."""

    def __init__(self, meanwhile: Callable[[], object]) -> None:
        super().__init__()
        self.meanwhile = meanwhile

    def isatty(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:
        self.meanwhile()
        return "yes\n"


def test_apply_checks_again_after_a_person_took_time_to_confirm(ws: Workspace) -> None:
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}, conversations: [{{name: New}}]}}]\n")
    result = ws.run("apply", "-f", str(ws.file), stdin=_Terminal(lambda: ws.seed("New")))
    assert result.code == 1
    assert "the plan is stale; nothing was applied" in result.err
    assert "a conversation named 'New' now exists" in result.err
    assert ws.names() == ["New"]


PLAN_KEY = "plan-key-RECOGNISABLE-0123456789"


def _edit_with_a_new_checksum(saved: Path) -> None:
    """What a deliberate edit looks like: change an operation, compute the checksum again."""
    document = json.loads(saved.read_text())
    document["projects"][0]["operations"][0]["name"] = "Injected"
    body = {k: v for k, v in document.items() if k not in ("checksum", "signature")}
    document["checksum"] = "sha256:" + hashlib.sha256(canonical(body)).hexdigest()
    saved.write_text(json.dumps(document))


def test_the_checksum_does_not_stop_a_deliberate_edit_without_a_plan_key(ws: Workspace) -> None:
    """The documented limit of the unkeyed checksum."""
    _declare(ws, "[{name: Planned}]")
    saved = _saved_plan(ws)
    _edit_with_a_new_checksum(saved)
    _applies(ws, saved)
    assert ws.names() == ["Injected"]


def test_a_signed_plan_edited_with_a_new_checksum_is_refused(ws: Workspace) -> None:
    ws.env["RECONCILER_PLAN_KEY"] = PLAN_KEY
    _declare(ws, "[{name: Planned}]")
    saved = _saved_plan(ws)
    assert json.loads(saved.read_text())["signature"].startswith("hmac-sha256:")
    _edit_with_a_new_checksum(saved)
    result = ws.run("apply", "--plan", str(saved), "--auto-approve")
    assert result.code == 1
    assert "the signature does not match the plan key" in result.err
    assert ws.names() == []


def test_a_signed_plan_applies_with_its_key_only(ws: Workspace) -> None:
    key_file = ws.path / "plan.key"
    key_file.write_text(PLAN_KEY + "\n")
    _declare(ws, "[{name: Planned}]")
    unsigned = _saved_plan(ws)
    signed = ws.path / "signed.json"
    made = ws.plan("-vv", "--out", str(signed), "--plan-key-file", str(key_file))
    assert made.code == 0
    runs = [
        ws.run("apply", "--plan", str(unsigned), "--auto-approve",
               "--plan-key-file", str(key_file)),
        ws.run("apply", "--plan", str(signed), "--auto-approve"),
        ws.run("apply", "-vv", "--plan", str(signed), "--auto-approve",
               "--plan-key-file", str(key_file)),
    ]
    assert [r.code for r in runs] == [1, 1, 0]
    assert "is not signed, but a plan key was given" in runs[0].err
    assert "is signed, but no plan key was given" in runs[1].err
    assert ws.names() == ["Planned"]
    written = [signed.read_text(), unsigned.read_text()]
    shown = [text for r in [made, *runs] for text in (r.out, r.err)]
    assert all(PLAN_KEY not in text for text in written + shown)


@pytest.mark.parametrize(
    ("command", "needs"),
    [(("plan",), "it needs --out FILE"), (("apply", "--auto-approve"), "it needs --plan FILE")],
    ids=["plan-without-out", "apply-without-plan"],
)
def test_a_plan_key_file_where_it_has_no_use_is_refused(
    ws: Workspace, command: tuple[str, ...], needs: str
) -> None:
    key_file = ws.path / "plan.key"
    key_file.write_text(PLAN_KEY)
    _declare(ws, "[{name: Planned}]")
    result = ws.run(*command, "-f", str(ws.file), "--plan-key-file", str(key_file))
    assert result.code == 1
    assert needs in result.err
    assert ws.names() == []


def test_a_weak_plan_key_is_refused_before_planning(ws: Workspace) -> None:
    ws.env["RECONCILER_PLAN_KEY"] = "short"
    _declare(ws, "[{name: Planned}]")
    saved = ws.path / "plan.json"
    result = ws.plan("--out", str(saved))
    assert result.code == 1
    assert "$RECONCILER_PLAN_KEY: a plan key must be at least 16 characters" in result.err
    assert "short" not in result.out + result.err
    assert not saved.exists()
    assert result.out == ""


@pytest.mark.parametrize("command", ["apply", "restore", "apply-dry-run"])
def test_a_project_being_changed_by_another_run_is_left_alone(
    ws: Workspace, command: str
) -> None:
    _, backup = _deleted_with_backup(ws, "a")
    _declare(ws, "[{name: Planned}]")
    lock = lock_path(ws.path / ".reconciler" / "locks", ws.emulator.base_url, PROJECT)
    with held_by_another(lock, b'{"pid": 4242, "host": "elsewhere", "command": "apply"}'):
        result = {
            "apply": lambda: ws.apply(),
            "restore": lambda: ws.run("restore", str(backup)),
            "apply-dry-run": lambda: ws.apply("--dry-run"),
        }[command]()
    if command == "apply-dry-run":
        assert result.code == 0, result.err  # a dry run changes nothing: it needs no lock
    else:
        assert result.code == 1
        assert f"project {PROJECT} is being changed by another run (pid 4242 on elsewhere " \
               "running apply; lock file .reconciler/locks/" in result.err
    assert ws.names() == []


@pytest.mark.parametrize("variable", ["RECONCILER_PLAN_KEY", "COPY_OF_IT"])
def test_the_plan_key_never_goes_into_desired_state_or_output(
    ws: Workspace, variable: str
) -> None:
    ws.env.update(RECONCILER_PLAN_KEY=PLAN_KEY, COPY_OF_IT=PLAN_KEY)
    _declare(ws, f'[{{name: "${{{variable}}}"}}]')
    ws.seed(f"live {PLAN_KEY}")  # a name from the API that happens to hold it
    runs = [ws.run("validate", str(ws.file)), ws.plan("-v")]
    assert [r.code for r in runs] == [1, 1]
    assert "holds the API key, which must not be" in runs[0].err
    assert all(PLAN_KEY not in r.out + r.err for r in runs)
    _declare(ws, "[]")
    listed = ws.plan("-v")
    assert listed.code == 0
    assert "live ********" in listed.out and PLAN_KEY not in listed.out


def test_the_library_apply_refuses_what_the_guards_refuse(ws: Workspace) -> None:
    """A program that plans with --allow-mass-delete and applies without it gets nothing done."""
    _seed_prune(ws, keep=6, strays=4)

    async def plan_then_apply() -> None:
        settings = ClientSettings.from_environment(ws.env)
        async with Client(settings) as client:
            desired = load_desired([str(ws.file)], env=ws.env)
            plan = await make_plan(client, desired, limits=GuardLimits(allow_mass_delete=True))
            assert plan.all_errors == () and plan.summary()["delete"] == 4
            with pytest.raises(PlanRefusedError, match="mass-delete guard: the plan deletes 4"):
                await apply_plan(client, plan, options=ApplyOptions(backup_dir=ws.path),
                                 report=ApplyReport(plan_checksum=plan.checksum))

    asyncio.run(plan_then_apply())
    assert len(ws.names()) == 10
