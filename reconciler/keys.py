"""The API key as the environment names it, and when a value is long enough to be masked.

Shared by the loader (which refuses the key in desired state), the settings (which read it)
and the console (which masks it in everything written).
"""

from __future__ import annotations

from typing import Final

API_KEY_VARIABLE: Final = "CUSTOMGPT_API_KEY"
MIN_MASKED_LENGTH: Final = 8  # shorter values are no real keys: masking them would garble output
