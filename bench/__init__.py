"""The speed benchmark (`python -m bench`) and the demo ablations (bench.ablation, bench.scst)."""
