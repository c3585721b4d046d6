"""Finding and reading annotation files, with one clear DataError for every way they can be bad.

Annotation files are looked up in ``--annotations DIR`` when given; otherwise in
``<data_root>/<corpus>/annotations`` and then in the copy shipped with the repository
(``data/<corpus>/annotations`` beside this package). ``name.gz`` is read as ``name``.
"""
from __future__ import annotations

import gzip
import json
import os
import zlib
from typing import Iterator, Optional

from utils import DataError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shipped_dir(corpus: str) -> str:
    return os.path.join(REPO_ROOT, "data", corpus, "annotations")


def search_dirs(data_root: str, corpus: str, override: Optional[str]) -> list:
    """Where to look, first match wins. An explicit directory is the only place looked in."""
    if override:
        if not os.path.isdir(override):
            raise DataError(f"annotation directory {override} does not exist; "
                            f"pass --annotations with a folder that holds the {corpus} annotation files")
        return [override]
    dirs = [os.path.join(data_root, corpus, "annotations"), shipped_dir(corpus)]
    unique = []
    for d in dirs:
        if os.path.isdir(d) and os.path.abspath(d) not in map(os.path.abspath, unique):
            unique.append(d)
    return unique


def find(dirs: list, name: str) -> Optional[str]:
    """The first of dirs/name, dirs/name.gz that exists, or None."""
    for directory in dirs:
        for candidate in (name, name + ".gz"):
            path = os.path.join(directory, candidate)
            if os.path.isfile(path):
                return path
    return None


def require(dirs: list, name: str, how_to_get: str) -> str:
    path = find(dirs, name)
    if path is None:
        where = ", ".join(dirs) if dirs else "(no annotation folder found)"
        raise DataError(f"annotation file {name} (or {name}.gz) not found in {where}; {how_to_get}")
    return path


def _open(path: str):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def read_text(path: str) -> str:
    try:
        with _open(path) as handle:
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
    if pieces and pieces[-1] == "":
        pieces.pop()
    for number, line in enumerate(pieces, start=1):
        yield number, line.rstrip("\r")


def read_json(path: str):
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"annotation file {path} is not valid JSON (line {error.lineno}, "
                        f"column {error.colno}: {error.msg}); download or copy it again") from None


def read_id_list(path: str) -> list:
    """A .list file: a JSON list of video ids (the split lists of hobincar/SA-LSTM)."""
    ids = read_json(path)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise DataError(f"split list {path} should be a JSON list of video id strings")
    return ids


def check_split_list(path: str, expected: set, actual: set, split: str) -> None:
    """The official split (expected) must be exactly what the shipped list file says (actual)."""
    if expected == actual:
        return
    missing = sorted(expected - actual)[:3]
    extra = sorted(actual - expected)[:3]
    raise DataError(f"split list {path} disagrees with the official {split} split: "
                    f"{len(expected - actual)} videos missing (e.g. {missing}), "
                    f"{len(actual - expected)} unexpected (e.g. {extra}); "
                    "restore the file shipped with the repository or delete it")
