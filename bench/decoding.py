"""Stages beam_val / beam_test: beam-search captions of a split, this code against the plain
beam search (bench/baseline.py), with the captions compared."""
from __future__ import annotations

import copy
import statistics

import torch

from bench.baseline import plain_decode
from bench.paths import in_scope, wants_baseline
from bench.timing import interleaved_runs
from loader.batches import video_batches
from models.decode_graphs import capture_failure
from models.decoding import decode

# full: min_len = max_len, every hypothesis runs all steps (the reference implementation always
# does, and it is our worst case); natural: the evaluation settings, the model's own stopping.
DECODE_MODES = ("full", "natural")


@torch.no_grad()
def caption_split(decoder, model, videos, vocab, eval_config, batch_size: int) -> list:
    """evaluation.caption_videos with the decoder as a parameter: [(caption, log_prob, length)]."""
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
    """stage: beam_val or beam_test (which baselines --quick leaves out); mode: one of DECODE_MODES."""
    eval_config = copy.deepcopy(config.eval)
    if mode == "full":
        eval_config.min_len = eval_config.max_len   # <eos> only at the end: all steps run
    fns = {"fast": in_scope(args, clock.device, decode), "plain": plain_decode}
    if not wants_baseline(args, stage):
        fns.pop("plain")
    warm = videos.subset(range(min(len(videos), 8)))
    short = copy.deepcopy(eval_config)
    short.max_len = short.min_len = min(eval_config.max_len, 3)
    for fn in fns.values():
        for _ in range(args.warmup):
            caption_split(fn, model, warm, vocab, short, args.eval_batch_size)
    result = {"mode": mode, "videos": len(videos), "beam_size": eval_config.beam_size,
              "min_len": eval_config.min_len, "max_len": eval_config.max_len, "paths": {}}
    if eval_config.cuda_graphs:
        # the first pass captures a graph per batch shape (as a run's first validation does):
        # timed on its own; the timed runs below replay
        result["capture_seconds"] = clock(caption_split, fns["fast"], model, videos, vocab,
                                          eval_config, args.eval_batch_size)[0]
        result["capture_failure"] = capture_failure(model)
    runs = interleaved_runs(fns, lambda fn: clock(caption_split, fn, model, videos, vocab, eval_config,
                                                  args.eval_batch_size), args)
    for name, timings in runs.items():
        seconds = statistics.median(t[0] for t in timings)
        captions = timings[0][2]
        result["paths"][name] = {
            "seconds": seconds, "all_seconds": [t[0] for t in timings],
            "peak_gib": max(filter(None, [t[1] for t in timings]), default=None),
            "videos_per_second": len(videos) / seconds,
            "mean_length": statistics.mean(c[2] for c in captions),
            "max_length": max(c[2] for c in captions)}
        result.setdefault("captions", {})[name] = captions
    if "plain" in runs:
        fast, plain = result["captions"]["fast"], result["captions"]["plain"]
        result["same_captions"] = sum(a[0] == b[0] for a, b in zip(fast, plain))
        result["max_log_prob_difference"] = max(abs(a[1] - b[1]) for a, b in zip(fast, plain))
    return result
