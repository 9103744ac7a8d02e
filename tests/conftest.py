"""Shared fixtures: a started emulator and the environment that points the CLI at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.emulator import Emulator
from tests.workspace import OTHER, PROJECT, Workspace

TEST_API_KEY = "test-key-0123456789"
DEMO_PROJECT = 1001
SUPPORT_PROJECT = 4242


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A started in-memory emulator: admin on, no faults, api_key "test-key-0123456789"."""
    with Emulator(api_key=TEST_API_KEY, enable_admin=True) as emu:
        emu.start()
        yield emu


@pytest.fixture
def api_env(emulator: Emulator) -> dict[str, str]:
    """CUSTOMGPT_API_KEY and CUSTOMGPT_BASE_URL for the `emulator` fixture, for CLI tests."""
    return {"CUSTOMGPT_API_KEY": emulator.api_key, "CUSTOMGPT_BASE_URL": emulator.base_url}


@pytest.fixture
def http(emulator: Emulator) -> Iterator[httpx.Client]:
    """A plain httpx client for the `emulator` fixture, with project 1001 ("demo-bot")."""
    emulator.ensure_project(DEMO_PROJECT, "demo-bot")
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    with httpx.Client(base_url=emulator.base_url, headers=headers, timeout=10) as http:
        yield http


@pytest.fixture
def paged() -> Iterator[Emulator]:
    """An emulator with 3 conversations per page (many pages from few conversations) and
    project 4242 ("support-bot"), for the client's tests."""
    with Emulator(api_key=TEST_API_KEY, enable_admin=True, page_size=3) as emulator:
        emulator.start()
        emulator.ensure_project(SUPPORT_PROJECT, "support-bot")
        yield emulator


@pytest.fixture
def ws(tmp_path: Path, emulator: Emulator, api_env: dict[str, str]) -> Workspace:
    """A workspace on the `emulator` fixture, with projects 1001 ("demo") and 1002 ("other")."""
    emulator.ensure_project(PROJECT, "demo")
    emulator.ensure_project(OTHER, "other")
    return Workspace(tmp_path, dict(api_env), emulator)
