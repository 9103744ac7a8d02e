"""The byte-identical proof of a restructuring, on demand: `python -m tests.equivalence [REV]`.

It runs the command line of git revision REV (default: where the branch left `main`) and of the
working tree through the same scenario against the emulator, under several variants of the
real service, and diffs what a user sees: every command's exit code, stdout and stderr, and the
files it writes (saved plans, reports, exports, backups, answer checks). Both sides start from
one seeded database, copied, so that the same live state has the same session ids; what is
new on each side (session ids of conversations created in the run, times, the emulator's port,
the plan's signature, which covers its time) is replaced by placeholders in order of first
appearance before the diff. Exit 0 when both sides agree, 1 with the diff when not.

Slow (a minute or two: some eighty command runs a side), so not in the unit suite.
"""
