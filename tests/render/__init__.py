"""Tests of `reconciler.render`."""
