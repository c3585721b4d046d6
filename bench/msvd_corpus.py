"""An MSVD-shaped corpus on disk with random features, prepared by the real `python -m splits.MSVD`.

    python -m bench.msvd_corpus --out /tmp/msvd_root              # 1970 clips, 2048-d (ResNet-152's)
    python -m bench.msvd_corpus --out /tmp/msvd_root --videos 12 --feature_size 64   # a smoke test

Writes <out>/MSVD/features/MSVD_ResNet152.hdf5 the way real feature files come: one (n_frames,
D) float32 dataset per clip, 40 to 120 frames, keyed by the YouTube clip id
(3qqEKTPxLNs_1_15, as hobincar/pytorch-video-feature-extractor writes them; --keys vid for
vidN), then runs splits.MSVD on it with --corpus.data_root <out>. The captions are the shipped
English release (data/MSVD/annotations), so `python train.py --preset MSVD --corpus.data_root
<out>` trains on MSVD's real vocabulary and caption lengths: the GPU check (bench/gpu_check.sh)
runs train.py and run.py on it. --videos N keeps the first N clips of each split: the shipped
annotations filtered to them are written into <out>/MSVD/annotations, where splits.MSVD looks
first. The features are noise: scores on this corpus mean nothing.
"""
from __future__ import annotations

import os
import sys
import time

import h5py
import numpy as np

import config as config_module
from splits import MSVD
from splits.msvd_annotations import MAPPING_FILE, RELEASE_FILES, SPLIT_RANGES, read_mapping
from splits.layout import corpus_paths

SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "data", "MSVD", "annotations")
BACKBONE = "ResNet152"


def chosen_vids(videos) -> list:
    """vidN of every clip of the official split, or of the first `videos` of each split."""
    return [f"vid{n}" for first, last in SPLIT_RANGES.values()
            for n in range(first, (last if videos is None else min(last, first + videos - 1)) + 1)]


def write_features(path: str, keys: list, feature_size: int, min_frames: int, max_frames: int,
                   seed: int) -> int:
    """One random (n, feature_size) float32 dataset per key; returns the bytes of features."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    total = 0
    with h5py.File(path, "w") as handle:
        for key in keys:
            frames = int(rng.integers(min_frames, max_frames + 1))
            handle.create_dataset(key, data=rng.standard_normal((frames, feature_size), dtype=np.float32))
            total += frames * feature_size * 4
    return total


def write_reduced_annotations(directory: str, vids: set) -> None:
    """The shipped mapping, and the shipped captions of the chosen clips only."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(SHIPPED, MAPPING_FILE), encoding="utf-8") as source, \
            open(os.path.join(directory, MAPPING_FILE), "w", encoding="utf-8") as target:
        target.write(source.read())
    for name in RELEASE_FILES.values():
        with open(os.path.join(SHIPPED, name), encoding="utf-8") as source, \
                open(os.path.join(directory, name), "w", encoding="utf-8") as target:
            target.writelines(line for line in source if line.partition("\t")[0] in vids)


def build(out: str, videos=None, feature_size: int = 2048, min_frames: int = 40, max_frames: int = 120,
          keys: str = "clip", seed: int = 1234) -> int:
    """Write the features (and, for --videos, the filtered annotations), then splits.MSVD."""
    started = time.perf_counter()
    vids = chosen_vids(videos)
    paths = corpus_paths(out, "MSVD")
    if videos is not None:
        write_reduced_annotations(paths.annotations, set(vids))
    if keys == "clip":
        vid_to_clip = {vid: clip for clip, vid in read_mapping(os.path.join(SHIPPED, MAPPING_FILE)).items()}
        names = [vid_to_clip[vid] for vid in vids]
    else:
        names = vids
    size = write_features(paths.feature_file("MSVD", BACKBONE), names, feature_size, min_frames,
                          max_frames, seed)
    print(f"{paths.feature_file('MSVD', BACKBONE)}: {len(names)} clips, {feature_size}-d, "
          f"{min_frames}-{max_frames} frames, {size / 2 ** 30:.2f} GiB, keyed by {keys} id, "
          f"in {time.perf_counter() - started:.1f} s", flush=True)
    return MSVD.main(["--corpus.data_root", out, "--features.backbones", BACKBONE])


def main(argv=None) -> int:
    parser = config_module.argument_parser(__doc__, prog="python -m bench.msvd_corpus")
    parser.add_argument("--out", required=True, help="the data root to write (<out>/MSVD/...)")
    parser.add_argument("--videos", type=int, default=None,
                        help="only the first N clips of each split (default: all 1970)")
    parser.add_argument("--feature_size", type=int, default=2048, help="default 2048, ResNet-152's")
    parser.add_argument("--min_frames", type=int, default=40)
    parser.add_argument("--max_frames", type=int, default=120)
    parser.add_argument("--keys", choices=["clip", "vid"], default="clip",
                        help="name the datasets by YouTube clip id (default) or by vidN")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)
    for name in ("videos", "feature_size", "min_frames"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.max_frames < args.min_frames:
        parser.error("--max_frames must be at least --min_frames")
    return build(args.out, args.videos, args.feature_size, args.min_frames, args.max_frames,
                 args.keys, args.seed)


if __name__ == "__main__":
    sys.exit(main())
