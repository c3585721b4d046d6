"""python -m bench: the speed benchmark (bench/benchmark.py; --help lists its options)."""
import sys

from bench.benchmark import main

sys.exit(main())
