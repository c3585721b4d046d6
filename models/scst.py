"""Self-critical sequence training (Rennie et al. 2017; Luo 2020): the sampled captions, the
REINFORCE loss with a baseline, and the two baselines. Rows of sampled captions are clip-major
(clip 0's K samples, then clip 1's, ...)."""
from __future__ import annotations

import torch

from models.searches import Rows, decode_rows, sampled


def sample_captions(model, features, mask, samples_per_clip: int = 5, max_len: int = 30,
                    temperature: float = 1.0, min_len: int = 1) -> Rows:
    """K sampled captions per clip, with gradients into log_probs unless run under no_grad;
    temperature 0 takes the most likely word. Draws use torch's global generator of the features'
    device (seeded, and saved with a run's RNG state)."""
    return decode_rows(model, features, mask, samples_per_clip, sampled(temperature), max_len, min_len)


def self_critical_loss(sample_log_probs: torch.Tensor, sample_mask: torch.Tensor, rewards: torch.Tensor,
                       baseline: torch.Tensor) -> torch.Tensor:
    """-(1/N) sum_i (r_i - b_i) sum_t log p(w_it): summed over each caption's tokens (a caption is
    one action, as Rennie et al. write it), averaged over the N samples. sample_log_probs and
    sample_mask (N, L), the mask True on the tokens up to <eos>; rewards and baseline (N,), detached."""
    if sample_log_probs.shape != sample_mask.shape or rewards.shape != baseline.shape \
            or rewards.shape != sample_log_probs.shape[:1]:
        raise ValueError(f"self_critical_loss wants log-probs and mask (N, L), rewards and baseline (N,); "
                         f"got {tuple(sample_log_probs.shape)}, {tuple(sample_mask.shape)}, "
                         f"{tuple(rewards.shape)}, {tuple(baseline.shape)}")
    advantage = (rewards - baseline).detach().to(sample_log_probs.dtype)
    caption_log_prob = (sample_log_probs * sample_mask.to(sample_log_probs.dtype)).sum(1)
    return -(advantage * caption_log_prob).mean()


def mean_of_others_baseline(rewards: torch.Tensor, samples_per_clip: int) -> torch.Tensor:
    """Luo 2020's baseline: for each sample, the mean reward of the other K-1 samples of its clip.
    rewards (B*K,)."""
    k = samples_per_clip
    if rewards.dim() != 1 or rewards.numel() % k:
        raise ValueError(f"rewards must be (B*K,) with K={k} samples per clip, got {tuple(rewards.shape)}")
    rewards = rewards.detach()
    per_clip = rewards.view(-1, k)
    return ((per_clip.sum(1, keepdim=True) - per_clip) / (k - 1)).reshape(-1)


def greedy_baseline(greedy_rewards: torch.Tensor, samples_per_clip: int) -> torch.Tensor:
    """Rennie et al.'s baseline: each clip's greedy caption's reward, once per sample: (B,) -> (B*K,)."""
    return greedy_rewards.detach().repeat_interleave(samples_per_clip)
