"""Batches: caption-level for training (one item per caption), video-level for evaluation."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from loader.captions import CaptionTargets
from loader.dataset import VideoSplit
from utils import to_device


@dataclass
class CaptionBatch:
    features: torch.Tensor    # (B, K, D)
    frame_mask: torch.Tensor  # (B, K)
    inputs: torch.Tensor      # (B, T): <bos> w_1 .. w_n, padded
    targets: torch.Tensor     # (B, T): w_1 .. w_n <eos>, padded with <pad>


def caption_batch_order(targets: CaptionTargets, batch_size: int, generator: torch.Generator,
                        bucket_by_length: bool) -> list:
    """Index tensors, one per batch, in random order; buckets give a batch one caption length (no padding)."""
    order = torch.randperm(len(targets), generator=generator)
    if bucket_by_length:
        order = order[torch.sort(targets.lengths[order], stable=True).indices]
    batches = list(torch.split(order, batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def make_caption_batch(videos: VideoSplit, targets: CaptionTargets, rows: torch.Tensor) -> CaptionBatch:
    # lengths live on the CPU (no device sync), which CUDA rows cannot index
    length = int(targets.lengths[rows.cpu()].max())
    rows = to_device(rows, targets.tokens.device)
    tokens = targets.tokens[rows, :length + 1]
    owners = targets.video_index[rows].to(videos.features.device)
    return CaptionBatch(videos.features[owners], videos.frame_mask[owners], tokens[:, :-1], tokens[:, 1:])


def video_batches(videos: VideoSplit, batch_size: int):
    """(row range, features, mask) for every video once, in split order."""
    for start in range(0, len(videos), batch_size):
        stop = min(start + batch_size, len(videos))
        yield range(start, stop), videos.features[start:stop], videos.frame_mask[start:stop]
