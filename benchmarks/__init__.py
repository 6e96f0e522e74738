"""Benchmarks of SPEC §8, run by ``make bench`` (``python -m benchmarks.run``).

Performance lives here only: the test suite has no timed assertions.
"""
