"""Tests of the emulator (`reconciler.emulator`), as a client sees it."""
