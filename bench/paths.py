"""The two paths the benchmark compares: this code ("fast") and the baseline ("plain").

The fast path may run under bf16 autocast (--autocast bf16); the baseline never does, so that
its numbers stay those of the plain float32 code.
"""
from __future__ import annotations

import contextlib
import copy

import torch

from bench.baseline import plain_config
from models.sa_lstm import build_model
from train import make_optimizer


def fast_scope(args, device):
    """Where this code runs: plain float32, or under bf16 autocast with --autocast bf16."""
    if args.autocast == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def in_scope(args, device, fn):
    """fn under fast_scope. Training under CUDA graphs opens its own autocast (train.autocast_bf16,
    see stage_train): graph capture must not keep autocast's cache, which an outer one would."""
    def scoped(*a, **k):
        with fast_scope(args, device):
            return fn(*a, **k)
    return scoped


def wants_baseline(args, stage: str) -> bool:
    """--quick leaves out the slowest baselines (validation loss, decoding of the test set)."""
    return not args.no_baseline and not (args.quick and stage in ("val_loss", "beam_test"))


def plain_optimizer(model, train_config):
    """Adam as torch builds it by default (not fused), as the baseline's training used it."""
    t = train_config
    return torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay,
                            amsgrad=t.optimizer == "amsgrad")


def build_paths(config, data, device, with_baseline: bool):
    """(model, {"fast"/"plain": (model, optimizer, config)}) with the same initial weights.

    The plain model is a copy of the fast one (a copy draws no random numbers: the fast path's
    dropout is the same with or without the baseline) that trains with the plain path's config
    (bench/baseline.py: the step-by-step teacher forcing, no length bucketing) and the default
    (unfused) Adam."""
    model = build_model(config, len(data.vocab), data.feature_size).to(device)
    plain = plain_config(config)
    plain_model = copy.deepcopy(model)
    paths = {"fast": (model, make_optimizer(model, config.train), config)}
    if with_baseline:
        paths["plain"] = (plain_model, plain_optimizer(plain_model, plain.train), plain)
    return model, paths
