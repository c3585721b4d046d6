"""The shared model folder: config.json (every entry of best.pt but the weights and the
vocabulary), vocab.json, model.safetensors, test_scores.json and README.md (the model card).

model.safetensors' header records the SHA-256 of config.json and vocab.json, so that a folder
whose files no longer belong together is refused; reading the folder gives back the payload
that models.checkpoints.load gives for the best.pt it was made from.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil

from utils import DataError, atomic_save_json

CONFIG, VOCAB, WEIGHTS, SCORES, CARD = ("config.json", "vocab.json", "model.safetensors",
                                        "test_scores.json", "README.md")
FILES = (CONFIG, VOCAB, WEIGHTS, SCORES, CARD)
REMEDY = "export it again with `python -m sharing export runs/<run id>`"


def sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def read_folder(folder: str, shown: str = "") -> dict:
    from safetensors import SafetensorError, safe_open
    shown = shown or folder
    for name in (CONFIG, VOCAB, WEIGHTS):
        if not os.path.isfile(os.path.join(folder, name)):
            raise DataError(f"shared model {shown} has no {name}; {REMEDY}")
    weights = os.path.join(folder, WEIGHTS)
    try:
        with safe_open(weights, framework="pt", device="cpu") as handle:
            recorded = handle.metadata() or {}
            state = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise DataError(f"{weights} cannot be read ({error}); it is truncated or damaged: download "
                        f"or {REMEDY}") from None
    for name in (CONFIG, VOCAB):
        if recorded.get(name) != sha256(os.path.join(folder, name)):
            raise DataError(f"{os.path.join(folder, name)} is not the file exported with {WEIGHTS} "
                            f"(it was edited or replaced); restore it, or {REMEDY}")
    entries, vocab = (_read_json(os.path.join(folder, name)) for name in (CONFIG, VOCAB))
    return {**entries, "vocab": vocab, "model": state}


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path} cannot be read as JSON ({error}); {REMEDY}") from None


def write_folder(payload: dict, out: str, scores_path: str, card: str) -> None:
    """Write payload (a best.pt's) as a shared folder at out, which must not exist: into a
    temporary folder first, renamed when complete."""
    from safetensors.torch import save_file
    if os.path.exists(out):
        raise DataError(f"{out} exists; remove it or give another --out (it is left as it is)")
    entries = {key: value for key, value in payload.items() if key not in ("model", "vocab")}
    for key, value in entries.items():
        if json.loads(json.dumps(value)) != value:
            raise DataError(f"entry {key!r} of the checkpoint ({type(value).__name__}) does not survive "
                            "JSON; the checkpoint comes from another version of this project")
    partial = out.rstrip("/") + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    try:
        atomic_save_json(entries, os.path.join(partial, CONFIG))
        atomic_save_json(payload["vocab"], os.path.join(partial, VOCAB))
        hashes = {name: sha256(os.path.join(partial, name)) for name in (CONFIG, VOCAB)}
        tensors = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in payload["model"].items()}
        save_file(tensors, os.path.join(partial, WEIGHTS), metadata=hashes)
        if scores_path and os.path.isfile(scores_path):
            shutil.copyfile(scores_path, os.path.join(partial, SCORES))
        with open(os.path.join(partial, CARD), "w", encoding="utf-8") as handle:
            handle.write(card)
        os.replace(partial, out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)

