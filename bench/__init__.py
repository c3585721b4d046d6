"""The pieces of benchmark.py: workload, the two paths compared, timing, one module per stage,
the report, and the frozen baseline code (baseline.py)."""
