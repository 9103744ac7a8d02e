"""Opening an API client for a command: the real API, or the embedded sandbox emulator."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext

from reconciler.api.client import Client, ClientSettings, Secret
from reconciler.api.pacer import PaceSettings
from reconciler.apply.outputs import STATE_DIR
from reconciler.cli.console import Console
from reconciler.cli.sandbox import SandboxHandle, start_sandbox


@asynccontextmanager
async def open_client(
    args: argparse.Namespace, console: Console, *, project_ids: Iterable[int]
) -> AsyncIterator[Client]:
    """A client configured from flags and environment; with --sandbox, against a local
    emulator (started here, backed by .reconciler/sandbox.db) that has `project_ids`.

    Raises InputError for a missing key or a refused base URL.
    """
    with _sandbox(args, project_ids) as sandbox:
        if sandbox is not None:
            database = sandbox.db_path
            console.info(f"Sandbox: local emulator at {sandbox.base_url} (state in {database})")
            console.info(f"Sandbox: open {sandbox.base_url}/ to see its projects and "
                         f"conversations while this runs (later: reconciler emulator --db "
                         f"{database})")
            settings = ClientSettings(
                api_key=Secret(sandbox.api_key), base_url=sandbox.base_url,
                timeout=args.timeout, parallelism=args.parallelism, pace=_pace(args),
                send_timeout=args.send_timeout,
            )
        else:
            settings = ClientSettings.from_environment(
                console.env, base_url=args.base_url, api_key_file=args.api_key_file,
                timeout=args.timeout, parallelism=args.parallelism,
                insecure_http=args.insecure_http, pace=_pace(args),
                send_timeout=args.send_timeout,
            )
        async with Client(settings) as client:
            yield client


def _pace(args: argparse.Namespace) -> PaceSettings:
    return PaceSettings(share=args.rate_share, max_rate=args.max_rate)


def api_target(args: argparse.Namespace, client: Client) -> str:
    """Where a command works, as plans record it: "sandbox", or the API's base URL."""
    return "sandbox" if args.sandbox else client.settings.base_url


def _sandbox(
    args: argparse.Namespace, project_ids: Iterable[int]
) -> AbstractContextManager[SandboxHandle | None]:
    if not args.sandbox:
        return nullcontext()
    return start_sandbox(sorted(set(project_ids)), root=STATE_DIR)
