"""One cross-entropy update on one batch: forward, loss, backward, gradient clipping, optimizer step."""
from __future__ import annotations

import torch

from loader.batches import CaptionBatch
from models.loss import training_loss
from utils import autocast_bf16, tf32_products


def training_update(model, optimizer, batch: CaptionBatch, train_config, weigh=None,
                    own_word_probability: float = 0.0, for_cuda_graph: bool = False) -> tuple:
    """(loss, nll) detached, no sync. weigh: the rank's loss weights under torchrun; for_cuda_graph:
    gradients zeroed in place and no autocast cache, as capture requires."""
    t = train_config
    with tf32_products(t.tf32):            # backward's products too
        with autocast_bf16(batch.features.device.type, t.autocast_bf16, cache=not for_cuda_graph):
            loss, nll = batch_loss(model, batch, t, own_word_probability)
            if weigh is not None:
                loss, nll = weigh(loss, nll)
        descend(model, optimizer, loss, t.clip_norm, set_to_none=not for_cuda_graph)
    return loss.detach(), nll.detach()


def descend(model, optimizer, loss, clip_norm: float, set_to_none: bool = True) -> None:
    """Backward, gradient clipping at clip_norm (0: none) and the optimizer's step."""
    optimizer.zero_grad(set_to_none=set_to_none)
    loss.backward()
    if clip_norm > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimizer.step()


def batch_loss(model, batch: CaptionBatch, train_config, own_word_probability: float) -> tuple:
    """A function of its own so that the logits are freed before backward."""
    logits, alphas = model(batch.features, batch.frame_mask, batch.inputs, own_word_probability)
    return training_loss(logits, alphas, batch.targets, batch.frame_mask, train_config)
