"""Operators dispatched per decoder step, counted on the CPU: what a launch-bound GPU step costs.

    python -m bench.op_count              # beam search (this code and bench/baseline.py), training
    python -m bench.op_count --ops        # and each path's operators by name, per step

It also counts what a decode as a CUDA graph (eval.cuda_graphs) leaves to eager operators.

On a GPU a step of the MSVD model is short enough that launches, not arithmetic, bound it: every
aten operator that reaches a device kernel is a launch plus the dispatcher's and Python's work
around it (~10-25 us). OperatorCount, a TorchDispatchMode, sees each aten operator once as it
reaches the backend, below autograd, and sorts it:
- views (view, expand, select, t, split, _unsafe_view, ...): no kernel, only a new tensor header;
- allocations (empty, empty_strided): no kernel;
- host reads (_local_scalar_dense: bool(x), int(x)): on a GPU a copy to the host that waits for
  every kernel queued before it;
- kernels: every other operator, one launch or more. One operator may launch several kernels on
  CUDA (logsumexp: max, subtract, exp, sum, log, add; topk and sort: one to three), so this count
  is a floor of the launches, and the same on every device.

The model is the MSVD preset's (hidden 512, embedding 468, attention 256, 2048-d features, K = 28)
with the vocabulary of MSVD's shipped training captions (9,466 words), on random features shaped
as bench/workload.py draws them. A step's count is the difference of two runs that differ only in
their number of steps, divided by that number: the fixed cost (encoding, the final rebuild of the
captions) cancels, and whatever the decode does per step (the rebuild's share included) stays.
Beam search runs every step, so that the count does not depend on the random model's captions:
full length (min_len = max_len, the benchmark's "full" mode), and with <eos> allowed from the
first word (min_len = 1, the evaluation setting) but made so unlikely that no hypothesis ends.
"""
from __future__ import annotations

import argparse
import copy
import sys
from collections import Counter

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import config as config_module
from bench.baseline import committed, committed_beam_search
from bench.workload import random_split, read_captions
from loader.captions import build_vocabulary
from loader.vocabulary import EOS_ID
from models.decode_graphs import all_steps, finished
from models.decoding import beam_search
from models.loss import training_loss
from models.sa_lstm import build_model

aten = torch.ops.aten
_ALLOCATIONS = {aten.empty.memory_format, aten.empty_strided.default, aten.empty_like.default}
_HOST_READS = {aten._local_scalar_dense.default}
_VIEWS_NOT_SO_MARKED = {aten._unsafe_view.default}   # a view whose result may be written to
KINDS = ("kernels", "views", "allocations", "host_reads")


def kind_of(func) -> str:
    if func in _HOST_READS:
        return "host_reads"
    if func in _ALLOCATIONS:
        return "allocations"
    return "views" if func.is_view or func in _VIEWS_NOT_SO_MARKED else "kernels"


class OperatorCount(TorchDispatchMode):
    """Counts every aten operator dispatched inside it, by operator (see kind_of for the kinds)."""

    def __init__(self):
        super().__init__()
        self.ops = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func] += 1
        return func(*args, **(kwargs or {}))

    def by_kind(self) -> dict:
        kinds = dict.fromkeys(KINDS, 0)
        for func, n in self.ops.items():
            kinds[kind_of(func)] += n
        return kinds


def count(fn, *args, **kwargs) -> OperatorCount:
    with OperatorCount() as counter:
        fn(*args, **kwargs)
    return counter


def per_step(short: OperatorCount, long: OperatorCount, extra_steps: int) -> tuple:
    """(counts by kind, counts by operator name) of one step: (long - short) / extra_steps."""
    kinds = {k: (long.by_kind()[k] - short.by_kind()[k]) / extra_steps for k in KINDS}
    names = Counter()
    for func in set(long.ops) | set(short.ops):
        difference = long.ops[func] - short.ops[func]
        if difference:
            names[f"{func} ({kind_of(func)})"] = difference / extra_steps
    return kinds, names


def msvd_model(videos: int, seed: int = 1234):
    """The MSVD preset's model, the real vocabulary's size, and a batch of random clips."""
    config = config_module.build("MSVD")
    vocab = build_vocabulary(list(read_captions("train").values()), config.loader)
    torch.manual_seed(seed)
    model = build_model(config, len(vocab), 2048)
    clips = random_split("test", {}, np.random.default_rng(seed), config.features.n_frames, 2048,
                         40, 120, clips=videos)
    return model, config, clips.features, clips.frame_mask


def beam_counts(model, features, mask, beam_size: int, steps: tuple, baseline: bool,
                min_len=None) -> tuple:
    """min_len None: full length (min_len = max_len); else that min_len (<eos> then made so
    unlikely, on a copy of the model, that no hypothesis ends and every step runs)."""
    if min_len is not None:
        model = copy.deepcopy(model)
        with torch.no_grad():
            model.decoder.readout.bias[EOS_ID] -= 1e4

    def decode(max_len):
        least = max_len if min_len is None else min_len
        if baseline:
            with committed(model):
                return count(committed_beam_search, model, features, mask, beam_size, max_len, least)
        return count(beam_search, model, features, mask, beam_size, max_len, least)
    short, long = (decode(n) for n in steps)
    return (*per_step(short, long, steps[1] - steps[0]), long)


def graphed_beam_counts(model, features, mask, eval_config) -> OperatorCount:
    """What a batch decoded as a CUDA graph (eval.cuda_graphs, models/decode_graphs.py) still
    dispatches eagerly: its copy into the graph's static buffers and the captions rebuilt from
    the graph's outputs. The replay of the whole decode is one launch."""
    outputs = all_steps(model, features, mask, eval_config)
    static_features, static_mask = features.clone(), mask.clone()

    def around_the_replay():
        static_features.copy_(features)
        static_mask.copy_(mask)
        return finished(outputs)
    return count(around_the_replay)


def training_counts(model, config, features, mask, vocab_size: int, steps: tuple) -> dict:
    """Per teacher-forced step, forward (the loss included) and backward."""
    model.train()
    generator = torch.Generator().manual_seed(0)
    found = {}
    for n in steps:
        tokens = torch.randint(3, vocab_size, (features.shape[0], n + 1), generator=generator)
        forward = OperatorCount()
        with forward:
            logits, alphas = model(features, mask, tokens[:, :-1])
            loss = training_loss(logits, alphas, tokens[:, 1:], mask, config.train)[0]
        with OperatorCount() as backward:
            loss.backward()
        model.zero_grad(set_to_none=True)
        found[n] = (forward, backward)
    extra = steps[1] - steps[0]
    return {"forward": per_step(found[steps[0]][0], found[steps[1]][0], extra),
            "backward": per_step(found[steps[0]][1], found[steps[1]][1], extra)}


def line(name: str, kinds: dict) -> str:
    return (f"| {name} | {kinds['kernels']:.1f} | {kinds['views']:.1f} | {kinds['allocations']:.1f} "
            f"| {kinds['host_reads']:.1f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.op_count", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=100, help="videos per decoded batch (100)")
    parser.add_argument("--captions", type=int, default=16,
                        help="captions per training batch (the count does not depend on it)")
    parser.add_argument("--ops", action="store_true", help="list each step's operators by name")
    parser.add_argument("--no_baseline", action="store_true", help="leave out bench/baseline.py")
    parser.add_argument("--no_training", action="store_true", help="leave out the training step")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model, config, features, mask = msvd_model(args.videos)
    beam, max_len = config.eval.beam_size, config.eval.max_len
    steps = (max_len // 2, max_len)
    rows = {}
    model.eval()
    paths = [("models/decoding.py", False)] + ([] if args.no_baseline else [("bench/baseline.py", True)])
    for mode, min_len in (("full length", None), ("<eos> allowed", 1)):
        for path, baseline in paths:
            rows[f"beam search, a step, {mode} ({path})"] = beam_counts(model, features, mask, beam, steps,
                                                                       baseline, min_len)
    if not args.no_training:
        training = training_counts(model, config, features[: args.captions], mask[: args.captions],
                                   model.vocab_size, (4, 12))
        rows["teacher-forced training step, forward + loss"] = (*training["forward"], None)
        rows["teacher-forced training step, backward"] = (*training["backward"], None)
    print(f"MSVD preset, vocabulary {model.vocab_size}, beam {beam}, {args.videos} videos, {max_len} words "
          f"+ <eos>; per step = difference of {steps[1]} and {steps[0]} steps; one thread, "
          f"torch {torch.__version__}")
    print("| per step | kernels | views | allocations | host reads |\n| --- | --- | --- | --- | --- |")
    for name, (kinds, _, whole) in rows.items():
        print(line(name, kinds))
    for name, (_, _, whole) in rows.items():
        if whole is not None:
            print(line(f"{name.replace('a step', f'whole decode of {max_len + 1} steps')}", whole.by_kind()))
    full_length = copy.deepcopy(config.eval)
    full_length.min_len = max_len
    graphed = graphed_beam_counts(model, features, mask, full_length)
    print(line(f"beam search as a CUDA graph, whole decode of {max_len + 1} steps: eager operators "
               "around its one replay (models/decode_graphs.py)", graphed.by_kind()))
    if args.ops:
        for name, (_, names, _) in rows.items():
            print(f"\n{name}:")
            for op, n in sorted(names.items(), key=lambda item: (-item[1], item[0])):
                print(f"  {n:6.2f}  {op}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
