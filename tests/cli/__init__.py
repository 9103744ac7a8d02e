"""Tests of `reconciler.cli`."""
