"""reconciler: conversations as code for CustomGPT.ai."""

from __future__ import annotations

# The one place the version is written: packaging reads it from here (pyproject.toml).
__version__ = "0.1.0"

__all__ = ["__version__"]
