"""Benchmark runner for qcdash: page latency, query counts, HTTP load and import throughput.

Run `python -m benchmarks.run --help` from the project folder.
"""
