"""The built-in demo corpus: synthetic clips of coloured shapes, ready to train on.

    python -m splits.Demo [--force] [--seed N] [--split_sizes 1200,100,670] [--corpus.data_root DIR]

writes <data_root>/Demo/ (features/, annotations/clips.json with every clip's specification, and
prepared/), all from the corpus's own seed, not the training seed."""
from __future__ import annotations

import json
import os
import sys
import time
from contextlib import ExitStack

import h5py
import numpy as np
from tqdm import tqdm

import config as config_module
from splits.demo.captions import describe
from splits.demo.clips import render_frames, sample_clip
from splits.demo.features import (APPEARANCE, APPEARANCE_DIM, APPEARANCE_PARTS, MOTION, MOTION_DIM,
                                  MOTION_PARTS, clip_features)
from splits.layout import CorpusPaths, corpus_paths, prepare_command, write_prepared
from utils import atomic_save_json

DEMO_CORPUS = "Demo"
BACKBONES = (APPEARANCE, MOTION)
SPLIT_SIZES = (1200, 100, 670)       # train, val, test: the sizes of MSVD's official split
ANNOTATIONS_FILE = "clips.json"
FORMAT_VERSION = 1
DEMO_SEED = 1234                     # the corpus's own: training seeds do not change it


def demo_record(paths: CorpusPaths) -> dict:
    """{"seed", "split_sizes": [train, val, test]} of the demo corpus in paths, {} if unreadable."""
    try:
        with open(os.path.join(paths.annotations, ANNOTATIONS_FILE), encoding="utf-8") as handle:
            record = json.load(handle)
        return {"seed": int(record["seed"]), "split_sizes": [int(n) for n in record["split_sizes"].values()]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def build_demo(config, force: bool = False, split_sizes=SPLIT_SIZES, seed=None, show_progress: bool = True):
    """Write the demo corpus under <config.corpus.data_root>/Demo unless it is already there (or force)."""
    paths = corpus_paths(config.corpus.data_root, DEMO_CORPUS)
    splits = [config.corpus.train_split, config.corpus.val_split, config.corpus.test_split]
    seed = DEMO_SEED if seed is None else int(seed)
    needed = [os.path.join(paths.annotations, ANNOTATIONS_FILE)]
    needed += [paths.feature_file(DEMO_CORPUS, b) for b in BACKBONES] + [paths.split_json(s) for s in splits]
    needed += [paths.split_features(s, b) for s in splits for b in BACKBONES]
    if not force and all(os.path.isfile(path) for path in needed):
        if show_progress:
            recorded = demo_record(paths)
            print(f"demo corpus already in {paths.root} (seed {recorded.get('seed')}, split sizes "
                  f"{','.join(map(str, recorded.get('split_sizes', [])))}); rebuild it with {prepare_command(config)}")
        return paths
    started = time.time()
    sizes = dict(zip(splits, (int(n) for n in split_sizes)))
    clips = []
    for split_index, (split, size) in enumerate(sizes.items()):
        for index in range(size):
            # clip i of a split depends only on (seed, split, i): smaller builds are prefixes of bigger ones
            rng = np.random.default_rng([seed, split_index, index])
            spec = sample_clip(rng, f"demo{len(clips):04d}")
            clips.append({"id": spec["id"], "split": split, "category": spec["kind"],
                          "captions": describe(spec, rng), "spec": spec})
    os.makedirs(paths.features, exist_ok=True)
    targets = {name: paths.feature_file(DEMO_CORPUS, name) for name in BACKBONES}
    with ExitStack() as stack:  # each feature file is renamed into place once complete
        files = {name: stack.enter_context(h5py.File(path + ".tmp", "w")) for name, path in targets.items()}
        for clip in tqdm(clips, desc="rendering demo clips", disable=not show_progress, unit="clip"):
            for name, values in clip_features(render_frames(clip["spec"]), clip["spec"]["feature_noise_seed"]).items():
                files[name].create_dataset(clip["id"], data=values)
    for name, path in targets.items():
        os.replace(path + ".tmp", path)
    features = {name: {"dim": dim, "parts": {part: [s.start, s.stop] for part, s in parts.items()}}
                for name, dim, parts in zip(BACKBONES, (APPEARANCE_DIM, MOTION_DIM), (APPEARANCE_PARTS, MOTION_PARTS))}
    atomic_save_json({"corpus": DEMO_CORPUS, "version": FORMAT_VERSION, "seed": seed, "split_sizes": sizes,
                      "features": features, "clips": clips}, os.path.join(paths.annotations, ANNOTATIONS_FILE))
    for split in splits:
        write_prepared(paths, DEMO_CORPUS, split, [clip for clip in clips if clip["split"] == split], list(BACKBONES),
                       fix=f"rebuild the demo corpus: {prepare_command(config)}")
    if show_progress:
        print(f"demo corpus: {len(clips)} clips ({sizes}) written to {paths.root} in {time.time() - started:.1f}s")
    return paths


def main(argv=None) -> None:
    parser = config_module.argument_parser(__doc__, prog="python -m splits.Demo")
    config_module.add_arguments(parser)
    parser.add_argument("--force", action="store_true", help="rebuild even if the corpus exists")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help="the corpus's seed (default %(default)s)")
    parser.add_argument("--split_sizes", default=",".join(map(str, SPLIT_SIZES)),
                        help="clips in train,val,test (default %(default)s)")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.split_sizes.split(",")]
    if len(sizes) != 3 or min(sizes) < 1:
        parser.error("--split_sizes needs three positive numbers: train,val,test")
    build_demo(config_module.from_args(args), force=args.force, split_sizes=sizes, seed=args.seed)


if __name__ == "__main__":
    main(sys.argv[1:])
