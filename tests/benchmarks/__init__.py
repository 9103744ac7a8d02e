"""Performance benchmarks for the targets of DESIGN §9 (not part of the unit suite).

Run them with `.venv/bin/python -m tests.benchmarks` (add `--quick` for a smoke run); see
`tests/benchmarks/__main__.py`.
"""
