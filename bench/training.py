"""Stage train: train.train_epoch on both paths, the whole epoch or --train_batches batches
extrapolated; with --cuda_graphs a first epoch, which captures the graphs, is timed on its own."""
from __future__ import annotations

import statistics

import torch

from bench.paths import in_scope
from bench.timing import log, turn_order
from bench.workload import subset_data
from distributed import NullWriter
from loader.batches import caption_batch_order
from train import train_epoch
from training.steps import training_steps


def pick_batches(data, config, count: int, seed: int) -> tuple:
    """(the first epoch's batch order, the count full batches to time): bucketed batches, whose cost
    varies with their length, evenly spaced over the length-sorted ones; else the first ones."""
    generator = torch.Generator().manual_seed(seed * 1000 + 1)
    bucket = config.loader.bucket_by_length
    order = caption_batch_order(data.train_targets, config.loader.batch_size, generator, bucket)
    full = [rows for rows in order if len(rows) == config.loader.batch_size]
    count = min(count, len(full))
    if not bucket:
        return order, full[:count]
    lengths = data.train_targets.lengths.cpu()
    full.sort(key=lambda rows: int(lengths[rows].max()))
    return order, [full[min(len(full) - 1, int((i + 0.5) * len(full) / count))] for i in range(count)]


def padded_tokens(data, batches) -> int:
    lengths = data.train_targets.lengths.cpu()
    return sum(len(rows) * int(lengths[rows].max()) for rows in batches)


def stage_train(paths, data, clock, args) -> dict:
    plans = {name: pick_batches(data, config, args.train_batches or 10 ** 9, args.seed)
             for name, (_, _, config) in paths.items()}
    whole_epoch = args.train_batches is None or args.train_batches >= len(plans["fast"][0])
    step = {name: 0 for name in paths}
    graphs = paths["fast"][2].train.cuda_graphs
    if graphs:              # the graphs open their own autocast (bench/paths.in_scope)
        paths["fast"][2].train.autocast_bf16 = args.autocast == "bf16"
    steps = {name: training_steps(model, optimizer, data, config)
             for name, (model, optimizer, config) in paths.items()}

    def one(name, rows_list):
        model, optimizer, config = paths[name]
        subset = data if rows_list is None else subset_data(data, "train_targets", torch.cat(rows_list))
        run = in_scope(args, clock.device, train_epoch) if name == "fast" and not graphs else train_epoch
        seconds, peak, (loss, step[name]) = clock(run, model, optimizer, subset, config,
                                                  1, NullWriter(), step[name], steps=steps[name])
        return seconds, peak, loss

    for name, (order, picked) in plans.items():
        for _ in range(args.warmup):
            one(name, [picked[len(picked) // 2]])
    result = {"paths": {name: {"batch_seconds": [], "batch_losses": [], "peak_gib": None} for name in paths}}
    if whole_epoch:
        if graphs:
            log("train: first epoch on the fast path, capturing its CUDA graphs")
            result["capture_epoch_seconds"] = one("fast", None)[0]
            result["captured_shapes"] = len(steps["fast"].replays)
            result["capture_failure"] = steps["fast"].failure
        for name, (order, _) in plans.items():
            log(f"train: whole epoch on the {name} path ({len(order)} batches)")
            seconds, peak, loss = one(name, None)
            result["paths"][name].update(
                measured_seconds=seconds, epoch_seconds=seconds, extrapolated=False,
                per_batch_seconds=seconds / len(order), peak_gib=peak, loss=loss, timed_batches=len(order),
                epoch_batches=len(order), padded_tokens=padded_tokens(data, order))
    else:
        count = len(plans["fast"][1])
        for i in range(count):
            for name in turn_order(paths, i):
                seconds, peak, loss = one(name, [plans[name][1][i]])
                r = result["paths"][name]
                r["batch_seconds"].append(seconds)
                r["batch_losses"].append(loss)      # a diverging path shows here, not in the times
                r["peak_gib"] = max(filter(None, [r["peak_gib"], peak]), default=None)
            log(f"train: batch {i + 1}/{count}: " + ", ".join(
                f"{n} {result['paths'][n]['batch_seconds'][-1]:.2f} s" for n in paths))
        for name, (order, picked) in plans.items():
            r = result["paths"][name]
            mean = statistics.mean(r["batch_seconds"])
            r.update(measured_seconds=sum(r["batch_seconds"]), per_batch_seconds=mean,
                     epoch_seconds=mean * len(order), extrapolated=True,
                     timed_batches=len(picked), epoch_batches=len(order),
                     timed_padded_length=padded_tokens(data, picked) / sum(len(rows) for rows in picked),
                     epoch_padded_length=padded_tokens(data, order) / len(data.train_targets))
    for name, r in result["paths"].items():
        r["captions_per_second"] = len(data.train_targets) / r["epoch_seconds"]
    return result
