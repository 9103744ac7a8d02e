"""Tests of `reconciler.plan`."""
