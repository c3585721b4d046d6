"""Each backbone's weights and preprocessing recorded in a prepared split's feature files, for the
checkpoint, so that captioning a new video computes the features the model was trained on."""
from __future__ import annotations

from typing import Optional

from extraction.store import plain
from splits.layout import corpus_paths, open_hdf5, prepare_command, read_prepared
from utils import DataError

RECORD_KEYS = ("weights", "preprocessing")


def recorded_extraction(config, split: str = "train") -> dict:
    """{backbone: {"weights", "preprocessing"}}; {} for a split not prepared or other extractors' files."""
    paths = corpus_paths(config.corpus.data_root, config.corpus.name)
    fix = prepare_command(config)
    try:
        record = read_prepared(paths, split, fix)
        first = record["videos"][0]["id"]
    except (DataError, KeyError, IndexError):
        return {}
    found = {}
    for backbone in config.features.backbones:
        try:
            with open_hdf5(paths.split_features(split, backbone), fix) as links:
                attrs = links[first].file.attrs      # the linked feature file's, not the link file's
                if all(key in attrs for key in RECORD_KEYS):
                    found[backbone] = {key: str(plain(attrs[key])) for key in RECORD_KEYS}
        except (DataError, KeyError, OSError, RuntimeError, ValueError):  # never fail a checkpoint save
            continue
    return found


def recorded_weights(recorded: dict, backbone: str) -> Optional[str]:
    return (recorded.get(backbone) or {}).get("weights") or None
