"""Soft temporal attention over the K frames (paper eq. 3-4), or mean pooling for ablations."""
from __future__ import annotations

import torch
from torch import nn


class TemporalAttention(nn.Module):
    """e_i = w^T tanh(W_a h_{t-1} + U_a v_i + b_a); alpha = softmax over real frames.

    U_a v_i does not depend on t: keys() computes it once per clip, step() reuses it.
    """

    def __init__(self, feature_size: int, hidden_size: int, attention_size: int,
                 n_frames: int, frame_positions: bool = False):
        super().__init__()
        self.key = nn.Linear(feature_size, attention_size, bias=True)       # U_a, b_a
        self.query = nn.Linear(hidden_size, attention_size, bias=False)     # W_a
        self.score = nn.Linear(attention_size, 1, bias=False)              # w
        # Beyond the paper (off in its presets): a learned position code lets attention see
        # frame order, which content-based attention cannot.
        self.positions = nn.Parameter(torch.zeros(n_frames, attention_size)) if frame_positions else None

    def keys(self, frames: torch.Tensor) -> torch.Tensor:
        keys = self.key(frames)
        if self.positions is not None:
            keys = keys + self.positions[: keys.shape[1]]
        return keys

    def forward(self, hidden: torch.Tensor, keys: torch.Tensor, frames: torch.Tensor,
                mask: torch.Tensor):
        energy = self.score(torch.tanh(keys + self.query(hidden).unsqueeze(1))).squeeze(-1)
        energy = energy.masked_fill(~mask, float("-inf"))
        alpha = torch.softmax(energy, dim=-1)
        return torch.bmm(alpha.unsqueeze(1), frames).squeeze(1), alpha


class MeanPooling(nn.Module):
    """The paper's baseline: every real frame weighs the same at every step."""

    def keys(self, frames: torch.Tensor) -> torch.Tensor:
        return frames[..., :0]

    def forward(self, hidden, keys, frames, mask):
        alpha = mask.to(frames.dtype)
        alpha = alpha / alpha.sum(-1, keepdim=True).clamp(min=1)
        return torch.bmm(alpha.unsqueeze(1), frames).squeeze(1), alpha
