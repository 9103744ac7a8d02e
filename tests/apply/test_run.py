"""The only writer (`reconciler/apply/run.py`), through the library: the kinds run in the
registry's order, what a failure leaves undone is skipped and said, a delete is backed up
before it is made, and a dry run changes nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from reconciler.api.client import Client
from reconciler.api.settings import ClientSettings
from reconciler.apply.run import ApplyOptions, ApplyReport, Outcome, apply_plan
from reconciler.desired.loader import load_desired
from reconciler.emulator import FaultRule
from reconciler.plan.guards import GuardLimits
from reconciler.plan.make import make_plan
from reconciler.plan.operations import KINDS
from tests.workspace import PROJECT, Workspace


def applied(ws: Workspace, *, dry_run: bool = False) -> ApplyReport:
    """Plan the workspace's declared state and apply it through the library."""

    async def main() -> ApplyReport:
        settings = ClientSettings.from_environment(ws.env)
        async with Client(settings) as client:
            desired = load_desired([str(ws.file)], env=ws.env)
            plan = await make_plan(client, desired, limits=GuardLimits())
            report = ApplyReport(plan_checksum=plan.checksum, dry_run=dry_run)
            options = ApplyOptions(backup_dir=ws.path / "backups", dry_run=dry_run)
            await apply_plan(client, plan, options=options, report=report)
            return report

    return asyncio.run(main())


def test_every_kind_runs_in_the_registrys_order(ws: Workspace) -> None:
    old = ws.seed("Old name")
    doomed = ws.seed("Stray")
    ws.emulator.add_message(PROJECT, doomed, "kept in the backup")
    ws.declare_pruned("[{name: New name, renamed_from: [Old name]}, "
                      "{name: Fresh, messages: [{prompt: hello, reaction: liked}]}]")
    report = applied(ws)
    order = [kind.action.value for kind in KINDS]
    actions = [r.operation.action.value for r in report.results]
    assert actions == sorted(actions, key=order.index)
    assert set(actions) == {"rename", "create", "send", "react", "delete"}
    assert {r.outcome for r in report.results} == {Outcome.DONE}
    assert ws.names() == ["Fresh", "New name"]
    assert any(c["session_id"] == old for c in ws.emulator.conversations(PROJECT))
    backup = ws.path / "backups" / str(PROJECT) / f"{doomed}.json"
    assert "kept in the backup" in json.dumps(json.loads(backup.read_text()))


def test_what_a_failed_create_leaves_undone_is_skipped_and_said(ws: Workspace) -> None:
    ws.declare_pruned("[{name: Fresh, messages: [one, two]}, {name: Other}]")
    ws.emulator.faults.rules = [FaultRule(method="POST", path="/conversations$", status=400,
                                          times=1)]
    report = applied(ws)
    outcomes = {(r.operation.name, r.operation.action.value): r.outcome for r in report.results}
    failed = [name for (name, action), o in outcomes.items() if o is Outcome.FAILED]
    assert len(failed) == 1 and outcomes[(failed[0], "create")] is Outcome.FAILED
    skipped = [r for r in report.results if r.outcome is Outcome.SKIPPED]
    assert all(r.operation.name == failed[0] for r in skipped)
    assert len(skipped) == (2 if failed[0] == "Fresh" else 0)
    assert ws.names() == sorted({"Fresh", "Other"} - set(failed))


def test_a_dry_run_says_what_would_be_done_and_changes_nothing(ws: Workspace) -> None:
    ws.seed("Kept")
    ws.seed("Stray")
    ws.declare_pruned("[{name: Kept}, {name: Fresh, messages: [hello]}]")
    report = applied(ws, dry_run=True)
    assert {r.outcome for r in report.results} == {Outcome.PLANNED}
    assert len(report.results) == 3
    assert ws.names() == ["Kept", "Stray"]
    assert not Path(ws.path / "backups").exists()
    assert set(ws.emulator.stats()["requests"]) == {"GET"}
