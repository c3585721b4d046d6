"""Frame features -> what the decoder reads: (projected) frames and the initial LSTM state."""
from __future__ import annotations

import torch
from torch import nn


def masked_mean(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real frames only: (B, K, D), (B, K) -> (B, D)."""
    weights = mask.to(frames.dtype)
    return (frames * weights.unsqueeze(-1)).sum(1) / weights.sum(1, keepdim=True).clamp(min=1)


class FrameEncoder(nn.Module):
    """Optional linear frame projection, and h_0 = tanh(W_h v̄ + b_h), c_0 = tanh(W_c v̄ + b_c)."""

    def __init__(self, feature_size: int, hidden_size: int, projection: int | None,
                 init_from_mean: bool):
        super().__init__()
        self.projection = nn.Linear(feature_size, projection) if projection else None
        self.output_size = projection or feature_size
        self.hidden_size = hidden_size
        self.init_from_mean = init_from_mean
        if init_from_mean:
            self.init_h = nn.Linear(self.output_size, hidden_size)
            self.init_c = nn.Linear(self.output_size, hidden_size)

    def forward(self, features: torch.Tensor, mask: torch.Tensor):
        frames = self.projection(features) if self.projection is not None else features
        frames = frames * mask.unsqueeze(-1).to(frames.dtype)   # padded frames are exactly zero
        if self.init_from_mean:
            mean = masked_mean(frames, mask)
            state = (torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean)))
        else:
            zeros = frames.new_zeros(frames.shape[0], self.hidden_size)
            state = (zeros, zeros)
        return frames, state
