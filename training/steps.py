"""The cross-entropy steps, eager or as one CUDA graph per batch shape (train.cuda_graphs), both by training_update.
Graphs replay fixed kernels on fixed memory: batches are copied into static buffers, a new learning rate (baked
into the captured update) means a new capture, and a failed capture falls back to eager steps with a warning."""
from __future__ import annotations

import torch

from config import ConfigError
from loader.batches import CaptionBatch
from training.update import training_update
from utils import CudaGraphs, try_capture


class EagerSteps:
    def __init__(self, model, optimizer, train_config):
        self.model, self.optimizer, self.train_config = model, optimizer, train_config

    def __call__(self, batch: CaptionBatch, share, own_word_probability: float = 0.0) -> tuple:
        return training_update(self.model, self.optimizer, batch, self.train_config, share.weigh, own_word_probability)


def check_cuda_graphs_config(config, device: torch.device, world_size: int) -> None:
    problem = (f"needs a CUDA device; this run trains on {device}: leave it off (--train.cuda_graphs false) "
               "or set --train.device cuda" if device.type != "cuda" else
               "runs in one process (DDP's communication is not captured): start it with python train.py, "
               "not torchrun" if world_size > 1 else
               "captures teacher forcing only; scheduled sampling (train.scheduled_sampling) runs without it"
               if config.train.scheduled_sampling > 0 else None)
    if config.train.cuda_graphs and problem:
        raise ConfigError(f"train.cuda_graphs {problem}")


class GraphedSteps:
    """EagerSteps' interface, each batch shape's step replayed as one graph."""

    def __init__(self, model, optimizer, data, config, graphs):
        self.model, self.optimizer, self.train_config, self.graphs = model, optimizer, config.train, graphs
        rows, device = config.loader.batch_size, data.train.features.device
        features, tokens = data.train.features, data.train_targets.tokens
        # static inputs: the largest batch; a graph for fewer rows or words reads a leading slice
        self.features = torch.zeros((rows, *features.shape[1:]), dtype=features.dtype, device=device)
        self.frame_mask = torch.zeros((rows, features.shape[1]), dtype=torch.bool, device=device)
        self.tokens = torch.zeros((rows, tokens.shape[1]), dtype=tokens.dtype, device=device)
        self.loss, self.nll = torch.zeros((), device=device), torch.zeros((), device=device)
        self.replays = {}                  # (rows, length) -> the captured graph's replay
        self.captured_lrs, self.failure = None, None  # failure: why a capture failed, eager steps from then on

    def __call__(self, batch: CaptionBatch, share, own_word_probability: float = 0.0) -> tuple:
        if not share.whole or own_word_probability > 0:
            raise ValueError("GraphedSteps trains whole batches with teacher forcing "
                             "(check_cuda_graphs_config refuses the rest)")
        if self.failure is not None:
            return training_update(self.model, self.optimizer, batch, self.train_config)
        rows, length = batch.inputs.shape
        self.features[:rows].copy_(batch.features)
        self.frame_mask[:rows].copy_(batch.frame_mask)
        self.tokens[:rows, :length].copy_(batch.inputs)
        self.tokens[:rows, length:length + 1].copy_(batch.targets[:, -1:])
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        if lrs != self.captured_lrs:       # baked into the captured update: capture anew
            self.replays.clear()
            self.captured_lrs = lrs
        replay = self.replays.get((rows, length))
        if replay is not None:
            replay()
        else:
            step = self._step(rows, length)
            self.graphs.warm_up(step)      # this batch's own update
            what = f"the training step of a batch of {rows} captions of {length} tokens"
            _, replay, self.failure = try_capture(self.graphs, step, "train.cuda_graphs", what, "training")
            if self.failure is None:
                self.replays[(rows, length)] = replay
            else:
                self.replays.clear()
        return self.loss.clone(), self.nll.clone()

    def _step(self, rows: int, length: int):
        tokens = self.tokens[:rows, :length + 1]
        batch = CaptionBatch(self.features[:rows], self.frame_mask[:rows], tokens[:, :-1], tokens[:, 1:])

        def step():
            loss, nll = training_update(self.model, self.optimizer, batch, self.train_config, for_cuda_graph=True)
            self.loss.copy_(loss)
            self.nll.copy_(nll)
        return step


def training_steps(model, optimizer, data, config):
    if config.train.cuda_graphs:
        return GraphedSteps(model, optimizer, data, config, CudaGraphs(data.train.features.device))
    return EagerSteps(model, optimizer, config.train)
