"""The cross-entropy steps, eager or CUDA graphs: both run training_update, so they cannot drift apart."""
from __future__ import annotations

from loader.batches import CaptionBatch
from training.cuda_graphs import GraphedSteps
from training.update import training_update
from utils import CudaGraphs


class EagerSteps:
    def __init__(self, model, optimizer, train_config):
        self.model, self.optimizer, self.train_config = model, optimizer, train_config

    def __call__(self, batch: CaptionBatch, share, own_word_probability: float = 0.0) -> tuple:
        return training_update(self.model, self.optimizer, batch, self.train_config, share.weigh, own_word_probability)


def training_steps(model, optimizer, data, config):
    if config.train.cuda_graphs:
        return GraphedSteps(model, optimizer, data, config, CudaGraphs(data.train.features.device))
    return EagerSteps(model, optimizer, config.train)
