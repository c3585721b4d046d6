"""What the corpus scripts share: annotation files (``name.gz`` read as ``name``, looked up in ``--annotations DIR``
alone when given, else in ``<data_root>/<corpus>/annotations``, then in the shipped ``data/<corpus>/annotations``),
the videos per official split a reader hands over, writing them with layout.py, and the command line."""
from __future__ import annotations

import gzip
import json
import os
import zlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

import config as config_module
from splits.layout import corpus_paths, write_prepared
from utils import DataError, exit_status

LIST_FILES = {"train": "train.list", "val": "valid.list", "test": "test.list"}  # optional cross-checks


def shipped_dir(corpus: str) -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", corpus, "annotations")


def search_dirs(config, corpus: str, override: str | None) -> list:
    """The annotation folders to look in, once the config is known to name this corpus."""
    if config.corpus.name != corpus:
        raise DataError(f"this prepares {corpus}, but the config says corpus.name={config.corpus.name!r}; "
                        f"drop that --preset/--corpus.name or run python -m splits.{config.corpus.name}")
    if override:
        if not os.path.isdir(override):
            raise DataError(f"annotation directory {override} does not exist; "
                            f"pass --annotations with a folder that holds the {corpus} annotation files")
        return [override]
    candidates = (os.path.join(config.corpus.data_root, corpus, "annotations"), shipped_dir(corpus))
    dirs = [d for d in candidates if os.path.isdir(d)]
    return dirs[:1] if len(dirs) == 2 and os.path.abspath(dirs[0]) == os.path.abspath(dirs[1]) else dirs


def find(dirs: list, name: str) -> str | None:
    """The first of dirs/name, dirs/name.gz that exists, or None."""
    return next((p for d in dirs for n in (name, name + ".gz") if os.path.isfile(p := os.path.join(d, n))), None)


def require(dirs: list, name: str, how_to_get: str) -> str:
    if (path := find(dirs, name)) is None:
        raise DataError(f"annotation file {name} (or {name}.gz) not found in "
                        f"{', '.join(dirs) or '(no annotation folder found)'}; {how_to_get}")
    return path


def read_text(path: str) -> str:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            return handle.read()
    except UnicodeDecodeError as error:
        raise DataError(f"annotation file {path} is not UTF-8 text ({error}); save it as UTF-8") from None
    except (OSError, EOFError, zlib.error) as error:  # truncated or corrupt .gz, unreadable file
        raise DataError(f"annotation file {path} cannot be read ({error}); download or copy it again") from None


def lines(path: str) -> Iterator[tuple]:
    """(line number, line without its end-of-line) for every line of a text file that is not blank."""
    # Split on \n only: str.splitlines() would also break captions at exotic Unicode separators.
    return ((n, line.rstrip("\r")) for n, line in enumerate(read_text(path).split("\n"), 1) if line.strip())


def read_json(path: str):
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise DataError(f"annotation file {path} is not valid JSON (line {error.lineno}, "
                        f"column {error.colno}: {error.msg}); download or copy it again") from None


def check_split_lists(dirs: list, expected: dict, to_video=lambda path, i: i) -> None:
    """Each .list file found (a JSON list of ids, hobincar/SA-LSTM's) must give its official split."""
    for split, name in LIST_FILES.items():
        if (path := find(dirs, name)) is None:
            continue
        ids = read_json(path)
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise DataError(f"split list {path} should be a JSON list of video id strings")
        actual, wanted = {to_video(path, i) for i in ids}, expected[split]
        if actual != wanted:
            raise DataError(f"split list {path} disagrees with the official {split} split: "
                            f"{len(wanted - actual)} videos missing (e.g. {sorted(wanted - actual)[:3]}), "
                            f"{len(actual - wanted)} unexpected (e.g. {sorted(actual - wanted)[:3]}); "
                            "restore the file shipped with the repository or delete it")


@dataclass
class CorpusSplits:
    name: str                         # MSVD | MSR-VTT: the folder and feature-file prefix
    videos: dict                      # official split -> [{"id", "captions", "category"}]
    notes: list = field(default_factory=list)   # what was dropped, for the summary
    feature_key: Callable | None = None         # see layout.write_prepared
    feature_fix: str = ""                       # how to make the missing features


def write_splits(config, corpus: CorpusSplits) -> dict:
    """Check the features of every split and write the prepared files; prepared name -> record."""
    if not config.features.backbones:
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
            records[name] = write_prepared(paths, corpus.name, name, corpus.videos[official],
                                           list(config.features.backbones), corpus.feature_key, corpus.feature_fix)
    except DataError:
        # rewritten splits would sit beside older ones: remove all, so the loader asks for a new preparation
        for name in names.values() if records else ():
            if os.path.exists(paths.split_json(name)):
                os.remove(paths.split_json(name))
        raise
    return records


def run(corpus: str, description: str, options: dict, read_corpus, argv=None) -> int:
    """Options (flag -> (metavar, help)) and every config field; prepare and print a summary, or exit 2."""
    parser = config_module.argument_parser(description, prog=f"python -m splits.{corpus}")
    for flag, (metavar, help) in options.items():
        parser.add_argument(flag, default=None, metavar=metavar, help=help)
    config_module.add_arguments(parser, default_preset=corpus)
    args = parser.parse_args(argv)

    def prepare():
        config = config_module.from_args(args)
        corpus = read_corpus(config, args)
        records = write_splits(config, corpus)
        prepared = os.path.abspath(corpus_paths(config.corpus.data_root, corpus.name).prepared)
        rows = [f"{corpus.name} prepared in {prepared}; features: "
                + ", ".join(f"{name} (D={m['dim']})" for name, m in next(iter(records.values()))["backbones"].items())]
        rows += [f"  {split:<8}{len(r['videos']):>7} videos{sum(len(v['captions']) for v in r['videos']):>9} captions"
                 for split, r in records.items()]
        print("\n".join(rows + [f"  note: {note}" for note in corpus.notes]))
    return exit_status(prepare)
