"""What a corpus reader hands over (videos per official split), writing it with layout.py, and the command
line shared by the corpus scripts: config options, one clear error, a summary."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import config as config_module
from splits.layout import corpus_paths, write_prepared
from utils import DataError, exit_status


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


def summary(corpus: CorpusSplits, records: dict, data_root: str) -> str:
    first = next(iter(records.values()))
    backbones = ", ".join(f"{name} (D={meta['dim']})" for name, meta in first["backbones"].items())
    rows = [f"{corpus.name} prepared in {os.path.abspath(corpus_paths(data_root, corpus.name).prepared)}; "
            f"features: {backbones}"]
    for split, record in records.items():
        n_captions = sum(len(v["captions"]) for v in record["videos"])
        rows.append(f"  {split:<8}{len(record['videos']):>7} videos{n_captions:>9} captions")
    return "\n".join(rows + [f"  note: {note}" for note in corpus.notes])


def run(corpus: str, description: str, options: dict, read_corpus, argv=None) -> int:
    """Options (flag -> (metavar, help)) and every config field; prepare and print a summary, or exit 2."""
    parser = config_module.argument_parser(description, prog=f"python -m splits.{corpus}")
    for flag, (metavar, help) in options.items():
        parser.add_argument(flag, default=None, metavar=metavar, help=help)
    config_module.add_arguments(parser, default_preset=corpus)
    args = parser.parse_args(argv)

    def prepare():
        config = config_module.from_args(args)
        corpus_splits = read_corpus(config, args)
        print(summary(corpus_splits, write_splits(config, corpus_splits), config.corpus.data_root))
    return exit_status(prepare)
