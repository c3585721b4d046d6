"""Benchmarks and ablations. `python -m bench` is the speed benchmark (benchmark.py); its pieces:
the workload, the two paths compared (paths.py), timing, the training and evaluation stages
(training.py, eval_stages.py) and the report. `python -m bench.ablation` and `python -m bench.scst`
are the demo ablations."""
