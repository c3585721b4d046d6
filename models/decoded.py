"""What every search returns: one caption per clip."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Decoded:
    tokens: torch.Tensor      # (B, L) word ids, <eos> then <pad> after the caption
    log_probs: torch.Tensor   # (B,) sum of the log-probabilities of the words and <eos>
    attention: torch.Tensor   # (B, L, K) attention weights of each generated token
    lengths: torch.Tensor     # (B,) tokens including <eos>
