"""What one rank does of the whole: its slice of a global batch, its share of the videos.

A global batch of B captions is cut into world_size contiguous slices (sizes differ by at most
one). Each rank's loss is weighted so that DDP's average of the ranks' gradients equals the
gradient of the one-process loss over the whole batch:

    one process:  L = sum_i l_i / B                      (per-caption terms: caption NLL, penalty)
    rank r:       L_r = sum_{i in r} l_i / n_r           (what training_loss gives on its slice)
    DDP:          grad = sum_r grad(w_r L_r) / W   =>   w_r = W n_r / B

For token_mean the NLL is a mean over tokens, so its weight uses the rank's tokens instead
(W t_r / T); the attention penalty stays a mean over captions. Every rank sees the whole
global batch (the batch order comes from a generator seeded per epoch), so the weights need
no communication.
"""
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
        """(total, nll) of training_loss on this slice, weighted for DDP's gradient average."""
        if self.whole:
            return total, nll
        penalty = total - nll                      # the per-caption terms beyond the NLL
        return self.nll_weight * nll + self.caption_weight * penalty, self.nll_weight * nll


def batch_share(rows: torch.Tensor, lengths: torch.Tensor, reduction: str, rank: int,
                world_size: int) -> BatchShare:
    """Rank's slice of a global batch (rows of caption ids, CPU) and its loss weights.

    lengths: target tokens of every caption (CPU). A rank whose slice is empty (a last batch
    smaller than the world) takes one caption at weight 0: DDP needs every rank's backward.
    """
    if world_size == 1:
        return BatchShare(rows)
    mine = torch.tensor_split(rows, world_size)[rank]
    if len(mine) == 0:
        return BatchShare(rows[:1], 0.0, 0.0, whole=False)
    caption_weight = world_size * len(mine) / len(rows)
    if reduction == "token_mean":
        nll_weight = world_size * float(lengths[mine].sum()) / float(lengths[rows].sum())
    else:
        nll_weight = caption_weight
    return BatchShare(mine, nll_weight, caption_weight, whole=False)


def shard(items: Iterable, key: Callable[[object], Hashable], rank: int, world_size: int) -> list:
    """Rank's items: the distinct keys in sorted order are dealt out in turn, so the shares
    differ by at most one key and items with the same key land on the same rank."""
    items = list(items)
    keys = sorted({key(item) for item in items})
    owner = {k: i % world_size for i, k in enumerate(keys)}
    return [item for item in items if owner[key(item)] == rank]
