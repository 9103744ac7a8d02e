"""The README's examples work as written: its Python example runs against the emulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from reconciler.emulator import Emulator
from tests import ROOT
from tests.conftest import TEST_API_KEY


def python_examples() -> list[str]:
    """The README's ```python blocks."""
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)


def test_the_client_example_runs_against_the_emulator(emulator: Emulator) -> None:
    (example,) = [code for code in python_examples() if "Client(settings)" in code]
    emulator.ensure_project(4242)
    emulator.add_conversation(4242, "Welcome")
    env = {**os.environ, "CUSTOMGPT_API_KEY": TEST_API_KEY,
           "CUSTOMGPT_BASE_URL": emulator.base_url}
    run = subprocess.run([sys.executable, "-c", example], env=env, capture_output=True,
                         text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "Welcome" in run.stdout
    assert "requests=" in run.stdout
    (created,) = [c for c in emulator.conversations(4242) if c["name"] == "Onboarding FAQ"]
    assert [m["user_query"] for m in emulator.messages(4242, created["session_id"])] == [
        "What is the refund policy?"]
