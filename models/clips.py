"""What the model's encode() gives its step: the clips' frames and what is computed once per clip."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch


@dataclass
class EncodedClips:
    frames: torch.Tensor   # (B, K, F): projected frame features, padding zeroed
    keys: torch.Tensor     # what the attention precomputes per clip (models/attention.py)
    mask: torch.Tensor     # (B, K)
    state: tuple           # (h_0, c_0), one row per clip
    # the most rows a clip has in the decode (beams, samples): above 1, the step applies the maps
    # that read phi_t to each clip's frames once instead of to every row's phi_t each step
    rows_per_clip: int = 1

    cache: dict = field(default_factory=dict, repr=False)   # per decode, see cached

    def cached(self, name: str, make):
        """make(), computed once for these clips (weight views, projected frames, biases)."""
        if name not in self.cache:
            self.cache[name] = make()
        return self.cache[name]

    def padding_bias(self, width: int) -> torch.Tensor:
        """(B * width * K, 1): -inf on padded frames, which attention must not weigh, 0 on real
        ones, for `width` rows per clip; made once per width, added to the attention energies
        inside their product (one operator a step instead of a product and a fill)."""
        def make():
            padding = ~self.mask.unsqueeze(1).expand(-1, width, -1)
            return torch.zeros(padding.shape, dtype=self.keys.dtype, device=self.keys.device).masked_fill(
                padding, float("-inf")).view(-1, 1)
        return self.cached(("padding_bias", width), make)

    @cached_property
    def mean_weights(self) -> torch.Tensor:
        """(B, 1, K) mean pooling's fixed weights: 1 / (real frames) on each real frame."""
        weights = self.mask.to(self.frames.dtype)
        return (weights / weights.sum(-1, keepdim=True).clamp(min=1)).unsqueeze(1)
