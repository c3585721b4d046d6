"""Training loss: caption NLL plus the doubly stochastic attention penalty (L2 is weight decay)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from loader.vocabulary import PAD_ID


def caption_nll(logits: torch.Tensor, targets: torch.Tensor, reduction: str) -> torch.Tensor:
    """caption_sum: NLL summed over each caption's tokens (<eos> included), mean over captions
    (the paper's); token_mean: mean over all real tokens."""
    batch, steps, vocab = logits.shape      # flat rows: faster than the (B, V, T) layout
    nll = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1), ignore_index=PAD_ID,
                          reduction="none").view(batch, steps)
    if reduction == "caption_sum":
        return nll.sum(1).mean()
    if reduction == "token_mean":
        return nll.sum() / (targets != PAD_ID).sum().clamp(min=1)
    raise ValueError(f"train.loss_reduction must be caption_sum or token_mean, not {reduction!r}")


def attention_penalty(alphas: torch.Tensor, targets: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """sum_i (1 - sum_t alpha_ti)^2 over real steps t and real frames i, mean over captions."""
    step_mask = (targets != PAD_ID).to(alphas.dtype).unsqueeze(-1)
    attention_per_frame = (alphas * step_mask).sum(1)                       # (B, K)
    penalty = ((1.0 - attention_per_frame) ** 2) * frame_mask.to(alphas.dtype)
    return penalty.sum(1).mean()


def training_loss(logits, alphas, targets, frame_mask, train_config) -> tuple:
    """(total, nll) so the logs can show the NLL on its own."""
    nll = caption_nll(logits, targets, train_config.loss_reduction)
    total = nll
    if train_config.attention_penalty > 0:
        total = total + train_config.attention_penalty * attention_penalty(alphas, targets, frame_mask)
    return total, nll
