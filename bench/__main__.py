"""python -m bench: the speed benchmark (bench/benchmark.py; --help lists its options)."""
from bench.benchmark import main

raise SystemExit(main())
