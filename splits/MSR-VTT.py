"""Prepare MSR-VTT: python -m splits.MSR-VTT

Reads the official 2016 release (train_val_ and test_videodatainfo.json, shipped gzip-compressed): each
video's split (train video0-6512, validate -7009, test -9999) and category (0-19, see category.txt)."""
from __future__ import annotations

import sys

from splits.corpus import CorpusSplits, check_split_lists, read_json, require, run, search_dirs, write_splits
from utils import DataError

CORPUS = "MSR-VTT"
INFO_FILES = ("train_val_videodatainfo.json", "test_videodatainfo.json")
OFFICIAL_SPLIT = {"train": "train", "validate": "val", "test": "test"}  # file's name -> ours
HOW_TO_GET = ("the repository ships it as a .json.gz in data/MSR-VTT/annotations/ (restore it "
              "with `git checkout -- data/MSR-VTT/annotations`), or pass --annotations DIR")
FEATURE_FIX = (f"extract features into <data_root>/{CORPUS}/features/{CORPUS}_<backbone>.hdf5, "
               "one dataset (n_frames, D) per video named videoN (see README)")


def _entries(data, key: str, path: str, needs: tuple, fields: str):
    """(index, [video id, *needs]) of every entry of data[key]; a category must be an integer."""
    entries = data.get(key) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise DataError(f"{path} has no '{key}' list; it is not an MSR-VTT videodatainfo file")
    for index, entry in enumerate(entries):
        try:
            values = [str(entry["video_id"])] + [int(entry[k]) if k == "category" else entry[k] for k in needs]
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{path}: {key}[{index}] = {str(entry)[:120]} needs {fields}; "
                            "restore the official file") from None
        yield index, values


def read_corpus(config, annotations_dir: str | None = None) -> CorpusSplits:
    dirs = search_dirs(config, CORPUS, annotations_dir)
    files = [require(dirs, name, HOW_TO_GET) for name in INFO_FILES]  # all found before any is read
    contents = [(read_json(path), path) for path in files]
    videos, captions, empty = {}, {}, 0
    for data, path in contents:  # every video first: a sentence may name either file's
        for _, (vid, split, category) in _entries(data, "videos", path, ("split", "category"),
                                                  "a video_id, a split and an integer category"):
            if split not in OFFICIAL_SPLIT:
                raise DataError(f"{path}: video {vid} has split {split!r}; expected one of {sorted(OFFICIAL_SPLIT)}")
            if vid in videos:
                raise DataError(f"{path}: video {vid} is listed twice; restore the official files")
            videos[vid] = {"split": OFFICIAL_SPLIT[split], "category": category}
    for data, path in contents:
        for index, (vid, caption) in _entries(data, "sentences", path, ("caption",), "a video_id and a caption"):
            if vid not in videos:
                raise DataError(f"{path}: sentences[{index}] describes video {vid}, which neither "
                                f"{' nor '.join(INFO_FILES)} lists; restore the official files")
            if caption is not None and not isinstance(caption, str):
                raise DataError(f"{path}: sentences[{index}] of video {vid} has caption {caption!r}, not text")
            if (caption or "").strip():
                captions.setdefault(vid, []).append(caption.strip())
            else:
                empty += 1
    check_split_lists(dirs, {split: {vid for vid, v in videos.items() if v["split"] == split}
                                         for split in OFFICIAL_SPLIT.values()})
    splits = {split: [{"id": vid, "captions": captions[vid], "category": v["category"]} for vid, v in videos.items()
                      if vid in captions and v["split"] == split] for split in OFFICIAL_SPLIT.values()}
    notes = [f"{empty} empty captions dropped", f"{len(videos) - len(captions)} videos without any caption left out"]
    return CorpusSplits(CORPUS, splits, [note for note in notes if not note.startswith("0 ")], None, FEATURE_FIX)


def prepare(config, annotations_dir: str | None = None) -> dict:
    return write_splits(config, read_corpus(config, annotations_dir))


def main(argv=None) -> int:
    help = ("read the videodatainfo JSON files (.json or .json.gz) and *.list from DIR "
            "(default: <data_root>/MSR-VTT/annotations, then the shipped copy)")
    return run(CORPUS, __doc__, {"--annotations": ("DIR", help)},
                   lambda config, args: read_corpus(config, args.annotations), argv)


if __name__ == "__main__":
    sys.exit(main())
