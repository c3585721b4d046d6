"""What a corpus reader hands over (videos per official split), and writing it with layout.py."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from splits.layout import corpus_paths, write_prepared
from utils import DataError


@dataclass
class CorpusSplits:
    name: str                         # MSVD | MSR-VTT: the folder and feature-file prefix
    videos: dict                      # official split -> [{"id", "captions", "category"}]
    notes: list = field(default_factory=list)   # what was dropped, for the summary
    feature_key: Callable | None = None         # see layout.write_prepared
    feature_fix: str = ""                       # how to make the missing features


def check_corpus_name(config, corpus: str) -> None:
    if config.corpus.name != corpus:
        raise DataError(f"this prepares {corpus}, but the config says corpus.name={config.corpus.name!r}; "
                        f"drop that --preset/--corpus.name or run python -m splits.{config.corpus.name}")


def write_splits(config, corpus: CorpusSplits) -> dict:
    """Check the features of every split and write the prepared files; prepared name -> record."""
    backbones = list(config.features.backbones)
    if not backbones:
        raise DataError("features.backbones is empty; name at least one, e.g. --features.backbones ResNet152")
    c = config.corpus
    names = {"train": c.train_split, "val": c.val_split, "test": c.test_split}  # official -> prepared
    for official in names:
        if not corpus.videos.get(official):  # write_prepared needs a video to learn the feature size
            raise DataError(f"the {official} split of {corpus.name} has no video with a caption "
                            f"({'; '.join(corpus.notes) or 'nothing dropped'}); check the annotation files")
    paths = corpus_paths(c.data_root, corpus.name)
    records = {}
    try:
        for official, name in names.items():
            records[name] = write_prepared(paths, corpus.name, name, corpus.videos[official], backbones,
                                           feature_key=corpus.feature_key, fix=corpus.feature_fix)
    except DataError:
        # rewritten splits would sit beside older ones: remove all, so the loader asks for a new preparation
        for name in names.values() if records else ():
            if os.path.exists(paths.split_json(name)):
                os.remove(paths.split_json(name))
        raise
    return records
