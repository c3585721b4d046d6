"""Decoding as CUDA graphs (eval.cuda_graphs, beyond the paper; off by default).

A beam-search step dispatches about 35 small operators, each a kernel
launch plus Python work on the CPU: with batches of 100 clips the GPU waits for the CPU. A CUDA
graph records a whole decode's kernels once and replays them with one launch.

A graph replays fixed kernels on fixed memory, so:
- one graph per batch shape and decoding settings (a split's batches give two: the full ones
  and the last); each reads its batch from static buffers of its own;
- the graph runs every step up to eval.max_len, with no early stop: stopping needs the CPU to
  read the scores each step. A hypothesis that has ended never goes on, so the captions are the
  eager search's (tests/test_decode_graphs.py);
- the first batch of a shape is decoded eagerly (on a side stream, doing the lazy set-up that
  capture forbids), then the shape is captured: capture runs nothing;
- a replay reads the weights where they are: a model trained in place between two validations
  (as the optimizers train) is decoded as it is now. Weights moved elsewhere (model.to, a
  load_state_dict that assigns) make every shape be captured anew;
- the captions are rebuilt from the graph's outputs eagerly: a few operators, one host sync;
- should a capture fail (an operator of another torch version), decoding says why and goes on
  without graphs.
The graphs and their buffers stay with the model (a weak reference: they go when it goes).
"""
from __future__ import annotations

import dataclasses
import itertools
import weakref

import torch

from models.beam_history import BeamHistory
from models.decoded import Decoded
from models.searches import SEARCHES
from utils import CudaGraphs, try_capture

_BY_MODEL = weakref.WeakKeyDictionary()   # model -> its DecodeGraphs


def graphed_decode(model, features, mask, eval_config) -> Decoded:
    """decode() through this model's graphs (made on first use, on the device of the features)."""
    graphs = _BY_MODEL.get(model)
    if graphs is None:
        graphs = _BY_MODEL[model] = DecodeGraphs(CudaGraphs(features.device))
    return graphs(model, features, mask, eval_config)


def capture_failure(model):
    """Why this model's decode could not be captured; None when it was (or is yet to be)."""
    graphs = _BY_MODEL.get(model)
    return graphs.failure if graphs is not None else None


def all_steps(model, features, mask, eval_config):
    """What one graph records: the decode with every step run and no host sync; returns what
    finished() turns into captions (beam search's history, or greedy search's Decoded)."""
    return SEARCHES[eval_config.search].run(model, features, mask, eval_config, stop_early=False)


def finished(outputs) -> Decoded:
    """The captions of all_steps' outputs, in new tensors (the next replay overwrites outputs),
    shaped as the eager search's: as long as the longest caption."""
    if isinstance(outputs, BeamHistory):
        return Decoded(*outputs.rebuild())
    length = int(outputs.lengths.max())
    return Decoded(outputs.tokens[:, :length].clone(), outputs.log_probs.clone(),
                   outputs.attention[:, :length].clone(), outputs.lengths.clone())


def eval_fields(eval_config) -> tuple:
    """Every eval field as (name, value), lists as tuples: part of a graph's key."""
    return tuple((f.name, tuple(v) if isinstance(v := getattr(eval_config, f.name), list) else v)
                 for f in dataclasses.fields(eval_config))


class DecodeGraphs:
    """decode() of one model, each batch shape replayed as one graph (see the module doc)."""

    def __init__(self, graphs):
        self.graphs = graphs               # utils.CudaGraphs, or the tests' stand-in
        self.shapes = {}                   # key -> (static features, static mask, outputs, replay)
        self.addresses = None              # where the graphs read the model's tensors
        self.failure = None                # why a capture failed: eager decoding from then on

    def __call__(self, model, features, mask, eval_config) -> Decoded:
        e = eval_config
        run = lambda f, m: all_steps(model, f, m, e)
        if self.failure is not None:
            return SEARCHES[e.search].run(model, features, mask, e)
        addresses = [(t.data_ptr(), t.dtype, t.shape)
                     for t in itertools.chain(model.parameters(), model.buffers())]
        if addresses != self.addresses:    # graphs would read where the weights were
            self.shapes.clear()
            self.addresses = addresses
        # Everything that changes the recorded kernels: every eval field (a new one included), the
        # model's step (replaced on the instance, as a test may) and dropout. CUDA's autocast
        # state: an outer autocast (the benchmark's --autocast bf16) counts too. TF32: the flag
        # itself, which eval.tf32 or a caller sets (utils.tf32_products).
        key = (tuple(features.shape), features.dtype, tuple(mask.shape), mask.dtype, model.training,
               model.step, eval_fields(e), torch.is_autocast_enabled(),
               torch.backends.cuda.matmul.allow_tf32)
        captured = self.shapes.get(key)
        if captured is not None:
            static_features, static_mask, outputs, replay = captured
            static_features.copy_(features)
            static_mask.copy_(mask)
            replay()
            return finished(outputs)
        static_features, static_mask = features.clone(), mask.clone()
        decoded = finished(self.graphs.warm_up(lambda: run(static_features, static_mask)))
        outputs, replay, self.failure = try_capture(
            self.graphs, lambda: run(static_features, static_mask), "eval.cuda_graphs",
            f"the decode of a batch of {features.shape[0]} clips", "decoding")
        if self.failure is None:
            self.shapes[key] = (static_features, static_mask, outputs, replay)
        else:
            self.shapes.clear()
        return decoded                     # (this batch was decoded by the warm-up)
