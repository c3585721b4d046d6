"""The plain path that bench/benchmark.py measures in the same process as this code's, picked
with the config fields a user would set:

- training and validation loss: train.fast_teacher_forcing false (the plain loop over the model's
  step), loader.bucket_by_length false, no CUDA graphs, no TF32, and the default (unfused) Adam;
- decoding: the frozen first beam search (tests/reference.py, which the tests hold the beam
  search to), with the decoder step as first written.
"""
from __future__ import annotations

from config import Config
from tests.reference import reference_beam_search
from train import validation_loss


def plain_config(config) -> Config:
    """config with the plain path's switches."""
    plain = Config.from_dict(config.to_dict())
    plain.train.fast_teacher_forcing = False
    plain.loader.bucket_by_length = False
    plain.train.cuda_graphs = plain.train.tf32 = False   # --cuda_graphs, --tf32: this code only
    return plain


def plain_validation_loss(model, data, config) -> float:
    """train.validation_loss on the plain path."""
    return validation_loss(model, data, plain_config(config))


def plain_decode(model, features, mask, eval_config):
    """The first beam search with the first step: what decoding speed-ups are ratios against."""
    e = eval_config
    return reference_beam_search(model, features, mask, e.beam_size, e.max_len, e.min_len, e.length_penalty)
