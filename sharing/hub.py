"""A shared model folder, on disk or on the Hugging Face Hub: config.json (best.pt's entries but weights and
vocabulary), vocab.json, model.safetensors (whose header holds the other two's SHA-256, so that a mixed folder is
refused), test_scores.json and README.md; reading it gives back models.checkpoints.load's payload of the best.pt."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from utils import DataError, atomic_save_json, read_json

FILES = CONFIG, VOCAB, WEIGHTS, SCORES, CARD = ("config.json", "vocab.json", "model.safetensors", "test_scores.json",
                                                "README.md")
REMEDY = "export it again with `python -m sharing export runs/<run id>`"
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


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
    entries, vocab = (read_json(os.path.join(folder, name), REMEDY, "cannot be read as JSON")
                      for name in (CONFIG, VOCAB))
    return {**entries, "vocab": vocab, "model": state}


def write_folder(payload: dict, out: str, scores_path: str, card: str) -> None:
    """Write a best.pt's payload as a new folder out, renamed from a temporary one when complete."""
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
        Path(partial, CARD).write_text(card, encoding="utf-8")
        os.replace(partial, out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def download(repo_id: str) -> str:
    """The local folder of repo_id's files (HF_HUB_OFFLINE=1 reads the Hub's cache alone)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise DataError(f"--checkpoint {repo_id} names no local file or folder, and huggingface_hub, "
                        "which downloads from the Hub, is not installed: pip install huggingface_hub") from None
    try:
        return snapshot_download(repo_id, allow_patterns=list(FILES))
    except Exception as error:  # network, missing repository, private, offline without cache: one answer
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"checkpoint {repo_id} is no local file or folder, and no model of that id "
                        f"could be had from the Hugging Face Hub ({type(error).__name__}: {reason}); "
                        "give a best.pt, a folder from `python -m sharing export`, or a Hub id") from None


def upload(folder: str, repo_id: str, private: bool = False) -> str:
    """Check folder, then create repo_id (if new) and upload the folder; the repository's URL."""
    read_folder(folder)
    from huggingface_hub import HfApi
    api = HfApi()
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=folder, repo_id=repo_id, allow_patterns=list(FILES),
                          commit_message="SA-LSTM model folder from python -m sharing export")
    except Exception as error:  # authentication, network, permissions: the Hub's own words
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"uploading {folder} to {repo_id} failed ({type(error).__name__}: {reason}); "
                        "log in with `hf auth login` (a token with write access) and try again") from None
    return str(url)


def is_shared(path: str) -> bool:
    """A folder of this format, or a name that can only be a Hub id."""
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, CONFIG))
    return not os.path.exists(path) and HUB_ID.fullmatch(path) is not None and not path.endswith((".pt", ".pth"))


def output_folder(checkpoint: str) -> str:
    """Where run.py writes by default: beside best.pt, in a shared folder, runs/<user>--<name> for a Hub id."""
    if not os.path.exists(checkpoint) and is_shared(checkpoint):
        return os.path.join("runs", checkpoint.replace("/", "--"))
    return os.path.abspath(checkpoint) if os.path.isdir(checkpoint) else os.path.dirname(os.path.abspath(checkpoint))


def load_shared(path: str) -> dict:
    """The best.pt payload (models.checkpoints.load's) of a shared folder or Hub id."""
    return read_folder(path) if os.path.isdir(path) else read_folder(download(path), shown=path)
