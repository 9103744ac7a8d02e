"""Tests of `reconciler.api`."""
