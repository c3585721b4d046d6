"""The two paths the benchmark compares with the same initial weights: this code ("fast") and the
plain path ("plain": the model's plain step, no length bucketing, no CUDA graphs or TF32, unfused
Adam, and bench/plain_decode.py's beam search). Only the fast path may run under bf16 autocast."""
from __future__ import annotations

import contextlib
import copy

import torch

from config import Config
from bench.plain_decode import plain_beam_search
from models.sa_lstm import build_model
from train import make_optimizer, validation_loss


def plain_config(config) -> Config:
    plain = Config.from_dict(config.to_dict())
    plain.loader.bucket_by_length = False
    plain.train.cuda_graphs = plain.train.tf32 = False   # --cuda_graphs, --tf32: this code only
    return plain


def plain_validation_loss(model, data, config) -> float:
    model.fast_teacher_forcing = False
    try:
        return validation_loss(model, data, plain_config(config))
    finally:
        model.fast_teacher_forcing = True


def plain_decode(model, features, mask, eval_config):
    """The reference beam search: what decoding speed-ups are ratios against."""
    e = eval_config
    return plain_beam_search(model, features, mask, e.beam_size, e.max_len, e.min_len, e.length_penalty)


def in_scope(args, device, fn):
    """fn under bf16 autocast with --autocast bf16 (training under CUDA graphs opens its own: capture
    must not keep autocast's cache)."""
    def scoped(*a, **k):
        bf16 = args.autocast == "bf16"
        with torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            return fn(*a, **k)
    return scoped


def wants_baseline(args, stage: str) -> bool:
    """--quick leaves out the slowest baselines (validation loss, decoding of the test set)."""
    return not args.no_baseline and not (args.quick and stage in ("val_loss", "beam_test"))


def build_paths(config, data, device, with_baseline: bool, fused_cell: bool = True):
    """(model, {"fast"/"plain": (model, optimizer, config)}); the plain model is a copy, which draws no
    random numbers, so the fast path's dropout is the same with or without the baseline. fused_cell
    False: the LSTM update as written instead of nn.LSTMCell's fused CUDA kernel."""
    model = build_model(config, len(data.vocab), data.feature_size, fused_cell).to(device)
    paths = {"fast": (model, make_optimizer(model, config.train), config)}
    if with_baseline:
        plain, plain_model, t = plain_config(config), copy.deepcopy(model), config.train
        plain_model.fast_teacher_forcing = False
        optimizer = torch.optim.Adam(plain_model.parameters(), lr=t.lr, weight_decay=t.weight_decay,
                                     amsgrad=t.optimizer == "amsgrad")
        paths["plain"] = (plain_model, optimizer, plain)
    return model, paths
