"""Stage val_loss: train.validation_loss against the same on the plain path (bench/baseline.py: the plain loop
over the model's step, no length bucketing)."""
from __future__ import annotations

import statistics

import torch

from bench.baseline import plain_validation_loss
from bench.paths import in_scope, wants_baseline
from bench.timing import interleaved_runs
from bench.workload import subset_data
from train import validation_loss


def stage_val_loss(model, data, config, clock, args) -> dict:
    fns = {"fast": in_scope(args, clock.device, lambda d: validation_loss(model, d, config)),
           "plain": lambda d: plain_validation_loss(model, d, config)}
    if not wants_baseline(args, "val_loss"):
        fns.pop("plain")
    warm_rows = torch.arange(min(len(data.val_targets), config.loader.eval_batch_size))
    warm = subset_data(data, "val_targets", warm_rows)
    for fn in fns.values():
        for _ in range(args.warmup):
            fn(warm)
    runs = interleaved_runs(fns, lambda fn: clock(fn, data), args)
    result = {"paths": {}}
    for name, timings in runs.items():
        seconds = statistics.median(t[0] for t in timings)
        result["paths"][name] = {"seconds": seconds, "all_seconds": [t[0] for t in timings],
                                 "peak_gib": max(filter(None, [t[1] for t in timings]), default=None),
                                 "loss": timings[0][2],
                                 "captions_per_second": len(data.val_targets) / seconds}
    return result
