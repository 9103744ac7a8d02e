"""Tests of `reconciler.desired`."""
