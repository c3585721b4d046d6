"""Benchmarks and ablations. `python -m bench` is the speed benchmark (benchmark.py) and
`python -m bench.ablation` the demo ablations (ablation.py). The benchmark's pieces: workload,
the two paths compared, timing, one module per stage, the report, and the frozen baseline code
(baseline.py)."""
