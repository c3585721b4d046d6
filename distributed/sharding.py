"""One rank's slice of a global batch and share of the videos. Its loss weight makes DDP's mean gradient
the one-process one: L = sum_i l_i / B, L_r = sum_{i in r} l_i / n_r, so w_r = W n_r / B (W t_r / T
in tokens for token_mean's NLL); every rank sees the whole batch, so the weights need no communication."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable, Iterable

import torch


@dataclass
class BatchShare:
    rows: torch.Tensor          # this rank's caption rows (CPU)
    nll_weight: float = 1.0
    caption_weight: float = 1.0
    whole: bool = True          # the whole batch on one rank: the loss is left as it is

    def weigh(self, total: torch.Tensor, nll: torch.Tensor) -> tuple:
        if self.whole:
            return total, nll
        penalty = total - nll                      # the per-caption terms beyond the NLL
        return self.nll_weight * nll + self.caption_weight * penalty, self.nll_weight * nll


def batch_share(rows: torch.Tensor, lengths: torch.Tensor, reduction: str, rank: int,
                world_size: int) -> BatchShare:
    """Rank's slice of a global batch (CPU rows) and its loss weights; an empty slice takes one
    caption at weight 0, as DDP needs every rank's backward."""
    if world_size == 1:
        return BatchShare(rows)
    mine = torch.tensor_split(rows, world_size)[rank]
    if len(mine) == 0:
        return BatchShare(rows[:1], 0.0, 0.0, whole=False)
    caption_weight = world_size * len(mine) / len(rows)
    nll_weight = (world_size * float(lengths[mine].sum()) / float(lengths[rows].sum())
                  if reduction == "token_mean" else caption_weight)
    return BatchShare(mine, nll_weight, caption_weight, whole=False)


def shard(items: Iterable, key: Callable[[object], Hashable], rank: int, world_size: int) -> list:
    """Rank's items: the sorted distinct keys dealt out in turn, items of one key on one rank."""
    items = list(items)
    owner = {k: i % world_size for i, k in enumerate(sorted({key(item) for item in items}))}
    return [item for item in items if owner[key(item)] == rank]
