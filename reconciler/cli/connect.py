"""Opening an API client for a command: the real API, or the embedded sandbox emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass

from reconciler.api.client import Client, ClientSettings, Secret
from reconciler.api.pacer import PaceSettings
from reconciler.apply.outputs import STATE_DIR
from reconciler.cli.console import Console
from reconciler.cli.sandbox import SandboxHandle, start_sandbox


@dataclass(frozen=True)
class Connection:
    """How a command reaches the API: the global options every command takes.

    `base_url` and `api_key_file` None: from the environment. `sandbox`: a local emulator
    instead of the API (`base_url`, the key and `insecure_http` are then not used).
    """

    base_url: str | None
    api_key_file: str | None
    timeout: float
    send_timeout: float
    pace: PaceSettings
    parallelism: int
    insecure_http: bool
    sandbox: bool


@asynccontextmanager
async def open_client(
    connection: Connection, console: Console, *, project_ids: Iterable[int]
) -> AsyncIterator[Client]:
    """A client configured from `connection` and the environment; with `sandbox`, against a
    local emulator (started here, backed by .reconciler/sandbox.db) that has `project_ids`.

    Raises InputError for a missing key or a refused base URL.
    """
    with _sandbox(connection, project_ids) as sandbox:
        if sandbox is not None:
            database = sandbox.db_path
            console.info(f"Sandbox: local emulator at {sandbox.base_url} (state in {database})")
            console.info(f"Sandbox: open {sandbox.base_url}/ to see its projects and "
                         f"conversations while this runs (later: reconciler emulator --db "
                         f"{database} --health {sandbox.health_path})")
            settings = ClientSettings(
                api_key=Secret(sandbox.api_key), base_url=sandbox.base_url,
                timeout=connection.timeout, parallelism=connection.parallelism,
                pace=connection.pace, send_timeout=connection.send_timeout,
            )
        else:
            settings = ClientSettings.from_environment(
                console.env, base_url=connection.base_url,
                api_key_file=connection.api_key_file, timeout=connection.timeout,
                parallelism=connection.parallelism, insecure_http=connection.insecure_http,
                pace=connection.pace, send_timeout=connection.send_timeout,
            )
        async with Client(settings) as client:
            yield client


def api_target(connection: Connection, client: Client) -> str:
    """Where a command works, as plans record it: "sandbox", or the API's base URL."""
    return "sandbox" if connection.sandbox else client.settings.base_url


def _sandbox(
    connection: Connection, project_ids: Iterable[int]
) -> AbstractContextManager[SandboxHandle | None]:
    if not connection.sandbox:
        return nullcontext()
    return start_sandbox(sorted(set(project_ids)), root=STATE_DIR)
