"""Benchmarks: each reports a ratio against a baseline measured in the same run.

Run them all with `make bench` (`python -m bench`), or one with `python -m bench.bench_commands`.
"""
