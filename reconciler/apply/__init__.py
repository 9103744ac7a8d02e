"""Applying a plan: the only writer of live state, with its backups, locks and reports."""
