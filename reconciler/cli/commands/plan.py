"""`reconciler plan -f …`: show what apply would change; optionally save it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from reconciler.api.settings import Secret
from reconciler.apply.outputs import check_outputs
from reconciler.cli.common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    Declared,
    Format,
    key_files,
    load_declared,
    outputs,
    plan_live_with_answers,
    render,
    show,
    write_json,
)
from reconciler.cli.connect import Connection, open_client
from reconciler.cli.console import Console
from reconciler.desired.model import DesiredState
from reconciler.plan.answers import judge_stored
from reconciler.plan.guards import GuardLimits
from reconciler.plan.model import Plan
from reconciler.plan.signing import read_plan_key, sign
from reconciler.render.health import plan_line


@dataclass(frozen=True)
class SaveTo:
    """Where the plan is saved (--out), and the plan key file that signs it (None: the
    environment's key, or unsigned)."""

    path: str
    key_file: str | None


@dataclass(frozen=True)
class PlanParams:
    """What `plan` reads, where it saves the plan (None: nowhere), how it shows it."""

    connection: Connection
    declared: Declared
    save: SaveTo | None
    format: Format
    detailed_exitcode: bool
    limits: GuardLimits


def run(params: PlanParams, console: Console) -> int:
    """Plan every declared project; exit 2 for changes only under --detailed-exitcode."""
    save = params.save
    out, key_file = (save.path, save.key_file) if save else (None, None)
    key = read_plan_key(console.env, key_file) if save else None
    desired = load_declared(params.declared, console)
    inputs = [*desired.files, *key_files(params.connection, key_file)]
    check_outputs(outputs(out=out), inputs=inputs)
    plan, rate, checks = asyncio.run(_plan(params, console, desired))
    if out:
        _save_plan(Path(out), plan, key)
        console.info(f"Saved the plan to {out} (checksum {plan.checksum}).")
    show(console, render(plan, params.format, console, saved_as=out, rate=rate,
                         checks_line=checks), params.format)
    if plan.all_errors:
        return EXIT_ERROR
    return EXIT_CHANGES if params.detailed_exitcode and plan.has_changes else EXIT_OK


async def _plan(
    params: PlanParams, console: Console, desired: DesiredState
) -> tuple[Plan, float | None, str | None]:
    """The plan, the pace the run ended at (requests per minute; None: unpaced), and the
    answer checks' line (None: no `expect:` declared, or JSON asked for)."""
    connection = params.connection
    async with open_client(connection, console,
                           project_ids=[p.id for p in desired.projects]) as client:
        plan, stored = await plan_live_with_answers(client, console, desired,
                                                    limits=params.limits,
                                                    connection=connection)
        checks = None
        if stored and params.format != "json":  # judged from what planning read
            checks = plan_line(await judge_stored(client, stored))
        return plan, client.pacer.rate, checks


def _save_plan(path: Path, plan: Plan, key: Secret | None) -> None:
    document = plan.to_dict()
    if key is not None:
        document["signature"] = sign(document, key)
    write_json(path, document)
