"""Training loss: caption NLL, optionally label-smoothed, plus the doubly stochastic attention penalty."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from loader.vocabulary import BOS_ID, PAD_ID


def token_losses(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> tuple:
    """(nll, smoothed), each (B, T), 0 at <pad>; smoothed (nll itself at eps 0) puts eps evenly on
    every word but <pad> and <bos>, which are never targets."""
    batch, steps, vocab = logits.shape
    flat_logits, flat_targets = logits.reshape(-1, vocab), targets.reshape(-1)
    nll = F.cross_entropy(flat_logits, flat_targets, ignore_index=PAD_ID, reduction="none")
    if not label_smoothing:
        return (nll.view(batch, steps),) * 2       # one tensor twice: training_loss reduces it once
    log_probs = torch.log_softmax(flat_logits, -1)
    emitted = log_probs.sum(-1) - log_probs[:, PAD_ID] - log_probs[:, BOS_ID]
    uniform_nll = -emitted / (vocab - 2) * (flat_targets != PAD_ID).to(log_probs.dtype)
    smoothed = (1.0 - label_smoothing) * nll + label_smoothing * uniform_nll
    return nll.view(batch, steps), smoothed.view(batch, steps)


def reduce_captions(per_token: torch.Tensor, targets: torch.Tensor, reduction: str) -> torch.Tensor:
    """caption_sum: summed over each caption, mean over captions (the paper's); token_mean: per token."""
    return (per_token.sum(1).mean() if reduction == "caption_sum"
            else per_token.sum() / (targets != PAD_ID).sum().clamp(min=1))


def caption_nll(logits: torch.Tensor, targets: torch.Tensor, reduction: str,
                label_smoothing: float = 0.0) -> torch.Tensor:
    """The caption loss; validation calls it with eps = 0, comparable across runs."""
    return reduce_captions(token_losses(logits, targets, label_smoothing)[1], targets, reduction)


def attention_penalty(alphas: torch.Tensor, targets: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """sum_i (1 - sum_t alpha_ti)^2 over real steps t and real frames i, mean over captions."""
    step_mask = (targets != PAD_ID).to(alphas.dtype).unsqueeze(-1)
    attention_per_frame = (alphas * step_mask).sum(1)                       # (B, K)
    penalty = ((1.0 - attention_per_frame) ** 2) * frame_mask.to(alphas.dtype)
    return penalty.sum(1).mean()


def training_loss(logits, alphas, targets, frame_mask, train_config) -> tuple:
    """(total, nll): the logs show the plain NLL, comparable with loss/val."""
    nll, smoothed = token_losses(logits, targets, train_config.label_smoothing)
    nll = reduce_captions(nll, targets, train_config.loss_reduction)
    total = nll if smoothed is nll else reduce_captions(smoothed, targets, train_config.loss_reduction)
    if train_config.attention_penalty > 0:
        total = total + train_config.attention_penalty * attention_penalty(alphas, targets, frame_mask)
    return total, nll
