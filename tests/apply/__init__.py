"""Tests of `reconciler.apply`."""
