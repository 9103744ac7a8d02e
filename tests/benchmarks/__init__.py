"""Performance benchmarks for the README's performance targets (not part of the unit suite).

Run them with `.venv/bin/python -m tests.benchmarks` (add `--quick` for a smoke run); see
`tests/benchmarks/__main__.py`.
"""
