"""The data layout that splits/ writes and loader/ reads (docs/data.md).

    <data_root>/<corpus>/annotations/   captions and split lists
    <data_root>/<corpus>/features/      <corpus>_<backbone>.hdf5, one (n_frames, D) dataset per video
    <data_root>/<corpus>/prepared/      <split>.json and <split>_<backbone>.hdf5 (links into features/)
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from typing import Callable, Optional

import h5py
import numpy as np

from config import PRESETS, CorpusConfig
from utils import DataError, atomic_save_json, read_json


@dataclass
class CorpusPaths:
    root: str

    annotations = property(lambda self: os.path.join(self.root, "annotations"))
    features = property(lambda self: os.path.join(self.root, "features"))
    prepared = property(lambda self: os.path.join(self.root, "prepared"))

    def feature_file(self, corpus: str, backbone: str) -> str:
        return os.path.join(self.features, f"{corpus}_{backbone}.hdf5")

    def split_json(self, split: str) -> str:
        return os.path.join(self.prepared, f"{split}.json")

    def split_features(self, split: str, backbone: str) -> str:
        return os.path.join(self.prepared, f"{split}_{backbone}.hdf5")


def corpus_paths(data_root: str, corpus: str) -> CorpusPaths:
    return CorpusPaths(os.path.join(data_root, corpus))


def open_hdf5(path: str, fix: str) -> h5py.File:
    if not os.path.isfile(path):
        raise DataError(f"feature file {path} does not exist; {fix}")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise DataError(f"feature file {path} is not a readable HDF5 file ({error}); re-create it ({fix})") from None


def write_prepared(paths: CorpusPaths, corpus: str, split: str, videos: list, backbones: list,
                   feature_key: Optional[Callable] = None, fix: str = "") -> dict:
    """Check the features of one split and write <split>.json and <split>_<backbone>.hdf5.
    feature_key(file, video_id): a video's dataset name in a feature file (default: its id), or None."""
    feature_key = feature_key or (lambda f, vid: vid if vid in f else None)
    fix = fix or f"extract features into {paths.features}/{corpus}_<backbone>.hdf5 (see README)"
    os.makedirs(paths.prepared, exist_ok=True)
    frames, meta = {}, {}
    for backbone in backbones:
        source = os.path.abspath(paths.feature_file(corpus, backbone))
        with open_hdf5(source, fix) as features:
            keys, dim = {video["id"]: feature_key(features, video["id"]) for video in videos}, None
            missing = [vid for vid, key in keys.items() if key is None]
            if missing:
                named = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
                raise DataError(f"{len(missing)} of the {len(videos)} videos of the {split} split are "
                                f"missing from {source}: {named}; {fix}")
            not_finite = []
            for vid, key in keys.items():
                shape = (dataset := features[key]).shape
                if len(shape) != 2 or shape[0] == 0:
                    raise DataError(f"video {vid} in {source} has shape {shape}; "
                                    "expected (n_frames, D) with n_frames > 0")
                if not np.isfinite(dataset[()]).all():
                    not_finite.append(vid)
                if dim is not None and shape[1] != dim:
                    raise DataError(f"video {vid} in {source} has feature size {shape[1]}, "
                                    f"other videos {dim}; every video of a backbone needs the same D")
                dim = shape[1]
                previous = frames.setdefault(vid, (backbone, shape[0]))
                if previous[1] != shape[0]:
                    raise DataError(f"video {vid} has {previous[1]} frames in backbone {previous[0]} but "
                                    f"{shape[0]} in {backbone} ({source}); backbones are concatenated frame by "
                                    "frame, so re-extract them with the same frame sampling")
            if not_finite:
                raise DataError(f"NaN or infinite features in {source} for {describe_videos(not_finite)} of the "
                                f"{split} split: a model trained on them learns nothing but NaN; re-extract them "
                                "(python -m extraction refuses such features) or leave these videos out")
        split_file = paths.split_features(split, backbone)
        # relative to the link file's folder, so the corpus folder can move as a whole
        target = os.path.relpath(source, os.path.dirname(os.path.abspath(split_file)))
        with h5py.File(split_file + ".tmp", "w") as links:
            for vid, key in keys.items():
                links[vid] = h5py.ExternalLink(target, key)
        os.replace(split_file + ".tmp", split_file)
        meta[backbone] = {"file": os.path.basename(split_file), "source": source, "dim": int(dim)}
    record = {"corpus": corpus, "split": split, "backbones": meta, "videos": [
        {"id": v["id"], "captions": list(v["captions"]), "category": v.get("category"),
         "n_frames": int(frames[v["id"]][1])} for v in videos]}
    atomic_save_json(record, paths.split_json(split))
    return record


def describe_videos(video_ids: list, shown: int = 5) -> str:
    """'3 videos (vid1, vid2, vid3)', the first few named."""
    named = ", ".join(video_ids[:shown]) + (", ..." if len(video_ids) > shown else "")
    return f"{len(video_ids)} video{'s' if len(video_ids) != 1 else ''} ({named})"


PREPARED_CORPORA = ("Demo", "MSR-VTT", "MSVD")      # the splits.<name> scripts


def prepare_command(config) -> str:
    """The command that prepares config's corpus as config asks, also over damaged files."""
    corpus, backbones = config.corpus.name, list(config.features.backbones)
    if corpus not in PREPARED_CORPORA:
        return (f"corpus.name {corpus!r} is none this project prepares ({', '.join(sorted(PREPARED_CORPORA))}); "
                f"name one of them, or write {os.path.join(config.corpus.data_root, corpus, 'prepared')} "
                "as docs/data.md describes")
    words = ["python", "-m", f"splits.{corpus}"]
    if corpus != "Demo" and backbones != PRESETS.get(corpus, {}).get("features.backbones"):
        words += ["--features.backbones", ",".join(backbones)]
    defaults = CorpusConfig()
    for field in ("data_root", "train_split", "val_split", "test_split"):
        if getattr(config.corpus, field) != getattr(defaults, field):
            words += [f"--corpus.{field}", getattr(config.corpus, field)]
    if corpus == "Demo":               # as it was built, and --force: else a built demo is left as it is
        from splits.Demo import demo_record
        recorded = demo_record(corpus_paths(config.corpus.data_root, corpus))
        if recorded:
            words += ["--seed", str(recorded["seed"]), "--split_sizes", ",".join(map(str, recorded["split_sizes"]))]
        words.append("--force")
    return " ".join(shlex.quote(word) for word in words)


def read_prepared(paths: CorpusPaths, split: str, prepare_hint: str) -> dict:
    path = paths.split_json(split)
    if not os.path.isfile(path):
        raise DataError(f"{path} does not exist; prepare the corpus first: {prepare_hint}")
    record = read_json(path, f"prepare the corpus again: {prepare_hint}", "is damaged", error_type=True)
    try:
        well_formed = (isinstance(record["corpus"], str) and isinstance(record["backbones"], dict)
                       and all(isinstance(m["dim"], int) and m["dim"] > 0 for m in record["backbones"].values())
                       and all(isinstance(v["id"], str) and isinstance(v["captions"], list)
                               and isinstance(v["n_frames"], int) and v["n_frames"] > 0 for v in record["videos"]))
    except (KeyError, TypeError):
        well_formed = False
    if not well_formed:
        raise DataError(f"{path} is not a prepared split of this project (its fields are not "
                        f"those splits/layout.py writes); prepare the corpus again: {prepare_hint}")
    return record
