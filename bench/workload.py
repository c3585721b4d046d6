"""The benchmark's workload: MSVD's splits and real captions (which set the vocabulary and caption
lengths, so the cost of every step) with random features of 40-120 frames per clip."""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import torch

from loader.captions import CaptionTargets, build_vocabulary, encode_targets
from loader.corpus import TrainingData
from loader.dataset import VideoSplit
from loader.frames import pad_frames, sample_frame_indices
from splits.corpus import shipped_dir
from splits.msvd_annotations import RELEASE_FILES, read_release, split_vids


def build_workload(config, seed: int, feature_size: int, device, clips: int | None = None) -> TrainingData:
    """TrainingData as load_training_data gives it; clips: only the first clips videos of each split."""
    rng, k, splits = np.random.default_rng(seed), config.features.n_frames, []
    for name in ("train", "val", "test"):
        references = read_release([os.path.join(shipped_dir("MSVD"), RELEASE_FILES[name])])[0]
        ids = split_vids(name)[:clips]
        features, masks, counts = np.zeros((len(ids), k, feature_size), np.float32), np.zeros((len(ids), k), bool), []
        for row in range(len(ids)):
            counts.append(int(rng.integers(40, 120 + 1)))
            clip = rng.standard_normal((counts[-1], feature_size), dtype=np.float32)   # the whole clip's
            features[row], masks[row] = pad_frames(clip[sample_frame_indices(counts[-1], k)], k)
        splits.append(VideoSplit(name=name, video_ids=ids, features=torch.from_numpy(features),
                                 frame_mask=torch.from_numpy(masks), references=[references.get(v, []) for v in ids],
                                 n_frames=counts))
    train, val, test = splits
    missing = [v for s in splits for v, refs in zip(s.video_ids, s.references) if not refs]
    if missing:
        raise ValueError(f"{len(missing)} videos have no caption (e.g. {missing[:3]})")
    vocab = build_vocabulary(train.references, config.loader)
    targets = [encode_targets(s.references, vocab, config.loader).to(device) for s in (train, val)]
    return TrainingData(train.to(device), val.to(device), test, vocab, *targets)


def subset_data(data, targets_name: str, rows: torch.Tensor):
    """data with only the given caption rows as its targets_name targets (lengths stay on the CPU)."""
    targets, rows = getattr(data, targets_name), rows.cpu()
    on_device = rows.to(targets.tokens.device)
    subset = CaptionTargets(targets.tokens[on_device], targets.lengths[rows], targets.video_index[on_device])
    return dataclasses.replace(data, **{targets_name: subset})
