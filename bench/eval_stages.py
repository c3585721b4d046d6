"""The evaluation stages, this code against the plain path: validation loss, beam-search captions
of a split (compared), and COCO scoring with one reused scorer against a new one per evaluation."""
from __future__ import annotations

import copy
import statistics

import torch

from bench.paths import in_scope, plain_decode, plain_validation_loss, wants_baseline
from bench.timing import interleaved_runs, summary
from bench.workload import subset_data
from evaluation.coco import CaptionScorer, MetricError
from loader.batches import video_batches
from models.decode_graphs import capture_failure
from models.searches import decode
from train import validation_loss

# full: every hypothesis runs all steps, the worst case; natural: the model's own stopping
DECODE_MODES = ("full", "natural")


def warmed_paths(fns: dict, args, stage: str, warm) -> dict:
    """fns without an unwanted plain path, each warmed args.warmup times."""
    if not wants_baseline(args, stage):
        fns.pop("plain")
    for fn in fns.values():
        for _ in range(args.warmup):
            warm(fn)
    return fns


def stage_val_loss(model, data, config, clock, args) -> dict:
    fns = {"fast": in_scope(args, clock.device, lambda d: validation_loss(model, d, config)),
           "plain": lambda d: plain_validation_loss(model, d, config)}
    warm = subset_data(data, "val_targets", torch.arange(min(len(data.val_targets),
                                                             config.loader.eval_batch_size)))
    fns = warmed_paths(fns, args, "val_loss", lambda fn: fn(warm))
    runs = interleaved_runs(fns, lambda fn: clock(fn, data), args)
    paths = {name: summary(timings) for name, timings in runs.items()}
    for name, path in paths.items():
        path.update(loss=runs[name][0][2], captions_per_second=len(data.val_targets) / path["seconds"])
    return {"paths": paths}


@torch.no_grad()
def caption_split(decoder, model, videos, vocab, eval_config, batch_size: int) -> list:
    """[(caption, log_prob, length)] of the split, decoded by decoder."""
    model.eval()
    out = []
    for rows, features, mask in video_batches(videos, batch_size):
        result = decoder(model, features, mask, eval_config)
        tokens, lengths, log_probs = result.tokens.cpu(), result.lengths.cpu(), result.log_probs.cpu()
        result.attention.cpu()
        for j in range(len(rows)):
            out.append((vocab.decode(tokens[j]), float(log_probs[j]), int(lengths[j])))
    return out


def stage_decode(model, videos, vocab, config, clock, args, stage: str, mode: str) -> dict:
    eval_config = copy.deepcopy(config.eval)
    if mode == "full":
        eval_config.min_len = eval_config.max_len   # <eos> only at the end: all steps run
    short = copy.deepcopy(eval_config)
    short.max_len = short.min_len = min(eval_config.max_len, 3)
    warm = videos.subset(range(min(len(videos), 8)))
    fns = warmed_paths({"fast": in_scope(args, clock.device, decode), "plain": plain_decode}, args, stage,
                       lambda fn: caption_split(fn, model, warm, vocab, short, args.eval_batch_size))
    result = {"mode": mode, "videos": len(videos), "beam_size": eval_config.beam_size,
              "min_len": eval_config.min_len, "max_len": eval_config.max_len, "paths": {}, "captions": {}}
    if eval_config.cuda_graphs:
        # the first pass captures the graphs: timed on its own
        result["capture_seconds"] = clock(caption_split, fns["fast"], model, videos, vocab,
                                          eval_config, args.eval_batch_size)[0]
        result["capture_failure"] = capture_failure(model)
    runs = interleaved_runs(fns, lambda fn: clock(caption_split, fn, model, videos, vocab, eval_config,
                                                  args.eval_batch_size), args)
    for name, timings in runs.items():
        captions = result["captions"][name] = timings[0][2]
        result["paths"][name] = summary(timings)
        result["paths"][name].update(videos_per_second=len(videos) / result["paths"][name]["seconds"],
                                     mean_length=statistics.mean(c[2] for c in captions),
                                     max_length=max(c[2] for c in captions))
    if "plain" in runs:
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
    try:
        scorer.score(references, hypotheses)                        # warm-up
        reused = [clock(scorer.score, references, hypotheses) for _ in range(args.repeats)]
    finally:
        scorer.close()

    def fresh():
        with CaptionScorer(config.eval.metrics) as new:
            return new.score(references, hypotheses)

    paths = {"fast": dict(summary(reused), scorer_start_seconds=start_seconds, CIDEr=reused[0][2]["CIDEr"])}
    if not args.no_baseline:
        paths["plain"] = summary([clock(fresh) for _ in range(args.baseline_repeats)])
    return {"videos": len(videos), "paths": paths}
