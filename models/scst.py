"""Self-critical sequence training (Rennie et al. 2017; Luo 2020): the REINFORCE loss with a baseline,
and the two baselines. Pure tensor functions; rows of sampled captions are laid out clip-major
(clip 0's K samples, then clip 1's, ...), as a batched sampler that repeats each clip K times gives
them. Every output is on the inputs' device."""
from __future__ import annotations

import torch


def self_critical_loss(sample_log_probs: torch.Tensor, sample_mask: torch.Tensor, rewards: torch.Tensor,
                       baseline: torch.Tensor) -> torch.Tensor:
    """-(1/N) sum_i (r_i - b_i) sum_t log p(w_it): the policy gradient of the expected reward.

    sample_log_probs (N, L): log p of each sampled word (with its graph); sample_mask (N, L) bool:
    the real tokens, <eos> included, nothing after it; rewards and baseline (N,): constants (detached
    here). Reduction: summed over each caption's tokens, as Rennie et al. write it (a caption is one
    action), and averaged over the N samples, so the scale does not grow with the batch."""
    if sample_log_probs.shape != sample_mask.shape or rewards.shape != baseline.shape \
            or rewards.shape != sample_log_probs.shape[:1]:
        raise ValueError(f"self_critical_loss wants log-probs and mask (N, L), rewards and baseline (N,); "
                         f"got {tuple(sample_log_probs.shape)}, {tuple(sample_mask.shape)}, "
                         f"{tuple(rewards.shape)}, {tuple(baseline.shape)}")
    advantage = (rewards - baseline).detach().to(sample_log_probs.dtype)
    caption_log_prob = (sample_log_probs * sample_mask.to(sample_log_probs.dtype)).sum(1)
    return -(advantage * caption_log_prob).mean()


def mean_of_others_baseline(rewards: torch.Tensor, samples_per_clip: int) -> torch.Tensor:
    """Luo 2020's "new self-critical" baseline: for each sample, the mean reward of the other K-1
    samples of its clip (so a sample's own reward never sets its baseline). rewards (B*K,)."""
    k = samples_per_clip
    if k < 2:
        raise ValueError(f"the mean-of-others baseline needs at least 2 samples per clip, got {k}; "
                         "sample more, or use the greedy baseline")
    if rewards.dim() != 1 or rewards.numel() % k:
        raise ValueError(f"rewards must be (B*K,) with K={k} samples per clip, got {tuple(rewards.shape)}")
    rewards = rewards.detach()
    per_clip = rewards.view(-1, k)
    return ((per_clip.sum(1, keepdim=True) - per_clip) / (k - 1)).reshape(-1)


def greedy_baseline(greedy_rewards: torch.Tensor, samples_per_clip: int) -> torch.Tensor:
    """Rennie et al.'s baseline: the reward of each clip's greedy caption, once for each of its K
    samples. greedy_rewards (B,) -> (B*K,)."""
    return greedy_rewards.detach().repeat_interleave(samples_per_clip)
