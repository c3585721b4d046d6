"""Helpers of benchmark.py: the in-memory MSVD-shaped workload and the baselines it compares to."""
