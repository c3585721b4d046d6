"""Decoding as CUDA graphs (eval.cuda_graphs): one graph per batch shape and settings, every step to
eval.max_len (the eager search's captions); a shape's first batch is decoded eagerly, then captured;
moved weights mean new captures; a failed capture is reported and decoding stays eager."""
from __future__ import annotations

import dataclasses
import itertools
import weakref

import torch

from utils import CudaGraphs, try_capture

_BY_MODEL = weakref.WeakKeyDictionary()   # model -> its DecodeGraphs, gone with the model


def graphed_decode(model, features, mask, eval_config, search):
    if model not in _BY_MODEL:
        _BY_MODEL[model] = DecodeGraphs(CudaGraphs(features.device))
    return _BY_MODEL[model](model, features, mask, eval_config, search)


def capture_failure(model):
    """Why this model's decode could not be captured; None when it was (or is yet to be)."""
    return getattr(_BY_MODEL.get(model), "failure", None)


def all_steps(model, features, mask, eval_config, search):
    """What one graph records: every step, no host sync (beam search's history, or a Decoded)."""
    return search.run(model, features, mask, eval_config, stop_early=False)


def finished(outputs):
    """all_steps' captions in new tensors (the next replay overwrites outputs), cut as the eager's."""
    if hasattr(outputs, "rebuild"):
        return outputs.rebuild()
    length = int(outputs.lengths.max())
    return dataclasses.replace(outputs, tokens=outputs.tokens[:, :length].clone(), log_probs=outputs.log_probs.clone(),
                               attention=outputs.attention[:, :length].clone(), lengths=outputs.lengths.clone())


def eval_fields(eval_config) -> tuple:
    return tuple((f.name, tuple(v) if isinstance(v := getattr(eval_config, f.name), list) else v)
                 for f in dataclasses.fields(eval_config))


class DecodeGraphs:
    def __init__(self, graphs):
        self.graphs = graphs               # utils.CudaGraphs, or the tests' stand-in
        self.shapes = {}                   # key -> (static features, static mask, outputs, replay)
        self.addresses = None              # where the graphs read the model's tensors
        self.failure = None                # why a capture failed: eager decoding from then on

    def __call__(self, model, features, mask, eval_config, search):
        if self.failure is not None:
            return search.run(model, features, mask, eval_config)
        addresses = [(t.data_ptr(), t.dtype, t.shape) for t in itertools.chain(model.parameters(), model.buffers())]
        if addresses != self.addresses:    # graphs would read where the weights were
            self.shapes.clear()
            self.addresses = addresses
        # everything that changes the recorded kernels
        key = (tuple(features.shape), features.dtype, tuple(mask.shape), mask.dtype, model.training, model.step,
               eval_fields(eval_config), torch.is_autocast_enabled(), torch.backends.cuda.matmul.allow_tf32)
        captured = self.shapes.get(key)
        if captured is not None:
            static_features, static_mask, outputs, replay = captured
            static_features.copy_(features)
            static_mask.copy_(mask)
            replay()
            return finished(outputs)
        static_features, static_mask = features.clone(), mask.clone()
        run = lambda: all_steps(model, static_features, static_mask, eval_config, search)
        decoded = finished(self.graphs.warm_up(run))
        outputs, replay, self.failure = try_capture(
            self.graphs, run, "eval.cuda_graphs", f"the decode of a batch of {features.shape[0]} clips", "decoding")
        if self.failure is None:
            self.shapes[key] = (static_features, static_mask, outputs, replay)
        else:
            self.shapes.clear()
        return decoded                     # (this batch was decoded by the warm-up)
