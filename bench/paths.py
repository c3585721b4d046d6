"""The two paths the benchmark compares: this code ("fast") and the plain path ("plain").
Training and validation loss: teacher forcing as the loop over the model's step,
loader.bucket_by_length false, no CUDA graphs, no TF32, and the default (unfused) Adam. Decoding:
the plain beam search of bench/plain_decode.py. The fast path may run under bf16 autocast
(--autocast bf16); the plain path never does, so that its numbers stay the plain float32 code's."""
from __future__ import annotations

import contextlib
import copy

import torch

from config import Config
from bench.plain_decode import plain_beam_search
from models.sa_lstm import build_model
from train import make_optimizer, validation_loss


def plain_config(config) -> Config:
    """config with the plain path's switches."""
    plain = Config.from_dict(config.to_dict())
    plain.loader.bucket_by_length = False
    plain.train.cuda_graphs = plain.train.tf32 = False   # --cuda_graphs, --tf32: this code only
    return plain


def plain_validation_loss(model, data, config) -> float:
    """train.validation_loss on the plain path."""
    model.fast_teacher_forcing = False
    try:
        return validation_loss(model, data, plain_config(config))
    finally:
        model.fast_teacher_forcing = True


def plain_decode(model, features, mask, eval_config):
    """The plain beam search: what decoding speed-ups are ratios against."""
    e = eval_config
    return plain_beam_search(model, features, mask, e.beam_size, e.max_len, e.min_len, e.length_penalty)


def in_scope(args, device, fn):
    """fn where this code runs: plain float32, or under bf16 autocast with --autocast bf16.
    Training under CUDA graphs opens its own autocast (train.autocast_bf16, see stage_train):
    graph capture must not keep autocast's cache, which an outer one would."""
    def scoped(*a, **k):
        bf16 = args.autocast == "bf16"
        with torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            return fn(*a, **k)
    return scoped


def wants_baseline(args, stage: str) -> bool:
    """--quick leaves out the slowest baselines (validation loss, decoding of the test set)."""
    return not args.no_baseline and not (args.quick and stage in ("val_loss", "beam_test"))


def build_paths(config, data, device, with_baseline: bool, fused_cell: bool = True):
    """(model, {"fast"/"plain": (model, optimizer, config)}) with the same initial weights.

    The plain model is a copy of the fast one (a copy draws no random numbers: the fast path's
    dropout is the same with or without the baseline) that trains with the plain path's config
    and Adam as torch builds it by default (not fused). fused_cell False: this code's LSTM update
    as written instead of nn.LSTMCell's fused CUDA kernel."""
    model = build_model(config, len(data.vocab), data.feature_size, fused_cell).to(device)
    paths = {"fast": (model, make_optimizer(model, config.train), config)}
    if with_baseline:
        plain, plain_model, t = plain_config(config), copy.deepcopy(model), config.train
        plain_model.fast_teacher_forcing = False
        optimizer = torch.optim.Adam(plain_model.parameters(), lr=t.lr, weight_decay=t.weight_decay,
                                     amsgrad=t.optimizer == "amsgrad")
        paths["plain"] = (plain_model, optimizer, plain)
    return model, paths
