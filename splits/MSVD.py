"""Prepare MSVD (Youtube2Text): python -m splits.MSVD [--csv "MSR Video Description Corpus.csv"]

Official split vid1-1200 train, vid1201-1300 val, vid1301-1970 test. A feature file may name a video
vidN or by its YouTube clip id (3qqEKTPxLNs_1_15): both occur in the wild."""
from __future__ import annotations

import os
import sys

from splits.corpus import CorpusSplits, check_split_lists, require, run, search_dirs, write_splits
from splits.msvd_annotations import (HOW_TO_GET, MAPPING_FILE, RELEASE_FILES, SPLIT_RANGES, read_csv,
                                     read_mapping, read_release, split_vids)
from utils import DataError

CORPUS = "MSVD"
FEATURE_FIX = (f"extract features into <data_root>/{CORPUS}/features/{CORPUS}_<backbone>.hdf5, one "
               "dataset (n_frames, D) per video named vidN or <YouTubeID>_<start>_<end> (see README)")


def read_corpus(config, annotations_dir: str | None = None, csv: str | None = None) -> CorpusSplits:
    """Captions of every official split, from the English release (default) or the raw CSV."""
    dirs = search_dirs(config, CORPUS, annotations_dir)
    mapping = read_mapping(require(dirs, MAPPING_FILE, HOW_TO_GET))
    if csv is not None:
        if not os.path.isfile(csv):
            raise DataError(f"MSVD corpus CSV {csv} does not exist; download 'MSR Video Description "
                            "Corpus.csv' from Microsoft (https://www.microsoft.com/en-us/download/"
                            "details.aspx?id=52422) or leave out --csv to use the shipped English release")
        captions, notes = read_csv(csv, mapping)
    else:
        captions, notes = read_release([require(dirs, f, HOW_TO_GET) for f in RELEASE_FILES.values()])

    def listed(path, clip):  # the shipped .list files name YouTube clip ids
        if clip not in mapping:
            raise DataError(f"split list {path} names clip {clip}, which is not in {MAPPING_FILE}; "
                            "restore the shipped list or delete it")
        return mapping[clip]
    check_split_lists(dirs, {s: set(split_vids(s)) for s in SPLIT_RANGES}, listed)
    videos = {split: [{"id": vid, "captions": captions[vid], "category": None}
                      for vid in split_vids(split) if vid in captions] for split in SPLIT_RANGES}
    uncaptioned = {split: len(split_vids(split)) - len(videos[split]) for split in SPLIT_RANGES}
    if any(uncaptioned.values()):  # the shipped release captions all: a truncated file or a subset
        by_split = ", ".join(f"{split} {n}" for split, n in uncaptioned.items() if n)
        notes.append(f"{sum(uncaptioned.values())} videos of the official split have no caption in the annotations "
                     f"and are left out ({by_split}; the shipped English release captions all 1970)")
    vid_to_clip = {vid: clip for clip, vid in mapping.items()}

    def feature_key(features, vid: str) -> str | None:
        return next((name for name in (vid, vid_to_clip.get(vid, vid)) if name in features), None)
    return CorpusSplits(CORPUS, videos, notes, feature_key, FEATURE_FIX)


def prepare(config, annotations_dir: str | None = None, csv: str | None = None) -> dict:
    return write_splits(config, read_corpus(config, annotations_dir, csv))


def main(argv=None) -> int:
    return run(CORPUS, __doc__, {
        "--csv": ("PATH", "read captions from Microsoft's 'MSR Video Description Corpus.csv' (English rows) instead "
                          "of the shipped English release"),
        "--annotations": ("DIR", "read youtube_mapping.txt, sents_*_lc_nopunc.txt and *.list from DIR (default: "
                                 "<data_root>/MSVD/annotations, then the shipped copy)")},
        lambda config, args: read_corpus(config, args.annotations, args.csv), argv)


if __name__ == "__main__":
    sys.exit(main())
