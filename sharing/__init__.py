"""A trained model as a folder of JSON and safetensors files, to share and to load without
unpickling anything: python -m sharing export | upload (docs/sharing.md)."""
from __future__ import annotations

import os
import re

from sharing.hub import CONFIG, download, read_folder

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def is_shared(path: str) -> bool:
    """A folder of this format, or a name that can only be a Hub id."""
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, CONFIG))
    return (not os.path.exists(path) and HUB_ID.fullmatch(path) is not None
            and not path.endswith((".pt", ".pth")))


def output_folder(checkpoint: str) -> str:
    """Where run.py writes by default: beside best.pt, in a shared folder, runs/<user>--<name> for a Hub id."""
    if not os.path.exists(checkpoint) and is_shared(checkpoint):
        return os.path.join("runs", checkpoint.replace("/", "--"))
    return os.path.abspath(checkpoint) if os.path.isdir(checkpoint) else os.path.dirname(os.path.abspath(checkpoint))


def load_shared(path: str) -> dict:
    """The best.pt payload (models.checkpoints.load's) of a shared folder or Hub id."""
    return read_folder(path) if os.path.isdir(path) else read_folder(download(path), shown=path)
