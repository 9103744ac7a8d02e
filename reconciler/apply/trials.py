"""`reconciler test`'s writes: the throwaway conversations it asks in, made, sent to and
deleted here, and the sweep of those a stopped run left behind (see `reconciler.plan.trials`
for their names and the sweep rule). With `apply/run.py`, the only module that writes through
the client (ARCHITECTURE.md, Invariants: one writer).

Every replay runs within the run's concurrency (`parallelism` replays sending at a time, as
many more made ready, each request paced by the client) and deletes its conversation when it
ends, however it ends: a failure, an interruption (Ctrl-C, SIGTERM) or the run's deadline.
After an interruption, or a create whose answer was lost, the run's own conversations are
looked for by its name and deleted too.
A send whose answer was lost is never sent again blindly (the client watches the transcript
for it first); a prompt that got no answer leaves its checks, and those after it in the
conversation, not judged, and its project in error. A `cites` naming a source by text reads
the sources its answer cites once it is answered (`CitationReader`, one per run).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from reconciler.api.protocol import ConversationApi
from reconciler.api.send_identity import send_external_id
from reconciler.desired.model import ProjectSpec
from reconciler.errors import ApiError, AuthError, NotFoundError
from reconciler.plan.answers import CitationReader, no_answer_message
from reconciler.plan.health import (
    Answer,
    CheckResult,
    MessageCheck,
    ProjectHealth,
    Status,
    evaluate,
    names_sources,
    shown_answer,
)
from reconciler.plan.trials import Replay, RunStamp, combined, expired

log = logging.getLogger("reconciler.test")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """This machine's time, in UTC."""
    return datetime.now(UTC)


@dataclass
class TrialReport:
    """What a run did to live state: throwaway conversations swept (and those a sweep could
    not delete), created, deleted, and those left behind (a delete that failed)."""

    swept: int = 0
    sweep_failures: list[str] = field(default_factory=list)
    created: int = 0
    deleted: int = 0
    left: list[str] = field(default_factory=list)
    sends: int = 0


async def sweep(client: ConversationApi, project_ids: Sequence[int], report: TrialReport, *,
                clock: Clock = utc_now) -> None:
    """Delete the expired throwaway conversations of the key's user in `project_ids`
    (`reconciler.plan.trials.expired`); a project that cannot be listed, or a delete that
    fails, is noted in `report` and stops nothing. Raises AuthError."""
    me = await client.current_user()
    for project_id in project_ids:
        try:
            listed = await client.list_conversations(project_id, user_filter="me",
                                                     throwaways=True)
        except AuthError:
            raise
        except ApiError as error:
            report.sweep_failures.append(f"project {project_id}: {error}")
            continue
        now = clock()
        for conversation in listed:
            if not expired(conversation, now=now, user_id=me.id):
                continue
            try:
                await client.delete_conversation(project_id, conversation.session_id)
            except NotFoundError:
                continue  # another run swept it
            except AuthError:
                raise
            except ApiError as error:
                report.sweep_failures.append(f"project {project_id}, {conversation.session_id}: "
                                             f"{error}")
            else:
                report.swept += 1
                log.info("swept the throwaway conversation %s of an earlier run in project %s",
                         conversation.session_id, project_id)


@dataclass(frozen=True)
class _Asked:
    """One replay's outcome: its expected messages' checks, and what stopped it (None:
    nothing)."""

    replay: Replay
    checks: tuple[MessageCheck, ...]
    error: str | None = None


class TrialRun:
    """One run of the replays of `reconciler test` against `client`."""

    def __init__(self, client: ConversationApi, run: RunStamp, report: TrialReport, *,
                 parallelism: int, clock: Clock = utc_now) -> None:
        self.client = client
        self.run = run
        self.report = report
        self.clock = clock
        self.slots = asyncio.Semaphore(parallelism)  # replays sending
        self.ready = asyncio.Semaphore(2 * parallelism)  # replays made or sending
        self.live: dict[str, int] = {}  # session -> project: created, not deleted yet
        self.lost_create: set[int] = set()  # projects where a create's answer was lost
        self.sources = CitationReader(client)  # for `cites` by name, read once per run

    async def ask(self, projects: Sequence[ProjectSpec], planned: Sequence[Replay], *,
                  repeat: int, min_pass_rate: float | None) -> list[ProjectHealth]:
        """Make every replay of `planned` (at most `parallelism` at a time), judge the answers
        and delete the throwaway conversations; each project's checks, repeated runs combined
        (`reconciler.plan.trials.combined`). Raises AuthError; anything else is the error of
        the project it concerns. Deletes what it made even when cancelled."""
        no_answer: dict[int, str | None] = {}
        failed: dict[int, str] = {}
        for project in projects:
            if any(m.expect is not None and m.expect.no_answer is not None
                   for r in planned if r.project is project for m in r.messages):
                try:
                    no_answer[project.id] = await no_answer_message(self.client, project.id)
                except AuthError:
                    raise
                except ApiError as error:
                    failed[project.id] = str(error)
        runnable = [r for r in planned if r.project.id not in failed]
        interrupted = True
        try:
            # A task group: when one replay raises (a rejected key), the others are cancelled
            # and have deleted their conversations before the clean-up below runs.
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._replay(r, no_answer.get(r.project.id)))
                         for r in runnable]
            asked = [task.result() for task in tasks]
            interrupted = False
        except BaseExceptionGroup as stopped:
            raise stopped.exceptions[0] from None
        finally:
            await self._clean_up(projects, everything=interrupted)
        return [_health(project, asked, failed.get(project.id), repeat=repeat,
                        min_pass_rate=min_pass_rate) for project in projects]

    async def _replay(self, replay: Replay, no_answer: str | None) -> _Asked:
        """Make the replay's conversation, send its prompts, delete it: at most `parallelism`
        replays sending at once, and as many more made ready (so that the next one can send
        as soon as a send ends)."""
        async with self.ready:
            if self.clock() >= self.run.deadline:
                return _not_judged(replay, "the run's deadline passed before it was asked")
            project = replay.project
            name = self.run.name(replay.conversation.name, replay.repetition, replay.repeat)
            try:
                created = await self.client.create_conversation(project.id, name)
            except AuthError:
                raise
            except ApiError as error:
                self.lost_create.add(project.id)
                return _not_judged(replay, f"could not make a throwaway conversation: {error}")
            self.live[created.session_id] = project.id
            self.report.created += 1
            try:
                async with self.slots:
                    asked = await self._send(replay, created.session_id, no_answer)
            except BaseException:  # interrupted too: deleted before the error goes on
                await self._delete(project.id, created.session_id)
                raise
        await self._delete(project.id, created.session_id)  # the next replay need not wait
        return asked

    async def _send(self, replay: Replay, session_id: str, no_answer: str | None) -> _Asked:
        project, declared = replay.project, replay.conversation
        values = declared.send_values()
        checks: list[MessageCheck] = []
        newest = 0
        for position, message in enumerate(replay.messages, start=1):
            if self.clock() >= self.run.deadline:
                return _stopped(replay, checks, position, "the run's deadline passed")
            try:
                sent = await self.client.send_message(
                    project.id, session_id, message.prompt, persona=values.get("persona"),
                    response_source=values.get("response_source"), lang=project.lang,
                    newest_id=newest,
                    external_id=send_external_id(project.id, session_id, position,
                                                 message.prompt),
                    custom_context=values.get("custom_context"),
                    agent_capability=values.get("agent_capability"),
                    chatbot_model=values.get("chatbot_model"))
            except AuthError:
                raise
            except ApiError as error:
                return _stopped(replay, checks, position,
                                f"prompt {position} got no answer: {error}")
            self.report.sends += 1
            newest = sent.id
            if message.expect is not None:
                sources = (await self.sources.sources(project.id, sent.citations)
                           if names_sources(message.expect) else None)
                results = evaluate(message.expect, Answer(
                    sent.openai_response, sent.citations, no_answer, sources))
                checks.append(MessageCheck(declared.name, message.prompt, results,
                                           shown_answer(sent.openai_response)))
        return _Asked(replay, tuple(checks))

    async def _delete(self, project_id: int, session_id: str) -> None:
        try:
            await self.client.delete_conversation(project_id, session_id)
        except NotFoundError:
            pass
        except ApiError as error:
            log.warning("warning: could not delete the throwaway conversation %s in project "
                        "%s (%s): the next run of reconciler test deletes it after its "
                        "deadline", session_id, project_id, error)
            return
        self.live.pop(session_id, None)
        self.report.deleted += 1

    async def _clean_up(self, projects: Sequence[ProjectSpec], *, everything: bool) -> None:
        """Delete what is left of this run: the conversations it made and has not deleted,
        and (after an interruption, or where a create's answer was lost) any conversation
        named as this run's found in a listing."""
        for session_id, project_id in list(self.live.items()):
            await self._delete(project_id, session_id)
        me = await self.client.current_user()
        for project in projects:
            if not (everything or project.id in self.lost_create):
                continue
            try:
                listed = await self.client.list_conversations(project.id, user_filter="me",
                                                              throwaways=True)
            except ApiError as error:
                log.warning("warning: could not look for this run's throwaway conversations "
                            "in project %s (%s)", project.id, error)
                continue
            for conversation in listed:
                if conversation.name.startswith(self.run.tag) and \
                        conversation.created_by == me.id:
                    await self._delete(project.id, conversation.session_id)
        self.report.left = [f"project {p}, {s}" for s, p in self.live.items()]


def _not_judged(replay: Replay, why: str) -> _Asked:
    return _stopped(replay, [], 1, why)


def _stopped(replay: Replay, checks: list[MessageCheck], position: int, why: str) -> _Asked:
    """The replay's checks when it stopped before prompt `position`: those judged, then every
    expected message from `position` on not judged, saying `why`."""
    rest = [MessageCheck(replay.conversation.name, m.prompt, tuple(
        CheckResult(r.key, r.expected, Status.NOT_CHECKED, f"not judged: {why}")
        for r in evaluate(m.expect, Answer(""))), None)
        for m in replay.messages[position - 1:] if m.expect is not None]
    return _Asked(replay, (*checks, *rest), f"{replay.conversation.name!r}: {why}")


def _health(project: ProjectSpec, asked: Sequence[_Asked], error: str | None, *, repeat: int,
            min_pass_rate: float | None) -> ProjectHealth:
    """One project's checks: each expected message's runs combined, in declared order."""
    mine = [a for a in asked if a.replay.project is project]
    if error is not None:
        return ProjectHealth(project.id, project.display_name, error=error)
    messages: list[MessageCheck] = []
    for conversation in project.conversations:
        runs = [a for a in mine if a.replay.conversation is conversation]
        if not runs:
            continue
        width = len(runs[0].checks)
        for index in range(width):
            messages.append(combined([a.checks[index] for a in runs if len(a.checks) > index],
                                     min_pass_rate=min_pass_rate if repeat > 1 else None))
    errors = [a.error for a in mine if a.error]
    summary = None
    if errors:
        summary = f"{len(errors)} of {len(mine)} throwaway conversation(s) not fully judged; " \
                  f"first: {errors[0]}"
    return ProjectHealth(project.id, project.display_name, tuple(messages), error=summary)
