"""Self-critical sequence training (Rennie et al. 2017; Luo 2020): sampled captions (clip-major rows),
the REINFORCE loss and its two baselines."""
from __future__ import annotations

import torch

from models.searches import Rows, decode_rows, sampled


def sample_captions(model, features, mask, samples_per_clip: int = 5, max_len: int = 30,
                    temperature: float = 1.0, min_len: int = 1) -> Rows:
    """K sampled captions per clip, gradients into log_probs; draws by torch's global generator."""
    return decode_rows(model, features, mask, samples_per_clip, sampled(temperature), max_len, min_len)


def self_critical_loss(sample_log_probs: torch.Tensor, sample_mask: torch.Tensor, rewards: torch.Tensor,
                       baseline: torch.Tensor) -> torch.Tensor:
    """-(1/N) sum_i (r_i - b_i) sum_t log p(w_it): a caption is one action, as Rennie et al. write it."""
    if sample_log_probs.shape != sample_mask.shape or rewards.shape != baseline.shape \
            or rewards.shape != sample_log_probs.shape[:1]:
        raise ValueError(f"self_critical_loss wants log-probs and mask (N, L), rewards and baseline (N,); "
                         f"got {tuple(sample_log_probs.shape)}, {tuple(sample_mask.shape)}, "
                         f"{tuple(rewards.shape)}, {tuple(baseline.shape)}")
    advantage = (rewards - baseline).detach().to(sample_log_probs.dtype)
    caption_log_prob = (sample_log_probs * sample_mask.to(sample_log_probs.dtype)).sum(1)
    return -(advantage * caption_log_prob).mean()


def mean_of_others_baseline(rewards: torch.Tensor, samples_per_clip: int) -> torch.Tensor:
    """Luo 2020's baseline: the mean reward of the clip's other K-1 samples; rewards (B*K,)."""
    k = samples_per_clip
    if rewards.dim() != 1 or rewards.numel() % k:
        raise ValueError(f"rewards must be (B*K,) with K={k} samples per clip, got {tuple(rewards.shape)}")
    rewards = rewards.detach()
    per_clip = rewards.view(-1, k)
    return ((per_clip.sum(1, keepdim=True) - per_clip) / (k - 1)).reshape(-1)


def greedy_baseline(greedy_rewards: torch.Tensor, samples_per_clip: int) -> torch.Tensor:
    """Rennie et al.'s baseline: each clip's greedy caption's reward, once per sample."""
    return greedy_rewards.detach().repeat_interleave(samples_per_clip)
