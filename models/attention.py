"""Soft temporal attention over the K frames (paper eq. 3-4), or mean pooling for ablations.

An attention is a module with three members, which is all the decoder uses of it:
- keys(frames): whatever it needs of each clip's frames, computed once per clip (EncodedClips.keys);
- query: a linear map of h_{t-1} (nn.Linear without bias) or None; the decoder applies it in the one
  product that reads h_{t-1} (models/decoder.py) and hands the result to weights();
- weights(query, clips, width): alpha (B, width, K), one row of weights over the K frames for each
  of the `width` rows a clip has (1 in training, W beams or K samples in decoding).
A new attention is a new class here with these members, chosen in models/sa_lstm.py.
"""
from __future__ import annotations

import torch
from torch import nn


class TemporalAttention(nn.Module):
    """e_i = w^T tanh(W_a h_{t-1} + U_a v_i + b_a); alpha = softmax over real frames.

    U_a v_i does not depend on t: keys() computes it once per clip, weights() reuses it.
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

    def weights(self, query: torch.Tensor, clips, width: int) -> torch.Tensor:
        """query = W_a h_{t-1} for `width` consecutive rows per clip -> alpha (B, width, K)."""
        batch, n_frames, size = clips.keys.shape
        keys = clips.keys.unsqueeze(1)                                        # (B, 1, K, A)
        hidden = torch.tanh(keys + query.view(batch, width, 1, -1)).view(-1, size)
        # w^T tanh(...), with padded frames' energies -inf: their fill folded into the product
        energy = torch.addmm(clips.padding_bias(width), hidden, self.score.weight.t())
        return torch.softmax(energy.view(batch, width, n_frames), dim=-1)


class MeanPooling(nn.Module):
    """The paper's baseline: every real frame weighs the same at every step."""

    query = None                       # reads nothing of h_{t-1}

    def keys(self, frames: torch.Tensor) -> torch.Tensor:
        return frames[..., :0]

    def weights(self, query, clips, width: int) -> torch.Tensor:
        batch, n_frames = clips.mask.shape
        return clips.mean_weights.expand(batch, width, n_frames)
