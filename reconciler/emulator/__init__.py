"""A local emulator of the CustomGPT.ai API (conversations, messages, projects, user).

    from reconciler.emulator import Emulator, Faults

    with Emulator(api_key="test-key", enable_admin=True, faults=Faults(error_rate=0.1),
                  variants=Variants(wire="observed-2023")) as emu:
        base_url = emu.start()            # http://127.0.0.1:<free port>
        emu.ensure_project(1001, "demo-bot")
        emu.add_conversation(1001, "Onboarding FAQ", creator="visitor")
"""

from __future__ import annotations

from reconciler.api.settings import is_loopback
from reconciler.emulator.faults import FaultConfigError, FaultRule, Faults
from reconciler.emulator.service import DEFAULT_API_KEY, Emulator, EmulatorError
from reconciler.emulator.variants import VariantConfigError, Variants

__all__ = [
    "DEFAULT_API_KEY",
    "Emulator",
    "EmulatorError",
    "FaultConfigError",
    "FaultRule",
    "Faults",
    "VariantConfigError",
    "Variants",
    "is_loopback",
]
