"""Finding and reading annotation files (``name.gz`` read as ``name``), with one clear DataError for
every way they can be bad. Looked up in ``--annotations DIR`` alone when given, else in
``<data_root>/<corpus>/annotations`` and then in the repository's shipped ``data/<corpus>/annotations``."""
from __future__ import annotations

import gzip
import json
import os
import zlib
from typing import Iterator

from utils import DataError

LIST_FILES = {"train": "train.list", "val": "valid.list", "test": "test.list"}  # optional cross-checks


def shipped_dir(corpus: str) -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", corpus, "annotations")


def search_dirs(data_root: str, corpus: str, override: str | None) -> list:
    if override:
        if not os.path.isdir(override):
            raise DataError(f"annotation directory {override} does not exist; "
                            f"pass --annotations with a folder that holds the {corpus} annotation files")
        return [override]
    candidates = (os.path.join(data_root, corpus, "annotations"), shipped_dir(corpus))
    dirs = [d for d in candidates if os.path.isdir(d)]
    return dirs[:1] if len(dirs) == 2 and os.path.abspath(dirs[0]) == os.path.abspath(dirs[1]) else dirs


def find(dirs: list, name: str) -> str | None:
    """The first of dirs/name, dirs/name.gz that exists, or None."""
    paths = (os.path.join(d, n) for d in dirs for n in (name, name + ".gz"))
    return next((p for p in paths if os.path.isfile(p)), None)


def require(dirs: list, name: str, how_to_get: str) -> str:
    path = find(dirs, name)
    if path is None:
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
        raise DataError(f"annotation file {path} cannot be read ({error}); "
                        "download or copy it again") from None


def lines(path: str) -> Iterator[tuple]:
    """(line number, line without its end-of-line) for every line of a text file."""
    # Split on \n only: str.splitlines() would also break captions at exotic Unicode separators.
    pieces = read_text(path).split("\n")
    return ((n, line.rstrip("\r")) for n, line in enumerate(pieces[:-1] if pieces[-1] == "" else pieces, 1))


def read_json(path: str):
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise DataError(f"annotation file {path} is not valid JSON (line {error.lineno}, "
                        f"column {error.colno}: {error.msg}); download or copy it again") from None


def check_split_lists(dirs: list, expected: dict, to_video=lambda path, i: i) -> None:
    """Each .list file found (a JSON list of ids, hobincar/SA-LSTM's) must give its official split."""
    for split, name in LIST_FILES.items():
        path = find(dirs, name)
        if path is None:
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
