"""Prepare MSVD (Youtube2Text): python -m splits.MSVD [--csv "MSR Video Description Corpus.csv"]

Official split vid1-1200 train, vid1201-1300 val, vid1301-1970 test. Videos are called vidN in
the prepared files; a feature file may name them vidN or by their YouTube clip id
(3qqEKTPxLNs_1_15), both occur in the wild.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

from splits import annotations, cli
from splits.corpus import CorpusSplits, check_corpus_name, write_splits
from splits.msvd_annotations import (HOW_TO_GET, LIST_FILES, MAPPING_FILE, RELEASE_FILES,
                                     SPLIT_RANGES, read_csv, read_mapping, read_release,
                                     split_vids)
from utils import DataError

CORPUS = "MSVD"
FEATURE_FIX = (f"extract features into <data_root>/{CORPUS}/features/{CORPUS}_<backbone>.hdf5, one "
               "dataset (n_frames, D) per video named vidN or <YouTubeID>_<start>_<end> (see README)")


def _check_split_lists(dirs: list, mapping: dict) -> None:
    """The shipped .list files (YouTube clip ids) must give exactly the official vid ranges."""
    for split, name in LIST_FILES.items():
        path = annotations.find(dirs, name)
        if path is None:  # optional: a cross-check, not a source
            continue
        listed = set()
        for clip in annotations.read_id_list(path):
            if clip not in mapping:
                raise DataError(f"split list {path} names clip {clip}, which is not in {MAPPING_FILE}; "
                                "restore the shipped list or delete it")
            listed.add(mapping[clip])
        annotations.check_split_list(path, set(split_vids(split)), listed, split)


def _feature_key(vid_to_clip: dict):
    def key(features, vid: str) -> Optional[str]:
        if vid in features:
            return vid
        clip = vid_to_clip.get(vid)
        return clip if clip is not None and clip in features else None
    return key


def read_corpus(config, annotations_dir: Optional[str] = None, csv: Optional[str] = None) -> CorpusSplits:
    """Captions of every official split, from the English release (default) or the raw CSV."""
    check_corpus_name(config, CORPUS)
    dirs = annotations.search_dirs(config.corpus.data_root, CORPUS, annotations_dir)
    mapping = read_mapping(annotations.require(dirs, MAPPING_FILE, HOW_TO_GET))
    if csv is not None:
        if not os.path.isfile(csv):
            raise DataError(f"MSVD corpus CSV {csv} does not exist; download 'MSR Video Description "
                            "Corpus.csv' from Microsoft (https://www.microsoft.com/en-us/download/"
                            "details.aspx?id=52422) or leave out --csv to use the shipped English release")
        captions, notes = read_csv(csv, mapping)
    else:
        captions, notes = read_release([annotations.require(dirs, f, HOW_TO_GET)
                                        for f in RELEASE_FILES.values()])
    _check_split_lists(dirs, mapping)

    videos, uncaptioned = {}, {}
    for split in SPLIT_RANGES:
        videos[split] = [{"id": vid, "captions": captions[vid], "category": None}
                         for vid in split_vids(split) if vid in captions]
        uncaptioned[split] = len(split_vids(split)) - len(videos[split])
    if any(uncaptioned.values()):
        # the shipped English release captions every official video: a shortfall means a
        # truncated file or a subset made on purpose, so it is said, split by split
        notes.append(f"{sum(uncaptioned.values())} videos of the official split have no caption in the "
                     "annotations and are left out ("
                     + ", ".join(f"{split} {n}" for split, n in uncaptioned.items() if n)
                     + "; the shipped English release captions all 1970)")
    vid_to_clip = {vid: clip for clip, vid in mapping.items()}
    return CorpusSplits(CORPUS, videos, notes, _feature_key(vid_to_clip), FEATURE_FIX)


def prepare(config, annotations_dir: Optional[str] = None, csv: Optional[str] = None) -> dict:
    """Read the annotations, check the features, write the prepared files: split -> record."""
    return write_splits(config, read_corpus(config, annotations_dir, csv))


def _add_options(parser) -> None:
    parser.add_argument("--csv", default=None, metavar="PATH",
                        help="read captions from Microsoft's 'MSR Video Description Corpus.csv' "
                             "(English rows) instead of the shipped English release")
    parser.add_argument("--annotations", default=None, metavar="DIR",
                        help="read youtube_mapping.txt, sents_*_lc_nopunc.txt and *.list from DIR "
                             "(default: <data_root>/MSVD/annotations, then the shipped copy)")


def main(argv=None) -> int:
    return cli.run(CORPUS, __doc__, _add_options,
                   lambda config, args: read_corpus(config, args.annotations, args.csv), argv)


if __name__ == "__main__":
    sys.exit(main())
