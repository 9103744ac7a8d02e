"""`reconciler restore BACKUP`: recreate a deleted conversation from its backup, once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from textwrap import indent

from reconciler.apply.backup import Backup, read_backup
from reconciler.apply.restore import Restored, RestoreResult, restore_conversation
from reconciler.cli.common import EXIT_ERROR, EXIT_OK, writing
from reconciler.cli.connect import Connection, open_client
from reconciler.cli.console import Console
from reconciler.desired.yamlsource import dump_yaml
from reconciler.plan.export import conversation_entry


@dataclass(frozen=True)
class RestoreParams:
    """The backup file to restore from, and whether its prompts are sent again."""

    connection: Connection
    backup_file: str
    resend_prompts: bool
    max_sends: int | None = None


def run(params: RestoreParams, console: Console) -> int:
    """Recreate the conversation (and re-send its prompts when asked); say what was done.
    Exit 1 when another run created the name at the same time (this one withdrew)."""
    backup = read_backup(Path(params.backup_file), resend=params.resend_prompts)
    prompts = list(backup.prompts) if params.resend_prompts else None
    result = asyncio.run(_restore(params, console, backup, prompts))
    if result.state is Restored.RACED:
        console.error(f"error: {_raced(result)}")
        return EXIT_ERROR
    console.result(_restore_summary(result, backup.session_id, resend=prompts is not None))
    if result.prompts_sent:
        console.result(
            f"Sent {result.prompts_sent} prompt(s) in order. Their answers were generated "
            "anew: the API cannot restore the original answers, which remain in the backup."
        )
    if result.session_id != backup.session_id:  # back, as another conversation
        console.result(_entry_to_declare(result, prompts or ()))
    if prompts is None and backup.prompts:
        console.info(f"{len(backup.prompts)} message(s) were not re-sent "
                     "(--resend-prompts re-sends the prompts; answers are regenerated).")
    return EXIT_OK


def _entry_to_declare(result: RestoreResult, prompts: Sequence[str]) -> str:
    """The entry to add back to the project's `conversations:` (as export writes it, with the
    prompts that were sent again), and why: it was deleted because it was not declared."""
    entry = indent(dump_yaml([conversation_entry(result.name, prompts)]), "  ")
    return (f"Declare it again: add this entry to project {result.project_id}'s "
            f"conversations in the desired-state files; without it, the next plan deletes it "
            f"again.\n{entry}")


def _raced(result: RestoreResult) -> str:
    own = (f"deleted the conversation it had just made (session {result.own}, empty)"
           if result.own_deleted else
           f"kept the conversation it had made (session {result.own}), which has messages "
           "already: keep one of the two")
    return (f"another run created {result.name!r} in project {result.project_id} at the same "
            f"time (session {result.session_id}; a restore of this backup elsewhere, most "
            f"likely): this restore {own} and sent nothing. Run restore again when the other "
            "run has ended: it says whether the conversation is back, or finishes it.")


def _restore_summary(result: RestoreResult, original: str, *, resend: bool) -> str:
    where = f"{result.name!r} in project {result.project_id}"
    if result.state is Restored.CREATED:
        return f"Restored {where} as session {result.session_id}."
    if result.state is Restored.RESUMED:
        return (f"Resumed the restore of {where} (session {result.session_id}), which held "
                "the first prompts of the backup.")
    if result.session_id == original:
        return f"Nothing to restore: {where} (session {original}) still exists."
    held = " with the backup's prompts" if resend else ""
    return f"Already restored: {where} is session {result.session_id}{held}; nothing was done."


async def _restore(
    params: RestoreParams, console: Console, backup: Backup, prompts: list[str] | None
) -> RestoreResult:
    project_id = backup.project_id
    async with open_client(params.connection, console, project_ids=[project_id]) as client:
        with writing(params.connection, client, [project_id], command="restore"):
            return await restore_conversation(client, project_id, backup.session_id,
                                              backup.name, prompts, max_sends=params.max_sends)
