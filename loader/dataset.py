"""A prepared split held in memory as one (N, K, D) tensor, so that batches are plain indexing."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from loader.frames import pad_frames, sample_frame_indices
from splits.layout import corpus_paths, describe_videos, open_hdf5, prepare_command, read_prepared
from utils import DataError


@dataclass
class VideoSplit:
    name: str
    video_ids: list
    features: torch.Tensor            # (N, K, D) float32, backbones concatenated
    frame_mask: torch.Tensor          # (N, K) bool, True for real frames
    references: list                  # per video, the raw caption strings
    categories: list = field(default_factory=list)
    n_frames: list = field(default_factory=list)   # stored frames per video, before sampling
    sampling: Optional[str] = None    # frame sampling the feature extractor recorded ('every_n=5')
    dims: dict = field(default_factory=dict)       # backbone -> its feature size, in order

    def __len__(self) -> int:
        return len(self.video_ids)

    def to(self, device) -> "VideoSplit":
        self.features, self.frame_mask = self.features.to(device), self.frame_mask.to(device)
        return self

    def subset(self, indices) -> "VideoSplit":
        indices = list(indices)
        index = torch.as_tensor(indices, device=self.features.device)
        pick = lambda values: [values[i] for i in indices] if values else []
        return VideoSplit(self.name, pick(self.video_ids), self.features[index], self.frame_mask[index],
                          pick(self.references), pick(self.categories), pick(self.n_frames), self.sampling, self.dims)


def _read_backbone(path: str, video_ids: list, n_frames: list, k: int, dim: int, fix: str) -> tuple:
    with open_hdf5(path, fix) as features:
        out = np.zeros((len(video_ids), k, dim), dtype=np.float32)
        for row, (vid, count) in enumerate(zip(video_ids, n_frames)):
            try:
                dataset = features[vid]
                if dataset.dtype.kind not in "fiu":
                    raise DataError(f"video {vid} has features of type {dataset.dtype} in {path}, not "
                                    f"numbers: the feature file was not written by a feature extractor; "
                                    f"re-extract it, then run `{fix}` again")
                if dataset.ndim != 2 or dataset.shape[0] != count or dataset.shape[1] != dim:
                    raise DataError(f"video {vid} has features of shape {dataset.shape} in {path} but ({count}, {dim}) "
                                    f"when the split was prepared: the feature file changed since; run `{fix}` again")
                frames = np.asarray(dataset[sample_frame_indices(count, k)], dtype=np.float32)
            except (KeyError, OSError) as error:
                raise DataError(f"cannot read video {vid} through {path} ({error}); the feature "
                                f"file it links to moved or changed: run `{fix}` again") from None
            out[row, :len(frames)] = frames
        sampling = _recorded_sampling(features[video_ids[0]]) if video_ids else None
    not_finite = [vid for vid, frames in zip(video_ids, out) if not np.isfinite(frames).all()]
    if not_finite:
        raise DataError(f"NaN or infinite features through {path} for {describe_videos(not_finite)}: the feature "
                        f"file changed since the split was prepared; re-extract them, then run `{fix}` again")
    return out, sampling


def _recorded_sampling(dataset) -> Optional[str]:
    value = dataset.file.attrs.get("sampling")     # the linked file's, not the link file's
    return value.decode() if isinstance(value, bytes) else value


def recorded_sampling(config, split: str) -> Optional[str]:
    """The frame sampling of a prepared split's first backbone, without loading its features."""
    paths, fix = corpus_paths(config.corpus.data_root, config.corpus.name), prepare_command(config)
    record = read_prepared(paths, split, fix)
    with open_hdf5(paths.split_features(split, config.features.backbones[0]), fix) as features:
        try:
            return _recorded_sampling(features[record["videos"][0]["id"]])
        except (KeyError, OSError, IndexError):
            return None


def check_captions(videos: list, path: str, split: str, scored: bool, fix: str) -> None:
    """Captions are strings, and every video of a scored split has a non-empty one."""
    wrong = next(((v["id"], c) for v in videos for c in v["captions"] if not isinstance(c, str)), None)
    if wrong:
        raise DataError(f"video {wrong[0]} in {path} has a caption that is not a string "
                        f"({wrong[1]!r}); prepare the corpus again: {fix}")
    silent = [v["id"] for v in videos if not any(c.strip() for c in v["captions"])]
    if silent and scored:
        raise DataError(f"{describe_videos(silent)} of the {split} split in {path} have no non-empty "
                        f"reference caption, so they cannot be scored; prepare the corpus again: {fix}")
    if silent:
        print(f"note: {describe_videos(silent)} of the {split} split in {path} have no non-empty "
              "caption: they are left out of training", file=sys.stderr)


def check_memory(split: str, count: int, k: int, dim: int, longest: int) -> None:
    needed = count * k * dim * 4
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return
    if needed > total:
        raise DataError(f"features.n_frames {k} needs {needed / 2 ** 30:.1f} GiB for the {count} videos "
                        f"of the {split} split (D={dim}), more than this machine's {total / 2 ** 30:.1f} GiB; "
                        f"its longest video has {longest} frames (K above that only adds padding): "
                        "lower --features.n_frames (the paper's K is 28)")


def load_split(config, split: str) -> VideoSplit:
    paths, fix = corpus_paths(config.corpus.data_root, config.corpus.name), prepare_command(config)
    record = read_prepared(paths, split, fix)
    missing = [b for b in config.features.backbones if b not in record["backbones"]]
    if missing:
        raise DataError(f"{paths.split_json(split)} was prepared with backbones "
                        f"{sorted(record['backbones'])}, but the config asks for {missing}; run `{fix}`")
    videos = record["videos"]
    if not videos:
        raise DataError(f"{paths.split_json(split)} holds no video; run `{fix}` again")
    check_captions(videos, paths.split_json(split), split, split != config.corpus.train_split, fix)
    ids, counts, k = [v["id"] for v in videos], [v["n_frames"] for v in videos], config.features.n_frames
    dims = {b: record["backbones"][b]["dim"] for b in config.features.backbones}
    check_memory(split, len(ids), k, sum(dims.values()), max(counts))
    streams, samplings = zip(*(_read_backbone(paths.split_features(split, b), ids, counts, k, dims[b], fix)
                               for b in config.features.backbones))
    mask = np.stack([pad_frames(np.zeros((min(c, k), 1), np.float32), k)[1] for c in counts])
    return VideoSplit(split, ids, torch.from_numpy(np.concatenate(streams, axis=2)), torch.from_numpy(mask),
                      [list(v["captions"]) for v in videos], [v.get("category") for v in videos], counts,
                      samplings[0], dims)
