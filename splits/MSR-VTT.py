"""Prepare MSR-VTT: python -m splits.MSR-VTT

Reads the official 2016 release, train_val_videodatainfo.json and test_videodatainfo.json (shipped
gzip-compressed), whose videos carry their split ('train' | 'validate' | 'test', i.e. video0-6512 /
6513-7009 / 7010-9999) and category (0-19, see category.txt). Features are keyed by videoN.
"""
from __future__ import annotations

import sys
from typing import Optional

from splits import annotations, cli
from splits.corpus import CorpusSplits, check_corpus_name, write_splits
from utils import DataError

CORPUS = "MSR-VTT"
INFO_FILES = ("train_val_videodatainfo.json", "test_videodatainfo.json")
OFFICIAL_SPLIT = {"train": "train", "validate": "val", "test": "test"}  # file's name -> ours
LIST_FILES = {"train": "train.list", "val": "valid.list", "test": "test.list"}
HOW_TO_GET = ("the repository ships it as a .json.gz in data/MSR-VTT/annotations/ (restore it "
              "with `git checkout -- data/MSR-VTT/annotations`), or pass --annotations DIR")
FEATURE_FIX = (f"extract features into <data_root>/{CORPUS}/features/{CORPUS}_<backbone>.hdf5, "
               "one dataset (n_frames, D) per video named videoN (see README)")


def _entries(data, key: str, path: str) -> list:
    entries = data.get(key) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise DataError(f"{path} has no '{key}' list; it is not an MSR-VTT videodatainfo file")
    return entries


def _read_videos(data, path: str, videos: dict) -> None:
    """Add {video_id: {"split", "category"}} from one file to videos."""
    for index, video in enumerate(_entries(data, "videos", path)):
        try:
            vid, split, category = str(video["video_id"]), video["split"], int(video["category"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{path}: videos[{index}] = {str(video)[:120]} needs a video_id, a split and "
                            "an integer category; restore the official file") from None
        if split not in OFFICIAL_SPLIT:
            raise DataError(f"{path}: video {vid} has split {split!r}; expected one of "
                            f"{sorted(OFFICIAL_SPLIT)}")
        if vid in videos:
            raise DataError(f"{path}: video {vid} is listed twice; restore the official files")
        videos[vid] = {"split": OFFICIAL_SPLIT[split], "category": category}


def _read_captions(data, path: str, videos: dict, captions: dict) -> int:
    """Append every caption of one file to captions[video_id]; the number of empty ones dropped."""
    empty = 0
    for index, sentence in enumerate(_entries(data, "sentences", path)):
        try:
            vid, caption = str(sentence["video_id"]), sentence["caption"]
        except (KeyError, TypeError):
            raise DataError(f"{path}: sentences[{index}] = {str(sentence)[:120]} needs a video_id and a "
                            "caption; restore the official file") from None
        if vid not in videos:
            raise DataError(f"{path}: sentences[{index}] describes video {vid}, which neither "
                            f"{' nor '.join(INFO_FILES)} lists; restore the official files")
        if caption is not None and not isinstance(caption, str):
            raise DataError(f"{path}: sentences[{index}] of video {vid} has caption {caption!r}, not text")
        caption = (caption or "").strip()
        if caption:
            captions.setdefault(vid, []).append(caption)
        else:
            empty += 1
    return empty


def _check_split_lists(dirs: list, videos: dict) -> None:
    for split, name in LIST_FILES.items():
        path = annotations.find(dirs, name)
        if path is not None:  # optional: a cross-check, not a source
            expected = {vid for vid, video in videos.items() if video["split"] == split}
            annotations.check_split_list(path, expected, set(annotations.read_id_list(path)), split)


def read_corpus(config, annotations_dir: Optional[str] = None) -> CorpusSplits:
    check_corpus_name(config, CORPUS)
    dirs = annotations.search_dirs(config.corpus.data_root, CORPUS, annotations_dir)
    files = [annotations.require(dirs, name, HOW_TO_GET) for name in INFO_FILES]
    contents = [annotations.read_json(path) for path in files]
    videos, captions, empty = {}, {}, 0
    for data, path in zip(contents, files):  # every video first: a sentence may name either file's
        _read_videos(data, path, videos)
    for data, path in zip(contents, files):
        empty += _read_captions(data, path, videos, captions)
    _check_split_lists(dirs, videos)

    splits = {split: [] for split in OFFICIAL_SPLIT.values()}
    for vid, video in videos.items():
        if vid in captions:
            splits[video["split"]].append({"id": vid, "captions": captions[vid],
                                           "category": video["category"]})
    notes = [f"{empty} empty captions dropped"] if empty else []
    uncaptioned = len(videos) - len(captions)
    if uncaptioned:
        notes.append(f"{uncaptioned} videos without any caption left out")
    return CorpusSplits(CORPUS, splits, notes, None, FEATURE_FIX)


def prepare(config, annotations_dir: Optional[str] = None) -> dict:
    """Read the annotations, check the features, write the prepared files: split -> record."""
    return write_splits(config, read_corpus(config, annotations_dir))


def _add_options(parser) -> None:
    parser.add_argument("--annotations", default=None, metavar="DIR",
                        help="read the videodatainfo JSON files (.json or .json.gz) and *.list from "
                             "DIR (default: <data_root>/MSR-VTT/annotations, then the shipped copy)")


def main(argv=None) -> int:
    return cli.run(CORPUS, __doc__, _add_options,
                   lambda config, args: read_corpus(config, args.annotations), argv)


if __name__ == "__main__":
    sys.exit(main())
