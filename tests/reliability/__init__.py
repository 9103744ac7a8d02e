"""Reliability harness: seeded scenarios, the invariants every apply must keep, and runners.

The CI tests (`tests/apply/test_chaos.py`, `tests/apply/test_crash.py`,
`tests/apply/test_concurrent_writers.py`) use it with small configurations;
`python -m tests.reliability --long` runs the long configuration (500 operations under chaos,
many SIGKILL trials) on demand. pytest does not collect this package (no `test_*.py` files
here).
"""
