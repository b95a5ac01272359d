"""Benchmarks: pytest-benchmark suites, the HTTP load harness, profiles (see benchmarks/RESULTS.md)."""
