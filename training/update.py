"""One cross-entropy update on one batch: forward, loss, backward, gradient clipping, optimizer step."""
from __future__ import annotations

import torch

from loader.batches import CaptionBatch
from models.loss import training_loss
from utils import autocast_bf16, tf32_products


def training_update(model, optimizer, batch: CaptionBatch, train_config, weigh=None,
                    own_word_probability: float = 0.0, for_cuda_graph: bool = False) -> tuple:
    """One step on one batch; returns (loss, nll) detached, still on the device (no sync).

    weigh: the rank's loss weights under torchrun (distributed/sharding.py), None for one process.
    for_cuda_graph: zero the gradients where they are (a graph writes every replay into the same
    tensors) and keep no autocast cache (capture forbids it); the update is the same.
    train.autocast_bf16 and train.tf32 set the precision of the products."""
    t = train_config
    with tf32_products(t.tf32):            # backward's products too
        with autocast_bf16(batch.features.device.type, t.autocast_bf16, cache=not for_cuda_graph):
            loss, nll = batch_loss(model, batch, t, own_word_probability)
            if weigh is not None:
                loss, nll = weigh(loss, nll)
        optimizer.zero_grad(set_to_none=not for_cuda_graph)
        loss.backward()
        if t.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip_norm)
        optimizer.step()
    return loss.detach(), nll.detach()


def batch_loss(model, batch: CaptionBatch, train_config, own_word_probability: float) -> tuple:
    """(loss, nll) of the batch. The logits (B, T, V), the largest tensor of the step, die on
    return: backward needs only what autograd saved (their log-softmax), so they are not held
    beside its gradients (about 0.2 GiB less at the peak for a batch of 200 x 30 words)."""
    logits, alphas = model(batch.features, batch.frame_mask, batch.inputs, own_word_probability)
    return training_loss(logits, alphas, batch.targets, batch.frame_mask, train_config)
