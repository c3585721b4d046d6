"""The benchmark's stages on two paths with the same initial weights: this code ("fast") and the plain path
("plain": the model's plain step, no length bucketing, no CUDA graphs or TF32, unfused Adam, bench/plain_decode.py's
beam search; never under bf16 autocast). Scoring reuses one scorer against a new one per evaluation."""
from __future__ import annotations

import copy
import statistics
from dataclasses import replace

import torch

from bench.plain_decode import plain_beam_search
from bench.timing import interleaved_runs, log, summary, turn_order
from bench.workload import subset_data
from config import Config
from distributed import NullWriter
from evaluation.coco import CaptionScorer, MetricError
from loader.batches import caption_batch_order, video_batches
from models.decode_graphs import capture_failure
from models.sa_lstm import build_model
from models.searches import decode
from train import make_optimizer, train_epoch, validation_loss
from training.steps import training_steps
from utils import autocast_bf16

DECODE_MODES = ("full", "natural")   # full: every hypothesis runs all steps; natural: the model's own stopping


def plain_config(config) -> Config:
    plain = Config.from_dict(config.to_dict())
    plain.loader.bucket_by_length = plain.train.cuda_graphs = plain.train.tf32 = False
    return plain


def plain_validation_loss(model, data, config) -> float:
    model.fast_teacher_forcing = False
    try:
        return validation_loss(model, data, plain_config(config))
    finally:
        model.fast_teacher_forcing = True


def in_scope(args, device, fn):
    return autocast_bf16(device.type, True)(fn) if args.autocast == "bf16" else fn


def build_paths(config, data, device, with_baseline: bool, fused_cell: bool = True):
    """(model, {"fast"/"plain": (model, optimizer, config)}); the plain model is a copy, which draws no
    random numbers, so the fast path's dropout is the same with or without the baseline."""
    model = build_model(config, len(data.vocab), data.feature_size, fused_cell).to(device)
    paths = {"fast": (model, make_optimizer(model, config.train), config)}
    if with_baseline:
        plain_model, t = copy.deepcopy(model), config.train
        plain_model.fast_teacher_forcing = False
        paths["plain"] = (plain_model, torch.optim.Adam(plain_model.parameters(), lr=t.lr, weight_decay=t.weight_decay,
                                                        amsgrad=t.optimizer == "amsgrad"), plain_config(config))
    return model, paths


def pick_batches(data, config, count: int, seed: int) -> tuple:
    """(the epoch's batch order, count full batches to time: evenly spaced by length when bucketed)."""
    order = caption_batch_order(data.train_targets, config.loader.batch_size,
                                torch.Generator().manual_seed(seed * 1000 + 1), config.loader.bucket_by_length)
    full = [rows for rows in order if len(rows) == config.loader.batch_size]
    count = min(count, len(full))
    if not config.loader.bucket_by_length:
        return order, full[:count]
    lengths = data.train_targets.lengths.cpu()
    full.sort(key=lambda rows: int(lengths[rows].max()))
    return order, [full[min(len(full) - 1, int((i + 0.5) * len(full) / count))] for i in range(count)]


def stage_train(paths, data, clock, args) -> dict:
    """The whole epoch, or --train_batches batches extrapolated; a CUDA graphs' capture epoch on its own."""
    plans = {name: pick_batches(data, p[2], args.train_batches or 10 ** 9, args.seed) for name, p in paths.items()}
    whole = args.train_batches is None or args.train_batches >= len(plans["fast"][0])
    step, lengths = dict.fromkeys(paths, 0), data.train_targets.lengths.cpu()
    padded = lambda batches: sum(len(rows) * int(lengths[rows].max()) for rows in batches) / sum(map(len, batches))
    graphs = paths["fast"][2].train.cuda_graphs
    if graphs:              # the graphs open their own autocast: capture must not keep autocast's cache
        paths["fast"][2].train.autocast_bf16 = args.autocast == "bf16"
    steps = {name: training_steps(model, optimizer, data, config) for name, (model, optimizer, config) in paths.items()}

    def one(name, rows):
        model, optimizer, config = paths[name]
        subset = data if rows is None else subset_data(data, "train_targets", rows)
        run = in_scope(args, clock.device, train_epoch) if name == "fast" and not graphs else train_epoch
        seconds, peak, (loss, step[name]) = clock(run, model, optimizer, subset, config,
                                                  1, NullWriter(), step[name], steps=steps[name])
        return seconds, peak, loss

    for name, (order, picked) in plans.items():
        for _ in range(args.warmup):
            one(name, picked[len(picked) // 2])
    result, timings = {"paths": {}}, {name: [] for name in paths}
    if whole and graphs:
        log("train: first epoch on the fast path, capturing its CUDA graphs")
        result.update(capture_epoch_seconds=one("fast", None)[0], captured_shapes=len(steps["fast"].replays),
                      capture_failure=steps["fast"].failure)
    count = 1 if whole else len(plans["fast"][1])
    log(f"train: timing {'all' if whole else count} of the epoch's {len(plans['fast'][0])} batches on each path")
    for i in range(count):
        for name in turn_order(paths, i):
            timings[name].append(one(name, None if whole else plans[name][1][i]))
        log(f"train: batch {i + 1}/{count}: " + ", ".join(f"{n} {t[-1][0]:.2f} s" for n, t in timings.items()))
    for name, (order, picked) in plans.items():
        (seconds, peaks, losses), batches = zip(*timings[name]), order if whole else picked
        epoch_seconds = sum(seconds) / len(batches) * len(order)
        result["paths"][name] = dict(  # batch_losses: a diverging path shows there, not in the times
            batch_seconds=list(seconds), batch_losses=list(losses), peak_gib=max(filter(None, peaks), default=None),
            measured_seconds=sum(seconds), per_batch_seconds=sum(seconds) / len(batches), epoch_seconds=epoch_seconds,
            captions_per_second=len(data.train_targets) / epoch_seconds, extrapolated=not whole,
            timed_batches=len(batches), epoch_batches=len(order), timed_padded_length=padded(batches),
            epoch_padded_length=padded(order))
    return result


def warmed_paths(fns: dict, args, stage: str, warm) -> dict:
    """fns warmed args.warmup times; --quick leaves out the slowest baselines."""
    if args.no_baseline or (args.quick and stage in ("val_loss", "beam_test")):
        fns.pop("plain")
    for fn in fns.values():
        for _ in range(args.warmup):
            warm(fn)
    return fns


def stage_val_loss(model, data, config, clock, args) -> dict:
    warm = subset_data(data, "val_targets", torch.arange(min(len(data.val_targets), config.loader.eval_batch_size)))
    fns = {"fast": in_scope(args, clock.device, lambda d: validation_loss(model, d, config)),
           "plain": lambda d: plain_validation_loss(model, d, config)}
    runs = interleaved_runs(warmed_paths(fns, args, "val_loss", lambda fn: fn(warm)), lambda fn: clock(fn, data), args)
    return {"paths": {name: dict(summary(t, captions=len(data.val_targets)), loss=t[0][2]) for name, t in runs.items()}}


@torch.no_grad()
def caption_split(decoder, model, videos, vocab, eval_config, batch_size: int) -> list:
    """[(caption, log_prob, length)] of the split, decoded by decoder."""
    model.eval()
    out = []
    for rows, features, mask in video_batches(videos, batch_size):
        result = decoder(model, features, mask, eval_config)
        tokens, lengths, log_probs = result.tokens.cpu(), result.lengths.cpu(), result.log_probs.cpu()
        result.attention.cpu()
        out += [(vocab.decode(tokens[j]), float(log_probs[j]), int(lengths[j])) for j in range(len(rows))]
    return out


def stage_decode(model, videos, vocab, config, clock, args, stage: str, mode: str) -> dict:
    eval_config = replace(config.eval, min_len=config.eval.max_len if mode == "full" else config.eval.min_len)
    short = replace(eval_config, max_len=min(eval_config.max_len, 3), min_len=min(eval_config.max_len, 3))
    warm = videos.subset(range(min(len(videos), 8)))
    plain = lambda m, f, mask, e: plain_beam_search(m, f, mask, e.beam_size, e.max_len, e.min_len, e.length_penalty)
    fns = warmed_paths({"fast": in_scope(args, clock.device, decode), "plain": plain}, args, stage,
                       lambda fn: caption_split(fn, model, warm, vocab, short, args.eval_batch_size))
    timed = lambda fn: clock(caption_split, fn, model, videos, vocab, eval_config, args.eval_batch_size)
    result = {"mode": mode, "videos": len(videos), "beam_size": eval_config.beam_size,
              "min_len": eval_config.min_len, "max_len": eval_config.max_len, "paths": {}, "captions": {}}
    if eval_config.cuda_graphs:                     # the first pass captures the graphs: timed on its own
        result.update(capture_seconds=timed(fns["fast"])[0], capture_failure=capture_failure(model))
    for name, timings in interleaved_runs(fns, timed, args).items():
        captions = result["captions"][name] = timings[0][2]
        result["paths"][name] = dict(summary(timings, videos=len(videos)), max_length=max(c[2] for c in captions),
                                     mean_length=statistics.mean(c[2] for c in captions))
    if "plain" in fns:
        fast, plain = result["captions"]["fast"], result["captions"]["plain"]
        result["same_captions"] = sum(a[0] == b[0] for a, b in zip(fast, plain))
        result["max_log_prob_difference"] = max(abs(a[1] - b[1]) for a, b in zip(fast, plain))
    return result


def stage_scoring(videos, captions: list, config, clock, args) -> dict:
    references = dict(zip(videos.video_ids, videos.references))
    hypotheses = {vid: c[0] for vid, c in zip(videos.video_ids, captions)}
    try:
        start_seconds, _, scorer = clock(CaptionScorer, config.eval.metrics)
    except MetricError as error:
        return {"skipped": f"no COCO scoring: {error}"}
    with scorer:
        scorer.score(references, hypotheses)                        # warm-up
        reused = [clock(scorer.score, references, hypotheses) for _ in range(args.repeats)]

    def fresh():
        with CaptionScorer(config.eval.metrics) as new:
            return new.score(references, hypotheses)

    paths = {"fast": dict(summary(reused), scorer_start_seconds=start_seconds, CIDEr=reused[0][2]["CIDEr"])}
    if not args.no_baseline:
        paths["plain"] = summary([clock(fresh) for _ in range(args.baseline_repeats)])
    return {"videos": len(videos), "paths": paths}
