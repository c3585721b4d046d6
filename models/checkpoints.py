"""Checkpoints: written atomically, loaded with weights_only=True, checked before use.

best.pt holds what run.py needs and nothing else: weights, config and vocabulary.
last.pt adds what resuming needs: optimizer, scheduler, epoch, best score and RNG states.
"""
from __future__ import annotations

import os

import torch

import config as config_module
from loader.vocabulary import Vocabulary
from models.sa_lstm import build_model
from sharing import is_shared, load_shared
from utils import DataError, atomic_torch_save

FORMAT = 1
MODEL_PARTS = {"model": dict, "config": dict, "vocab": list, "feature_size": int}   # what run.py reads
RESUME_PARTS = {**MODEL_PARTS, "optimizer": dict, "scheduler": dict, "progress": dict}


def save(path: str, payload: dict) -> None:
    atomic_torch_save({"format": FORMAT, **payload}, path)


def load(path: str, map_location="cpu", fix: str = "") -> dict:
    """The checkpoint's payload; fix: what the caller's user can do about a damaged file."""
    suffix = f"; {fix}" if fix else ""
    if is_shared(path):                # a folder of `python -m sharing export`, or a Hub id
        return load_shared(path)
    if os.path.isdir(path):
        raise DataError(f"checkpoint {path} is a folder; give a file in it, e.g. "
                        f"{os.path.join(path, 'best.pt')}")
    if not os.path.isfile(path):
        raise DataError(f"checkpoint {path} does not exist; train one with `python train.py` "
                        "(it is written to runs/<run id>/best.pt)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # pickle, zip and weights_only errors all mean the same to a user
        raise DataError(f"checkpoint {path} cannot be read ({type(error).__name__}: {error}); "
                        f"it is damaged or not a checkpoint of this project{suffix}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"checkpoint {path} is not a format-{FORMAT} SA-LSTM checkpoint of this "
                        f"project{suffix}")
    return payload


def check_contents(payload: dict, path: str, required: dict = MODEL_PARTS, fix: str = "") -> None:
    """A clear error for a checkpoint that lacks what its reader needs (required: key -> type)."""
    missing = [key for key, kind in required.items() if not isinstance(payload.get(key), kind)]
    if missing:
        raise DataError(f"checkpoint {path} lacks {', '.join(missing)} (or holds another kind of "
                        f"value there): it was not written by train.py{f'; {fix}' if fix else ''}")


def model_from_checkpoint(payload: dict, path: str = "checkpoint"):
    """(model, config, vocabulary) rebuilt from the checkpoint alone."""
    check_contents(payload, path)
    config = config_module.Config.from_dict(payload["config"])
    vocab = Vocabulary(payload["vocab"])
    model = build_model(config, len(vocab), payload["feature_size"])
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:
        raise DataError(f"{path}: its weights do not fit the model its config describes "
                        f"({str(error).splitlines()[0]}); the checkpoint comes from another "
                        "version of this project or was edited") from None
    return model, config, vocab


def check_features_fit(payload: dict, feature_size: int, path: str) -> None:
    if payload["feature_size"] != feature_size:
        raise DataError(f"{path} was trained on features of size {payload['feature_size']} "
                        f"({'+'.join(payload['config']['features']['backbones'])}), but these "
                        f"features have size {feature_size}; use features of the same backbones")
