"""The command line shared by the corpus scripts: config options, one clear error, a summary."""
from __future__ import annotations

import os

import config as config_module
from splits.corpus import CorpusSplits, write_splits
from splits.layout import corpus_paths
from utils import exit_status


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
