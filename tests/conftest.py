"""Shared fixtures: a started emulator and the environment that points the CLI at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconciler.emulator import Emulator

TEST_API_KEY = "test-key-0123456789"


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
